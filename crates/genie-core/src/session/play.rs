//! A session being played, without its window: the engines (the dream, and the real game beside
//! it), the frame each shows, pacing (real time, or a step per key press), recording, the latent
//! preview and key bindings saved beside the checkpoint. The player (`genie::app`) draws it and
//! feeds it keys; nothing here waits on a model.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::engine::{Command, Engine, Output};
use super::hero::HeroChoice;
use super::prompt::Prompt;
use super::record::{RecordedSampler, Recorder, StartState};
use super::{Control, Frame, World};
use crate::game::Action;
use crate::model::SamplerConfig;

/// How a session plays.
pub struct PlaySettings {
    pub prompt: Prompt,
    /// Frames of a picture dropped in (or a recording continued): the model's context.
    pub prompt_frames: usize,
    /// The hero step of a picture dropped in.
    pub drop_hero: HeroChoice,
    /// Steps per second in real-time mode.
    pub target_fps: f64,
    /// Start in step-per-key-press mode.
    pub step_mode: bool,
    /// Record from the start into this folder (and into it again on the next toggle).
    pub record: Option<PathBuf>,
    /// Template of a recording's start state (seed, checkpoint, sampler).
    pub start_state: StartState,
    pub sampler: Option<SamplerConfig>,
    /// What each latent action of the model (learned, then blends) was calibrated to mean (by
    /// game action name).
    pub latent_meanings: Vec<Option<String>>,
    /// How many of those the model learned; the rest are blends (`dynamics.blends`).
    pub learned_latents: usize,
    /// For tests and screenshots: print a line on stdout once this many frames were shown.
    pub announce_after: Option<u64>,
}

/// Frames shown per second over the last second.
#[derive(Default)]
struct Fps {
    times: VecDeque<Instant>,
}

impl Fps {
    fn tick(&mut self) {
        let now = Instant::now();
        self.times.push_back(now);
        while self
            .times
            .front()
            .is_some_and(|t| now - *t > Duration::from_secs(1))
        {
            self.times.pop_front();
        }
    }

    fn rate(&self) -> f64 {
        match (self.times.front(), self.times.back()) {
            (Some(a), Some(b)) if self.times.len() > 1 => {
                (self.times.len() - 1) as f64 / (*b - *a).as_secs_f64().max(1e-6)
            }
            _ => 0.0,
        }
    }
}

pub struct PlaySession {
    pub settings: PlaySettings,
    /// The dream first, then the real game when shown side by side.
    engines: Vec<Engine>,
    /// The frame each engine shows now.
    frames: Vec<Option<Frame>>,
    pub step_mode: bool,
    pub sampler: Option<SamplerConfig>,
    recorder: Option<Recorder>,
    last_step: Instant,
    /// Dreamed frames shown so far.
    pub shown: u64,
    fps: Fps,
    /// The last dreamed frame's model time.
    pub model_ms: f64,
    /// The latent action of the last dreamed frame.
    pub latent: Option<u8>,
    /// A line for the overlay: what just happened.
    pub message: Option<String>,
    /// A frame per latent action from the frame it was asked at (`preview`), and that frame's
    /// index.
    preview: Option<(Vec<Frame>, u64)>,
    /// Key presses waiting for a step in step-per-key-press mode.
    pending_presses: u32,
    /// When the dream was asked to learn a picture (`--learn`), until its first frame comes.
    learning_since: Option<Instant>,
}

impl PlaySession {
    /// Starts the worlds' engines on `settings.prompt` (and a recording where asked).
    pub fn new(
        settings: PlaySettings,
        dream: Box<dyn World>,
        real: Option<Box<dyn World>>,
    ) -> Self {
        let mut engines = vec![Engine::spawn(dream)];
        engines.extend(real.map(Engine::spawn));
        for engine in &mut engines {
            engine.send(Command::Reset(settings.prompt.clone()));
        }
        let mut session = PlaySession {
            step_mode: settings.step_mode,
            sampler: settings.sampler,
            frames: vec![None; engines.len()],
            engines,
            settings,
            recorder: None,
            last_step: Instant::now(),
            shown: 0,
            fps: Fps::default(),
            model_ms: 0.0,
            latent: None,
            message: None,
            preview: None,
            pending_presses: 0,
            learning_since: None,
        };
        if session.learns(&session.settings.prompt) {
            session.message = Some("learning the picture, a minute or two".into());
            session.learning_since = Some(Instant::now());
        }
        if let Some(dir) = session.settings.record.clone() {
            session.start_recording(dir);
        }
        session
    }

    /// Whether the dream learns `prompt` before its first frame (`--learn`, a single picture).
    fn learns(&self, prompt: &Prompt) -> bool {
        self.settings.start_state.learn.is_some() && prompt.frames.len() == 1
    }

    /// How many worlds are shown side by side.
    pub fn worlds(&self) -> usize {
        self.engines.len()
    }

    /// The frame each world shows now (`None` until its first).
    pub fn frames(&self) -> &[Option<Frame>] {
        &self.frames
    }

    /// Dreamed frames shown per second.
    pub fn fps(&self) -> f64 {
        self.fps.rate()
    }

    /// The folder being recorded into.
    pub fn recording(&self) -> Option<&Path> {
        self.recorder.as_ref().map(Recorder::dir)
    }

    /// The latent preview that arrived since the last call, and the frame it starts from.
    pub fn take_preview(&mut self) -> Option<(Vec<Frame>, u64)> {
        self.preview.take()
    }

    fn send_all(&mut self, command: Command) {
        for engine in &mut self.engines {
            engine.send(command.clone());
        }
    }

    /// A key press in step-per-key-press mode: one more step is due.
    pub fn press(&mut self) {
        self.pending_presses += 1;
    }

    /// Both worlds back to the prompt.
    pub fn restart(&mut self) {
        self.reset(self.settings.prompt.clone());
    }

    /// A new world from `prompt`.
    pub fn reset(&mut self, prompt: Prompt) {
        self.settings.prompt = prompt.clone();
        self.send_all(Command::Reset(prompt));
    }

    /// A new world from a picture or recording dropped in; the error is shown, the world kept.
    pub fn open_prompt(&mut self, path: &Path) {
        match Prompt::open(path, self.settings.prompt_frames, self.settings.drop_hero) {
            Ok(opened) => {
                // `--learn`: the dream learns a picture before its first frame.
                let learns = self.learns(&opened.prompt);
                let learning = if learns {
                    "; learning the picture, a minute or two"
                } else {
                    ""
                };
                self.learning_since = learns.then(Instant::now);
                self.message = Some(format!(
                    "new world from {} ({}{learning})",
                    path.display(),
                    opened.hero
                ));
                self.reset(opened.prompt);
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    pub fn rewind(&mut self) {
        self.send_all(Command::Rewind(1));
    }

    /// Asks the dream for one frame of each latent action from where it stands.
    pub fn preview(&mut self) {
        self.engines[0].send(Command::Preview);
    }

    /// One step of the dream with a raw latent action (the real game has no such button).
    pub fn step_latent(&mut self, latent: u8) {
        self.engines[0].send(Command::Step(Control::Latent(latent)));
    }

    pub fn set_sampler(&mut self, sampler: SamplerConfig) {
        self.sampler = Some(sampler);
        self.engines[0].send(Command::Sampler(sampler));
    }

    fn start_recording(&mut self, dir: PathBuf) {
        let start = StartState {
            sampler: self.sampler.as_ref().map(RecordedSampler::of),
            ..self.settings.start_state.clone()
        };
        match Recorder::create(&dir, &start, &self.settings.prompt.frames) {
            Ok(rec) => {
                self.recorder = Some(rec);
                self.message = Some(format!("recording to {}", dir.display()));
            }
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    /// Stops the recording, or starts one (into `settings.record`, else `recordings/session-…`).
    pub fn toggle_recording(&mut self) {
        if let Some(rec) = self.recorder.take() {
            self.message = Some(format!(
                "recorded {} frames to {}",
                rec.frames_recorded(),
                rec.dir().display()
            ));
        } else {
            let dir =
                self.settings.record.clone().unwrap_or_else(|| {
                    PathBuf::from(format!("recordings/{}", chrono_free_stamp()))
                });
            self.start_recording(dir);
        }
    }

    /// Writes out what the recording holds (at exit).
    pub fn finish_recording(&mut self) {
        if let Some(mut rec) = self.recorder.take() {
            let _ = rec.flush();
        }
    }

    /// From now on `action` drives `latent` in the dream; saved in the checkpoint's keys.json.
    pub fn bind(&mut self, latent: u8, action: Action) {
        use super::keys::{KEYS_FILE, read_bound_keys, write_bound_keys};
        self.engines[0].send(Command::Bind {
            action: action as u8,
            latent,
        });
        if let Some(slot) = self.settings.latent_meanings.get_mut(latent as usize) {
            *slot = Some(match slot.take() {
                Some(m) => format!("{m}; {action} bound"),
                None => format!("{action} bound"),
            });
        }
        let saved = self.settings.start_state.checkpoint.as_deref().map(|dir| {
            let dir = Path::new(dir);
            let mut keys = read_bound_keys(dir, self.settings.latent_meanings.len() as i64)?;
            keys.insert(action.name().to_owned(), latent as i64);
            write_bound_keys(dir, &keys)
                .map_err(|e| format!("{}: {e}", dir.join(KEYS_FILE).display()))?;
            Ok::<_, String>(dir.join(KEYS_FILE))
        });
        self.message = Some(match saved {
            Some(Ok(path)) => format!(
                "{action} now drives latent {} (saved in {})",
                latent + 1,
                path.display()
            ),
            Some(Err(e)) => format!("{action} drives latent {} in this session: {e}", latent + 1),
            None => format!("{action} now drives latent {} in this session", latent + 1),
        });
    }

    /// Takes finished frames from the engines; never waits.
    pub fn receive(&mut self) {
        for i in 0..self.engines.len() {
            while let Some(out) = self.engines[i].try_recv() {
                match out {
                    Ok(out) if matches!(out.command, Command::Preview) => {
                        self.preview = Some((out.preview, self.shown));
                    }
                    Ok(out) => {
                        if i == 0 {
                            if let (Command::Reset(_), Some(since)) =
                                (&out.command, self.learning_since.take())
                            {
                                self.message = Some(format!(
                                    "picture learnt in {:.0} s: play",
                                    since.elapsed().as_secs_f64()
                                ));
                            }
                            self.model_ms = out.model_ms;
                            self.latent = out.latent_action.or(self.latent);
                            self.fps.tick();
                            self.shown += 1;
                            self.record(&out);
                        }
                        self.frames[i] = Some(out.frame);
                    }
                    Err(e) => {
                        if i == 0 {
                            self.learning_since = None;
                        }
                        self.message = Some(e.to_string());
                    }
                }
            }
        }
        if let Some(n) = self.settings.announce_after
            && self.shown == n
        {
            println!("genie: shown {n} frames");
            self.settings.announce_after = None;
        }
    }

    fn record(&mut self, out: &Output) {
        let Some(kind) = out.event() else {
            return;
        };
        if let Some(stopped) = Recorder::push_or_stop(&mut self.recorder, kind, &out.frame) {
            eprintln!("genie: {stopped}");
            self.message = Some(stopped);
        }
    }

    /// Sends the next step, driven by `action`, when it is due and the worlds are free.
    pub fn pace(&mut self, action: Action) {
        if self.engines.iter().any(|e| e.in_flight() > 0)
            || self.frames.first().is_none_or(Option::is_none)
        {
            return;
        }
        let due = if self.step_mode {
            self.pending_presses > 0
        } else {
            self.last_step.elapsed().as_secs_f64() >= 1.0 / self.settings.target_fps
        };
        if due {
            self.pending_presses = self.pending_presses.saturating_sub(1);
            self.last_step = Instant::now();
            self.send_all(Command::Step(Control::Game(action as u8)));
        }
    }
}

/// A folder name from the wall clock, without a date crate: seconds since the Unix epoch.
fn chrono_free_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("session-{secs}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::learn::LearnOptions;
    use crate::session::{Step, WorldError};

    /// A world that takes a while to start, as a dream learning its picture does.
    struct Slow;

    impl World for Slow {
        fn reset(&mut self, prompt: &Prompt) -> Result<Frame, WorldError> {
            std::thread::sleep(Duration::from_millis(50));
            Ok(prompt.frames[0].clone())
        }
        fn step(&mut self, _: Control) -> Result<Step, WorldError> {
            Ok(Step {
                frame: vec![1; 3],
                latent_action: Some(0),
            })
        }
        fn rewind(&mut self, _: usize) -> Result<Frame, WorldError> {
            Ok(vec![0; 3])
        }
    }

    fn settings(learn: Option<LearnOptions>) -> PlaySettings {
        PlaySettings {
            prompt: Prompt::from_frame(vec![0; 64 * 64 * 3]),
            prompt_frames: 1,
            drop_hero: HeroChoice::Auto,
            target_fps: 10.0,
            step_mode: false,
            record: None,
            start_state: StartState {
                version: 1,
                world: "dream".into(),
                checkpoint: None,
                checkpoint_hash: None,
                sampler: None,
                seed: 0,
                level_seed: None,
                prompt_frames: 1,
                threads: None,
                learn,
            },
            sampler: None,
            latent_meanings: vec![None; 8],
            learned_latents: 8,
            announce_after: None,
        }
    }

    fn first_frame(session: &mut PlaySession) {
        let start = Instant::now();
        while session.frames()[0].is_none() && start.elapsed() < Duration::from_secs(10) {
            session.receive();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(session.frames()[0].is_some());
    }

    #[test]
    fn the_learning_message_gives_way_when_the_learnt_world_starts() {
        let mut session = PlaySession::new(
            settings(Some(LearnOptions::default())),
            Box::new(Slow),
            None,
        );
        assert_eq!(
            session.message.as_deref(),
            Some("learning the picture, a minute or two")
        );
        first_frame(&mut session);
        let message = session.message.clone().unwrap();
        assert!(
            message.starts_with("picture learnt in ") && message.ends_with(" s: play"),
            "{message}"
        );
        // Restarting a learnt picture does not learn it again, nor say so.
        session.message = None;
        session.restart();
        session.frames[0] = None;
        first_frame(&mut session);
        assert_eq!(session.message, None);
        // Without --learn nothing is said.
        let mut session = PlaySession::new(settings(None), Box::new(Slow), None);
        assert_eq!(session.message, None);
        first_frame(&mut session);
        assert_eq!(session.message, None);
    }
}
