//! Evaluation: the measures that define "works" (docs/design.md §5 and §8), computed on held-out
//! levels.

pub mod adapter;
pub mod calibrate;
pub mod ceiling;
pub mod control;
pub mod measures;
pub mod prompts;
pub mod run;
pub mod sessions;
pub mod sheet;
pub mod video;
