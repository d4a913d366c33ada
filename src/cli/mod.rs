//! The subcommands' arguments and what they run; the library does the work.

pub mod bench;
pub mod data;
pub mod eval;
pub mod play;
pub mod recipe;
pub mod replay;
pub mod soak;
pub mod train;
pub mod world;
