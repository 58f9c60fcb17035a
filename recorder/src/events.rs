//! The ring-buffer records of `bpf/schedrec.h`, mirrored with `#[repr(C)]`
//! (sizes checked at compile time on both sides), and their conversion to
//! trace-format records.

use std::mem::size_of;

use schedrec_format as fmt;

pub const EV_SWITCH: u16 = 1;
pub const EV_SWITCH_FULL: u16 = 2;
pub const EV_WAKEUP: u16 = 3;
pub const EV_WAKEUP_FULL: u16 = 4;
pub const EV_TASK: u16 = 5;
pub const EV_MIGRATE: u16 = 6;
pub const EV_PELT: u16 = 7;
pub const EV_FREQ: u16 = 8;
const F_PREEMPT: u16 = 1;
const F_NEW: u16 = 1;
const PELT_ON_RQ: u32 = 1;
const PELT_DELAYED: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Hdr {
    pub ts: u64,
    pub cpu: u32,
    pub kind: u16,
    pub flags: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Avg {
    pub runnable_avg: u64,
    pub util_avg: u64,
    pub load_avg: u64,
    pub last_update_time: u64,
    pub util_est: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Sums {
    pub load_sum: u64,
    pub runnable_sum: u64,
    pub util_sum: u64,
    pub period_contrib: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctr {
    pub value: u64,
    pub enabled: u64,
    pub running: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchEv {
    pub h: Hdr,
    pub prev_pid: u32,
    pub prev_tgid: u32,
    pub next_pid: u32,
    pub next_tgid: u32,
    pub prev_prio: i32,
    pub next_prio: i32,
    pub prev_state: u32,
    pub pad: u32,
    pub prev: Avg,
}

/// Follows a switch record when any counter slot is open.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CountersEv {
    pub c: [Ctr; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SwitchFullEv {
    pub s: SwitchEv,
    pub prev_sums: Sums,
    pub next: Avg,
    pub next_sums: Sums,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WakeupEv {
    pub h: Hdr,
    pub pid: u32,
    pub target_cpu: u32,
    pub avg: Avg,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WakeupFullEv {
    pub w: WakeupEv,
    pub sums: Sums,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskEv {
    pub h: Hdr,
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub prio: i32,
    pub policy: u32,
    pub event: u32,
    pub comm: [u8; 16],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MigrateEv {
    pub h: Hdr,
    pub pid: u32,
    pub orig_cpu: u32,
    pub dest_cpu: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PeltEv {
    pub h: Hdr,
    pub entity: u32,
    pub rq_cpu: u32,
    pub pid: u32,
    pub pad: u32,
    pub avg: Avg,
    pub sums: Sums,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FreqEv {
    pub h: Hdr,
    pub target_cpu: u32,
    pub freq_khz: u32,
}

/// Per-CPU state (`struct sr_cpu`): four perf readings, the loss counter
/// (offset 96) and the time of the latest loss (offset 104), the last pid,
/// a 64-entry cache of known pids, the buffer's busy flag.
pub const CPU_STATE_LEN: usize = 4 * 24 + 16 + 8 + 64 * 4 + 8;

const _: () = {
    assert!(size_of::<Hdr>() == 16);
    assert!(size_of::<Avg>() == 40);
    assert!(size_of::<Sums>() == 32);
    assert!(size_of::<SwitchEv>() == 88);
    assert!(size_of::<SwitchFullEv>() == 192);
    assert!(size_of::<CountersEv>() == 96);
    assert!(size_of::<WakeupEv>() == 64);
    assert!(size_of::<WakeupFullEv>() == 96);
    assert!(size_of::<TaskEv>() == 56);
    assert!(size_of::<MigrateEv>() == 32);
    assert!(size_of::<PeltEv>() == 104);
    assert!(size_of::<FreqEv>() == 24);
};

/// Reads a `T` from the start of `b` (ring-buffer records are not aligned
/// for Rust's purposes). All-integer `repr(C)` types only.
fn read<T: Copy + Default>(b: &[u8]) -> Option<T> {
    if b.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: `T` is a plain `repr(C)` struct of integers (every bit
    // pattern is valid), and `b` holds at least size_of::<T>() bytes.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) })
}

fn avg(a: &Avg) -> fmt::PeltAvg {
    fmt::PeltAvg {
        util_avg: a.util_avg,
        load_avg: a.load_avg,
        runnable_avg: a.runnable_avg,
        util_est: a.util_est,
        last_update_time: a.last_update_time,
        on_rq: a.flags & PELT_ON_RQ != 0,
        sched_delayed: a.flags & PELT_DELAYED != 0,
    }
}

fn sums(s: &Sums) -> fmt::PeltSums {
    fmt::PeltSums {
        load_sum: s.load_sum,
        runnable_sum: s.runnable_sum,
        util_sum: s.util_sum,
        period_contrib: s.period_contrib,
    }
}

/// What the recorder asked the BPF side for: decides which optional groups
/// a record carries.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Counter slots with an open perf event.
    pub counters: [bool; 4],
    pub pelt: fmt::PeltMode,
}

/// The length of a record in the per-CPU buffers (the switch and wakeup
/// kinds; `None` for any other kind).
pub fn pcb_record_len(kind: u16, shape: &Shape) -> Option<usize> {
    let counters = if shape.counters.contains(&true) {
        size_of::<CountersEv>()
    } else {
        0
    };
    match kind {
        EV_SWITCH => Some(size_of::<SwitchEv>() + counters),
        EV_SWITCH_FULL => Some(size_of::<SwitchFullEv>() + counters),
        EV_WAKEUP => Some(size_of::<WakeupEv>()),
        EV_WAKEUP_FULL => Some(size_of::<WakeupFullEv>()),
        _ => None,
    }
}

/// Converts one ring-buffer record. `None` for a record too short or of an
/// unknown type (a mismatch between the BPF object and this code).
pub fn convert(b: &[u8], shape: &Shape) -> Option<fmt::Record> {
    let h: Hdr = read(b)?;
    let pelt_on = shape.pelt != fmt::PeltMode::Off;
    Some(match h.kind {
        EV_SWITCH | EV_SWITCH_FULL => {
            let full: Option<SwitchFullEv> = if h.kind == EV_SWITCH_FULL {
                Some(read(b)?)
            } else {
                None
            };
            let (e, base): (SwitchEv, usize) = match &full {
                Some(f) => (f.s, size_of::<SwitchFullEv>()),
                None => (read(b)?, size_of::<SwitchEv>()),
            };
            let mut counters = [None; 4];
            let ctr: Option<CountersEv> = if shape.counters.contains(&true) {
                Some(read(b.get(base..)?)?)
            } else {
                None
            };
            for (k, slot) in counters.iter_mut().enumerate() {
                if let (true, Some(ctr)) = (shape.counters[k], &ctr) {
                    let c = ctr.c[k];
                    *slot = Some(fmt::Counter {
                        value: c.value,
                        enabled: c.enabled,
                        running: c.running,
                    });
                }
            }
            fmt::Record::Switch(fmt::Switch {
                ts: h.ts,
                cpu: h.cpu,
                prev: fmt::TaskRef {
                    pid: e.prev_pid,
                    tgid: e.prev_tgid,
                    prio: e.prev_prio,
                },
                prev_state: e.prev_state,
                next: fmt::TaskRef {
                    pid: e.next_pid,
                    tgid: e.next_tgid,
                    prio: e.next_prio,
                },
                preempt: h.flags & F_PREEMPT != 0,
                counters,
                prev_pelt: pelt_on.then(|| avg(&e.prev)),
                prev_sums: full.as_ref().map(|f| sums(&f.prev_sums)),
                next_pelt: full.as_ref().map(|f| avg(&f.next)),
                next_sums: full.as_ref().map(|f| sums(&f.next_sums)),
            })
        }
        EV_WAKEUP | EV_WAKEUP_FULL => {
            let full: Option<WakeupFullEv> = if h.kind == EV_WAKEUP_FULL {
                Some(read(b)?)
            } else {
                None
            };
            let e: WakeupEv = match &full {
                Some(f) => f.w,
                None => read(b)?,
            };
            fmt::Record::Wakeup(fmt::Wakeup {
                ts: h.ts,
                cpu: h.cpu,
                pid: e.pid,
                target_cpu: e.target_cpu,
                new: h.flags & F_NEW != 0,
                pelt: pelt_on.then(|| avg(&e.avg)),
                sums: full.as_ref().map(|f| sums(&f.sums)),
            })
        }
        EV_TASK => {
            let e: TaskEv = read(b)?;
            let n = e.comm.iter().position(|&c| c == 0).unwrap_or(16);
            fmt::Record::Task(fmt::Task {
                ts: h.ts,
                cpu: fmt::CPU_NONE,
                pid: e.pid,
                tgid: e.tgid,
                ppid: e.ppid,
                prio: e.prio,
                policy: e.policy,
                event: fmt::TaskEvent::from_u64(e.event as u64),
                comm: e.comm[..n].to_vec(),
            })
        }
        EV_MIGRATE => {
            let e: MigrateEv = read(b)?;
            fmt::Record::Migrate(fmt::Migrate {
                ts: h.ts,
                cpu: h.cpu,
                pid: e.pid,
                orig_cpu: e.orig_cpu,
                dest_cpu: e.dest_cpu,
            })
        }
        EV_PELT => {
            let e: PeltEv = read(b)?;
            fmt::Record::Pelt(fmt::PeltUpdate {
                ts: h.ts,
                cpu: h.cpu,
                entity: fmt::Entity::from_u64(e.entity as u64),
                rq_cpu: e.rq_cpu,
                pid: e.pid,
                avg: avg(&e.avg),
                sums: Some(sums(&e.sums)),
            })
        }
        EV_FREQ => {
            let e: FreqEv = read(b)?;
            fmt::Record::CpuFreq(fmt::CpuFreq {
                ts: h.ts,
                cpu: h.cpu,
                target_cpu: e.target_cpu,
                freq_khz: e.freq_khz as u64,
            })
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain repr(C) integer struct.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn switch_event_converts() {
        let mut e = SwitchEv {
            h: Hdr {
                ts: 42,
                cpu: 1,
                kind: EV_SWITCH,
                flags: F_PREEMPT,
            },
            prev_pid: 10,
            next_pid: 11,
            prev_prio: 120,
            ..Default::default()
        };
        e.prev.util_avg = 300;
        e.prev.flags = PELT_ON_RQ;
        let mut ctr = CountersEv::default();
        ctr.c[0].value = 1000;
        let mut b = bytes(&e);
        b.extend(bytes(&ctr));
        let shape = Shape {
            counters: [true, false, false, false],
            pelt: fmt::PeltMode::Switch,
        };
        let fmt::Record::Switch(s) = convert(&b, &shape).unwrap() else {
            panic!("not a switch")
        };
        assert_eq!(
            (s.ts, s.cpu, s.prev.pid, s.next.pid, s.preempt),
            (42, 1, 10, 11, true)
        );
        assert_eq!(s.counters[0].unwrap().value, 1000);
        assert!(s.counters[1].is_none());
        let p = s.prev_pelt.unwrap();
        assert_eq!((p.util_avg, p.on_rq, p.sched_delayed), (300, true, false));
        assert!(s.next_pelt.is_none());
        // Truncated input is refused, not misread: a record without its
        // counters, or cut inside them.
        assert!(convert(&b[..88], &shape).is_none());
        assert!(convert(&b[..150], &shape).is_none());
        // Without counters open, the record ends after the PELT values.
        let none = Shape {
            counters: [false; 4],
            ..shape
        };
        let fmt::Record::Switch(s) = convert(&b[..88], &none).unwrap() else {
            panic!("not a switch")
        };
        assert!(s.counters.iter().all(|c| c.is_none()));
        assert_eq!(s.prev_pelt.unwrap().util_avg, 300);
    }

    #[test]
    fn task_comm_stops_at_nul() {
        let mut e = TaskEv {
            h: Hdr {
                kind: EV_TASK,
                ..Default::default()
            },
            ..Default::default()
        };
        e.comm[..4].copy_from_slice(b"bash");
        let shape = Shape {
            counters: [false; 4],
            pelt: fmt::PeltMode::Off,
        };
        let fmt::Record::Task(t) = convert(&bytes(&e), &shape).unwrap() else {
            panic!()
        };
        assert_eq!(t.comm, b"bash");
        assert_eq!(t.cpu, fmt::CPU_NONE);
    }
}
