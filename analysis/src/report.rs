//! `schedrec report`: one self-contained HTML page (inline SVG and CSS, no
//! scripts, nothing fetched) with the trace's summary, the replay's
//! fidelity, per-class and per-task statistics, and plots.

use std::fmt::Write as _;

use crate::analyze::{ClassStats, ErrorCorrelation, TaskStats};
use crate::dynamics::{
    smooth, task_grids, ClassDynamics, Dynamics, Grid, BAND_MIN, BAND_REL, BIN_NS, PERIOD_NS,
};
use crate::plot::{self, Series, Span};
use crate::tables::Tables;

/// What the report shows besides the tables.
pub struct Context<'a> {
    pub title: &'a str,
    /// Lines of the trace summary (`schedrec info`).
    pub info: &'a [String],
    /// Lines of the replay's fidelity summary.
    pub fidelity: &'a [String],
    pub classes: &'a [ClassStats],
    pub tasks: &'a [TaskStats],
    pub class_dynamics: &'a [ClassDynamics],
    pub correlations: &'a [ErrorCorrelation],
    /// Dynamics of the tasks in `tasks`.
    pub dynamics: &'a [Dynamics],
    pub window_ms: u64,
}

/// Demand (util units) below which a class is not summarised in words.
const MIN_DEMAND: f64 = 10.24;

/// The charts are [`plot`]'s; line charts are this tall (px).
const CHART_HEIGHT: u32 = 240;

/// A per-slice counter ratio over time for the busiest tasks (`None`
/// when no slice of theirs has it): IPC or effective GHz.
fn counter_chart(t: &Tables, top: &[(u32, String)], ghz: bool) -> Option<String> {
    let s = &t.slices;
    let span_ms = (t.span.1 - t.span.0) as f64 / 1e6;
    let mut series: Vec<Series> = vec![];
    let mut ymax = 0f64;
    for (k, (pid, comm)) in top.iter().enumerate() {
        let idx: Vec<usize> = (0..s.pid.len()).filter(|&i| s.pid[i] == *pid).collect();
        let pts = points(&s.start, &idx, t.span.0, |i| {
            if ghz {
                s.cycles
                    .get(i)
                    .map(|c| c as f64 / s.duration_ns(i).max(1) as f64)
            } else {
                match (s.instructions.get(i), s.cycles.get(i)) {
                    (Some(n), Some(c)) if c > 0 => Some(n as f64 / c as f64),
                    _ => None,
                }
            }
        });
        if pts.is_empty() {
            continue;
        }
        ymax = pts.iter().map(|p| p.1).fold(ymax, f64::max);
        series.push((comm.clone(), COLORS[k % COLORS.len()], false, pts));
    }
    if series.is_empty() {
        return None;
    }
    Some(plot::line_chart(
        &series,
        (0.0, span_ms.max(1.0)),
        (0.0, (ymax * 1.1).max(0.1)),
        "ms",
        &[],
        CHART_HEIGHT,
    ))
}

/// util_avg after each burst of the task with the most bursts, as a
/// fraction of the burst's measured demand, against PELT's curve from 0.
fn ramp_up_chart(t: &Tables, d: &Dynamics, g: &Grid) -> String {
    let horizon = 300.0;
    let mut series: Vec<Series> = vec![];
    for (k, b) in d.bursts.iter().take(12).enumerate() {
        let start = t.span.0 + b.start_ns;
        let level = 1024.0 * b.demand;
        let b0 = ((start - g.t0) / BIN_NS) as usize;
        let n = (b.len_ms.min(horizon) as usize).min(g.util.len().saturating_sub(b0));
        let pts = (0..n)
            .map(|i| {
                let ms = ((g.t0 + (b0 + i + 1) as u64 * BIN_NS) - start) as f64 / 1e6;
                (ms, g.util[b0 + i] as f64 / level * 100.0)
            })
            .collect();
        let name = if k == 0 {
            "util_avg, each burst".to_string()
        } else {
            String::new()
        };
        series.push((name, COLORS[0], false, pts));
    }
    let theory = (0..=horizon as usize)
        .map(|ms| {
            (
                ms as f64,
                (1.0 - 0.5f64.powf(ms as f64 * 1e6 / PERIOD_NS / 32.0)) * 100.0,
            )
        })
        .collect();
    series.push(("PELT from 0".into(), COLORS[1], true, theory));
    plot::line_chart(
        &series,
        (0.0, horizon),
        (0.0, 120.0),
        "ms",
        &[(80.0, "80 %".into()), (95.0, "95 %".into())],
        CHART_HEIGHT,
    )
}

/// Around one demand change: measured running fraction and util_avg (both
/// smoothed over the window), the new level and its band.
fn change_chart(t: &Tables, d: &Dynamics, g: &Grid, k: usize, window_ms: u64) -> String {
    let Some(c) = d.changes.get(k) else {
        return String::new();
    };
    let w = (window_ms.max(1) * 1_000_000 / BIN_NS) as usize;
    let su = smooth(&g.util, w);
    let se = smooth(&g.est, w);
    let run: Vec<f32> = g.run.iter().map(|r| r.min(1.0) * 1024.0).collect();
    let sr = smooth(&run, w);
    let cp = ((t.span.0 + c.at_ns - g.t0) / BIN_NS) as i64;
    let (before, after) = (200i64, 600i64);
    let pts = |v: &[f64]| -> Vec<(f64, f64)> {
        (cp - before..cp + after)
            .filter(|&i| i >= 0 && (i as usize) < v.len())
            .map(|i| ((i - cp) as f64, v[i as usize]))
            .collect()
    };
    let band = (BAND_REL * c.to).max(BAND_MIN);
    plot::line_chart(
        &[
            ("measured".into(), COLORS[2], false, pts(&sr)),
            ("util_avg".into(), COLORS[0], false, pts(&su)),
            ("max(util_avg, util_est)".into(), COLORS[3], true, pts(&se)),
        ],
        (-(before as f64), after as f64),
        (0.0, 1024.0),
        "ms",
        &[
            (c.to + band, format!("new level {:.0} ± {band:.0}", c.to)),
            (c.to - band, String::new()),
        ],
        CHART_HEIGHT,
    )
}

/// The colour of tasks not in a chart's legend.
const OTHERS: &str = "#bbbbbb";

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.d$}"))
}

/// A line chart of util values over time for one task: the kernel's
/// trace-visible util_avg, the kernel-exact model and the measured
/// utilisation. Points are thinned to at most ~1500 per series.
fn util_chart(t: &Tables, pid: u32, t0: u64, t1: u64) -> String {
    let r = &t.replay;
    let idx: Vec<usize> = (0..r.ts.len()).filter(|&i| r.pid[i] == pid).collect();
    let series = [
        ("kernel util_avg", COLORS[0], false, &r.kernel_util_avg),
        ("kernel-exact model", COLORS[3], true, &r.exact_util_avg),
        ("measured", COLORS[2], false, &r.measured_util),
    ]
    .map(|(name, color, dashed, values)| -> Series {
        let pts = points(&r.ts, &idx, t0, |i| values.get(i).map(|v| v as f64));
        (name.to_string(), color, dashed, pts)
    });
    plot::line_chart(
        &series,
        (0.0, (t1.saturating_sub(t0)).max(1) as f64 / 1e6),
        (0.0, 1024.0),
        "ms",
        &[],
        CHART_HEIGHT,
    )
}

/// Points (ms since `t0`, value) of the rows `idx` of a time series, at
/// most ~1500 of them (a chart shows no more).
fn points(
    ts: &[u64],
    idx: &[usize],
    t0: u64,
    value: impl Fn(usize) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let step = (idx.len() / 1500).max(1);
    idx.iter()
        .step_by(step)
        .filter_map(|&i| value(i).map(|v| (ts[i].saturating_sub(t0) as f64 / 1e6, v)))
        .collect()
}

/// A CPU's root run-queue util_avg: the kernel's, and the sum of the CPU's
/// tasks as the replay rebuilt it.
fn root_chart(t: &Tables, cpu: u32) -> String {
    let r = &t.root;
    let idx: Vec<usize> = (0..r.ts.len()).filter(|&i| r.cpu[i] == cpu).collect();
    let t0 = t.span.0;
    let series = [
        ("kernel root util_avg", COLORS[0], false, &r.kernel_util_avg),
        (
            "sum of its tasks (replay)",
            COLORS[3],
            true,
            &r.tasks_util_avg,
        ),
    ]
    .map(|(name, color, dashed, values)| -> Series {
        let pts = points(&r.ts, &idx, t0, |i| Some(values[i] as f64));
        (name.to_string(), color, dashed, pts)
    });
    let top = idx
        .iter()
        .map(|&i| r.kernel_util_avg[i].max(r.tasks_util_avg[i]))
        .max()
        .unwrap_or(0)
        .max(1024);
    plot::line_chart(
        &series,
        (0.0, (t.span.1.saturating_sub(t0)).max(1) as f64 / 1e6),
        (0.0, top as f64),
        "ms",
        &[],
        CHART_HEIGHT,
    )
}

/// Which task ran on each CPU over the first `window` ns: one row per CPU,
/// the busiest tasks in colour, the rest grey.
fn cpu_timeline(t: &Tables, top: &[u32], nr_cpus: u32, window: u64) -> String {
    let t0 = t.span.0;
    let t1 = (t0 + window).min(t.span.1).max(t0 + 1);
    let ms = |ts: u64| (ts.clamp(t0, t1) - t0) as f64 / 1e6;
    let s = &t.slices;
    let spans: Vec<Span> = (0..s.pid.len())
        .filter(|&i| s.end[i] >= t0 && s.start[i] <= t1 && s.cpu[i] < nr_cpus)
        .map(|i| {
            let color = top
                .iter()
                .position(|&p| p == s.pid[i])
                .map_or(OTHERS, |k| COLORS[k % COLORS.len()]);
            (s.cpu[i] as usize, ms(s.start[i]), ms(s.end[i]), color)
        })
        .collect();
    let rows: Vec<String> = (0..nr_cpus).map(|c| format!("CPU {c}")).collect();
    plot::timeline(&rows, &spans, (0.0, ms(t1)), "ms")
}

/// Histogram of kernel − measured per class, in steps of 32 util units:
/// the percentage of each class's samples per step.
fn error_histogram(
    t: &Tables,
    classes_of: &std::collections::HashMap<u32, &'static str>,
) -> String {
    let classes = crate::analyze::CLASSES;
    let bins = 33usize; // -512..=512 in steps of 32
    let mut counts = vec![vec![0u64; bins]; classes.len()];
    let r = &t.replay;
    for i in 0..r.ts.len() {
        let (Some(k), Some(m), None) = (
            r.kernel_util_avg.get(i),
            r.measured_util.get(i),
            r.excluded.get(i),
        ) else {
            continue;
        };
        let Some(c) = classes_of
            .get(&r.pid[i])
            .and_then(|c| classes.iter().position(|x| x == c))
        else {
            continue;
        };
        let e = (k as i64 - m as i64).clamp(-512, 512);
        counts[c][((e + 512) / 32) as usize] += 1;
    }
    let mut series: Vec<Series> = vec![];
    let mut ymax = 0f64;
    for (c, name) in classes.iter().enumerate() {
        let total: u64 = counts[c].iter().sum();
        if total == 0 {
            continue;
        }
        let pts: Vec<(f64, f64)> = counts[c]
            .iter()
            .enumerate()
            .map(|(b, &n)| (b as f64 * 32.0 - 512.0, n as f64 / total as f64 * 100.0))
            .collect();
        ymax = pts.iter().map(|p| p.1).fold(ymax, f64::max);
        series.push((format!("{name} ({total})"), COLORS[c], false, pts));
    }
    plot::line_chart(
        &series,
        (-512.0, 512.0),
        (0.0, (ymax * 1.1).max(1.0)),
        "",
        &[],
        200,
    )
}

/// The whole page.
pub fn html(t: &Tables, cx: &Context, nr_cpus: u32) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}}
h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}}
table{{border-collapse:collapse;font-size:13px}} td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}} td{{white-space:nowrap}}
td:first-child,th:first-child{{text-align:left}} pre{{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}}
.note{{color:#555;font-size:13px}}</style></head><body>"#,
        esc(cx.title)
    );
    let _ = write!(o, "<h1>{}</h1>", esc(cx.title));
    let _ = write!(o, "<h2>Trace</h2><pre>{}</pre>", esc(&cx.info.join("\n")));
    let _ = write!(
        o,
        "<h2>Replay fidelity</h2><p class=note>The kernel-exact PELT model against the kernel's own values at every sample the trace carries.</p><pre>{}</pre>",
        esc(&cx.fidelity.join("\n"))
    );

    // Findings: the classic questions, answered from this trace.
    let _ = write!(o, "<h2>Findings</h2><ul>");
    // Classes whose demand is below 1 % of a CPU make percentages of noise.
    let negligible = |d: Option<f64>| d.is_none_or(|d| d < MIN_DEMAND);
    for c in cx.class_dynamics {
        if negligible(c.demand_time_mean) {
            continue;
        }
        if let (Some(u), Some(d), Some(b)) =
            (c.util_time_mean, c.demand_time_mean, c.util_time_bias_pct)
        {
            let _ = write!(
                o,
                "<li><b>{}</b> ({} tasks), time-weighted: util_avg {:.0} against a measured demand of {:.0} — {} by {:.1} %.</li>",
                c.class,
                c.tasks,
                u,
                d,
                if b >= 0.0 { "over-estimated" } else { "under-estimated" },
                b.abs()
            );
        }
        if c.bursts > 0 {
            let _ = write!(
                o,
                "<li><b>{}</b>: after a burst starts util_avg needs {} ms to reach 80 % of the burst's demand and {} ms for 95 % (PELT theory {} / {} ms; {} of {} bursts ended first); with util_est, {} ms to 80 %.</li>",
                c.class,
                opt(c.util_t80_ms, 0),
                opt(c.util_t95_ms, 0),
                opt(c.theory_t80_ms, 0),
                opt(c.theory_t95_ms, 0),
                c.bursts_short_of_80,
                c.bursts,
                opt(c.est_t80_ms, 0)
            );
        }
        if c.changes > 0 {
            let _ = write!(
                o,
                "<li><b>{}</b>: after a change of demand util_avg is within ±5 % (at least ±10 units) of the new level for 100 ms after {} ms (median of {} changes; {} never settled, {} too short to tell; PELT theory {} ms); max(util_avg, util_est) after {} ms.</li>",
                c.class,
                opt(c.util_converge_ms, 0),
                c.changes,
                c.changes_unconverged,
                c.changes_cut_off,
                opt(c.theory_converge_ms, 0),
                opt(c.est_converge_ms, 0)
            );
        }
    }
    for c in cx.classes {
        if negligible(c.measured_util_mean) {
            continue;
        }
        if let (Some(k), Some(m), Some(b)) = (c.kernel_util_mean, c.measured_util_mean, c.bias_pct)
        {
            let _ = write!(
                o,
                "<li><b>{}</b> tasks ({}, {} samples): the kernel's util_avg averages {:.0} where they measurably used {:.0} — {} by {:.1} %.</li>",
                c.class,
                c.tasks,
                c.samples,
                k,
                m,
                if b >= 0.0 { "over-estimated" } else { "under-estimated" },
                b.abs()
            );
        }
    }
    let _ = write!(
        o,
        "</ul><p class=note>Classes using less than 1 % of a CPU (10 util units) are left out of these lines (see the tables). Time-weighted: means over 1 ms bins of the task's life, the kernel's util_avg carried between its samples by PELT's own decay (<code>analysis/src/dynamics.rs</code>). Trace-visible (the last lines): means over the replay's judged samples, the kernel's value at switches and wakeups against the measured utilisation over the last {} ms at the same instants; samples cluster where a task switches, so they weigh its busy moments more than the time-average does.</p>",
        cx.window_ms
    );

    let _ = write!(o, "<h2>Classes</h2><table><tr><th>class</th><th>tasks</th><th>samples</th><th>kernel util</th><th>measured</th><th>bias</th></tr>");
    for c in cx.classes {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.class,
            c.tasks,
            c.samples,
            opt(c.kernel_util_mean, 1),
            opt(c.measured_util_mean, 1),
            c.bias_pct.map_or("–".into(), |b| format!("{b:+.1} %"))
        );
    }
    let _ = write!(o, "</table>");

    let _ = write!(o, "<h2>Dynamics per class</h2><table><tr><th>class</th><th>tasks</th><th>demand</th><th>util_avg</th><th>bias</th><th>bursts</th><th>t80 ms (theory)</th><th>t95 ms (theory)</th><th>changes</th><th>converge ms (theory)</th><th>with util_est</th></tr>");
    for c in cx.class_dynamics {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
            c.class,
            c.tasks,
            opt(c.demand_time_mean, 1),
            opt(c.util_time_mean, 1),
            c.util_time_bias_pct.map_or("–".into(), |b| format!("{b:+.1} %")),
            c.bursts,
            opt(c.util_t80_ms, 0),
            opt(c.theory_t80_ms, 0),
            opt(c.util_t95_ms, 0),
            opt(c.theory_t95_ms, 0),
            c.changes,
            opt(c.util_converge_ms, 0),
            opt(c.theory_converge_ms, 0),
            opt(c.est_converge_ms, 0)
        );
    }
    let _ = write!(o, "</table>");
    if cx.correlations.iter().all(|c| c.samples == 0) {
        let _ = write!(o, "<p class=note>Error vs counters: this trace has no hardware counters (no PMU, as in a VM, or recorded with --no-counters).</p>");
    } else {
        let _ = write!(o, "<h2>Error vs counters</h2><p class=note>Pearson correlation of kernel util_avg − measured utilisation at each switch-out with the ending slice's IPC, cache miss rate and effective GHz.</p><table><tr><th>class</th><th>slices</th><th>IPC</th><th>miss rate</th><th>GHz</th></tr>");
        for c in cx.correlations {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.class,
                c.samples,
                opt(c.ipc, 2),
                opt(c.miss_rate, 2),
                opt(c.ghz, 2)
            );
        }
        let _ = write!(o, "</table>");
    }

    let _ = write!(o, "<h2>Busiest tasks</h2><table><tr><th>task</th><th>class</th><th>ran ms</th><th>share</th><th>run µs p50/p99</th><th>sleep ms p50/p99</th><th>wakeup p99 µs</th><th>IPC</th><th>GHz</th><th>kernel</th><th>measured</th><th>bias</th><th>MAE</th><th>p99 err</th></tr>");
    for t in cx.tasks {
        let _ = write!(
            o,
            "<tr><td>{} ({})</td><td>{}</td><td>{:.1}</td><td>{:.1} %</td><td>{}/{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.comm),
            t.pid,
            t.class,
            t.runtime_ms,
            t.runtime_share * 100.0,
            opt(t.run_p50_us, 0),
            opt(t.run_p99_us, 0),
            opt(t.sleep_p50_ms, 1),
            opt(t.sleep_p99_ms, 1),
            opt(t.wakeup_latency_p99_us, 0),
            opt(t.ipc, 2),
            opt(t.ghz, 2),
            opt(t.kernel_util_mean, 0),
            opt(t.measured_util_mean, 0),
            t.bias_pct.map_or("–".into(), |b| format!("{b:+.0} %")),
            opt(t.mae, 1),
            opt(t.p99_abs_err, 0)
        );
    }
    let _ = write!(o, "</table><p class=note>IPC and GHz need hardware counters; a host without a PMU (a VM) has none.</p>");

    let named: Vec<(u32, String)> = cx
        .tasks
        .iter()
        .take(4)
        .map(|t| (t.pid, format!("{} ({})", t.comm, t.pid)))
        .collect();
    if let Some(c) = counter_chart(t, &named, false) {
        let _ = write!(o, "<h2>IPC per slice</h2><p class=note>Instructions per cycle of each slice of the four busiest tasks (scaled for multiplexing).</p>");
        o.push_str(&c);
        if let Some(c) = counter_chart(t, &named, true) {
            let _ = write!(o, "<h2>Effective frequency per slice</h2><p class=note>Cycles per ns of running time (GHz).</p>");
            o.push_str(&c);
        }
    }

    let top: Vec<u32> = cx.tasks.iter().take(8).map(|t| t.pid).collect();
    let _ = write!(o, "<h2>CPU timeline (first 200 ms)</h2>");
    let mut legend = String::new();
    for (k, t) in cx.tasks.iter().take(8).enumerate() {
        let _ = write!(
            legend,
            r#"<span style="color:{}">■</span> {} &nbsp; "#,
            COLORS[k % COLORS.len()],
            esc(&t.comm)
        );
    }
    let _ = write!(
        o,
        "<p class=note>{legend}<span style=\"color:#bbb\">■</span> others</p>"
    );
    o.push_str(&cpu_timeline(t, &top, nr_cpus, 200_000_000));

    let _ = write!(o, "<h2>Utilisation of the busiest tasks</h2>");
    for task in cx.tasks.iter().take(4) {
        let _ = write!(
            o,
            "<h3>{} ({}, {})</h3>",
            esc(&task.comm),
            task.pid,
            task.class
        );
        o.push_str(&util_chart(t, task.pid, t.span.0, t.span.1));
    }
    if !t.root.ts.is_empty() {
        let _ = write!(
            o,
            "<h2>CPU utilisation as the scheduler sees it</h2><p class=note>Each CPU's root run-queue util_avg (what schedutil and load balancing read, with util_est): the kernel's at each of its judged samples, against the sum of the CPU's tasks as the replay rebuilt them (see the README's \"Root run-queues\").</p>"
        );
        let mut cpus: Vec<u32> = t.root.cpu.clone();
        cpus.sort_unstable();
        cpus.dedup();
        for cpu in cpus {
            let _ = write!(o, "<h3>CPU {cpu}</h3>");
            o.push_str(&root_chart(t, cpu));
        }
    }
    let classes_of: std::collections::HashMap<u32, &'static str> =
        cx.tasks.iter().map(|t| (t.pid, t.class)).collect();
    let _ = write!(
        o,
        "<h2>Estimation error per class</h2><p class=note>Distribution of kernel util_avg − measured utilisation over the judged samples of the tasks above (% of each class's samples, bins of 32 util units).</p>"
    );
    o.push_str(&error_histogram(t, &classes_of));

    let burst_task = cx
        .dynamics
        .iter()
        .filter(|d| !d.bursts.is_empty())
        .max_by_key(|d| d.bursts.len());
    let change_task = cx
        .dynamics
        .iter()
        .filter(|d| !d.changes.is_empty())
        .max_by_key(|d| d.changes.len());
    let pids: Vec<u32> = burst_task
        .iter()
        .chain(change_task.iter())
        .map(|d| d.pid)
        .collect();
    let grids = task_grids(t, &pids);
    if let Some((d, g)) = burst_task.and_then(|d| Some((d, grids.get(&d.pid)?))) {
        let _ = write!(
            o,
            "<h2>Ramp-up after bursts</h2><p class=note>Task {}: util_avg after its first {} of {} bursts, in % of each burst's measured demand, against PELT's curve from 0 (dashed).</p>",
            d.pid,
            d.bursts.len().min(12),
            d.bursts.len()
        );
        o.push_str(&ramp_up_chart(t, d, g));
    }
    if let Some((d, g)) = change_task.and_then(|d| Some((d, grids.get(&d.pid)?))) {
        let _ = write!(
            o,
            "<h2>Convergence after demand changes</h2><p class=note>Task {}: measured utilisation and the kernel's estimates around its first {} of {} changes, smoothed over {} ms; the band is ±5 % of the new level, at least ±10 units; converged = inside it for 100 ms.</p>",
            d.pid,
            d.changes.len().min(4),
            d.changes.len(),
            cx.window_ms
        );
        for k in 0..d.changes.len().min(4) {
            let c = &d.changes[k];
            let settled = if c.cut_off {
                "too short to tell".to_string()
            } else {
                match c.util_converge_ms {
                    Some(ms) => format!("util_avg settled after {ms:.0} ms"),
                    None => "util_avg never settled".to_string(),
                }
            };
            let _ = write!(
                o,
                "<h3>at {:.3} s: {:.0} → {:.0}, {settled} (theory {:.0} ms)</h3>",
                c.at_ns as f64 / 1e9,
                c.from,
                c.to,
                c.theory_ms
            );
            o.push_str(&change_chart(t, d, g, k, cx.window_ms));
        }
    }
    o.push_str("</body></html>\n");
    o
}
