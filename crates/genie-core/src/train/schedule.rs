//! Learning-rate schedules: linear warm-up, then cosine decay or WSD (warm-up, stable, decay).
//!
//! WSD keeps the peak rate for most of the run and decays only at the end, so a run can be
//! extended (resumed with more steps) without restarting the decay (Hu et al., MiniCPM, 2024).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// Cosine from the peak down to `min_ratio × peak` over all steps after warm-up.
    Cosine,
    /// Constant peak, then linear decay to `min_ratio × peak` over the last `decay_fraction`.
    Wsd { decay_fraction: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Schedule {
    pub peak: f64,
    pub warmup_steps: u64,
    /// The step the warm-up starts from: 0, or where a resumed run stood when its schedule was
    /// laid out anew (`genie train --restart-schedule`, e.g. after another network was swapped
    /// in). Warm-up and decay then span `start_step..total_steps`.
    pub start_step: u64,
    pub total_steps: u64,
    pub min_ratio: f64,
    pub decay: Decay,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            peak: 3e-4,
            warmup_steps: 500,
            start_step: 0,
            total_steps: 20_000,
            min_ratio: 0.1,
            decay: Decay::Cosine,
        }
    }
}

impl Schedule {
    /// The learning rate at `step` (0-based, counted from the run's start, not from
    /// `start_step`). Past `total_steps` it stays at the floor.
    pub fn lr(&self, step: u64) -> f64 {
        let floor = self.peak * self.min_ratio;
        let step = step.saturating_sub(self.start_step);
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let total = self
            .total_steps
            .saturating_sub(self.start_step)
            .max(self.warmup_steps + 1);
        if step >= total {
            return floor;
        }
        match self.decay {
            Decay::Cosine => {
                let progress =
                    (step - self.warmup_steps) as f64 / (total - self.warmup_steps) as f64;
                floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Decay::Wsd { decay_fraction } => {
                let decay_steps =
                    ((total - self.warmup_steps) as f64 * decay_fraction.clamp(0.0, 1.0)) as u64;
                let decay_start = total - decay_steps;
                if step < decay_start {
                    self.peak
                } else {
                    let progress = (step - decay_start) as f64 / decay_steps.max(1) as f64;
                    self.peak + (floor - self.peak) * progress
                }
            }
        }
    }
}

/// `--decay wsd`: the peak until the last 20% of the steps.
pub const WSD: Decay = Decay::Wsd {
    decay_fraction: 0.2,
};

/// What a new run trains under where no flag says otherwise.
pub const DEFAULT_SCHEDULE: Schedule = Schedule {
    peak: 3e-4,
    warmup_steps: 300,
    start_step: 0,
    total_steps: 20_000,
    min_ratio: 0.1,
    decay: WSD,
};

/// The schedule flags of `genie train`, each `None` unless given.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleFlags {
    pub steps: Option<u64>,
    pub lr: Option<f64>,
    pub warmup: Option<u64>,
    pub decay: Option<Decay>,
}

impl ScheduleFlags {
    pub fn all_given(&self) -> bool {
        self.steps.is_some() && self.lr.is_some() && self.warmup.is_some() && self.decay.is_some()
    }

    /// What the flags say, else what the resumed run last trained under (`recorded`), else the
    /// defaults. `restart` (`--restart-schedule`) lays the warm-up and decay anew from
    /// `steps_done`, which needs a total beyond it.
    pub fn schedule(
        &self,
        recorded: Option<&Schedule>,
        restart: bool,
        steps_done: u64,
    ) -> Result<Schedule, String> {
        let base = recorded.copied().unwrap_or(DEFAULT_SCHEDULE);
        let schedule = Schedule {
            peak: self.lr.unwrap_or(base.peak),
            warmup_steps: self.warmup.unwrap_or(base.warmup_steps),
            start_step: if restart { steps_done } else { base.start_step },
            total_steps: self.steps.unwrap_or(base.total_steps),
            min_ratio: base.min_ratio,
            decay: self.decay.unwrap_or(base.decay),
        };
        if restart && schedule.total_steps <= steps_done {
            return Err(format!(
                "--restart-schedule: the run stands at step {steps_done} and its schedule ends at \
                 {}; pass --steps beyond it",
                schedule.total_steps
            ));
        }
        if !(schedule.peak > 0.0 && schedule.peak.is_finite()) {
            return Err(format!(
                "--lr {}: expected a positive learning rate",
                schedule.peak
            ));
        }
        Ok(schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_linearly_to_the_peak() {
        let s = Schedule {
            peak: 1.0,
            warmup_steps: 10,
            total_steps: 100,
            ..Default::default()
        };
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!(s.lr(4) < s.lr(5));
    }

    #[test]
    fn cosine_ends_at_the_floor_and_decreases() {
        let s = Schedule {
            peak: 1.0,
            warmup_steps: 10,
            start_step: 0,
            total_steps: 110,
            min_ratio: 0.1,
            decay: Decay::Cosine,
        };
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.55).abs() < 1e-9);
        assert!((s.lr(110) - 0.1).abs() < 1e-12);
        assert!((11..110).all(|t| s.lr(t) <= s.lr(t - 1)));
    }

    #[test]
    fn wsd_is_flat_then_decays_at_the_end() {
        let s = Schedule {
            peak: 1.0,
            warmup_steps: 0,
            start_step: 0,
            total_steps: 100,
            min_ratio: 0.0,
            decay: Decay::Wsd {
                decay_fraction: 0.2,
            },
        };
        assert_eq!(s.lr(50), 1.0);
        assert_eq!(s.lr(79), 1.0);
        assert!((s.lr(90) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
    }

    #[test]
    fn a_restarted_schedule_is_the_same_schedule_moved_to_its_start() {
        let fresh = Schedule {
            peak: 3e-4,
            warmup_steps: 300,
            start_step: 0,
            total_steps: 6_000,
            min_ratio: 0.1,
            decay: Decay::Wsd {
                decay_fraction: 0.2,
            },
        };
        let moved = Schedule {
            start_step: 46_999,
            total_steps: 52_999,
            ..fresh
        };
        for t in [
            0, 1, 150, 299, 300, 4_000, 4_800, 5_000, 5_999, 6_000, 7_000,
        ] {
            assert_eq!(moved.lr(46_999 + t), fresh.lr(t), "step {t}");
        }
        // Steps before the restart (never asked for by a resumed run) get the first rate.
        assert_eq!(moved.lr(10), fresh.lr(0));
    }

    #[test]
    fn a_resumed_run_keeps_its_schedule_where_no_flag_changes_it() {
        let none = ScheduleFlags {
            steps: None,
            lr: None,
            warmup: None,
            decay: None,
        };
        // A new run (or one saved before schedules were recorded): the defaults.
        let fresh = none.schedule(None, false, 0).unwrap();
        assert_eq!(
            (
                fresh.peak,
                fresh.warmup_steps,
                fresh.start_step,
                fresh.total_steps
            ),
            (3e-4, 300, 0, 20_000)
        );
        assert_eq!(
            fresh.decay,
            Decay::Wsd {
                decay_fraction: 0.2
            }
        );
        let recorded = Schedule {
            peak: 2e-4,
            warmup_steps: 50,
            start_step: 12_500,
            total_steps: 20_500,
            min_ratio: 0.1,
            decay: Decay::Cosine,
        };
        assert_eq!(
            none.schedule(Some(&recorded), false, 13_000).unwrap(),
            recorded
        );
        // A flag changes only its own part: --steps extends the same schedule.
        let longer = ScheduleFlags {
            steps: Some(30_000),
            ..none
        };
        assert_eq!(
            longer.schedule(Some(&recorded), false, 13_000).unwrap(),
            Schedule {
                total_steps: 30_000,
                ..recorded
            }
        );
        // --restart-schedule lays it anew from where the run stands, which needs steps left.
        let restarted = longer.schedule(Some(&recorded), true, 13_000).unwrap();
        assert_eq!((restarted.start_step, restarted.peak), (13_000, 2e-4));
        let err = none.schedule(Some(&recorded), true, 20_500).unwrap_err();
        assert!(err.contains("pass --steps beyond it"), "{err}");
        let zero = ScheduleFlags {
            lr: Some(0.0),
            ..none
        };
        assert!(zero.schedule(None, false, 0).is_err());
    }
}
