//! Vector quantizer shared by the tokenizer and the latent action model (Genie §2.1–2.2, VQ-VAE
//! of van den Oord et al. 2017). Cosine-similarity codebook (encoder outputs and codes are both
//! L2-normalised, as in ViT-VQGAN and Jafar's `VectorQuantizer`), straight-through gradients,
//! codebook and commitment losses, and restart of codes no batch has used for a while with
//! recent encoder outputs, so that the codebook does not collapse onto a few entries.
//!
//! Or, for the tokenizer, finite scalar quantization (FSQ, Mentzer et al. 2023): each of the
//! latent's few dimensions is bounded and rounded to one of a few levels, and a code is the tuple
//! of levels, so there is no codebook to collapse and every code is reachable.

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
    table: Table,
    /// [K]: consecutive restart checks in which each code went unused (not trained; saved so a
    /// resumed run keeps counting).
    idle_steps: Tensor,
    size: i64,
}

/// Where the codes come from.
#[derive(Debug)]
enum Table {
    /// [K, L]: learned codes, normalised at use.
    Learned(Tensor),
    /// Finite scalar quantization: dimension i of the latent takes one of `levels[i]` values;
    /// the id is the mixed-radix number of the levels chosen (dimension 0 the lowest digit).
    Scalar { levels: Vec<i64> },
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
            table: Table::Learned(codebook),
            idle_steps,
            size,
        }
    }

    /// A finite scalar quantizer of latents of `levels.len()` dimensions, `levels[i]` ≥ 2 values
    /// each: Π levels codes, no variables but the idle counts (which only say, in the logs, how
    /// many codes went unused).
    pub fn scalar(p: nn::Path<'_>, levels: &[i64]) -> Self {
        let size = levels.iter().product();
        let idle_steps = p.zeros_no_train("idle_steps", &[size]);
        Self {
            table: Table::Scalar {
                levels: levels.to_vec(),
            },
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

    /// Every code's vector, [K, L]: the normalised codebook, or every tuple of levels.
    pub fn codes(&self) -> Tensor {
        match &self.table {
            Table::Learned(codebook) => l2_normalize(codebook),
            Table::Scalar { .. } => self.lookup(&Tensor::arange(
                self.size,
                (Kind::Int64, self.idle_steps.device()),
            )),
        }
    }

    /// # Shapes
    /// `z` [..., L] → quantized [..., L], ids [...].
    pub fn forward(&self, z: &Tensor) -> VqOutput {
        if let Table::Scalar { levels } = &self.table {
            return fsq_forward(z, levels);
        }
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
        if let Table::Scalar { levels } = &self.table {
            let (radix, half) = fsq_tables(levels, ids.device());
            let digits = ids
                .unsqueeze(-1)
                .floor_divide(&radix)
                .remainder_tensor(&Tensor::from_slice(levels).to_device(ids.device()));
            return (digits.to_kind(Kind::Float) - &half) / half.clamp_min(1.0);
        }
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
    /// codes restarted (always 0 for a scalar quantizer, whose codes are fixed).
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
            let Table::Learned(codebook) = &mut self.table else {
                return 0;
            };
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
            let fresh = pool.index_select(0, &picks).to_kind(codebook.kind());
            let _ = codebook.index_copy_(0, &dead, &fresh);
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

/// Per dimension of a scalar quantizer of `levels`: the radix of its digit in an id, and half
/// its levels less one (the digit of the middle level, `(L − 1) / 2`), both [D].
fn fsq_tables(levels: &[i64], device: tch::Device) -> (Tensor, Tensor) {
    let radix: Vec<i64> = levels
        .iter()
        .scan(1i64, |acc, &l| {
            let r = *acc;
            *acc *= l;
            Some(r)
        })
        .collect();
    let half: Vec<f32> = levels.iter().map(|&l| (l - 1) as f32 / 2.0).collect();
    (
        Tensor::from_slice(&radix).to_device(device),
        Tensor::from_slice(&half).to_device(device),
    )
}

/// Finite scalar quantization of `z` [..., D]: dimension i is squashed into (−h − o, h − o), h =
/// (L − 1) / 2, o = ½ for even L and 0 for odd, rounded to the nearest of its L levels with a straight-through gradient and scaled
/// into [−1, 1] (even L's levels, shifted back by o, sit at half-integers; the FSQ paper's
/// reference does the same). No codebook or commitment loss.
fn fsq_forward(z: &Tensor, levels: &[i64]) -> VqOutput {
    let device = z.device();
    let (radix, half) = fsq_tables(levels, device);
    let offset: Vec<f32> = levels
        .iter()
        .map(|&l| if l % 2 == 0 { 0.5 } else { 0.0 })
        .collect();
    let offset = Tensor::from_slice(&offset).to_device(device);
    // (1 + ε): tanh never reaches its ends, and the last levels must still be reachable.
    let bound = &half * (1.0 + 1e-3);
    let shift = (&offset / &bound).atanh();
    let z = z.to_kind(Kind::Float);
    let squashed = (&z + &shift).tanh() * &bound - &offset;
    let rounded = squashed.round();
    let steps = &squashed + (&rounded - &squashed).detach(); // straight-through
    let level = &steps + &offset; // −h..h in whole steps
    let quantized = &level / half.clamp_min(1.0);
    let digits = (rounded.detach() + &offset + &half)
        .round()
        .to_kind(Kind::Int64);
    let ids = (digits * &radix).sum_dim_intlist([-1].as_slice(), false, Kind::Int64);
    let zero = Tensor::zeros([], (Kind::Float, device));
    VqOutput {
        latents: quantized.detach(),
        quantized,
        ids,
        codebook_loss: zero.shallow_clone(),
        commitment_loss: zero,
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
    fn scalar_codes_are_the_tuples_of_levels_and_their_ids_look_them_up() {
        let vs = VarStore::new(Device::Cpu);
        let mut fsq = VectorQuantizer::scalar(vs.root(), &[4, 3, 5]);
        assert_eq!(fsq.size(), 60);
        let codes = fsq.codes();
        assert_eq!(codes.size(), [60, 3]);
        // Every code distinct, every value within [−1, 1] and both ends used.
        let distinct = (codes.unsqueeze(0) - codes.unsqueeze(1))
            .abs()
            .sum_dim_intlist([-1].as_slice(), false, Kind::Float);
        assert_eq!(
            i64::try_from(distinct.eq(0.0).sum(Kind::Int64)).unwrap(),
            60
        );
        assert_eq!(f64::try_from(codes.max()).unwrap(), 1.0);
        assert_eq!(f64::try_from(codes.min()).unwrap(), -1.0);
        // Large latents saturate to the ends, and each code vector quantizes to its own id.
        let z = Tensor::randn([2, 50, 3], (Kind::Float, Device::Cpu)) * 3.0;
        let z = z.set_requires_grad(true);
        let out = fsq.forward(&z);
        assert_eq!(out.ids.size(), [2, 50]);
        assert!(i64::try_from(out.ids.min()).unwrap() >= 0);
        assert!(i64::try_from(out.ids.max()).unwrap() < 60);
        assert!(
            out.quantized
                .allclose(&fsq.lookup(&out.ids), 1e-6, 1e-6, false)
        );
        out.quantized.sum(Kind::Float).backward();
        assert!(f64::try_from(z.grad().abs().sum(Kind::Float)).unwrap() > 0.0);
        // No codes to restart; the idle counts still count.
        assert_eq!(fsq.restart_idle_codes(&out.ids, &out.latents, 1), 0);
        assert!(fsq.idle_codes(1) > 0);
    }

    #[test]
    fn scalar_quantization_reaches_every_level_of_each_dimension() {
        let vs = VarStore::new(Device::Cpu);
        let fsq = VectorQuantizer::scalar(vs.root(), &[8, 5]);
        // A sweep of each dimension from far below to far above 0.
        let sweep = Tensor::linspace(-8.0, 8.0, 2001, (Kind::Float, Device::Cpu));
        let z = Tensor::stack(&[&sweep, &sweep], -1);
        let ids = fsq.forward(&z).ids;
        let first = ids.remainder(8).bincount(None::<Tensor>, 8);
        let second = ids.floor_divide_scalar(8).bincount(None::<Tensor>, 5);
        assert!(bool::try_from(first.gt(0).all()).unwrap());
        assert!(bool::try_from(second.gt(0).all()).unwrap());
        // Zero is the middle level of an odd dimension and between the two middle ones of an even.
        let zero = fsq.forward(&Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)));
        let q = Vec::<f32>::try_from(zero.quantized.flatten(0, -1)).unwrap();
        assert!(
            (q[0].abs() - 1.0 / 7.0).abs() < 1e-6 && q[1] == 0.0,
            "{q:?}"
        );
    }

    #[test]
    fn usage_counts_distinct_codes() {
        let usage = code_usage(&Tensor::from_slice(&[0i64, 0, 3, 3]), 8);
        assert_eq!(usage.used, 2);
        assert!((usage.perplexity - 2.0).abs() < 1e-9);
    }
}
