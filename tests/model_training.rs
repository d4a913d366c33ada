//! A few dozen Adam steps on one tiny batch must lower each network's training loss: the losses
//! are wired to the parameters that should learn them (issue 5 only writes the loop).

use genie::model::{
    Dynamics, DynamicsConfig, Lam, LamConfig, StConfig, Tokenizer, TokenizerConfig,
};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

const STEPS: usize = 40;

fn st() -> StConfig {
    StConfig::new(32, 1, 2)
}

/// Smooth, structured frames (a moving bright square) rather than noise, so there is something
/// to learn in a few steps.
fn clip(b: i64, t: i64) -> Tensor {
    let frames = Tensor::zeros([b, t, 16, 16, 3], (Kind::Float, Device::Cpu)) + 0.2;
    for i in 0..b {
        for j in 0..t {
            let x = (2 * j + 3 * i) % 12;
            let _ = frames
                .get(i)
                .get(j)
                .narrow(0, 4, 4)
                .narrow(1, x, 4)
                .fill_(0.9);
        }
    }
    frames
}

fn first_and_last(mut step: impl FnMut() -> f64) -> (f64, f64) {
    let first = step();
    let mut last = first;
    for _ in 1..STEPS {
        last = step();
    }
    (first, last)
}

#[test]
fn tokenizer_loss_falls() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = TokenizerConfig {
        image_size: 16,
        patch: 4,
        codebook_size: 16,
        latent_dim: 8,
        context_frames: 4,
        encoder: st(),
        decoder: st(),
        ..Default::default()
    };
    let mut tokenizer = Tokenizer::new(vs.root(), &cfg);
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    let frames = clip(2, 4);
    let (first, last) = first_and_last(|| {
        let out = tokenizer.loss(&frames);
        opt.backward_step(&out.loss);
        tokenizer.restart_idle_codes(&out.vq, 10);
        out.metrics.loss
    });
    assert!(last < 0.5 * first, "tokenizer loss {first} → {last}");
}

#[test]
fn lam_loss_falls() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = LamConfig {
        image_size: 16,
        patch: 8,
        latent_dim: 8,
        context_frames: 4,
        encoder: st(),
        decoder: st(),
        ..Default::default()
    };
    let mut lam = Lam::new(vs.root(), &cfg);
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    let frames = clip(2, 4);
    let (first, last) = first_and_last(|| {
        let out = lam.loss(&frames);
        opt.backward_step(&out.loss);
        lam.restart_idle_codes(&out.vq, 10);
        out.metrics.loss
    });
    assert!(last < 0.5 * first, "LAM loss {first} → {last}");
}

#[test]
fn dynamics_loss_falls() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = DynamicsConfig {
        vocab_size: 16,
        tokens_per_frame: 4,
        num_actions: 8,
        context_frames: 4,
        st: st(),
        ..Default::default()
    };
    let dynamics = Dynamics::new(vs.root(), &cfg);
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    let ids = Tensor::randint(16, [2, 4, 4], (Kind::Int64, Device::Cpu));
    let actions = Tensor::randint(8, [2, 3], (Kind::Int64, Device::Cpu));
    let (first, last) = first_and_last(|| {
        let out = dynamics.loss(&ids, &actions);
        opt.backward_step(&out.loss);
        out.metrics.loss
    });
    assert!(last < 0.5 * first, "dynamics loss {first} → {last}");
}
