//! `schedrec dump`

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use schedrec_format::{Filter, Kind, Reader, Record, CPU_NONE};

use crate::out::{secs, CliResult};

#[derive(clap::Args)]
pub struct Args {
    file: PathBuf,
    /// Only these kinds (switch, wakeup, task, migrate, pelt, cpu_freq, loss, marker); repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    kind: Vec<String>,
    /// Only records of this CPU's stream.
    #[arg(long)]
    cpu: Option<u32>,
    /// Only records about this pid.
    #[arg(long)]
    pid: Option<u32>,
    /// Only records at or after this timestamp (ns, the trace's clock).
    #[arg(long)]
    from: Option<u64>,
    /// Only records at or before this timestamp (ns).
    #[arg(long)]
    to: Option<u64>,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    jsonl: bool,
}

pub fn run(a: Args) -> CliResult {
    let kinds = if a.kind.is_empty() {
        None
    } else {
        let mut ks = Vec::new();
        for k in &a.kind {
            ks.push(Kind::from_name(k).ok_or_else(|| {
                format!("unknown kind {k:?}: use switch, wakeup, task, migrate, pelt, cpu_freq, loss or marker")
            })?);
        }
        Some(ks)
    };
    let r = Reader::open(&a.file)?;
    if !r.is_complete() {
        eprintln!(
            "schedrec: warning: {} is incomplete, showing what was recovered: {}",
            a.file.display(),
            r.recovery().unwrap_or("")
        );
    }
    let filter = Filter {
        kinds,
        cpu: a.cpu,
        pid: a.pid,
        from: a.from,
        to: a.to,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut comms: HashMap<u32, String> = HashMap::new();
    let counters: Vec<&str> = r.meta().counters.iter().map(|c| c.name.as_str()).collect();
    // Names come from task records, which may be filtered out: learn them
    // first (the latest name of each pid: threads rename themselves).
    if !a.jsonl {
        let tasks = Filter {
            kinds: Some(vec![Kind::Task]),
            ..Default::default()
        };
        for rec in r.records(tasks) {
            if let Record::Task(t) = rec? {
                comms.insert(t.pid, String::from_utf8_lossy(&t.comm).into_owned());
            }
        }
    }
    let limit = a
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    for rec in r.records(filter).take(limit) {
        let rec = rec?;
        if a.jsonl {
            serde_json::to_writer(&mut out, &rec)?;
            out.write_all(b"\n")?;
        } else {
            writeln!(out, "{}", text(&rec, &comms, &counters))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `prev_state` as `ps` shows it: the lowest state bit's letter (the raw
/// value also carries flags such as TASK_FREEZABLE), R+ for a preemption.
fn state(s: u32, preempt: bool) -> String {
    if s == 0 {
        return if preempt { "R+".into() } else { "R".into() };
    }
    if s & 0x402 == 0x402 {
        return "I".into();
    }
    for (bit, c) in [
        (0x1, "S"),
        (0x2, "D"),
        (0x4, "T"),
        (0x8, "t"),
        (0x10, "X"),
        (0x20, "Z"),
        (0x40, "P"),
        (0x80, "X"),
    ] {
        if s & bit != 0 {
            return c.into();
        }
    }
    format!("{s:#x}")
}

fn name(pid: u32, comms: &HashMap<u32, String>) -> String {
    match (pid, comms.get(&pid)) {
        (0, _) => "idle/0".into(),
        (p, Some(c)) => format!("{c}/{p}"),
        (p, None) => format!("?/{p}"),
    }
}

/// One line per record; `counters` are the header's slot names.
fn text(r: &Record, comms: &HashMap<u32, String>, counters: &[&str]) -> String {
    let cpu = match r.cpu() {
        CPU_NONE => "  -".to_string(),
        c => format!("{c:>3}"),
    };
    let head = format!("{} cpu{cpu} {:<8}", secs(r.ts()), r.kind().name());
    let body = match r {
        Record::Switch(s) => {
            let mut b = format!(
                "{} prio={} {} -> {} prio={}",
                name(s.prev.pid, comms),
                s.prev.prio,
                state(s.prev_state, s.preempt),
                name(s.next.pid, comms),
                s.next.prio
            );
            for (k, c) in s.counters.iter().enumerate() {
                if let Some(c) = c {
                    b += &format!(" {}={}", counters.get(k).unwrap_or(&"counter"), c.value);
                }
            }
            if let Some(p) = &s.prev_pelt {
                b += &format!(
                    " util={} load={} runnable={} util_est={} lut={}{}{}",
                    p.util_avg,
                    p.load_avg,
                    p.runnable_avg,
                    p.util_est & 0x7fff_ffff,
                    p.last_update_time,
                    if p.on_rq { " on_rq" } else { "" },
                    if p.sched_delayed { " delayed" } else { "" }
                );
            }
            b
        }
        Record::Wakeup(w) => format!(
            "{}{} -> cpu{}{}",
            name(w.pid, comms),
            if w.new { " (new)" } else { "" },
            w.target_cpu,
            w.pelt
                .map(|p| format!(" util={} lut={}", p.util_avg, p.last_update_time))
                .unwrap_or_default()
        ),
        Record::Task(t) => format!(
            "{} {} pid={} tgid={} ppid={} prio={} policy={}",
            String::from_utf8_lossy(&t.comm),
            t.event.name(),
            t.pid,
            t.tgid,
            t.ppid,
            t.prio,
            t.policy
        ),
        Record::Migrate(m) => format!(
            "{} cpu{} -> cpu{}",
            name(m.pid, comms),
            m.orig_cpu,
            m.dest_cpu
        ),
        Record::Pelt(p) => format!(
            "{} rq_cpu={} pid={} util={} load={} runnable={} util_est={} lut={}",
            p.entity.name(),
            p.rq_cpu,
            p.pid,
            p.avg.util_avg,
            p.avg.load_avg,
            p.avg.runnable_avg,
            p.avg.util_est,
            p.avg.last_update_time
        ),
        Record::CpuFreq(f) => format!("cpu{} {} kHz", f.target_cpu, f.freq_khz),
        Record::Loss(l) => format!("{} events lost until {}", l.count, secs(l.end_ts)),
        Record::Marker(m) => String::from_utf8_lossy(&m.text).into_owned(),
    };
    format!("{head} {body}")
}
