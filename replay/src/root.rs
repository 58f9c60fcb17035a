//! Each CPU's root cfs_rq (`rq->cfs`), rebuilt from its tasks.
//!
//! The kernel keeps the root run-queue's `sched_avg` as a PELT signal of
//! its own: `load` is the summed weight of the queued entities, `runnable`
//! the number of runnable tasks (`h_nr_runnable`), `running` whether a fair
//! entity is on the CPU; a task's sums are added when it is attached there
//! (fork, wakeup migration, load balance) and taken out when it leaves
//! (`detach_entity_load_avg()`, or `remove_entity_load_avg()` applied at the
//! run-queue's next update). PELT is linear in its inputs: summing each
//! attached task's sums gives the run-queue's, up to the rounding of
//! `decay_load()` (below 1 in a sum whose average divides it by ~47 000).
//! So at every `pelt_cfs_tp` sample of a root run-queue (`--pelt full`) the
//! replay asks each task attached to that CPU for its sums at the sample's
//! PELT time — its own exact state, run forward with its current inputs —
//! and judges the total against the kernel's.
//!
//! Tasks the trace has not shown yet (asleep since before the recording,
//! their blocked load still attached) are in the kernel's sums too: the
//! difference at a CPU's first sample is kept as a residual that decays as
//! blocked load does, and taken again (that sample not judged) whenever a
//! task is first seen on the CPU (its load was in the residual), a task's
//! timeline breaks off, events were lost, or a task never seen migrates
//! away.
//! util_est at the root is the sum of the enqueued tasks' util_est
//! (`util_est_enqueue()`/`util_est_dequeue()`), not a PELT signal, and has
//! no residual: a task enqueued there runs, and is seen, soon (a residual
//! taken at a sample where the trace and the kernel disagree on one task's
//! enqueue would stay wrong for ever).
//!
//! What this cannot see: task groups (cgroups, autogroup). The root
//! run-queue then holds group entities whose weights
//! (`calc_group_shares()`) the trace does not carry, so its load_avg is not
//! the tasks' summed load; and a task's delayed dequeue changes
//! `h_nr_runnable` at every level (`set_delayed()`, `clear_delayed()`)
//! while only its own group's run-queue is updated first, so the root
//! integrates the count it finds at its next update — an update the trace
//! shows only when it crossed a period boundary. With task groups in the
//! trace (group entities' samples) neither load_avg nor runnable_avg is
//! judged. util_avg passes through groups unchanged (a root update comes
//! before every change of `cfs_rq->curr`), and so does util_est.

use schedrec_format::record::{PeltAvg, PeltSums};
use serde::Serialize;

use crate::fidelity::{Fidelity, Metric, MetricSummary};
use crate::model::Values;
use crate::pelt::{decay_load, lattice_period_contrib, PELT_MIN_DIVIDER};
use crate::task::Row;

/// The `event` of a root run-queue's row (pid 0).
pub const ROOT_EVENT: &str = "cfs_rq";

/// One task's part of a root run-queue at a probe: its sums (load weighted
/// by the task's weight, as the run-queue accumulates it) and, while it is
/// enqueued, its util_est.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    pub load: u64,
    pub runnable: u64,
    pub util: u64,
    pub util_est: u64,
}

/// A kernel sample of a root run-queue, waiting for its tasks' shares.
#[derive(Clone, Debug)]
pub struct Probe {
    pub ts: u64,
    pub cpu: u32,
    pub kernel: PeltAvg,
    pub sums: Option<PeltSums>,
    /// The residual is taken again here (see the module's documentation
    /// for when).
    pub reset: bool,
    /// The shares summed so far.
    pub total: Share,
    /// The sample came before the last of a wakeup's samples at its PELT
    /// time: this woken task may not be attached yet.
    pub pre_attach: Option<u32>,
    /// A task attached here had no state to give (not anchored, or its
    /// timeline broke off): its part is in the residual.
    pub unknown: bool,
}

impl Probe {
    /// A task's part; `fresh`: its state started or broke off since its
    /// previous share, so the residual is taken again.
    pub fn add(&mut self, fresh: bool, s: Option<Share>) {
        self.reset |= fresh;
        match s {
            Some(s) => {
                let t = &mut self.total;
                t.load += s.load;
                t.runnable += s.runnable;
                t.util += s.util;
                t.util_est += s.util_est;
            }
            None => self.unknown = true,
        }
    }
}

/// What the tasks do not explain, at `lut`: signed sums.
#[derive(Clone, Copy, Debug, Default)]
struct Residual {
    lut: u64,
    load: i64,
    runnable: i64,
    util: i64,
}

fn decay_signed(v: i64, periods: u64) -> i64 {
    let d = decay_load(v.unsigned_abs(), periods) as i64;
    if v < 0 {
        -d
    } else {
        d
    }
}

impl Residual {
    /// Blocked load decays with the periods crossed.
    fn at(&self, lut: u64) -> Residual {
        let delta = lut.saturating_sub(self.lut) >> 10;
        let periods = (lattice_period_contrib(self.lut) as u64 + delta) / 1024;
        if periods == 0 {
            return *self;
        }
        Residual {
            lut,
            load: decay_signed(self.load, periods),
            runnable: decay_signed(self.runnable, periods),
            util: decay_signed(self.util, periods),
        }
    }
}

/// The root run-queues of every CPU.
pub struct Roots {
    residual: Vec<Option<Residual>>,
    pub fid: Fidelity,
    /// Samples seen, and those not judged by reason.
    pub samples: u64,
    pub reanchors: u64,
    pub unknown: u64,
    /// Group entities were seen: the root's load_avg and runnable_avg are
    /// not the tasks' sums.
    pub groups: bool,
}

/// `schedrec replay --json`'s `root` section.
#[derive(Clone, Debug, Serialize)]
pub struct RootSummary {
    /// `pelt_cfs_tp` samples of root run-queues in the trace.
    pub samples: u64,
    /// Samples where the residual of unseen tasks was taken (first sample
    /// of a CPU, a task first seen there since, or whose timeline broke
    /// off): not judged.
    pub reanchors: u64,
    /// Judged samples with a task attached whose state is not known (its
    /// timeline broke off: its part is estimated as blocked load).
    pub unknown: u64,
    /// Whether the trace shows task groups (group entities): load_avg and
    /// runnable_avg are then not judged.
    pub task_groups: bool,
    pub util_avg: Option<MetricSummary>,
    pub load_avg: Option<MetricSummary>,
    pub runnable_avg: Option<MetricSummary>,
    pub util_est: Option<MetricSummary>,
}

impl Roots {
    pub fn new(nr_cpus: usize) -> Roots {
        Roots {
            residual: vec![None; nr_cpus],
            fid: Fidelity::default(),
            samples: 0,
            reanchors: 0,
            unknown: 0,
            groups: false,
        }
    }

    /// Judges one probe whose shares are all in (probes in time order),
    /// and returns it as a row: pid 0, event `cfs_rq`, the kernel's values
    /// and the tasks' sum (`reanchor` where the residual was taken).
    pub fn judge(&mut self, p: &Probe) -> Option<Row> {
        let c = p.cpu as usize;
        if c >= self.residual.len() {
            return None;
        }
        self.samples += 1;
        let lut = p.kernel.last_update_time;
        let divider = (PELT_MIN_DIVIDER + lattice_period_contrib(lut)) as u64;
        let ks = p.sums.unwrap_or(PeltSums {
            load_sum: p.kernel.load_avg * divider,
            runnable_sum: p.kernel.runnable_avg * divider,
            util_sum: p.kernel.util_avg * divider,
            period_contrib: lattice_period_contrib(lut),
        });
        let t = p.total;
        let (res, retake) = match self.residual[c] {
            Some(r) if !p.reset => (r.at(lut), false),
            _ => {
                self.reanchors += 1;
                let r = Residual {
                    lut,
                    load: ks.load_sum as i64 - t.load as i64,
                    runnable: ks.runnable_sum as i64 - t.runnable as i64,
                    util: ks.util_sum as i64 - t.util as i64,
                };
                (r, true)
            }
        };
        self.residual[c] = Some(res);
        let sum = |task: u64, r: i64| (task as i64 + r).max(0) as u64;
        let v = Values {
            util_avg: Some(sum(t.util, res.util) / divider),
            load_avg: Some(sum(t.load, res.load) / divider),
            runnable_avg: Some(sum(t.runnable, res.runnable) / divider),
            util_est: Some(t.util_est.min(u32::MAX as u64) as u32),
        };
        let k = &p.kernel;
        if !retake {
            if p.unknown {
                self.unknown += 1;
            }
            self.fid.add(Metric::Util, v.util_avg, k.util_avg);
            self.fid
                .add(Metric::Runnable, v.runnable_avg, k.runnable_avg);
            self.fid.add(Metric::Load, v.load_avg, k.load_avg);
            self.fid.add(
                Metric::UtilEst,
                v.util_est.map(u64::from),
                k.util_est as u64,
            );
        }
        Some(Row {
            ts: p.ts,
            pid: 0,
            cpu: p.cpu,
            event: ROOT_EVENT,
            kernel: Some(*k),
            exact: v,
            model: v,
            measured: None,
            excluded: retake.then_some("reanchor"),
        })
    }

    pub fn summary(&self) -> Option<RootSummary> {
        if self.samples == 0 {
            return None;
        }
        Some(RootSummary {
            samples: self.samples,
            reanchors: self.reanchors,
            unknown: self.unknown,
            task_groups: self.groups,
            util_avg: self.fid.get(Metric::Util).summary(),
            load_avg: (!self.groups)
                .then(|| self.fid.get(Metric::Load).summary())
                .flatten(),
            runnable_avg: (!self.groups)
                .then(|| self.fid.get(Metric::Runnable).summary())
                .flatten(),
            util_est: self.fid.get(Metric::UtilEst).summary(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(lut: u64, kernel_util: u64, util_sum: u64) -> Probe {
        Probe {
            ts: lut,
            cpu: 0,
            kernel: PeltAvg {
                last_update_time: lut,
                util_avg: kernel_util,
                ..PeltAvg::default()
            },
            sums: Some(PeltSums {
                load_sum: 0,
                runnable_sum: 0,
                util_sum,
                period_contrib: lattice_period_contrib(lut),
            }),
            reset: false,
            total: Share::default(),
            pre_attach: None,
            unknown: false,
        }
    }

    /// A task's part: `util` of util_sum.
    fn util(util: u64) -> Option<Share> {
        Some(Share {
            util,
            ..Share::default()
        })
    }

    /// A probe at `lut` with the kernel's util_avg `k` (and util_sum
    /// `k_sum`) and the tasks' parts `tasks`.
    fn probe_of(lut: u64, k: u64, k_sum: u64, tasks: &[u64]) -> Probe {
        let mut p = probe(lut, k, k_sum);
        for &t in tasks {
            p.add(false, util(t));
        }
        p
    }

    #[test]
    fn the_residual_decays_as_blocked_load_and_tasks_add_up() {
        const PERIOD: u64 = 1024 * 1024;
        let lut = 32 * PERIOD;
        let divider = (PELT_MIN_DIVIDER + lattice_period_contrib(lut)) as u64;
        let mut roots = Roots::new(1);
        // First sample: the kernel has 20 000 000 of util_sum, the tasks
        // 12 000 000: the rest is taken as blocked load, not judged.
        roots.judge(&probe_of(0, 0, 20_000_000, &[12_000_000]));
        assert_eq!((roots.samples, roots.reanchors), (1, 1));
        assert!(roots.fid.get(Metric::Util).summary().is_none());
        // 32 periods on (one half-life), the residual is halved exactly.
        let want = (7_000_000 + decay_load(8_000_000, 32)) / divider;
        roots.judge(&probe_of(lut, want, 0, &[3_000_000, 4_000_000]));
        let s = roots.fid.get(Metric::Util).summary().unwrap();
        assert_eq!((s.samples, s.max_abs_err), (1, 0));
        // A task first seen: the residual is taken again there.
        let mut p = probe(lut + PERIOD, 500, 0);
        p.add(true, Some(Share::default()));
        roots.judge(&p);
        assert_eq!(roots.reanchors, 2);
        // Tasks that explain more than the kernel has (a residual below
        // zero): the difference decays towards zero too.
        let mut roots = Roots::new(1);
        roots.judge(&probe_of(0, 0, 10_000_000, &[18_000_000]));
        let want = (7_000_000 - decay_load(8_000_000, 32)) / divider;
        let row = roots.judge(&probe_of(lut, want, 0, &[7_000_000])).unwrap();
        assert_eq!((row.exact.util_avg, row.excluded), (Some(want), None));
    }
}
