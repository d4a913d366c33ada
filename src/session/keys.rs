//! Keys to latent actions: the checkpoint's calibration read once. A game action held over
//! several frames gets its `press` latent on the first frame (the key newly down) and its `hold`
//! latent on the frames after; without a press calibration both are the same.
//!
//! Why two: the shipped LAM has no code for a jump straight up, and holding `jump` in the real
//! game takes off once and then changes nothing in the air, so the latent that best follows a
//! held `jump` is `noop`'s. One take-off latent on the first frame, then `noop`'s, follows it
//! better than either alone (docs/experiments.md, "Keys: calibration").

use crate::game::Action;
use crate::model::GenieConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMap {
    /// Per game action (by index), the latent of the frames a key is held.
    pub hold: [i64; 8],
    /// Per game action, the latent of a key's first frame.
    pub press: [i64; 8],
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
        Self { hold, press }
    }

    /// The latent for `action`, on the first frame it is pressed or on a frame it is held.
    pub fn latent(&self, action: Action, first_frame: bool) -> i64 {
        let i = action as usize;
        if first_frame {
            self.press[i]
        } else {
            self.hold[i]
        }
    }

    /// The latents of `action` held for `frames` frames from its press.
    pub fn schedule(&self, action: Action, frames: usize) -> Vec<i64> {
        (0..frames).map(|t| self.latent(action, t == 0)).collect()
    }

    /// The latents of a run of game actions, one per frame: each press (an action that differs
    /// from the frame before's; the first always) gets its press latent.
    pub fn latents(&self, actions: &[Action]) -> Vec<i64> {
        let mut before = None;
        actions
            .iter()
            .map(|&a| {
                let first = before != Some(a);
                before = Some(a);
                self.latent(a, first)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
        assert_eq!(keys.schedule(Action::Jump, 4), [6, 3, 3, 3]);
        assert_eq!(
            keys.schedule(Action::Right, 3),
            [1, 1, 1],
            "no press: the hold"
        );
        // Uncalibrated actions map to their own index, pressed or held.
        assert_eq!(keys.schedule(Action::Dash, 2), [Action::Dash as i64; 2]);
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
}
