//! `schedrec report`: one self-contained HTML page (inline SVG and CSS, no
//! scripts, nothing fetched) with the trace's summary, the replay's
//! fidelity, per-class and per-task statistics, and plots.

use std::fmt::Write as _;

use crate::analyze::{ClassStats, TaskStats};
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
    pub window_ms: u64,
}

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
    let (w, h, ml, mb, mt) = (900.0, 260.0, 50.0, 30.0, 10.0);
    let r = &t.replay;
    let idx: Vec<usize> = (0..r.ts.len()).filter(|&i| r.pid[i] == pid).collect();
    let span = (t1 - t0).max(1) as f64;
    let x = |ts: u64| ml + (ts.saturating_sub(t0)) as f64 / span * (w - ml - 10.0);
    let y = |u: f64| mt + (1.0 - (u / 1024.0).min(1.05)) * (h - mt - mb);
    let step = (idx.len() / 1500).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11">"#
    );
    for u in [0.0, 256.0, 512.0, 768.0, 1024.0] {
        let yy = y(u);
        let _ = write!(
            svg,
            r##"<line x1="{ml}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{u}</text>"##,
            w - 10.0,
            ml - 4.0,
            yy + 4.0
        );
    }
    let secs = span / 1e9;
    for k in 0..=4 {
        let ts = t0 + (span * k as f64 / 4.0) as u64;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.2} s</text>"#,
            x(ts),
            h - 8.0,
            secs * k as f64 / 4.0
        );
    }
    let series: [(&str, &str, &[Option<u64>]); 3] = [
        ("kernel util_avg", "#1f77b4", &r.kernel_util_avg),
        ("kernel-exact model", "#ff7f0e", &r.exact_util_avg),
        ("measured", "#2ca02c", &r.measured_util),
    ];
    for (k, (name, color, values)) in series.iter().enumerate() {
        let pts: Vec<String> = idx
            .iter()
            .step_by(step)
            .filter_map(|&i| values[i].map(|v| format!("{:.1},{:.1}", x(r.ts[i]), y(v as f64))))
            .collect();
        if !pts.is_empty() {
            let dash = if k == 1 {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.2"{dash} points="{}"/>"#,
                pts.join(" ")
            );
        }
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            ml + 10.0 + 170.0 * k as f64,
            mt + 4.0,
            ml + 26.0 + 170.0 * k as f64,
            mt + 9.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Which task ran on each CPU over the first `window` ns: one row per CPU,
/// the busiest tasks in colour, the rest grey.
fn cpu_timeline(t: &Tables, top: &[u32], nr_cpus: u32, window: u64) -> String {
    let (w, row, ml) = (900.0, 22.0, 50.0);
    let h = row * nr_cpus as f64 + 30.0;
    let t0 = t.span.0;
    let t1 = (t0 + window).min(t.span.1).max(t0 + 1);
    let x = |ts: u64| ml + (ts.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64 * (w - ml - 10.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11">"#
    );
    for c in 0..nr_cpus {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">CPU {c}</text>"#,
            ml - 4.0,
            row * c as f64 + 15.0
        );
    }
    let s = &t.slices;
    for i in 0..s.pid.len() {
        if s.end[i] < t0 || s.start[i] > t1 || s.cpu[i] >= nr_cpus {
            continue;
        }
        let (a, b) = (x(s.start[i]), x(s.end[i]));
        let color = top
            .iter()
            .position(|&p| p == s.pid[i])
            .map_or("#bbb", |k| COLORS[k % COLORS.len()]);
        let _ = write!(
            svg,
            r#"<rect x="{a:.2}" y="{:.1}" width="{:.2}" height="{:.1}" fill="{color}"/>"#,
            row * s.cpu[i] as f64 + 4.0,
            (b - a).max(0.3),
            row - 6.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{ml}" y="{}">0</text><text x="{}" y="{}" text-anchor="end">{:.0} ms</text></svg>"#,
        h - 6.0,
        w - 10.0,
        h - 6.0,
        (t1 - t0) as f64 / 1e6
    );
    svg
}

/// Histogram of kernel − measured per class, in steps of 32 util units.
fn error_histogram(
    t: &Tables,
    classes_of: &std::collections::HashMap<u32, &'static str>,
) -> String {
    let classes = ["cpu-bound", "io-bound", "periodic", "bursty"];
    let bins = 33usize; // -512..=512 in steps of 32
    let mut counts = vec![vec![0u64; bins]; classes.len()];
    let r = &t.replay;
    for i in 0..r.ts.len() {
        let (Some(k), Some(m), None) = (r.kernel_util_avg[i], r.measured_util[i], r.excluded[i])
        else {
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
    let (w, h, ml, mb) = (900.0, 200.0, 50.0, 24.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11">"#
    );
    let bw = (w - ml - 10.0) / bins as f64;
    for (c, name) in classes.iter().enumerate() {
        let total: u64 = counts[c].iter().sum();
        if total == 0 {
            continue;
        }
        let pts: Vec<String> = counts[c]
            .iter()
            .enumerate()
            .map(|(b, &n)| {
                format!(
                    "{:.1},{:.1}",
                    ml + bw * (b as f64 + 0.5),
                    (h - mb) - (n as f64 / total as f64) * (h - mb - 10.0)
                )
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" fill="{}">{name} ({total})</text>"#,
            COLORS[c],
            pts.join(" "),
            ml + 10.0 + 150.0 * c as f64,
            14.0,
            COLORS[c]
        );
    }
    for e in [-512i64, -256, 0, 256, 512] {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{e:+}</text>"#,
            ml + bw * ((e + 512) as f64 / 32.0 + 0.5),
            h - 8.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn html(t: &Tables, cx: &Context, nr_cpus: u32) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}}
h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}}
table{{border-collapse:collapse;font-size:13px}} td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}}
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
    for c in cx.classes {
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
        "</ul><p class=note>Means over the replay's judged samples: the kernel value as the trace shows it at switches and wakeups (held while a task sleeps, so it reads high against the time-average of the true signal), the measured utilisation over the last {} ms at the same instants.</p>",
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

    let _ = write!(o, "<h2>Busiest tasks</h2><table><tr><th>task</th><th>class</th><th>ran ms</th><th>share</th><th>run µs</th><th>wakeup p99 µs</th><th>IPC</th><th>GHz</th><th>kernel</th><th>measured</th><th>bias</th><th>MAE</th><th>p99 err</th></tr>");
    for t in cx.tasks {
        let _ = write!(
            o,
            "<tr><td>{} ({})</td><td>{}</td><td>{:.1}</td><td>{:.1} %</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.comm),
            t.pid,
            t.class,
            t.runtime_ms,
            t.runtime_share * 100.0,
            t.mean_run_us,
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
    let classes_of: std::collections::HashMap<u32, &'static str> =
        cx.tasks.iter().map(|t| (t.pid, t.class)).collect();
    let _ = write!(
        o,
        "<h2>Estimation error per class</h2><p class=note>Distribution of kernel util_avg − measured utilisation over the judged samples of the tasks above (fraction of samples, bins of 32).</p>"
    );
    o.push_str(&error_histogram(t, &classes_of));
    o.push_str("</body></html>\n");
    o
}
