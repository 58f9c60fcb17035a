//! Per-CPU perf events for the counter slots, read by the BPF program at
//! every switch with bpf_perf_event_read_value.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys as sys;

/// A counter the user asked for: a generic name or a raw event ("r01c2").
#[derive(Clone, Debug)]
pub struct CounterSpec {
    pub name: String,
    pub type_: u32,
    pub config: u64,
}

pub const DEFAULT_COUNTERS: [&str; 4] =
    ["cycles", "instructions", "cache-references", "cache-misses"];

pub fn parse_counter(name: &str) -> Result<CounterSpec, String> {
    let (type_, config) = match name {
        "cycles" | "cpu-cycles" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_CPU_CYCLES as u64,
        ),
        "instructions" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_INSTRUCTIONS as u64,
        ),
        "cache-references" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_CACHE_REFERENCES as u64,
        ),
        "cache-misses" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_CACHE_MISSES as u64,
        ),
        "branches" | "branch-instructions" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_BRANCH_INSTRUCTIONS as u64,
        ),
        "branch-misses" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_BRANCH_MISSES as u64,
        ),
        "ref-cycles" => (
            sys::PERF_TYPE_HARDWARE,
            sys::PERF_COUNT_HW_REF_CPU_CYCLES as u64,
        ),
        "cpu-clock" => (sys::PERF_TYPE_SOFTWARE, sys::PERF_COUNT_SW_CPU_CLOCK as u64),
        "task-clock" => (
            sys::PERF_TYPE_SOFTWARE,
            sys::PERF_COUNT_SW_TASK_CLOCK as u64,
        ),
        raw if raw.starts_with('r') && raw.len() > 1 => (
            sys::PERF_TYPE_RAW,
            u64::from_str_radix(&raw[1..], 16)
                .map_err(|_| format!("bad raw event {raw:?} (expected rHEX, e.g. r01c2)"))?,
        ),
        other => {
            return Err(format!(
            "unknown counter {other:?}: use cycles, instructions, cache-references, cache-misses, \
                 branches, branch-misses, ref-cycles, cpu-clock, task-clock or a raw event rHEX"
        ))
        }
    };
    Ok(CounterSpec {
        name: name.to_string(),
        type_,
        config,
    })
}

fn open_one(spec: &CounterSpec, cpu: u32) -> std::io::Result<OwnedFd> {
    let mut attr = sys::perf_event_attr {
        type_: spec.type_,
        size: std::mem::size_of::<sys::perf_event_attr>() as u32,
        config: spec.config,
        ..Default::default()
    };
    // Report enabled/running times, so multiplexing shows and can be scaled.
    attr.read_format =
        (sys::PERF_FORMAT_TOTAL_TIME_ENABLED | sys::PERF_FORMAT_TOTAL_TIME_RUNNING) as u64;
    // SAFETY: perf_event_open with a valid attr; the fd is owned on success.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const sys::perf_event_attr,
            -1i32,
            cpu as i32,
            -1i32,
            sys::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One counter slot: open on every online CPU, or unavailable with the reason.
pub struct Slot {
    pub spec: CounterSpec,
    pub fds: Vec<(u32, OwnedFd)>,
    pub unavailable: Option<String>,
}

impl Slot {
    pub fn fd_pairs(&self) -> impl Iterator<Item = (u32, i32)> + '_ {
        self.fds.iter().map(|(cpu, fd)| (*cpu, fd.as_raw_fd()))
    }
}

pub fn open_slots(specs: &[CounterSpec], cpus: &[u32]) -> Vec<Slot> {
    specs
        .iter()
        .map(|spec| {
            let mut fds = Vec::new();
            let mut unavailable = None;
            for &cpu in cpus {
                match open_one(spec, cpu) {
                    Ok(fd) => fds.push((cpu, fd)),
                    Err(e) => {
                        let why = match e.raw_os_error() {
                            Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => {
                                "no PMU for it".to_string()
                            }
                            Some(libc::EACCES) | Some(libc::EPERM) => {
                                "permission denied (needs CAP_PERFMON)".to_string()
                            }
                            _ => e.to_string(),
                        };
                        unavailable = Some(why);
                        fds.clear();
                        break;
                    }
                }
            }
            Slot {
                spec: spec.clone(),
                fds,
                unavailable,
            }
        })
        .collect()
}
