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
}
