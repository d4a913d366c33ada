//! The control ceiling (docs/design.md §8): action fidelity when the dream is given, instead of
//! the calibrated key's latents, the latents the latent action model infers from the real game's
//! own next frames. No map from keys to latents can pick better latents than the ones that
//! describe what really happened, so this is what a perfect key → latent map could reach with
//! these networks; set beside `action_fidelity` it says whether the map or the networks limit
//! control.
//!
//! Computed on exactly the cases of `action_fidelity` (the same held-out states, the same real
//! directions, the same sampler seed per rollout), so the two differ only in the latents.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use super::control::{ControlCases, Misses, case_batches};
use super::run::{EvalOptions, to_tensor};
use crate::game::{Action, FRAME_BYTES};
use crate::model::Genie;
use crate::model::dynamics::ActionSource;

/// Per game action (plus `mean` over the eight), the share of cases whose dream, driven by the
/// LAM's latents of the real next frames, moved the player the way the real one moved; and per
/// action how the others missed.
pub fn action_fidelity_ceiling(
    genie: &Genie,
    opts: &EvalOptions,
) -> (BTreeMap<String, f64>, BTreeMap<String, Misses>) {
    let mut agree = vec![(0usize, 0usize); Action::ALL.len()];
    let mut misses = vec![Misses::default(); Action::ALL.len()];
    for seeds in case_batches(opts.eval_seed_start, opts.clips, opts.batch) {
        let cases = ControlCases::new(genie, seeds.into_iter(), opts.prompt_frames);
        for action in Action::ALL {
            let want = cases.real_directions(action, opts.horizon);
            let latents = real_latents(genie, &cases, action, opts);
            let got = cases.dreamed_directions_driven(genie, &latents, opts);
            for (want, got) in want.iter().zip(&got) {
                if let Some(want) = want {
                    let (agreed, total) = &mut agree[action as usize];
                    *total += 1;
                    *agreed += usize::from(!misses[action as usize].count(*want, *got));
                }
            }
        }
    }
    let mut fidelity: BTreeMap<String, f64> = Action::ALL
        .iter()
        .map(|&a| {
            let (agreed, total) = agree[a as usize];
            (a.name().to_owned(), agreed as f64 / total.max(1) as f64)
        })
        .collect();
    let mean = fidelity.values().sum::<f64>() / Action::ALL.len() as f64;
    fidelity.insert("mean".into(), mean);
    let misses = Action::ALL
        .iter()
        .map(|&a| (a.name().to_owned(), misses[a as usize]))
        .collect();
    (fidelity, misses)
}

/// Per dreamed frame (`opts.horizon` of them), the latent of each case's real transition under
/// `action` held: read by the LAM from the prompt and the real frames that followed it (the
/// LAM is causal in time, so each transition sees the frames up to its own end, as in
/// training). A model driven by the game's actions gets the action itself.
///
/// # Shapes
/// → `opts.horizon` tensors [B] i64.
fn real_latents(
    genie: &Genie,
    cases: &ControlCases,
    action: Action,
    opts: &EvalOptions,
) -> Vec<Tensor> {
    let device = genie.tokenizer_vs.device();
    let b = cases.games.len();
    if genie.config.dynamics.actions == ActionSource::Game {
        return (0..opts.horizon)
            .map(|_| Tensor::full([b as i64], action as i64, (Kind::Int64, device)))
            .collect();
    }
    let (p, len) = (opts.prompt_frames, opts.prompt_frames + opts.horizon);
    let mut bytes = Vec::with_capacity(b * len * FRAME_BYTES);
    for (game, history) in cases
        .games
        .iter()
        .zip(cases.history.chunks(p * FRAME_BYTES))
    {
        bytes.extend_from_slice(history);
        // A life that ends stops the game where it is; such cases are not scored.
        let mut real = game.clone();
        for _ in 0..opts.horizon {
            real.step(action);
            bytes.extend(real.frame());
        }
    }
    let inferred = genie.lam.infer_actions(&to_tensor(&bytes, b, len, device)); // [B, len − 1]
    // Transition p − 1 → p is the first dreamed frame's.
    (0..opts.horizon as i64)
        .map(|k| inferred.select(1, p as i64 - 1 + k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::calibrate::CALIBRATION_SEED_START;
    use tch::Device;

    #[test]
    fn the_ceiling_latents_are_the_lams_reading_of_each_real_step() {
        // The shipped LAM reads transitions pairwise: each latent handed to the dream must be
        // its reading of that very step of the real game (not the step before or after).
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints");
        let genie = Genie::load(&shipped, Device::Cpu).unwrap();
        let opts = EvalOptions {
            prompt_frames: 2,
            horizon: 3,
            ..Default::default()
        };
        let seeds = (0..4).map(|i| (CALIBRATION_SEED_START + i, i));
        let cases = ControlCases::new(&genie, seeds, opts.prompt_frames);
        for action in [Action::Right, Action::Jump] {
            let got = real_latents(&genie, &cases, action, &opts);
            assert_eq!(got.len(), opts.horizon);
            for (i, game) in cases.games.iter().enumerate() {
                let last = &cases.history[(2 * i + 1) * FRAME_BYTES..(2 * i + 2) * FRAME_BYTES];
                let (mut real, mut before) = (game.clone(), last.to_vec());
                for (k, latents) in got.iter().enumerate() {
                    real.step(action);
                    let after = real.frame();
                    let pair = [before.as_slice(), after.as_slice()].concat();
                    let alone = genie
                        .lam
                        .infer_actions(&to_tensor(&pair, 1, 2, Device::Cpu))
                        .int64_value(&[0, 0]);
                    assert_eq!(
                        latents.int64_value(&[i as i64]),
                        alone,
                        "{action} case {i} step {k}"
                    );
                    before = after;
                }
            }
        }
    }
}
