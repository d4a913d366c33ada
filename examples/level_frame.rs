//! Writes one frame of a platformer level as a 64×64 PNG: how `assets/prompt.png` (the default
//! prompt, a held-out level never trained on) was made.
//!
//! `cargo run --example level_frame -- SEED TICKS OUT.png` (TICKS of scripted play first).

use genie::data::ScriptedPlayer;
use genie::game::{Game, Status};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() == 3, "usage: level_frame SEED TICKS OUT.png");
    let (seed, ticks): (u64, u64) = (args[0].parse()?, args[1].parse()?);
    let mut game = Game::new(seed);
    let mut player = ScriptedPlayer::new(seed, 0.8);
    for _ in 0..ticks {
        if game.step(player.act(&game)) != Status::Alive {
            game.restart();
        }
    }
    image::RgbImage::from_raw(64, 64, game.frame())
        .expect("64×64 RGB")
        .save(&args[2])?;
    Ok(())
}
