//! Control: does the dream move the player the way the key says? Held-out game states, the
//! player found by its colour in real and dreamed frames, and `action_fidelity` (see
//! [`super::run`] for the measure's definition).

use std::collections::BTreeMap;

use serde::Serialize;
use tch::Tensor;

use crate::data::{DEFAULT_STICKINESS, ScriptedPlayer};
use crate::game::{Action, FRAME_BYTES, Game, GameConfig, KeyState, Status, find_player_within};
use crate::model::dynamics::ActionSource;
use crate::model::{Genie, frames_to_bytes};
use crate::session::keys::{KeyMap, Keyed};

use super::run::{EvalOptions, action_ids, rollout, to_tensor};

pub use crate::game::PLAYER_TOLERANCE;

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

pub(super) fn find_player_approx(frame: &[u8]) -> Option<(f32, f32)> {
    find_player_within(frame, PLAYER_TOLERANCE)
}

pub(super) fn direction(from: (f32, f32), to: (f32, f32)) -> (i8, i8) {
    way((to.0 - from.0, to.1 - from.1))
}

/// The way a move of (Δx, Δy) pixels goes: the sign of each, with a 1 px dead band.
pub(super) fn way(moved: (f32, f32)) -> (i8, i8) {
    let sign = |d: f32| {
        if d > 1.0 {
            1
        } else if d < -1.0 {
            -1
        } else {
            0
        }
    };
    (sign(moved.0), sign(moved.1))
}

/// The [`way`] of each move (`None` stays `None`).
fn ways(moves: Vec<Option<(f32, f32)>>) -> Vec<Option<(i8, i8)>> {
    moves.into_iter().map(|m| m.map(way)).collect()
}

/// How far dreams went the real player's way, per axis: over the cases whose real player moved
/// more than the dead band along it, the dreamed move along the real one's way (a move the other
/// way counts against, a dreamed player not found as none) over the real moves' length. 1: as
/// far as the real player on the whole; a dash dreamed at a walk's speed, about 0.45.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Reach {
    /// Left and right; `None` where no real player moved along it.
    pub x: Option<f64>,
    /// Up and down.
    pub y: Option<f64>,
}

/// Sums towards a [`Reach`]: (dreamed along the real way, real length) per axis.
#[derive(Debug, Clone, Copy, Default)]
struct ReachSums([(f64, f64); 2]);

impl ReachSums {
    fn add(&mut self, real: (f32, f32), dreamed: Option<(f32, f32)>) {
        let dreamed = dreamed.unwrap_or_default();
        for (sums, (r, d)) in self
            .0
            .iter_mut()
            .zip([(real.0, dreamed.0), (real.1, dreamed.1)])
        {
            if r.abs() > 1.0 {
                sums.0 += f64::from(d * r.signum());
                sums.1 += f64::from(r.abs());
            }
        }
    }

    fn reach(&self) -> Reach {
        let share = |(along, length): (f64, f64)| (length > 0.0).then(|| along / length);
        Reach {
            x: share(self.0[0]),
            y: share(self.0[1]),
        }
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
    let InPlay { game, history, .. } = game_in_play_with_actions(config, level_seed, frames, case);
    (game, history)
}

/// A game partway through its level, as [`game_in_play_with_actions`] leaves it.
pub struct InPlay {
    pub game: Game,
    /// Its last frames, oldest first ([frames] of u8 RGB).
    pub history: Vec<u8>,
    /// The game actions between them (`actions[k]` produced frame k+1).
    pub actions: Vec<u8>,
    /// What the keys since the level (re)started say of the player ([`KeyState`]: the way it
    /// faces, where a dash stands): what the runtime knows in play.
    pub keys: KeyState,
}

/// [`game_in_play`] plus the `frames − 1` game actions between those frames (`actions[k]`
/// produced frame k+1; Noop where a restart left fewer frames and the oldest was repeated) and
/// what the keys say of the player.
pub fn game_in_play_with_actions(
    config: GameConfig,
    level_seed: u64,
    frames: usize,
    case: u64,
) -> InPlay {
    assert!(frames >= 1, "game_in_play needs at least the current frame");
    let mut game = Game::with_config(level_seed, config);
    let mut player = ScriptedPlayer::new(case, DEFAULT_STICKINESS);
    let warm = 8 + (case * 7919 % 120) as usize;
    let (mut history, mut actions) = (Vec::new(), Vec::new());
    let mut keys = KeyState::default();
    for tick in 0..warm + frames - 1 {
        if tick >= warm {
            history.extend(game.frame());
        }
        let action = player.act(&game);
        if tick >= warm {
            actions.push(action as u8);
        }
        keys.act(action, config.controls);
        if game.step(action) != Status::Alive {
            game.restart();
            history.clear();
            actions.clear();
            keys = KeyState::default();
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
    InPlay {
        game,
        history: history[history.len() - frames * FRAME_BYTES..].to_vec(),
        actions,
        keys,
    }
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
    pub(super) ids: Tensor,
    prompt_actions: Tensor,
    /// Per case, what the keys before it say of the player.
    pub(super) keys: Vec<KeyState>,
}

impl ControlCases {
    /// States from the levels `seeds` (case index `k` for the k-th seed's scripted player).
    pub(super) fn new(genie: &Genie, seeds: impl Iterator<Item = (u64, u64)>, p: usize) -> Self {
        let device = genie.tokenizer_vs.device();
        let cases: Vec<InPlay> = seeds
            .map(|(seed, case)| game_in_play_with_actions(genie.config.game, seed, p, case))
            .collect();
        let bytes: Vec<u8> = cases
            .iter()
            .flat_map(|c| c.history.iter().copied())
            .collect();
        let frames = to_tensor(&bytes, cases.len(), p, device);
        let (ids, prompt_actions, decoded) = tch::no_grad(|| {
            let ids = genie.tokenizer.encode(&frames);
            let prompt_actions = if genie.config.dynamics.actions == ActionSource::Game {
                action_ids(cases.iter().map(|c| c.actions.as_slice()), device)
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
            .map(|c| find_player_approx(&c.history[(p - 1) * FRAME_BYTES..]))
            .collect();
        Self {
            keys: cases.iter().map(|c| c.keys).collect(),
            games: cases.into_iter().map(|c| c.game).collect(),
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
        ways(self.real_moves(action, horizon))
    }

    /// Per case, the real player's move in the world (Δx, Δy pixels) after `horizon` steps of
    /// `action`; `None` where it dies or is not found.
    fn real_moves(&self, action: Action, horizon: usize) -> Vec<Option<(f32, f32)>> {
        self.games
            .iter()
            .zip(&self.real_starts)
            .map(|(game, &from)| {
                let mut real = game.clone();
                let alive = (0..horizon).all(|_| real.step(action) == Status::Alive);
                let from = from?;
                let to = find_player_approx(&real.frame())?;
                // Relative to the world: a camera move is not the player's.
                let camera = (real.camera_px() - game.camera_px()) as f32;
                alive.then_some((to.0 + camera - from.0, to.1 - from.1))
            })
            .collect()
    }

    /// Per case, where the dreamed player heads after the frames dreamed with `schedule` (a
    /// latent action per frame), from its place in the decoded start frame (`None` where it is
    /// not found in either).
    pub(super) fn dreamed_directions(
        &self,
        genie: &Genie,
        schedule: &[i64],
        opts: &EvalOptions,
    ) -> Vec<Option<(i8, i8)>> {
        let every = vec![schedule.to_vec(); self.games.len()];
        self.dreamed_directions_per_case(genie, &every, opts)
    }

    /// Per case, the latents of `action` held for `horizon` frames from its press, by `keys`
    /// (the keys before each case choose among a key's latents).
    pub(super) fn schedules(&self, keys: &KeyMap, action: Action, horizon: usize) -> Vec<Vec<i64>> {
        self.keys
            .iter()
            .map(|&k| keys.schedule(action, horizon, k))
            .collect()
    }

    /// [`ControlCases::dreamed_directions`] with a schedule per case (`schedules[case][frame]`,
    /// as [`ControlCases::schedules`] makes them).
    pub(super) fn dreamed_directions_per_case(
        &self,
        genie: &Genie,
        schedules: &[Vec<i64>],
        opts: &EvalOptions,
    ) -> Vec<Option<(i8, i8)>> {
        ways(self.dreamed_moves_per_case(genie, schedules, opts))
    }

    /// [`ControlCases::dreamed_directions_per_case`]'s moves (Δx, Δy pixels in the world).
    fn dreamed_moves_per_case(
        &self,
        genie: &Genie,
        schedules: &[Vec<i64>],
        opts: &EvalOptions,
    ) -> Vec<Option<(f32, f32)>> {
        let device = self.ids.device();
        let frames = schedules.first().map_or(0, Vec::len);
        let actions: Vec<Tensor> = (0..frames)
            .map(|t| {
                let step: Vec<i64> = schedules.iter().map(|s| s[t]).collect();
                Tensor::from_slice(&step).to_device(device)
            })
            .collect();
        self.dreamed_moves_driven(genie, &actions, opts)
    }

    /// [`ControlCases::dreamed_directions`] with a latent per case and frame (each of
    /// `actions` [B]).
    pub(super) fn dreamed_directions_driven(
        &self,
        genie: &Genie,
        actions: &[Tensor],
        opts: &EvalOptions,
    ) -> Vec<Option<(i8, i8)>> {
        ways(self.dreamed_moves_driven(genie, actions, opts))
    }

    /// [`ControlCases::dreamed_directions_driven`]'s moves (Δx, Δy pixels in the world).
    fn dreamed_moves_driven(
        &self,
        genie: &Genie,
        actions: &[Tensor],
        opts: &EvalOptions,
    ) -> Vec<Option<(f32, f32)>> {
        self.dreamed_moves_by(
            genie,
            actions.len(),
            &mut |t, _, _| actions[t].shallow_clone(),
            opts,
        )
    }

    /// The dreamed moves (Δx, Δy pixels in the world) with every case's game action `action`
    /// held for `opts.horizon` frames, turned into latents by `keys` in each dreamed state (the
    /// checkpoint's adapter, where it has one, reads the state).
    fn dreamed_moves_keyed(
        &self,
        genie: &Genie,
        keys: &KeyMap,
        action: Action,
        opts: &EvalOptions,
    ) -> Vec<Option<(f32, f32)>> {
        let mut states = self.keys.clone();
        let mut latent = |t: usize, ids: &Tensor, shown: Option<&Tensor>| {
            let keyed: Vec<Keyed> = states
                .iter_mut()
                .map(|state| keys.key(state, action, t == 0))
                .collect();
            let picked = keys.pick(genie.adapter.as_ref(), ids, shown, &keyed);
            Tensor::from_slice(&picked).to_device(ids.device())
        };
        self.dreamed_moves_by(genie, opts.horizon, &mut latent, opts)
    }

    fn dreamed_moves_by(
        &self,
        genie: &Genie,
        frames: usize,
        latent: &mut dyn FnMut(usize, &Tensor, Option<&Tensor>) -> Tensor,
        opts: &EvalOptions,
    ) -> Vec<Option<(f32, f32)>> {
        let dream = rollout(genie, &self.ids, &self.prompt_actions, frames, latent, opts);
        let dreamed = frames_to_bytes(&dream.last);
        self.dream_starts
            .iter()
            .zip(dreamed.chunks(FRAME_BYTES))
            .zip(dream.moved)
            .map(|((&from, end), moved)| {
                let to = find_player_approx(end)?;
                let from = from?;
                Some((to.0 + moved as f32 - from.0, to.1 - from.1))
            })
            .collect()
    }
}

/// Batches of (level seed, case) pairs: `count` levels from `first_seed`.
pub(super) fn case_batches(first_seed: u64, count: usize, batch: usize) -> Vec<Vec<(u64, u64)>> {
    let all: Vec<(u64, u64)> = (0..count as u64).map(|i| (first_seed + i, i)).collect();
    all.chunks(batch.max(1)).map(<[_]>::to_vec).collect()
}

/// What [`action_fidelity`] found, per game action (fidelity also its `mean`).
pub(super) struct KeyFidelity {
    pub fidelity: BTreeMap<String, f64>,
    pub cases: BTreeMap<String, usize>,
    pub misses: BTreeMap<String, Misses>,
    pub reach: BTreeMap<String, Reach>,
}

pub(super) fn action_fidelity(genie: &Genie, opts: &EvalOptions) -> KeyFidelity {
    // Per game action, whether each case's dream agreed; the cases of a batch are made once,
    // and (without an adapter) each schedule of latents dreamed once (a rollout is seeded per call, so game actions
    // sharing a schedule share its dream).
    let keys = KeyMap::new(&genie.config);
    let mut agree = vec![Vec::new(); Action::ALL.len()];
    let mut misses = vec![Misses::default(); Action::ALL.len()];
    let mut reach = vec![ReachSums::default(); Action::ALL.len()];
    for seeds in case_batches(opts.eval_seed_start, opts.clips, opts.batch) {
        let cases = ControlCases::new(genie, seeds.into_iter(), opts.prompt_frames);
        let mut dreams = BTreeMap::new();
        for action in Action::ALL {
            let real = cases.real_moves(action, opts.horizon);
            // With an adapter the latents depend on the dreamed states: each action its dream.
            let keyed;
            let got = match genie.adapter {
                Some(_) => {
                    keyed = cases.dreamed_moves_keyed(genie, &keys, action, opts);
                    &keyed
                }
                None => dreams
                    .entry(cases.schedules(&keys, action, opts.horizon))
                    .or_insert_with_key(|s| cases.dreamed_moves_per_case(genie, s, opts)),
            };
            for (real, got) in real.iter().zip(got.iter()) {
                if let Some(real) = *real {
                    let agreed = !misses[action as usize].count(way(real), got.map(way));
                    agree[action as usize].push(agreed);
                    reach[action as usize].add(real, *got);
                }
            }
        }
    }
    let (mut fidelity, mut counts, mut missed, mut reached) = (
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let mut agree_all = Vec::new();
    for action in Action::ALL {
        let agree = &agree[action as usize];
        let share = agree.iter().filter(|&&a| a).count() as f64 / agree.len().max(1) as f64;
        fidelity.insert(action.name().to_owned(), share);
        counts.insert(action.name().to_owned(), agree.len());
        missed.insert(action.name().to_owned(), misses[action as usize]);
        reached.insert(action.name().to_owned(), reach[action as usize].reach());
        agree_all.push(share);
    }
    fidelity.insert(
        "mean".into(),
        agree_all.iter().sum::<f64>() / agree_all.len() as f64,
    );
    KeyFidelity {
        fidelity,
        cases: counts,
        misses: missed,
        reach: reached,
    }
}

#[cfg(test)]
mod tests {
    use super::super::calibrate::CALIBRATION_SEED_START;
    use super::*;
    use crate::data::EVAL_SEED_START;
    use tch::Device;
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
    fn reach_is_the_dreamed_move_along_the_real_way_over_the_real_length() {
        let mut sums = ReachSums::default();
        assert_eq!(sums.reach(), Reach { x: None, y: None });
        // A dash of 14 px right dreamed as a walk of 6; a walk left of 6 px dreamed as far.
        sums.add((14.0, 0.5), Some((6.0, 0.0)));
        sums.add((-6.0, 0.0), Some((-6.0, 3.0)));
        assert_eq!(
            sums.reach(),
            Reach {
                x: Some(0.6),
                y: None
            }
        );
        // The wrong way counts against; a player lost counts as no move.
        sums.add((-10.0, -8.0), Some((2.0, -4.0)));
        sums.add((10.0, 0.0), None);
        let reach = sums.reach();
        assert!((reach.x.unwrap() - 10.0 / 40.0).abs() < 1e-9, "{reach:?}");
        assert_eq!(reach.y, Some(0.5));
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
            let InPlay {
                game: game2,
                history: frames2,
                actions,
                ..
            } = game_in_play_with_actions(config, EVAL_SEED_START + case, 5, case);
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
                .actions
                .is_empty()
        );
    }
}
