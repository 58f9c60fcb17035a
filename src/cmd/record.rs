//! `schedrec record`

use std::path::PathBuf;
use std::time::Duration;

use schedrec_format::PeltMode;
use schedrec_recorder::{host::parse_cpu_list, perf::DEFAULT_COUNTERS, record, Options};

use crate::out::human_bytes;

#[derive(clap::Args)]
pub struct Args {
    /// Output trace.
    #[arg(short, long, default_value = "schedrec.sched")]
    output: PathBuf,
    /// Stop after this many seconds (default: on Ctrl-C, or when the command exits).
    #[arg(long)]
    duration: Option<f64>,
    /// PELT values to record: off, switch (the leaving task's, at each switch), full (both tasks' complete state, and the kernel's PELT update streams).
    #[arg(long, default_value = "switch", value_parser = ["off", "switch", "full"])]
    pelt: String,
    /// Counters per slice (at most 4): generic names or raw events rHEX.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_COUNTERS.map(String::from))]
    counters: Vec<String>,
    /// Record no counters.
    #[arg(long)]
    no_counters: bool,
    /// Only these CPUs (e.g. 0-3,8).
    #[arg(long)]
    cpus: Option<String>,
    /// Only this process (and what it forks); repeatable.
    #[arg(long)]
    tgid: Vec<u32>,
    /// With `-- CMD`: only the command and its descendants.
    #[arg(long)]
    only_cmd: bool,
    /// Only tasks in this cgroup v2 directory and those below it (repeatable;
    /// with --tgid/--only-cmd, a task matching any filter is recorded).
    #[arg(long)]
    cgroup: Vec<PathBuf>,
    /// Run a built-in workload while recording, e.g. --workload "periodic --period-ms 16 --duty 0.5 --cpu 0".
    #[arg(long, conflicts_with = "command")]
    workload: Option<String>,
    /// Use raw_tp/sched_switch even where tp_btf works.
    #[arg(long)]
    raw_tp: bool,
    /// Size of each CPU's buffer for switch and wakeup records, in MiB,
    /// rounded down to a power of two (default: 64 MiB over the possible
    /// CPUs, rounded down, 1 to 32 MiB each).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    buffer_mib: Option<u32>,
    /// Benchmark floor: attach every program but return at once from the
    /// switch and wakeup programs (records no switches or wakeups).
    #[arg(long, hide = true)]
    hooks_only: bool,
    /// Nice value for the recorder's own threads: below 0 they get the CPU
    /// ahead of a saturating workload, so the ring buffer is drained in time.
    #[arg(long, default_value_t = -10, allow_hyphen_values = true)]
    nice: i32,
    /// No progress line or summary.
    #[arg(short, long)]
    quiet: bool,
    /// Command to run while recording; recording stops when it exits, with its exit code.
    #[arg(last = true)]
    command: Vec<String>,
}

/// Runs the recording; returns the exit code to leave with.
pub fn run(a: Args) -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    let pelt = match a.pelt.as_str() {
        "off" => PeltMode::Off,
        "full" => PeltMode::Full,
        _ => PeltMode::Switch,
    };
    let duration = match a.duration {
        Some(d) if d > 0.0 && d.is_finite() => Some(Duration::from_secs_f64(d)),
        Some(_) => return Err("--duration must be > 0".into()),
        None => None,
    };
    let mut command = a.command;
    if let Some(w) = &a.workload {
        let exe = std::env::current_exe()?;
        command = vec![exe.to_string_lossy().into_owned(), "workload".into()];
        command.extend(w.split_whitespace().map(String::from));
        if let Some(d) = a.duration {
            if !w.contains("--duration") {
                command.push("--duration".into());
                command.push(d.to_string());
            }
        }
    }
    let opts = Options {
        output: a.output.clone(),
        pelt,
        counters: if a.no_counters { vec![] } else { a.counters },
        cpus: a.cpus.as_deref().map(parse_cpu_list).transpose()?,
        tgids: a.tgid,
        duration,
        command,
        only_command: a.only_cmd,
        cgroups: a.cgroup,
        quiet: a.quiet,
        force_raw_tp: a.raw_tp,
        hooks_only: a.hooks_only,
        buffer_mib: a.buffer_mib,
        nice: a.nice,
        command_line: std::env::args().collect(),
    };
    let s = record(&opts)?;
    if !a.quiet {
        eprintln!(
            "schedrec: recorded {} records ({} switches) in {:.1} s via {}, {} lost, {} -> {}",
            s.records,
            s.switches,
            s.seconds,
            s.attached_to,
            s.lost,
            human_bytes(s.bytes),
            a.output.display()
        );
    }
    Ok(s.exit_code.unwrap_or(0))
}
