//! A playing session with no window: prompts, the context of past frames, stepping a world with
//! an action, rewinding, and recording. The player and the headless `dream` share it.

pub mod prompt;
pub mod record;
