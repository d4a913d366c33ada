//! `genie replay` regenerates a recorded session from its start state and event log and checks
//! every frame against the recording; `genie export` writes a recording as a GIF or PNGs.

use std::path::PathBuf;

use anyhow::Context;
use genie::session::Control;
use genie::session::dream::DreamWorld;
use genie::session::engine::{Command, Engine};
use genie::session::export::{write_apng, write_gif, write_pngs};
use genie::session::prompt::Prompt;
use genie::session::record::{EventKind, Recording};

use super::world::{checkpoint_hash, device, load_genie};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Recording folder (made by `genie play --record` or `genie dream --record`)
    pub dir: PathBuf,
    /// Checkpoint to replay with [default: the one named in the recording]
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Replay even when the checkpoint's files differ from the recorded hash
    #[arg(long)]
    pub ignore_hash: bool,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch threads [default: the recording's]
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).multiple(true).args(["gif", "apng", "png"])))]
pub struct ExportArgs {
    /// Recording folder
    pub dir: PathBuf,
    /// Write an animated GIF (256 colours a frame; the player's colours kept)
    #[arg(long, value_name = "FILE")]
    pub gif: Option<PathBuf>,
    /// Write a lossless animated PNG (APNG)
    #[arg(long, value_name = "FILE")]
    pub apng: Option<PathBuf>,
    /// Write frame_00000.png, … into this folder
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
    /// Pixel scale of the GIF or APNG
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
    /// Frames per second of the GIF or APNG
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let rec = Recording::open(&args.dir)?;
    anyhow::ensure!(
        rec.start.world == "dream",
        "{}: a recording of the {:?} world cannot be regenerated",
        args.dir.display(),
        rec.start.world
    );
    let dir = match (&args.checkpoint, &rec.start.checkpoint) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => anyhow::bail!(
            "{}: the recording names no checkpoint; pass --checkpoint",
            args.dir.display()
        ),
    };
    let hash = checkpoint_hash(&dir)?;
    if let Some(recorded) = &rec.start.checkpoint_hash
        && *recorded != hash
        && !args.ignore_hash
    {
        anyhow::bail!(
            "checkpoint {} (hash {hash}) is not the one the recording was made with (hash {recorded}); pass --ignore-hash to replay anyway",
            dir.display()
        );
    }
    let genie = load_genie(
        &dir,
        device(&args.device, args.threads.or(rec.start.threads))?,
    )?;
    let mut sampler = genie.config.sampler;
    if let Some(s) = rec.start.sampler {
        s.apply(&mut sampler);
    }
    let mut sampler_now = sampler;
    let mut world = DreamWorld::new(genie, sampler, rec.start.seed);
    // A session whose pictures were learnt learns them again, the same way.
    world.learn_pictures(rec.start.learn);
    let mut engine = Engine::spawn(Box::new(world));
    anyhow::ensure!(
        !rec.prompt.is_empty(),
        "{}: the recording holds no prompt frames",
        args.dir.display()
    );
    let prompt = Prompt {
        frames: rec.prompt.clone(),
    };
    let mut mismatched = Vec::new();
    let mut max_diff = 0u8;
    for (event, stored) in rec.events.iter().zip(&rec.frames) {
        let command = match &event.kind {
            EventKind::Reset => Command::Reset(prompt.clone()),
            EventKind::Rewind { frames } => Command::Rewind(*frames),
            EventKind::Step {
                latent_action,
                game_action,
                sampler,
            } => {
                if let Some(s) = sampler {
                    // Fields an older recording left out keep the values in effect.
                    s.apply(&mut sampler_now);
                    engine.send(Command::Sampler(sampler_now));
                }
                let latent = latent_action.with_context(|| {
                    format!(
                        "{}: frame {} has no latent action ({game_action:?})",
                        args.dir.display(),
                        event.frame
                    )
                })?;
                Command::Step(Control::Latent(latent))
            }
        };
        anyhow::ensure!(engine.send(command), "the world's command queue is full");
        let out = engine.recv()?;
        let diff = out
            .frame
            .iter()
            .zip(stored)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        max_diff = max_diff.max(diff);
        if out.frame != *stored {
            mismatched.push(event.frame);
        }
    }
    let frames = rec.events.len().min(rec.frames.len());
    let report = serde_json::json!({
        "frames": frames,
        "matching": frames - mismatched.len(),
        "mismatched_frames": mismatched,
        "max_abs_diff": max_diff,
        "truncated_recording": rec.truncated,
    });
    super::print(&report)?;
    anyhow::ensure!(
        mismatched.is_empty(),
        "{} of the recorded frames differ from the replay",
        mismatched.len()
    );
    Ok(())
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let rec = Recording::open(&args.dir)?;
    if rec.truncated {
        eprintln!(
            "note: {} was cut short; exporting its {} complete frames",
            args.dir.display(),
            rec.frames.len()
        );
    }
    // One world: each animation frame is one recorded frame.
    let rows: Vec<Vec<Vec<u8>>> = rec.frames.iter().map(|f| vec![f.clone()]).collect();
    if let Some(path) = &args.gif {
        write_gif(path, &rows, args.scale, args.fps)?;
        eprintln!("wrote {} frames to {}", rows.len(), path.display());
    }
    if let Some(path) = &args.apng {
        write_apng(path, &rows, args.scale, args.fps)?;
        eprintln!("wrote {} frames to {}", rows.len(), path.display());
    }
    if let Some(dir) = &args.png {
        write_pngs(dir, &rec.frames)?;
        eprintln!("wrote {} PNGs to {}", rec.frames.len(), dir.display());
    }
    Ok(())
}
