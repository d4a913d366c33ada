//! Checkpoints (docs/design.md §4): a folder with one safetensors file per network
//! (`tokenizer.safetensors`, `lam.safetensors`, `dynamics.safetensors`) and `genie.json`, which
//! holds every config plus metadata (the key → latent action calibration, the training data,
//! the evaluation figures). Loading checks every tensor's name, shape and dtype against the
//! network its config builds before copying anything, and says exactly what does not match.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::ConfigError;
use super::adapter::{ActionAdapter, Adapter, AdapterConfig, AdapterShape};
use super::dynamics::{ContextRead, Dynamics, DynamicsConfig};
use super::lam::{Lam, LamConfig};
use super::maskgit::SamplerConfig;
use super::tokenizer::{Tokenizer, TokenizerConfig};
use crate::game::{Action, Facing, GameConfig};

pub const CONFIG_FILE: &str = "genie.json";
pub const TOKENIZER_FILE: &str = "tokenizer.safetensors";
pub const LAM_FILE: &str = "lam.safetensors";
pub const DYNAMICS_FILE: &str = "dynamics.safetensors";
/// The action adapter's weights, where genie.json has an `adapter`.
pub const ADAPTER_FILE: &str = "adapter.safetensors";

/// The most frames after its press a key may wait for its settled latent (an hour of play).
pub const MAX_SETTLE_AFTER: u32 = 216_000;
/// The most latents in a held key's cycle (`held_cycles`): two minutes of play.
pub const MAX_HELD_CYCLE: usize = 3_600;

/// The contents of `genie.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenieConfig {
    /// Layout version of this file.
    pub format: u32,
    pub tokenizer: TokenizerConfig,
    pub lam: LamConfig,
    pub dynamics: DynamicsConfig,
    /// Default play settings.
    pub sampler: SamplerConfig,
    /// The version of the platformer the networks were trained on (camera, looks): evaluation,
    /// calibration and the real game run it. Absent from genie.json files before 2026-12-03:
    /// [`GameConfig::original`].
    #[serde(default = "GameConfig::original")]
    pub game: GameConfig,
    /// Game action name → latent action id, once `genie calibrate` has run.
    pub calibration: Option<BTreeMap<String, i64>>,
    /// Game action name → latent action id for the first frame of a key press, where a key held
    /// gets `calibration`'s on the frames after (`genie calibrate`, by dreams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub press_calibration: Option<BTreeMap<String, i64>>,
    /// Way the player faces (`left`, `right`) → game action name → latent action id, replacing
    /// `calibration`'s while the player faces that way (a dash goes the way it faces), where
    /// `genie calibrate` found one better there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facing_calibration: Option<BTreeMap<String, BTreeMap<String, i64>>>,
    /// The same for the first frame of a key press, replacing `press_calibration`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facing_press_calibration: Option<BTreeMap<String, BTreeMap<String, i64>>>,
    /// Game action name → latent action id for the frames a key has been held `settle_after`
    /// frames or more after its press, replacing the maps above there (set by hand: a noop held
    /// long stands on a blend, where the first frames stop on `calibration`'s latent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_calibration: Option<BTreeMap<String, i64>>,
    /// Frames after a key's press from which it gets its `settled_calibration` latent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_after: Option<u32>,
    /// Game action name → the latents of a key held, frame by frame from its press, over and
    /// over: a held jump key takes off again on landing in the game, which one press latent and
    /// one hold latent cannot say. Replaces the maps above for that action (set by hand, from
    /// the LAM's codes of the game's own held keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_cycles: Option<BTreeMap<String, Vec<i64>>>,
    /// The state-dependent key map (`genie calibrate --adapter`), whose weights are
    /// adapter.safetensors; where present, keys go through it instead of the two maps above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterConfig>,
    /// Free-form description of the training data (seeds, clip count, frames, ...).
    pub training_data: serde_json::Value,
    /// Free-form evaluation figures the checkpoint was committed with.
    pub eval: serde_json::Value,
}

impl Default for GenieConfig {
    fn default() -> Self {
        Self {
            format: 1,
            tokenizer: TokenizerConfig::default(),
            lam: LamConfig::default(),
            dynamics: DynamicsConfig::default(),
            sampler: SamplerConfig::default(),
            game: GameConfig::default(),
            calibration: None,
            press_calibration: None,
            facing_calibration: None,
            facing_press_calibration: None,
            settled_calibration: None,
            settle_after: None,
            held_cycles: None,
            adapter: None,
            training_data: serde_json::Value::Null,
            eval: serde_json::Value::Null,
        }
    }
}

impl GenieConfig {
    /// Whether the network of `stage` (`tokenizer`, `lam`, `dynamics`, ...) learned from video
    /// imported from another game (`genie train --data` on `genie data import` shards, which
    /// marks it in `training_data`): its player and its keys are not the platformer's.
    pub fn learned_from_video(&self, stage: &str) -> bool {
        self.training_data[stage]["video"] == true
    }

    /// What an action adapter reads (the tokenizer's tokens) and picks (the dynamics model's
    /// latents, its blends too).
    pub fn adapter_shape(&self) -> AdapterShape {
        AdapterShape {
            vocab: self.tokenizer.codebook_size,
            tokens: self.tokenizer.tokens_per_frame(),
            latents: self.dynamics.latents(),
        }
    }

    /// Each config on its own, then that the three agree with each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tokenizer.validate()?;
        self.lam.validate()?;
        self.dynamics.validate()?;
        self.sampler.validate()?;
        if let Some(adapter) = &self.adapter {
            adapter.validate(self.adapter_shape())?;
        }
        let mut maps: Vec<(String, &BTreeMap<String, i64>)> = Vec::new();
        for (field, map) in [
            ("calibration", &self.calibration),
            ("press_calibration", &self.press_calibration),
            ("settled_calibration", &self.settled_calibration),
        ] {
            maps.extend(map.iter().map(|m| (field.to_owned(), m)));
        }
        for (field, by_way) in [
            ("facing_calibration", &self.facing_calibration),
            ("facing_press_calibration", &self.facing_press_calibration),
        ] {
            for (way, map) in by_way.iter().flatten() {
                if way.parse::<Facing>().is_err() {
                    return Err(ConfigError::new(
                        "genie",
                        format!("{field}: {way:?} is not a way to face (left or right)"),
                    ));
                }
                maps.push((format!("{field}.{way}"), map));
            }
        }
        if self.settled_calibration.is_some() != self.settle_after.is_some() {
            return Err(ConfigError::new(
                "genie",
                "settled_calibration and settle_after come together: the latents of a key held \
                 long, and from how many frames after its press"
                    .to_owned(),
            ));
        }
        if let Some(after) = self.settle_after
            && !(1..=MAX_SETTLE_AFTER).contains(&after)
        {
            return Err(ConfigError::new(
                "genie",
                format!("settle_after {after} is not 1 to {MAX_SETTLE_AFTER} frames"),
            ));
        }
        // Every (field, action name, latent) the maps and the cycles give, checked alike below.
        let mut entries: Vec<(&str, &String, i64)> = Vec::new();
        for (field, map) in &maps {
            entries.extend(
                map.iter()
                    .map(|(name, &latent)| (field.as_str(), name, latent)),
            );
        }
        for (name, cycle) in self.held_cycles.iter().flatten() {
            if !(1..=MAX_HELD_CYCLE).contains(&cycle.len()) {
                return Err(ConfigError::new(
                    "genie",
                    format!(
                        "held_cycles: {name} has {} latents, not 1 to {MAX_HELD_CYCLE}",
                        cycle.len()
                    ),
                ));
            }
            entries.extend(cycle.iter().map(|&l| ("held_cycles", name, l)));
        }
        for (field, name, latent) in entries {
            if !Action::ALL.iter().any(|a| a.name() == name) {
                return Err(ConfigError::new(
                    "genie",
                    format!("{field}: {name:?} is not one of the game's 8 actions"),
                ));
            }
            if !(0..self.dynamics.latents()).contains(&latent) {
                return Err(ConfigError::new(
                    "genie",
                    format!(
                        "{field}: {name} → latent {latent}, but the dynamics model has {} \
                         latents ({} learned, {} blends)",
                        self.dynamics.latents(),
                        self.dynamics.num_actions,
                        self.dynamics.blends.len()
                    ),
                ));
            }
        }
        let (tok, lam, dynamics) = (&self.tokenizer, &self.lam, &self.dynamics);
        let agree = |ok: bool, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new("genie", reason))
            }
        };
        agree(
            dynamics.vocab_size == tok.codebook_size,
            format!(
                "dynamics.vocab_size {} ≠ tokenizer.codebook_size {}",
                dynamics.vocab_size, tok.codebook_size
            ),
        )?;
        agree(
            dynamics.tokens_per_frame == tok.tokens_per_frame(),
            format!(
                "dynamics.tokens_per_frame {} ≠ the tokenizer's {}",
                dynamics.tokens_per_frame,
                tok.tokens_per_frame()
            ),
        )?;
        agree(
            dynamics.num_actions == lam.num_actions,
            format!(
                "dynamics.num_actions {} ≠ lam.num_actions {}",
                dynamics.num_actions, lam.num_actions
            ),
        )?;
        agree(
            (lam.image_size, lam.channels) == (tok.image_size, tok.channels),
            format!(
                "lam frames {0}×{0}×{1} ≠ tokenizer frames {2}×{2}×{3}",
                lam.image_size, lam.channels, tok.image_size, tok.channels
            ),
        )?;
        agree(
            !dynamics.scroll || tok.channels == super::scroll::HEAD_CHANNELS,
            format!(
                "dynamics.scroll: the camera head reads RGB frames, not {} channels",
                tok.channels
            ),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: file not found")]
    MissingFile { path: PathBuf },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a valid genie.json: {error}")]
    Json { path: PathBuf, error: String },
    #[error("{path}: {error}")]
    Config { path: PathBuf, error: ConfigError },
    #[error("{path}: not a readable safetensors file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: tensor `{name}` is missing (expected shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
    },
    #[error(
        "{path}: unexpected tensor `{name}` (shape {found:?}) that the configured network does not have"
    )]
    UnexpectedTensor {
        path: PathBuf,
        name: String,
        found: Vec<i64>,
    },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("{path}: tensor `{name}` has dtype {found}, expected {expected:?}")]
    Dtype {
        path: PathBuf,
        name: String,
        expected: Kind,
        found: String,
    },
    #[error(
        "{path}: genie.json's {network} config makes a network of {expected} values, but this \
         file holds {held}: the config and the weights do not belong together"
    )]
    Size {
        path: PathBuf,
        network: String,
        expected: u128,
        held: u128,
    },
    #[error("{path}: {error}")]
    Torch { path: PathBuf, error: tch::TchError },
}

/// Writes every variable of `vs` to a safetensors file.
pub fn save_network(vs: &VarStore, path: &Path) -> Result<(), CheckpointError> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    // Safetensors holds host memory; detach so no autograd state is involved.
    let named: Vec<(String, Tensor)> = named
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
        .collect();
    Tensor::write_safetensors(&named, path).map_err(|error| CheckpointError::Torch {
        path: path.into(),
        error,
    })
}

/// Loads a safetensors file into the variables of `vs` after checking that the file holds
/// exactly those variables, with the same shapes and dtypes. On error nothing is copied.
pub fn load_network(vs: &VarStore, path: &Path) -> Result<(), CheckpointError> {
    let bytes = read(path)?;
    copy_network(vs, &parse(&bytes, path)?, path)
}

/// The tensors of a safetensors file read into memory (its header and offsets checked).
fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<SafeTensors<'a>, CheckpointError> {
    SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Networks up to this many elements are built even when their config does not match the
/// file, so the error can name the first tensor that differs; a config that makes a larger
/// network than its file holds is refused before anything is allocated.
const PRECISE_CHECK_ELEMENTS: u128 = 1 << 24;

/// Refuses a config whose network (`expected` elements) would be larger than the weights in
/// `file` and larger than [`PRECISE_CHECK_ELEMENTS`]: config and weights do not belong together,
/// and building it first could take any amount of memory.
fn check_size(
    file: &SafeTensors<'_>,
    path: &Path,
    network: &str,
    expected: u128,
) -> Result<(), CheckpointError> {
    let held: u128 = file
        .tensors()
        .iter()
        .map(|(_, view)| view.shape().iter().map(|&d| d as u128).product::<u128>())
        .sum();
    if expected > held && expected > PRECISE_CHECK_ELEMENTS {
        return Err(CheckpointError::Size {
            path: path.into(),
            network: network.into(),
            expected,
            held,
        });
    }
    Ok(())
}

/// Copies `file`'s tensors into the variables of `vs` after checking that it holds exactly
/// those variables, with the same shapes and dtypes. On error nothing is copied.
fn copy_network(vs: &VarStore, file: &SafeTensors<'_>, path: &Path) -> Result<(), CheckpointError> {
    let variables = vs.variables();
    let err_path = || path.to_path_buf();
    let mut found: BTreeMap<String, (Vec<i64>, Option<Kind>, String)> = BTreeMap::new();
    for (name, view) in file.tensors() {
        let shape = view.shape().iter().map(|&s| s as i64).collect();
        found.insert(
            name,
            (shape, kind_of(view.dtype()), format!("{:?}", view.dtype())),
        );
    }
    let expected: BTreeSet<&String> = variables.keys().collect();
    for (name, (shape, _, _)) in &found {
        if !expected.contains(name) {
            return Err(CheckpointError::UnexpectedTensor {
                path: err_path(),
                name: name.clone(),
                found: shape.clone(),
            });
        }
    }
    for name in &expected {
        let var = &variables[*name];
        let Some((shape, kind, dtype)) = found.get(*name) else {
            return Err(CheckpointError::MissingTensor {
                path: err_path(),
                name: (*name).clone(),
                expected: var.size(),
            });
        };
        if *shape != var.size() && !band_resized(name, shape, &var.size()) {
            return Err(CheckpointError::Shape {
                path: err_path(),
                name: (*name).clone(),
                expected: var.size(),
                found: shape.clone(),
            });
        }
        if *kind != Some(var.kind()) {
            return Err(CheckpointError::Dtype {
                path: err_path(),
                name: (*name).clone(),
                expected: var.kind(),
                found: dtype.clone(),
            });
        }
    }
    tch::no_grad(|| {
        for (name, var) in &variables {
            let view = file.tensor(name).map_err(|e| CheckpointError::Corrupt {
                path: err_path(),
                reason: e.to_string(),
            })?;
            let torch = |error| CheckpointError::Torch {
                path: err_path(),
                error,
            };
            let stored: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
            let src = Tensor::f_from_data_size(view.data(), &stored, var.kind()).map_err(torch)?;
            let mut var = var.shallow_clone();
            if stored == var.size() {
                var.f_copy_(&src).map_err(torch)?;
            } else {
                // A distance bias of another band: the distances both have; those the file
                // lacks keep their initial values.
                let shared = stored[1].min(var.size()[1]);
                var.f_narrow(1, 0, shared)
                    .and_then(|mut v| v.f_copy_(&src.f_narrow(1, 0, shared)?))
                    .map_err(torch)?;
            }
        }
        Ok(())
    })
}

/// Whether variable `name` of shape `wanted` may be loaded from a tensor of shape `stored`: a
/// temporal distance bias ([`super::st::DISTANCE_BIAS`]) of the same heads and another band.
fn band_resized(name: &str, stored: &[i64], wanted: &[i64]) -> bool {
    name.rsplit('.').next() == Some(super::st::DISTANCE_BIAS)
        && stored.len() == 2
        && wanted.len() == 2
        && stored[0] == wanted[0]
        && stored[1] >= 1
}

fn kind_of(dtype: safetensors::Dtype) -> Option<Kind> {
    use safetensors::Dtype as D;
    Some(match dtype {
        D::F32 => Kind::Float,
        D::F64 => Kind::Double,
        D::F16 => Kind::Half,
        D::BF16 => Kind::BFloat16,
        D::I64 => Kind::Int64,
        D::I32 => Kind::Int,
        D::I16 => Kind::Int16,
        D::I8 => Kind::Int8,
        D::U8 => Kind::Uint8,
        D::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => CheckpointError::MissingFile { path: path.into() },
        _ => CheckpointError::Io {
            path: path.into(),
            error,
        },
    })
}

/// Settings genie.json files of older versions may name: action modulation of the dynamics
/// model's blocks and action guidance in the sampler (docs/experiments.md has what they gave).
const RETIRED: [crate::json::Retired; 2] = [
    crate::json::Retired {
        pointer: "/dynamics/action_modulation",
        off: "false",
    },
    crate::json::Retired {
        pointer: "/sampler/action_guidance",
        off: "0",
    },
];

/// Reads and validates `genie.json` of a checkpoint folder.
pub fn read_config(dir: &Path) -> Result<GenieConfig, CheckpointError> {
    read_config_file(&dir.join(CONFIG_FILE))
}

/// Reads and validates a `genie.json` at any path (e.g. `--config FILE` of a new run).
pub fn read_config_file(path: &Path) -> Result<GenieConfig, CheckpointError> {
    let path = path.to_path_buf();
    let bytes = read(&path)?;
    let json_error = |error| CheckpointError::Json {
        path: path.clone(),
        error,
    };
    crate::json::refuse_retired(&bytes, &RETIRED).map_err(json_error)?;
    let cfg: GenieConfig = crate::json::parse(&bytes).map_err(json_error)?;
    cfg.validate()
        .map_err(|error| CheckpointError::Config { path, error })?;
    Ok(cfg)
}

/// Writes `genie.json` into `dir` (created if needed).
pub fn write_config(dir: &Path, cfg: &GenieConfig) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|error| CheckpointError::Io {
        path: dir.into(),
        error,
    })?;
    let path = dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(cfg).map_err(|e| CheckpointError::Json {
        path: path.clone(),
        error: e.to_string(),
    })?;
    std::fs::write(&path, json + "\n").map_err(|error| CheckpointError::Io { path, error })
}

/// The three networks with their variables and the config they were built from.
#[derive(Debug)]
pub struct Genie {
    pub config: GenieConfig,
    pub tokenizer_vs: VarStore,
    pub tokenizer: Tokenizer,
    pub lam_vs: VarStore,
    pub lam: Lam,
    pub dynamics_vs: VarStore,
    pub dynamics: Dynamics,
    /// The state-dependent key map, where the config has one.
    pub adapter: Option<Adapter>,
}

impl Genie {
    /// Freshly initialised networks for `config` on `device`.
    pub fn new(config: GenieConfig, device: Device) -> Result<Self, ConfigError> {
        config.validate()?;
        let tokenizer_vs = VarStore::new(device);
        let tokenizer = Tokenizer::new(tokenizer_vs.root(), &config.tokenizer);
        let lam_vs = VarStore::new(device);
        let lam = Lam::new(lam_vs.root(), &config.lam);
        let dynamics_vs = VarStore::new(device);
        let dynamics = Dynamics::new(dynamics_vs.root(), &config.dynamics);
        let adapter = config
            .adapter
            .map(|cfg| Self::new_adapter(&config, cfg, device));
        Ok(Self {
            config,
            tokenizer_vs,
            tokenizer,
            lam_vs,
            lam,
            dynamics_vs,
            dynamics,
            adapter,
        })
    }

    /// Turns a dynamics model that does not scroll into one that does (`model::scroll`): the
    /// same weights plus a freshly initialised camera head, and the LAM set to read each clip
    /// in one view (`lam.one_view`). Nothing changes for one that does.
    pub fn enable_scroll(&mut self) -> Result<(), ConfigError> {
        if self.config.dynamics.scroll {
            return Ok(());
        }
        let mut config = self.config.dynamics.clone();
        config.scroll = true;
        config.validate()?;
        // The LAM reads each clip in the view the dynamics model learns in, so a step of the
        // view is not read as a move of the player.
        self.config.lam.one_view = true;
        self.lam.set_one_view(true);
        let vs = VarStore::new(self.dynamics_vs.device());
        let dynamics = Dynamics::new(vs.root(), &config);
        let old = self.dynamics_vs.variables();
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                if let Some(value) = old.get(&name) {
                    var.copy_(value);
                }
            }
        });
        self.dynamics_vs = vs;
        self.dynamics = dynamics;
        self.config.dynamics = config;
        Ok(())
    }

    /// Trains the dynamics model from now on reading its clips as `read` says
    /// ([`context_noise`](super::dynamics::DynamicsConfig::context_noise),
    /// [`whole_context`](super::dynamics::DynamicsConfig::whole_context) and
    /// [`own_context`](super::dynamics::DynamicsConfig::own_context)), recorded in genie.json; a
    /// value out of range changes nothing.
    pub fn set_context_read(&mut self, read: ContextRead) -> Result<(), ConfigError> {
        let config = DynamicsConfig {
            context_noise: read.noise,
            whole_context: read.whole,
            own_context: read.own,
            ..self.config.dynamics.clone()
        };
        config.validate()?;
        self.config.dynamics = config;
        Ok(())
    }

    /// A freshly initialised action adapter for `config`'s networks.
    pub fn new_adapter(config: &GenieConfig, cfg: AdapterConfig, device: Device) -> Adapter {
        let vs = VarStore::new(device);
        let net = ActionAdapter::new(vs.root(), &cfg, config.adapter_shape());
        Adapter { vs, net }
    }

    /// Loads a checkpoint folder onto `device`. The config's limits and the size of each network
    /// it makes are checked against the weights files' headers before any network is built.
    pub fn load(dir: &Path, device: Device) -> Result<Self, CheckpointError> {
        let config = read_config(dir)?;
        // The three networks, and the adapter where the config has one: each file's size is
        // checked against its network's before anything is built.
        let mut sizes = vec![
            (TOKENIZER_FILE, "tokenizer", config.tokenizer.elements()),
            (LAM_FILE, "lam", config.lam.elements()),
            (DYNAMICS_FILE, "dynamics", config.dynamics.elements()),
        ];
        if let Some(cfg) = config.adapter {
            sizes.push((
                ADAPTER_FILE,
                "adapter",
                cfg.elements(config.adapter_shape()),
            ));
        }
        let paths: Vec<PathBuf> = sizes.iter().map(|(name, _, _)| dir.join(name)).collect();
        let bytes = paths
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let files = bytes
            .iter()
            .zip(&paths)
            .map(|(b, p)| parse(b, p))
            .collect::<Result<Vec<_>, _>>()?;
        for ((file, path), &(_, network, expected)) in files.iter().zip(&paths).zip(&sizes) {
            check_size(file, path, network, expected)?;
        }
        let genie = Self::new(config, device).map_err(|error| CheckpointError::Config {
            path: dir.join(CONFIG_FILE),
            error,
        })?;
        copy_network(&genie.tokenizer_vs, &files[0], &paths[0])?;
        copy_network(&genie.lam_vs, &files[1], &paths[1])?;
        copy_network(&genie.dynamics_vs, &files[2], &paths[2])?;
        if let Some(adapter) = &genie.adapter {
            copy_network(&adapter.vs, &files[3], &paths[3])?;
        }
        Ok(genie)
    }

    /// Writes the three networks (and the adapter, where there is one) and `genie.json` into
    /// `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        write_config(dir, &self.config)?;
        save_network(&self.tokenizer_vs, &dir.join(TOKENIZER_FILE))?;
        save_network(&self.lam_vs, &dir.join(LAM_FILE))?;
        save_network(&self.dynamics_vs, &dir.join(DYNAMICS_FILE))?;
        if let Some(adapter) = &self.adapter {
            save_network(&adapter.vs, &dir.join(ADAPTER_FILE))?;
        }
        Ok(())
    }

    /// Trainable parameters of (tokenizer, LAM, dynamics).
    pub fn parameter_counts(&self) -> (i64, i64, i64) {
        (
            parameter_count(&self.tokenizer_vs),
            parameter_count(&self.lam_vs),
            parameter_count(&self.dynamics_vs),
        )
    }
}

/// Trainable parameters in `vs`.
pub fn parameter_count(vs: &VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .sum::<usize>() as i64
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::st::StConfig;

    pub(crate) fn tiny_config() -> GenieConfig {
        let st = StConfig::new(16, 1, 2);
        GenieConfig {
            tokenizer: TokenizerConfig {
                image_size: 16,
                patch: 8,
                codebook_size: 8,
                latent_dim: 4,
                context_frames: 4,
                encoder: st.clone(),
                decoder: st.clone(),
                ..Default::default()
            },
            lam: LamConfig {
                image_size: 16,
                patch: 8,
                latent_dim: 4,
                context_frames: 4,
                encoder: st.clone(),
                decoder: st.clone(),
                ..Default::default()
            },
            dynamics: DynamicsConfig {
                vocab_size: 8,
                tokens_per_frame: 4,
                num_actions: 8,
                context_frames: 4,
                st,
                ..Default::default()
            },
            calibration: Some(BTreeMap::from([
                ("left".to_string(), 3),
                ("jump".to_string(), 5),
            ])),
            eval: serde_json::json!({ "tokenizer_psnr": 31.5 }),
            ..Default::default()
        }
    }

    /// [`tiny_config`] on the game's 64×64 frames (16 tokens a frame), for tests that play or
    /// dream the game.
    pub(crate) fn tiny_game_config() -> GenieConfig {
        let mut config = tiny_config();
        config.tokenizer.image_size = 64;
        config.tokenizer.patch = 16;
        config.lam.image_size = 64;
        config.lam.patch = 16;
        config.dynamics.tokens_per_frame = 16;
        config
    }

    #[test]
    fn round_trip_keeps_every_tensor_and_the_metadata() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(4);
        let saved = Genie::new(tiny_config(), Device::Cpu).unwrap();
        saved.save(dir.path()).unwrap();
        tch::manual_seed(5);
        let loaded = Genie::load(dir.path(), Device::Cpu).unwrap();
        assert_eq!(loaded.config, saved.config);
        for (a, b) in [
            (&saved.tokenizer_vs, &loaded.tokenizer_vs),
            (&saved.lam_vs, &loaded.lam_vs),
            (&saved.dynamics_vs, &loaded.dynamics_vs),
        ] {
            let (va, vb) = (a.variables(), b.variables());
            assert_eq!(va.len(), vb.len());
            for (name, t) in &va {
                assert!(t.equal(&vb[name]), "{name} differs after the round trip");
            }
        }
    }

    #[test]
    fn context_reading_is_checked_and_kept_by_genie_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut genie = Genie::new(tiny_config(), Device::Cpu).unwrap();
        let read = |noise, whole| ContextRead {
            noise,
            whole,
            own: 0.0,
        };
        let err = genie.set_context_read(read(1.5, 0.0)).unwrap_err();
        assert!(err.to_string().contains("context_noise"), "{err}");
        assert_eq!(
            genie.config.dynamics.context_noise, 0.0,
            "a refused value changes nothing"
        );
        let err = genie.set_context_read(read(0.2, -0.5)).unwrap_err();
        assert!(err.to_string().contains("whole_context"), "{err}");
        assert_eq!(genie.config.dynamics.whole_context, 0.0);
        assert_eq!(genie.config.dynamics.context_noise, 0.0);
        let own = ContextRead {
            own: 2.0,
            ..read(0.2, 0.5)
        };
        let err = genie.set_context_read(own).unwrap_err();
        assert!(err.to_string().contains("own_context"), "{err}");
        assert_eq!(genie.config.dynamics.whole_context, 0.0);
        genie
            .set_context_read(ContextRead {
                own: 0.25,
                ..read(0.2, 0.5)
            })
            .unwrap();
        genie.save(dir.path()).unwrap();
        let loaded = Genie::load(dir.path(), Device::Cpu).unwrap();
        assert_eq!(loaded.config.dynamics.context_noise, 0.2);
        assert_eq!(loaded.config.dynamics.whole_context, 0.5);
        assert_eq!(loaded.config.dynamics.own_context, 0.25);
    }

    #[test]
    fn an_adapter_travels_with_its_checkpoint_and_a_missing_or_wrong_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = tiny_config();
        cfg.adapter = Some(AdapterConfig {
            token_dim: 2,
            hidden: 5,
        });
        tch::manual_seed(4);
        let saved = Genie::new(cfg.clone(), Device::Cpu).unwrap();
        saved.save(dir.path()).unwrap();
        tch::manual_seed(5);
        let loaded = Genie::load(dir.path(), Device::Cpu).unwrap();
        let (a, b) = (saved.adapter.unwrap(), loaded.adapter.unwrap());
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        assert_eq!(va.len(), 5);
        for (name, t) in &va {
            assert!(t.equal(&vb[name]), "{name} differs after the round trip");
        }

        // Sizes that differ from the file's: the tensor and the file are named.
        let mut other = cfg.clone();
        other.adapter = Some(AdapterConfig {
            token_dim: 2,
            hidden: 6,
        });
        write_config(dir.path(), &other).unwrap();
        let msg = Genie::load(dir.path(), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(ADAPTER_FILE) && msg.contains("hidden"),
            "{msg}"
        );

        // genie.json names an adapter whose weights are gone.
        write_config(dir.path(), &cfg).unwrap();
        std::fs::remove_file(dir.path().join(ADAPTER_FILE)).unwrap();
        let err = Genie::load(dir.path(), Device::Cpu).unwrap_err();
        assert!(
            matches!(err, CheckpointError::MissingFile { .. })
                && err.to_string().contains(ADAPTER_FILE),
            "{err}"
        );
    }

    #[test]
    fn a_band_cut_or_widened_in_the_config_loads_the_distances_the_file_has() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(4);
        let saved = Genie::new(tiny_config(), Device::Cpu).unwrap();
        tch::no_grad(|| {
            for (name, mut var) in saved.dynamics_vs.variables() {
                if name.ends_with(super::super::st::DISTANCE_BIAS) {
                    var.copy_(
                        &Tensor::arange(var.numel() as i64, (Kind::Float, Device::Cpu))
                            .view(var.size().as_slice()),
                    );
                }
            }
        });
        saved.save(dir.path()).unwrap();
        let bias =
            |g: &Genie| g.dynamics_vs.variables()["stack.blocks.0.temporal.distance_bias"].copy();
        let stored = bias(&saved); // [heads, 4]
        let (heads, band) = (stored.size()[0], stored.size()[1]);
        for frames in [2, 6] {
            let mut cfg = tiny_config();
            cfg.dynamics.context_frames = frames;
            write_config(dir.path(), &cfg).unwrap();
            let loaded = Genie::load(dir.path(), Device::Cpu).unwrap();
            let got = bias(&loaded);
            assert_eq!(got.size(), [heads, frames]);
            let shared = frames.min(band);
            assert!(got.narrow(1, 0, shared).equal(&stored.narrow(1, 0, shared)));
            if frames > band {
                // The distances the file lacks keep their initial (ALiBi) values: ≤ 0.
                let rest = got.narrow(1, band, frames - band);
                assert!(bool::try_from(rest.le(0.0).all()).unwrap(), "{rest}");
            }
            // Any other tensor of another shape is still refused.
            assert!(!band_resized(
                "stack.blocks.0.temporal.attn.qkv.weight",
                &[heads, band],
                &[heads, frames]
            ));
        }
        assert!(!band_resized("a.temporal.distance_bias", &[3, 4], &[2, 4]));
    }

    #[test]
    fn wrong_shape_names_file_tensor_and_both_shapes() {
        let dir = tempfile::tempdir().unwrap();
        Genie::new(tiny_config(), Device::Cpu)
            .unwrap()
            .save(dir.path())
            .unwrap();
        let mut cfg = tiny_config();
        cfg.dynamics.vocab_size = 9;
        cfg.tokenizer.codebook_size = 9;
        write_config(dir.path(), &cfg).unwrap();
        let err = Genie::load(dir.path(), Device::Cpu).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CheckpointError::Shape { .. }), "{msg}");
        assert!(msg.contains("tokenizer.safetensors"), "{msg}");
        assert!(msg.contains("`vq.codebook`"), "{msg}");
        assert!(msg.contains("[8, 4]") && msg.contains("[9, 4]"), "{msg}");
    }

    #[test]
    fn missing_unexpected_dtype_and_corrupt_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let genie = Genie::new(tiny_config(), Device::Cpu).unwrap();
        let path = dir.path().join("net.safetensors");
        let sorted = || {
            let mut vars: Vec<(String, Tensor)> = genie.lam_vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            vars
        };
        let vars = sorted();

        Tensor::write_safetensors(&vars[1..], &path).unwrap();
        let msg = load_network(&genie.lam_vs, &path).unwrap_err().to_string();
        assert!(
            msg.contains("net.safetensors") && msg.contains(&format!("`{}` is missing", vars[0].0)),
            "{msg}"
        );

        let mut extra = sorted();
        extra.push((
            "stray".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        ));
        Tensor::write_safetensors(&extra, &path).unwrap();
        let msg = load_network(&genie.lam_vs, &path).unwrap_err().to_string();
        assert!(msg.contains("unexpected tensor `stray`"), "{msg}");

        let mut wrong = sorted();
        wrong[0].1 = wrong[0].1.to_kind(Kind::Half);
        Tensor::write_safetensors(&wrong, &path).unwrap();
        let msg = load_network(&genie.lam_vs, &path).unwrap_err().to_string();
        assert!(msg.contains("dtype F16, expected Float"), "{msg}");

        std::fs::write(&path, b"not a safetensors file").unwrap();
        let err = load_network(&genie.lam_vs, &path).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");

        let err = Genie::load(&dir.path().join("nowhere"), Device::Cpu).unwrap_err();
        assert!(
            matches!(err, CheckpointError::MissingFile { .. })
                && err.to_string().contains("genie.json"),
            "{err}"
        );
    }

    #[test]
    fn a_world_model_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Genie>();
        assert_send::<crate::model::DynamicsCache>();
        assert_send::<crate::model::DecoderCache>();
    }

    /// Elements of every variable of `vs`, buffers included (what a file of it holds).
    fn elements_of(vs: &VarStore) -> u128 {
        vs.variables().values().map(|t| t.numel() as u128).sum()
    }

    #[test]
    fn each_config_knows_the_size_of_the_network_it_makes() {
        use crate::model::lam::LamArch;
        let mut configs = vec![tiny_config(), GenieConfig::default()];
        let mut transformer = tiny_config();
        transformer.lam.arch = LamArch::Transformer;
        for (conv_head, head_history, normalize) in
            [(0, false, true), (6, true, false), (6, false, true)]
        {
            let mut cfg = transformer.clone();
            cfg.lam.conv_head = conv_head;
            cfg.lam.head_history = head_history;
            cfg.lam.normalize_latents = normalize;
            configs.push(cfg);
        }
        let mut conv = tiny_config();
        conv.lam.arch = LamArch::Conv;
        conv.lam.conv_width = 5;
        conv.lam.mirror_features = true;
        conv.tokenizer.decoder = StConfig {
            dim: 12,
            layers: 3,
            heads: 3,
            mlp_ratio: 2,
        };
        configs.push(conv);
        let mut scrolls = tiny_config();
        scrolls.dynamics.scroll = true;
        configs.push(scrolls);
        for cfg in configs {
            let genie = Genie::new(cfg.clone(), Device::Cpu).unwrap();
            assert_eq!(
                cfg.tokenizer.elements(),
                elements_of(&genie.tokenizer_vs),
                "tokenizer {:?}",
                cfg.tokenizer
            );
            assert_eq!(
                cfg.lam.elements(),
                elements_of(&genie.lam_vs),
                "{:?}",
                cfg.lam
            );
            assert_eq!(
                cfg.dynamics.elements(),
                elements_of(&genie.dynamics_vs),
                "{:?}",
                cfg.dynamics
            );
        }
    }

    #[test]
    fn a_config_far_larger_than_its_weights_is_refused_before_it_is_built() {
        let dir = tempfile::tempdir().unwrap();
        Genie::new(tiny_config(), Device::Cpu)
            .unwrap()
            .save(dir.path())
            .unwrap();
        // Within every limit, but some 10¹¹ values: building it would take about a terabyte.
        let mut cfg = tiny_config();
        cfg.dynamics.st = StConfig::new(8192, 256, 8);
        write_config(dir.path(), &cfg).unwrap();
        let err = Genie::load(dir.path(), Device::Cpu).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CheckpointError::Size { .. }), "{msg}");
        assert!(msg.contains("dynamics.safetensors"), "{msg}");
        assert!(msg.contains("do not belong together"), "{msg}");

        // Past a limit (the width of a hostile genie.json): refused by the config check alone.
        cfg.dynamics.st = StConfig::new(1_000_000, 1_000, 8);
        write_config(dir.path(), &cfg).unwrap();
        let msg = Genie::load(dir.path(), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("genie.json") && msg.contains("dim is 1000000, expected 1 to 8192"),
            "{msg}"
        );
    }

    #[test]
    fn calibration_and_sampler_values_are_checked() {
        let mut cfg = tiny_config();
        cfg.calibration = Some(BTreeMap::from([("left".to_string(), 8)]));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("left → latent 8") && err.contains("8 latents"),
            "{err}"
        );
        cfg.calibration = Some(BTreeMap::from([("fly".to_string(), 1)]));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("\"fly\" is not one of"), "{err}");
        cfg.calibration = None;
        let facing = |way: &str, name: &str, latent| {
            Some(BTreeMap::from([(
                way.to_string(),
                BTreeMap::from([(name.to_string(), latent)]),
            )]))
        };
        cfg.facing_calibration = facing("left", "dash", 4);
        assert!(cfg.validate().is_ok());
        cfg.facing_calibration = facing("up", "dash", 4);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("facing_calibration") && err.contains("\"up\" is not a way to face"),
            "{err}"
        );
        cfg.facing_calibration = None;
        cfg.facing_press_calibration = facing("left", "dash", 9);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("facing_press_calibration.left: dash → latent 9"),
            "{err}"
        );
        // A blend is a latent a key may drive.
        cfg.dynamics.blends = vec![BTreeMap::from([(1, 1.5), (3, -0.5)]); 2];
        assert!(cfg.validate().is_ok());
        cfg.facing_press_calibration = facing("left", "dash", 10);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("dash → latent 10") && err.contains("10 latents (8 learned, 2 blends)"),
            "{err}"
        );
        cfg.dynamics.blends.clear();
        cfg.facing_press_calibration = None;
        // A key held long: its latents, and from when, come together.
        cfg.settled_calibration = Some(BTreeMap::from([("noop".to_string(), 2)]));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("settle_after"), "{err}");
        cfg.settle_after = Some(0);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("settle_after 0 is not 1 to"), "{err}");
        cfg.settle_after = Some(6);
        assert!(cfg.validate().is_ok());
        cfg.settled_calibration = Some(BTreeMap::from([("noop".to_string(), 8)]));
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("settled_calibration: noop → latent 8"),
            "{err}"
        );
        cfg.settled_calibration = None;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("come together"), "{err}");
        cfg.settle_after = None;
        // A held key's cycle: 1 to MAX_HELD_CYCLE latents, each one the model has.
        let cycle =
            |name: &str, latents: Vec<i64>| Some(BTreeMap::from([(name.to_string(), latents)]));
        cfg.held_cycles = cycle("jump", vec![6, 3, 3, 7]);
        assert!(cfg.validate().is_ok());
        for (bad, says) in [
            (
                cycle("jump", vec![]),
                "held_cycles: jump has 0 latents, not 1 to 3600",
            ),
            (
                cycle("jump", vec![3; MAX_HELD_CYCLE + 1]),
                "has 3601 latents",
            ),
            (cycle("jump", vec![6, 8]), "held_cycles: jump → latent 8"),
            (cycle("fly", vec![6]), "held_cycles: \"fly\" is not one of"),
        ] {
            cfg.held_cycles = bad;
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        cfg.held_cycles = None;
        cfg.sampler.temperature = f64::NAN;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
        cfg.sampler = SamplerConfig {
            steps: 0,
            ..Default::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("steps is 0")
        );
    }

    #[test]
    fn inconsistent_configs_are_refused() {
        let mut cfg = tiny_config();
        cfg.dynamics.num_actions = 6;
        let err = Genie::new(cfg, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("num_actions"), "{err}");
    }
}
