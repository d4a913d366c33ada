//! Keys to latent actions: the checkpoint's calibration read once. A game action held over
//! several frames gets its `press` latent on the first frame (the key newly down) and its `hold`
//! latent on the frames after; without a press calibration both are the same.
//!
//! Why two: the shipped LAM has no code for a jump straight up, and holding `jump` in the real
//! game takes off once and then changes nothing in the air, so the latent that best follows a
//! held `jump` is `noop`'s. One take-off latent on the first frame, then `noop`'s, follows it
//! better than either alone (docs/experiments.md, "Keys: calibration").
//!
//! A key may also depend on the keys before it, which the runtime knows in play ([`KeyState`]):
//! `dash` goes the way the player faces, which is the way of the last key that walked; a dash,
//! once started, runs eight frames whatever key is pressed, and cooling down after it the dash
//! key stands still. So the map reads the action the player carries out, not the key: every
//! frame of a dash gets the dash's latent, and the dash key cooling down `noop`'s
//! ([`KeyMap::key`]). Where the calibration found a better latent for an action while the
//! player faces one way, that latent replaces the action's there.
//!
//! And a key may get another latent once it has been held a while (`settled_calibration`,
//! from `settle_after` frames after its press on): the shipped LAM's code for "nothing changes"
//! also keeps a crouch, so a player left alone under it, once the sampler draws a crouch, stays
//! crouched for good; a blend that stands, given only to a key held long, lets it stand up
//! without touching how a key stops the player the frames after it is pressed.
//!
//! A key may instead have a cycle (`held_cycles`): its latents frame by frame from its press,
//! over and over while it is held. Held in the game, a jump key takes off again each time the
//! player lands; a press latent and a hold latent say one take-off, so a jump held in the dream
//! hopped once and stood. A cycle as long as the game's hop, taken from the LAM's own codes of
//! a held jump, says every take-off and landing.
//!
//! And the screen's left edge is a wall: a level's left end is one in the game, where the player
//! walking into it stands and the LAM reads "nothing changes", so the dynamics model never
//! learned a walk left there and, given one, walked the player off the screen for good. Where
//! the dreamed player stands against the left edge of the frame shown ([`against_left_edge`]),
//! an action that would walk it further is carried out without its walk ([`KeyMap::walled`]).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor};

use crate::game::{Action, Controls, FRAME_BYTES, Facing, KeyState, PLAYER_TOLERANCE};
use crate::model::frames::frames_to_bytes;
use crate::model::{Adapter, GenieConfig};

/// Screen columns from the left edge within which the player's centre counts as against it: the
/// game's player, 6 px wide, stops at a level's left end with its centre at 3 px.
pub const WALL_PX: f32 = 4.5;

/// Per row of decoded frames [B, H, W, C] (f32 in [0, 1]), whether the player found in it
/// stands against the frame's left edge (its centre within [`WALL_PX`]); not where it is not
/// found or the frames are not the game's size.
pub fn against_left_edge(frames: &Tensor) -> Vec<bool> {
    let rows = frames.size().first().copied().unwrap_or(0).max(0) as usize;
    let bytes = frames_to_bytes(frames);
    if bytes.len() != rows * FRAME_BYTES {
        return vec![false; rows];
    }
    bytes
        .chunks_exact(FRAME_BYTES)
        .map(|frame| {
            crate::game::find_player_within(frame, PLAYER_TOLERANCE)
                .is_some_and(|(x, _)| x <= WALL_PX)
        })
        .collect()
}

/// Keys a player bound to latent actions by hand (`L` in the player), beside the checkpoint:
/// `{"right": 3, "jump": 6}`. They replace the calibration's latents for those keys, pressed and
/// held: what a world learned from another game's video has instead of a calibration.
pub const KEYS_FILE: &str = "keys.json";

/// Reads `dir/keys.json` (none: empty), every name an action and every latent one the model
/// has.
pub fn read_bound_keys(dir: &Path, latents: i64) -> Result<BTreeMap<String, i64>, String> {
    let path = dir.join(KEYS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let keys: BTreeMap<String, i64> =
        crate::json::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    for (name, &latent) in &keys {
        if name.parse::<Action>().is_err() {
            return Err(format!(
                "{}: {name:?} is not one of the 8 actions",
                path.display()
            ));
        }
        if !(0..latents).contains(&latent) {
            return Err(format!(
                "{}: {name} is bound to latent {latent}, but the model has 0 to {}",
                path.display(),
                latents - 1
            ));
        }
    }
    Ok(keys)
}

/// Writes `keys` as `dir/keys.json` (beside it first, then renamed over it).
pub fn write_bound_keys(dir: &Path, keys: &BTreeMap<String, i64>) -> std::io::Result<()> {
    let tmp = dir.join(".keys.json.tmp");
    let json = serde_json::to_string_pretty(keys).expect("keys serialise");
    std::fs::write(&tmp, json + "\n")?;
    std::fs::rename(&tmp, dir.join(KEYS_FILE))
}

/// `config` with `keys` bound: their latents replace the calibration's, pressed and held (what
/// the player's overlay says each latent means follows). A world built from it marks them bound
/// too ([`KeyMap::bind`]), so that an adapter leaves them as they are.
pub fn bind_keys(config: &mut GenieConfig, keys: &BTreeMap<String, i64>) {
    if keys.is_empty() {
        return;
    }
    let calibration = config.calibration.get_or_insert_with(BTreeMap::new);
    calibration.extend(keys.iter().map(|(k, &v)| (k.clone(), v)));
    if let Some(press) = config.press_calibration.as_mut() {
        press.extend(keys.iter().map(|(k, &v)| (k.clone(), v)));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    /// Per game action (by index), the latent of the frames a key is held.
    pub hold: [i64; 8],
    /// Per game action, the latent of a key's first frame.
    pub press: [i64; 8],
    /// Per [`Facing`] (by index) and game action, a hold latent that replaces `hold`'s while
    /// the player faces that way (`genie.json`'s `facing_calibration`).
    pub facing_hold: [[Option<i64>; 8]; 2],
    /// The same for the first frame: where a facing has a hold latent of its own and no press
    /// latent, its press is that hold.
    pub facing_press: [[Option<i64>; 8]; 2],
    /// Per game action, the latent of the frames it has been held `settle_after` frames or
    /// more after its press, where it has one (`genie.json`'s `settled_calibration`).
    pub settled: [Option<i64>; 8],
    /// Frames after its press from which a held action gets its `settled` latent.
    pub settle_after: u32,
    /// Per game action, the latents of its frames from its press on, over and over, where it
    /// has them (`genie.json`'s `held_cycles`): they replace the maps and the settled latent.
    pub cycles: [Option<Vec<i64>>; 8],
    /// Per game action, whether a player bound it by hand ([`KeyMap::bind`]): it keeps its
    /// latent where the checkpoint's adapter would pick another, and drives it whatever the
    /// keys before it.
    pub bound: [bool; 8],
    /// The controls of the game the checkpoint learned: what a key does after the keys before.
    /// `None` for a world whose dynamics model learned from another game's video, whose keys
    /// follow rules genie does not know: there every key is carried out as itself (the way of
    /// the last walking key is still the facing).
    pub controls: Option<Controls>,
}

/// One frame of a key as the map reads it ([`KeyMap::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyed {
    /// The game action the player carries out ([`KeyState::act`]).
    pub action: Action,
    /// Whether this frame gets the action's press latent: the action carried out changed, or
    /// the key was just pressed and is carried out as itself (not a dash key pressed again
    /// during a dash).
    pub pressed: bool,
    /// The way the player faces while it acts.
    pub facing: Facing,
    /// Frames the action has been carried out since its press before this one (0: pressed).
    pub held: u32,
}

impl KeyMap {
    /// From `genie.json`'s `calibration` and `press_calibration`: game actions missing from
    /// the first map their own index (an uncalibrated checkpoint), from the second their hold.
    pub fn new(config: &GenieConfig) -> Self {
        let read = |map: Option<&std::collections::BTreeMap<String, i64>>, fallback: [i64; 8]| {
            let mut out = fallback;
            if let Some(map) = map {
                for (slot, action) in out.iter_mut().zip(Action::ALL) {
                    if let Some(&latent) = map.get(action.name()) {
                        *slot = latent;
                    }
                }
            }
            out
        };
        let hold = read(
            config.calibration.as_ref(),
            std::array::from_fn(|i| i as i64),
        );
        let press = read(config.press_calibration.as_ref(), hold);
        let by_facing = |maps: Option<&BTreeMap<String, BTreeMap<String, i64>>>| {
            let mut out = [[None; 8]; 2];
            for (facing, map) in maps.into_iter().flatten() {
                let Ok(facing) = facing.parse::<Facing>() else {
                    continue;
                };
                for (slot, action) in out[facing as usize].iter_mut().zip(Action::ALL) {
                    *slot = map.get(action.name()).copied();
                }
            }
            out
        };
        let settled = config
            .settled_calibration
            .as_ref()
            .map_or([None; 8], |map| {
                Action::ALL.map(|action| map.get(action.name()).copied())
            });
        Self {
            hold,
            press,
            facing_hold: by_facing(config.facing_calibration.as_ref()),
            facing_press: by_facing(config.facing_press_calibration.as_ref()),
            settled,
            settle_after: config.settle_after.unwrap_or(0),
            cycles: Action::ALL.map(|action| {
                config
                    .held_cycles
                    .as_ref()
                    .and_then(|map| map.get(action.name()).cloned())
            }),
            bound: [false; 8],
            controls: (!config.learned_from_video("dynamics")).then_some(config.game.controls),
        }
    }

    /// `action` drives `latent`, pressed and held, whatever the state.
    pub fn bind(&mut self, action: Action, latent: i64) {
        let i = action as usize;
        self.hold[i] = latent;
        self.press[i] = latent;
        for f in 0..2 {
            self.facing_hold[f][i] = None;
            self.facing_press[f][i] = None;
        }
        self.settled[i] = None;
        self.cycles[i] = None;
        self.bound[i] = true;
    }

    /// `key` on one frame, pressed (its first frame) or held, by a player whose keys so far left
    /// `state`, which it advances: the action carried out, whether that gets its press latent,
    /// the way the player faces. A key bound by hand is carried out as itself.
    pub fn key(&self, state: &mut KeyState, key: Action, pressed: bool) -> Keyed {
        let (before, dashing) = (state.last, state.dashing());
        let done = match self.controls {
            Some(controls) => state.act(key, controls),
            None => state.pass(key),
        };
        let action = if self.bound[key as usize] { key } else { done };
        // The dash key pressed again during a dash goes on with it: no new press.
        let pressed = before != Some(done) || (pressed && done == key && !dashing);
        // A state from before any key (a clip's start) has held nothing: its first is a press.
        let held = if pressed {
            0
        } else {
            state.held.saturating_add(1)
        };
        state.held = held;
        Keyed {
            action,
            pressed,
            facing: state.facing,
            held,
        }
    }

    /// Per frame of a run of keys (a press wherever the key differs from the frame before's,
    /// and on the first), from `state`.
    pub fn along(&self, mut state: KeyState, keys: &[Action]) -> Vec<Keyed> {
        keys.iter()
            .zip(Self::presses(keys))
            .map(|(&k, pressed)| self.key(&mut state, k, pressed))
            .collect()
    }

    /// `k` carried out by a player standing against the screen's left edge: a walk left
    /// (`left`, a dash that way) stands, `left_jump` jumps straight up, as the game's player
    /// does at a level's left end; the press and the frames held stay the key's. Unchanged for
    /// keys bound by hand and for a world learned from another game's video, whose edges genie
    /// does not know.
    pub fn walled(&self, k: Keyed) -> Keyed {
        if self.controls.is_none() || self.bound[k.action as usize] {
            return k;
        }
        let action = match k.action {
            Action::Left => Action::Noop,
            Action::LeftJump => Action::Jump,
            Action::Dash if k.facing == Facing::Left => Action::Noop,
            other => other,
        };
        Keyed { action, ..k }
    }

    /// The latent of each row of a batch, given its keyed frame ([`KeyMap::key`]) and the
    /// state: the current frame's tokens `ids` [B, N] and, where known, the frame shown
    /// `shown` [B, H, W, C] (a row whose player stands against its left edge is
    /// [`KeyMap::walled`]). The checkpoint's action adapter picks where it has one (but for
    /// keys bound by hand, and keys held long enough to get their settled latents); else the
    /// maps.
    pub fn pick(
        &self,
        adapter: Option<&Adapter>,
        ids: &Tensor,
        shown: Option<&Tensor>,
        keyed: &[Keyed],
    ) -> Vec<i64> {
        // The frame is read only where the wall would change a row's action.
        let walls = shown
            .filter(|_| keyed.iter().any(|&k| self.walled(k) != k))
            .map(against_left_edge);
        let keyed: Vec<Keyed> = keyed
            .iter()
            .enumerate()
            .map(|(i, &k)| match walls.as_ref().and_then(|w| w.get(i)) {
                Some(true) => self.walled(k),
                _ => k,
            })
            .collect();
        let keyed = &keyed[..];
        let table = keyed.iter().map(|&k| self.latent_of(k));
        let Some(adapter) = adapter else {
            return table.collect();
        };
        let device = ids.device();
        let indices: Vec<i64> = keyed.iter().map(|k| k.action as i64).collect();
        let pressed: Vec<bool> = keyed.iter().map(|k| k.pressed).collect();
        let picked = adapter.net.pick(
            ids,
            &Tensor::from_slice(&indices).to_device(device),
            &Tensor::from_slice(&pressed).to_device(device),
        );
        let picked = Vec::<i64>::try_from(picked.to_device(Device::Cpu)).expect("i64 latents");
        table
            .zip(picked)
            .zip(keyed)
            .map(|((mapped, picked), &k)| {
                if self.bound[k.action as usize] {
                    mapped
                } else {
                    self.timed_latent(k).unwrap_or(picked)
                }
            })
            .collect()
    }

    /// Whether each frame of a run of game actions is a press: an action that differs from the
    /// frame before's (the first always).
    pub fn presses(actions: &[Action]) -> Vec<bool> {
        (0..actions.len())
            .map(|t| t == 0 || actions[t] != actions[t - 1])
            .collect()
    }

    /// The latent for `action`, on the first frame it is pressed or on a frame it is held,
    /// while the player faces `facing`.
    pub fn latent(&self, action: Action, first_frame: bool, facing: Facing) -> i64 {
        let (i, f) = (action as usize, facing as usize);
        let hold = self.facing_hold[f][i];
        if first_frame {
            self.facing_press[f][i].or(hold).unwrap_or(self.press[i])
        } else {
            hold.unwrap_or(self.hold[i])
        }
    }

    /// The latent of a keyed frame: its cycle's where its action has one, else its settled
    /// latent once held long enough, else [`KeyMap::latent`]'s.
    pub fn latent_of(&self, k: Keyed) -> i64 {
        self.timed_latent(k)
            .unwrap_or_else(|| self.latent(k.action, k.pressed, k.facing))
    }

    /// The latent a keyed frame gets for how long its action has been held: its cycle's, or
    /// its settled latent `settle_after` frames after its press on.
    fn timed_latent(&self, k: Keyed) -> Option<i64> {
        let i = k.action as usize;
        match &self.cycles[i] {
            Some(cycle) => Some(cycle[k.held as usize % cycle.len()]),
            None => self.settled[i].filter(|_| !k.pressed && k.held >= self.settle_after),
        }
    }

    /// The latents of the key `action` held for `frames` frames from its press, by a player
    /// whose keys before left `state`.
    pub fn schedule(&self, action: Action, frames: usize, mut state: KeyState) -> Vec<i64> {
        (0..frames)
            .map(|t| self.latent_of(self.key(&mut state, action, t == 0)))
            .collect()
    }

    /// The latents of a run of keys, one per frame, from a level's start.
    pub fn latents(&self, actions: &[Action]) -> Vec<i64> {
        self.along(KeyState::default(), actions)
            .into_iter()
            .map(|k| self.latent_of(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_keys_replace_the_calibration_and_bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_bound_keys(dir.path(), 8).unwrap().is_empty());
        let keys = BTreeMap::from([("right".to_owned(), 5), ("jump".to_owned(), 2)]);
        write_bound_keys(dir.path(), &keys).unwrap();
        let read = read_bound_keys(dir.path(), 8).unwrap();
        assert_eq!(read, keys);
        let mut config = GenieConfig {
            calibration: Some(BTreeMap::from([("right".to_owned(), 1)])),
            press_calibration: Some(BTreeMap::from([("jump".to_owned(), 6)])),
            ..Default::default()
        };
        bind_keys(&mut config, &read);
        let map = KeyMap::new(&config);
        assert_eq!(map.schedule(Action::Right, 2, KeyState::default()), [5, 5]);
        assert_eq!(
            map.schedule(Action::Jump, 2, KeyState::default()),
            [2, 2],
            "the press too"
        );
        for (text, want) in [
            (r#"{"hop": 1}"#, "not one of the 8 actions"),
            (r#"{"jump": 9}"#, "0 to 7"),
            (r#"{"jump": "x"}"#, "jump"),
        ] {
            std::fs::write(dir.path().join(KEYS_FILE), text).unwrap();
            let err = read_bound_keys(dir.path(), 8).unwrap_err();
            assert!(err.contains("keys.json") && err.contains(want), "{err}");
        }
    }

    #[test]
    fn a_press_gets_its_own_latent_and_the_frames_held_after_it_the_hold_latent() {
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("jump".to_owned(), 3),
                ("noop".to_owned(), 3),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([("jump".to_owned(), 6)])),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        assert_eq!(
            keys.schedule(Action::Jump, 4, KeyState::default()),
            [6, 3, 3, 3]
        );
        assert_eq!(
            keys.schedule(Action::Right, 3, KeyState::default()),
            [1, 1, 1],
            "no press: the hold"
        );
        // Uncalibrated actions map to their own index, pressed or held.
        assert_eq!(
            keys.schedule(Action::Dash, 2, KeyState::default()),
            [Action::Dash as i64; 2]
        );
        use Action::{Jump, Noop, Right};
        assert_eq!(
            keys.latents(&[Jump, Jump, Noop, Jump, Right, Jump, Jump]),
            [6, 3, 3, 6, 1, 6, 3]
        );
        // Without a press calibration every frame gets the hold latent.
        let plain = KeyMap::new(&GenieConfig {
            press_calibration: None,
            ..config
        });
        assert_eq!(plain.latents(&[Noop, Jump, Jump]), [3, 3, 3]);
        assert_eq!(plain.press, plain.hold);
    }

    #[test]
    fn a_key_may_get_another_latent_while_the_player_faces_left() {
        use Action::{Dash, Down, Left, Noop, Right};
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 1),
                ("left".to_owned(), 4),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([("dash".to_owned(), 2)])),
            facing_calibration: Some(BTreeMap::from([(
                "left".to_owned(),
                BTreeMap::from([("dash".to_owned(), 4)]),
            )])),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        // Facing right (a level's start, or after a right key) the maps as they were; facing
        // left the dash gets its own hold, and with no press of its own that hold on the press.
        assert_eq!(
            keys.schedule(Dash, 3, KeyState::new(Facing::Right)),
            [2, 1, 1]
        );
        assert_eq!(
            keys.schedule(Dash, 3, KeyState::new(Facing::Left)),
            [4, 4, 4]
        );
        assert_eq!(keys.latents(&[Left, Noop, Dash, Dash]), [4, 0, 4, 4]);
        assert_eq!(keys.latents(&[Left, Right, Dash]), [4, 1, 2]);
        let facing: Vec<Facing> = keys
            .along(
                KeyState::default(),
                &[Noop, Left, Noop, Action::RightJump, Down],
            )
            .iter()
            .map(|k| k.facing)
            .collect();
        use Facing::{Left as L, Right as R};
        assert_eq!(facing, [R, L, L, R, R]);
        // A press of its own where the facing has one.
        let mut pressed = config.clone();
        pressed.facing_press_calibration = Some(BTreeMap::from([(
            "left".to_owned(),
            BTreeMap::from([("dash".to_owned(), 7)]),
        )]));
        assert_eq!(
            KeyMap::new(&pressed).schedule(Dash, 3, KeyState::new(Facing::Left)),
            [7, 4, 4]
        );
        // A key bound by hand drives its latent whichever way the player faces.
        let mut bound = keys;
        bound.bind(Dash, 6);
        assert_eq!(bound.schedule(Dash, 2, KeyState::new(Facing::Left)), [6, 6]);
        assert_eq!(
            bound.schedule(Dash, 2, KeyState::new(Facing::Right)),
            [6, 6]
        );
    }

    #[test]
    fn a_dash_runs_eight_frames_whatever_the_keys_and_cooling_down_its_key_stands_still() {
        use Action::{Dash, Left, Noop, Right};
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 1),
                ("left".to_owned(), 4),
                ("noop".to_owned(), 3),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 2),
                ("left".to_owned(), 6),
                ("right".to_owned(), 7),
            ])),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        assert_eq!(keys.controls, Some(Controls::Classic));
        // Held: a press, seven frames of dash, then standing while it cools down.
        assert_eq!(keys.latents(&[Dash; 10]), [2, 1, 1, 1, 1, 1, 1, 1, 3, 3]);
        // A key pressed during a dash changes nothing until the dash ends; then it is pressed.
        let mut during = vec![Dash];
        during.extend([Left; 9]);
        assert_eq!(keys.latents(&during), [2, 1, 1, 1, 1, 1, 1, 1, 6, 4]);
        // The dash key pressed again while cooling down: noop's, until 30 frames after the
        // dash began; then a dash again.
        let mut again = vec![Dash, Noop, Dash];
        again.extend([Noop; 27]);
        again.extend([Dash, Dash]);
        let latents = keys.latents(&again);
        assert_eq!(latents[..3], [2, 1, 1]);
        assert_eq!(latents[30..], [2, 1]);
        let mut late = again.clone();
        late[29] = Dash;
        assert_eq!(
            keys.latents(&late)[29..],
            [3, 2, 1],
            "29 frames on: still cooling"
        );
        // The same from a state, as a case of the 4-frame measures starts.
        let mut state = KeyState::default();
        for k in [Right, Dash, Noop] {
            keys.key(&mut state, k, true);
        }
        assert_eq!(keys.schedule(Left, 4, state), [1, 1, 1, 1], "still dashing");
        // The responsive game: the dash stops when let go, and cooling down its key walks.
        let responsive = KeyMap::new(&GenieConfig {
            game: crate::game::GameConfig {
                controls: Controls::Responsive,
                ..Default::default()
            },
            ..config.clone()
        });
        assert_eq!(
            responsive.latents(&[Dash, Dash, Noop, Dash, Dash]),
            [2, 1, 3, 7, 1]
        );
        // A key bound by hand drives its latent whatever the keys before.
        let mut bound = keys;
        bound.bind(Dash, 5);
        assert_eq!(bound.latents(&[Dash; 10]), [5; 10]);
        // A world that learned from another game's video: keys as they are.
        let mut files = config;
        files.training_data = serde_json::json!({"dynamics": {"source": "shards", "video": true}});
        let files = KeyMap::new(&files);
        assert_eq!(files.controls, None);
        assert_eq!(files.latents(&[Dash; 4]), [2, 1, 1, 1]);
        assert_eq!(files.latents(&[Dash, Left, Dash]), [2, 6, 2]);
    }

    #[test]
    fn a_key_held_long_gets_its_settled_latent_and_a_press_starts_the_count_again() {
        use Action::{Dash, Down, Noop, Right};
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 1),
                ("down".to_owned(), 3),
                ("noop".to_owned(), 3),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([("dash".to_owned(), 2)])),
            settled_calibration: Some(BTreeMap::from([("noop".to_owned(), 9)])),
            settle_after: Some(3),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        // Pressed, then held: three frames after the press on, the settled latent.
        assert_eq!(
            keys.schedule(Noop, 6, KeyState::default()),
            [3, 3, 3, 9, 9, 9]
        );
        // Another key starts the count again; one without a settled latent keeps its hold.
        assert_eq!(
            keys.latents(&[Noop, Noop, Noop, Noop, Right, Noop, Noop, Noop, Noop]),
            [3, 3, 3, 9, 1, 3, 3, 3, 9]
        );
        assert_eq!(keys.schedule(Down, 6, KeyState::default()), [3; 6]);
        // The dash key cooling down stands still: counted from the dash's end.
        let latents = keys.latents(&[Dash; 14]);
        assert_eq!(latents[..8], [2, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(latents[8..], [3, 3, 3, 9, 9, 9]);
        // A case of the 4-frame measures presses its key after the clip's keys, the same key
        // too: with settle_after ≥ 4 its four frames never reach a settled latent.
        let mut state = KeyState::default();
        for _ in 0..20 {
            keys.key(&mut state, Noop, false);
        }
        assert_eq!(state.held, 19);
        assert_eq!(keys.schedule(Noop, 4, state), [3, 3, 3, 9]);
        assert_eq!(keys.schedule(Right, 1, state), [1]);
        // A key bound by hand drives its latent however long it is held.
        let mut bound = keys;
        bound.bind(Noop, 5);
        assert_eq!(bound.schedule(Noop, 6, KeyState::default()), [5; 6]);
    }

    #[test]
    fn a_key_with_a_cycle_drives_it_over_and_over_from_its_press() {
        use Action::{Jump, Noop, Right};
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("jump".to_owned(), 3),
                ("noop".to_owned(), 3),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([("jump".to_owned(), 6)])),
            settled_calibration: Some(BTreeMap::from([("jump".to_owned(), 9)])),
            settle_after: Some(2),
            held_cycles: Some(BTreeMap::from([("jump".to_owned(), vec![6, 3, 7])])),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        // Its cycle, not the maps or the settled latent, again and again.
        assert_eq!(
            keys.schedule(Jump, 7, KeyState::default()),
            [6, 3, 7, 6, 3, 7, 6]
        );
        // Another key's press starts it again from its first latent.
        assert_eq!(
            keys.latents(&[Jump, Jump, Right, Jump, Jump, Noop]),
            [6, 3, 1, 6, 3, 3]
        );
        // A key bound by hand drives its latent, and an adapter's pick gives way to the cycle.
        let mut bound = keys.clone();
        bound.bind(Jump, 5);
        assert_eq!(bound.schedule(Jump, 4, KeyState::default()), [5; 4]);
        let adapter = crate::model::Genie::new_adapter(&config, Default::default(), Device::Cpu);
        let tokens = config.tokenizer.tokens_per_frame();
        let ids = Tensor::zeros([1, tokens], (tch::Kind::Int64, Device::Cpu));
        let mut state = KeyState::default();
        for (t, want) in [6, 3, 7, 6].into_iter().enumerate() {
            let keyed = keys.key(&mut state, Jump, t == 0);
            assert_eq!(keys.pick(Some(&adapter), &ids, None, &[keyed]), [want]);
        }
    }

    #[test]
    fn against_the_screens_left_edge_a_walk_left_stands_and_a_jump_left_goes_straight_up() {
        use crate::game::{FRAME_SIZE, Game};
        use crate::model::frames::frames_to_f32;
        use Action::{Dash, Jump, Left, LeftJump, Noop, Right};
        let config = GenieConfig {
            calibration: Some(BTreeMap::from([
                ("dash".to_owned(), 1),
                ("jump".to_owned(), 3),
                ("left".to_owned(), 4),
                ("left_jump".to_owned(), 4),
                ("noop".to_owned(), 3),
                ("right".to_owned(), 1),
            ])),
            press_calibration: Some(BTreeMap::from([
                ("jump".to_owned(), 6),
                ("left".to_owned(), 7),
                ("left_jump".to_owned(), 6),
            ])),
            facing_calibration: Some(BTreeMap::from([(
                "left".to_owned(),
                BTreeMap::from([("dash".to_owned(), 4)]),
            )])),
            ..Default::default()
        };
        let keys = KeyMap::new(&config);
        // Frames of the game: its first, and after left held until the player stands at the
        // level's left end.
        let mut game = Game::with_config(1_000_000, config.game);
        let start = game.frame();
        for _ in 0..60 {
            game.step(Left);
        }
        let wall = game.frame();
        let shown = |frames: &[&[u8]]| {
            let bytes: Vec<u8> = frames.concat();
            let s = FRAME_SIZE as i64;
            frames_to_f32(&Tensor::from_slice(&bytes).view([frames.len() as i64, s, s, 3]))
        };
        assert_eq!(against_left_edge(&shown(&[&start, &wall])), [false, true]);
        assert_eq!(
            against_left_edge(&Tensor::zeros([1, 8, 8, 3], tch::kind::FLOAT_CPU)),
            [false]
        );
        let ids = Tensor::zeros([2, 4], tch::kind::INT64_CPU);
        let pick = |key: Action, pressed: bool, state: KeyState| {
            let keyed = keys.key(&mut state.clone(), key, pressed);
            keys.pick(None, &ids, Some(&shown(&[&start, &wall])), &[keyed, keyed])
        };
        // Away from the edge the key's latents; against it noop's and jump's, pressed or held.
        assert_eq!(pick(Left, true, KeyState::default()), [7, 3]);
        assert_eq!(pick(LeftJump, true, KeyState::default()), [6, 6]);
        let mut held = KeyState::default();
        keys.key(&mut held, Left, true);
        assert_eq!(pick(Left, false, held), [4, 3]);
        let mut held = KeyState::default();
        keys.key(&mut held, LeftJump, true);
        assert_eq!(pick(LeftJump, false, held), [4, 3]);
        // A dash facing left stands; facing right it goes on, as a walk right or a jump does.
        let mut facing_left = KeyState::default();
        keys.key(&mut facing_left, Left, true);
        assert_eq!(pick(Dash, true, facing_left), [4, 3]);
        assert_eq!(pick(Dash, true, KeyState::default()), [1, 1]);
        for key in [Right, Jump, Noop] {
            let (a, b) = (
                pick(key, true, KeyState::default()),
                keys.press[key as usize],
            );
            assert_eq!(a, [b, b], "{key:?}");
        }
        // Without the frame shown, or for a key bound by hand, the key's own latents.
        let keyed = keys.key(&mut KeyState::default(), Left, true);
        assert_eq!(keys.pick(None, &ids, None, &[keyed, keyed]), [7, 7]);
        let mut bound = keys.clone();
        bound.bind(Left, 5);
        assert_eq!(
            bound.pick(None, &ids, Some(&shown(&[&start, &wall])), &[keyed, keyed]),
            [5, 5]
        );
        // A world learned from another game's video: its edges are not known.
        let mut video = config;
        video.training_data = serde_json::json!({"dynamics": {"source": "shards", "video": true}});
        let video = KeyMap::new(&video);
        assert_eq!(video.walled(keyed), keyed);
    }
}
