//! The world model of Genie (Bruce et al., 2024, arXiv 2402.15391, §2 and Appendix F): a video
//! tokenizer, a latent action model and a MaskGIT dynamics model, all built on one
//! spatio-temporal transformer, plus MaskGIT sampling, incremental (cached) inference and
//! checkpoints.
//!
//! Frames enter and leave the networks as f32 in [0, 1], `[B, T, H, W, C]` channels last
//! ([`frames`] converts from and to the u8 datasets). Token ids and actions are i64.

pub mod adapter;
pub mod checkpoint;
pub mod dynamics;
pub mod frames;
pub mod lam;
pub mod maskgit;
pub mod rows;
pub mod scroll;
pub mod st;
pub mod tokenizer;
pub mod vq;

pub use adapter::{ActionAdapter, Adapter, AdapterConfig, AdapterShape};
pub use checkpoint::{CheckpointError, Genie, GenieConfig};
pub use dynamics::{Dynamics, DynamicsCache, DynamicsConfig, DynamicsLoss, DynamicsMetrics};
pub use frames::{frames_to_bytes, frames_to_f32, frames_to_u8};
pub use lam::{Lam, LamConfig, LamLoss, LamMetrics};
pub use maskgit::{SamplerConfig, SamplerRng, sample_next, sample_next_full};
pub use rows::Rows;
pub use scroll::Rollout;
pub use st::{StCache, StConfig};
pub use tokenizer::{DecoderCache, Tokenizer, TokenizerConfig, TokenizerLoss, TokenizerMetrics};
pub use vq::CodeUsage;

/// A config that cannot build a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {model} config: {reason}")]
pub struct ConfigError {
    pub model: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(model: &str, reason: String) -> Self {
        Self {
            model: model.to_owned(),
            reason,
        }
    }
}

fn validate_st(name: &str, cfg: &StConfig) -> Result<(), ConfigError> {
    if cfg.dim <= 0 || cfg.layers < 0 || cfg.heads <= 0 || cfg.mlp_ratio <= 0 {
        return Err(ConfigError::new(
            name,
            format!("sizes must be positive: {cfg:?}"),
        ));
    }
    within(name, "dim", cfg.dim, 1, limits::WIDTH)?;
    within(name, "layers", cfg.layers, 0, limits::LAYERS)?;
    within(name, "heads", cfg.heads, 1, limits::HEADS)?;
    within(name, "mlp_ratio", cfg.mlp_ratio, 1, limits::MLP_RATIO)?;
    if cfg.dim % cfg.heads != 0 {
        return Err(ConfigError::new(
            name,
            format!("dim {} is not divisible by heads {}", cfg.dim, cfg.heads),
        ));
    }
    Ok(())
}

/// Upper limits on every size a config may give, far above any network this runtime can play
/// or train on one machine, so that a damaged or hostile `genie.json` is refused before it
/// sizes an allocation. Within them, [`checkpoint::Genie::load`] also compares the network a
/// config makes with the weights file's own header.
pub mod limits {
    /// Side of a frame, in pixels.
    pub const IMAGE_SIZE: i64 = 1024;
    /// Colour channels of a frame.
    pub const CHANNELS: i64 = 4;
    /// Width of a residual stream, a latent or a convolution.
    pub const WIDTH: i64 = 8192;
    /// Blocks of one ST stack.
    pub const LAYERS: i64 = 256;
    pub const HEADS: i64 = 256;
    pub const MLP_RATIO: i64 = 64;
    /// Codes of a codebook (the tokenizer's vocabulary).
    pub const CODES: i64 = 1 << 20;
    /// Latent actions.
    pub const ACTIONS: i64 = 256;
    /// Frames a network sees at once.
    pub const CONTEXT: i64 = 1024;
    /// Tokens of one frame.
    pub const TOKENS_PER_FRAME: i64 = 1 << 16;
    /// Dilation of a motion mask, in pixels.
    pub const DILATION: i64 = 64;
    /// MaskGIT steps per frame.
    pub const SAMPLER_STEPS: usize = 1024;
}

/// `value` of `field` must lie in `min..=max`.
fn within(model: &str, field: &str, value: i64, min: i64, max: i64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            model,
            format!("{field} is {value}, expected {min} to {max}"),
        ))
    }
}

/// Element counts of the layers the networks are built from, so that the size of the network a
/// config makes is known before anything is allocated. Each network's `elements()` beside its
/// `new` sums these; tests build every variant and compare.
pub(crate) mod elements {
    /// A size as an element count (sizes are validated non-negative first).
    pub fn n(x: i64) -> u128 {
        x.max(0) as u128
    }

    /// `nn::linear` with a bias.
    pub fn linear(inputs: i64, outputs: i64) -> u128 {
        n(inputs) * n(outputs) + n(outputs)
    }

    /// `nn::conv2d` with a bias and a square kernel.
    pub fn conv(inputs: i64, outputs: i64, kernel: i64) -> u128 {
        n(inputs) * n(outputs) * n(kernel) * n(kernel) + n(outputs)
    }

    /// `nn::layer_norm`: weight and bias.
    pub fn layer_norm(dim: i64) -> u128 {
        2 * n(dim)
    }
}
