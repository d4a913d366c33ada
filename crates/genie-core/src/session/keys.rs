//! Keys to latent actions: the checkpoint's calibration read once. A game action held over
//! several frames gets its `press` latent on the first frame (the key newly down) and its `hold`
//! latent on the frames after; without a press calibration both are the same.
//!
//! Why two: the shipped LAM has no code for a jump straight up, and holding `jump` in the real
//! game takes off once and then changes nothing in the air, so the latent that best follows a
//! held `jump` is `noop`'s. One take-off latent on the first frame, then `noop`'s, follows it
//! better than either alone (docs/experiments.md, "Keys: calibration").
//!
//! A key may also depend on the keys before it: `dash` goes the way the player faces, which is
//! the way of the last key that walked ([`Facing`]). Where the calibration found a better latent
//! for a key while the player faces one way, that latent replaces the key's there.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor};

use crate::game::{Action, Facing};
use crate::model::{Adapter, GenieConfig};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Per game action, whether a player bound it by hand ([`KeyMap::bind`]): it keeps its
    /// latent where the checkpoint's adapter would pick another.
    pub bound: [bool; 8],
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
        Self {
            hold,
            press,
            facing_hold: by_facing(config.facing_calibration.as_ref()),
            facing_press: by_facing(config.facing_press_calibration.as_ref()),
            bound: [false; 8],
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
        self.bound[i] = true;
    }

    /// The latent of each row of a batch, given its game action, whether this is the key's
    /// first frame, the way the player faces while it acts ([`Facing::with`]), and the state:
    /// the current frame's tokens `ids` [B, N]. The checkpoint's action adapter picks where it
    /// has one (but for keys bound by hand); else the maps.
    pub fn pick(
        &self,
        adapter: Option<&Adapter>,
        ids: &Tensor,
        actions: &[Action],
        pressed: &[bool],
        facing: &[Facing],
    ) -> Vec<i64> {
        let table = actions
            .iter()
            .zip(pressed)
            .zip(facing)
            .map(|((&a, &p), &f)| self.latent(a, p, f));
        let Some(adapter) = adapter else {
            return table.collect();
        };
        let device = ids.device();
        let indices: Vec<i64> = actions.iter().map(|&a| a as i64).collect();
        let picked = adapter.net.pick(
            ids,
            &Tensor::from_slice(&indices).to_device(device),
            &Tensor::from_slice(pressed).to_device(device),
        );
        let picked = Vec::<i64>::try_from(picked.to_device(Device::Cpu)).expect("i64 latents");
        table
            .zip(picked)
            .zip(actions)
            .map(|((mapped, picked), &a)| {
                if self.bound[a as usize] {
                    mapped
                } else {
                    picked
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

    /// The latents of `action` held for `frames` frames from its press, by a player that
    /// faced `facing` before it.
    pub fn schedule(&self, action: Action, frames: usize, facing: Facing) -> Vec<i64> {
        let facing = facing.with(action);
        (0..frames)
            .map(|t| self.latent(action, t == 0, facing))
            .collect()
    }

    /// The latents of a run of game actions, one per frame, from a level's start (facing
    /// right): each press (an action that differs from the frame before's; the first always)
    /// gets its press latent.
    pub fn latents(&self, actions: &[Action]) -> Vec<i64> {
        actions
            .iter()
            .zip(Self::presses(actions))
            .zip(Facing::default().along(actions))
            .map(|((&a, first), f)| self.latent(a, first, f))
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
        assert_eq!(map.schedule(Action::Right, 2, Facing::Right), [5, 5]);
        assert_eq!(
            map.schedule(Action::Jump, 2, Facing::Right),
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
        assert_eq!(keys.schedule(Action::Jump, 4, Facing::Right), [6, 3, 3, 3]);
        assert_eq!(
            keys.schedule(Action::Right, 3, Facing::Right),
            [1, 1, 1],
            "no press: the hold"
        );
        // Uncalibrated actions map to their own index, pressed or held.
        assert_eq!(
            keys.schedule(Action::Dash, 2, Facing::Right),
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
        use Action::{Dash, Left, Noop, Right};
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
        assert_eq!(keys.schedule(Dash, 3, Facing::Right), [2, 1, 1]);
        assert_eq!(keys.schedule(Dash, 3, Facing::Left), [4, 4, 4]);
        assert_eq!(
            keys.latents(&[Dash, Left, Dash, Dash, Noop, Dash]),
            [2, 4, 4, 4, 0, 4]
        );
        assert_eq!(keys.latents(&[Left, Right, Dash]), [4, 1, 2]);
        let facing = Facing::default().along(&[Dash, Left, Noop, Action::RightJump, Dash]);
        use Facing::{Left as L, Right as R};
        assert_eq!(facing, [R, L, L, R, R]);
        // A press of its own where the facing has one.
        let mut pressed = config.clone();
        pressed.facing_press_calibration = Some(BTreeMap::from([(
            "left".to_owned(),
            BTreeMap::from([("dash".to_owned(), 7)]),
        )]));
        assert_eq!(
            KeyMap::new(&pressed).schedule(Dash, 3, Facing::Left),
            [7, 4, 4]
        );
        // A key bound by hand drives its latent whichever way the player faces.
        let mut bound = keys;
        bound.bind(Dash, 6);
        assert_eq!(bound.schedule(Dash, 2, Facing::Left), [6, 6]);
        assert_eq!(bound.schedule(Dash, 2, Facing::Right), [6, 6]);
    }
}
