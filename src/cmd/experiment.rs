//! `schedrec experiment findings`: record controlled workloads (root), replay
//! and measure them, and print the seed's three claims against the data.
//! Without root or BPF it measures the committed fixtures and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schedrec_analysis::findings::{aggregate, measure, Row, Scenario};
use schedrec_format::PeltMode;
use schedrec_recorder::{perf::DEFAULT_COUNTERS, record, Options};

use crate::out::CliResult;

#[derive(clap::Subcommand)]
pub enum What {
    /// The seed's three claims (I/O over-estimation, burst ramp-up lag,
    /// convergence after a change), measured on this machine.
    Findings(FindingsArgs),
}

#[derive(clap::Args)]
pub struct FindingsArgs {
    /// Repetitions of each recorded scenario.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seconds recorded per scenario and repetition.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Keep the recorded traces here (default: a temporary directory).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Measure the committed fixtures instead of recording.
    #[arg(long)]
    fixtures: bool,
    /// Where the fixtures are (default: the source tree's fixtures/).
    #[arg(long)]
    fixtures_dir: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// The recorded scenario's workload, and the fixture that stands in for it.
fn workload(s: Scenario) -> (&'static str, &'static str) {
    match s {
        Scenario::Io => ("io", "io.sched"),
        Scenario::Burst => (
            "burst --idle-ms 300 --burst-ms 300 --cpu 0",
            "burst-300-300.sched",
        ),
        Scenario::Step => (
            "step --duties 0.1,0.8,0.1,0.8 --step-ms 1000 --period-ms 16 --cpu 0",
            "step-10-80-10.sched",
        ),
    }
}

const WINDOW_MS: u64 = 32;

fn record_one(s: Scenario, secs: f64, out: &Path) -> Result<(), schedrec_recorder::Error> {
    let exe =
        std::env::current_exe().map_err(|e| schedrec_recorder::Error::Command(e.to_string()))?;
    let mut command = vec![exe.to_string_lossy().into_owned(), "workload".into()];
    command.extend(workload(s).0.split_whitespace().map(String::from));
    command.extend(["--duration".into(), secs.to_string(), "--quiet".into()]);
    let opts = Options {
        output: out.to_path_buf(),
        // The kernel's value at every boundary-crossing update (each tick
        // while running): ramps are measured, not interpolated.
        pelt: PeltMode::Full,
        counters: DEFAULT_COUNTERS.map(String::from).to_vec(),
        cpus: None,
        tgids: vec![],
        duration: Some(Duration::from_secs_f64(secs + 5.0)),
        command,
        only_command: false,
        cgroups: vec![],
        quiet: true,
        force_raw_tp: false,
        hooks_only: false,
        buffer_mib: None,
        nice: -10,
        command_line: std::env::args().collect(),
    };
    let sum = record(&opts)?;
    if let Some(code) = sum.exit_code.filter(|&c| c != 0) {
        return Err(schedrec_recorder::Error::Command(format!(
            "the workload `{}` failed (exit code {code})",
            workload(s).0
        )));
    }
    if sum.lost > 0 {
        eprintln!(
            "schedrec: warning: {} events lost while recording {} (the trace says where)",
            sum.lost,
            s.name()
        );
    }
    Ok(())
}

fn fixtures_dir(a: &FindingsArgs) -> PathBuf {
    if let Some(d) = &a.fixtures_dir {
        return d.clone();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("fixtures")
    }
}

fn fmt(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "-".into(),
        (Some(v), "%") => format!("{v:+.1} %"),
        (Some(v), "share") => format!("{v:.0} %"),
        (Some(v), "n") => format!("{v:.0}"),
        (Some(v), u) => format!("{v:.0} {u}"),
    }
}

pub fn run(w: What) -> CliResult {
    let What::Findings(a) = w;
    if a.reps == 0 || !(a.seconds >= 1.0 && a.seconds.is_finite()) {
        return Err("--reps must be ≥ 1 and --seconds ≥ 1".into());
    }
    let tmp;
    let dir = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    // (scenario, trace) pairs to measure.
    let mut traces: Vec<(Scenario, PathBuf)> = vec![];
    let mut source = "recorded on this machine";
    let mut recorded = true;
    if !a.fixtures {
        'rec: for rep in 0..a.reps {
            for s in Scenario::ALL {
                let out = dir.join(format!("{}-{}.sched", s.name(), rep + 1));
                if !a.json {
                    eprintln!(
                        "schedrec: recording {} ({} s), repetition {}/{}",
                        s.name(),
                        a.seconds,
                        rep + 1,
                        a.reps
                    );
                }
                use schedrec_recorder::Error as E;
                match record_one(s, a.seconds, &out) {
                    Ok(()) => traces.push((s, out)),
                    // Recording is impossible here: fall back. Anything else
                    // (a full disk, a failing workload) is an error.
                    Err(e @ (E::NotPermitted | E::NoBtf | E::Bpf(_))) if traces.is_empty() => {
                        eprintln!("schedrec: cannot record ({e}); measuring the committed fixtures instead");
                        break 'rec;
                    }
                    Err(e) => return Err(format!("recording {}: {e}", s.name()).into()),
                }
            }
        }
    }
    if traces.is_empty() {
        source = "the committed fixtures (not recorded here)";
        recorded = false;
        let fx = fixtures_dir(&a);
        for s in Scenario::ALL {
            let p = fx.join(workload(s).1);
            if !p.is_file() {
                return Err(format!(
                    "fixture {} is missing: pass --fixtures-dir DIR",
                    p.display()
                )
                .into());
            }
            traces.push((s, p));
        }
    }
    let mut reps = vec![];
    for (s, p) in &traces {
        let (_, t, _) = schedrec_analysis::load_with_summary(p, WINDOW_MS, false)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        reps.push(measure(*s, &t, WINDOW_MS).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    let rows = aggregate(&reps);
    let n = traces.len() / Scenario::ALL.len();
    if a.json {
        let files: Vec<String> = traces
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": source,
                "repetitions": n,
                // Seconds per recording (null: the fixtures, 3–4.5 s each).
                "seconds": recorded.then_some(a.seconds),
                "traces": files,
                "rows": rows,
            }))?
        );
        return Ok(());
    }
    print_table(&rows, source, n);
    if let (Some(d), true) = (&a.keep, recorded) {
        println!("traces kept in {}", d.display());
    }
    Ok(())
}

fn print_table(rows: &[Row], source: &str, n: usize) {
    println!("The seed's claims, measured ({source}; {n} repetition(s) per scenario; median [min – max]):");
    println!();
    println!(
        "{:<3} {:<68} {:>10} {:>30} {:>9} {:>9}",
        "#", "what", "claim", "measured", "theory", "verdict"
    );
    for r in rows {
        let spread = match (r.min, r.max) {
            (Some(lo), Some(hi)) if n > 1 => {
                format!(" [{} – {}]", fmt(Some(lo), r.unit), fmt(Some(hi), r.unit))
            }
            _ => String::new(),
        };
        println!(
            "{:<3} {:<68} {:>10} {:>30} {:>9} {:>9}",
            r.finding,
            r.what,
            r.claim.unwrap_or(""),
            format!("{}{spread}", fmt(r.median, r.unit)),
            fmt(r.theory, r.unit),
            r.verdict
        );
    }
    println!();
    println!("Methods: see `analysis/src/findings.rs` and `analysis/src/dynamics.rs`; theory is PELT's closed form");
    println!(
        "(y^32 = 1/2, periods of 1.048576 ms) for the same start value, demand and band (±5 %, at least ±10 units),"
    );
    println!("over the same bursts and changes as the measured medians.");
}
