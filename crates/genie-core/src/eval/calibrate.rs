//! Calibration: which latent action each game action (key) drives, found by dreaming each
//! latent from held-out states and comparing with the real game ([`calibrate_by_dreams`]), or
//! by reading the LAM's codes of real transitions ([`calibrate`]).

use std::collections::BTreeMap;

use serde::Serialize;
use tch::Device;

use super::measures::nmi;
use crate::data::{DataError, Dataset, EVAL_SEED_START};
use crate::game::{Action, Facing};
use crate::model::Genie;
use crate::session::keys::{KeyMap, Keyed};

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
    /// How often dreams of that press, then the hold, agreed: the action fidelity the two maps
    /// above give on these states' cases where the key is carried out as itself.
    pub press_agreement: BTreeMap<String, f64>,
    /// Per way of facing ([`Facing`]), the keys whose hold latent is another while the player
    /// faces that way.
    #[serde(rename = "facing_calibration")]
    pub facing: BTreeMap<String, BTreeMap<String, i64>>,
    /// The same for the first frame of a press.
    #[serde(rename = "facing_press_calibration")]
    pub facing_press: BTreeMap<String, BTreeMap<String, i64>>,
    /// How often the dreams agreed with all four maps: the action fidelity this calibration
    /// gives on its states.
    pub facing_agreement: BTreeMap<String, f64>,
}

/// How much better a latent must do before [`calibrate_by_dreams`] gives it to a key: shares
/// of the states, since smaller gains are within the noise of a few hundred of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margins {
    /// A press latent, followed by the hold, against the hold alone.
    pub press: f64,
    /// A key's latent while the player faces one way, against its latent for both ways, on the
    /// states where it faces that way.
    pub facing: f64,
    /// The fewest states where the player faces a way for a key to get latents of its own
    /// there.
    pub facing_states: usize,
}

impl Default for Margins {
    fn default() -> Self {
        Self {
            press: 0.02,
            facing: 0.05,
            facing_states: 32,
        }
    }
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
/// On the states where the player faces one way ([`Facing`], as the keys before say), a key
/// gets a hold latent of its own where one agrees more often there than its latent for both
/// ways by `margins.facing`: a dash goes the way the player faces, and the latent that follows
/// a dash right does not follow a dash left. The same for presses, after the pass below. A key
/// keeps latents per way only where they differ between the ways and it was seen both ways: a
/// key better alike both ways is a matter for the maps for both.
///
/// Then, with each hold latent fixed, every latent is tried on the first frame (the key's
/// press) and the best kept where its dreams agree more often than the hold alone by at least
/// `margins.press`: a jump takes off once, then the held key changes nothing in the air. This
/// pass dreams `k` schedules per distinct hold latent, so it takes a few times the first's
/// time. Over a horizon of one frame there is no hold to follow a press, so the press is the
/// hold.
///
/// With `keep` (a checkpoint's key map) its hold and press latents stay every key's for both
/// ways, and only the ways' own latents are looked for, against them.
///
/// `progress` (hidden where stderr is no terminal) counts dreamed batches; its length grows
/// when the press pass starts.
pub fn calibrate_by_dreams(
    genie: &Genie,
    opts: &EvalOptions,
    states: usize,
    margins: Margins,
    keep: Option<&KeyMap>,
    progress: &indicatif::ProgressBar,
) -> DreamCalibration {
    let k = genie.config.dynamics.latents();
    let batches = states.div_ceil(opts.batch.max(1));
    progress.set_length((batches * k as usize) as u64);
    progress.set_message("hold latents");
    let schedule = |first: i64, hold: i64| {
        let mut s = vec![hold; opts.horizon];
        if let Some(f) = s.first_mut() {
            *f = first;
        }
        s
    };
    let held: Vec<Vec<i64>> = (0..k).map(|l| schedule(l, l)).collect();
    let mut tried =
        schedule_agreement(genie, opts, CALIBRATION_SEED_START, states, &held, progress);
    let enough = |t: &Agreement, action: Action, f: Facing| {
        t.cases[action as usize][f as usize] >= margins.facing_states.max(1)
    };
    // Hold latents: for both ways, then each way's own where it does better there.
    let (mut map, mut agreement, mut by_latent) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut facing_hold = [[None::<i64>; 8]; 2];
    for action in Action::ALL {
        let row: Vec<f64> = held.iter().map(|s| tried.share(s, action, None)).collect();
        let best = keep.map_or_else(|| best_of(&row), |k| k.hold[action as usize]);
        map.insert(action.name().to_owned(), best);
        agreement.insert(action.name().to_owned(), row[best as usize]);
        by_latent.insert(action.name().to_owned(), row);
        for f in Facing::ALL
            .into_iter()
            .filter(|&f| enough(&tried, action, f))
        {
            let row: Vec<f64> = held
                .iter()
                .map(|s| tried.share(s, action, Some(f)))
                .collect();
            let own = best_of(&row);
            if own != best && row[own as usize] - row[best as usize] >= margins.facing - 1e-9 {
                facing_hold[f as usize][action as usize] = Some(own);
            }
        }
    }
    let hold_of = |action: Action, f: Facing| {
        facing_hold[f as usize][action as usize].unwrap_or(map[action.name()])
    };
    // Press latents, before every hold latent in use.
    let (mut press, mut facing_first) = (BTreeMap::new(), [[None::<i64>; 8]; 2]);
    if opts.horizon >= 2 {
        let holds: std::collections::BTreeSet<i64> = Action::ALL
            .iter()
            .flat_map(|&a| Facing::ALL.map(|f| hold_of(a, f)))
            .collect();
        let schedules: Vec<Vec<i64>> = holds
            .iter()
            .flat_map(|&h| (0..k).filter(move |&p| p != h).map(move |p| (p, h)))
            .map(|(p, h)| schedule(p, h))
            .collect();
        progress.inc_length((batches * schedules.len()) as u64);
        progress.set_message("press latents");
        tried.extend(schedule_agreement(
            genie,
            opts,
            CALIBRATION_SEED_START,
            states,
            &schedules,
            progress,
        ));
        // The best first latent before `hold` on the cases facing `f` (all with `None`), where
        // it beats `fallback`'s by the margin; else `fallback`.
        let best_press = |action: Action, f: Option<Facing>, hold: i64, fallback: i64| {
            let of = |p: i64| tried.share(&schedule(p, hold), action, f);
            let others = (0..k).filter(|&p| p != fallback).map(|p| (p, of(p)));
            pick_press((fallback, of(fallback)), others, margins.press).0
        };
        for action in Action::ALL {
            let both = map[action.name()];
            let first = keep.map_or_else(
                || best_press(action, None, both, both),
                |k| k.press[action as usize],
            );
            press.insert(action.name().to_owned(), first);
            for f in Facing::ALL
                .into_iter()
                .filter(|&f| enough(&tried, action, f))
            {
                // As the key map reads them: a way with a hold of its own presses with that
                // hold unless it has a press of its own.
                let own_hold = facing_hold[f as usize][action as usize];
                let fallback = own_hold.unwrap_or(first);
                let own = best_press(action, Some(f), hold_of(action, f), fallback);
                if own != fallback {
                    facing_first[f as usize][action as usize] = Some(own);
                }
            }
        }
    } else {
        for action in Action::ALL {
            let first = keep.map_or(map[action.name()], |k| k.press[action as usize]);
            press.insert(action.name().to_owned(), first);
        }
    }
    // A key keeps latents of its own per way only where they differ between the ways, both
    // seen: a key that walks faces its own way only, and one better alike both ways is a
    // question for the maps for both (which `keep` keeps).
    for action in Action::ALL {
        let a = action as usize;
        let ways = Facing::ALL.map(|f| {
            let hold = facing_hold[f as usize][a].unwrap_or(map[action.name()]);
            let first = facing_first[f as usize][a]
                .or(facing_hold[f as usize][a])
                .unwrap_or(press[action.name()]);
            (hold, first)
        });
        let both_seen = Facing::ALL.iter().all(|&f| enough(&tried, action, f));
        if !turns(ways, both_seen) {
            for f in 0..2 {
                facing_hold[f][a] = None;
                facing_first[f][a] = None;
            }
        }
    }
    // What the four maps give together, as the key map reads them.
    let (mut facing, mut facing_press) = (BTreeMap::new(), BTreeMap::new());
    let (mut press_agreement, mut facing_agreement) = (BTreeMap::new(), BTreeMap::new());
    for action in Action::ALL {
        let (a, name) = (action as usize, action.name());
        press_agreement.insert(
            name.to_owned(),
            tried.share(&schedule(press[name], map[name]), action, None),
        );
        let mut agreed = 0;
        for f in Facing::ALL {
            let own_hold = facing_hold[f as usize][a];
            let first = facing_first[f as usize][a]
                .or(own_hold)
                .unwrap_or(press[name]);
            let hold = own_hold.unwrap_or(map[name]);
            agreed += tried.agreed(&schedule(first, hold), action, f);
            for (maps, latent) in [
                (&mut facing, own_hold),
                (&mut facing_press, facing_first[f as usize][a]),
            ] {
                if let Some(latent) = latent {
                    maps.entry(f.name().to_owned())
                        .or_insert_with(BTreeMap::new)
                        .insert(name.to_owned(), latent);
                }
            }
        }
        let cases: usize = tried.cases[a].iter().sum();
        facing_agreement.insert(name.to_owned(), agreed as f64 / cases.max(1) as f64);
    }
    progress.finish_and_clear();
    DreamCalibration {
        map,
        agreement,
        by_latent,
        press,
        press_agreement,
        facing,
        facing_press,
        facing_agreement,
    }
}

/// Whether a key whose (hold, press) latents are `ways` facing right and left keeps them: only
/// where they differ, and the key was seen facing both ways.
fn turns(ways: [(i64, i64); 2], both_seen: bool) -> bool {
    both_seen && ways[0] != ways[1]
}

/// The index of the highest of `row` (the first of a tie).
fn best_of(row: &[f64]) -> i64 {
    (0..row.len()).fold(0, |best, l| if row[l] > row[best] { l } else { best }) as i64
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

/// How often each schedule's dreams agreed with each game action's real direction, counted
/// apart by the way the case's player faced while the action acted. Cases where the keys before
/// have the player carry out another action (a key pressed during a dash, the dash key cooling
/// down: [`KeyMap::key`]) are left out: the map gives them that action's latents.
#[derive(Debug, Clone, Default)]
pub struct Agreement {
    /// The schedules dreamed, a latent per frame.
    pub schedules: Vec<Vec<i64>>,
    /// Per schedule, game action and way of facing, the cases that agreed.
    agreed: Vec<[[usize; 2]; 8]>,
    /// Per game action and way of facing, the cases (where the real player was found).
    pub cases: [[usize; 2]; 8],
}

impl Agreement {
    /// The cases where `schedule` (one dreamed) agreed with `action` facing `f`.
    pub fn agreed(&self, schedule: &[i64], action: Action, f: Facing) -> usize {
        let s = self
            .schedules
            .iter()
            .position(|t| t == schedule)
            .expect("a schedule that was dreamed");
        self.agreed[s][action as usize][f as usize]
    }

    /// The share of `action`'s cases facing `f` (all with `None`) where `schedule` agreed.
    pub fn share(&self, schedule: &[i64], action: Action, f: Option<Facing>) -> f64 {
        let ways = f.map_or(Facing::ALL.to_vec(), |f| vec![f]);
        let agreed: usize = ways.iter().map(|&f| self.agreed(schedule, action, f)).sum();
        let cases: usize = ways
            .iter()
            .map(|&f| self.cases[action as usize][f as usize])
            .sum();
        agreed as f64 / cases.max(1) as f64
    }

    /// Adds the schedules of `other`, dreamed on the same states.
    fn extend(&mut self, other: Agreement) {
        self.schedules.extend(other.schedules);
        self.agreed.extend(other.agreed);
    }
}

/// How often each of `schedules` (one latent per frame of `opts.horizon`) moved the dreamed
/// player as `horizon` steps of each game action moved the real one, on `states` states from the
/// levels `first_seed` on. `progress` advances by one per schedule dreamed over a batch of
/// states.
pub fn schedule_agreement(
    genie: &Genie,
    opts: &EvalOptions,
    first_seed: u64,
    states: usize,
    schedules: &[Vec<i64>],
    progress: &indicatif::ProgressBar,
) -> Agreement {
    let mut out = Agreement {
        schedules: schedules.to_vec(),
        agreed: vec![[[0; 2]; 8]; schedules.len()],
        cases: [[0; 2]; 8],
    };
    let keys = KeyMap::new(&genie.config);
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
            let a = action as usize;
            for (i, want) in cases
                .real_directions(action, opts.horizon)
                .iter()
                .enumerate()
            {
                let Some(want) = want else { continue };
                // A key the keys before turn into another action (pressed during a dash, or the
                // dash key cooling down) gets that action's latents: not this key's case.
                let mut state = cases.keys[i];
                let keyed: Vec<Keyed> = (0..opts.horizon)
                    .map(|t| keys.key(&mut state, action, t == 0))
                    .collect();
                if keyed.iter().any(|k| k.action != action) {
                    continue;
                }
                let f = keyed[0].facing as usize;
                out.cases[a][f] += 1;
                for (s, got) in dreamed.iter().enumerate() {
                    out.agreed[s][a][f] += usize::from(got[i] == Some(*want));
                }
            }
        }
    }
    out
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
    use crate::eval::control::{KeyFidelity, action_fidelity};
    use crate::model::{GenieConfig, SamplerConfig};

    #[test]
    fn a_key_keeps_latents_per_way_only_where_the_ways_differ() {
        // A dash: another latent facing left.
        assert!(turns([(1, 1), (0, 0)], true));
        assert!(turns([(1, 2), (1, 7)], true), "a press of its own");
        // A jump better alike both ways, or a key seen facing one way only: the maps for both.
        assert!(!turns([(3, 3), (3, 3)], true));
        assert!(!turns([(4, 7), (0, 0)], false));
    }

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
        // Keys read as they are (a world learned from video), so that every case of a key is
        // the calibration's as well as the fidelity's; under the game's rules the calibration
        // leaves out the cases the keys before turn into another action (below).
        let rules = genie.config.training_data.clone();
        genie.config.training_data = serde_json::json!({"dynamics": {"video": true}});
        // The maps alone: the shipped jump keys' cycles would replace what is calibrated here.
        genie.config.held_cycles = None;
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
            facing,
            facing_press,
            facing_agreement,
        } = calibrate_by_dreams(
            &genie,
            &opts,
            opts.clips,
            Margins {
                press: 0.0,
                facing: 0.0,
                facing_states: 1,
            },
            None,
            &indicatif::ProgressBar::hidden(),
        );
        assert_eq!(map.len(), Action::ALL.len());
        let k = genie.config.dynamics.latents();
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
        // With every margin 0 the ways of facing get latents of their own wherever one did
        // better there; fidelity with all four maps reads the dreams the calibration counted.
        assert!(
            !facing.is_empty() || !facing_press.is_empty(),
            "no way faced did better"
        );
        // Kept maps stay as they are for both ways; the ways' own latents are found against
        // them.
        let kept = KeyMap::new(&GenieConfig {
            calibration: Some(
                Action::ALL
                    .iter()
                    .map(|a| (a.name().to_owned(), 2))
                    .collect(),
            ),
            press_calibration: Some(BTreeMap::from([("jump".to_owned(), 6)])),
            ..GenieConfig::default()
        });
        let on_kept = calibrate_by_dreams(
            &genie,
            &opts,
            opts.clips,
            Margins::default(),
            Some(&kept),
            &indicatif::ProgressBar::hidden(),
        );
        for action in Action::ALL {
            let name = action.name();
            assert_eq!(on_kept.map[name], 2, "{name}");
            let press = if action == Action::Jump { 6 } else { 2 };
            assert_eq!(on_kept.press[name], press, "{name}");
        }
        genie.config.calibration = Some(map);
        genie.config.press_calibration = Some(press);
        genie.config.facing_calibration = Some(facing);
        genie.config.facing_press_calibration = Some(facing_press);
        let turning = action_fidelity(&genie, &opts).fidelity;
        for action in Action::ALL {
            let name = action.name();
            assert_eq!(turning[name], facing_agreement[name], "{name}");
        }
        genie.config.facing_calibration = None;
        genie.config.facing_press_calibration = None;
        let KeyFidelity {
            fidelity,
            cases,
            misses,
            ..
        } = action_fidelity(&genie, &opts);
        genie.config.press_calibration = None;
        let held = action_fidelity(&genie, &opts).fidelity;
        genie.config.calibration = None;
        let identity = action_fidelity(&genie, &opts).fidelity;
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
        // Under the game's rules, a dash under way or cooling down takes cases from the keys.
        let one = [vec![1; opts.horizon]];
        let hidden = indicatif::ProgressBar::hidden();
        let states = 32;
        let counted = |genie: &Genie| {
            schedule_agreement(genie, &opts, CALIBRATION_SEED_START, states, &one, &hidden).cases
        };
        let as_they_are = counted(&genie);
        genie.config.training_data = rules;
        let by_rules = counted(&genie);
        let total = |cases: &[[usize; 2]; 8]| cases.iter().flatten().sum::<usize>();
        for action in Action::ALL {
            let a = action as usize;
            assert!(by_rules[a][0] + by_rules[a][1] <= as_they_are[a][0] + as_they_are[a][1]);
        }
        assert!(
            total(&by_rules) < total(&as_they_are),
            "{by_rules:?} {as_they_are:?}"
        );
    }
}
