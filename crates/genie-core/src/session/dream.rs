//! The dream: a [`World`] driven by the world model. The prompt is tokenized (and, for a clip,
//! the actions between its frames inferred by the latent action model); each step maps the
//! player's action through the checkpoint's calibration to a latent action (a key's first frame
//! may get another latent than the frames it is held, see [`KeyMap`]), samples the next
//! frame's tokens with MaskGIT over the cached context, and decodes only that frame.
//!
//! Sampling is seeded per step from the session seed and a step counter, so a recording's event
//! log regenerates the same frames bit for bit (on the same device and thread count).

use rand::SeedableRng;
use tch::{Device, Tensor};

use super::keys::KeyMap;
use super::learn::{LearnOptions, Learnt, learn_picture};
use super::prompt::Prompt;
use super::{Control, Frame, Step, World, WorldError};
use crate::game::{Action, KeyState};
use crate::model::scroll::column_shifts;
use crate::model::{Genie, Rollout, SamplerConfig, SamplerRng, frames_to_bytes, frames_to_f32};

pub struct DreamWorld {
    genie: Genie,
    sampler: SamplerConfig,
    seed: u64,
    /// Game action → latent action (identity until `genie calibrate` has run).
    keys: KeyMap,
    /// The game action of the step before, while the same key stays down (a press is a step
    /// whose game action differs from it).
    held: Option<Action>,
    /// The context's tokens, the actions between them and both caches.
    rollout: Rollout,
    /// The frames shown, as many as the context holds, oldest first.
    frames: Vec<Frame>,
    /// Beside each frame shown, what the keys since the last reset said of the player when it
    /// was made (the way it faces, where a dash stands: [`KeyState`]); the last is the state the
    /// next key acts on, and a rewind goes back to an earlier one.
    key_states: Vec<KeyState>,
    /// Steps taken since the start, rewound ones included: part of each step's seed.
    steps: u64,
    /// Learn each picture a reset starts from ([`DreamWorld::learn_pictures`]).
    learn: Option<LearnOptions>,
    /// The picture now played, where it was learnt.
    learnt: Option<LearntPicture>,
}

/// A picture learnt ([`learn_picture`]) and what to put back when the next is played.
struct LearntPicture {
    /// The weights from before it, and its report.
    learnt: Learnt,
    /// The key map from before it.
    keys_before: KeyMap,
    picture: Frame,
}

impl DreamWorld {
    pub fn new(genie: Genie, sampler: SamplerConfig, seed: u64) -> Self {
        let keys = KeyMap::new(&genie.config);
        let rollout = Rollout::new(&genie, 1);
        Self {
            genie,
            sampler,
            seed,
            keys,
            held: None,
            rollout,
            frames: Vec::new(),
            key_states: Vec::new(),
            steps: 0,
            learn: None,
            learnt: None,
        }
    }

    /// From the next reset on, a prompt of one picture is learnt before the dream starts from it
    /// ([`learn_picture`]; the picture before it is forgotten first), and a prompt of several
    /// frames (a level, a recording) starts on the weights as loaded. `None`: no learning.
    pub fn learn_pictures(&mut self, opts: Option<LearnOptions>) {
        self.learn = opts;
    }

    /// What learning the picture now played did, where it was learnt.
    pub fn learnt(&self) -> Option<&super::learn::LearnReport> {
        self.learnt.as_ref().map(|l| &l.learnt.report)
    }

    /// Puts back the weights from before the picture learnt last, if any.
    fn forget(&mut self) {
        if let Some(l) = self.learnt.take() {
            l.learnt.forget();
            self.keys = l.keys_before;
        }
    }

    fn device(&self) -> Device {
        self.genie.tokenizer_vs.device()
    }

    fn context(&self) -> usize {
        self.genie.config.dynamics.context_frames.max(1) as usize
    }

    pub fn sampler(&self) -> &SamplerConfig {
        &self.sampler
    }

    /// The version of the game the world model learned.
    pub fn game(&self) -> crate::game::GameConfig {
        self.genie.config.game
    }

    /// What each latent action would do next: one dreamed frame per latent from the current
    /// state, the world left exactly as it was (history, caches, held key and the step count
    /// that seeds the next step, so a recording replays the same with or without a preview).
    pub fn preview(&mut self) -> Result<Vec<Frame>, WorldError> {
        if self.rollout.is_empty() {
            return Err(WorldError::NotStarted);
        }
        let (held, steps) = (self.held, self.steps);
        let (frames, key_states) = (self.frames.clone(), self.key_states.clone());
        let rollout = self.rollout.deep_clone();
        let mut out = Vec::new();
        for latent in 0..self.genie.config.dynamics.latents().min(256) {
            let step = self.step(Control::Latent(latent as u8));
            self.held = held;
            self.steps = steps;
            self.frames.clone_from(&frames);
            self.key_states.clone_from(&key_states);
            self.rollout = rollout.deep_clone();
            out.push(step?.frame);
        }
        Ok(out)
    }

    /// Keeps a frame shown, and what the keys say of the player after it, dropping the oldest
    /// beyond the context window.
    fn remember(&mut self, frame: Frame, key_state: KeyState) {
        self.frames.push(frame);
        self.key_states.push(key_state);
        if self.frames.len() > self.context() {
            let _ = self.frames.remove(0);
            let _ = self.key_states.remove(0);
        }
    }
}

impl World for DreamWorld {
    fn reset(&mut self, prompt: &Prompt) -> Result<Frame, WorldError> {
        let side = self.genie.config.tokenizer.image_size;
        let expected = (side * side * 3) as usize;
        if prompt.frames.is_empty() {
            return Err(WorldError::PromptSize {
                found: 0,
                expected,
                side,
            });
        }
        if let Some(f) = prompt.frames.iter().find(|f| f.len() != expected) {
            return Err(WorldError::PromptSize {
                found: f.len(),
                expected,
                side,
            });
        }
        // Checked before anything is cleared: a bad prompt leaves the world as it was.
        self.held = None;
        self.frames.clear();
        self.key_states.clear();
        // Back to the picture learnt already (R in the player): it stays learnt.
        let again = match (&self.learnt, prompt.frames.as_slice()) {
            (Some(l), [picture]) => l.picture == *picture,
            _ => false,
        };
        if let Some(opts) = self.learn.filter(|_| !again) {
            self.forget();
            // The clips are drawn at the game's frame size.
            if let [picture] = prompt.frames.as_slice()
                && picture.len() == crate::game::FRAME_BYTES
            {
                let opts = LearnOptions {
                    seed: opts.seed ^ self.seed,
                    ..opts
                };
                let learnt = learn_picture(&self.genie, picture, &self.keys, &opts);
                eprintln!(
                    "genie: learnt the picture in {:.1} s (decoder error {:.4} → {:.4}, dynamics loss {:.2} → {:.2})",
                    learnt.report.seconds,
                    learnt.report.decoder_mse[0],
                    learnt.report.decoder_mse[1],
                    learnt.report.dynamics_loss[0],
                    learnt.report.dynamics_loss[1]
                );
                let keys_before = std::mem::replace(&mut self.keys, learnt.keys.clone());
                self.learnt = Some(LearntPicture {
                    learnt,
                    keys_before,
                    picture: picture.clone(),
                });
            }
        }
        let device = self.device();
        let keep = prompt.frames.len().min(self.context());
        let raw: Vec<u8> = prompt.frames[prompt.frames.len() - keep..].concat();
        let frames = Tensor::from_slice(&raw)
            .view([1, keep as i64, side, side, 3])
            .to_device(device);
        let frames = frames_to_f32(&frames);
        let (ids, inferred) = tch::no_grad(|| {
            let ids = self.genie.tokenizer.encode(&frames); // [1, T, N]
            let inferred = (keep > 1).then(|| self.genie.lam.infer_actions(&frames)); // [1, T-1]
            (ids, inferred)
        });
        // Where the prompt's picture scrolled, for a model that works in the newest view.
        let shifts = if self.genie.config.dynamics.scroll {
            column_shifts(&raw, 1, keep, self.genie.config.tokenizer.patch)
        } else {
            vec![Vec::new()]
        };
        let decoded = self
            .rollout
            .start(&self.genie, &ids, inferred.as_ref(), &shifts);
        for t in 0..keep {
            let frame = frames_to_bytes(&decoded.select(1, t as i64));
            self.remember(frame, KeyState::default());
        }
        Ok(self
            .frames
            .last()
            .cloned()
            .expect("at least one prompt frame"))
    }

    fn step(&mut self, control: Control) -> Result<Step, WorldError> {
        let Some(state) = self.rollout.last() else {
            return Err(WorldError::NotStarted);
        };
        let actions = self.genie.config.dynamics.latents();
        let mut key_state = self.key_states.last().copied().unwrap_or_default();
        let (latent, held) = match control {
            Control::Latent(a) if i64::from(a) >= actions => {
                return Err(WorldError::NoSuchLatent { latent: a, actions });
            }
            Control::Latent(a) => (a as i64, None),
            Control::Game(g) => {
                let action = Action::from_u8(g).unwrap_or(Action::Noop);
                let pressed = self.held != Some(action);
                let keyed = self.keys.key(&mut key_state, action, pressed);
                let latent = self.keys.pick(
                    self.genie.adapter.as_ref(),
                    state,
                    self.rollout.shown(),
                    &[keyed],
                )[0];
                (latent, Some(action))
            }
        };
        self.held = held;
        let seed = self.seed
            ^ self
                .steps
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.steps += 1;
        let mut rng = SamplerRng::seed_from_u64(seed);
        let device = self.device();
        let action = Tensor::from_slice(&[latent]).to_device(device);
        // A learnt picture is one screen: the view stays where it is (the columns a step would
        // bring in are nowhere in the picture, and the learnt model never saw one).
        let decoded = if self.learnt.is_some() {
            self.rollout
                .step_moving(&self.genie, &action, &[0], &self.sampler, &mut rng)
                .1
        } else {
            self.rollout
                .step(&self.genie, &action, &self.sampler, &mut rng)
                .2
        };
        let frame = frames_to_bytes(&decoded);
        self.remember(frame.clone(), key_state);
        Ok(Step {
            frame,
            latent_action: Some(latent as u8),
        })
    }

    fn rewind(&mut self, frames: usize) -> Result<Frame, WorldError> {
        if self.rollout.is_empty() {
            return Err(WorldError::NotStarted);
        }
        let keep = self.rollout.len().saturating_sub(frames).max(1);
        // A key still down after a rewind presses anew.
        self.held = None;
        let _ = self.rollout.truncate(&self.genie, keep);
        self.frames.truncate(keep);
        self.key_states.truncate(keep);
        Ok(self.frames.last().cloned().expect("kept one frame"))
    }

    fn set_sampler(&mut self, sampler: SamplerConfig) {
        self.sampler = sampler;
    }

    fn preview(&mut self) -> Result<Vec<Frame>, WorldError> {
        DreamWorld::preview(self)
    }

    fn bind(&mut self, action: Action, latent: u8) {
        if i64::from(latent) < self.genie.config.dynamics.latents() {
            self.keys.bind(action, latent as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::checkpoint::tests::tiny_config;

    #[test]
    fn play_goes_on_when_the_checkpoint_folder_is_removed_and_bad_input_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        Genie::new(tiny_config(), Device::Cpu)
            .unwrap()
            .save(&ckpt)
            .unwrap();
        let genie = Genie::load(&ckpt, Device::Cpu).unwrap();
        let side = genie.config.tokenizer.image_size as usize;
        let mut world = DreamWorld::new(genie, SamplerConfig::default(), 1);
        let prompt = Prompt {
            frames: vec![vec![7; side * side * 3]],
        };
        world.reset(&prompt).unwrap();
        std::fs::remove_dir_all(&ckpt).unwrap();
        // The weights are in memory: steps, rewinds and resets go on.
        for a in 0..8 {
            world.step(Control::Latent(a)).unwrap();
        }
        world.rewind(3).unwrap();
        world.reset(&prompt).unwrap();
        let frame = world
            .step(Control::Game(Action::Right as u8))
            .unwrap()
            .frame;

        // A latent the model does not have, or a prompt of the wrong size, is an error that
        // leaves the world where it was.
        let err = world.step(Control::Latent(8)).unwrap_err().to_string();
        assert!(
            err.contains("latent action 8") && err.contains("has 8"),
            "{err}"
        );
        let wrong = Prompt {
            frames: vec![vec![0; 64 * 64 * 3]],
        };
        let err = world.reset(&wrong).unwrap_err().to_string();
        assert!(
            err.contains("12288 bytes") && err.contains("16×16"),
            "{err}"
        );
        assert_eq!(world.rewind(0).unwrap(), frame);
    }

    #[test]
    fn a_picture_is_learnt_on_reset_and_forgotten_for_the_next_prompt() {
        let genie = Genie::new(
            crate::model::checkpoint::tests::tiny_game_config(),
            Device::Cpu,
        )
        .unwrap();
        let weights = |w: &DreamWorld| -> Vec<Tensor> {
            let vars: std::collections::BTreeMap<_, _> =
                w.genie.dynamics_vs.variables().into_iter().collect();
            vars.into_values().map(|v| v.copy()).collect()
        };
        let mut world = DreamWorld::new(genie, SamplerConfig::default(), 3);
        let loaded = weights(&world);
        let same = |a: &[Tensor], b: &[Tensor]| a.iter().zip(b).all(|(x, y)| x.equal(y));
        let mut picture = vec![90u8; crate::game::FRAME_BYTES];
        super::super::hero::draw_player(&mut picture, 30, 50);
        let one = Prompt {
            frames: vec![picture.clone()],
        };
        // Without --learn nothing is learnt.
        world.reset(&one).unwrap();
        assert!(same(&weights(&world), &loaded));
        world.learn_pictures(Some(LearnOptions {
            decoder_steps: 2,
            dynamics_steps: 2,
            batch: 1,
            clip_frames: 3,
            ..Default::default()
        }));
        world.reset(&one).unwrap();
        let learnt = weights(&world);
        assert!(!same(&learnt, &loaded));
        let report = *world.learnt().unwrap();
        world.step(Control::Game(Action::Right as u8)).unwrap();
        // Back to the same picture: it stays learnt, not learnt again (which would take its own
        // time).
        world.reset(&one).unwrap();
        assert!(same(&weights(&world), &learnt));
        assert_eq!(world.learnt(), Some(&report));
        // A clip of two frames (a level, a recording) plays on the weights as loaded.
        let clip = Prompt {
            frames: vec![picture.clone(), picture],
        };
        world.reset(&clip).unwrap();
        assert!(same(&weights(&world), &loaded));
        assert!(world.learnt().is_none());
    }

    #[test]
    fn a_preview_shows_every_latent_and_leaves_the_dream_as_it_was() {
        let config = tiny_config();
        let side = config.tokenizer.image_size as usize;
        let prompt = Prompt {
            frames: (0..3)
                .map(|i| vec![40 * i as u8; side * side * 3])
                .collect(),
        };
        // Two copies of one model (built once: libtorch's generator is shared by the tests).
        let dir = tempfile::tempdir().unwrap();
        Genie::new(config.clone(), Device::Cpu)
            .unwrap()
            .save(dir.path())
            .unwrap();
        let genie = || Genie::load(dir.path(), Device::Cpu).unwrap();
        let (mut plain, mut previewed) = (
            DreamWorld::new(genie(), SamplerConfig::default(), 5),
            DreamWorld::new(genie(), SamplerConfig::default(), 5),
        );
        assert!(matches!(previewed.preview(), Err(WorldError::NotStarted)));
        for world in [&mut plain, &mut previewed] {
            world.reset(&prompt).unwrap();
        }
        let keys = [Action::Right, Action::Right, Action::Jump, Action::Noop];
        // More steps than the context holds, so the preview's steps slide the window.
        for (t, key) in keys
            .iter()
            .cycle()
            .take(config.dynamics.context_frames as usize + 3)
            .enumerate()
        {
            if t % 3 == 1 {
                let frames = previewed.preview().unwrap();
                assert_eq!(frames.len(), 8);
                assert!(frames.iter().all(|f| f.len() == side * side * 3));
            }
            let control = Control::Game(*key as u8);
            assert_eq!(
                plain.step(control).unwrap(),
                previewed.step(control).unwrap(),
                "step {t}"
            );
        }
        assert_eq!(plain.rewind(4).unwrap(), previewed.rewind(4).unwrap());
    }

    #[test]
    fn a_key_gets_its_press_latent_on_its_first_frame_and_after_a_rewind() {
        let mut config = tiny_config();
        config.calibration = Some(BTreeMap::from([
            ("noop".to_owned(), 3),
            ("jump".to_owned(), 3),
        ]));
        config.press_calibration = Some(BTreeMap::from([("jump".to_owned(), 6)]));
        let side = config.tokenizer.image_size as usize;
        let genie = Genie::new(config, Device::Cpu).unwrap();
        let mut world = DreamWorld::new(genie, SamplerConfig::default(), 1);
        let prompt = Prompt {
            frames: vec![vec![0; side * side * 3]],
        };
        world.reset(&prompt).unwrap();
        let (noop, jump) = (
            Control::Game(Action::Noop as u8),
            Control::Game(Action::Jump as u8),
        );
        let mut latents = Vec::new();
        let mut step = |world: &mut DreamWorld, c| {
            latents.push(world.step(c).unwrap().latent_action.unwrap());
        };
        for c in [noop, jump, jump, Control::Latent(2), jump, jump] {
            step(&mut world, c);
        }
        world.rewind(1).unwrap();
        step(&mut world, jump);
        world.reset(&prompt).unwrap();
        step(&mut world, jump);
        assert_eq!(latents, [3, 6, 3, 2, 6, 3, 6, 6]);

        // A key bound by hand drives its latent, pressed and held; a latent the model does not
        // have is ignored.
        World::bind(&mut world, Action::Jump, 5);
        World::bind(&mut world, Action::Jump, 200);
        let mut bound = Vec::new();
        for _ in 0..2 {
            bound.push(world.step(jump).unwrap().latent_action.unwrap());
        }
        assert_eq!(bound, [5, 5]);
    }

    #[test]
    fn a_dash_gets_the_latent_of_the_way_the_keys_left_the_player_facing_and_runs_its_course() {
        let mut config = tiny_config();
        config.calibration = Some(BTreeMap::from([
            ("dash".to_owned(), 1),
            ("left".to_owned(), 4),
            ("noop".to_owned(), 3),
            ("right".to_owned(), 1),
        ]));
        config.facing_calibration = Some(BTreeMap::from([(
            "left".to_owned(),
            BTreeMap::from([("dash".to_owned(), 4)]),
        )]));
        let side = config.tokenizer.image_size as usize;
        let genie = Genie::new(config, Device::Cpu).unwrap();
        let mut world = DreamWorld::new(genie, SamplerConfig::default(), 1);
        let prompt = Prompt {
            frames: vec![vec![0; side * side * 3]],
        };
        let key = |a: Action| Control::Game(a as u8);
        world.reset(&prompt).unwrap();
        let mut keys = vec![Action::Left, Action::Dash, Action::Right];
        keys.extend([Action::Dash; 7]);
        keys.push(Action::RightJump);
        let mut latents = Vec::new();
        for &k in &keys {
            latents.push(world.step(key(k)).unwrap().latent_action.unwrap());
        }
        // A new world faces right again, with no dash cooling down.
        world.reset(&prompt).unwrap();
        latents.push(
            world
                .step(key(Action::Dash))
                .unwrap()
                .latent_action
                .unwrap(),
        );
        // Left, then a dash facing left for eight frames (a Right pressed in it included), the
        // dash key cooling down (noop's), right+jump (not calibrated: its own index).
        assert_eq!(latents, [4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 5, 1]);

        // A rewind takes the dash back with the frames: noop then stands, and a dash starts anew.
        let mut world = world;
        world.reset(&prompt).unwrap();
        let mut latents = Vec::new();
        for k in [Action::Left, Action::Dash, Action::Noop] {
            latents.push(world.step(key(k)).unwrap().latent_action.unwrap());
        }
        World::rewind(&mut world, 2).unwrap();
        for k in [Action::Noop, Action::Dash, Action::Noop] {
            latents.push(world.step(key(k)).unwrap().latent_action.unwrap());
        }
        assert_eq!(latents, [4, 4, 4, 3, 4, 4]);
    }
}
