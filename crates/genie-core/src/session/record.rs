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
//! Both logs are flushed after every frame (its event line is ~100 bytes), so a killed process
//! or a full disk loses at most the frame being written: reading back keeps every complete frame
//! that has its event line.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::prompt::{FRAME_SIDE, MAX_PROMPT_FRAMES, decode_limits, save_png};
use crate::model::maskgit::SamplerConfig;

/// Bytes of one 64×64 RGB frame.
pub const FRAME_BYTES: usize = (FRAME_SIDE * FRAME_SIDE * 3) as usize;
/// libtorch threads a recording may name (it sets replay's thread count).
const MAX_THREADS: usize = 4096;

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

/// The MaskGIT settings as a recording stores them (in `start.json` and in each step that changed
/// them): the sampler itself is [`SamplerConfig`]; this is its form in the file, kept as older
/// recordings wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecordedSampler {
    pub steps: u32,
    pub temperature: f32,
    /// [`SamplerConfig::confidence_noise`]. Absent from recordings made before it was stored:
    /// replay then keeps the checkpoint's (genie.json is covered by the checkpoint hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_noise: Option<f64>,
    /// [`SamplerConfig::camera_temperature`]. Absent from recordings made before it was stored:
    /// replay keeps the checkpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_temperature: Option<f64>,
}

impl RecordedSampler {
    /// The settings of `cfg`, every field stored.
    pub fn of(cfg: &SamplerConfig) -> Self {
        Self {
            steps: cfg.steps as u32,
            temperature: cfg.temperature as f32,
            confidence_noise: Some(cfg.confidence_noise),
            camera_temperature: Some(cfg.camera_temperature),
        }
    }

    /// Settings a sampler can run with (see [`SamplerConfig::validate`]).
    pub fn validate(&self) -> Result<(), String> {
        let mut cfg = SamplerConfig::default();
        self.apply(&mut cfg);
        cfg.validate().map_err(|e| e.to_string())
    }

    /// Sets `cfg` to these settings; fields an older recording lacks keep `cfg`'s value.
    pub fn apply(&self, cfg: &mut SamplerConfig) {
        cfg.steps = self.steps.max(1) as usize;
        cfg.temperature = self.temperature as f64;
        if let Some(noise) = self.confidence_noise {
            cfg.confidence_noise = noise;
        }
        if let Some(camera) = self.camera_temperature {
            cfg.camera_temperature = camera;
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
    pub sampler: Option<RecordedSampler>,
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
    /// Pictures were learnt before they were played (`--learn`), with these options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learn: Option<super::learn::LearnOptions>,
}

impl StartState {
    /// What a reader must refuse before acting on it: a prompt frame count past any context
    /// (it names files to open) and sampler settings no sampler can run with.
    pub fn validate(&self) -> Result<(), String> {
        if self.prompt_frames > MAX_PROMPT_FRAMES {
            return Err(format!(
                "prompt_frames is {}, expected at most {MAX_PROMPT_FRAMES}",
                self.prompt_frames
            ));
        }
        if let Some(s) = &self.sampler {
            s.validate()?;
        }
        if let Some(threads) = self.threads
            && !(1..=MAX_THREADS).contains(&threads)
        {
            return Err(format!("threads is {threads}, expected 1 to {MAX_THREADS}"));
        }
        if let Some(learn) = &self.learn {
            learn.validate()?;
        }
        Ok(())
    }
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
        sampler: Option<RecordedSampler>,
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

/// Where a recorder's bytes go: the folder's files, or in tests a writer that fails like a full
/// disk. Unbuffered: each frame and each event line is written whole and flushed at once.
type Sink = Box<dyn Write + Send>;

/// Appends events and frames to a recording folder as play goes on.
pub struct Recorder {
    dir: PathBuf,
    events: Sink,
    frames: Sink,
    started: Instant,
    count: u64,
}

impl Recorder {
    /// Creates the folder (if needed) and writes the start state and prompt frames.
    pub fn create(dir: &Path, start: &StartState, prompt: &[Vec<u8>]) -> Result<Self, RecordError> {
        Self::create_with(dir, start, prompt, &|path| {
            File::create(path).map(|f| Box::new(f) as Box<dyn Write + Send>)
        })
    }

    /// [`Recorder::create`] with the two logs opened by `open`.
    fn create_with(
        dir: &Path,
        start: &StartState,
        prompt: &[Vec<u8>],
        open: &dyn Fn(&Path) -> std::io::Result<Box<dyn Write + Send>>,
    ) -> Result<Self, RecordError> {
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
            open(&path).map_err(io(&path))
        };
        let now = Instant::now();
        Ok(Self {
            dir: dir.into(),
            events: open("events.jsonl")?,
            frames: open("frames.rgb")?,
            started: now,
            count: 0,
        })
    }

    /// Records one shown frame and the event that produced it.
    pub fn push(&mut self, kind: EventKind, frame: &[u8]) -> Result<(), RecordError> {
        if frame.len() != FRAME_BYTES {
            return Err(RecordError::Invalid {
                path: self.dir.join("frames.rgb"),
                what: format!(
                    "a frame of {} bytes; recordings hold 64×64 RGB frames ({FRAME_BYTES} bytes)",
                    frame.len()
                ),
            });
        }
        let event = Event {
            frame: self.count,
            t_ms: self.started.elapsed().as_millis() as u64,
            kind,
        };
        // Frame first: a reader only trusts frames that also have their event line. Each is
        // flushed at once, so that on a full disk the events are not left behind in a buffer
        // while the frames took the last of the space.
        self.frames
            .write_all(frame)
            .and_then(|()| self.frames.flush())
            .map_err(io(&self.dir.join("frames.rgb")))?;
        let mut line = serde_json::to_vec(&event).expect("event serialises");
        line.push(b'\n');
        self.events
            .write_all(&line)
            .and_then(|()| self.events.flush())
            .map_err(io(&self.dir.join("events.jsonl")))?;
        self.count += 1;
        Ok(())
    }

    /// Records a frame into the recording in `slot`, if any. On a write error (a full disk, a
    /// folder removed) the recording ends and the message to show is returned: play goes on, and
    /// every frame written before the error reads back and replays.
    pub fn push_or_stop(
        slot: &mut Option<Recorder>,
        kind: EventKind,
        frame: &[u8],
    ) -> Option<String> {
        let rec = slot.as_mut()?;
        let error = rec.push(kind, frame).err()?;
        let rec = slot.take()?;
        Some(format!(
            "recording stopped after {} frames ({error}); what was written to {} is kept and \
             replays",
            rec.count,
            rec.dir.display()
        ))
    }

    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.frames
            .flush()
            .map_err(io(&self.dir.join("frames.rgb")))?;
        self.events
            .flush()
            .map_err(io(&self.dir.join("events.jsonl")))?;
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
        let invalid = |e: String| RecordError::Invalid {
            path: start_path.clone(),
            what: format!("bad start state: {e}"),
        };
        // Sessions made with action guidance on replay differently without it.
        let retired = [crate::json::Retired {
            pointer: "/sampler/action_guidance",
            off: "0",
        }];
        crate::json::refuse_retired(text.as_bytes(), &retired).map_err(invalid)?;
        let start: StartState = crate::json::parse(text.as_bytes()).map_err(invalid)?;
        start.validate().map_err(|what| RecordError::Invalid {
            path: start_path.clone(),
            what,
        })?;
        let prompt = (0..start.prompt_frames)
            .map(|i| {
                let path = dir.join(format!("prompt_{i:03}.png"));
                let invalid = |e: &dyn std::fmt::Display| RecordError::Invalid {
                    path: path.clone(),
                    what: e.to_string(),
                };
                let mut reader = image::ImageReader::open(&path)
                    .map_err(|e| invalid(&e))?
                    .with_guessed_format()
                    .map_err(|e| invalid(&e))?;
                reader.limits(decode_limits());
                let img = reader.decode().map_err(|e| invalid(&e))?;
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
            let event = serde_json::from_str::<Event>(line);
            if let Ok(Event {
                kind: EventKind::Step {
                    sampler: Some(s), ..
                },
                ..
            }) = &event
                && let Err(what) = s.validate()
            {
                return Err(RecordError::Invalid {
                    path: events_path,
                    what: format!("line {}: {what}", i + 1),
                });
            }
            match event {
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
            sampler: Some(RecordedSampler {
                steps: 8,
                temperature: 1.0,
                confidence_noise: Some(4.5),
                camera_temperature: Some(1.0),
            }),
            seed: 7,
            level_seed: None,
            prompt_frames: 0,
            threads: None,
            learn: None,
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

    /// Writes to its file until a byte budget shared by both logs runs out, then fails as a
    /// full disk does, after a partial write.
    struct Quota {
        file: File,
        left: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Write for Quota {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            use std::sync::atomic::Ordering;
            let left = self.left.load(Ordering::SeqCst);
            if left == 0 && !buf.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "No space left on device",
                ));
            }
            let n = self.file.write(&buf[..buf.len().min(left)])?;
            self.left.fetch_sub(n, Ordering::SeqCst);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    /// A world model small enough to build in a test, on the 64×64 frames recordings hold,
    /// saved into `dir`: torch's random generator is shared with the tests running beside this
    /// one, so a seed alone does not give two worlds the same weights, loading them does.
    fn small_checkpoint(dir: &Path) {
        use crate::model::{Genie, checkpoint::tests::tiny_game_config};
        std::fs::create_dir_all(dir).unwrap();
        Genie::new(tiny_game_config(), tch::Device::Cpu)
            .unwrap()
            .save(dir)
            .unwrap();
    }

    fn small_dream(dir: &Path) -> crate::session::dream::DreamWorld {
        let genie = crate::model::Genie::load(dir, tch::Device::Cpu).unwrap();
        crate::session::dream::DreamWorld::new(genie, SamplerConfig::default(), 11)
    }

    #[test]
    fn a_full_disk_ends_the_recording_play_goes_on_and_what_was_written_replays() {
        use crate::session::prompt::Prompt;
        use crate::session::{Control, World};
        let dir = tempfile::tempdir().unwrap();
        let rec_dir = dir.path().join("rec");
        // Room for four frames and their events, and part of a fifth frame.
        let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(4 * FRAME_BYTES + 5000));
        let open = |path: &Path| {
            File::create(path).map(|file| {
                Box::new(Quota {
                    file,
                    left: left.clone(),
                }) as Box<dyn Write + Send>
            })
        };
        let prompt = Prompt {
            frames: vec![(0..FRAME_BYTES).map(|i| (i % 251) as u8).collect()],
        };
        let mut slot =
            Some(Recorder::create_with(&rec_dir, &start(), &prompt.frames, &open).unwrap());
        let model = dir.path().join("model");
        small_checkpoint(&model);
        let mut world = small_dream(&model);
        let first = world.reset(&prompt).unwrap();
        let mut shown = vec![first.clone()];
        let mut stopped = None;
        assert!(Recorder::push_or_stop(&mut slot, EventKind::Reset, &first).is_none());
        for i in 0..12u8 {
            let step = world.step(Control::Latent(i % 8)).unwrap();
            let kind = step_kind(step.latent_action);
            if let Some(msg) = Recorder::push_or_stop(&mut slot, kind, &step.frame) {
                assert!(stopped.is_none(), "stopped twice");
                stopped = Some((i, msg));
            }
            shown.push(step.frame);
        }
        // Play went on past the error: twelve steps were made, the recording ended once.
        assert_eq!(shown.len(), 13);
        let (at, msg) = stopped.expect("the quota ran out");
        assert!(slot.is_none());
        assert!(
            msg.contains("recording stopped") && msg.contains("No space left"),
            "{msg}"
        );

        let rec = Recording::open(&rec_dir).unwrap();
        assert!(rec.truncated);
        let n = rec.frames.len();
        assert!(
            (3..=at as usize + 1).contains(&n),
            "{n} frames read back, stopped at {at}"
        );
        assert_eq!(rec.frames, shown[..n]);

        // Replay: a new world from the recorded start and events makes the same frames.
        let mut again = small_dream(&model);
        for (event, stored) in rec.events.iter().zip(&rec.frames) {
            let frame = match &event.kind {
                EventKind::Reset => again
                    .reset(&Prompt {
                        frames: rec.prompt.clone(),
                    })
                    .unwrap(),
                EventKind::Step { latent_action, .. } => {
                    again
                        .step(Control::Latent(latent_action.unwrap()))
                        .unwrap()
                        .frame
                }
                EventKind::Rewind { frames } => again.rewind(*frames).unwrap(),
            };
            assert_eq!(&frame, stored, "frame {}", event.frame);
        }
    }

    fn step_kind(latent: Option<u8>) -> EventKind {
        EventKind::Step {
            game_action: None,
            latent_action: latent,
            sampler: None,
        }
    }

    #[test]
    fn hostile_start_states_and_events_are_refused_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let write = |start: &StartState, events: &str| {
            std::fs::write(
                dir.path().join("start.json"),
                serde_json::to_vec(start).unwrap(),
            )
            .unwrap();
            std::fs::write(dir.path().join("events.jsonl"), events).unwrap();
            std::fs::write(dir.path().join("frames.rgb"), frame(1)).unwrap();
            Recording::open(dir.path()).map(|_| ())
        };
        let ok = r#"{"frame":0,"t_ms":0,"kind":"reset"}"#.to_string() + "\n";
        write(&start(), &ok).unwrap();
        let huge = StartState {
            prompt_frames: 1 << 40,
            ..start()
        };
        let err = write(&huge, &ok).unwrap_err().to_string();
        assert!(
            err.contains("start.json") && err.contains("prompt_frames"),
            "{err}"
        );
        let mut slow = start();
        slow.sampler.as_mut().unwrap().steps = u32::MAX;
        let err = write(&slow, &ok).unwrap_err().to_string();
        assert!(err.contains("steps is 4294967295"), "{err}");
        let learn = StartState {
            learn: Some(crate::session::learn::LearnOptions {
                dynamics_steps: usize::MAX,
                ..Default::default()
            }),
            ..start()
        };
        let err = write(&learn, &ok).unwrap_err().to_string();
        assert!(
            err.contains("start.json") && err.contains("learn:"),
            "{err}"
        );
        let threads = StartState {
            threads: Some(usize::MAX),
            ..start()
        };
        assert!(
            write(&threads, &ok)
                .unwrap_err()
                .to_string()
                .contains("threads")
        );
        let nan = r#"{"frame":0,"t_ms":0,"kind":"step","game_action":null,"latent_action":1,"sampler":{"steps":4,"temperature":-1.0}}"#;
        let err = write(&start(), &format!("{nan}\n{ok}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("events.jsonl") && err.contains("line 1") && err.contains("temperature"),
            "{err}"
        );
    }

    #[test]
    fn sampler_settings_of_older_recordings_keep_the_checkpoints_noise() {
        // Written before confidence noise was stored.
        let old: RecordedSampler =
            serde_json::from_str(r#"{"steps": 4, "temperature": 0.25}"#).unwrap();
        assert_eq!(old.confidence_noise, None);
        let mut cfg = SamplerConfig {
            confidence_noise: 2.0,
            camera_temperature: 0.5,
            ..SamplerConfig::default()
        };
        old.apply(&mut cfg);
        assert_eq!((cfg.steps, cfg.temperature), (4, 0.25));
        assert_eq!((cfg.confidence_noise, cfg.camera_temperature), (2.0, 0.5));

        // New recordings store every field and give it back.
        let mut other = SamplerConfig::default();
        let stored: RecordedSampler =
            serde_json::from_str(&serde_json::to_string(&RecordedSampler::of(&cfg)).unwrap())
                .unwrap();
        stored.apply(&mut other);
        assert_eq!((other.steps, other.temperature), (4, 0.25));
        assert_eq!(
            (other.confidence_noise, other.camera_temperature),
            (2.0, 0.5)
        );

        // A session made with action guidance (since retired) is refused, not replayed wrong.
        let dir = tempfile::tempdir().unwrap();
        drop(Recorder::create(dir.path(), &start(), &[]).unwrap());
        let path = dir.path().join("start.json");
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        json["sampler"]["action_guidance"] = serde_json::json!(1.0);
        std::fs::write(&path, json.to_string()).unwrap();
        let err = Recording::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("action_guidance is 1.0"), "{err}");
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
