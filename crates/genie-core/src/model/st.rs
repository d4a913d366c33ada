//! The spatio-temporal (ST) transformer shared by all three networks (Genie §2 "ST-transformer",
//! Fig. 4; Appendix F). Each block runs spatial self-attention over the tokens of one frame, then
//! causal temporal self-attention over the same token position across frames, then one MLP;
//! pre-norm, plain residuals (as Jafar's `STBlock` in `utils/nn.py`).
//!
//! Positions: a learned embedding per token position within a frame, added at the stack input;
//! in time, a learned per-head bias on the frame *distance* (initialised as ALiBi, a recency
//! bias). Time enters only as a distance, so a frame's keys and values never depend on where it
//! sits in the context window: they can be cached once and reused as the window slides.
//!
//! Temporal attention is causal and banded: a frame attends to itself and the `context − 1`
//! frames before it. On clips no longer than the context this is plain causal attention (training);
//! on longer sequences it is exactly what the incremental path computes with its sliding cache,
//! so [`StStack::forward`] over a whole history is the reference the cache is tested against.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

/// Sizes of one ST stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StConfig {
    /// Width of the residual stream.
    pub dim: i64,
    /// Number of ST blocks.
    pub layers: i64,
    /// Attention heads (spatial and temporal); must divide `dim`.
    pub heads: i64,
    /// MLP hidden width as a multiple of `dim`.
    pub mlp_ratio: i64,
}

impl StConfig {
    /// Elements of the variables of a stack of these sizes ([`StStack::new`]).
    pub fn elements(&self, tokens_per_frame: i64, context: i64) -> u128 {
        use super::elements::{layer_norm, linear, n};
        let d = self.dim;
        let hidden = d * self.mlp_ratio;
        let attention = linear(d, 3 * d) + linear(d, d);
        let block = 3 * layer_norm(d)
            + attention
            + attention
            + n(self.heads) * n(context)
            + linear(d, hidden)
            + linear(hidden, d);
        n(tokens_per_frame) * n(d) + n(self.layers) * block + layer_norm(d)
    }
}

impl Default for StConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            layers: 4,
            heads: 4,
            mlp_ratio: 4,
        }
    }
}

impl StConfig {
    pub fn new(dim: i64, layers: i64, heads: i64) -> Self {
        Self {
            dim,
            layers,
            heads,
            mlp_ratio: 4,
        }
    }
}

/// Query/key/value projection and output projection of one multi-head attention.
#[derive(Debug)]
struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
}

impl Attention {
    fn new(p: nn::Path<'_>, dim: i64, heads: i64) -> Self {
        assert!(
            dim % heads == 0,
            "attention width {dim} is not divisible by {heads} heads"
        );
        let qkv = nn::linear(&p / "qkv", dim, 3 * dim, Default::default());
        let proj = nn::linear(&p / "proj", dim, dim, Default::default());
        Self { qkv, proj, heads }
    }

    /// # Shapes
    /// `x` [S, L, D] → q, k, v each [S, H, L, D/H] (strided views of one projection).
    fn project(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (s, l, d) = x.size3().expect("attention input must be [S, L, D]");
        let qkv = x
            .apply(&self.qkv)
            .view([s, l, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        (qkv.get(0), qkv.get(1), qkv.get(2))
    }

    /// # Shapes
    /// `o` [S, H, L, D/H] → [S, L, D].
    fn merge(&self, o: &Tensor) -> Tensor {
        let (s, h, l, dh) = o.size4().expect("attention output must be [S, H, L, Dh]");
        o.transpose(1, 2).reshape([s, l, h * dh]).apply(&self.proj)
    }

    /// Unmasked self-attention.
    ///
    /// # Shapes
    /// `x` [S, L, D] → [S, L, D].
    fn forward(&self, x: &Tensor) -> Tensor {
        let (q, k, v) = self.project(x);
        let o = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        self.merge(&o)
    }
}

/// Name of a temporal attention's learned bias on frame distance, [H, context]. A checkpoint
/// may store it for a longer or shorter band than its config's `context_frames`
/// ([`super::checkpoint::load_network`] copies the distances both have): a network trained on
/// clips shorter than its band never learns the bias of the distances beyond them, so its band
/// can be cut to what it learned without touching the file.
pub const DISTANCE_BIAS: &str = "distance_bias";

/// Causal, banded temporal attention with a learned bias on frame distance.
#[derive(Debug)]
struct TemporalAttention {
    attn: Attention,
    /// [H, context]: added to the score of a key `d` frames before the query.
    distance_bias: Tensor,
    context: i64,
}

impl TemporalAttention {
    fn new(p: nn::Path<'_>, dim: i64, heads: i64, context: i64) -> Self {
        let attn = Attention::new(&p / "attn", dim, heads);
        // ALiBi slopes 2^(-8(h+1)/H): some heads look far back, some only at the last frame.
        let slopes: Vec<f32> = (1..=heads)
            .map(|h| 2f32.powf(-8.0 * h as f32 / heads as f32))
            .collect();
        let slopes = Tensor::from_slice(&slopes).to_device(p.device());
        let distance = Tensor::arange(context, (Kind::Float, p.device()));
        let init = -(slopes.unsqueeze(1) * distance.unsqueeze(0));
        let distance_bias = p.var_copy(DISTANCE_BIAS, &init);
        Self {
            attn,
            distance_bias,
            context,
        }
    }

    /// Additive attention mask for `t` frames attending to each other: the distance bias inside
    /// the causal band, −∞ outside it.
    ///
    /// # Shapes
    /// → [1, H, T, T].
    fn band_mask(&self, t: i64) -> Tensor {
        let device = self.distance_bias.device();
        let pos = Tensor::arange(t, (Kind::Int64, device));
        let distance = pos.unsqueeze(1) - pos.unsqueeze(0); // [T, T], query minus key
        let outside = distance.lt(0).logical_or(&distance.ge(self.context));
        let heads = self.distance_bias.size()[0];
        self.distance_bias
            .index_select(1, &distance.clamp(0, self.context - 1).flatten(0, 1))
            .view([1, heads, t, t])
            .masked_fill(&outside, f64::NEG_INFINITY)
    }

    /// Every frame attending to itself and the frames before it in the band; with the keys and
    /// values (for a cache).
    ///
    /// # Shapes
    /// `x` [B, T, N, D] → [B, T, N, D], keys and values each [B·N, H, T, D/H].
    fn forward_with_keys(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (b, t, n, d) = x
            .size4()
            .expect("temporal attention input must be [B, T, N, D]");
        let xt = x.permute([0, 2, 1, 3]).reshape([b * n, t, d]); // [B·N, T, D]
        let (q, k, v) = self.attn.project(&xt);
        let mask = self.band_mask(t);
        let o =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false);
        let out = self.attn.merge(&o).view([b, n, t, d]).permute([0, 2, 1, 3]); // [B, T, N, D]
        (out, k, v)
    }

    /// One new frame attending to the cached frames before it and to itself. Writes the new
    /// frame's keys and values into slot `start + len` of the buffers; the caller decides whether
    /// that slot is kept.
    ///
    /// # Shapes
    /// `x` [B, N, D]; buffers [B·N, H, capacity, D/H] → [B, N, D].
    fn forward_frame(
        &self,
        x: &Tensor,
        keys: &mut Tensor,
        values: &mut Tensor,
        start: i64,
        len: i64,
    ) -> Tensor {
        let (b, n, d) = x
            .size3()
            .expect("temporal attention frame must be [B, N, D]");
        let (q, k, v) = self.attn.project(&x.view([b * n, 1, d])); // [B·N, H, 1, Dh]
        keys.narrow(2, start + len, 1).copy_(&k);
        values.narrow(2, start + len, 1).copy_(&v);
        let keys = keys.narrow(2, start, len + 1);
        let values = values.narrow(2, start, len + 1);
        // The oldest cached frame is `len` frames back; the new frame is at distance 0.
        let distance = Tensor::arange_start_step(len, -1, -1, (Kind::Int64, x.device()));
        let heads = self.distance_bias.size()[0];
        let mask = self
            .distance_bias
            .index_select(1, &distance)
            .view([1, heads, len + 1]);
        // One query per (token, head): libtorch's CPU flash attention turns this into one tiny
        // GEMV per (token, head) and spent ~16% of a played frame there (perf, `genie dream`);
        // the same arithmetic as broadcast products and sums is a handful of vectorised kernels.
        let scale = (q.size()[3] as f64).sqrt();
        let scores = (&q * &keys).sum_dim_intlist(-1, false, None::<Kind>) / scale + mask; // [B·N, H, len + 1]
        let weights = scores.softmax(-1, None::<Kind>).unsqueeze(-1);
        let o = (weights * &values).sum_dim_intlist(2, true, None::<Kind>); // [B·N, H, 1, Dh]
        self.attn.merge(&o).view([b, n, d])
    }
}

#[derive(Debug)]
struct Mlp {
    up: nn::Linear,
    down: nn::Linear,
}

impl Mlp {
    fn new(p: nn::Path<'_>, dim: i64, hidden: i64) -> Self {
        let up = nn::linear(&p / "up", dim, hidden, Default::default());
        let down = nn::linear(&p / "down", hidden, dim, Default::default());
        Self { up, down }
    }

    /// # Shapes
    /// `x` [..., D] → [..., D].
    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.up).gelu("none").apply(&self.down)
    }
}

/// One ST block: spatial attention, causal temporal attention, MLP.
#[derive(Debug)]
pub struct StBlock {
    spatial_norm: nn::LayerNorm,
    spatial: Attention,
    temporal_norm: nn::LayerNorm,
    temporal: TemporalAttention,
    mlp_norm: nn::LayerNorm,
    mlp: Mlp,
}

impl StBlock {
    pub fn new(p: nn::Path<'_>, cfg: &StConfig, context: i64) -> Self {
        let d = cfg.dim;
        Self {
            spatial_norm: nn::layer_norm(&p / "spatial_norm", vec![d], Default::default()),
            spatial: Attention::new(&p / "spatial", d, cfg.heads),
            temporal_norm: nn::layer_norm(&p / "temporal_norm", vec![d], Default::default()),
            temporal: TemporalAttention::new(&p / "temporal", d, cfg.heads, context),
            mlp_norm: nn::layer_norm(&p / "mlp_norm", vec![d], Default::default()),
            mlp: Mlp::new(&p / "mlp", d, d * cfg.mlp_ratio),
        }
    }

    /// # Shapes
    /// `x` [B, T, N, D] → [B, T, N, D].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with_keys(x).0
    }

    /// [`StBlock::forward`], with its temporal attention's keys and values (for a cache).
    ///
    /// # Shapes
    /// `x` [B, T, N, D] → [B, T, N, D], keys and values each [B·N, H, T, D/H].
    fn forward_with_keys(&self, x: &Tensor) -> (Tensor, Tensor, Tensor) {
        let (b, t, n, d) = x.size4().expect("ST block input must be [B, T, N, D]");
        let h = x.apply(&self.spatial_norm);
        let spatial = self
            .spatial
            .forward(&h.view([b * t, n, d]))
            .view([b, t, n, d]);
        let x = x + spatial;
        let (temporal, k, v) = self
            .temporal
            .forward_with_keys(&x.apply(&self.temporal_norm));
        let x = &x + temporal;
        (&x + self.mlp.forward(&x.apply(&self.mlp_norm)), k, v)
    }

    /// The block applied to one new frame, with cached temporal keys and values of the frames
    /// before it (see [`StCache`]).
    ///
    /// # Shapes
    /// `x` [B, N, D] → [B, N, D].
    fn forward_frame(
        &self,
        x: &Tensor,
        keys: &mut Tensor,
        values: &mut Tensor,
        start: i64,
        len: i64,
    ) -> Tensor {
        let x = x + self.spatial.forward(&x.apply(&self.spatial_norm));
        let h = x.apply(&self.temporal_norm);
        let x = &x + self.temporal.forward_frame(&h, keys, values, start, len);
        &x + self.mlp.forward(&x.apply(&self.mlp_norm))
    }
}

/// A stack of ST blocks with its positional information and a final layer norm.
#[derive(Debug)]
pub struct StStack {
    /// [N, D]: learned embedding of the token position within a frame.
    spatial_pos: Tensor,
    blocks: Vec<StBlock>,
    norm: nn::LayerNorm,
    cfg: StConfig,
    tokens_per_frame: i64,
    context: i64,
}

impl StStack {
    /// `tokens_per_frame` tokens per frame; temporal attention reaches `context` frames
    /// (the new one included).
    pub fn new(p: nn::Path<'_>, cfg: &StConfig, tokens_per_frame: i64, context: i64) -> Self {
        assert!(context >= 1, "context must hold at least one frame");
        let spatial_pos = p.var(
            "spatial_pos",
            &[tokens_per_frame, cfg.dim],
            nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        );
        let blocks = (0..cfg.layers)
            .map(|i| StBlock::new(&p / "blocks" / i, cfg, context))
            .collect();
        let norm = nn::layer_norm(&p / "norm", vec![cfg.dim], Default::default());
        Self {
            spatial_pos,
            blocks,
            norm,
            cfg: cfg.clone(),
            tokens_per_frame,
            context,
        }
    }

    pub fn context(&self) -> i64 {
        self.context
    }

    /// # Shapes
    /// `x` [B, T, N, D] → [B, T, N, D].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = x + &self.spatial_pos;
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.apply(&self.norm)
    }

    /// An empty cache for `batch` sequences, on the stack's device and in its weights' kind.
    pub fn new_cache(&self, batch: i64) -> StCache {
        StCache::new(
            batch,
            self.tokens_per_frame,
            &self.cfg,
            self.context,
            (self.spatial_pos.kind(), self.spatial_pos.device()),
        )
    }

    /// Runs one new frame through the stack given the cached frames before it. With
    /// `commit`, the frame's keys and values join the cache (dropping the oldest frame once the
    /// window is full); without, the cache is left as it was (a MaskGIT step on a draft frame).
    ///
    /// # Shapes
    /// `x` [B, N, D] → [B, N, D].
    pub fn forward_frame(&self, x: &Tensor, cache: &mut StCache, commit: bool) -> Tensor {
        cache.make_room();
        let mut x = x + &self.spatial_pos;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_frame(
                &x,
                &mut cache.keys[i],
                &mut cache.values[i],
                cache.start,
                cache.len,
            );
        }
        if commit {
            cache.commit();
        }
        x.apply(&self.norm)
    }

    /// Runs `x`'s frames through the stack at once and makes `cache` hold them, as if each had
    /// gone through [`StStack::forward_frame`] in turn on an empty cache (the same arithmetic,
    /// in a few large products instead of T small ones: a rollout whose view moved refills its
    /// caches this way).
    ///
    /// # Shapes
    /// `x` [B, T, N, D] → [B, T, N, D].
    pub fn prefill(&self, x: &Tensor, cache: &mut StCache) -> Tensor {
        let t = x.size()[1];
        let keep = t.min(self.context - 1);
        let mut x = x + &self.spatial_pos;
        for (i, block) in self.blocks.iter().enumerate() {
            let (k, v);
            (x, k, v) = block.forward_with_keys(&x);
            cache.keys[i]
                .narrow(2, 0, keep)
                .copy_(&k.narrow(2, t - keep, keep));
            cache.values[i]
                .narrow(2, 0, keep)
                .copy_(&v.narrow(2, t - keep, keep));
        }
        cache.start = 0;
        cache.len = keep;
        cache.frames = t as u64;
        x.apply(&self.norm)
    }
}

/// Per-layer temporal keys and values of the last `context − 1` frames, for incremental
/// inference. Each buffer is [B·N, H, 2·context, D/H]; the live frames are the slots
/// `start .. start + len`, and slot `start + len` is the scratch slot of the frame being computed.
/// When the live region reaches the end it is copied back to the front, once every `context`
/// frames, so each step attends to a strided view with no copy of the past.
#[derive(Debug)]
pub struct StCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    start: i64,
    len: i64,
    context: i64,
    frames: u64,
}

impl StCache {
    fn new(
        batch: i64,
        tokens: i64,
        cfg: &StConfig,
        context: i64,
        options: (Kind, tch::Device),
    ) -> Self {
        let shape = [batch * tokens, cfg.heads, 2 * context, cfg.dim / cfg.heads];
        let zeros = || Tensor::zeros(shape, options);
        Self {
            keys: (0..cfg.layers).map(|_| zeros()).collect(),
            values: (0..cfg.layers).map(|_| zeros()).collect(),
            start: 0,
            len: 0,
            context,
            frames: 0,
        }
    }

    /// Frames held (at most `context − 1`: the next frame completes the window).
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames committed since the cache was made, including those that have left the window.
    pub fn frames_seen(&self) -> u64 {
        self.frames
    }

    /// Forgets every frame.
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
        self.frames = 0;
    }

    /// A deep copy (for rewinding or branching a session).
    pub fn deep_clone(&self) -> Self {
        Self {
            keys: self.keys.iter().map(Tensor::copy).collect(),
            values: self.values.iter().map(Tensor::copy).collect(),
            ..*self
        }
    }

    /// Ensures the scratch slot `start + len` exists.
    fn make_room(&mut self) {
        let capacity = self.keys.first().map_or(0, |k| k.size()[2]);
        if self.start + self.len < capacity {
            return;
        }
        // capacity = 2·context > 2·len, so source and destination never overlap.
        for buffer in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let live = buffer.narrow(2, self.start, self.len);
            buffer.narrow(2, 0, self.len).copy_(&live);
        }
        self.start = 0;
    }

    fn commit(&mut self) {
        self.frames += 1;
        if self.len + 1 < self.context {
            self.len += 1;
        } else {
            self.start += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    fn tiny() -> (VarStore, StStack) {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let stack = StStack::new(vs.root(), &StConfig::new(16, 2, 2), 4, 5);
        (vs, stack)
    }

    #[test]
    fn forward_keeps_shape() {
        let (_vs, stack) = tiny();
        let x = Tensor::randn([2, 3, 4, 16], (Kind::Float, Device::Cpu));
        assert_eq!(stack.forward(&x).size(), [2, 3, 4, 16]);
    }

    #[test]
    fn later_frames_do_not_change_earlier_outputs() {
        let (_vs, stack) = tiny();
        let x = Tensor::randn([1, 6, 4, 16], (Kind::Float, Device::Cpu));
        let y = stack.forward(&x);
        let x2 = x.copy();
        x2.narrow(1, 3, 1)
            .copy_(&Tensor::randn([1, 1, 4, 16], (Kind::Float, Device::Cpu)));
        let y2 = stack.forward(&x2);
        assert!(
            y.narrow(1, 0, 3)
                .allclose(&y2.narrow(1, 0, 3), 0.0, 1e-6, false)
        );
        assert!(
            !y.narrow(1, 3, 1)
                .allclose(&y2.narrow(1, 3, 1), 0.0, 1e-3, false)
        );
    }

    #[test]
    fn cached_frames_equal_full_forward_past_the_window() {
        let (_vs, stack) = tiny();
        let _guard = tch::no_grad_guard();
        let x = Tensor::randn([2, 13, 4, 16], (Kind::Float, Device::Cpu));
        let full = stack.forward(&x);
        let mut cache = stack.new_cache(2);
        for t in 0..13 {
            let frame = x.select(1, t);
            // A draft step first must leave the cache untouched.
            let _ = stack.forward_frame(
                &Tensor::randn([2, 4, 16], (Kind::Float, Device::Cpu)),
                &mut cache,
                false,
            );
            let y = stack.forward_frame(&frame, &mut cache, true);
            let diff = f64::try_from((y - full.select(1, t)).abs().max()).unwrap();
            assert!(diff < 1e-5, "frame {t}: {diff}");
        }
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.frames_seen(), 13);
    }

    #[test]
    fn a_prefilled_cache_equals_frames_fed_one_by_one() {
        let (_vs, stack) = tiny();
        let _guard = tch::no_grad_guard();
        for t in [1, 3, 4, 7] {
            let x = Tensor::randn([2, t, 4, 16], (Kind::Float, Device::Cpu));
            let mut fed = stack.new_cache(2);
            for i in 0..t {
                let _ = stack.forward_frame(&x.select(1, i), &mut fed, true);
            }
            let mut filled = stack.new_cache(2);
            // A cache that held other frames is replaced, not added to.
            for _ in 0..3 {
                let noise = Tensor::randn([2, 4, 16], (Kind::Float, Device::Cpu));
                let _ = stack.forward_frame(&noise, &mut filled, true);
            }
            let full = stack.prefill(&x, &mut filled);
            assert_eq!(
                (filled.len(), filled.frames_seen()),
                (fed.len(), fed.frames_seen())
            );
            assert!(full.allclose(&stack.forward(&x), 1e-5, 1e-5, false));
            let next = Tensor::randn([2, 4, 16], (Kind::Float, Device::Cpu));
            let a = stack.forward_frame(&next, &mut fed, true);
            let b = stack.forward_frame(&next, &mut filled, true);
            let diff = f64::try_from((a - b).abs().max()).unwrap();
            assert!(diff < 1e-5, "{t} frames: {diff}");
        }
    }

    #[test]
    fn distance_bias_is_learned() {
        let (vs, stack) = tiny();
        let x = Tensor::randn([1, 3, 4, 16], (Kind::Float, Device::Cpu));
        stack
            .forward(&x)
            .pow_tensor_scalar(2)
            .sum(Kind::Float)
            .backward();
        let bias = &vs.variables()["blocks.0.temporal.distance_bias"];
        let grad = f64::try_from(bias.grad().abs().sum(Kind::Float)).unwrap();
        assert!(grad > 0.0);
    }
}
