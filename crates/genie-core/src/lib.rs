//! genie's core: the world model (tokenizer, latent action model, MaskGIT dynamics), the
//! platformer it learns from, data, training, evaluation, sessions and recording, with no window.
//! The `genie` package puts the player (winit, wgpu, egui, gilrs) and the command line on top.

pub mod data;
pub mod eval;
pub mod game;
pub mod json;
pub mod model;
pub mod session;
pub mod torch;
pub mod train;
