//! Action scripts for headless dreams: `"right*8,jump,right*4,latent:3*2"`: comma-separated game
//! action names (or `latent:N` for a raw latent action 0–7), each optionally repeated with `*K`.

use super::Control;
use crate::game::Action;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "action script item {index} ('{item}'): unknown action; expected one of {known}, or latent:N with N in 0..8"
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
                (name.trim(), count)
            }
            None => (raw, 1),
        };
        let control = parse_one(name).ok_or_else(|| ScriptError::Unknown {
            index,
            item: raw.into(),
            known: Action::ALL
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        out.extend(std::iter::repeat_n(control, count));
    }
    if out.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(out)
}

fn parse_one(name: &str) -> Option<Control> {
    let lower = name.to_ascii_lowercase();
    if let Some(n) = lower.strip_prefix("latent:") {
        return n.parse::<u8>().ok().filter(|&n| n < 8).map(Control::Latent);
    }
    lower.parse::<Action>().ok().map(|a| Control::Game(a as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeats_and_latents() {
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
            parse_actions("latent:8"),
            Err(ScriptError::Unknown { .. })
        ));
        assert_eq!(parse_actions(" , "), Err(ScriptError::Empty));
    }
}
