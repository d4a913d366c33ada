//! MaskGIT sampling of one frame's tokens (Chang et al. 2022, used by Genie §2.3 and Appendix
//! F.3; Jafar's `MaskGITStep`): start with every token masked; at each of K steps predict all
//! tokens, sample the masked ones at a temperature, keep the most confident and re-mask the rest,
//! fewer on each step along a cosine schedule, none after the last. Randomness comes from a
//! seeded Rust generator, one uniform per token per step, so a session replays bit-exactly from
//! its seed. The model is reached through a closure, so the sampler knows nothing of caches.

use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::dynamics::{Dynamics, DynamicsCache};

/// The generator the player and the tests use: ChaCha8 is value-stable across platforms and
/// crate versions, which replays need.
pub type SamplerRng = rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerConfig {
    /// MaskGIT steps per frame (Genie uses 25; 8 keeps play real-time on a CPU).
    pub steps: usize,
    /// Softmax temperature of the sampled tokens; 0 takes the most likely token (the shipped
    /// 0.5 was chosen against 0, 0.25, 0.8 and 1.0 in docs/experiments.md).
    pub temperature: f64,
    /// Scale of the Gumbel noise added to the confidences (MaskGIT's "choice temperature"),
    /// annealed to 0 over the steps; 0 ranks tokens by probability alone. 4.5 is MaskGIT's
    /// value (against 0 in docs/experiments.md).
    pub confidence_noise: f64,
    /// For a model that scrolls: softmax temperature of the camera head's move before each frame
    /// (`model::scroll`); 1 samples its scores as they are, 0 takes the likeliest move. Absent
    /// from older genie.json files: 1.
    #[serde(default = "one")]
    pub camera_temperature: f64,
}

fn one() -> f64 {
    1.0
}

impl SamplerConfig {
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        let bad = |reason: String| Err(super::ConfigError::new("sampler", reason));
        if !(1..=super::limits::SAMPLER_STEPS).contains(&self.steps) {
            return bad(format!(
                "steps is {}, expected 1 to {}",
                self.steps,
                super::limits::SAMPLER_STEPS
            ));
        }
        for (field, value) in [
            ("temperature", self.temperature),
            ("confidence_noise", self.confidence_noise),
            ("camera_temperature", self.camera_temperature),
        ] {
            if !value.is_finite() || value < 0.0 {
                return bad(format!("{field} is {value}, expected a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            steps: 8,
            temperature: 0.5,
            confidence_noise: 4.5,
            camera_temperature: 1.0,
        }
    }
}

/// Tokens still masked after step `step` (0-based) of `steps`, out of `tokens`:
/// ⌊N·cos(π/2 · (step+1)/steps)⌋, so 0 after the last step.
pub fn masked_after(step: usize, steps: usize, tokens: i64) -> i64 {
    let ratio = (step + 1) as f64 / steps.max(1) as f64;
    ((tokens as f64) * (std::f64::consts::FRAC_PI_2 * ratio).cos())
        .floor()
        .clamp(0.0, tokens as f64) as i64
}

/// Samples one frame of `tokens` ids for each of `batch` sequences. `logits(ids, mask)` returns
/// the model's [B, N, V] logits for a draft in which `mask` (true = hidden) tokens are unknown.
///
/// # Shapes
/// → [B, N] i64.
pub fn sample_frame<R: Rng>(
    batch: i64,
    tokens: i64,
    device: Device,
    cfg: &SamplerConfig,
    rng: &mut R,
    mut logits: impl FnMut(&Tensor, &Tensor) -> Tensor,
) -> Tensor {
    tch::no_grad(|| {
        let steps = cfg.steps.max(1);
        let mut ids = Tensor::zeros([batch, tokens], (Kind::Int64, device));
        let mut mask = Tensor::ones([batch, tokens], (Kind::Bool, device));
        let mut masked = tokens;
        for step in 0..steps {
            let logits = logits(&ids, &mask); // [B, N, V]
            let (sampled, confidence) = if cfg.temperature > 0.0 {
                let probs = (logits / cfg.temperature).softmax(-1, Kind::Float);
                let u = uniforms(rng, batch * tokens, device).view([batch, tokens, 1]);
                let vocab = probs.size()[2];
                let sampled = probs
                    .cumsum(-1, Kind::Float)
                    .lt_tensor(&u)
                    .sum_dim_intlist(-1, false, Kind::Int64)
                    .clamp_max(vocab - 1);
                let confidence = probs
                    .gather(-1, &sampled.unsqueeze(-1), false)
                    .squeeze_dim(-1);
                (sampled, confidence)
            } else {
                let (confidence, sampled) = logits.softmax(-1, Kind::Float).max_dim(-1, false);
                (sampled, confidence)
            };
            let mut confidence = confidence.clamp_min(1e-30).log(); // [B, N]
            if cfg.confidence_noise > 0.0 {
                let u = uniforms(rng, batch * tokens, device)
                    .view([batch, tokens])
                    .clamp(1e-12, 1.0 - 1e-7);
                let gumbel = -(-u.log()).log();
                let anneal = 1.0 - (step + 1) as f64 / steps as f64;
                confidence += gumbel * (cfg.confidence_noise * anneal);
            }
            ids = sampled.where_self(&mask, &ids);
            let next = masked_after(step, steps, tokens).min(masked - 1).max(0);
            if next == 0 {
                break;
            }
            // Tokens fixed at an earlier step are never re-masked.
            let confidence = confidence.masked_fill(&mask.logical_not(), f64::INFINITY);
            let (_, least) = confidence.topk(next, -1, false, false);
            mask = Tensor::zeros([batch, tokens], (Kind::Bool, device)).scatter_value(1, &least, 1);
            masked = next;
        }
        ids
    })
}

/// `n` uniforms in [0, 1) from `rng`, as an f32 tensor on `device`.
fn uniforms<R: Rng>(rng: &mut R, n: i64, device: Device) -> Tensor {
    let values: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    Tensor::from_slice(&values).to_device(device)
}

/// Samples the frame that `action` produces after the frames in `cache`, and adds it to the
/// cache. Each MaskGIT step runs only the new frame's tokens.
///
/// # Shapes
/// `action` [B] i64 → [B, N] i64.
pub fn sample_next<R: Rng>(
    model: &Dynamics,
    cache: &mut DynamicsCache,
    action: &Tensor,
    cfg: &SamplerConfig,
    rng: &mut R,
) -> Tensor {
    let (batch, tokens) = (action.size()[0], model.config().tokens_per_frame);
    let ids = sample_frame(batch, tokens, action.device(), cfg, rng, |ids, mask| {
        model.frame_logits(cache, ids, mask, Some(action))
    });
    model.push_frame(cache, &ids, Some(action));
    ids
}

/// The same as [`sample_next`] with no cache: every step re-runs all of `ids` plus the draft.
/// Equal to the cached path when `ids` is the whole history; given only the last frames of a
/// longer history, it is what a player without caches would compute.
///
/// # Shapes
/// `ids` [B, T, N], `actions` [B, T−1] (`actions[t]` produced frame t+1), `action` [B]
/// (produces the new frame) → [B, N] i64.
pub fn sample_next_full<R: Rng>(
    model: &Dynamics,
    ids: &Tensor,
    actions: &Tensor,
    action: &Tensor,
    cfg: &SamplerConfig,
    rng: &mut R,
) -> Tensor {
    let (batch, t, tokens) = ids.size3().expect("ids must be [B, T, N]");
    let device = ids.device();
    let actions = Tensor::cat(&[actions, &action.view([batch, 1])], 1); // [B, T]
    let past_mask = Tensor::zeros([batch, t, tokens], (Kind::Bool, device));
    sample_frame(batch, tokens, device, cfg, rng, |draft, mask| {
        let all_ids = Tensor::cat(&[ids, &draft.unsqueeze(1)], 1);
        let all_mask = Tensor::cat(&[&past_mask, &mask.unsqueeze(1)], 1);
        model.forward(&all_ids, &actions, &all_mask).select(1, t)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dynamics::tests::tiny;
    use rand::SeedableRng;

    #[test]
    fn cosine_schedule_reveals_every_token_by_the_last_step() {
        for steps in [1, 2, 8, 25] {
            let counts: Vec<i64> = (0..steps).map(|s| masked_after(s, steps, 64)).collect();
            assert_eq!(*counts.last().unwrap(), 0, "{steps} steps");
            assert!(counts.windows(2).all(|w| w[1] <= w[0]));
            assert!(counts[0] < 64);
        }
    }

    #[test]
    fn fills_every_token_and_never_changes_a_kept_one() {
        let mut rng = SamplerRng::seed_from_u64(7);
        let cfg = SamplerConfig {
            steps: 5,
            temperature: 1.0,
            confidence_noise: 1.0,
            ..SamplerConfig::default()
        };
        let mut history: Vec<(Tensor, Tensor)> = Vec::new();
        let ids = sample_frame(3, 16, Device::Cpu, &cfg, &mut rng, |ids, mask| {
            history.push((ids.copy(), mask.copy()));
            Tensor::randn([3, 16, 10], (Kind::Float, Device::Cpu))
        });
        assert_eq!(history.len(), 5);
        assert!(i64::try_from(history[0].1.sum(Kind::Int64)).unwrap() == 48);
        for pair in history.windows(2) {
            let (kept_ids, kept) = (&pair[1].0, pair[1].1.logical_not());
            // Revealed tokens stay revealed and keep their values.
            assert!(
                pair[0]
                    .1
                    .logical_not()
                    .logical_and(&pair[1].1)
                    .sum(Kind::Int64)
                    .int64_value(&[])
                    == 0
            );
            assert!(
                kept_ids
                    .masked_select(&kept)
                    .equal(&ids.masked_select(&kept))
            );
        }
        assert_eq!(ids.size(), [3, 16]);
        assert!(ids.min().int64_value(&[]) >= 0 && ids.max().int64_value(&[]) < 10);
    }

    #[test]
    fn zero_temperature_takes_the_most_likely_tokens() {
        let logits = Tensor::randn([2, 8, 10], (Kind::Float, Device::Cpu));
        let cfg = SamplerConfig {
            steps: 3,
            temperature: 0.0,
            confidence_noise: 0.0,
            ..SamplerConfig::default()
        };
        let ids = sample_frame(
            2,
            8,
            Device::Cpu,
            &cfg,
            &mut SamplerRng::seed_from_u64(0),
            |_, _| logits.copy(),
        );
        assert!(ids.equal(&logits.argmax(-1, false)));
    }

    #[test]
    fn rollouts_are_reproducible_from_a_seed_and_cached_equals_recompute() {
        let cfg = &SamplerConfig::default();
        let (_vs, model) = tiny();
        let prompt = Tensor::randint(16, [2, 4], (Kind::Int64, Device::Cpu));
        let actions: Vec<Tensor> = (0..9)
            .map(|i| Tensor::from_slice(&[i % 8, (3 * i) % 8]))
            .collect();
        let rollout = |seed: u64| {
            let mut rng = SamplerRng::seed_from_u64(seed);
            let mut cache = model.new_cache(2);
            model.push_frame(&mut cache, &prompt, None);
            let frames: Vec<Tensor> = actions
                .iter()
                .map(|a| sample_next(&model, &mut cache, a, cfg, &mut rng))
                .collect();
            Tensor::stack(&frames, 1)
        };
        let (a, b, c) = (rollout(11), rollout(11), rollout(12));
        assert!(a.equal(&b), "same seed, same rollout");
        assert!(!a.equal(&c), "another seed, another rollout");

        // The cache-free sampler over the whole history draws the same frames (9 frames with a
        // context of 6, so the window slides).
        let mut rng = SamplerRng::seed_from_u64(11);
        let mut history = prompt.unsqueeze(1);
        for (t, action) in actions.iter().enumerate() {
            let past = if t == 0 {
                Tensor::zeros([2, 0], (Kind::Int64, Device::Cpu))
            } else {
                Tensor::stack(&actions[..t], 1)
            };
            let next = sample_next_full(&model, &history, &past, action, cfg, &mut rng);
            history = Tensor::cat(&[history, next.unsqueeze(1)], 1);
        }
        assert!(history.narrow(1, 1, 9).equal(&a));
    }
}
