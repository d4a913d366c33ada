//! AdamW (Loshchilov & Hutter) whose state can be saved with the run, so that `--resume`
//! continues the optimizer where it stopped. tch's optimizer keeps its moment estimates inside
//! libtorch, out of reach: a resumed run restarted them from zero, and the first step after a
//! resume then moved every weight by the full learning rate in the direction of one batch's
//! gradient sign (Adam's bias correction makes a first step that size whatever the gradient).
//!
//! The update is PyTorch's `torch.optim.AdamW` (the one tch wrapped, with its defaults:
//! β = (0.9, 0.999), ε = 1e-8, decoupled weight decay on every trainable tensor).

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor, nn};

/// The state file's name for a network's optimizer in a run folder.
pub fn state_file(network: &str) -> String {
    format!("adamw_{network}.safetensors")
}

/// Name of the step counter in a state file (moment names are `m.` or `v.` + the variable's).
const STEP: &str = "step";

pub struct AdamW {
    /// The trainable variables, by name (sorted, so the order is the same in every run).
    params: Vec<(String, Tensor)>,
    /// First and second moment estimates, one per parameter, zero until the first step.
    m: Vec<Tensor>,
    v: Vec<Tensor>,
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
        let zeros = |params: &[(String, Tensor)]| {
            params
                .iter()
                .map(|(_, p)| p.zeros_like().detach())
                .collect::<Vec<_>>()
        };
        Self {
            m: zeros(&params),
            v: zeros(&params),
            params,
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
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let cpu = |t: &Tensor| t.detach().to_device(Device::Cpu);
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.params.len() + 1);
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            named.push((format!("m.{name}"), cpu(m)));
            named.push((format!("v.{name}"), cpu(v)));
        }
        named.push((STEP.into(), Tensor::from_slice(&[self.steps])));
        Tensor::write_safetensors(&named, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Restores the moments and step count saved by [`AdamW::save`]. The file must hold exactly
    /// this optimizer's tensors with the same shapes; otherwise nothing changes and the error
    /// says which file and what is wrong.
    pub fn load(&mut self, path: &Path) -> Result<(), String> {
        let file = |what: String| format!("{}: {what}", path.display());
        let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|e| file(format!("not a readable optimizer state ({e})")))?
            .into_iter()
            .collect();
        let steps = tensors
            .get(STEP)
            .and_then(|t| i64::try_from(t).ok())
            .ok_or_else(|| file(format!("no `{STEP}` count")))?;
        let expected = 2 * self.params.len() + 1;
        if tensors.len() != expected {
            return Err(file(format!(
                "holds {} tensors, this model's optimizer has {expected} (the model changed \
                 since it was saved?)",
                tensors.len()
            )));
        }
        let mut restored = (Vec::new(), Vec::new());
        for (name, p) in &self.params {
            for (prefix, into) in [("m", &mut restored.0), ("v", &mut restored.1)] {
                let key = format!("{prefix}.{name}");
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| file(format!("no `{key}`")))?;
                if t.size() != p.size() {
                    return Err(file(format!(
                        "`{key}` is {:?}, the variable is {:?}",
                        t.size(),
                        p.size()
                    )));
                }
                into.push(t.to_device(p.device()).to_kind(p.kind()));
            }
        }
        (self.m, self.v) = restored;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

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
        let err = wrong.load(&path).unwrap_err();
        assert!(
            err.contains("adamw_lam.safetensors") && err.contains("[3, 1]"),
            "{err}"
        );
        assert_eq!(wrong.steps(), 0);
        std::fs::write(&path, b"not a tensor file").unwrap();
        let err = opt.load(&path).unwrap_err();
        assert!(err.contains("not a readable optimizer state"), "{err}");
        assert_eq!(opt.steps(), 3);
    }
}
