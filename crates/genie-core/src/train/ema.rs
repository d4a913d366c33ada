//! An exponential moving average of the weights a run trains (Polyak averaging, as MaskGIT,
//! MAGVIT and diffusion models ship their weights): after every optimizer step each average
//! moves `1 − decay` of the way to the weight. The average irons out the last steps' batch noise,
//! which on small batches moves a model's whole-session behaviour from one checkpoint to the next.
//!
//! During a run the network file keeps the optimizer's own weights and the averages live beside
//! them in `ema_<network>.safetensors`, so a stopped run resumes both exactly. When the schedule
//! ends, the averages become the network's weights and that file goes (train/run.rs).

use std::path::Path;

use tch::{Tensor, nn};

use crate::model::checkpoint::{CheckpointError, load_network, save_network};

/// The averages' file name for a network in a run folder.
pub fn state_file(network: &str) -> String {
    format!("ema_{network}.safetensors")
}

pub struct Ema {
    /// The trainable variables, shallow (the network's own storage), by name.
    params: Vec<(String, Tensor)>,
    /// Their averages, held in a var store of the same names so the checkpoint code writes and
    /// checks them as it does a network.
    store: nn::VarStore,
    averages: Vec<Tensor>,
    decay: f64,
}

impl Ema {
    /// Averages of the trainable variables of `vs`, starting at their current values.
    ///
    /// # Panics
    /// If `decay` is not in (0, 1): callers check the flag first ([`check_decay`]).
    pub fn new(vs: &nn::VarStore, decay: f64) -> Self {
        assert!(
            check_decay(decay).is_ok(),
            "EMA decay {decay} out of (0, 1)"
        );
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let store = nn::VarStore::new(vs.device());
        let averages = params
            .iter()
            .map(|(name, p)| {
                // `a.b.w` lives at path a/b, variable w (a var store name has no dots).
                let mut parts: Vec<&str> = name.split('.').collect();
                let leaf = parts.pop().expect("split yields at least one part");
                let path = parts
                    .into_iter()
                    .fold(store.root(), |path, part| path / part);
                path.add(leaf, p.detach().copy(), false)
            })
            .collect();
        Self {
            params,
            store,
            averages,
            decay,
        }
    }

    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// Moves every average towards its weight; call after each optimizer step.
    pub fn update(&mut self) {
        tch::no_grad(|| {
            for ((_, p), a) in self.params.iter().zip(&mut self.averages) {
                let _ = a.lerp_(p, 1.0 - self.decay);
            }
        });
    }

    /// Exchanges the weights and their averages in place: call twice to put them back (e.g.
    /// around an evaluation of the averaged network).
    pub fn swap(&mut self) {
        tch::no_grad(|| {
            for ((_, p), a) in self.params.iter_mut().zip(&mut self.averages) {
                let weights = p.detach().copy();
                let _ = p.copy_(a);
                let _ = a.copy_(&weights);
            }
        });
    }

    /// Runs `f` with the averages in the network's place, then puts the weights back.
    pub fn with_averages<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.swap();
        let out = f();
        self.swap();
        out
    }

    /// Writes the averages to a safetensors file at `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        save_network(&self.store, path)
    }

    /// Restores averages saved by [`Ema::save`]: the file must hold exactly these variables
    /// with the same shapes, else nothing changes and the error says which file and what is
    /// wrong.
    pub fn load(&mut self, path: &Path) -> Result<(), CheckpointError> {
        load_network(&self.store, path)
    }
}

/// A decay the flag may take: above 0 and below 1.
pub fn check_decay(decay: f64) -> Result<(), String> {
    if decay > 0.0 && decay < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "an EMA decay is above 0 and below 1 (0.999: each average moves a thousandth of the \
             way a step), not {decay}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn store() -> (nn::VarStore, Tensor) {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().sub("layer").var("w", &[3], nn::Init::Const(1.0));
        let _ = vs.root().zeros_no_train("counts", &[2]);
        (vs, w)
    }

    #[test]
    fn averages_follow_the_weights_and_swap_back_exactly() {
        let (vs, mut w) = store();
        let mut ema = Ema::new(&vs, 0.75);
        tch::no_grad(|| w.copy_(&Tensor::from_slice(&[5.0f32, 5.0, 5.0])));
        ema.update();
        // 1 + 0.25 × (5 − 1) = 2.
        let seen = ema.with_averages(|| Vec::<f32>::try_from(&w).unwrap());
        assert_eq!(seen, vec![2.0; 3]);
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), vec![5.0; 3]);
        ema.update();
        let seen = ema.with_averages(|| Vec::<f32>::try_from(&w).unwrap());
        assert_eq!(seen, vec![2.75; 3]);
    }

    #[test]
    fn saved_averages_load_and_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (vs, mut w) = store();
        let mut ema = Ema::new(&vs, 0.5);
        tch::no_grad(|| w.copy_(&Tensor::from_slice(&[3.0f32, 3.0, 3.0])));
        ema.update();
        let path = dir.path().join(state_file("dynamics"));
        ema.save(&path).unwrap();
        let mut fresh = Ema::new(&vs, 0.5);
        fresh.load(&path).unwrap();
        let seen = fresh.with_averages(|| Vec::<f32>::try_from(&w).unwrap());
        assert_eq!(seen, vec![2.0; 3]);

        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var("v", &[4], nn::Init::Const(0.0));
        let mut wrong = Ema::new(&other, 0.5);
        let err = wrong.load(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn decays_outside_zero_to_one_are_refused() {
        for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(check_decay(bad).is_err(), "{bad}");
        }
        assert!(check_decay(0.999).is_ok());
    }
}
