//! Does the dynamics model use the action? On held-out clips, the last frame's tokens are all
//! hidden and predicted from the frames before it and an action: the LAM's action for that
//! transition, or a random one. Cross-entropy and accuracy are split into the tokens that
//! differ from the previous frame's (where the action can matter) and those that do not.
//! A third split is the tokens the player touches. A model that ignores the action scores the
//! same with both. The game's true actions are a third row, for models trained with
//! `genie train dynamics --oracle-actions`.
//!
//! `cargo run --release --example action_gain -- [CHECKPOINT_DIR] [CLIPS] [STICKINESS]`
//! (stickiness of the scripted player, default 0.8; at 0 the frames before do not give the
//! action away). Checkpoint of 2026-11-25, 64 clips, stickiness 0.8: changed tokens CE 2.472
//! with the LAM's actions, 2.527 with random ones, most of them codes flickering on still
//! patches (`token_flicker`). Still codes kept (2026-11-26), stickiness 0: at 9,500 dynamics
//! steps the 248 changed tokens CE 5.29 vs 5.65, the player's 2.92 vs 3.15; at 17,500 steps
//! 4.57 vs 5.14 and 2.41 vs 2.91; at 26,000 4.30 vs 5.14 and 2.19 vs 2.98; at 46,999 (shipped
//! 2026-11-26, the last 15,920 steps at batch 64 on a GPU) 3.56 vs 5.03 and 1.74 vs 3.12;
//! unchanged tokens 99% right.
use genie::data::{EVAL_SEED_START, PlayStyle, generate_clip_played};
use genie::game::{DEFAULT_DIFFICULTY, FRAME_BYTES, find_player};
use genie::model::checkpoint::Genie;
use genie::model::frames::frames_to_f32;
use genie::model::tokenizer::still_patches;
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or("checkpoints".into());
    let clips: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    // How often the scripted player repeats its last action: with the default 0.8 the motion
    // in the frames before mostly gives the action away; at 0 it has to come from the action.
    let stickiness: f32 = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.8);
    let genie = Genie::load(std::path::Path::new(&dir), Device::Cpu)?;
    let _guard = tch::no_grad_guard();
    let t = 8i64;
    let (mut bytes, mut game) = (Vec::new(), Vec::new());
    for i in 0..clips {
        let clip = generate_clip_played(
            EVAL_SEED_START + i,
            DEFAULT_DIFFICULTY,
            t as usize,
            i,
            PlayStyle::with_stickiness(stickiness),
        );
        bytes.extend_from_slice(&clip.frames);
        game.extend(clip.actions[..t as usize - 1].iter().map(|&a| a as i64));
    }
    let b = clips as i64;
    // The game's own action ids: what a model trained with `--oracle-actions` was conditioned on.
    let game_actions = Tensor::from_slice(&game).view([b, t - 1]);
    let frames = frames_to_f32(&Tensor::from_slice(&bytes).view([b, t, 64, 64, 3]));
    let ids = genie.tokenizer.encode(&frames); // [B, T, N]
    let lam_actions = genie.lam.infer_actions(&frames); // [B, T−1]
    let n = ids.size()[2];
    let mask = Tensor::zeros([b, t, n], (Kind::Bool, Device::Cpu));
    let _ = mask.narrow(1, t - 1, 1).fill_(1);
    let last = ids.select(1, t - 1);
    let changed = last.ne_tensor(&ids.select(1, t - 2)); // [B, N]
    // Tokens whose 8×8 patch the player touches (hitbox 6×7 around its centre, a pixel of
    // margin) in the last frame or the one before: the only place the key acts on screen
    // (besides a rare camera flip). Most changed tokens are elsewhere: enemies, coins, codes
    // flickering on still background.
    let side = (n as f64).sqrt() as usize;
    let patch = 64 / side;
    let mut near = vec![false; (b as usize) * n as usize];
    for i in 0..b as usize {
        for k in [t as usize - 2, t as usize - 1] {
            let at = (i * t as usize + k) * FRAME_BYTES;
            let Some((x, y)) = find_player(&bytes[at..at + FRAME_BYTES]) else {
                continue;
            };
            for (j, flag) in near[i * n as usize..(i + 1) * n as usize]
                .iter_mut()
                .enumerate()
            {
                let (px, py) = (((j % side) * patch) as f32, ((j / side) * patch) as f32);
                let overlaps = |lo: f32, hi: f32, p: f32| hi >= p && lo < p + patch as f32;
                if overlaps(x - 4.0, x + 4.0, px) && overlaps(y - 4.5, y + 4.5, py) {
                    *flag = true;
                }
            }
        }
    }
    let player = Tensor::from_slice(&near).view([b, n]);
    // Tokens that changed although no pixel of their patch did: the tokenizer's codes of a
    // still patch flickering (its encoder is causal in time, so a code depends on the frames
    // before). Nothing can predict those from the action.
    let still = still_patches(&frames, genie.config.tokenizer.patch).select(1, t - 2); // [B, N]
    let flicker = changed.logical_and(&still);
    println!(
        "tokens changed: {} of {} ({} of them on patches whose pixels did not change); patches with changed pixels: {}",
        i64::try_from(changed.sum(Kind::Int64)).unwrap_or(0),
        b * n,
        i64::try_from(flicker.sum(Kind::Int64)).unwrap_or(0),
        i64::try_from(still.logical_not().sum(Kind::Int64)).unwrap_or(0),
    );
    tch::manual_seed(0);
    let random = Tensor::randint(
        genie.config.lam.num_actions,
        [b, t - 1],
        (Kind::Int64, Device::Cpu),
    );
    for (name, actions) in [
        ("LAM actions", &lam_actions),
        ("game actions", &game_actions),
        ("random actions", &random),
    ] {
        let logits = genie
            .dynamics
            .forward(&ids, actions, &mask)
            .select(1, t - 1); // [B, N, V]
        let ce = logits
            .reshape([-1, genie.config.dynamics.vocab_size])
            .cross_entropy_loss::<Tensor>(
                &last.flatten(0, -1),
                None,
                tch::Reduction::None,
                -100,
                0.0,
            )
            .view([b, n]);
        let hits = logits.argmax(-1, false).eq_tensor(&last);
        let split = |sel: &Tensor| {
            let w = sel.to_kind(Kind::Float);
            let count = f64::try_from(w.sum(Kind::Float)).unwrap_or(0.0).max(1.0);
            let mean = |x: &Tensor| {
                f64::try_from((x.to_kind(Kind::Float) * &w).sum(Kind::Float)).unwrap_or(f64::NAN)
                    / count
            };
            (mean(&ce), mean(&hits), count as i64)
        };
        let (ce_c, acc_c, n_c) = split(&changed);
        let (ce_s, acc_s, n_s) = split(&changed.logical_not());
        let (ce_p, acc_p, n_p) = split(&player);
        println!(
            "{name:>15}: changed tokens ({n_c}) CE {ce_c:.3} accuracy {acc_c:.3}; unchanged ({n_s}) CE {ce_s:.3} accuracy {acc_s:.3}; player's ({n_p}) CE {ce_p:.3} accuracy {acc_p:.3}"
        );
    }
    Ok(())
}
