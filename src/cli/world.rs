//! Options shared by the commands that run the world model, and building the worlds they play.

use std::path::{Path, PathBuf};

use anyhow::Context;
use genie::model::checkpoint::read_config_file;
use genie::model::{Genie, GenieConfig, SamplerConfig};
use genie::session::World;
use genie::session::dream::DreamWorld;
use genie::session::hero::{HeroChoice, HeroOutcome};
use genie::session::prompt::Prompt;
use genie::torch::{DeviceChoice, set_threads};
use tch::Device;

/// The checkpoint shipped in the repository, found from wherever genie is run.
pub fn default_checkpoint() -> PathBuf {
    let local = PathBuf::from("checkpoints");
    if local.join("genie.json").exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints")
    }
}

/// The prompt shown when none is given: a frame of a held-out level.
pub fn default_prompt() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/prompt.png")
}

/// Sets libtorch's thread count (when given) and resolves `--device`.
pub fn device(choice: &str, threads: Option<usize>) -> anyhow::Result<Device> {
    set_threads(threads);
    Ok(choice.parse::<DeviceChoice>()?.resolve()?)
}

/// Loads a checkpoint folder; the error names the folder.
pub fn load_genie(dir: &Path, device: Device) -> anyhow::Result<Genie> {
    Genie::load(dir, device).with_context(|| format!("loading checkpoint {}", dir.display()))
}

/// The sizes of a new run: a `genie.json` given with `--config`, or the built-in ones.
pub fn config_or_default(path: Option<&Path>) -> anyhow::Result<GenieConfig> {
    Ok(match path {
        Some(path) => read_config_file(path)?,
        None => GenieConfig::default(),
    })
}

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Checkpoint folder (genie.json + the three networks) [default: the shipped checkpoints/]
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Where the networks run: cpu, cuda or auto
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch threads [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Seed of the sampler (a recording replays from it)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Learning a picture before it is played (`genie::session::learn`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LearnArgs {
    /// Before playing a picture, train the tokenizer's decoder and the dynamics model a little
    /// on clips made from it, the hero walking and jumping over it under the keys (65–90 s on
    /// two CPU cores, longer beside a busy window): the world keeps the picture instead of
    /// drawing a level of its own, as one screen. The shipped weights on disk are not changed
    #[arg(long)]
    pub learn: bool,
    /// With --learn: optimizer steps of the decoder and of the dynamics model
    #[arg(long, value_name = "DECODER,DYNAMICS", requires = "learn", value_parser = parse_steps)]
    pub learn_steps: Option<(usize, usize)>,
    /// With --learn: extra weight of the dynamics model's tokens that change between frames
    #[arg(long, value_name = "W", requires = "learn")]
    pub learn_change_weight: Option<f64>,
    /// With --learn: the dynamics model's learning rate
    #[arg(long, value_name = "LR", requires = "learn")]
    pub learn_lr: Option<f64>,
    /// With --learn: extra weight of the hero's pixels in the decoder's error
    #[arg(long, value_name = "W", requires = "learn")]
    pub learn_hero_weight: Option<f64>,
}

impl LearnArgs {
    /// The options of `--learn`, where given, checked.
    pub fn options(&self) -> anyhow::Result<Option<genie::session::learn::LearnOptions>> {
        let opts = self.learn.then(|| {
            let mut opts = genie::session::learn::LearnOptions::default();
            if let Some((decoder, dynamics)) = self.learn_steps {
                opts.decoder_steps = decoder;
                opts.dynamics_steps = dynamics;
            }
            if let Some(w) = self.learn_change_weight {
                opts.change_weight = w;
            }
            if let Some(lr) = self.learn_lr {
                opts.dynamics_lr = lr;
            }
            if let Some(w) = self.learn_hero_weight {
                opts.hero_weight = w;
            }
            opts
        });
        if let Some(opts) = &opts {
            opts.validate().map_err(anyhow::Error::msg)?;
        }
        Ok(opts)
    }
}

fn parse_steps(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("{text:?}: two step counts, DECODER,DYNAMICS (e.g. 60,40)");
    let (a, b) = text.split_once(',').ok_or_else(bad)?;
    let count = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    let (a, b) = (count(a)?, count(b)?);
    if a > 100_000 || b > 100_000 {
        return Err(format!("{text:?}: at most 100000 steps each"));
    }
    Ok((a, b))
}

/// The MaskGIT sampler's settings a command may change from the checkpoint's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SamplerArgs {
    /// MaskGIT steps per frame [default: the checkpoint's]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sampling temperature [default: the checkpoint's]
    #[arg(long)]
    pub temperature: Option<f64>,
    /// For a world that scrolls: temperature of the camera head's move before each frame, 0 the
    /// likeliest move [default: the checkpoint's]
    #[arg(long)]
    pub camera_temperature: Option<f64>,
}

impl SamplerArgs {
    /// `base` (a checkpoint's sampler) with the settings given here, checked.
    pub fn over(&self, base: SamplerConfig) -> anyhow::Result<SamplerConfig> {
        let mut sampler = base;
        if let Some(s) = self.steps {
            sampler.steps = s.max(1);
        }
        if let Some(t) = self.temperature {
            sampler.temperature = t;
        }
        if let Some(t) = self.camera_temperature {
            sampler.camera_temperature = t;
        }
        sampler.validate()?;
        Ok(sampler)
    }
}

impl ModelArgs {
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(default_checkpoint)
    }

    /// Loads the checkpoint on the chosen device and builds the dream.
    pub fn dream(&self) -> anyhow::Result<(DreamWorld, LoadedInfo)> {
        let dir = self.checkpoint_dir();
        let mut genie = load_genie(&dir, device(&self.device, self.threads)?)?;
        // Keys bound by hand in the player (`L`) replace the calibration's.
        let bound = genie::session::keys::read_bound_keys(&dir, genie.config.dynamics.latents())
            .map_err(anyhow::Error::msg)?;
        genie::session::keys::bind_keys(&mut genie.config, &bound);
        let sampler = self.sampler.over(genie.config.sampler)?;
        let meanings = latent_meanings(&genie);
        // Trained on imported video (`genie data import`): its player is not the platformer's.
        let from_video = genie.config.learned_from_video("tokenizer");
        let info = LoadedInfo {
            from_video,
            hash: checkpoint_hash(&dir)?,
            // Absolute, so that a recording names it from wherever it is replayed.
            dir: std::fs::canonicalize(&dir).unwrap_or(dir),
            context: genie.config.dynamics.context_frames as usize,
            game: genie.config.game,
            sampler,
            meanings,
            learned_latents: genie.config.dynamics.num_actions.max(0) as usize,
        };
        let mut world = DreamWorld::new(genie, sampler, self.seed);
        // Marked bound too, so that the checkpoint's adapter leaves them as they are.
        for (name, &latent) in &bound {
            let action = name.parse().map_err(anyhow::Error::msg)?;
            world.bind(action, latent as u8);
        }
        Ok((world, info))
    }
}

pub struct LoadedInfo {
    pub dir: PathBuf,
    pub hash: String,
    pub context: usize,
    /// The version of the game the checkpoint learned (`--level` plays it beside the dream).
    pub game: genie::game::GameConfig,
    pub sampler: genie::model::SamplerConfig,
    /// For each latent action the model takes (learned, then blends), the game actions
    /// calibrated to it.
    pub meanings: Vec<Option<String>>,
    /// How many of those the model learned; the rest are blends.
    pub learned_latents: usize,
    /// Whether its tokenizer learned another game's video, whose hero is no magenta player.
    pub from_video: bool,
}

fn latent_meanings(genie: &Genie) -> Vec<Option<String>> {
    let mut out = vec![None::<String>; genie.config.dynamics.latents().max(0) as usize];
    let mut add = |latent: i64, name: String| {
        if let Some(slot) = out.get_mut(latent as usize) {
            *slot = Some(match slot.take() {
                Some(prev) => format!("{prev}, {name}"),
                None => name,
            });
        }
    };
    if let Some(map) = &genie.config.calibration {
        for (name, &latent) in map {
            add(latent, name.clone());
        }
        // A key's first frame, where it gets a latent of its own.
        for (name, &latent) in genie.config.press_calibration.iter().flatten() {
            if map.get(name) != Some(&latent) {
                add(latent, format!("{name} (press)"));
            }
        }
        // A key that gets another latent while the player faces one way (a dash left).
        for (maps, what) in [
            (&genie.config.facing_calibration, ""),
            (&genie.config.facing_press_calibration, " press"),
        ] {
            for (way, keys) in maps.iter().flatten() {
                for (name, &latent) in keys {
                    add(latent, format!("{name} (facing {way}{what})"));
                }
            }
        }
        // A key held long, where it gets a latent of its own.
        for (name, &latent) in genie.config.settled_calibration.iter().flatten() {
            add(latent, format!("{name} (held long)"));
        }
        // A key held through its cycle.
        for (name, cycle) in genie.config.held_cycles.iter().flatten() {
            for &latent in cycle {
                add(latent, format!("{name} (held)"));
            }
        }
    }
    out
}

/// SHA-256 over the checkpoint's files, so a recording knows which weights made it.
pub fn checkpoint_hash(dir: &Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for name in [
        "genie.json",
        "tokenizer.safetensors",
        "lam.safetensors",
        "dynamics.safetensors",
    ] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        hasher.update(name.as_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A prompt from an image, a recorded session or a GIF, its hero redrawn as `hero` says;
/// `max_frames` is the model's context.
pub fn load_prompt(path: &Path, max_frames: usize, hero: HeroChoice) -> anyhow::Result<Prompt> {
    let opened = Prompt::open(path, max_frames, hero)?;
    if opened.hero != HeroOutcome::AlreadyDrawn {
        eprintln!("{}: {}", path.display(), opened.hero);
    }
    Ok(opened.prompt)
}
