//! Can the LAM's decoder use the key at all? Trains the decoder alone, fed the true game
//! action (one-hot, in place of the action code) or nothing, on the same clips, and prints its
//! loss (`LamConfig::reconstruction_loss`) every 50 steps. If the two curves stay together, the
//! decoder has not (yet) learned to use an action, so no encoder could be taught one. Labels
//! are used here only to measure, as in `genie eval`.
//!
//! `cargo run --release --example lam_oracle -- oracle|none [STEPS] [THREADS] [new|old] [STICKINESS]`
//!
//! `old` weights the error as the LAM did before `motion_dilation` and `skip_cuts` (only the
//! changed pixels, averaged over the whole batch); `new` (default) as `LamConfig::default()`.
//! STICKINESS is the scripted player's while recording (default: the data's).
use genie::data::{ClipStream, PlayStyle};
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
    let old = args.get(4).map(String::as_str) == Some("old");
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = if old {
        LamConfig {
            motion_dilation: 0,
            skip_cuts: false,
            ..LamConfig::default()
        }
    } else {
        LamConfig::default()
    };
    let lam = Lam::new(vs.root() / "lam", &cfg);
    let mut opt = nn::AdamW::default().build(&vs, 3e-4).expect("optimizer");
    let stickiness: f32 = args
        .get(5)
        .and_then(|s| s.parse().ok())
        .unwrap_or(genie::data::DEFAULT_STICKINESS);
    let stream =
        ClipStream::with_style(0..100_000, 4, 1, 1, PlayStyle::with_stickiness(stickiness));
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
        let predicted = lam.predict_with_codes(&past, &codes);
        let loss = cfg.reconstruction_loss(&predicted, &past, &next);
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
