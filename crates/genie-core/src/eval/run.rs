//! The held-out evaluation of docs/design.md §5 (calibration is [`super::calibrate`]'s, the control
//! cases [`super::control`]'s).
//!
//! Every clip comes from a level seed at or above [`EVAL_SEED_START`], which training never
//! uses. Batched over clips: one tokenizer pass, one LAM pass, and MaskGIT rollouts of all clips
//! at once through the dynamics cache.
//!
//! - `tokenizer_psnr`: encode and decode each held-out frame.
//! - `rollout_psnr_t4`: from `prompt_frames` real frames, dream `horizon` frames driven by the
//!   latent actions the LAM infers from the real clip; PSNR of the last one against the real
//!   frame. `delta_psnr_t4` subtracts the same with uniformly random latent actions (Genie §3.2).
//! - `action_fidelity`: from a real game state, the real game and the dream get the same game
//!   action (through the calibration: a key pressed, then held) for `horizon` steps; a case
//!   agrees when the player, found by its unique colour, moves the same way in both (sign of Δx
//!   and of Δy, 1 px dead band), relative to the world: the camera's move over the frames (the
//!   game's; the dream's view moves for a model that scrolls) is added back, so a scroll is not
//!   motion.
//! - `action_reach`: on the same dreams, how far the dreamed player went the real one's way
//!   (per axis, over the cases where the real player moved: 1 is as far).
//! - `action_fidelity_ceiling`: the same cases, the dream given the latents the LAM infers from
//!   the real game's own next frames ([`super::ceiling`]).
//! - `lam_nmi`: normalised mutual information between inferred latent and true actions.
//! - `sessions`: whole sessions of human-like play, `idle`: whole sessions in which no key is
//!   pressed, and `held`: whole sessions in which one key is held, every key in turn, added by
//!   the CLI ([`super::sessions`]).

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde::Serialize;
use tch::{Device, Tensor};

use super::ceiling::action_fidelity_ceiling;
use super::measures::nmi;
use super::sessions::SessionReport;
use super::video::VideoMeasures;
use crate::data::{EVAL_SEED_START, PlayStyle, generate_clip_played};
use crate::game::FRAME_SIZE;
use crate::model::dynamics::ActionSource;
use crate::model::scroll::column_shifts;
use crate::model::{Genie, Rollout, SamplerConfig, SamplerRng, frames_to_f32, frames_to_u8};

use super::control::{KeyFidelity, Misses, Reach, action_fidelity};

#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub clips: usize,
    pub eval_seed_start: u64,
    /// Real frames the dream starts from.
    pub prompt_frames: usize,
    /// Frames dreamed before comparing (the t of PSNR@t).
    pub horizon: usize,
    pub sampler: SamplerConfig,
    pub seed: u64,
    /// Clips per batch through the networks.
    pub batch: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            clips: 64,
            eval_seed_start: EVAL_SEED_START,
            prompt_frames: 4,
            horizon: 4,
            sampler: SamplerConfig::default(),
            seed: 0,
            batch: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub tokenizer_psnr: f64,
    pub rollout_psnr_t4: f64,
    pub rollout_psnr_t4_random: f64,
    pub delta_psnr_t4: f64,
    /// Per game action name, plus `mean` over all eight.
    pub action_fidelity: BTreeMap<String, f64>,
    /// Cases per action in which the real player stayed alive and visible.
    pub action_fidelity_cases: BTreeMap<String, usize>,
    /// Per game action, how the cases that did not agree went wrong.
    pub action_fidelity_misses: BTreeMap<String, Misses>,
    /// Per game action, how far the dreamed player went the real one's way, along x and y
    /// ([`Reach`]: 1 as far; a key's fidelity counts only the way).
    pub action_reach: BTreeMap<String, Reach>,
    /// Per game action, plus `mean`: the fidelity of dreams given the latents the LAM infers
    /// from the real next frames, on the same cases (what a perfect key → latent map reaches).
    pub action_fidelity_ceiling: BTreeMap<String, f64>,
    pub action_fidelity_ceiling_misses: BTreeMap<String, Misses>,
    pub lam_nmi: f64,
    pub clips: usize,
    pub eval_seed_start: u64,
    pub horizon: usize,
    pub prompt_frames: usize,
    pub maskgit_steps: usize,
    pub seconds: f64,
    /// The session measures, where asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionReport>,
    /// The same measures over sessions in which no key is pressed, where asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<SessionReport>,
    /// The same measures over sessions of one key held, pooled and per key, where asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<SessionReport>,
}

/// Rows of game action ids (equal lengths L) as an i64 [rows, L] tensor on `device`.
pub(super) fn action_ids<'a>(rows: impl Iterator<Item = &'a [u8]>, device: Device) -> Tensor {
    let rows: Vec<&[u8]> = rows.collect();
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.iter().map(|&a| a as i64))
        .collect();
    Tensor::from_slice(&ids)
        .view([
            rows.len() as i64,
            rows.first().map_or(0, |r| r.len()) as i64,
        ])
        .to_device(device)
}

pub(super) fn to_tensor(frames: &[u8], batch: usize, len: usize, device: Device) -> Tensor {
    let s = FRAME_SIZE as i64;
    frames_to_f32(
        &Tensor::from_slice(frames)
            .view([batch as i64, len as i64, s, s, 3])
            .to_device(device),
    )
}

/// A batch of dreams after prompt tokens ([`rollout`]).
pub(super) struct Dream {
    /// The prompt's and the dreamed frames' tokens, [B, P + frames, N], each in its own view.
    pub ids: Tensor,
    /// The decoded last frame of each clip, [B, H, W, C].
    pub last: Tensor,
    /// Per row, how far its view moved over the dreamed frames in pixels (right positive; 0 for
    /// a model that does not scroll).
    pub moved: Vec<i32>,
}

/// Dreams `frames` frames after the prompt tokens, each driven by `latent(t, ids)`: the latents
/// [B] of the t-th dreamed frame, given the tokens [B, N] of the frame before.
/// `prompt_ids` [B, P, N]; `prompt_actions` [B, P−1].
pub(super) fn rollout(
    genie: &Genie,
    prompt_ids: &Tensor,
    prompt_actions: &Tensor,
    frames: usize,
    latent: &mut dyn FnMut(usize, &Tensor, Option<&Tensor>) -> Tensor,
    opts: &EvalOptions,
) -> Dream {
    let (b, p, _) = prompt_ids.size3().expect("[B, P, N]");
    let patch = genie.config.tokenizer.patch as i32;
    let mut moved = vec![0i32; b as usize];
    let mut rng = SamplerRng::seed_from_u64(opts.seed);
    tch::no_grad(|| {
        // A model that scrolls starts in the prompt's last view: where the prompt's picture
        // scrolled is read from its frames as the tokenizer draws them.
        let shifts = if genie.config.dynamics.scroll && p > 1 {
            let bytes = Vec::<u8>::try_from(
                frames_to_u8(&genie.tokenizer.decode(prompt_ids))
                    .to_device(Device::Cpu)
                    .flatten(0, -1),
            )
            .expect("u8 frames");
            column_shifts(&bytes, b as usize, p as usize, genie.config.tokenizer.patch)
        } else {
            Vec::new()
        };
        let mut rollout = Rollout::new(genie, b);
        let decoded = rollout.start(genie, prompt_ids, Some(prompt_actions), &shifts);
        let mut last_frame = decoded.select(1, p - 1);
        let mut ids = vec![prompt_ids.shallow_clone()];
        for t in 0..frames {
            let last = rollout.last().expect("a started rollout").shallow_clone();
            let action = latent(t, &last, rollout.shown());
            let (next, moves, frame) = rollout.step(genie, &action, &opts.sampler, &mut rng);
            for (total, step) in moved.iter_mut().zip(moves) {
                *total += step as i32 * patch;
            }
            ids.push(next.unsqueeze(1));
            last_frame = frame;
        }
        Dream {
            ids: Tensor::cat(&ids, 1),
            last: last_frame,
            moved,
        }
    })
}

/// Runs every measure on held-out levels.
pub fn evaluate(genie: &Genie, opts: &EvalOptions) -> EvalReport {
    let start = std::time::Instant::now();
    let device = genie.tokenizer_vs.device();
    let len = opts.prompt_frames + opts.horizon;
    let mut m = VideoMeasures::default();
    let mut truths = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    for first in (0..opts.clips).step_by(opts.batch.max(1)) {
        let b = opts.batch.min(opts.clips - first);
        let clips: Vec<_> = (first..first + b)
            .map(|i| {
                let (level, style) = (opts.eval_seed_start + i as u64, PlayStyle::default());
                let difficulty = crate::game::DEFAULT_DIFFICULTY;
                generate_clip_played(level, difficulty, len, i as u64, style, genie.config.game)
            })
            .collect();
        let bytes: Vec<u8> = clips
            .iter()
            .flat_map(|c| c.frames.iter().copied())
            .collect();
        for clip in &clips {
            truths.extend(clip.actions[..len - 1].iter().map(|&a| a as usize));
        }
        // What the dynamics model is driven by: the LAM's actions, or the game's for a model
        // trained on them (`ActionSource::Game`).
        let conditioning = (genie.config.dynamics.actions == ActionSource::Game)
            .then(|| action_ids(clips.iter().map(|c| &c.actions[..len - 1]), device));
        m.add_batch(genie, &bytes, (b, len), opts, conditioning, &mut rng);
    }
    let KeyFidelity {
        fidelity,
        cases,
        misses,
        reach,
    } = action_fidelity(genie, opts);
    let (ceiling, ceiling_misses) = action_fidelity_ceiling(genie, opts);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    EvalReport {
        tokenizer_psnr: mean(&m.tokenizer_psnr),
        rollout_psnr_t4: mean(&m.rollout),
        rollout_psnr_t4_random: mean(&m.rollout_random),
        delta_psnr_t4: mean(&m.rollout) - mean(&m.rollout_random),
        action_fidelity: fidelity,
        action_fidelity_cases: cases,
        action_fidelity_misses: misses,
        action_reach: reach,
        action_fidelity_ceiling: ceiling,
        action_fidelity_ceiling_misses: ceiling_misses,
        lam_nmi: nmi(&m.latents, &truths),
        clips: opts.clips,
        eval_seed_start: opts.eval_seed_start,
        horizon: opts.horizon,
        prompt_frames: opts.prompt_frames,
        maskgit_steps: opts.sampler.steps,
        seconds: start.elapsed().as_secs_f64(),
        sessions: None,
        idle: None,
        held: None,
    }
}
