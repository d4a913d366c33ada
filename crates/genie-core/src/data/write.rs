//! Writing a dataset: clips generated on all cores, one shard per task, with a progress bar.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::tensor::{Dtype, TensorView};

use super::DataError;
use super::clip::generate_clip_played;
use super::player::PlayStyle;
use super::spec::{DataSpec, FORMAT_VERSION, MANIFEST, Manifest, ShardEntry, shard_name};
use crate::game::rng::Rng;
use crate::game::{Action, FRAME_BYTES, FRAME_SIZE};

/// The scripted player's seed of episode `i`.
fn player_seed(seed: u64, i: usize) -> u64 {
    Rng::derive(seed, i as u64).next_u64()
}

/// Generates the dataset `spec` into the folder `out` (created if missing), one shard per
/// worker task, with a progress bar on stderr when `progress`.
pub fn write_dataset(spec: &DataSpec, out: &Path, progress: bool) -> Result<Manifest, DataError> {
    spec.validate()?;
    let manifest_path = out.join(MANIFEST);
    if manifest_path.exists() && !spec.overwrite {
        return Err(DataError::OutputExists { path: out.into() });
    }
    std::fs::create_dir_all(out).map_err(DataError::io(out))?;
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path).map_err(DataError::io(&manifest_path))?;
    }

    let n_shards = spec.shards();
    let threads = match spec.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .min(n_shards);
    let bar = if progress {
        indicatif::ProgressBar::new(spec.episodes as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} episodes ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let s = next.fetch_add(1, Ordering::Relaxed);
                    if s >= n_shards || first_error.lock().is_ok_and(|e| e.is_some()) {
                        return;
                    }
                    if let Err(e) = write_shard(spec, out, s, &bar) {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        frame_size: [FRAME_SIZE, FRAME_SIZE, 3],
        clip_len: spec.clip_len,
        episodes: spec.episodes,
        seed: spec.seed,
        held_out: spec.held_out,
        difficulty: spec.difficulty,
        game: spec.game,
        labelled: true,
        sources: Vec::new(),
        action_names: Action::ALL.iter().map(|a| a.name().to_string()).collect(),
        shards: (0..n_shards)
            .map(|s| ShardEntry {
                file: shard_name(s),
                episodes: shard_range(spec, s).len(),
            })
            .collect(),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    let tmp = out.join("manifest.json.tmp");
    std::fs::write(&tmp, json + "\n").map_err(DataError::io(&tmp))?;
    std::fs::rename(&tmp, &manifest_path).map_err(DataError::io(&manifest_path))?;
    Ok(manifest)
}

fn shard_range(spec: &DataSpec, s: usize) -> std::ops::Range<usize> {
    s * spec.shard_size..((s + 1) * spec.shard_size).min(spec.episodes)
}

fn write_shard(
    spec: &DataSpec,
    out: &Path,
    s: usize,
    bar: &indicatif::ProgressBar,
) -> Result<(), DataError> {
    let range = shard_range(spec, s);
    let (n, len) = (range.len(), spec.clip_len);
    let mut frames = Vec::with_capacity(n * len * FRAME_BYTES);
    let mut actions = Vec::with_capacity(n * len);
    let mut seeds = Vec::with_capacity(n * 8);
    for i in range {
        let level = spec.seed + i as u64;
        let seed = player_seed(spec.seed, i);
        let style = PlayStyle::default();
        let clip = generate_clip_played(level, spec.difficulty, len, seed, style, spec.game);
        frames.extend_from_slice(&clip.frames);
        actions.extend_from_slice(&clip.actions);
        seeds.extend_from_slice(&level.to_le_bytes());
        bar.inc(1);
    }
    write_shard_file(&out.join(shard_name(s)), n, len, &frames, &actions, &seeds)
}

/// Writes one shard of `n` clips of `len` frames: `frames` u8 [n, len, 64, 64, 3], `actions` u8
/// [n, len], `seeds` (u64 little-endian) [n].
pub(super) fn write_shard_file(
    path: &Path,
    n: usize,
    len: usize,
    frames: &[u8],
    actions: &[u8],
    seeds: &[u8],
) -> Result<(), DataError> {
    let fail = |reason: String| DataError::Shard {
        path: path.into(),
        reason,
    };
    let f = FRAME_SIZE;
    let tensors = vec![
        (
            "frames",
            view(Dtype::U8, vec![n, len, f, f, 3], frames, path)?,
        ),
        ("actions", view(Dtype::U8, vec![n, len], actions, path)?),
        ("level_seeds", view(Dtype::U64, vec![n], seeds, path)?),
    ];
    let meta = HashMap::from([("format".to_string(), "genie-platformer-clips".to_string())]);
    safetensors::tensor::serialize_to_file(tensors, Some(meta), path)
        .map_err(|e| fail(format!("cannot write: {e}")))
}

fn view<'a>(
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'a [u8],
    path: &Path,
) -> Result<TensorView<'a>, DataError> {
    TensorView::new(dtype, shape, data).map_err(|e| DataError::Shard {
        path: path.into(),
        reason: e.to_string(),
    })
}
