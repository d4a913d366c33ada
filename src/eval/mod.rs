//! Evaluation: the measures that define "works" (DESIGN.md §5), computed on held-out levels.

pub mod measures;
pub mod prompts;
pub mod run;
