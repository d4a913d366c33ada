//! Learning a picture before playing it: a few steps of training on short clips made from the
//! picture itself, in which the game's player (the hero, as [`super::hero`] redrew it) walks and
//! jumps over the still picture under the keys a player presses.
//!
//! The networks were trained on the game's own looks; a picture from outside them is drawn
//! roughly by the tokenizer and replaced within frames by a level of the dynamics model's own
//! (docs/experiments.md). Here the tokenizer's decoder learns to draw this picture from the codes
//! its (unchanged) encoder gives it, and the dynamics model learns that this picture stays while
//! the hero moves as keyed, the keys turned into latents as [`KeyMap`] turns them in play. The
//! encoder and the latent action model are not touched, so the tokens keep their meaning.
//! [`Learnt`] keeps the weights from before, for a caller that moves on to another picture.

use rand::{Rng, SeedableRng};
use tch::{Kind, Tensor, nn::VarStore};

use super::hero::{SPRITE_H, SPRITE_W, draw_player, fill_rows};
use super::keys::KeyMap;
use crate::game::physics::{GRAVITY, JUMP_SPEED, RUN_MAX, SUB};
use crate::game::{Action, FRAME_BYTES, FRAME_SIZE, PLAYER_TOLERANCE, find_player_within};
use crate::model::{Genie, SamplerRng, frames_to_f32};
use crate::train::adamw::AdamW;

/// How long and how hard to learn a picture (a recording keeps them, to learn it again when it
/// is replayed).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LearnOptions {
    /// Optimizer steps of the tokenizer's decoder.
    pub decoder_steps: usize,
    /// Optimizer steps of the dynamics model.
    pub dynamics_steps: usize,
    /// Clips a step.
    pub batch: usize,
    /// Frames a clip.
    pub clip_frames: usize,
    pub decoder_lr: f64,
    pub dynamics_lr: f64,
    /// Extra weight of the dynamics model's tokens that change from the frame before (the
    /// hero's: a few of 64 a frame).
    #[serde(default)]
    pub change_weight: f64,
    /// Extra weight of the hero's pixels (its box) in the decoder's error: a few dozen of 4,096
    /// a frame, and the one thing the player watches.
    #[serde(default)]
    pub hero_weight: f64,
    pub seed: u64,
}

impl Default for LearnOptions {
    fn default() -> Self {
        Self {
            decoder_steps: 60,
            dynamics_steps: 100,
            batch: 8,
            clip_frames: 8,
            decoder_lr: 1e-3,
            dynamics_lr: 1e-3,
            change_weight: 5.0,
            hero_weight: 10.0,
            seed: 0,
        }
    }
}

impl LearnOptions {
    /// What a reader of a recording must refuse before acting on it.
    pub fn validate(&self) -> Result<(), String> {
        let steps = self.decoder_steps.max(self.dynamics_steps);
        if steps > 100_000 {
            return Err(format!("learn: {steps} steps, at most 100000"));
        }
        if !(1..=64).contains(&self.batch) || !(2..=64).contains(&self.clip_frames) {
            return Err(format!(
                "learn: batch {} and clip_frames {} must be 1–64 and 2–64",
                self.batch, self.clip_frames
            ));
        }
        for (name, w) in [
            ("change_weight", self.change_weight),
            ("hero_weight", self.hero_weight),
        ] {
            if !(w.is_finite() && (0.0..=1000.0).contains(&w)) {
                return Err(format!("learn: {name} {w} must be 0–1000"));
            }
        }
        for lr in [self.decoder_lr, self.dynamics_lr] {
            if !(lr.is_finite() && lr > 0.0 && lr < 1.0) {
                return Err(format!("learn: learning rate {lr} must be in (0, 1)"));
            }
        }
        Ok(())
    }
}

/// What learning a picture did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LearnReport {
    /// The decoder's mean squared error on the clips (the hero's pixels weighted by
    /// [`LearnOptions::hero_weight`]), the first step's and the last's.
    pub decoder_mse: [f64; 2],
    /// The dynamics model's loss on the clips, the first step's and the last's.
    pub dynamics_loss: [f64; 2],
    /// Whether a hero was found (by the player's colour) and moved in the clips; else the clips
    /// are the picture held still.
    pub hero: bool,
    pub seconds: f64,
}

/// The weights of the networks a picture changes, as they were before it, and the key map the
/// picture was learnt with.
pub struct Learnt {
    saved: Vec<(Tensor, Tensor)>,
    /// The keys to play the learnt picture with ([`picture_keys`]).
    pub keys: KeyMap,
    pub report: LearnReport,
}

impl Learnt {
    /// Puts back the weights from before the picture was learnt.
    pub fn forget(self) {
        tch::no_grad(|| {
            for (mut var, before) in self.saved {
                var.copy_(&before);
            }
        });
    }
}

/// The key map a picture is learnt and played with: each key the clips show gets a latent of
/// its own, pressed and held alike. The calibration shares latents between keys (its press
/// latents most: on the shipped checkpoint a left press is a right jump's, a jump's a left
/// jump's), so clips keyed through it would teach one latent two motions. In [`KEYS`]' order,
/// a key takes its hold latent where no key before took it, else its press latent, else the
/// first latent left; keys the clips do not show keep `base`'s, and so do keys bound by hand.
pub fn picture_keys(base: &KeyMap, latents: i64) -> KeyMap {
    let mut keys = base.clone();
    let mut taken: Vec<i64> = Vec::new();
    let mut order = KEYS;
    // Keys on the ground before those in the air: their hold latents are the calibration's
    // surest.
    order.sort_by_key(|k| matches!(k, Action::Jump | Action::LeftJump));
    for key in order {
        let i = key as usize;
        if base.bound[i] {
            taken.push(base.hold[i]);
            continue;
        }
        let free = [base.hold[i], base.press[i]]
            .into_iter()
            .chain(0..latents)
            .find(|l| !taken.contains(l));
        if let Some(latent) = free {
            keys.bind(key, latent);
            taken.push(latent);
        }
    }
    keys
}

/// Every variable of `vs` beside a copy of its value.
fn snapshot(vs: &VarStore) -> Vec<(Tensor, Tensor)> {
    vs.variables()
        .into_values()
        .map(|v| {
            let copy = v.detach().copy();
            (v, copy)
        })
        .collect()
}

/// The hero's sprite (its top-left) in `frame`, found by the player's colour.
pub fn hero_sprite(frame: &[u8]) -> Option<(i32, i32)> {
    let (cx, cy) = find_player_within(frame, PLAYER_TOLERANCE)?;
    let (ox, oy) = sprite_centroid();
    Some(((cx - ox).round() as i32, (cy - oy).round() as i32))
}

/// The centroid of the player's colour in the sprite, from its top-left.
fn sprite_centroid() -> (f32, f32) {
    let mut frame = vec![0u8; FRAME_BYTES];
    draw_player(&mut frame, 0, 0);
    find_player_within(&frame, PLAYER_TOLERANCE).expect("the sprite has the player's colour")
}

/// `frame` with the box (x0, y0)–(x1, y1) (inclusive, clipped to the frame) filled from the
/// pixels left and right of it in each row, as [`super::hero::redraw`] fills an erased figure.
fn erase_box(frame: &[u8], x0: i32, y0: i32, x1: i32, y1: i32) -> Vec<u8> {
    let s = FRAME_SIZE as i32;
    let mask: Vec<bool> = (0..s * s)
        .map(|i| (x0..=x1).contains(&(i % s)) && (y0..=y1).contains(&(i / s)))
        .collect();
    let mut out = frame.to_vec();
    fill_rows(&mut out, &mask);
    out
}

/// The keys of the clips, each run of frames holding one: the game's actions but down and dash
/// (the first six of [`Action::ALL`]).
const KEYS: [Action; 6] = *Action::ALL.first_chunk().unwrap();

/// A clip: its frames, the keys between them, and where the hero's sprite is drawn in each
/// (its top-left; empty where the clip has no hero).
struct Clip {
    frames: Vec<Vec<u8>>,
    keys: Vec<Action>,
    hero: Vec<(i32, i32)>,
}

/// One clip of `frames` frames and the `frames − 1` keys between them: the hero walks and jumps
/// over `background` from near `home` (its sprite's top-left standing on the ground), where
/// `home` is `None` the picture held still under random keys.
fn clip(background: &[u8], home: Option<(i32, i32)>, frames: usize, rng: &mut SamplerRng) -> Clip {
    let mut keys = Vec::with_capacity(frames.saturating_sub(1));
    while keys.len() + 1 < frames {
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let hold = rng.random_range(1..=6usize);
        keys.extend(std::iter::repeat_n(key, hold));
    }
    keys.truncate(frames.saturating_sub(1));
    let Some((hx, ground)) = home else {
        return Clip {
            frames: vec![background.to_vec(); frames],
            keys,
            hero: Vec::new(),
        };
    };
    let max_x = (FRAME_SIZE as i32 - SPRITE_W) as f32;
    // The game's run speed, jump speed and gravity, in pixels a frame (one tick a frame).
    let px = |v: i32| v as f32 / SUB as f32;
    let (run, jump_speed, gravity) = (px(RUN_MAX), px(JUMP_SPEED), px(GRAVITY));
    // Half the clips start at home, as play does; the others where play may have walked to.
    let mut x = if rng.random_bool(0.5) {
        hx as f32
    } else {
        (hx as f32 + rng.random_range(-16.0..=16.0f32)).clamp(0.0, max_x)
    };
    let (mut y, mut vy) = (ground as f32, 0.0f32);
    let mut out = Clip {
        frames: Vec::with_capacity(frames),
        keys: Vec::new(),
        hero: Vec::with_capacity(frames),
    };
    let mut draw = |x: f32, y: f32| {
        let (x, y) = (x.round() as i32, y.round() as i32);
        let mut f = background.to_vec();
        draw_player(&mut f, x, y);
        out.frames.push(f);
        out.hero.push((x, y));
    };
    draw(x, y);
    for &key in &keys {
        let (dir, jump) = key.dir_and_jump();
        x = (x + dir as f32 * run).clamp(0.0, max_x);
        let on_ground = y >= ground as f32 && vy >= 0.0;
        if on_ground && jump {
            vy = -jump_speed;
        }
        if !on_ground || jump {
            y += vy;
            vy += gravity;
            if y >= ground as f32 {
                (y, vy) = (ground as f32, 0.0);
            }
        }
        draw(x, y);
    }
    out.keys = keys;
    out
}

/// A batch of clips: frames [B, T, 64, 64, 3] in [0, 1], their keys' latents [B, T − 1], and
/// each pixel's weight in the decoder's error [B, T, 64, 64, 1] (1, and 1 + `hero_weight` in
/// the hero's box grown by a pixel).
struct Batch {
    frames: Tensor,
    latents: Tensor,
    weights: Tensor,
}

fn batch(
    background: &[u8],
    home: Option<(i32, i32)>,
    keys: &KeyMap,
    opts: &LearnOptions,
    rng: &mut SamplerRng,
    device: tch::Device,
) -> Batch {
    let (b, t) = (opts.batch, opts.clip_frames);
    let s = FRAME_SIZE as i32;
    let mut pixels = Vec::with_capacity(b * t * FRAME_BYTES);
    let mut weights = vec![1.0f32; b * t * FRAME_SIZE * FRAME_SIZE];
    let mut latents = Vec::new();
    for i in 0..b {
        let clip = clip(background, home, t, rng);
        pixels.extend(clip.frames.concat());
        latents.extend(keys.latents(&clip.keys));
        for (j, &(x, y)) in clip.hero.iter().enumerate() {
            let plane =
                &mut weights[(i * t + j) * FRAME_SIZE * FRAME_SIZE..][..FRAME_SIZE * FRAME_SIZE];
            for py in (y - 1).max(0)..(y + SPRITE_H + 1).min(s) {
                for px in (x - 1).max(0)..(x + SPRITE_W + 1).min(s) {
                    plane[(py * s + px) as usize] += opts.hero_weight as f32;
                }
            }
        }
    }
    let (b, t, s) = (b as i64, t as i64, s as i64);
    let frames = Tensor::from_slice(&pixels)
        .view([b, t, s, s, 3])
        .to_device(device);
    Batch {
        frames: frames_to_f32(&frames),
        latents: Tensor::from_slice(&latents)
            .view([b, t - 1])
            .to_device(device),
        weights: Tensor::from_slice(&weights)
            .view([b, t, s, s, 1])
            .to_device(device),
    }
}

/// `steps` AdamW steps (no weight decay, gradients clipped to norm 1) of what in `vs` the
/// losses `loss` gives reach; the first step's loss and the last's.
fn train(vs: &VarStore, lr: f64, steps: usize, mut loss: impl FnMut() -> Tensor) -> [f64; 2] {
    let mut opt = AdamW::new(vs, lr, 0.0);
    let mut ends = [f64::NAN; 2];
    for step in 0..steps {
        let value = loss();
        opt.zero_grad();
        value.backward();
        opt.clip_grad_norm(1.0);
        opt.step();
        ends[usize::from(step > 0)] = f64::try_from(value.detach()).unwrap_or(f64::NAN);
    }
    ends
}

/// Learns `frame` (a 64×64 prompt, its hero redrawn as the game's player where it has one):
/// the tokenizer's decoder, then the dynamics model, on clips made from it and keyed through
/// [`picture_keys`] of the key map `base`, the same for the same `opts` (seed included) on the
/// same device and thread count. Returns the weights from before, to
/// [`Learnt::forget`] it, and the keys to play it with.
pub fn learn_picture(genie: &Genie, frame: &[u8], base: &KeyMap, opts: &LearnOptions) -> Learnt {
    let start = std::time::Instant::now();
    assert_eq!(frame.len(), FRAME_BYTES, "a prompt frame is 64×64 RGB");
    let saved = [&genie.tokenizer_vs, &genie.dynamics_vs]
        .into_iter()
        .flat_map(snapshot)
        .collect();
    let device = genie.tokenizer_vs.device();
    let mut rng = SamplerRng::seed_from_u64(opts.seed);
    // The dynamics model's masks come from libtorch's generator: seeded too, so that a
    // recording learns the picture again exactly as it was learnt.
    tch::manual_seed(opts.seed as i64);
    let home = hero_sprite(frame);
    let background = match home {
        Some((x, y)) => erase_box(frame, x - 1, y - 1, x + SPRITE_W, y + SPRITE_H),
        None => frame.to_vec(),
    };
    let keys = picture_keys(base, genie.config.dynamics.num_actions);
    let mut next_batch = || batch(&background, home, &keys, opts, &mut rng, device);
    let decoder_mse = train(
        &genie.tokenizer_vs,
        opts.decoder_lr,
        opts.decoder_steps,
        || {
            let batch = next_batch();
            genie
                .tokenizer
                .decoder_error(&batch.frames, Some(&batch.weights))
        },
    );
    let dynamics_loss = train(
        &genie.dynamics_vs,
        opts.dynamics_lr,
        opts.dynamics_steps,
        || {
            let batch = next_batch();
            let ids = genie.tokenizer.encode(&batch.frames);
            let actions = batch.latents.to_kind(Kind::Int64);
            genie
                .dynamics
                .loss_changes(&ids, &actions, opts.change_weight)
                .loss
        },
    );
    Learnt {
        saved,
        keys,
        report: LearnReport {
            decoder_mse,
            dynamics_loss,
            hero: home.is_some(),
            seconds: start.elapsed().as_secs_f64(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::tests::tiny_game_config;

    fn picture() -> Vec<u8> {
        let mut f: Vec<u8> = (0..FRAME_BYTES)
            .map(|i| ((i / 3 % FRAME_SIZE) * 4) as u8)
            .collect();
        draw_player(&mut f, 20, 40);
        f
    }

    #[test]
    fn picture_keys_give_each_key_shown_a_latent_of_its_own() {
        // The shipped checkpoint's calibration (holds; presses).
        let mut base = KeyMap {
            hold: [3, 4, 1, 3, 4, 5, 3, 1],
            press: [3, 7, 2, 6, 6, 7, 3, 1],
            facing_hold: [[None; 8]; 2],
            facing_press: [[None; 8]; 2],
            settled: [None; 8],
            settle_after: 0,
            cycles: Default::default(),
            bound: [false; 8],
            controls: Some(crate::game::Controls::Classic),
        };
        let keys = picture_keys(&base, 8);
        let of = |a: Action| (keys.hold[a as usize], keys.press[a as usize]);
        assert_eq!(of(Action::Noop), (3, 3));
        assert_eq!(of(Action::Left), (4, 4));
        assert_eq!(of(Action::Right), (1, 1));
        assert_eq!(of(Action::RightJump), (5, 5));
        assert_eq!(of(Action::Jump), (6, 6));
        assert_eq!(of(Action::LeftJump), (0, 0));
        // Keys the clips do not show stay as calibrated.
        assert_eq!(of(Action::Down), (3, 3));
        assert_eq!(of(Action::Dash), (1, 1));
        // A key bound by hand keeps its latent, and no other key takes it.
        base.bind(Action::Right, 6);
        let keys = picture_keys(&base, 8);
        assert_eq!(
            (
                keys.hold[Action::Right as usize],
                keys.press[Action::Jump as usize]
            ),
            (6, 0)
        );
    }

    #[test]
    fn the_hero_is_found_where_it_was_drawn_and_erased_from_the_background() {
        let f = picture();
        assert_eq!(hero_sprite(&f), Some((20, 40)));
        let bg = erase_box(&f, 19, 39, 20 + SPRITE_W, 40 + SPRITE_H);
        assert_eq!(hero_sprite(&bg), None);
        // The gradient runs on through the box.
        let at = |x: usize, y: usize| bg[(y * FRAME_SIZE + x) * 3];
        assert_eq!(at(22, 43), 88);
    }

    #[test]
    fn clips_move_the_hero_as_keyed_over_the_still_picture() {
        let f = picture();
        let bg = erase_box(&f, 19, 39, 20 + SPRITE_W, 40 + SPRITE_H);
        let mut rng = SamplerRng::seed_from_u64(5);
        for _ in 0..20 {
            let Clip { frames, keys, hero } = clip(&bg, Some((20, 40)), 8, &mut rng);
            assert_eq!((frames.len(), keys.len()), (8, 7));
            let places: Vec<(i32, i32)> = frames.iter().map(|f| hero_sprite(f).unwrap()).collect();
            assert_eq!(places, hero);
            for (t, key) in keys.iter().enumerate() {
                let (dx, dy) = (places[t + 1].0 - places[t].0, places[t + 1].1 - places[t].1);
                // The hero never goes below its ground, nor across more than a run's step.
                assert!(places[t + 1].1 <= 40 && dx.abs() <= 2, "{key:?} {dx} {dy}");
                match key {
                    Action::Left if places[t].0 > 1 => assert!(dx < 0),
                    Action::Right if places[t].0 < 57 => assert!(dx > 0),
                    Action::Noop if places[t].1 == 40 => assert_eq!((dx, dy), (0, 0)),
                    Action::Jump | Action::LeftJump | Action::RightJump if places[t].1 == 40 => {
                        assert!(dy < 0)
                    }
                    _ => {}
                }
            }
            // Below the hero's feet the picture stays as it was.
            let below = (40 + SPRITE_H) as usize * FRAME_SIZE * 3;
            assert!(frames.iter().all(|g| g[below..] == bg[below..]));
        }
        // No hero: the picture held still.
        let Clip { frames, keys, hero } = clip(&bg, None, 5, &mut rng);
        assert!(frames.iter().all(|g| *g == bg) && keys.len() == 4 && hero.is_empty());
    }

    #[test]
    fn options_out_of_range_are_refused_and_old_recordings_weigh_nothing() {
        assert_eq!(LearnOptions::default().validate(), Ok(()));
        for (opts, says) in [
            (
                LearnOptions {
                    hero_weight: f64::NAN,
                    ..Default::default()
                },
                "hero_weight NaN",
            ),
            (
                LearnOptions {
                    hero_weight: 1e4,
                    ..Default::default()
                },
                "hero_weight 10000",
            ),
            (
                LearnOptions {
                    change_weight: -1.0,
                    ..Default::default()
                },
                "change_weight -1",
            ),
            (
                LearnOptions {
                    dynamics_lr: 2.0,
                    ..Default::default()
                },
                "learning rate 2",
            ),
            (
                LearnOptions {
                    batch: 0,
                    ..Default::default()
                },
                "batch 0",
            ),
        ] {
            let err = opts.validate().unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        // A recording from before the weights learns without them, as it was learnt.
        let old: LearnOptions = serde_json::from_str(
            r#"{"decoder_steps": 60, "dynamics_steps": 100, "batch": 8, "clip_frames": 8,
                "decoder_lr": 0.001, "dynamics_lr": 0.001, "seed": 0}"#,
        )
        .unwrap();
        assert_eq!((old.change_weight, old.hero_weight), (0.0, 0.0));
    }

    #[test]
    fn the_decoder_weighs_the_heros_box_more() {
        let f = picture();
        let bg = erase_box(&f, 19, 39, 20 + SPRITE_W, 40 + SPRITE_H);
        let keys = KeyMap {
            hold: [0; 8],
            press: [0; 8],
            facing_hold: [[None; 8]; 2],
            facing_press: [[None; 8]; 2],
            settled: [None; 8],
            settle_after: 0,
            cycles: Default::default(),
            bound: [false; 8],
            controls: Some(crate::game::Controls::Classic),
        };
        let opts = LearnOptions {
            batch: 2,
            clip_frames: 3,
            hero_weight: 4.0,
            ..Default::default()
        };
        let mut rng = SamplerRng::seed_from_u64(3);
        let b = batch(
            &bg,
            Some((20, 40)),
            &keys,
            &opts,
            &mut rng,
            tch::Device::Cpu,
        );
        assert_eq!(b.weights.size(), [2, 3, 64, 64, 1]);
        // The first frame of a clip starting at home: the sprite's box grown by a pixel.
        let w = Vec::<f32>::try_from(b.weights.get(0).get(0).flatten(0, -1)).unwrap();
        let heavy: Vec<usize> = (0..w.len()).filter(|&i| w[i] == 5.0).collect();
        assert_eq!(heavy.len(), ((SPRITE_W + 2) * (SPRITE_H + 2)) as usize);
        assert!(w.iter().all(|&v| v == 1.0 || v == 5.0));
        // Around the hero drawn in that frame.
        let frame = crate::model::frames_to_bytes(&b.frames.get(0).get(0));
        let (x, y) = hero_sprite(&frame).unwrap();
        let top_left = ((y - 1) * 64 + x - 1) as usize;
        assert_eq!(heavy[0], top_left);
        // No hero: every pixel weighs the same.
        let b = batch(&bg, None, &keys, &opts, &mut rng, tch::Device::Cpu);
        assert!(b.weights.eq(1.0).all().int64_value(&[]) == 1);
    }

    #[test]
    fn learning_a_picture_lowers_the_losses_and_forgetting_it_restores_the_weights() {
        tch::manual_seed(2);
        let genie = Genie::new(tiny_game_config(), tch::Device::Cpu).unwrap();
        let weights = |vs: &VarStore| -> std::collections::BTreeMap<String, Tensor> {
            vs.variables().into_iter().collect()
        };
        let before: Vec<Tensor> = weights(&genie.dynamics_vs)
            .values()
            .map(|v| v.copy())
            .collect();
        let opts = LearnOptions {
            decoder_steps: 12,
            dynamics_steps: 12,
            batch: 2,
            clip_frames: 3,
            decoder_lr: 3e-3,
            dynamics_lr: 3e-3,
            change_weight: 5.0,
            hero_weight: 10.0,
            seed: 1,
        };
        let keys = KeyMap::new(&genie.config);
        let learnt = learn_picture(&genie, &picture(), &keys, &opts);
        let r = learnt.report;
        assert!(r.hero);
        assert!(r.decoder_mse[1] < r.decoder_mse[0], "{r:?}");
        assert!(r.dynamics_loss[1] < r.dynamics_loss[0], "{r:?}");
        let changed = weights(&genie.dynamics_vs)
            .values()
            .zip(&before)
            .any(|(v, b)| !v.equal(b));
        assert!(changed);
        learnt.forget();
        for (v, b) in weights(&genie.dynamics_vs).values().zip(&before) {
            assert!(v.equal(b));
        }
    }
}
