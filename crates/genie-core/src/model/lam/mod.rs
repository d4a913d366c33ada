//! The latent action model (Genie §2.2 and Appendix F.2; Jafar `models/lam.py`): learns, from
//! unlabelled video, a discrete action per transition. On pixels (Genie Table 2: pixel input
//! controls better than tokens), patch 16. Each frame gets one extra learned "action" token; a
//! causal ST encoder reads x₁..xₜ₊₁, and the action token of frame t+1 is quantized to one of
//! `num_actions` (8) codes, aₜ. A causal ST decoder must reconstruct xₜ₊₁ from x₁..xₜ and aₜ,
//! which forces aₜ to carry what changed. Only `infer_actions` is needed at play time (to
//! calibrate keys); the decoder exists for training.
//!
//! [`LamArch::Conv`] replaces both ST stacks by convolutions at full resolution (see
//! [`LamArch`]): on our platformer it is the architecture whose codes follow the keys.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use super::frames::{changed_pixels, dilate, not_cuts};
use super::st::StConfig;
use super::vq::{CodeUsage, VectorQuantizer, VqOutput, code_usage};
use super::{ConfigError, limits};

/// The networks around the action bottleneck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LamArch {
    /// Genie's: causal ST transformers over 16×16 patches on both sides (`encoder`,
    /// `decoder`, optionally `conv_head`). Absent from older genie.json files: this.
    #[default]
    Transformer,
    /// Convolutions at full resolution, `conv_width` channels. Encoder: four 3×3 convolutions
    /// (dilations 1, 2, 4, 1) over xₜ, xₜ₊₁ and their change, a 1×1 to 2·`conv_width`, a
    /// max over the frame (a step of the sprite anywhere lights the same feature) and a linear
    /// map to the latent. Decoder: five 3×3 convolutions (dilations 1, 2, 4, 8, 1: a 33×33
    /// view) over xₜ, xₜ₋₁ and the action at every pixel, then a 1×1 to the change. The ST
    /// LAM learned codes chosen by the scene, not the key, in 5,000 steps; this one's codes
    /// followed the key within 1,400 (docs/model.md), at three times the pace.
    Conv,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LamConfig {
    /// Which networks (see [`LamArch`]); `encoder`, `decoder`, `patch` and `conv_head` only
    /// matter for the transformer, `conv_width` only for the convolutional one.
    #[serde(default)]
    pub arch: LamArch,
    /// Channels of the convolutional LAM's layers. Absent from older genie.json files: 0.
    #[serde(default)]
    pub conv_width: i64,
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
    /// Width of the decoder's convolutional head (0: none, the ST decoder's tokens are the
    /// change itself). With a head, each token is unpatchified into [`HEAD_FEATURES`] feature
    /// maps that, beside xₜ at full resolution, go through four 3×3 convolutions (dilations 1, 2,
    /// 2, 1: a 13×13 view) to the change. A 128-wide token cannot redraw its 16×16 patch shifted
    /// by a pixel (a step of the player or of the camera), so without the head the decoder never
    /// beat copying xₜ and had no use for the action code; convolutions over xₜ shift it easily
    /// and leave the tokens to say where and which way. The action vector also enters the head
    /// directly, at every pixel. Absent from older genie.json files: 0.
    #[serde(default)]
    pub conv_head: i64,
    /// Batch-normalise the encoder's outputs before quantization (see `encode_actions`).
    /// Absent from older genie.json files: false.
    #[serde(default)]
    pub normalize_latents: bool,
    /// Pixels within this many of a changed pixel also get `motion_weight` (a square
    /// neighbourhood). Weighting only the pixels that change is a biased loss: painting the
    /// player's colour all around it costs weight 1 where it does not go and saves weight 21
    /// where it does, so the decoder learned a blurred blob covering every next position, which
    /// knowing the key hardly improves. With the neighbourhood weighted alike, the best
    /// prediction is again the expected frame. Absent from older genie.json files: 0.
    #[serde(default)]
    pub motion_dilation: i64,
    /// Average the weighted error per transition, and leave out cuts: transitions in which more
    /// than [`CUT_SHARE`] of the pixels change (a camera flip, a restart after death). Averaged
    /// over the batch, one flip (every pixel changed and weighted, 40 columns of unseen level)
    /// outweighs all the other transitions of a batch, and the decoder spends itself on what no
    /// action explains. Absent from older genie.json files: false.
    #[serde(default)]
    pub skip_cuts: bool,
    /// The head also sees xₜ₋₁ at full resolution (xₜ itself for a clip's first frame), so it
    /// can carry on motion it sees (a fall, an enemy's walk) pixel-exactly instead of through
    /// 16×16 patches; what is left unexplained is then mostly the key. Absent from older
    /// genie.json files: false.
    #[serde(default)]
    pub head_history: bool,
    /// The reconstruction loss leaves out each clip's first transition (where there are
    /// others), whose past the decoder does not see: there it cannot extrapolate a fall, which
    /// pays the encoder to spend its codes on vertical motion instead of the key. Absent from
    /// older genie.json files: false.
    #[serde(default)]
    pub skip_first_transition: bool,
    /// Training mirrors a random half of each batch's clips left to right. The game is
    /// symmetric, but a LAM can still spend its codes on one direction only (one trained
    /// with `skip_first_transition` gave `left` the codes of `noop`); mirrored clips show it
    /// every move both ways. Only the LAM's training batches change. Not enough by itself: a
    /// LAM trained with it from the start still gave `left` noop's codes at 1,900 steps (see
    /// `mirror_features`). Absent from older genie.json files: false.
    #[serde(default)]
    pub mirror_clips: bool,
    /// The convolutional encoder also reads each transition mirrored left to right, with the
    /// same weights, and hands both pooled feature vectors to the latent. A detector of a move
    /// one way is then also one of the move the other way, in the other half: the LAMs trained
    /// so far (with or without `mirror_clips`) learned to see the player step right but not
    /// left (`left` got the codes of `noop`; on mirrored states the roles swapped). Costs a
    /// second encoder pass. Absent from older genie.json files: false.
    #[serde(default)]
    pub mirror_features: bool,
    /// Reads each clip in one view: every frame moved into the view of the clip's last frame
    /// where the picture scrolled by a whole camera step ([`super::scroll::one_view`]), so a
    /// code says how the world moved, not the camera. Without it a step of the view while the
    /// player walks left reads as a move right. Set with the dynamics model's `scroll`, in
    /// training and inference alike. Absent from older genie.json files: false.
    #[serde(default)]
    pub one_view: bool,
}

pub use super::frames::CUT_SHARE;

mod conv;
mod transformer;

use conv::ConvBody;
use transformer::StBody;

/// Copies the weights of `old`, a convolutional LAM without `mirror_features`, into `new`, the
/// same LAM with it: the latent reads the unmirrored features as before and the mirrored half
/// with zero weights, so the widened LAM infers exactly what `old` did until training finds a
/// use for the mirrored half. Errors name a variable that is missing or cannot be widened.
pub fn widen_to_mirror_features(new: &nn::VarStore, old: &nn::VarStore) -> Result<(), String> {
    let from = old.variables();
    tch::no_grad(|| {
        for (name, mut var) in new.variables() {
            let old = from
                .get(&name)
                .ok_or_else(|| format!("`{name}` is missing from the old LAM"))?;
            let (n, o) = (var.size(), old.size());
            if n == o {
                var.copy_(old);
            } else if name.ends_with("to_latent.weight") && o.len() == 2 && n == [o[0], 2 * o[1]] {
                let _ = var.zero_();
                var.narrow(1, 0, o[1]).copy_(old);
            } else {
                return Err(format!("`{name}`: {n:?} cannot be widened from {o:?}"));
            }
        }
        Ok(())
    })
}

/// Feature maps each decoder token paints per pixel for the convolutional head.
pub const HEAD_FEATURES: i64 = 8;
/// Feature maps of the encoder's convolutional stem (with the head).
pub const STEM_FEATURES: i64 = 16;

impl Default for LamConfig {
    /// The convolutional LAM, 32 channels, 8 codes of 16 dimensions. The transformer fields keep
    /// Genie's sizes scaled to our frames (patch 16, width 128, 4 layers a side) for
    /// `arch: transformer`. Only used in training and calibration.
    fn default() -> Self {
        Self {
            arch: LamArch::Conv,
            conv_width: 32,
            image_size: 64,
            channels: 3,
            patch: 16,
            num_actions: 8,
            latent_dim: 16,
            context_frames: 16,
            encoder: StConfig::new(128, 4, 4),
            decoder: StConfig::new(128, 4, 4),
            commitment: 0.25,
            motion_weight: 20.0,
            conv_head: 32,
            normalize_latents: true,
            motion_dilation: 4,
            skip_cuts: true,
            head_history: true,
            skip_first_transition: false,
            mirror_clips: false,
            mirror_features: false,
            one_view: false,
        }
    }
}

impl LamConfig {
    /// Patches per frame (without the action token).
    pub fn patches_per_frame(&self) -> i64 {
        (self.image_size / self.patch).pow(2)
    }

    /// The decoder's loss: squared error of `predicted` against `next` (both
    /// `[B, T−1, H, W, C]`, `past` the frames they follow), weighted by motion as this config says
    /// (`motion_weight`, `motion_dilation`, `skip_cuts`, `skip_first_transition`).
    pub fn reconstruction_loss(&self, predicted: &Tensor, past: &Tensor, next: &Tensor) -> Tensor {
        self.reconstruction_loss_parts(predicted, past, next).0
    }

    /// [`LamConfig::reconstruction_loss`] and, detached, the weight it was divided by.
    pub fn reconstruction_loss_parts(
        &self,
        predicted: &Tensor,
        past: &Tensor,
        next: &Tensor,
    ) -> (Tensor, Tensor) {
        let t = next.size()[1];
        let skip = i64::from(self.skip_first_transition && t > 1);
        let later = |x: &Tensor| x.narrow(1, skip, t - skip);
        let (predicted, past, next) = (later(predicted), later(past), later(next));
        let error = (&predicted - &next).square();
        let s = next.size();
        let (b, t, h, w, c) = (s[0], s[1], s[2], s[3], s[4]);
        let moved = changed_pixels(&past, &next); // [B, T−1, H, W]
        let near = dilate(&moved, self.motion_dilation);
        let weight = (near * self.motion_weight + 1.0).view([b, t, h, w, 1]);
        if !self.skip_cuts {
            let denominator = (weight.sum(Kind::Float) * c).detach();
            return (
                (&error * &weight).sum(Kind::Float) / &denominator,
                denominator,
            );
        }
        let axes = [2i64, 3, 4];
        let each = (&error * &weight).sum_dim_intlist(axes.as_slice(), false, Kind::Float)
            / (weight.sum_dim_intlist(axes.as_slice(), false, Kind::Float) * c as f64); // [B, T−1]
        let keep = not_cuts(&moved);
        let denominator = keep.sum(Kind::Float).clamp_min(1.0).detach();
        ((each * &keep).sum(Kind::Float) / &denominator, denominator)
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
            self.motion_dilation >= 0,
            "motion_dilation must not be negative".into(),
        )?;
        check(
            self.conv_head >= 0,
            "conv_head must be 0 (none) or a channel count".into(),
        )?;
        check(
            self.context_frames >= 2,
            "context_frames must be at least 2 (one transition)".into(),
        )?;
        let within = |field: &str, value: i64, min: i64, max: i64| {
            super::within("lam", field, value, min, max)
        };
        within("image_size", self.image_size, 1, limits::IMAGE_SIZE)?;
        within("channels", self.channels, 1, limits::CHANNELS)?;
        within("num_actions", self.num_actions, 1, limits::ACTIONS)?;
        within("latent_dim", self.latent_dim, 1, limits::WIDTH)?;
        within("context_frames", self.context_frames, 2, limits::CONTEXT)?;
        within("motion_dilation", self.motion_dilation, 0, limits::DILATION)?;
        within("conv_head", self.conv_head, 0, limits::WIDTH)?;
        within("conv_width", self.conv_width, 0, limits::WIDTH)?;
        check(
            self.motion_weight.is_finite() && self.commitment.is_finite(),
            "motion_weight and commitment must be finite".into(),
        )?;
        if self.arch == LamArch::Conv {
            return check(
                self.conv_width > 0,
                "conv_width must be positive for arch conv".into(),
            );
        }
        check(
            !self.mirror_features,
            "mirror_features needs arch conv (the transformer LAM has no such encoder)".into(),
        )?;
        super::validate_st("lam.encoder", &self.encoder)?;
        super::validate_st("lam.decoder", &self.decoder)
    }

    /// Elements of the variables of the LAM this config makes ([`Lam::new`]).
    pub fn elements(&self) -> u128 {
        use super::elements::{conv, linear, n};
        let (c, l) = (self.channels, self.latent_dim);
        // `conv_stack`: 3×3s `inputs` → `width` → … then a 1×1 to `out`.
        let stack = |inputs: i64, width: i64, threes: i64, out: i64| {
            conv(inputs, width, 3) + n(threes - 1) * conv(width, width, 3) + conv(width, out, 1)
        };
        let body = match self.arch {
            LamArch::Conv => {
                let w = self.conv_width;
                stack(3 * c, w, 4, 2 * w)
                    + linear(2 * w * (1 + i64::from(self.mirror_features)), l)
                    + stack(2 * c + l, w, 5, c)
            }
            LamArch::Transformer => {
                let (h, p) = (self.conv_head, self.patch);
                let (enc, dec) = (self.encoder.dim, self.decoder.dim);
                let patches = self.patches_per_frame();
                let (head, stem, embedded, out_per_pixel) = if h > 0 {
                    let head_in = c * (1 + i64::from(self.head_history)) + HEAD_FEATURES + l;
                    (
                        conv(head_in, h, 3) + 2 * conv(h, h, 3) + conv(h, c, 3),
                        conv(c, STEM_FEATURES, 3) + conv(STEM_FEATURES, STEM_FEATURES, 3),
                        p * p * STEM_FEATURES,
                        HEAD_FEATURES,
                    )
                } else {
                    (0, 0, p * p * c, c)
                };
                stem + linear(embedded, enc)
                    + n(enc)
                    + self.encoder.elements(patches + 1, self.context_frames)
                    + linear(enc, l)
                    + linear(p * p * c, dec)
                    + linear(l, dec)
                    + self.decoder.elements(patches, self.context_frames)
                    + linear(dec, p * p * out_per_pixel)
                    + head
            }
        };
        let latent_norm = if self.normalize_latents { 2 * n(l) } else { 0 };
        body + latent_norm + VectorQuantizer::elements(self.num_actions, l)
    }
}

#[derive(Debug)]
pub struct Lam {
    body: Body,
    /// Batch normalisation of the encoder's output before quantization (running statistics at
    /// inference).
    latent_norm: Option<nn::BatchNorm>,
    vq: VectorQuantizer,
    cfg: LamConfig,
}

/// The encoder before the bottleneck and the decoder after it, as `arch` says.
#[derive(Debug)]
enum Body {
    Transformer(Box<StBody>),
    Conv(ConvBody),
}

#[derive(Debug)]
pub struct LamLoss {
    /// Scalar: MSE of the predicted next frames + codebook loss + β · commitment loss.
    pub loss: Tensor,
    pub metrics: LamMetrics,
    /// The quantization of this batch's actions (for [`Lam::restart_idle_codes`]).
    pub vq: VqOutput,
    /// The reconstruction term of `loss` (a weighted mean) and, detached, what it was divided
    /// by: data-parallel training rescales the term by the sum of these over the ranks, so that
    /// the ranks together take the whole step's mean.
    pub reconstruction: Tensor,
    pub denominator: Tensor,
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
        let body = match cfg.arch {
            LamArch::Transformer => Body::Transformer(Box::new(StBody::new(&p, cfg))),
            LamArch::Conv => Body::Conv(ConvBody::new(&p, cfg)),
        };
        Self {
            body,
            latent_norm: cfg.normalize_latents.then(|| {
                nn::batch_norm1d(
                    &p / "latent_norm",
                    cfg.latent_dim,
                    nn::BatchNormConfig {
                        affine: false,
                        ..Default::default()
                    },
                )
            }),
            vq: VectorQuantizer::new(&p / "vq", cfg.num_actions, cfg.latent_dim),
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
    pub fn encode_actions(&self, frames: &Tensor, train: bool) -> VqOutput {
        let z = match &self.body {
            Body::Transformer(st) => st.encode(frames, &self.cfg),
            Body::Conv(conv) => conv.encode(frames, &self.cfg),
        }; // [B, T−1, L]
        // Centred and scaled over the batch: most of a frame's change is zero, so the raw outputs
        // of all transitions point nearly the same way and all chose one code (the decoder then
        // had no use for it, so nothing taught the encoder otherwise). Normalised, the codes
        // split the batch along the directions in which transitions differ from the start.
        let z = match &self.latent_norm {
            Some(norm) => {
                let s = z.size();
                z.reshape([-1, self.cfg.latent_dim])
                    .apply_t(norm, train)
                    .view(s.as_slice())
            }
            None => z,
        };
        self.vq.forward(&z)
    }

    /// The latent action of each transition xₜ → xₜ₊₁ (no gradients), each read from the
    /// frames up to xₜ₊₁ (the encoder is causal in time).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1] → [B, T−1] i64 in 0..num_actions.
    pub fn infer_actions(&self, frames: &Tensor) -> Tensor {
        tch::no_grad(|| self.encode_actions(&self.viewed(frames), false).ids)
    }

    /// The clips as the LAM reads them: moved into one view each where `one_view` is set.
    fn viewed(&self, frames: &Tensor) -> Tensor {
        if self.cfg.one_view {
            super::scroll::one_view(frames)
        } else {
            frames.shallow_clone()
        }
    }

    /// Reads clips in one view (`one_view`) or as they come; the weights are unchanged.
    pub fn set_one_view(&mut self, on: bool) {
        self.cfg.one_view = on;
    }

    /// Decoder: frame t+1 predicted from frames ≤ t and action vector t (raw pixels).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C], `actions` [B, T, L] → [B, T, H, W, C] (frame t+1 at index t).
    pub fn predict_with_codes(&self, frames: &Tensor, actions: &Tensor) -> Tensor {
        match &self.body {
            Body::Transformer(st) => st.predict(frames, actions, &self.cfg),
            Body::Conv(conv) => conv.predict(frames, actions, &self.cfg),
        }
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
        let frames = &self.viewed(frames);
        let t = frames.size()[1];
        let vq = self.encode_actions(frames, true);
        let (past, next) = (frames.narrow(1, 0, t - 1), frames.narrow(1, 1, t - 1));
        let predicted = self.predict_with_codes(&past, &vq.quantized);
        let mse = (&predicted - &next).square().mean(Kind::Float);
        let (weighted, denominator) = self.cfg.reconstruction_loss_parts(&predicted, &past, &next);
        let loss = &weighted + &vq.codebook_loss + self.cfg.commitment * &vq.commitment_loss;
        let scalar = |t: &Tensor| f64::try_from(t.detach()).unwrap_or(f64::NAN);
        let metrics = LamMetrics {
            loss: scalar(&loss),
            mse: scalar(&mse),
            codebook: scalar(&vq.codebook_loss),
            commitment: scalar(&vq.commitment_loss),
            usage: code_usage(&vq.ids, self.cfg.num_actions),
        };
        LamLoss {
            loss,
            metrics,
            vq,
            reconstruction: weighted,
            denominator,
        }
    }

    /// Pooled encoder features of each transition (convolutional LAM only; see
    /// [`LamConfig::mirror_features`]).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] → [B·(T−1), F].
    pub fn encoder_features(&self, frames: &Tensor) -> Option<Tensor> {
        match &self.body {
            Body::Conv(conv) => Some(conv.features(frames, &self.cfg)),
            Body::Transformer(_) => None,
        }
    }

    /// Restarts action codes unused for `idle_limit` consecutive calls (after each optimizer
    /// step). Returns how many were restarted.
    pub fn restart_idle_codes(&mut self, vq: &VqOutput, idle_limit: i64) -> i64 {
        self.vq.restart_idle_codes(&vq.ids, &vq.latents, idle_limit)
    }

    /// [`Self::restart_idle_codes`] with each code's use summed over data-parallel ranks.
    pub fn restart_idle_codes_counted(
        &mut self,
        counts: &Tensor,
        vq: &VqOutput,
        idle_limit: i64,
    ) -> i64 {
        self.vq
            .restart_idle_codes_counted(counts, &vq.latents, idle_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::VarStore};

    fn tiny(arch: LamArch) -> (VarStore, Lam) {
        tch::manual_seed(2);
        let vs = VarStore::new(Device::Cpu);
        let cfg = LamConfig {
            arch,
            conv_width: 8,
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
    fn configs_without_the_new_fields_build_the_lam_they_were_trained_as() {
        let old: LamConfig =
            serde_json::from_str(r#"{"patch": 16, "motion_weight": 20.0}"#).unwrap();
        assert_eq!((old.conv_head, old.normalize_latents), (0, false));
        assert_eq!((old.motion_dilation, old.skip_cuts), (0, false));
        assert!(!old.head_history && !old.skip_first_transition);
        assert_eq!(old.arch, LamArch::Transformer);
        let new = LamConfig::default();
        assert!(new.conv_head > 0 && new.normalize_latents);
        assert_eq!(new.arch, LamArch::Conv);
        // Without them the LAM has neither the convolutions nor the normalisation.
        let vs = VarStore::new(Device::Cpu);
        let _lam = Lam::new(vs.root(), &old);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(!names.iter().any(|n| n.starts_with("head.")
            || n.starts_with("stem.")
            || n.starts_with("latent_norm.")
            || n.starts_with("conv_")));
        assert!(names.iter().any(|n| n.starts_with("encoder.")));
    }

    #[test]
    fn mirrored_features_swap_halves_when_the_clip_is_mirrored() {
        tch::manual_seed(5);
        let vs = VarStore::new(Device::Cpu);
        let cfg = LamConfig {
            conv_width: 8,
            image_size: 16,
            latent_dim: 8,
            mirror_features: true,
            ..LamConfig::default()
        };
        let lam = Lam::new(vs.root(), &cfg);
        let frames = Tensor::rand([2, 3, 16, 16, 3], (Kind::Float, Device::Cpu));
        let f = lam.encoder_features(&frames).unwrap();
        assert_eq!(f.size(), [4, 4 * 8]);
        let g = lam.encoder_features(&frames.flip([3])).unwrap();
        let swapped = Tensor::cat(&[f.narrow(1, 16, 16), f.narrow(1, 0, 16)], 1);
        assert!(g.allclose(&swapped, 1e-5, 1e-5, false));
        // Not symmetric by construction: a clip and its mirror differ in what they say.
        assert!(!f.allclose(&g, 1e-3, 1e-3, false));
    }

    #[test]
    fn a_widened_lam_infers_what_it_did_before_and_a_mismatch_is_named() {
        tch::manual_seed(6);
        let cfg = LamConfig {
            conv_width: 8,
            image_size: 16,
            latent_dim: 8,
            ..LamConfig::default()
        };
        let (old_vs, new_vs) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
        let old = Lam::new(old_vs.root(), &cfg);
        let wide = LamConfig {
            mirror_features: true,
            ..cfg.clone()
        };
        let new = Lam::new(new_vs.root(), &wide);
        let frames = Tensor::rand([3, 4, 16, 16, 3], (Kind::Float, Device::Cpu));
        let before = old.encode_actions(&frames, false).quantized;
        widen_to_mirror_features(&new_vs, &old_vs).unwrap();
        let after = new.encode_actions(&frames, false).quantized;
        assert!(after.allclose(&before, 1e-5, 1e-5, false));
        assert!(
            old.infer_actions(&frames)
                .equal(&new.infer_actions(&frames))
        );
        // A LAM of another width cannot be widened into this one.
        let other_vs = VarStore::new(Device::Cpu);
        let _other = Lam::new(
            other_vs.root(),
            &LamConfig {
                conv_width: 4,
                ..cfg
            },
        );
        let err = widen_to_mirror_features(&new_vs, &other_vs).unwrap_err();
        assert!(err.contains("cannot be widened"), "{err}");
    }

    #[test]
    fn the_convolutional_lam_has_no_transformer() {
        let (vs, lam) = tiny(LamArch::Conv);
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.iter().any(|n| n.starts_with("conv_encoder.")));
        assert!(names.iter().any(|n| n.starts_with("conv_decoder.")));
        assert!(!names.iter().any(|n| n.starts_with("encoder.")
            || n.starts_with("decoder.")
            || n.starts_with("head.")));
        assert_eq!(lam.config().arch, LamArch::Conv);
        let bad = LamConfig {
            conv_width: 0,
            ..LamConfig::default()
        };
        assert!(bad.validate().is_err());
        let mirrored_transformer = LamConfig {
            arch: LamArch::Transformer,
            mirror_features: true,
            ..LamConfig::default()
        };
        let err = mirrored_transformer.validate().unwrap_err().to_string();
        assert!(err.contains("mirror_features"), "{err}");
    }

    #[test]
    fn infers_one_of_eight_actions_per_transition() {
        for arch in [LamArch::Transformer, LamArch::Conv] {
            let (_vs, lam) = tiny(arch);
            let frames = Tensor::rand([2, 5, 16, 16, 3], (Kind::Float, Device::Cpu));
            let ids = lam.infer_actions(&frames);
            assert_eq!(ids.size(), [2, 4]);
            let max = i64::try_from(ids.max()).unwrap();
            assert!((0..8).contains(&max));
            let zeros = Tensor::zeros([2, 5], (Kind::Int64, Device::Cpu));
            let next = lam.predict_next(&frames, &zeros);
            assert_eq!(next.size(), [2, 5, 16, 16, 3]);
        }
    }

    #[test]
    fn action_of_a_transition_ignores_later_frames() {
        for arch in [LamArch::Transformer, LamArch::Conv] {
            let (_vs, lam) = tiny(arch);
            let frames = Tensor::rand([1, 5, 16, 16, 3], (Kind::Float, Device::Cpu));
            let changed = frames.copy();
            let _ = changed.narrow(1, 3, 2).fill_(0.5);
            let a = tch::no_grad(|| lam.encode_actions(&frames, false).latents);
            let b = tch::no_grad(|| lam.encode_actions(&changed, false).latents);
            // Transitions 0→1 and 1→2 end before frame 3.
            let (before, after) = (a.narrow(1, 0, 2), b.narrow(1, 0, 2));
            assert!(before.allclose(&after, 0.0, 1e-6, false), "{arch:?}");
            let (before, after) = (a.narrow(1, 2, 1), b.narrow(1, 2, 1));
            assert!(!before.allclose(&after, 0.0, 1e-4, false), "{arch:?}");
        }
    }

    #[test]
    fn loss_reaches_the_encoder() {
        let cases = [
            (
                LamArch::Transformer,
                [
                    "patch_embed.weight",
                    "action_token",
                    "vq.codebook",
                    "decoder.blocks.1.mlp.down.weight",
                ],
            ),
            (
                LamArch::Conv,
                [
                    "conv_encoder.0.weight",
                    "to_latent.weight",
                    "vq.codebook",
                    "conv_decoder.5.weight",
                ],
            ),
        ];
        for (arch, names) in cases {
            let (vs, lam) = tiny(arch);
            // A still scene in which a 3×3 block changes each frame (a frame of fresh noise
            // would be a cut, which the loss leaves out).
            let frames =
                Tensor::rand([2, 1, 16, 16, 3], (Kind::Float, Device::Cpu)).repeat([1, 3, 1, 1, 1]);
            frames
                .narrow(1, 1, 2)
                .narrow(2, 4, 3)
                .narrow(3, 4, 3)
                .copy_(&Tensor::rand([2, 2, 3, 3, 3], (Kind::Float, Device::Cpu)));
            let out = lam.loss(&frames);
            out.loss.backward();
            for name in names {
                let grad = vs.variables()[name].grad().abs().sum(Kind::Float);
                assert!(f64::try_from(grad).unwrap() > 0.0, "{name} got no gradient");
            }
        }
    }

    #[test]
    fn reconstruction_loss_weights_the_neighbourhood_of_motion_and_leaves_out_cuts() {
        let zeros = || Tensor::zeros([1, 2, 16, 16, 3], (Kind::Float, Device::Cpu));
        let (past, next) = (zeros(), zeros());
        // Transition 0 moves one pixel; transition 1 changes every pixel (a cut).
        let _ = next.get(0).get(0).get(8).get(8).fill_(1.0);
        let _ = next.get(0).get(1).fill_(1.0);
        let loss = |cfg: LamConfig, predicted: &Tensor| {
            f64::try_from(cfg.reconstruction_loss(predicted, &past, &next)).unwrap()
        };
        let old = LamConfig {
            motion_dilation: 0,
            skip_cuts: false,
            ..LamConfig::default()
        };
        let new = LamConfig {
            motion_dilation: 4,
            skip_cuts: true,
            ..LamConfig::default()
        };
        // The moved pixel painted two pixels to the side as well: a blob.
        let blob = next.copy();
        let _ = blob.get(0).get(0).get(8).get(10).fill_(1.0);
        // The blob costs 1 of 21 units where only the changed pixel is weighted, 21 where its
        // neighbourhood is too.
        let (old_cost, new_cost) = (loss(old.clone(), &blob), loss(new.clone(), &blob));
        assert!(new_cost > 10.0 * old_cost, "{old_cost} vs {new_cost}");
        // Getting the cut wrong costs nothing with skip_cuts.
        let cut_wrong = next.copy();
        let _ = cut_wrong.get(0).get(1).fill_(0.0);
        assert!(loss(old, &cut_wrong) > 0.1);
        assert_eq!(loss(new, &cut_wrong), 0.0);
    }

    #[test]
    fn skipping_the_first_transition_makes_it_free_unless_it_is_alone() {
        let cfg = LamConfig {
            skip_first_transition: true,
            ..LamConfig::default()
        };
        // One pixel moves in each of two transitions; predicting the first one wrong is free.
        let past = Tensor::zeros([1, 2, 16, 16, 3], (Kind::Float, Device::Cpu));
        let next = past.copy();
        let _ = next.get(0).get(0).get(8).get(8).fill_(1.0);
        let _ = next.get(0).get(1).get(3).get(3).fill_(1.0);
        let first_wrong = next.copy();
        let _ = first_wrong.get(0).get(0).fill_(0.0);
        let cost = |cfg: &LamConfig| {
            f64::try_from(cfg.reconstruction_loss(&first_wrong, &past, &next)).unwrap()
        };
        assert_eq!(cost(&cfg), 0.0);
        let without = LamConfig {
            skip_first_transition: false,
            ..cfg.clone()
        };
        assert!(cost(&without) > 0.0);
        // A lone transition is still counted.
        let one = |x: &Tensor| x.narrow(1, 0, 1);
        let lone = cfg.reconstruction_loss(&one(&first_wrong), &one(&past), &one(&next));
        assert!(f64::try_from(lone).unwrap() > 0.0);
    }
}
