//! genie: a runtime for playing worlds dreamed by a learned world model, after DeepMind's Genie
//! (Bruce et al., 2024, arXiv 2402.15391).
//!
//! The core (world model, data, training, sampling, recording) builds and runs with no window;
//! the player sits on top of it.

pub mod app;
pub mod data;
pub mod eval;
pub mod game;
pub mod json;
pub mod model;
pub mod session;
pub mod torch;
pub mod train;
