//! Typed records: what writers push and readers yield.
//!
//! Every record carries `ts` (nanoseconds on the clock named in the header)
//! and `cpu`, the CPU whose stream it belongs to ([`CPU_NONE`] when it belongs
//! to none). Optional groups are `Option`s; a chunk holds records of one kind,
//! one CPU and one set of present groups.

#[cfg(feature = "serde")]
use serde::Serialize;

use crate::schema::Kind;

/// `cpu` of a record that belongs to no CPU's stream.
pub const CPU_NONE: u32 = u32::MAX;

/// Names of the four counter slots of a switch record, in slot order.
pub const COUNTER_SLOTS: [&str; 4] = ["cycles", "instructions", "cache_references", "cache_misses"];

/// One side (prev or next) of a context switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct TaskRef {
    pub pid: u32,
    pub tgid: u32,
    /// Kernel priority (`task_struct.prio`: 0..99 RT, 100..139 normal, -1 deadline).
    pub prio: i32,
}

/// A counter's delta over one slice, with perf's multiplexing times: scale the
/// value by `enabled / running` when `running < enabled`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Counter {
    pub value: u64,
    pub enabled: u64,
    pub running: u64,
}

/// The averages of a `struct sched_avg` plus the entity's queue flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct PeltAvg {
    pub util_avg: u64,
    pub load_avg: u64,
    pub runnable_avg: u64,
    /// v6.8+: `sched_avg.util_est` as the kernel holds it (bit 31 is
    /// UTIL_AVG_UNCHANGED); before v6.8: `util_est.ewma`.
    pub util_est: u32,
    /// `sched_avg.last_update_time`: PELT clock, ns.
    pub last_update_time: u64,
    pub on_rq: bool,
    pub sched_delayed: bool,
}

/// The sums of a `struct sched_avg` (`--pelt full`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct PeltSums {
    pub load_sum: u64,
    pub runnable_sum: u64,
    pub util_sum: u64,
    pub period_contrib: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Switch {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub prev: TaskRef,
    /// The `prev_state` argument of `sched_switch` (0 = still runnable).
    pub prev_state: u32,
    pub next: TaskRef,
    pub preempt: bool,
    /// Per-slice counter deltas consumed by `prev`, by slot (see [`COUNTER_SLOTS`]).
    pub counters: [Option<Counter>; 4],
    pub prev_pelt: Option<PeltAvg>,
    pub prev_sums: Option<PeltSums>,
    pub next_pelt: Option<PeltAvg>,
    pub next_sums: Option<PeltSums>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Wakeup {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub pid: u32,
    pub target_cpu: u32,
    /// `sched_wakeup_new`: the first wakeup of a new task.
    pub new: bool,
    pub pelt: Option<PeltAvg>,
    pub sums: Option<PeltSums>,
}

/// Why a task record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum TaskEvent {
    /// First sight of a task that already existed.
    Seen,
    Fork,
    Exec,
    Rename,
    Exit,
    /// A value this reader does not know (a newer minor version).
    Other(u64),
}

impl TaskEvent {
    pub fn to_u64(self) -> u64 {
        match self {
            TaskEvent::Seen => 0,
            TaskEvent::Fork => 1,
            TaskEvent::Exec => 2,
            TaskEvent::Rename => 3,
            TaskEvent::Exit => 4,
            TaskEvent::Other(v) => v,
        }
    }
    /// The name used in JSON and text output ("other(N)" for unknown values).
    pub fn name(self) -> String {
        match self {
            TaskEvent::Seen => "seen".into(),
            TaskEvent::Fork => "fork".into(),
            TaskEvent::Exec => "exec".into(),
            TaskEvent::Rename => "rename".into(),
            TaskEvent::Exit => "exit".into(),
            TaskEvent::Other(v) => format!("other({v})"),
        }
    }
    pub fn from_u64(v: u64) -> Self {
        match v {
            0 => TaskEvent::Seen,
            1 => TaskEvent::Fork,
            2 => TaskEvent::Exec,
            3 => TaskEvent::Rename,
            4 => TaskEvent::Exit,
            v => TaskEvent::Other(v),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Task {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub pid: u32,
    pub tgid: u32,
    /// Parent pid (0 when unknown).
    pub ppid: u32,
    pub prio: i32,
    /// Scheduling policy (SCHED_NORMAL 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6, EXT 7).
    pub policy: u32,
    pub event: TaskEvent,
    /// `task_struct.comm`: raw bytes, at most 16 in practice, not necessarily UTF-8.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_bytes"))]
    pub comm: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Migrate {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub pid: u32,
    pub orig_cpu: u32,
    pub dest_cpu: u32,
}

/// Which PELT entity a [`PeltUpdate`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum Entity {
    Task,
    CfsRq,
    GroupSe,
    Other(u64),
}

impl Entity {
    pub fn to_u64(self) -> u64 {
        match self {
            Entity::Task => 0,
            Entity::CfsRq => 1,
            Entity::GroupSe => 2,
            Entity::Other(v) => v,
        }
    }
    /// The name used in JSON and text output ("other(N)" for unknown values).
    pub fn name(self) -> String {
        match self {
            Entity::Task => "task".into(),
            Entity::CfsRq => "cfs_rq".into(),
            Entity::GroupSe => "group_se".into(),
            Entity::Other(v) => format!("other({v})"),
        }
    }
    pub fn from_u64(v: u64) -> Self {
        match v {
            0 => Entity::Task,
            1 => Entity::CfsRq,
            2 => Entity::GroupSe,
            v => Entity::Other(v),
        }
    }
}

/// A PELT update the kernel reported (`pelt_se_tp` / `pelt_cfs_tp`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct PeltUpdate {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub entity: Entity,
    /// CPU of the run-queue updated (`cfs_rq->rq->cpu`), not necessarily `cpu`.
    pub rq_cpu: u32,
    /// The task's pid for task entities, 0 otherwise.
    pub pid: u32,
    pub avg: PeltAvg,
    pub sums: Option<PeltSums>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CpuFreq {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub target_cpu: u32,
    pub freq_khz: u64,
}

/// Events lost on `cpu` between `ts` and `end_ts` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Loss {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    pub end_ts: u64,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Marker {
    pub ts: u64,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_cpu"))]
    pub cpu: u32,
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_bytes"))]
    pub text: Vec<u8>,
}

/// Any record. (Switch records are the large, common case: boxing them would
/// cost an allocation per record on the hot paths.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize),
    serde(tag = "kind", rename_all = "snake_case")
)]
pub enum Record {
    Switch(Switch),
    Wakeup(Wakeup),
    Task(Task),
    Migrate(Migrate),
    Pelt(PeltUpdate),
    CpuFreq(CpuFreq),
    Loss(Loss),
    Marker(Marker),
}

impl Record {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Switch(_) => Kind::Switch,
            Record::Wakeup(_) => Kind::Wakeup,
            Record::Task(_) => Kind::Task,
            Record::Migrate(_) => Kind::Migrate,
            Record::Pelt(_) => Kind::Pelt,
            Record::CpuFreq(_) => Kind::CpuFreq,
            Record::Loss(_) => Kind::Loss,
            Record::Marker(_) => Kind::Marker,
        }
    }

    pub fn ts(&self) -> u64 {
        match self {
            Record::Switch(r) => r.ts,
            Record::Wakeup(r) => r.ts,
            Record::Task(r) => r.ts,
            Record::Migrate(r) => r.ts,
            Record::Pelt(r) => r.ts,
            Record::CpuFreq(r) => r.ts,
            Record::Loss(r) => r.ts,
            Record::Marker(r) => r.ts,
        }
    }

    pub fn cpu(&self) -> u32 {
        match self {
            Record::Switch(r) => r.cpu,
            Record::Wakeup(r) => r.cpu,
            Record::Task(r) => r.cpu,
            Record::Migrate(r) => r.cpu,
            Record::Pelt(r) => r.cpu,
            Record::CpuFreq(r) => r.cpu,
            Record::Loss(r) => r.cpu,
            Record::Marker(r) => r.cpu,
        }
    }

    /// Pids this record is about (for filtering).
    pub fn involves_pid(&self, pid: u32) -> bool {
        match self {
            Record::Switch(r) => r.prev.pid == pid || r.next.pid == pid,
            Record::Wakeup(r) => r.pid == pid,
            Record::Task(r) => r.pid == pid || r.tgid == pid,
            Record::Migrate(r) => r.pid == pid,
            Record::Pelt(r) => r.entity == Entity::Task && r.pid == pid,
            Record::CpuFreq(_) | Record::Loss(_) | Record::Marker(_) => false,
        }
    }
}

/// `cpu` in JSON: null for [`CPU_NONE`].
#[cfg(feature = "serde")]
fn ser_cpu<S: serde::Serializer>(cpu: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *cpu == CPU_NONE {
        s.serialize_none()
    } else {
        s.serialize_u32(*cpu)
    }
}

#[cfg(feature = "serde")]
fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}
