//! Action scripts for headless dreams: `"right*8,jump,right*4,latent:3*2"`: comma-separated game
//! action names (or `latent:N` for a raw latent action: 0–7 the learned ones, past them a
//! model's blends), each optionally repeated with `*K`; and seeded human-like key scripts for
//! long sessions ([`human_keys`]), written `human:SEED*F` (F frames, 300 without `*F`): `genie
//! eval`'s session i plays `human:i*300`.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::Control;
use crate::game::Action;

/// Frames of a `human:SEED` script item without `*F` (a session of `genie eval`).
pub const HUMAN_FRAMES: usize = 300;

/// The shortest and longest hold of a key in [`human_keys`], in frames.
pub const HOLD_FRAMES: (usize, usize) = (3, 15);

/// The keys [`human_keys`] deals out, a shuffled round at a time: every action once, and
/// right and right+jump twice more, because a person exploring a level mostly heads right (and
/// so meets the camera's moves), while every key still comes up every round.
const HUMAN_ROUND: [Action; 12] = [
    Action::Noop,
    Action::Left,
    Action::Right,
    Action::Jump,
    Action::LeftJump,
    Action::RightJump,
    Action::Down,
    Action::Dash,
    Action::Right,
    Action::Right,
    Action::RightJump,
    Action::RightJump,
];

/// A human-like key script of `frames` frames from `seed`: keys dealt in shuffled rounds of
/// [`HUMAN_ROUND`] (so all 8 actions come up within every 12 holds), each held for a uniform
/// 3–15 frames ([`HOLD_FRAMES`]), never the same key twice in a row (that would be one longer
/// hold, and no new press). The last hold is cut at `frames`.
pub fn human_keys(seed: u64, frames: usize) -> Vec<Action> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(frames);
    let mut round = Vec::new();
    while out.len() < frames {
        if round.is_empty() {
            round = HUMAN_ROUND.to_vec();
            // Reshuffled until no key follows itself, across the rounds' seam as well: a
            // handful of tries at most for 12 keys with two triples.
            loop {
                round.shuffle(&mut rng);
                let seam_ok = out.last() != round.first();
                if seam_ok && round.windows(2).all(|w| w[0] != w[1]) {
                    break;
                }
            }
            round.reverse(); // dealt from the back
        }
        let key = round.pop().expect("refilled above");
        let hold = rng.random_range(HOLD_FRAMES.0..=HOLD_FRAMES.1);
        out.extend(std::iter::repeat_n(key, hold.min(frames - out.len())));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "action script item {index} ('{item}'): unknown action; expected one of {known}, latent:N with N in 0..=255, or human:SEED"
    )]
    Unknown {
        index: usize,
        item: String,
        known: String,
    },
    #[error("action script item {index} ('{item}'): bad repeat count")]
    Count { index: usize, item: String },
    #[error("the action script is empty")]
    Empty,
}

/// Parses a script into one control per frame.
pub fn parse_actions(script: &str) -> Result<Vec<Control>, ScriptError> {
    let mut out = Vec::new();
    for (index, raw) in script
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let index = index + 1;
        let (name, count) = match raw.split_once('*') {
            Some((name, count)) => {
                let count = count
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&c| c > 0 && c <= 100_000)
                    .ok_or_else(|| ScriptError::Count {
                        index,
                        item: raw.into(),
                    })?;
                (name.trim(), Some(count))
            }
            None => (raw, None),
        };
        if let Some(seed) = name.to_ascii_lowercase().strip_prefix("human:") {
            let seed = seed
                .trim()
                .parse::<u64>()
                .map_err(|_| ScriptError::Unknown {
                    index,
                    item: raw.into(),
                    known: known(),
                })?;
            out.extend(
                human_keys(seed, count.unwrap_or(HUMAN_FRAMES))
                    .into_iter()
                    .map(|a| Control::Game(a as u8)),
            );
            continue;
        }
        let control = parse_one(name).ok_or_else(|| ScriptError::Unknown {
            index,
            item: raw.into(),
            known: known(),
        })?;
        out.extend(std::iter::repeat_n(control, count.unwrap_or(1)));
    }
    if out.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(out)
}

/// The game's action names, for an error.
fn known() -> String {
    Action::ALL
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_one(name: &str) -> Option<Control> {
    let lower = name.to_ascii_lowercase();
    if let Some(n) = lower.strip_prefix("latent:") {
        return n.parse::<u8>().ok().map(Control::Latent);
    }
    lower.parse::<Action>().ok().map(|a| Control::Game(a as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of equal keys as (key, length).
    fn holds(keys: &[Action]) -> Vec<(Action, usize)> {
        let mut out: Vec<(Action, usize)> = Vec::new();
        for &k in keys {
            match out.last_mut() {
                Some((last, n)) if *last == k => *n += 1,
                _ => out.push((k, 1)),
            }
        }
        out
    }

    #[test]
    fn human_keys_hold_each_key_3_to_15_frames_and_press_all_eight() {
        for seed in 0..40 {
            let keys = human_keys(seed, 300);
            assert_eq!(keys.len(), 300);
            let runs = holds(&keys);
            // The last hold may be cut by the end of the script.
            for &(key, n) in &runs[..runs.len() - 1] {
                assert!((3..=15).contains(&n), "seed {seed}: {key} held {n} frames");
            }
            for action in Action::ALL {
                assert!(
                    keys.contains(&action),
                    "seed {seed}: {action} never pressed"
                );
            }
            // Half the holds head right: well over a quarter of the frames.
            let right = keys
                .iter()
                .filter(|&&a| a == Action::Right || a == Action::RightJump)
                .count();
            assert!(right > keys.len() / 4, "seed {seed}: mostly heads right");
        }
        assert_eq!(human_keys(7, 300), human_keys(7, 300), "seeded");
        assert_ne!(human_keys(7, 300), human_keys(8, 300));
        assert!(human_keys(1, 0).is_empty());
        assert_eq!(human_keys(1, 2).len(), 2);
    }

    #[test]
    fn parses_repeats_and_latents() {
        assert_eq!(
            parse_actions("latent:9"),
            Ok(vec![Control::Latent(9)]),
            "a blend's latent parses; the world says whether its model has it"
        );
        let c = parse_actions("right*3, jump,latent:7*2").unwrap();
        let right = Control::Game(Action::Right as u8);
        assert_eq!(
            c,
            vec![
                right,
                right,
                right,
                Control::Game(Action::Jump as u8),
                Control::Latent(7),
                Control::Latent(7)
            ]
        );
    }

    #[test]
    fn a_human_item_is_the_sessions_seeded_script() {
        let as_controls = |keys: Vec<Action>| -> Vec<Control> {
            keys.into_iter().map(|a| Control::Game(a as u8)).collect()
        };
        assert_eq!(
            parse_actions("human:3*40").unwrap(),
            as_controls(human_keys(3, 40))
        );
        assert_eq!(
            parse_actions("HUMAN:5").unwrap(),
            as_controls(human_keys(5, HUMAN_FRAMES))
        );
        let c = parse_actions("jump,human:1*10").unwrap();
        assert_eq!(c.len(), 11);
        assert_eq!(&c[1..], as_controls(human_keys(1, 10)).as_slice());
        assert!(matches!(
            parse_actions("human:x*10"),
            Err(ScriptError::Unknown { .. })
        ));
    }

    #[test]
    fn bad_scripts_say_what_is_wrong() {
        let e = parse_actions("right,fly*2").unwrap_err().to_string();
        assert!(
            e.contains("item 2") && e.contains("fly") && e.contains("left_jump"),
            "{e}"
        );
        assert!(matches!(
            parse_actions("right*x"),
            Err(ScriptError::Count { .. })
        ));
        assert!(matches!(
            parse_actions("latent:256"),
            Err(ScriptError::Unknown { .. })
        ));
        assert_eq!(parse_actions(" , "), Err(ScriptError::Empty));
    }
}
