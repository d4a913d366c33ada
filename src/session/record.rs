//! Recordings: a session folder holding the start state and, appended as play goes on, the
//! per-frame event log and the frames shown (after TetaNES's replay: a start state plus an event
//! log, so a session can be regenerated, not only watched).
//!
//! Layout of a recording folder:
//! - `start.json`: [`StartState`]: prompt, checkpoint hash, sampler settings, seed;
//! - `prompt_NNN.png`: the prompt frames;
//! - `events.jsonl`: one [`Event`] per line, each describing how the next frame came to be;
//! - `frames.rgb`: the frames shown, raw 64×64 RGB, one after another (frame *i* follows event *i*).
//!
//! Both logs are flushed at least once a second, so a killed process loses at most the last
//! second; reading back keeps every complete frame that has its event line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::prompt::{FRAME_SIDE, save_png};
use crate::model::maskgit::SamplerConfig;

/// Bytes of one 64×64 RGB frame.
pub const FRAME_BYTES: usize = (FRAME_SIDE * FRAME_SIDE * 3) as usize;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording {path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("recording folder {0} already holds a recording (start.json); choose another folder")]
    Exists(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.into(),
        source,
    }
}

/// MaskGIT settings a recording was made with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplerSettings {
    pub steps: u32,
    pub temperature: f32,
    /// [`SamplerConfig::confidence_noise`]. Absent from recordings made before it was stored:
    /// replay then keeps the checkpoint's (genie.json is covered by the checkpoint hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_noise: Option<f64>,
    /// [`SamplerConfig::action_guidance`]; absent as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_guidance: Option<f64>,
}

impl SamplerSettings {
    /// The settings of `cfg`, every field stored.
    pub fn of(cfg: &SamplerConfig) -> Self {
        Self {
            steps: cfg.steps as u32,
            temperature: cfg.temperature as f32,
            confidence_noise: Some(cfg.confidence_noise),
            action_guidance: Some(cfg.action_guidance),
        }
    }

    /// Sets `cfg` to these settings; fields an older recording lacks keep `cfg`'s value.
    pub fn apply(&self, cfg: &mut SamplerConfig) {
        cfg.steps = self.steps.max(1) as usize;
        cfg.temperature = self.temperature as f64;
        if let Some(noise) = self.confidence_noise {
            cfg.confidence_noise = noise;
        }
        if let Some(w) = self.action_guidance {
            cfg.action_guidance = w;
        }
    }
}

/// Everything needed, besides the event log, to regenerate a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartState {
    /// Format version of the recording folder.
    pub version: u32,
    /// What produced the frames: `"dream"` (the world model) or `"game"` (the real platformer).
    pub world: String,
    /// Checkpoint folder and a hash of its files, so replay can refuse other weights.
    pub checkpoint: Option<String>,
    pub checkpoint_hash: Option<String>,
    pub sampler: Option<SamplerSettings>,
    /// Seed of the session's random generator (MaskGIT sampling).
    pub seed: u64,
    /// Level seed when the prompt is a level of our platformer.
    pub level_seed: Option<u64>,
    /// Number of `prompt_NNN.png` files.
    pub prompt_frames: usize,
    /// libtorch threads the frames were made with: float sums, and so the sampled tokens, can
    /// depend on it.
    #[serde(default)]
    pub threads: Option<usize>,
}

/// What happened before a frame was shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The world (re)started from the prompt.
    Reset,
    /// One step with a game action (by name) or a raw latent action.
    Step {
        game_action: Option<String>,
        latent_action: Option<u8>,
        /// MaskGIT settings changed during play (absent: the start state's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sampler: Option<SamplerSettings>,
    },
    /// Stepped back this many frames (the frame shown is the one returned to).
    Rewind { frames: usize },
}

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Index of the frame this event produced in `frames.rgb`.
    pub frame: u64,
    /// Milliseconds since the recording started.
    pub t_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Appends events and frames to a recording folder as play goes on.
pub struct Recorder {
    dir: PathBuf,
    events: BufWriter<File>,
    frames: BufWriter<File>,
    started: Instant,
    last_flush: Instant,
    count: u64,
}

impl Recorder {
    /// Creates the folder (if needed) and writes the start state and prompt frames.
    pub fn create(dir: &Path, start: &StartState, prompt: &[Vec<u8>]) -> Result<Self, RecordError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let start_path = dir.join("start.json");
        if start_path.exists() {
            return Err(RecordError::Exists(dir.into()));
        }
        for (i, frame) in prompt.iter().enumerate() {
            let path = dir.join(format!("prompt_{i:03}.png"));
            save_png(&path, frame).map_err(|e| RecordError::Invalid {
                path,
                what: e.to_string(),
            })?;
        }
        let start = StartState {
            prompt_frames: prompt.len(),
            ..start.clone()
        };
        let json = serde_json::to_vec_pretty(&start).expect("start state serialises");
        std::fs::write(&start_path, json).map_err(io(&start_path))?;
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path).map(BufWriter::new).map_err(io(&path))
        };
        let now = Instant::now();
        Ok(Self {
            dir: dir.into(),
            events: open("events.jsonl")?,
            frames: open("frames.rgb")?,
            started: now,
            last_flush: now,
            count: 0,
        })
    }

    /// Records one shown frame and the event that produced it.
    pub fn push(&mut self, kind: EventKind, frame: &[u8]) -> Result<(), RecordError> {
        assert_eq!(frame.len(), FRAME_BYTES, "frame size");
        let event = Event {
            frame: self.count,
            t_ms: self.started.elapsed().as_millis() as u64,
            kind,
        };
        // Frame first: a reader only trusts frames that also have their event line.
        self.frames
            .write_all(frame)
            .map_err(io(&self.dir.join("frames.rgb")))?;
        let mut line = serde_json::to_vec(&event).expect("event serialises");
        line.push(b'\n');
        self.events
            .write_all(&line)
            .map_err(io(&self.dir.join("events.jsonl")))?;
        self.count += 1;
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.frames
            .flush()
            .map_err(io(&self.dir.join("frames.rgb")))?;
        self.events
            .flush()
            .map_err(io(&self.dir.join("events.jsonl")))?;
        self.last_flush = Instant::now();
        Ok(())
    }

    pub fn frames_recorded(&self) -> u64 {
        self.count
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A recording read back: every complete frame with its event.
#[derive(Debug, Clone)]
pub struct Recording {
    pub start: StartState,
    pub prompt: Vec<Vec<u8>>,
    pub events: Vec<Event>,
    pub frames: Vec<Vec<u8>>,
    /// True when the tail was cut (a killed process): the incomplete part was dropped.
    pub truncated: bool,
}

impl Recording {
    pub fn open(dir: &Path) -> Result<Self, RecordError> {
        if !dir.is_dir() {
            return Err(RecordError::Invalid {
                path: dir.into(),
                what: "no such recording folder".into(),
            });
        }
        let start_path = dir.join("start.json");
        let text = std::fs::read_to_string(&start_path).map_err(io(&start_path))?;
        let start: StartState = serde_json::from_str(&text).map_err(|e| RecordError::Invalid {
            path: start_path.clone(),
            what: format!("bad start state: {e}"),
        })?;
        let prompt = (0..start.prompt_frames)
            .map(|i| {
                let path = dir.join(format!("prompt_{i:03}.png"));
                let img = image::open(&path).map_err(|e| RecordError::Invalid {
                    path: path.clone(),
                    what: e.to_string(),
                })?;
                let rgb = img.to_rgb8();
                if rgb.dimensions() != (FRAME_SIDE, FRAME_SIDE) {
                    return Err(RecordError::Invalid {
                        path,
                        what: format!(
                            "prompt frame is {}×{}, expected 64×64",
                            rgb.width(),
                            rgb.height()
                        ),
                    });
                }
                Ok(rgb.into_raw())
            })
            .collect::<Result<Vec<_>, _>>()?;

        let events_path = dir.join("events.jsonl");
        let file = File::open(&events_path).map_err(io(&events_path))?;
        let mut events = Vec::new();
        let mut truncated = false;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(io(&events_path))?;
        let last = lines.len().saturating_sub(1);
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(e) if e.frame == events.len() as u64 => events.push(e),
                Ok(e) => {
                    return Err(RecordError::Invalid {
                        path: events_path,
                        what: format!("line {}: event for frame {} out of order", i + 1, e.frame),
                    });
                }
                // A cut final line is what a killed process leaves; anything else is damage.
                Err(_) if i == last => truncated = true,
                Err(e) => {
                    return Err(RecordError::Invalid {
                        path: events_path,
                        what: format!("line {}: {e}", i + 1),
                    });
                }
            }
        }

        let frames_path = dir.join("frames.rgb");
        let mut bytes = Vec::new();
        File::open(&frames_path)
            .map_err(io(&frames_path))?
            .read_to_end(&mut bytes)
            .map_err(io(&frames_path))?;
        let complete = bytes.len() / FRAME_BYTES;
        truncated |= bytes.len() % FRAME_BYTES != 0 || complete != events.len();
        let n = complete.min(events.len());
        events.truncate(n);
        let frames = bytes
            .chunks_exact(FRAME_BYTES)
            .take(n)
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            start,
            prompt,
            events,
            frames,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn start() -> StartState {
        StartState {
            version: 1,
            world: "dream".into(),
            checkpoint: Some("checkpoints".into()),
            checkpoint_hash: Some("abc".into()),
            sampler: Some(SamplerSettings {
                steps: 8,
                temperature: 1.0,
                confidence_noise: Some(4.5),
                action_guidance: None,
            }),
            seed: 7,
            level_seed: None,
            prompt_frames: 0,
            threads: None,
        }
    }

    fn frame(i: u8) -> Vec<u8> {
        vec![i; FRAME_BYTES]
    }

    fn step(latent: u8) -> EventKind {
        EventKind::Step {
            game_action: Some("right".into()),
            latent_action: Some(latent),
            sampler: None,
        }
    }

    #[test]
    fn sampler_settings_of_older_recordings_keep_the_checkpoints_noise() {
        // Written before confidence noise and action guidance were stored.
        let old: SamplerSettings =
            serde_json::from_str(r#"{"steps": 4, "temperature": 0.25}"#).unwrap();
        assert_eq!(old.confidence_noise, None);
        let mut cfg = SamplerConfig {
            confidence_noise: 2.0,
            action_guidance: 1.0,
            ..SamplerConfig::default()
        };
        old.apply(&mut cfg);
        assert_eq!((cfg.steps, cfg.temperature), (4, 0.25));
        assert_eq!((cfg.confidence_noise, cfg.action_guidance), (2.0, 1.0));

        // New recordings store every field and give it back.
        let mut other = SamplerConfig::default();
        let stored: SamplerSettings =
            serde_json::from_str(&serde_json::to_string(&SamplerSettings::of(&cfg)).unwrap())
                .unwrap();
        stored.apply(&mut other);
        assert_eq!((other.steps, other.temperature), (4, 0.25));
        assert_eq!((other.confidence_noise, other.action_guidance), (2.0, 1.0));
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), &start(), &[frame(9)]).unwrap();
        rec.push(EventKind::Reset, &frame(9)).unwrap();
        rec.push(step(2), &frame(1)).unwrap();
        rec.push(EventKind::Rewind { frames: 1 }, &frame(9))
            .unwrap();
        drop(rec);
        let r = Recording::open(dir.path()).unwrap();
        assert_eq!(
            r.start,
            StartState {
                prompt_frames: 1,
                ..start()
            }
        );
        assert_eq!(r.prompt, vec![frame(9)]);
        assert_eq!(r.frames, vec![frame(9), frame(1), frame(9)]);
        assert_eq!(r.events[1].kind, step(2));
        assert!(!r.truncated);
    }

    #[test]
    fn a_killed_recording_keeps_every_complete_frame() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), &start(), &[]).unwrap();
        for i in 0..5 {
            rec.push(step(i), &frame(i)).unwrap();
        }
        rec.flush().unwrap();
        std::mem::forget(rec); // as if killed: no drop, no final flush
        // The kill landed mid-write: half a frame and half an event line more.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("frames.rgb"))
            .unwrap();
        f.write_all(&frame(5)[..1000]).unwrap();
        let mut e = OpenOptions::new()
            .append(true)
            .open(dir.path().join("events.jsonl"))
            .unwrap();
        e.write_all(br#"{"frame":5,"t_ms":3,"ki"#).unwrap();

        let r = Recording::open(dir.path()).unwrap();
        assert!(r.truncated);
        assert_eq!(r.frames.len(), 5);
        assert_eq!(r.events.len(), 5);
        assert_eq!(r.frames[4], frame(4));
    }

    #[test]
    fn damaged_recordings_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = Recording::open(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such recording folder"), "{err}");

        let rec = Recorder::create(dir.path(), &start(), &[]).unwrap();
        drop(rec);
        std::fs::write(dir.path().join("start.json"), "{").unwrap();
        let err = Recording::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("start.json") && err.contains("bad start state"),
            "{err}"
        );
    }

    #[test]
    fn refuses_to_overwrite_a_recording() {
        let dir = tempfile::tempdir().unwrap();
        drop(Recorder::create(dir.path(), &start(), &[]).unwrap());
        assert!(matches!(
            Recorder::create(dir.path(), &start(), &[]),
            Err(RecordError::Exists(_))
        ));
    }
}
