//! The measures that need no labels: how well the tokenizer reconstructs clips, how close a dream
//! driven by the LAM's own actions comes to the real frames four frames ahead and how much
//! closer than one driven by random actions (ΔtPSNR), and how the LAM uses its codes. `genie
//! eval` takes them on the platformer's held-out levels; `genie eval --data DIR` on any dataset,
//! imported video of another game among them, where they are all that can be measured.
//!
//! Video imported with the actions it was recorded with (`genie data import --actions`) can be
//! measured for control too ([`video_control`]): with the player's colour given, action
//! fidelity and its ceiling on the clips, as on the platformer.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::{Device, Tensor};

use super::control::{Misses, direction};
use super::measures::psnr_capped;
use super::run::{EvalOptions, rollout, rollout_ids, to_tensor};
use crate::data::{DataError, Dataset};
use crate::game::{Action, FRAME_BYTES, find_colour_within};
use crate::model::{Genie, frames_to_bytes};
use crate::session::keys::KeyMap;

/// The label-free measures of a set of clips, accumulated batch by batch.
#[derive(Debug, Default)]
pub struct VideoMeasures {
    /// Per frame, the tokenizer's reconstruction PSNR.
    pub tokenizer_psnr: Vec<f64>,
    /// Per clip, PSNR of the last dreamed frame against the real one: driven by the LAM's
    /// actions, and by random ones.
    pub rollout: Vec<f64>,
    pub rollout_random: Vec<f64>,
    /// Every latent action the LAM inferred, per clip and transition in order.
    pub latents: Vec<usize>,
}

impl VideoMeasures {
    /// Measures `b` clips of `len` frames (`bytes`: u8 [b, len, 64, 64, 3]). The dream starts
    /// from the first `opts.prompt_frames` frames and runs `opts.horizon`; `conditioning`
    /// [b, len − 1] replaces the LAM's actions as what drives it (a model trained on game
    /// actions).
    pub fn add_batch(
        &mut self,
        genie: &Genie,
        bytes: &[u8],
        (b, len): (usize, usize),
        opts: &EvalOptions,
        conditioning: Option<Tensor>,
        rng: &mut impl Rng,
    ) {
        let device = genie.tokenizer_vs.device();
        let frames = to_tensor(bytes, b, len, device);
        let ids = genie.tokenizer.encode(&frames); // [B, T, N]
        let recon = frames_to_bytes(&genie.tokenizer.decode(&ids));
        self.tokenizer_psnr.extend(
            recon
                .chunks(FRAME_BYTES)
                .zip(bytes.chunks(FRAME_BYTES))
                .map(|(a, r)| psnr_capped(a, r)),
        );
        let inferred = genie.lam.infer_actions(&frames); // [B, T-1]
        self.latents.extend(
            Vec::<i64>::try_from(inferred.flatten(0, -1).to_device(Device::Cpu))
                .expect("i64 actions")
                .into_iter()
                .map(|a| a as usize),
        );
        let conditioning = conditioning.unwrap_or(inferred);
        let p = opts.prompt_frames as i64;
        let prompt_ids = ids.narrow(1, 0, p);
        let prompt_actions = conditioning.narrow(1, 0, p - 1);
        let clip_bytes = len * FRAME_BYTES;
        let real_last: Vec<&[u8]> = bytes
            .chunks(clip_bytes)
            .map(|c| &c[(len - 1) * FRAME_BYTES..])
            .collect();
        let driven: Vec<Tensor> = (0..opts.horizon as i64)
            .map(|k| conditioning.select(1, p - 1 + k))
            .collect();
        let random: Vec<Tensor> = (0..opts.horizon)
            .map(|_| {
                let a: Vec<i64> = (0..b)
                    .map(|_| rng.random_range(0..genie.config.lam.num_actions))
                    .collect();
                Tensor::from_slice(&a).to_device(device)
            })
            .collect();
        for (actions, out) in [
            (&driven, &mut self.rollout),
            (&random, &mut self.rollout_random),
        ] {
            let last = frames_to_bytes(&rollout(
                genie,
                &prompt_ids,
                &prompt_actions,
                actions.len(),
                &mut |t, _| actions[t].shallow_clone(),
                opts,
            ));
            out.extend(
                last.chunks(FRAME_BYTES)
                    .zip(&real_last)
                    .map(|(a, r)| psnr_capped(a, r)),
            );
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `genie eval --data DIR`.
#[derive(Debug, Clone, Serialize)]
pub struct VideoReport {
    pub data: String,
    pub labelled: bool,
    pub clips: usize,
    pub tokenizer_psnr: f64,
    pub rollout_psnr_t4: f64,
    pub rollout_psnr_t4_random: f64,
    pub delta_psnr_t4: f64,
    /// Share of the LAM's inferred actions that are each latent.
    pub latent_usage: Vec<f64>,
    /// Entropy of that usage in bits (3 when all 8 are used alike, 0 when one is).
    pub latent_entropy_bits: f64,
    /// Action fidelity and its ceiling, on labelled video with the player's colour given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<VideoControl>,
    /// Measures that are not taken here, and what they need.
    pub needs_labels: Vec<&'static str>,
    pub seconds: f64,
}

/// The label-free measures on up to `opts.clips` clips of `dataset` (each cut to
/// `prompt_frames + horizon` frames from its start).
pub fn evaluate_video(
    genie: &Genie,
    dataset: &Dataset,
    opts: &EvalOptions,
    player: Option<PlayerColour>,
) -> Result<VideoReport, DataError> {
    let start = std::time::Instant::now();
    let len = opts.prompt_frames + opts.horizon;
    if dataset.clip_len() < len {
        return Err(DataError::Manifest {
            path: dataset.dir().join(crate::data::spec::MANIFEST),
            reason: format!(
                "clips of {} frames are shorter than the {len} an evaluation needs (prompt {} + \
                 horizon {})",
                dataset.clip_len(),
                opts.prompt_frames,
                opts.horizon
            ),
        });
    }
    let clips = opts.clips.min(dataset.len());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut m = VideoMeasures::default();
    tch::no_grad(|| -> Result<(), DataError> {
        for first in (0..clips).step_by(opts.batch.max(1)) {
            let b = opts.batch.max(1).min(clips - first);
            let mut bytes = Vec::with_capacity(b * len * FRAME_BYTES);
            for i in first..first + b {
                let clip = dataset.get(i)?;
                bytes.extend_from_slice(&clip.frames[..len * FRAME_BYTES]);
            }
            m.add_batch(genie, &bytes, (b, len), opts, None, &mut rng);
        }
        Ok(())
    })?;
    let control = match player {
        Some(player) => video_control(genie, dataset, opts, player)?,
        None => None,
    };
    let needs_labels = match (dataset.manifest().labelled, &control) {
        (false, _) => vec![
            "action_fidelity and its ceiling (video imported with --actions, and --player-colour)",
            "calibration (genie calibrate --data on video imported with --actions)",
            "sessions (the game itself)",
        ],
        (true, None) => vec![
            "action_fidelity and its ceiling (--player-colour)",
            "sessions (the game itself)",
        ],
        (true, Some(_)) => vec!["sessions (the game itself)"],
    };
    let k = genie.config.lam.num_actions.max(1) as usize;
    let mut counts = vec![0usize; k];
    for &l in &m.latents {
        counts[l.min(k - 1)] += 1;
    }
    let total = m.latents.len().max(1) as f64;
    let latent_usage: Vec<f64> = counts.iter().map(|&c| c as f64 / total).collect();
    let latent_entropy_bits = latent_usage
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -p * p.log2())
        .sum::<f64>();
    Ok(VideoReport {
        data: dataset.dir().display().to_string(),
        labelled: dataset.manifest().labelled,
        clips,
        tokenizer_psnr: mean(&m.tokenizer_psnr),
        rollout_psnr_t4: mean(&m.rollout),
        rollout_psnr_t4_random: mean(&m.rollout_random),
        delta_psnr_t4: mean(&m.rollout) - mean(&m.rollout_random),
        latent_usage,
        latent_entropy_bits,
        control,
        needs_labels,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// How to find the player of an imported game: its colour, and how far (L1, 0–765) a decoded
/// pixel may be from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlayerColour {
    pub rgb: [u8; 3],
    pub tolerance: u32,
}

impl PlayerColour {
    fn find(&self, frame: &[u8]) -> Option<(f32, f32)> {
        find_colour_within(frame, self.rgb, self.tolerance)
    }
}

/// Control on labelled video ([`video_control`]).
#[derive(Debug, Clone, Serialize)]
pub struct VideoControl {
    pub player: PlayerColour,
    /// Windows of `prompt_frames + horizon` frames whose last `horizon` transitions hold one
    /// action, and of those the ones where the player was found in the real frames at both ends
    /// (up to `clips` of them per action are the cases measured).
    pub windows_held: usize,
    pub windows_found: usize,
    /// Per action, plus `mean` over the actions with cases: how often the dream, given the
    /// checkpoint's latents for the action (its calibration, as in play), moved the player the
    /// way the real one went (sign of Δx and Δy over the horizon).
    pub action_fidelity: BTreeMap<String, f64>,
    pub action_fidelity_cases: BTreeMap<String, usize>,
    pub action_fidelity_misses: BTreeMap<String, Misses>,
    /// The same with the latents the LAM infers from the real frames: what a perfect key →
    /// latent map could reach.
    pub action_fidelity_ceiling: BTreeMap<String, f64>,
    /// The share of cases in which the real player did not move: what a dream that never moves
    /// it would score (where a key often does nothing, as against a wall, this is high).
    pub action_fidelity_still: BTreeMap<String, f64>,
}

/// One case: clip, the index of its last prompt frame, the action held, whether that frame is
/// the key's press, and where the real player went.
struct Window {
    clip: usize,
    start: usize,
    action: Action,
    pressed: bool,
    want: (i8, i8),
}

/// Action fidelity on a labelled dataset: in each clip, windows of `opts.prompt_frames` real
/// frames then `opts.horizon` more while one action is held (non-overlapping, at most
/// `opts.clips` per action); the dream starts from the prompt (driven through it by the LAM's
/// actions, as in the label-free rollout) and dreams the horizon with the action's latents
/// ([`KeyMap`], press latent on a key's first frame) and, for the ceiling, with the LAM's. `None`
/// for unlabelled video.
pub fn video_control(
    genie: &Genie,
    dataset: &Dataset,
    opts: &EvalOptions,
    player: PlayerColour,
) -> Result<Option<VideoControl>, DataError> {
    if !dataset.manifest().labelled {
        return Ok(None);
    }
    let (p, h) = (opts.prompt_frames, opts.horizon);
    let len = p + h;
    let mut windows: Vec<Window> = Vec::new();
    let (mut held, mut found, mut per_action) = (0, 0, [0usize; Action::ALL.len()]);
    for clip in 0..dataset.len() {
        if per_action.iter().all(|&n| n >= opts.clips) {
            break;
        }
        let c = dataset.get(clip)?;
        for start in (p - 1..c.len().saturating_sub(h)).step_by(h) {
            let actions = &c.actions[start..start + h];
            let Some(action) = Action::ALL.get(actions[0] as usize).copied() else {
                continue;
            };
            if actions.iter().any(|&a| a != actions[0]) {
                continue;
            }
            held += 1;
            let (Some(from), Some(to)) =
                (player.find(c.frame(start)), player.find(c.frame(start + h)))
            else {
                continue;
            };
            found += 1;
            if per_action[action as usize] >= opts.clips {
                continue;
            }
            per_action[action as usize] += 1;
            windows.push(Window {
                clip,
                start,
                action,
                pressed: start == 0 || c.actions[start - 1] != actions[0],
                want: direction(from, to),
            });
        }
    }
    let keys = KeyMap::new(&genie.config);
    let device = genie.tokenizer_vs.device();
    let n = Action::ALL.len();
    let (mut agree, mut ceiling) = (vec![(0usize, 0usize); n], vec![(0usize, 0usize); n]);
    let mut still = vec![(0usize, 0usize); n];
    for w in &windows {
        let slot = &mut still[w.action as usize];
        slot.0 += usize::from(w.want == (0, 0));
        slot.1 += 1;
    }
    let mut misses = vec![Misses::default(); n];
    tch::no_grad(|| -> Result<(), DataError> {
        for batch in windows.chunks(opts.batch.max(1)) {
            let b = batch.len();
            let mut bytes = Vec::with_capacity(b * len * FRAME_BYTES);
            for w in batch {
                let c = dataset.get(w.clip)?;
                let first = w.start + 1 - p;
                bytes
                    .extend_from_slice(&c.frames[first * FRAME_BYTES..(first + len) * FRAME_BYTES]);
            }
            let frames = to_tensor(&bytes, b, len, device);
            let ids = genie.tokenizer.encode(&frames);
            let inferred = genie.lam.infer_actions(&frames); // [B, len − 1]
            let prompt_ids = ids.narrow(1, 0, p as i64);
            let prompt_actions = inferred.narrow(1, 0, p as i64 - 1);
            let starts = frames_to_bytes(&genie.tokenizer.decode(&prompt_ids).select(1, -1));
            let actions: Vec<Action> = batch.iter().map(|w| w.action).collect();
            let mut keyed = |t: usize, last: &Tensor| {
                let pressed: Vec<bool> = batch.iter().map(|w| t == 0 && w.pressed).collect();
                let picked = keys.pick(genie.adapter.as_ref(), last, &actions, &pressed);
                Tensor::from_slice(&picked).to_device(device)
            };
            let mut lam = |t: usize, _: &Tensor| inferred.select(1, (p - 1 + t) as i64);
            let runs: [(&mut dyn FnMut(usize, &Tensor) -> Tensor, bool); 2] =
                [(&mut keyed, false), (&mut lam, true)];
            for (latent, is_ceiling) in runs {
                let ends = frames_to_bytes(&rollout(
                    genie,
                    &prompt_ids,
                    &prompt_actions,
                    h,
                    latent,
                    opts,
                ));
                for ((w, start), end) in batch
                    .iter()
                    .zip(starts.chunks(FRAME_BYTES))
                    .zip(ends.chunks(FRAME_BYTES))
                {
                    let got = player
                        .find(start)
                        .zip(player.find(end))
                        .map(|(a, b)| direction(a, b));
                    let slot =
                        &mut if is_ceiling { &mut ceiling } else { &mut agree }[w.action as usize];
                    slot.1 += 1;
                    let missed = if is_ceiling {
                        got != Some(w.want)
                    } else {
                        misses[w.action as usize].count(w.want, got)
                    };
                    slot.0 += usize::from(!missed);
                }
            }
        }
        Ok(())
    })?;
    let shares = |counts: &[(usize, usize)]| {
        let mut out = BTreeMap::new();
        let mut seen = Vec::new();
        for action in Action::ALL {
            let (yes, all) = counts[action as usize];
            if all > 0 {
                let share = yes as f64 / all as f64;
                out.insert(action.name().to_owned(), share);
                seen.push(share);
            }
        }
        out.insert("mean".into(), mean(&seen));
        out
    };
    Ok(Some(VideoControl {
        player,
        windows_held: held,
        windows_found: found,
        action_fidelity: shares(&agree),
        action_fidelity_cases: Action::ALL
            .into_iter()
            .map(|a| (a.name().to_owned(), agree[a as usize].1))
            .collect(),
        action_fidelity_misses: Action::ALL
            .into_iter()
            .map(|a| (a.name().to_owned(), misses[a as usize]))
            .collect(),
        action_fidelity_ceiling: shares(&ceiling),
        action_fidelity_still: shares(&still),
    }))
}

/// Rows of a contact sheet: for `clips` clips spread over the dataset, the real clip over its
/// dream, which starts from the clip's first `opts.prompt_frames` frames and dreams the rest
/// with the keys the video was recorded with (labelled video, through the checkpoint's key map
/// as in play) or else the LAM's actions read from the real frames.
pub fn video_sheet(
    genie: &Genie,
    dataset: &Dataset,
    clips: usize,
    opts: &EvalOptions,
) -> Result<Vec<Vec<Vec<u8>>>, DataError> {
    let (len, p) = (dataset.clip_len(), opts.prompt_frames);
    if len <= p || dataset.is_empty() {
        return Ok(Vec::new());
    }
    let device = genie.tokenizer_vs.device();
    let keys = KeyMap::new(&genie.config);
    let labelled = dataset.manifest().labelled;
    let every = (dataset.len() / clips.max(1)).max(1);
    let mut rows = Vec::new();
    tch::no_grad(|| -> Result<(), DataError> {
        for i in (0..dataset.len()).step_by(every).take(clips) {
            let clip = dataset.get(i)?;
            let frames = to_tensor(&clip.frames, 1, len, device);
            let ids = genie.tokenizer.encode(&frames);
            let inferred = genie.lam.infer_actions(&frames);
            let mut latent = |t: usize, last: &Tensor| {
                let k = p - 1 + t;
                match Action::ALL.get(clip.actions[k] as usize) {
                    Some(&action) if labelled => {
                        let pressed = k == 0 || clip.actions[k - 1] != clip.actions[k];
                        let picked = keys.pick(genie.adapter.as_ref(), last, &[action], &[pressed]);
                        Tensor::from_slice(&picked).to_device(device)
                    }
                    _ => inferred.select(1, k as i64),
                }
            };
            let all = rollout_ids(
                genie,
                &ids.narrow(1, 0, p as i64),
                &inferred.narrow(1, 0, p as i64 - 1),
                len - p,
                &mut latent,
                opts,
            );
            let dreamed = frames_to_bytes(&genie.tokenizer.decode(&all));
            rows.push(
                clip.frames
                    .chunks(FRAME_BYTES)
                    .map(<[u8]>::to_vec)
                    .collect(),
            );
            rows.push(dreamed.chunks(FRAME_BYTES).map(<[u8]>::to_vec).collect());
        }
        Ok(())
    })?;
    Ok(rows)
}
