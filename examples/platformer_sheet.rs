//! Contact sheet of the platformer: 6 levels (one row each, covering every theme, or every family
//! of looks) × 8 frames of scripted play, at 2× scale.
//! `cargo run --release --example platformer_sheet -- OUT.png [themes|mixed|held-out]`

use genie::data::{DEFAULT_STICKINESS, ScriptedPlayer};
use genie::game::look::family;
use genie::game::theme::{PALETTES, THEMES};
use genie::game::{Game, GameConfig, Looks, Status};
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
    let looks: Looks = match std::env::args().nth(2) {
        Some(name) => name.parse().map_err(anyhow::Error::msg)?,
        None => Looks::Themes,
    };
    let config = GameConfig {
        looks,
        ..GameConfig::original()
    };
    // The first seeds whose themes (or families of looks) cover all, then any further seeds.
    let mut seeds: Vec<u64> = Vec::new();
    let mut seen = Vec::new();
    for seed in 0.. {
        let kind = match looks {
            Looks::Themes => format!("{}", Game::new(seed).theme()),
            _ => format!("{:?}", family(looks, seed)),
        };
        let all_seen = seen.len() >= if looks == Looks::Themes { THEMES } else { 5 };
        if !seen.contains(&kind) || all_seen {
            seen.push(kind);
            seeds.push(seed);
        }
        if seeds.len() == LEVELS || seed > 10_000 {
            break;
        }
    }
    let mut rows = Vec::new();
    for (row, &seed) in seeds.iter().enumerate() {
        let mut game = Game::with_config(seed, config);
        let mut player = ScriptedPlayer::new(seed, DEFAULT_STICKINESS);
        println!(
            "row {row}: level {seed}, theme {}, {:?}",
            PALETTES[game.theme()].name,
            family(looks, seed)
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
