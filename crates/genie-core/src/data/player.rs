//! Scripted players: random but sticky, biased to make progress through the level.
//!
//! Genie learns its latent actions from video of play, so the video should show every action
//! often, held for a while (as a person would), while still moving through the level so clips
//! cover more than its start. Each tick the player repeats its last action with probability
//! `stickiness`, otherwise draws a fresh one, favouring right and right-jump; on the ground
//! facing a wall, a pit or an enemy it sometimes jumps regardless.

use crate::game::rng::Rng;
use crate::game::{Action, Game};

/// Default probability of repeating the last action.
pub const DEFAULT_STICKINESS: f32 = 0.8;

/// Relative odds of each fresh action, in `Action::ALL` order
/// (noop, left, right, jump, left_jump, right_jump, down, dash).
pub const DEFAULT_ODDS: [f32; 8] = [0.08, 0.10, 0.28, 0.10, 0.06, 0.20, 0.08, 0.10];

/// How the scripted player chooses while a clip is recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayStyle {
    /// Probability of repeating the last action (0 to 1).
    pub stickiness: f32,
    /// Relative odds of each fresh action, in `Action::ALL` order (not negative, not all 0).
    pub odds: [f32; 8],
}

impl Default for PlayStyle {
    fn default() -> Self {
        PlayStyle {
            stickiness: DEFAULT_STICKINESS,
            odds: DEFAULT_ODDS,
        }
    }
}

impl PlayStyle {
    /// The default odds at a given stickiness.
    pub fn with_stickiness(stickiness: f32) -> Self {
        PlayStyle {
            stickiness,
            ..PlayStyle::default()
        }
    }

    /// The default odds with some actions' replaced, from `name=weight` pairs separated by commas
    /// (`jump=0.3,noop=0.05`; names as `Action`'s `FromStr` reads them).
    pub fn parse_odds(spec: &str) -> Result<[f32; 8], String> {
        let mut odds = DEFAULT_ODDS;
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: expected action=weight"))?;
            let action: Action = name.parse().map_err(|e| format!("`{pair}`: {e}"))?;
            let weight: f32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{pair}`: the weight is not a number"))?;
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(format!("`{pair}`: a weight must be 0 or more"));
            }
            odds[action as usize] = weight;
        }
        if odds.iter().sum::<f32>() <= 0.0 {
            return Err("every action's weight is 0".into());
        }
        Ok(odds)
    }
}

/// Probability, per tick, of jumping over a wall or enemy just seen ahead, and over a pit.
const REACT: f32 = 0.35;
const REACT_PIT: f32 = 0.9;
/// Probability, per tick, of steering on toward the far side while in the air over a pit.
const STEER: f32 = 0.8;

#[derive(Debug, Clone)]
pub struct ScriptedPlayer {
    rng: Rng,
    style: PlayStyle,
    last: Action,
}

impl ScriptedPlayer {
    /// A player drawing from `seed`, repeating its last action with probability `stickiness`
    /// (clamped to 0..=1).
    pub fn new(seed: u64, stickiness: f32) -> ScriptedPlayer {
        let mut player = ScriptedPlayer {
            rng: Rng::new(seed),
            style: PlayStyle::default(),
            last: Action::Right,
        };
        player.set_style(PlayStyle::with_stickiness(stickiness));
        player
    }

    /// From now on play in `style` (stickiness clamped to 0..=1).
    pub fn set_style(&mut self, style: PlayStyle) {
        self.style = PlayStyle {
            stickiness: style.stickiness.clamp(0.0, 1.0),
            ..style
        };
    }

    /// The action for the current state of `game`.
    pub fn act(&mut self, game: &Game) -> Action {
        let s = game.surroundings();
        let forward = game.player().facing > 0;
        let react = if s.pit_ahead {
            REACT_PIT
        } else if s.wall_ahead || s.enemy_ahead {
            REACT
        } else {
            0.0
        };
        if s.on_ground && react > 0.0 && self.rng.chance(react) {
            self.last = if forward {
                Action::RightJump
            } else {
                Action::LeftJump
            };
        } else if !s.on_ground && s.over_pit && self.rng.chance(STEER) {
            self.last = if forward { Action::Right } else { Action::Left };
        } else if !self.rng.chance(self.style.stickiness) {
            self.last = Action::ALL[self.rng.weighted(&self.style.odds)];
        }
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::Status;

    #[test]
    fn sticky_yet_every_action_appears() {
        let mut g = Game::new(3);
        let mut p = ScriptedPlayer::new(1, DEFAULT_STICKINESS);
        let mut counts = [0usize; 8];
        let mut repeats = 0;
        let mut last = None;
        for _ in 0..5000 {
            let a = p.act(&g);
            counts[a as usize] += 1;
            repeats += usize::from(last == Some(a));
            last = Some(a);
            if g.step(a) != Status::Alive {
                g.restart();
            }
        }
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
        assert!(repeats > 3500, "{repeats} repeats of 5000");
    }

    #[test]
    fn fresh_actions_follow_the_odds() {
        // Jump-rich odds at stickiness 0: jump is drawn about as often as all the rest together
        // (reactions to walls and pits aside), where the default odds draw it one time in ten.
        let count_jumps = |odds: [f32; 8]| {
            let mut g = Game::new(5);
            let mut p = ScriptedPlayer::new(2, 0.0);
            p.set_style(PlayStyle {
                stickiness: 0.0,
                odds,
            });
            let mut jumps = 0;
            for _ in 0..4000 {
                let a = p.act(&g);
                jumps += usize::from(a == Action::Jump);
                if g.step(a) != Status::Alive {
                    g.restart();
                }
            }
            jumps
        };
        let rich = PlayStyle::parse_odds("jump=0.9").unwrap();
        assert_eq!(rich[Action::Jump as usize], 0.9);
        assert_eq!(
            rich[Action::Right as usize],
            DEFAULT_ODDS[Action::Right as usize]
        );
        let (plain, rich) = (count_jumps(DEFAULT_ODDS), count_jumps(rich));
        assert!((250..550).contains(&plain), "{plain} jumps of 4000");
        assert!(rich > 1600, "{rich} jumps of 4000");
    }

    #[test]
    fn odds_that_do_not_parse_say_why() {
        let err = |s: &str| PlayStyle::parse_odds(s).unwrap_err();
        assert!(err("jump").contains("action=weight"));
        assert!(err("hop=1").contains("unknown action \"hop\""));
        assert!(err("jump=x").contains("not a number"));
        assert!(err("jump=-1").contains("0 or more"));
        let all_zero: Vec<String> = Action::ALL
            .iter()
            .map(|a| format!("{}=0", a.name()))
            .collect();
        assert!(err(&all_zero.join(",")).contains("every action"));
        assert_eq!(PlayStyle::parse_odds("").unwrap(), DEFAULT_ODDS);
    }

    #[test]
    fn makes_progress_through_levels() {
        let mut best = Vec::new();
        for seed in 0..10 {
            let mut g = Game::new(seed);
            let mut p = ScriptedPlayer::new(seed, DEFAULT_STICKINESS);
            let mut furthest = 0;
            let mut won = false;
            for _ in 0..3000 {
                let a = p.act(&g);
                match g.step(a) {
                    Status::Alive => {}
                    Status::Won => {
                        won = true;
                        g.restart();
                    }
                    Status::Died => g.restart(),
                }
                furthest = furthest.max(g.player().x / 256);
            }
            best.push((furthest, won));
        }
        let far = best.iter().filter(|(x, _)| *x > 200).count();
        assert!(far >= 7, "progress per level: {best:?}");
        assert!(
            best.iter().any(|&(_, w)| w),
            "some level finished: {best:?}"
        );
    }
}
