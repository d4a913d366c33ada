//! Clip datasets of the platformer: generated on the fly in memory ([`ClipStream`]) or written
//! to disk as safetensors shards with a JSON manifest ([`write_dataset`], [`Dataset`]).
//!
//! Level seeds from [`EVAL_SEED_START`] up are held out: training data never uses them, and
//! evaluation takes its levels from there. `genie data` refuses training seeds that would reach
//! into that range unless `--held-out` is given (which then requires seeds in it).
//!
//! Alignment (see [`clip`]): `actions[t]` is the action applied to the state shown in
//! `frames[t]`, producing `frames[t + 1]`.

pub mod clip;
pub mod dataset;
pub mod import;
pub mod player;
pub mod spec;
pub mod write;

use std::path::PathBuf;

pub use clip::{Clip, ClipStream, Share, generate_clip, generate_clip_played};
pub use dataset::Dataset;
pub use player::{DEFAULT_ODDS, DEFAULT_STICKINESS, PlayStyle, ScriptedPlayer};
pub use spec::{DataSpec, Manifest, ShardEntry};
pub use write::write_dataset;

/// First level seed of the held-out evaluation range.
pub const EVAL_SEED_START: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("--episodes must be at least 1")]
    NoEpisodes,
    #[error("--frames-per-episode must be at least 1")]
    NoFrames,
    #[error("--shard-size must be at least 1")]
    NoShardSize,
    #[error("--difficulty must be within 0..=1, got {0}")]
    Difficulty(f32),
    #[error(
        "training levels {first}..={last} reach into the held-out evaluation range (level seeds \
         ≥ {EVAL_SEED_START}); lower --seed or --episodes, or pass --held-out to make evaluation data"
    )]
    HeldOutOverlap { first: u64, last: u64 },
    #[error("--held-out data must use level seeds ≥ {EVAL_SEED_START}, but --seed is {seed}")]
    NotHeldOut { seed: u64 },
    #[error("--seed {seed} plus {episodes} episodes overflows the level seeds")]
    SeedOverflow { seed: u64, episodes: usize },
    #[error("{path} already holds a dataset (manifest.json); pass --force to replace it")]
    OutputExists { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("shard {path}: {reason}")]
    Shard { path: PathBuf, reason: String },
    #[error("genie data import: {what}")]
    Import { what: String },
    #[error("clip {index} out of range: the dataset has {len} clips")]
    Index { index: usize, len: usize },
}

impl DataError {
    fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + use<> {
        let path = path.to_path_buf();
        move |source| DataError::Io { path, source }
    }
}
