//! The training loop shared by the three networks: AdamW, warm-up then cosine or WSD decay,
//! gradient clipping, dead-code restarts, a JSONL log, held-out evaluation every N steps,
//! checkpoints every few minutes and at exit, and `--resume`.
//!
//! The run folder is [`super::folder`]'s; each step's loss is [`super::loss`]'s.
//!
//! Resuming restores weights, step counts and the optimizer's moment estimates
//! (`adamw_<network>.safetensors`, see [`super::adamw`]); a run saved before those files existed,
//! or one whose network changed shape since, resumes with fresh moments and says so.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::adamw::{self, AdamW};
use super::dist::{DistError, ProcessGroup};
use super::folder::{METRICS_FILE, TrainState, save};
use super::log::{LogError, MetricsLog};
use super::loss::{batch_tokens, evaluate, mirror_half, stage_loss};
use super::schedule::Schedule;
use crate::model::tokenizer::Tokenizer;
use crate::model::{CheckpointError, Genie, Rows};

/// Which network a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Tokenizer,
    Lam,
    Dynamics,
    /// The tokenizer's decoder alone, on the codes of its frozen encoder and codebook: sharper
    /// frames without changing a token, so a trained LAM and dynamics model stay valid.
    Decoder,
    /// The camera head of a dynamics model that scrolls (`model::scroll`) alone: when the view
    /// steps a column, learned from the frames; the rest of the model is left as it is.
    Camera,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokenizer => "tokenizer",
            Self::Lam => "lam",
            Self::Dynamics => "dynamics",
            Self::Decoder => "decoder",
            Self::Camera => "camera",
        }
    }
}

/// A batch of clips as the game makes them.
pub struct Batch {
    /// u8 [B, T, H, W, 3].
    pub frames: Tensor,
    /// u8 [B, T]: the game action applied at each frame (`actions[t]` produced frame t+1). Only
    /// read by a dynamics model conditioned on [`ActionSource::Game`].
    pub actions: Tensor,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Dist(#[from] DistError),
    #[error("run folder {path}: {what}")]
    Run { path: PathBuf, what: String },
    #[error("training diverged at step {step}: the {stage} loss is {loss}")]
    Diverged {
        stage: &'static str,
        step: u64,
        loss: f64,
    },
}

/// How a run trains.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub stage: Stage,
    pub run: PathBuf,
    /// Continue the run in `run` (its weights, config and step count).
    pub resume: bool,
    /// Total steps for this network (the schedule's length); a resumed run continues to it.
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub clip_norm: f64,
    pub save_every: Duration,
    pub eval_every: u64,
    pub log_every: u64,
    /// Codes unused for this many steps are restarted.
    pub idle_code_limit: i64,
    pub device: Device,
    pub seed: i64,
    pub progress: bool,
    /// Each step's forward pass (the loss) under bf16 autocast (`crate::torch::autocast_bf16`);
    /// backward and the optimizer outside it, the weights and their moments f32.
    pub bf16_autocast: bool,
    /// The data-parallel group this process trains in (`None`: alone). Each rank's batches are
    /// its rows of the step's batch; rank 0 alone writes the run folder, the log and the bar.
    pub group: Option<Arc<ProcessGroup>>,
}

impl TrainOptions {
    /// Whether this process writes the run folder (alone, or rank 0 of a group).
    pub fn writes(&self) -> bool {
        self.group.as_ref().is_none_or(|g| g.is_first())
    }
}

/// One logged record.
#[derive(Debug, Serialize)]
struct Record<'a> {
    stage: &'a str,
    split: &'a str,
    step: u64,
    lr: f64,
    seconds: f64,
    tokens_per_s: f64,
    #[serde(flatten)]
    metrics: serde_json::Value,
}

/// Trains `stage` until its schedule's total steps or until `stop` is set (Ctrl-C); saves every
/// `save_every` and at the end. `batches` yields training batches; `held_out` is evaluated every
/// `eval_every` steps.
///
/// In a data-parallel group (`opts.group`) every rank calls this with its own batches: the
/// weights and optimizer state start as rank 0's, each step's gradients are averaged over the
/// ranks, and the ranks stop together (at the end, at a stop on any rank, or at a divergence).
pub fn train(
    opts: &TrainOptions,
    genie: &mut Genie,
    state: &mut TrainState,
    mut batches: impl FnMut() -> Batch,
    held_out: &[Batch],
    stop: Arc<AtomicBool>,
) -> Result<(), TrainError> {
    tch::manual_seed(opts.seed);
    let stage = opts.stage;
    let group = opts.group.as_deref();
    let writes = opts.writes();
    let mut log = match writes {
        true => Some(MetricsLog::append(&opts.run.join(METRICS_FILE))?),
        false => None,
    };
    let vs = match stage {
        Stage::Tokenizer | Stage::Decoder => &genie.tokenizer_vs,
        Stage::Lam => &genie.lam_vs,
        Stage::Dynamics | Stage::Camera => &genie.dynamics_vs,
    };
    if stage == Stage::Camera {
        // The camera head alone: the dynamics model it belongs to stays as it is.
        for (name, var) in vs.variables() {
            if !name.starts_with("camera.") {
                let _ = var.set_requires_grad(false);
            }
        }
    }
    if stage == Stage::Decoder {
        // The optimizer takes the trainable variables: the encoder and codebook are left out,
        // so weight decay cannot move them either.
        for (name, var) in vs.variables() {
            if !Tokenizer::is_decoder_variable(&name) {
                let _ = var.set_requires_grad(false);
            }
        }
    }
    let mut opt = AdamW::new(vs, opts.schedule.peak, opts.weight_decay);
    let opt_file = opts.run.join(adamw::state_file(stage.name()));
    if opts.resume && opt_file.exists() {
        match opt.load(&opt_file) {
            Ok(()) if writes => eprintln!("optimizer state restored ({} steps)", opt.steps()),
            Ok(()) => {}
            // The weights are what matter; fresh moments cost a few hundred steps of
            // re-warming. Say why rather than refuse the run.
            Err(why) => eprintln!("warning: optimizer starts afresh: {why}"),
        }
    } else if opts.resume && *state.steps_mut(stage).0 > 0 {
        eprintln!(
            "warning: {} not found (the run began from a checkpoint, which ships no optimizer \
             state, or was saved before it was kept): the optimizer starts afresh",
            opt_file.display()
        );
    }
    // Every network's variables (the whole run is rank 0's), in one order on every rank.
    let all_variables = |genie: &Genie| -> Vec<Tensor> {
        let mut named: Vec<(String, Tensor)> =
            [&genie.tokenizer_vs, &genie.lam_vs, &genie.dynamics_vs]
                .iter()
                .enumerate()
                .flat_map(|(i, vs)| {
                    vs.variables()
                        .into_iter()
                        .map(move |(name, t)| (format!("{i}/{name}"), t))
                })
                .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named.into_iter().map(|(_, t)| t).collect()
    };
    if let Some(group) = group {
        group.broadcast_all(&all_variables(genie))?;
        opt.broadcast_from_first(group)?;
        opt.define_gradients();
        let s = Tensor::from_slice(&[*state.steps_mut(stage).0 as i64]);
        group.broadcast_from_first(&s)?;
        *state.steps_mut(stage).0 = i64::try_from(&s).unwrap_or(0).max(0) as u64;
    }
    state
        .schedules
        .insert(stage.name().to_owned(), opts.schedule);
    let total = opts.schedule.total_steps;
    let start_step = *state.steps_mut(stage).0;
    let bar = (opts.progress && writes).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} eta {eta} {msg}",
            )
            .expect("template"),
        );
        bar.set_prefix(stage.name());
        bar.set_position(start_step);
        bar
    });
    let mut last_save = Instant::now();
    let mut window = (Instant::now(), 0.0f64);
    // Seconds this log window spent in collectives (data-parallel only).
    let mut synced = 0.0f64;
    let mut step = start_step;
    let mut stopping = false;
    while step < total && !stopping {
        let t0 = Instant::now();
        let batch = batches();
        let b = batch.frames.size()[0];
        let rows = match group {
            Some(g) => Rows {
                offset: g.rank as i64 * b,
                total: g.world as i64 * b,
            },
            None => Rows::whole(b),
        };
        let batch = if stage == Stage::Lam && genie.config.lam.mirror_clips {
            mirror_half(&batch, rows)
        } else {
            batch
        };
        let lr = opts.schedule.lr(step);
        opt.set_lr(lr);
        let (mut loss, metrics, vq, denominator) = if opts.bf16_autocast {
            crate::torch::autocast_bf16(opts.device, || {
                stage_loss(genie, stage, &batch, rows, true)
            })
        } else {
            stage_loss(genie, stage, &batch, rows, true)
        };
        let mut loss_value = f64::NAN;
        match group {
            None => {
                loss_value = f64::try_from(loss.detach()).unwrap_or(f64::NAN);
                if !loss_value.is_finite() {
                    save(genie, state, &opts.run, Some((stage, &opt)))?;
                    return Err(TrainError::Diverged {
                        stage: stage.name(),
                        step,
                        loss: loss_value,
                    });
                }
            }
            // A weighted mean (over masked tokens, over moving pixels): each rank's is rescaled
            // to its share of the mean over all ranks' weights, so that the averaged gradients
            // are the whole batch's.
            Some(group) => {
                if let Some((term, local)) = denominator {
                    let all = local.copy();
                    let began = Instant::now();
                    group.allreduce_sum(&all)?;
                    synced += began.elapsed().as_secs_f64();
                    let factor = local / all * group.world as f64 - 1.0;
                    loss += term * factor;
                }
            }
        }
        opt.zero_grad();
        loss.backward();
        let mut counts = None;
        if let Some(group) = group {
            // The loss, the stop flag and the code counts ride with the gradients.
            let local_counts = vq.as_ref().map(|vq| code_counts(genie, stage, vq));
            let mut extra = vec![
                loss.detach().to_kind(Kind::Float).view([1]),
                Tensor::from_slice(&[f32::from(u8::from(stop.load(Ordering::Relaxed)))])
                    .to_device(loss.device()),
            ];
            if let Some(c) = &local_counts {
                extra.push(c.to_kind(Kind::Float));
            }
            let extra = Tensor::cat(&extra, 0);
            let began = Instant::now();
            group.average_gradients(&opt.gradients(), &extra)?;
            synced += began.elapsed().as_secs_f64();
            let values =
                Vec::<f32>::try_from(extra.to_device(tch::Device::Cpu)).unwrap_or_default();
            loss_value = f64::from(values[0]) / group.world as f64;
            stopping = values[1] > 0.0;
            counts = local_counts.map(|_| {
                extra
                    .narrow(0, 2, extra.numel() as i64 - 2)
                    .round()
                    .to_kind(Kind::Int64)
            });
            if !loss_value.is_finite() {
                if writes {
                    save(genie, state, &opts.run, Some((stage, &opt)))?;
                }
                return Err(TrainError::Diverged {
                    stage: stage.name(),
                    step,
                    loss: loss_value,
                });
            }
        } else {
            stopping = stop.load(Ordering::Relaxed);
        }
        opt.clip_grad_norm(opts.clip_norm);
        opt.step();
        if let Some(vq) = vq {
            // The group's counts in a data-parallel run, this batch's alone otherwise.
            let counts = counts.unwrap_or_else(|| code_counts(genie, stage, &vq));
            let limit = opts.idle_code_limit;
            let restarted = match stage {
                Stage::Tokenizer => genie
                    .tokenizer
                    .restart_idle_codes_counted(&counts, &vq, limit),
                Stage::Lam => genie.lam.restart_idle_codes_counted(&counts, &vq, limit),
                // Their losses quantize nothing (`stage_loss` gives them no `vq`): no codes
                // of theirs to restart (the decoder's are frozen).
                Stage::Dynamics | Stage::Decoder | Stage::Camera => 0,
            };
            // Every rank restarted the same codes (the counts are the group's) with its own
            // encoder outputs: rank 0's become everyone's.
            if let Some(group) = group
                && restarted > 0
            {
                group.broadcast_all(&all_variables(genie))?;
            }
        }
        step += 1;
        window.1 += batch_tokens(genie, stage, &batch.frames);
        let (steps, seconds) = state.steps_mut(stage);
        *steps = step;
        *seconds += t0.elapsed().as_secs_f64();
        let elapsed = *seconds;
        if step.is_multiple_of(opts.log_every) || step == total {
            let world = group.map_or(1, |g| g.world) as f64;
            let span = window.0.elapsed().as_secs_f64().max(1e-9);
            let rate = world * window.1 / span;
            window = (Instant::now(), 0.0);
            let mut metrics = metrics;
            if group.is_some() {
                // The share of the window rank 0 spent in all-reduces (waiting for the slowest
                // rank included).
                metrics["sync_share"] = serde_json::json!(synced / span);
            }
            synced = 0.0;
            if let Some(log) = &mut log {
                log.write(&Record {
                    stage: stage.name(),
                    split: "train",
                    step,
                    lr,
                    seconds: elapsed,
                    tokens_per_s: rate,
                    metrics,
                })?;
            }
            if let Some(bar) = &bar {
                bar.set_message(format!("loss {loss_value:.4} {rate:.0} tok/s"));
            }
        }
        if let Some(bar) = &bar {
            bar.set_position(step);
        }
        let due = (opts.eval_every > 0 && step.is_multiple_of(opts.eval_every)) || step == total;
        if let Some(log) = &mut log
            && due
            && !held_out.is_empty()
        {
            let metrics = evaluate(genie, stage, held_out);
            log.write(&Record {
                stage: stage.name(),
                split: "held_out",
                step,
                lr,
                seconds: elapsed,
                tokens_per_s: 0.0,
                metrics,
            })?;
        }
        if writes && last_save.elapsed() >= opts.save_every {
            save(genie, state, &opts.run, Some((stage, &opt)))?;
            last_save = Instant::now();
        }
    }
    if writes {
        save(genie, state, &opts.run, Some((stage, &opt)))?;
    }
    if let Some(group) = group {
        // The others wait for rank 0's save, so that a next step of theirs reads it.
        group.barrier()?;
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(())
}

/// [K] i64: how often each code of the quantizer `stage` trains (the tokenizer's or the LAM's)
/// was chosen in `vq`.
fn code_counts(genie: &Genie, stage: Stage, vq: &crate::model::vq::VqOutput) -> Tensor {
    let quantizer = match stage {
        Stage::Tokenizer => genie.tokenizer.quantizer(),
        _ => genie.lam.quantizer(),
    };
    quantizer.counts(&vq.ids)
}

/// A batch from row-major bytes: `frames` [B, T, H, W, 3] of `shape`, `actions` [B, T].
pub fn batch_from_u8(frames: Vec<u8>, actions: Vec<u8>, shape: [i64; 5], device: Device) -> Batch {
    Batch {
        frames: Tensor::from_slice(&frames)
            .view(shape)
            .to_kind(Kind::Uint8)
            .to_device(device),
        actions: Tensor::from_slice(&actions)
            .view([shape[0], shape[1]])
            .to_kind(Kind::Uint8)
            .to_device(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::tests::tiny_config;
    use crate::model::frames_to_f32;
    use crate::train::folder::{STATE_FILE, open_run};

    #[test]
    fn a_decoder_run_changes_the_decoder_and_no_token() {
        let _rng = global_rng();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = tokenizer_run(dir.path(), 3);
        tch::manual_seed(5);
        let frames = Tensor::randint(256, [2, 3, 16, 16, 3], (Kind::Uint8, Device::Cpu));
        let batch = || Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([2, 3], (Kind::Uint8, Device::Cpu)),
        };
        let never = || Arc::new(AtomicBool::new(false));
        // A decoder run needs a trained tokenizer to resume.
        assert!(
            open_run(
                &TrainOptions {
                    stage: Stage::Decoder,
                    ..opts.clone()
                },
                &tiny_config()
            )
            .is_err()
        );
        let (mut genie, mut state) = open_run(&opts, &tiny_config()).unwrap();
        train(&opts, &mut genie, &mut state, batch, &[], never()).unwrap();
        let before = Genie::load(&opts.run, Device::Cpu).unwrap();
        let x = frames_to_f32(&frames);
        let ids = before.tokenizer.encode(&x);

        opts.stage = Stage::Decoder;
        opts.resume = true;
        let (mut genie, mut state) = open_run(&opts, &tiny_config()).unwrap();
        let first = genie.tokenizer.decoder_loss(&x).1.mse;
        opts.schedule.total_steps = 20;
        train(&opts, &mut genie, &mut state, batch, &[], never()).unwrap();
        let after = Genie::load(&opts.run, Device::Cpu).unwrap();
        assert!(after.tokenizer.encode(&x).equal(&ids), "the tokens changed");
        let (old, new) = (
            before.tokenizer_vs.variables(),
            after.tokenizer_vs.variables(),
        );
        for (name, var) in &old {
            let same = var.equal(&new[name]);
            assert_eq!(
                same,
                !Tokenizer::is_decoder_variable(name),
                "{name}: changed {}",
                !same
            );
        }
        let last = after.tokenizer.decoder_loss(&x).1.mse;
        assert!(last < first, "decoder loss {first} -> {last}");
        let saved: TrainState =
            serde_json::from_slice(&std::fs::read(opts.run.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!((saved.tokenizer_steps, saved.decoder_steps), (3, 20));
        // Each network's schedule is kept, so `--resume` can continue it.
        assert_eq!(saved.schedules["tokenizer"].total_steps, 3);
        assert_eq!(saved.schedules["decoder"], opts.schedule);
        assert!(opts.run.join(adamw::state_file("decoder")).exists());
    }

    /// These tests seed libtorch's one global generator and compare runs made from it: one at
    /// a time, or another's initialisation draws from it in between.
    fn global_rng() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A tokenizer run of `total_steps` in `dir`/run, logging every step, saving only at its end.
    fn tokenizer_run(dir: &std::path::Path, total_steps: u64) -> TrainOptions {
        TrainOptions {
            stage: Stage::Tokenizer,
            run: dir.join("run"),
            resume: false,
            schedule: Schedule {
                peak: 1e-2,
                warmup_steps: 1,
                total_steps,
                ..Schedule::default()
            },
            weight_decay: 0.05,
            clip_norm: 1.0,
            save_every: Duration::from_secs(3600),
            eval_every: 0,
            log_every: 1,
            idle_code_limit: 200,
            device: Device::Cpu,
            seed: 3,
            progress: false,
            bf16_autocast: false,
            group: None,
        }
    }

    #[test]
    fn a_camera_run_trains_the_camera_head_alone_and_needs_a_model_that_scrolls() {
        let _rng = global_rng();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = tokenizer_run(dir.path(), 2);
        tch::manual_seed(5);
        let frames = Tensor::randint(256, [2, 4, 16, 16, 3], (Kind::Uint8, Device::Cpu));
        let batch = || Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([2, 4], (Kind::Uint8, Device::Cpu)),
        };
        let never = || Arc::new(AtomicBool::new(false));
        let (mut genie, mut state) = open_run(&opts, &tiny_config()).unwrap();
        train(&opts, &mut genie, &mut state, batch, &[], never()).unwrap();
        opts.resume = true;
        opts.stage = Stage::Camera;
        let (mut genie, mut state) = open_run(&opts, &tiny_config()).unwrap();
        // A dynamics model that does not scroll has no camera head to train: the CLI refuses it
        // (`genie train camera`); here the model is turned into one that scrolls.
        assert!(genie.dynamics.camera().is_none());
        genie.enable_scroll().unwrap();
        let before: Vec<(String, Tensor)> = genie
            .dynamics_vs
            .variables()
            .into_iter()
            .map(|(n, v)| (n, v.detach().copy()))
            .collect();
        opts.schedule.total_steps = 5;
        train(&opts, &mut genie, &mut state, batch, &[], never()).unwrap();
        let after = Genie::load(&opts.run, Device::Cpu).unwrap();
        assert!(
            after.config.dynamics.scroll && after.config.lam.one_view,
            "genie.json says the model scrolls and its LAM reads one view"
        );
        let new = after.dynamics_vs.variables();
        for (name, old) in &before {
            let same = old.equal(&new[name]);
            assert_eq!(
                same,
                !name.starts_with("camera."),
                "{name}: changed {}",
                !same
            );
        }
        assert_eq!(state.camera_steps, 5);
    }

    #[test]
    fn a_bf16_autocast_lam_run_learns_and_keeps_its_weights_f32() {
        let _rng = global_rng();
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions {
            stage: Stage::Lam,
            run: dir.path().join("run"),
            resume: false,
            schedule: Schedule {
                peak: 3e-3,
                warmup_steps: 1,
                total_steps: 30,
                ..Schedule::default()
            },
            weight_decay: 0.0,
            clip_norm: 1.0,
            save_every: Duration::from_secs(3600),
            eval_every: 0,
            log_every: 10,
            idle_code_limit: 200,
            device: Device::Cpu,
            seed: 3,
            progress: false,
            bf16_autocast: true,
            group: None,
        };
        tch::manual_seed(5);
        // Still clips (each frame the one before): the next frame is learnable.
        let frames = Tensor::randint(256, [2, 1, 16, 16, 3], (Kind::Uint8, Device::Cpu))
            .repeat([1, 3, 1, 1, 1]);
        let batch = || Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([2, 3], (Kind::Uint8, Device::Cpu)),
        };
        let (mut genie, mut state) = open_run(&opts, &tiny_config()).unwrap();
        let x = frames_to_f32(&frames);
        let mse = |genie: &Genie| tch::no_grad(|| genie.lam.loss(&x).metrics.mse);
        let first = mse(&genie);
        train(
            &opts,
            &mut genie,
            &mut state,
            batch,
            &[],
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        let last = mse(&genie);
        assert!(last < first, "LAM reconstruction {first} -> {last}");
        assert!(!crate::torch::autocast_enabled(Device::Cpu));
        for (name, var) in genie.lam_vs.variables() {
            assert_eq!(var.kind(), Kind::Float, "{name}");
        }
        // The same run in f32 ends elsewhere: autocast did act on the steps.
        let f32_opts = TrainOptions {
            run: dir.path().join("f32"),
            bf16_autocast: false,
            group: None,
            ..opts
        };
        tch::manual_seed(5);
        let _ = Tensor::randint(256, [2, 1, 16, 16, 3], (Kind::Uint8, Device::Cpu));
        let (mut plain, mut state) = open_run(&f32_opts, &tiny_config()).unwrap();
        assert_eq!(mse(&plain), first, "the two runs start alike");
        train(
            &f32_opts,
            &mut plain,
            &mut state,
            batch,
            &[],
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        assert_ne!(mse(&plain), last);
    }
}
