//! The held-out evaluation of docs/design.md §5 and the calibration of game actions to latent actions.
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
//!   and of Δy, 1 px dead band).
//! - `action_fidelity_ceiling`: the same cases, the dream given the latents the LAM infers from
//!   the real game's own next frames ([`super::ceiling`]).
//! - `lam_nmi`: normalised mutual information between inferred latent and true actions.
//! - `sessions`: whole sessions of human-like play, added by the CLI ([`super::sessions`]).

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::ceiling::action_fidelity_ceiling;
use super::measures::nmi;
use super::sessions::SessionReport;
use super::video::VideoMeasures;
use crate::data::{
    DEFAULT_STICKINESS, EVAL_SEED_START, PlayStyle, ScriptedPlayer, generate_clip_played,
};
use crate::game::{Action, FRAME_BYTES, FRAME_SIZE, Game, GameConfig, Status, find_player_within};
use crate::model::dynamics::ActionSource;
use crate::model::{Genie, SamplerConfig, SamplerRng, frames_to_bytes, frames_to_f32, sample_next};
use crate::session::export::grid;
use crate::session::keys::KeyMap;

/// Seeds for calibration start here, apart from the evaluation's own.
pub const CALIBRATION_SEED_START: u64 = EVAL_SEED_START + 500_000;

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
}

/// How the dreamed player failed to move the real one's way (counts of cases).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Misses {
    /// The player was not found in the dreamed frame.
    pub lost: usize,
    /// Wrong horizontal direction, right vertical one.
    pub x: usize,
    /// Right horizontal direction, wrong vertical one.
    pub y: usize,
    /// Both wrong.
    pub xy: usize,
}

impl Misses {
    /// Counts one case that wanted `want` and got `got`; false where it agreed.
    pub(super) fn count(&mut self, want: (i8, i8), got: Option<(i8, i8)>) -> bool {
        match got {
            None => self.lost += 1,
            Some(g) if g == want => return false,
            Some((x, y)) => match (x != want.0, y != want.1) {
                (true, false) => self.x += 1,
                (false, true) => self.y += 1,
                _ => self.xy += 1,
            },
        }
        true
    }

    pub fn total(&self) -> usize {
        self.lost + self.x + self.y + self.xy
    }
}

pub use crate::game::PLAYER_TOLERANCE;

pub(super) fn find_player_approx(frame: &[u8]) -> Option<(f32, f32)> {
    find_player_within(frame, PLAYER_TOLERANCE)
}

pub(super) fn direction(from: (f32, f32), to: (f32, f32)) -> (i8, i8) {
    let sign = |d: f32| {
        if d > 1.0 {
            1
        } else if d < -1.0 {
            -1
        } else {
            0
        }
    };
    (sign(to.0 - from.0), sign(to.1 - from.1))
}

/// Rows of game action ids (equal lengths L) as an i64 [rows, L] tensor on `device`.
fn action_ids<'a>(rows: impl Iterator<Item = &'a [u8]>, device: Device) -> Tensor {
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

/// Dreams `actions.len()` frames after the prompt tokens; returns the decoded last frame of each
/// clip. `prompt_ids` [B, P, N]; `prompt_actions` [B, P−1]; each of `actions` is [B].
pub(super) fn rollout(
    genie: &Genie,
    prompt_ids: &Tensor,
    prompt_actions: &Tensor,
    actions: &[Tensor],
    opts: &EvalOptions,
) -> Tensor {
    let (b, p, _) = prompt_ids.size3().expect("[B, P, N]");
    let mut cache = genie.dynamics.new_cache(b);
    let mut rng = SamplerRng::seed_from_u64(opts.seed);
    tch::no_grad(|| {
        for t in 0..p {
            let action = (t > 0).then(|| prompt_actions.select(1, t - 1));
            genie
                .dynamics
                .push_frame(&mut cache, &prompt_ids.select(1, t), action.as_ref());
        }
        let mut ids = vec![prompt_ids.shallow_clone()];
        for action in actions {
            ids.push(
                sample_next(&genie.dynamics, &mut cache, action, &opts.sampler, &mut rng)
                    .unsqueeze(1),
            );
        }
        let all = Tensor::cat(&ids, 1);
        genie.tokenizer.decode(&all).select(1, -1)
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
    let (fidelity, cases, misses) = action_fidelity(genie, opts);
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
    }
}

/// A real game partway through its level (after scripted play), with its last `frames` frames,
/// oldest first: the last one is the game's current frame.
/// `config` is the version of the game (a checkpoint's `game`).
pub fn game_in_play(
    config: GameConfig,
    level_seed: u64,
    frames: usize,
    case: u64,
) -> (Game, Vec<u8>) {
    let (game, history, _) = game_in_play_with_actions(config, level_seed, frames, case);
    (game, history)
}

/// [`game_in_play`] plus the `frames − 1` game actions between those frames (`actions[k]`
/// produced frame k+1; Noop where a restart left fewer frames and the oldest was repeated).
pub fn game_in_play_with_actions(
    config: GameConfig,
    level_seed: u64,
    frames: usize,
    case: u64,
) -> (Game, Vec<u8>, Vec<u8>) {
    assert!(frames >= 1, "game_in_play needs at least the current frame");
    let mut game = Game::with_config(level_seed, config);
    let mut player = ScriptedPlayer::new(case, DEFAULT_STICKINESS);
    let warm = 8 + (case * 7919 % 120) as usize;
    let (mut history, mut actions) = (Vec::new(), Vec::new());
    for tick in 0..warm + frames - 1 {
        if tick >= warm {
            history.extend(game.frame());
        }
        let action = player.act(&game);
        if tick >= warm {
            actions.push(action as u8);
        }
        if game.step(action) != Status::Alive {
            game.restart();
            history.clear();
            actions.clear();
        }
    }
    history.extend(game.frame());
    // A restart in the last frames leaves fewer; pad by repeating the oldest.
    while history.len() < frames * FRAME_BYTES {
        let oldest = history[..FRAME_BYTES.min(history.len())].to_vec();
        let oldest = if oldest.is_empty() {
            game.frame()
        } else {
            oldest
        };
        history.splice(0..0, oldest);
    }
    // The actions between the kept frames (the frame after the last action is the current one).
    let mut actions = actions[actions.len().saturating_sub(frames - 1)..].to_vec();
    while actions.len() < frames - 1 {
        actions.insert(0, Action::Noop as u8);
    }
    (
        game,
        history[history.len() - frames * FRAME_BYTES..].to_vec(),
        actions,
    )
}

/// Held-out game states for action fidelity and dream calibration: the game, the player's place
/// in the prompt's last frame (real and decoded), and the prompt's tokens and conditioning
/// actions.
pub(super) struct ControlCases {
    pub(super) games: Vec<Game>,
    /// The prompt frames of all cases, case after case ([B, P] frames of u8 RGB).
    pub(super) history: Vec<u8>,
    /// Per case, the player's place in the prompt's last real frame: where the real game starts
    /// from.
    real_starts: Vec<Option<(f32, f32)>>,
    /// Per case, the player's place in the tokenizer's decoding of the prompt's last frame:
    /// where a dream starts from. The dream's motion is measured from there, decoded frame to
    /// decoded frame as a player sees it, so the tokenizer's error in placing the player (more
    /// than a pixel in about one held-out frame in eight) does not count as motion.
    dream_starts: Vec<Option<(f32, f32)>>,
    ids: Tensor,
    prompt_actions: Tensor,
}

impl ControlCases {
    /// States from the levels `seeds` (case index `k` for the k-th seed's scripted player).
    pub(super) fn new(genie: &Genie, seeds: impl Iterator<Item = (u64, u64)>, p: usize) -> Self {
        let device = genie.tokenizer_vs.device();
        let cases: Vec<(Game, Vec<u8>, Vec<u8>)> = seeds
            .map(|(seed, case)| game_in_play_with_actions(genie.config.game, seed, p, case))
            .collect();
        let bytes: Vec<u8> = cases
            .iter()
            .flat_map(|(_, h, _)| h.iter().copied())
            .collect();
        let frames = to_tensor(&bytes, cases.len(), p, device);
        let (ids, prompt_actions, decoded) = tch::no_grad(|| {
            let ids = genie.tokenizer.encode(&frames);
            let prompt_actions = if genie.config.dynamics.actions == ActionSource::Game {
                action_ids(cases.iter().map(|(_, _, a)| a.as_slice()), device)
            } else {
                genie.lam.infer_actions(&frames)
            };
            // The decoder is causal in time: this is the frame a rollout decodes before its
            // first dreamed one.
            let decoded = frames_to_bytes(&genie.tokenizer.decode(&ids).select(1, -1));
            (ids, prompt_actions, decoded)
        });
        let dream_starts = decoded
            .chunks(FRAME_BYTES)
            .map(find_player_approx)
            .collect();
        let real_starts = cases
            .iter()
            .map(|(_, h, _)| find_player_approx(&h[(p - 1) * FRAME_BYTES..]))
            .collect();
        Self {
            games: cases.into_iter().map(|(g, _, _)| g).collect(),
            history: bytes,
            real_starts,
            dream_starts,
            ids,
            prompt_actions,
        }
    }

    /// Per case, where the real player heads after `horizon` steps of `action` (sign of Δx and
    /// Δy); `None` where it dies or is not found.
    pub(super) fn real_directions(&self, action: Action, horizon: usize) -> Vec<Option<(i8, i8)>> {
        self.games
            .iter()
            .zip(&self.real_starts)
            .map(|(game, &from)| {
                let mut real = game.clone();
                let alive = (0..horizon).all(|_| real.step(action) == Status::Alive);
                let from = from?;
                let to = find_player_approx(&real.frame())?;
                alive.then(|| direction(from, to))
            })
            .collect()
    }

    /// Per case, where the dreamed player heads after the frames dreamed with `schedule` (a
    /// latent action per frame), from its place in the decoded start frame (`None` where it is
    /// not found in either).
    fn dreamed_directions(
        &self,
        genie: &Genie,
        schedule: &[i64],
        opts: &EvalOptions,
    ) -> Vec<Option<(i8, i8)>> {
        let b = self.games.len() as i64;
        let actions: Vec<Tensor> = schedule
            .iter()
            .map(|&l| Tensor::full([b], l, (Kind::Int64, self.ids.device())))
            .collect();
        self.dreamed_directions_driven(genie, &actions, opts)
    }

    /// [`ControlCases::dreamed_directions`] with a latent per case and frame (each of
    /// `actions` [B]).
    pub(super) fn dreamed_directions_driven(
        &self,
        genie: &Genie,
        actions: &[Tensor],
        opts: &EvalOptions,
    ) -> Vec<Option<(i8, i8)>> {
        let dreamed = frames_to_bytes(&rollout(
            genie,
            &self.ids,
            &self.prompt_actions,
            actions,
            opts,
        ));
        self.dream_starts
            .iter()
            .zip(dreamed.chunks(FRAME_BYTES))
            .map(|(&from, end)| Some(direction(from?, find_player_approx(end)?)))
            .collect()
    }
}

/// Batches of (level seed, case) pairs: `count` levels from `first_seed`.
pub(super) fn case_batches(first_seed: u64, count: usize, batch: usize) -> Vec<Vec<(u64, u64)>> {
    let all: Vec<(u64, u64)> = (0..count as u64).map(|i| (first_seed + i, i)).collect();
    all.chunks(batch.max(1)).map(<[_]>::to_vec).collect()
}

fn action_fidelity(
    genie: &Genie,
    opts: &EvalOptions,
) -> (
    BTreeMap<String, f64>,
    BTreeMap<String, usize>,
    BTreeMap<String, Misses>,
) {
    // Per game action, whether each case's dream agreed; the cases of a batch are made once,
    // and each schedule of latents dreamed once (a rollout is seeded per call, so game actions
    // sharing a schedule share its dream).
    let keys = KeyMap::new(&genie.config);
    let mut agree = vec![Vec::new(); Action::ALL.len()];
    let mut misses = vec![Misses::default(); Action::ALL.len()];
    for seeds in case_batches(opts.eval_seed_start, opts.clips, opts.batch) {
        let cases = ControlCases::new(genie, seeds.into_iter(), opts.prompt_frames);
        let mut dreams = BTreeMap::new();
        for action in Action::ALL {
            let want = cases.real_directions(action, opts.horizon);
            let got = dreams
                .entry(keys.schedule(action, opts.horizon))
                .or_insert_with_key(|s| cases.dreamed_directions(genie, s, opts));
            for (want, got) in want.iter().zip(got.iter()) {
                if let Some(want) = want {
                    agree[action as usize].push(!misses[action as usize].count(*want, *got));
                }
            }
        }
    }
    let (mut fidelity, mut counts, mut missed) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut agree_all = Vec::new();
    for action in Action::ALL {
        let agree = &agree[action as usize];
        let share = agree.iter().filter(|&&a| a).count() as f64 / agree.len().max(1) as f64;
        fidelity.insert(action.name().to_owned(), share);
        counts.insert(action.name().to_owned(), agree.len());
        missed.insert(action.name().to_owned(), misses[action as usize]);
        agree_all.push(share);
    }
    fidelity.insert(
        "mean".into(),
        agree_all.iter().sum::<f64>() / agree_all.len() as f64,
    );
    (fidelity, counts, missed)
}

/// What [`calibrate_by_dreams`] found, keyed by game action name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DreamCalibration {
    /// The latent action each game action is mapped to while its key is held.
    #[serde(rename = "calibration")]
    pub map: BTreeMap<String, i64>,
    /// How often that latent's dreams agreed with the game action's real direction.
    pub agreement: BTreeMap<String, f64>,
    /// The same for every latent, indexed by latent id: how near the others came.
    #[serde(rename = "agreement_by_latent")]
    pub by_latent: BTreeMap<String, Vec<f64>>,
    /// The latent for the first frame of a key press, the hold latent after it.
    #[serde(rename = "press_calibration")]
    pub press: BTreeMap<String, i64>,
    /// How often dreams of that press, then the hold, agreed: the action fidelity this
    /// calibration gives on its states.
    pub press_agreement: BTreeMap<String, f64>,
}

/// Maps each game action to the latent action whose dreams move the player most like the
/// action moves the real one: the measure of action fidelity, taken on `states` calibration
/// levels (from [`CALIBRATION_SEED_START`], apart from the evaluation's). From each state every
/// latent action is dreamed and every game action played for `opts.horizon` steps; each game
/// action gets the latent whose dreamed direction agrees with its real one most often (ties go
/// to the lower id). `jump` changes nothing in the air, so it may get the latent `noop` gets
/// (it did on the shipped model; counting only the states where it differs from `noop` picked a
/// latent that did worse on held-out levels).
///
/// Then, with each action's hold latent fixed, every latent is tried on the first frame (the
/// key's press) and the best kept where its dreams agree more often than the hold alone by at
/// least `press_margin` (a share of the cases; a gain of a few cases of 256 is noise): a jump
/// takes off once, then the held key changes nothing in the air. This pass dreams `k`
/// schedules per distinct hold latent, so it takes a few times the first's time.
///
/// `progress` (hidden where stderr is no terminal) counts dreamed batches; its length grows
/// when the press pass starts.
pub fn calibrate_by_dreams(
    genie: &Genie,
    opts: &EvalOptions,
    states: usize,
    press_margin: f64,
    progress: &indicatif::ProgressBar,
) -> DreamCalibration {
    let k = genie.config.dynamics.num_actions as usize;
    progress.set_length((states.div_ceil(opts.batch.max(1)) * k) as u64);
    progress.set_message("hold latents");
    let held: Vec<Vec<i64>> = (0..k as i64).map(|l| vec![l; opts.horizon]).collect();
    let by_schedule =
        schedule_agreement(genie, opts, CALIBRATION_SEED_START, states, &held, progress);
    let (mut map, mut agreement, mut by_latent) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let row: Vec<f64> = by_schedule.iter().map(|a| a[action as usize]).collect();
        let best = (0..k).fold(0, |best, l| if row[l] > row[best] { l } else { best });
        map.insert(action.name().to_owned(), best as i64);
        agreement.insert(action.name().to_owned(), row[best]);
        by_latent.insert(action.name().to_owned(), row);
    }
    let (press, press_agreement) = calibrate_presses(
        genie,
        opts,
        states,
        &map,
        &agreement,
        press_margin,
        progress,
    );
    progress.finish_and_clear();
    DreamCalibration {
        map,
        agreement,
        by_latent,
        press,
        press_agreement,
    }
}

/// The press pass of [`calibrate_by_dreams`]: per game action, the first-frame latent that,
/// followed by its hold latent (`holds`), agrees most often (the hold itself unless another
/// does better by at least `press_margin`), and that agreement. Over a horizon of one frame
/// there is no hold to follow a press, so the press is the hold.
fn calibrate_presses(
    genie: &Genie,
    opts: &EvalOptions,
    states: usize,
    holds: &BTreeMap<String, i64>,
    hold_agreement: &BTreeMap<String, f64>,
    press_margin: f64,
    progress: &indicatif::ProgressBar,
) -> (BTreeMap<String, i64>, BTreeMap<String, f64>) {
    if opts.horizon < 2 {
        return (holds.clone(), hold_agreement.clone());
    }
    let k = genie.config.dynamics.num_actions;
    let distinct: std::collections::BTreeSet<i64> = holds.values().copied().collect();
    let schedules: Vec<Vec<i64>> = distinct
        .iter()
        .flat_map(|&hold| {
            (0..k).filter(move |&p| p != hold).map(move |p| {
                let mut s = vec![hold; opts.horizon];
                s[0] = p;
                s
            })
        })
        .collect();
    progress.inc_length((states.div_ceil(opts.batch.max(1)) * schedules.len()) as u64);
    progress.set_message("press latents");
    let agreement = schedule_agreement(
        genie,
        opts,
        CALIBRATION_SEED_START,
        states,
        &schedules,
        progress,
    );
    let (mut press, mut press_agreement) = (BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let name = action.name();
        let tried = schedules
            .iter()
            .zip(&agreement)
            .filter(|(s, _)| s[1] == holds[name])
            .map(|(s, a)| (s[0], a[action as usize]));
        let (best, best_agreement) =
            pick_press((holds[name], hold_agreement[name]), tried, press_margin);
        press.insert(name.to_owned(), best);
        press_agreement.insert(name.to_owned(), best_agreement);
    }
    (press, press_agreement)
}

/// Of the (press latent, agreement) pairs `tried`, the one that agrees most often, if it beats
/// `hold` (the hold latent and its agreement alone) by at least `margin`; else `hold`. Ties go
/// to the first tried.
fn pick_press(
    hold: (i64, f64),
    tried: impl Iterator<Item = (i64, f64)>,
    margin: f64,
) -> (i64, f64) {
    let best = tried.fold(None::<(i64, f64)>, |best, (p, a)| match best {
        Some((_, b)) if b >= a => best,
        _ => Some((p, a)),
    });
    match best {
        // A small tolerance, so that a gain of exactly `margin` counts despite rounding.
        Some((p, a)) if a > hold.1 && a - hold.1 >= margin - 1e-9 => (p, a),
        _ => hold,
    }
}

/// Per latent schedule (one latent per frame of `opts.horizon`), per game action (in
/// [`Action::ALL`] order), how often the schedule's dreams moved the player as `horizon` steps of
/// the action moved the real one, on `states` states from the levels `first_seed` on.
/// `progress` advances by one per schedule dreamed over a batch of states.
pub fn schedule_agreement(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: usize,
    schedules: &[Vec<i64>],
    progress: &indicatif::ProgressBar,
) -> Vec<Vec<f64>> {
    let mut agree = vec![vec![0usize; Action::ALL.len()]; schedules.len()];
    let mut cases_of = vec![0usize; Action::ALL.len()];
    for seeds in case_batches(first_seed, states, opts.batch) {
        let cases = ControlCases::new(genie, seeds.into_iter(), opts.prompt_frames);
        let dreamed: Vec<_> = schedules
            .iter()
            .map(|s| {
                let d = cases.dreamed_directions(genie, s, opts);
                progress.inc(1);
                d
            })
            .collect();
        for action in Action::ALL {
            for (i, want) in cases
                .real_directions(action, opts.horizon)
                .iter()
                .enumerate()
            {
                let Some(want) = want else { continue };
                cases_of[action as usize] += 1;
                for (s, got) in dreamed.iter().enumerate() {
                    agree[s][action as usize] += usize::from(got[i] == Some(*want));
                }
            }
        }
    }
    agree
        .iter()
        .map(|row| {
            row.iter()
                .zip(&cases_of)
                .map(|(&n, &c)| n as f64 / c.max(1) as f64)
                .collect()
        })
        .collect()
}

/// Frames before the controlled transition that the LAM reads with it (the velocities it needs
/// to tell the key from the momentum).
pub const CALIBRATION_HISTORY: usize = 3;

/// Maps each game action to the latent action the LAM most often infers for it. Controlled
/// pairs, not scripted clips: from each of `states` held-out game states (seeds from
/// [`CALIBRATION_SEED_START`], partway through play) every one of the 8 actions is applied once
/// and the LAM reads the transition after [`CALIBRATION_HISTORY`] frames of play, so no action is confounded with the state it tends to be
/// pressed in. Returns the map, per action the share of its transitions that got that latent,
/// and the NMI between latent and true actions over all pairs.
pub fn calibrate(
    genie: &Genie,
    states: usize,
) -> (BTreeMap<String, i64>, BTreeMap<String, f64>, f64) {
    let device = genie.tokenizer_vs.device();
    let k = genie.config.lam.num_actions as usize;
    let mut counts = vec![vec![0usize; k]; Action::ALL.len()];
    let (mut latents, mut truths) = (Vec::new(), Vec::new());
    for first in (0..states).step_by(8) {
        let mut bytes = Vec::new();
        let mut labels = Vec::new();
        for i in first..(first + 8).min(states) {
            let (game, history) = game_in_play(
                genie.config.game,
                CALIBRATION_SEED_START + i as u64,
                CALIBRATION_HISTORY,
                i as u64,
            );
            for action in Action::ALL {
                let mut next = game.clone();
                next.step(action);
                bytes.extend_from_slice(&history);
                bytes.extend(next.frame());
                labels.push(action as usize);
            }
        }
        let len = CALIBRATION_HISTORY + 1;
        let inferred = genie
            .lam
            .infer_actions(&to_tensor(&bytes, labels.len(), len, device))
            .select(1, len as i64 - 2);
        let inferred =
            Vec::<i64>::try_from(inferred.flatten(0, -1).to_device(Device::Cpu)).expect("i64");
        for (&latent, &truth) in inferred.iter().zip(&labels) {
            counts[truth][latent as usize] += 1;
            latents.push(latent as usize);
            truths.push(truth);
        }
    }
    let (mut map, mut purity) = (BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let row = &counts[action as usize];
        let (best, n) = row
            .iter()
            .enumerate()
            .max_by_key(|&(_, n)| *n)
            .expect("k > 0");
        map.insert(action.name().to_owned(), best as i64);
        purity.insert(
            action.name().to_owned(),
            *n as f64 / row.iter().sum::<usize>().max(1) as f64,
        );
    }
    (map, purity, nmi(&latents, &truths))
}

/// The 16 game actions of the contact sheet: run, jump a gap, turn back, stand, dash.
pub const SHEET_ACTIONS: [Action; 16] = [
    Action::Right,
    Action::Right,
    Action::Right,
    Action::Right,
    Action::RightJump,
    Action::RightJump,
    Action::Right,
    Action::Right,
    Action::Left,
    Action::Left,
    Action::Left,
    Action::Jump,
    Action::Noop,
    Action::Noop,
    Action::Dash,
    Action::Noop,
];

/// For each level: the real game's frames (start frame, then one per action) in one row and,
/// below, the dream's from the same start frame driven by the same actions through the
/// calibration. Rows of 64×64 frames, `scale`d, separated by 2 px.
pub fn contact_sheet(
    genie: &Genie,
    levels: &[u64],
    actions: &[Action],
    scale: u32,
    seed: u64,
) -> image::RgbaImage {
    let device = genie.tokenizer_vs.device();
    let mut rows: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut rng = SamplerRng::seed_from_u64(seed);
    let latents = KeyMap::new(&genie.config).latents(actions);
    for &level in levels {
        let mut game = Game::with_config(level, genie.config.game);
        let mut real = vec![game.frame()];
        for &a in actions {
            if game.step(a) != Status::Alive {
                game.restart();
            }
            real.push(game.frame());
        }
        let first = to_tensor(&real[0], 1, 1, device);
        let mut dream = Vec::new();
        tch::no_grad(|| {
            let mut cache = genie.dynamics.new_cache(1);
            let mut decoder = genie.tokenizer.new_decoder_cache(1);
            let ids = genie.tokenizer.encode(&first).select(1, 0);
            genie.dynamics.push_frame(&mut cache, &ids, None);
            dream.push(frames_to_bytes(
                &genie.tokenizer.decode_next(&mut decoder, &ids),
            ));
            for &latent in &latents {
                let latent = Tensor::full([1], latent, (Kind::Int64, device));
                let ids = sample_next(
                    &genie.dynamics,
                    &mut cache,
                    &latent,
                    &genie.config.sampler,
                    &mut rng,
                );
                dream.push(frames_to_bytes(
                    &genie.tokenizer.decode_next(&mut decoder, &ids),
                ));
            }
        });
        rows.push(real);
        rows.push(dream);
    }
    grid(&rows, scale, 0, [24, 24, 24])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_player_is_found_in_a_real_frame_and_directions_have_a_dead_band() {
        let game = Game::new(3);
        let (x, y) =
            find_player_approx(&game.frame()).expect("the player is on screen at the start");
        assert!((0.0..64.0).contains(&x) && (0.0..64.0).contains(&y));
        assert_eq!(direction((10.0, 10.0), (10.5, 9.5)), (0, 0));
        assert_eq!(direction((10.0, 10.0), (13.0, 7.0)), (1, -1));
        assert!(find_player_approx(&vec![0; FRAME_BYTES]).is_none());
    }

    #[test]
    fn a_miss_is_counted_by_the_axis_that_went_wrong() {
        let mut m = Misses::default();
        assert!(
            !m.count((-1, 0), Some((-1, 0))),
            "an agreeing case is no miss"
        );
        assert!(m.count((-1, 0), None));
        assert!(m.count((-1, 0), Some((0, 0))));
        assert!(m.count((-1, 0), Some((1, 0))));
        assert!(m.count((-1, 0), Some((-1, 1))));
        assert!(m.count((-1, 0), Some((1, -1))));
        assert_eq!(
            m,
            Misses {
                lost: 1,
                x: 2,
                y: 1,
                xy: 1
            }
        );
        assert_eq!(m.total(), 5);
    }

    #[test]
    fn a_press_latent_must_beat_the_hold_by_the_margin() {
        let tried = [(1, 0.50), (4, 0.56), (6, 0.56), (2, 0.30)];
        // The best tried (the first of a tie) where it gains at least the margin.
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.0), (4, 0.56));
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.06), (4, 0.56));
        // The hold where the gain is smaller, or none.
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.07), (3, 0.50));
        assert_eq!(pick_press((3, 0.56), tried.into_iter(), 0.0), (3, 0.56));
        assert_eq!(pick_press((3, 0.60), tried.into_iter(), 0.0), (3, 0.60));
        assert_eq!(pick_press((3, 0.50), std::iter::empty(), 0.0), (3, 0.50));
        // A gain of exactly the margin counts, whatever the rounding of the shares.
        let (hold, press) = (193.0 / 253.0, 198.0 / 253.0);
        assert_eq!(
            pick_press((3, hold), [(7, press)].into_iter(), 5.0 / 253.0),
            (7, press)
        );
    }

    #[test]
    fn dream_calibration_agrees_as_often_as_the_fidelity_it_then_measures() {
        // The shipped checkpoint, so that dreams show a player to follow.
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints");
        let mut genie = Genie::load(&shipped, Device::Cpu).unwrap();
        let opts = EvalOptions {
            clips: 4,
            eval_seed_start: CALIBRATION_SEED_START,
            prompt_frames: 2,
            horizon: 2,
            sampler: SamplerConfig {
                steps: 2,
                ..SamplerConfig::default()
            },
            batch: 4,
            ..Default::default()
        };
        let DreamCalibration {
            map,
            agreement,
            by_latent,
            press,
            press_agreement,
        } = calibrate_by_dreams(
            &genie,
            &opts,
            opts.clips,
            0.0,
            &indicatif::ProgressBar::hidden(),
        );
        assert_eq!(map.len(), Action::ALL.len());
        let k = genie.config.dynamics.num_actions;
        assert!(map.values().all(|&l| (0..k).contains(&l)), "{map:?}");
        for (name, latent) in &map {
            assert_eq!(by_latent[name].len(), k as usize, "{name}");
            assert_eq!(by_latent[name][*latent as usize], agreement[name], "{name}");
            assert!(
                by_latent[name].iter().all(|&a| a <= agreement[name]),
                "{name}"
            );
        }
        assert!(
            agreement.values().any(|&a| a > 0.0),
            "some dreamed player moves the real one's way: {agreement:?}"
        );
        // A press latent is kept only where it beats holding alone.
        for (name, latent) in &press {
            assert!(press_agreement[name] >= agreement[name], "{name}");
            if *latent != map[name] {
                assert!(press_agreement[name] > agreement[name], "{name}");
            }
        }
        // On the same states, fidelity with those maps reads the same dreams; with the hold map
        // alone it reads the first pass's, and with any other map (the identity) it cannot
        // agree more often.
        genie.config.calibration = Some(map);
        genie.config.press_calibration = Some(press);
        let (fidelity, cases, misses) = action_fidelity(&genie, &opts);
        genie.config.press_calibration = None;
        let (held, _, _) = action_fidelity(&genie, &opts);
        genie.config.calibration = None;
        let (identity, _, _) = action_fidelity(&genie, &opts);
        for action in Action::ALL {
            let name = action.name();
            assert_eq!(fidelity[name], press_agreement[name], "{name}");
            assert_eq!(held[name], agreement[name], "{name}");
            // Every case either agreed or missed in one of the counted ways.
            let agreed = (fidelity[name] * cases[name] as f64).round() as usize;
            assert_eq!(agreed + misses[name].total(), cases[name], "{name}");
            assert!(
                identity[name] <= agreement[name],
                "{name}: the best latent was not picked"
            );
        }
    }

    #[test]
    fn a_dream_of_no_steps_stays_where_the_decoded_start_put_the_player() {
        // The dream's motion is measured from the decoded start frame, so a rollout that adds
        // no frame (it decodes the prompt and returns its last frame) moves nobody, whatever
        // the tokenizer's error in placing the player.
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints");
        let genie = Genie::load(&shipped, Device::Cpu).unwrap();
        let opts = EvalOptions {
            prompt_frames: 2,
            horizon: 0,
            ..Default::default()
        };
        let seeds = (0..6).map(|i| (CALIBRATION_SEED_START + i, i));
        let cases = ControlCases::new(&genie, seeds, opts.prompt_frames);
        let found = cases.dream_starts.iter().flatten().count();
        assert!(
            found >= 4,
            "the decoded player is found in most states: {found} of 6"
        );
        for latent in [0, 3] {
            let got = cases.dreamed_directions(&genie, &vec![latent; opts.horizon], &opts);
            assert_eq!(got.iter().flatten().count(), found);
            assert!(got.iter().flatten().all(|&d| d == (0, 0)), "{got:?}");
        }
    }

    #[test]
    fn a_game_in_play_comes_with_the_actions_between_its_frames() {
        let mut seen = std::collections::BTreeSet::new();
        for case in 0..6 {
            let config = GameConfig::default();
            let (game, frames) = game_in_play(config, EVAL_SEED_START + case, 5, case);
            let (game2, frames2, actions) =
                game_in_play_with_actions(config, EVAL_SEED_START + case, 5, case);
            assert_eq!(frames, frames2);
            assert_eq!(game.frame(), game2.frame());
            assert_eq!(actions.len(), 4, "one action between each two of 5 frames");
            assert!(actions.iter().all(|&a| Action::from_u8(a).is_some()));
            seen.extend(actions);
        }
        assert!(
            seen.len() > 1,
            "the scripted player's actions vary: {seen:?}"
        );
        assert!(
            game_in_play_with_actions(GameConfig::default(), EVAL_SEED_START, 1, 0)
                .2
                .is_empty()
        );
    }
}
