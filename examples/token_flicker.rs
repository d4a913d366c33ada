//! Do the tokenizer's codes follow the pixels? On held-out clips, counts tokens that change
//! between consecutive frames although no pixel of their 8×8 patch did ("flicker": the encoder
//! is causal in time, so a code depends on the frames before it), and the reconstruction PSNR,
//! for two ways of tokenizing a clip: causally over the whole clip (as the dynamics model is
//! trained before `keep_still_codes`), the same with still patches keeping their codes
//! (`TokenizerConfig::keep_still_codes`), and each frame on its own (a clip of one frame).
//!
//! `cargo run --release --example token_flicker -- [CHECKPOINT_DIR] [CLIPS]`.
use genie::data::{EVAL_SEED_START, generate_clip};
use genie::eval::measures::psnr_capped;
use genie::game::FRAME_BYTES;
use genie::model::checkpoint::Genie;
use genie::model::frames::{frames_to_bytes, frames_to_f32};
use genie::model::tokenizer::{keep_still_codes, still_patches};
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("checkpoints".into());
    let clips: i64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let genie = Genie::load(std::path::Path::new(&dir), Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let t = 8i64;
    let bytes: Vec<u8> = (0..clips as u64)
        .flat_map(|i| generate_clip(EVAL_SEED_START + i, t as usize, i).frames)
        .collect();
    let frames = frames_to_f32(&Tensor::from_slice(&bytes).view([clips, t, 64, 64, 3]));
    // The encoder's own codes: `encode` would already keep still codes where genie.json says so.
    let causal = genie.tokenizer.quantize(&frames).ids; // [B, T, N]
    let n = causal.size()[2];
    let single = genie
        .tokenizer
        .encode(&frames.view([clips * t, 1, 64, 64, 3]))
        .view([clips, t, n]);
    let kept = keep_still_codes(&causal, &frames, genie.config.tokenizer.patch);
    let still = still_patches(&frames, genie.config.tokenizer.patch); // [B, T−1, N]
    let moved = i64::try_from(still.logical_not().sum(Kind::Int64))?;
    println!(
        "{} token transitions, {moved} on patches whose pixels changed",
        clips * (t - 1) * n
    );
    for (name, ids, decoded) in [
        (
            "causal over the clip",
            &causal,
            genie.tokenizer.decode(&causal),
        ),
        ("causal, still kept", &kept, genie.tokenizer.decode(&kept)),
        (
            "each frame alone",
            &single,
            genie
                .tokenizer
                .decode(&single.view([clips * t, 1, n]))
                .view([clips, t, 64, 64, 3]),
        ),
    ] {
        let changed = ids.narrow(1, 1, t - 1).ne_tensor(&ids.narrow(1, 0, t - 1));
        let flicker = i64::try_from(changed.logical_and(&still).sum(Kind::Int64))?;
        let total = i64::try_from(changed.sum(Kind::Int64))?;
        let recon = frames_to_bytes(&decoded);
        let p: f64 = recon
            .chunks(FRAME_BYTES)
            .zip(bytes.chunks(FRAME_BYTES))
            .map(|(a, b)| psnr_capped(a, b))
            .sum::<f64>()
            / (clips * t) as f64;
        println!(
            "{name:>21}: tokens changed {total}, of them on still patches {flicker}; PSNR {p:.2} dB"
        );
    }
    Ok(())
}
