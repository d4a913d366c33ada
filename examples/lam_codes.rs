//! What the latent action model's codes mean: from held-out game states, (1) which code the
//! encoder picks for each game action (controlled pairs), (2) which way the real player moved
//! on screen in the pairs given each code, and (3) where each code moves the player in the LAM
//! decoder's prediction; and NMI(code; action) over those pairs (actions uniform, so no action
//! is guessed from the state).
//!
//! With `mirrored` as a third argument every frame is flipped left to right first: the states
//! then mostly face and move left (the scripted player favours right), which tells a LAM that
//! cannot see a key apart from one that cannot see a turn.
//!
//! Last, per pair of actions, whether the encoder's latents (before the codebook), and the
//! pooled convolutional features they are read from, tell them apart from the same state: a LAM
//! whose codes merge two actions may still see the difference, and where it is lost (features
//! or readout) says what to change. The shipped LAM (11-27): `left` vs `noop` pairs ordered
//! 0.89 by the features but 0.75 by the latents (same-state cosine 0.973); `right` vs `noop`
//! 0.91 and 0.88 (cosine 0.261): the encoder sees a step left as well as one right, the
//! readout (`to_latent`, normalisation, codebook) drops it.
//!
//! `cargo run --release --example lam_codes -- CHECKPOINT_DIR [STATES] [mirrored]`
use genie::eval::measures::nmi;
use genie::eval::run::{CALIBRATION_HISTORY, CALIBRATION_SEED_START, game_in_play};
use genie::game::{Action, FRAME_BYTES, find_player};
use genie::model::checkpoint::Genie;
use genie::model::frames::{frames_to_bytes, frames_to_f32};
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("checkpoints".into());
    let states: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let mirrored = std::env::args().nth(3).is_some_and(|a| a == "mirrored");
    let view = |frame: Vec<u8>| if mirrored { mirror(&frame) } else { frame };
    let genie = Genie::load(std::path::Path::new(&dir), Device::Cpu)?;
    let k = genie.config.lam.num_actions;
    let h = CALIBRATION_HISTORY as i64;
    let mut picks = vec![vec![0u32; k as usize]; 8];
    let mut moves = vec![(0.0f64, 0.0f64, 0u32); k as usize];
    let mut pairs: (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    // Per code: how the real player's screen position moved (left/still/right × up/still/down,
    // a step under half a pixel counts as still; "lost" where the player is not on screen).
    let mut real = vec![[0u32; 10]; k as usize];
    // Per game action, the encoder's normalised latent of each controlled pair (before the
    // codebook): whether the encoder tells two actions apart even where the codes do not.
    let mut latents: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 8];
    // And the pooled features of the convolutional encoder that the latent is read from.
    let mut features: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 8];
    for i in 0..states {
        let (game, history) = game_in_play(CALIBRATION_SEED_START + i, CALIBRATION_HISTORY + 1, i);
        let history: Vec<u8> = history
            .chunks(FRAME_BYTES)
            .flat_map(|f| view(f.to_vec()))
            .collect();
        let start = history[CALIBRATION_HISTORY * FRAME_BYTES..].to_vec();
        let mut bytes = Vec::new();
        for a in Action::ALL {
            let mut n = game.clone();
            n.step(a);
            bytes.extend(&history);
            bytes.extend(view(n.frame()));
        }
        let frames = frames_to_f32(&Tensor::from_slice(&bytes).view([8, h + 2, 64, 64, 3]));
        let vq = tch::no_grad(|| genie.lam.encode_actions(&frames, false));
        let ids = Vec::<i64>::try_from(vq.ids.select(1, h))?;
        for (a, row) in latents.iter_mut().enumerate() {
            row.push(Vec::<f32>::try_from(vq.latents.get(a as i64).get(h))?);
        }
        if let Some(f) = tch::no_grad(|| genie.lam.encoder_features(&frames)) {
            for (a, row) in features.iter_mut().enumerate() {
                row.push(Vec::<f32>::try_from(f.get(a as i64 * (h + 1) + h))?);
            }
        }
        let before = find_player(&start);
        for (a, id) in ids.iter().enumerate() {
            let after_bytes =
                &bytes[((a as i64 * (h + 2) + h + 1) as usize) * FRAME_BYTES..][..FRAME_BYTES];
            let bin = match (before, find_player(after_bytes)) {
                (Some((x0, y0)), Some((x1, y1))) => {
                    let s = |d: f32| usize::from(d >= -0.5) + usize::from(d > 0.5);
                    s(x1 - x0) * 3 + s(y1 - y0)
                }
                _ => 9,
            };
            real[*id as usize][bin] += 1;
            picks[a][*id as usize] += 1;
            pairs.0.push(a);
            pairs.1.push(*id as usize);
        }
        let first = frames
            .narrow(0, 0, 1)
            .narrow(1, 0, h + 1)
            .expand([k, h + 1, 64, 64, 3], false);
        let codes = Tensor::arange(k, (Kind::Int64, Device::Cpu))
            .view([k, 1])
            .repeat([1, h + 1]);
        let next = frames_to_bytes(
            &genie
                .lam
                .predict_next(&first, &codes)
                .select(1, h)
                .unsqueeze(1),
        );
        if let Some((x0, y0)) = find_player(&start) {
            for c in 0..k as usize {
                if let Some((x, y)) = find_player(&next[c * FRAME_BYTES..(c + 1) * FRAME_BYTES]) {
                    moves[c].0 += (x - x0) as f64;
                    moves[c].1 += (y - y0) as f64;
                    moves[c].2 += 1;
                }
            }
        }
    }
    println!("code picked per game action (rows: action; columns: code)");
    for a in Action::ALL {
        println!("{:>10} {:?}", a.name(), picks[a as usize]);
    }
    println!(
        "NMI(code; action) over these controlled pairs: {:.3}",
        nmi(&pairs.1, &pairs.0)
    );
    println!("real player step for each code (x: left/still/right, y: up/still/down)");
    println!("        L↑  L·  L↓  ·↑  ··  ·↓  R↑  R·  R↓ lost");
    for (c, r) in real.iter().enumerate() {
        println!("code {c}: {}", r.map(|n| format!("{n:3}")).join(" "));
    }
    println!("mean player motion (dx, dy px) the decoder draws for each code");
    for (c, (dx, dy, n)) in moves.iter().enumerate() {
        let n = (*n).max(1) as f64;
        println!(
            "code {c}: dx {:+.2} dy {:+.2} (found in {n})",
            dx / n,
            dy / n
        );
    }
    println!("encoder latents before the codebook (and, for the convolutional LAM, the pooled");
    println!("features they are read from): per pair of actions, how often the nearer class mean");
    println!(
        "(leave-one-state-out) names each latent; the mean cosine of the two latents from the"
    );
    println!("same state; and how often the two from one state differ the way the means do");
    for (x, y) in [
        (Action::Left, Action::Noop),
        (Action::Right, Action::Noop),
        (Action::Left, Action::Right),
        (Action::Jump, Action::Noop),
    ] {
        let (a, b) = (&latents[x as usize], &latents[y as usize]);
        let (fa, fb) = (&features[x as usize], &features[y as usize]);
        let features_ordered = if fa.is_empty() {
            "-".to_string()
        } else {
            let (sa, sb) = standardise(fa, fb);
            format!("{:.2}", pairs_ordered(&sa, &sb))
        };
        println!(
            "{:>6} vs {:<6} separable {:.2}  same-state cosine {:.3}  pairs ordered: latents {:.2}, features {}",
            x.name(),
            y.name(),
            nearest_mean_accuracy(a, b),
            a.iter().zip(b).map(|(u, v)| dot(u, v)).sum::<f32>() / a.len().max(1) as f32,
            pairs_ordered(a, b),
            features_ordered,
        );
    }
    Ok(())
}

fn dot(u: &[f32], v: &[f32]) -> f32 {
    u.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// Share of latents of the two classes that are nearer their own class mean than the other's,
/// each mean taken without the latent's own state.
fn nearest_mean_accuracy(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let n = a.len();
    if n < 2 {
        return f32::NAN;
    }
    let sum = |c: &[Vec<f32>]| {
        c.iter().fold(vec![0f32; c[0].len()], |mut s, v| {
            s.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            s
        })
    };
    let (sa, sb) = (sum(a), sum(b));
    let mut right = 0;
    for i in 0..n {
        let mean = |s: &[f32], own: &[f32]| {
            s.iter()
                .zip(own)
                .map(|(s, o)| (s - o) / (n - 1) as f32)
                .collect::<Vec<f32>>()
        };
        let (ma, mb) = (mean(&sa, &a[i]), mean(&sb, &b[i]));
        let d = |u: &[f32], m: &[f32]| u.iter().zip(m).map(|(x, y)| (x - y).powi(2)).sum::<f32>();
        right += usize::from(d(&a[i], &ma) < d(&a[i], &mb));
        right += usize::from(d(&b[i], &mb) < d(&b[i], &ma));
    }
    right as f32 / (2 * n) as f32
}

/// Share of states whose two vectors (one per class) differ along the difference of the class
/// means taken without that state: whether the representation tells the two actions apart from
/// the same state, whatever else varies between states.
fn pairs_ordered(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let n = a.len();
    if n < 2 {
        return f32::NAN;
    }
    let dim = a[0].len();
    let diff: Vec<Vec<f32>> = a
        .iter()
        .zip(b)
        .map(|(u, v)| u.iter().zip(v).map(|(x, y)| x - y).collect())
        .collect();
    let total: Vec<f32> = (0..dim).map(|j| diff.iter().map(|d| d[j]).sum()).collect();
    // d · (total − d): the pair's difference against the others' summed differences.
    let ordered = diff
        .iter()
        .filter(|d| dot(d, &total) - dot(d, d) > 0.0)
        .count();
    ordered as f32 / n as f32
}

/// Both classes' vectors with each dimension scaled to zero mean and unit spread over the two.
fn standardise(a: &[Vec<f32>], b: &[Vec<f32>]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let all: Vec<&Vec<f32>> = a.iter().chain(b).collect();
    let n = all.len() as f32;
    let dim = all[0].len();
    let mean: Vec<f32> = (0..dim)
        .map(|j| all.iter().map(|v| v[j]).sum::<f32>() / n)
        .collect();
    let sd: Vec<f32> = (0..dim)
        .map(|j| (all.iter().map(|v| (v[j] - mean[j]).powi(2)).sum::<f32>() / n).sqrt() + 1e-6)
        .collect();
    let scale = |c: &[Vec<f32>]| {
        c.iter()
            .map(|v| (0..dim).map(|j| (v[j] - mean[j]) / sd[j]).collect())
            .collect()
    };
    (scale(a), scale(b))
}

/// A 64×64 RGB frame flipped left to right.
fn mirror(frame: &[u8]) -> Vec<u8> {
    frame
        .chunks(64 * 3)
        .flat_map(|row| row.chunks(3).rev().flatten().copied().collect::<Vec<u8>>())
        .collect()
}
