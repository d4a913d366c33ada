//! Contact sheet of the platformer: 6 levels (one row each, covering every theme) × 8 frames
//! of scripted play, at 2× scale. `cargo run --release --example platformer_sheet -- OUT.png`

use genie::data::{DEFAULT_STICKINESS, ScriptedPlayer};
use genie::game::theme::{PALETTES, THEMES};
use genie::game::{Game, Status};
use genie::session::export::grid;

const LEVELS: usize = 6;
const FRAMES: usize = 8;
const SCALE: u32 = 2;
/// Border around the sheet, as wide as the gaps between frames.
const MARGIN: u32 = 2;
/// Ticks between sampled frames.
const EVERY: usize = 40;

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/platformer.png".into());
    // The first seeds whose themes cover all themes, then any further seeds.
    let mut seeds: Vec<u64> = Vec::new();
    let mut seen = [false; THEMES];
    for seed in 0.. {
        let theme = Game::new(seed).theme();
        if !seen[theme] || seen.iter().all(|&s| s) {
            seen[theme] = true;
            seeds.push(seed);
        }
        if seeds.len() == LEVELS {
            break;
        }
    }
    let mut rows = Vec::new();
    for (row, &seed) in seeds.iter().enumerate() {
        let mut game = Game::new(seed);
        let mut player = ScriptedPlayer::new(seed, DEFAULT_STICKINESS);
        println!(
            "row {row}: level {seed}, theme {}",
            PALETTES[game.theme()].name
        );
        let mut frames = Vec::new();
        for _ in 0..FRAMES {
            frames.push(game.frame());
            for _ in 0..EVERY {
                let a = player.act(&game);
                if game.step(a) != Status::Alive {
                    game.restart();
                }
            }
        }
        rows.push(frames);
    }
    let sheet = grid(&rows, SCALE, MARGIN, [24, 24, 24]);
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    sheet.save(&out)?;
    println!("wrote {out} ({}×{})", sheet.width(), sheet.height());
    Ok(())
}
