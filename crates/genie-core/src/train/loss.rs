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
            let ids = if training && genie.config.dynamics.still_pictures > 0.0 {
                random_codes_where_still(&ids, &frames, genie.config.dynamics.vocab_size)
            } else {
                ids
            };
            let ids = if training && genie.config.dynamics.still_codes > 0.0 {
                let cfg = &genie.config.dynamics;
                random_codes_where_unchanged(&ids, cfg.still_codes, cfg.vocab_size, rows)
            } else {
                ids
            };
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

/// The batch with about `share` of its clips replaced by still pictures
/// (`dynamics.still_pictures`): the clip's first frame with its `patch` × `patch` patches in a
/// random order, held for every frame of the clip.
pub(super) fn still_pictures(batch: &Batch, share: f64, patch: i64, rows: Rows) -> Batch {
    let unchanged = || Batch {
        frames: batch.frames.shallow_clone(),
        actions: batch.actions.shallow_clone(),
    };
    let (b, t, h, w, c) = match batch.frames.size()[..] {
        [b, t, h, w, c] => (b, t, h, w, c),
        _ => return unchanged(),
    };
    if patch <= 0 || h % patch != 0 || w % patch != 0 {
        return unchanged();
    }
    let device = batch.frames.device();
    let (gh, gw) = (h / patch, w / patch);
    let places = gh * gw;
    let patches = batch
        .frames
        .select(1, 0)
        .view([b, gh, patch, gw, patch, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, places, patch, patch, c]);
    let order = rows.rand(&[b, places], device).argsort(-1, false);
    let shuffled = patches
        .gather(
            1,
            &order
                .view([b, places, 1, 1, 1])
                .expand([b, places, patch, patch, c], false),
            false,
        )
        .view([b, gh, gw, patch, patch, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, 1, h, w, c])
        .expand([b, t, h, w, c], false);
    let pick = rows.rand(&[b], device).lt(share).view([b, 1, 1, 1, 1]);
    Batch {
        frames: shuffled.where_self(&pick, &batch.frames).contiguous(),
        actions: batch.actions.shallow_clone(),
    }
}

/// `ids` [B, T, N] with every clip whose `frames` [B, T, H, W, C] never change (the still
/// pictures) given codes drawn at random, one per place, held for every frame: a picture from
/// outside the game reaches the model as codes its levels rarely use, and a still clip of common
/// codes teaches it to keep only those.
fn random_codes_where_still(ids: &Tensor, frames: &Tensor, vocab: i64) -> Tensor {
    let (b, t, n) = match ids.size()[..] {
        [b, t, n] => (b, t, n),
        _ => return ids.shallow_clone(),
    };
    let still = (frames - frames.narrow(1, 0, 1))
        .abs()
        .flatten(1, -1)
        .amax([1], false)
        .eq(0.0)
        .view([b, 1, 1]);
    let codes =
        Tensor::randint(vocab, [b, 1, n], (Kind::Int64, ids.device())).expand([b, t, n], false);
    codes.where_self(&still, ids)
}

/// `ids` [B, T, N] with about `share` of the clips given, at every place whose code never
/// changes over the clip, a code drawn at random and held for the whole clip
/// (`dynamics.still_codes`); what changes keeps its codes.
fn random_codes_where_unchanged(ids: &Tensor, share: f64, vocab: i64, rows: Rows) -> Tensor {
    let (b, t, n) = match ids.size()[..] {
        [b, t, n] => (b, t, n),
        _ => return ids.shallow_clone(),
    };
    let device = ids.device();
    let unchanged = ids.eq_tensor(&ids.narrow(1, 0, 1)).all_dim(1, true); // [B, 1, N]
    let picked = rows.rand(&[b], device).lt(share).view([b, 1, 1]);
    let codes = Tensor::randint(vocab, [b, 1, n], (Kind::Int64, device));
    codes
        .expand([b, t, n], false)
        .where_self(&unchanged.logical_and(&picked), ids)
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
    fn a_still_picture_is_its_clips_first_frame_shuffled_by_patches_and_held() {
        tch::manual_seed(5);
        let (b, t, side, patch) = (3, 4, 16, 8);
        let frames = Tensor::randint(256, [b, t, side, side, 3], (Kind::Uint8, Device::Cpu));
        let batch = Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([b, t], (Kind::Uint8, Device::Cpu)),
        };
        let rows = Rows::whole(b);
        let out = still_pictures(&batch, 1.0, patch, rows);
        assert_eq!(out.frames.size(), frames.size());
        let patches = |frame: Tensor| {
            let mut all: Vec<Vec<u8>> = (0..side / patch)
                .flat_map(|y| (0..side / patch).map(move |x| (y, x)))
                .map(|(y, x)| {
                    let p = frame
                        .narrow(0, y * patch, patch)
                        .narrow(1, x * patch, patch)
                        .contiguous();
                    Vec::<u8>::try_from(p.flatten(0, -1)).unwrap()
                })
                .collect();
            all.sort();
            all
        };
        for i in 0..b {
            let first = out.frames.get(i).get(0);
            for k in 1..t {
                assert!(out.frames.get(i).get(k).equal(&first), "clip {i} still");
            }
            // The same patches as the real first frame, moved about.
            assert_eq!(patches(first), patches(frames.get(i).get(0)), "clip {i}");
        }
        // None of the share: the batch as it was.
        let out = still_pictures(&batch, 0.0, patch, rows);
        assert!(out.frames.equal(&frames));
    }

    #[test]
    fn what_stands_still_gets_codes_drawn_at_random_and_what_moves_keeps_its_own() {
        tch::manual_seed(6);
        // Two clips of 3 frames, 4 places: place 1 changes in clip 0, place 3 in clip 1.
        let ids = Tensor::from_slice(&[
            5i64, 6, 7, 8, 5, 9, 7, 8, 5, 10, 7, 8, //
            1, 2, 3, 4, 1, 2, 3, 11, 1, 2, 3, 12,
        ])
        .view([2, 3, 4]);
        let out = random_codes_where_unchanged(&ids, 1.0, 1024, Rows::whole(2));
        let at = |t: &Tensor, b: i64, f: i64, p: i64| t.int64_value(&[b, f, p]);
        for (b, moving) in [(0, 1), (1, 3)] {
            for p in 0..4 {
                for f in 0..3 {
                    if p == moving {
                        assert_eq!(at(&out, b, f, p), at(&ids, b, f, p), "what moves keeps");
                    } else {
                        assert_eq!(at(&out, b, f, p), at(&out, b, 0, p), "held over the clip");
                    }
                }
            }
        }
        // Codes drawn from 1,024: some of the 6 still places differ from what they were.
        let drawn = (0..2)
            .flat_map(|b| (0..4).map(move |p| (b, p)))
            .filter(|&(b, p)| at(&out, b, 0, p) != at(&ids, b, 0, p))
            .count();
        assert!(drawn >= 4, "{drawn} of 6 redrawn");
        let none = random_codes_where_unchanged(&ids, 0.0, 1024, Rows::whole(2));
        assert!(none.equal(&ids));
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
