//! `schedrec experiment findings`: the seed project's three claims about
//! PELT, measured. This module turns one trace per scenario into numbers
//! and aggregates repetitions; recording the scenarios is the CLI's job.
//!
//! The claims (made without data by the project schedrec grew from):
//! 1. I/O-bound tasks are over-estimated by 15–20 %;
//! 2. bursty compute stays under-estimated for 50–100 ms after a burst starts;
//! 3. after a demand change the estimate takes ~300 ms to converge.
//!
//! Methods (all on the kernel's own util_avg/util_est as the trace shows
//! them, between samples carried forward as [`crate::dynamics`] documents):
//! 1. the `io` task's time-weighted mean util_avg over its lifetime against
//!    its time-weighted running fraction (×1024); also for
//!    max(util_avg, util_est) — what schedutil and task placement read —
//!    and for the trace-visible samples (the mean of the kernel's values at
//!    the task's switches and wakeups against the measured utilisation over
//!    the 32 ms window before each), and for the *held* signal (each sample
//!    kept until the next, as a step plot of the trace's values shows it —
//!    the reading pelt-reference §7 warns is biased high);
//! 2. per burst of the `burst` task, ms from the burst's first switch-in
//!    until util_avg first reaches 80 % / 95 % of the burst's measured demand;
//!    median over the bursts that reached it (theory: median over the same
//!    bursts). Recorded with `--pelt full`, the trace has the kernel's value
//!    at every update that crossed a period (each tick while it runs), so
//!    the ramp is the kernel's, not PELT's curve carried between switches;
//!    the table says how many kernel samples each ramp had;
//! 3. per change point of the `step` task's running fraction, ms until the
//!    estimate (smoothed over 32 ms) stays within ±5 % of the new level for
//!    at least 100 ms;
//!    median over upward and over downward changes.
//!
//! Verdicts: a claim is *confirmed* when the median over repetitions falls in
//! the claimed range (for "~300 ms": 240–360 ms, ±20 %), otherwise
//! *refuted*, with the measured value.

use serde::Serialize;

use crate::analyze::{bias_pct, tasks};
use crate::dynamics::{median, task_dynamics, Dynamics};
use crate::tables::Tables;
use crate::Error;

/// A controlled scenario: which thread to look at and what to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Io,
    Burst,
    Step,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Io, Scenario::Burst, Scenario::Step];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Io => "io",
            Scenario::Burst => "burst",
            Scenario::Step => "step",
        }
    }

    /// The thread's comm (the built-in workloads name their threads).
    pub fn comm(self) -> &'static str {
        self.name()
    }
}

/// One measured quantity of one trace.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub key: &'static str,
    pub value: Option<f64>,
    /// PELT theory for the same situation, where it has a closed form.
    pub theory: Option<f64>,
}

/// What each metric is, in order of the table. `unit` is `%` (a signed
/// bias), `ms`, `n` (a count), or `share` (a fraction of events, in %).
pub struct MetricInfo {
    pub key: &'static str,
    pub finding: u8,
    pub what: &'static str,
    pub unit: &'static str,
    /// The claim, as a range (lo, hi) in `unit`, and as written.
    pub claim: Option<((f64, f64), &'static str)>,
}

pub const METRICS: [MetricInfo; 13] = [
    MetricInfo {
        key: "io_util_bias",
        finding: 1,
        what: "I/O-bound: util_avg vs measured, time-weighted",
        unit: "%",
        claim: Some(((15.0, 20.0), "+15–20 %")),
    },
    MetricInfo {
        key: "io_est_bias",
        finding: 1,
        what: "I/O-bound: max(util_avg, util_est) vs measured, time-weighted",
        unit: "%",
        claim: None,
    },
    MetricInfo {
        key: "io_held_bias",
        finding: 1,
        what: "I/O-bound: util_avg held between samples vs measured",
        unit: "%",
        claim: None,
    },
    MetricInfo {
        key: "io_sample_bias",
        finding: 1,
        what: "I/O-bound: util_avg vs measured at trace-visible samples",
        unit: "%",
        claim: None,
    },
    MetricInfo {
        key: "burst_util_t80",
        finding: 2,
        what: "bursty: ms until util_avg ≥ 80 % of the burst's demand",
        unit: "ms",
        claim: Some(((50.0, 100.0), "50–100 ms")),
    },
    MetricInfo {
        key: "burst_util_t95",
        finding: 2,
        what: "bursty: ms until util_avg ≥ 95 %",
        unit: "ms",
        claim: None,
    },
    MetricInfo {
        key: "burst_est_t80",
        finding: 2,
        what: "bursty: ms until max(util_avg, util_est) ≥ 80 %",
        unit: "ms",
        claim: None,
    },
    MetricInfo {
        key: "burst_samples_in_ramp",
        finding: 2,
        what: "bursty: the kernel's samples in each ramp (start to 95 %)",
        unit: "n",
        claim: None,
    },
    MetricInfo {
        key: "burst_short_of_80",
        finding: 2,
        what: "bursty: bursts that ended below 80 % (of all)",
        unit: "share",
        claim: None,
    },
    MetricInfo {
        key: "step_up_util",
        finding: 3,
        what: "step up: ms until util_avg is within ±5 % (≥ 10 units) for 100 ms",
        unit: "ms",
        claim: Some(((240.0, 360.0), "~300 ms")),
    },
    MetricInfo {
        key: "step_down_util",
        finding: 3,
        what: "step down: ms until util_avg is within ±5 % (≥ 10 units) for 100 ms",
        unit: "ms",
        claim: Some(((240.0, 360.0), "~300 ms")),
    },
    MetricInfo {
        key: "step_up_est",
        finding: 3,
        what: "step up: the same for max(util_avg, util_est)",
        unit: "ms",
        claim: None,
    },
    MetricInfo {
        key: "step_down_est",
        finding: 3,
        what: "step down: the same for max(util_avg, util_est)",
        unit: "ms",
        claim: None,
    },
];

fn m(key: &'static str, value: Option<f64>, theory: Option<f64>) -> Metric {
    Metric { key, value, theory }
}

/// The busiest task named `comm` and its dynamics.
fn find(
    t: &Tables,
    comm: &str,
    window_ms: u64,
) -> Result<(crate::analyze::TaskStats, Dynamics), Error> {
    let ts = tasks(t)?;
    let s = ts
        .into_iter()
        .find(|s| s.comm == comm)
        .ok_or_else(|| format!("no task named {comm:?} ran in this trace"))?;
    if t.replay.is_empty() {
        return Err("the trace was not replayed (its header does not say HZ)".into());
    }
    let d = task_dynamics(t, s.pid, window_ms)
        .ok_or_else(|| format!("task {comm:?} has no slices or samples in this trace"))?;
    if d.source != "kernel" {
        return Err(format!(
            "task {comm:?} has no kernel PELT values in this trace (recorded with --pelt off): the findings judge the kernel's own estimates"
        )
        .into());
    }
    Ok((s, d))
}

/// Measures `scenario` on one trace.
pub fn measure(scenario: Scenario, t: &Tables, window_ms: u64) -> Result<Vec<Metric>, Error> {
    let (s, d) = find(t, scenario.comm(), window_ms)?;
    Ok(match scenario {
        Scenario::Io => vec![
            m("io_util_bias", d.util_time_bias_pct, Some(0.0)),
            m(
                "io_est_bias",
                bias_pct(Some(d.est_time_mean), Some(d.demand_time_mean)),
                None,
            ),
            m(
                "io_held_bias",
                bias_pct(Some(d.held_time_mean), Some(d.demand_time_mean)),
                None,
            ),
            m("io_sample_bias", s.bias_pct, None),
        ],
        Scenario::Burst => {
            let b = &d.bursts;
            let med = |f: fn(&crate::dynamics::Burst) -> Option<f64>| {
                median(b.iter().filter_map(f).collect())
            };
            let short = (!b.is_empty()).then(|| {
                b.iter().filter(|b| b.util_t80_ms.is_none()).count() as f64 / b.len() as f64 * 100.0
            });
            vec![
                m(
                    "burst_util_t80",
                    med(|b| b.util_t80_ms),
                    med(|b| b.util_t80_ms.map(|_| b.theory_t80_ms)),
                ),
                m(
                    "burst_util_t95",
                    med(|b| b.util_t95_ms),
                    med(|b| b.util_t95_ms.map(|_| b.theory_t95_ms)),
                ),
                m("burst_est_t80", med(|b| b.est_t80_ms), None),
                m(
                    "burst_samples_in_ramp",
                    med(|b| Some(b.samples_in_ramp as f64)),
                    None,
                ),
                m("burst_short_of_80", short, None),
            ]
        }
        Scenario::Step => {
            let dir = |up: bool, f: fn(&crate::dynamics::Change) -> Option<f64>| {
                median(
                    d.changes
                        .iter()
                        .filter(|c| (c.to > c.from) == up)
                        .filter_map(f)
                        .collect(),
                )
            };
            vec![
                m(
                    "step_up_util",
                    dir(true, |c| c.util_converge_ms),
                    dir(true, |c| c.util_converge_ms.map(|_| c.theory_ms)),
                ),
                m(
                    "step_down_util",
                    dir(false, |c| c.util_converge_ms),
                    dir(false, |c| c.util_converge_ms.map(|_| c.theory_ms)),
                ),
                m("step_up_est", dir(true, |c| c.est_converge_ms), None),
                m("step_down_est", dir(false, |c| c.est_converge_ms), None),
            ]
        }
    })
}

/// One line of the findings table: a metric over all repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub key: &'static str,
    pub finding: u8,
    pub what: &'static str,
    pub unit: &'static str,
    pub claim: Option<&'static str>,
    /// One value per repetition (`None`: not measurable in that one).
    pub values: Vec<Option<f64>>,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub theory: Option<f64>,
    /// `confirms`, `refutes`, or `-` without a claim or a value.
    pub verdict: &'static str,
}

/// Aggregates the metrics of every repetition (any scenario order).
pub fn aggregate(reps: &[Vec<Metric>]) -> Vec<Row> {
    METRICS
        .iter()
        .map(|info| {
            let ms: Vec<&Metric> = reps
                .iter()
                .flatten()
                .filter(|m| m.key == info.key)
                .collect();
            let values: Vec<Option<f64>> = ms.iter().map(|m| m.value).collect();
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let med = median(present.clone());
            let verdict = match (info.claim, med) {
                (Some(((lo, hi), _)), Some(v)) => {
                    if (lo..=hi).contains(&v) {
                        "confirms"
                    } else {
                        "refutes"
                    }
                }
                _ => "-",
            };
            Row {
                key: info.key,
                finding: info.finding,
                what: info.what,
                unit: info.unit,
                claim: info.claim.map(|c| c.1),
                median: med,
                min: present.iter().copied().reduce(f64::min),
                max: present.iter().copied().reduce(f64::max),
                theory: median(ms.iter().filter_map(|m| m.theory).collect()),
                values,
                verdict,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_claimed_ranges() {
        let rep = |v: f64| {
            vec![
                m("io_util_bias", Some(v), Some(0.0)),
                m("step_up_util", Some(v * 17.0), None),
            ]
        };
        let rows = aggregate(&[rep(16.0), rep(18.0), rep(30.0)]);
        let io = rows.iter().find(|r| r.key == "io_util_bias").unwrap();
        assert_eq!(
            (io.median, io.min, io.max),
            (Some(18.0), Some(16.0), Some(30.0))
        );
        assert_eq!(io.verdict, "confirms");
        let up = rows.iter().find(|r| r.key == "step_up_util").unwrap();
        assert_eq!(up.median, Some(306.0));
        assert_eq!(up.verdict, "confirms");
        let rows = aggregate(&[rep(2.0)]);
        assert_eq!(
            rows.iter()
                .find(|r| r.key == "io_util_bias")
                .unwrap()
                .verdict,
            "refutes"
        );
        // No value: no verdict.
        assert_eq!(
            rows.iter()
                .find(|r| r.key == "burst_util_t80")
                .unwrap()
                .verdict,
            "-"
        );
    }
}
