//! Platformer throughput on one core: game steps plus 64×64 renders per second, as one JSON
//! line with the median of several runs. `cargo bench --bench game`.

use std::hint::black_box;
use std::time::Instant;

use genie::data::{DEFAULT_STICKINESS, ScriptedPlayer};
use genie::game::{Action, FRAME_BYTES, Game, Status};

const RUNS: usize = 9;
const FRAMES: usize = 200_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A pre-recorded list of actions, so that the timed loops measure the game, not the player.
fn actions(n: usize) -> Vec<Action> {
    let mut game = Game::new(0);
    let mut player = ScriptedPlayer::new(0, DEFAULT_STICKINESS);
    (0..n)
        .map(|_| {
            let a = player.act(&game);
            if game.step(a) != Status::Alive {
                game.restart();
            }
            a
        })
        .collect()
}

fn main() {
    let acts = actions(FRAMES);
    let mut frame = vec![0u8; FRAME_BYTES];
    let (mut both, mut step, mut render, mut scripted) = (vec![], vec![], vec![], vec![]);
    for run in 0..RUNS {
        // Step + render, as in dataset generation (player choice excluded).
        let mut game = Game::new(run as u64);
        let t = Instant::now();
        for &a in &acts {
            if game.step(a) != Status::Alive {
                game.restart();
            }
            game.render(&mut frame);
            black_box(&frame);
        }
        both.push(t.elapsed().as_secs_f64());

        let mut game = Game::new(run as u64);
        let t = Instant::now();
        for &a in &acts {
            if game.step(a) != Status::Alive {
                game.restart();
            }
            black_box(&game);
        }
        step.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        for _ in 0..FRAMES {
            game.render(&mut frame);
            black_box(&frame);
        }
        render.push(t.elapsed().as_secs_f64());

        // Everything dataset generation does per frame, scripted player included.
        let mut game = Game::new(run as u64);
        let mut player = ScriptedPlayer::new(run as u64, DEFAULT_STICKINESS);
        let t = Instant::now();
        for _ in 0..FRAMES {
            game.render(&mut frame);
            let a = player.act(&game);
            if game.step(a) != Status::Alive {
                game.restart();
            }
            black_box(&frame);
        }
        scripted.push(t.elapsed().as_secs_f64());
    }
    let per = |secs: Vec<f64>| median(secs) / FRAMES as f64;
    let (both, step, render, scripted) = (per(both), per(step), per(render), per(scripted));
    println!(
        "{{\"frames_per_s_per_core\": {:.0}, \"frames_per_s_per_core_with_scripted_player\": {:.0}, \"ms_per_frame_render\": {:.6}, \"ms_per_step\": {:.6}, \"frames_per_run\": {FRAMES}, \"runs\": {RUNS}}}",
        1.0 / both,
        1.0 / scripted,
        render * 1e3,
        step * 1e3,
    );
}
