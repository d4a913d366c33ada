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
const ODDS: [f32; 8] = [0.08, 0.10, 0.28, 0.10, 0.06, 0.20, 0.08, 0.10];

/// Probability, per tick, of jumping over a wall or enemy just seen ahead, and over a pit.
const REACT: f32 = 0.35;
const REACT_PIT: f32 = 0.9;
/// Probability, per tick, of steering on toward the far side while in the air over a pit.
const STEER: f32 = 0.8;

#[derive(Debug, Clone)]
pub struct ScriptedPlayer {
    rng: Rng,
    stickiness: f32,
    last: Action,
}

impl ScriptedPlayer {
    /// A player drawing from `seed`, repeating its last action with probability `stickiness`
    /// (clamped to 0..=1).
    pub fn new(seed: u64, stickiness: f32) -> ScriptedPlayer {
        ScriptedPlayer {
            rng: Rng::new(seed),
            stickiness: stickiness.clamp(0.0, 1.0),
            last: Action::Right,
        }
    }

    /// From now on repeat the last action with probability `stickiness` (clamped to 0..=1).
    pub fn set_stickiness(&mut self, stickiness: f32) {
        self.stickiness = stickiness.clamp(0.0, 1.0);
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
        } else if !self.rng.chance(self.stickiness) {
            self.last = Action::ALL[self.rng.weighted(&ODDS)];
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
