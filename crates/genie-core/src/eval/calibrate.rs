//! Calibration: which latent action each game action (key) drives, found by dreaming each
//! latent from held-out states and comparing with the real game ([`calibrate_by_dreams`]), or
//! by reading the LAM's codes of real transitions ([`calibrate`]).

use std::collections::BTreeMap;

use serde::Serialize;
use tch::Device;

use super::measures::nmi;
use crate::data::{DataError, Dataset, EVAL_SEED_START};
use crate::game::Action;
use crate::model::Genie;

use super::control::{ControlCases, case_batches, game_in_play};
use super::run::{EvalOptions, to_tensor};

/// Seeds for calibration start here, apart from the evaluation's own.
pub const CALIBRATION_SEED_START: u64 = EVAL_SEED_START + 500_000;

/// What calibration by the LAM's codes found: per game action its latent and the share of its
/// transitions that got it, and the NMI between latents and actions.
pub type LamCalibration = (BTreeMap<String, i64>, BTreeMap<String, f64>, f64);

/// What [`calibrate_by_dreams`] found, keyed by game action name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DreamCalibration {
    /// The latent action each game action is mapped to while its key is held.
    #[serde(rename = "calibration")]
    pub map: BTreeMap<String, i64>,
    /// How often that latent's dreams agreed with the game action's real direction.
    pub agreement: BTreeMap<String, f64>,
    /// The same for every latent, indexed by latent id: how near the others came.
    #[serde(rename = "agreement_by_latent")]
    pub by_latent: BTreeMap<String, Vec<f64>>,
    /// The latent for the first frame of a key press, the hold latent after it.
    #[serde(rename = "press_calibration")]
    pub press: BTreeMap<String, i64>,
    /// How often dreams of that press, then the hold, agreed: the action fidelity this
    /// calibration gives on its states.
    pub press_agreement: BTreeMap<String, f64>,
}

/// Maps each game action to the latent action whose dreams move the player most like the
/// action moves the real one: the measure of action fidelity, taken on `states` calibration
/// levels (from [`CALIBRATION_SEED_START`], apart from the evaluation's). From each state every
/// latent action is dreamed and every game action played for `opts.horizon` steps; each game
/// action gets the latent whose dreamed direction agrees with its real one most often (ties go
/// to the lower id). `jump` changes nothing in the air, so it may get the latent `noop` gets
/// (it did on the shipped model; counting only the states where it differs from `noop` picked a
/// latent that did worse on held-out levels).
///
/// Then, with each action's hold latent fixed, every latent is tried on the first frame (the
/// key's press) and the best kept where its dreams agree more often than the hold alone by at
/// least `press_margin` (a share of the cases; a gain of a few cases of 256 is noise): a jump
/// takes off once, then the held key changes nothing in the air. This pass dreams `k`
/// schedules per distinct hold latent, so it takes a few times the first's time.
///
/// `progress` (hidden where stderr is no terminal) counts dreamed batches; its length grows
/// when the press pass starts.
pub fn calibrate_by_dreams(
    genie: &Genie,
    opts: &EvalOptions,
    states: usize,
    press_margin: f64,
    progress: &indicatif::ProgressBar,
) -> DreamCalibration {
    let k = genie.config.dynamics.num_actions as usize;
    progress.set_length((states.div_ceil(opts.batch.max(1)) * k) as u64);
    progress.set_message("hold latents");
    let held: Vec<Vec<i64>> = (0..k as i64).map(|l| vec![l; opts.horizon]).collect();
    let by_schedule =
        schedule_agreement(genie, opts, CALIBRATION_SEED_START, states, &held, progress);
    let (mut map, mut agreement, mut by_latent) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let row: Vec<f64> = by_schedule.iter().map(|a| a[action as usize]).collect();
        let best = (0..k).fold(0, |best, l| if row[l] > row[best] { l } else { best });
        map.insert(action.name().to_owned(), best as i64);
        agreement.insert(action.name().to_owned(), row[best]);
        by_latent.insert(action.name().to_owned(), row);
    }
    let (press, press_agreement) = calibrate_presses(
        genie,
        opts,
        states,
        &map,
        &agreement,
        press_margin,
        progress,
    );
    progress.finish_and_clear();
    DreamCalibration {
        map,
        agreement,
        by_latent,
        press,
        press_agreement,
    }
}

/// The press pass of [`calibrate_by_dreams`]: per game action, the first-frame latent that,
/// followed by its hold latent (`holds`), agrees most often (the hold itself unless another
/// does better by at least `press_margin`), and that agreement. Over a horizon of one frame
/// there is no hold to follow a press, so the press is the hold.
fn calibrate_presses(
    genie: &Genie,
    opts: &EvalOptions,
    states: usize,
    holds: &BTreeMap<String, i64>,
    hold_agreement: &BTreeMap<String, f64>,
    press_margin: f64,
    progress: &indicatif::ProgressBar,
) -> (BTreeMap<String, i64>, BTreeMap<String, f64>) {
    if opts.horizon < 2 {
        return (holds.clone(), hold_agreement.clone());
    }
    let k = genie.config.dynamics.num_actions;
    let distinct: std::collections::BTreeSet<i64> = holds.values().copied().collect();
    let schedules: Vec<Vec<i64>> = distinct
        .iter()
        .flat_map(|&hold| {
            (0..k).filter(move |&p| p != hold).map(move |p| {
                let mut s = vec![hold; opts.horizon];
                s[0] = p;
                s
            })
        })
        .collect();
    progress.inc_length((states.div_ceil(opts.batch.max(1)) * schedules.len()) as u64);
    progress.set_message("press latents");
    let agreement = schedule_agreement(
        genie,
        opts,
        CALIBRATION_SEED_START,
        states,
        &schedules,
        progress,
    );
    let (mut press, mut press_agreement) = (BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let name = action.name();
        let tried = schedules
            .iter()
            .zip(&agreement)
            .filter(|(s, _)| s[1] == holds[name])
            .map(|(s, a)| (s[0], a[action as usize]));
        let (best, best_agreement) =
            pick_press((holds[name], hold_agreement[name]), tried, press_margin);
        press.insert(name.to_owned(), best);
        press_agreement.insert(name.to_owned(), best_agreement);
    }
    (press, press_agreement)
}

/// Of the (press latent, agreement) pairs `tried`, the one that agrees most often, if it beats
/// `hold` (the hold latent and its agreement alone) by at least `margin`; else `hold`. Ties go
/// to the first tried.
fn pick_press(
    hold: (i64, f64),
    tried: impl Iterator<Item = (i64, f64)>,
    margin: f64,
) -> (i64, f64) {
    let best = tried.fold(None::<(i64, f64)>, |best, (p, a)| match best {
        Some((_, b)) if b >= a => best,
        _ => Some((p, a)),
    });
    match best {
        // A small tolerance, so that a gain of exactly `margin` counts despite rounding.
        Some((p, a)) if a > hold.1 && a - hold.1 >= margin - 1e-9 => (p, a),
        _ => hold,
    }
}

/// Per latent schedule (one latent per frame of `opts.horizon`), per game action (in
/// [`Action::ALL`] order), how often the schedule's dreams moved the player as `horizon` steps of
/// the action moved the real one, on `states` states from the levels `first_seed` on.
/// `progress` advances by one per schedule dreamed over a batch of states.
pub fn schedule_agreement(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: usize,
    schedules: &[Vec<i64>],
    progress: &indicatif::ProgressBar,
) -> Vec<Vec<f64>> {
    let mut agree = vec![vec![0usize; Action::ALL.len()]; schedules.len()];
    let mut cases_of = vec![0usize; Action::ALL.len()];
    for seeds in case_batches(first_seed, states, opts.batch) {
        let cases = ControlCases::new(genie, seeds.into_iter(), opts.prompt_frames);
        let dreamed: Vec<_> = schedules
            .iter()
            .map(|s| {
                let d = cases.dreamed_directions(genie, s, opts);
                progress.inc(1);
                d
            })
            .collect();
        for action in Action::ALL {
            for (i, want) in cases
                .real_directions(action, opts.horizon)
                .iter()
                .enumerate()
            {
                let Some(want) = want else { continue };
                cases_of[action as usize] += 1;
                for (s, got) in dreamed.iter().enumerate() {
                    agree[s][action as usize] += usize::from(got[i] == Some(*want));
                }
            }
        }
    }
    agree
        .iter()
        .map(|row| {
            row.iter()
                .zip(&cases_of)
                .map(|(&n, &c)| n as f64 / c.max(1) as f64)
                .collect()
        })
        .collect()
}

/// Frames before the controlled transition that the LAM reads with it (the velocities it needs
/// to tell the key from the momentum).
pub const CALIBRATION_HISTORY: usize = 3;

/// Maps each game action to the latent action the LAM most often infers for it. Controlled
/// pairs, not scripted clips: from each of `states` held-out game states (seeds from
/// [`CALIBRATION_SEED_START`], partway through play) every one of the 8 actions is applied once
/// and the LAM reads the transition after [`CALIBRATION_HISTORY`] frames of play, so no action is confounded with the state it tends to be
/// pressed in. Returns the map, per action the share of its transitions that got that latent,
/// and the NMI between latent and true actions over all pairs.
pub fn calibrate(genie: &Genie, states: usize) -> LamCalibration {
    let device = genie.tokenizer_vs.device();
    let k = genie.config.lam.num_actions as usize;
    let mut counts = vec![vec![0usize; k]; Action::ALL.len()];
    let (mut latents, mut truths) = (Vec::new(), Vec::new());
    for first in (0..states).step_by(8) {
        let mut bytes = Vec::new();
        let mut labels = Vec::new();
        for i in first..(first + 8).min(states) {
            let (game, history) = game_in_play(
                genie.config.game,
                CALIBRATION_SEED_START + i as u64,
                CALIBRATION_HISTORY,
                i as u64,
            );
            for action in Action::ALL {
                let mut next = game.clone();
                next.step(action);
                bytes.extend_from_slice(&history);
                bytes.extend(next.frame());
                labels.push(action as usize);
            }
        }
        let len = CALIBRATION_HISTORY + 1;
        let inferred = genie
            .lam
            .infer_actions(&to_tensor(&bytes, labels.len(), len, device))
            .select(1, len as i64 - 2);
        let inferred =
            Vec::<i64>::try_from(inferred.flatten(0, -1).to_device(Device::Cpu)).expect("i64");
        for (&latent, &truth) in inferred.iter().zip(&labels) {
            counts[truth][latent as usize] += 1;
            latents.push(latent as usize);
            truths.push(truth);
        }
    }
    let (map, purity) = map_by_counts(&counts);
    (map, purity, nmi(&latents, &truths))
}

/// [`calibrate`] on the labelled clips of a dataset (video imported with `genie data import
/// --actions`): the LAM reads every transition of up to `clips` clips (but each clip's first,
/// which it sees without history), and each action gets the latent it most often infers for
/// that action's transitions.
pub fn calibrate_on_data(
    genie: &Genie,
    dataset: &Dataset,
    clips: usize,
) -> Result<LamCalibration, DataError> {
    let device = genie.tokenizer_vs.device();
    let k = genie.config.lam.num_actions as usize;
    let mut counts = vec![vec![0usize; k]; Action::ALL.len()];
    let (mut latents, mut truths) = (Vec::new(), Vec::new());
    let (clips, len) = (clips.min(dataset.len()), dataset.clip_len());
    for first in (0..clips).step_by(8) {
        let (mut bytes, mut labels) = (Vec::new(), Vec::new());
        for i in first..(first + 8).min(clips) {
            let clip = dataset.get(i)?;
            bytes.extend_from_slice(&clip.frames);
            labels.push(clip.actions);
        }
        let inferred = tch::no_grad(|| {
            genie
                .lam
                .infer_actions(&to_tensor(&bytes, labels.len(), len, device))
        });
        let inferred =
            Vec::<i64>::try_from(inferred.flatten(0, -1).to_device(Device::Cpu)).expect("i64");
        for (row, actions) in inferred.chunks(len - 1).zip(&labels) {
            for (t, &latent) in row.iter().enumerate().skip(1) {
                let truth = actions[t] as usize;
                if truth < Action::ALL.len() {
                    counts[truth][latent as usize] += 1;
                    latents.push(latent as usize);
                    truths.push(truth);
                }
            }
        }
    }
    let (map, purity) = map_by_counts(&counts);
    Ok((map, purity, nmi(&latents, &truths)))
}

/// Per action, the latent with the most of its transitions and the share of them it got (0
/// for an action never seen).
fn map_by_counts(counts: &[Vec<usize>]) -> (BTreeMap<String, i64>, BTreeMap<String, f64>) {
    let (mut map, mut purity) = (BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let row = &counts[action as usize];
        let (best, n) = row
            .iter()
            .enumerate()
            .max_by_key(|&(_, n)| *n)
            .expect("k > 0");
        map.insert(action.name().to_owned(), best as i64);
        purity.insert(
            action.name().to_owned(),
            *n as f64 / row.iter().sum::<usize>().max(1) as f64,
        );
    }
    (map, purity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::control::action_fidelity;
    use crate::model::SamplerConfig;

    #[test]
    fn a_press_latent_must_beat_the_hold_by_the_margin() {
        let tried = [(1, 0.50), (4, 0.56), (6, 0.56), (2, 0.30)];
        // The best tried (the first of a tie) where it gains at least the margin.
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.0), (4, 0.56));
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.06), (4, 0.56));
        // The hold where the gain is smaller, or none.
        assert_eq!(pick_press((3, 0.50), tried.into_iter(), 0.07), (3, 0.50));
        assert_eq!(pick_press((3, 0.56), tried.into_iter(), 0.0), (3, 0.56));
        assert_eq!(pick_press((3, 0.60), tried.into_iter(), 0.0), (3, 0.60));
        assert_eq!(pick_press((3, 0.50), std::iter::empty(), 0.0), (3, 0.50));
        // A gain of exactly the margin counts, whatever the rounding of the shares.
        let (hold, press) = (193.0 / 253.0, 198.0 / 253.0);
        assert_eq!(
            pick_press((3, hold), [(7, press)].into_iter(), 5.0 / 253.0),
            (7, press)
        );
    }

    #[test]
    fn dream_calibration_agrees_as_often_as_the_fidelity_it_then_measures() {
        // The shipped checkpoint, so that dreams show a player to follow.
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../checkpoints");
        let mut genie = Genie::load(&shipped, Device::Cpu).unwrap();
        let opts = EvalOptions {
            clips: 4,
            eval_seed_start: CALIBRATION_SEED_START,
            prompt_frames: 2,
            horizon: 2,
            sampler: SamplerConfig {
                steps: 2,
                ..SamplerConfig::default()
            },
            batch: 4,
            ..Default::default()
        };
        let DreamCalibration {
            map,
            agreement,
            by_latent,
            press,
            press_agreement,
        } = calibrate_by_dreams(
            &genie,
            &opts,
            opts.clips,
            0.0,
            &indicatif::ProgressBar::hidden(),
        );
        assert_eq!(map.len(), Action::ALL.len());
        let k = genie.config.dynamics.num_actions;
        assert!(map.values().all(|&l| (0..k).contains(&l)), "{map:?}");
        for (name, latent) in &map {
            assert_eq!(by_latent[name].len(), k as usize, "{name}");
            assert_eq!(by_latent[name][*latent as usize], agreement[name], "{name}");
            assert!(
                by_latent[name].iter().all(|&a| a <= agreement[name]),
                "{name}"
            );
        }
        assert!(
            agreement.values().any(|&a| a > 0.0),
            "some dreamed player moves the real one's way: {agreement:?}"
        );
        // A press latent is kept only where it beats holding alone.
        for (name, latent) in &press {
            assert!(press_agreement[name] >= agreement[name], "{name}");
            if *latent != map[name] {
                assert!(press_agreement[name] > agreement[name], "{name}");
            }
        }
        // On the same states, fidelity with those maps reads the same dreams; with the hold map
        // alone it reads the first pass's, and with any other map (the identity) it cannot
        // agree more often.
        genie.config.calibration = Some(map);
        genie.config.press_calibration = Some(press);
        let (fidelity, cases, misses) = action_fidelity(&genie, &opts);
        genie.config.press_calibration = None;
        let (held, _, _) = action_fidelity(&genie, &opts);
        genie.config.calibration = None;
        let (identity, _, _) = action_fidelity(&genie, &opts);
        for action in Action::ALL {
            let name = action.name();
            assert_eq!(fidelity[name], press_agreement[name], "{name}");
            assert_eq!(held[name], agreement[name], "{name}");
            // Every case either agreed or missed in one of the counted ways.
            let agreed = (fidelity[name] * cases[name] as f64).round() as usize;
            assert_eq!(agreed + misses[name].total(), cases[name], "{name}");
            assert!(
                identity[name] <= agreement[name],
                "{name}: the best latent was not picked"
            );
        }
    }
}
