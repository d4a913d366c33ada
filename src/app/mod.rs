//! The player's front end: wgpu rendering, and (on top of it) the winit window, the egui overlay
//! and input. Nothing in the core depends on this module.

pub mod blit;
pub mod input;
pub mod offscreen;
pub mod overlay;
pub mod window;
