//! The training loop shared by the three networks: AdamW, warm-up then cosine or WSD decay,
//! gradient clipping, dead-code restarts, a JSONL log, held-out evaluation every N steps,
//! checkpoints every few minutes and at exit, and `--resume`.
//!
//! The run folder is a checkpoint folder (`genie.json` plus the three networks' safetensors), so
//! `genie eval --checkpoint RUN` and `genie play --checkpoint RUN` work on it at any time, plus
//! `train_state.json` (steps done per network) and `metrics.jsonl`.
//!
//! Resuming restores weights, step counts and the optimizer's moment estimates
//! (`adamw_<network>.safetensors`, see [`super::adamw`]); a run saved before those files existed,
//! or one whose network changed shape since, resumes with fresh moments and says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::adamw::{self, AdamW};
use super::dist::{DistError, ProcessGroup};
use super::log::{LogError, MetricsLog};
use super::schedule::Schedule;
use crate::model::dynamics::ActionSource;
use crate::model::tokenizer::Tokenizer;
use crate::model::{CheckpointError, Genie, GenieConfig, Rows, frames_to_f32};

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
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokenizer => "tokenizer",
            Self::Lam => "lam",
            Self::Dynamics => "dynamics",
            Self::Decoder => "decoder",
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

/// Steps done per network, saved beside the weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainState {
    pub tokenizer_steps: u64,
    pub lam_steps: u64,
    pub dynamics_steps: u64,
    /// Steps that trained the tokenizer's decoder alone ([`Stage::Decoder`]), after its
    /// `tokenizer_steps`.
    pub decoder_steps: u64,
    /// Seconds of training per network.
    pub tokenizer_seconds: f64,
    pub lam_seconds: f64,
    pub dynamics_seconds: f64,
    pub decoder_seconds: f64,
    /// The learning-rate schedule each network last trained under, by stage name, so that a
    /// resumed run continues it (`genie train --resume` without schedule flags).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub schedules: BTreeMap<String, Schedule>,
}

impl TrainState {
    /// Steps done on `stage`'s network.
    pub fn steps(&self, stage: Stage) -> u64 {
        match stage {
            Stage::Tokenizer => self.tokenizer_steps,
            Stage::Lam => self.lam_steps,
            Stage::Dynamics => self.dynamics_steps,
            Stage::Decoder => self.decoder_steps,
        }
    }

    fn steps_mut(&mut self, stage: Stage) -> (&mut u64, &mut f64) {
        match stage {
            Stage::Tokenizer => (&mut self.tokenizer_steps, &mut self.tokenizer_seconds),
            Stage::Lam => (&mut self.lam_steps, &mut self.lam_seconds),
            Stage::Dynamics => (&mut self.dynamics_steps, &mut self.dynamics_seconds),
            Stage::Decoder => (&mut self.decoder_steps, &mut self.decoder_seconds),
        }
    }
}

pub const STATE_FILE: &str = "train_state.json";
pub const METRICS_FILE: &str = "metrics.jsonl";

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

/// Opens (resume) or creates (fresh, with `config`) the run folder.
pub fn open_run(
    opts: &TrainOptions,
    config: &GenieConfig,
) -> Result<(Genie, TrainState), TrainError> {
    let run = &opts.run;
    let has_checkpoint = run.join(crate::model::checkpoint::CONFIG_FILE).exists();
    if opts.resume {
        if !has_checkpoint {
            return Err(TrainError::Run {
                path: run.clone(),
                what: "nothing to resume: no genie.json here".into(),
            });
        }
        let genie = Genie::load(run, opts.device)?;
        let state_path = run.join(STATE_FILE);
        let state = match std::fs::read_to_string(&state_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| TrainError::Run {
                path: state_path.clone(),
                what: format!("bad train state: {e}"),
            })?,
            Err(_) => TrainState::default(),
        };
        return Ok((genie, state));
    }
    let genie_new = || {
        Genie::new(config.clone(), opts.device).map_err(|e| TrainError::Run {
            path: run.clone(),
            what: e.to_string(),
        })
    };
    if !opts.writes() {
        // Rank 0 lays out the run folder and refuses one that holds a run; the other ranks
        // start from its weights (`train` copies them over).
        return Ok((genie_new()?, TrainState::default()));
    }
    match opts.stage {
        Stage::Tokenizer | Stage::Lam => {}
        Stage::Dynamics => return Err(TrainError::Run {
            path: run.clone(),
            what: "the dynamics model trains on a trained tokenizer and LAM: pass --resume on their run folder".into(),
        }),
        Stage::Decoder => return Err(TrainError::Run {
            path: run.clone(),
            what: "the decoder trains on a trained tokenizer's codes: pass --resume on its run folder".into(),
        }),
    }
    if has_checkpoint {
        return Err(TrainError::Run {
            path: run.clone(),
            what: "already holds a run; pass --resume to continue it or choose another folder"
                .into(),
        });
    }
    std::fs::create_dir_all(run).map_err(|e| TrainError::Run {
        path: run.clone(),
        what: e.to_string(),
    })?;
    let genie = genie_new()?;
    let state = TrainState::default();
    save(&genie, &state, run, None)?;
    Ok((genie, state))
}

/// Writes weights, config and state (and, during training, the optimizer of the network being
/// trained); each file is written beside its target and renamed over it, so a run killed
/// mid-save keeps its previous checkpoint.
pub fn save(
    genie: &Genie,
    state: &TrainState,
    run: &Path,
    optimizer: Option<(Stage, &AdamW)>,
) -> Result<(), TrainError> {
    let tmp = run.join(".saving");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::Run {
        path: tmp.clone(),
        what: e.to_string(),
    })?;
    genie.save(&tmp)?;
    let state_json = serde_json::to_vec_pretty(state).expect("state serialises");
    std::fs::write(tmp.join(STATE_FILE), state_json).map_err(|e| TrainError::Run {
        path: tmp.clone(),
        what: e.to_string(),
    })?;
    if let Some((stage, opt)) = optimizer {
        opt.save(&tmp.join(adamw::state_file(stage.name())))?;
    }
    for entry in std::fs::read_dir(&tmp).map_err(|e| TrainError::Run {
        path: tmp.clone(),
        what: e.to_string(),
    })? {
        let entry = entry.map_err(|e| TrainError::Run {
            path: tmp.clone(),
            what: e.to_string(),
        })?;
        let target = run.join(entry.file_name());
        std::fs::rename(entry.path(), &target).map_err(|e| TrainError::Run {
            path: target,
            what: e.to_string(),
        })?;
    }
    let _ = std::fs::remove_dir(&tmp);
    Ok(())
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

/// Loss and metrics of one batch for the stage's network.
/// The third item is the network's quantizer output (for code restarts); the fourth the term of
/// the loss that is a weighted mean and what it was divided by (see
/// [`crate::model::DynamicsLoss::denominator`]).
fn stage_loss(
    genie: &Genie,
    stage: Stage,
    batch: &Batch,
    rows: Rows,
) -> (
    Tensor,
    serde_json::Value,
    Option<crate::model::vq::VqOutput>,
    Option<(Tensor, Tensor)>,
) {
    let frames = frames_to_f32(&batch.frames);
    match stage {
        Stage::Tokenizer => {
            let out = genie.tokenizer.loss(&frames);
            (
                out.loss,
                serde_json::to_value(out.metrics).expect("metrics"),
                Some(out.vq),
                None,
            )
        }
        Stage::Lam => {
            let out = genie.lam.loss(&frames);
            (
                out.loss,
                serde_json::to_value(out.metrics).expect("metrics"),
                Some(out.vq),
                Some((out.reconstruction, out.denominator)),
            )
        }
        Stage::Decoder => {
            let (loss, metrics) = genie.tokenizer.decoder_loss(&frames);
            (
                loss,
                serde_json::to_value(metrics).expect("metrics"),
                None,
                None,
            )
        }
        Stage::Dynamics => {
            let (ids, actions) = tch::no_grad(|| {
                (
                    genie.tokenizer.encode(&frames),
                    dynamics_actions(genie, batch, &frames),
                )
            });
            let out = genie.dynamics.loss_rows(&ids, &actions, rows);
            (
                out.loss.shallow_clone(),
                serde_json::to_value(out.metrics).expect("metrics"),
                None,
                Some((out.loss, out.denominator)),
            )
        }
    }
}

/// Tokens one batch feeds the trained network (for throughput figures).
fn batch_tokens(genie: &Genie, stage: Stage, frames: &Tensor) -> f64 {
    let (b, t) = (frames.size()[0], frames.size()[1]);
    let per_frame = match stage {
        Stage::Tokenizer | Stage::Decoder => genie.config.tokenizer.tokens_per_frame(),
        Stage::Lam => genie.config.lam.patches_per_frame(),
        Stage::Dynamics => genie.config.dynamics.tokens_per_frame,
    };
    (b * t * per_frame) as f64
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
        Stage::Dynamics => &genie.dynamics_vs,
    };
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
            "warning: {} not found (a run saved before optimizer state was kept): the \
             optimizer starts afresh",
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
            crate::torch::autocast_bf16(opts.device, || stage_loss(genie, stage, &batch, rows))
        } else {
            stage_loss(genie, stage, &batch, rows)
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
            let local_counts = vq.as_ref().map(|vq| match stage {
                Stage::Tokenizer => genie.tokenizer.code_counts(vq),
                _ => genie.lam.code_counts(vq),
            });
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
            let restarted = match (stage, &counts) {
                (Stage::Tokenizer, None) => genie
                    .tokenizer
                    .restart_idle_codes(&vq, opts.idle_code_limit),
                (Stage::Lam, None) => genie.lam.restart_idle_codes(&vq, opts.idle_code_limit),
                (Stage::Tokenizer, Some(c)) => {
                    genie
                        .tokenizer
                        .restart_idle_codes_counted(c, &vq, opts.idle_code_limit)
                }
                (Stage::Lam, Some(c)) => {
                    genie
                        .lam
                        .restart_idle_codes_counted(c, &vq, opts.idle_code_limit)
                }
                // Their losses quantize nothing (`stage_loss` gives them no `vq`): no codes
                // of theirs to restart (the decoder's are frozen).
                (Stage::Dynamics | Stage::Decoder, _) => 0,
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

/// The batch with a random half of its clips mirrored left to right (`lam.mirror_clips`); the
/// actions stay as they were (the LAM never reads them).
fn mirror_half(batch: &Batch, rows: Rows) -> Batch {
    let b = batch.frames.size()[0];
    let pick = rows
        .rand(&[b], batch.frames.device())
        .lt(0.5)
        .view([b, 1, 1, 1, 1]);
    Batch {
        frames: batch.frames.flip([3]).where_self(&pick, &batch.frames),
        actions: batch.actions.shallow_clone(),
    }
}

/// Mean of each numeric metric over the held-out batches (no gradients).
pub fn evaluate(genie: &Genie, stage: Stage, held_out: &[Batch]) -> serde_json::Value {
    let mut sums = serde_json::Map::new();
    tch::no_grad(|| {
        for batch in held_out {
            let rows = Rows::whole(batch.frames.size()[0]);
            let (_, metrics, _, _) = stage_loss(genie, stage, batch, rows);
            flatten_into(&mut sums, "", &metrics);
        }
    });
    let n = held_out.len().max(1) as f64;
    serde_json::Value::Object(
        sums.into_iter()
            .map(|(k, v)| (k, serde_json::json!(v.as_f64().unwrap_or(f64::NAN) / n)))
            .collect(),
    )
}

fn flatten_into(
    sums: &mut serde_json::Map<String, serde_json::Value>,
    prefix: &str,
    value: &serde_json::Value,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                flatten_into(sums, &key, v);
            }
        }
        serde_json::Value::Number(x) => {
            let old = sums.get(prefix).and_then(|v| v.as_f64()).unwrap_or(0.0);
            sums.insert(
                prefix.to_owned(),
                serde_json::json!(old + x.as_f64().unwrap_or(f64::NAN)),
            );
        }
        _ => {}
    }
}

/// The actions the dynamics model is trained on: the clip's game actions for a Game-conditioned
/// model (`--oracle-actions`), the LAM's latent actions inferred from `frames` otherwise.
///
/// # Shapes
/// `frames` [B, T, H, W, 3] f32 → [B, T−1] i64.
fn dynamics_actions(genie: &Genie, batch: &Batch, frames: &Tensor) -> Tensor {
    if genie.config.dynamics.actions == ActionSource::Game {
        let t = batch.actions.size()[1];
        batch.actions.narrow(1, 0, t - 1).to_kind(Kind::Int64)
    } else {
        genie.lam.infer_actions(frames)
    }
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

    #[test]
    fn a_game_action_model_trains_on_the_clips_actions_and_a_latent_one_on_the_lams() {
        for source in [ActionSource::Latent, ActionSource::Game] {
            let mut config = tiny_config();
            config.dynamics.actions = source;
            let genie = Genie::new(config, Device::Cpu).unwrap();
            tch::manual_seed(1);
            let frames = Tensor::randint(256, [2, 3, 16, 16, 3], (Kind::Uint8, Device::Cpu));
            let clip_actions = [3u8, 5, 0, 1, 2, 7];
            let batch = Batch {
                frames: frames.shallow_clone(),
                actions: Tensor::from_slice(&clip_actions).view([2, 3]),
            };
            // Compared without the training loss: its MaskGIT mask comes from libtorch's global
            // generator, which tests running in parallel draw from too.
            let frames = frames_to_f32(&frames);
            let used = tch::no_grad(|| dynamics_actions(&genie, &batch, &frames));
            let used = Vec::<i64>::try_from(used.flatten(0, -1)).unwrap();
            match source {
                ActionSource::Latent => {
                    let inferred = genie.lam.infer_actions(&frames);
                    let inferred = Vec::<i64>::try_from(inferred.flatten(0, -1)).unwrap();
                    assert_eq!(used, inferred, "the LAM's actions, not the clip's");
                }
                ActionSource::Game => assert_eq!(used, [3, 5, 1, 2], "the clip's actions"),
            }
            // And the training step runs on either.
            let loss = stage_loss(
                &genie,
                Stage::Dynamics,
                &batch,
                Rows::whole(batch.frames.size()[0]),
            )
            .1["loss"]
                .as_f64()
                .unwrap();
            assert!(loss.is_finite());
        }
    }

    #[test]
    fn a_decoder_run_changes_the_decoder_and_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = TrainOptions {
            stage: Stage::Tokenizer,
            run: dir.path().join("run"),
            resume: false,
            schedule: Schedule {
                peak: 1e-2,
                warmup_steps: 1,
                total_steps: 3,
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
        };
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

    #[test]
    fn a_bf16_autocast_lam_run_learns_and_keeps_its_weights_f32() {
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

    #[test]
    fn mirroring_flips_about_half_the_clips_whole_and_leaves_the_rest() {
        tch::manual_seed(7);
        let (b, t, side) = (64, 3, 4);
        let frames = Tensor::randint(256, [b, t, side, side, 3], (Kind::Uint8, Device::Cpu));
        let batch = Batch {
            frames: frames.shallow_clone(),
            actions: Tensor::zeros([b, t], (Kind::Uint8, Device::Cpu)),
        };
        let out = mirror_half(&batch, Rows::whole(batch.frames.size()[0]));
        assert_eq!(out.frames.size(), frames.size());
        let flipped = frames.flip([3]);
        let mut mirrored = 0;
        for i in 0..b {
            let (got, same, flip) = (out.frames.get(i), frames.get(i), flipped.get(i));
            if got.equal(&flip) {
                mirrored += 1;
                // Random frames are not their own mirror: this counts real flips.
                assert!(!got.equal(&same));
            } else {
                assert!(
                    got.equal(&same),
                    "clip {i} is neither itself nor its mirror"
                );
            }
        }
        assert!((16..=48).contains(&mirrored), "{mirrored} of {b} mirrored");
    }
}
