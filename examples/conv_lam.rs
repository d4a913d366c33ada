//! A fast test bed for latent action learning: a small convolutional LAM (not the shipped
//! architecture) trained from scratch, printing every 50 steps its reconstruction loss
//! (`LamConfig::reconstruction_loss`, default weighting), code perplexity, and two NMIs that
//! use the game's labels only to measure: code vs true key, and code vs the player's on-screen
//! step (`find_player` in xₜ and xₜ₊₁), beside key vs step (what a perfect LAM could reach).
//!
//! Encoder: four 3×3 convolutions over xₜ, xₜ₊₁ and their change, max-pooled over the frame
//! (a sprite's step anywhere lights the same feature), → 16 dims → batch norm → cosine VQ of 8
//! codes. Decoder: five convolutions over xₜ, xₜ₋₁ and the code at every pixel → Δ.
//! About 1 step/s at batch 32 on two cores, ~3× the shipped LAM's pace.
//!
//! `cargo run --release --example conv_lam -- [STEPS] [THREADS] [STICKINESS] [LR]`
//! (defaults 1000, 2, 0.3, 1e-3). Measured (2026-11-25, flip-screen camera): NMI(code; key)
//! 0.012 → 0.031 over 650 steps while the loss fell 0.027 → 0.013; NMI(code; player step)
//! 0.08 → 0.11 at 250 steps; NMI(key; player step) ≈ 0.36. So even this decoder, which uses
//! the true key (lam_oracle), learns codes that follow the key only weakly in 10 minutes.
//! Longer (`-- 3000 1`, one thread): NMI(code; key) 0.055 at 900 steps, 0.10 at 1,350, a
//! plateau of 0.09–0.10 to 1,950; NMI(code; step) 0.21–0.23 — where the shipped-architecture
//! LAM had none after 3,500.
use genie::data::{ClipStream, PlayStyle};
use genie::eval::measures::nmi;
use genie::game::{FRAME_BYTES, find_player};
use genie::model::frames::frames_to_f32;
use genie::model::lam::LamConfig;
use genie::model::vq::{VectorQuantizer, code_usage};
use tch::{Device, Tensor, nn, nn::Module, nn::OptimizerConfig};

fn convs(p: nn::Path<'_>, cin: i64, width: i64, dil: &[i64]) -> nn::Sequential {
    let mut net = nn::seq();
    let mut c = cin;
    for (i, d) in dil.iter().enumerate() {
        net = net
            .add(nn::conv2d(
                &p / format!("c{i}"),
                c,
                width,
                3,
                nn::ConvConfig {
                    padding: *d,
                    dilation: *d,
                    ..Default::default()
                },
            ))
            .add_fn(|x| x.gelu("none"));
        c = width;
    }
    net
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    tch::set_num_threads(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2));
    let stick: f32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let lr: f64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1e-3);
    let (width, latent, k) = (32i64, 16i64, 8i64);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let p = vs.root();
    let enc = convs(&p / "enc", 9, width, &[1, 2, 4, 1]).add(nn::conv2d(
        &p / "enc_out",
        width,
        64,
        1,
        Default::default(),
    ));
    let to_z = nn::linear(&p / "to_z", 64, latent, Default::default());
    let norm = nn::batch_norm1d(
        &p / "norm",
        latent,
        nn::BatchNormConfig {
            affine: false,
            ..Default::default()
        },
    );
    let mut vq = VectorQuantizer::new(&p / "vq", k, latent);
    let dec = convs(&p / "dec", 6 + latent, width, &[1, 2, 4, 8, 1]).add(nn::conv2d(
        &p / "dec_out",
        width,
        3,
        1,
        Default::default(),
    ));
    let cfg = LamConfig::default();
    let mut opt = nn::AdamW::default().build(&vs, lr).expect("optimizer");
    let stream = ClipStream::with_style(0..100_000, 3, 1, 1, PlayStyle::with_stickiness(stick));
    let b = 32i64;
    let (mut losses, mut codes, mut truth, mut moves) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut step_ids: std::collections::HashMap<(i32, i32), usize> = Default::default();
    for step in 1..=steps {
        let (frames, actions) = stream.next_batch(b as usize);
        let f = frames_to_f32(&Tensor::from_slice(&frames).view([b, 3, 64, 64, 3]));
        let g = f.permute([0, 1, 4, 2, 3]); // [B, 3, C, H, W]
        let (prev, cur, next) = (g.select(1, 0), g.select(1, 1), g.select(1, 2));
        let e = enc.forward(&Tensor::cat(&[&cur, &next, &(&next - &cur)], 1));
        let pooled = e.amax([2i64, 3].as_slice(), false); // [B, 64]
        let z = pooled.apply(&to_z).apply_t(&norm, true);
        let q = vq.forward(&z.unsqueeze(1));
        let a = q
            .quantized
            .view([b, latent, 1, 1])
            .expand([b, latent, 64, 64], false);
        let pred = &cur + dec.forward(&Tensor::cat(&[&cur, &prev, &a], 1));
        let to5 = |x: &Tensor| x.permute([0, 2, 3, 1]).unsqueeze(1);
        let rec = cfg.reconstruction_loss(&to5(&pred), &to5(&cur), &to5(&next));
        let loss = &rec + &q.codebook_loss + 0.25 * &q.commitment_loss;
        opt.backward_step_clip(&loss, 1.0);
        vq.restart_idle_codes(&q.ids, &q.latents, 200);
        losses.push(f64::try_from(&rec).unwrap_or(f64::NAN));
        codes.extend(
            Vec::<i64>::try_from(q.ids.flatten(0, -1))
                .unwrap()
                .into_iter()
                .map(|c| c as usize),
        );
        truth.extend(
            Tensor::from_slice(&actions)
                .view([b, 3])
                .select(1, 1)
                .iter::<i64>()
                .unwrap()
                .map(|a| a as usize),
        );
        for i in 0..b as usize {
            let at = |t: usize| {
                find_player(&frames[(i * 3 + t) * FRAME_BYTES..(i * 3 + t + 1) * FRAME_BYTES])
            };
            let key = match (at(1), at(2)) {
                (Some((x0, y0)), Some((x1, y1))) => {
                    ((x1 - x0).round() as i32, (y1 - y0).round() as i32)
                }
                _ => (99, 99),
            };
            let fresh = step_ids.len();
            moves.push(*step_ids.entry(key).or_insert(fresh));
        }
        if step % 50 == 0 {
            let usage = code_usage(
                &Tensor::from_slice(&codes.iter().map(|&c| c as i64).collect::<Vec<_>>()),
                k,
            );
            println!(
                "step {step} rec {:.4} perplexity {:.2} nmi(code;key) {:.3} nmi(code;player step) {:.3} nmi(key;player step) {:.3}",
                losses.iter().sum::<f64>() / losses.len() as f64,
                usage.perplexity,
                nmi(&codes, &truth),
                nmi(&codes, &moves),
                nmi(&truth, &moves)
            );
            moves.clear();
            losses.clear();
            codes.clear();
            truth.clear();
        }
    }
}
