//! Built-in workloads: real threads with known behaviour, for tests, the
//! demo, benchmarks and experiments (`schedrec workload NAME`).

use std::time::{Duration, Instant};

use serde::Serialize;

/// What one thread of a workload did.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadReport {
    pub name: String,
    pub tid: u32,
    /// CPU time the thread consumed / its wall time.
    pub duty: f64,
    pub cpu_ns: u64,
    pub wall_ns: u64,
    pub iterations: u64,
    /// From /proc/<pid>/task/<tid>/status at the thread's end.
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub workload: String,
    pub pid: u32,
    pub seconds: f64,
    pub threads: Vec<ThreadReport>,
}

impl Report {
    pub fn switches_per_second(&self) -> f64 {
        let n: u64 = self
            .threads
            .iter()
            .map(|t| t.voluntary_switches + t.involuntary_switches)
            .sum();
        n as f64 / self.seconds.max(1e-9)
    }
}

/// A workload and its parameters.
#[derive(Clone, Debug)]
pub enum Workload {
    /// rt-app-like: run `duty * period` of CPU time every period, on absolute deadlines.
    Periodic {
        period_ms: f64,
        duty: f64,
        cpu: Option<u32>,
    },
    Hog {
        cpu: Option<u32>,
    },
    Burst {
        idle_ms: f64,
        burst_ms: f64,
        cpu: Option<u32>,
    },
    /// Short compute, then a blocking write + fdatasync (uninterruptible sleep).
    Io {
        run_us: f64,
        cpu: Option<u32>,
    },
    /// Periodic with a duty cycle that changes every `step_ms`.
    Step {
        duties: Vec<f64>,
        step_ms: f64,
        period_ms: f64,
        cpu: Option<u32>,
    },
    /// Two threads handing a token through pipes as fast as possible.
    Pingpong {
        cpu: Option<u32>,
    },
    /// Periodic, hog, burst, io and pingpong at once.
    Mixed,
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

fn thread_cpu_ns() -> u64 {
    crate::host::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn pin(cpu: Option<u32>) {
    if let Some(cpu) = cpu {
        if let Err(e) = crate::host::pin_thread(cpu) {
            eprintln!("schedrec: warning: cannot pin to CPU {cpu}: {e}");
        }
    }
}

/// Burns `ns` of this thread's CPU time (not wall time: preemption does not
/// shorten the work).
fn spin_cpu(ns: u64) {
    let end = thread_cpu_ns() + ns;
    let mut x = 0u64;
    while thread_cpu_ns() < end {
        for i in 0..200 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: absolute sleep on CLOCK_MONOTONIC; EINTR just returns early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        );
    }
}

fn now_ns() -> u64 {
    crate::host::clock_ns(libc::CLOCK_MONOTONIC)
}

fn ctx_switches() -> (u64, u64) {
    let path = format!("/proc/self/task/{}/status", gettid());
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// Runs `body` in a named thread and reports what it did.
fn thread(
    name: &str,
    body: impl FnOnce() -> u64 + Send + 'static,
) -> std::thread::JoinHandle<ThreadReport> {
    let name = name.to_string();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let (w0, c0) = (now_ns(), thread_cpu_ns());
            let iterations = body();
            let (wall_ns, cpu_ns) = (now_ns() - w0, thread_cpu_ns() - c0);
            let (v, i) = ctx_switches();
            ThreadReport {
                name,
                tid: gettid(),
                duty: cpu_ns as f64 / wall_ns.max(1) as f64,
                cpu_ns,
                wall_ns,
                iterations,
                voluntary_switches: v,
                involuntary_switches: i,
            }
        })
        .expect("spawn workload thread")
}

fn periodic_body(
    period_ms: f64,
    duties: Vec<f64>,
    step_ms: f64,
    cpu: Option<u32>,
    dur: Duration,
) -> impl FnOnce() -> u64 {
    move || {
        pin(cpu);
        let period = (period_ms * 1e6) as u64;
        let start = now_ns();
        let end = start + dur.as_nanos() as u64;
        let mut next = start;
        let mut n = 0;
        while next < end {
            let step = if step_ms > 0.0 {
                (((next - start) as f64 / (step_ms * 1e6)) as usize).min(duties.len() - 1)
            } else {
                0
            };
            spin_cpu((duties[step] * period as f64) as u64);
            n += 1;
            next += period; // absolute deadlines: no drift
            sleep_until(next);
        }
        n
    }
}

fn hog_body(cpu: Option<u32>, dur: Duration) -> impl FnOnce() -> u64 {
    move || {
        pin(cpu);
        let end = Instant::now() + dur;
        let mut n = 0;
        while Instant::now() < end {
            spin_cpu(1_000_000);
            n += 1;
        }
        n
    }
}

fn burst_body(
    idle_ms: f64,
    burst_ms: f64,
    cpu: Option<u32>,
    dur: Duration,
) -> impl FnOnce() -> u64 {
    move || {
        pin(cpu);
        let end = Instant::now() + dur;
        let mut n = 0;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs_f64(idle_ms / 1e3));
            spin_cpu((burst_ms * 1e6) as u64);
            n += 1;
        }
        n
    }
}

fn io_body(run_us: f64, cpu: Option<u32>, dur: Duration) -> impl FnOnce() -> u64 {
    move || {
        use std::io::Write;
        pin(cpu);
        let dir = std::path::Path::new("/var/tmp");
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("schedrec-io-{}-{}", std::process::id(), gettid()));
        let mut f = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "schedrec: io workload: cannot create {}: {e}",
                    path.display()
                );
                return 0;
            }
        };
        let block = vec![0x5au8; 4096];
        let end = Instant::now() + dur;
        let mut n = 0;
        while Instant::now() < end {
            spin_cpu((run_us * 1e3) as u64);
            // A synchronous write waits for the device: uninterruptible sleep.
            let _ = f.write_all(&block).and_then(|_| f.sync_data());
            n += 1;
            if n % 256 == 0 {
                let _ = f.set_len(0);
            }
        }
        let _ = std::fs::remove_file(&path);
        n
    }
}

fn pingpong(cpu: Option<u32>, dur: Duration) -> Vec<std::thread::JoinHandle<ThreadReport>> {
    use std::io::{Read, Write};
    let (mut a_rx, mut b_tx) = pipe();
    let (mut b_rx, mut a_tx) = pipe();
    let ping = thread("ping", move || {
        pin(cpu);
        let end = Instant::now() + dur;
        let mut b = [0u8; 1];
        let mut n = 0u64;
        loop {
            let last = n % 1024 == 0 && Instant::now() >= end;
            b[0] = if last { b'q' } else { b'p' };
            if a_tx.write_all(&b).is_err() || last {
                break;
            }
            if a_rx.read_exact(&mut b).is_err() {
                break;
            }
            n += 1;
        }
        n
    });
    let pong = thread("pong", move || {
        pin(cpu);
        let mut b = [0u8; 1];
        let mut n = 0u64;
        while b_rx.read_exact(&mut b).is_ok() && b[0] != b'q' {
            if b_tx.write_all(&b).is_err() {
                break;
            }
            n += 1;
        }
        n
    });
    vec![ping, pong]
}

fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0, "pipe2");
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

pub fn run(w: &Workload, dur: Duration) -> Report {
    let t0 = Instant::now();
    let (name, handles) = match w.clone() {
        Workload::Periodic {
            period_ms,
            duty,
            cpu,
        } => (
            "periodic",
            vec![thread(
                "periodic",
                periodic_body(period_ms, vec![duty], 0.0, cpu, dur),
            )],
        ),
        Workload::Step {
            duties,
            step_ms,
            period_ms,
            cpu,
        } => (
            "step",
            vec![thread(
                "step",
                periodic_body(period_ms, duties, step_ms, cpu, dur),
            )],
        ),
        Workload::Hog { cpu } => ("hog", vec![thread("hog", hog_body(cpu, dur))]),
        Workload::Burst {
            idle_ms,
            burst_ms,
            cpu,
        } => (
            "burst",
            vec![thread("burst", burst_body(idle_ms, burst_ms, cpu, dur))],
        ),
        Workload::Io { run_us, cpu } => ("io", vec![thread("io", io_body(run_us, cpu, dur))]),
        Workload::Pingpong { cpu } => ("pingpong", pingpong(cpu, dur)),
        Workload::Mixed => {
            let mut h = vec![
                thread("periodic", periodic_body(16.0, vec![0.3], 0.0, None, dur)),
                thread("hog", hog_body(None, dur)),
                thread("burst", burst_body(200.0, 50.0, None, dur)),
                thread("io", io_body(200.0, None, dur)),
            ];
            h.extend(pingpong(None, dur));
            ("mixed", h)
        }
    };
    let threads = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    Report {
        workload: name.into(),
        pid: std::process::id(),
        seconds: t0.elapsed().as_secs_f64(),
        threads,
    }
}
