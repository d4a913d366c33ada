//! What a dataset is: the generation spec [`DataSpec`] (with the held-out seed guard) and the
//! `manifest.json` that describes a dataset folder.
//!
//! A folder holds shards `shard-00000.safetensors`, … each with `frames` u8
//! `[n, L, 64, 64, 3]`, `actions` u8 `[n, L]` and `level_seeds` u64 `[n]`, and `manifest.json`.
//! Episode `i` of a dataset plays level `seed + i`. The manifest is written last, so a folder
//! without one is an unfinished dataset.

use serde::{Deserialize, Serialize};

use super::{DataError, EVAL_SEED_START};
use crate::game::GameConfig;

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub episodes: usize,
    /// Frames per episode, `L`.
    pub clip_len: usize,
    /// First level seed; episode `i` plays level `seed + i`.
    pub seed: u64,
    /// Evaluation data: level seeds must be ≥ [`EVAL_SEED_START`].
    pub held_out: bool,
    pub difficulty: f32,
    /// Episodes per shard.
    pub shard_size: usize,
    /// Worker threads; 0 means all cores.
    pub threads: usize,
    /// Replace a dataset already in the output folder.
    pub overwrite: bool,
    /// The version of the game played (camera, looks).
    pub game: GameConfig,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            episodes: 1,
            clip_len: 16,
            seed: 0,
            held_out: false,
            difficulty: crate::game::DEFAULT_DIFFICULTY,
            shard_size: 256,
            threads: 0,
            overwrite: false,
            game: GameConfig::default(),
        }
    }
}

impl DataSpec {
    /// Checks the sizes and that the level seeds stay on their side of [`EVAL_SEED_START`].
    pub fn validate(&self) -> Result<(), DataError> {
        if self.episodes == 0 {
            return Err(DataError::NoEpisodes);
        }
        if self.clip_len == 0 {
            return Err(DataError::NoFrames);
        }
        if self.shard_size == 0 {
            return Err(DataError::NoShardSize);
        }
        if !(0.0..=1.0).contains(&self.difficulty) {
            return Err(DataError::Difficulty(self.difficulty));
        }
        let last =
            self.seed
                .checked_add(self.episodes as u64 - 1)
                .ok_or(DataError::SeedOverflow {
                    seed: self.seed,
                    episodes: self.episodes,
                })?;
        if self.held_out && self.seed < EVAL_SEED_START {
            return Err(DataError::NotHeldOut { seed: self.seed });
        }
        if !self.held_out && last >= EVAL_SEED_START {
            return Err(DataError::HeldOutOverlap {
                first: self.seed,
                last,
            });
        }
        Ok(())
    }

    pub(super) fn shards(&self) -> usize {
        self.episodes.div_ceil(self.shard_size)
    }
}

/// `manifest.json`: what a dataset folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// `[height, width, channels]`.
    pub frame_size: [usize; 3],
    pub clip_len: usize,
    pub episodes: usize,
    pub seed: u64,
    pub held_out: bool,
    pub difficulty: f32,
    /// The version of the game played; absent from datasets made before 2026-12-03:
    /// [`GameConfig::original`].
    #[serde(default = "GameConfig::original")]
    pub game: GameConfig,
    /// Whether the clips' actions are the game's (false for video imported by `genie data
    /// import`, whose actions are all [`super::import::NO_ACTION`]). Absent: true.
    #[serde(default = "labelled")]
    pub labelled: bool,
    /// The videos imported, by index (a clip's `level_seeds` entry); empty for the platformer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Name of each action id, in id order (none for unlabelled video).
    pub action_names: Vec<String>,
    pub shards: Vec<ShardEntry>,
}

fn labelled() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub episodes: usize,
}

pub(super) fn shard_name(i: usize) -> String {
    format!("shard-{i:05}.safetensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation_guards_the_held_out_range() {
        let ok = DataSpec {
            episodes: 10,
            ..DataSpec::default()
        };
        assert!(ok.validate().is_ok());
        let edge = DataSpec {
            seed: EVAL_SEED_START - 10,
            ..ok.clone()
        };
        assert!(edge.validate().is_ok());
        let over = DataSpec {
            seed: EVAL_SEED_START - 9,
            ..ok.clone()
        };
        assert!(matches!(
            over.validate(),
            Err(DataError::HeldOutOverlap { .. })
        ));
        let held = DataSpec {
            held_out: true,
            ..ok.clone()
        };
        assert!(matches!(held.validate(), Err(DataError::NotHeldOut { .. })));
        let held = DataSpec {
            held_out: true,
            seed: EVAL_SEED_START,
            ..ok.clone()
        };
        assert!(held.validate().is_ok());
        for (spec, want) in [
            (
                DataSpec {
                    episodes: 0,
                    ..ok.clone()
                },
                "--episodes",
            ),
            (
                DataSpec {
                    clip_len: 0,
                    ..ok.clone()
                },
                "--frames-per-episode",
            ),
            (
                DataSpec {
                    shard_size: 0,
                    ..ok.clone()
                },
                "--shard-size",
            ),
            (
                DataSpec {
                    difficulty: 2.0,
                    ..ok.clone()
                },
                "--difficulty",
            ),
        ] {
            let msg = spec.validate().unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
        }
    }
}
