//! A world that scrolls by whole token columns (docs/design.md §8, "The scrolling world").
//!
//! A camera that steps one patch keeps every token of the picture, moved one column, and shows
//! one new column. A dynamics model that had to dream that shift itself would have to decide,
//! token by token, whether the whole picture moves: MaskGIT picks each token's likeliest id, and
//! "stays where it was" wins every token while a step comes one frame in five, so the dream never
//! scrolled (docs/experiments.md). Here the dynamics model (with `scroll` in its config) works in
//! the newest frame's view instead: the frames before it are moved by the columns the picture
//! scrolled since, and the columns they never showed are hidden like masked tokens, so it only
//! dreams what moves in the world and the new column. Whether the view steps is a decision of
//! its own, made before each frame by a small [`CameraHead`] that looks at the frame shown (its
//! pixels) and the coming latent action.
//!
//! Where the picture scrolled is read from the frames themselves (a whole-picture shift by one
//! patch, [`column_shifts`]), never from the game's camera: imported video trains the same way.

use rand::Rng;
use tch::nn;
use tch::{Device, Kind, Tensor};

use super::elements::{conv, linear, n};
use super::maskgit::{SamplerConfig, sample_frame};
use super::{DecoderCache, DynamicsCache, Genie};
use crate::eval::measures::horizontal_shift_among;
use crate::game::physics::{DASH_SPEED, SUB};
use crate::game::{CAMERA_STEP, FRAME_SIZE, PLAYER_TOLERANCE};

/// The camera head's choices: the view moves a column left, stays, or moves a column right
/// (class = shift + 1).
pub const SHIFTS: i64 = 3;

/// Channels of the frames the camera head reads (RGB).
pub const HEAD_CHANNELS: i64 = 3;

/// Width of the camera head's hidden layer.
const HIDDEN: i64 = 128;

/// Side of the token grid of a frame of `tokens` tokens (square frames), `None` when it is not
/// a square.
pub fn grid_width(tokens: i64) -> Option<i64> {
    let w = (tokens as f64).sqrt().round() as i64;
    (w > 0 && w * w == tokens).then_some(w)
}

/// Per clip, the columns the view moved between each frame and the next (positive: the view
/// moved right, so the picture moved left), read from the pixels: a whole-picture shift of one
/// patch ([`horizontal_shift_among`], the player left out), else 0.
///
/// `frames`: `batch` clips of `len` RGB frames, u8. The detector reads the game's 64×64 frames;
/// frames of another size read as never scrolled.
pub fn column_shifts(frames: &[u8], batch: usize, len: usize, patch: i64) -> Vec<Vec<i64>> {
    let size = FRAME_SIZE * FRAME_SIZE * 3;
    if frames.len() != batch * len * size || patch <= 0 {
        return vec![vec![0; len.saturating_sub(1)]; batch];
    }
    let patch = patch as i32;
    (0..batch)
        .map(|b| {
            (0..len.saturating_sub(1))
                .map(|t| {
                    let at = |i: usize| &frames[(b * len + i) * size..(b * len + i + 1) * size];
                    let px = horizontal_shift_among(at(t), at(t + 1), PLAYER_TOLERANCE, &[patch]);
                    i64::from(px / patch)
                })
                .collect()
        })
        .collect()
}

/// Every frame of each clip moved into the view of the clip's last frame: `shifts[b][t]` is
/// the columns the view moved from frame t to t+1. Returns the moved ids [B, T, N] (0 where
/// unknown) and where they are unknown [B, T, N] bool: the columns a frame never showed.
pub fn align(ids: &Tensor, shifts: &[Vec<i64>], width: i64) -> (Tensor, Tensor) {
    let (b, t, n) = ids.size3().expect("ids must be [B, T, N]");
    let device = ids.device();
    let flat = Vec::<i64>::try_from(ids.to_device(Device::Cpu).flatten(0, -1)).expect("i64 ids");
    let (mut moved, mut unknown) = (vec![0i64; flat.len()], vec![false; flat.len()]);
    for i in 0..b as usize {
        let row = shifts.get(i).map_or(&[][..], Vec::as_slice);
        // Columns the view moves from frame k to the last frame.
        let mut total = 0i64;
        for k in (0..t as usize).rev() {
            if k + 1 < t as usize {
                total += row.get(k).copied().unwrap_or(0);
            }
            let base = (i * t as usize + k) * n as usize;
            for p in 0..n {
                let (row, col) = (p / width, p % width);
                let from = col + total;
                let at = base + p as usize;
                if (0..width).contains(&from) {
                    moved[at] = flat[base + (row * width + from) as usize];
                } else {
                    unknown[at] = true;
                }
            }
        }
    }
    let shape = [b, t, n];
    (
        Tensor::from_slice(&moved).view(shape).to_device(device),
        Tensor::from_slice(&unknown).view(shape).to_device(device),
    )
}

/// Clips with every frame moved into the view of its clip's last frame, where the picture
/// scrolled by whole camera steps ([`column_shifts`]); the columns a frame never showed are
/// filled from the next frame's, so two frames differ only where the world moved. Clips that
/// never scrolled, and frames that are not the game's 64×64 RGB, come back unchanged.
///
/// # Shapes
/// `frames` [B, T, H, W, C], f32 in [0, 1] or u8 → the same.
pub fn one_view(frames: &Tensor) -> Tensor {
    let size = frames.size();
    let side = FRAME_SIZE as i64;
    if size.len() != 5 || size[1] < 2 || size[2..] != [side, side, HEAD_CHANNELS] {
        return frames.shallow_clone();
    }
    let (b, t) = (size[0], size[1]);
    let bytes = if frames.kind() == Kind::Uint8 {
        frames.shallow_clone()
    } else {
        super::frames_to_u8(frames)
    };
    let bytes = Vec::<u8>::try_from(bytes.to_device(Device::Cpu).flatten(0, -1)).expect("u8");
    let step = i64::from(CAMERA_STEP);
    let shifts = column_shifts(&bytes, b as usize, t as usize, step);
    if shifts.iter().flatten().all(|&s| s == 0) {
        return frames.shallow_clone();
    }
    let clips: Vec<Tensor> = shifts
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let clip = frames.get(i as i64); // [T, H, W, C]
            let mut moved = vec![clip.get(t - 1)];
            // Pixels the view moves from frame k to the last frame.
            let mut px = 0;
            for k in (0..t - 1).rev() {
                px += row[k as usize] * step;
                let (frame, next) = (clip.get(k), moved.last().expect("the last frame"));
                moved.push(match px {
                    0 => frame,
                    _ if px.abs() >= side => next.shallow_clone(),
                    _ if px > 0 => Tensor::cat(
                        &[
                            frame.narrow(1, px, side - px),
                            next.narrow(1, side - px, px),
                        ],
                        1,
                    ),
                    _ => Tensor::cat(&[next.narrow(1, 0, -px), frame.narrow(1, 0, side + px)], 1),
                });
            }
            moved.reverse();
            Tensor::stack(&moved, 0)
        })
        .collect();
    Tensor::stack(&clips, 0)
}

/// One frame's ids [B, N] and unknown mask moved by `shift` columns per row (see [`align`]).
fn shift_frame(ids: &Tensor, unknown: &Tensor, shifts: &[i64], width: i64) -> (Tensor, Tensor) {
    let (b, n) = ids.size2().expect("ids must be [B, N]");
    let ids3 = ids.view([b, 1, n]);
    let rows: Vec<Vec<i64>> = shifts.iter().map(|&s| vec![s, 0]).collect();
    // Two frames, the second unmoved: `align` moves the first by the row's shift.
    let pair = Tensor::cat(&[&ids3, &ids3], 1);
    let (moved, hidden) = align(&pair, &rows, width);
    let was_unknown = Tensor::cat(&[unknown.view([b, 1, n]), unknown.view([b, 1, n])], 1);
    let (was, _) = align(&was_unknown.to_kind(Kind::Int64), &rows, width);
    (
        moved.select(1, 0),
        hidden
            .select(1, 0)
            .logical_or(&was.select(1, 0).to_kind(Kind::Bool)),
    )
}

/// Farthest the player moves sideways in a frame, in the game's sub-pixels (the dash, 3.5 px),
/// and a patch in sub-pixels: a player `d` frames before a step is less than `d` dashes short of
/// where the view steps.
const MOST_PER_FRAME: i64 = DASH_SPEED as i64;
const PATCH: i64 = CAMERA_STEP as i64 * SUB as i64;

/// The camera head's samples from clips: each frame but the last, the action taken from it, and
/// the move the view made before the next frame (class = shift + 1).
///
/// Extra samples teach it to step when the player stands further toward the edge, a state the
/// real game never shows (a dream that missed a step, or whose player ran a little fast): a
/// frame whose view steps `d` frames later (`d` = 0: before the next), moved a column toward
/// that edge when `d` dashes are less than a patch (its player is then past the edge). A column
/// a move vacates wraps around from the other side; the head does not see the edge columns. The
/// moves are read from the pixels.
///
/// `frames` [B, T, H, W, C] f32, `actions` [B, T−1], `patch` the pixels of a column → frames
/// [M, H, W, C], actions [M], classes [M], and how many of the M come first as one sample per
/// frame but the last (`None` when T < 2).
pub fn head_samples(
    frames: &Tensor,
    actions: &Tensor,
    shifts: &[Vec<i64>],
    patch: i64,
) -> Option<(Tensor, Tensor, Tensor, usize)> {
    let size = frames.size();
    let (b, t) = (size[0], size[1] as usize);
    if t < 2 || size.len() != 5 {
        return None;
    }
    // Every frame but the last as it is, then the extras: (row, frame, direction).
    let mut classes = Vec::new();
    let mut extra = Vec::new();
    for row in 0..b as usize {
        let moves: Vec<i64> = (0..t - 1)
            .map(|i| shifts.get(row).and_then(|s| s.get(i)).copied().unwrap_or(0))
            .map(|s| s.clamp(-1, 1))
            .collect();
        for (i, &s) in moves.iter().enumerate() {
            classes.push(s + 1);
            // Less than a patch short of the step's edge after `d` dashes: a patch on, past it.
            if let Some(d) = moves[i..].iter().position(|&m| m != 0)
                && MOST_PER_FRAME * (d as i64) < PATCH
            {
                extra.push((row, i, moves[i + d]));
            }
        }
    }
    let first = classes.len();
    let mut moved = vec![frames.narrow(1, 0, t as i64 - 1).flatten(0, 1)];
    moved.extend(extra.iter().map(|&(row, i, dir)| {
        frames
            .get(row as i64)
            .get(i as i64)
            .roll([dir * patch], [1])
            .unsqueeze(0)
    }));
    let device = frames.device();
    let pairs: Vec<i64> = extra
        .iter()
        .map(|&(row, i, _)| (row * (t - 1) + i) as i64)
        .collect();
    classes.extend(extra.iter().map(|&(_, _, dir)| dir + 1));
    let actions = actions.flatten(0, -1);
    let extra_actions = actions.index_select(0, &Tensor::from_slice(&pairs).to_device(device));
    Some((
        Tensor::cat(&moved, 0),
        Tensor::cat(&[&actions, &extra_actions], 0),
        Tensor::from_slice(&classes).to_device(device),
        first,
    ))
}

/// Channels of each of the camera head's convolutions.
const CONV: [i64; 3] = [16, 32, 32];

/// Parameters of a camera head for a model of `tokens` tokens a frame and `actions` latent
/// actions.
pub fn head_elements(tokens: i64, actions: i64) -> u128 {
    let mut convs = 0;
    let mut inputs = HEAD_CHANNELS;
    for c in CONV {
        convs += conv(inputs, c, 4);
        inputs = c;
    }
    convs + linear(inputs * tokens, HIDDEN) + n(actions) * n(HIDDEN) + linear(HIDDEN, SHIFTS)
}

/// Whether the view steps before the next frame: reads the frame shown, decoded (where the player
/// stands), and the coming latent action (where it goes), and scores the three moves. It reads
/// pixels, not token ids: a dreamed player stands where the real one never stood and is often
/// drawn with codes the real frames rarely use (a smeared trail), and a head that embedded ids
/// did not know it there.
#[derive(Debug)]
pub struct CameraHead {
    convs: Vec<nn::Conv2D>,
    /// Side of the grid the convolutions are pooled to: the token grid's.
    grid: i64,
    features: nn::Linear,
    action_embed: nn::Embedding,
    out: nn::Linear,
    /// [K, actions]: the latents past the learned ones (`DynamicsConfig::blends`).
    blends: Option<Tensor>,
}

impl CameraHead {
    pub fn new(p: nn::Path<'_>, tokens: i64, actions: i64) -> Self {
        let small = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            ..Default::default()
        };
        let stride = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        let mut inputs = HEAD_CHANNELS;
        let convs = CONV
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let conv = nn::conv2d(&p / format!("conv{i}"), inputs, c, 4, stride);
                inputs = c;
                conv
            })
            .collect();
        Self {
            convs,
            grid: grid_width(tokens).unwrap_or(1),
            features: nn::linear(&p / "features", inputs * tokens, HIDDEN, Default::default()),
            action_embed: nn::embedding(&p / "action_embed", actions, HIDDEN, small),
            out: nn::linear(&p / "out", HIDDEN, SHIFTS, Default::default()),
            blends: None,
        }
    }

    /// The head reading latents past the learned ones as `blends` weighs them ([K, actions]).
    pub fn with_blends(self, blends: Option<Tensor>) -> Self {
        Self { blends, ..self }
    }

    /// Scores of the three moves (class = shift + 1).
    ///
    /// # Shapes
    /// `frames` [B, H, W, C] f32 in [0, 1], `action` [B] i64 → [B, 3].
    pub fn forward(&self, frames: &Tensor, action: &Tensor) -> Tensor {
        let (_, _, w, _) = frames.size4().expect("frames must be [B, H, W, C]");
        // Black out the first and last column: a picture moved a column wraps one around there
        // ([`head_samples`]), which the head would learn to spot instead of the player.
        let edge = w / self.grid;
        let x = (0..w)
            .map(|x| f32::from(u8::from(x >= edge && x < w - edge)))
            .collect::<Vec<f32>>();
        let inner = Tensor::from_slice(&x)
            .to_device(frames.device())
            .view([1, 1, w, 1]);
        let mut x = ((frames * inner) - 0.5).permute([0, 3, 1, 2]);
        for conv in &self.convs {
            x = x.apply(conv).relu();
        }
        let x = x
            .adaptive_avg_pool2d([self.grid, self.grid])
            .flatten(1, -1)
            .apply(&self.features);
        (x + super::dynamics::blended_embedding(&self.action_embed, self.blends.as_ref(), action))
            .relu()
            .apply(&self.out)
    }
}

/// Dreams in progress, a batch of them: the context's tokens in the newest frame's view, where
/// they are unknown, the actions between them, and both caches. Every rollout of the world model
/// (play, dream, the measures) goes through it, so a model that scrolls scrolls everywhere.
#[derive(Debug)]
pub struct Rollout {
    /// Token frames in the context window, oldest first, each [B, N].
    ids: Vec<Tensor>,
    /// Where each frame's tokens are unknown (columns it never showed), [B, N] bool.
    unknown: Vec<Tensor>,
    /// `actions[i]` produced `ids[i]`; `None` for a start frame.
    actions: Vec<Option<Tensor>>,
    dynamics: DynamicsCache,
    decoder: DecoderCache,
    /// The newest frame decoded, [B, H, W, C] f32: what the camera head reads (set wherever a
    /// newest frame is decoded).
    shown: Option<Tensor>,
    context: usize,
}

impl Rollout {
    pub fn new(genie: &Genie, batch: i64) -> Self {
        Self {
            ids: Vec::new(),
            unknown: Vec::new(),
            actions: Vec::new(),
            dynamics: genie.dynamics.new_cache(batch),
            decoder: genie.tokenizer.new_decoder_cache(batch),
            shown: None,
            context: genie.config.dynamics.context_frames.max(1) as usize,
        }
    }

    /// Frames in the context.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The newest frame's tokens [B, N].
    pub fn last(&self) -> Option<&Tensor> {
        self.ids.last()
    }

    /// The newest frame as shown, decoded: [B, H, W, C] f32 in [0, 1].
    pub fn shown(&self) -> Option<&Tensor> {
        self.shown.as_ref()
    }

    /// A copy that goes on on its own (a preview).
    pub fn deep_clone(&self) -> Self {
        Self {
            ids: self.ids.iter().map(Tensor::shallow_clone).collect(),
            unknown: self.unknown.iter().map(Tensor::shallow_clone).collect(),
            actions: self
                .actions
                .iter()
                .map(|a| a.as_ref().map(Tensor::shallow_clone))
                .collect(),
            dynamics: self.dynamics.deep_clone(),
            decoder: self.decoder.deep_clone(),
            shown: self.shown.as_ref().map(Tensor::shallow_clone),
            context: self.context,
        }
    }

    /// Starts over from known frames: `ids` [B, T, N] and `actions` [B, T−1] (the actions that
    /// produced frames 2..T), `shifts[b][t]` the columns the view moved from frame t to t+1 (see
    /// [`column_shifts`]; ignored by a model that does not scroll). Returns the decoded frames
    /// [B, T, H, W, C].
    pub fn start(
        &mut self,
        genie: &Genie,
        ids: &Tensor,
        actions: Option<&Tensor>,
        shifts: &[Vec<i64>],
    ) -> Tensor {
        self.ids.clear();
        self.unknown.clear();
        self.actions.clear();
        self.dynamics.clear();
        self.decoder.clear();
        let (ids, unknown) = match grid_width(genie.config.dynamics.tokens_per_frame) {
            Some(width) if genie.config.dynamics.scroll => align(ids, shifts, width),
            _ => (ids.shallow_clone(), ids.zeros_like().to_kind(Kind::Bool)),
        };
        let t = ids.size()[1];
        let (mut all_ids, mut all_unknown, mut all_actions) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..t {
            all_ids.push(ids.select(1, i));
            all_unknown.push(unknown.select(1, i));
            all_actions
                .push((i > 0).then(|| actions.expect("actions for a clip").select(1, i - 1)));
        }
        genie
            .dynamics
            .prefill_hidden(&mut self.dynamics, &all_ids, &all_unknown, &all_actions);
        for ((ids, unknown), action) in all_ids.into_iter().zip(all_unknown).zip(all_actions) {
            self.remember(ids, unknown, action);
        }
        // As `decodable`: where a frame is unknown, the newest frame's tokens.
        let newest = ids.narrow(1, t - 1, 1).expand_as(&ids);
        let frames = genie.tokenizer.prefill_decoder(
            &mut self.decoder,
            &newest.where_self(&unknown, &ids),
            t,
        );
        self.shown = Some(frames.select(1, t - 1));
        frames
    }

    /// Dreams the next frame of every row from `action` [B] i64: the camera head (where the
    /// model has one) first decides whether each row's view steps a column, the context moves
    /// with it, then MaskGIT samples the frame. Returns its tokens [B, N], the columns each row's
    /// view moved, and the decoded frame [B, H, W, C].
    pub fn step<R: Rng>(
        &mut self,
        genie: &Genie,
        action: &Tensor,
        sampler: &SamplerConfig,
        rng: &mut R,
    ) -> (Tensor, Vec<i64>, Tensor) {
        let moves = self.decide_moves(genie, action, sampler.camera_temperature, rng);
        let (ids, frame) = self.step_moving(genie, action, &moves, sampler, rng);
        (ids, moves, frame)
    }

    /// The camera head's move for each row before the frame `action` [B] produces, sampled from
    /// its scores of the newest frame as shown at `temperature` (0: the likeliest); none for a
    /// model without one. One uniform is drawn per row whatever the temperature, so the rest of
    /// a seeded session draws the same numbers.
    fn decide_moves<R: Rng>(
        &self,
        genie: &Genie,
        action: &Tensor,
        temperature: f64,
        rng: &mut R,
    ) -> Vec<i64> {
        let batch = action.size()[0] as usize;
        let (Some(head), Some(shown)) = (genie.dynamics.camera(), self.shown.as_ref()) else {
            return vec![0; batch];
        };
        let scores = tch::no_grad(|| {
            let scores = head.forward(shown, action);
            if temperature > 0.0 {
                (scores / temperature).softmax(-1, Kind::Float)
            } else {
                scores
            }
        });
        let scores =
            Vec::<f32>::try_from(scores.to_device(Device::Cpu).flatten(0, -1)).expect("f32 scores");
        scores
            .chunks(SHIFTS as usize)
            .map(|s| {
                let u: f32 = rng.random();
                if temperature > 0.0 {
                    move_drawn(s, u)
                } else {
                    likeliest_move(s)
                }
            })
            .collect()
    }

    /// [`Rollout::step`] with each row's move given (`moves`, columns: what the camera head
    /// would decide); a model that does not scroll takes none.
    pub fn step_moving<R: Rng>(
        &mut self,
        genie: &Genie,
        action: &Tensor,
        moves: &[i64],
        sampler: &SamplerConfig,
        rng: &mut R,
    ) -> (Tensor, Tensor) {
        let dynamics = &genie.dynamics;
        let batch = action.size()[0];
        let width = grid_width(dynamics.config().tokens_per_frame);
        let moved = dynamics.config().scroll && moves.iter().any(|&s| s != 0);
        if let (true, Some(width)) = (moved, width) {
            for (ids, unknown) in self.ids.iter_mut().zip(&mut self.unknown) {
                (*ids, *unknown) = shift_frame(ids, unknown, moves, width);
            }
            self.recompute_dynamics(genie);
        }
        let tokens = dynamics.config().tokens_per_frame;
        let ids = tch::no_grad(|| {
            let ids = sample_frame(batch, tokens, action.device(), sampler, rng, |ids, mask| {
                dynamics.frame_logits(&mut self.dynamics, ids, mask, Some(action))
            });
            dynamics.push_frame(&mut self.dynamics, &ids, Some(action));
            ids
        });
        let known = ids.zeros_like().to_kind(Kind::Bool);
        self.remember(ids.shallow_clone(), known, Some(action.shallow_clone()));
        let frame = if moved {
            self.redecode(genie)
        } else {
            self.decode_last(genie)
        };
        (ids, frame)
    }

    /// Keeps the last `keep` frames' worth of history (at least one) and recomputes both caches
    /// (a rewind); returns the decoded last frame.
    pub fn truncate(&mut self, genie: &Genie, keep: usize) -> Tensor {
        let keep = keep.clamp(1, self.ids.len().max(1));
        self.ids.truncate(keep);
        self.unknown.truncate(keep);
        self.actions.truncate(keep);
        self.recompute_dynamics(genie);
        self.redecode(genie)
    }

    /// Recomputes the dynamics cache from the history in the newest view.
    fn recompute_dynamics(&mut self, genie: &Genie) {
        genie
            .dynamics
            .prefill_hidden(&mut self.dynamics, &self.ids, &self.unknown, &self.actions);
    }

    fn remember(&mut self, ids: Tensor, unknown: Tensor, action: Option<Tensor>) {
        self.ids.push(ids);
        self.unknown.push(unknown);
        self.actions.push(action);
        if self.ids.len() > self.context {
            let _ = self.ids.remove(0);
            let _ = self.unknown.remove(0);
            self.actions.remove(0);
        }
    }

    /// Decodes the newest frame with the decoder cache, adding it to the cache, and shows it:
    /// [B, H, W, C].
    fn decode_last(&mut self, genie: &Genie) -> Tensor {
        let ids = self.decodable(self.ids.len() - 1);
        let frame = tch::no_grad(|| genie.tokenizer.decode_next(&mut self.decoder, &ids));
        self.shown = Some(frame.shallow_clone());
        frame
    }

    /// Recomputes the decoder cache from the history in the newest view and decodes the newest
    /// frame, and shows it: [B, H, W, C].
    fn redecode(&mut self, genie: &Genie) -> Tensor {
        let ids: Vec<Tensor> = (0..self.ids.len()).map(|i| self.decodable(i)).collect();
        let frame = genie
            .tokenizer
            .prefill_decoder(&mut self.decoder, &Tensor::stack(&ids, 1), 1)
            .squeeze_dim(1);
        self.shown = Some(frame.shallow_clone());
        frame
    }

    /// Frame `i`'s tokens for the decoder: where unknown, the newest frame's token at that place
    /// (what the view shows now stood there before, as far as anything shows).
    fn decodable(&self, i: usize) -> Tensor {
        let last = self.ids.last().expect("a started rollout has a frame");
        last.where_self(&self.unknown[i], &self.ids[i])
    }
}

/// The move (−1, 0 or 1 column) the uniform draw `u` picks from the three probabilities `p`.
fn move_drawn(p: &[f32], u: f32) -> i64 {
    if u < p[0] {
        -1
    } else if u < p[0] + p[1] {
        0
    } else {
        1
    }
}

/// The move of the highest of the three `scores` (none on a tie with it).
fn likeliest_move(scores: &[f32]) -> i64 {
    let best = if scores[0] > scores[1] && scores[0] > scores[2] {
        0
    } else if scores[2] > scores[1] {
        2
    } else {
        1
    };
    best - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::tests::tiny_config;
    use crate::model::dynamics::Scrolled;
    use crate::model::{Rows, SamplerRng};
    use rand::SeedableRng;

    #[test]
    fn the_camera_move_is_drawn_from_its_probabilities_or_the_likeliest_at_temperature_0() {
        let p = [0.2, 0.5, 0.3];
        assert_eq!(move_drawn(&p, 0.1), -1);
        assert_eq!(move_drawn(&p, 0.69), 0);
        assert_eq!(move_drawn(&p, 0.71), 1);
        assert_eq!(likeliest_move(&[2.0, 1.0, 0.5]), -1);
        assert_eq!(likeliest_move(&[0.1, 1.0, 0.5]), 0);
        assert_eq!(likeliest_move(&[0.1, 1.0, 3.0]), 1);
        // A tie with staying put stays put.
        assert_eq!(likeliest_move(&[1.0, 1.0, 1.0]), 0);
    }

    fn ids(values: &[i64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).view(shape)
    }

    #[test]
    fn a_scrolled_clip_is_read_in_its_last_view() {
        use rand::Rng;
        // A textured world 96 px wide seen through the 64 px view at 0, 8, 8 and 16 px: moved
        // into the last view (its never-shown columns filled from the frames after it), every
        // frame is the last one.
        let (side, wide) = (FRAME_SIZE, FRAME_SIZE + 32);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let world: Vec<u8> = (0..side * wide * 3).map(|_| rng.random()).collect();
        let view = |x0: usize| -> Vec<u8> {
            (0..side)
                .flat_map(|y| world[(y * wide + x0) * 3..(y * wide + x0 + side) * 3].to_vec())
                .collect()
        };
        let clip =
            |offsets: &[usize]| -> Vec<u8> { offsets.iter().flat_map(|&x| view(x)).collect() };
        let frames = |bytes: Vec<u8>, t: i64| {
            Tensor::from_slice(&bytes).view([1, t, side as i64, side as i64, 3])
        };
        let right = frames(clip(&[0, 8, 8, 16]), 4);
        let moved = one_view(&super::super::frames_to_f32(&right));
        let moved = super::super::frames_to_u8(&moved);
        for k in 0..3 {
            assert!(moved.get(0).get(k).equal(&right.get(0).get(3)), "frame {k}");
        }
        // The view going back left: frames before it move the other way.
        let left = frames(clip(&[16, 8, 8]), 3);
        let moved = one_view(&left);
        assert!(moved.get(0).get(0).equal(&left.get(0).get(2)));
        // A clip whose view never moved, and frames of another size, are left as they are.
        let still = frames(clip(&[8, 8, 8]), 3);
        assert!(one_view(&still).equal(&still));
        let small = Tensor::zeros([1, 2, 16, 16, 3], (Kind::Uint8, Device::Cpu));
        assert!(one_view(&small).equal(&small));
    }

    #[test]
    fn a_clip_is_moved_into_its_last_view_and_what_it_never_showed_is_unknown() {
        // Two clips of three 2×3 frames; the first clip's view moves right a column after frame 0
        // and again after frame 1, the second's left a column after frame 1.
        let frame = |k: i64| (0..6).map(|p| 10 * k + p).collect::<Vec<i64>>();
        let clip: Vec<i64> = (0..3).flat_map(frame).collect();
        let both = [clip.clone(), clip].concat();
        let (moved, unknown) = align(&ids(&both, &[2, 3, 6]), &[vec![1, 1], vec![0, -1]], 3);
        let moved = Vec::<i64>::try_from(moved.flatten(0, -1)).unwrap();
        let unknown = Vec::<bool>::try_from(unknown.flatten(0, -1)).unwrap();
        // Clip 1, frame 0 moved two columns: its last column becomes the first.
        assert_eq!(&moved[0..6], &[2, 0, 0, 5, 0, 0]);
        assert_eq!(&unknown[0..6], &[false, true, true, false, true, true]);
        assert_eq!(&moved[6..12], &[11, 12, 0, 14, 15, 0]);
        assert_eq!(&moved[12..18], &frame(2)[..]);
        assert!(!unknown[12..18].iter().any(|&u| u));
        // Clip 2, frame 0 and 1 moved a column the other way.
        assert_eq!(&moved[18..24], &[0, 0, 1, 0, 3, 4]);
        assert_eq!(&unknown[18..24], &[true, false, false, true, false, false]);
        assert_eq!(&moved[30..36], &frame(2)[..]);
    }

    #[test]
    fn a_frame_moved_twice_keeps_what_was_unknown() {
        let (moved, unknown) = shift_frame(
            &ids(&[1, 2, 3, 4], &[1, 4]),
            &Tensor::from_slice(&[false, false, true, false]).view([1, 4]),
            &[-1],
            2,
        );
        assert_eq!(
            Vec::<i64>::try_from(moved.flatten(0, -1)).unwrap(),
            [0, 1, 0, 3]
        );
        // The new first column is unknown, and so is token 3 where the unknown token 2 went.
        assert_eq!(
            Vec::<bool>::try_from(unknown.flatten(0, -1)).unwrap(),
            [true, false, true, true]
        );
    }

    #[test]
    fn frames_before_a_step_moved_toward_its_edge_are_taught_to_step() {
        // One clip of 6 frames of one row of three one-pixel columns, frame k's pixels 10k +
        // column; the view steps left between frames 4 and 5, and a second clip never moves.
        let frames: Vec<f32> = (0..6)
            .flat_map(|k| (0..3).map(move |p| (10 * k + p) as f32))
            .collect();
        let clip = Tensor::from_slice(&frames).view([1, 6, 1, 3, 1]);
        let both = Tensor::cat(&[&clip, &clip], 0);
        let actions = ids(&[1, 2, 3, 4, 5, 0, 0, 0, 0, 0], &[2, 5]);
        let shifts = vec![vec![0, 0, 0, 0, -1], vec![0; 5]];
        let (moved, acts, classes, first) = head_samples(&both, &actions, &shifts, 1).unwrap();
        // One sample per frame but the last, with the action taken from it, then the extras: a
        // dash (3.5 px) a frame, so frames up to 2 before the step qualify (7 px < 8 px).
        assert_eq!(first, 10);
        assert_eq!(
            Vec::<i64>::try_from(&acts).unwrap(),
            [1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 3, 4, 5]
        );
        assert_eq!(
            Vec::<i64>::try_from(&classes).unwrap(),
            [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0]
        );
        let sample = |i: i64| Vec::<f32>::try_from(moved.get(i).flatten(0, -1)).unwrap();
        // Frames are read as they are.
        assert_eq!(sample(1), [10.0, 11.0, 12.0]);
        assert_eq!(sample(4), [40.0, 41.0, 42.0]);
        // Frames 2 to 4 moved a column toward the left edge (the picture moved left, as a view
        // that stayed a column behind shows it; the column vacated wraps around) are past it.
        assert_eq!(sample(10), [21.0, 22.0, 20.0]);
        assert_eq!(sample(12), [41.0, 42.0, 40.0]);
    }

    #[test]
    fn a_picture_moved_by_a_patch_reads_as_one_column_and_a_still_one_as_none() {
        let side = FRAME_SIZE;
        // A picture with something to see in every column; the player's colour nowhere.
        let pixel = |x: usize, y: usize| {
            [
                (x * 37 % 200) as u8,
                (y * 11 % 150) as u8,
                ((x * y) % 90) as u8,
            ]
        };
        let view = |from: usize| -> Vec<u8> {
            (0..side)
                .flat_map(|y| (0..side).flat_map(move |x| pixel(x + from, y)))
                .collect()
        };
        let clip = [view(16), view(24), view(24), view(16)].concat();
        assert_eq!(column_shifts(&clip, 1, 4, 8), vec![vec![1, 0, -1]]);
        // Frames of another size than the detector reads never scrolled.
        assert_eq!(column_shifts(&[0; 16 * 16 * 3 * 2], 1, 2, 8), vec![vec![0]]);
    }

    #[test]
    fn a_model_that_scrolls_learns_its_camera_and_rolls_out() {
        let mut config = tiny_config();
        config.dynamics.scroll = true;
        tch::manual_seed(2);
        let genie = Genie::new(config.clone(), Device::Cpu).unwrap();
        let head = genie.dynamics.camera().expect("a camera head");
        let (b, t, n) = (2, 3, config.dynamics.tokens_per_frame);
        let clip = Tensor::randint(
            config.dynamics.vocab_size,
            [b, t, n],
            (Kind::Int64, Device::Cpu),
        );
        let actions = Tensor::randint(8, [b, t - 1], (Kind::Int64, Device::Cpu));
        let shifts = vec![vec![1, 0], vec![0, -1]];
        let size = config.tokenizer.image_size;
        let pixels = Tensor::rand([b, t, size, size, 3], (Kind::Float, Device::Cpu));
        let scrolled = Scrolled {
            shifts: &shifts,
            frames: &pixels,
            patch: config.tokenizer.patch,
        };
        let out = genie.dynamics.loss_scrolled(
            &clip,
            &actions,
            Some(scrolled),
            Rows::whole(b),
            crate::model::dynamics::ContextRead::AS_RECORDED,
        );
        assert!(out.metrics.camera_loss.is_some_and(f64::is_finite));
        // One move each way among the frames as they are (the extra samples not counted).
        let scrolled = Scrolled {
            shifts: &shifts,
            frames: &pixels,
            patch: config.tokenizer.patch,
        };
        let (_, calls) = genie.dynamics.camera_loss(&actions, scrolled).unwrap();
        assert_eq!(calls.moves, [1.0, 1.0]);
        assert!(calls.called.iter().all(|c| [0.0, 1.0].contains(c)));
        assert_eq!(
            calls.recall(),
            Some((calls.called[0] + calls.called[1]) / 2.0)
        );
        // The unknown tokens are hidden and unscored: fewer scored than the plain loss's share.
        assert!(out.metrics.mask_rate < 1.0);
        out.loss.backward();
        let grad = genie
            .dynamics_vs
            .variables()
            .into_iter()
            .filter(|(name, _)| name.starts_with("camera"))
            .map(|(_, v)| f64::try_from(v.grad().abs().sum(Kind::Float)).unwrap())
            .sum::<f64>();
        assert!(grad > 0.0, "the camera head learns");
        assert_eq!(
            head.forward(&pixels.select(1, 0), &actions.select(1, 0))
                .size(),
            [b, SHIFTS]
        );

        // A rollout starts, steps (the head deciding each row's move) and rewinds.
        let mut rollout = Rollout::new(&genie, b);
        let frames = rollout.start(&genie, &clip, Some(&actions), &shifts);
        assert_eq!(frames.size()[..2], [b, t]);
        let mut rng = SamplerRng::seed_from_u64(1);
        let mut moves = Vec::new();
        for _ in 0..12 {
            let (next, shift, frame) = rollout.step(
                &genie,
                &actions.select(1, 0),
                &SamplerConfig::default(),
                &mut rng,
            );
            assert_eq!(next.size(), [b, n]);
            assert_eq!(frame.size()[0], b);
            moves.extend(shift);
        }
        // An untrained head scores the three moves alike: some rows move.
        assert!(moves.iter().any(|&m| m != 0) && moves.iter().all(|m| m.abs() <= 1));
        // At camera temperature 0 the head's likeliest move, whatever the draw.
        let action = actions.select(1, 0);
        let likeliest = |seed: u64| {
            rollout.decide_moves(&genie, &action, 0.0, &mut SamplerRng::seed_from_u64(seed))
        };
        let scores = head.forward(rollout.shown.as_ref().unwrap(), &action);
        let best: Vec<i64> = Vec::try_from(scores.argmax(-1, false) - 1).unwrap();
        assert_eq!(likeliest(1), best);
        assert_eq!(likeliest(2), best);
        assert_eq!(rollout.len(), config.dynamics.context_frames as usize);
        let _ = rollout.truncate(&genie, 2);
        assert_eq!(rollout.len(), 2);
    }
}
