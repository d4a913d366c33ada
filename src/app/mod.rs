//! The player's front end: wgpu rendering, and (on top of it) the winit window, the egui overlay
//! and input. Nothing in the core depends on this module.

pub mod blit;
pub mod offscreen;
pub mod overlay;
