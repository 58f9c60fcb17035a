//! `schedrec replay`

use std::io::IsTerminal;
use std::path::PathBuf;

use schedrec_format::Reader;
use schedrec_replay::engine::{replay, Options, Summary};
use schedrec_replay::fidelity::MetricSummary;
use schedrec_replay::model::Model;

use crate::out::CliResult;

/// `--model`, `--halflife`, `--no-util-est` (replay and analyze).
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The model whose estimates fill the `model_*` columns. The
    /// kernel-exact PELT (half-life 32) is always run too, to judge fidelity.
    #[arg(long, default_value = "pelt", value_parser = ["pelt", "measured"])]
    pub model: String,
    /// PELT half-life in ms (32 is the kernel's; 16 and 8 run the clock 2× and 4× as fast).
    #[arg(long, default_value_t = 32, value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["8", "16", "32"]), |s| s.parse::<u32>().unwrap()))]
    pub halflife: u32,
    /// The chosen PELT model without util_est.
    #[arg(long)]
    pub no_util_est: bool,
}

impl ModelArgs {
    /// How the model is called in output.
    pub fn describe(&self) -> String {
        match (self.model.as_str(), self.halflife, self.no_util_est) {
            ("measured", ..) => "measured".to_string(),
            (_, 32, false) => "kernel-exact PELT".to_string(),
            (_, h, ue) => format!(
                "PELT, half-life {h} ms{}",
                if ue { ", no util_est" } else { "" }
            ),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Trace to replay (.sched).
    file: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Tick rate of the recorded kernel (default: the trace header's).
    #[arg(long)]
    hz: Option<u32>,
    /// `kernel`: start each task from the first kernel values seen; `zero`:
    /// start empty, and do not judge the first 400 ms of each task.
    #[arg(long, default_value = "kernel", value_parser = ["kernel", "zero"])]
    init: String,
    /// `pelt`: use the kernel's PELT timestamps where recorded; `ktime`:
    /// ignore them and derive PELT time from the trace clock (an estimate).
    #[arg(long, default_value = "pelt", value_parser = ["pelt", "ktime"])]
    clock: String,
    /// Replay a `--pelt full` trace as if recorded with `--pelt switch`
    /// (shows what the complete PELT state buys).
    #[arg(long)]
    as_switch: bool,
    /// Scale each CPU's PELT clock by its recorded frequency
    /// (`cpu_frequency` over the header's maximum), for kernels that take
    /// their frequency scale from cpufreq (arm64 without activity monitors;
    /// not x86, which reads APERF/MPERF). Capacities always apply.
    #[arg(long)]
    freq_invariance: bool,
    /// Window of the measured utilisation, ms.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    window_ms: u64,
    /// Write one row per sample to OUT.csv or OUT.parquet (streamed).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print the summary as JSON (stable keys).
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

/// The model `--model NAME --halflife N [--no-util-est]` names for a trace
/// with `meta` (None: the kernel-exact reference, which always runs).
pub fn choose_model(
    meta: &schedrec_format::Metadata,
    m: &ModelArgs,
    window_ns: u64,
) -> Result<Option<Box<dyn Model>>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(schedrec_replay::model::choose(
        meta,
        &m.model,
        m.halflife,
        m.no_util_est,
        window_ns,
    )?)
}

pub fn run(a: Args) -> CliResult {
    let reader = Reader::open(&a.file)?;
    let window_ns = a.window_ms.max(1) * 1_000_000;
    let model = choose_model(reader.meta(), &a.model, window_ns)?;
    let opts = Options {
        model,
        hz: a.hz,
        ktime: a.clock == "ktime",
        init_zero: a.init == "zero",
        as_switch: a.as_switch,
        freq_invariance: a.freq_invariance,
        measured_window_ns: window_ns,
        rows: a.output.is_some(),
        root_rows: true,
        ..Options::default()
    };
    let mut out = match &a.output {
        Some(p) => Some(schedrec_analysis::frames::ReplaySink::create(p)?),
        None => None,
    };
    let total: u64 = reader.chunks().iter().map(|c| c.count as u64).sum();
    // A progress bar on long replays, only when stderr is a terminal.
    let bar = if !a.quiet && std::io::stderr().is_terminal() && total > 2_000_000 {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "replay {bar:40} {percent:>3}% {human_pos}/{human_len} records, {per_sec}, eta {eta}",
            )
            .expect("valid template"),
        );
        Some(b)
    } else {
        None
    };
    let summary = replay(
        &reader,
        &opts,
        |rows| {
            if let Some(w) = out.as_mut() {
                for r in rows {
                    w.push(r).map_err(std::io::Error::other)?;
                }
            }
            Ok(())
        },
        |done| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let (Some(w), Some(p)) = (out, &a.output) {
        w.finish().map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&a.file, &summary, a.freq_invariance);
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

fn print_summary(file: &std::path::Path, s: &Summary, freq_invariance: bool) {
    println!("replay of {}", file.display());
    println!(
        "model: {}   reference: {}   measured: {}",
        s.model, s.reference, s.measured
    );
    println!(
        "clock: {}   HZ {}   {} records, {} tasks replayed ({} not in the fair class)",
        if s.clock == "pelt" {
            "the kernel's PELT timestamps"
        } else {
            "trace clock (PELT time estimated)"
        },
        s.hz,
        s.records,
        s.tasks,
        s.skipped_tasks
    );
    if !s.invariance.is_empty() {
        println!(
            "PELT clocks scaled by CPU {} (between the kernel's timestamps, or throughout on the trace clock)",
            s.invariance.join(" and ")
        );
    }
    if s.unscaled_frequency_records > 0 {
        println!(
            "{} cpu_frequency records not applied to the PELT clocks: {}",
            s.unscaled_frequency_records,
            if freq_invariance {
                "the trace header lacks those CPUs' maximum frequency"
            } else {
                "pass --freq-invariance if the recorded kernel takes its frequency scale from cpufreq"
            }
        );
    }
    let mut ex: Vec<_> = s.excluded.iter().collect();
    ex.sort();
    let ex: Vec<String> = ex.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "samples judged: {} of {} (not judged: {})   re-anchors: {} ({})",
        s.samples,
        s.rows,
        if ex.is_empty() {
            "none".into()
        } else {
            ex.join(", ")
        },
        s.reanchors,
        pct(s.reanchors as f64 / s.rows.max(1) as f64)
    );
    if s.samples == 0 {
        println!("(the trace has no kernel PELT values to judge the reference by)");
        return;
    }
    println!("reference vs kernel   exact    within ±1  mean |err|  p99  max");
    for (name, m) in s.metrics() {
        if let Some(m) = m {
            println!(
                "  {name:<18} {:>9} {:>10} {:>10.3} {:>5} {:>4}",
                pct(m.exact_fraction),
                pct(m.within1_fraction),
                m.mean_abs_err,
                m.p99_abs_err,
                m.max_abs_err
            );
        }
    }
    if let Some(r) = &s.root {
        println!(
            "root run-queues (each CPU's rq->cfs as the sum of its tasks; {} kernel samples, {} not judged: residual of unseen tasks taken{}):",
            r.samples,
            r.reanchors,
            if r.unknown > 0 {
                format!("; {} judged with a task whose timeline broke off", r.unknown)
            } else {
                String::new()
            }
        );
        for (name, m) in [
            ("util_avg", &r.util_avg),
            ("load_avg", &r.load_avg),
            ("runnable_avg", &r.runnable_avg),
            ("util_est", &r.util_est),
        ] {
            if let Some(m) = m {
                println!(
                    "  {name:<18} {:>9} {:>10} {:>10.3} {:>5} {:>4}   (within ±2: {})",
                    pct(m.exact_fraction),
                    pct(m.within1_fraction),
                    m.mean_abs_err,
                    m.p99_abs_err,
                    m.max_abs_err,
                    pct(m.within2_fraction)
                );
            }
        }
        if r.task_groups {
            println!("  load_avg and runnable_avg not judged: the trace shows task groups (their weights, and the root's");
            println!("  updates between period boundaries, are not in it; see README, \"Root run-queues\")");
        }
    }
    println!("busiest tasks (util_avg):");
    println!(
        "  {:>7} {:<16} {:>10} {:>8} {:>9} {:>4} {:>9}",
        "pid", "comm", "ran ms", "samples", "exact", "max", "reanchors"
    );
    for t in &s.per_task {
        let (e, m) = match &t.util_avg {
            Some(MetricSummary {
                exact_fraction,
                max_abs_err,
                ..
            }) => (pct(*exact_fraction), max_abs_err.to_string()),
            None => ("-".into(), "-".into()),
        };
        println!(
            "  {:>7} {:<16} {:>10.1} {:>8} {:>9} {:>4} {:>9}",
            t.pid, t.comm, t.running_ms, t.samples, e, m, t.reanchors
        );
    }
}
