//! One training step's loss and metrics for each network, and the held-out evaluation.

use tch::{Kind, Tensor};

use super::run::{Batch, Stage};
use crate::model::dynamics::{ActionSource, ContextRead, Scrolled};
use crate::model::scroll::column_shifts;
use crate::model::{Genie, Rows, frames_to_f32};

/// Loss and metrics of one batch for the stage's network.
/// The third item is the network's quantizer output (for code restarts); the fourth the term of
/// the loss that is a weighted mean and what it was divided by (see
/// [`crate::model::DynamicsLoss::denominator`]). `training`: a step of training, where the
/// dynamics model reads its context as its config says (`dynamics.context_noise`,
/// `dynamics.whole_context`); held-out evaluation reads the clips as recorded, so its figures
/// compare across runs, and adds the accuracy with whole frames before the guessed ones, as
/// recorded and as the model itself guessed them.
pub(super) fn stage_loss(
    genie: &Genie,
    stage: Stage,
    batch: &Batch,
    rows: Rows,
    training: bool,
) -> (
    Tensor,
    serde_json::Value,
    Option<crate::model::vq::VqOutput>,
    Option<(Tensor, Tensor)>,
) {
    let frames = frames_to_f32(&batch.frames);
    match stage {
        Stage::Tokenizer => {
            let out = genie.tokenizer.loss(&frames);
            (
                out.loss,
                serde_json::to_value(out.metrics).expect("metrics"),
                Some(out.vq),
                None,
            )
        }
        Stage::Lam => {
            let out = genie.lam.loss(&frames);
            (
                out.loss,
                serde_json::to_value(out.metrics).expect("metrics"),
                Some(out.vq),
                Some((out.reconstruction, out.denominator)),
            )
        }
        Stage::Decoder => {
            let (loss, metrics) = genie.tokenizer.decoder_loss(&frames);
            (
                loss,
                serde_json::to_value(metrics).expect("metrics"),
                None,
                None,
            )
        }
        Stage::Camera => {
            // The head reads pixels: no tokens needed.
            let actions = tch::no_grad(|| dynamics_actions(genie, batch, &frames));
            let shifts = batch_shifts(genie, batch);
            let scrolled = Scrolled {
                shifts: &shifts,
                frames: &frames,
                patch: genie.config.tokenizer.patch,
            };
            let (loss, calls) = genie
                .dynamics
                .camera_loss(&actions, scrolled)
                .expect("a camera stage runs on a model that scrolls");
            // The counts each way as well as the recall: the held-out figures are means over
            // batches, and the ratio of two means is the recall over all of them.
            let mut metrics = serde_json::json!({
                "camera_loss": f64::try_from(loss.detach()).unwrap_or(f64::NAN),
                "camera_left_moves": calls.moves[0],
                "camera_left_called": calls.called[0],
                "camera_right_moves": calls.moves[1],
                "camera_right_called": calls.called[1],
            });
            if let Some(recall) = calls.recall() {
                metrics["camera_recall"] = recall.into();
            }
            (loss, metrics, None, None)
        }
        Stage::Dynamics => {
            let (ids, actions) = tch::no_grad(|| {
                (
                    genie.tokenizer.encode(&frames),
                    dynamics_actions(genie, batch, &frames),
                )
            });
            // A model that scrolls learns in each clip's last view: where the picture scrolled
            // is read from the frames.
            let shifts = genie
                .config
                .dynamics
                .scroll
                .then(|| batch_shifts(genie, batch));
            let scrolled = shifts.as_deref().map(|shifts| Scrolled {
                shifts,
                frames: &frames,
                patch: genie.config.tokenizer.patch,
            });
            let context = if training {
                ContextRead::training(&genie.config.dynamics)
            } else {
                ContextRead::AS_RECORDED
            };
            let out = genie
                .dynamics
                .loss_scrolled(&ids, &actions, scrolled, rows, context);
            let mut metrics = serde_json::to_value(out.metrics).expect("metrics");
            if !training {
                // As a dream reads: whole frames before the ones guessed (the Genie mask hides
                // some of every frame after the first).
                let whole = genie.dynamics.loss_scrolled(
                    &ids,
                    &actions,
                    scrolled,
                    rows,
                    ContextRead::WHOLE,
                );
                metrics["whole_context_accuracy"] = whole.metrics.accuracy.into();
                // As a dream reads its own past: whole frames the model guessed itself.
                let own =
                    genie
                        .dynamics
                        .loss_scrolled(&ids, &actions, scrolled, rows, ContextRead::OWN);
                metrics["own_context_accuracy"] = own.metrics.accuracy.into();
            }
            (
                out.loss.shallow_clone(),
                metrics,
                None,
                Some((out.loss, out.denominator)),
            )
        }
    }
}

/// Where the picture of each clip of the batch scrolled, in columns ([`column_shifts`]).
fn batch_shifts(genie: &Genie, batch: &Batch) -> Vec<Vec<i64>> {
    let (b, t) = (batch.frames.size()[0], batch.frames.size()[1]);
    let bytes = Vec::<u8>::try_from(batch.frames.to_device(tch::Device::Cpu).flatten(0, -1))
        .expect("u8 frames");
    column_shifts(&bytes, b as usize, t as usize, genie.config.tokenizer.patch)
}

/// Tokens one batch feeds the trained network (for throughput figures).
pub(super) fn batch_tokens(genie: &Genie, stage: Stage, frames: &Tensor) -> f64 {
    let (b, t) = (frames.size()[0], frames.size()[1]);
    let per_frame = match stage {
        Stage::Tokenizer | Stage::Decoder => genie.config.tokenizer.tokens_per_frame(),
        Stage::Lam => genie.config.lam.patches_per_frame(),
        Stage::Dynamics | Stage::Camera => genie.config.dynamics.tokens_per_frame,
    };
    (b * t * per_frame) as f64
}

/// The batch with a random half of its clips mirrored left to right (`lam.mirror_clips`); the
/// actions stay as they were (the LAM never reads them).
pub(super) fn mirror_half(batch: &Batch, rows: Rows) -> Batch {
    let b = batch.frames.size()[0];
    let pick = rows
        .rand(&[b], batch.frames.device())
        .lt(0.5)
        .view([b, 1, 1, 1, 1]);
    Batch {
        frames: batch.frames.flip([3]).where_self(&pick, &batch.frames),
        actions: batch.actions.shallow_clone(),
    }
}

/// Mean of each numeric metric over the held-out batches (no gradients).
pub fn evaluate(genie: &Genie, stage: Stage, held_out: &[Batch]) -> serde_json::Value {
    let mut sums = serde_json::Map::new();
    tch::no_grad(|| {
        for batch in held_out {
            let rows = Rows::whole(batch.frames.size()[0]);
            let (_, metrics, _, _) = stage_loss(genie, stage, batch, rows, false);
            flatten_into(&mut sums, "", &metrics);
        }
    });
    let n = held_out.len().max(1) as f64;
    serde_json::Value::Object(
        sums.into_iter()
            .map(|(k, v)| (k, serde_json::json!(v.as_f64().unwrap_or(f64::NAN) / n)))
            .collect(),
    )
}

fn flatten_into(
    sums: &mut serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    value: &serde_json::Value,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                flatten_into(sums, &key, v);
            }
        }
        serde_json::Value::Number(x) => {
            let old = sums.get(prefix).and_then(|v| v.as_f64()).unwrap_or(0.0);
            sums.insert(
                prefix.to_owned(),
                serde_json::json!(old + x.as_f64().unwrap_or(f64::NAN)),
            );
        }
        _ => {}
    }
}

/// The actions the dynamics model is trained on: the clip's game actions for a Game-conditioned
/// model (`--oracle-actions`), the LAM's latent actions inferred from `frames` otherwise.
///
/// # Shapes
/// `frames` [B, T, H, W, 3] f32 → [B, T−1] i64.
fn dynamics_actions(genie: &Genie, batch: &Batch, frames: &Tensor) -> Tensor {
    if genie.config.dynamics.actions == ActionSource::Game {
        let t = batch.actions.size()[1];
        batch.actions.narrow(1, 0, t - 1).to_kind(Kind::Int64)
    } else {
        genie.lam.infer_actions(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::tests::tiny_config;
    use tch::Device;

    #[test]
    fn a_game_action_model_trains_on_the_clips_actions_and_a_latent_one_on_the_lams() {
        for source in [ActionSource::Latent, ActionSource::Game] {
            let mut config = tiny_config();
            config.dynamics.actions = source;
            let genie = Genie::new(config, Device::Cpu).unwrap();
            tch::manual_seed(1);
            let frames = Tensor::randint(256, [2, 3, 16, 16, 3], (Kind::Uint8, Device::Cpu));
            let clip_actions = [3u8, 5, 0, 1, 2, 7];
            let batch = Batch {
                frames: frames.shallow_clone(),
                actions: Tensor::from_slice(&clip_actions).view([2, 3]),
            };
            // Compared without the training loss: its MaskGIT mask comes from libtorch's global
            // generator, which tests running in parallel draw from too.
            let frames = frames_to_f32(&frames);
            let used = tch::no_grad(|| dynamics_actions(&genie, &batch, &frames));
            let used = Vec::<i64>::try_from(used.flatten(0, -1)).unwrap();
            match source {
                ActionSource::Latent => {
                    let inferred = genie.lam.infer_actions(&frames);
                    let inferred = Vec::<i64>::try_from(inferred.flatten(0, -1)).unwrap();
                    assert_eq!(used, inferred, "the LAM's actions, not the clip's");
                }
                ActionSource::Game => assert_eq!(used, [3, 5, 1, 2], "the clip's actions"),
            }
            // And the training step runs on either.
            let loss = stage_loss(
                &genie,
                Stage::Dynamics,
                &batch,
                Rows::whole(batch.frames.size()[0]),
                true,
            )
            .1["loss"]
                .as_f64()
                .unwrap();
            assert!(loss.is_finite());
        }
    }

    #[test]
    fn mirroring_flips_about_half_the_clips_whole_and_leaves_the_rest() {
        tch::manual_seed(7);
        let (b, t, side) = (64, 3, 4);
        let frames = Tensor::randint(256, [b, t, side, side, 3], (Kind::Uint8, Device::Cpu));
        let batch = Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([b, t], (Kind::Uint8, Device::Cpu)),
        };
        let out = mirror_half(&batch, Rows::whole(batch.frames.size()[0]));
        assert_eq!(out.frames.size(), frames.size());
        let flipped = frames.flip([3]);
        let mut mirrored = 0;
        for i in 0..b {
            let (got, same, flip) = (out.frames.get(i), frames.get(i), flipped.get(i));
            if got.equal(&flip) {
                mirrored += 1;
                // Random frames are not their own mirror: this counts real flips.
                assert!(!got.equal(&same));
            } else {
                assert!(
                    got.equal(&same),
                    "clip {i} is neither itself nor its mirror"
                );
            }
        }
        assert!((16..=48).contains(&mirrored), "{mirrored} of {b} mirrored");
    }
}
