//! The dynamics model (Genie §2.3 and Appendix F.3; Jafar `models/dynamics.py`): a MaskGIT
//! transformer (Chang et al. 2022) over the tokenizer's ids. Each token is embedded (or replaced
//! by a learned mask token), the frame's action embedding is added, a causal ST stack runs, and
//! a linear head gives logits over the codebook.
//!
//! Action alignment (docs/design.md §3): clips store `actions[t]`, the action applied at frame t that
//! produced frame t+1. Frame t+1's tokens receive the embedding of aₜ; frame 1 (index 0) receives
//! a learned start embedding. So `forward` takes T−1 actions for T frames.
//!
//! Training (Genie §2.3): frames 2..T are masked with a Bernoulli rate drawn per clip from
//! U(0.5, 1) and the loss is cross-entropy on the masked tokens. Play: [`DynamicsCache`] holds
//! the temporal keys and values of past frames so that each MaskGIT step of a new frame runs only
//! that frame's tokens (see `maskgit.rs` for the sampler).

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::frames::previous_frames;
use super::rows::Rows;
use super::scroll::{self, CameraHead, grid_width, head_samples};
use super::st::{StCache, StConfig, StStack};
use super::{ConfigError, limits};

/// The largest weight of a learned latent in a blend ([`DynamicsConfig::blends`]): far beyond
/// the learned embeddings the model reads what it never saw.
pub const MAX_BLEND_WEIGHT: f64 = 4.0;

/// The embeddings of `ids` from `embed`'s learned rows, then, for ids past them, `blends`'s
/// ([K, learned] weights) sums of those rows.
pub(super) fn blended_embedding(
    embed: &nn::Embedding,
    blends: Option<&Tensor>,
    ids: &Tensor,
) -> Tensor {
    let learned_rows = embed.ws.size()[0];
    let any_blend = || ids.numel() > 0 && ids.max().int64_value(&[]) >= learned_rows;
    match blends {
        // Most frames drive learned latents: no table of blends to build.
        Some(blends) if any_blend() => {
            let learned = &embed.ws;
            let table = Tensor::cat(
                &[
                    learned,
                    &blends
                        .to_device(learned.device())
                        .to_kind(learned.kind())
                        .matmul(learned),
                ],
                0,
            );
            Tensor::embedding(&table, ids, -1, false, false)
        }
        _ => embed.forward(ids),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DynamicsConfig {
    /// Codebook size of the tokenizer.
    pub vocab_size: i64,
    /// Tokens per frame of the tokenizer.
    pub tokens_per_frame: i64,
    /// Latent actions (the LAM's codebook size).
    pub num_actions: i64,
    /// Frames the causal attention reaches: the play-time context window. Only distances the
    /// training clips reach learn their bias (clips of 8 frames: up to 7), so this is the
    /// training clips' length: a longer window attends to far frames with untrained weights.
    pub context_frames: i64,
    pub st: StConfig,
    /// Extra weight of the loss on tokens that differ from the same token of the frame before
    /// (where something moved: the player, an enemy, the camera). About 80% of a frame's tokens
    /// repeat, so under the plain loss the model learns to copy, and the action only matters
    /// where things move (docs/experiments.md). Absent from older genie.json files: 0 (plain MaskGIT
    /// loss).
    #[serde(default)]
    pub change_weight: f64,
    /// Which actions the model is conditioned on. Absent from older genie.json files: latent.
    #[serde(default)]
    pub actions: ActionSource,
    /// The model works in the newest frame's view and a camera head decides when the view steps
    /// a column (`model::scroll`); trained with the frames before each one moved by the columns
    /// the picture scrolled. Absent from older genie.json files: off.
    #[serde(default)]
    pub scroll: bool,
    /// Training only: the largest share of a clip's visible tokens replaced by tokens drawn from
    /// elsewhere in the same clip before the model reads them (each clip draws its share from
    /// U(0, context_noise)); the targets stay the true tokens. Teacher-forced training only ever
    /// shows true frames, while a dream reads its own, partly wrong ones. Absent from older
    /// genie.json files: 0 (the context as recorded).
    #[serde(default)]
    pub context_noise: f64,
    /// Training only: the share of clips read as a dream reads its past. The Genie mask hides
    /// tokens of every frame after the first, so a model trained on it alone reads no whole
    /// past frame but the first, while a dream reads nothing but whole ones; in these clips
    /// the frames before a random one are whole, and only from that one on are tokens hidden
    /// (at the clip's rate) and scored. Absent from older genie.json files: 0.
    #[serde(default)]
    pub whole_context: f64,
    /// Training only: the share of clips whose past the model guessed itself, as a dream's past
    /// is. In these clips the frames before a random one are read whole, as with
    /// `whole_context`, but the tokens the Genie mask hid in them are the model's own best guess
    /// (one pass without gradients, under that mask), the targets staying the true tokens: the
    /// model learns to go on from frames it drew, mistakes and all. Absent from older genie.json
    /// files: 0.
    #[serde(default)]
    pub own_context: f64,
    /// Latent actions beyond the learned ones, for the key map to give keys: latent
    /// `num_actions + i` is conditioned on `blends[i]`'s weighted sum of the learned latents'
    /// embeddings (learned latent id → weight), in the model and in its camera head. The
    /// learned latents are the points of the action space the LAM happened to settle on; a
    /// key whose effect none of them dreams (a dash faster than any walk) may be between or
    /// beyond them. Never trained on: the weights stay the learned ones. Absent from older
    /// genie.json files: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blends: Vec<BTreeMap<i64, f64>>,
}

/// Where a dynamics model's actions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSource {
    /// The LAM's latent actions (Genie): keys reach it through the calibration.
    #[default]
    Latent,
    /// The game's own action ids, from labelled clips (`genie train dynamics --oracle-actions`):
    /// a diagnostic of how much control the dynamics model learns when its actions are perfect.
    Game,
}

impl Default for DynamicsConfig {
    /// 64 tokens of a 1024-code tokenizer, 8 actions, a 16-frame window; width 128, 4 layers,
    /// 4 heads. A played frame costs 9 passes of 64 tokens (8 MaskGIT steps and one to cache the
    /// result); of the widths and depths measured on a 2-core CPU only 128 × 4 keeps the 30
    /// frames/s budget (docs/speed.md, `genie bench`).
    fn default() -> Self {
        Self {
            vocab_size: 1024,
            tokens_per_frame: 64,
            num_actions: 8,
            context_frames: 8,
            st: StConfig::new(128, 4, 4),
            change_weight: 0.0,
            actions: ActionSource::Latent,
            scroll: false,
            context_noise: 0.0,
            whole_context: 0.0,
            own_context: 0.0,
            blends: Vec::new(),
        }
    }
}

impl DynamicsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::new("dynamics", reason.into()))
            }
        };
        check(
            self.vocab_size > 0 && self.tokens_per_frame > 0,
            "vocab_size and tokens_per_frame must be positive",
        )?;
        check(self.num_actions > 0, "num_actions must be positive")?;
        check(
            self.context_frames >= 1,
            "context_frames must be at least 1",
        )?;
        check(
            self.change_weight >= 0.0,
            "change_weight must not be negative",
        )?;
        let within = |field: &str, value: i64, min: i64, max: i64| {
            super::within("dynamics", field, value, min, max)
        };
        within("vocab_size", self.vocab_size, 1, limits::CODES)?;
        within(
            "tokens_per_frame",
            self.tokens_per_frame,
            1,
            limits::TOKENS_PER_FRAME,
        )?;
        within("num_actions", self.num_actions, 1, limits::ACTIONS)?;
        within("context_frames", self.context_frames, 1, limits::CONTEXT)?;
        check(
            self.change_weight.is_finite(),
            "change_weight must be finite",
        )?;
        check(
            (0.0..1.0).contains(&self.context_noise),
            "context_noise must be at least 0 and below 1",
        )?;
        check(
            (0.0..=1.0).contains(&self.whole_context),
            "whole_context must be a share from 0 to 1",
        )?;
        check(
            (0.0..=1.0).contains(&self.own_context),
            "own_context must be a share from 0 to 1",
        )?;
        check(
            !self.scroll || super::scroll::grid_width(self.tokens_per_frame).is_some(),
            "scroll needs square frames: tokens_per_frame must be a square",
        )?;
        self.validate_blends()?;
        super::validate_st("dynamics.st", &self.st)
    }

    /// The latent actions a key map may drive: the learned ones, then the blends.
    pub fn latents(&self) -> i64 {
        self.num_actions + self.blends.len() as i64
    }

    fn validate_blends(&self) -> Result<(), ConfigError> {
        let fail = |reason: String| Err(ConfigError::new("dynamics", reason));
        if self.latents() > limits::ACTIONS {
            return fail(format!(
                "{} learned latents and {} blends: more than {} latents",
                self.num_actions,
                self.blends.len(),
                limits::ACTIONS
            ));
        }
        for (i, blend) in self.blends.iter().enumerate() {
            let latent = self.num_actions + i as i64;
            if blend.is_empty() {
                return fail(format!("blends[{i}] (latent {latent}) weighs no latent"));
            }
            for (&of, &weight) in blend {
                if !(0..self.num_actions).contains(&of) {
                    return fail(format!(
                        "blends[{i}] (latent {latent}) weighs latent {of}, but the model learned {}",
                        self.num_actions
                    ));
                }
                if !weight.is_finite() || weight.abs() > MAX_BLEND_WEIGHT {
                    return fail(format!(
                        "blends[{i}] (latent {latent}) weighs latent {of} by {weight}: a weight \
                         is a finite number from −{MAX_BLEND_WEIGHT} to {MAX_BLEND_WEIGHT}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The blends as a [K, num_actions] matrix of weights on `device` (`None` without any).
    fn blend_matrix(&self, device: Device) -> Option<Tensor> {
        if self.blends.is_empty() {
            return None;
        }
        let a = self.num_actions as usize;
        let mut weights = vec![0f32; self.blends.len() * a];
        for (row, blend) in weights.chunks_mut(a).zip(&self.blends) {
            for (&of, &w) in blend {
                row[of as usize] = w as f32;
            }
        }
        Some(
            Tensor::from_slice(&weights)
                .view([self.blends.len() as i64, a as i64])
                .to_device(device),
        )
    }

    /// Elements of the variables of the dynamics model this config makes ([`Dynamics::new`]).
    pub fn elements(&self) -> u128 {
        use super::elements::{linear, n};
        let d = self.st.dim;
        n(self.vocab_size) * n(d)
            + n(d)
            + n(self.num_actions) * n(d)
            + n(d)
            + self.st.elements(self.tokens_per_frame, self.context_frames)
            + linear(d, self.vocab_size)
            + if self.scroll {
                super::scroll::head_elements(self.tokens_per_frame, self.num_actions)
            } else {
                0
            }
    }
}

#[derive(Debug)]
pub struct Dynamics {
    token_embed: nn::Embedding,
    /// [D]: replaces the embedding of a masked token.
    mask_token: Tensor,
    action_embed: nn::Embedding,
    /// [D]: the "action" of the first frame, which no action produced.
    start_embed: Tensor,
    stack: StStack,
    head: nn::Linear,
    /// Whether the view steps before the next frame, for a model that scrolls.
    camera: Option<CameraHead>,
    /// [K, num_actions]: the latents past the learned ones ([`DynamicsConfig::blends`]).
    blends: Option<Tensor>,
    cfg: DynamicsConfig,
}

/// How the views of a batch of clips moved, for a model that scrolls.
#[derive(Debug, Clone, Copy)]
pub struct Scrolled<'a> {
    /// `shifts[b][t]`: the columns the view moved from frame t to t+1
    /// (`scroll::column_shifts`).
    pub shifts: &'a [Vec<i64>],
    /// The clips' frames [B, T, H, W, C] f32 in [0, 1], which the camera head reads.
    pub frames: &'a Tensor,
    /// Pixels of a token column.
    pub patch: i64,
}

#[derive(Debug)]
pub struct DynamicsLoss {
    /// Scalar: mean cross-entropy over the masked tokens.
    pub loss: Tensor,
    pub metrics: DynamicsMetrics,
    /// Scalar, detached: the total weight `loss` is divided by (the masked tokens, weighted).
    /// Data-parallel training rescales each rank's loss by the sum of these over the ranks, so
    /// that the ranks together take the mean over the whole step's batch.
    pub denominator: Tensor,
}

/// The camera head's calls on the frames where the view moved: `[left, right]`, the moves and
/// those it called (its likeliest move was that one).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CameraCalls {
    pub moves: [f64; 2],
    pub called: [f64; 2],
}

impl CameraCalls {
    /// The share of the moves either way it called (`None` without moves).
    pub fn recall(&self) -> Option<f64> {
        let moves = self.moves[0] + self.moves[1];
        (moves > 0.0).then(|| (self.called[0] + self.called[1]) / moves)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DynamicsMetrics {
    pub loss: f64,
    /// Share of masked tokens whose most likely id is the true one.
    pub accuracy: f64,
    /// Share of the tokens of frames 2..T that were masked.
    pub mask_rate: f64,
    /// A model that scrolls: the camera head's cross-entropy, and the share of the frames
    /// where the picture did scroll whose move it called right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub camera_recall: Option<f64>,
}

/// How [`Dynamics::loss_scrolled`] reads the clips' context (training:
/// [`DynamicsConfig::context_noise`], [`DynamicsConfig::whole_context`] and
/// [`DynamicsConfig::own_context`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContextRead {
    /// The largest share of visible tokens swapped for others of the clip.
    pub noise: f64,
    /// The share of clips whose frames before a random one are read whole.
    pub whole: f64,
    /// The share of clips whose frames before a random one are read whole as the model itself
    /// guessed them.
    pub own: f64,
}

impl ContextRead {
    /// The Genie mask on the clips as recorded.
    pub const AS_RECORDED: Self = Self {
        noise: 0.0,
        whole: 0.0,
        own: 0.0,
    };
    /// Every clip read as a dream reads: whole frames before a random one.
    pub const WHOLE: Self = Self {
        noise: 0.0,
        whole: 1.0,
        own: 0.0,
    };
    /// Every clip read as a dream reads and with a past of the model's own guesses.
    pub const OWN: Self = Self {
        noise: 0.0,
        whole: 0.0,
        own: 1.0,
    };

    /// What training reads by `cfg`.
    pub fn training(cfg: &DynamicsConfig) -> Self {
        Self {
            noise: cfg.context_noise,
            whole: cfg.whole_context,
            own: cfg.own_context,
        }
    }
}

/// Per-layer temporal keys and values of the frames of a dynamics rollout.
#[derive(Debug)]
pub struct DynamicsCache(StCache);

impl Deref for DynamicsCache {
    type Target = StCache;
    fn deref(&self) -> &StCache {
        &self.0
    }
}

impl DynamicsCache {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn deep_clone(&self) -> Self {
        Self(self.0.deep_clone())
    }
}

impl Dynamics {
    pub fn new(p: nn::Path<'_>, cfg: &DynamicsConfig) -> Self {
        let d = cfg.st.dim;
        let blends = cfg.blend_matrix(p.device());
        let small = nn::Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let embedding = nn::EmbeddingConfig {
            ws_init: small,
            ..Default::default()
        };
        Self {
            token_embed: nn::embedding(&p / "token_embed", cfg.vocab_size, d, embedding),
            mask_token: p.var("mask_token", &[d], small),
            action_embed: nn::embedding(&p / "action_embed", cfg.num_actions, d, embedding),
            start_embed: p.var("start_embed", &[d], small),
            stack: StStack::new(
                &p / "stack",
                &cfg.st,
                cfg.tokens_per_frame,
                cfg.context_frames,
            ),
            head: nn::linear(&p / "head", d, cfg.vocab_size, Default::default()),
            camera: cfg
                .scroll
                .then(|| CameraHead::new(&p / "camera", cfg.tokens_per_frame, cfg.num_actions))
                .map(|head| head.with_blends(blends.as_ref().map(Tensor::shallow_clone))),
            blends,
            cfg: cfg.clone(),
        }
    }

    /// Re-expresses the token embeddings and the output head over the codes of another
    /// tokenizer, for a model whose tokenizer was replaced: `cover` [K_new, K_old] counts how
    /// often each new code stood where each old one did on the same frames
    /// ([`code_cover`]), and each new code's embedding, head row and bias become the mean of its
    /// old codes', weighted by those counts. A new code that covered nothing gets the mean
    /// embedding and head row of all and the lowest bias, so it is sampled last. Returns how many
    /// new codes covered something.
    pub fn carry_codes(&mut self, cover: &Tensor) -> i64 {
        let k = self.cfg.vocab_size;
        assert_eq!(
            cover.size(),
            [k, k],
            "a cover of the model's own vocabulary"
        );
        tch::no_grad(|| {
            let cover = cover.to_device(self.head.ws.device()).to_kind(Kind::Float);
            let total = cover.sum_dim_intlist(1, true, Kind::Float);
            let used = total.gt(0.0);
            let weights = &cover / total.clamp_min(1.0);
            let carry = |rows: &Tensor, unused: &Tensor| -> Tensor {
                let mixed = weights.matmul(rows);
                mixed.where_self(&used, unused)
            };
            let embed = self.token_embed.ws.detach();
            let fresh = carry(&embed, &embed.mean_dim(0, true, Kind::Float));
            self.token_embed.ws.copy_(&fresh);
            let head = self.head.ws.detach();
            let fresh = carry(&head, &head.mean_dim(0, true, Kind::Float));
            self.head.ws.copy_(&fresh);
            if let Some(bias) = &mut self.head.bs {
                let old = bias.detach().unsqueeze(1);
                let fresh = carry(&old, &old.min().view([1, 1])).squeeze_dim(1);
                bias.copy_(&fresh);
            }
            used.sum(Kind::Int64).int64_value(&[])
        })
    }

    pub fn config(&self) -> &DynamicsConfig {
        &self.cfg
    }

    /// The camera head of a model that scrolls.
    pub fn camera(&self) -> Option<&CameraHead> {
        self.camera.as_ref()
    }

    /// Token embeddings, masked tokens replaced by the mask token.
    ///
    /// # Shapes
    /// `ids` [..., N] i64, `mask` [..., N] bool → [..., N, D].
    fn embed_tokens(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let tokens = self.token_embed.forward(&ids.masked_fill(mask, 0));
        tokens.where_self(&mask.logical_not().unsqueeze(-1), &self.mask_token)
    }

    /// Logits of every token given the visible ones: frame t+1 sees frames ≤ t+1 and the actions
    /// that produced them.
    ///
    /// # Shapes
    /// `ids` [B, T, N] i64, `actions` [B, T−1] i64 (`actions[t]` produced frame t+1),
    /// `mask` [B, T, N] bool (true = hidden) → [B, T, N, V].
    pub fn forward(&self, ids: &Tensor, actions: &Tensor, mask: &Tensor) -> Tensor {
        let (b, t, _) = ids.size3().expect("ids must be [B, T, N]");
        assert_eq!(
            actions.size(),
            [b, t - 1],
            "actions must be [B, T−1]: actions[t] produced frame t+1"
        );
        let acts = self.action_embeddings(actions); // [B, T, D]
        self.forward_embedded(ids, &acts, mask)
    }

    /// Embeddings of latent ids, learned or blended: [..] → [.., D].
    fn embed_actions(&self, actions: &Tensor) -> Tensor {
        blended_embedding(&self.action_embed, self.blends.as_ref(), actions)
    }

    /// The start embedding then each action's: [B, T−1] ids → [B, T, D].
    fn action_embeddings(&self, actions: &Tensor) -> Tensor {
        let b = actions.size()[0];
        let d = self.cfg.st.dim;
        let start = self.start_embed.view([1, 1, d]).expand([b, 1, d], false);
        Tensor::cat(&[start, self.embed_actions(actions)], 1)
    }

    /// `acts` [B, T, D]: each frame's action embedding (start embedding first).
    fn forward_embedded(&self, ids: &Tensor, acts: &Tensor, mask: &Tensor) -> Tensor {
        let x = self.embed_tokens(ids, mask) + acts.unsqueeze(2); // [B, T, N, D]
        self.stack.forward(&x).apply(&self.head)
    }

    /// Genie/MaskGIT loss: frames 2..T masked with a Bernoulli rate drawn per clip from
    /// U(0.5, 1), cross-entropy on the masked tokens. Uses libtorch's global generator
    /// (`tch::manual_seed`).
    ///
    /// # Shapes
    /// `ids` [B, T, N] i64, `actions` [B, T−1] i64.
    pub fn loss(&self, ids: &Tensor, actions: &Tensor) -> DynamicsLoss {
        self.loss_rows(ids, actions, Rows::whole(ids.size()[0]))
    }

    /// [`Dynamics::loss`] on `rows` of a larger batch: the masks are those the whole batch would
    /// draw, cut to these rows.
    pub fn loss_rows(&self, ids: &Tensor, actions: &Tensor, rows: Rows) -> DynamicsLoss {
        self.loss_scrolled(ids, actions, None, rows, ContextRead::AS_RECORDED)
    }

    /// [`Dynamics::loss_rows`] for a model that scrolls, where the clips' views moved as `scrolled`
    /// says. Every frame is moved into the last frame's view, the columns it never showed are
    /// hidden and not scored, and the camera head learns each move from the frame before it
    /// ([`Dynamics::camera_loss`]). `None`, or a model that does not scroll: the plain loss.
    /// `context` says how the clips' context is read ([`ContextRead`]: training passes the
    /// config's, held-out evaluation the context as recorded, or whole).
    pub fn loss_scrolled(
        &self,
        ids: &Tensor,
        actions: &Tensor,
        scrolled: Option<Scrolled<'_>>,
        rows: Rows,
        context: ContextRead,
    ) -> DynamicsLoss {
        let weight = self.cfg.change_weight;
        self.loss_weighted(ids, actions, scrolled, rows, context, weight)
    }

    /// [`Dynamics::loss`] with tokens that differ from the frame before weighted `1 +
    /// change_weight` whatever the config says (learning a picture, where the few tokens that
    /// move are what the keys change).
    pub fn loss_changes(&self, ids: &Tensor, actions: &Tensor, change_weight: f64) -> DynamicsLoss {
        let rows = Rows::whole(ids.size()[0]);
        self.loss_weighted(
            ids,
            actions,
            None,
            rows,
            ContextRead::AS_RECORDED,
            change_weight,
        )
    }

    fn loss_weighted(
        &self,
        ids: &Tensor,
        actions: &Tensor,
        scrolled: Option<Scrolled<'_>>,
        rows: Rows,
        context: ContextRead,
        change_weight: f64,
    ) -> DynamicsLoss {
        let (b, t, n) = ids.size3().expect("ids must be [B, T, N]");
        let device = ids.device();
        let rate = rows.rand(&[b, 1, 1], device) * 0.5 + 0.5;
        let draw = rows.rand(&[b, t, n], device).lt_tensor(&rate);
        let first = Tensor::arange(t, (Kind::Int64, device))
            .eq(0)
            .view([1, t, 1]);
        let scrolled = scrolled.filter(|_| self.cfg.scroll);
        let shifts = scrolled.as_ref().map(|s| s.shifts);
        let (aligned, unknown) = match (shifts, grid_width(n)) {
            (Some(shifts), Some(width)) => {
                let (aligned, unknown) = scroll::align(ids, shifts, width);
                (aligned, Some(unknown))
            }
            _ => (ids.shallow_clone(), None),
        };
        let ids = &aligned;
        let genie_mask = draw.logical_and(&first.logical_not()); // [B, T, N], frame 1 always visible
        let mut mask = genie_mask.shallow_clone();
        if context.whole > 0.0 && t > 1 {
            mask = mask.logical_and(&whole_frames(b, t, rows, context.whole, device).logical_not());
        }
        let own =
            (context.own > 0.0 && t > 1).then(|| whole_frames(b, t, rows, context.own, device));
        if let Some(own) = &own {
            mask = mask.logical_and(&own.logical_not());
        }
        // Unknown tokens are hidden wherever they are and scored nowhere.
        let hide_unknown = |mask: &Tensor| match &unknown {
            Some(unknown) => mask.logical_or(unknown),
            None => mask.shallow_clone(),
        };
        let scored = match &unknown {
            Some(unknown) => mask.logical_and(&unknown.logical_not()),
            None => mask.shallow_clone(),
        };
        mask = hide_unknown(&mask);
        let mut input = noisy_context(ids, &mask, rows, context.noise);
        if let Some(own) = &own {
            input = self.own_past(&input, actions, &hide_unknown(&genie_mask), own);
        }
        let logits = self.forward(&input, actions, &mask);
        let ce = logits
            .view([-1, self.cfg.vocab_size])
            .cross_entropy_loss::<Tensor>(
                &ids.flatten(0, -1),
                None,
                tch::Reduction::None,
                -100,
                0.0,
            )
            .view([b, t, n]);
        let weight = scored.to_kind(Kind::Float);
        let masked = weight.sum(Kind::Float).clamp_min(1.0);
        // With `change_weight`, tokens that differ from the frame before weigh more.
        let loss_weight = if change_weight > 0.0 {
            let changed = ids.ne_tensor(&previous_frames(ids)).to_kind(Kind::Float);
            &weight * (changed * change_weight + 1.0)
        } else {
            weight.shallow_clone()
        };
        let denominator = loss_weight.sum(Kind::Float).clamp_min(1.0).detach();
        let mut loss = (&ce * &loss_weight).sum(Kind::Float) / &denominator;
        let camera = scrolled.and_then(|s| self.camera_loss(actions, s));
        if let Some((camera_loss, _)) = &camera {
            loss += camera_loss;
        }
        let camera = camera.map(|(l, calls)| {
            (
                f64::try_from(l.detach()).unwrap_or(f64::NAN),
                calls.recall(),
            )
        });
        let metrics = tch::no_grad(|| {
            let hits = logits.argmax(-1, false).eq_tensor(ids).to_kind(Kind::Float);
            let scalar = |t: Tensor| f64::try_from(t).unwrap_or(f64::NAN);
            DynamicsMetrics {
                loss: scalar(loss.detach()),
                accuracy: scalar((hits * &weight).sum(Kind::Float) / &masked),
                mask_rate: scalar(weight.sum(Kind::Float) / (b * (t - 1).max(1) * n) as f64),
                camera_loss: camera.map(|c| c.0),
                camera_recall: camera.and_then(|c| c.1),
            }
        });
        DynamicsLoss {
            loss,
            metrics,
            denominator,
        }
    }

    /// `input` with a past the model guessed itself ([`DynamicsConfig::own_context`]): one pass
    /// without gradients under `hidden` (the Genie mask), its best guess put where that mask hid
    /// tokens of the frames `own` picks; everything else as it was.
    ///
    /// # Shapes
    /// `input` [B, T, N] i64, `actions` [B, T−1] i64, `hidden` [B, T, N] bool, `own` [B, T, 1]
    /// bool → [B, T, N] i64.
    fn own_past(&self, input: &Tensor, actions: &Tensor, hidden: &Tensor, own: &Tensor) -> Tensor {
        let guess = tch::no_grad(|| self.forward(input, actions, hidden).argmax(-1, false));
        guess.where_self(&hidden.logical_and(own), input)
    }

    /// The camera head's loss, for a model that scrolls: from frame t of `scrolled.frames` (in
    /// its own view, as play shows it) and action t, the move of the view before frame t+1
    /// (samples from [`scroll::head_samples`]); with the moves each way and those it called
    /// right ([`CameraCalls`], over the frames as they are, not the extra samples).
    ///
    /// # Shapes
    /// `actions` [B, T−1] i64 → a scalar.
    pub fn camera_loss(
        &self,
        actions: &Tensor,
        scrolled: Scrolled<'_>,
    ) -> Option<(Tensor, CameraCalls)> {
        let head = self.camera.as_ref()?;
        let Scrolled {
            shifts,
            frames,
            patch,
        } = scrolled;
        let (frames, actions, targets, first) = head_samples(frames, actions, shifts, patch)?;
        let scores = head.forward(&frames, &actions);
        let loss = scores.cross_entropy_for_logits(&targets);
        let calls = tch::no_grad(|| {
            let (scores, targets) = (
                scores.narrow(0, 0, first as i64),
                targets.narrow(0, 0, first as i64),
            );
            let called = scores.argmax(-1, false).eq_tensor(&targets);
            let count = |t: Tensor| f64::try_from(t.sum(Kind::Float)).unwrap_or(0.0);
            let mut calls = CameraCalls::default();
            // Class 0: the view moved left, 2: right.
            for (way, class) in [0, 2].into_iter().enumerate() {
                let moved = targets.eq(class);
                calls.called[way] = count(called.logical_and(&moved));
                calls.moves[way] = count(moved);
            }
            calls
        });
        Some((loss, calls))
    }

    /// An empty rollout cache for `batch` sequences.
    pub fn new_cache(&self, batch: i64) -> DynamicsCache {
        DynamicsCache(self.stack.new_cache(batch))
    }

    /// Input of one new frame: embedded tokens plus its action embedding (`None`: the start
    /// embedding of a first frame).
    ///
    /// # Shapes
    /// → [B, N, D].
    fn frame_input(&self, ids: &Tensor, mask: &Tensor, action: Option<&Tensor>) -> Tensor {
        let action = match action {
            Some(a) => self.embed_actions(a), // [B, D]
            None => self.start_embed.view([1, -1]),
        };
        let tokens = self.embed_tokens(ids, mask); // [B, N, D]
        tokens + action.expand([ids.size()[0], -1], false).unsqueeze(1)
    }

    /// Logits of a draft of the next frame given the cached frames; leaves the cache as it was.
    /// `action` produced this frame (`None` for a first frame).
    ///
    /// # Shapes
    /// `ids` [B, N] i64, `mask` [B, N] bool, `action` [B] i64 → [B, N, V].
    pub fn frame_logits(
        &self,
        cache: &mut DynamicsCache,
        ids: &Tensor,
        mask: &Tensor,
        action: Option<&Tensor>,
    ) -> Tensor {
        tch::no_grad(|| self.draft_logits(cache, self.frame_input(ids, mask, action)))
    }

    /// Logits of a draft frame from its input ([`Dynamics::frame_input`]), leaving the cache as
    /// it was.
    fn draft_logits(&self, cache: &mut DynamicsCache, x: Tensor) -> Tensor {
        self.stack
            .forward_frame(&x, &mut cache.0, false)
            .apply(&self.head)
    }

    /// Makes `cache` hold these known frames (and only them), their `unknown` tokens hidden like
    /// masked ones (columns a scrolled view never showed), in one pass: the same as adding them
    /// one by one to an empty cache. `actions[i]` produced frame i (`None`: a start frame).
    ///
    /// # Shapes
    /// `ids` and `unknown` [B, N] each, one per frame; `actions` [B] i64.
    pub fn prefill_hidden(
        &self,
        cache: &mut DynamicsCache,
        ids: &[Tensor],
        unknown: &[Tensor],
        actions: &[Option<Tensor>],
    ) {
        if ids.is_empty() {
            cache.0.clear();
            return;
        }
        tch::no_grad(|| {
            let frames: Vec<Tensor> = ids
                .iter()
                .zip(unknown)
                .zip(actions)
                .map(|((ids, unknown), action)| self.frame_input(ids, unknown, action.as_ref()))
                .collect();
            let _ = self.stack.prefill(&Tensor::stack(&frames, 1), &mut cache.0);
        });
    }

    /// Adds a finished frame to the cache (the prompt with `None`, then each generated frame
    /// with the action that produced it).
    ///
    /// # Shapes
    /// `ids` [B, N] i64, `action` [B] i64.
    pub fn push_frame(&self, cache: &mut DynamicsCache, ids: &Tensor, action: Option<&Tensor>) {
        tch::no_grad(|| {
            let mask = Tensor::zeros(ids.size(), (Kind::Bool, ids.device()));
            let x = self.frame_input(ids, &mask, action);
            let _ = self.stack.forward_frame(&x, &mut cache.0, true);
        });
    }
}

/// Which frames of each clip are read whole ([`DynamicsConfig::whole_context`]): in a `share` of
/// the clips, every frame before a cut drawn from 1..T−1; [B, T, 1] bool.
fn whole_frames(b: i64, t: i64, rows: Rows, share: f64, device: Device) -> Tensor {
    let picked = rows.rand(&[b, 1, 1], device).lt(share);
    let cut = (rows.rand(&[b, 1, 1], device) * (t - 1) as f64)
        .to_kind(Kind::Int64)
        .clamp_max(t - 2)
        + 1;
    Tensor::arange(t, (Kind::Int64, device))
        .view([1, t, 1])
        .lt_tensor(&cut)
        .logical_and(&picked)
}

/// What the dynamics model reads in training: `ids` with a share of the visible (unmasked) tokens
/// of each clip, drawn from U(0, `noise`) per clip, replaced by tokens from random places of the
/// same clip, so the wrong tokens are ones the tokenizer makes (sky, ground, pieces of the player)
/// rather than codes no frame uses. `ids` itself where `noise` is 0, with no draw from the
/// generator (so runs without it are as before).
///
/// # Shapes
/// `ids` [B, T, N] i64, `mask` [B, T, N] bool (true = hidden) → [B, T, N] i64.
fn noisy_context(ids: &Tensor, mask: &Tensor, rows: Rows, noise: f64) -> Tensor {
    if noise <= 0.0 {
        return ids.shallow_clone();
    }
    let (b, t, n) = ids.size3().expect("ids must be [B, T, N]");
    let device = ids.device();
    let rate = rows.rand(&[b, 1, 1], device) * noise;
    let hit = rows
        .rand(&[b, t, n], device)
        .lt_tensor(&rate)
        .logical_and(&mask.logical_not());
    let places = (rows.rand(&[b, t * n], device) * (t * n) as f64)
        .to_kind(Kind::Int64)
        .clamp_max(t * n - 1);
    let donors = ids
        .view([b, t * n])
        .gather(1, &places, false)
        .view([b, t, n]);
    donors.where_self(&hit, ids)
}

/// How often each code of `new` stands where each code of `old` does when both tokenize
/// `frames` (f32 [B, T, H, W, C] in [0, 1]), added into `cover` [K_new, K_old] (f32 counts), for
/// [`Dynamics::carry_codes`]. The two must cut frames into the same grid of patches.
pub fn code_cover(
    old: &super::tokenizer::Tokenizer,
    new: &super::tokenizer::Tokenizer,
    frames: &Tensor,
    cover: &mut Tensor,
) {
    let (a, b) = (old.config(), new.config());
    assert_eq!(
        (a.image_size, a.patch),
        (b.image_size, b.patch),
        "tokenizers with one grid"
    );
    let k_old = a.codebook_size;
    assert_eq!(cover.size(), [b.codebook_size, k_old]);
    let old_ids = old.encode(frames).flatten(0, -1).to_device(cover.device());
    let new_ids = new.encode(frames).flatten(0, -1).to_device(cover.device());
    let pairs = new_ids * k_old + old_ids;
    let ones = Tensor::ones(pairs.size(), (Kind::Float, cover.device()));
    let mut flat = cover.view([-1]);
    let _ = flat.index_add_(0, &pairs, &ones);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    pub(crate) fn tiny_config() -> DynamicsConfig {
        DynamicsConfig {
            vocab_size: 16,
            tokens_per_frame: 4,
            num_actions: 8,
            context_frames: 6,
            st: StConfig::new(16, 2, 2),
            change_weight: 0.0,
            actions: ActionSource::Latent,
            scroll: false,
            context_noise: 0.0,
            whole_context: 0.0,
            own_context: 0.0,
            blends: Vec::new(),
        }
    }

    #[test]
    fn blends_weigh_learned_latents_by_finite_weights() {
        let mut cfg = tiny_config();
        cfg.blends = vec![BTreeMap::from([(1, 1.5), (3, -0.5)])];
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.latents(), 9);
        for (blend, says) in [
            (BTreeMap::new(), "weighs no latent"),
            (
                BTreeMap::from([(8, 1.0)]),
                "weighs latent 8, but the model learned 8",
            ),
            (BTreeMap::from([(-1, 1.0)]), "weighs latent -1"),
            (
                BTreeMap::from([(2, f64::NAN)]),
                "a weight is a finite number",
            ),
            (BTreeMap::from([(2, 4.5)]), "a weight is a finite number"),
        ] {
            cfg.blends = vec![BTreeMap::from([(0, 1.0)]), blend];
            let err = cfg.validate().unwrap_err().to_string();
            assert!(
                err.contains("blends[1] (latent 9)") && err.contains(says),
                "{err}"
            );
        }
        cfg.blends = vec![BTreeMap::from([(0, 1.0)]); limits::ACTIONS as usize];
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("more than 256 latents"), "{err}");
        // genie.json files without blends read as before, and are written as before.
        let json = serde_json::to_string(&tiny_config()).unwrap();
        assert!(!json.contains("blends"), "{json}");
        let back: DynamicsConfig = serde_json::from_str(&json).unwrap();
        assert!(back.blends.is_empty());
    }

    #[test]
    fn a_blend_drives_the_model_and_its_camera_head_by_its_weighted_sum() {
        let mut cfg = tiny_config();
        cfg.scroll = true;
        cfg.blends = vec![
            BTreeMap::from([(3, 1.0)]),
            BTreeMap::from([(1, 0.25), (6, -0.5)]),
        ];
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let model = Dynamics::new(vs.root(), &cfg);
        let (b, d) = (2, cfg.st.dim);
        let x = ids(b, 3);
        let mask = Tensor::zeros([b, 3, 4], (Kind::Bool, Device::Cpu));
        let held = |a: i64| Tensor::full([b, 2], a, (Kind::Int64, Device::Cpu));
        let same = |p: &Tensor, q: &Tensor| p.allclose(q, 1e-5, 1e-6, false);
        // A blend of one latent at weight 1 is that latent.
        let three = model.forward(&x, &held(3), &mask);
        assert!(same(&model.forward(&x, &held(8), &mask), &three));
        // Another is its weighted sum of the learned embeddings.
        let w = &model.action_embed.ws;
        let sum = w.get(1) * 0.25 - w.get(6) * 0.5;
        let by_hand = Tensor::cat(
            &[
                model.start_embed.view([1, 1, d]).expand([b, 1, d], false),
                sum.view([1, 1, d]).expand([b, 2, d], false),
            ],
            1,
        );
        let nine = model.forward(&x, &held(9), &mask);
        assert!(same(&nine, &model.forward_embedded(&x, &by_hand, &mask)));
        assert!(!same(&nine, &three));
        // The camera head reads them alike.
        let head = model
            .camera
            .as_ref()
            .expect("a model that scrolls has a camera head");
        let frames = Tensor::rand([b, 64, 64, 3], (Kind::Float, Device::Cpu));
        let one = |a: i64| Tensor::full([b], a, (Kind::Int64, Device::Cpu));
        let head3 = head.forward(&frames, &one(3));
        assert!(same(&head.forward(&frames, &one(8)), &head3));
        assert!(!same(&head.forward(&frames, &one(9)), &head3));
        // In bf16, as `genie bench` runs it, the blends follow the weights' kind.
        let mut vs = vs;
        vs.bfloat16();
        let bf16 = model.forward(&x, &held(9), &mask);
        assert_eq!(bf16.kind(), Kind::BFloat16);
    }

    pub(crate) fn tiny() -> (VarStore, Dynamics) {
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let model = Dynamics::new(vs.root(), &tiny_config());
        (vs, model)
    }

    fn ids(b: i64, t: i64) -> Tensor {
        Tensor::randint(16, [b, t, 4], (Kind::Int64, Device::Cpu))
    }

    fn actions(b: i64, t: i64) -> Tensor {
        Tensor::randint(8, [b, t], (Kind::Int64, Device::Cpu))
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        a.allclose(b, 0.0, 1e-5, false)
    }

    /// New codes that each stood where one old code did predict what that old code predicted;
    /// a code split between two old ones gets their weighted mean; one never seen is sampled
    /// last.
    #[test]
    fn carried_codes_predict_what_the_codes_they_stood_for_predicted() {
        let (_vs, mut model) = tiny();
        let (_vs2, before) = tiny();
        let cover = Tensor::zeros([16, 16], (Kind::Float, Device::Cpu));
        // New code c stood where old code 15 - c did (c < 14); 14 half 0, 1 in 3 parts; 15 never.
        for c in 0..14 {
            let _ = cover.get(c).get(15 - c).fill_(5.0);
        }
        let _ = cover.get(14).get(0).fill_(1.0);
        let _ = cover.get(14).get(1).fill_(3.0);
        assert_eq!(model.carry_codes(&cover), 15);
        let (old, new) = (&before.token_embed.ws, &model.token_embed.ws);
        for c in 0..14 {
            assert!(close(&new.get(c), &old.get(15 - c)));
            assert!(close(&model.head.ws.get(c), &before.head.ws.get(15 - c)));
        }
        let mixed = old.get(0) * 0.25 + old.get(1) * 0.75;
        assert!(close(&new.get(14), &mixed));
        assert!(close(&new.get(15), &old.mean_dim(0, false, Kind::Float)));
        let (bias, was) = (
            model.head.bs.as_ref().unwrap(),
            before.head.bs.as_ref().unwrap(),
        );
        assert_eq!(bias.double_value(&[15]), was.min().double_value(&[]));
        assert!(bias.double_value(&[15]) <= bias.min().double_value(&[]));
        // The model reads the new ids as it read the old: one frame in old codes, the same frame
        // in new ones, the same logits.
        // The second frame is hidden whole, so its ids do not count.
        let old_ids = Tensor::from_slice(&[15i64, 14, 3, 2, 0, 0, 0, 0]).view([1, 2, 4]);
        let new_ids = Tensor::from_slice(&[0i64, 1, 12, 13, 0, 0, 0, 0]).view([1, 2, 4]);
        let acts = Tensor::zeros([1, 1], (Kind::Int64, Device::Cpu));
        let mask = Tensor::from_slice(&[false, false, false, false, true, true, true, true])
            .view([1, 2, 4]);
        let a = before.forward(&old_ids, &acts, &mask);
        let b = model.forward(&new_ids, &acts, &mask);
        // Logit of new code c is the old model's logit of old code 15 - c.
        let perm = Tensor::from_slice(&[15i64, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
        let a = a.index_select(-1, &perm);
        let b = b.narrow(-1, 0, 14);
        assert!(a.allclose(&b, 1e-4, 1e-4, false));
    }

    #[test]
    fn older_configs_are_latent_action_models_and_game_is_spelled_out() {
        let old: DynamicsConfig = serde_json::from_str(r#"{"vocab_size": 16}"#).unwrap();
        assert_eq!(old.actions, ActionSource::Latent);
        let game: DynamicsConfig = serde_json::from_str(r#"{"actions": "game"}"#).unwrap();
        assert_eq!(game.actions, ActionSource::Game);
        assert!(serde_json::from_str::<DynamicsConfig>(r#"{"actions": "keys"}"#).is_err());
    }

    #[test]
    fn logits_over_the_codebook() {
        let (_vs, model) = tiny();
        let mask = Tensor::rand([2, 5, 4], (Kind::Float, Device::Cpu)).lt(0.5);
        let logits = tch::no_grad(|| model.forward(&ids(2, 5), &actions(2, 4), &mask));
        assert_eq!(logits.size(), [2, 5, 4, 16]);
    }

    #[test]
    fn frame_t_plus_1_sees_action_t_and_not_action_t_plus_1() {
        let (_vs, model) = tiny();
        action_reaches_only_its_frame(&model);
    }

    fn action_reaches_only_its_frame(model: &Dynamics) {
        let _guard = tch::no_grad_guard();
        let (x, a) = (ids(1, 5), actions(1, 4));
        let mask = Tensor::zeros([1, 5, 4], (Kind::Bool, Device::Cpu));
        let _ = mask.narrow(1, 3, 1).fill_(1);
        let base = model.forward(&x, &a, &mask);
        // Change a₂ (index 2), the action applied at frame 3 (index 2) that produced frame 4
        // (index 3).
        let a2 = a.copy();
        a2.narrow(1, 2, 1)
            .copy_(&((a.narrow(1, 2, 1) + 1).remainder(8)));
        let changed = model.forward(&x, &a2, &mask);
        assert!(
            close(&base.narrow(1, 0, 3), &changed.narrow(1, 0, 3)),
            "frames ≤ 3 must ignore a₂"
        );
        assert!(
            !close(&base.select(1, 3), &changed.select(1, 3)),
            "frame 4 must depend on a₂"
        );
        // Change a₃, which produced frame 5: frame 4's logits must not move.
        let a3 = a.copy();
        a3.narrow(1, 3, 1)
            .copy_(&((a.narrow(1, 3, 1) + 1).remainder(8)));
        let changed = model.forward(&x, &a3, &mask);
        assert!(
            close(&base.narrow(1, 0, 4), &changed.narrow(1, 0, 4)),
            "frame 4 must ignore a₃"
        );
    }

    #[test]
    fn changing_a_frame_leaves_earlier_frames_unchanged() {
        let (_vs, model) = tiny();
        let _guard = tch::no_grad_guard();
        let (x, a) = (ids(1, 5), actions(1, 4));
        let mask = Tensor::zeros([1, 5, 4], (Kind::Bool, Device::Cpu));
        let base = model.forward(&x, &a, &mask);
        let x2 = x.copy();
        x2.narrow(1, 2, 1)
            .copy_(&((x.narrow(1, 2, 1) + 1).remainder(16)));
        let changed = model.forward(&x2, &a, &mask);
        assert!(close(&base.narrow(1, 0, 2), &changed.narrow(1, 0, 2)));
        assert!(!close(&base.select(1, 2), &changed.select(1, 2)));
    }

    #[test]
    fn cached_frames_equal_full_recompute_past_the_window() {
        let (_vs, model) = tiny();
        cache_matches_recompute(&model);
    }

    fn cache_matches_recompute(model: &Dynamics) {
        let _guard = tch::no_grad_guard();
        let frames = 20; // context 6: the window slides 14 times
        let (x, a) = (ids(2, frames), actions(2, frames - 1));
        let mask = Tensor::rand([2, frames, 4], (Kind::Float, Device::Cpu)).lt(0.5);
        // Full recompute: every frame's logits with that frame partly masked and the past
        // visible, in one pass per frame over the whole history.
        let mut cache = model.new_cache(2);
        for t in 0..frames {
            let visible = Tensor::zeros([2, t + 1, 4], (Kind::Bool, Device::Cpu));
            visible.select(1, t).copy_(&mask.select(1, t));
            let full = model
                .forward(&x.narrow(1, 0, t + 1), &a.narrow(1, 0, t), &visible)
                .select(1, t);
            let action = (t > 0).then(|| a.select(1, t - 1));
            let step = model.frame_logits(
                &mut cache,
                &x.select(1, t),
                &mask.select(1, t),
                action.as_ref(),
            );
            let diff = f64::try_from((step - full).abs().max()).unwrap();
            assert!(diff < 1e-4, "frame {t}: {diff}");
            model.push_frame(&mut cache, &x.select(1, t), action.as_ref());
        }
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn context_noise_swaps_visible_tokens_for_others_of_the_same_clip() {
        let ids = Tensor::randint(16, [64, 5, 4], (tch::Kind::Int64, Device::Cpu));
        let mask = Tensor::rand([64, 5, 4], (tch::Kind::Float, Device::Cpu)).lt(0.5);
        // Off: the clips as recorded.
        assert!(noisy_context(&ids, &mask, Rows::whole(64), 0.0).equal(&ids));
        tch::manual_seed(5);
        let input = noisy_context(&ids, &mask, Rows::whole(64), 0.6);
        let changed = input.ne_tensor(&ids);
        // Hidden tokens are never touched (the mask token replaces them anyway).
        assert_eq!(
            i64::try_from(changed.logical_and(&mask).sum(tch::Kind::Int64)).unwrap(),
            0
        );
        // About a quarter of the visible ones change: a rate of 0.3 on average, less the donors
        // that happen to hold the same id (1 in 16 here).
        let visible = f64::try_from(mask.logical_not().sum(tch::Kind::Float)).unwrap();
        let share = f64::try_from(changed.sum(tch::Kind::Float)).unwrap() / visible;
        assert!((0.2..0.36).contains(&share), "{share}");
        // Every replacement is a token of its own clip.
        for b in 0..64 {
            let own: Vec<i64> = Vec::try_from(ids.get(b).flatten(0, -1)).unwrap();
            let got: Vec<i64> = Vec::try_from(input.get(b).flatten(0, -1)).unwrap();
            assert!(got.iter().all(|id| own.contains(id)), "clip {b}");
        }
        // The loss reads the noisy input and still scores the true tokens: a model that copies
        // the frame before is worse off with it.
        let (_vs, model) = tiny();
        let actions = Tensor::zeros([64, 4], (tch::Kind::Int64, Device::Cpu));
        let loss = |noise: f64| {
            tch::manual_seed(7);
            let context = ContextRead {
                noise,
                ..ContextRead::AS_RECORDED
            };
            let out = model.loss_scrolled(&ids, &actions, None, Rows::whole(64), context);
            f64::try_from(out.loss).unwrap()
        };
        let (clean, noisy) = (loss(0.0), loss(0.6));
        assert!(noisy.is_finite() && noisy != clean, "{clean} {noisy}");
        assert_eq!(loss(0.0), clean, "without noise the loss is as before");
    }

    #[test]
    fn whole_context_clips_read_every_frame_before_a_cut() {
        let device = Device::Cpu;
        // None picked: nothing whole; every clip picked: frames 0..cut whole, cut in 1..T−1.
        let none = whole_frames(256, 6, Rows::whole(256), 0.0, device);
        assert_eq!(i64::try_from(none.sum(Kind::Int64)).unwrap(), 0);
        tch::manual_seed(3);
        let all = whole_frames(256, 6, Rows::whole(256), 1.0, device).squeeze_dim(-1);
        let mut cuts = [0usize; 6];
        for b in 0..256 {
            let row: Vec<bool> = Vec::try_from(all.get(b)).unwrap();
            let cut = row.iter().take_while(|&&w| w).count();
            assert!(
                row[cut..].iter().all(|&w| !w),
                "whole frames come first: {row:?}"
            );
            cuts[cut] += 1;
        }
        assert_eq!(cuts[0], 0, "the first frame is always read whole");
        assert!(
            cuts[1..].iter().all(|&n| n > 25),
            "every cut drawn: {cuts:?}"
        );
        // A share picks about that share of the clips.
        let half = whole_frames(1000, 6, Rows::whole(1000), 0.5, device);
        let picked = f64::try_from(half.select(1, 0).sum(Kind::Float)).unwrap();
        assert!((400.0..600.0).contains(&picked), "{picked}");
        // Read whole, a clip scores fewer tokens, and the loss reads the frames it shows.
        let (_vs, model) = tiny();
        let ids = Tensor::randint(16, [64, 5, 4], (Kind::Int64, device));
        let actions = Tensor::zeros([64, 4], (Kind::Int64, device));
        let rate = |context: ContextRead| {
            let out = model.loss_scrolled(&ids, &actions, None, Rows::whole(64), context);
            assert!(out.metrics.loss.is_finite());
            out.metrics.mask_rate
        };
        // Hidden: about 0.75 of frames 2..5 under the Genie mask, 0.75 × 5/8 read whole.
        let (recorded, whole) = (rate(ContextRead::AS_RECORDED), rate(ContextRead::WHOLE));
        assert!(whole < recorded * 0.8, "{recorded} {whole}");
    }

    #[test]
    fn own_context_puts_the_models_guess_where_the_mask_hid_the_past() {
        let device = Device::Cpu;
        let (_vs, model) = tiny();
        let ids = Tensor::randint(16, [8, 5, 4], (Kind::Int64, device));
        let actions = Tensor::randint(8, [8, 4], (Kind::Int64, device));
        let hidden = Tensor::rand([8, 5, 4], (Kind::Float, device)).lt(0.6);
        let _ = hidden.select(1, 0).fill_(0);
        // Frames 0..3 of the first four clips are the model's own past.
        let own = Tensor::zeros([8, 5, 1], (Kind::Bool, device));
        let _ = own.narrow(0, 0, 4).narrow(1, 0, 3).fill_(1);
        let input = model.own_past(&ids, &actions, &hidden, &own);
        let guess = model.forward(&ids, &actions, &hidden).argmax(-1, false);
        let guessed = hidden.logical_and(&own.expand([8, 5, 4], false));
        assert!(
            input
                .masked_select(&guessed)
                .equal(&guess.masked_select(&guessed))
        );
        let kept = guessed.logical_not();
        assert!(input.masked_select(&kept).equal(&ids.masked_select(&kept)));
        // An untrained model guesses wrong, so the past read does change.
        assert!(i64::try_from(guessed.sum(Kind::Int64)).unwrap() > 0);
        assert!(!input.equal(&ids));
        // Read whole as its own past, a clip scores the tokens from the cut on.
        let out = model.loss_scrolled(&ids, &actions, None, Rows::whole(8), ContextRead::OWN);
        assert!(out.metrics.loss.is_finite());
        assert!(out.metrics.mask_rate < 0.75, "{}", out.metrics.mask_rate);
    }

    #[test]
    fn whole_and_own_context_must_be_shares() {
        for bad in [-0.1, 1.5, f64::NAN] {
            let cfg = DynamicsConfig {
                whole_context: bad,
                ..tiny_config()
            };
            assert!(cfg.validate().is_err(), "{bad}");
            let cfg = DynamicsConfig {
                own_context: bad,
                ..tiny_config()
            };
            assert!(cfg.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn context_noise_must_be_a_share_below_one() {
        for bad in [-0.1, 1.0, f64::NAN] {
            let cfg = DynamicsConfig {
                context_noise: bad,
                ..tiny_config()
            };
            assert!(cfg.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn change_weight_reweights_only_tokens_that_changed() {
        let (vs, plain) = tiny();
        let cfg = DynamicsConfig {
            change_weight: 10.0,
            ..tiny_config()
        };
        let mut weighted_vs = VarStore::new(Device::Cpu);
        let weighted = Dynamics::new(weighted_vs.root(), &cfg);
        weighted_vs.copy(&vs).unwrap();
        let actions = Tensor::zeros([2, 2], (tch::Kind::Int64, Device::Cpu));
        let loss = |m: &Dynamics, ids: &Tensor| {
            tch::manual_seed(7);
            f64::try_from(m.loss(ids, &actions).loss).unwrap()
        };
        // Nothing changes: the weighting is uniform, the loss the same.
        let still =
            Tensor::randint(16, [2, 1, 4], (tch::Kind::Int64, Device::Cpu)).repeat([1, 3, 1]);
        assert!((loss(&plain, &still) - loss(&weighted, &still)).abs() < 1e-5);
        // One token changes in frames 1 and 2: it now weighs 11 times the others.
        let moving = still.copy();
        let mut token = moving.narrow(1, 1, 2).narrow(2, 0, 1);
        token.copy_(&((&token + 1).remainder(16)));
        assert!((loss(&plain, &moving) - loss(&weighted, &moving)).abs() > 1e-4);
    }
}
