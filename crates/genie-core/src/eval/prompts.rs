//! `genie eval --prompts DIR`: how the world model does on any folder of pictures
//! (docs/design.md §8), above all pictures made outside the game.
//!
//! Each picture is read as a player reads it ([`Prompt::open`]: centre-cropped to 64×64, its
//! hero redrawn as the game's player, at the place `heroes.json` gives or else where the
//! automatic guess puts it), then dreamed from four times at once, one row per key held for
//! [`HORIZON`] frames: `noop`, `left`, `right` and `jump`, each turned into latent actions
//! exactly as `genie play` does (the checkpoint's calibration, a press latent on the first
//! frame; [`KeyMap::latents`]). Sampling is seeded per step from `--seed` and the step, as a
//! dream is, but the four rows are sampled as one batch.
//!
//! - `reconstruction`: PSNR of the tokenizer's decoding of the prompt against the prompt (the
//!   64×64 frame the model is given, hero redrawn).
//! - `persistence`: PSNR between that reconstruction and the last of [`HORIZON`] `noop` frames,
//!   leaving out the hero: the player's box (6×7 grown by [`HERO_MARGIN`] pixels each way)
//!   where it is found, by its colour, in the reconstruction and in the last frame.
//! - `hero_fidelity`: share of pictures whose hero moves as keyed. The hero is found by the
//!   game's player colour (within [`PLAYER_TOLERANCE`]) in the reconstruction and in the
//!   [`MOVE_FRAMES`]-th frame of each key's row, and its motion taken in the world: where the
//!   dreamed view stepped (a model that scrolls), the step is added back, as the session
//!   measures take it; `left` passes when it moved left by more than
//!   a pixel, `right` right by more than a pixel, `jump` up by more than a pixel; a hero lost in
//!   either frame fails, and so does one found farther than the game's player can go in
//!   [`MOVE_FRAMES`] frames ([`MAX_DX`] across, [`MAX_DY`] up or down): there the dream has
//!   dropped the picture's hero and drawn a player of its own elsewhere. A picture counts when all three pass; `hero_fidelity_by_key` gives
//!   each key's share.
//! - `hero_presence`: share of all the dreamed frames (four keys × [`HORIZON`]) in which the
//!   hero is found (at least [`PRESENCE_PIXELS`] pixels of its colour), a picture's mean over the pictures: a hero that follows the
//!   keys for four frames and is lost after ten of walking fails here.
//! - `hero_guess_hits`: for pictures whose hero `heroes.json` gives, the share where the
//!   automatic guess lands within [`GUESS_RADIUS`] frame pixels of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use serde::Serialize;
use tch::{Kind, Tensor};

use super::control::PLAYER_TOLERANCE;
use super::measures::psnr_capped;
use crate::game::{Action, FRAME_SIZE, KeyState, find_player_within, player_pixels_within};
use crate::model::{Genie, Rollout, SamplerConfig, SamplerRng, frames_to_bytes, frames_to_f32};
use crate::session::Frame;
use crate::session::export::grid;
use crate::session::hero::{Crop, HeroChoice, HeroOutcome};
use crate::session::keys::{KeyMap, Keyed};
use crate::session::learn::{LearnOptions, LearnReport, learn_picture};
use crate::session::prompt::{Prompt, PromptError};

/// Frames dreamed per key.
pub const HORIZON: usize = 16;
/// The frame of a key's row where the hero's motion is measured (as action fidelity's 4).
pub const MOVE_FRAMES: usize = 4;
/// Pixels around the player's 6×7 box left out of `persistence`.
pub const HERO_MARGIN: i32 = 2;
/// Farthest the game's player goes in [`MOVE_FRAMES`] frames, across (a dash, 3.5 px a frame)
/// and up or down (a jump's take-off, 4.5 px a frame), in frame pixels.
pub const MAX_DX: f32 = 14.0;
pub const MAX_DY: f32 = 18.0;
/// Pixels of the player's colour that make a frame show the hero in `hero_presence` (the
/// sprite has 29).
pub const PRESENCE_PIXELS: usize = 8;
/// How near, in frame pixels, the automatic guess must land to the hero's given place.
pub const GUESS_RADIUS: f64 = 4.0;
/// The keys dreamed from each prompt, in the sheet's row order.
pub const KEYS: [Action; 4] = [Action::Noop, Action::Left, Action::Right, Action::Jump];

/// Picture files by extension (others in the folder, such as heroes.json, are skipped).
const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "webp", "bmp"];

#[derive(Debug, thiserror::Error)]
pub enum PromptEvalError {
    #[error("prompt folder {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("prompt folder {0}: no pictures (PNG, JPEG, GIF, WebP or BMP) in it")]
    Empty(PathBuf),
    #[error("heroes file {path}: {what}")]
    Heroes { path: PathBuf, what: String },
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("the tokenizer takes {got}×{got} frames; prompts are {FRAME_SIZE}×{FRAME_SIZE}")]
    FrameSize { got: i64 },
    #[error("contact sheet {path}: {what}")]
    Sheet { path: PathBuf, what: String },
}

#[derive(Debug, Clone)]
pub struct PromptEvalOptions {
    pub sampler: SamplerConfig,
    pub seed: u64,
    /// Hero places by file name, in each picture's own pixels (`heroes.json`).
    pub heroes: BTreeMap<String, [u32; 2]>,
    /// Write a contact sheet per prompt into this folder.
    pub sheets: Option<PathBuf>,
    /// Learn each picture before dreaming from it ([`learn_picture`]), and forget it after.
    pub learn: Option<LearnOptions>,
}

/// One picture's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PromptFigures {
    pub file: String,
    /// How the hero was chosen: `given` (heroes.json), `guessed`, `already drawn` (the picture
    /// shows the game's player) or `not found`.
    pub hero: String,
    /// Where the hero was redrawn, in the picture's pixels (the centre of the figure).
    pub hero_at: Option<[u32; 2]>,
    /// Where the automatic guess put the hero, when heroes.json gives it.
    pub guess_at: Option<[u32; 2]>,
    pub guess_hit: Option<bool>,
    pub reconstruction: f64,
    pub persistence: f64,
    /// Per key (`left`, `right`, `jump`): the hero's motion (Δx, Δy) in frame pixels after
    /// [`MOVE_FRAMES`] frames; `None` where it was not found.
    pub hero_motion: BTreeMap<String, Option<[f32; 2]>>,
    /// Per key, whether the hero moved as keyed.
    pub hero_moved: BTreeMap<String, bool>,
    /// All three keys moved the hero as keyed.
    pub hero_follows_keys: bool,
    /// Share of the dreamed frames (every key's [`HORIZON`]) in which the hero is found.
    pub hero_presence: f64,
    /// What learning the picture did, where it was learnt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learnt: Option<LearnReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptsReport {
    pub prompts: usize,
    pub reconstruction: f64,
    pub persistence: f64,
    pub hero_fidelity: f64,
    pub hero_fidelity_by_key: BTreeMap<String, f64>,
    /// Mean over the pictures of the share of dreamed frames in which the hero is found (a
    /// hero lost while a key is held is lost to the player, whatever the first frames did).
    pub hero_presence: f64,
    /// Share of pictures with a given hero where the automatic guess found it; `None` where
    /// heroes.json gives none.
    pub hero_guess_hits: Option<f64>,
    pub hero_guess_cases: usize,
    pub horizon: usize,
    pub move_frames: usize,
    pub maskgit_steps: usize,
    pub seconds: f64,
    pub per_prompt: Vec<PromptFigures>,
}

/// Reads a `heroes.json` (file name → [x, y]).
pub fn read_heroes(path: &Path) -> Result<BTreeMap<String, [u32; 2]>, PromptEvalError> {
    let err = |what: String| PromptEvalError::Heroes {
        path: path.into(),
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(format!("expected {{\"file\": [x, y], …}}: {e}")))
}

/// The pictures of `dir`, sorted by name.
pub fn picture_files(dir: &Path) -> Result<Vec<PathBuf>, PromptEvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PromptEvalError::Dir {
        path: dir.into(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(PromptEvalError::Empty(dir.into()));
    }
    Ok(files)
}

/// Runs the measures on every picture of `dir`.
pub fn evaluate_prompts(
    genie: &Genie,
    dir: &Path,
    opts: &PromptEvalOptions,
) -> Result<PromptsReport, PromptEvalError> {
    let start = std::time::Instant::now();
    let side = genie.config.tokenizer.image_size;
    if side != FRAME_SIZE as i64 {
        return Err(PromptEvalError::FrameSize { got: side });
    }
    let files = picture_files(dir)?;
    if let Some(sheets) = &opts.sheets {
        std::fs::create_dir_all(sheets).map_err(|e| PromptEvalError::Sheet {
            path: sheets.clone(),
            what: e.to_string(),
        })?;
    }
    let mut per_prompt = Vec::new();
    for (index, path) in files.iter().enumerate() {
        per_prompt.push(evaluate_one(genie, path, index as u64, opts)?);
    }
    let n = per_prompt.len() as f64;
    let mean = |f: &dyn Fn(&PromptFigures) -> f64| per_prompt.iter().map(f).sum::<f64>() / n;
    let hero_fidelity_by_key = KEYS[1..]
        .iter()
        .map(|k| {
            let share = mean(&|p| f64::from(u8::from(p.hero_moved[k.name()])));
            (k.name().to_owned(), share)
        })
        .collect();
    let guesses: Vec<bool> = per_prompt.iter().filter_map(|p| p.guess_hit).collect();
    Ok(PromptsReport {
        prompts: per_prompt.len(),
        reconstruction: mean(&|p| p.reconstruction),
        persistence: mean(&|p| p.persistence),
        hero_fidelity: mean(&|p| f64::from(u8::from(p.hero_follows_keys))),
        hero_fidelity_by_key,
        hero_presence: mean(&|p| p.hero_presence),
        hero_guess_hits: (!guesses.is_empty())
            .then(|| guesses.iter().filter(|&&h| h).count() as f64 / guesses.len() as f64),
        hero_guess_cases: guesses.len(),
        horizon: HORIZON,
        move_frames: MOVE_FRAMES,
        maskgit_steps: opts.sampler.steps,
        seconds: start.elapsed().as_secs_f64(),
        per_prompt,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The player's box around its centroid, grown by [`HERO_MARGIN`].
fn hero_box(frame: &[u8]) -> Option<(i32, i32, i32, i32)> {
    let (x, y) = find_player_within(frame, PLAYER_TOLERANCE)?;
    let (x, y) = (x.round() as i32, y.round() as i32);
    Some((
        x - 3 - HERO_MARGIN,
        y - 4 - HERO_MARGIN,
        x + 3 + HERO_MARGIN,
        y + 4 + HERO_MARGIN,
    ))
}

/// PSNR of two 64×64 frames over the pixels outside `boxes` (inclusive corners).
fn psnr_outside(a: &[u8], b: &[u8], boxes: &[(i32, i32, i32, i32)]) -> f64 {
    let (mut ka, mut kb) = (Vec::new(), Vec::new());
    for (i, (pa, pb)) in a.chunks_exact(3).zip(b.chunks_exact(3)).enumerate() {
        let (x, y) = ((i % FRAME_SIZE) as i32, (i / FRAME_SIZE) as i32);
        let hidden = boxes
            .iter()
            .any(|&(x0, y0, x1, y1)| (x0..=x1).contains(&x) && (y0..=y1).contains(&y));
        if !hidden {
            ka.extend_from_slice(pa);
            kb.extend_from_slice(pb);
        }
    }
    psnr_capped(&ka, &kb)
}

/// Did the hero move the way `key` asks (more than a pixel)?
/// Share of the frames of `rows` that show the hero: at least [`PRESENCE_PIXELS`] pixels of
/// the player's colour (a decoder that learnt a picture can leave a stray one elsewhere).
fn presence(rows: &[Vec<Frame>]) -> f64 {
    let frames = rows.iter().flatten();
    let found = frames
        .clone()
        .filter(|f| player_pixels_within(f, PLAYER_TOLERANCE) >= PRESENCE_PIXELS)
        .count();
    found as f64 / frames.count().max(1) as f64
}

fn moved_as_keyed(key: Action, motion: Option<[f32; 2]>) -> bool {
    let Some([dx, dy]) = motion else {
        return false;
    };
    if dx.abs() > MAX_DX || dy.abs() > MAX_DY {
        return false;
    }
    match key {
        Action::Left => dx < -1.0,
        Action::Right => dx > 1.0,
        Action::Jump => dy < -1.0,
        _ => false,
    }
}

fn evaluate_one(
    genie: &Genie,
    path: &Path,
    index: u64,
    opts: &PromptEvalOptions,
) -> Result<PromptFigures, PromptEvalError> {
    let file = file_name(path);
    let given = opts.heroes.get(&file).copied();
    let choice = match given {
        Some([x, y]) => HeroChoice::At { x, y },
        None => HeroChoice::Auto,
    };
    let opened = Prompt::open(path, 1, choice)?;
    let (hero, hero_at) = match opened.hero {
        HeroOutcome::Redrawn(p) if p.guessed => ("guessed", Some([p.at.0, p.at.1])),
        HeroOutcome::Redrawn(p) => ("given", Some([p.at.0, p.at.1])),
        HeroOutcome::AlreadyDrawn => ("already drawn", None),
        HeroOutcome::NotFound | HeroOutcome::Off => ("not found", None),
    };
    // The guess, judged against the given hero.
    let (guess_at, guess_hit) = match given {
        Some([gx, gy]) => {
            let auto = Prompt::open(path, 1, HeroChoice::Auto)?;
            match auto.hero {
                HeroOutcome::Redrawn(p) => {
                    let (w, h) =
                        image::image_dimensions(path).map_err(|e| PromptError::NotAnImage {
                            path: path.into(),
                            reason: e.to_string(),
                        })?;
                    let per_px = FRAME_SIZE as f64 / Crop::of(w, h).side as f64;
                    let d = ((p.at.0 as f64 - gx as f64).powi(2)
                        + (p.at.1 as f64 - gy as f64).powi(2))
                    .sqrt()
                        * per_px;
                    (Some([p.at.0, p.at.1]), Some(d <= GUESS_RADIUS))
                }
                HeroOutcome::AlreadyDrawn => (None, None),
                _ => (None, Some(false)),
            }
        }
        None => (None, None),
    };
    let prompt = opened
        .prompt
        .frames
        .last()
        .expect("a prompt has a frame")
        .clone();
    let seed = opts.seed.wrapping_add(index);
    let calibrated = KeyMap::new(&genie.config);
    let learnt = opts.learn.map(|learn| {
        let seed = learn.seed ^ seed;
        learn_picture(genie, &prompt, &calibrated, &LearnOptions { seed, ..learn })
    });
    let keys = learnt.as_ref().map_or(calibrated, |l| l.keys.clone());
    let still_view = learnt.is_some();
    let (recon, rows, views) = dream_keys(genie, &keys, still_view, &prompt, seed, &opts.sampler);
    let learnt = learnt.map(|l| {
        let report = l.report;
        l.forget();
        report
    });
    let reconstruction = psnr_capped(&recon, &prompt);
    let noop_end = &rows[0][HORIZON - 1];
    let boxes: Vec<_> = [hero_box(&recon), hero_box(noop_end)]
        .into_iter()
        .flatten()
        .collect();
    let persistence = psnr_outside(&recon, noop_end, &boxes);
    let start_place = find_player_within(&recon, PLAYER_TOLERANCE);
    let (mut hero_motion, mut hero_moved) = (BTreeMap::new(), BTreeMap::new());
    let patch = genie.config.tokenizer.patch as f32;
    for ((key, row), view) in KEYS.iter().zip(&rows).zip(&views).skip(1) {
        let motion = start_place.and_then(|(x0, y0)| {
            let (x, y) = find_player_within(&row[MOVE_FRAMES - 1], PLAYER_TOLERANCE)?;
            // In the world, not on the screen: a view that stepped is no motion of the hero.
            let stepped = view[MOVE_FRAMES - 1] as f32 * patch;
            Some([x + stepped - x0, y - y0])
        });
        hero_moved.insert(key.name().to_owned(), moved_as_keyed(*key, motion));
        hero_motion.insert(key.name().to_owned(), motion);
    }
    if let Some(dir) = &opts.sheets {
        let plain = Prompt::load(path, 1)?;
        let mut sheet_rows = vec![vec![plain.frames[0].clone(), prompt.clone(), recon.clone()]];
        sheet_rows.extend(
            rows.iter()
                .map(|row| row.iter().skip(1).step_by(2).cloned().collect()),
        );
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("prompt_{index}"));
        let out = dir.join(format!("{stem}.png"));
        grid(&sheet_rows, 2, 4, [24, 24, 24])
            .save(&out)
            .map_err(|e| PromptEvalError::Sheet {
                path: out.clone(),
                what: e.to_string(),
            })?;
    }
    let hero_follows_keys = hero_moved.values().all(|&m| m);
    let hero_presence = presence(&rows);
    Ok(PromptFigures {
        file,
        hero: hero.to_owned(),
        hero_at,
        guess_at,
        guess_hit,
        reconstruction,
        persistence,
        hero_motion,
        hero_moved,
        hero_follows_keys,
        hero_presence,
        learnt,
    })
}

/// The tokenizer's reconstruction of `prompt` and, per key of [`KEYS`], the [`HORIZON`] frames
/// dreamed with it held (turned into latents by `keys`; the view held still where
/// `still_view`), all four from the same prompt in one
/// batch; and, per key and frame, the columns the dreamed view has moved since the prompt
/// (positive: right; always 0 for a model that does not scroll).
fn dream_keys(
    genie: &Genie,
    keys: &KeyMap,
    still_view: bool,
    prompt: &[u8],
    seed: u64,
    sampler: &SamplerConfig,
) -> (Vec<u8>, Vec<Vec<Frame>>, Vec<Vec<i64>>) {
    let device = genie.tokenizer_vs.device();
    let b = KEYS.len() as i64;
    let s = FRAME_SIZE as i64;
    let frames = frames_to_f32(
        &Tensor::from_slice(prompt)
            .view([1, 1, s, s, 3])
            .repeat([b, 1, 1, 1, 1])
            .to_device(device),
    );
    let mut rows = vec![Vec::new(); KEYS.len()];
    let mut views = vec![Vec::new(); KEYS.len()];
    let mut view = vec![0i64; KEYS.len()];
    let recon = tch::no_grad(|| {
        let mut rollout = Rollout::new(genie, b);
        let first = rollout.start(genie, &genie.tokenizer.encode(&frames), None, &[]);
        let recon = frames_to_bytes(&first.select(1, 0).select(0, 0));
        let mut states = [KeyState::default(); KEYS.len()];
        for t in 0..HORIZON {
            let ids = rollout.last().expect("a started rollout");
            let keyed: Vec<Keyed> = states
                .iter_mut()
                .zip(KEYS)
                .map(|(state, k)| keys.key(state, k, t == 0))
                .collect();
            let latents = keys.pick(genie.adapter.as_ref(), ids, rollout.shown(), &keyed);
            // Seeded per step from the session seed, as a dream's steps are.
            let step_seed = seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut rng = SamplerRng::seed_from_u64(step_seed);
            let action = Tensor::from_slice(&latents)
                .to_kind(Kind::Int64)
                .to_device(device);
            // A learnt picture is played as one screen, as `genie play --learn` plays it.
            let (moves, frame) = if still_view {
                let moves = vec![0; KEYS.len()];
                let (_, frame) = rollout.step_moving(genie, &action, &moves, sampler, &mut rng);
                (moves, frame)
            } else {
                let (_, moves, frame) = rollout.step(genie, &action, sampler, &mut rng);
                (moves, frame)
            };
            for ((at, moved), seen) in view.iter_mut().zip(&moves).zip(&mut views) {
                *at += moved;
                seen.push(*at);
            }
            let decoded = frames_to_bytes(&frame);
            let bytes = (s * s * 3) as usize;
            for (row, frame) in rows.iter_mut().zip(decoded.chunks(bytes)) {
                row.push(frame.to_vec());
            }
        }
        recon
    });
    (recon, rows, views)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn motion_passes_only_the_way_it_was_keyed() {
        assert!(moved_as_keyed(Action::Left, Some([-2.0, 0.0])));
        assert!(
            !moved_as_keyed(Action::Left, Some([-0.5, 0.0])),
            "dead band"
        );
        assert!(!moved_as_keyed(Action::Left, Some([3.0, 0.0])));
        assert!(moved_as_keyed(Action::Right, Some([1.5, 4.0])));
        assert!(moved_as_keyed(Action::Jump, Some([0.0, -3.0])));
        assert!(
            !moved_as_keyed(Action::Jump, Some([0.0, 3.0])),
            "falling is not a jump"
        );
        assert!(!moved_as_keyed(Action::Right, None), "a lost hero fails");
        assert!(
            !moved_as_keyed(Action::Left, Some([-30.0, 0.0])),
            "a player elsewhere"
        );
        assert!(
            !moved_as_keyed(Action::Jump, Some([0.0, -40.0])),
            "a player elsewhere"
        );
    }

    #[test]
    fn presence_counts_the_frames_that_show_the_hero() {
        let empty = vec![100u8; FRAME_SIZE * FRAME_SIZE * 3];
        let mut hero = empty.clone();
        crate::session::hero::draw_player(&mut hero, 20, 30);
        let rows = vec![
            vec![hero.clone(), hero.clone(), empty.clone()],
            vec![empty.clone(), hero.clone(), empty],
        ];
        assert_eq!(presence(&rows), 0.5);
        // A few stray pixels of the colour are no hero.
        let mut stray = vec![100u8; FRAME_SIZE * FRAME_SIZE * 3];
        for i in [0, 500, 900, 1300, 2000, 3000, 4000] {
            stray[i * 3..i * 3 + 3].copy_from_slice(&crate::game::PLAYER_COLOR);
        }
        assert_eq!(presence(&[vec![stray, hero]]), 0.5);
        assert_eq!(presence(&[]), 0.0);
    }

    #[test]
    fn persistence_leaves_the_hero_out() {
        let a = vec![100u8; FRAME_SIZE * FRAME_SIZE * 3];
        let mut b = a.clone();
        // Differ only inside the box (10..=20, 10..=20).
        for y in 10..=20 {
            for x in 10..=20 {
                b[(y * FRAME_SIZE + x) * 3] = 0;
            }
        }
        assert_eq!(psnr_outside(&a, &b, &[(10, 10, 20, 20)]), 100.0);
        assert!(psnr_outside(&a, &b, &[]) < 40.0);
        assert!(psnr_outside(&a, &b, &[(10, 10, 19, 20)]) < 40.0);
    }

    #[test]
    fn heroes_files_and_folders_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = picture_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no pictures"), "{err}");
        let heroes = dir.path().join("heroes.json");
        std::fs::write(&heroes, r#"{"a.png": [1]}"#).unwrap();
        let err = read_heroes(&heroes).unwrap_err().to_string();
        assert!(
            err.contains("heroes.json") && err.contains("[x, y]"),
            "{err}"
        );
        std::fs::write(&heroes, r#"{"a.png": [1, 2]}"#).unwrap();
        assert_eq!(read_heroes(&heroes).unwrap()["a.png"], [1, 2]);
        std::fs::write(dir.path().join("b.PNG"), b"x").unwrap();
        assert_eq!(
            picture_files(dir.path()).unwrap().len(),
            1,
            "heroes.json is skipped"
        );
    }
}
