//! genie: a runtime for playing worlds dreamed by a learned world model, after DeepMind's Genie
//! (Bruce et al., 2024, arXiv 2402.15391).
//!
//! The core (world model, data, training, sampling, recording) is the `genie-core` package,
//! which builds and tests with no window; this package adds the player and the command line.

pub use genie_core::{data, eval, game, json, model, session, torch, train};

pub mod app;
