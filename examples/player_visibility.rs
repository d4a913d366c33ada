//! Whether the player survives the tokenizer: from held-out game states, encode and decode the
//! frame and look for the player (by its colour, the tolerance `genie eval` uses) in the real
//! frame and in the reconstruction. Action fidelity can only be as high as the share found here
//! within a pixel of the true position.
//!
//! `cargo run --release --example player_visibility -- [CHECKPOINT_DIR] [STATES]`
use genie::eval::run::{PLAYER_TOLERANCE, game_in_play};
use genie::game::{FRAME_BYTES, find_player_within};
use genie::model::checkpoint::Genie;
use genie::model::frames::{frames_to_bytes, frames_to_f32};
use tch::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("checkpoints".into());
    let states: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    let genie = Genie::load(std::path::Path::new(&dir), Device::Cpu)?;
    let (mut real_found, mut rec_found, mut within_1, mut errors) = (0, 0, 0, Vec::new());
    for i in 0..states {
        let (_, history) = game_in_play(1_000_000 + i, 1, i);
        let frame = &history[..FRAME_BYTES];
        let x = frames_to_f32(&Tensor::from_slice(frame).view([1, 1, 64, 64, 3]));
        let rec = frames_to_bytes(&genie.tokenizer.decode(&genie.tokenizer.encode(&x)));
        let Some(real) = find_player_within(frame, 0) else {
            continue;
        };
        real_found += 1;
        if let Some(got) = find_player_within(&rec, PLAYER_TOLERANCE) {
            rec_found += 1;
            let e = ((got.0 - real.0).powi(2) + (got.1 - real.1).powi(2)).sqrt();
            within_1 += u32::from(e <= 1.0);
            errors.push(e);
        }
    }
    errors.sort_by(f32::total_cmp);
    println!(
        "states {states}: player in the real frame {real_found}, in the reconstruction {rec_found}, \
         within 1 px {within_1}; median error {:.2} px",
        errors.get(errors.len() / 2).copied().unwrap_or(f32::NAN)
    );
    Ok(())
}
