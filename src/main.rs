//! The `genie` command line: data, training, evaluation and the player, one subcommand each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[derive(Debug, Parser)]
#[command(
    name = "genie",
    version,
    about = "Play a world that a learned world model dreams up from one picture."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate labelled video of the procedural platformer into safetensors shards.
    Data(cli::data::DataArgs),
    /// Train the tokenizer (or its decoder alone), the latent action model or the dynamics model,
    /// or every step of a recipe.
    Train(cli::train::TrainArgs),
    /// Evaluate a checkpoint on held-out levels and print the measures as JSON.
    Eval(cli::eval::EvalArgs),
    /// Map each game action to the latent action that best reproduces it.
    Calibrate(cli::eval::CalibrateArgs),
    /// Play a dreamed world live in a window, with keyboard or gamepad.
    Play(cli::play::PlayArgs),
    /// Dream headlessly from a prompt and a list of actions into a GIF or an animated PNG.
    Dream(cli::play::DreamArgs),
    /// Regenerate a recorded session and check every frame against the recording.
    Replay(cli::replay::ReplayArgs),
    /// Export a recorded session as a GIF, a lossless animated PNG or a folder of PNGs.
    Export(cli::replay::ExportArgs),
    /// Measure inference and training speed and print JSON.
    Bench(cli::bench::BenchArgs),
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train(args) => cli::train::run(args),
        Command::Play(args) => cli::play::play(args),
        Command::Dream(args) => cli::play::dream(args),
        Command::Replay(args) => cli::replay::replay(args),
        Command::Export(args) => cli::replay::export(args),
        Command::Eval(args) => cli::eval::eval(args),
        Command::Calibrate(args) => cli::eval::calibrate_cmd(args),
        Command::Bench(args) => cli::bench::bench(args),
        Command::Data(args) => Ok(cli::data::run(&args)?),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(why) = genie::torch::load_cuda_backend() {
        tracing::debug!("no CUDA: {why}");
    }
    let result = run(cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
