//! `schedrec`: the command line. It only parses arguments and wires the
//! library crates together; each subcommand lives in `cmd/`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod out;

// Decoding allocates and frees large column buffers per chunk; glibc's
// malloc returns them to the kernel and faults them back in every time.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "schedrec",
    version,
    about = "Record the Linux scheduler, replay its load tracking (PELT), and measure where it misjudges CPU demand",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summarise a trace: version, completeness, record counts, losses, time range, size.
    Info {
        file: PathBuf,
        /// Machine-readable output (stable keys).
        #[arg(long)]
        json: bool,
        /// Also show how many bytes each column takes (decodes every chunk).
        #[arg(long)]
        columns: bool,
    },
    /// Print records in time order, as text or one JSON object per line.
    Dump(cmd::dump::Args),
    /// Record every context switch with eBPF (root): counters, PELT, wakeups, tasks.
    Record(cmd::record::Args),
    /// Run a built-in workload with known behaviour.
    Workload(cmd::workload::Args),
    /// Replay a trace through the kernel-exact PELT (and other models); judge it against the kernel's values.
    Replay(cmd::replay::Args),
    /// Per-task statistics: class, runtime, wakeup latency, kernel util vs measured demand.
    Analyze(cmd::analyze::AnalyzeArgs),
    /// A self-contained HTML report: fidelity, classes, busiest tasks, plots.
    Report(cmd::analyze::ReportArgs),
    /// Write a trace and its replay as tables (Parquet or CSV) for other tools.
    Export(cmd::analyze::ExportArgs),
    /// Generate a deterministic synthetic trace from a workload description (TOML).
    Synth(cmd::synth::Args),
    /// Controlled experiments on this machine (root; fixtures otherwise).
    Experiment {
        #[command(subcommand)]
        what: cmd::experiment::What,
    },
    /// Benchmarks that print their figures side by side.
    Bench {
        #[command(subcommand)]
        what: cmd::bench::What,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Info {
            file,
            json,
            columns,
        } => cmd::info::run(&file, json, columns),
        Cmd::Dump(a) => cmd::dump::run(a),
        Cmd::Synth(a) => cmd::synth::run(a),
        Cmd::Replay(a) => cmd::replay::run(a),
        Cmd::Analyze(a) => cmd::analyze::analyze(a),
        Cmd::Export(a) => cmd::analyze::export_cmd(a),
        Cmd::Report(a) => cmd::analyze::report(a),
        Cmd::Workload(a) => cmd::workload::run_cmd(a),
        Cmd::Record(a) => match cmd::record::run(a) {
            Ok(0) => Ok(()),
            // The recorded command's exit code, as `perf record` does.
            Ok(code) => return ExitCode::from(code.clamp(1, 255) as u8),
            Err(e) => Err(e),
        },
        Cmd::Bench { what } => cmd::bench::run(what),
        Cmd::Experiment { what } => cmd::experiment::run(what),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if out::is_broken_pipe(&*e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("schedrec: error: {e}");
            ExitCode::FAILURE
        }
    }
}
