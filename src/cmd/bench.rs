//! `schedrec bench`: benchmarks that print their figures side by side in one
//! run, so ratios are measured under the same conditions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use schedrec_format::synth::{generate, Spec};
use schedrec_format::{Filter, Reader, Record, Summary, Writer, WriterOptions};

use crate::out::CliResult;

/// The benchmark stream: ~100 tasks (hogs, periodic, bursty, I/O-like,
/// fork/exit churn) on 2 CPUs.
const BUSY_HOST: &str = include_str!("../../fixtures/synth/busy-host.toml");

#[derive(clap::Subcommand)]
pub enum What {
    /// Recording overhead: interleaved runs without and with `schedrec record` (root).
    Overhead {
        /// A/B pairs per workload.
        #[arg(long, default_value_t = 7)]
        pairs: usize,
        /// Seconds per pingpong run.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Extra arguments for `schedrec record`, e.g. "--pelt full".
        #[arg(long, default_value = "")]
        record_args: String,
    },
    /// Trace format: write and decode throughput, bytes per switch.
    Format {
        /// Switches per stream.
        #[arg(long, default_value_t = 10_000_000)]
        switches: u64,
        /// Workload spec (default: the built-in busy-host spec, fixtures/synth/busy-host.toml).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Where to write the temporary traces (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the traces instead of deleting them.
        #[arg(long)]
        keep: bool,
        /// zstd level of the writer.
        #[arg(long, default_value_t = 1)]
        zstd_level: i32,
    },
}

pub fn run(w: What) -> CliResult {
    match w {
        What::Overhead {
            pairs,
            seconds,
            record_args,
        } => overhead(pairs, seconds, &record_args),
        What::Format {
            switches,
            spec,
            dir,
            keep,
            zstd_level,
        } => format(switches, spec, dir, keep, zstd_level),
    }
}

struct Row {
    name: &'static str,
    switches: u64,
    records: u64,
    switch_bytes: f64,
    file_bytes: f64,
    write: f64,
    push_ns: f64,
    bg_ns: f64,
    decode1: f64,
    decode2: f64,
    merged: f64,
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64() / 1e6
}

fn format(
    switches: u64,
    spec: Option<PathBuf>,
    dir: Option<PathBuf>,
    keep: bool,
    zstd_level: i32,
) -> CliResult {
    let mut base = match &spec {
        Some(p) => Spec::load(p)?,
        None => Spec::from_toml(BUSY_HOST)?,
    };
    base.max_switches = switches;
    base.duration_ms = 1e12; // run until max_switches
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let pool2 = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let variants: [(&'static str, bool, &str); 3] = [
        ("core fields", false, "off"),
        ("+counters +pelt=switch", true, "switch"),
        ("+counters +pelt=full", true, "full"),
    ];
    eprintln!(
        "bench format: {} switches per stream, {} tasks specs on {} CPUs, {} threads available",
        switches,
        base.tasks.len(),
        base.cpus,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rows = Vec::new();
    for (name, counters, pelt) in variants {
        let mut spec = base.clone();
        spec.counters = counters;
        spec.pelt = pelt.into();
        let path = dir.join(format!(
            "schedrec-bench-{}-{}.sched",
            std::process::id(),
            pelt
        ));
        let meta = schedrec_format::synth::metadata(&spec, spec.seed, vec![]);

        // Write cost on one core = time in `push` + the background thread's
        // busy time. Records are generated beforehand in small batches, so
        // that they are in cache when pushed, as a recorder's are.
        let opts = WriterOptions {
            zstd_level,
            ..Default::default()
        };
        let mut w = Writer::create(&path, &meta, opts)?;
        let stats = w.stats();
        let mut batch: Vec<Record> = Vec::with_capacity(8192);
        let mut pushing = Duration::ZERO;
        let mut records = 0u64;
        let mut drain = |batch: &mut Vec<Record>, w: &mut Writer| -> schedrec_format::Result<()> {
            let t = Instant::now();
            for r in batch.iter() {
                w.push(r)?;
            }
            pushing += t.elapsed();
            records += batch.len() as u64;
            batch.clear();
            Ok(())
        };
        generate(&spec, spec.seed, |r| {
            batch.push(r);
            if batch.len() == batch.capacity() {
                drain(&mut batch, &mut w)?;
            }
            Ok(())
        })?;
        drain(&mut batch, &mut w)?;
        drop(batch);
        // (finish() only waits for the background thread, whose time is
        // counted in busy_ns, and writes the footer.)
        w.finish()?;
        let ns = |a: &std::sync::atomic::AtomicU64| {
            Duration::from_nanos(a.load(std::sync::atomic::Ordering::Relaxed))
        };
        let busy = ns(&stats.busy_ns);
        // Time blocked on a full queue is waiting for the background thread,
        // whose work is already in `busy`.
        let pushing = pushing.saturating_sub(ns(&stats.blocked_ns));
        let spent = pushing + busy;

        let r = Reader::open(&path)?;
        let s = Summary::of(&r)?;
        let decode = |pool: &rayon::ThreadPool| -> Result<Duration, schedrec_format::Error> {
            let mut best = Duration::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                let n: usize = pool.install(|| {
                    r.par_decode(&Filter::default())
                        .map(|d| d.map(|d| d.len()))
                        .try_reduce(|| 0, |a, b| Ok(a + b))
                })?;
                best = best.min(t.elapsed());
                assert_eq!(n as u64, records);
            }
            Ok(best)
        };
        let d1 = decode(&pool1)?;
        let d2 = decode(&pool2)?;
        let t = Instant::now();
        let mut n = 0u64;
        pool1.install(|| -> schedrec_format::Result<()> {
            for rec in r.records(Filter::default()) {
                std::hint::black_box(rec?);
                n += 1;
            }
            Ok(())
        })?;
        let merged = t.elapsed();
        rows.push(Row {
            name,
            switches: s.switches,
            records,
            switch_bytes: s.bytes_per_switch,
            file_bytes: s.file_bytes as f64 / s.switches.max(1) as f64,
            write: rate(records, spent),
            push_ns: pushing.as_nanos() as f64 / records as f64,
            bg_ns: busy.as_nanos() as f64 / records as f64,
            decode1: rate(records, d1),
            decode2: rate(records, d2),
            merged: rate(n, merged),
        });
        if keep {
            eprintln!("kept {}", path.display());
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    println!(
        "| stream | switches | records | B/switch (switch chunks) | B/switch (whole file) | write Mrec/s (one core) | push + background ns/rec | decode 1 thread Mrec/s | decode 2 threads Mrec/s | 2T/1T | merged iteration Mrec/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} + {:.0} | {:.1} | {:.1} | {:.2} | {:.1} |",
            r.name,
            r.switches,
            r.records,
            r.switch_bytes,
            r.file_bytes,
            r.write,
            r.push_ns,
            r.bg_ns,
            r.decode1,
            r.decode2,
            r.decode2 / r.decode1,
            r.merged
        );
    }
    println!(
        "targets: write >= 5 Mrec/s, decode >= 30 Mrec/s per core, core <= 6 B/switch, counters+PELT <= 16 B/switch"
    );
    println!("peak RSS: {} MiB", peak_rss_kib() / 1024);
    Ok(())
}

/// VmHWM of this process, KiB (0 where /proc is unavailable).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn overhead(pairs: usize, seconds: f64, record_args: &str) -> CliResult {
    use schedrec_recorder::overhead::*;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("bench overhead records: run it as root".into());
    }
    let cfg = Config {
        exe: std::env::current_exe()?,
        pairs: pairs.max(1),
        seconds,
        dir: std::env::temp_dir(),
        record_args: record_args.split_whitespace().map(String::from).collect(),
    };
    eprintln!(
        "bench overhead: {} interleaved pairs (without, with `schedrec record {}`) per workload",
        cfg.pairs, record_args
    );
    let mut rows = vec![pingpong_row(&cfg)?];
    if have_perf() {
        rows.push(perf_pipe_row(&cfg)?);
    } else {
        eprintln!("bench overhead: perf is not installed: skipping `perf bench sched pipe`");
    }
    println!("| workload | ops/s without | ops/s with | throughput ratio (median of pairs) | BPF ns/switch | lost | recorder CPU | B/switch |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        println!(
            "| {} | {:.0} | {:.0} | {:.3} | {} | {} | {:.1} % | {:.2} |",
            r.workload,
            mean(&r.base),
            mean(&r.traced),
            r.ratio(),
            r.bpf_ns_per_switch
                .map_or("n/a".into(), |n| format!("{n:.0}")),
            r.lost,
            r.recorder_cpu * 100.0,
            r.bytes_per_switch
        );
    }
    Ok(())
}
