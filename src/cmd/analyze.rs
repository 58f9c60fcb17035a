//! `schedrec analyze` and `schedrec export`: a trace and its kernel-exact
//! replay, as statistics or as tables for other tools.

use std::path::PathBuf;

use rayon::prelude::*;
use schedrec_analysis::frames::{export, export_dataset, Format};
use schedrec_analysis::load;
use schedrec_analysis::{stats, TraceStats};
use serde::Serialize;

use crate::out::CliResult;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Traces (.sched); several are analysed in parallel and compared.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Window of the measured utilisation, ms.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    window_ms: u64,
    /// The model compared with the kernel and the measured demand
    /// (default: the kernel-exact PELT).
    #[command(flatten)]
    model: crate::cmd::replay::ModelArgs,
    /// Tasks listed per trace.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// JSON output (stable keys).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    span_ms: f64,
    #[serde(flatten)]
    stats: TraceStats,
}

/// Everything `analyze` says about one trace.
fn analyse_file(f: &std::path::Path, a: &AnalyzeArgs) -> Result<FileReport, BoxErr> {
    let (window_ms, top) = (a.window_ms, a.top);
    let ctx = |e: &dyn std::fmt::Display| format!("{}: {e}", f.display());
    let reader = schedrec_format::Reader::open(f).map_err(|e| ctx(&e))?;
    let window_ns = window_ms.max(1) * 1_000_000;
    let opts = schedrec_replay::engine::Options {
        model: crate::cmd::replay::choose_model(reader.meta(), &a.model, window_ns)
            .map_err(|e| ctx(&e))?,
        measured_window_ns: window_ns,
        ..Default::default()
    };
    let (_, t, _) = schedrec_analysis::load_with(reader, &opts, false).map_err(|e| ctx(&e))?;
    Ok(FileReport {
        file: f.display().to_string(),
        span_ms: (t.span.1 - t.span.0) as f64 / 1e6,
        stats: stats(&t, window_ms, top).map_err(|e| ctx(&e))?,
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn analyze(a: AnalyzeArgs) -> CliResult {
    // One trace: loaded off the rayon pool, where its passes over the file
    // get threads of their own; several: one rayon task each.
    let reports: Vec<Result<FileReport, BoxErr>> = match a.files.as_slice() {
        [f] => vec![analyse_file(f, &a)],
        files => files.par_iter().map(|f| analyse_file(f, &a)).collect(),
    };
    let reports: Vec<FileReport> = reports.into_iter().collect::<Result<_, _>>()?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "traces": reports }))?
        );
        return Ok(());
    }
    let model = a.model.describe();
    for r in &reports {
        println!("{} ({:.0} ms)", r.file, r.span_ms);
        println!("  kernel util_avg vs the model ({model}) vs measured utilisation ({} ms window), per class: means over the replay's judged samples (trace-visible)", a.window_ms);
        println!(
            "  {:<10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11}",
            "class", "tasks", "samples", "kernel", "model", "measured", "bias", "model bias"
        );
        for c in &r.stats.classes {
            println!(
                "  {:<10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11}",
                c.class,
                c.tasks,
                c.samples,
                opt(c.kernel_util_mean, 1),
                opt(c.model_util_mean, 1),
                opt(c.measured_util_mean, 1),
                c.bias_pct.map_or("-".into(), |b| format!("{b:+.1} %")),
                c.model_bias_pct
                    .map_or("-".into(), |b| format!("{b:+.1} %"))
            );
        }
        println!("  how the kernel's estimate follows demand, per class (time-weighted means over 1 ms bins; medians over bursts and changes; see `analysis/src/dynamics.rs`):");
        println!(
            "  {:<10} {:>8} {:>8} {:>8} {:>7} {:>11} {:>11} {:>11} {:>8} {:>13} {:>9}",
            "class",
            "demand",
            "util",
            "bias",
            "bursts",
            "t80 ms",
            "t95 ms",
            "est t80",
            "changes",
            "converge ms",
            "est conv"
        );
        let theory = |m: Option<f64>, t: Option<f64>| match (m, t) {
            (None, None) => "-".to_string(),
            (m, t) => format!("{}/{}", opt(m, 0), opt(t, 0)),
        };
        for c in &r.stats.class_dynamics {
            println!(
                "  {:<10} {:>8} {:>8} {:>8} {:>7} {:>11} {:>11} {:>11} {:>8} {:>13} {:>9}",
                c.class,
                opt(c.demand_time_mean, 1),
                opt(c.util_time_mean, 1),
                c.util_time_bias_pct
                    .map_or("-".into(), |b| format!("{b:+.1}%")),
                format!("{}", c.bursts),
                theory(c.util_t80_ms, c.theory_t80_ms),
                theory(c.util_t95_ms, c.theory_t95_ms),
                opt(c.est_t80_ms, 0),
                c.changes,
                theory(c.util_converge_ms, c.theory_converge_ms),
                opt(c.est_converge_ms, 0),
            );
        }
        println!("  (t80/t95: measured/PELT theory; bursts that ended first are not timed: {} of {} short of 80 %)",
            r.stats.class_dynamics.iter().map(|c| c.bursts_short_of_80).sum::<u64>(),
            r.stats.class_dynamics.iter().map(|c| c.bursts).sum::<u64>());
        if r.stats.correlations.iter().all(|c| c.samples == 0) {
            println!("  error vs counters: no counters in this trace (no PMU, or recorded with --no-counters)");
        } else {
            println!("  correlation of the error (kernel − measured) with the slice's counters, per class (Pearson r):");
            println!(
                "  {:<10} {:>8} {:>7} {:>9} {:>7}",
                "class", "slices", "IPC", "miss rate", "GHz"
            );
            for c in &r.stats.correlations {
                println!(
                    "  {:<10} {:>8} {:>7} {:>9} {:>7}",
                    c.class,
                    c.samples,
                    opt(c.ipc, 2),
                    opt(c.miss_rate, 2),
                    opt(c.ghz, 2)
                );
            }
        }
        println!("  busiest tasks:");
        println!(
            "  {:>7} {:<16} {:<9} {:>8} {:>6} {:>8} {:>9} {:>7} {:>7} {:>8} {:>6} {:>6}",
            "pid",
            "comm",
            "class",
            "ran ms",
            "share",
            "run us",
            "sleep ms",
            "lat p99",
            "kernel",
            "measured",
            "bias",
            "MAE"
        );
        println!("  (run us: mean slice; sleep ms: median from blocking to wakeup; lat p99: wakeup to running, µs; kernel/measured: trace-visible means)");
        for t in &r.stats.tasks {
            println!(
                "  {:>7} {:<16} {:<9} {:>8.1} {:>5.1}% {:>8.0} {:>9} {:>7} {:>7} {:>8} {:>6} {:>6}",
                t.pid,
                t.comm,
                t.class,
                t.runtime_ms,
                t.runtime_share * 100.0,
                t.mean_run_us,
                opt(t.sleep_p50_ms, 1),
                opt(t.wakeup_latency_p99_us, 0),
                opt(t.kernel_util_mean, 0),
                opt(t.measured_util_mean, 0),
                t.bias_pct.map_or("-".into(), |b| format!("{b:+.0}%")),
                opt(t.mae, 1)
            );
        }
        println!();
    }
    if reports.len() > 1 {
        println!("bias per class, side by side (kernel vs measured, %):");
        print!("  {:<10}", "class");
        for (i, _) in reports.iter().enumerate() {
            print!(" {:>10}", format!("#{}", i + 1));
        }
        println!();
        for (ci, c) in reports[0].stats.classes.iter().enumerate() {
            print!("  {:<10}", c.class);
            for r in &reports {
                print!(
                    " {:>10}",
                    r.stats.classes[ci]
                        .bias_pct
                        .map_or("-".into(), |b| format!("{b:+.1}"))
                );
            }
            println!();
        }
        for (i, r) in reports.iter().enumerate() {
            println!("  #{}: {}", i + 1, r.file);
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Trace (.sched).
    file: PathBuf,
    /// Table format.
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "csv"])]
    format: String,
    /// Directory for one file per table (switches, slices, wakeups, tasks, pelt, replay).
    #[arg(short, long, required_unless_present = "dataset")]
    output: Option<PathBuf>,
    /// Append to a hive-partitioned Parquet dataset: DIR/host=…/trace=…/<table>.parquet.
    #[arg(long, conflicts_with = "output")]
    dataset: Option<PathBuf>,
    /// Window of the measured utilisation in the replay table, ms.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    window_ms: u64,
}

pub fn export_cmd(a: ExportArgs) -> CliResult {
    let (reader, t) = load(&a.file, a.window_ms)?;
    if a.dataset.is_some() && a.format != "parquet" {
        return Err("--dataset writes Parquet only: drop --format csv, or use -o DIR".into());
    }
    if let Some(root) = &a.dataset {
        let host = reader
            .meta()
            .hostname
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let trace = a
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "trace".into());
        let dir = export_dataset(&t, root, &host, &trace)?;
        eprintln!("wrote {}", dir.display());
        return Ok(());
    }
    let format = if a.format == "csv" {
        Format::Csv
    } else {
        Format::Parquet
    };
    let out = a.output.expect("clap requires --output or --dataset");
    for p in export(&t, &out, format)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Trace (.sched).
    file: PathBuf,
    /// Directory for index.html.
    #[arg(short, long)]
    output: PathBuf,
    /// Window of the measured utilisation, ms.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    window_ms: u64,
    /// Tasks in the tables.
    #[arg(long, default_value_t = 12)]
    top: usize,
}

pub fn report(a: ReportArgs) -> CliResult {
    use schedrec_analysis::report::{html, Context};
    let (reader, t, summary) = schedrec_analysis::load_with_summary(&a.file, a.window_ms, false)?;
    let st = stats(&t, a.window_ms, a.top)?;
    let m = reader.meta();
    let info = vec![
        format!("file:      {}", a.file.display()),
        format!(
            "host:      {} (kernel {}), {} CPUs, HZ {}",
            m.hostname.as_deref().unwrap_or("?"),
            m.kernel_release,
            m.nr_cpus,
            m.hz
        ),
        format!("recorded:  {} — {}", m.recorder, m.command_line.join(" ")),
        format!(
            "span:      {:.3} s, {} switches, {} wakeups, {} tasks",
            (t.span.1 - t.span.0) as f64 / 1e9,
            t.nr_switches,
            t.wakeups.ts.len(),
            t.tasks.pid.len()
        ),
    ];
    let fidelity: Vec<String> = match &summary {
        Some(s) => {
            let mut v = vec![format!(
                "{} samples judged of {} ({} re-anchors), {} tasks replayed",
                s.samples, s.rows, s.reanchors, s.tasks
            )];
            for (name, m) in s.metrics() {
                if let Some(m) = m {
                    v.push(format!(
                        "{name:<13} exact {:>6.2} %   within ±1 {:>6.2} %   max |err| {}",
                        m.exact_fraction * 100.0,
                        m.within1_fraction * 100.0,
                        m.max_abs_err
                    ));
                }
            }
            if let Some(r) = &s.root {
                v.push(format!(
                    "root run-queues, as the sum of their tasks ({} kernel samples, {} not judged):",
                    r.samples, r.reanchors
                ));
                for (name, m) in [("util_avg", &r.util_avg), ("util_est", &r.util_est)] {
                    if let Some(m) = m {
                        v.push(format!(
                            "{name:<13} exact {:>6.2} %   within ±2 {:>6.2} %   max |err| {}",
                            m.exact_fraction * 100.0,
                            m.within2_fraction * 100.0,
                            m.max_abs_err
                        ));
                    }
                }
            }
            v
        }
        None => vec!["not replayed: the trace does not say HZ".into()],
    };
    let title = format!(
        "schedrec report: {}",
        a.file
            .file_name()
            .map_or("trace".into(), |n| n.to_string_lossy().into_owned())
    );
    let page = html(
        &t,
        &Context {
            title: &title,
            info: &info,
            fidelity: &fidelity,
            classes: &st.classes,
            tasks: &st.tasks,
            class_dynamics: &st.class_dynamics,
            correlations: &st.correlations,
            dynamics: &st.dynamics,
            window_ms: a.window_ms,
        },
        m.nr_cpus,
    );
    std::fs::create_dir_all(&a.output).map_err(|e| format!("{}: {e}", a.output.display()))?;
    let path = a.output.join("index.html");
    std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("report: {}", path.display());
    Ok(())
}
