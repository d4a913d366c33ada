//! Where a run's clips come from: the platformer playing in memory or shards from `genie data`,
//! each rank of a data-parallel run reading its own rows of every step; and the held-out clips
//! it is evaluated on.

use rand::{Rng, SeedableRng};
use tch::Device;

use super::folder::TrainState;
use super::run::{Batch, batch_from_u8};
use crate::data::{
    ClipStream, DataError, Dataset, EVAL_SEED_START, PlayStyle, Share, generate_clip_played,
};
use crate::game::{DEFAULT_DIFFICULTY, FRAME_BYTES, FRAME_SIZE, GameConfig};

/// `[B, T, 64, 64, 3]`.
fn shape(batch: usize, clip_len: usize) -> [i64; 5] {
    let frame = FRAME_SIZE as i64;
    [batch as i64, clip_len as i64, frame, frame, 3]
}

/// What a resumed run's clips are seeded with beside `--seed`: a resumed run must not replay the
/// clips it has already seen.
pub fn resume_seed(state: &TrainState) -> u64 {
    state.tokenizer_steps.wrapping_mul(31)
        ^ state.lam_steps.wrapping_mul(131)
        ^ state.dynamics_steps.wrapping_mul(1031)
        ^ state.decoder_steps.wrapping_mul(10037)
}

/// `clips` held-out clips (rounded up to whole batches) played on levels from
/// [`EVAL_SEED_START`] up, the same for every run of `game`.
pub fn platformer_held_out(
    game: GameConfig,
    clip_len: usize,
    batch: usize,
    clips: usize,
    device: Device,
) -> Vec<Batch> {
    (0..clips.div_ceil(batch))
        .map(|i| {
            let (mut frames, mut actions) = (Vec::new(), Vec::new());
            for j in 0..batch {
                let k = (i * batch + j) as u64;
                let (level, style) = (EVAL_SEED_START + k, PlayStyle::default());
                let clip =
                    generate_clip_played(level, DEFAULT_DIFFICULTY, clip_len, k, style, game);
                frames.extend_from_slice(&clip.frames);
                actions.extend_from_slice(&clip.actions);
            }
            batch_from_u8(frames, actions, shape(batch, clip_len), device)
        })
        .collect()
}

/// Up to `clips` held-out clips of imported video: imported video is held out by file, in the
/// `held-out/` split beside its training split. `None` where there is no such split with clips of
/// `clip_len` frames.
pub fn imported_held_out(
    train_split: &Dataset,
    clip_len: usize,
    batch: usize,
    clips: usize,
    device: Device,
) -> Result<Option<(Vec<Batch>, Dataset)>, DataError> {
    let beside = train_split.dir().parent().map(|p| p.join("held-out"));
    let Some(Ok(held)) = beside.as_deref().map(Dataset::open) else {
        return Ok(None);
    };
    if held.clip_len() < clip_len {
        return Ok(None);
    }
    let n = clips.min(held.len());
    let mut batches = Vec::new();
    for first in (0..n / batch).map(|i| i * batch) {
        let (mut frames, mut actions) = (Vec::new(), Vec::new());
        for i in first..first + batch {
            let clip = held.get(i)?;
            frames.extend_from_slice(&clip.frames[..clip_len * FRAME_BYTES]);
            actions.extend_from_slice(&clip.actions[..clip_len]);
        }
        batches.push(batch_from_u8(
            frames,
            actions,
            shape(batch, clip_len),
            device,
        ));
    }
    Ok(Some((batches, held)))
}

/// Batches of `share.batch` clips of `clip_len` frames from shards, each from a random clip at a
/// random start: every rank draws the whole step's clips from the common `seed` and reads its
/// own rows. The dataset must hold clips at least `clip_len` long (checked by the caller).
pub fn shard_batches(
    dataset: Dataset,
    clip_len: usize,
    seed: u64,
    share: Share,
    device: Device,
) -> impl FnMut() -> Batch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let batch = share.batch;
    move || {
        let mut frames = Vec::with_capacity(batch * clip_len * FRAME_BYTES);
        let mut actions = Vec::with_capacity(batch * clip_len);
        for row in 0..batch * share.world {
            let (index, start) = (
                rng.random_range(0..dataset.len()),
                rng.random_range(0..=dataset.clip_len() - clip_len),
            );
            if row / batch != share.rank {
                continue;
            }
            let clip = dataset
                .get(index)
                .expect("shards were checked when the dataset opened");
            frames.extend_from_slice(
                &clip.frames[start * FRAME_BYTES..(start + clip_len) * FRAME_BYTES],
            );
            actions.extend_from_slice(&clip.actions[start..start + clip_len]);
        }
        batch_from_u8(frames, actions, shape(batch, clip_len), device)
    }
}

/// Batches of `share.batch` clips played in memory on levels `0..levels` (see [`ClipStream`]).
pub fn platformer_batches(
    levels: u64,
    clip_len: usize,
    seed: u64,
    (style, game): (PlayStyle, GameConfig),
    share: Share,
    device: Device,
) -> impl FnMut() -> Batch {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let stream = ClipStream::shared(0..levels, clip_len, seed, workers, style, game, share);
    move || {
        let (frames, actions) = stream.next_batch(share.batch);
        batch_from_u8(frames, actions, shape(share.batch, clip_len), device)
    }
}
