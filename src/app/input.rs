//! Input as data: keyboard keys and gamepad buttons, by name, map through a bindings table the
//! user can edit (`assets/bindings.json`) to the game's buttons; the buttons held make one of the
//! platformer's 8 actions, which the checkpoint's calibration turns into a latent action.
//!
//! Key names are winit's `KeyCode` names (`ArrowLeft`, `KeyA`, `Space`, …); gamepad names are
//! gilrs's `Button` names (`South`, `DPadLeft`, …) plus `LeftStickLeft/Right/Up/Down` for the
//! left stick pushed past half-way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::game::Action;

/// A button of the game, as a player thinks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    Left,
    Right,
    Jump,
    Down,
    Dash,
}

/// Where a press came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    Key(String),
    Pad(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BindingsError {
    #[error("bindings {path}: cannot read the file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bindings {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// The editable table from inputs to buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bindings {
    #[serde(default)]
    pub keyboard: BTreeMap<String, Button>,
    #[serde(default)]
    pub gamepad: BTreeMap<String, Button>,
}

/// The bindings shipped in `assets/bindings.json`, built in so genie runs from anywhere.
pub const DEFAULT_BINDINGS: &str = include_str!("../../assets/bindings.json");

impl Default for Bindings {
    fn default() -> Self {
        serde_json::from_str(DEFAULT_BINDINGS).expect("assets/bindings.json is valid")
    }
}

impl Bindings {
    pub fn load(path: &Path) -> Result<Self, BindingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| BindingsError::Io {
            path: path.into(),
            source,
        })?;
        crate::json::parse(text.as_bytes()).map_err(|reason| BindingsError::Parse {
            path: path.into(),
            reason,
        })
    }

    pub fn button(&self, input: &Input) -> Option<Button> {
        match input {
            Input::Key(name) => self.keyboard.get(name).copied(),
            Input::Pad(name) => self.gamepad.get(name).copied(),
        }
    }
}

/// The inputs held down now, from every device.
#[derive(Debug, Default, Clone)]
pub struct Held {
    inputs: BTreeSet<Input>,
}

impl Held {
    pub fn press(&mut self, input: Input) {
        self.inputs.insert(input);
    }

    pub fn release(&mut self, input: &Input) {
        self.inputs.remove(input);
    }

    /// Forgets every held input of a gamepad (on disconnect) or of the keyboard (on focus loss).
    pub fn release_all_pad(&mut self) {
        self.inputs.retain(|i| matches!(i, Input::Key(_)));
    }

    pub fn release_all_keys(&mut self) {
        self.inputs.retain(|i| matches!(i, Input::Pad(_)));
    }

    pub fn buttons(&self, bindings: &Bindings) -> BTreeSet<Button> {
        self.inputs
            .iter()
            .filter_map(|i| bindings.button(i))
            .collect()
    }

    /// The game action the held buttons make.
    pub fn action(&self, bindings: &Bindings) -> Action {
        action_for(&self.buttons(bindings))
    }
}

/// What a gamepad did, by name (the window turns gilrs's events into these).
#[derive(Debug, Clone, PartialEq)]
pub enum PadEvent {
    Pressed(String),
    Released(String),
    /// The left stick's position now.
    Stick {
        x: f32,
        y: f32,
    },
    /// Unplugged: whatever it held is released, or a key would stay down for good.
    Disconnected,
}

impl Held {
    /// Applies a gamepad event; true when it pressed a button (a new press).
    pub fn apply_pad(&mut self, event: PadEvent) -> bool {
        match event {
            PadEvent::Pressed(name) => {
                self.press(Input::Pad(name));
                return true;
            }
            PadEvent::Released(name) => self.release(&Input::Pad(name)),
            PadEvent::Stick { x, y } => {
                for (input, on) in stick_inputs(x, y) {
                    if on {
                        self.press(input)
                    } else {
                        self.release(&input)
                    }
                }
            }
            PadEvent::Disconnected => self.release_all_pad(),
        }
        false
    }
}

/// Combines held buttons into one of the 8 actions: dash and down win, jump combines with a
/// direction, opposite directions cancel.
pub fn action_for(buttons: &BTreeSet<Button>) -> Action {
    let has = |b| buttons.contains(&b);
    let dir = match (has(Button::Left), has(Button::Right)) {
        (true, false) => -1,
        (false, true) => 1,
        _ => 0,
    };
    if has(Button::Dash) {
        Action::Dash
    } else if has(Button::Down) {
        Action::Down
    } else if has(Button::Jump) {
        [Action::LeftJump, Action::Jump, Action::RightJump][(dir + 1) as usize]
    } else {
        [Action::Left, Action::Noop, Action::Right][(dir + 1) as usize]
    }
}

/// The left stick as four virtual buttons, pushed past half-way.
pub fn stick_inputs(x: f32, y: f32) -> [(Input, bool); 4] {
    let pad = |s: &str| Input::Pad(s.to_owned());
    [
        (pad("LeftStickLeft"), x < -0.5),
        (pad("LeftStickRight"), x > 0.5),
        (pad("LeftStickUp"), y > 0.5),
        (pad("LeftStickDown"), y < -0.5),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Input {
        Input::Key(s.into())
    }

    #[test]
    fn shipped_bindings_parse_and_cover_every_button() {
        let b = Bindings::default();
        for button in [
            Button::Left,
            Button::Right,
            Button::Jump,
            Button::Down,
            Button::Dash,
        ] {
            assert!(
                b.keyboard.values().any(|&x| x == button),
                "{button:?} has no key"
            );
            assert!(
                b.gamepad.values().any(|&x| x == button),
                "{button:?} has no pad button"
            );
        }
    }

    #[test]
    fn held_buttons_combine_into_actions() {
        let b = Bindings::default();
        let mut held = Held::default();
        assert_eq!(held.action(&b), Action::Noop);
        held.press(key("ArrowRight"));
        assert_eq!(held.action(&b), Action::Right);
        held.press(key("Space"));
        assert_eq!(held.action(&b), Action::RightJump);
        held.press(key("KeyA"));
        assert_eq!(held.action(&b), Action::Jump, "left and right cancel");
        held.release(&key("ArrowRight"));
        assert_eq!(held.action(&b), Action::LeftJump);
        held.press(Input::Pad("West".into()));
        assert_eq!(held.action(&b), Action::Dash);
        held.release_all_pad();
        held.release_all_keys();
        held.press(key("KeyS"));
        assert_eq!(held.action(&b), Action::Down);
    }

    #[test]
    fn a_gamepad_unplugged_while_a_button_is_held_releases_it() {
        let b = Bindings::default();
        let mut held = Held::default();
        assert!(held.apply_pad(PadEvent::Pressed("South".into())));
        assert!(!held.apply_pad(PadEvent::Stick { x: 0.9, y: 0.0 }));
        held.press(key("KeyS"));
        assert_eq!(held.action(&b), Action::Down);
        held.release(&key("KeyS"));
        assert_eq!(held.action(&b), Action::RightJump);
        held.press(key("ArrowLeft"));
        held.apply_pad(PadEvent::Disconnected);
        // The pad's jump and stick are gone; the keyboard's left is still down.
        assert_eq!(held.action(&b), Action::Left);
    }

    #[test]
    fn stick_past_half_way_presses() {
        let b = Bindings::default();
        let mut held = Held::default();
        for (input, on) in stick_inputs(-0.9, 0.1) {
            if on {
                held.press(input);
            }
        }
        assert_eq!(held.action(&b), Action::Left);
    }

    #[test]
    fn a_broken_bindings_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, r#"{"keyboard": {"KeyA": "fly"}}"#).unwrap();
        let err = Bindings::load(&path).unwrap_err().to_string();
        assert!(err.contains("keys.json") && err.contains("fly"), "{err}");
    }
}
