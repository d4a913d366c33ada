//! A playing session with no window: prompts, worlds that step with an action, the worker-thread
//! engine, and recording. The player and the headless `dream` share it.

pub mod dream;
pub mod engine;
pub mod export;
pub mod game_world;
pub mod hero;
pub mod keys;
pub mod learn;
pub mod play;
pub mod prompt;
pub mod record;
pub mod script;

use crate::model::SamplerConfig;
use prompt::Prompt;

/// A 64×64 RGB frame, row-major.
pub type Frame = Vec<u8>;

/// What the player asks for at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A game action, by its index in the platformer's 8 actions.
    Game(u8),
    /// A raw latent action, as in Genie: a learned one (keys 1–8 in the player) or one of the
    /// model's blends past them (`DynamicsConfig::blends`).
    Latent(u8),
}

/// Result of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub frame: Frame,
    /// The latent action used, for a dream.
    pub latent_action: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("the world has not been started from a prompt yet")]
    NotStarted,
    #[error("the world's worker thread has stopped")]
    Stopped,
    #[error("{0}")]
    Model(String),
    #[error("latent action {latent} does not exist: the model has {actions}")]
    NoSuchLatent { latent: u8, actions: i64 },
    #[error("a prompt frame has {found} bytes, but the model takes {expected} ({side}×{side} RGB)")]
    PromptSize {
        found: usize,
        expected: usize,
        side: i64,
    },
}

/// Something that can be played frame by frame: the dream (the world model) or the real game.
pub trait World: Send {
    /// (Re)starts from a prompt; returns the frame to show.
    fn reset(&mut self, prompt: &Prompt) -> Result<Frame, WorldError>;
    /// Advances one frame.
    fn step(&mut self, control: Control) -> Result<Step, WorldError>;
    /// Steps back `frames` frames (at most what is kept); returns the frame now current.
    fn rewind(&mut self, frames: usize) -> Result<Frame, WorldError>;
    /// Changes the MaskGIT settings of a dream; worlds that do not sample ignore it.
    fn set_sampler(&mut self, _sampler: SamplerConfig) {}
    /// What each latent action would do from here, one frame each, leaving the world as it
    /// was; worlds without latent actions have none.
    fn preview(&mut self) -> Result<Vec<Frame>, WorldError> {
        Ok(Vec::new())
    }
    /// From now on the game action `action` drives latent `latent`; worlds without latent
    /// actions ignore it.
    fn bind(&mut self, _action: crate::game::Action, _latent: u8) {}
}
