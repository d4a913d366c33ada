//! AdamW (Loshchilov & Hutter) whose state can be saved with the run, so that `--resume`
//! continues the optimizer where it stopped. tch's optimizer keeps its moment estimates inside
//! libtorch, out of reach: a resumed run restarted them from zero, and the first step after a
//! resume then moved every weight by the full learning rate in the direction of one batch's
//! gradient sign (Adam's bias correction makes a first step that size whatever the gradient).
//!
//! The update is PyTorch's `torch.optim.AdamW` (the one tch wrapped, with its defaults:
//! β = (0.9, 0.999), ε = 1e-8, decoupled weight decay on every trainable tensor).

use std::path::Path;

use tch::{Kind, Tensor, nn};

use crate::model::checkpoint::{CheckpointError, load_network, save_network};

/// The state file's name for a network's optimizer in a run folder.
pub fn state_file(network: &str) -> String {
    format!("adamw_{network}.safetensors")
}

/// Name of the step counter in a state file (moment names are `m.` or `v.` + the variable's).
const STEP: &str = "step";

pub struct AdamW {
    /// The trainable variables, by name (sorted, so the order is the same in every run).
    params: Vec<(String, Tensor)>,
    /// The saved state: first and second moment estimates named `m.<variable>` and
    /// `v.<variable>`, zero until the first step, and the step count. Held in a var store so
    /// that the checkpoint code writes and checks it as it does the networks.
    state: nn::VarStore,
    /// The moments again, one per parameter in `params`' order (shallow: the same storage).
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step_var: Tensor,
    /// Steps taken (the bias correction's t).
    steps: i64,
    lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamW {
    /// An optimizer over the trainable variables of `vs`, starting from zero moments.
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64) -> Self {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let state = nn::VarStore::new(vs.device());
        // A moment for `a.b.w` lives at path m/a/b, variable w (a var store name has no dots).
        let moment = |prefix: &str, name: &str, p: &Tensor| {
            let mut parts: Vec<&str> = name.split('.').collect();
            let leaf = parts.pop().expect("split yields at least one part");
            let path = parts
                .into_iter()
                .fold(state.root() / prefix, |path, part| path / part);
            path.add(leaf, p.zeros_like().detach(), false)
        };
        let m = params.iter().map(|(n, p)| moment("m", n, p)).collect();
        let v = params.iter().map(|(n, p)| moment("v", n, p)).collect();
        let step_var =
            state
                .root()
                .add(STEP, Tensor::zeros([1], (Kind::Int64, vs.device())), false);
        Self {
            params,
            state,
            m,
            v,
            step_var,
            steps: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Steps taken since the moments were zero.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The parameters' gradients, in the optimizer's order (by variable name).
    pub fn gradients(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.grad()).collect()
    }

    /// Gives every parameter a (zero) gradient, so that a data-parallel step has one to average
    /// for each on every rank, whatever the batch touched.
    pub fn define_gradients(&mut self) {
        let undefined: Vec<&Tensor> = self
            .params
            .iter()
            .map(|(_, p)| p)
            .filter(|p| !p.grad().defined())
            .collect();
        if let Some(first) = undefined.first() {
            let zero = undefined
                .iter()
                .skip(1)
                .fold(first.sum(Kind::Float) * 0.0, |acc, p| {
                    acc + p.sum(Kind::Float) * 0.0
                });
            zero.backward();
        }
        self.zero_grad();
    }

    /// Makes this optimizer rank 0's: its moments and step count.
    pub fn broadcast_from_first(
        &mut self,
        group: &super::dist::ProcessGroup,
    ) -> Result<(), super::dist::DistError> {
        let tensors: Vec<Tensor> = self
            .m
            .iter()
            .chain(&self.v)
            .map(|t| t.shallow_clone())
            .collect();
        group.broadcast_all(&tensors)?;
        let steps = Tensor::from_slice(&[self.steps]);
        group.broadcast_from_first(&steps)?;
        self.steps = i64::try_from(&steps).unwrap_or(self.steps);
        Ok(())
    }

    /// Scales the gradients down so that their global L2 norm is at most `max`; returns the norm
    /// before clipping.
    pub fn clip_grad_norm(&self, max: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self
                .params
                .iter()
                .map(|(_, p)| p.grad())
                .filter(Tensor::defined)
                .collect();
            if grads.is_empty() {
                return 0.0;
            }
            let norms: Vec<Tensor> = grads.iter().map(|g| g.norm()).collect();
            let total = f64::try_from(Tensor::stack(&norms, 0).norm()).unwrap_or(f64::NAN);
            let coef = max / (total + 1e-6);
            if coef < 1.0 {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(coef);
                }
            }
            total
        })
    }

    /// One AdamW update of every parameter that has a gradient.
    pub fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let step_size = self.lr / (1.0 - b1.powi(t));
        let bias2_sqrt = (1.0 - b2.powi(t)).sqrt();
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = p.g_mul_scalar_(1.0 - self.lr * self.weight_decay);
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.g_mul_scalar_(b2);
                let _ = v.addcmul_(&(&g * (1.0 - b2)), &g);
                let denom = v.sqrt() / bias2_sqrt + self.eps;
                let _ = p.addcdiv_(&(&*m * -step_size), &denom);
            }
        });
    }

    /// Writes the moments and the step count to a safetensors file at `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let _ = self.step_var.shallow_clone().fill_(self.steps);
        save_network(&self.state, path)
    }

    /// Restores the moments and step count saved by [`AdamW::save`]. The file must hold exactly
    /// this optimizer's tensors with the same shapes; otherwise nothing changes and the error
    /// says which file and what is wrong.
    pub fn load(&mut self, path: &Path) -> Result<(), CheckpointError> {
        load_network(&self.state, path)?;
        self.steps = i64::try_from(&self.step_var).expect("a one-element step count");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A least-squares problem: w ← argmin ‖x·w − y‖².
    fn problem(vs: &nn::VarStore) -> (Tensor, Tensor, Tensor) {
        let w = vs.root().var("w", &[3, 1], nn::Init::Const(0.0));
        let x = Tensor::from_slice(&[1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0, 2.0, 1.0, 1.0]).view([3, 3]);
        let y = Tensor::from_slice(&[1.0f32, -2.0, 0.5]).view([3, 1]);
        (w, x, y)
    }

    fn train(opt: &mut AdamW, w: &Tensor, x: &Tensor, y: &Tensor, steps: usize) {
        for _ in 0..steps {
            let loss = (x.matmul(w) - y).square().sum(Kind::Float);
            opt.zero_grad();
            loss.backward();
            opt.clip_grad_norm(1.0);
            opt.step();
        }
    }

    #[test]
    fn matches_tchs_adamw_step_for_step() {
        tch::manual_seed(0);
        let (ours, theirs) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let (w1, x, y) = problem(&ours);
        let (w2, _, _) = problem(&theirs);
        let mut a = AdamW::new(&ours, 0.05, 0.01);
        let mut b = nn::OptimizerConfig::build(
            nn::AdamW {
                wd: 0.01,
                ..Default::default()
            },
            &theirs,
            0.05,
        )
        .unwrap();
        for _ in 0..20 {
            train(&mut a, &w1, &x, &y, 1);
            let loss = (x.matmul(&w2) - &y).square().sum(Kind::Float);
            b.zero_grad();
            loss.backward();
            b.clip_grad_norm(1.0);
            b.step();
        }
        let gap = f64::try_from((&w1 - &w2).abs().max()).unwrap();
        assert!(gap < 1e-5, "ours and tch's AdamW parted by {gap}");
    }

    #[test]
    fn a_resumed_optimizer_continues_exactly_and_a_fresh_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(state_file("lam"));
        // One run of 10 steps.
        let vs = nn::VarStore::new(Device::Cpu);
        let (w, x, y) = problem(&vs);
        let mut opt = AdamW::new(&vs, 0.05, 0.01);
        train(&mut opt, &w, &x, &y, 10);
        let straight = w.copy();
        // The same in two halves, saved and loaded between.
        let vs2 = nn::VarStore::new(Device::Cpu);
        let (mut w2, _, _) = problem(&vs2);
        let mut first = AdamW::new(&vs2, 0.05, 0.01);
        train(&mut first, &w2, &x, &y, 5);
        first.save(&path).unwrap();
        let after_five = w2.copy();
        let mut resumed = AdamW::new(&vs2, 0.05, 0.01);
        resumed.load(&path).unwrap();
        assert_eq!(resumed.steps(), 5);
        train(&mut resumed, &w2, &x, &y, 5);
        assert!(f64::try_from((&w2 - &straight).abs().max()).unwrap() < 1e-7);
        // Restarting the moments instead (what tch's optimizer did) lands elsewhere.
        tch::no_grad(|| w2.copy_(&after_five));
        let mut fresh = AdamW::new(&vs2, 0.05, 0.01);
        train(&mut fresh, &w2, &x, &y, 5);
        assert!(f64::try_from((&w2 - &straight).abs().max()).unwrap() > 1e-3);
    }

    #[test]
    fn a_state_of_another_model_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(state_file("lam"));
        let vs = nn::VarStore::new(Device::Cpu);
        let (w, x, y) = problem(&vs);
        let mut opt = AdamW::new(&vs, 0.05, 0.0);
        train(&mut opt, &w, &x, &y, 3);
        opt.save(&path).unwrap();
        let other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().var("w", &[4, 1], nn::Init::Const(0.0));
        let mut wrong = AdamW::new(&other, 0.05, 0.0);
        let err = wrong.load(&path).unwrap_err().to_string();
        assert!(
            err.contains("adamw_lam.safetensors") && err.contains("[3, 1]"),
            "{err}"
        );
        assert_eq!(wrong.steps(), 0);
        std::fs::write(&path, b"not a tensor file").unwrap();
        let err = opt.load(&path).unwrap_err().to_string();
        assert!(err.contains("not a readable safetensors file"), "{err}");
        assert_eq!(opt.steps(), 3);
    }
}
