//! The engine: a [`World`] on a named worker thread behind bounded crossbeam channels, so the
//! render loop never waits on the model (TetaNES `nes/emulation.rs`). The thread ends when its
//! command channel disconnects.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Receiver, Sender, TryRecvError};

use super::prompt::Prompt;
use super::record::{EventKind, RecordedSampler};
use super::{Control, Frame, World, WorldError};
use crate::model::SamplerConfig;

/// What the render loop asks of the world.
#[derive(Debug, Clone)]
pub enum Command {
    Reset(Prompt),
    Step(Control),
    Rewind(usize),
    /// New MaskGIT settings; produces no frame.
    Sampler(SamplerConfig),
    /// One frame of each latent action from here ([`World::preview`]), in
    /// [`Output::preview`]; the world does not move and nothing is recorded.
    Preview,
    /// A game action (by id) drives a latent from now on ([`World::bind`]); produces no frame.
    Bind {
        action: u8,
        latent: u8,
    },
}

impl Command {
    fn makes_a_frame(&self) -> bool {
        !matches!(self, Self::Sampler(_) | Self::Bind { .. })
    }
}

/// A frame the world produced, with what it cost.
#[derive(Debug, Clone)]
pub struct Output {
    pub frame: Frame,
    /// The latent action the world used, when it is a dream.
    pub latent_action: Option<u8>,
    /// What produced this frame.
    pub command: Command,
    /// For [`Command::Preview`], a frame per latent action (and `frame` is empty).
    pub preview: Vec<Frame>,
    /// Wall time the world spent on this frame, in milliseconds.
    pub model_ms: f64,
    /// The MaskGIT settings in effect for this frame when changed from the start's by a
    /// [`Command::Sampler`] (so a recording can log them and replay follows).
    pub sampler: Option<SamplerConfig>,
}

impl Output {
    /// The recording event that this frame answers; `None` for a command that makes no frame.
    pub fn event(&self) -> Option<EventKind> {
        Some(match &self.command {
            Command::Reset(_) => EventKind::Reset,
            Command::Rewind(n) => EventKind::Rewind { frames: *n },
            Command::Step(Control::Game(a)) => EventKind::Step {
                game_action: crate::game::Action::from_u8(*a).map(|a| a.name().to_owned()),
                latent_action: self.latent_action,
                sampler: self.sampler.as_ref().map(RecordedSampler::of),
            },
            Command::Step(Control::Latent(a)) => EventKind::Step {
                game_action: None,
                latent_action: Some(*a),
                sampler: self.sampler.as_ref().map(RecordedSampler::of),
            },
            Command::Sampler(_) | Command::Preview | Command::Bind { .. } => return None,
        })
    }
}

/// The render loop's side of the engine.
pub struct Engine {
    commands: Sender<Command>,
    outputs: Receiver<Result<Output, WorldError>>,
    worker: Option<JoinHandle<()>>,
    in_flight: usize,
}

impl Engine {
    /// Starts `world` on a worker thread named `genie-world`.
    pub fn spawn(mut world: Box<dyn World>) -> Self {
        let (commands, command_rx) = channel::bounded::<Command>(4);
        let (output_tx, outputs) = channel::bounded(4);
        let worker = std::thread::Builder::new()
            .name("genie-world".into())
            .spawn(move || {
                let mut sampler = None;
                for command in command_rx {
                    let start = Instant::now();
                    let result = match &command {
                        Command::Sampler(settings) => {
                            world.set_sampler(*settings);
                            sampler = Some(*settings);
                            continue;
                        }
                        Command::Bind { action, latent } => {
                            if let Some(action) = crate::game::Action::from_u8(*action) {
                                world.bind(action, *latent);
                            }
                            continue;
                        }
                        Command::Reset(prompt) => {
                            world.reset(prompt).map(|frame| (frame, None, Vec::new()))
                        }
                        Command::Step(control) => world
                            .step(*control)
                            .map(|s| (s.frame, s.latent_action, Vec::new())),
                        Command::Rewind(n) => {
                            world.rewind(*n).map(|frame| (frame, None, Vec::new()))
                        }
                        Command::Preview => {
                            world.preview().map(|frames| (Vec::new(), None, frames))
                        }
                    };
                    let out = result.map(|(frame, latent_action, preview)| Output {
                        frame,
                        latent_action,
                        command,
                        preview,
                        model_ms: start.elapsed().as_secs_f64() * 1e3,
                        sampler,
                    });
                    if output_tx.send(out).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the genie-world thread");
        Self {
            commands,
            outputs,
            worker: Some(worker),
            in_flight: 0,
        }
    }

    /// Queues a command; false when the queue is full (the caller tries again next frame).
    pub fn send(&mut self, command: Command) -> bool {
        let counts = command.makes_a_frame();
        let sent = self.commands.try_send(command).is_ok();
        self.in_flight += (sent && counts) as usize;
        sent
    }

    /// Commands sent whose frame has not been received yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A finished frame, if one is ready; never blocks.
    pub fn try_recv(&mut self) -> Option<Result<Output, WorldError>> {
        match self.outputs.try_recv() {
            Ok(out) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                Some(out)
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    /// Waits for the next frame (headless use: `dream`, `replay`, tests).
    pub fn recv(&mut self) -> Result<Output, WorldError> {
        let out = self.outputs.recv().map_err(|_| WorldError::Stopped)?;
        self.in_flight = self.in_flight.saturating_sub(1);
        out
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Disconnect the command channel, drain outputs so the worker is not stuck on send.
        let (dead, _) = channel::bounded(0);
        drop(std::mem::replace(&mut self.commands, dead));
        while self.outputs.recv().is_ok() {}
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Step;

    /// A world whose frame is a counter: enough to check the engine's plumbing.
    struct Counter(Vec<u8>);

    impl World for Counter {
        fn reset(&mut self, _: &Prompt) -> Result<Frame, WorldError> {
            self.0 = vec![0];
            Ok(vec![0; 3])
        }
        fn step(&mut self, control: Control) -> Result<Step, WorldError> {
            let last = *self.0.last().ok_or(WorldError::NotStarted)?;
            self.0.push(last + 1);
            let latent = match control {
                Control::Latent(a) => a,
                Control::Game(a) => a + 10,
            };
            Ok(Step {
                frame: vec![last + 1; 3],
                latent_action: Some(latent),
            })
        }
        fn rewind(&mut self, n: usize) -> Result<Frame, WorldError> {
            let keep = self.0.len().saturating_sub(n).max(1);
            self.0.truncate(keep);
            Ok(vec![self.0[keep - 1]; 3])
        }
    }

    #[test]
    fn runs_commands_in_order_on_a_named_thread() {
        let mut engine = Engine::spawn(Box::new(Counter(vec![])));
        assert!(engine.send(Command::Reset(Prompt::from_frame(vec![0; 64 * 64 * 3]))));
        assert!(engine.send(Command::Step(Control::Latent(3))));
        assert!(engine.send(Command::Step(Control::Game(1))));
        assert!(engine.send(Command::Rewind(1)));
        let frames: Vec<(u8, Option<u8>)> = (0..4)
            .map(|_| {
                engine
                    .recv()
                    .map(|o| (o.frame[0], o.latent_action))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            frames,
            vec![(0, None), (1, Some(3)), (2, Some(11)), (1, None)]
        );
        assert_eq!(engine.in_flight(), 0);
        assert!(engine.try_recv().is_none());
    }

    #[test]
    fn errors_come_back_and_the_engine_keeps_going() {
        let mut engine = Engine::spawn(Box::new(Counter(vec![])));
        engine.send(Command::Step(Control::Latent(0)));
        assert!(matches!(engine.recv(), Err(WorldError::NotStarted)));
        engine.send(Command::Reset(Prompt::from_frame(vec![0; 64 * 64 * 3])));
        assert!(engine.recv().is_ok());
    }
}
