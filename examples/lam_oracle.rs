//! Can the LAM's decoder use the key at all? Trains the decoder alone, fed the true game
//! action (one-hot, in place of the action code) or nothing, on the same clips, and prints the
//! weighted loss every 50 steps. If the two curves stay together, the decoder has not (yet)
//! learned to use an action, so no encoder could be taught one. Labels are used here only to
//! measure, as in `genie eval`.
//!
//! `cargo run --release --example lam_oracle -- oracle|none [STEPS] [THREADS] [global|per-transition|no-cuts]`
//!
//! The last argument picks how the motion-weighted error is averaged: over the whole batch, as
//! `Lam::loss` does (a camera flip, which moves nearly every pixel, then outweighs many ordinary
//! steps), or per transition first (each transition counts the same), or per transition
//! leaving out cuts (transitions that move over 30% of the pixels: camera flips).
use genie::data::ClipStream;
use genie::model::frames::frames_to_f32;
use genie::model::lam::{Lam, LamConfig};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let oracle = args.get(1).map(String::as_str) == Some("oracle");
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    if let Some(threads) = args.get(3).and_then(|s| s.parse().ok()) {
        tch::set_num_threads(threads);
    }
    let per_transition = args.get(4).map(String::as_str) == Some("per-transition");
    let no_cuts = args.get(4).map(String::as_str) == Some("no-cuts");
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = LamConfig::default();
    let lam = Lam::new(vs.root() / "lam", &cfg);
    let mut opt = nn::AdamW::default().build(&vs, 3e-4).expect("optimizer");
    let stream = ClipStream::new(0..100_000, 4, 1, 1);
    let (b, t) = (16i64, 4i64);
    let mut recent = Vec::new();
    for step in 1..=steps {
        let (frames, actions) = stream.next_batch(b as usize);
        let f = frames_to_f32(&Tensor::from_slice(&frames).view([b, t, 64, 64, 3]));
        let codes = if oracle {
            Tensor::from_slice(&actions)
                .view([b, t])
                .to_kind(Kind::Int64)
                .narrow(1, 0, t - 1)
                .one_hot(cfg.latent_dim)
                .to_kind(Kind::Float)
        } else {
            Tensor::zeros([b, t - 1, cfg.latent_dim], (Kind::Float, Device::Cpu))
        };
        let (past, next) = (f.narrow(1, 0, t - 1), f.narrow(1, 1, t - 1));
        let error = (lam.predict_with_codes(&past, &codes) - &next).square();
        // The weighting of `Lam::loss`.
        let moved = (&next - &past)
            .abs()
            .sum_dim_intlist(-1, true, Kind::Float)
            .gt(0.05);
        let weight = moved.to_kind(Kind::Float) * cfg.motion_weight + 1.0;
        let loss = if per_transition || no_cuts {
            let axes = [2i64, 3, 4];
            let each = (&error * &weight).sum_dim_intlist(axes.as_slice(), false, Kind::Float)
                / (weight.sum_dim_intlist(axes.as_slice(), false, Kind::Float) * 3.0); // [B, T−1]
            if no_cuts {
                // A transition that moves over 30% of the pixels is a cut (a camera flip).
                let share =
                    moved
                        .to_kind(Kind::Float)
                        .mean_dim(axes.as_slice(), false, Kind::Float);
                let keep = share.le(0.3).to_kind(Kind::Float);
                (each * &keep).sum(Kind::Float) / keep.sum(Kind::Float).clamp_min(1.0)
            } else {
                each.mean(Kind::Float)
            }
        } else {
            (&error * &weight).sum(Kind::Float) / (weight.sum(Kind::Float) * 3)
        };
        opt.backward_step_clip(&loss, 1.0);
        recent.push(f64::try_from(&loss).unwrap_or(f64::NAN));
        if step % 50 == 0 {
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            let name = if oracle { "oracle" } else { "none" };
            println!("{name} step {step} loss {mean:.4}");
            recent.clear();
        }
    }
}
