//! Contact sheet of the platformer: 6 levels (one row each, covering every theme) × 8 frames
//! of scripted play, at 2× scale. `cargo run --release --example platformer_sheet -- OUT.png`

use genie::data::{DEFAULT_STICKINESS, ScriptedPlayer};
use genie::game::theme::{PALETTES, THEMES};
use genie::game::{FRAME_SIZE, Game, Status};

const LEVELS: usize = 6;
const FRAMES: usize = 8;
const SCALE: usize = 2;
const GAP: usize = 2;
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
    let cell = FRAME_SIZE * SCALE + GAP;
    let (w, h) = (FRAMES * cell + GAP, LEVELS * cell + GAP);
    let mut sheet = image::RgbImage::from_pixel(w as u32, h as u32, image::Rgb([24, 24, 24]));
    for (row, &seed) in seeds.iter().enumerate() {
        let mut game = Game::new(seed);
        let mut player = ScriptedPlayer::new(seed, DEFAULT_STICKINESS);
        println!(
            "row {row}: level {seed}, theme {}",
            PALETTES[game.theme()].name
        );
        for col in 0..FRAMES {
            let frame = game.frame();
            for y in 0..FRAME_SIZE * SCALE {
                for x in 0..FRAME_SIZE * SCALE {
                    let i = ((y / SCALE) * FRAME_SIZE + x / SCALE) * 3;
                    let px = image::Rgb([frame[i], frame[i + 1], frame[i + 2]]);
                    sheet.put_pixel(
                        (GAP + col * cell + x) as u32,
                        (GAP + row * cell + y) as u32,
                        px,
                    );
                }
            }
            for _ in 0..EVERY {
                let a = player.act(&game);
                if game.step(a) != Status::Alive {
                    game.restart();
                }
            }
        }
    }
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    sheet.save(&out)?;
    println!("wrote {out} ({w}×{h})");
    Ok(())
}
