//! The latent action model (Genie §2.2 and Appendix F.2; Jafar `models/lam.py`): learns, from
//! unlabelled video, a discrete action per transition. On pixels (Genie Table 2: pixel input
//! controls better than tokens), patch 16. Each frame gets one extra learned "action" token; a
//! causal ST encoder reads x₁..xₜ₊₁, and the action token of frame t+1 is quantized to one of
//! `num_actions` (8) codes, aₜ. A causal ST decoder must reconstruct xₜ₊₁ from x₁..xₜ and aₜ,
//! which forces aₜ to carry what changed. Only `infer_actions` is needed at play time (to
//! calibrate keys); the decoder exists for training.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use super::ConfigError;
use super::frames::{patchify, unpatchify};
use super::st::{StConfig, StStack};
use super::vq::{CodeUsage, VectorQuantizer, VqOutput, code_usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LamConfig {
    pub image_size: i64,
    pub channels: i64,
    pub patch: i64,
    /// Size of the action codebook (Genie: 8).
    pub num_actions: i64,
    pub latent_dim: i64,
    pub context_frames: i64,
    pub encoder: StConfig,
    pub decoder: StConfig,
    /// β, the weight of the commitment loss.
    pub commitment: f64,
    /// Extra weight of the reconstruction error on pixels that change between xₜ and xₜ₊₁.
    /// In our platformer a step moves a 6×7 sprite (about 1% of the pixels) while the rest
    /// mostly stays: with a plain MSE the decoder does nearly as well by copying xₜ, the action
    /// carries no information and the codebook collapses to one code (seen at ~750 steps).
    /// Weighting the moving pixels makes the action worth encoding.
    pub motion_weight: f64,
}

impl Default for LamConfig {
    /// DESIGN.md's start values: patch 16 (16 patches a frame plus the action token), 8 codes,
    /// width 128 and 4 layers a side; only used in training and calibration.
    fn default() -> Self {
        Self {
            image_size: 64,
            channels: 3,
            patch: 16,
            num_actions: 8,
            latent_dim: 32,
            context_frames: 16,
            encoder: StConfig::new(128, 4, 4),
            decoder: StConfig::new(128, 4, 4),
            commitment: 0.25,
            motion_weight: 20.0,
        }
    }
}

impl LamConfig {
    /// Patches per frame (without the action token).
    pub fn patches_per_frame(&self) -> i64 {
        (self.image_size / self.patch).pow(2)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new("lam", reason))
            }
        };
        check(
            self.patch > 0 && self.image_size % self.patch == 0,
            format!(
                "patch {} must divide image_size {}",
                self.patch, self.image_size
            ),
        )?;
        check(
            self.num_actions > 0 && self.latent_dim > 0,
            "num_actions and latent_dim must be positive".into(),
        )?;
        check(
            self.context_frames >= 2,
            "context_frames must be at least 2 (one transition)".into(),
        )?;
        super::validate_st("lam.encoder", &self.encoder)?;
        super::validate_st("lam.decoder", &self.decoder)
    }
}

#[derive(Debug)]
pub struct Lam {
    patch_embed: nn::Linear,
    /// [D]: the extra token of every frame whose encoder output becomes the action.
    action_token: Tensor,
    encoder: StStack,
    to_latent: nn::Linear,
    vq: VectorQuantizer,
    decoder_patch_embed: nn::Linear,
    action_embed: nn::Linear,
    decoder: StStack,
    to_pixels: nn::Linear,
    cfg: LamConfig,
}

#[derive(Debug)]
pub struct LamLoss {
    /// Scalar: MSE of the predicted next frames + codebook loss + β · commitment loss.
    pub loss: Tensor,
    pub metrics: LamMetrics,
    /// The quantization of this batch's actions (for [`Lam::restart_idle_codes`]).
    pub vq: VqOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LamMetrics {
    pub loss: f64,
    pub mse: f64,
    pub codebook: f64,
    pub commitment: f64,
    pub usage: CodeUsage,
}

impl Lam {
    pub fn new(p: nn::Path<'_>, cfg: &LamConfig) -> Self {
        let n = cfg.patches_per_frame();
        let values = cfg.patch * cfg.patch * cfg.channels;
        let (enc, dec) = (cfg.encoder.dim, cfg.decoder.dim);
        Self {
            // Each patch's change since the previous frame (see `encode_actions`).
            patch_embed: nn::linear(&p / "patch_embed", values, enc, Default::default()),
            action_token: p.var(
                "action_token",
                &[enc],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            encoder: StStack::new(&p / "encoder", &cfg.encoder, n + 1, cfg.context_frames),
            to_latent: nn::linear(&p / "to_latent", enc, cfg.latent_dim, Default::default()),
            vq: VectorQuantizer::new(&p / "vq", cfg.num_actions, cfg.latent_dim),
            decoder_patch_embed: nn::linear(
                &p / "decoder_patch_embed",
                values,
                dec,
                Default::default(),
            ),
            action_embed: nn::linear(&p / "action_embed", cfg.latent_dim, dec, Default::default()),
            decoder: StStack::new(&p / "decoder", &cfg.decoder, n, cfg.context_frames),
            to_pixels: nn::linear(&p / "to_pixels", dec, values, Default::default()),
            cfg: cfg.clone(),
        }
    }

    pub fn config(&self) -> &LamConfig {
        &self.cfg
    }

    pub fn quantizer(&self) -> &VectorQuantizer {
        &self.vq
    }

    /// The action of each transition, quantized, with gradients.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] → ids [B, T−1], quantized [B, T−1, L].
    pub fn encode_actions(&self, frames: &Tensor) -> VqOutput {
        // The encoder sees only what changed since the previous frame (zero for the first), so
        // a code can describe a motion and nothing else. Given the frames themselves (even beside
        // their difference), the codes learned to describe the scene: the same code for all 8
        // actions from one state, and an encoder all but blind to xₜ₊₁.
        let t = frames.size()[1];
        let previous = Tensor::cat(&[frames.narrow(1, 0, 1), frames.narrow(1, 0, t - 1)], 1);
        let change = frames - previous;
        let x = patchify(&change, self.cfg.patch).apply(&self.patch_embed); // [B, T, N, D]
        let (b, t, _, d) = x.size4().expect("[B, T, N, D]");
        let token = self
            .action_token
            .view([1, 1, 1, d])
            .expand([b, t, 1, d], false);
        let y = self.encoder.forward(&Tensor::cat(&[token, x], 2)); // [B, T, N+1, D]
        let z = y.narrow(1, 1, t - 1).select(2, 0).apply(&self.to_latent); // [B, T−1, L]
        self.vq.forward(&z)
    }

    /// The latent action of each transition xₜ → xₜ₊₁ (no gradients).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1] → [B, T−1] i64 in 0..num_actions.
    ///
    /// Each transition is inferred from its two frames alone, as `genie train lam` trains it
    /// (clips of 2): in a world whose next frame depends on little more than the last one, a
    /// decoder given a longer history predicts the motion from it and leaves the action code
    /// nothing to say.
    pub fn infer_actions(&self, frames: &Tensor) -> Tensor {
        let (b, t) = (frames.size()[0], frames.size()[1]);
        let pairs = Tensor::stack(&[frames.narrow(1, 0, t - 1), frames.narrow(1, 1, t - 1)], 2); // [B, T−1, 2, H, W, C]
        let pairs = pairs.flatten(0, 1); // [B·(T−1), 2, H, W, C]
        tch::no_grad(|| self.encode_actions(&pairs).ids).view([b, t - 1])
    }

    /// Decoder: frame t+1 predicted from frames ≤ t and action vector t (raw pixels).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C], `actions` [B, T, L] → [B, T, H, W, C] (frame t+1 at index t).
    pub fn predict_with_codes(&self, frames: &Tensor, actions: &Tensor) -> Tensor {
        let x = patchify(frames, self.cfg.patch).apply(&self.decoder_patch_embed); // [B, T, N, D]
        let x = x + actions.apply(&self.action_embed).unsqueeze(2);
        let y = self.decoder.forward(&x).apply(&self.to_pixels); // [B, T, N, p·p·C]
        let s = self.cfg.image_size;
        // The decoder predicts the change: xₜ₊₁ = xₜ + Δ. Asked for the whole next frame through
        // its 128-wide tokens (a 768-value patch each), it spent itself on redrawing the still
        // scene, blurred the few moving pixels, and had no use for the action.
        frames + unpatchify(&y, self.cfg.patch, s, s, self.cfg.channels)
    }

    /// The decoder driven by chosen action ids (no gradients), e.g. to see what each latent
    /// action does.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C], `actions` [B, T] i64 → [B, T, H, W, C] in [0, 1], the frame
    /// after each input frame.
    pub fn predict_next(&self, frames: &Tensor, actions: &Tensor) -> Tensor {
        tch::no_grad(|| {
            self.predict_with_codes(frames, &self.vq.lookup(actions))
                .clamp(0.0, 1.0)
        })
    }

    /// Reconstruct x₂..x_T from x₁..x_{T−1} and the inferred actions, plus the VQ losses.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1], T ≥ 2.
    pub fn loss(&self, frames: &Tensor) -> LamLoss {
        let t = frames.size()[1];
        let vq = self.encode_actions(frames);
        let (past, next) = (frames.narrow(1, 0, t - 1), frames.narrow(1, 1, t - 1));
        let predicted = self.predict_with_codes(&past, &vq.quantized);
        let error = (&predicted - &next).square(); // [B, T−1, H, W, C]
        let mse = error.mean(Kind::Float);
        // Pixels that change, as a [B, T−1, H, W, 1] weight: 1 + motion_weight where moved.
        let moved = (&next - &past)
            .abs()
            .sum_dim_intlist(-1, true, Kind::Float)
            .gt(0.05);
        let weight = moved.to_kind(Kind::Float) * self.cfg.motion_weight + 1.0;
        let weighted =
            (&error * &weight).sum(Kind::Float) / (weight.sum(Kind::Float) * frames.size()[4]);
        let loss = &weighted + &vq.codebook_loss + self.cfg.commitment * &vq.commitment_loss;
        let scalar = |t: &Tensor| f64::try_from(t.detach()).unwrap_or(f64::NAN);
        let metrics = LamMetrics {
            loss: scalar(&loss),
            mse: scalar(&mse),
            codebook: scalar(&vq.codebook_loss),
            commitment: scalar(&vq.commitment_loss),
            usage: code_usage(&vq.ids, self.cfg.num_actions),
        };
        LamLoss { loss, metrics, vq }
    }

    /// Restarts action codes unused for `idle_limit` consecutive calls (after each optimizer
    /// step). Returns how many were restarted.
    pub fn restart_idle_codes(&mut self, vq: &VqOutput, idle_limit: i64) -> i64 {
        self.vq.restart_idle_codes(&vq.ids, &vq.latents, idle_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::VarStore};

    fn tiny() -> (VarStore, Lam) {
        tch::manual_seed(2);
        let vs = VarStore::new(Device::Cpu);
        let cfg = LamConfig {
            image_size: 16,
            patch: 8,
            latent_dim: 8,
            context_frames: 6,
            encoder: StConfig::new(16, 2, 2),
            decoder: StConfig::new(16, 2, 2),
            ..LamConfig::default()
        };
        let lam = Lam::new(vs.root(), &cfg);
        (vs, lam)
    }

    #[test]
    fn infers_one_of_eight_actions_per_transition() {
        let (_vs, lam) = tiny();
        let frames = Tensor::rand([2, 5, 16, 16, 3], (Kind::Float, Device::Cpu));
        let ids = lam.infer_actions(&frames);
        assert_eq!(ids.size(), [2, 4]);
        let max = i64::try_from(ids.max()).unwrap();
        assert!((0..8).contains(&max));
        let next = lam.predict_next(&frames, &Tensor::zeros([2, 5], (Kind::Int64, Device::Cpu)));
        assert_eq!(next.size(), [2, 5, 16, 16, 3]);
    }

    #[test]
    fn action_of_a_transition_ignores_later_frames() {
        let (_vs, lam) = tiny();
        let frames = Tensor::rand([1, 5, 16, 16, 3], (Kind::Float, Device::Cpu));
        let changed = frames.copy();
        let _ = changed.narrow(1, 3, 2).fill_(0.5);
        let a = tch::no_grad(|| lam.encode_actions(&frames).latents);
        let b = tch::no_grad(|| lam.encode_actions(&changed).latents);
        // Transitions 0→1 and 1→2 end before frame 3.
        assert!(
            a.narrow(1, 0, 2)
                .allclose(&b.narrow(1, 0, 2), 0.0, 1e-6, false)
        );
        assert!(
            !a.narrow(1, 2, 1)
                .allclose(&b.narrow(1, 2, 1), 0.0, 1e-4, false)
        );
    }

    #[test]
    fn loss_reaches_the_encoder() {
        let (vs, lam) = tiny();
        let out = lam.loss(&Tensor::rand([2, 3, 16, 16, 3], (Kind::Float, Device::Cpu)));
        out.loss.backward();
        for name in [
            "patch_embed.weight",
            "action_token",
            "vq.codebook",
            "decoder.blocks.1.mlp.down.weight",
        ] {
            let grad = f64::try_from(vs.variables()[name].grad().abs().sum(Kind::Float)).unwrap();
            assert!(grad > 0.0, "{name} got no gradient");
        }
    }
}
