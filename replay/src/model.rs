//! Models: what a task's load tracking would read, driven step by step by
//! the task's timeline ([`crate::task`]). A model is one type implementing
//! [`Model`] (a factory) and [`TaskModel`] (one task's state); the driver
//! never looks inside.
//!
//! - [`Pelt`]: the kernel's PELT (`kernel/sched/pelt.c`, [`crate::pelt`]),
//!   with a configurable half-life and util_est variant.
//! - [`Measured`]: the true utilisation, the fraction of time the task ran
//!   in a sliding window: the ground truth estimates are judged against.

use std::collections::VecDeque;

use schedrec_format::record::{PeltAvg, PeltSums};

use crate::pelt::*;
use crate::root::Share;

/// The PELT inputs of the interval that ends at an update: `on_rq` (load),
/// `runnable` (on_rq and not delayed), `running` (on the CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    pub on_rq: bool,
    pub runnable: bool,
    pub running: bool,
}

/// What a model estimates for a task at one instant; `None` where the model
/// has no such signal (or has not started yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Values {
    pub util_avg: Option<u64>,
    pub load_avg: Option<u64>,
    pub runnable_avg: Option<u64>,
    /// util_est without the UTIL_AVG_UNCHANGED flag (the ewma before v6.8).
    pub util_est: Option<u32>,
}

/// Static facts about the task and its CPU that models need.
#[derive(Clone, Copy, Debug)]
pub struct TaskInfo {
    /// `se.load.weight` scaled down (nice 0 = 1024).
    pub weight: u64,
    /// Capacity of the task's CPU (1024 = the biggest CPU).
    pub capacity: u64,
}

/// One task's state in one model. Times: `now` is on the PELT clock (ns),
/// `ts` on the trace's clock.
pub trait TaskModel: Send {
    /// An update at `now` closing an interval with the inputs `inp`.
    /// `tick`: a periodic update the driver emulated on the HZ grid; when
    /// `tick_may_cross` is false the kernel's own boundary-crossing updates
    /// are in the trace, so an emulated tick that would cross one is dropped.
    fn update(&mut self, now: u64, ts: u64, inp: Inputs, tick: bool, tick_may_cross: bool);
    /// A sleeping task's averages synced to `now` before a wakeup
    /// migration (`sync_entity_load_avg()`): an update of a blocked entity.
    fn sync_blocked(&mut self, now: u64, ts: u64) {
        self.update(now, ts, Inputs::default(), false, true);
    }
    /// The task goes to sleep at `now` (the running interval closes):
    /// util_est and the dequeue update, in the kernel's order.
    fn dequeue_sleep(&mut self, now: u64, ts: u64, inp: Inputs);
    /// Migration: the task's averages are attached to CPU `cpu`'s run-queue,
    /// whose PELT clock reads `lut`, at window position `period_contrib`
    /// (None: not recorded; PELT's follows from `lut`, see
    /// [`crate::pelt::lattice_period_contrib`]).
    fn attach(&mut self, lut: u64, period_contrib: Option<u32>, cpu: u32);
    /// Copy the kernel's state (initialisation or re-anchoring), `now`
    /// being the PELT time the sample describes, on CPU `cpu`.
    fn anchor(&mut self, k: &PeltAvg, sums: Option<&PeltSums>, now: u64, ts: u64, cpu: u32);
    fn values(&self, ts: u64) -> Values;
    /// Events were lost: forget what depends on continuity.
    fn reset(&mut self) {}
    /// The task's weight changed (nice, or its first known value):
    /// `reweight_entity()` recomputes load_avg at once.
    fn set_weight(&mut self, weight: u64);
    /// The task's part of its CPU's root run-queue at PELT time `now`
    /// ([`crate::root`]), without changing the task: its state run forward
    /// with the inputs `inp` (or through the migration `moved`);
    /// `enqueued`: its util_est counts. None: the model has no sums.
    fn root_share(&self, _now: u64, _inp: Inputs, _moved: Moved, _enqueued: bool) -> Option<Share> {
        None
    }
}

/// A migration the task is in the middle of, at a root probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    No,
    /// Load-balanced while queued: attached to the destination at this
    /// PELT time (estimated), queued since.
    Attached(u64),
}

/// A model: makes a [`TaskModel`] per task.
pub trait Model: Send + Sync {
    /// Name as shown in summaries and output column headers.
    fn name(&self) -> String;
    fn task(&self, info: TaskInfo) -> Box<dyn TaskModel>;
}

/// Which util_est algorithm, and when it samples util_avg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtilEst {
    Off,
    /// v6.8+ (one `u32`). `sample_before_update`: v6.12+ calls
    /// `util_est_update()` before the dequeue's PELT update; v6.8–v6.11 after.
    Single {
        sample_before_update: bool,
    },
    /// v5.13–v6.7: `{enqueued, ewma}` with UTIL_EST_FASTUP, updated after
    /// the dequeue.
    EnqueuedEwma,
}

impl UtilEst {
    /// The variant a kernel release ran ("6.18.44-…" → Single, sampled before).
    pub fn for_kernel(release: &str) -> UtilEst {
        let mut it = release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u32>().ok());
        let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        match (maj, min) {
            (0, _) => UtilEst::Single {
                sample_before_update: true,
            },
            (m, n) if (m, n) >= (6, 12) => UtilEst::Single {
                sample_before_update: true,
            },
            (m, n) if (m, n) >= (6, 8) => UtilEst::Single {
                sample_before_update: false,
            },
            _ => UtilEst::EnqueuedEwma,
        }
    }
}

/// The kernel's PELT. `halflife_ms` 32 is the kernel's; 16 and 8 run the
/// same arithmetic on a clock 2× / 4× as fast (Android's
/// `sched_pelt_multiplier`), which is how shorter half-lives were proposed.
#[derive(Clone, Copy, Debug)]
pub struct Pelt {
    pub halflife_ms: u32,
    pub util_est: UtilEst,
}

/// The model a user names (`--model pelt|measured`, `--halflife`,
/// `--no-util-est`) for a trace with `meta`; `None` is the kernel-exact
/// reference, which the replay always runs anyway. A PELT model takes the
/// recorded kernel's util_est variant.
pub fn choose(
    meta: &schedrec_format::Metadata,
    name: &str,
    halflife_ms: u32,
    no_util_est: bool,
    window_ns: u64,
) -> Result<Option<Box<dyn Model>>, String> {
    Ok(match name {
        "measured" => Some(Box::new(Measured { window_ns })),
        "pelt" => {
            let ue = if no_util_est {
                UtilEst::Off
            } else if meta.util_est_layout == schedrec_format::UtilEstLayout::EnqueuedEwma {
                UtilEst::EnqueuedEwma
            } else {
                UtilEst::for_kernel(&meta.kernel_release)
            };
            if halflife_ms == 32 && !no_util_est {
                None
            } else {
                Some(Box::new(Pelt::new(halflife_ms, ue)?))
            }
        }
        other => return Err(format!("no model named {other:?} (pelt, measured)")),
    })
}

impl Pelt {
    pub fn new(halflife_ms: u32, util_est: UtilEst) -> Result<Pelt, String> {
        match halflife_ms {
            8 | 16 | 32 => Ok(Pelt {
                halflife_ms,
                util_est,
            }),
            h => Err(format!("--halflife must be 8, 16 or 32 (ms), not {h}")),
        }
    }
}

impl Model for Pelt {
    fn name(&self) -> String {
        let ue = if self.util_est == UtilEst::Off {
            ",no-util-est"
        } else {
            ""
        };
        format!("pelt(halflife={}ms{ue})", self.halflife_ms)
    }
    fn task(&self, info: TaskInfo) -> Box<dyn TaskModel> {
        Box::new(PeltTask {
            st: PeltState::default(),
            mult: (32 / self.halflife_ms) as u64,
            util_est: self.util_est,
            info,
            started: false,
        })
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct PeltState {
    sa: SchedAvg,
    /// Before v6.8: `util_est.enqueued` (`sa.util_est` holds the ewma).
    enqueued: u32,
}

/// One task's PELT.
struct PeltTask {
    st: PeltState,
    mult: u64,
    util_est: UtilEst,
    info: TaskInfo,
    started: bool,
}

/// The sums rebuilt from the averages, each `avg × divider + extra`
/// (load_sum then divided by the weight, as the kernel does).
fn sums_from_averages(sa: &mut SchedAvg, weight: u64, extra: u64) {
    let divider = get_pelt_divider(sa) as u64;
    sa.util_sum = (sa.util_avg * divider + extra) as u32;
    sa.runnable_sum = sa.runnable_avg * divider + extra;
    sa.load_sum = sa.load_avg * divider + extra;
    let w = se_weight(weight);
    if w < sa.load_sum {
        sa.load_sum /= w;
    } else {
        sa.load_sum = 1;
    }
}

/// The sums `attach_entity_load_avg()` rebuilds from the averages.
fn attach_sums(sa: &mut SchedAvg, weight: u64) {
    sums_from_averages(sa, weight, 0);
}

/// The sums of a kernel sample known by its averages alone: each average
/// is `sum / divider` rounded down, so its sum lies in
/// `[avg × divider, (avg + 1) × divider)`; the middle of that range halves
/// the worst error of `attach_sums()`'s lower end (which is what the kernel
/// itself does at attach, where it is exact).
fn estimate_sums(sa: &mut SchedAvg, weight: u64) {
    let half = get_pelt_divider(sa) as u64 / 2;
    sums_from_averages(sa, weight, half);
}

/// `within_margin(value, margin)` (≤ v6.7).
fn within_margin(value: i64, margin: i64) -> bool {
    ((value + margin - 1) as u32) < (2 * margin - 1) as u32
}

/// `util_est_update()` of v5.13–v6.7 (`struct util_est {enqueued, ewma}`).
fn util_est_update_pre68(st: &mut PeltState, runnable: u64, capacity: u64) {
    let util = st.sa.util_avg;
    if st.enqueued & UTIL_AVG_UNCHANGED != 0 {
        return;
    }
    let last_enqueued = st.enqueued as i64;
    let mut ewma = st.sa.util_est;
    let enqueued = util as u32;
    'done: {
        // UTIL_EST_FASTUP
        if ewma < enqueued {
            ewma = enqueued;
            break 'done;
        }
        let last_ewma_diff = enqueued as i64 - ewma as i64;
        let last_enqueued_diff = last_enqueued - enqueued as i64;
        if within_margin(last_ewma_diff, UTIL_EST_MARGIN as i64) {
            if !within_margin(last_enqueued_diff, UTIL_EST_MARGIN as i64) {
                break 'done;
            }
            return;
        }
        if util > capacity {
            return;
        }
        if (enqueued as u64 + UTIL_EST_MARGIN as u64) < runnable {
            break 'done;
        }
        let mut e = (ewma as i64) << UTIL_EST_WEIGHT_SHIFT;
        e += last_ewma_diff;
        e >>= UTIL_EST_WEIGHT_SHIFT;
        ewma = e as u32;
    }
    st.enqueued = enqueued | UTIL_AVG_UNCHANGED;
    st.sa.util_est = ewma;
}

impl PeltTask {
    fn util_est_sleep(&self, st: &mut PeltState) {
        let sa = &st.sa;
        match self.util_est {
            UtilEst::Off => {}
            UtilEst::Single { .. } => {
                let (u, r) = (sa.util_avg, sa.runnable_avg);
                util_est_update(&mut st.sa, u, r, self.info.capacity);
            }
            UtilEst::EnqueuedEwma => {
                let r = sa.runnable_avg;
                util_est_update_pre68(st, r, self.info.capacity);
            }
        }
    }

    fn pelt_update(&self, st: &mut PeltState, now: u64, inp: Inputs) {
        let changed = update_load_avg_se(
            now,
            &mut st.sa,
            self.info.weight,
            inp.on_rq,
            inp.runnable,
            inp.running,
        );
        if changed && self.util_est == UtilEst::EnqueuedEwma {
            // cfs_se_util_change() clears the flag in `enqueued` before v6.8;
            // update_load_avg_se() cleared it in sa.util_est (the ewma).
            st.enqueued &= !UTIL_AVG_UNCHANGED;
        }
    }
}

impl TaskModel for PeltTask {
    fn update(&mut self, now: u64, _ts: u64, inp: Inputs, tick: bool, tick_may_cross: bool) {
        if !self.started {
            return;
        }
        let now = now * self.mult;
        let mut st = self.st;
        if tick && !tick_may_cross && self.mult == 1 {
            let delta = now.wrapping_sub(st.sa.last_update_time);
            if (delta as i64) > 0 && ((delta >> 10) + st.sa.period_contrib as u64) >= 1024 {
                return;
            }
        }
        self.pelt_update(&mut st, now, inp);
        self.st = st;
    }

    fn sync_blocked(&mut self, now: u64, _ts: u64) {
        if !self.started {
            return;
        }
        // No cfs_se_util_change(): the kernel's util_est keeps its
        // UTIL_AVG_UNCHANGED flag through a migration's sync and attach, so
        // the first dequeue after a wakeup migration leaves util_est alone
        // (seen on the step fixture: 232 kept, then 175).
        update_load_avg_blocked_se(now * self.mult, &mut self.st.sa, self.info.weight);
    }

    fn dequeue_sleep(&mut self, now: u64, _ts: u64, inp: Inputs) {
        if !self.started {
            return;
        }
        let now = now * self.mult;
        let before = matches!(
            self.util_est,
            UtilEst::Single {
                sample_before_update: true
            }
        );
        let mut st = self.st;
        if before {
            self.util_est_sleep(&mut st);
        }
        self.pelt_update(&mut st, now, inp);
        if !before {
            self.util_est_sleep(&mut st);
        }
        self.st = st;
    }

    fn attach(&mut self, lut: u64, period_contrib: Option<u32>, _cpu: u32) {
        if !self.started {
            return;
        }
        // The cfs_rq's last_update_time is on the 1024 ns grid.
        let lut = (lut * self.mult) & !1023;
        let sa = &mut self.st.sa;
        sa.last_update_time = lut;
        sa.period_contrib = match period_contrib {
            Some(pc) if self.mult == 1 => pc,
            _ => lattice_period_contrib(lut),
        };
        attach_sums(sa, self.info.weight);
    }

    fn anchor(&mut self, k: &PeltAvg, sums: Option<&PeltSums>, now: u64, _ts: u64, _cpu: u32) {
        self.started = true;
        let lut = now * self.mult;
        let mut st = PeltState {
            sa: SchedAvg {
                last_update_time: lut,
                load_avg: k.load_avg,
                runnable_avg: k.runnable_avg,
                util_avg: k.util_avg,
                ..SchedAvg::default()
            },
            enqueued: UTIL_AVG_UNCHANGED,
        };
        if self.util_est != UtilEst::Off {
            st.sa.util_est = k.util_est;
        }
        match sums {
            Some(s) if self.mult == 1 => {
                st.sa.load_sum = s.load_sum;
                st.sa.runnable_sum = s.runnable_sum;
                st.sa.util_sum = s.util_sum as u32;
                st.sa.period_contrib = s.period_contrib;
            }
            _ => {
                st.sa.period_contrib = lattice_period_contrib(lut);
                estimate_sums(&mut st.sa, self.info.weight);
            }
        }
        self.st = st;
    }

    fn values(&self, _ts: u64) -> Values {
        if !self.started {
            return Values::default();
        }
        let st = &self.st;
        Values {
            util_avg: Some(st.sa.util_avg),
            load_avg: Some(st.sa.load_avg),
            runnable_avg: Some(st.sa.runnable_avg),
            util_est: (self.util_est != UtilEst::Off)
                .then_some(st.sa.util_est & !UTIL_AVG_UNCHANGED),
        }
    }

    fn set_weight(&mut self, weight: u64) {
        self.info.weight = weight;
        let sa = &mut self.st.sa;
        let divider = get_pelt_divider(sa) as u64;
        sa.load_avg = se_weight(weight) * sa.load_sum / divider;
    }

    fn root_share(&self, now: u64, inp: Inputs, moved: Moved, enqueued: bool) -> Option<Share> {
        // Only the kernel's clock adds up with the run-queue's.
        if !self.started || self.mult != 1 {
            return None;
        }
        let w = self.info.weight;
        let mut sa = self.st.sa;
        let attach = |sa: &mut SchedAvg, at: u64| {
            sa.last_update_time = at & !1023;
            sa.period_contrib = lattice_period_contrib(sa.last_update_time);
            attach_sums(sa, w);
        };
        match moved {
            Moved::No => {
                update_load_sum(
                    now,
                    &mut sa,
                    inp.on_rq as u64,
                    inp.runnable as u64,
                    inp.running,
                );
            }
            Moved::Attached(at) => {
                attach(&mut sa, at.min(now));
                update_load_sum(now, &mut sa, 1, 1, false);
            }
        }
        let util_est = match self.util_est {
            _ if !enqueued => 0,
            UtilEst::Off => 0,
            UtilEst::Single { .. } => self.st.sa.util_est & !UTIL_AVG_UNCHANGED,
            UtilEst::EnqueuedEwma => self
                .st
                .sa
                .util_est
                .max(self.st.enqueued & !UTIL_AVG_UNCHANGED),
        };
        Some(Share {
            load: se_weight(w) * sa.load_sum,
            runnable: sa.runnable_sum,
            util: sa.util_sum as u64,
            util_est: util_est as u64,
        })
    }
}

/// The true utilisation: the fraction of the last `window_ns` the task
/// spent running, scaled to 1024. Undefined (None) until a whole window
/// has been observed.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub window_ns: u64,
}

impl Model for Measured {
    fn name(&self) -> String {
        format!("measured(window={}ms)", self.window_ns / 1_000_000)
    }
    fn task(&self, _info: TaskInfo) -> Box<dyn TaskModel> {
        Box::new(MeasuredTask {
            window: self.window_ns.max(1),
            since: None,
            last: 0,
            runs: VecDeque::new(),
            total: 0,
        })
    }
}

struct MeasuredTask {
    window: u64,
    /// When observation started.
    since: Option<u64>,
    /// The trace time of the last step.
    last: u64,
    /// Running intervals that end within the window.
    runs: VecDeque<(u64, u64)>,
    /// Their total length.
    total: u64,
}

impl MeasuredTask {
    fn step(&mut self, ts: u64, running: bool) {
        let Some(_) = self.since else {
            self.since = Some(ts);
            self.last = ts;
            return;
        };
        if running && ts > self.last {
            match self.runs.back_mut() {
                Some(r) if r.1 == self.last => r.1 = ts,
                _ => self.runs.push_back((self.last, ts)),
            }
            self.total += ts - self.last;
        }
        self.last = self.last.max(ts);
        let from = self.last.saturating_sub(self.window);
        while let Some(&(a, b)) = self.runs.front() {
            if b > from {
                break;
            }
            self.total -= b - a;
            self.runs.pop_front();
        }
    }
}

impl TaskModel for MeasuredTask {
    fn update(&mut self, _now: u64, ts: u64, inp: Inputs, _tick: bool, _may_cross: bool) {
        self.step(ts, inp.running);
    }
    fn dequeue_sleep(&mut self, _now: u64, ts: u64, inp: Inputs) {
        self.step(ts, inp.running);
    }
    fn attach(&mut self, _lut: u64, _pc: Option<u32>, _cpu: u32) {}
    fn anchor(&mut self, _k: &PeltAvg, _s: Option<&PeltSums>, _now: u64, ts: u64, _cpu: u32) {
        if self.since.is_none() {
            self.since = Some(ts);
            self.last = ts;
        }
    }
    fn values(&self, ts: u64) -> Values {
        let Some(since) = self.since else {
            return Values::default();
        };
        if ts < since + self.window {
            return Values::default();
        }
        let from = ts - self.window;
        // All kept intervals end by `last`; cut what lies outside [from, ts]
        // (only the first few start before `from`).
        let mut ran = self.total;
        for &(a, b) in &self.runs {
            if a >= from {
                break;
            }
            ran -= b.min(from) - a;
        }
        if ts < self.last {
            for &(a, b) in self.runs.iter().rev() {
                if b <= ts {
                    break;
                }
                ran -= b - a.max(ts);
            }
        }
        Values {
            util_avg: Some(ran * SCHED_CAPACITY_SCALE / self.window),
            ..Values::default()
        }
    }
    fn set_weight(&mut self, _weight: u64) {}
    fn reset(&mut self) {
        self.since = None;
        self.runs.clear();
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const RUN: Inputs = Inputs {
        on_rq: true,
        runnable: true,
        running: true,
    };
    const SLEEP: Inputs = Inputs {
        on_rq: false,
        runnable: false,
        running: false,
    };

    #[test]
    fn measured_is_the_running_fraction_of_the_window() {
        let m = Measured {
            window_ns: 100 * MS,
        };
        let mut t = m.task(TaskInfo {
            weight: 1024,
            capacity: 1024,
        });
        // 16 ms period, 8 ms running, from t=0.
        t.update(0, 0, SLEEP, false, true);
        for p in 0..20u64 {
            t.update(0, p * 16 * MS, SLEEP, false, true);
            t.update(0, p * 16 * MS + 8 * MS, RUN, false, true);
        }
        assert_eq!(t.values(50 * MS).util_avg, None, "no whole window yet");
        // Window [212 ms, 312 ms]: 4 ms of the run 208..216, five whole
        // runs 224..296, and 304..312.
        let ts = 312 * MS;
        let mut ran = 0;
        for p in 0..20u64 {
            let (a, b) = (p * 16 * MS, p * 16 * MS + 8 * MS);
            ran += b.min(ts).saturating_sub(a.max(ts - 100 * MS));
        }
        assert_eq!(t.values(ts).util_avg, Some(ran * 1024 / (100 * MS)));
        assert_eq!(ran, 52 * MS);
    }

    #[test]
    fn shorter_halflives_decay_faster() {
        // pelt-reference §7: from 1024, 32 ms of sleep → 528, 64 ms → 273,
        // 100 ms → 129. Half-life 16 over 32 ms is the kernel's 64 ms;
        // half-life 8 over 25 ms is its 100 ms.
        for (h, sleep_ms, want) in [(32u32, 32u64, 528u64), (16, 32, 273), (8, 25, 129)] {
            let m = Pelt::new(h, UtilEst::Off).unwrap();
            let mut t = m.task(TaskInfo {
                weight: 1024,
                capacity: 1024,
            });
            let zero = PeltSums {
                load_sum: 0,
                runnable_sum: 0,
                util_sum: 0,
                period_contrib: 0,
            };
            t.anchor(&PeltAvg::default(), Some(&zero), 0, 0, 0);
            for ms in 1..=1000 {
                t.update(ms * MS, 0, RUN, true, true);
            }
            assert!(t.values(0).util_avg.unwrap() >= 1023);
            t.update((1000 + sleep_ms) * MS, 0, SLEEP, false, true);
            let got = t.values(0).util_avg.unwrap();
            assert!(got.abs_diff(want) <= 1, "halflife {h}: {got}, want {want}");
        }
        assert!(Pelt::new(4, UtilEst::Off).is_err());
    }

    #[test]
    fn pre68_util_est_rises_at_once_and_decays_by_quarters() {
        let mut st = PeltState::default();
        st.sa.util_avg = 400;
        util_est_update_pre68(&mut st, 400, 1024);
        assert_eq!(st.sa.util_est, 400, "FASTUP: ewma jumps to the new value");
        // Unchanged util: skipped until util_avg changes.
        st.sa.util_avg = 200;
        util_est_update_pre68(&mut st, 200, 1024);
        assert_eq!(st.sa.util_est, 400);
        st.enqueued &= !UTIL_AVG_UNCHANGED;
        util_est_update_pre68(&mut st, 200, 1024);
        // ewma = (400*4 + (200-400)) / 4 = 350
        assert_eq!(st.sa.util_est, 350);
    }

    #[test]
    fn util_est_variant_follows_the_release() {
        assert_eq!(
            UtilEst::for_kernel("6.18.44-fc"),
            UtilEst::Single {
                sample_before_update: true
            }
        );
        assert_eq!(
            UtilEst::for_kernel("6.8.0-31-generic"),
            UtilEst::Single {
                sample_before_update: false
            }
        );
        assert_eq!(UtilEst::for_kernel("5.15.0"), UtilEst::EnqueuedEwma);
        assert_eq!(UtilEst::for_kernel("6.7.12"), UtilEst::EnqueuedEwma);
    }
}
