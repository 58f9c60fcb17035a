//! Recording overhead, measured side by side: interleaved runs of a
//! switch-heavy workload without and with `schedrec record` running
//! (A B A B …), BPF cost per event from the kernel's own bpf_stats, losses,
//! the recorder's CPU time and the file's bytes per switch.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One measured configuration.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub workload: String,
    /// Throughput without recording, per pair (ops/s).
    pub base: Vec<f64>,
    /// Throughput while recording, per pair.
    pub traced: Vec<f64>,
    /// ns per run of the sched_switch program (bpf_stats), averaged over runs.
    pub bpf_ns_per_switch: Option<f64>,
    pub lost: u64,
    /// Recorder CPU seconds per second recorded.
    pub recorder_cpu: f64,
    pub bytes_per_switch: f64,
    pub switches: u64,
}

impl Row {
    /// Median of the per-pair ratios traced/base.
    pub fn ratio(&self) -> f64 {
        let mut r: Vec<f64> = self
            .base
            .iter()
            .zip(&self.traced)
            .map(|(b, t)| t / b)
            .collect();
        r.sort_by(|a, b| a.total_cmp(b));
        r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

pub struct Config {
    /// The schedrec binary (to run `record` and `workload`).
    pub exe: PathBuf,
    pub pairs: usize,
    pub seconds: f64,
    pub dir: PathBuf,
    /// Extra `record` arguments (e.g. --pelt full, --no-counters).
    pub record_args: Vec<String>,
}

fn pingpong(cfg: &Config) -> Result<f64, String> {
    let out = Command::new(&cfg.exe)
        .args(["workload", "pingpong", "--cpu", "0", "--json", "--duration"])
        .arg(cfg.seconds.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("pingpong report: {e}"))?;
    let iters = v["threads"][0]["iterations"].as_f64().unwrap_or(0.0);
    Ok(iters / v["seconds"].as_f64().unwrap_or(1.0))
}

fn perf_pipe(loops: u32) -> Result<f64, String> {
    let out = Command::new("taskset")
        .args(["-c", "0", "perf", "bench", "sched", "pipe", "-l"])
        .arg(loops.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix("ops/sec")
                .map(|s| s.trim().to_string())
        })
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .ok_or_else(|| format!("could not read perf bench output: {text}"))
}

pub fn have_perf() -> bool {
    Command::new("perf")
        .args(["bench", "sched", "pipe", "-l", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_recorder(cfg: &Config, out: &Path) -> Result<Child, String> {
    let child = Command::new(&cfg.exe)
        .args(["record", "-q", "-o"])
        .arg(out)
        .args(&cfg.record_args)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Let it load and attach.
    std::thread::sleep(Duration::from_millis(800));
    Ok(child)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm.
    let ticks: f64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Sum of run_time_ns and run_cnt of loaded programs named `name`.
fn bpf_stats(name: &str) -> (u64, u64) {
    let mut t = (0, 0);
    for p in libbpf_rs::query::ProgInfoIter::default() {
        if p.name.to_string_lossy() == name {
            t.0 += p.run_time_ns;
            t.1 += p.run_cnt;
        }
    }
    t
}

struct BpfStatsOn(Option<String>);
impl BpfStatsOn {
    fn enable() -> Self {
        let path = "/proc/sys/kernel/bpf_stats_enabled";
        let old = std::fs::read_to_string(path).ok();
        let _ = std::fs::write(path, "1");
        BpfStatsOn(old)
    }
}
impl Drop for BpfStatsOn {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", old.trim());
        }
    }
}

/// Runs A/B pairs of `workload` (returns ops/s) with and without recording.
pub fn measure(
    cfg: &Config,
    name: &str,
    mut workload: impl FnMut(&Config) -> Result<f64, String>,
) -> Result<Row, String> {
    let _stats = BpfStatsOn::enable();
    let mut row = Row {
        workload: name.into(),
        ..Default::default()
    };
    let (mut bpf_t, mut bpf_n, mut cpu, mut secs, mut bytes) = (0u64, 0u64, 0.0, 0.0, 0u64);
    for i in 0..cfg.pairs {
        row.base.push(workload(cfg)?);
        let out = cfg
            .dir
            .join(format!("overhead-{}-{i}.sched", std::process::id()));
        let mut rec = start_recorder(cfg, &out)?;
        let (t0, n0) = bpf_stats("switch_btf");
        let c0 = cpu_seconds(rec.id());
        let started = std::time::Instant::now();
        let r = workload(cfg);
        let (t1, n1) = bpf_stats("switch_btf");
        cpu += cpu_seconds(rec.id()) - c0;
        secs += started.elapsed().as_secs_f64();
        // SAFETY: signalling our own child; it finishes the file on SIGINT.
        unsafe { libc::kill(rec.id() as i32, libc::SIGINT) };
        let _ = rec.wait();
        row.traced.push(r?);
        bpf_t += t1 - t0;
        bpf_n += n1 - n0;
        let reader = schedrec_format::Reader::open(&out).map_err(|e| e.to_string())?;
        let s = schedrec_format::Summary::of(&reader).map_err(|e| e.to_string())?;
        row.lost += s.lost_events;
        row.switches += s.switches;
        bytes += s.file_bytes;
        let _ = std::fs::remove_file(&out);
    }
    if bpf_n > 0 {
        row.bpf_ns_per_switch = Some(bpf_t as f64 / bpf_n as f64);
    }
    row.recorder_cpu = cpu / secs.max(1e-9);
    row.bytes_per_switch = bytes as f64 / row.switches.max(1) as f64;
    Ok(row)
}

pub fn pingpong_row(cfg: &Config) -> Result<Row, String> {
    measure(cfg, "pingpong (2 threads, 1 CPU)", pingpong)
}

pub fn perf_pipe_row(cfg: &Config) -> Result<Row, String> {
    measure(cfg, "perf bench sched pipe -l 200000 (1 CPU)", |_| {
        perf_pipe(200_000)
    })
}
