//! Evaluation: the measures that define "works" (DESIGN.md §5 and §8), computed on held-out
//! levels.

pub mod ceiling;
pub mod measures;
pub mod run;
pub mod sessions;
