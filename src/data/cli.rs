//! `genie data`: the command-line front of [`write_dataset`].

use std::path::PathBuf;
use std::time::Instant;

use super::spec::DataSpec;
use super::write::write_dataset;
use super::{DataError, EVAL_SEED_START};

/// Generate labelled video of the procedural platformer into safetensors shards.
///
/// Episode i plays level `--seed` + i with a scripted player, starting from a random point of
/// play, and records `--frames-per-episode` frames and the action taken after each.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Folder for the shards and manifest.json (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of episodes (clips), one level each.
    #[arg(long)]
    pub episodes: usize,
    /// Frames per episode.
    #[arg(long, default_value_t = 16)]
    pub frames_per_episode: usize,
    /// First level seed; training seeds must stay below 1,000,000 (held out for evaluation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Make held-out evaluation data instead (requires --seed ≥ 1,000,000).
    #[arg(long)]
    pub held_out: bool,
    /// Level difficulty, 0 (easy) to 1 (hard).
    #[arg(long, default_value_t = crate::game::DEFAULT_DIFFICULTY)]
    pub difficulty: f32,
    /// Camera: `step` moves one 8 px patch when the player nears an edge; `flip` jumps 40 px
    /// (the game of checkpoints before 2026-12-03)
    #[arg(long, default_value = "step")]
    pub camera: crate::game::Camera,
    /// Episodes per shard file.
    #[arg(long, default_value_t = 256)]
    pub shard_size: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace a dataset already in --out.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl DataArgs {
    pub fn spec(&self) -> DataSpec {
        DataSpec {
            episodes: self.episodes,
            clip_len: self.frames_per_episode,
            seed: self.seed,
            held_out: self.held_out,
            difficulty: self.difficulty,
            shard_size: self.shard_size,
            threads: self.threads.unwrap_or(0),
            overwrite: self.force,
            game: crate::game::GameConfig {
                camera: self.camera,
            },
        }
    }
}

/// Runs `genie data`: writes the dataset and prints a one-line summary.
pub fn run(args: &DataArgs) -> Result<(), DataError> {
    let spec = args.spec();
    let start = Instant::now();
    let manifest = write_dataset(&spec, &args.out, !args.quiet)?;
    let secs = start.elapsed().as_secs_f64();
    let frames = manifest.episodes * manifest.clip_len;
    let last = spec.seed + spec.episodes as u64 - 1;
    println!(
        "wrote {} episodes × {} frames ({frames} frames, levels {}..={last}{}) in {} shard(s) to {} in {secs:.2} s ({:.0} frames/s)",
        manifest.episodes,
        manifest.clip_len,
        spec.seed,
        if spec.held_out { ", held out" } else { "" },
        manifest.shards.len(),
        args.out.display(),
        frames as f64 / secs.max(1e-9),
    );
    debug_assert!(spec.held_out || last < EVAL_SEED_START);
    Ok(())
}
