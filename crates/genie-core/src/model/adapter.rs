//! The action adapter: a key → latent map that depends on the state. A key's effect depends on
//! where the player is (on the ground or in the air, dash cooling down), and the LAM's codes say
//! what happened next, so the latent that best follows a key depends on the state too. The
//! adapter reads the current frame's tokens, and per game action and press (the key's first
//! frame) or hold, scores every latent action; the best is the frame's latent.
//!
//! It is fitted by `genie calibrate --adapter` on game states of training levels, where every
//! latent's dream is compared with every key's real motion (`eval::adapter`): labels only map
//! keys onto latents, as the calibration does; the world model itself never sees them.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::ConfigError;
use super::elements::{linear, n};

/// Game actions the adapter has a head for, each pressed or held.
pub const HEADS: i64 = 2 * crate::game::Action::ALL.len() as i64;

/// Most parameters an adapter may have.
const MAX_ELEMENTS: u128 = 1 << 26;

/// The adapter's sizes (genie.json's `adapter`); the sizes of its inputs and outputs are the
/// tokenizer's and the dynamics model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// Width of each token's embedding.
    pub token_dim: i64,
    /// Width of the hidden layer.
    pub hidden: i64,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            token_dim: 8,
            hidden: 128,
        }
    }
}

/// What the adapter reads and writes, from the other networks' configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdapterShape {
    /// The tokenizer's vocabulary.
    pub vocab: i64,
    /// Tokens of one frame.
    pub tokens: i64,
    /// Latent actions of the dynamics model.
    pub latents: i64,
}

impl AdapterConfig {
    pub fn validate(&self, shape: AdapterShape) -> Result<(), ConfigError> {
        super::within("adapter", "token_dim", self.token_dim, 1, 1024)?;
        super::within("adapter", "hidden", self.hidden, 1, super::limits::WIDTH)?;
        // The flattened tokens feed one linear layer: keep it within a network of this size.
        let inputs = shape.tokens.saturating_mul(self.token_dim);
        super::within("adapter", "tokens × token_dim", inputs, 1, 1 << 20)?;
        // A key map, not a world model: refused before it sizes an allocation.
        if self.elements(shape) > MAX_ELEMENTS {
            return Err(ConfigError::new(
                "adapter",
                format!(
                    "{} parameters; at most {MAX_ELEMENTS}",
                    self.elements(shape)
                ),
            ));
        }
        Ok(())
    }

    /// Parameters of the adapter this config makes.
    pub fn elements(&self, shape: AdapterShape) -> u128 {
        n(shape.vocab) * n(self.token_dim)
            + linear(shape.tokens * self.token_dim, self.hidden)
            + linear(self.hidden, HEADS * shape.latents)
    }
}

/// The head of each row: its game action, pressed (odd) or held (even). `actions` [B] i64,
/// `pressed` [B] bool → [B] i64 in 0..[`HEADS`].
pub fn head(actions: &Tensor, pressed: &Tensor) -> Tensor {
    actions * 2 + pressed.to_kind(Kind::Int64)
}

/// An adapter with its variables, as a checkpoint holds it.
#[derive(Debug)]
pub struct Adapter {
    pub vs: tch::nn::VarStore,
    pub net: ActionAdapter,
}

#[derive(Debug)]
pub struct ActionAdapter {
    embed: nn::Embedding,
    hidden: nn::Linear,
    out: nn::Linear,
    latents: i64,
}

impl ActionAdapter {
    pub fn new(p: nn::Path<'_>, cfg: &AdapterConfig, shape: AdapterShape) -> Self {
        Self {
            embed: nn::embedding(&p / "embed", shape.vocab, cfg.token_dim, Default::default()),
            hidden: nn::linear(
                &p / "hidden",
                shape.tokens * cfg.token_dim,
                cfg.hidden,
                Default::default(),
            ),
            out: nn::linear(
                &p / "out",
                cfg.hidden,
                HEADS * shape.latents,
                Default::default(),
            ),
            latents: shape.latents,
        }
    }

    /// Scores of every latent action for each row's game action, pressed (its first frame) or
    /// held.
    ///
    /// # Shapes
    /// `ids` [B, N] i64 (the current frame's tokens), `actions` [B] i64 (game action indices),
    /// `pressed` [B] bool → [B, latents] f32.
    pub fn logits(&self, ids: &Tensor, actions: &Tensor, pressed: &Tensor) -> Tensor {
        let b = ids.size()[0];
        let x = self.embed.forward(ids).flatten(1, -1);
        let all = self
            .out
            .forward(&self.hidden.forward(&x).relu())
            .view([b, HEADS, self.latents]);
        let head = head(actions, pressed);
        all.gather(
            1,
            &head.view([b, 1, 1]).expand([b, 1, self.latents], false),
            false,
        )
        .squeeze_dim(1)
    }

    /// The latent action for each row: the best scored (no gradients). Shapes as
    /// [`ActionAdapter::logits`] → [B] i64.
    pub fn pick(&self, ids: &Tensor, actions: &Tensor, pressed: &Tensor) -> Tensor {
        tch::no_grad(|| self.logits(ids, actions, pressed).argmax(-1, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    const SHAPE: AdapterShape = AdapterShape {
        vocab: 16,
        tokens: 4,
        latents: 5,
    };

    #[test]
    fn its_size_is_known_before_it_is_built_and_each_head_reads_its_own_key() {
        let cfg = AdapterConfig {
            token_dim: 3,
            hidden: 7,
        };
        let vs = VarStore::new(Device::Cpu);
        let adapter = ActionAdapter::new(vs.root(), &cfg, SHAPE);
        let built: i64 = vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64;
        assert_eq!(built as u128, cfg.elements(SHAPE));
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4, 1, 2, 3, 4]).view([2, 4]);
        let actions = Tensor::from_slice(&[0i64, 7]);
        let pressed = Tensor::from_slice(&[true, false]);
        let logits = adapter.logits(&ids, &actions, &pressed);
        assert_eq!(logits.size(), [2, SHAPE.latents]);
        // The same tokens under another key read another head.
        let (a, b) = (logits.get(0), logits.get(1));
        assert!(!a.allclose(&b, 1e-6, 1e-6, false));
        assert_eq!(adapter.pick(&ids, &actions, &pressed).size(), [2]);
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        for (token_dim, hidden) in [(0, 8), (8, 0), (2000, 8), (8, 1 << 30)] {
            let cfg = AdapterConfig { token_dim, hidden };
            assert!(cfg.validate(SHAPE).is_err(), "{cfg:?}");
        }
        let huge = AdapterShape {
            tokens: 1 << 12,
            ..SHAPE
        };
        let wide = AdapterConfig {
            token_dim: 8,
            hidden: 8192,
        };
        assert!(wide.validate(huge).is_err());
        assert!(AdapterConfig::default().validate(huge).is_ok());
        assert!(AdapterConfig::default().validate(SHAPE).is_ok());
    }
}
