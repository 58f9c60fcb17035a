//! How the kernel's estimate follows demand over time: per task, on a 1 ms
//! grid, the measured running fraction and the kernel's estimate, then
//! ramp-up after bursts, convergence after demand changes, and time-weighted
//! means.
//!
//! **The estimate between samples.** The trace shows the kernel's util_avg
//! (and util_est) at every switch-out and wakeup of a task; between two such
//! samples the task's state is known from its slices, so the estimate is
//! carried forward bin by bin with PELT's continuous form —
//! `u ← u·y^d + 1024·f·(1 − y^d)`, `y^32 = ½`, `d` the bin in PELT periods of
//! 1024 µs (1 048 576 ns), `f` the fraction of the bin the task ran — and
//! re-anchored to the kernel's value at each sample. Capacity and frequency
//! scaling are not applied between samples (the anchors carry them). Where a
//! trace has no PELT values the kernel-exact model's values are the anchors
//! (`source: "model"`).
//!
//! **Bursts (ramp-up).** A task's slices are merged into busy periods: a gap
//! is bridged when the task stayed runnable (its slice ended preempted) or
//! the gap is shorter than 1 ms. A burst is a busy period of at least
//! [`MIN_BURST_MS`] that follows at least [`MIN_IDLE_MS`] without running;
//! its demand `D` is its running time over its length. Ramp-up lag is the
//! time from the burst's start until the estimate first reaches 80 % and 95 %
//! of `1024·D`; a burst that ends first is *censored* (counted, no time).
//! PELT theory for the same burst: from `u0` the estimate reaches `k·1024·D`
//! after `32·log2((1024·D − u0) / ((1 − k)·1024·D))` periods.
//!
//! **Demand changes (convergence).** Change points are found on the measured
//! running fraction: at each bin the mean over the next 100 ms minus the mean
//! over the previous 100 ms; a change point is where that difference is at
//! least 0.15 (of a CPU) and largest within ±100 ms. The new level is the
//! mean running fraction from the change to the next one. The estimate is
//! smoothed by a centred moving mean over the measurement window (the ripple
//! within a period is not an error) and has converged once it stays within
//! ±5 % of the new level (never tighter than ±10 util units, the grid's own
//! resolution) for at least 100 ms — not "until the next change": a later
//! disturbance of the demand (another task preempting it) is followed, not
//! a failure to converge. Theory: `32·log2(|Δ| / tolerance)` periods for a
//! step of `Δ`.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::tables::Tables;

/// Grid step.
pub const BIN_NS: u64 = 1_000_000;
/// One PELT period, ns (1024 "µs" of 1024 ns).
pub const PERIOD_NS: f64 = 1_048_576.0;
pub const MIN_BURST_MS: f64 = 20.0;
pub const MIN_IDLE_MS: f64 = 20.0;
/// Gaps shorter than this inside a busy period are bridged.
const MERGE_GAP_NS: u64 = 1_000_000;
/// Half-width of the change-point test, bins.
const CHANGE_HALF_BINS: usize = 100;
/// Smallest change of the running fraction that counts.
const CHANGE_MIN: f64 = 0.15;
/// How long the estimate must stay in the band to have converged, bins.
const HOLD_BINS: usize = 100;
/// Convergence band: relative, with a floor in util units.
pub const BAND_REL: f64 = 0.05;
pub const BAND_MIN: f64 = 10.0;

/// The fraction of a PELT signal's distance to its target left after `ns`.
fn decay(ns: f64) -> f64 {
    0.5f64.powf(ns / PERIOD_NS / 32.0)
}

/// PELT periods → ms.
fn periods_ms(n: f64) -> f64 {
    n * PERIOD_NS / 1e6
}

/// One task on the grid. Bin `i` covers `[t0 + i·BIN_NS, t0 + (i+1)·BIN_NS)`;
/// `util`/`est` are the values at the end of the bin (NaN before the first
/// sample).
#[derive(Clone, Debug)]
pub struct Grid {
    pub pid: u32,
    pub t0: u64,
    /// Fraction of the bin the task ran, 0..=1.
    pub run: Vec<f32>,
    /// util_avg (kernel where sampled, carried forward between samples).
    pub util: Vec<f32>,
    /// The kernel's task_util_est: max(util_avg, util_est).
    pub est: Vec<f32>,
    /// Mean over the known bins of the *held* signal: the last sample's
    /// util_avg kept until the next sample, as a step plot of the trace's
    /// values shows it (no decay while the task sleeps).
    pub held_mean: f64,
}

/// A burst and how long its estimate lagged (ms; `None`: not reached
/// before the burst ended).
#[derive(Clone, Debug, Serialize)]
pub struct Burst {
    /// Start, ns since the trace's first record.
    pub start_ns: u64,
    pub len_ms: f64,
    pub idle_before_ms: f64,
    /// Running fraction during the burst.
    pub demand: f64,
    /// util_avg when it started.
    pub util_at_start: f64,
    pub util_t80_ms: Option<f64>,
    pub util_t95_ms: Option<f64>,
    /// The same for max(util_avg, util_est).
    pub est_t80_ms: Option<f64>,
    pub est_t95_ms: Option<f64>,
    /// PELT theory from `util_at_start` at this demand.
    pub theory_t80_ms: f64,
    pub theory_t95_ms: f64,
    /// The kernel's own samples of the task from the burst's start to its
    /// 95 % point (or its end): how much of the ramp is the kernel's values
    /// rather than PELT's curve carried between them.
    pub samples_in_ramp: u64,
}

/// A change of measured demand and how long the estimate took to follow.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub at_ns: u64,
    /// Mean running fraction before and after, util units (×1024).
    pub from: f64,
    pub to: f64,
    /// How long until the segment's end was observed, ms.
    pub observed_ms: f64,
    /// ms until the smoothed estimate enters the band for at least 100 ms
    /// (`None`: not before the next change, or `cut_off`).
    pub util_converge_ms: Option<f64>,
    pub est_converge_ms: Option<f64>,
    /// Smoothed util_avg − level over the segment's second half.
    pub util_settled_offset: f64,
    pub theory_ms: f64,
    /// The segment is too short to tell: shorter than the theory's time
    /// plus the 100 ms hold. Not timed, and left out of every median.
    pub cut_off: bool,
}

/// One task's dynamics (`analyze --json`, `dynamics[]`).
#[derive(Clone, Debug, Serialize)]
pub struct Dynamics {
    pub pid: u32,
    /// `kernel` (anchored to the kernel's samples) or `model`.
    pub source: &'static str,
    /// Bins with a known estimate.
    pub bins: u64,
    /// Time-weighted means over those bins, util units: measured demand
    /// (running fraction ×1024), util_avg, max(util_avg, util_est).
    pub demand_time_mean: f64,
    pub util_time_mean: f64,
    pub est_time_mean: f64,
    /// The held signal's time-weighted mean ([`Grid::held_mean`]).
    pub held_time_mean: f64,
    /// (util − demand) / demand, %, time-weighted.
    pub util_time_bias_pct: Option<f64>,
    pub bursts: Vec<Burst>,
    pub changes: Vec<Change>,
}

/// A task's slices and samples, in time order.
struct TaskInput {
    slices: Vec<(u64, u64, bool)>,         // start, end, ended preempted
    samples: Vec<(u64, f64, Option<f64>)>, // ts, util_avg, util_est
    source: &'static str,
}

/// Row numbers of each task's slices and of its replay rows with an
/// estimate, in table order: 4 bytes a row, where every task's
/// [`TaskInput`] at once held a copy of both tables (~30 bytes a row). One
/// task's input is built from them at a time ([`input`]). Grouped by a
/// counting sort into two arrays (a vector per task took up to twice the
/// rows, and an allocation per task).
struct Index {
    /// pid → its number `k`: its rows are `slices[slice_at[k]..slice_at[k + 1]]`
    /// and the same in `samples`.
    task: rustc_hash::FxHashMap<u32, usize>,
    slice_at: Vec<usize>,
    slices: Vec<u32>,
    sample_at: Vec<usize>,
    samples: Vec<u32>,
}

impl Index {
    fn get(&self, pid: u32) -> Option<(&[u32], &[u32])> {
        let &k = self.task.get(&pid)?;
        Some((
            &self.slices[self.slice_at[k]..self.slice_at[k + 1]],
            &self.samples[self.sample_at[k]..self.sample_at[k + 1]],
        ))
    }
}

/// Groups `rows` (the task number of each row, `None`: left out) by task:
/// the start of each task's rows, and the row numbers in table order.
fn group(
    tasks: usize,
    rows: impl Iterator<Item = Option<usize>> + Clone,
) -> (Vec<usize>, Vec<u32>) {
    let mut at = vec![0usize; tasks + 1];
    for k in rows.clone().flatten() {
        at[k + 1] += 1;
    }
    for k in 0..tasks {
        at[k + 1] += at[k];
    }
    let mut next = at.clone();
    let mut out = vec![0u32; at[tasks]];
    for (i, k) in rows.enumerate() {
        if let Some(k) = k {
            out[next[k]] = crate::tables::row(i);
            next[k] += 1;
        }
    }
    (at, out)
}

fn index(t: &Tables) -> Index {
    let mut task = rustc_hash::FxHashMap::default();
    let s = &t.slices;
    for &pid in &s.pid {
        let n = task.len();
        task.entry(pid).or_insert(n);
    }
    let n = task.len();
    let (slice_at, slices) = group(n, s.pid.iter().map(|p| task.get(p).copied()));
    let r = &t.replay;
    let (sample_at, samples) = group(
        n,
        (0..r.ts.len()).map(|i| {
            let k = task.get(&r.pid[i]).copied()?;
            (r.kernel_util_avg.get(i).is_some() || r.exact_util_avg.get(i).is_some()).then_some(k)
        }),
    );
    Index {
        task,
        slice_at,
        slices,
        sample_at,
        samples,
    }
}

/// One task's slices and samples (the kernel's estimate where recorded,
/// else the kernel-exact model's), in time order.
fn input(t: &Tables, (slices, samples): (&[u32], &[u32])) -> TaskInput {
    let (s, r) = (&t.slices, &t.replay);
    let mut source = "kernel";
    let mut samples: Vec<(u64, f64, Option<f64>)> = samples
        .iter()
        .map(|&i| {
            let i = i as usize;
            match r.kernel_util_avg.get(i) {
                Some(u) => (
                    r.ts[i],
                    u as f64,
                    r.kernel_util_est.get(i).map(|v| v as f64),
                ),
                None => {
                    source = "model";
                    let u = r.exact_util_avg.get(i).unwrap_or(0);
                    (r.ts[i], u as f64, r.model_util_est.get(i).map(|v| v as f64))
                }
            }
        })
        .collect();
    let mut slices: Vec<(u64, u64, bool)> = slices
        .iter()
        .map(|&i| {
            let i = i as usize;
            (s.start[i], s.end[i], s.end_state.str(i) == "preempted")
        })
        .collect();
    slices.sort_unstable_by_key(|s| s.0);
    samples.sort_by_key(|s| s.0);
    TaskInput {
        slices,
        samples,
        source,
    }
}

fn grid(pid: u32, inp: &TaskInput) -> Option<Grid> {
    let first = inp.samples.first()?.0.min(inp.slices.first()?.0);
    let last = inp
        .samples
        .last()?
        .0
        .max(inp.slices.iter().map(|s| s.1).max()?);
    let t0 = first - first % BIN_NS;
    let n = ((last - t0) / BIN_NS + 1) as usize;
    let mut run = vec![0f32; n];
    for &(s, e, _) in &inp.slices {
        let mut a = s;
        while a < e {
            let b = (a - t0) / BIN_NS;
            let bin_end = t0 + (b + 1) * BIN_NS;
            let z = e.min(bin_end);
            run[b as usize] += ((z - a) as f64 / BIN_NS as f64) as f32;
            a = z;
        }
    }
    let y = decay(BIN_NS as f64);
    let (mut util, mut est) = (vec![f32::NAN; n], vec![f32::NAN; n]);
    let (mut u, mut ue): (Option<f64>, Option<f64>) = (None, None);
    let mut k = 0;
    let (mut held, mut held_sum, mut held_n) = (None, 0.0, 0u64);
    for i in 0..n {
        if let Some(h) = held {
            held_sum += h;
            held_n += 1;
        }
        let f = run[i].min(1.0) as f64;
        if let Some(v) = u.as_mut() {
            *v = *v * y + 1024.0 * f * (1.0 - y);
        }
        let bin_end = t0 + (i as u64 + 1) * BIN_NS;
        while k < inp.samples.len() && inp.samples[k].0 < bin_end {
            // The sample, carried from its own time to the bin's end (at
            // the bin's running fraction).
            let rest = decay((bin_end - inp.samples[k].0) as f64);
            u = Some(inp.samples[k].1 * rest + 1024.0 * f * (1.0 - rest));
            held = Some(inp.samples[k].1);
            if inp.samples[k].2.is_some() {
                ue = inp.samples[k].2;
            }
            k += 1;
        }
        if let Some(v) = u {
            util[i] = v as f32;
            est[i] = v.max(ue.unwrap_or(0.0)) as f32;
        }
    }
    Some(Grid {
        pid,
        t0,
        run,
        util,
        est,
        held_mean: held_sum / held_n.max(1) as f64,
    })
}

/// First bin in `from..to` where `sig ≥ target`, as ms after `start_ns`.
fn reach(g: &Grid, sig: &[f32], from: usize, to: usize, target: f64, start_ns: u64) -> Option<f64> {
    (from..to.min(sig.len()))
        .find(|&i| sig[i] as f64 >= target)
        .map(|i| (g.t0 + (i as u64 + 1) * BIN_NS).saturating_sub(start_ns) as f64 / 1e6)
}

/// Ramp-up time in PELT theory, ms: from `u0` to `k` of `level`.
pub fn theory_ramp_ms(u0: f64, level: f64, k: f64) -> f64 {
    if u0 >= k * level || level <= 0.0 {
        return 0.0;
    }
    periods_ms(32.0 * ((level - u0) / ((1.0 - k) * level)).log2())
}

fn bursts(g: &Grid, inp: &TaskInput, trace_t0: u64) -> Vec<Burst> {
    let slices = &inp.slices;
    // Busy periods: (start, end, running ns).
    let mut busy: Vec<(u64, u64, u64)> = vec![];
    let mut prev_preempted = false;
    for &(s, e, pre) in slices {
        match busy.last_mut() {
            Some(b) if prev_preempted || s.saturating_sub(b.1) < MERGE_GAP_NS => {
                b.1 = b.1.max(e);
                b.2 += e - s;
            }
            _ => busy.push((s, e, e - s)),
        }
        prev_preempted = pre;
    }
    let mut out = vec![];
    for w in 1..busy.len() {
        let (s, e, ran) = busy[w];
        let idle = s.saturating_sub(busy[w - 1].1) as f64 / 1e6;
        let len = (e - s) as f64 / 1e6;
        if idle < MIN_IDLE_MS || len < MIN_BURST_MS {
            continue;
        }
        let demand = ran as f64 / (e - s) as f64;
        let level = 1024.0 * demand;
        let b0 = ((s - g.t0) / BIN_NS) as usize;
        let b1 = ((e - g.t0) / BIN_NS) as usize;
        // The value just before the burst: end of the previous bin.
        let u0 = if b0 > 0 { g.util[b0 - 1] } else { f32::NAN };
        if u0.is_nan() {
            continue;
        }
        let u0 = u0 as f64;
        let util_t95_ms = reach(g, &g.util, b0, b1, 0.95 * level, s);
        let ramp_end = s + (util_t95_ms.unwrap_or(len) * 1e6) as u64;
        // Samples are in time order: two binary searches, not a scan per
        // burst (which made long tasks quadratic).
        let lo = inp.samples.partition_point(|x| x.0 < s);
        let hi = inp.samples.partition_point(|x| x.0 <= ramp_end);
        let samples_in_ramp = hi.saturating_sub(lo) as u64;
        out.push(Burst {
            start_ns: s.saturating_sub(trace_t0),
            len_ms: len,
            idle_before_ms: idle,
            demand,
            util_at_start: u0,
            util_t80_ms: reach(g, &g.util, b0, b1, 0.8 * level, s),
            util_t95_ms,
            est_t80_ms: reach(g, &g.est, b0, b1, 0.8 * level, s),
            est_t95_ms: reach(g, &g.est, b0, b1, 0.95 * level, s),
            theory_t80_ms: theory_ramp_ms(u0, level, 0.8),
            theory_t95_ms: theory_ramp_ms(u0, level, 0.95),
            samples_in_ramp,
        });
    }
    out
}

/// Centred moving mean over `w` bins (NaN where any input is NaN).
pub fn smooth(x: &[f32], w: usize) -> Vec<f64> {
    let n = x.len();
    let mut pre = vec![0f64; n + 1];
    let mut nan = vec![0u32; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + if x[i].is_nan() { 0.0 } else { x[i] as f64 };
        nan[i + 1] = nan[i] + x[i].is_nan() as u32;
    }
    let h = w / 2;
    (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(h), (i + w - h).min(n));
            if nan[b] - nan[a] > 0 || b <= a {
                f64::NAN
            } else {
                (pre[b] - pre[a]) / (b - a) as f64
            }
        })
        .collect()
}

/// Change points of the running fraction (bins).
pub fn change_points(run: &[f32]) -> Vec<usize> {
    let l = CHANGE_HALF_BINS;
    let n = run.len();
    if n < 2 * l + 1 {
        return vec![];
    }
    let mut pre = vec![0f64; n + 1];
    for i in 0..n {
        pre[i + 1] = pre[i] + run[i].min(1.0) as f64;
    }
    let d: Vec<f64> = (0..n)
        .map(|i| {
            if i < l || i + l > n {
                0.0
            } else {
                ((pre[i + l] - pre[i]) - (pre[i] - pre[i - l])) / l as f64
            }
        })
        .collect();
    (l..=n - l)
        .filter(|&i| {
            let a = d[i].abs();
            a >= CHANGE_MIN
                && (i.saturating_sub(l)..(i + l + 1).min(n)).all(|j| {
                    let b = d[j].abs();
                    b < a || (b == a && j >= i)
                })
        })
        .collect()
}

fn changes(g: &Grid, window_bins: usize, trace_t0: u64) -> Vec<Change> {
    let cps = change_points(&g.run);
    if cps.is_empty() {
        // Most tasks' demand never changes: no smoothing for them.
        return vec![];
    }
    let su = smooth(&g.util, window_bins);
    let se = smooth(&g.est, window_bins);
    let n = g.run.len();
    let mean_run = |a: usize, b: usize| {
        g.run[a..b].iter().map(|&v| v.min(1.0) as f64).sum::<f64>() / (b - a).max(1) as f64 * 1024.0
    };
    let mut out = vec![];
    for (k, &cp) in cps.iter().enumerate() {
        let prev = if k == 0 { 0 } else { cps[k - 1] };
        let next = cps.get(k + 1).copied().unwrap_or(n);
        // The smoothed signal is defined up to half a window before the end.
        let end = next.saturating_sub(window_bins / 2 + 1);
        if end <= cp || su[cp..end].iter().all(|v| v.is_nan()) {
            continue;
        }
        let (from, to) = (mean_run(prev, cp), mean_run(cp, next));
        let band = (BAND_REL * to).max(BAND_MIN);
        let converge = |s: &[f64]| -> Option<f64> {
            // The first bin that starts HOLD_BINS in a row inside the band.
            let mut run = 0;
            for (i, &v) in s.iter().enumerate().take(end).skip(cp) {
                if v.is_nan() || (v - to).abs() > band {
                    run = 0;
                } else {
                    run += 1;
                    if run == HOLD_BINS {
                        return Some((i + 1 - HOLD_BINS - cp) as f64 * BIN_NS as f64 / 1e6);
                    }
                }
            }
            None
        };
        let half = cp + (end - cp) / 2;
        let tail: Vec<f64> = su[half..end]
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        let offset = if tail.is_empty() {
            f64::NAN
        } else {
            tail.iter().sum::<f64>() / tail.len() as f64 - to
        };
        let delta = (to - from).abs();
        let theory_ms = if delta > band {
            periods_ms(32.0 * (delta / band).log2())
        } else {
            0.0
        };
        let cut_off = ((end - cp) as f64) < theory_ms * 1e6 / BIN_NS as f64 + HOLD_BINS as f64;
        out.push(Change {
            at_ns: (g.t0 + cp as u64 * BIN_NS).saturating_sub(trace_t0),
            from,
            to,
            observed_ms: (end - cp) as f64 * BIN_NS as f64 / 1e6,
            util_converge_ms: if cut_off { None } else { converge(&su) },
            est_converge_ms: if cut_off { None } else { converge(&se) },
            util_settled_offset: offset,
            theory_ms,
            cut_off,
        });
    }
    out
}

fn dynamics_of(g: &Grid, inp: &TaskInput, window_ms: u64, trace_t0: u64) -> Dynamics {
    let (mut n, mut d, mut u, mut e) = (0u64, 0.0, 0.0, 0.0);
    for i in 0..g.run.len() {
        if !g.util[i].is_nan() {
            n += 1;
            d += g.run[i].min(1.0) as f64 * 1024.0;
            u += g.util[i] as f64;
            e += g.est[i] as f64;
        }
    }
    let nf = n.max(1) as f64;
    let (d, u, e) = (d / nf, u / nf, e / nf);
    Dynamics {
        pid: g.pid,
        source: inp.source,
        bins: n,
        demand_time_mean: d,
        util_time_mean: u,
        est_time_mean: e,
        held_time_mean: g.held_mean,
        util_time_bias_pct: crate::analyze::bias_pct(Some(u), Some(d)),
        bursts: bursts(g, inp, trace_t0),
        changes: changes(
            g,
            (window_ms.max(1) * 1_000_000 / BIN_NS) as usize,
            trace_t0,
        ),
    }
}

/// The grids of some tasks (for plots), built from one pass over the tables.
pub fn task_grids(t: &Tables, pids: &[u32]) -> HashMap<u32, Grid> {
    let m = index(t);
    pids.iter()
        .filter_map(|&p| Some((p, grid(p, &input(t, m.get(p)?))?)))
        .collect()
}

/// Dynamics of one task.
pub fn task_dynamics(t: &Tables, pid: u32, window_ms: u64) -> Option<Dynamics> {
    let m = index(t);
    let inp = input(t, m.get(pid)?);
    let g = grid(pid, &inp)?;
    Some(dynamics_of(&g, &inp, window_ms, t.span.0))
}

/// Dynamics of every task that ran and has estimates, by pid.
pub fn dynamics(t: &Tables, window_ms: u64) -> Vec<Dynamics> {
    let m = index(t);
    let mut pids: Vec<u32> = m.task.keys().copied().filter(|&p| p != 0).collect();
    pids.sort_unstable();
    pids.par_iter()
        .filter_map(|&pid| {
            let inp = input(t, m.get(pid).expect("an indexed task"));
            let g = grid(pid, &inp)?;
            Some(dynamics_of(&g, &inp, window_ms, t.span.0))
        })
        .collect()
}

/// The median of the values present (`None` when there are none).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Dynamics per class (`analyze --json`, `class_dynamics[]`): time-weighted
/// means weighted by each task's bins, medians over bursts and changes
/// (censored ones counted, not timed; each theory median is over the same
/// bursts or changes as the measured one).
#[derive(Clone, Debug, Serialize)]
pub struct ClassDynamics {
    pub class: &'static str,
    pub tasks: u64,
    pub demand_time_mean: Option<f64>,
    pub util_time_mean: Option<f64>,
    pub util_time_bias_pct: Option<f64>,
    pub bursts: u64,
    /// Bursts that ended before util_avg reached 80 % / 95 % of their demand.
    pub bursts_short_of_80: u64,
    pub bursts_short_of_95: u64,
    pub util_t80_ms: Option<f64>,
    pub util_t95_ms: Option<f64>,
    pub est_t80_ms: Option<f64>,
    pub est_t95_ms: Option<f64>,
    pub theory_t80_ms: Option<f64>,
    pub theory_t95_ms: Option<f64>,
    pub changes: u64,
    /// Changes whose segment was too short to tell ([`Change::cut_off`]).
    pub changes_cut_off: u64,
    /// Changes with room to converge that did not.
    pub changes_unconverged: u64,
    pub util_converge_ms: Option<f64>,
    pub est_converge_ms: Option<f64>,
    pub theory_converge_ms: Option<f64>,
}

/// Summarises `dyns` per class; `class_of` maps a pid to its class.
pub fn per_class(dyns: &[Dynamics], class_of: &HashMap<u32, &'static str>) -> Vec<ClassDynamics> {
    crate::analyze::CLASSES
        .into_iter()
        .map(|class| {
            let ds: Vec<&Dynamics> = dyns
                .iter()
                .filter(|d| class_of.get(&d.pid) == Some(&class))
                .collect();
            let bins: u64 = ds.iter().map(|d| d.bins).sum();
            let wmean = |f: fn(&Dynamics) -> f64| {
                (bins > 0)
                    .then(|| ds.iter().map(|d| f(d) * d.bins as f64).sum::<f64>() / bins as f64)
            };
            let (dm, um) = (wmean(|d| d.demand_time_mean), wmean(|d| d.util_time_mean));
            let bursts: Vec<&Burst> = ds.iter().flat_map(|d| &d.bursts).collect();
            let changes: Vec<&Change> = ds.iter().flat_map(|d| &d.changes).collect();
            let bm =
                |f: fn(&Burst) -> Option<f64>| median(bursts.iter().filter_map(|b| f(b)).collect());
            let cm = |f: fn(&Change) -> Option<f64>| {
                median(changes.iter().filter_map(|c| f(c)).collect())
            };
            ClassDynamics {
                class,
                tasks: ds.len() as u64,
                demand_time_mean: dm,
                util_time_mean: um,
                util_time_bias_pct: crate::analyze::bias_pct(um, dm),
                bursts: bursts.len() as u64,
                bursts_short_of_80: bursts.iter().filter(|b| b.util_t80_ms.is_none()).count()
                    as u64,
                bursts_short_of_95: bursts.iter().filter(|b| b.util_t95_ms.is_none()).count()
                    as u64,
                util_t80_ms: bm(|b| b.util_t80_ms),
                util_t95_ms: bm(|b| b.util_t95_ms),
                est_t80_ms: bm(|b| b.est_t80_ms),
                est_t95_ms: bm(|b| b.est_t95_ms),
                // Theory over the same bursts and changes as the times.
                theory_t80_ms: bm(|b| b.util_t80_ms.map(|_| b.theory_t80_ms)),
                theory_t95_ms: bm(|b| b.util_t95_ms.map(|_| b.theory_t95_ms)),
                changes: changes.len() as u64,
                changes_cut_off: changes.iter().filter(|c| c.cut_off).count() as u64,
                changes_unconverged: changes
                    .iter()
                    .filter(|c| !c.cut_off && c.util_converge_ms.is_none())
                    .count() as u64,
                util_converge_ms: cm(|c| c.util_converge_ms),
                est_converge_ms: cm(|c| c.est_converge_ms),
                theory_converge_ms: cm(|c| c.util_converge_ms.map(|_| c.theory_ms)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theory_matches_pelt_half_life() {
        // From 0 to 50 % of a level takes exactly one half-life: 32 periods.
        let t = theory_ramp_ms(0.0, 1024.0, 0.5);
        assert!((t - 32.0 * 1.048576).abs() < 1e-9, "{t}");
        // 80 %: 32·log2(5) periods; 95 %: 32·log2(20).
        assert!((theory_ramp_ms(0.0, 1024.0, 0.8) - 32.0 * 5f64.log2() * 1.048576).abs() < 1e-9);
        assert!((theory_ramp_ms(0.0, 1024.0, 0.95) - 32.0 * 20f64.log2() * 1.048576).abs() < 1e-9);
        assert_eq!(theory_ramp_ms(900.0, 1024.0, 0.8), 0.0);
    }

    /// A task idle, then running flat out: the carried-forward estimate
    /// follows PELT's curve, and the burst's ramp-up equals the theory to
    /// within a bin.
    #[test]
    fn burst_ramp_up_follows_theory() {
        let ms = 1_000_000u64;
        let inp = TaskInput {
            // A short run at 0, 500 ms idle, then 400 ms of running in 4 ms slices.
            slices: std::iter::once((0, ms, false))
                .chain((0..100).map(|k| (501 * ms + 4 * k * ms, 501 * ms + 4 * (k + 1) * ms, true)))
                .collect(),
            samples: vec![(ms, 0.0, Some(0.0))],
            source: "kernel",
        };
        let g = grid(1, &inp).unwrap();
        let b = bursts(&g, &inp, 0);
        assert_eq!(b.len(), 1, "{b:?}");
        let b = &b[0];
        assert!((b.demand - 1.0).abs() < 1e-9);
        assert!((b.len_ms - 400.0).abs() < 1e-9);
        let t80 = b.util_t80_ms.unwrap();
        let t95 = b.util_t95_ms.unwrap();
        assert!(
            (t80 - b.theory_t80_ms).abs() <= 1.0,
            "{t80} vs {}",
            b.theory_t80_ms
        );
        assert!(
            (t95 - b.theory_t95_ms).abs() <= 1.0,
            "{t95} vs {}",
            b.theory_t95_ms
        );
        // util_est never sampled above 0: the effective estimate is util_avg.
        assert_eq!(b.est_t80_ms, b.util_t80_ms);
    }

    /// A step of the running fraction from 10 % to 80 % at 1 s: one change
    /// point there, levels recovered, convergence near the theory.
    #[test]
    fn step_change_is_found_and_converges() {
        let ms = 1_000_000u64;
        let mut slices = vec![];
        let mut samples = vec![];
        for p in 0..125u64 {
            // 16 ms periods: 10 % for 1 s (62.5 periods), then 80 %.
            let start = p * 16 * ms;
            let duty = if start < 1000 * ms { 0.1 } else { 0.8 };
            let end = start + (16.0 * duty * ms as f64) as u64;
            slices.push((start, end, false));
        }
        samples.push((0, 102.0, None));
        let inp = TaskInput {
            slices,
            samples,
            source: "kernel",
        };
        let g = grid(1, &inp).unwrap();
        let cps = change_points(&g.run);
        assert_eq!(cps.len(), 1, "{cps:?}");
        assert!((cps[0] as i64 - 1000).abs() <= 16, "{cps:?}");
        let c = &changes(&g, 32, 0)[0];
        assert!(
            (c.from - 102.4).abs() < 3.0 && (c.to - 819.2).abs() < 3.0,
            "{c:?}"
        );
        let t = c.util_converge_ms.expect("converges");
        // Within a window (the smoothing) and a period of the theory.
        assert!((t - c.theory_ms).abs() <= 32.0, "{t} vs {}", c.theory_ms);
    }
}
