//! The training log: one JSON object per line (JSONL), appended and flushed per record so that
//! a killed run keeps its curve and `--resume` continues the same file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("metrics log {path}: {source}")]
pub struct LogError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path` for appending (creating it and its folder).
    pub fn append(path: &Path) -> Result<Self, LogError> {
        let err = |source| LogError {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(Self {
            path: path.into(),
            file,
        })
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), LogError> {
        let mut line = serde_json::to_vec(record).expect("metrics serialise");
        line.push(b'\n');
        self.file.write_all(&line).map_err(|source| LogError {
            path: self.path.clone(),
            source,
        })
    }

    /// Reads every complete record of a log (a cut last line is skipped).
    pub fn read(path: &Path) -> Result<Vec<serde_json::Value>, LogError> {
        let file = File::open(path).map_err(|source| LogError {
            path: path.into(),
            source,
        })?;
        Ok(BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_skipping_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/x/metrics.jsonl");
        let mut log = MetricsLog::append(&path).unwrap();
        log.write(&serde_json::json!({"step": 1, "loss": 0.5}))
            .unwrap();
        drop(log);
        let mut log = MetricsLog::append(&path).unwrap();
        log.write(&serde_json::json!({"step": 2, "loss": 0.25}))
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"step\":")
            .unwrap();
        let rows = MetricsLog::read(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["loss"], 0.25);
    }
}
