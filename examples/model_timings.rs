//! Per-frame timings of the world model at its default sizes on this machine, printed as one JSON
//! object (medians after a warm-up): parameter counts; dynamics full recompute vs incremental per
//! generated frame (all MaskGIT steps) with a full context window; decoder full vs incremental;
//! encoding a prompt frame. Random weights: the cost does not depend on what was learned.
//!
//! `cargo run --example model_timings -- [--threads N] [--reps N] [--dynamics-dim D]
//! [--dynamics-layers L] [--decoder-dim D] [--steps K]`

use std::time::Instant;

use clap::Parser;
use genie::model::checkpoint::parameter_count;
use genie::model::{Genie, GenieConfig, SamplerConfig, SamplerRng, sample_next, sample_next_full};
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value_t = 30)]
    reps: usize,
    #[arg(long)]
    dynamics_dim: Option<i64>,
    #[arg(long)]
    dynamics_layers: Option<i64>,
    #[arg(long)]
    decoder_dim: Option<i64>,
    #[arg(long)]
    steps: Option<usize>,
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args = Args::parse();
    genie::torch::set_threads(args.threads);
    let _guard = tch::no_grad_guard();
    let mut cfg = GenieConfig::default();
    if let Some(d) = args.dynamics_dim {
        cfg.dynamics.st.dim = d;
        cfg.dynamics.st.heads = d / 32;
    }
    if let Some(l) = args.dynamics_layers {
        cfg.dynamics.st.layers = l;
    }
    if let Some(d) = args.decoder_dim {
        cfg.tokenizer.decoder.dim = d;
        cfg.tokenizer.decoder.heads = d / 32;
    }
    let sampler = SamplerConfig {
        steps: args.steps.unwrap_or(cfg.sampler.steps),
        ..cfg.sampler.clone()
    };
    let genie = Genie::new(cfg.clone(), Device::Cpu).expect("default config is valid");
    let (tok, dynamics) = (&genie.tokenizer, &genie.dynamics);
    let window = cfg.dynamics.context_frames;
    let n = cfg.dynamics.tokens_per_frame;
    let vocab = cfg.dynamics.vocab_size;
    let mut rng = SamplerRng::seed_from_u64(0);
    let action = Tensor::from_slice(&[3i64]);

    // Steady state: the window is full and slides at every frame.
    let mut cache = dynamics.new_cache(1);
    let mut decoder = tok.new_decoder_cache(1);
    let prompt = Tensor::randint(vocab, [1, n], (Kind::Int64, Device::Cpu));
    dynamics.push_frame(&mut cache, &prompt, None);
    let _ = tok.decode_next(&mut decoder, &prompt);
    for _ in 0..window + 2 {
        let ids = sample_next(dynamics, &mut cache, &action, &sampler, &mut rng);
        let _ = tok.decode_next(&mut decoder, &ids);
    }
    // Each call below generates (or decodes) one more frame; the window slides every time.
    let dynamics_incremental = median_ms(args.reps, || {
        let _ = sample_next(dynamics, &mut cache, &action, &sampler, &mut rng);
    });
    let draft = Tensor::zeros([1, n], (Kind::Int64, Device::Cpu));
    let all_masked = Tensor::ones([1, n], (Kind::Bool, Device::Cpu));
    let maskgit_step = median_ms(args.reps, || {
        let _ = dynamics.frame_logits(&mut cache, &draft, &all_masked, Some(&action));
    });
    let push = median_ms(args.reps, || {
        dynamics.push_frame(&mut cache, &draft, Some(&action))
    });
    let decoder_incremental = median_ms(args.reps, || {
        let _ = tok.decode_next(&mut decoder, &draft);
    });
    let end_to_end = median_ms(args.reps, || {
        let ids = sample_next(dynamics, &mut cache, &action, &sampler, &mut rng);
        let _ = tok.decode_next(&mut decoder, &ids);
    });

    let history = Tensor::randint(vocab, [1, window - 1, n], (Kind::Int64, Device::Cpu));
    let past_actions = Tensor::randint(8, [1, window - 2], (Kind::Int64, Device::Cpu));
    let full_reps = (args.reps / 3).max(3);
    let dynamics_full = median_ms(full_reps, || {
        let _ = sample_next_full(
            dynamics,
            &history,
            &past_actions,
            &action,
            &sampler,
            &mut rng,
        );
    });
    let window_ids = Tensor::randint(vocab, [1, window, n], (Kind::Int64, Device::Cpu));
    let decoder_full = median_ms(full_reps, || {
        let _ = tok.decode(&window_ids);
    });
    let prompt_frame = Tensor::rand([1, 1, 64, 64, 3], (Kind::Float, Device::Cpu));
    let encode_prompt = median_ms(args.reps, || {
        let _ = tok.encode(&prompt_frame);
    });
    let clip = Tensor::rand([1, window, 64, 64, 3], (Kind::Float, Device::Cpu));
    let lam_infer = median_ms(full_reps, || {
        let _ = genie.lam.infer_actions(&clip);
    });

    let report = serde_json::json!({
        "device": "cpu",
        "threads": tch::get_num_threads(),
        "context_frames": window,
        "tokens_per_frame": n,
        "maskgit_steps": sampler.steps,
        "params": {
            "tokenizer": parameter_count(&genie.tokenizer_vs),
            "lam": parameter_count(&genie.lam_vs),
            "dynamics": parameter_count(&genie.dynamics_vs),
        },
        "config": { "dynamics": cfg.dynamics.st, "tokenizer_decoder": cfg.tokenizer.decoder },
        "ms": {
            "dynamics_frame_incremental": dynamics_incremental,
            "dynamics_frame_full_recompute": dynamics_full,
            "dynamics_cache_speedup": dynamics_full / dynamics_incremental,
            "maskgit_step_incremental": maskgit_step,
            "push_frame": push,
            "decoder_frame_incremental": decoder_incremental,
            "decoder_window_full_recompute": decoder_full,
            "encode_prompt_frame": encode_prompt,
            "lam_infer_window": lam_infer,
            "frame_end_to_end_incremental": end_to_end,
            "frame_end_to_end_full_recompute": dynamics_full + decoder_full,
        },
        "fps_end_to_end": 1e3 / end_to_end,
        "fps_full_recompute": 1e3 / (dynamics_full + decoder_full),
        "load_average_1m": std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next().and_then(|x| x.parse::<f64>().ok())),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
