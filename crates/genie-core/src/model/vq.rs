//! Vector quantizer shared by the tokenizer and the latent action model (Genie §2.1–2.2, VQ-VAE
//! of van den Oord et al. 2017). Cosine-similarity codebook (encoder outputs and codes are both
//! L2-normalised, as in ViT-VQGAN and Jafar's `VectorQuantizer`), straight-through gradients,
//! codebook and commitment losses, and restart of codes no batch has used for a while with
//! recent encoder outputs, so that the codebook does not collapse onto a few entries.

use tch::{Kind, Tensor, nn};

/// What one quantization produced.
#[derive(Debug)]
pub struct VqOutput {
    /// [..., L]: the chosen codes, with the straight-through gradient to the encoder.
    pub quantized: Tensor,
    /// [...] i64: the chosen code ids.
    pub ids: Tensor,
    /// [..., L]: the L2-normalised encoder outputs, detached (candidates for code restarts).
    pub latents: Tensor,
    /// Scalar: ‖sg(z) − c‖², moves the codes towards the encoder outputs.
    pub codebook_loss: Tensor,
    /// Scalar: ‖z − sg(c)‖², keeps the encoder near its codes (weighted by β by the caller).
    pub commitment_loss: Tensor,
}

/// Code-usage statistics of one batch of ids.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct CodeUsage {
    /// exp(entropy) of the batch's code histogram: the effective number of codes in use.
    pub perplexity: f64,
    /// Distinct codes in the batch.
    pub used: i64,
}

#[derive(Debug)]
pub struct VectorQuantizer {
    /// [K, L]; normalised at use.
    codebook: Tensor,
    /// [K]: consecutive restart checks in which each code went unused (not trained; saved so a
    /// resumed run keeps counting).
    idle_steps: Tensor,
    size: i64,
}

impl VectorQuantizer {
    pub fn new(p: nn::Path<'_>, size: i64, dim: i64) -> Self {
        let codebook = p.var(
            "codebook",
            &[size, dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let idle_steps = p.zeros_no_train("idle_steps", &[size]);
        Self {
            codebook,
            idle_steps,
            size,
        }
    }

    /// Elements of the variables of a quantizer of `size` codes of `dim` (codebook and idle
    /// counts).
    pub fn elements(size: i64, dim: i64) -> u128 {
        use super::elements::n;
        n(size) * n(dim) + n(size)
    }

    pub fn size(&self) -> i64 {
        self.size
    }

    /// The normalised codebook, [K, L].
    pub fn codes(&self) -> Tensor {
        l2_normalize(&self.codebook)
    }

    /// # Shapes
    /// `z` [..., L] → quantized [..., L], ids [...].
    pub fn forward(&self, z: &Tensor) -> VqOutput {
        let z = l2_normalize(z);
        let codes = self.codes();
        let ids = z.matmul(&codes.tr()).argmax(-1, false); // [...]
        let chosen = codes.index_select(0, &ids.flatten(0, -1)).view_as(&z);
        let codebook_loss = chosen.mse_loss(&z.detach(), tch::Reduction::Mean);
        let commitment_loss = z.mse_loss(&chosen.detach(), tch::Reduction::Mean);
        let quantized = &z + (&chosen - &z).detach();
        VqOutput {
            quantized,
            ids,
            latents: z.detach(),
            codebook_loss,
            commitment_loss,
        }
    }

    /// The normalised codes of `ids`.
    ///
    /// # Shapes
    /// `ids` [...] → [..., L].
    pub fn lookup(&self, ids: &Tensor) -> Tensor {
        let codes = self.codes();
        let mut shape = ids.size();
        shape.push(codes.size()[1]);
        codes
            .index_select(0, &ids.flatten(0, -1))
            .view(shape.as_slice())
    }

    /// Counts, for each code, how many consecutive calls it went unused in `ids`, and replaces
    /// the codes idle for `idle_limit` calls or more with randomly chosen rows of `latents`
    /// (recent encoder outputs). Call once per optimizer step, after it. Returns the number of
    /// codes restarted.
    ///
    /// # Shapes
    /// `ids` [...], `latents` [..., L].
    pub fn restart_idle_codes(&mut self, ids: &Tensor, latents: &Tensor, idle_limit: i64) -> i64 {
        let counts = self.counts(ids);
        self.restart_idle_codes_counted(&counts, latents, idle_limit)
    }

    /// [K] i64: how often each code was chosen in `ids`.
    pub fn counts(&self, ids: &Tensor) -> Tensor {
        tch::no_grad(|| ids.flatten(0, -1).bincount(None::<Tensor>, self.size))
    }

    /// [`VectorQuantizer::restart_idle_codes`] given each code's use `counts` [K] (in
    /// data-parallel training, summed over the ranks, so that every rank restarts the same codes).
    pub fn restart_idle_codes_counted(
        &mut self,
        counts: &Tensor,
        latents: &Tensor,
        idle_limit: i64,
    ) -> i64 {
        tch::no_grad(|| {
            let idle = (&self.idle_steps + 1).masked_fill(&counts.gt(0), 0.0);
            self.idle_steps.copy_(&idle);
            let dead = self
                .idle_steps
                .ge(idle_limit as f64)
                .nonzero()
                .flatten(0, -1);
            let n = dead.size()[0];
            if n == 0 {
                return 0;
            }
            let pool = latents.flatten(0, -2);
            let picks = Tensor::randint(pool.size()[0], [n], (Kind::Int64, pool.device()));
            // Under bf16 autocast the latents come in bf16; the codebook stays f32.
            let fresh = pool.index_select(0, &picks).to_kind(self.codebook.kind());
            let _ = self.codebook.index_copy_(0, &dead, &fresh);
            let _ = self.idle_steps.index_fill_(0, &dead, 0.0);
            n
        })
    }

    /// Codes currently counted as idle for at least `idle_limit` calls (always 0 right after a
    /// restart; useful in logs between restarts).
    pub fn idle_codes(&self, idle_limit: i64) -> i64 {
        i64::try_from(self.idle_steps.ge(idle_limit as f64).sum(Kind::Int64)).unwrap_or(0)
    }
}

/// Statistics of one batch of code ids from a codebook of `size` codes.
pub fn code_usage(ids: &Tensor, size: i64) -> CodeUsage {
    tch::no_grad(|| {
        let counts = ids
            .flatten(0, -1)
            .bincount(None::<Tensor>, size)
            .to_kind(Kind::Double);
        let p = &counts / counts.sum(Kind::Double).clamp_min(1.0);
        let entropy = -(&p * (&p + 1e-12).log()).sum(Kind::Double);
        CodeUsage {
            perplexity: f64::try_from(entropy.exp()).unwrap_or(0.0),
            used: i64::try_from(counts.gt(0).sum(Kind::Int64)).unwrap_or(0),
        }
    })
}

/// Scales the last axis to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    #[test]
    fn picks_the_most_similar_code_and_passes_gradients_straight_through() {
        let vs = VarStore::new(Device::Cpu);
        let vq = VectorQuantizer::new(vs.root(), 8, 4);
        let z = Tensor::randn([3, 5, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let out = vq.forward(&z);
        assert_eq!(out.ids.size(), [3, 5]);
        assert_eq!(out.quantized.size(), [3, 5, 4]);
        // The quantized values are exactly the normalised codes of the chosen ids.
        assert!(
            out.quantized
                .allclose(&vq.lookup(&out.ids), 1e-6, 1e-6, false)
        );
        let expected = l2_normalize(&z).matmul(&vq.codes().tr()).argmax(-1, false);
        assert!(out.ids.equal(&expected));
        out.quantized.sum(Kind::Float).backward();
        assert!(f64::try_from(z.grad().abs().sum(Kind::Float)).unwrap() > 0.0);
    }

    #[test]
    fn idle_codes_are_restarted_from_latents() {
        let vs = VarStore::new(Device::Cpu);
        let mut vq = VectorQuantizer::new(vs.root(), 8, 4);
        let ids = Tensor::from_slice(&[0i64, 1, 1, 2]);
        let latents = l2_normalize(&Tensor::randn([4, 4], (Kind::Float, Device::Cpu)));
        assert_eq!(vq.restart_idle_codes(&ids, &latents, 2), 0);
        assert_eq!(vq.idle_codes(1), 5);
        assert_eq!(vq.restart_idle_codes(&ids, &latents, 2), 5);
        assert_eq!(vq.idle_codes(1), 0);
        // Every restarted code is now one of the latents.
        let codes = vq.codes();
        for k in 3..8 {
            let sim = latents.matmul(&codes.get(k)).max();
            assert!(f64::try_from(sim).unwrap() > 0.9999);
        }
    }

    #[test]
    fn codes_restart_from_bf16_latents_as_autocast_gives_them() {
        let vs = VarStore::new(Device::Cpu);
        let mut vq = VectorQuantizer::new(vs.root(), 8, 4);
        let ids = Tensor::from_slice(&[0i64, 1]);
        let latents = l2_normalize(&Tensor::randn([2, 4], (Kind::Float, Device::Cpu)))
            .to_kind(Kind::BFloat16);
        assert_eq!(vq.restart_idle_codes(&ids, &latents, 1), 6);
        assert_eq!(vq.codes().kind(), Kind::Float);
        let sim = latents
            .to_kind(Kind::Float)
            .matmul(&vq.codes().get(7))
            .max();
        assert!(f64::try_from(sim).unwrap() > 0.99);
    }

    #[test]
    fn usage_counts_distinct_codes() {
        let usage = code_usage(&Tensor::from_slice(&[0i64, 0, 3, 3]), 8);
        assert_eq!(usage.used, 2);
        assert!((usage.perplexity - 2.0).abs() < 1e-9);
    }
}
