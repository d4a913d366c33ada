//! Fitting the action adapter ([`crate::model::adapter`]): a calibration by dreams, state by
//! state. From game states of training levels, every latent action is dreamed and every game
//! action played for the measure's horizon; per state and key, the latents whose dreams move the
//! player the way the key moved the real one are the good ones. The adapter learns, from the
//! state's tokens and the key, how likely each latent is to be good, and picks the likeliest:
//! the action-fidelity measure, made to depend on the state. The game's labels only map keys
//! onto latents, as the calibration does; the world model itself never sees them.

use std::path::PathBuf;

use serde::Serialize;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use super::control::{ControlCases, case_batches};
use super::run::EvalOptions;
use crate::game::{Action, Facing};
use crate::model::{Adapter, AdapterConfig, Genie};
use crate::session::keys::KeyMap;

/// The adapter's states come from training levels (below the held-out seeds) from here.
pub const ADAPTER_SEED_START: u64 = 0;

/// A rows file is written again after every this many states (about two minutes of dreams on
/// two CPU cores).
pub const ROWS_SAVED_EVERY: usize = 128;

/// Rows of [`collect`]: per row, the state's tokens, the game action, whether it is the key's
/// first frame, and per latent whether its dream agreed with the key's real motion.
pub struct Transitions {
    /// [S, N] i64.
    pub ids: Tensor,
    /// [S] i64 game action indices.
    pub actions: Tensor,
    /// [S] bool.
    pub pressed: Tensor,
    /// [S, latents] f32, 1 where the latent's dream moved the player as the key did.
    pub agree: Tensor,
}

impl Transitions {
    fn rows(&self, index: &Tensor) -> Transitions {
        Transitions {
            ids: self.ids.index_select(0, index),
            actions: self.actions.index_select(0, index),
            pressed: self.pressed.index_select(0, index),
            agree: self.agree.index_select(0, index),
        }
    }

    fn len(&self) -> i64 {
        self.agree.size()[0]
    }

    fn cat(a: &Transitions, b: &Transitions) -> Transitions {
        Transitions {
            ids: Tensor::cat(&[&a.ids, &b.ids], 0),
            actions: Tensor::cat(&[&a.actions, &b.actions], 0),
            pressed: Tensor::cat(&[&a.pressed, &b.pressed], 0),
            agree: Tensor::cat(&[&a.agree, &b.agree], 0),
        }
    }

    /// The share of rows whose picked latent (`picked` [S] i64) agreed.
    fn agreement(&self, picked: &Tensor) -> f64 {
        self.agree
            .gather(1, &picked.view([-1, 1]), false)
            .mean(Kind::Float)
            .double_value(&[])
    }
}

/// From the states numbered in `states` (state i is level `first_seed` + i, made into a case as
/// the action-fidelity measure makes its cases), every latent held and every game action played for `opts.horizon` frames. A key
/// whose real motion cannot be read (the player off screen, a life lost) gives no rows; every
/// other key two, its press and its hold, with the same agreements. Rows are ordered by state;
/// beside them, each row's state number.
pub fn collect(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: std::ops::Range<usize>,
    progress: &indicatif::ProgressBar,
) -> (Transitions, Vec<usize>) {
    let device = genie.tokenizer_vs.device();
    let k = genie.config.dynamics.latents();
    let (mut ids, mut actions, mut pressed, mut agree) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut of_state = Vec::new();
    let batches = case_batches(first_seed, states.end, opts.batch);
    for seeds in batches
        .into_iter()
        .map(|batch| {
            batch
                .into_iter()
                .filter(|&(_, case)| case as usize >= states.start)
        })
        .map(Vec::from_iter)
        .filter(|batch| !batch.is_empty())
    {
        let cases = ControlCases::new(genie, seeds.iter().copied(), opts.prompt_frames);
        let state = cases.ids.select(1, -1); // [B, N]
        let dreamed: Vec<Vec<Option<(i8, i8)>>> = (0..k)
            .map(|l| cases.dreamed_directions(genie, &vec![l; opts.horizon], opts))
            .collect();
        let wants: Vec<Vec<Option<(i8, i8)>>> = Action::ALL
            .iter()
            .map(|&a| cases.real_directions(a, opts.horizon))
            .collect();
        for (b, case) in seeds.iter().map(|&(_, case)| case as usize).enumerate() {
            for (action, want) in Action::ALL.iter().zip(&wants) {
                let Some(want) = want[b] else { continue };
                let row: Vec<f32> = dreamed
                    .iter()
                    .map(|d| f32::from(u8::from(d[b] == Some(want))))
                    .collect();
                for first in [true, false] {
                    ids.push(state.get(b as i64));
                    actions.push(*action as i64);
                    pressed.push(first);
                    agree.push(Tensor::from_slice(&row));
                    of_state.push(case);
                }
            }
        }
        progress.inc(cases.games.len() as u64);
    }
    let n = genie.config.dynamics.tokens_per_frame;
    let rows = Transitions {
        ids: if ids.is_empty() {
            Tensor::zeros([0, n], (Kind::Int64, device))
        } else {
            Tensor::stack(&ids, 0)
        },
        actions: Tensor::from_slice(&actions).to_device(device),
        pressed: Tensor::from_slice(&pressed).to_device(device),
        agree: if agree.is_empty() {
            Tensor::zeros([0, k], (Kind::Float, device))
        } else {
            Tensor::stack(&agree, 0).to_device(device)
        },
    };
    (rows, of_state)
}

/// A file of collected rows is unusable: which file, and why.
#[derive(Debug, thiserror::Error)]
pub enum RowsError {
    #[error("{path}: not a file of adapter rows ({reason})")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path}: rows of other dreams ({reason}); they cannot be added to, give another --adapter-rows file or delete this one"
    )]
    Other { path: PathBuf, reason: String },
    #[error("{path}: {error}")]
    Torch { path: PathBuf, error: tch::TchError },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Collected rows kept in a file (safetensors) while they are collected, so that a long
/// collection that is stopped goes on where it was when the command is run again, and a fit can
/// be tried again on the same rows. The file says which dreams its rows come from (the first
/// level, the horizon, the prompt frames and a fingerprint of the tokenizer's and the dynamics
/// model's weights, whose dreams make the agreements) and how many states it covers.
pub struct RowsFile {
    pub path: PathBuf,
}

/// What a rows file's rows were made with; two collections add up only where these agree.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Made {
    first_seed: u64,
    horizon: usize,
    prompt_frames: usize,
    fingerprint: f64,
}

impl Made {
    fn of(genie: &Genie, opts: &EvalOptions, first_seed: u64) -> Self {
        Self {
            first_seed,
            horizon: opts.horizon,
            prompt_frames: opts.prompt_frames,
            fingerprint: fingerprint(genie),
        }
    }
}

/// A number that changes with the tokenizer's and the dynamics model's weights and with the
/// sampler (the sum of every weight's absolute value, taken in name order, plus the sampler's
/// settings).
fn fingerprint(genie: &Genie) -> f64 {
    let mut total = 0.0;
    for vs in [&genie.tokenizer_vs, &genie.dynamics_vs] {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, t) in named {
            total += t.abs().sum(Kind::Double).double_value(&[]);
        }
    }
    let s = genie.config.sampler;
    total + s.steps as f64 * 1e-3 + s.temperature * 1e-2 + s.confidence_noise * 1e-4
}

impl RowsFile {
    /// The rows in the file, the states they cover and what made them; None where there is no
    /// file yet.
    #[allow(clippy::type_complexity)]
    fn read(
        &self,
        genie: &Genie,
    ) -> Result<Option<(Transitions, Vec<usize>, usize, Made)>, RowsError> {
        if !self.path.exists() {
            return Ok(None);
        }
        let invalid = |reason: String| RowsError::Invalid {
            path: self.path.clone(),
            reason,
        };
        let named = Tensor::read_safetensors(&self.path).map_err(|error| RowsError::Torch {
            path: self.path.clone(),
            error,
        })?;
        let get = |name: &str, kind: Kind, dims: usize| -> Result<Tensor, RowsError> {
            let (_, t) = named
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| invalid(format!("no tensor {name:?}")))?;
            if t.kind() != kind || t.dim() != dims {
                return Err(invalid(format!(
                    "{name:?} is {:?} of {} dimensions, not {kind:?} of {dims}",
                    t.kind(),
                    t.dim()
                )));
            }
            Ok(t.shallow_clone())
        };
        let meta = get("meta", Kind::Int64, 1)?;
        let fingerprint = get("fingerprint", Kind::Double, 1)?;
        let ids = get("ids", Kind::Int64, 2)?;
        let actions = get("actions", Kind::Int64, 1)?;
        let pressed = get("pressed", Kind::Uint8, 1)?;
        let agree = get("agree", Kind::Float, 2)?;
        let state = get("state", Kind::Int64, 1)?;
        let meta =
            Vec::<i64>::try_from(&meta).map_err(|e: tch::TchError| invalid(e.to_string()))?;
        let [first_seed, covered, horizon, prompt_frames] = meta[..] else {
            return Err(invalid(format!(
                "\"meta\" has {} values, not 4",
                meta.len()
            )));
        };
        if fingerprint.numel() != 1
            || [first_seed, covered, horizon, prompt_frames]
                .iter()
                .any(|&v| v < 0)
        {
            return Err(invalid("\"meta\" or \"fingerprint\" out of range".into()));
        }
        let rows = agree.size()[0];
        let (n, k) = (
            genie.config.dynamics.tokens_per_frame,
            genie.config.dynamics.latents(),
        );
        let vocab = genie.config.dynamics.vocab_size;
        let within = |t: &Tensor, hi: i64| {
            t.numel() == 0 || (t.min().int64_value(&[]) >= 0 && t.max().int64_value(&[]) < hi)
        };
        let consistent = ids.size() == [rows, n]
            && agree.size() == [rows, k]
            && actions.size() == [rows]
            && pressed.size() == [rows]
            && state.size() == [rows]
            && within(&ids, vocab)
            && within(&actions, Action::ALL.len() as i64)
            && within(&pressed, 2)
            && within(&state, covered.max(1))
            && (rows < 2
                || (state.narrow(0, 1, rows - 1) - state.narrow(0, 0, rows - 1))
                    .min()
                    .int64_value(&[])
                    >= 0);
        if !consistent {
            return Err(invalid(format!(
                "its {rows} rows do not fit this checkpoint ({n} tokens a frame of {vocab} codes, {k} latent actions) or the {covered} states it says it covers"
            )));
        }
        let device = genie.tokenizer_vs.device();
        let made = Made {
            first_seed: first_seed as u64,
            horizon: horizon as usize,
            prompt_frames: prompt_frames as usize,
            fingerprint: fingerprint.double_value(&[0]),
        };
        let of_state: Vec<usize> = Vec::<i64>::try_from(&state)
            .map_err(|e: tch::TchError| invalid(e.to_string()))?
            .into_iter()
            .map(|s| s as usize)
            .collect();
        let rows = Transitions {
            ids: ids.to_device(device),
            actions: actions.to_device(device),
            pressed: pressed.to_kind(Kind::Bool).to_device(device),
            agree: agree.to_device(device),
        };
        Ok(Some((rows, of_state, covered as usize, made)))
    }

    /// Writes the rows (the first `covered` states) through a temporary file, so that a
    /// process stopped while writing leaves the last whole file.
    fn write(
        &self,
        rows: &Transitions,
        of_state: &[usize],
        covered: usize,
        made: Made,
    ) -> Result<(), RowsError> {
        let cpu = |t: &Tensor| t.to_device(Device::Cpu);
        let state: Vec<i64> = of_state.iter().map(|&s| s as i64).collect();
        let meta = [
            made.first_seed as i64,
            covered as i64,
            made.horizon as i64,
            made.prompt_frames as i64,
        ];
        let named = [
            ("meta", Tensor::from_slice(&meta)),
            ("fingerprint", Tensor::from_slice(&[made.fingerprint])),
            ("ids", cpu(&rows.ids)),
            ("actions", cpu(&rows.actions)),
            ("pressed", cpu(&rows.pressed).to_kind(Kind::Uint8)),
            ("agree", cpu(&rows.agree)),
            ("state", Tensor::from_slice(&state)),
        ];
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        Tensor::write_safetensors(&named, &tmp).map_err(|error| RowsError::Torch {
            path: tmp.clone(),
            error,
        })?;
        std::fs::rename(&tmp, &self.path).map_err(|error| RowsError::Io {
            path: self.path.clone(),
            error,
        })
    }
}

/// Rows of `states` states from `first_seed`: those already in `file` (where one is given and
/// its rows are of these dreams), then the rest collected and added to it every `save_every`
/// states.
pub fn collect_rows(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: usize,
    file: Option<&RowsFile>,
    save_every: usize,
    progress: &indicatif::ProgressBar,
) -> Result<(Transitions, Vec<usize>), RowsError> {
    let made = Made::of(genie, opts, first_seed);
    let (mut rows, mut of_state, mut covered) = match file.map(|f| f.read(genie)).transpose()? {
        Some(Some((rows, of_state, covered, was))) => {
            let file = file.expect("read from it");
            let other = |reason: String| RowsError::Other {
                path: file.path.clone(),
                reason,
            };
            if was.fingerprint != made.fingerprint {
                return Err(other("another checkpoint's weights or sampler".into()));
            }
            if (was.first_seed, was.horizon, was.prompt_frames)
                != (made.first_seed, made.horizon, made.prompt_frames)
            {
                return Err(other(format!(
                    "levels from {}, horizon {}, {} prompt frames; here levels from {}, horizon {}, {} prompt frames",
                    was.first_seed,
                    was.horizon,
                    was.prompt_frames,
                    made.first_seed,
                    made.horizon,
                    made.prompt_frames
                )));
            }
            progress
                .suspend(|| eprintln!("{}: rows of {covered} states read", file.path.display()));
            (rows, of_state, covered)
        }
        _ => {
            let (rows, of_state) = collect(genie, opts, first_seed, 0..0, progress);
            (rows, of_state, 0)
        }
    };
    progress.set_position(covered.min(states) as u64);
    while covered < states {
        let to = (covered + save_every.max(1)).min(states);
        let (more, more_states) = collect(genie, opts, first_seed, covered..to, progress);
        rows = Transitions::cat(&rows, &more);
        of_state.extend(more_states);
        covered = to;
        if let Some(file) = file {
            file.write(&rows, &of_state, covered, made)?;
            // Where no bar is drawn (a log file), a line now and then says how far it is.
            if progress.is_hidden() {
                eprintln!(
                    "{}: rows of {covered} of {states} states saved",
                    file.path.display()
                );
            }
        }
    }
    // A file that covers more states than asked for gives only the first `states`.
    let keep = of_state.iter().take_while(|&&s| s < states).count() as i64;
    let device = rows.ids.device();
    let rows = rows.rows(&Tensor::arange(keep, (Kind::Int64, device)));
    of_state.truncate(keep as usize);
    Ok((rows, of_state))
}

/// What [`fit`] reached: on the held-out states (the last fifth), the share of keys whose
/// picked latent's dream moved the player as the key moved the real one, for each map.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterFit {
    pub states: usize,
    pub rows: i64,
    pub epochs: usize,
    /// The epoch whose weights were kept (best on the held-out rows).
    pub best_epoch: usize,
    /// The adapter, on the states it was fitted on and on the held-out ones.
    pub train_agreement: f64,
    pub held_out_agreement: f64,
    /// The best map that ignores the state (per game action and press, the latent that agreed
    /// most often on the fitted states), on the held-out states.
    pub state_free_agreement: f64,
    /// The checkpoint's calibration (hold and press maps) on the held-out states.
    pub calibration_agreement: f64,
    pub seconds: f64,
}

/// Trains `adapter` on `train` for `epochs` passes (AdamW, batches of 256; each latent's
/// agreement a binary target) and keeps the weights of the epoch whose picks agreed most often
/// on `held`; returns that share and epoch.
pub fn train(
    adapter: &Adapter,
    train: &Transitions,
    held: &Transitions,
    epochs: usize,
    progress: &indicatif::ProgressBar,
) -> (f64, usize) {
    let device = train.ids.device();
    let mut opt = nn::AdamW {
        wd: 1e-2,
        ..Default::default()
    }
    .build(&adapter.vs, 3e-3)
    .expect("an optimizer");
    let batch: i64 = 256;
    let (mut best, mut best_epoch, mut kept) = (-1.0, 0, Vec::new());
    for epoch in 1..=epochs {
        let order = Tensor::randperm(train.len(), (Kind::Int64, device));
        for from in (0..train.len()).step_by(batch as usize) {
            let rows = train.rows(&order.narrow(0, from, batch.min(train.len() - from)));
            let logits = adapter.net.logits(&rows.ids, &rows.actions, &rows.pressed);
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
                &rows.agree,
                None,
                None,
                Reduction::Mean,
            );
            opt.backward_step(&loss);
        }
        let score = held.agreement(&adapter.net.pick(&held.ids, &held.actions, &held.pressed));
        if score > best {
            (best, best_epoch) = (score, epoch);
            kept = adapter
                .vs
                .variables()
                .into_iter()
                .map(|(n, t)| (n, t.copy()))
                .collect();
        }
        progress.inc(1);
    }
    tch::no_grad(|| {
        let variables = adapter.vs.variables();
        for (name, value) in &kept {
            variables[name].shallow_clone().copy_(value);
        }
    });
    (best, best_epoch)
}

/// Fits `genie`'s adapter (a new one of `cfg`'s sizes) on `states` states of training levels
/// (their rows kept in and read from `rows`, where given) and keeps it in `genie` (config and
/// weights); returns what it reached.
pub fn fit(
    genie: &mut Genie,
    cfg: AdapterConfig,
    states: usize,
    epochs: usize,
    rows: Option<&RowsFile>,
    progress: &indicatif::ProgressBar,
) -> Result<AdapterFit, RowsError> {
    let start = std::time::Instant::now();
    let device = genie.tokenizer_vs.device();
    let opts = EvalOptions {
        sampler: genie.config.sampler,
        ..Default::default()
    };
    progress.set_length(states as u64);
    progress.set_message("dreaming every latent from each state");
    let (all, of_state) = collect_rows(
        genie,
        &opts,
        ADAPTER_SEED_START,
        states,
        rows,
        ROWS_SAVED_EVERY,
        progress,
    )?;
    // The last fifth of the states choose the epoch.
    let held_states = (states / 5).max(1).min(states.saturating_sub(1));
    let held_rows = of_state
        .iter()
        .filter(|&&s| s >= states - held_states)
        .count() as i64;
    let split = all.len() - held_rows;
    let index = |from: i64, to: i64| Tensor::arange_start(from, to, (Kind::Int64, device));
    let (fitted, held) = (
        all.rows(&index(0, split)),
        all.rows(&index(split, all.len())),
    );

    // Maps that ignore the state, as a latent per adapter head (held, then pressed, per action;
    // the rows do not say which way the player faced: the calibration's latents facing right,
    // or the key's own way).
    let heads = crate::model::adapter::HEADS;
    let head = |t: &Transitions| crate::model::adapter::head(&t.actions, &t.pressed);
    let keys = KeyMap::new(&genie.config);
    let calibration: Vec<i64> = Action::ALL
        .iter()
        .flat_map(|&a| {
            let f = Facing::default().with(a);
            [keys.latent(a, false, f), keys.latent(a, true, f)]
        })
        .collect();
    let calibration = Tensor::from_slice(&calibration).to_device(device);
    let calibration_agreement = held.agreement(&calibration.index_select(0, &head(&held)));
    let state_free_agreement = {
        let k = genie.config.dynamics.latents();
        let sums = Tensor::zeros([heads, k], (Kind::Float, device)).index_add(
            0,
            &head(&fitted),
            &fitted.agree,
        );
        let best = sums.argmax(-1, false);
        held.agreement(&best.index_select(0, &head(&held)))
    };

    let adapter = Genie::new_adapter(&genie.config, cfg, device);
    progress.set_position(0);
    progress.set_length(epochs as u64);
    progress.set_message("fitting the adapter");
    let (best, best_epoch) = train(&adapter, &fitted, &held, epochs, progress);
    progress.finish_and_clear();
    let train_agreement = fitted.agreement(&adapter.net.pick(
        &fitted.ids,
        &fitted.actions,
        &fitted.pressed,
    ));
    genie.config.adapter = Some(cfg);
    genie.adapter = Some(adapter);
    Ok(AdapterFit {
        states,
        rows: all.len(),
        epochs,
        best_epoch,
        train_agreement,
        held_out_agreement: best,
        state_free_agreement,
        calibration_agreement,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AdapterShape;
    use tch::Device;
    use tch::nn::VarStore;

    /// Rows whose one good latent is what the first token and the key say: (token 0 + action)
    /// mod 4, and 4 whenever the key is held.
    fn rows(n: i64, seed: i64) -> Transitions {
        tch::manual_seed(seed);
        let ids = Tensor::randint(16, [n, 4], (Kind::Int64, Device::Cpu));
        let actions = Tensor::randint(8, [n], (Kind::Int64, Device::Cpu));
        let pressed = Tensor::randint(2, [n], (Kind::Int64, Device::Cpu));
        let good: Tensor = (ids.select(1, 0) + &actions).remainder(4) * &pressed
            + (pressed.ones_like() - &pressed) * 4;
        Transitions {
            ids,
            actions,
            pressed: pressed.to_kind(Kind::Bool),
            agree: good.one_hot(5).to_kind(Kind::Float),
        }
    }

    /// An untrained world model on 64×64 frames, as the adapter's rows are dreamed with.
    fn small_genie(seed: i64) -> Genie {
        tch::manual_seed(seed);
        Genie::new(
            crate::model::checkpoint::tests::tiny_game_config(),
            Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn a_rows_file_goes_on_where_it_stopped_and_refuses_other_dreams_or_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let genie = small_genie(3);
        let opts = EvalOptions {
            sampler: genie.config.sampler,
            batch: 4,
            ..Default::default()
        };
        let bar = indicatif::ProgressBar::hidden();
        let file = RowsFile {
            path: dir.path().join("rows.safetensors"),
        };
        let (whole, whole_states) = collect_rows(&genie, &opts, 0, 6, None, 100, &bar).unwrap();
        assert!(whole.len() > 0 && !file.path.exists());
        // Stopped after 4 states (saved every 2), then run again for 6: it adds states 4 and 5
        // to the 4 it read, which it does not dream again.
        let (part, _) = collect_rows(&genie, &opts, 0, 4, Some(&file), 2, &bar).unwrap();
        let (grown, grown_states) =
            collect_rows(&genie, &opts, 0, 6, Some(&file), 2, &bar).unwrap();
        assert_eq!(grown_states, whole_states);
        assert!(grown.ids.equal(&whole.ids) && grown.actions.equal(&whole.actions));
        assert!(grown.pressed.equal(&whole.pressed));
        let first = Tensor::arange(part.len(), (Kind::Int64, Device::Cpu));
        assert!(grown.rows(&first).agree.equal(&part.agree));
        // A finished file is read as it is, and gives fewer states where fewer are asked for.
        let (again, _) = collect_rows(&genie, &opts, 0, 6, Some(&file), 2, &bar).unwrap();
        assert!(again.agree.equal(&grown.agree) && again.ids.equal(&grown.ids));
        let (fewer, fewer_states) =
            collect_rows(&genie, &opts, 0, 4, Some(&file), 2, &bar).unwrap();
        assert!(fewer.ids.equal(&part.ids) && fewer_states.iter().all(|&s| s < 4));

        // Another model's dreams, or other levels, are not added to.
        let other = small_genie(4);
        let refused = collect_rows(&other, &opts, 0, 8, Some(&file), 2, &bar);
        assert!(
            matches!(refused, Err(RowsError::Other { .. })),
            "{:?}",
            refused.err()
        );
        let refused = collect_rows(&genie, &opts, 5, 8, Some(&file), 2, &bar);
        let message = refused.err().expect("other levels").to_string();
        assert!(
            message.contains("rows.safetensors") && message.contains("levels from 0"),
            "{message}"
        );
        // A broken file is named, and left as it was.
        std::fs::write(&file.path, b"not rows").unwrap();
        let broken = collect_rows(&genie, &opts, 0, 6, Some(&file), 2, &bar);
        assert!(
            broken
                .err()
                .expect("broken")
                .to_string()
                .contains("rows.safetensors")
        );
        assert_eq!(std::fs::read(&file.path).unwrap(), b"not rows");
    }

    #[test]
    fn the_adapter_learns_a_latent_that_depends_on_the_state_and_the_key() {
        let shape = AdapterShape {
            vocab: 16,
            tokens: 4,
            latents: 5,
        };
        let vs = VarStore::new(Device::Cpu);
        let net = crate::model::ActionAdapter::new(vs.root(), &AdapterConfig::default(), shape);
        let adapter = Adapter { vs, net };
        let (fitted, held) = (rows(4096, 1), rows(512, 2));
        let pick = |t: &Transitions| adapter.net.pick(&t.ids, &t.actions, &t.pressed);
        let before = held.agreement(&pick(&held));
        let (best, epoch) = train(
            &adapter,
            &fitted,
            &held,
            20,
            &indicatif::ProgressBar::hidden(),
        );
        let after = held.agreement(&pick(&held));
        // No map that ignores the first token can pass 5/8 (the held rows, and a quarter of
        // the pressed ones); the adapter reads it.
        assert!(after > 0.95, "held-out agreement {after} (from {before})");
        assert_eq!(
            after, best,
            "the kept weights are the best epoch's ({epoch})"
        );
    }
}
