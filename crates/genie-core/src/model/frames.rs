//! Frames as the networks see them: f32 in [0, 1], channels last, `[B, T, H, W, C]`, as the u8
//! datasets store them; and the cutting of frames into square patches (ViT, Genie §2.1).

use tch::{Kind, Tensor};

/// u8 frames to the networks' f32 frames in [0, 1].
///
/// # Shapes
/// `[..., H, W, C]` u8 → same shape f32.
pub fn frames_to_f32(frames: &Tensor) -> Tensor {
    frames.to_kind(Kind::Float) / 255.0
}

/// Network frames back to u8, clamped to [0, 1] and rounded to the nearest level.
///
/// # Shapes
/// `[..., H, W, C]` f32 → same shape u8.
pub fn frames_to_u8(frames: &Tensor) -> Tensor {
    (frames.clamp(0.0, 1.0) * 255.0)
        .round()
        .to_kind(Kind::Uint8)
}

/// Network frames as the raw RGB bytes the player, recordings and measures use (on the CPU).
///
/// # Shapes
/// `[..., H, W, C]` f32 → `len = ∏ shape` u8, row-major.
pub fn frames_to_bytes(frames: &Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(
        frames_to_u8(frames)
            .to_device(tch::Device::Cpu)
            .flatten(0, -1),
    )
    .expect("u8 frames convert to bytes")
}

/// Cuts frames into non-overlapping `patch`×`patch` patches, row by row.
///
/// # Shapes
/// `[B, T, H, W, C]` → `[B, T, (H/p)·(W/p), p·p·C]`.
pub fn patchify(frames: &Tensor, patch: i64) -> Tensor {
    let (b, t, h, w, c) = frames.size5().expect("frames must be [B, T, H, W, C]");
    let (gh, gw) = (h / patch, w / patch);
    frames
        .view(&[b, t, gh, patch, gw, patch, c][..])
        .permute([0, 1, 2, 4, 3, 5, 6])
        .reshape([b, t, gh * gw, patch * patch * c])
}

/// The inverse of [`patchify`] for a `height`×`width` frame with `channels` channels.
///
/// # Shapes
/// `[B, T, N, p·p·C]` → `[B, T, H, W, C]`.
pub fn unpatchify(patches: &Tensor, patch: i64, height: i64, width: i64, channels: i64) -> Tensor {
    let (b, t, _, _) = patches.size4().expect("patches must be [B, T, N, P]");
    let (gh, gw) = (height / patch, width / patch);
    patches
        .view(&[b, t, gh, gw, patch, patch, channels][..])
        .permute([0, 1, 2, 4, 3, 5, 6])
        .reshape([b, t, height, width, channels])
}

/// Share of changed pixels above which a transition is a cut (a camera flip, a restart after
/// death): what no action explains. Used by the LAM's `skip_cuts` and the tokenizer's
/// `motion_weight`.
pub const CUT_SHARE: f64 = 0.3;

/// Each frame's predecessor along time: xₜ₋₁ at index t, x₀ itself at 0.
///
/// # Shapes
/// `[B, T, …]` → the same.
pub fn previous_frames(x: &Tensor) -> Tensor {
    let t = x.size()[1];
    Tensor::cat(&[x.narrow(1, 0, 1), x.narrow(1, 0, t - 1)], 1)
}

/// 1 where a pixel changes from `past` to `next` (the channels' absolute differences sum to
/// more than 0.05), else 0.
///
/// # Shapes
/// `[B, T, H, W, C]` twice → `[B, T, H, W]` f32.
pub fn changed_pixels(past: &Tensor, next: &Tensor) -> Tensor {
    (next - past)
        .abs()
        .sum_dim_intlist(-1, false, Kind::Float)
        .gt(0.05)
        .to_kind(Kind::Float)
}

/// A mask grown by `radius` pixels in every direction (a square neighbourhood); itself for 0.
///
/// # Shapes
/// `[B, T, H, W]` → the same.
pub fn dilate(mask: &Tensor, radius: i64) -> Tensor {
    if radius <= 0 {
        return mask.shallow_clone();
    }
    let (b, t, h, w) = mask.size4().expect("[B, T, H, W]");
    let side = 2 * radius + 1;
    mask.reshape([b * t, 1, h, w])
        .max_pool2d([side, side], [1, 1], [radius, radius], [1, 1], false)
        .view([b, t, h, w])
}

/// 1 for each transition that is not a cut (at most [`CUT_SHARE`] of its pixels changed), else 0.
///
/// # Shapes
/// `changed` `[B, T, H, W]` (from [`changed_pixels`]) → `[B, T]` f32.
pub fn not_cuts(changed: &Tensor) -> Tensor {
    changed
        .mean_dim([2i64, 3].as_slice(), false, Kind::Float)
        .le(CUT_SHARE)
        .to_kind(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn patchify_round_trips_and_orders_pixels_within_a_patch() {
        let frames =
            Tensor::arange(2 * 8 * 8 * 3, (Kind::Float, Device::Cpu)).view([1, 2, 8, 8, 3]);
        let patches = patchify(&frames, 4);
        assert_eq!(patches.size(), [1, 2, 4, 48]);
        // Second patch of the first frame starts at pixel (0, 4).
        assert_eq!(
            f64::try_from(patches.get(0).get(0).get(1).get(0)).unwrap(),
            (4 * 3) as f64
        );
        assert!(unpatchify(&patches, 4, 8, 8, 3).equal(&frames));
    }

    #[test]
    fn u8_round_trip() {
        let bytes = Tensor::arange(256, (Kind::Uint8, Device::Cpu));
        assert!(frames_to_u8(&frames_to_f32(&bytes)).equal(&bytes));
    }
}
