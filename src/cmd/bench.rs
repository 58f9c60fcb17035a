//! `schedrec bench`: benchmarks that print their figures side by side in one
//! run, so ratios are measured under the same conditions.

use std::path::PathBuf;

use schedrec_format::bench::measure_stream;
use schedrec_format::synth::Spec;

use crate::out::CliResult;

/// The benchmark stream: ~100 tasks (hogs, periodic, bursty, I/O-like,
/// fork/exit churn) on 2 CPUs.
const BUSY_HOST: &str = include_str!("../../fixtures/synth/busy-host.toml");

#[derive(clap::Subcommand)]
pub enum What {
    /// Recording overhead: interleaved runs without recording, with `record --hooks-only` and with `schedrec record`, and other tracers where installed (root).
    Overhead {
        /// Interleaved rounds per workload, each one run without recording,
        /// one with `record --hooks-only` (the floor), one recording.
        #[arg(long, alias = "pairs", default_value_t = 10)]
        rounds: usize,
        /// Seconds per pingpong run.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Extra arguments for `schedrec record`, e.g. "--pelt full".
        #[arg(long, default_value = "")]
        record_args: String,
    },
    /// Replay throughput (switches/s) on 1 and 2 cores, and peak memory
    /// at two trace lengths, on synthetic busy-host traces with PELT.
    Replay {
        /// Switches in the long trace (the short one has a tenth).
        #[arg(long, default_value_t = 10_000_000)]
        switches: u64,
        /// Where to write the temporary traces (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the traces instead of deleting them.
        #[arg(long)]
        keep: bool,
    },
    /// `analyze` and `report` on one synthetic busy-host trace (PELT at
    /// switch): wall time and peak RSS of each, with the replay alone for
    /// reference; each a separate process on every core.
    Analyze {
        /// Switches in the trace.
        #[arg(long, default_value_t = 10_000_000)]
        switches: u64,
        /// Where to write the temporary trace and report (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the trace and report instead of deleting them.
        #[arg(long)]
        keep: bool,
    },
    /// Reads FILE and nothing else: every chunk decoded (checksum, zstd,
    /// columns), or with --merged every record built in time order. The
    /// reading part of a replay, timed by `bench replay` as a child.
    #[command(hide = true)]
    Read {
        file: PathBuf,
        #[arg(long)]
        merged: bool,
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
            rounds,
            seconds,
            record_args,
        } => overhead(rounds, seconds, &record_args),
        What::Format {
            switches,
            spec,
            dir,
            keep,
            zstd_level,
        } => format(switches, spec, dir, keep, zstd_level),
        What::Replay {
            switches,
            dir,
            keep,
        } => replay(switches, dir, keep),
        What::Analyze {
            switches,
            dir,
            keep,
        } => analyze(switches, dir, keep),
        What::Read { file, merged } => read(&file, merged),
    }
}

fn read(file: &std::path::Path, merged: bool) -> CliResult {
    use rayon::prelude::*;
    let r = schedrec_format::Reader::open(file)?;
    let filter = schedrec_format::Filter::default();
    let n = if merged {
        // As the replay reads: batches filled in place.
        r.with_records(filter, |mut recs| {
            let (mut n, mut buf) = (0u64, Vec::new());
            loop {
                buf.clear();
                if recs.fill(&mut buf, 1 << 14) == 0 {
                    return Ok::<u64, schedrec_format::Error>(n);
                }
                for rec in buf.drain(..) {
                    rec?;
                    n += 1;
                }
            }
        })?
    } else {
        r.par_decode(&filter)
            .map(|d| d.map(|d| d.len() as u64))
            .try_reduce(|| 0, |a, b| Ok(a + b))?
    };
    println!("{n}");
    Ok(())
}

/// Runs `schedrec replay FILE` as a child on `threads` CPUs: (wall
/// seconds, the child's peak RSS in KiB).
fn timed_replay(
    file: &std::path::Path,
    threads: usize,
) -> Result<(f64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let f = file.to_string_lossy();
    timed_child(&["replay", &f, "--json", "--quiet"], threads)
}

/// Runs `schedrec ARGS` as a child on `threads` CPUs (the first ones this
/// process may use; all its threads pinned there — the replay's reading
/// thread too) with as many rayon threads: (wall seconds, the child's peak
/// RSS in KiB).
fn timed_child(
    args: &[&str],
    threads: usize,
) -> Result<(f64, u64), Box<dyn std::error::Error + Send + Sync>> {
    use std::os::unix::process::CommandExt;
    let t0 = std::time::Instant::now();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(args)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stdout(std::process::Stdio::null());
    // The first `threads` CPUs this process may run on (a cpuset need not
    // start at CPU 0).
    // SAFETY: an all-zero cpu_set_t is a valid empty set; the calls only
    // read and write the two sets owned here.
    let set = unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let mut n = 0;
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if n < threads && libc::CPU_ISSET(cpu, &allowed) {
                libc::CPU_SET(cpu, &mut set);
                n += 1;
            }
        }
        set
    };
    // SAFETY: between fork and exec the hook only calls the async-signal-
    // safe sched_setaffinity on a set it owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into locals we own.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let secs = t0.elapsed().as_secs_f64();
    if r < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("schedrec {} failed", args.join(" ")).into());
    }
    Ok((secs, ru.ru_maxrss as u64))
}

fn replay(switches: u64, dir: Option<PathBuf>, keep: bool) -> CliResult {
    if switches < 10 {
        return Err(
            "bench replay: --switches must be at least 10 (the short trace has a tenth)".into(),
        );
    }
    use schedrec_format::synth::write_file;
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let mut base = Spec::from_toml(BUSY_HOST)?;
    base.duration_ms = 1e12; // run until max_switches
    base.counters = false;
    base.pelt = "switch".into();
    eprintln!(
        "bench replay: busy-host synth traces (PELT at switch) of {} and {} switches; each replay a separate process",
        switches / 10,
        switches
    );
    let mut rows = Vec::new();
    let mut ceiling = None;
    for n in [switches / 10, switches] {
        let mut spec = base.clone();
        spec.max_switches = n;
        let path = dir.join(format!(
            "schedrec-bench-replay-{}-{n}.sched",
            std::process::id()
        ));
        let opts = schedrec_format::WriterOptions {
            mode: 0o644,
            ..Default::default()
        };
        let st = write_file(&spec, spec.seed, &path, vec!["bench".into()], opts)?;
        for threads in [1usize, 2] {
            let (secs, rss) = timed_replay(&path, threads)?;
            rows.push((st.switches, threads, secs, rss));
        }
        if n == switches {
            // What reading alone costs on one core: the ceiling of a replay.
            let f = path.to_string_lossy();
            let (decode, _) = timed_child(&["bench", "read", &f], 1)?;
            let (merged, _) = timed_child(&["bench", "read", &f, "--merged"], 1)?;
            ceiling = Some((st.switches as f64 / decode, st.switches as f64 / merged));
        }
        if keep {
            eprintln!("kept {}", path.display());
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    println!("| switches | cores | seconds | M switches/s | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---:|");
    for (n, t, secs, rss) in &rows {
        println!(
            "| {n} | {t} | {secs:.2} | {:.2} | {} |",
            *n as f64 / secs / 1e6,
            rss / 1024
        );
    }
    let speed = |i: usize| rows[i].0 as f64 / rows[i].2;
    println!(
        "2 cores / 1 core: {:.2} (short), {:.2} (long); peak RSS long / short: {:.2}",
        speed(1) / speed(0),
        speed(3) / speed(2),
        rows[2].3 as f64 / rows[0].3.max(1) as f64
    );
    if let Some((decode, merged)) = ceiling {
        println!(
            "reading the long trace alone on 1 core: {:.2} M switches/s decoding the chunks, {:.2} M switches/s building its records in time order",
            decode / 1e6,
            merged / 1e6
        );
    }
    println!("targets: >= 20 M switches/s per core, >= 1.8x on 2 cores, memory independent of trace length");
    Ok(())
}

fn analyze(switches: u64, dir: Option<PathBuf>, keep: bool) -> CliResult {
    use schedrec_format::synth::write_file;
    if switches < 10 {
        return Err("bench analyze: --switches must be at least 10".into());
    }
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let mut spec = Spec::from_toml(BUSY_HOST)?;
    spec.duration_ms = 1e12; // run until max_switches
    spec.max_switches = switches;
    spec.pelt = "switch".into();
    let path = dir.join(format!(
        "schedrec-bench-analyze-{}.sched",
        std::process::id()
    ));
    let out = dir.join(format!("schedrec-bench-report-{}", std::process::id()));
    let opts = schedrec_format::WriterOptions {
        mode: 0o644,
        ..Default::default()
    };
    let st = write_file(&spec, spec.seed, &path, vec!["bench".into()], opts)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench analyze: busy-host synth trace of {} switches (PELT at switch, counters); {threads} threads; each step a separate process",
        st.switches
    );
    let (f, o) = (path.to_string_lossy(), out.to_string_lossy());
    let steps: [(&str, Vec<&str>); 3] = [
        (
            "replay (part of both)",
            vec!["replay", &f, "--json", "--quiet"],
        ),
        ("analyze --json", vec!["analyze", &f, "--json"]),
        ("report", vec!["report", &f, "-o", &o]),
    ];
    let mut rows = vec![];
    let mut failed = None;
    for (name, args) in &steps {
        match timed_child(args, threads) {
            Ok((secs, rss)) => rows.push((*name, secs, rss)),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // The trace is GBs: never leave it behind on a failure.
    let cleanup = || {
        if keep {
            eprintln!("kept {} and {}", path.display(), out.display());
        } else {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_dir_all(&out);
        }
    };
    if let Some(e) = failed {
        cleanup();
        return Err(e);
    }
    println!("| step | switches | seconds | M switches/s | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    for (name, secs, rss) in &rows {
        println!(
            "| {name} | {} | {secs:.1} | {:.2} | {} |",
            st.switches,
            st.switches as f64 / secs / 1e6,
            rss / 1024
        );
    }
    println!(
        "targets: analyze and report each < 15 s and < 2 GiB peak RSS on 10 M switches (2 cores)"
    );
    cleanup();
    Ok(())
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

        let f = measure_stream(&spec, &path, zstd_level)?;
        rows.push((name, f));
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
    for (name, r) in &rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} + {:.0} | {:.1} | {:.1} | {:.2} | {:.1} |",
            name,
            r.switches,
            r.records,
            r.switch_bytes,
            r.file_bytes,
            r.write,
            r.push_ns,
            r.background_ns,
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

fn overhead(rounds: usize, seconds: f64, record_args: &str) -> CliResult {
    use schedrec_recorder::overhead::*;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("bench overhead records: run it as root".into());
    }
    let cfg = Config {
        exe: std::env::current_exe()?,
        rounds: rounds.max(1),
        seconds,
        dir: std::env::temp_dir(),
        record_args: record_args.split_whitespace().map(String::from).collect(),
    };
    eprintln!(
        "bench overhead: {} interleaved rounds (without, `record --hooks-only`, `record {}`) per workload",
        cfg.rounds, record_args
    );
    let mut rows = vec![pingpong_row(&cfg)?];
    if have_perf() {
        rows.push(perf_pipe_row(&cfg)?);
        for tool in &TOOLS {
            if !tool.installed() {
                eprintln!(
                    "bench overhead: {} is not installed: not compared",
                    tool.argv[0]
                );
                continue;
            }
            match tool_row(&cfg, tool) {
                Ok(r) => rows.push(r),
                Err(e) => eprintln!("bench overhead: not compared: {e}"),
            }
        }
    } else {
        eprintln!("bench overhead: perf is not installed: skipping `perf bench sched pipe` and the other tracers");
    }
    println!("| workload | ops/s without | ops/s with | throughput ratio (median of rounds) | floor: hooks only | BPF ns per switch: switch program / all programs | lost | recorder CPU | B/switch |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        println!(
            "| {} | {:.0} | {:.0} | {:.3} | {} | {} | {} | {:.1} % | {:.2} |",
            r.workload,
            mean(&r.base),
            mean(&r.traced),
            r.ratio(),
            if r.other_tracer {
                "-".into()
            } else {
                format!("{:.3}", r.hooks_ratio())
            },
            match (r.bpf_switch_ns, r.bpf_ns_per_switch) {
                (Some(s), Some(a)) => format!("{s:.0} / {a:.0}"),
                _ if r.other_tracer => "-".into(),
                _ => "n/a".into(),
            },
            if r.other_tracer {
                "-".into()
            } else {
                r.lost.to_string()
            },
            r.recorder_cpu * 100.0,
            r.bytes_per_switch
        );
    }
    Ok(())
}
