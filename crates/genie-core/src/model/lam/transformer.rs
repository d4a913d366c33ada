//! The transformer LAM's body ([`super::LamArch::Transformer`], Genie's): causal ST stacks over
//! patches, an action token per frame, and a convolutional head at full resolution.

use tch::{Tensor, nn};

use super::conv::run_convs;
use super::{HEAD_FEATURES, LamConfig, STEM_FEATURES};
use crate::model::frames::{patchify, previous_frames, unpatchify};
use crate::model::st::StStack;

#[derive(Debug)]
pub(super) struct StBody {
    /// Two 3×3 convolutions over each frame's change before it is cut into patches (with the
    /// head; empty without).
    stem: Vec<nn::Conv2D>,
    patch_embed: nn::Linear,
    /// [D]: the extra token of every frame whose encoder output becomes the action.
    action_token: Tensor,
    encoder: StStack,
    to_latent: nn::Linear,
    decoder_patch_embed: nn::Linear,
    action_embed: nn::Linear,
    decoder: StStack,
    to_pixels: nn::Linear,
    /// The convolutional head (empty when `conv_head` is 0).
    head: Vec<nn::Conv2D>,
}

impl StBody {
    pub(super) fn new(p: &nn::Path<'_>, cfg: &LamConfig) -> Self {
        let n = cfg.patches_per_frame();
        let values = cfg.patch * cfg.patch * cfg.channels;
        let (enc, dec) = (cfg.encoder.dim, cfg.decoder.dim);
        let out_per_pixel = if cfg.conv_head > 0 {
            HEAD_FEATURES
        } else {
            cfg.channels
        };
        let h = cfg.conv_head;
        let head = if h > 0 {
            let conv = |name: &str, i: i64, o: i64, dilation: i64, zero: bool| {
                let mut c = nn::ConvConfig {
                    padding: dilation,
                    dilation,
                    ..Default::default()
                };
                if zero {
                    // The head starts by predicting almost no change (xₜ₊₁ ≈ xₜ), small but not
                    // zero so that gradients reach the layers below from the first step.
                    c.ws_init = nn::Init::Randn {
                        mean: 0.0,
                        stdev: 1e-3,
                    };
                }
                nn::conv2d(p / "head" / name, i, o, 3, c)
            };
            vec![
                conv(
                    "0",
                    cfg.channels * (1 + i64::from(cfg.head_history))
                        + HEAD_FEATURES
                        + cfg.latent_dim,
                    h,
                    1,
                    false,
                ),
                conv("1", h, h, 2, false),
                conv("2", h, h, 2, false),
                conv("3", h, cfg.channels, 1, true),
            ]
        } else {
            Vec::new()
        };
        let stem = if h > 0 {
            let c = |name: &str, i: i64, dilation: i64| {
                let cfg = nn::ConvConfig {
                    padding: dilation,
                    dilation,
                    ..Default::default()
                };
                nn::conv2d(p / "stem" / name, i, STEM_FEATURES, 3, cfg)
            };
            vec![c("0", cfg.channels, 1), c("1", STEM_FEATURES, 2)]
        } else {
            Vec::new()
        };
        let embedded = if h > 0 {
            cfg.patch * cfg.patch * STEM_FEATURES
        } else {
            values
        };
        Self {
            stem,
            // Each patch's change since the previous frame (see `encode`).
            patch_embed: nn::linear(p / "patch_embed", embedded, enc, Default::default()),
            action_token: p.var(
                "action_token",
                &[enc],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            encoder: StStack::new(p / "encoder", &cfg.encoder, n + 1, cfg.context_frames),
            to_latent: nn::linear(p / "to_latent", enc, cfg.latent_dim, Default::default()),
            decoder_patch_embed: nn::linear(
                p / "decoder_patch_embed",
                values,
                dec,
                Default::default(),
            ),
            action_embed: nn::linear(p / "action_embed", cfg.latent_dim, dec, Default::default()),
            decoder: StStack::new(p / "decoder", &cfg.decoder, n, cfg.context_frames),
            to_pixels: nn::linear(
                p / "to_pixels",
                dec,
                cfg.patch * cfg.patch * out_per_pixel,
                Default::default(),
            ),
            head,
        }
    }

    /// `frames` [B, T, H, W, C] → pre-quantization latents [B, T−1, L].
    pub(super) fn encode(&self, frames: &Tensor, cfg: &LamConfig) -> Tensor {
        // The encoder sees only what changed since the previous frame (zero for the first), so
        // a code can describe a motion and nothing else. Given the frames themselves (even beside
        // their difference), the codes learned to describe the scene: the same code for all 8
        // actions from one state, and an encoder all but blind to xₜ₊₁.
        let mut change = frames - previous_frames(frames);
        if !self.stem.is_empty() {
            // Local motion features (which way an edge moved) are a nonlinear function of the
            // change: the linear patch embedding alone gave an encoder blind to the player's
            // step, whatever its key.
            let (b, t, hh, ww, c) = change.size5().expect("[B, T, H, W, C]");
            let mut x = change.view([b * t, hh, ww, c]).permute([0, 3, 1, 2]);
            for conv in &self.stem {
                x = x.apply(conv).gelu("none");
            }
            change = x
                .permute([0, 2, 3, 1])
                .reshape([b, t, hh, ww, STEM_FEATURES]);
        }
        let x = patchify(&change, cfg.patch).apply(&self.patch_embed); // [B, T, N, D]
        let (b, t, _, d) = x.size4().expect("[B, T, N, D]");
        let token = self
            .action_token
            .view([1, 1, 1, d])
            .expand([b, t, 1, d], false);
        let y = self.encoder.forward(&Tensor::cat(&[token, x], 2)); // [B, T, N+1, D]
        y.narrow(1, 1, t - 1).select(2, 0).apply(&self.to_latent)
    }

    pub(super) fn predict(&self, frames: &Tensor, actions: &Tensor, cfg: &LamConfig) -> Tensor {
        let x = patchify(frames, cfg.patch).apply(&self.decoder_patch_embed); // [B, T, N, D]
        let x = x + actions.apply(&self.action_embed).unsqueeze(2);
        let y = self.decoder.forward(&x).apply(&self.to_pixels); // [B, T, N, p·p·F]
        let s = cfg.image_size;
        // The decoder predicts the change: xₜ₊₁ = xₜ + Δ. Asked for the whole next frame through
        // its 128-wide tokens (a 768-value patch each), it spent itself on redrawing the still
        // scene, blurred the few moving pixels, and had no use for the action.
        if self.head.is_empty() {
            return frames + unpatchify(&y, cfg.patch, s, s, cfg.channels);
        }
        let features = unpatchify(&y, cfg.patch, s, s, HEAD_FEATURES); // [B, T, H, W, F]
        let (b, t) = (frames.size()[0], frames.size()[1]);
        // The action also goes straight into the head, at every pixel: a short path from the
        // code to the pixels it moves. Through the tokens alone the decoder learned to ignore it.
        let action = actions
            .view([b, t, 1, 1, cfg.latent_dim])
            .expand([b, t, s, s, cfg.latent_dim], false);
        let mut inputs = vec![frames.shallow_clone(), features, action];
        if cfg.head_history {
            inputs.push(previous_frames(frames));
        }
        // [B·T, C + F + L (+ C for xₜ₋₁), H, W]
        let h = run_convs(
            &self.head,
            Tensor::cat(&inputs, -1).flatten(0, 1).permute([0, 3, 1, 2]),
        );
        let change = h.permute([0, 2, 3, 1]).view([b, t, s, s, cfg.channels]);
        frames + change
    }
}
