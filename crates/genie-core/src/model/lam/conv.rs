//! The convolutional LAM's body ([`super::LamArch::Conv`]): convolutions at full resolution,
//! pooled into one latent per transition, and a decoder that predicts the next frame from the
//! frame before, its own history and the action.

use tch::{Tensor, nn};

use super::LamConfig;
use crate::model::frames::previous_frames;

#[derive(Debug)]
pub(super) struct ConvBody {
    /// 3×3 convolutions then the 1×1 to the pooled features.
    encoder: Vec<nn::Conv2D>,
    to_latent: nn::Linear,
    /// 3×3 convolutions then the 1×1 to the change.
    decoder: Vec<nn::Conv2D>,
}

/// Convolutions `inputs` → `width` → … → `out` (the last 1×1), dilations as given for the 3×3s.
pub(super) fn conv_stack(
    p: nn::Path<'_>,
    inputs: i64,
    width: i64,
    dilations: &[i64],
    out: i64,
) -> Vec<nn::Conv2D> {
    let mut convs = Vec::with_capacity(dilations.len() + 1);
    let mut c = inputs;
    for (i, &d) in dilations.iter().enumerate() {
        let cfg = nn::ConvConfig {
            padding: d,
            dilation: d,
            ..Default::default()
        };
        convs.push(nn::conv2d(&p / i.to_string(), c, width, 3, cfg));
        c = width;
    }
    let last = dilations.len().to_string();
    convs.push(nn::conv2d(&p / last, c, out, 1, Default::default()));
    convs
}

/// Applies `convs` with GELU between them (none after the last).
pub(super) fn run_convs(convs: &[nn::Conv2D], x: Tensor) -> Tensor {
    let last = convs.len() - 1;
    convs.iter().enumerate().fold(x, |x, (i, conv)| {
        let y = x.apply(conv);
        if i < last { y.gelu("none") } else { y }
    })
}

/// `[B, T, H, W, C]` → `[B·T, C, H, W]`.
pub(super) fn to_nchw(x: &Tensor) -> Tensor {
    x.flatten(0, 1).permute([0, 3, 1, 2])
}

impl ConvBody {
    pub(super) fn new(p: &nn::Path<'_>, cfg: &LamConfig) -> Self {
        let (c, w) = (cfg.channels, cfg.conv_width);
        Self {
            encoder: conv_stack(p / "conv_encoder", 3 * c, w, &[1, 2, 4, 1], 2 * w),
            to_latent: nn::linear(
                p / "to_latent",
                2 * w * (1 + i64::from(cfg.mirror_features)),
                cfg.latent_dim,
                Default::default(),
            ),
            decoder: conv_stack(
                p / "conv_decoder",
                2 * c + cfg.latent_dim,
                w,
                &[1, 2, 4, 8, 1],
                c,
            ),
        }
    }

    /// `frames` [B, T, H, W, C] → pre-quantization latents [B, T−1, L], each from xₜ and xₜ₊₁.
    pub(super) fn encode(&self, frames: &Tensor, cfg: &LamConfig) -> Tensor {
        let (b, t) = (frames.size()[0], frames.size()[1]);
        self.features(frames, cfg)
            .apply(&self.to_latent)
            .view([b, t - 1, cfg.latent_dim])
    }

    /// The pooled encoder features of each transition, [B·(T−1), 2·width], and with
    /// `mirror_features` those of the mirrored transition after them, [B·(T−1), 4·width].
    pub(super) fn features(&self, frames: &Tensor, cfg: &LamConfig) -> Tensor {
        let t = frames.size()[1];
        let cur = to_nchw(&frames.narrow(1, 0, t - 1));
        let next = to_nchw(&frames.narrow(1, 1, t - 1));
        let change = &next - &cur;
        let x = Tensor::cat(&[cur, next, change], 1);
        let pooled = |x: Tensor| run_convs(&self.encoder, x).amax([2i64, 3].as_slice(), false);
        if cfg.mirror_features {
            let mirrored = x.flip([3]);
            Tensor::cat(&[pooled(x), pooled(mirrored)], 1)
        } else {
            pooled(x)
        }
    }

    pub(super) fn predict(&self, frames: &Tensor, actions: &Tensor, cfg: &LamConfig) -> Tensor {
        let s = frames.size();
        let (b, t, h, w) = (s[0], s[1], s[2], s[3]);
        let l = cfg.latent_dim;
        let action = actions
            .reshape([b * t, l, 1, 1])
            .expand([b * t, l, h, w], false);
        let x = Tensor::cat(
            &[to_nchw(frames), to_nchw(&previous_frames(frames)), action],
            1,
        );
        let change =
            run_convs(&self.decoder, x)
                .permute([0, 2, 3, 1])
                .view([b, t, h, w, cfg.channels]);
        frames + change
    }
}
