//! The world model of Genie (Bruce et al., 2024, arXiv 2402.15391, §2 and Appendix F): a video
//! tokenizer, a latent action model and a MaskGIT dynamics model, all built on one
//! spatio-temporal transformer, plus MaskGIT sampling, incremental (cached) inference and
//! checkpoints.
//!
//! Frames enter and leave the networks as f32 in [0, 1], `[B, T, H, W, C]` channels last
//! ([`frames`] converts from and to the u8 datasets). Token ids and actions are i64.

pub mod checkpoint;
pub mod dynamics;
pub mod frames;
pub mod lam;
pub mod maskgit;
pub mod st;
pub mod tokenizer;
pub mod vq;

pub use checkpoint::{CheckpointError, Genie, GenieConfig};
pub use dynamics::{Dynamics, DynamicsCache, DynamicsConfig, DynamicsLoss, DynamicsMetrics};
pub use frames::{frames_to_bytes, frames_to_f32, frames_to_u8};
pub use lam::{Lam, LamConfig, LamLoss, LamMetrics};
pub use maskgit::{SamplerConfig, SamplerRng, sample_next, sample_next_full};
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
    if cfg.dim % cfg.heads != 0 {
        return Err(ConfigError::new(
            name,
            format!("dim {} is not divisible by heads {}", cfg.dim, cfg.heads),
        ));
    }
    Ok(())
}
