//! The measures that need no labels: how well the tokenizer reconstructs clips, how close a dream
//! driven by the LAM's own actions comes to the real frames four frames ahead and how much
//! closer than one driven by random actions (ΔtPSNR), and how the LAM uses its codes. `genie
//! eval` takes them on the platformer's held-out levels; `genie eval --data DIR` on any dataset,
//! imported video of another game among them, where they are all that can be measured.

use rand::{Rng, SeedableRng};
use serde::Serialize;
use tch::{Device, Tensor};

use super::measures::psnr_capped;
use super::run::{EvalOptions, rollout, to_tensor};
use crate::data::{DataError, Dataset};
use crate::game::FRAME_BYTES;
use crate::model::{Genie, frames_to_bytes};

/// The label-free measures of a set of clips, accumulated batch by batch.
#[derive(Debug, Default)]
pub struct VideoMeasures {
    /// Per frame, the tokenizer's reconstruction PSNR.
    pub tokenizer_psnr: Vec<f64>,
    /// Per clip, PSNR of the last dreamed frame against the real one: driven by the LAM's
    /// actions, and by random ones.
    pub rollout: Vec<f64>,
    pub rollout_random: Vec<f64>,
    /// Every latent action the LAM inferred, per clip and transition in order.
    pub latents: Vec<usize>,
}

impl VideoMeasures {
    /// Measures `b` clips of `len` frames (`bytes`: u8 [b, len, 64, 64, 3]). The dream starts
    /// from the first `opts.prompt_frames` frames and runs `opts.horizon`; `conditioning`
    /// [b, len − 1] replaces the LAM's actions as what drives it (a model trained on game
    /// actions).
    pub fn add_batch(
        &mut self,
        genie: &Genie,
        bytes: &[u8],
        (b, len): (usize, usize),
        opts: &EvalOptions,
        conditioning: Option<Tensor>,
        rng: &mut impl Rng,
    ) {
        let device = genie.tokenizer_vs.device();
        let frames = to_tensor(bytes, b, len, device);
        let ids = genie.tokenizer.encode(&frames); // [B, T, N]
        let recon = frames_to_bytes(&genie.tokenizer.decode(&ids));
        self.tokenizer_psnr.extend(
            recon
                .chunks(FRAME_BYTES)
                .zip(bytes.chunks(FRAME_BYTES))
                .map(|(a, r)| psnr_capped(a, r)),
        );
        let inferred = genie.lam.infer_actions(&frames); // [B, T-1]
        self.latents.extend(
            Vec::<i64>::try_from(inferred.flatten(0, -1).to_device(Device::Cpu))
                .expect("i64 actions")
                .into_iter()
                .map(|a| a as usize),
        );
        let conditioning = conditioning.unwrap_or(inferred);
        let p = opts.prompt_frames as i64;
        let prompt_ids = ids.narrow(1, 0, p);
        let prompt_actions = conditioning.narrow(1, 0, p - 1);
        let clip_bytes = len * FRAME_BYTES;
        let real_last: Vec<&[u8]> = bytes
            .chunks(clip_bytes)
            .map(|c| &c[(len - 1) * FRAME_BYTES..])
            .collect();
        let driven: Vec<Tensor> = (0..opts.horizon as i64)
            .map(|k| conditioning.select(1, p - 1 + k))
            .collect();
        let random: Vec<Tensor> = (0..opts.horizon)
            .map(|_| {
                let a: Vec<i64> = (0..b)
                    .map(|_| rng.random_range(0..genie.config.lam.num_actions))
                    .collect();
                Tensor::from_slice(&a).to_device(device)
            })
            .collect();
        for (actions, out) in [
            (&driven, &mut self.rollout),
            (&random, &mut self.rollout_random),
        ] {
            let last = frames_to_bytes(&rollout(
                genie,
                &prompt_ids,
                &prompt_actions,
                actions.len(),
                &mut |t, _| actions[t].shallow_clone(),
                opts,
            ));
            out.extend(
                last.chunks(FRAME_BYTES)
                    .zip(&real_last)
                    .map(|(a, r)| psnr_capped(a, r)),
            );
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `genie eval --data DIR`.
#[derive(Debug, Clone, Serialize)]
pub struct VideoReport {
    pub data: String,
    pub labelled: bool,
    pub clips: usize,
    pub tokenizer_psnr: f64,
    pub rollout_psnr_t4: f64,
    pub rollout_psnr_t4_random: f64,
    pub delta_psnr_t4: f64,
    /// Share of the LAM's inferred actions that are each latent.
    pub latent_usage: Vec<f64>,
    /// Entropy of that usage in bits (3 when all 8 are used alike, 0 when one is).
    pub latent_entropy_bits: f64,
    /// Measures that need the game's actions and are not taken here.
    pub needs_labels: Vec<&'static str>,
    pub seconds: f64,
}

/// The label-free measures on up to `opts.clips` clips of `dataset` (each cut to
/// `prompt_frames + horizon` frames from its start).
pub fn evaluate_video(
    genie: &Genie,
    dataset: &Dataset,
    opts: &EvalOptions,
) -> Result<VideoReport, DataError> {
    let start = std::time::Instant::now();
    let len = opts.prompt_frames + opts.horizon;
    if dataset.clip_len() < len {
        return Err(DataError::Manifest {
            path: dataset.dir().join(crate::data::spec::MANIFEST),
            reason: format!(
                "clips of {} frames are shorter than the {len} an evaluation needs (prompt {} + \
                 horizon {})",
                dataset.clip_len(),
                opts.prompt_frames,
                opts.horizon
            ),
        });
    }
    let clips = opts.clips.min(dataset.len());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut m = VideoMeasures::default();
    tch::no_grad(|| -> Result<(), DataError> {
        for first in (0..clips).step_by(opts.batch.max(1)) {
            let b = opts.batch.max(1).min(clips - first);
            let mut bytes = Vec::with_capacity(b * len * FRAME_BYTES);
            for i in first..first + b {
                let clip = dataset.get(i)?;
                bytes.extend_from_slice(&clip.frames[..len * FRAME_BYTES]);
            }
            m.add_batch(genie, &bytes, (b, len), opts, None, &mut rng);
        }
        Ok(())
    })?;
    let k = genie.config.lam.num_actions.max(1) as usize;
    let mut counts = vec![0usize; k];
    for &l in &m.latents {
        counts[l.min(k - 1)] += 1;
    }
    let total = m.latents.len().max(1) as f64;
    let latent_usage: Vec<f64> = counts.iter().map(|&c| c as f64 / total).collect();
    let latent_entropy_bits = -latent_usage
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| p * p.log2())
        .sum::<f64>();
    Ok(VideoReport {
        data: dataset.dir().display().to_string(),
        labelled: dataset.manifest().labelled,
        clips,
        tokenizer_psnr: mean(&m.tokenizer_psnr),
        rollout_psnr_t4: mean(&m.rollout),
        rollout_psnr_t4_random: mean(&m.rollout_random),
        delta_psnr_t4: mean(&m.rollout) - mean(&m.rollout_random),
        latent_usage,
        latent_entropy_bits,
        needs_labels: vec![
            "action_fidelity (and its ceiling)",
            "lam_nmi",
            "sessions",
            "calibration",
        ],
        seconds: start.elapsed().as_secs_f64(),
    })
}
