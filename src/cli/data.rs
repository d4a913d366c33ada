//! `genie data`: the command-line front of [`write_dataset`].

use std::path::PathBuf;
use std::time::Instant;

use genie::data::{DataError, DataSpec, EVAL_SEED_START, write_dataset};

/// Generate labelled video of the procedural platformer into safetensors shards.
///
/// Episode i plays level `--seed` + i with a scripted player, starting from a random point of
/// play, and records `--frames-per-episode` frames and the action taken after each.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DataArgs {
    #[command(subcommand)]
    pub import: Option<DataCommand>,
    /// Folder for the shards and manifest.json (created if missing).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Number of episodes (clips), one level each.
    #[arg(long, required = true)]
    pub episodes: Option<usize>,
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
    #[arg(long, default_value_t = genie::game::DEFAULT_DIFFICULTY)]
    pub difficulty: f32,
    /// Camera: `step` moves one 8 px patch when the player nears an edge; `flip` jumps 40 px
    /// (the game of checkpoints before 2026-12-03)
    #[arg(long, default_value = "step")]
    pub camera: genie::game::Camera,
    /// How levels are drawn: `themes` (the five palettes of checkpoints before 2026-12-03),
    /// `mixed` (many looks: random palettes, textures, pixel art, pencil on paper) or `held-out`
    /// (looks training never sees, for evaluation)
    #[arg(long, default_value = "mixed")]
    pub looks: genie::game::Looks,
    /// What the keys do: `classic` (the shipped checkpoint's game) or `responsive` (every key
    /// changes the next frame: a jump is higher while held and glides, down crouches in the air,
    /// dash lasts while held and runs while cooling down)
    #[arg(long, default_value = "classic")]
    pub controls: genie::game::Controls,
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
            episodes: self.episodes.unwrap_or(0),
            clip_len: self.frames_per_episode,
            seed: self.seed,
            held_out: self.held_out,
            difficulty: self.difficulty,
            shard_size: self.shard_size,
            threads: self.threads.unwrap_or(0),
            overwrite: self.force,
            game: genie::game::GameConfig {
                camera: self.camera,
                looks: self.looks,
                controls: self.controls,
            },
        }
    }
}

/// `genie data import`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DataCommand {
    /// Import gameplay video of any game, without actions: video files (through ffmpeg),
    /// animated GIF/WebP/PNG, folders of numbered frames, or folders of those. Writes OUT/train
    /// and, with --held-out-every, OUT/held-out.
    Import(ImportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Videos, animations, frame folders, or folders holding them
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Folder for the splits (train/, held-out/)
    #[arg(long)]
    pub out: PathBuf,
    /// Frames per second to resample to (a frame folder is taken as already at this rate)
    #[arg(long, default_value_t = 15.0)]
    pub fps: f64,
    /// How a picture becomes square: centre (the largest centred square), full (squeezed) or
    /// X,Y,W,H (a rectangle in pixels)
    #[arg(long, default_value = "centre")]
    pub crop: genie::data::import::Crop,
    /// Frames per clip; no clip spans a scene cut
    #[arg(long, default_value_t = 16)]
    pub frames_per_episode: usize,
    /// A scene cut: the mean absolute difference between two frames above this (0-255)
    #[arg(long, default_value_t = 40.0)]
    pub cut: f64,
    /// Every N-th source (by sorted name) goes to the held-out split; 0: none
    #[arg(long, default_value_t = 0)]
    pub held_out_every: usize,
    /// Clips per shard file
    #[arg(long, default_value_t = 256)]
    pub shard_size: usize,
    /// Replace datasets already in --out
    #[arg(long)]
    pub force: bool,
    /// Also keep the actions recorded with each source (NAME.actions.json beside a video,
    /// actions.json in a frame folder: genie's action names, one per frame at --fps), to
    /// calibrate and measure a world with; training never reads them. A source without them is
    /// skipped
    #[arg(long)]
    pub actions: bool,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `genie data`: writes the dataset and prints a one-line summary.
pub fn run(args: &DataArgs) -> Result<(), DataError> {
    if let Some(DataCommand::Import(import)) = &args.import {
        return run_import(import);
    }
    let Some(out) = &args.out else {
        return Err(DataError::Import {
            what: "--out is required".into(),
        });
    };
    let spec = args.spec();
    let start = Instant::now();
    let manifest = write_dataset(&spec, out, !args.quiet)?;
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
        out.display(),
        frames as f64 / secs.max(1e-9),
    );
    debug_assert!(spec.held_out || last < EVAL_SEED_START);
    Ok(())
}

fn run_import(args: &ImportArgs) -> Result<(), DataError> {
    let spec = genie::data::import::ImportSpec {
        inputs: args.inputs.clone(),
        fps: args.fps,
        crop: args.crop,
        clip_len: args.frames_per_episode,
        cut: args.cut,
        held_out_every: args.held_out_every,
        shard_size: args.shard_size,
        overwrite: args.force,
        actions: args.actions,
    };
    let start = Instant::now();
    let report = genie::data::import::import(&spec, &args.out, !args.quiet)?;
    for (dir, m) in &report.splits {
        println!(
            "wrote {} clips × {} frames from {} source(s) to {}",
            m.episodes,
            m.clip_len,
            m.sources.len(),
            dir.display()
        );
    }
    println!(
        "{} scene cut(s), {} source(s) skipped, in {:.1} s",
        report.cuts,
        report.skipped.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
