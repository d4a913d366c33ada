//! The video tokenizer, an ST-ViViT VQ-VAE (Genie §2.1 and Appendix F.1; Jafar
//! `models/tokenizer.py`): frames are cut into patches, a causal ST encoder and a cosine vector
//! quantizer turn each patch into one of `codebook_size` ids, and a causal ST decoder turns ids
//! back into pixels. Causal in time on both sides, so a new frame is decoded from the cached past
//! ([`DecoderCache`]) without recomputing it.

use std::ops::Deref;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

use super::frames::{changed_pixels, dilate, not_cuts, patchify, unpatchify};
use super::st::{StCache, StConfig, StStack};
use super::vq::{CodeUsage, VectorQuantizer, VqOutput, code_usage};
use super::{ConfigError, limits};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenizerConfig {
    /// Frames are `image_size`×`image_size`×`channels`.
    pub image_size: i64,
    pub channels: i64,
    /// Side of a square patch; one token per patch.
    pub patch: i64,
    pub codebook_size: i64,
    /// Width of the codes.
    pub latent_dim: i64,
    /// Frames the causal attention reaches (the window of incremental decoding). Only distances
    /// the training clips reach learn their bias, so this is the decoder's training clip length
    /// (see `DynamicsConfig::context_frames`).
    pub context_frames: i64,
    pub encoder: StConfig,
    pub decoder: StConfig,
    /// β, the weight of the commitment loss.
    pub commitment: f64,
    /// Extra weight of the reconstruction error near what moves in a clip (pixels within
    /// `motion_dilation` of one that changes between neighbouring frames; cuts, where over
    /// [`CUT_SHARE`](super::frames::CUT_SHARE) of the pixels change, do not count). The player
    /// is a 6×7 sprite, 1% of the pixels, which a plain MSE can afford to lose (docs/experiments.md
    /// has what was measured). Off (0) by default and when absent.
    #[serde(default)]
    pub motion_weight: f64,
    /// See `motion_weight`. Absent from older genie.json files: 0.
    #[serde(default)]
    pub motion_dilation: i64,
    /// [`Tokenizer::encode`] gives a patch whose pixels did not change since the frame before
    /// the code it had there ([`keep_still_codes`]). The encoder attends across the frame, so a
    /// still patch's code moves with what happens elsewhere: on held-out clips 15% of still
    /// patches changed code from one frame to the next, three quarters of all token changes
    /// (docs/model.md), noise the dynamics model had to predict. On for new
    /// configs; absent from older genie.json files: false (they encode as they were trained).
    #[serde(default)]
    pub keep_still_codes: bool,
}

impl Default for TokenizerConfig {
    /// The sizes of docs/design.md §3: 64×64 frames, patch 8 (64 tokens a frame), 1024 codes of
    /// 32, width 128 and 4 layers a side (the decoder runs once per played frame: 64 tokens).
    fn default() -> Self {
        Self {
            image_size: 64,
            channels: 3,
            patch: 8,
            codebook_size: 1024,
            latent_dim: 32,
            context_frames: 8,
            encoder: StConfig::new(128, 4, 4),
            decoder: StConfig::new(128, 4, 4),
            commitment: 0.25,
            motion_weight: 0.0,
            motion_dilation: 3,
            keep_still_codes: true,
        }
    }
}

impl TokenizerConfig {
    /// Tokens per frame, `(image_size / patch)²`.
    pub fn tokens_per_frame(&self) -> i64 {
        (self.image_size / self.patch).pow(2)
    }

    fn patch_values(&self) -> i64 {
        self.patch * self.patch * self.channels
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new("tokenizer", reason))
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
            self.codebook_size > 0 && self.latent_dim > 0,
            "codebook_size and latent_dim must be positive".into(),
        )?;
        check(
            self.context_frames >= 1,
            "context_frames must be at least 1".into(),
        )?;
        check(
            self.motion_weight >= 0.0 && self.motion_dilation >= 0,
            "motion_weight and motion_dilation must not be negative".into(),
        )?;
        let within = |field: &str, value: i64, min: i64, max: i64| {
            super::within("tokenizer", field, value, min, max)
        };
        within("image_size", self.image_size, 1, limits::IMAGE_SIZE)?;
        within("channels", self.channels, 1, limits::CHANNELS)?;
        within("codebook_size", self.codebook_size, 1, limits::CODES)?;
        within("latent_dim", self.latent_dim, 1, limits::WIDTH)?;
        within("context_frames", self.context_frames, 1, limits::CONTEXT)?;
        within("motion_dilation", self.motion_dilation, 0, limits::DILATION)?;
        check(
            self.motion_weight.is_finite() && self.commitment.is_finite(),
            "motion_weight and commitment must be finite".into(),
        )?;
        super::validate_st("tokenizer.encoder", &self.encoder)?;
        super::validate_st("tokenizer.decoder", &self.decoder)
    }

    /// Elements of the variables of the tokenizer this config makes ([`Tokenizer::new`]).
    pub fn elements(&self) -> u128 {
        use super::elements::linear;
        let (n, values) = (self.tokens_per_frame(), self.patch_values());
        let (enc, dec) = (self.encoder.dim, self.decoder.dim);
        linear(values, enc)
            + self.encoder.elements(n, self.context_frames)
            + linear(enc, self.latent_dim)
            + VectorQuantizer::elements(self.codebook_size, self.latent_dim)
            + linear(self.latent_dim, dec)
            + self.decoder.elements(n, self.context_frames)
            + linear(dec, values)
    }
}

#[derive(Debug)]
pub struct Tokenizer {
    patch_embed: nn::Linear,
    encoder: StStack,
    to_latent: nn::Linear,
    vq: VectorQuantizer,
    from_latent: nn::Linear,
    decoder: StStack,
    to_pixels: nn::Linear,
    cfg: TokenizerConfig,
}

/// The training loss and what it is made of.
#[derive(Debug)]
pub struct TokenizerLoss {
    /// Scalar to minimise: reconstruction MSE + codebook loss + β · commitment loss.
    pub loss: Tensor,
    pub metrics: TokenizerMetrics,
    /// The quantization of this batch (for [`Tokenizer::restart_idle_codes`]).
    pub vq: VqOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TokenizerMetrics {
    pub loss: f64,
    pub mse: f64,
    /// 10·log10(1 / mse) over pixels in [0, 1].
    pub psnr: f64,
    pub codebook: f64,
    pub commitment: f64,
    pub usage: CodeUsage,
}

impl TokenizerMetrics {
    /// The metrics of a batch whose reconstruction MSE is `mse`; PSNR follows from it.
    fn new(loss: f64, mse: f64, codebook: f64, commitment: f64, usage: CodeUsage) -> Self {
        Self {
            loss,
            mse,
            psnr: -10.0 * mse.max(1e-10).log10(),
            codebook,
            commitment,
            usage,
        }
    }
}

/// Per-layer temporal keys and values of the decoder for frame-by-frame decoding.
#[derive(Debug)]
pub struct DecoderCache(StCache);

impl Deref for DecoderCache {
    type Target = StCache;
    fn deref(&self) -> &StCache {
        &self.0
    }
}

impl DecoderCache {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn deep_clone(&self) -> Self {
        Self(self.0.deep_clone())
    }
}

impl Tokenizer {
    pub fn new(p: nn::Path<'_>, cfg: &TokenizerConfig) -> Self {
        let (n, values) = (cfg.tokens_per_frame(), cfg.patch_values());
        let (enc, dec) = (cfg.encoder.dim, cfg.decoder.dim);
        Self {
            patch_embed: nn::linear(&p / "patch_embed", values, enc, Default::default()),
            encoder: StStack::new(&p / "encoder", &cfg.encoder, n, cfg.context_frames),
            to_latent: nn::linear(&p / "to_latent", enc, cfg.latent_dim, Default::default()),
            vq: VectorQuantizer::new(&p / "vq", cfg.codebook_size, cfg.latent_dim),
            from_latent: nn::linear(&p / "from_latent", cfg.latent_dim, dec, Default::default()),
            decoder: StStack::new(&p / "decoder", &cfg.decoder, n, cfg.context_frames),
            to_pixels: nn::linear(&p / "to_pixels", dec, values, Default::default()),
            cfg: cfg.clone(),
        }
    }

    pub fn config(&self) -> &TokenizerConfig {
        &self.cfg
    }

    pub fn quantizer(&self) -> &VectorQuantizer {
        &self.vq
    }

    /// Encoder and quantizer, with gradients.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 → ids [B, T, N], quantized [B, T, N, L].
    pub fn quantize(&self, frames: &Tensor) -> VqOutput {
        let x = patchify(frames, self.cfg.patch).apply(&self.patch_embed); // [B, T, N, D]
        let z = self.encoder.forward(&x).apply(&self.to_latent); // [B, T, N, L]
        self.vq.forward(&z)
    }

    /// Decoder from code vectors to raw (unclamped) pixels, with gradients.
    ///
    /// # Shapes
    /// `codes` [B, T, N, L] → [B, T, H, W, C].
    pub fn decode_codes(&self, codes: &Tensor) -> Tensor {
        let x = self.decoder.forward(&codes.apply(&self.from_latent)); // [B, T, N, D]
        let s = self.cfg.image_size;
        unpatchify(
            &x.apply(&self.to_pixels),
            self.cfg.patch,
            s,
            s,
            self.cfg.channels,
        )
    }

    /// Frames to token ids (no gradients).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1] → [B, T, N] i64.
    pub fn encode(&self, frames: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let ids = self.quantize(frames).ids;
            if self.cfg.keep_still_codes {
                keep_still_codes(&ids, frames, self.cfg.patch)
            } else {
                ids
            }
        })
    }

    /// Token ids to frames in [0, 1] (no gradients).
    ///
    /// # Shapes
    /// `ids` [B, T, N] i64 → [B, T, H, W, C] f32.
    pub fn decode(&self, ids: &Tensor) -> Tensor {
        tch::no_grad(|| self.decode_codes(&self.vq.lookup(ids)).clamp(0.0, 1.0))
    }

    /// Reconstruction MSE + codebook loss + β · commitment loss.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1].
    pub fn loss(&self, frames: &Tensor) -> TokenizerLoss {
        let vq = self.quantize(frames);
        let recon = self.decode_codes(&vq.quantized);
        let mse = recon.mse_loss(frames, tch::Reduction::Mean);
        let reconstruction = if self.cfg.motion_weight > 0.0 {
            let weight = motion_weight(frames, self.cfg.motion_weight, self.cfg.motion_dilation);
            let c = self.cfg.channels as f64;
            ((&recon - frames).square() * &weight).sum(Kind::Float) / (weight.sum(Kind::Float) * c)
        } else {
            mse.shallow_clone()
        };
        let loss = &reconstruction + &vq.codebook_loss + self.cfg.commitment * &vq.commitment_loss;
        let scalar = |t: &Tensor| f64::try_from(t.detach()).unwrap_or(f64::NAN);
        let metrics = TokenizerMetrics::new(
            scalar(&loss),
            scalar(&mse),
            scalar(&vq.codebook_loss),
            scalar(&vq.commitment_loss),
            code_usage(&vq.ids, self.cfg.codebook_size),
        );
        TokenizerLoss { loss, metrics, vq }
    }

    /// The decoder's loss alone, for training it on frozen codes: reconstruction MSE of the
    /// frames decoded from their token ids as [`Tokenizer::encode`] gives them (still patches
    /// keeping their codes, as in play). Gradients reach only the decoder's variables
    /// ([`Tokenizer::is_decoder_variable`]); the ids, and so the LAM's and the dynamics model's
    /// inputs, stay as they were. The metrics' codebook and commitment terms are 0.
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1].
    pub fn decoder_loss(&self, frames: &Tensor) -> (Tensor, TokenizerMetrics) {
        let ids = self.encode(frames);
        let mse = self.decoded_error(frames, &ids, None);
        let value = f64::try_from(mse.detach()).unwrap_or(f64::NAN);
        let metrics = TokenizerMetrics::new(
            value,
            value,
            0.0,
            0.0,
            code_usage(&ids, self.cfg.codebook_size),
        );
        (mse, metrics)
    }

    /// The decoder's squared error on `frames` from their (fixed) codes, each pixel weighted by
    /// `weights` where given (a mean weighted by them; else the plain mean).
    ///
    /// # Shapes
    /// `frames` [B, T, H, W, C] f32 in [0, 1]; `weights` broadcast to it.
    pub fn decoder_error(&self, frames: &Tensor, weights: Option<&Tensor>) -> Tensor {
        self.decoded_error(frames, &self.encode(frames), weights)
    }

    /// [`Self::decoder_error`] where `ids` are the frames' codes already.
    fn decoded_error(&self, frames: &Tensor, ids: &Tensor, weights: Option<&Tensor>) -> Tensor {
        let codes = tch::no_grad(|| self.vq.lookup(ids));
        let decoded = self.decode_codes(&codes);
        match weights {
            None => decoded.mse_loss(frames, tch::Reduction::Mean),
            Some(w) => {
                let w = w.expand_as(frames);
                let err = (decoded - frames).square() * &w;
                err.sum(Kind::Float) / w.sum(Kind::Float).clamp_min(1e-6)
            }
        }
    }

    /// Whether the variable `name` (as a tokenizer's var store names it) belongs to the decoder:
    /// what reads codes and draws pixels, not the encoder or the codebook.
    pub fn is_decoder_variable(name: &str) -> bool {
        let part = name.split('.').next().unwrap_or(name);
        ["from_latent", "decoder", "to_pixels"].contains(&part)
    }

    /// Restarts codes unused for `idle_limit` consecutive calls with encoder outputs of `vq`
    /// (call after each optimizer step). Returns how many were restarted.
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

    pub fn new_decoder_cache(&self, batch: i64) -> DecoderCache {
        DecoderCache(self.decoder.new_cache(batch))
    }

    /// Decodes the next frame given the frames decoded into `cache` before it, and adds it to
    /// the cache. Equal to [`Tokenizer::decode`] over the whole sequence.
    ///
    /// # Shapes
    /// `ids` [B, N] i64 → [B, H, W, C] f32 in [0, 1].
    pub fn decode_next(&self, cache: &mut DecoderCache, ids: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = self.vq.lookup(ids).apply(&self.from_latent); // [B, N, D]
            let y = self
                .decoder
                .forward_frame(&x, &mut cache.0, true)
                .apply(&self.to_pixels);
            let s = self.cfg.image_size;
            unpatchify(&y.unsqueeze(1), self.cfg.patch, s, s, self.cfg.channels)
                .squeeze_dim(1)
                .clamp(0.0, 1.0)
        })
    }

    /// Decodes a sequence and makes `cache` hold it, as [`Tokenizer::decode_next`] on each
    /// frame in turn would from an empty cache, in one pass; only the last `decoded` frames are
    /// turned into pixels.
    ///
    /// # Shapes
    /// `ids` [B, T, N] i64 → [B, decoded, H, W, C] f32 in [0, 1].
    pub fn prefill_decoder(&self, cache: &mut DecoderCache, ids: &Tensor, decoded: i64) -> Tensor {
        tch::no_grad(|| {
            let t = ids.size()[1];
            let decoded = decoded.clamp(1, t);
            let x = self.vq.lookup(ids).apply(&self.from_latent); // [B, T, N, D]
            let y = self
                .decoder
                .prefill(&x, &mut cache.0)
                .narrow(1, t - decoded, decoded)
                .apply(&self.to_pixels);
            let s = self.cfg.image_size;
            unpatchify(&y, self.cfg.patch, s, s, self.cfg.channels).clamp(0.0, 1.0)
        })
    }
}

/// Which patches have exactly the pixels they had in the frame before.
///
/// # Shapes
/// `frames` [B, T, H, W, C], T ≥ 2 → [B, T−1, N] bool (entry t: frame t+1 against frame t).
pub fn still_patches(frames: &Tensor, patch: i64) -> Tensor {
    let t = frames.size()[1];
    let patches = patchify(frames, patch); // [B, T, N, P]
    (patches.narrow(1, 1, t - 1) - patches.narrow(1, 0, t - 1))
        .abs()
        .amax([-1].as_slice(), false)
        .eq(0.0)
}

/// `ids` with each token whose patch has exactly the pixels it had in the frame before replaced
/// by the token it had there (in order, so a patch still for several frames keeps one code).
///
/// # Shapes
/// `ids` [B, T, N], `frames` [B, T, H, W, C] → [B, T, N].
pub fn keep_still_codes(ids: &Tensor, frames: &Tensor, patch: i64) -> Tensor {
    let t = ids.size()[1];
    if t < 2 {
        return ids.shallow_clone();
    }
    let still = still_patches(frames, patch);
    let mut kept = vec![ids.select(1, 0)];
    for k in 1..t {
        let previous = kept.last().expect("the first frame");
        kept.push(previous.where_self(&still.select(1, k - 1), &ids.select(1, k)));
    }
    Tensor::stack(&kept, 1)
}

/// Per-pixel loss weight `[B, T, H, W, 1]`: 1, plus `weight` within `dilation` pixels of a
/// pixel that changes between frame t and a neighbouring frame of its clip (transitions that
/// are cuts left out).
pub fn motion_weight(frames: &Tensor, weight: f64, dilation: i64) -> Tensor {
    let (b, t, h, w, _) = frames.size5().expect("[B, T, H, W, C]");
    let options = (Kind::Float, frames.device());
    if t < 2 {
        return Tensor::ones([b, t, h, w, 1], options);
    }
    let changed = changed_pixels(&frames.narrow(1, 0, t - 1), &frames.narrow(1, 1, t - 1));
    let changed = &changed * not_cuts(&changed).view([b, t - 1, 1, 1]); // [B, T−1, H, W]
    let none = Tensor::zeros([b, 1, h, w], options);
    // Frame t moved if the step into it or out of it did.
    let moved = Tensor::cat(&[&none, &changed], 1).maximum(&Tensor::cat(&[&changed, &none], 1));
    (dilate(&moved, dilation) * weight + 1.0).view([b, t, h, w, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::VarStore};

    pub(crate) fn tiny_config() -> TokenizerConfig {
        TokenizerConfig {
            image_size: 16,
            channels: 3,
            patch: 4,
            codebook_size: 32,
            latent_dim: 8,
            context_frames: 6,
            encoder: StConfig::new(16, 2, 2),
            decoder: StConfig::new(16, 2, 2),
            commitment: 0.25,
            motion_weight: 10.0,
            motion_dilation: 2,
            keep_still_codes: false,
        }
    }

    fn tiny() -> (VarStore, Tokenizer) {
        tch::manual_seed(1);
        let vs = VarStore::new(Device::Cpu);
        let tok = Tokenizer::new(vs.root(), &tiny_config());
        (vs, tok)
    }

    fn frames(b: i64, t: i64) -> Tensor {
        Tensor::rand([b, t, 16, 16, 3], (Kind::Float, Device::Cpu))
    }

    /// A tokenizer against itself covers each code with itself alone, once per token.
    #[test]
    fn a_tokenizer_covers_its_own_codes_one_to_one() {
        let (_vs, tok) = tiny();
        let x = frames(2, 3);
        let mut cover = Tensor::zeros([32, 32], (Kind::Float, Device::Cpu));
        crate::model::dynamics::code_cover(&tok, &tok, &x, &mut cover);
        assert_eq!(
            cover.sum(Kind::Float).double_value(&[]),
            (2 * 3 * 16) as f64
        );
        let off_diagonal = &cover - cover.diag(0).diag_embed(0, -2, -1);
        assert_eq!(off_diagonal.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let ids = tok.encode(&x).flatten(0, -1);
        let counts = ids.bincount::<Tensor>(None, 32).to_kind(Kind::Float);
        assert!(cover.diag(0).equal(&counts));
    }

    #[test]
    fn new_configs_keep_still_codes_and_older_files_do_not() {
        assert!(TokenizerConfig::default().keep_still_codes);
        let old: TokenizerConfig = serde_json::from_str(r#"{"patch": 8}"#).unwrap();
        assert!(!old.keep_still_codes);
    }

    #[test]
    fn still_patches_keep_their_codes_and_changed_ones_take_the_new_code() {
        // 3 frames of 8×8 pixels in 4×4 patches (4 tokens): patch 0 never changes, patch 3
        // changes between frames 1 and 2 only.
        let frames = Tensor::zeros([1, 3, 8, 8, 3], (Kind::Float, Device::Cpu));
        let _ = frames
            .narrow(1, 2, 1)
            .narrow(2, 4, 4)
            .narrow(3, 4, 4)
            .fill_(0.5);
        let ids = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).view([1, 3, 4]);
        let kept = keep_still_codes(&ids, &frames, 4);
        let expect = Tensor::from_slice(&[1i64, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 12]).view([1, 3, 4]);
        assert!(kept.equal(&expect), "{kept}");
        // One frame: nothing to keep.
        assert!(
            keep_still_codes(&ids.narrow(1, 0, 1), &frames.narrow(1, 0, 1), 4)
                .equal(&ids.narrow(1, 0, 1))
        );
    }

    #[test]
    fn encode_keeps_still_codes_only_when_configured() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let plain = Tokenizer::new(vs.root(), &tiny_config());
        let mut vs2 = VarStore::new(Device::Cpu);
        let cfg = TokenizerConfig {
            keep_still_codes: true,
            ..tiny_config()
        };
        let keeping = Tokenizer::new(vs2.root(), &cfg);
        vs2.copy(&vs).unwrap();
        // The first frame's left half changes in frame 2; the right half stays.
        let frames = Tensor::rand([2, 4, 16, 16, 3], (Kind::Float, Device::Cpu));
        for k in 1..4 {
            frames.select(1, k).copy_(&frames.select(1, 0));
        }
        let _ = frames.narrow(1, 2, 2).narrow(3, 0, 8).fill_(0.9);
        let raw = plain.encode(&frames);
        let kept = keeping.encode(&frames);
        assert!(kept.equal(&keep_still_codes(&raw, &frames, 4)));
        // Right-half patches (columns 2, 3 of 4) keep frame 0's codes throughout.
        let right = |ids: &Tensor| ids.view([2, 4, 4, 4]).narrow(3, 2, 2);
        let r = right(&kept);
        for k in 1..4 {
            assert!(r.select(1, k).equal(&r.select(1, 0)));
        }
    }

    #[test]
    fn encode_and_decode_shapes() {
        let (_vs, tok) = tiny();
        let ids = tok.encode(&frames(2, 3));
        assert_eq!(ids.size(), [2, 3, 16]);
        assert_eq!(ids.kind(), Kind::Int64);
        assert!(i64::try_from(ids.max()).unwrap() < 32);
        let out = tok.decode(&ids);
        assert_eq!(out.size(), [2, 3, 16, 16, 3]);
        assert!(
            f64::try_from(out.min()).unwrap() >= 0.0 && f64::try_from(out.max()).unwrap() <= 1.0
        );
    }

    #[test]
    fn encoder_and_decoder_are_causal() {
        let (_vs, tok) = tiny();
        let x = frames(1, 5);
        let x2 = x.copy();
        x2.narrow(1, 3, 2).copy_(&frames(1, 2));
        let (a, b) = (tok.encode(&x), tok.encode(&x2));
        assert!(a.narrow(1, 0, 3).equal(&b.narrow(1, 0, 3)));
        let quantized = tch::no_grad(|| tok.quantize(&x).quantized);
        // Frame 3's latents moved off whatever code they had (copying another frame's codes
        // would change nothing where an untrained tokenizer gave both frames the same ones).
        let quantized2 = quantized.copy();
        let _ = quantized2.narrow(1, 3, 1).g_add_scalar_(1.0);
        let (ya, yb) =
            tch::no_grad(|| (tok.decode_codes(&quantized), tok.decode_codes(&quantized2)));
        assert!(
            ya.narrow(1, 0, 3)
                .allclose(&yb.narrow(1, 0, 3), 0.0, 1e-6, false)
        );
        assert!(
            !ya.narrow(1, 3, 1)
                .allclose(&yb.narrow(1, 3, 1), 0.0, 1e-4, false)
        );
    }

    #[test]
    fn gradients_reach_the_encoder_through_the_quantizer() {
        let (vs, tok) = tiny();
        let out = tok.loss(&frames(2, 2));
        out.loss.backward();
        for name in [
            "patch_embed.weight",
            "encoder.blocks.0.mlp.up.weight",
            "to_latent.weight",
            "vq.codebook",
        ] {
            let grad = f64::try_from(vs.variables()[name].grad().abs().sum(Kind::Float)).unwrap();
            assert!(grad > 0.0, "{name} got no gradient");
        }
    }

    #[test]
    fn the_decoder_loss_reaches_the_decoder_only() {
        let (vs, tok) = tiny();
        let x = frames(2, 3);
        let (loss, metrics) = tok.decoder_loss(&x);
        loss.backward();
        let mut decoder = 0;
        for (name, var) in vs.variables() {
            let grad = var.grad();
            let reached =
                grad.defined() && f64::try_from(grad.abs().sum(Kind::Float)).unwrap() > 0.0;
            if Tokenizer::is_decoder_variable(&name) {
                decoder += 1;
                assert!(reached, "{name} got no gradient");
            } else {
                assert!(!reached, "{name} is not the decoder's but got a gradient");
            }
        }
        assert!(decoder >= 4, "{decoder} decoder variables");
        // The loss is the reconstruction error of the frames decoded from encode's ids.
        let decoded = tch::no_grad(|| tok.decode_codes(&tok.quantizer().lookup(&tok.encode(&x))));
        let mse = f64::try_from(decoded.mse_loss(&x, tch::Reduction::Mean)).unwrap();
        // Both are f32 sums over the same values, in an order libtorch's threads may change: a
        // fresh clone's `make test` once found them an ulp apart (2.53363156 against 2.53363132).
        assert!(
            (metrics.mse - mse).abs() < 1e-6 * mse.max(1.0),
            "{} against {mse}",
            metrics.mse
        );
        assert_eq!((metrics.codebook, metrics.commitment), (0.0, 0.0));
    }

    #[test]
    fn incremental_decoding_equals_full_decoding_past_the_window() {
        let (_vs, tok) = tiny();
        let ids = Tensor::randint(32, [2, 17, 16], (Kind::Int64, Device::Cpu));
        let full = tok.decode(&ids);
        let mut cache = tok.new_decoder_cache(2);
        for t in 0..17 {
            let frame = tok.decode_next(&mut cache, &ids.select(1, t));
            let diff = f64::try_from((frame - full.select(1, t)).abs().max()).unwrap();
            assert!(diff < 1e-4, "frame {t}: {diff}");
        }
        assert_eq!(cache.frames_seen(), 17);
    }

    #[test]
    fn motion_weight_marks_the_neighbourhood_of_what_moves_but_not_cuts() {
        let frames = Tensor::zeros([1, 3, 16, 16, 3], (Kind::Float, Device::Cpu));
        // One pixel lights up in frame 1; frame 2 is a cut (everything changes).
        let _ = frames.get(0).get(1).get(8).get(8).fill_(1.0);
        let _ = frames.get(0).get(2).fill_(0.5);
        let w = motion_weight(&frames, 10.0, 2);
        let at =
            |t: i64, y: i64, x: i64| f64::try_from(w.get(0).get(t).get(y).get(x).get(0)).unwrap();
        // Frames 0 and 1 both touch the changed pixel: its 5×5 neighbourhood weighs 11.
        assert_eq!((at(0, 8, 8), at(1, 10, 6), at(1, 8, 11)), (11.0, 11.0, 1.0));
        // The cut 1→2 marks nothing, so frame 2 is all weight 1.
        assert_eq!(f64::try_from(w.get(0).get(2).max()).unwrap(), 1.0);
        assert_eq!(
            motion_weight(&frames.narrow(1, 0, 1), 10.0, 2).size(),
            [1, 1, 16, 16, 1]
        );
    }
}
