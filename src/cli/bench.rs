//! `genie bench --json`: where a played frame's time goes, with the shipped weights at default
//! play settings, as one JSON object of medians after a warm-up. Also training throughput per
//! network (on fresh copies, so the checkpoint is untouched) and the texture upload of the
//! player (through wgpu on whatever adapter there is; Mesa's software Vulkan without a GPU).

use std::path::PathBuf;
use std::time::Instant;

use genie::model::{
    Genie, GenieConfig, SamplerRng, frames_to_bytes, frames_to_f32, sample_next, sample_next_full,
};
use genie::train::adamw::AdamW;
use rand::SeedableRng;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind, Tensor};

use super::world::{config_or_default, default_checkpoint, device, load_genie};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Checkpoint folder [default: the shipped checkpoints/]
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Random weights of the default sizes instead of a checkpoint (speed does not depend on them)
    #[arg(long, conflicts_with = "checkpoint")]
    pub random: bool,
    /// With --random: the sizes to try, as a genie.json [default: the built-in sizes]
    #[arg(long, value_name = "FILE", requires = "random")]
    pub config: Option<PathBuf>,
    /// Print one JSON object (the only output format; the flag is accepted for scripts)
    #[arg(long)]
    pub json: bool,
    /// Frames generated end to end for the memory figure (rss before and after)
    #[arg(long, default_value_t = 300)]
    pub frames: usize,
    /// Repetitions per median
    #[arg(long, default_value_t = 21)]
    pub reps: usize,
    /// MaskGIT steps [default: the checkpoint's]
    #[arg(long)]
    pub steps: Option<usize>,
    /// Skip the training-throughput part
    #[arg(long)]
    pub no_train: bool,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch threads [default: one per core]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Instead of the benchmark: dream this many frames with keys changing every few frames and
    /// report frame time and memory over the run (a soak; 100000 takes about half an hour)
    #[arg(long, value_name = "FRAMES")]
    pub soak: Option<usize>,
}

/// The median of `reps` timings of `f` after one untimed call, in ms.
fn median_ms(reps: usize, device: Device, mut f: impl FnMut()) -> f64 {
    f();
    median((0..reps.max(1)).map(|_| time_ms(device, &mut f)).collect())
}

/// One call of `f`, in ms (on CUDA, until the device is done).
fn time_ms(device: Device, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    start.elapsed().as_secs_f64() * 1e3
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Resident memory of this process in MiB, from /proc (Linux).
fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let launch = Instant::now();
    let device = device(&args.device, args.threads)?;
    let genie = if args.random {
        let config = config_or_default(args.config.as_deref())?;
        Genie::new(config, device)?
    } else {
        let dir = args.checkpoint.clone().unwrap_or_else(default_checkpoint);
        load_genie(&dir, device)?
    };
    let ms_load = launch.elapsed().as_secs_f64() * 1e3;
    let cfg = genie.config.clone();
    let mut sampler = cfg.sampler;
    if let Some(steps) = args.steps {
        sampler.steps = steps.max(1);
    }
    if let Some(frames) = args.soak {
        let world = genie::session::dream::DreamWorld::new(genie, sampler, 0);
        super::print(super::soak::soak(world, frames, rss_mb)?)?;
        return Ok(());
    }
    let _guard = tch::no_grad_guard();
    let (tok, dynamics) = (&genie.tokenizer, &genie.dynamics);
    let (window, n, side) = (
        cfg.dynamics.context_frames,
        cfg.dynamics.tokens_per_frame,
        cfg.tokenizer.image_size,
    );
    let mut rng = SamplerRng::seed_from_u64(0);
    let action = Tensor::from_slice(&[1i64]).to_device(device);

    // First frame: encode a prompt frame, put it in both caches, decode it.
    let prompt = Tensor::rand([1, 1, side, side, 3], (Kind::Float, device));
    let mut cache = dynamics.new_cache(1);
    let mut decoder = tok.new_decoder_cache(1);
    let ids = tok.encode(&prompt).select(1, 0);
    dynamics.push_frame(&mut cache, &ids, None);
    let _ = frames_to_bytes(&tok.decode_next(&mut decoder, &ids));
    let ms_first_frame = launch.elapsed().as_secs_f64() * 1e3;

    // Steady state: the window is full and slides at every frame.
    for _ in 0..window + 2 {
        let ids = sample_next(dynamics, &mut cache, &action, &sampler, &mut rng);
        let _ = tok.decode_next(&mut decoder, &ids);
    }
    let rss_before = rss_mb();
    // A held key through the checkpoint's key map (its adapter reads the frame before).
    let keys = genie::session::keys::KeyMap::new(&cfg);
    let mut key_state = genie::game::KeyState::default();
    let key = genie::game::Action::Right;
    let ids = Tensor::zeros([1, n], (Kind::Int64, device));
    // Played frames as play makes them (`Rollout`: for a model that scrolls, the camera head
    // decides each frame's move, and a move recomputes both caches), the window full.
    let mut rollout = genie::model::Rollout::new(&genie, 1);
    let _ = rollout.start(&genie, &tok.encode(&prompt), None, &[]);
    for _ in 0..window + 2 {
        let _ = rollout.step(&genie, &action, &sampler, &mut rng);
    }
    let end_to_end = median_ms(args.reps, device, || {
        let last = rollout.last().expect("a started rollout");
        let keyed = keys.key(&mut key_state, key, false);
        let latent = keys.pick(genie.adapter.as_ref(), last, rollout.shown(), &[keyed])[0];
        let action = Tensor::from_slice(&[latent]).to_device(device);
        let (_, _, frame) = rollout.step(&genie, &action, &sampler, &mut rng);
        let _ = frames_to_bytes(&frame);
    });
    // A frame whose view steps a column, for a model that scrolls.
    let view_move = cfg.dynamics.scroll.then(|| {
        median_ms(args.reps, device, || {
            let (_, frame) = rollout.step_moving(&genie, &action, &[1], &sampler, &mut rng);
            let _ = frames_to_bytes(&frame);
        })
    });
    let key_adapter = genie.adapter.as_ref().map(|adapter| {
        median_ms(args.reps, device, || {
            let keyed = keys.key(&mut key_state, key, false);
            let _ = keys.pick(Some(adapter), &ids, None, &[keyed]);
        })
    });
    let draft = Tensor::zeros([1, n], (Kind::Int64, device));
    let all_masked = Tensor::ones([1, n], (Kind::Bool, device));
    let maskgit_step = median_ms(args.reps, device, || {
        let _ = dynamics.frame_logits(&mut cache, &draft, &all_masked, Some(&action));
    });
    let decode = median_ms(args.reps, device, || {
        let _ = tok.decode_next(&mut decoder, &draft);
    });
    let frame = Tensor::rand([1, 1, side, side, 3], (Kind::Float, device));
    let encode = median_ms(args.reps, device, || {
        let _ = tok.encode(&frame);
    });
    let history = Tensor::randint(
        cfg.dynamics.vocab_size,
        [1, window - 1, n],
        (Kind::Int64, device),
    );
    let past_actions = Tensor::randint(8, [1, window - 2], (Kind::Int64, device));
    let window_ids = Tensor::randint(
        cfg.dynamics.vocab_size,
        [1, window, n],
        (Kind::Int64, device),
    );
    let full_reps = (args.reps / 3).max(3);
    let full = median_ms(full_reps, device, || {
        let _ = sample_next_full(
            dynamics,
            &history,
            &past_actions,
            &action,
            &sampler,
            &mut rng,
        );
        let _ = tok.decode(&window_ids);
    });
    for _ in 0..args.frames {
        let ids = sample_next(dynamics, &mut cache, &action, &sampler, &mut rng);
        let _ = tok.decode_next(&mut decoder, &ids);
    }
    let rss_after = rss_mb();
    drop(_guard);
    // The same frames with the dynamics model and the tokenizer converted to bf16 in place (so
    // last): whether this CPU's bf16 pays at play time's batch of one frame.
    let mut genie = genie;
    genie.dynamics_vs.bfloat16();
    genie.tokenizer_vs.bfloat16();
    let bf16_end_to_end = steady_frame_ms(&genie, &sampler, &action, args.reps, device);

    let upload = upload_ms(args.reps);
    let bf16 = bf16_matmul(device, args.reps);
    let train = if args.no_train {
        serde_json::Value::Null
    } else {
        train_tokens_per_s(&cfg, device)?
    };
    let report = serde_json::json!({
        "fps_end_to_end": 1e3 / end_to_end,
        "fps_full_recompute": 1e3 / full,
        "cache_speedup": full / end_to_end,
        "ms_frame_end_to_end": end_to_end,
        "ms_key_adapter": key_adapter,
        "ms_frame_view_move": view_move,
        "ms_frame_full_recompute": full,
        "ms_encode_prompt": encode,
        "ms_maskgit_step": maskgit_step,
        "ms_decode": decode,
        "ms_upload": upload.as_ref().map(|u| u.0).ok(),
        "upload_adapter": match &upload { Ok(u) => u.1.clone(), Err(e) => format!("none: {e}") },
        "ms_load_checkpoint": ms_load,
        "ms_first_frame": ms_first_frame,
        "threads": tch::get_num_threads(),
        "device": format!("{device:?}").to_lowercase(),
        "maskgit_steps": sampler.steps,
        "context_frames": window,
        "tokens_per_frame": n,
        "rss_mb": rss_after,
        "rss_mb_before_frames": rss_before,
        "frames_for_rss": args.frames,
        "train_tokens_per_s": train,
        "bf16_vs_f32": bf16,
        "ms_frame_end_to_end_bf16": bf16_end_to_end,
        "bf16_end_to_end_speedup": end_to_end / bf16_end_to_end,
        "weights": if args.random { "random" } else { "checkpoint" },
        "load_average_1m": std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next().and_then(|x| x.parse::<f64>().ok())),
    });
    super::print(&report)?;
    Ok(())
}

/// Median milliseconds of a played frame (sample + decode + copy out) once the window is full.
fn steady_frame_ms(
    genie: &Genie,
    sampler: &genie::model::SamplerConfig,
    action: &Tensor,
    reps: usize,
    device: Device,
) -> f64 {
    let _guard = tch::no_grad_guard();
    let (tok, dynamics) = (&genie.tokenizer, &genie.dynamics);
    let side = genie.config.tokenizer.image_size;
    let mut rng = SamplerRng::seed_from_u64(0);
    let mut cache = dynamics.new_cache(1);
    let mut decoder = tok.new_decoder_cache(1);
    let prompt = Tensor::rand([1, 1, side, side, 3], (Kind::Float, device));
    let ids = tok.encode(&prompt.to_kind(genie_kind(genie))).select(1, 0);
    dynamics.push_frame(&mut cache, &ids, None);
    for _ in 0..genie.config.dynamics.context_frames + 2 {
        let ids = sample_next(dynamics, &mut cache, action, sampler, &mut rng);
        let _ = tok.decode_next(&mut decoder, &ids);
    }
    median_ms(reps, device, || {
        let ids = sample_next(dynamics, &mut cache, action, sampler, &mut rng);
        let _ = frames_to_bytes(&tok.decode_next(&mut decoder, &ids));
    })
}

/// The kind of the tokenizer's weights (f32, or bf16 once converted).
fn genie_kind(genie: &Genie) -> Kind {
    genie
        .tokenizer_vs
        .trainable_variables()
        .first()
        .map_or(Kind::Float, Tensor::kind)
}

/// The primitive that dominates training and inference, a [4096, 128] × [128, 512] matmul
/// (a batch of tokens through an MLP), in f32 and in bf16: whether bf16 pays on this CPU.
fn bf16_matmul(device: Device, reps: usize) -> serde_json::Value {
    let _guard = tch::no_grad_guard();
    let a = Tensor::randn([4096, 128], (Kind::Float, device));
    let b = Tensor::randn([128, 512], (Kind::Float, device));
    let f32_ms = median_ms(reps, device, || {
        let _ = a.matmul(&b);
    });
    let (a16, b16) = (a.to_kind(Kind::BFloat16), b.to_kind(Kind::BFloat16));
    let bf16_ms = median_ms(reps, device, || {
        let _ = a16.matmul(&b16);
    });
    serde_json::json!({ "matmul_f32_ms": f32_ms, "matmul_bf16_ms": bf16_ms, "bf16_speedup": f32_ms / bf16_ms })
}

/// Median time to upload one frame to the player's texture and have the queue finish it.
fn upload_ms(reps: usize) -> Result<(f64, String), String> {
    let gpu = genie::app::offscreen::Headless::new().map_err(|e| e.to_string())?;
    let format = wgpu::TextureFormat::Rgba8UnormSrgb;
    let mut blit = genie::app::blit::Blit::new(&gpu.device, format, 64, 64);
    let frame = vec![128u8; 64 * 64 * 3];
    let ms = median_ms(reps, Device::Cpu, || {
        blit.upload(&gpu.queue, &frame);
        gpu.queue.submit([]);
        let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    });
    Ok((ms, gpu.adapter_name.clone()))
}

/// Tokens per second of a training step (forward, backward, AdamW) for each network at the
/// clip lengths `genie train` uses by default, batch 8, in f32 and (`bf16_autocast`) with the
/// forward pass under bf16 autocast, with the speed-up (f32 time over autocast time).
fn train_tokens_per_s(cfg: &GenieConfig, device: Device) -> anyhow::Result<serde_json::Value> {
    let genie = Genie::new(cfg.clone(), device)?;
    let side = cfg.tokenizer.image_size;
    let mut out = serde_json::Map::new();
    let mut autocast = serde_json::Map::new();
    for (name, clip, per_frame) in [
        ("tokenizer", 4, cfg.tokenizer.tokens_per_frame()),
        ("lam", 2, cfg.lam.patches_per_frame()),
        ("dynamics", 8, cfg.dynamics.tokens_per_frame),
    ] {
        let vs = match name {
            "tokenizer" => &genie.tokenizer_vs,
            "lam" => &genie.lam_vs,
            _ => &genie.dynamics_vs,
        };
        let mut opt = AdamW::new(vs, 1e-4, 0.01);
        let frames = frames_to_f32(&Tensor::randint(
            256,
            [8, clip, side, side, 3],
            (Kind::Uint8, device),
        ));
        let ids = genie.tokenizer.encode(&frames);
        let actions = genie.lam.infer_actions(&frames);
        let loss = || match name {
            "tokenizer" => genie.tokenizer.loss(&frames).loss,
            "lam" => genie.lam.loss(&frames).loss,
            _ => genie.dynamics.loss(&ids, &actions).loss,
        };
        let mut step = |autocast: bool| {
            let loss = if autocast {
                genie::torch::autocast_bf16(device, loss)
            } else {
                loss()
            };
            opt.zero_grad();
            loss.backward();
            opt.clip_grad_norm(1.0);
            opt.step();
        };
        // f32 and bf16 autocast (the forward pass only, as `genie train --bf16-autocast`) in
        // turns, so both see the same machine; a median of each.
        step(false);
        step(true);
        let (mut f32_ms, mut bf16_ms) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            f32_ms.push(time_ms(device, || step(false)));
            bf16_ms.push(time_ms(device, || step(true)));
        }
        let (ms, ms_bf16) = (median(f32_ms), median(bf16_ms));
        let tokens = 8.0 * clip as f64 * per_frame as f64;
        out.insert(name.into(), serde_json::json!(tokens / (ms / 1e3)));
        autocast.insert(
            name.into(),
            serde_json::json!({
                "tokens_per_s": tokens / (ms_bf16 / 1e3),
                "speedup": ms / ms_bf16,
            }),
        );
        if name == "dynamics" {
            // The update alone (gradients in place from the last step), ours against the
            // libtorch AdamW that tch wraps, whose moments could not be saved.
            let ours = median_ms(21, device, || opt.step());
            let mut theirs = tch::nn::AdamW::default().build(vs, 1e-4)?;
            let theirs = median_ms(21, device, || theirs.step());
            out.insert(
                "dynamics_adamw_step_ms".into(),
                serde_json::json!({ "ours": ours, "libtorch": theirs, "ratio": ours / theirs }),
            );
        }
    }
    out.insert("bf16_autocast".into(), serde_json::Value::Object(autocast));
    Ok(serde_json::Value::Object(out))
}
