//! schedrec's analysis: a trace and its replay as tables ([`tables`]) and
//! polars DataFrames ([`frames`]: Parquet/CSV export, hive-partitioned
//! datasets), per-task statistics ([`analyze`]) and how estimates follow
//! demand over time ([`dynamics`]). Schemas:
//! `analysis/SCHEMAS.md`.

pub mod analyze;
pub mod dynamics;
pub mod findings;
pub mod frames;
pub mod plot;
pub mod report;
pub mod tables;

pub use polars;

use std::path::Path;

use schedrec_format::Reader;
use schedrec_replay::engine::{replay_tapped, Options, Summary};

/// Any error of loading and analysing a trace.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Reads a trace and replays it (kernel-exact PELT; measured utilisation
/// over `window_ms`) into tables. A trace whose header does not say HZ is
/// read without a replay table.
pub fn load(path: &Path, window_ms: u64) -> Result<(Reader, tables::Tables), Error> {
    load_with_summary(path, window_ms, true).map(|(r, t, _)| (r, t))
}

/// [`load`], with the replay's fidelity summary; `keep_switches: false`
/// leaves the `switches` table empty (only `export` needs it).
pub fn load_with_summary(
    path: &Path,
    window_ms: u64,
    keep_switches: bool,
) -> Result<(Reader, tables::Tables, Option<Summary>), Error> {
    let opts = Options {
        measured_window_ns: window_ms.max(1) * 1_000_000,
        root_rows: true,
        ..Options::default()
    };
    load_with(Reader::open(path)?, &opts, keep_switches)
}

/// Reads `reader` into tables and replays it with `opts` (the replay
/// table's `model_*` columns are the model of `opts.model`). One pass over
/// the trace: the replay hands each record it reads on to the tables (on a
/// thread of their own), so the trace is decoded once.
pub fn load_with(
    reader: Reader,
    opts: &Options,
    keep_switches: bool,
) -> Result<(Reader, tables::Tables, Option<Summary>), Error> {
    if reader.meta().hz == 0 {
        let t = phase("read tables", || tables::read_with(&reader, keep_switches))?;
        return Ok((reader, t, None));
    }
    let mut rows = if keep_switches {
        tables::ReplayRows::full()
    } else {
        tables::ReplayRows::default()
    };
    // At most a row per record, two per switch (its switch-out and, with
    // `--pelt full`, its switch-in sample).
    rows.reserve(
        tables::count(&reader, None) + tables::count(&reader, Some(schedrec_format::Kind::Switch)),
    );
    let mut builder = tables::TableBuilder::new(&reader, keep_switches);
    // The root run-queues' rows (with `opts.root_rows`) go to a table of
    // their own: the replay table is the tasks'.
    let mut root = tables::RootSamples::default();
    let summary = phase("replay and tables", || {
        replay_tapped(
            &reader,
            opts,
            |b| {
                for r in b {
                    if r.event == schedrec_replay::root::ROOT_EVENT {
                        if let (Some(k), Some(m), None) = (r.kernel, r.exact.util_avg, r.excluded) {
                            root.ts.push(r.ts);
                            root.cpu.push(r.cpu);
                            root.kernel_util_avg.push(k.util_avg);
                            root.tasks_util_avg.push(m);
                        }
                    } else {
                        rows.push(r);
                    }
                }
                Ok(())
            },
            |_| {},
            Some(&mut |r: &schedrec_format::Record| builder.push(r)),
        )
    })?;
    let mut t = builder.finish();
    t.replay = rows;
    t.root = root;
    Ok((reader, t, Some(summary)))
}

/// Runs `f`, and with `SCHEDREC_TIMINGS` set in the environment says on
/// stderr how long it took: where a long analysis spends its time.
pub fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if std::env::var_os("SCHEDREC_TIMINGS").is_none() {
        return f();
    }
    let t = std::time::Instant::now();
    let v = f();
    eprintln!("schedrec: {name}: {:.2} s", t.elapsed().as_secs_f64());
    v
}

/// Everything the statistics say about one trace: per class, per task (the
/// `top` busiest), their dynamics, and the counter correlations. What
/// `schedrec analyze` prints and `schedrec report` draws.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceStats {
    pub classes: Vec<analyze::ClassStats>,
    pub class_dynamics: Vec<dynamics::ClassDynamics>,
    pub correlations: Vec<analyze::ErrorCorrelation>,
    /// The busiest tasks, busiest first.
    pub tasks: Vec<analyze::TaskStats>,
    /// Dynamics of the tasks in `tasks`, same order.
    pub dynamics: Vec<dynamics::Dynamics>,
}

/// [`TraceStats`] of loaded tables (classes and correlations over every
/// task; `top` tasks listed).
pub fn stats(t: &tables::Tables, window_ms: u64, top: usize) -> Result<TraceStats, Error> {
    let mut ts = phase("per-task statistics", || analyze::tasks(t))?;
    let classes = analyze::classes(&ts);
    let dyns = phase("dynamics", || dynamics::dynamics(t, window_ms));
    let class_of = ts.iter().map(|t| (t.pid, t.class)).collect();
    let class_dynamics = dynamics::per_class(&dyns, &class_of);
    let correlations = phase("correlations", || analyze::error_correlations(t, &ts));
    ts.truncate(top);
    let mut by_pid: std::collections::HashMap<u32, dynamics::Dynamics> =
        dyns.into_iter().map(|d| (d.pid, d)).collect();
    let dynamics = ts.iter().filter_map(|t| by_pid.remove(&t.pid)).collect();
    Ok(TraceStats {
        classes,
        class_dynamics,
        correlations,
        tasks: ts,
        dynamics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables built from the records the replay hands on are the ones a
    /// pass of their own builds, with the replay's threads and on a rayon
    /// worker (where the tap runs inline).
    #[test]
    fn tables_from_the_replay_are_the_tables_read_alone() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/mixed-pelt-full.sched");
        let alone = tables::read_with(&Reader::open(&path).unwrap(), true).unwrap();
        let opts = Options::default();
        let load = || load_with(Reader::open(&path).unwrap(), &opts, true).unwrap();
        let (_, threaded, summary) = load();
        let ((_, inline, _), _) = rayon::join(load, || ());
        assert!(summary.unwrap().records > 100_000);
        for t in [&threaded, &inline] {
            assert_eq!(t.span, alone.span);
            assert_eq!(t.nr_switches, alone.nr_switches);
            assert!(!t.replay.is_empty());
            for name in ["switches", "slices", "wakeups", "tasks", "pelt"] {
                let (a, b) = (
                    frames::frame(&alone, name).unwrap(),
                    frames::frame(t, name).unwrap(),
                );
                assert!(a.height() > 0, "{name} is empty");
                assert!(a.equals_missing(&b), "{name} differs");
            }
        }
        let (a, b) = (
            frames::frame(&threaded, "replay").unwrap(),
            frames::frame(&inline, "replay").unwrap(),
        );
        assert!(a.equals_missing(&b), "the replay rows differ");
    }

    /// Read for the statistics (not for export), the tables leave out what
    /// only export writes, and asking for an export frame says so instead
    /// of writing a wrong one.
    #[test]
    fn tables_read_for_statistics_keep_only_what_they_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/mixed-pelt-full.sched");
        let (_, t, _) =
            load_with(Reader::open(&path).unwrap(), &Options::default(), false).unwrap();
        assert!(t.switches.ts.is_empty());
        assert!(t.wakeups.ts.len() > 1000);
        assert!(t.wakeups.target_cpu.is_empty() && t.wakeups.new.is_empty());
        let err = frames::frame(&t, "wakeups").unwrap_err().to_string();
        assert!(err.contains("without its export columns"), "{err}");
        assert!(t.replay.extra.is_none());
    }
}
