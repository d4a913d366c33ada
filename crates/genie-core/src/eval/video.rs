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
use super::run::{EvalOptions, rollout, to_tensor};
use crate::data::{DataError, Dataset};
use crate::game::{Action, FRAME_BYTES, KeyState, find_colour_within};
use crate::model::{Genie, frames_to_bytes};
use crate::session::keys::{KeyMap, Keyed};

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
            let last = frames_to_bytes(
                &rollout(
                    genie,
                    &prompt_ids,
                    &prompt_actions,
                    actions.len(),
                    &mut |t, _, _| actions[t].shallow_clone(),
                    opts,
                )
                .last,
            );
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
    /// What the clip's keys before the window say of the player ([`KeyState`]).
    keys: KeyState,
    want: (i8, i8),
}

/// The cases of a labelled dataset: in each clip, windows of `opts.prompt_frames` real frames
/// then `opts.horizon` more while one action is held (non-overlapping), where the real player is
/// found at both ends; at most `opts.clips` per action. Also how many windows held one action,
/// and in how many of those the player was found.
fn find_windows(
    dataset: &Dataset,
    opts: &EvalOptions,
    player: PlayerColour,
    keys: &KeyMap,
) -> Result<(Vec<Window>, usize, usize), DataError> {
    let (p, h) = (opts.prompt_frames, opts.horizon);
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
                keys: keys_after(keys, &c.actions[..start]),
                want: direction(from, to),
            });
        }
    }
    Ok((windows, held, found))
}

/// A batch of cases ready to dream: the prompt's tokens and the LAM's actions through it, the
/// LAM's actions over the horizon (the ceiling's), and the decoded last prompt frames.
struct Cases<'a> {
    windows: &'a [Window],
    prompt_ids: Tensor,
    prompt_actions: Tensor,
    inferred: Tensor,
    starts: Vec<u8>,
}

impl<'a> Cases<'a> {
    fn new(
        genie: &Genie,
        dataset: &Dataset,
        windows: &'a [Window],
        opts: &EvalOptions,
    ) -> Result<Self, DataError> {
        let (p, len) = (opts.prompt_frames, opts.prompt_frames + opts.horizon);
        let mut bytes = Vec::with_capacity(windows.len() * len * FRAME_BYTES);
        for w in windows {
            let c = dataset.get(w.clip)?;
            let first = w.start + 1 - p;
            bytes.extend_from_slice(&c.frames[first * FRAME_BYTES..(first + len) * FRAME_BYTES]);
        }
        let frames = to_tensor(&bytes, windows.len(), len, genie.tokenizer_vs.device());
        let ids = genie.tokenizer.encode(&frames);
        let inferred = genie.lam.infer_actions(&frames); // [B, len − 1]
        let prompt_ids = ids.narrow(1, 0, p as i64);
        Ok(Cases {
            windows,
            prompt_actions: inferred.narrow(1, 0, p as i64 - 1),
            starts: frames_to_bytes(&genie.tokenizer.decode(&prompt_ids).select(1, -1)),
            prompt_ids,
            inferred,
        })
    }

    /// Per case, where the dreamed player went over the horizon dreamed with `latent`, from
    /// the decoded last prompt frame (`None` where it is not found in either).
    fn dreamed(
        &self,
        genie: &Genie,
        latent: &mut dyn FnMut(usize, &Tensor, Option<&Tensor>) -> Tensor,
        opts: &EvalOptions,
        player: PlayerColour,
    ) -> Vec<Option<(i8, i8)>> {
        let ends = frames_to_bytes(
            &rollout(
                genie,
                &self.prompt_ids,
                &self.prompt_actions,
                opts.horizon,
                latent,
                opts,
            )
            .last,
        );
        self.starts
            .chunks(FRAME_BYTES)
            .zip(ends.chunks(FRAME_BYTES))
            .map(|(start, end)| {
                player
                    .find(start)
                    .zip(player.find(end))
                    .map(|(a, b)| direction(a, b))
            })
            .collect()
    }
}

/// Per action with cases, the share of `(agreed, cases)`, plus `mean` over those actions.
fn shares(counts: &[(usize, usize)]) -> BTreeMap<String, f64> {
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
}

/// Action fidelity on a labelled dataset, on the cases of [`find_windows`]: the dream starts
/// from the prompt (driven through it by the LAM's actions, as in the label-free rollout) and
/// dreams the horizon with the action's latents ([`KeyMap`], press latent on a key's first
/// frame) and, for the ceiling, with the LAM's. `None` for unlabelled video.
pub fn video_control(
    genie: &Genie,
    dataset: &Dataset,
    opts: &EvalOptions,
    player: PlayerColour,
) -> Result<Option<VideoControl>, DataError> {
    if !dataset.manifest().labelled {
        return Ok(None);
    }
    let keys = KeyMap::new(&genie.config);
    let (windows, held, found) = find_windows(dataset, opts, player, &keys)?;
    let device = genie.tokenizer_vs.device();
    let n = Action::ALL.len();
    let (mut agree, mut ceiling) = (vec![(0usize, 0usize); n], vec![(0usize, 0usize); n]);
    let mut still = vec![(0usize, 0usize); n];
    let mut misses = vec![Misses::default(); n];
    tch::no_grad(|| -> Result<(), DataError> {
        for batch in windows.chunks(opts.batch.max(1)) {
            let cases = Cases::new(genie, dataset, batch, opts)?;
            let mut states: Vec<KeyState> = batch.iter().map(|w| w.keys).collect();
            let mut keyed = |t: usize, last: &Tensor, shown: Option<&Tensor>| {
                let keyed: Vec<Keyed> = batch
                    .iter()
                    .zip(&mut states)
                    .map(|(w, state)| keys.key(state, w.action, t == 0 && w.pressed))
                    .collect();
                let picked = keys.pick(genie.adapter.as_ref(), last, shown, &keyed);
                Tensor::from_slice(&picked).to_device(device)
            };
            let got = cases.dreamed(genie, &mut keyed, opts, player);
            let p = opts.prompt_frames as i64;
            let mut lam = |t: usize, _: &Tensor, _: Option<&Tensor>| {
                cases.inferred.select(1, p - 1 + t as i64)
            };
            let best = cases.dreamed(genie, &mut lam, opts, player);
            for ((w, got), best) in cases.windows.iter().zip(got).zip(best) {
                let a = w.action as usize;
                let agreed = !misses[a].count(w.want, got);
                agree[a] = (agree[a].0 + usize::from(agreed), agree[a].1 + 1);
                let reached = best == Some(w.want);
                ceiling[a] = (ceiling[a].0 + usize::from(reached), ceiling[a].1 + 1);
                let stood = w.want == (0, 0);
                still[a] = (still[a].0 + usize::from(stood), still[a].1 + 1);
            }
        }
        Ok(())
    })?;
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

/// What [`calibrate_video_by_dreams`] found.
#[derive(Debug, Clone, Serialize)]
pub struct VideoCalibration {
    /// The latent each action drives.
    pub calibration: BTreeMap<String, i64>,
    /// How often its dreams moved the player as the real one went.
    pub agreement: BTreeMap<String, f64>,
    /// The same for every latent, by latent id.
    pub agreement_by_latent: BTreeMap<String, Vec<f64>>,
    pub cases: BTreeMap<String, usize>,
}

/// Calibration by dreams on a labelled dataset, as `genie calibrate` does on the platformer:
/// on the cases of [`find_windows`] every latent is held over the horizon, and each action gets
/// the latent whose dreams moved the player the way the real one went most often (ties to the
/// lower id). An action without cases keeps the latent of `noop`'s.
pub fn calibrate_video_by_dreams(
    genie: &Genie,
    dataset: &Dataset,
    opts: &EvalOptions,
    player: PlayerColour,
) -> Result<VideoCalibration, DataError> {
    let (windows, _, _) = find_windows(dataset, opts, player, &KeyMap::new(&genie.config))?;
    let k = genie.config.lam.num_actions as usize;
    let device = genie.tokenizer_vs.device();
    let n = Action::ALL.len();
    let mut agree = vec![vec![0usize; k]; n];
    let mut cases = vec![0usize; n];
    tch::no_grad(|| -> Result<(), DataError> {
        for batch in windows.chunks(opts.batch.max(1)) {
            let c = Cases::new(genie, dataset, batch, opts)?;
            for w in batch {
                cases[w.action as usize] += 1;
            }
            let dreamed: Vec<Vec<Option<(i8, i8)>>> = (0..k as i64)
                .map(|latent| {
                    let held =
                        Tensor::full([batch.len() as i64], latent, (tch::Kind::Int64, device));
                    c.dreamed(genie, &mut |_, _, _| held.shallow_clone(), opts, player)
                })
                .collect();
            for (i, w) in batch.iter().enumerate() {
                for (count, got) in agree[w.action as usize].iter_mut().zip(&dreamed) {
                    *count += usize::from(got[i] == Some(w.want));
                }
            }
        }
        Ok(())
    })?;
    let share = |a: usize, l: usize| agree[a][l] as f64 / cases[a].max(1) as f64;
    let best = |a: usize| (0..k).fold(0, |b, l| if agree[a][l] > agree[a][b] { l } else { b });
    let noop = best(Action::Noop as usize);
    let (mut calibration, mut agreement, mut by_latent, mut counts) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    for action in Action::ALL {
        let a = action as usize;
        let latent = if cases[a] > 0 { best(a) } else { noop };
        let name = action.name().to_owned();
        calibration.insert(name.clone(), latent as i64);
        agreement.insert(name.clone(), share(a, latent));
        by_latent.insert(name.clone(), (0..k).map(|l| share(a, l)).collect());
        counts.insert(name, cases[a]);
    }
    Ok(VideoCalibration {
        calibration,
        agreement,
        agreement_by_latent: by_latent,
        cases: counts,
    })
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
            // What the clip's keys say of the player, advanced frame by frame as they are read.
            let mut state = keys_after(&keys, &clip.actions[..p - 1]);
            let mut latent = |t: usize, last: &Tensor, shown: Option<&Tensor>| {
                let k = p - 1 + t;
                match Action::ALL.get(clip.actions[k] as usize) {
                    Some(&action) if labelled => {
                        let pressed = k == 0 || clip.actions[k - 1] != clip.actions[k];
                        let keyed = keys.key(&mut state, action, pressed);
                        let picked = keys.pick(genie.adapter.as_ref(), last, shown, &[keyed]);
                        Tensor::from_slice(&picked).to_device(device)
                    }
                    _ => inferred.select(1, k as i64),
                }
            };
            let all = rollout(
                genie,
                &ids.narrow(1, 0, p as i64),
                &inferred.narrow(1, 0, p as i64 - 1),
                len - p,
                &mut latent,
                opts,
            )
            .ids;
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

/// What a clip's recorded actions (ids; labels beyond the 8 actions ignored) say of the
/// player, from the clip's start (a clip holds no earlier keys).
fn keys_after(keys: &KeyMap, actions: &[u8]) -> KeyState {
    let mut state = KeyState::default();
    for &a in actions {
        if let Some(&a) = Action::ALL.get(a as usize) {
            keys.key(&mut state, a, false);
        }
    }
    state
}
