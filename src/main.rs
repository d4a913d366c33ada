//! The `genie` command line: data, training, evaluation and the player, one subcommand each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

/// Arguments of a subcommand that is not built yet: accepted so that `--help` stays honest and
/// the command can say so instead of failing on an unknown flag.
#[derive(Debug, clap::Args)]
struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate labelled video of the procedural platformer into safetensors shards.
    Data(genie::data::DataArgs),
    /// Train the tokenizer, the latent action model or the dynamics model.
    Train(Pending),
    /// Evaluate a checkpoint on held-out levels and print the measures as JSON.
    Eval(Pending),
    /// Map each game action to the latent action that best reproduces it.
    Calibrate(Pending),
    /// Play a dreamed world live in a window, with keyboard or gamepad.
    Play(Pending),
    /// Dream headlessly from a prompt and a list of actions into a GIF.
    Dream(Pending),
    /// Regenerate a recorded session and check every frame against the recording.
    Replay(Pending),
    /// Export a recorded session as a GIF or a folder of PNGs.
    Export(Pending),
    /// Measure inference and training speed and print JSON.
    Bench(Pending),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Self::Data(_) => "data",
            Self::Train(_) => "train",
            Self::Eval(_) => "eval",
            Self::Calibrate(_) => "calibrate",
            Self::Play(_) => "play",
            Self::Dream(_) => "dream",
            Self::Replay(_) => "replay",
            Self::Export(_) => "export",
            Self::Bench(_) => "bench",
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match &command {
        Command::Data(args) => Ok(genie::data::run(args)?),
        Command::Train(_)
        | Command::Eval(_)
        | Command::Calibrate(_)
        | Command::Play(_)
        | Command::Dream(_)
        | Command::Replay(_)
        | Command::Export(_)
        | Command::Bench(_) => anyhow::bail!("`genie {}` is not built yet", command.name()),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = run(cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
