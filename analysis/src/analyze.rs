//! Per-task statistics: how each task used the CPU, what class of task it
//! is, and how the kernel's estimate compared with its measured demand.

use polars::prelude::*;
use serde::Serialize;

use crate::frames::frame;
use crate::tables::{OptU64, Tables};

/// One task's statistics (`schedrec analyze --json`, `tasks[]`).
#[derive(Clone, Debug, Serialize)]
pub struct TaskStats {
    pub pid: u32,
    pub comm: String,
    /// `cpu-bound`, `io-bound`, `periodic` or `bursty` (see [`classify`]).
    pub class: &'static str,
    pub runtime_ms: f64,
    /// Running time over the trace's span.
    pub runtime_share: f64,
    pub slices: u64,
    pub mean_run_us: f64,
    /// Run (slice) length percentiles, µs.
    pub run_p50_us: Option<f64>,
    pub run_p99_us: Option<f64>,
    /// Sleep length percentiles (block to wakeup), ms.
    pub sleep_p50_ms: Option<f64>,
    pub sleep_p99_ms: Option<f64>,
    /// Fraction of slices that ended with the task still runnable.
    pub preempted_fraction: f64,
    /// Fraction of slices that ended in uninterruptible sleep (I/O waits).
    pub uninterruptible_fraction: f64,
    pub wakeups: u64,
    /// Coefficient of variation of the intervals between wakeups.
    pub wakeup_interval_cv: Option<f64>,
    pub wakeup_latency_p50_us: Option<f64>,
    pub wakeup_latency_p99_us: Option<f64>,
    /// Mean IPC, cache miss rate and effective GHz over its slices (null
    /// without counters).
    pub ipc: Option<f64>,
    pub miss_rate: Option<f64>,
    pub ghz: Option<f64>,
    /// Means over the replay's judged samples where both are known: the
    /// kernel's util_avg as the trace shows it at switches and wakeups, and
    /// the measured utilisation over the replay's window at those instants.
    pub samples: u64,
    pub kernel_util_mean: Option<f64>,
    pub measured_util_mean: Option<f64>,
    /// (kernel − measured) / measured, in %.
    pub bias_pct: Option<f64>,
    /// The replay's chosen model (`analyze --model`; the kernel-exact PELT
    /// by default) at the same samples, and its bias against measured.
    pub model_util_mean: Option<f64>,
    pub model_bias_pct: Option<f64>,
    /// |kernel − measured|: mean and 95th/99th percentiles, util units.
    pub mae: Option<f64>,
    pub p95_abs_err: Option<f64>,
    pub p99_abs_err: Option<f64>,
}

/// (estimate − base) / base in %, where both are known and base > 0.
pub fn bias_pct(est: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (est, base) {
        (Some(e), Some(b)) if b > 0.0 => Some((e - b) / b * 100.0),
        _ => None,
    }
}

/// The classification rule, in order:
/// 1. `cpu-bound`: it blocks fewer than 10 times per second of its own
///    running time (it leaves the CPU only when preempted);
/// 2. `io-bound`: ≥ 30 % of its slices end in uninterruptible sleep;
/// 3. `periodic`: it wakes at regular intervals (coefficient of variation of
///    the intervals between wakeups ≤ 0.3, at least 10 wakeups);
/// 4. `bursty`: everything else that sleeps.
pub fn classify(
    blocks_per_run_s: f64,
    uninterruptible: f64,
    cv: Option<f64>,
    wakeups: u64,
) -> &'static str {
    if blocks_per_run_s < 10.0 {
        "cpu-bound"
    } else if uninterruptible >= 0.3 {
        "io-bound"
    } else if wakeups >= 10 && cv.is_some_and(|c| c <= 0.3) {
        "periodic"
    } else {
        "bursty"
    }
}

fn f64_col(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Float64)?
        .f64()?
        .iter()
        .collect())
}

fn u32_col(df: &DataFrame, name: &str) -> PolarsResult<Vec<u32>> {
    Ok(df
        .column(name)?
        .cast(&DataType::UInt32)?
        .u32()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

/// Slices that ended in a sleep, per second of running time.
fn blocks_per_run_s(slices: f64, preempted: f64, runtime_ns: f64) -> f64 {
    if runtime_ns <= 0.0 {
        return f64::INFINITY;
    }
    slices * (1.0 - preempted) / (runtime_ns / 1e9)
}

/// Statistics of every task that ran, busiest first.
pub fn tasks(t: &Tables) -> PolarsResult<Vec<TaskStats>> {
    let span = (t.span.1 - t.span.0).max(1) as f64;
    let q = |c: &str, p: f64| col(c).quantile(lit(p), QuantileMethod::Linear);

    // Only the columns read here (the `slices` table's frame carries its
    // labels as strings and every counter: twice the memory).
    let s = &t.slices;
    let ratio = |a: &OptU64, b: &dyn Fn(usize) -> Option<u64>| {
        Float64Chunked::from_iter_options(
            "".into(),
            (0..s.pid.len()).map(|i| Some(a.get(i)? as f64 / b(i)? as f64)),
        )
    };
    let ended = |state: &str| -> Vec<bool> {
        (0..s.pid.len())
            .map(|i| s.end_state.str(i) == state)
            .collect()
    };
    // Each table's frame is aggregated and dropped before the next is
    // built (built all at once and run as one plan, their inputs and
    // group-by state were alive together: the peak of the analysis).
    let slices = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), &s.pid),
        Column::new(
            "duration_ns".into(),
            (0..s.pid.len())
                .map(|i| s.duration_ns(i))
                .collect::<Vec<u64>>(),
        ),
        Column::new("preempted".into(), ended("preempted")),
        Column::new("uninterruptible".into(), ended("uninterruptible")),
    ])?
    .lazy()
    .group_by([col("pid")])
    .agg([
        col("duration_ns")
            .sum()
            .cast(DataType::Float64)
            .alias("runtime_ns"),
        len().alias("slices"),
        col("duration_ns").mean().alias("mean_run_ns"),
        q("duration_ns", 0.5).alias("run50"),
        q("duration_ns", 0.99).alias("run99"),
        col("preempted").cast(DataType::Float64).mean(),
        col("uninterruptible").cast(DataType::Float64).mean(),
    ])
    .collect()?;
    // The counter ratios in a frame of their own (three f64 columns: with
    // the rest, the largest frame of the analysis).
    let ratios = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), &s.pid),
        ratio(&s.instructions, &|i| s.cycles.get(i))
            .into_column()
            .with_name("ipc".into()),
        ratio(&s.cache_misses, &|i| s.cache_references.get(i))
            .into_column()
            .with_name("miss_rate".into()),
        ratio(&s.cycles, &|i| Some(s.duration_ns(i)))
            .into_column()
            .with_name("ghz".into()),
    ])?
    .lazy()
    .group_by([col("pid")])
    .agg([
        col("ipc").mean(),
        col("miss_rate").mean(),
        col("ghz").mean(),
    ])
    .collect()?;
    let slices = slices.lazy().join(
        ratios.lazy(),
        [col("pid")],
        [col("pid")],
        JoinArgs::new(JoinType::Left),
    );
    // The time since the task's previous wakeup, in one pass (the table is
    // in time order): sorting ~10 M wakeups by task for a window took
    // seconds.
    let w = &t.wakeups;
    let mut last_wakeup: rustc_hash::FxHashMap<u32, u64> = Default::default();
    let interval = Float64Chunked::from_iter_options(
        "interval".into(),
        (0..w.pid.len()).map(|i| {
            let prev = last_wakeup.insert(w.pid[i], w.ts[i]);
            prev.map(|p| w.ts[i] as f64 - p as f64)
        }),
    );
    drop(last_wakeup);
    let wakeups = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), &w.pid),
        interval.into_column(),
        crate::frames::u64s("latency_ns", &w.latency_ns),
        crate::frames::u64s("sleep_ns", &w.sleep_ns),
    ])?
    .lazy()
    .group_by([col("pid")])
    .agg([
        len().alias("wakeups"),
        (col("interval").std(1) / col("interval").mean()).alias("cv"),
        q("latency_ns", 0.5).alias("lat50"),
        q("latency_ns", 0.99).alias("lat99"),
        q("sleep_ns", 0.5).alias("sleep50"),
        q("sleep_ns", 0.99).alias("sleep99"),
    ])
    .collect()?
    .lazy();
    // The judged samples: not excluded, with both the kernel's and the
    // measured value. Counts and means in one pass, with exact integer sums
    // (the same numbers as polars' means of the values as f64: every partial
    // sum is an integer below 2^53); only the quantiles of the error go
    // through a frame, two 4-byte columns. Cast to f64 columns in a frame,
    // the means made the replay's step the peak of the analysis.
    let r = &t.replay;
    #[derive(Default)]
    struct Sums {
        n: u64,
        kernel: u64,
        measured: u64,
        model: u64,
        model_n: u64,
        abs_err: u64,
    }
    let mut sums: rustc_hash::FxHashMap<u32, Sums> = Default::default();
    // Room for every row: what is not filled is never touched.
    let (mut pids, mut abs_err) = (
        Vec::<u32>::with_capacity(r.len()),
        Vec::<u32>::with_capacity(r.len()),
    );
    for i in 0..r.len() {
        if r.excluded.get(i).is_some() {
            continue;
        }
        let (Some(k), Some(m)) = (r.kernel_util_avg.get(i), r.measured_util.get(i)) else {
            continue;
        };
        let e = k.abs_diff(m);
        let s = sums.entry(r.pid[i]).or_default();
        s.n += 1;
        s.kernel += k;
        s.measured += m;
        s.abs_err += e;
        if let Some(v) = r.model_util_avg.get(i) {
            s.model += v;
            s.model_n += 1;
        }
        pids.push(r.pid[i]);
        abs_err.push(e as u32);
    }
    let quantiles = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), pids),
        Column::new("abs_err".into(), abs_err),
    ])?
    .lazy()
    .group_by([col("pid")])
    .agg([
        q("abs_err", 0.95).alias("p95"),
        q("abs_err", 0.99).alias("p99"),
    ])
    .collect()?;
    let mut sums: Vec<(u32, Sums)> = sums.into_iter().collect();
    sums.sort_unstable_by_key(|s| s.0);
    // A per-task mean from its (sum, count); null without samples.
    let means = |name: &str, of: &dyn Fn(&Sums) -> (u64, u64)| {
        Float64Chunked::from_iter_options(
            name.into(),
            sums.iter().map(|s| {
                let (sum, n) = of(&s.1);
                (n > 0).then(|| sum as f64 / n as f64)
            }),
        )
        .into_column()
    };
    let replay = DataFrame::new_infer_height(vec![
        Column::new("pid".into(), sums.iter().map(|s| s.0).collect::<Vec<u32>>()),
        Column::new(
            "samples".into(),
            sums.iter()
                .map(|s| s.1.n as IdxSize)
                .collect::<Vec<IdxSize>>(),
        ),
        means("kernel_mean", &|s| (s.kernel, s.n)),
        means("measured_mean", &|s| (s.measured, s.n)),
        means("model_mean", &|s| (s.model, s.model_n)),
        means("mae", &|s| (s.abs_err, s.n)),
    ])?
    .lazy()
    .join(
        quantiles.lazy(),
        [col("pid")],
        [col("pid")],
        JoinArgs::new(JoinType::Left),
    );
    let names = frame(t, "tasks")?
        .lazy()
        .group_by([col("pid")])
        .agg([col("comm").last().alias("comm")]);
    let df = slices
        .join(
            wakeups,
            [col("pid")],
            [col("pid")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            replay,
            [col("pid")],
            [col("pid")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            names,
            [col("pid")],
            [col("pid")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(
            ["runtime_ns", "pid"],
            SortMultipleOptions::default().with_order_descending_multi([true, false]),
        )
        .collect()?;

    let pid = u32_col(&df, "pid")?;
    let comm: Vec<String> = df
        .column("comm")?
        .str()?
        .iter()
        .map(|c| c.unwrap_or("").to_string())
        .collect();
    let g = |n: &str| f64_col(&df, n);
    let (runtime, nslices, mean_run) = (g("runtime_ns")?, g("slices")?, g("mean_run_ns")?);
    let (pre, unint, nwake, cv) = (
        g("preempted")?,
        g("uninterruptible")?,
        g("wakeups")?,
        g("cv")?,
    );
    let (l50, l99, ipc, miss, ghz) = (
        g("lat50")?,
        g("lat99")?,
        g("ipc")?,
        g("miss_rate")?,
        g("ghz")?,
    );
    let model_mean = g("model_mean")?;
    let (run50, run99, sleep50, sleep99) = (g("run50")?, g("run99")?, g("sleep50")?, g("sleep99")?);
    let (samples, km, mm, mae, p95, p99) = (
        g("samples")?,
        g("kernel_mean")?,
        g("measured_mean")?,
        g("mae")?,
        g("p95")?,
        g("p99")?,
    );
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    Ok((0..df.height())
        .map(|i| {
            let wakeups = nwake[i].unwrap_or(0.0) as u64;
            let (p, u) = (pre[i].unwrap_or(0.0), unint[i].unwrap_or(0.0));
            let bias = bias_pct(km[i], mm[i]);
            TaskStats {
                pid: pid[i],
                comm: comm[i].clone(),
                class: classify(
                    blocks_per_run_s(nslices[i].unwrap_or(0.0), p, runtime[i].unwrap_or(0.0)),
                    u,
                    finite(cv[i]),
                    wakeups,
                ),
                runtime_ms: runtime[i].unwrap_or(0.0) / 1e6,
                runtime_share: runtime[i].unwrap_or(0.0) / span,
                slices: nslices[i].unwrap_or(0.0) as u64,
                mean_run_us: mean_run[i].unwrap_or(0.0) / 1e3,
                run_p50_us: run50[i].map(|v| v / 1e3),
                run_p99_us: run99[i].map(|v| v / 1e3),
                sleep_p50_ms: sleep50[i].map(|v| v / 1e6),
                sleep_p99_ms: sleep99[i].map(|v| v / 1e6),
                preempted_fraction: p,
                uninterruptible_fraction: u,
                wakeups,
                wakeup_interval_cv: finite(cv[i]),
                wakeup_latency_p50_us: l50[i].map(|v| v / 1e3),
                wakeup_latency_p99_us: l99[i].map(|v| v / 1e3),
                ipc: finite(ipc[i]),
                miss_rate: finite(miss[i]),
                ghz: finite(ghz[i]),
                samples: samples[i].unwrap_or(0.0) as u64,
                kernel_util_mean: km[i],
                measured_util_mean: mm[i],
                bias_pct: bias,
                model_util_mean: model_mean[i],
                model_bias_pct: bias_pct(model_mean[i], mm[i]),
                mae: mae[i],
                p95_abs_err: p95[i],
                p99_abs_err: p99[i],
            }
        })
        .collect())
}

/// Per class: tasks, samples, and sample-weighted means of the kernel's and
/// the measured utilisation, with the bias between them.
#[derive(Clone, Debug, Serialize)]
pub struct ClassStats {
    pub class: &'static str,
    pub tasks: u64,
    pub samples: u64,
    pub kernel_util_mean: Option<f64>,
    pub measured_util_mean: Option<f64>,
    pub bias_pct: Option<f64>,
    pub model_util_mean: Option<f64>,
    pub model_bias_pct: Option<f64>,
}

/// The classes of [`classify`], in the order tables list them.
pub const CLASSES: [&str; 4] = ["cpu-bound", "io-bound", "periodic", "bursty"];

pub fn classes(tasks: &[TaskStats]) -> Vec<ClassStats> {
    CLASSES
        .into_iter()
        .map(|class| {
            let ts: Vec<&TaskStats> = tasks.iter().filter(|t| t.class == class).collect();
            let samples: u64 = ts.iter().map(|t| t.samples).sum();
            let wmean = |f: fn(&TaskStats) -> Option<f64>| -> Option<f64> {
                let (mut s, mut n) = (0.0, 0u64);
                for t in &ts {
                    if let Some(v) = f(t) {
                        s += v * t.samples as f64;
                        n += t.samples;
                    }
                }
                (n > 0).then(|| s / n as f64)
            };
            let k = wmean(|t| t.kernel_util_mean);
            let m = wmean(|t| t.measured_util_mean);
            let md = wmean(|t| t.model_util_mean);
            ClassStats {
                class,
                tasks: ts.len() as u64,
                samples,
                kernel_util_mean: k,
                measured_util_mean: m,
                bias_pct: bias_pct(k, m),
                model_util_mean: md,
                model_bias_pct: bias_pct(md, m),
            }
        })
        .collect()
}

/// Per class: Pearson correlation of the estimation error (kernel util_avg −
/// measured utilisation, at each judged switch-out) with the slice that just
/// ended's IPC, cache miss rate and effective frequency (GHz). `None` where
/// fewer than 3 slices have the counter (no PMU, as on a VM) or it does not
/// vary.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorCorrelation {
    pub class: &'static str,
    /// Switch-outs with both an error and at least one counter.
    pub samples: u64,
    pub ipc: Option<f64>,
    pub miss_rate: Option<f64>,
    pub ghz: Option<f64>,
}

/// Pearson's r over the pairs present (`None`: fewer than 3, or no variance).
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    pearson_of(|| pairs.iter().copied())
}

/// [`pearson`] of the pairs `pairs()` yields (twice, the same each time):
/// the means first, then the co-moments, with the pairs not kept.
fn pearson_of<I: Iterator<Item = (f64, f64)>>(pairs: impl Fn() -> I) -> Option<f64> {
    let len = pairs().count();
    let n = len as f64;
    if len < 3 {
        return None;
    }
    let (mx, my) = (
        pairs().map(|p| p.0).sum::<f64>() / n,
        pairs().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs() {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

pub fn error_correlations(t: &Tables, tasks: &[TaskStats]) -> Vec<ErrorCorrelation> {
    use std::collections::HashMap;
    let class_of: rustc_hash::FxHashMap<u32, &'static str> =
        tasks.iter().map(|t| (t.pid, t.class)).collect();
    let s = &t.slices;
    // The slice a switch-out row ends: the last one of that task ending at
    // that time. Slices are stored as their switch-outs were read, by end
    // time; replay rows are in time order too, so one cursor walks both (a
    // hash map of every slice took seconds and ~30 bytes a slice at 10 M).
    let n = s.end.len();
    let mut pos = 0usize;
    let mut slice_at = |pid: u32, ts: u64| -> Option<usize> {
        if pos > 0 && s.end[pos - 1] >= ts {
            pos = s.end.partition_point(|&e| e < ts);
        }
        while pos < n && s.end[pos] < ts {
            pos += 1;
        }
        (pos..n)
            .take_while(|&j| s.end[j] == ts)
            .filter(|&j| s.pid[j] == pid)
            .last()
    };
    let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    // Per class: the (replay row, slice) pairs judged, as indices (two
    // f64 pairs a metric took ~480 MB at 10 M switches); the error and the
    // metrics are read again from the tables for each pass.
    let mut acc: HashMap<&str, Vec<(u32, u32)>> = HashMap::new();
    let r = &t.replay;
    for i in 0..r.ts.len() {
        if r.event.str(i) != "switch_out" || r.excluded.get(i).is_some() {
            continue;
        }
        if r.kernel_util_avg.get(i).is_none() || r.measured_util.get(i).is_none() {
            continue;
        }
        let Some(&class) = class_of.get(&r.pid[i]) else {
            continue;
        };
        let Some(j) = slice_at(r.pid[i], r.ts[i]) else {
            continue;
        };
        acc.entry(class)
            .or_default()
            .push((crate::tables::row(i), crate::tables::row(j)));
    }
    let err = |i: u32| {
        let i = i as usize;
        r.kernel_util_avg.get(i).unwrap_or(0) as f64 - r.measured_util.get(i).unwrap_or(0) as f64
    };
    let metric = |k: usize, j: u32| {
        let j = j as usize;
        match k {
            0 => ratio(s.instructions.get(j), s.cycles.get(j)),
            1 => ratio(s.cache_misses.get(j), s.cache_references.get(j)),
            _ => ratio(s.cycles.get(j), Some(s.duration_ns(j))),
        }
    };
    CLASSES
        .into_iter()
        .map(|class| {
            let pairs = acc.get(class).map(Vec::as_slice).unwrap_or_default();
            let r = |k: usize| {
                pearson_of(|| {
                    pairs.iter().filter_map(move |&(i, j)| {
                        metric(k, j).filter(|x| x.is_finite()).map(|x| (err(i), x))
                    })
                })
            };
            ErrorCorrelation {
                class,
                samples: pairs
                    .iter()
                    .filter(|&&(_, j)| (0..3).any(|k| metric(k, j).is_some()))
                    .count() as u64,
                ipc: r(0),
                miss_rate: r(1),
                ghz: r(2),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::pearson;

    #[test]
    fn pearson_is_the_sample_correlation() {
        // Means 2.5 and 2.5; co-moment 4, moments 5 and 5: r = 0.8.
        let r = pearson(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)]);
        assert_eq!(r, Some(0.8));
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]), Some(1.0));
        assert_eq!(pearson(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]), Some(-1.0));
        // Too few pairs, or a constant side: undefined, not 0.
        assert_eq!(pearson(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(pearson(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)]), None);
    }
}
