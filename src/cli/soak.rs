//! `genie bench --soak N`: a long headless dream, as a player would make it, to show that memory
//! and frame time stay flat: N frames through the same world and key map as `genie play`, a
//! key changing every 2–8 frames (all eight actions, seeded), timed frame by frame. One JSON
//! object: per tenth of the run the median and 99th-percentile frame time and the resident
//! memory at its end, and the last tenth's median and memory against the first's.

use std::time::Instant;

use genie::game::Action;
use genie::session::dream::DreamWorld;
use genie::session::game_world::GameWorld;
use genie::session::prompt::Prompt;
use genie::session::{Control, World};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Level the soak starts from: a held-out one.
const SOAK_LEVEL: u64 = 1_000_042;

pub fn soak(
    mut world: DreamWorld,
    frames: usize,
    rss_mb: fn() -> Option<f64>,
) -> anyhow::Result<serde_json::Value> {
    let game = GameWorld::new(SOAK_LEVEL, world.game());
    world.reset(&Prompt::from_frame(game.game().frame()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut key, mut left) = (Action::Noop, 0);
    let windows = 10.min(frames.max(1));
    let per_window = frames.div_ceil(windows);
    let mut report = Vec::new();
    let mut times = Vec::with_capacity(per_window);
    let bar = indicatif::ProgressBar::new(frames as u64);
    let start = Instant::now();
    for i in 0..frames {
        if left == 0 {
            key = Action::ALL[rng.random_range(0..Action::ALL.len())];
            left = rng.random_range(2..=8);
        }
        left -= 1;
        let t = Instant::now();
        world.step(Control::Game(key as u8))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if times.len() == per_window || i + 1 == frames {
            times.sort_by(f64::total_cmp);
            let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            report.push(serde_json::json!({
                "frames_to": i + 1,
                "median_ms": pick(0.5),
                "p99_ms": pick(0.99),
                "rss_mb": rss_mb(),
            }));
            times.clear();
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let field = |w: &serde_json::Value, k: &str| w[k].as_f64().unwrap_or(f64::NAN);
    let (first, last) = (&report[0], &report[report.len() - 1]);
    Ok(serde_json::json!({
        "soak_frames": frames,
        "seconds": start.elapsed().as_secs_f64(),
        "start_level": SOAK_LEVEL,
        "windows": report,
        "median_ms_last_over_first": field(last, "median_ms") / field(first, "median_ms"),
        "rss_mb_growth": field(last, "rss_mb") - field(first, "rss_mb"),
    }))
}
