//! Datasets on disk: safetensors shards plus `manifest.json`, written with all cores and read
//! back clip by clip without loading whole shards.
//!
//! A shard `shard-00000.safetensors` holds `frames` u8 `[n, L, 64, 64, 3]`, `actions` u8
//! `[n, L]` and `level_seeds` u64 `[n]`. Episode `i` of a dataset plays level `seed + i`. The
//! manifest is written last, so a folder without one is an unfinished dataset.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use safetensors::tensor::{Dtype, TensorInfo, TensorView};
use serde::{Deserialize, Serialize};

use super::clip::{Clip, generate_clip_with};
use super::{DataError, EVAL_SEED_START};
use crate::game::rng::Rng;
use crate::game::{Action, FRAME_BYTES, FRAME_SIZE};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub episodes: usize,
    /// Frames per episode, `L`.
    pub clip_len: usize,
    /// First level seed; episode `i` plays level `seed + i`.
    pub seed: u64,
    /// Evaluation data: level seeds must be ≥ [`EVAL_SEED_START`].
    pub held_out: bool,
    pub difficulty: f32,
    /// Episodes per shard.
    pub shard_size: usize,
    /// Worker threads; 0 means all cores.
    pub threads: usize,
    /// Replace a dataset already in the output folder.
    pub overwrite: bool,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            episodes: 1,
            clip_len: 16,
            seed: 0,
            held_out: false,
            difficulty: crate::game::DEFAULT_DIFFICULTY,
            shard_size: 256,
            threads: 0,
            overwrite: false,
        }
    }
}

impl DataSpec {
    /// Checks the sizes and that the level seeds stay on their side of [`EVAL_SEED_START`].
    pub fn validate(&self) -> Result<(), DataError> {
        if self.episodes == 0 {
            return Err(DataError::NoEpisodes);
        }
        if self.clip_len == 0 {
            return Err(DataError::NoFrames);
        }
        if self.shard_size == 0 {
            return Err(DataError::NoShardSize);
        }
        if !(0.0..=1.0).contains(&self.difficulty) {
            return Err(DataError::Difficulty(self.difficulty));
        }
        let last =
            self.seed
                .checked_add(self.episodes as u64 - 1)
                .ok_or(DataError::SeedOverflow {
                    seed: self.seed,
                    episodes: self.episodes,
                })?;
        if self.held_out && self.seed < EVAL_SEED_START {
            return Err(DataError::NotHeldOut { seed: self.seed });
        }
        if !self.held_out && last >= EVAL_SEED_START {
            return Err(DataError::HeldOutOverlap {
                first: self.seed,
                last,
            });
        }
        Ok(())
    }

    fn shards(&self) -> usize {
        self.episodes.div_ceil(self.shard_size)
    }
}

/// `manifest.json`: what a dataset folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// `[height, width, channels]`.
    pub frame_size: [usize; 3],
    pub clip_len: usize,
    pub episodes: usize,
    pub seed: u64,
    pub held_out: bool,
    pub difficulty: f32,
    /// Name of each action id, in id order.
    pub action_names: Vec<String>,
    pub shards: Vec<ShardEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub episodes: usize,
}

fn shard_name(i: usize) -> String {
    format!("shard-{i:05}.safetensors")
}

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
        let clip = generate_clip_with(level, spec.difficulty, len, player_seed(spec.seed, i));
        frames.extend_from_slice(&clip.frames);
        actions.extend_from_slice(&clip.actions);
        seeds.extend_from_slice(&level.to_le_bytes());
        bar.inc(1);
    }
    let path = out.join(shard_name(s));
    let fail = |reason: String| DataError::Shard {
        path: path.clone(),
        reason,
    };
    let f = FRAME_SIZE;
    let tensors = vec![
        (
            "frames",
            view(Dtype::U8, vec![n, len, f, f, 3], &frames, &path)?,
        ),
        ("actions", view(Dtype::U8, vec![n, len], &actions, &path)?),
        ("level_seeds", view(Dtype::U64, vec![n], &seeds, &path)?),
    ];
    let meta = HashMap::from([("format".to_string(), "genie-platformer-clips".to_string())]);
    safetensors::tensor::serialize_to_file(tensors, Some(meta), &path)
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

/// A dataset folder opened for reading; clips are read from the shards on demand.
#[derive(Debug, Clone)]
pub struct Dataset {
    dir: PathBuf,
    manifest: Manifest,
    shards: Vec<ShardFile>,
}

#[derive(Debug, Clone)]
struct ShardFile {
    path: PathBuf,
    /// Index of its first clip in the dataset.
    first: usize,
    level_seeds: Vec<u64>,
    /// Absolute byte offsets of the two arrays in the file.
    frames_at: u64,
    actions_at: u64,
}

impl Dataset {
    /// Opens `dir`, checking the manifest and every shard's header (names, dtypes, shapes,
    /// sizes) against it.
    pub fn open(dir: &Path) -> Result<Dataset, DataError> {
        let path = dir.join(MANIFEST);
        let bad = |reason: String| DataError::Manifest {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(
                "missing: not a dataset folder, or `genie data` did not finish (it writes the \
                 manifest last)"
                    .into(),
            ),
            _ => bad(format!("cannot read: {e}")),
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a valid manifest: {e}")))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} (this genie reads {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        if manifest.frame_size != [FRAME_SIZE, FRAME_SIZE, 3] {
            return Err(bad(format!(
                "frame size {:?}, expected [64, 64, 3]",
                manifest.frame_size
            )));
        }
        if manifest.clip_len == 0 {
            return Err(bad("clip_len is 0".into()));
        }
        let listed: usize = manifest.shards.iter().map(|s| s.episodes).sum();
        if listed != manifest.episodes {
            return Err(bad(format!(
                "the shards list {listed} episodes but the manifest says {}",
                manifest.episodes
            )));
        }
        let mut shards = Vec::with_capacity(manifest.shards.len());
        let mut first = 0;
        for entry in &manifest.shards {
            if entry.file.contains(['/', '\\']) || entry.file.starts_with("..") {
                return Err(bad(format!(
                    "shard name {:?} is not a plain file name",
                    entry.file
                )));
            }
            let shard = ShardFile::open(&dir.join(&entry.file), entry.episodes, &manifest, first)?;
            first += entry.episodes;
            shards.push(shard);
        }
        Ok(Dataset {
            dir: dir.into(),
            manifest,
            shards,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of clips.
    pub fn len(&self) -> usize {
        self.manifest.episodes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames per clip, `L`.
    pub fn clip_len(&self) -> usize {
        self.manifest.clip_len
    }

    /// Clip `i`, read from its shard.
    pub fn get(&self, i: usize) -> Result<Clip, DataError> {
        if i >= self.len() {
            return Err(DataError::Index {
                index: i,
                len: self.len(),
            });
        }
        let s = self.shards.partition_point(|s| s.first <= i) - 1;
        let shard = &self.shards[s];
        let local = (i - shard.first) as u64;
        let len = self.clip_len() as u64;
        let mut file = File::open(&shard.path).map_err(DataError::io(&shard.path))?;
        let mut frames = vec![0; len as usize * FRAME_BYTES];
        let mut actions = vec![0; len as usize];
        let mut read = |at: u64, buf: &mut [u8]| {
            file.seek(SeekFrom::Start(at))
                .and_then(|_| file.read_exact(buf))
                .map_err(DataError::io(&shard.path))
        };
        read(
            shard.frames_at + local * len * FRAME_BYTES as u64,
            &mut frames,
        )?;
        read(shard.actions_at + local * len, &mut actions)?;
        Ok(Clip {
            level_seed: shard.level_seeds[local as usize],
            frames,
            actions,
        })
    }

    /// Every clip in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<Clip, DataError>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl ShardFile {
    fn open(path: &Path, n: usize, m: &Manifest, first: usize) -> Result<ShardFile, DataError> {
        let bad = |reason: String| DataError::Shard {
            path: path.into(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let file_len = file.metadata().map_err(DataError::io(path))?.len();
        let mut len8 = [0u8; 8];
        file.read_exact(&mut len8)
            .map_err(|_| bad("too short to be a safetensors file".into()))?;
        let header_len = u64::from_le_bytes(len8);
        if header_len > 100_000_000 || 8 + header_len > file_len {
            return Err(bad(format!(
                "not a safetensors file (header length {header_len}, file length {file_len})"
            )));
        }
        let mut header = vec![0; header_len as usize];
        file.read_exact(&mut header).map_err(DataError::io(path))?;
        let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
        let data_at = 8 + header_len;
        let (l, f) = (m.clip_len, FRAME_SIZE);
        let info = |name: &str, dtypes: &[Dtype], shape: Vec<usize>| {
            let value = header
                .get(name)
                .ok_or_else(|| bad(format!("no tensor {name:?}")))?;
            let info: TensorInfo = serde_json::from_value(value.clone())
                .map_err(|e| bad(format!("tensor {name:?}: {e}")))?;
            if !dtypes.contains(&info.dtype) || info.shape != shape {
                return Err(bad(format!(
                    "tensor {name:?} is {:?} {:?}, expected {:?} {shape:?}",
                    info.dtype, info.shape, dtypes[0]
                )));
            }
            let (a, b) = info.data_offsets;
            let bytes = shape.iter().product::<usize>() * info.dtype.bitsize() / 8;
            if b < a || b - a != bytes || data_at + b as u64 > file_len {
                return Err(bad(format!(
                    "tensor {name:?} data {a}..{b} does not fit its shape or the file"
                )));
            }
            Ok((data_at + a as u64, info.dtype))
        };
        let (frames_at, _) = info("frames", &[Dtype::U8], vec![n, l, f, f, 3])?;
        let (actions_at, _) = info("actions", &[Dtype::U8], vec![n, l])?;
        let (seeds_at, _) = info("level_seeds", &[Dtype::U64, Dtype::I64], vec![n])?;
        let mut seeds = vec![0; n * 8];
        file.seek(SeekFrom::Start(seeds_at))
            .and_then(|_| file.read_exact(&mut seeds))
            .map_err(DataError::io(path))?;
        let level_seeds = seeds
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        // Action ids must name actions.
        let mut actions = vec![0; n * l];
        file.seek(SeekFrom::Start(actions_at))
            .and_then(|_| file.read_exact(&mut actions))
            .map_err(DataError::io(path))?;
        if let Some(&bad_id) = actions.iter().find(|&&a| Action::from_u8(a).is_none()) {
            return Err(bad(format!(
                "action id {bad_id} is not one of the 8 actions"
            )));
        }
        Ok(ShardFile {
            path: path.into(),
            first,
            level_seeds,
            frames_at,
            actions_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation_guards_the_held_out_range() {
        let ok = DataSpec {
            episodes: 10,
            ..DataSpec::default()
        };
        assert!(ok.validate().is_ok());
        let edge = DataSpec {
            seed: EVAL_SEED_START - 10,
            ..ok.clone()
        };
        assert!(edge.validate().is_ok());
        let over = DataSpec {
            seed: EVAL_SEED_START - 9,
            ..ok.clone()
        };
        assert!(matches!(
            over.validate(),
            Err(DataError::HeldOutOverlap { .. })
        ));
        let held = DataSpec {
            held_out: true,
            ..ok.clone()
        };
        assert!(matches!(held.validate(), Err(DataError::NotHeldOut { .. })));
        let held = DataSpec {
            held_out: true,
            seed: EVAL_SEED_START,
            ..ok.clone()
        };
        assert!(held.validate().is_ok());
        for (spec, want) in [
            (
                DataSpec {
                    episodes: 0,
                    ..ok.clone()
                },
                "--episodes",
            ),
            (
                DataSpec {
                    clip_len: 0,
                    ..ok.clone()
                },
                "--frames-per-episode",
            ),
            (
                DataSpec {
                    shard_size: 0,
                    ..ok.clone()
                },
                "--shard-size",
            ),
            (
                DataSpec {
                    difficulty: 2.0,
                    ..ok.clone()
                },
                "--difficulty",
            ),
        ] {
            let msg = spec.validate().unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
        }
    }
}
