//! The run folder: a checkpoint folder (`genie.json` plus the three networks' safetensors), so
//! `genie eval --checkpoint RUN` and `genie play --checkpoint RUN` work on it at any time, plus
//! `train_state.json` (steps done per network), `metrics.jsonl` and the optimizers' moments.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::adamw::{self, AdamW};
use super::run::{Stage, TrainError, TrainOptions};
use super::schedule::Schedule;
use crate::model::{Genie, GenieConfig};

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
    /// Steps that trained the camera head of a dynamics model that scrolls alone
    /// ([`Stage::Camera`]).
    pub camera_steps: u64,
    /// Seconds of training per network.
    pub tokenizer_seconds: f64,
    pub lam_seconds: f64,
    pub dynamics_seconds: f64,
    pub decoder_seconds: f64,
    pub camera_seconds: f64,
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
            Stage::Camera => self.camera_steps,
        }
    }

    pub(super) fn steps_mut(&mut self, stage: Stage) -> (&mut u64, &mut f64) {
        match stage {
            Stage::Tokenizer => (&mut self.tokenizer_steps, &mut self.tokenizer_seconds),
            Stage::Lam => (&mut self.lam_steps, &mut self.lam_seconds),
            Stage::Dynamics => (&mut self.dynamics_steps, &mut self.dynamics_seconds),
            Stage::Decoder => (&mut self.decoder_steps, &mut self.decoder_seconds),
            Stage::Camera => (&mut self.camera_steps, &mut self.camera_seconds),
        }
    }
}

pub const STATE_FILE: &str = "train_state.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
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
        Stage::Camera => return Err(TrainError::Run {
            path: run.clone(),
            what: "the camera head belongs to a trained dynamics model that scrolls: pass --resume on its run folder".into(),
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
