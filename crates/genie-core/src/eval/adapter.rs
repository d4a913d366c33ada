//! Fitting the action adapter ([`crate::model::adapter`]): a calibration by dreams, state by
//! state. From game states of training levels, every latent action is dreamed and every game
//! action played for the measure's horizon; per state and key, the latents whose dreams move the
//! player the way the key moved the real one are the good ones. The adapter learns, from the
//! state's tokens and the key, how likely each latent is to be good, and picks the likeliest:
//! the action-fidelity measure, made to depend on the state. The game's labels only map keys
//! onto latents, as the calibration does; the world model itself never sees them.

use serde::Serialize;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Reduction, Tensor};

use super::control::{ControlCases, case_batches};
use super::run::EvalOptions;
use crate::game::Action;
use crate::model::{Adapter, AdapterConfig, Genie};
use crate::session::keys::KeyMap;

/// The adapter's states come from training levels (below the held-out seeds) from here.
pub const ADAPTER_SEED_START: u64 = 0;

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

    /// The share of rows whose picked latent (`picked` [S] i64) agreed.
    fn agreement(&self, picked: &Tensor) -> f64 {
        self.agree
            .gather(1, &picked.view([-1, 1]), false)
            .mean(Kind::Float)
            .double_value(&[])
    }
}

/// From `states` states of levels from `first_seed` (as the action-fidelity measure makes its
/// cases), every latent held and every game action played for `opts.horizon` frames. A key
/// whose real motion cannot be read (the player off screen, a life lost) gives no rows; every
/// other key two, its press and its hold, with the same agreements. Rows are ordered by state;
/// beside them, each row's state (0 for the first).
pub fn collect(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: usize,
    progress: &indicatif::ProgressBar,
) -> (Transitions, Vec<usize>) {
    let device = genie.tokenizer_vs.device();
    let k = genie.config.dynamics.num_actions;
    let (mut ids, mut actions, mut pressed, mut agree) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut of_state = Vec::new();
    for seeds in case_batches(first_seed, states, opts.batch) {
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
    let rows = Transitions {
        ids: Tensor::stack(&ids, 0),
        actions: Tensor::from_slice(&actions).to_device(device),
        pressed: Tensor::from_slice(&pressed).to_device(device),
        agree: Tensor::stack(&agree, 0).to_device(device),
    };
    (rows, of_state)
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
/// and keeps it in `genie` (config and weights); returns what it reached.
pub fn fit(
    genie: &mut Genie,
    cfg: AdapterConfig,
    states: usize,
    epochs: usize,
    progress: &indicatif::ProgressBar,
) -> AdapterFit {
    let start = std::time::Instant::now();
    let device = genie.tokenizer_vs.device();
    let opts = EvalOptions {
        sampler: genie.config.sampler,
        ..Default::default()
    };
    progress.set_length(states as u64);
    progress.set_message("dreaming every latent from each state");
    let (all, of_state) = collect(genie, &opts, ADAPTER_SEED_START, states, progress);
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

    // Maps that ignore the state, as a latent per adapter head (held, then pressed, per action).
    let heads = crate::model::adapter::HEADS;
    let head = |t: &Transitions| crate::model::adapter::head(&t.actions, &t.pressed);
    let keys = KeyMap::new(&genie.config);
    let calibration: Vec<i64> = Action::ALL
        .iter()
        .flat_map(|&a| [keys.latent(a, false), keys.latent(a, true)])
        .collect();
    let calibration = Tensor::from_slice(&calibration).to_device(device);
    let calibration_agreement = held.agreement(&calibration.index_select(0, &head(&held)));
    let state_free_agreement = {
        let k = genie.config.dynamics.num_actions;
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
    AdapterFit {
        states,
        rows: all.len(),
        epochs,
        best_epoch,
        train_agreement,
        held_out_agreement: best,
        state_free_agreement,
        calibration_agreement,
        seconds: start.elapsed().as_secs_f64(),
    }
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
