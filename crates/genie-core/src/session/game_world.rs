//! The real platformer as a [`World`]: what the player shows beside the dream with `--level`, fed
//! the same inputs. It ignores the prompt image (the level is its own prompt), restarts the level
//! when a life ends, and keeps the last context-length states so it can rewind like the dream.

use std::collections::VecDeque;

use super::prompt::Prompt;
use super::{Control, Frame, Step, World, WorldError};
use crate::game::{Action, Game, GameConfig, Status};

/// How many past states a rewind can go back: the dream's longest context.
const HISTORY: usize = 16;

pub struct GameWorld {
    start: Game,
    game: Game,
    /// States before each step taken, most recent last.
    history: VecDeque<Game>,
}

impl GameWorld {
    /// The level `level_seed` of the game `config` (a checkpoint's `game`).
    pub fn new(level_seed: u64, config: GameConfig) -> Self {
        let game = Game::with_config(level_seed, config);
        Self {
            start: game.clone(),
            game,
            history: VecDeque::new(),
        }
    }

    pub fn game(&self) -> &Game {
        &self.game
    }
}

impl World for GameWorld {
    fn reset(&mut self, _prompt: &Prompt) -> Result<Frame, WorldError> {
        self.game = self.start.clone();
        self.history.clear();
        Ok(self.game.frame())
    }

    fn step(&mut self, control: Control) -> Result<Step, WorldError> {
        // A raw latent action has no meaning in the real game: it stands still.
        let action = match control {
            Control::Game(a) => Action::from_u8(a).unwrap_or(Action::Noop),
            Control::Latent(_) => Action::Noop,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(self.game.clone());
        if self.game.step(action) != Status::Alive {
            self.game.restart();
        }
        Ok(Step {
            frame: self.game.frame(),
            latent_action: None,
        })
    }

    fn rewind(&mut self, frames: usize) -> Result<Frame, WorldError> {
        for _ in 0..frames {
            match self.history.pop_back() {
                Some(state) => self.game = state,
                None => break,
            }
        }
        Ok(self.game.frame())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewind_returns_to_an_earlier_frame_and_replays_identically() {
        let mut world = GameWorld::new(7, GameConfig::default());
        let first = world
            .reset(&Prompt::from_frame(vec![0; crate::game::FRAME_BYTES]))
            .unwrap();
        let right = Control::Game(Action::Right as u8);
        let after: Vec<Frame> = (0..6).map(|_| world.step(right).unwrap().frame).collect();
        assert_ne!(
            after[5], first,
            "running right for 6 ticks changes the picture"
        );
        assert_eq!(world.rewind(3).unwrap(), after[2]);
        assert_eq!(world.step(right).unwrap().frame, after[3]);
        assert_eq!(
            world.rewind(100).unwrap(),
            first,
            "rewinding past the start stops at the start"
        );
    }
}
