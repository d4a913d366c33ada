//! How much of the key a pair of frames can show, whatever the model: from held-out game
//! states (the calibration's seeds), every action is applied once and the next frames compared.
//! Prints, per pair of actions, the share of states in which both give the very same next frame
//! (no latent action model can tell those apart), and the NMI between the action and the
//! player's on-screen step plus the camera's.
//!
//! `cargo run --release --example control_ceiling -- [STATES]`
use std::collections::HashMap;

use genie::eval::measures::nmi;
use genie::eval::run::{CALIBRATION_SEED_START, game_in_play};
use genie::game::{Action, Game};

fn main() {
    let states: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let mut keys: HashMap<(i32, i32, i32, bool), usize> = HashMap::new();
    let (mut steps, mut truths) = (Vec::new(), Vec::new());
    let mut same = [[0u32; 8]; 8];
    for i in 0..states {
        let (game, _) = game_in_play(CALIBRATION_SEED_START + i, 1, i);
        let screen = |g: &Game| (g.player().x / 256 - g.camera_px(), g.player().y / 256);
        let nexts: Vec<Game> = Action::ALL
            .iter()
            .map(|&a| {
                let mut n = game.clone();
                n.step(a);
                n
            })
            .collect();
        let frames: Vec<Vec<u8>> = nexts.iter().map(Game::frame).collect();
        for (row, a) in same.iter_mut().zip(&frames) {
            for (cell, b) in row.iter_mut().zip(&frames) {
                *cell += u32::from(a == b);
            }
        }
        let (x0, y0) = screen(&game);
        for (a, next) in Action::ALL.iter().zip(&nexts) {
            let (x, y) = screen(next);
            let key = (
                x - x0,
                y - y0,
                next.camera_px() - game.camera_px(),
                next.player().crouching,
            );
            let fresh = keys.len();
            steps.push(*keys.entry(key).or_insert(fresh));
            truths.push(*a as usize);
        }
    }
    println!("% of states in which two actions give the same next frame:");
    for (a, row) in Action::ALL.iter().zip(&same) {
        let shares: Vec<u32> = row
            .iter()
            .map(|&n| (f64::from(n) / states as f64 * 100.0).round() as u32)
            .collect();
        println!("{:>10} {shares:?}", a.name());
    }
    println!(
        "states {states}: {} distinct steps, NMI(action; step) {:.3}",
        keys.len(),
        nmi(&steps, &truths)
    );
}
