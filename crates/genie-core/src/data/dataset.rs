//! Reading a dataset: the manifest and every shard header checked on open, clips read from
//! the shards on demand without loading whole shards.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorInfo};

use super::DataError;
use super::clip::Clip;
use super::spec::{FORMAT_VERSION, MANIFEST, Manifest};
use crate::game::{Action, FRAME_BYTES, FRAME_SIZE};

/// Frames per clip a dataset may hold, far above any clip genie makes or trains on: a manifest
/// past it is damaged, and its clip length would size every read.
pub const MAX_CLIP_LEN: usize = 1 << 16;

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
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset, DataError> {
        let dir = dir.as_ref();
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
        let manifest: Manifest = crate::json::parse(text.as_bytes())
            .map_err(|e| bad(format!("not a valid manifest: {e}")))?;
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
        if !(1..=MAX_CLIP_LEN).contains(&manifest.clip_len) {
            return Err(bad(format!(
                "clip_len is {}, expected 1 to {MAX_CLIP_LEN}",
                manifest.clip_len
            )));
        }
        let listed = manifest
            .shards
            .iter()
            .try_fold(0usize, |sum, s| sum.checked_add(s.episodes));
        if listed != Some(manifest.episodes) {
            return Err(bad(format!(
                "the shards list {} episodes but the manifest says {}",
                listed.map_or("more than 2⁶⁴".into(), |n| n.to_string()),
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
            // Sizes come from the manifest and the header: multiplied with a check, so a huge
            // count is refused, not wrapped around.
            let bytes = shape
                .iter()
                .try_fold(info.dtype.bitsize() / 8, |n, &d| n.checked_mul(d));
            if b < a || Some(b - a) != bytes || data_at.saturating_add(b as u64) > file_len {
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
        // Action ids must name actions (in unlabelled video: be the one id of none).
        let mut actions = vec![0; n * l];
        file.seek(SeekFrom::Start(actions_at))
            .and_then(|_| file.read_exact(&mut actions))
            .map_err(DataError::io(path))?;
        let named = |a: u8| match m.labelled {
            true => Action::from_u8(a).is_some(),
            false => a == super::import::NO_ACTION,
        };
        if let Some(&bad_id) = actions.iter().find(|&&a| !named(a)) {
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
