//! A trace and its replay as columns (plain vectors), one table per kind:
//! the shapes `schedrec export` writes and the analysis reads. Schemas:
//! `analysis/SCHEMAS.md`.

use rustc_hash::FxHashMap;

use schedrec_format::{Entity, Filter, Kind, Reader, Record, TaskEvent};
use schedrec_replay::task::Row;

/// `switches`: one row per context switch.
#[derive(Default)]
pub struct Switches {
    pub ts: Vec<u64>,
    pub cpu: Vec<u32>,
    pub prev_pid: Vec<u32>,
    pub prev_tgid: Vec<u32>,
    pub prev_prio: Vec<i32>,
    pub prev_state: Vec<u32>,
    pub next_pid: Vec<u32>,
    pub next_tgid: Vec<u32>,
    pub next_prio: Vec<i32>,
    pub preempt: Vec<bool>,
    /// Counter deltas consumed by prev (null: not counted), slots as in
    /// the trace header (cycles, instructions, cache_references, cache_misses).
    pub counters: [Vec<Option<u64>>; 4],
    pub prev_util_avg: Vec<Option<u64>>,
    pub prev_load_avg: Vec<Option<u64>>,
    pub prev_runnable_avg: Vec<Option<u64>>,
    pub prev_util_est: Vec<Option<u32>>,
    pub prev_last_update_time: Vec<Option<u64>>,
}

/// `slices`: one row per time a task held a CPU (switch-in to switch-out).
#[derive(Default)]
pub struct Slices {
    pub pid: Vec<u32>,
    pub cpu: Vec<u32>,
    pub start: Vec<u64>,
    pub end: Vec<u64>,
    /// How it ended: `preempted` (still runnable), `sleep` (interruptible),
    /// `uninterruptible` (D state), `other`.
    pub end_state: Labels,
    pub cycles: OptU64,
    pub instructions: OptU64,
    pub cache_references: OptU64,
    pub cache_misses: OptU64,
}

impl Slices {
    /// How long slice `i` ran (`end - start`: derived, not stored).
    pub fn duration_ns(&self, i: usize) -> u64 {
        self.end[i] - self.start[i]
    }

    /// Room for `n` rows, allocated once (no doubling slack, no copies).
    pub fn reserve(&mut self, n: usize) {
        self.pid.reserve_exact(n);
        self.cpu.reserve_exact(n);
        self.start.reserve_exact(n);
        self.end.reserve_exact(n);
        self.end_state.reserve(n);
        for c in [
            &mut self.cycles,
            &mut self.instructions,
            &mut self.cache_references,
            &mut self.cache_misses,
        ] {
            c.reserve(n);
        }
    }
}

/// `wakeups`: one row per wakeup, with the wait until the task ran.
#[derive(Default)]
pub struct Wakeups {
    pub ts: Vec<u64>,
    pub pid: Vec<u32>,
    /// `target_cpu` and `new` are read only for export: empty in tables
    /// read without `keep_switches` (5 bytes a wakeup saved).
    pub target_cpu: Vec<u32>,
    pub new: Vec<bool>,
    /// Wakeup to the task's next switch-in (null: it never ran in the trace).
    pub latency_ns: OptU64,
    /// How long the task slept: from the switch-out at which it blocked to
    /// this wakeup (null: its block is not in the trace, or a new task).
    pub sleep_ns: OptU64,
}

impl Wakeups {
    /// Room for `n` rows, allocated once.
    pub fn reserve(&mut self, n: usize, export: bool) {
        self.ts.reserve_exact(n);
        self.pid.reserve_exact(n);
        if export {
            self.target_cpu.reserve_exact(n);
            self.new.reserve_exact(n);
        }
        self.latency_ns.reserve(n);
        self.sleep_ns.reserve(n);
    }
}

/// `tasks`: one row per task (pid) with its last known identity.
#[derive(Default)]
pub struct Tasks {
    pub pid: Vec<u32>,
    pub tgid: Vec<u32>,
    pub ppid: Vec<u32>,
    pub comm: Vec<String>,
    pub prio: Vec<i32>,
    pub policy: Vec<u32>,
    pub first_ts: Vec<u64>,
    pub exited: Vec<bool>,
}

/// `pelt`: the kernel's PELT update streams (`--pelt full`).
#[derive(Default)]
pub struct Pelt {
    pub ts: Vec<u64>,
    pub entity: Vec<String>,
    pub rq_cpu: Vec<u32>,
    pub pid: Vec<u32>,
    pub util_avg: Vec<u64>,
    pub load_avg: Vec<u64>,
    pub runnable_avg: Vec<u64>,
    pub last_update_time: Vec<u64>,
}

/// Records of `kind` (of every kind: `None`) in `reader`, from its chunk index.
pub(crate) fn count(reader: &Reader, kind: Option<Kind>) -> usize {
    reader
        .chunks()
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind() == Some(k)))
        .map(|c| c.count as usize)
        .sum()
}

/// Row `i` of a table as a 4-byte index.
pub(crate) fn row(i: usize) -> u32 {
    u32::try_from(i).expect("more than 2^32 rows in a table")
}

/// How a [`Nullable`] column stores a value: `NULL` marks a missing one.
pub trait Code: Copy + PartialEq {
    const NULL: Self;
    /// `v`, saturating below `NULL`.
    fn encode(v: u64) -> Self;
    fn decode(self) -> u64;
}

impl Code for u16 {
    const NULL: u16 = u16::MAX;
    fn encode(v: u64) -> u16 {
        v.min(u64::from(Self::NULL - 1)) as u16
    }
    fn decode(self) -> u64 {
        u64::from(self)
    }
}

impl Code for u32 {
    const NULL: u32 = u32::MAX;
    fn encode(v: u64) -> u32 {
        v.min(u64::from(Self::NULL - 1)) as u32
    }
    fn decode(self) -> u64 {
        u64::from(self)
    }
}

impl Code for u64 {
    const NULL: u64 = u64::MAX;
    fn encode(v: u64) -> u64 {
        v.min(Self::NULL - 1)
    }
    fn decode(self) -> u64 {
        self
    }
}

/// A column of optional integers without `Option`'s padding: `T::NULL`
/// marks a missing value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Nullable<T>(Vec<T>);

/// PELT-sized values in 4 bytes a row, not the 16 of `Option<u64>`: a
/// task's averages are at most its weight (88761 at nice -20) and
/// utilisations at most 1024; a larger value would be stored as
/// `u32::MAX - 1`.
pub type OptU32 = Nullable<u32>;

/// Utilisations (at most 1024, the capacity of the biggest CPU) in 2 bytes
/// a row; a larger value would be stored as `u16::MAX - 1`.
pub type OptU16 = Nullable<u16>;

/// Counter deltas and durations in 8 bytes a row (none reaches `u64::MAX`).
pub type OptU64 = Nullable<u64>;

impl<T: Code> Nullable<T> {
    pub fn push(&mut self, v: Option<u64>) {
        self.0.push(v.map_or(T::NULL, T::encode));
    }

    pub fn set(&mut self, i: usize, v: Option<u64>) {
        self.0[i] = v.map_or(T::NULL, T::encode);
    }

    pub fn reserve(&mut self, n: usize) {
        self.0.reserve_exact(n);
    }

    pub fn get(&self, i: usize) -> Option<u64> {
        let v = self.0[i];
        (v != T::NULL).then(|| v.decode())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<u64>> + '_ {
        (0..self.0.len()).map(|i| self.get(i))
    }
}

/// A column of optional labels from a small fixed set (the replay's event
/// and exclusion names) in one byte a row, not the 16 of a `&str`.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    codes: Vec<u8>,
    /// Code `c` (from 1) is `names[c - 1]`; 0 is null.
    names: Vec<&'static str>,
}

impl Labels {
    pub fn reserve(&mut self, n: usize) {
        self.codes.reserve_exact(n);
    }

    pub fn push(&mut self, v: Option<&'static str>) {
        let code = match v {
            None => 0,
            Some(s) => match self.names.iter().position(|&n| n == s) {
                Some(c) => c + 1,
                None => {
                    assert!(self.names.len() < 255, "more than 255 distinct labels");
                    self.names.push(s);
                    self.names.len()
                }
            },
        };
        self.codes.push(code as u8);
    }

    pub fn get(&self, i: usize) -> Option<&'static str> {
        match self.codes[i] {
            0 => None,
            c => Some(self.names[c as usize - 1]),
        }
    }

    /// The label of row `i`, "" where it is null.
    pub fn str(&self, i: usize) -> &'static str {
        self.get(i).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&'static str>> + '_ {
        (0..self.codes.len()).map(|i| self.get(i))
    }
}

/// `replay`: one row per kernel sample of a replay (`schedrec replay -o`
/// writes the same table). ~26 bytes a row in memory (slim), ~58 with every column.
#[derive(Default)]
pub struct ReplayRows {
    pub ts: Vec<u64>,
    pub pid: Vec<u32>,
    pub event: Labels,
    pub kernel_util_avg: OptU16,
    pub kernel_util_est: OptU16,
    pub exact_util_avg: OptU16,
    pub model_util_avg: OptU16,
    pub model_util_est: OptU16,
    /// The columns only `replay -o` and `export` write (the statistics do
    /// not read them: 32 bytes a row saved); `None` in a slim table.
    pub extra: Option<ReplayExtra>,
    pub measured_util: OptU16,
    pub excluded: Labels,
}

/// The CPU, the rest of the kernel's values, and the rest of the
/// kernel-exact and chosen models' values.
#[derive(Default)]
pub struct ReplayExtra {
    pub cpu: Vec<u32>,
    pub kernel_load_avg: OptU32,
    pub kernel_runnable_avg: OptU32,
    pub exact_load_avg: OptU32,
    pub exact_runnable_avg: OptU32,
    pub exact_util_est: OptU32,
    pub model_load_avg: OptU32,
    pub model_runnable_avg: OptU32,
}

impl ReplayRows {
    /// A table with every column (`Default` is the slim one).
    pub fn full() -> Self {
        ReplayRows {
            extra: Some(ReplayExtra::default()),
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Room for `n` more rows in the columns kept. Room not filled costs
    /// address space only (its pages are never touched); growing by
    /// doubling copied every column at each step and left the old copies
    /// to the allocator.
    pub fn reserve(&mut self, n: usize) {
        self.ts.reserve_exact(n);
        self.pid.reserve_exact(n);
        self.event.reserve(n);
        for c in [
            &mut self.kernel_util_avg,
            &mut self.kernel_util_est,
            &mut self.exact_util_avg,
            &mut self.model_util_avg,
            &mut self.model_util_est,
            &mut self.measured_util,
        ] {
            c.reserve(n);
        }
        self.excluded.reserve(n);
        if let Some(x) = self.extra.as_mut() {
            x.cpu.reserve_exact(n);
            for c in [
                &mut x.kernel_load_avg,
                &mut x.kernel_runnable_avg,
                &mut x.exact_load_avg,
                &mut x.exact_runnable_avg,
                &mut x.exact_util_est,
                &mut x.model_load_avg,
                &mut x.model_runnable_avg,
            ] {
                c.reserve(n);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn push(&mut self, r: &Row) {
        self.ts.push(r.ts);
        self.pid.push(r.pid);
        self.event.push(Some(r.event));
        self.kernel_util_avg.push(r.kernel.map(|k| k.util_avg));
        self.kernel_util_est
            .push(r.kernel.map(|k| (k.util_est & 0x7fff_ffff) as u64));
        self.exact_util_avg.push(r.exact.util_avg);
        self.model_util_avg.push(r.model.util_avg);
        self.model_util_est.push(r.model.util_est.map(u64::from));
        if let Some(x) = self.extra.as_mut() {
            x.cpu.push(r.cpu);
            x.kernel_load_avg.push(r.kernel.map(|k| k.load_avg));
            x.kernel_runnable_avg.push(r.kernel.map(|k| k.runnable_avg));
            x.exact_load_avg.push(r.exact.load_avg);
            x.exact_runnable_avg.push(r.exact.runnable_avg);
            x.exact_util_est.push(r.exact.util_est.map(u64::from));
            x.model_load_avg.push(r.model.load_avg);
            x.model_runnable_avg.push(r.model.runnable_avg);
        }
        self.measured_util.push(r.measured);
        self.excluded.push(r.excluded);
    }
}

/// Each CPU's root run-queue samples (`--pelt full` traces): the kernel's
/// util_avg and the replay's sum of the CPU's tasks (`schedrec_replay::root`),
/// at every judged sample.
#[derive(Default)]
pub struct RootSamples {
    pub ts: Vec<u64>,
    pub cpu: Vec<u32>,
    pub kernel_util_avg: Vec<u64>,
    pub tasks_util_avg: Vec<u64>,
}

/// All tables of one trace.
#[derive(Default)]
pub struct Tables {
    pub switches: Switches,
    pub slices: Slices,
    pub wakeups: Wakeups,
    pub tasks: Tasks,
    pub pelt: Pelt,
    pub replay: ReplayRows,
    pub root: RootSamples,
    /// First and last timestamp of the trace.
    pub span: (u64, u64),
    /// Switches read (also when the `switches` table was not kept).
    pub nr_switches: u64,
}

/// `prev_state` bits (include/linux/sched.h).
const TASK_INTERRUPTIBLE: u32 = 0x1;
const TASK_UNINTERRUPTIBLE: u32 = 0x2;

/// How a slice ended. A preempted task may carry a sleeping `prev_state`
/// (it was preempted between setting its state and calling schedule()): it
/// stayed runnable.
fn end_state(prev_state: u32, preempt: bool) -> &'static str {
    if prev_state == 0 || preempt {
        "preempted"
    } else if prev_state & TASK_UNINTERRUPTIBLE != 0 {
        "uninterruptible"
    } else if prev_state & TASK_INTERRUPTIBLE != 0 {
        "sleep"
    } else {
        "other"
    }
}

/// Reads every record of `reader` into tables (the replay table stays
/// empty: fill it from [`schedrec_replay::replay`]'s rows).
pub fn read(reader: &Reader) -> Result<Tables, schedrec_format::Error> {
    read_with(reader, true)
}

/// [`read`]; without `keep_switches` (for statistics, not export) the
/// `switches` table stays empty — the statistics need only slices,
/// wakeups, tasks and samples, and it is the biggest table, ~180 bytes per
/// switch — and the replay table is made slim ([`ReplayRows::extra`]).
pub fn read_with(reader: &Reader, keep_switches: bool) -> Result<Tables, schedrec_format::Error> {
    let mut b = TableBuilder::new(reader, keep_switches);
    for rec in reader.records(Filter::default()) {
        b.push(&rec?);
    }
    Ok(b.finish())
}

/// Builds the tables record by record, in time order: what [`read_with`]
/// does, for a caller that already reads the records (the replay hands them
/// on, so that a trace is decoded once for both).
pub struct TableBuilder {
    t: Tables,
    keep_switches: bool,
    /// Per CPU: who runs since when.
    running: FxHashMap<u32, (u32, u64)>,
    /// Per pid: index of its pending wakeup row.
    waking: FxHashMap<u32, usize>,
    task_row: FxHashMap<u32, usize>,
    /// Per pid: when it last left the CPU to sleep.
    blocked_at: FxHashMap<u32, u64>,
    first: bool,
}

impl TableBuilder {
    /// Empty tables for `reader`'s records; without `keep_switches` see
    /// [`read_with`].
    pub fn new(reader: &Reader, keep_switches: bool) -> Self {
        let mut t = Tables::default();
        if keep_switches {
            t.replay = ReplayRows::full();
        }
        // The index says how many switches and wakeups there are: each table
        // is allocated once (growing by doubling held up to twice the rows, and
        // copied them at every step).
        t.slices.reserve(count(reader, Some(Kind::Switch)));
        t.wakeups
            .reserve(count(reader, Some(Kind::Wakeup)), keep_switches);
        TableBuilder {
            t,
            keep_switches,
            running: FxHashMap::default(),
            waking: FxHashMap::default(),
            task_row: FxHashMap::default(),
            blocked_at: FxHashMap::default(),
            first: true,
        }
    }

    /// The tables of the records pushed.
    pub fn finish(self) -> Tables {
        self.t
    }

    /// Adds the next record (in time order).
    pub fn push(&mut self, rec: &Record) {
        let TableBuilder {
            t,
            keep_switches,
            running,
            waking,
            task_row,
            blocked_at,
            first,
        } = self;
        let keep_switches = *keep_switches;
        let ts = rec.ts();
        if *first {
            t.span.0 = ts;
            *first = false;
        }
        t.span.1 = t.span.1.max(ts);
        match rec {
            Record::Switch(r) => {
                // Counter deltas, scaled for multiplexing as perf does.
                let ctr = r.counters.each_ref().map(|c| {
                    c.map(|c| {
                        if c.running > 0 && c.running < c.enabled {
                            (c.value as u128 * c.enabled as u128 / c.running as u128) as u64
                        } else {
                            c.value
                        }
                    })
                });
                if keep_switches {
                    let s = &mut t.switches;
                    s.ts.push(r.ts);
                    s.cpu.push(r.cpu);
                    s.prev_pid.push(r.prev.pid);
                    s.prev_tgid.push(r.prev.tgid);
                    s.prev_prio.push(r.prev.prio);
                    s.prev_state.push(r.prev_state);
                    s.next_pid.push(r.next.pid);
                    s.next_tgid.push(r.next.tgid);
                    s.next_prio.push(r.next.prio);
                    s.preempt.push(r.preempt);
                    for (col, c) in s.counters.iter_mut().zip(ctr) {
                        col.push(c);
                    }
                    s.prev_util_avg.push(r.prev_pelt.map(|p| p.util_avg));
                    s.prev_load_avg.push(r.prev_pelt.map(|p| p.load_avg));
                    s.prev_runnable_avg
                        .push(r.prev_pelt.map(|p| p.runnable_avg));
                    s.prev_util_est
                        .push(r.prev_pelt.map(|p| p.util_est & 0x7fff_ffff));
                    s.prev_last_update_time
                        .push(r.prev_pelt.map(|p| p.last_update_time));
                }
                t.nr_switches += 1;
                // The slice prev ends; next's begins.
                if let Some((pid, start)) = running.remove(&r.cpu) {
                    if pid == r.prev.pid && pid != 0 {
                        let sl = &mut t.slices;
                        sl.pid.push(pid);
                        sl.cpu.push(r.cpu);
                        sl.start.push(start);
                        sl.end.push(r.ts);
                        sl.end_state.push(Some(end_state(r.prev_state, r.preempt)));
                        sl.cycles.push(ctr[0]);
                        sl.instructions.push(ctr[1]);
                        sl.cache_references.push(ctr[2]);
                        sl.cache_misses.push(ctr[3]);
                    }
                }
                if r.prev_state != 0 && !r.preempt && r.prev.pid != 0 {
                    blocked_at.insert(r.prev.pid, r.ts);
                } else {
                    blocked_at.remove(&r.prev.pid);
                }
                running.insert(r.cpu, (r.next.pid, r.ts));
                if let Some(i) = waking.remove(&r.next.pid) {
                    let waited = r.ts.saturating_sub(t.wakeups.ts[i]);
                    t.wakeups.latency_ns.set(i, Some(waited));
                }
            }
            Record::Wakeup(r) => {
                let w = &mut t.wakeups;
                w.ts.push(r.ts);
                w.pid.push(r.pid);
                if keep_switches {
                    w.target_cpu.push(r.target_cpu);
                    w.new.push(r.new);
                }
                w.latency_ns.push(None);
                let slept = blocked_at.remove(&r.pid);
                w.sleep_ns.push(if r.new {
                    None
                } else {
                    slept.map(|b| r.ts.saturating_sub(b))
                });
                waking.insert(r.pid, w.ts.len() - 1);
            }
            Record::Task(r) => {
                if matches!(r.event, TaskEvent::Exit) {
                    blocked_at.remove(&r.pid);
                }
                let comm = String::from_utf8_lossy(&r.comm).into_owned();
                let tk = &mut t.tasks;
                let fresh = matches!(r.event, TaskEvent::Fork);
                match task_row.get(&r.pid) {
                    Some(&i) if !fresh => {
                        tk.comm[i] = comm;
                        tk.tgid[i] = r.tgid;
                        tk.prio[i] = r.prio;
                        tk.policy[i] = r.policy;
                        if r.ppid != 0 {
                            tk.ppid[i] = r.ppid;
                        }
                        tk.exited[i] |= matches!(r.event, TaskEvent::Exit);
                    }
                    _ => {
                        tk.pid.push(r.pid);
                        tk.tgid.push(r.tgid);
                        tk.ppid.push(r.ppid);
                        tk.comm.push(comm);
                        tk.prio.push(r.prio);
                        tk.policy.push(r.policy);
                        tk.first_ts.push(r.ts);
                        tk.exited.push(matches!(r.event, TaskEvent::Exit));
                        task_row.insert(r.pid, tk.pid.len() - 1);
                    }
                }
            }
            Record::Pelt(r) => {
                let p = &mut t.pelt;
                p.ts.push(r.ts);
                p.entity.push(match r.entity {
                    Entity::Task => "task".into(),
                    Entity::CfsRq => "cfs_rq".into(),
                    Entity::GroupSe => "group_se".into(),
                    e => e.name(),
                });
                p.rq_cpu.push(r.rq_cpu);
                p.pid.push(r.pid);
                p.util_avg.push(r.avg.util_avg);
                p.load_avg.push(r.avg.load_avg);
                p.runnable_avg.push(r.avg.runnable_avg);
                p.last_update_time.push(r.avg.last_update_time);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_columns_keep_values_and_nulls() {
        let mut a = OptU32::default();
        for v in [Some(0), None, Some(1024), Some(88761), Some(u64::MAX)] {
            a.push(v);
        }
        // Larger than 32 bits saturates below the null marker, never
        // turning into a null.
        let want = [
            Some(0),
            None,
            Some(1024),
            Some(88761),
            Some(u32::MAX as u64 - 1),
        ];
        assert_eq!(a.iter().collect::<Vec<_>>(), want);

        let mut b = OptU64::default();
        b.push(Some(5));
        b.push(None);
        b.set(1, Some(u64::MAX - 1));
        b.set(0, None);
        assert_eq!(b.iter().collect::<Vec<_>>(), [None, Some(u64::MAX - 1)]);

        let mut l = Labels::default();
        for v in [Some("switch_out"), None, Some("wakeup"), Some("switch_out")] {
            l.push(v);
        }
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [Some("switch_out"), None, Some("wakeup"), Some("switch_out")]
        );
        assert_eq!((l.str(1), l.str(2)), ("", "wakeup"));
        assert_eq!(l.names.len(), 2);
    }
}
