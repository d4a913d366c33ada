//! Whole sessions (docs/design.md §8): what a player meets over minutes, not four frames. The
//! real game and the dream start from the same real frame (a held-out level's first, as `genie play
//! --level` starts) and get the same keys from a seeded human-like script ([`human_keys`]), turned
//! into latents as `genie play` turns them ([`KeyMap`]: the checkpoint's calibration, press
//! latents on a key's first frame). Frame by frame the measures read both:
//!
//! - `presence`: of the frames with the real player on screen, the share in which the dreamed
//!   player (its unique colour) is found;
//! - `kept_player`: the share of sessions in which the dream never misses the player
//!   [`LOSS_RUN`] frames in a row while the real one is on screen, and `median_frames_to_loss`
//!   (frames from the start to the first missed frame of that run) over the others, with
//!   `kept_player_interval`, its 95% Wilson interval over the sessions played;
//! - `scroll_recall` / `scroll_precision`: the real game's camera moves (read from the game)
//!   matched by a dreamed whole-screen shift the same way within ±[`SCROLL_WINDOW`] frames, and
//!   the dreamed shifts matching a real one. A model that scrolls (`model::scroll`) says how
//!   its view moved, as the game does, and every real move is scored. For another the dreamed
//!   shifts are read from the frames by [`horizontal_shift`]; a real move that leaves the
//!   picture as it was (over even, empty ground) cannot be seen in any frames, the dream's
//!   included, so it is left out of the recall. Either way such moves are counted
//!   (`real_camera_moves_unseen`);
//! - `pose`: of the frames with both players found, the share in which the dreamed player
//!   crouches where the real one does and stands where it stands (the sprite's height,
//!   [`crate::game::player_crouched_within`]);
//! - `fidelity`: per key press, whether the dreamed player moved as the real one did over the
//!   press's first [`FIDELITY_FRAMES`] frames (or fewer, for a shorter hold), both taken
//!   relative to the world: a camera move is added back, so a scroll is not motion.
//!
//! Sessions play human-like keys, or none at all ([`SessionKeys::Idle`]: what a player meets
//! who starts a world and watches it), or one key held from the first frame to the last
//! ([`SessionKeys::Held`]: what a player meets who holds a key for ten seconds; every key in
//! turn, each on the same levels, with the figures also per key and `fidelity` scored over every
//! [`FIDELITY_FRAMES`] frames of the hold, not only its first).
//!
//! When the real life ends (the player dies or wins, and the level restarts) the dream cannot
//! know; the frames from there on are counted (`frames_after_life_lost`) but not scored.
//! Sessions run in batches through the networks, with the dynamics and decoder caches.

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::control::{Misses, direction, find_player_approx};
use super::measures::{
    LOSS_RUN, Presence, ScrollMatch, horizontal_shift, match_scrolls, match_scrolls_toward, median,
    presence, wilson_interval,
};
use super::run::to_tensor;
use crate::data::EVAL_SEED_START;
use crate::game::{
    Action, FRAME_BYTES, Game, GameConfig, KeyState, PLAYER_TOLERANCE, Status, find_player,
    is_crouch_height, player_height_at,
};
use crate::model::dynamics::ActionSource;
use crate::model::{Genie, Rollout, SamplerConfig, SamplerRng, frames_to_bytes};
use crate::session::keys::{KeyMap, Keyed};
use crate::session::script::human_keys;

/// Frames either side within which a dreamed camera move matches a real one.
pub const SCROLL_WINDOW: usize = 2;
/// Frames of a key press over which the dreamed and real player's motion are compared (the
/// horizon of `action_fidelity`).
pub const FIDELITY_FRAMES: usize = 4;
/// How far (pixels, along each axis) the dreamed player may be from the real one in the world
/// and still be in its place: half a tile.
pub const PLACE_TOLERANCE: f32 = 4.0;
/// Every how many frames the session sheet shows one.
pub const SHEET_EVERY: usize = 10;

/// The keys a session plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionKeys {
    /// The seeded human-like script of [`human_keys`] (session i's from seed + i).
    #[default]
    Human,
    /// No key at all, every frame.
    Idle,
    /// One key held for the whole session: session i holds `Action::ALL[i % 8]` on level
    /// `seed_start + i / 8`, so every key plays the same levels.
    Held,
}

#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub keys: SessionKeys,
    pub sessions: usize,
    /// Frames played after the start frame.
    pub frames: usize,
    /// Level of the first session; session i plays level `seed_start + i`.
    pub seed_start: u64,
    /// Seeds the key scripts (session i's is `seed + i`) and the sampler.
    pub seed: u64,
    pub sampler: SamplerConfig,
    /// Sessions per batch through the networks.
    pub batch: usize,
    /// Also run every session driven by the latents the LAM infers from the real frames.
    pub ceiling: bool,
    /// Sessions whose frames (every [`SHEET_EVERY`]th) are kept for a sheet.
    pub sheet_sessions: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            keys: SessionKeys::Human,
            sessions: 32,
            frames: 300,
            seed_start: EVAL_SEED_START,
            seed: 0,
            sampler: SamplerConfig::default(),
            batch: 16,
            ceiling: false,
            sheet_sessions: 0,
        }
    }
}

/// The session measures, pooled over all sessions.
#[derive(Debug, Clone, Serialize)]
pub struct SessionMeasures {
    pub presence: f64,
    pub kept_player: f64,
    /// The 95% Wilson interval of `kept_player` over this many sessions: two models whose
    /// intervals overlap are not told apart by these sessions (more of them narrow it).
    pub kept_player_interval: Option<[f64; 2]>,
    /// `None` where every session kept the player.
    pub median_frames_to_loss: Option<f64>,
    /// `None` where the real camera never moved in a scored frame.
    pub scroll_recall: Option<f64>,
    /// `None` where the dream never shifted in a scored frame.
    pub scroll_precision: Option<f64>,
    pub real_camera_moves: usize,
    /// Real moves the shift detector cannot see in the real frames themselves.
    pub real_camera_moves_unseen: usize,
    pub dreamed_camera_moves: usize,
    /// The camera moves counted one way at a time (`left`: the view moved left), recall over
    /// the same moves as `scroll_recall`.
    pub scroll_by_direction: BTreeMap<String, ScrollMatch>,
    /// Of the frames with both players found, the share in which the dreamed player's pose
    /// (crouching or not) is the real one's; `None` where there were none.
    pub pose: Option<f64>,
    /// Of the same frames, the share in which the dreamed player is where the real one is in
    /// the world, within [`PLACE_TOLERANCE`] along each axis (a dream that lost its way once
    /// stays apart, so this falls over a session).
    pub place: Option<f64>,
    pub both_found: BothFound,
    /// Per game action pressed in the sessions, plus `mean` over them.
    pub fidelity: BTreeMap<String, f64>,
    pub fidelity_cases: BTreeMap<String, usize>,
    pub fidelity_misses: BTreeMap<String, Misses>,
    pub per_session: Vec<SessionSummary>,
}

/// The sessions that held one key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyHeld {
    #[serde(flatten)]
    pub keyed: SessionMeasures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<SessionMeasures>,
}

/// One session's figures, to find it on the sheet.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    pub level: u64,
    /// Frames scored (before the real life ended).
    pub scored_frames: usize,
    pub presence: Option<f64>,
    pub pose: Option<f64>,
    pub place: Option<f64>,
    /// The first frame of the run in which the dream lost the player.
    pub lost_at: Option<usize>,
    pub real_camera_moves: usize,
    pub dreamed_camera_moves: usize,
    pub matched_camera_moves: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub sessions: usize,
    pub frames: usize,
    pub seed_start: u64,
    /// Frames scored over all sessions.
    pub scored_frames: usize,
    /// Frames after the real life ended (not scored), and the sessions in which it did.
    pub frames_after_life_lost: usize,
    pub sessions_with_life_lost: usize,
    #[serde(flatten)]
    pub keyed: SessionMeasures,
    /// The same sessions driven by the LAM's latents of the real frames, where asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<SessionMeasures>,
    /// Sessions of one key held ([`SessionKeys::Held`]): the measures of each key's sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_key: Option<BTreeMap<String, KeyHeld>>,
    pub seconds: f64,
    /// For the sheet: per kept session, a row of real frames and a row of dreamed ones.
    #[serde(skip)]
    pub sheet_rows: Vec<Vec<Vec<u8>>>,
}

/// The real game's side of a session: per frame 0..=F, the player's place on screen, the
/// camera, and the frames scored.
struct RealSession {
    level: u64,
    keys: Vec<Action>,
    player: Vec<Option<(f32, f32)>>,
    /// Per frame, whether the player crouches (`None`: not on screen).
    crouched: Vec<Option<bool>>,
    camera: Vec<i32>,
    /// Per frame, whether a camera move into it shows in the real frames (true where none).
    move_seen: Vec<bool>,
    /// Frames 0..scored are of the first life.
    scored: usize,
    /// Every frame, for the LAM of the ceiling and the sheet.
    frames: Vec<Vec<u8>>,
}

impl RealSession {
    fn play(config: GameConfig, level: u64, keys: Vec<Action>) -> Self {
        let mut game = Game::with_config(level, config);
        let first = game.frame();
        let (mut player, mut camera) = (vec![find_player(&first)], vec![game.camera_px()]);
        let mut crouched = vec![crouched_at(&first, 0, player[0])];
        let mut frames = vec![first];
        let mut move_seen = vec![true];
        let mut scored = keys.len() + 1;
        for (t, &key) in keys.iter().enumerate() {
            // As the player beside the dream does: a life that ends restarts the level.
            if game.step(key) != Status::Alive {
                game.restart();
                scored = scored.min(t + 1);
            }
            let frame = game.frame();
            player.push(find_player(&frame));
            crouched.push(crouched_at(&frame, 0, player[t + 1]));
            let moved = game.camera_px() - camera[t];
            move_seen.push(
                moved == 0 || horizontal_shift(&frames[t], &frame, 0).signum() == moved.signum(),
            );
            camera.push(game.camera_px());
            frames.push(frame);
        }
        Self {
            level,
            keys,
            player,
            crouched,
            camera,
            move_seen,
            scored,
            frames,
        }
    }

    /// The camera's move into each frame (0 for the first).
    fn camera_moves(&self) -> Vec<i32> {
        std::iter::once(0)
            .chain(self.camera.windows(2).map(|w| w[1] - w[0]))
            .collect()
    }

    /// [`RealSession::camera_moves`] with the moves no frames show taken out.
    fn seen_camera_moves(&self) -> Vec<i32> {
        self.camera_moves()
            .iter()
            .zip(&self.move_seen)
            .map(|(&m, &seen)| if seen { m } else { 0 })
            .collect()
    }
}

/// The dream's side of a session: per frame 0..=F (0: the decoded start frame), the player's
/// place on screen and how far its view moved from the frame before, in pixels.
struct DreamTrace {
    player: Vec<Option<(f32, f32)>>,
    crouched: Vec<Option<bool>>,
    shift: Vec<i32>,
    /// Whether `shift` is the model's own view move (a model that scrolls), as the real side's
    /// is the game's camera, rather than read from the frames.
    exact: bool,
    /// Every [`SHEET_EVERY`]th frame, for sessions on the sheet.
    sheet: Vec<Vec<u8>>,
    last: Vec<u8>,
}

impl DreamTrace {
    fn new() -> Self {
        Self {
            player: Vec::new(),
            crouched: Vec::new(),
            shift: Vec::new(),
            exact: true,
            sheet: Vec::new(),
            last: Vec::new(),
        }
    }

    /// Reads the session's next frame (the first is the start frame), keeping it for the sheet
    /// where `sheet` and it falls on the sheet's frames. `moved`: how far the model moved its
    /// view before it, in pixels, for a model that scrolls; else the move is read from the
    /// frames.
    fn push(&mut self, frame: &[u8], moved: Option<i32>, sheet: bool) {
        let t = self.player.len();
        let player = find_player_approx(frame);
        self.player.push(player);
        self.crouched
            .push(crouched_at(frame, PLAYER_TOLERANCE, player));
        self.exact &= moved.is_some();
        self.shift.push(match moved {
            Some(px) => px,
            None if t == 0 => 0,
            None => horizontal_shift(&self.last, frame, PLAYER_TOLERANCE),
        });
        if sheet && t.is_multiple_of(SHEET_EVERY) {
            self.sheet.push(frame.to_vec());
        }
        self.last = frame.to_vec();
    }
}

/// Whether the player found at `centre` (with `tolerance`) crouches; `None` where it was not
/// found ([`crate::game::player_crouched_within`] without finding it again).
fn crouched_at(frame: &[u8], tolerance: u32, centre: Option<(f32, f32)>) -> Option<bool> {
    player_height_at(frame, tolerance, centre?).map(is_crouch_height)
}

/// Plays `opts.sessions` sessions on held-out levels and measures them.
pub fn measure_sessions(genie: &Genie, opts: &SessionOptions) -> SessionReport {
    let start = std::time::Instant::now();
    let keys = KeyMap::new(&genie.config);
    let (mut reals, mut keyed, mut lam) = (Vec::new(), Vec::new(), Vec::new());
    let mut sheet_rows = Vec::new();
    for (batch_index, first) in (0..opts.sessions).step_by(opts.batch.max(1)).enumerate() {
        let batch: Vec<RealSession> = (first..(first + opts.batch.max(1)).min(opts.sessions))
            .map(|i| {
                let (script, level) = match opts.keys {
                    SessionKeys::Human => {
                        (human_keys(opts.seed.wrapping_add(i as u64), opts.frames), i)
                    }
                    SessionKeys::Idle => (vec![Action::Noop; opts.frames], i),
                    SessionKeys::Held => (vec![held_key(i); opts.frames], i / Action::ALL.len()),
                };
                RealSession::play(genie.config.game, opts.seed_start + level as u64, script)
            })
            .collect();
        let sampler_seed = opts.seed ^ (batch_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let keep = |i: usize| first + i < opts.sheet_sessions;
        let drive = match genie.config.dynamics.actions {
            ActionSource::Game => Drive::Latents(
                batch
                    .iter()
                    .map(|r| r.keys.iter().map(|&a| a as i64).collect())
                    .collect(),
            ),
            ActionSource::Latent => Drive::Keys(&keys),
        };
        let dreams = dream(genie, &batch, &drive, opts, sampler_seed, &keep);
        for (i, (real, dreamed)) in batch.iter().zip(&dreams).enumerate() {
            if keep(i) {
                sheet_rows.push(real.frames.iter().step_by(SHEET_EVERY).cloned().collect());
                sheet_rows.push(dreamed.sheet.clone());
            }
        }
        keyed.extend(dreams);
        if opts.ceiling {
            let drive = Drive::Latents(inferred_latents(genie, &batch));
            lam.extend(dream(genie, &batch, &drive, opts, sampler_seed, &|_| false));
        }
        // Only what the scores need is kept past the batch.
        reals.extend(batch.into_iter().map(|r| RealSession {
            frames: Vec::new(),
            ..r
        }));
    }
    let scored: usize = reals.iter().map(|r| r.scored.saturating_sub(1)).sum();
    let along = opts.keys == SessionKeys::Held;
    // Per key held, the sessions that held it.
    let per_key = along.then(|| {
        // Sessions 0..8 hold every key once: fewer sessions, fewer keys.
        Action::ALL
            .iter()
            .take(opts.sessions)
            .map(|&key| {
                let of_key = |dreams: &'_ [DreamTrace]| {
                    let pairs = reals.iter().zip(dreams).enumerate();
                    score(
                        pairs.filter(|&(i, _)| held_key(i) == key).map(|(_, p)| p),
                        along,
                    )
                };
                let measures = KeyHeld {
                    keyed: of_key(&keyed),
                    ceiling: opts.ceiling.then(|| of_key(&lam)),
                };
                (key.name().to_owned(), measures)
            })
            .collect()
    });
    SessionReport {
        sessions: opts.sessions,
        frames: opts.frames,
        seed_start: opts.seed_start,
        scored_frames: scored,
        frames_after_life_lost: reals.iter().map(|r| r.player.len() - r.scored).sum(),
        sessions_with_life_lost: reals.iter().filter(|r| r.scored < r.player.len()).count(),
        keyed: score(reals.iter().zip(&keyed), along),
        ceiling: opts.ceiling.then(|| score(reals.iter().zip(&lam), along)),
        per_key,
        seconds: start.elapsed().as_secs_f64(),
        sheet_rows,
    }
}

/// What drives a dreamed session.
enum Drive<'a> {
    /// Per session, a latent per frame after the start.
    Latents(Vec<Vec<i64>>),
    /// The session's keys, turned into latents frame by frame as play does.
    Keys(&'a KeyMap),
}

/// Dreams a batch of sessions from their real start frames, each driven by `drive`, and reads
/// every dreamed frame.
fn dream(
    genie: &Genie,
    batch: &[RealSession],
    drive: &Drive<'_>,
    opts: &SessionOptions,
    seed: u64,
    keep: &dyn Fn(usize) -> bool,
) -> Vec<DreamTrace> {
    let device = genie.tokenizer_vs.device();
    let b = batch.len();
    let starts: Vec<u8> = batch.iter().flat_map(|r| r.frames[0].clone()).collect();
    let mut rng = SamplerRng::seed_from_u64(seed);
    let mut traces: Vec<DreamTrace> = (0..b).map(|_| DreamTrace::new()).collect();
    // A model that scrolls says how far its view moved; for another, it is read from the frames.
    let scrolls = genie.dynamics.camera().is_some();
    let patch = genie.config.tokenizer.patch as i32;
    let mut read = |frames: Vec<u8>, moves: &[i64]| {
        for (i, frame) in frames.chunks(FRAME_BYTES).enumerate() {
            let moved = scrolls.then(|| moves.get(i).map_or(0, |&m| m as i32 * patch));
            traces[i].push(frame, moved, keep(i));
        }
    };
    tch::no_grad(|| {
        let mut rollout = Rollout::new(genie, b as i64);
        let ids = genie.tokenizer.encode(&to_tensor(&starts, b, 1, device)); // [B, 1, N]
        let first = rollout.start(genie, &ids, None, &[]);
        read(frames_to_bytes(&first.select(1, 0)), &[]);
        // Every session's keys from a level's start, as play reads them.
        let keyed: Vec<Vec<Keyed>> = match drive {
            Drive::Keys(keys) => batch
                .iter()
                .map(|r| keys.along(KeyState::default(), &r.keys))
                .collect(),
            Drive::Latents(_) => Vec::new(),
        };
        for t in 0..opts.frames {
            let ids = rollout.last().expect("a started rollout");
            let step: Vec<i64> = match drive {
                Drive::Latents(latents) => latents.iter().map(|l| l[t]).collect(),
                Drive::Keys(keys) => {
                    let keyed: Vec<Keyed> = keyed.iter().map(|k| k[t]).collect();
                    keys.pick(genie.adapter.as_ref(), ids, rollout.shown(), &keyed)
                }
            };
            let action = Tensor::from_slice(&step).to_device(device);
            let (_, moves, frame) = rollout.step(genie, &action, &opts.sampler, &mut rng);
            read(frames_to_bytes(&frame), &moves);
        }
    });
    traces
}

/// Windows the LAM reads at once: enough to keep its activations small.
const LAM_WINDOWS: usize = 8;

/// Per session, the latent the LAM infers for each real transition (F of them), each read from
/// the frames up to its next one, as far back as the LAM's context reaches: the latent of a
/// transition never sees the frames after it. A LAM that reads a clip in its last frame's view
/// (`lam.one_view`) would otherwise read an early transition of a long stretch moved by every
/// later step of the view, its player moved out of the picture. A model driven by the game's
/// actions gets the keys themselves.
fn inferred_latents(genie: &Genie, batch: &[RealSession]) -> Vec<Vec<i64>> {
    if genie.config.dynamics.actions == ActionSource::Game {
        return batch
            .iter()
            .map(|r| r.keys.iter().map(|&a| a as i64).collect())
            .collect();
    }
    let device = genie.tokenizer_vs.device();
    let lead = (genie.config.lam.context_frames.max(1) - 1) as usize;
    let transitions = batch.first().map_or(0, |r| r.frames.len() - 1);
    let mut out = vec![Vec::with_capacity(transitions); batch.len()];
    // Transition t from the window of frames first(t)..=t+1; windows of one length together.
    let first = |t: usize| t.saturating_sub(lead);
    let mut t = 0;
    while t < transitions {
        let len = t + 2 - first(t);
        let mut group = vec![t];
        while group.len() < LAM_WINDOWS {
            let next = t + group.len();
            if next >= transitions || next + 2 - first(next) != len {
                break;
            }
            group.push(next);
        }
        // [windows × sessions, len, …], window-major.
        let bytes: Vec<u8> = group
            .iter()
            .flat_map(|&u| {
                batch
                    .iter()
                    .flat_map(move |r| r.frames[first(u)..=u + 1].concat())
            })
            .collect();
        let rows = group.len() * batch.len();
        let inferred = genie
            .lam
            .infer_actions(&to_tensor(&bytes, rows, len, device))
            .select(1, len as i64 - 2)
            .to_device(Device::Cpu)
            .to_kind(Kind::Int64);
        let inferred = Vec::<i64>::try_from(inferred).expect("i64 latents");
        for window in inferred.chunks(batch.len()) {
            for (row, &latent) in out.iter_mut().zip(window) {
                row.push(latent);
            }
        }
        t += group.len();
    }
    out
}

/// The key held in session `i` of [`SessionKeys::Held`].
fn held_key(i: usize) -> Action {
    Action::ALL[i % Action::ALL.len()]
}

/// The measures over all sessions from both sides' traces; `along`: each key's fidelity over
/// every [`FIDELITY_FRAMES`] frames of its holds ([`cases`]), not only each press's first.
fn score<'a>(
    sessions: impl IntoIterator<Item = (&'a RealSession, &'a DreamTrace)>,
    along: bool,
) -> SessionMeasures {
    let mut played = 0;
    let (mut on_screen, mut found, mut kept) = (0, 0, 0);
    let mut losses = Vec::new();
    let mut scrolls = ScrollMatch::default();
    let mut by_direction = [ScrollMatch::default(); 2];
    let (mut real_moves, mut unseen) = (0, 0);
    let mut agree = vec![(0usize, 0usize); Action::ALL.len()];
    let mut misses = vec![Misses::default(); Action::ALL.len()];
    let mut per_session = Vec::new();
    let mut both_found = BothFound::default();
    for (real, dream) in sessions {
        played += 1;
        // Frames 1..scored: the start frame is the same real frame on both sides.
        let frames = 1..real.scored.min(dream.player.len());
        let real_on: Vec<bool> = real.player[frames.clone()]
            .iter()
            .map(Option::is_some)
            .collect();
        let dream_found: Vec<bool> = dream.player[frames.clone()]
            .iter()
            .map(Option::is_some)
            .collect();
        let Presence {
            on_screen: on,
            found: f,
            lost_at,
        } = presence(&real_on, &dream_found, LOSS_RUN);
        // As a frame number: frames 1.. of the session.
        let lost_at = lost_at.map(|t| t + 1);
        on_screen += on;
        found += f;
        let mut both = BothFound::default();
        let mut dream_view = 0;
        let seen = |at: Option<(f32, f32)>, crouched: Option<bool>, view: f32| {
            Some(Seen {
                at: (at?.0 + view, at?.1),
                crouched: crouched?,
            })
        };
        for t in frames.clone() {
            dream_view += dream.shift[t];
            let real_view = (real.camera[t] - real.camera[0]) as f32;
            both.add(
                seen(real.player[t], real.crouched[t], real_view),
                seen(dream.player[t], dream.crouched[t], dream_view as f32),
            );
        }
        both_found.merge(both);
        match lost_at {
            None => kept += 1,
            Some(t) => losses.push(t as f64),
        }
        // Recall over the moves the real frames show where the dream's are read from its
        // frames (a move over even ground shows in no frames), over every move where the model
        // says how its view moved; precision against every real move.
        let (all_real, seen_real) = (real.camera_moves(), real.seen_camera_moves());
        let (all_real, seen_real) = (&all_real[frames.clone()], &seen_real[frames.clone()]);
        let dreamed = &dream.shift[frames.clone()];
        let real_over = if dream.exact { all_real } else { seen_real };
        // The recall's counts from the moves it is over, the rest against every real move.
        let scored = |over: ScrollMatch, every: ScrollMatch| ScrollMatch {
            real: over.real,
            real_matched: over.real_matched,
            ..every
        };
        let every = match_scrolls(all_real, dreamed, SCROLL_WINDOW);
        let shown = match_scrolls(seen_real, dreamed, SCROLL_WINDOW);
        let moves = scored(if dream.exact { every } else { shown }, every);
        for (way, sign) in by_direction.iter_mut().zip([-1, 1]) {
            way.add(scored(
                match_scrolls_toward(real_over, dreamed, SCROLL_WINDOW, sign),
                match_scrolls_toward(all_real, dreamed, SCROLL_WINDOW, sign),
            ));
        }
        real_moves += every.real;
        unseen += every.real - shown.real;
        scrolls.add(moves);
        for (key, from, hold) in cases(&real.keys, along) {
            let to = from + hold.min(FIDELITY_FRAMES);
            if to >= frames.end {
                continue;
            }
            let (Some(a), Some(b)) = (real.player[from], real.player[to]) else {
                continue;
            };
            let camera = (real.camera[to] - real.camera[from]) as f32;
            let want = direction(a, (b.0 + camera, b.1));
            let got = match (dream.player[from], dream.player[to]) {
                (Some(a), Some(b)) => {
                    let shifted: i32 = dream.shift[from + 1..=to].iter().sum();
                    Some(direction(a, (b.0 + shifted as f32, b.1)))
                }
                _ => None,
            };
            let (n, cases) = &mut agree[key as usize];
            *cases += 1;
            *n += usize::from(!misses[key as usize].count(want, got));
        }
        per_session.push(SessionSummary {
            level: real.level,
            scored_frames: frames.len(),
            presence: (on > 0).then(|| f as f64 / on as f64),
            pose: both.share(both.same_pose),
            place: both.share(both.same_place),
            lost_at,
            real_camera_moves: every.real,
            dreamed_camera_moves: moves.dreamed,
            matched_camera_moves: moves.real_matched,
        });
    }
    let ratio = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    // Keys never pressed (every key but noop in idle sessions) have no figure, and no part in
    // the mean.
    let mut fidelity: BTreeMap<String, f64> = Action::ALL
        .iter()
        .filter(|&&a| agree[a as usize].1 > 0)
        .map(|&a| {
            let (n, cases) = agree[a as usize];
            (a.name().to_owned(), n as f64 / cases as f64)
        })
        .collect();
    let mean = fidelity.values().sum::<f64>() / fidelity.len().max(1) as f64;
    fidelity.insert("mean".into(), mean);
    SessionMeasures {
        presence: ratio(found, on_screen).unwrap_or(0.0),
        kept_player: ratio(kept, played).unwrap_or(0.0),
        kept_player_interval: wilson_interval(kept, played),
        median_frames_to_loss: median(&losses),
        scroll_recall: ratio(scrolls.real_matched, scrolls.real),
        scroll_precision: ratio(scrolls.dreamed_matched, scrolls.dreamed),
        real_camera_moves: real_moves,
        real_camera_moves_unseen: unseen,
        dreamed_camera_moves: scrolls.dreamed,
        scroll_by_direction: ["left", "right"]
            .into_iter()
            .map(String::from)
            .zip(by_direction)
            .collect(),
        pose: both_found.share(both_found.same_pose),
        place: both_found.share(both_found.same_place),
        both_found,
        fidelity,
        fidelity_cases: Action::ALL
            .iter()
            .map(|&a| (a.name().to_owned(), agree[a as usize].1))
            .collect(),
        fidelity_misses: Action::ALL
            .iter()
            .map(|&a| (a.name().to_owned(), misses[a as usize]))
            .collect(),
        per_session,
    }
}

/// The frames in which both players are found, compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BothFound {
    pub frames: usize,
    /// Of those, frames in which both crouch or neither does.
    pub same_pose: usize,
    /// Of those, frames in which the dreamed player is within [`PLACE_TOLERANCE`] of the real
    /// one in the world.
    pub same_place: usize,
    /// Of those, frames in which the real player crouches, and the dreamed one.
    pub real_crouched: usize,
    pub dreamed_crouched: usize,
}

/// One player's side of a frame for [`BothFound`].
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The place in the world: on screen, plus how far the view moved since the start.
    at: (f32, f32),
    crouched: bool,
}

impl BothFound {
    fn add(&mut self, real: Option<Seen>, dreamed: Option<Seen>) {
        let (Some(real), Some(dreamed)) = (real, dreamed) else {
            return;
        };
        let near = |a: f32, b: f32| (a - b).abs() <= PLACE_TOLERANCE;
        self.frames += 1;
        self.same_pose += usize::from(real.crouched == dreamed.crouched);
        self.same_place +=
            usize::from(near(real.at.0, dreamed.at.0) && near(real.at.1, dreamed.at.1));
        self.real_crouched += usize::from(real.crouched);
        self.dreamed_crouched += usize::from(dreamed.crouched);
    }

    fn merge(&mut self, other: Self) {
        self.frames += other.frames;
        self.same_pose += other.same_pose;
        self.same_place += other.same_place;
        self.real_crouched += other.real_crouched;
        self.dreamed_crouched += other.dreamed_crouched;
    }

    fn share(&self, n: usize) -> Option<f64> {
        (self.frames > 0).then(|| n as f64 / self.frames as f64)
    }
}

/// The cases fidelity scores in a script: its presses, or with `along` every [`FIDELITY_FRAMES`]
/// frames of each hold, each (key, the frame before its first step, frames left of the hold).
fn cases(keys: &[Action], along: bool) -> Vec<(Action, usize, usize)> {
    let presses = presses(keys);
    if !along {
        return presses;
    }
    presses
        .into_iter()
        .flat_map(|(key, from, hold)| {
            (0..hold)
                .step_by(FIDELITY_FRAMES)
                .map(move |k| (key, from + k, hold - k))
        })
        .collect()
}

/// The key presses of a script: (key, the frame before its first step, frames held).
fn presses(keys: &[Action]) -> Vec<(Action, usize, usize)> {
    let mut out: Vec<(Action, usize, usize)> = Vec::new();
    for (t, &key) in keys.iter().enumerate() {
        match out.last_mut() {
            Some((last, _, hold)) if *last == key => *hold += 1,
            _ => out.push((key, t, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The latent of a transition is read from the frames up to it: a session cut short infers
    /// the same latents for the transitions it has, with a LAM that reads clips in one view
    /// (whose alignment would otherwise reach to the later frames' steps of the view).
    #[test]
    fn a_transitions_latent_never_sees_the_frames_after_it() {
        use crate::model::GenieConfig;
        use crate::model::checkpoint::tests::tiny_game_config;
        let mut config: GenieConfig = tiny_game_config();
        config.lam.one_view = true;
        tch::manual_seed(3);
        let genie = Genie::new(config, Device::Cpu).unwrap();
        let keys = vec![Action::Right; 60];
        let full = RealSession::play(GameConfig::default(), EVAL_SEED_START + 7, keys.clone());
        assert!(
            full.camera_moves().iter().filter(|&&m| m != 0).count() >= 3,
            "the view steps while the player runs"
        );
        let latents = inferred_latents(&genie, std::slice::from_ref(&full));
        assert_eq!(latents[0].len(), 60);
        for cut in [5, 17, 33] {
            let short = RealSession::play(
                GameConfig::default(),
                EVAL_SEED_START + 7,
                keys[..cut].to_vec(),
            );
            let first = inferred_latents(&genie, std::slice::from_ref(&short));
            assert_eq!(first[0][..], latents[0][..cut], "cut at {cut}");
        }
    }

    #[test]
    fn a_hold_is_scored_along_in_windows_of_the_fidelity_frames() {
        use Action::{Noop, Right};
        let keys = [vec![Right; 10], vec![Noop; 3]].concat();
        assert_eq!(cases(&keys, false), presses(&keys));
        assert_eq!(
            cases(&keys, true),
            [(Right, 0, 10), (Right, 4, 6), (Right, 8, 2), (Noop, 10, 3)]
        );
        assert!(cases(&[], true).is_empty());
    }

    #[test]
    fn presses_start_at_the_frame_before_their_first_step() {
        use Action::{Jump, Left, Right};
        assert_eq!(
            presses(&[Right, Right, Jump, Left, Left, Left]),
            [(Right, 0, 2), (Jump, 2, 1), (Left, 3, 3)]
        );
        assert!(presses(&[]).is_empty());
    }

    #[test]
    fn a_dream_that_is_the_real_game_scores_full_marks() {
        // The real frames read as if dreamed: every measure must find the dream perfect, with
        // either camera. This ties the camera the game reports to the shift read from the
        // frames, and the motion relative to the world on both sides.
        for config in [GameConfig::original(), GameConfig::default()] {
            let reals: Vec<RealSession> = (0..6)
                .map(|i| RealSession::play(config, EVAL_SEED_START + 20 + i, human_keys(i, 200)))
                .collect();
            let dreams: Vec<DreamTrace> = reals
                .iter()
                .map(|r| {
                    let mut d = DreamTrace::new();
                    r.frames.iter().for_each(|f| d.push(f, None, false));
                    d
                })
                .collect();
            let m = score(reals.iter().zip(&dreams), false);
            assert_eq!(m.presence, 1.0, "{config:?}");
            assert_eq!(m.kept_player, 1.0);
            let [lo, hi] = m.kept_player_interval.unwrap();
            assert!(hi == 1.0 && lo < 1.0, "{lo} {hi}");
            assert_eq!(m.median_frames_to_loss, None);
            assert_eq!(m.pose, Some(1.0));
            assert!(
                m.both_found.real_crouched > 0,
                "the keys crouch: {:?}",
                m.both_found
            );
            assert!(
                m.real_camera_moves > 0,
                "the sessions scroll: {:?}",
                m.per_session
            );
            assert_eq!(m.scroll_recall, Some(1.0));
            assert_eq!(m.scroll_precision, Some(1.0));
            let cases: usize = m.fidelity_cases.values().sum();
            assert!(cases > 30, "{cases} presses scored");
            // The player moves as in the real game, except over a camera move no frame shows (the
            // view even ground): read as no scroll, it makes the player's step 40 px off sideways.
            // Each such move falls in one press's frames at most.
            let missed: Vec<Misses> = m.fidelity_misses.values().copied().collect();
            assert!(
                missed.iter().all(|x| x.lost + x.y + x.xy == 0),
                "{missed:?}"
            );
            let off: usize = missed.iter().map(|x| x.x).sum();
            assert!(
                off <= m.real_camera_moves_unseen,
                "{off} presses off: {missed:?}"
            );
            assert!(m.fidelity["mean"] > 0.9, "{:?}", m.fidelity);
            // A model that says how its view moved (as the game does): every move is scored,
            // those over even ground too, and the player is never off.
            let said: Vec<DreamTrace> = reals
                .iter()
                .map(|r| {
                    let mut d = DreamTrace::new();
                    for (f, px) in r.frames.iter().zip(r.camera_moves()) {
                        d.push(f, Some(px), false);
                    }
                    d
                })
                .collect();
            let exact = score(reals.iter().zip(&said), false);
            assert_eq!(exact.scroll_recall, Some(1.0));
            assert_eq!(exact.scroll_precision, Some(1.0));
            assert_eq!(exact.real_camera_moves, m.real_camera_moves);
            assert!(exact.fidelity_misses.values().all(|x| x.x == 0));
            assert_eq!((exact.pose, exact.place), (Some(1.0), Some(1.0)));
            // A dream that loses the player at once and never scrolls.
            let blank = vec![0u8; FRAME_BYTES];
            let lost: Vec<DreamTrace> = reals
                .iter()
                .map(|r| {
                    let mut d = DreamTrace::new();
                    r.frames.iter().for_each(|_| d.push(&blank, None, false));
                    d
                })
                .collect();
            let m = score(reals.iter().zip(&lost), false);
            assert_eq!((m.presence, m.kept_player), (0.0, 0.0));
            assert_eq!((m.pose, m.place, m.both_found.frames), (None, None, 0));
            assert_eq!(m.median_frames_to_loss, Some(1.0));
            assert_eq!((m.scroll_recall, m.scroll_precision), (Some(0.0), None));
            assert_eq!(m.fidelity["mean"], 0.0);
        }
    }

    /// A dream that crouches where the real player stands, still and in place, keeps the player
    /// in every frame and agrees on its pose in none.
    #[test]
    fn a_dream_that_crouches_where_the_player_stands_has_the_pose_wrong() {
        let config = GameConfig::default();
        let level = EVAL_SEED_START + 3;
        let idle = RealSession::play(config, level, vec![Action::Noop; 40]);
        let crouching = RealSession::play(config, level, vec![Action::Down; 40]);
        assert!(idle.scored == 41 && idle.crouched.iter().all(|&c| c == Some(false)));
        let mut dream = DreamTrace::new();
        dream.push(&idle.frames[0], None, false);
        crouching.frames[1..]
            .iter()
            .for_each(|f| dream.push(f, None, false));
        let m = score([(&idle, &dream)], false);
        assert_eq!((m.presence, m.kept_player), (1.0, 1.0));
        assert_eq!(m.pose, Some(0.0));
        let counts = (m.both_found.frames, m.both_found.dreamed_crouched);
        assert_eq!(counts, (40, 40));
        assert_eq!(m.both_found.real_crouched, 0);
        // Crouched in place: its centre 1.5 px lower, within the place's half tile.
        assert_eq!(m.place, Some(1.0));
    }

    #[test]
    fn a_real_session_stops_scoring_where_the_life_ends() {
        let (mut ended, mut moved) = (0, 0);
        for i in 0..8 {
            let level = EVAL_SEED_START + i;
            let real = RealSession::play(GameConfig::original(), level, human_keys(i, 300));
            assert_eq!((real.player.len(), real.camera.len()), (301, 301));
            if real.scored < 301 {
                // The frame after the end is the level's start again.
                ended += 1;
                assert_eq!(real.camera[real.scored], 0);
                assert_eq!(
                    real.frames[real.scored],
                    Game::with_config(level, GameConfig::original()).frame()
                );
            }
            let moves = real.camera_moves();
            moved += usize::from(moves[1..real.scored].iter().any(|&m| m != 0));
        }
        assert!(ended > 0, "some of 8 human-like sessions lose a life");
        assert!(moved > 0, "some of them move the camera before that");
    }
}
