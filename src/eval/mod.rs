//! Evaluation: the measures that define "works" (docs/design.md §5), computed on held-out levels.

pub mod measures;
pub mod prompts;
pub mod run;
