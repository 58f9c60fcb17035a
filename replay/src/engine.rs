//! The replay driver: one streaming pass over the trace in time order that
//! routes each record to the tasks it concerns (mapping the trace clock to
//! each CPU's PELT clock on the way), and, batch by batch, runs the tasks'
//! timelines in parallel (tasks are independent once their events are
//! known). Memory: the tasks plus one batch of events, never the trace.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use rayon::prelude::*;
use schedrec_format::{Entity, Filter, PeltMode, Reader, Record, UtilEstLayout};
use serde::Serialize;

use crate::clock::{Clocks, Speed};
use crate::fidelity::{Fidelity, Metric, MetricSummary};
use crate::model::{Measured, Model, Pelt, TaskInfo, UtilEst};
use crate::root::{Probe, RootSummary, Roots, ROOT_EVENT};
use crate::task::{Clock, Config, Event, EventKind, Row, TaskSim};

/// `sched_prio_to_weight[]` (kernel/sched/core.c), nice −20 … 19.
pub const SCHED_PRIO_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904,
    3906, 3121, 2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87,
    70, 56, 45, 36, 29, 23, 18, 15,
];
/// `WEIGHT_IDLEPRIO`: SCHED_IDLE tasks.
const WEIGHT_IDLEPRIO: u64 = 3;
const SCHED_IDLE: u32 = 5;

/// `prev_state` bits of a task switched out for the last time
/// (`EXIT_DEAD`, `TASK_DEAD`).
const TASK_DEAD_STATES: u32 = 0x10 | 0x80;

/// The load weight of a CFS task of kernel priority `prio` (100..=139),
/// None for tasks PELT's fair class does not track (RT, deadline, idle).
pub fn fair_weight(prio: i32, policy: Option<u32>) -> Option<u64> {
    if !(100..=139).contains(&prio) {
        return None;
    }
    if policy == Some(SCHED_IDLE) {
        return Some(WEIGHT_IDLEPRIO);
    }
    Some(SCHED_PRIO_TO_WEIGHT[(prio - 100) as usize])
}

/// Records read ahead per hand-over between the reading thread and the
/// routing.
const READ_AHEAD: usize = 4096;

/// How to replay.
pub struct Options {
    /// The model the user chose, when it is not the kernel-exact reference
    /// (None: the reference).
    pub model: Option<Box<dyn Model>>,
    /// HZ override (else the trace header's).
    pub hz: Option<u32>,
    /// Ignore the kernel's PELT timestamps and use the trace clock.
    pub ktime: bool,
    /// `--init zero`.
    pub init_zero: bool,
    /// Replay a `--pelt full` trace as if it had been recorded with
    /// `--pelt switch` (drop sums, next's values and the update streams), to
    /// measure what the extra data buys.
    pub as_switch: bool,
    /// Scale each CPU's PELT clock by the `cpu_frequency` records
    /// (`--freq-invariance`: for kernels that take their frequency scale
    /// from cpufreq; see [`crate::clock`]).
    pub freq_invariance: bool,
    /// Window of the measured utilisation.
    pub measured_window_ns: u64,
    /// Records per parallel batch.
    pub batch: usize,
    /// Tasks listed in the summary's `per_task`.
    pub top: usize,
    /// Hand the per-sample rows to the sink, in time order (false: only the
    /// summary is wanted; the sink is not called, and putting the rows in
    /// order, a sequential part of the replay, is skipped).
    pub rows: bool,
    /// With `rows`, also the root run-queues' samples: pid 0, event
    /// `cfs_rq`, the tasks' sum as the model ([`crate::root`]). Not counted
    /// in `Summary::rows`, whose rows are the tasks'.
    pub root_rows: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: None,
            hz: None,
            ktime: false,
            init_zero: false,
            as_switch: false,
            freq_invariance: false,
            measured_window_ns: 32_000_000,
            batch: 1 << 16,
            top: 10,
            rows: true,
            root_rows: false,
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Trace(#[from] schedrec_format::Error),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// One task in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct TaskSummary {
    pub pid: u32,
    pub comm: String,
    pub running_ms: f64,
    pub samples: u64,
    pub reanchors: u64,
    pub util_avg: Option<MetricSummary>,
}

/// What a replay found, as `schedrec replay --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub model: String,
    pub reference: String,
    pub measured: String,
    /// "pelt" (the kernel's timestamps) or "ktime" (estimated PELT clock).
    pub clock: &'static str,
    pub hz: u32,
    /// Rows produced (kernel samples, or switches in traces without PELT).
    pub rows: u64,
    /// Kernel samples the reference was judged on.
    pub samples: u64,
    /// Samples not judged, by reason: `init` (first sight), `reanchor`,
    /// `warmup` (--init zero), `exit` (after the task's exit record).
    pub excluded: BTreeMap<&'static str, u64>,
    /// Tasks replayed (fair class).
    pub tasks: u64,
    /// Tasks skipped (RT, deadline: PELT's fair class does not track them).
    pub skipped_tasks: u64,
    pub reanchors: u64,
    /// What each CPU's PELT clock was scaled by where the trace does not
    /// carry it (between the kernel's timestamps, and throughout with
    /// `--clock ktime`): "capacity" (a CPU below 1024 in the header),
    /// "frequency" (`cpu_frequency` records below the maximum, with
    /// `--freq-invariance`). Empty: full speed throughout.
    pub invariance: Vec<&'static str>,
    /// `cpu_frequency` records not applied: no `--freq-invariance`, or the
    /// header does not give their CPU's maximum frequency.
    pub unscaled_frequency_records: u64,
    pub util_avg: Option<MetricSummary>,
    pub load_avg: Option<MetricSummary>,
    pub runnable_avg: Option<MetricSummary>,
    pub util_est: Option<MetricSummary>,
    /// The busiest tasks (by running time).
    pub per_task: Vec<TaskSummary>,
    pub records: u64,
    /// Each CPU's root run-queue rebuilt from its tasks, judged at the
    /// kernel's `pelt_cfs_tp` samples (`--pelt full` traces replayed on
    /// the kernel's clock, tasks started from the kernel's values: None
    /// with `as_switch`, `ktime` or `init_zero`; see [`crate::root`]).
    pub root: Option<RootSummary>,
}

impl Summary {
    /// The four metrics with their names, in the order summaries print them.
    pub fn metrics(&self) -> [(&'static str, Option<&MetricSummary>); 4] {
        [
            ("util_avg", self.util_avg.as_ref()),
            ("load_avg", self.load_avg.as_ref()),
            ("runnable_avg", self.runnable_avg.as_ref()),
            ("util_est", self.util_est.as_ref()),
        ]
    }
}

struct Slot {
    sim: TaskSim,
    events: Vec<Event>,
    /// Rows of the batch being run.
    out: Vec<Row>,
    /// The task's parts of root run-queue probes in this batch.
    shares: Vec<(u32, bool, Option<crate::root::Share>)>,
    comm: String,
    /// The priority the task's weight was last set from (None: assumed).
    prio: Option<i32>,
}

/// Replays `reader`, handing rows to `sink` batch by batch (in time order
/// within a batch) and calling `progress` with the records read so far.
pub fn replay(
    reader: &Reader,
    opts: &Options,
    sink: impl FnMut(&[Row]) -> std::io::Result<()>,
    progress: impl FnMut(u64),
) -> Result<Summary, Error> {
    replay_tapped(reader, opts, sink, progress, None)
}

/// [`replay`], handing every record read, in time order and as read (also
/// with `as_switch`), to `tap`, on a thread of its own where the replay has
/// threads: a caller that needs the records too (the analysis' tables)
/// does not decode the trace a second time.
pub fn replay_tapped(
    reader: &Reader,
    opts: &Options,
    mut sink: impl FnMut(&[Row]) -> std::io::Result<()>,
    mut progress: impl FnMut(u64),
    mut tap: Option<&mut (dyn FnMut(&Record) + Send)>,
) -> Result<Summary, Error> {
    let meta = reader.meta();
    let hz = opts.hz.unwrap_or(meta.hz);
    if hz == 0 {
        return Err(Error::Config(
            "the trace does not say the kernel's HZ (no kernel config on the recorded host): pass --hz 100|250|300|1000".into(),
        ));
    }
    let util_est = match meta.util_est_layout {
        UtilEstLayout::EnqueuedEwma => UtilEst::EnqueuedEwma,
        _ => UtilEst::for_kernel(&meta.kernel_release),
    };
    let reference = Pelt::new(32, util_est).expect("32 is valid");
    let measured = Measured {
        window_ns: opts.measured_window_ns,
    };
    let has_pelt = meta.pelt != PeltMode::Off;
    let as_switch = opts.as_switch && meta.pelt == PeltMode::Full;
    // Without the kernel's values nothing can seed the models: start empty.
    let init_zero = opts.init_zero || !has_pelt;
    let clock = if opts.ktime || !has_pelt {
        Clock::Ktime
    } else {
        Clock::Pelt
    };
    let cfg = Config {
        tick_ns: 1_000_000_000 / hz as u64,
        clock,
        full: meta.pelt == PeltMode::Full && clock == Clock::Pelt && !as_switch,
        init_zero,
        warmup_ns: 400_000_000,
    };
    let nr_cpus = meta.nr_cpus.max(1) as usize;
    let capacity = |cpu: u32| -> u64 {
        meta.cpu_capacity
            .get(cpu as usize)
            .map(|&c| c as u64)
            .filter(|&c| c > 0)
            .unwrap_or(1024)
    };

    let caps: Vec<u64> = (0..nr_cpus as u32).map(capacity).collect();
    // The root run-queues are rebuilt from the tasks' exact states: only
    // on the kernel's clock with every update in the trace, the tasks
    // started from the kernel's values.
    let track_roots = cfg.full && !cfg.init_zero;
    let mut models: Vec<&dyn Model> = vec![&reference, &measured];
    if let Some(m) = &opts.model {
        models.push(m.as_ref());
    }
    let mut pass = Pass {
        models,
        caps,
        by_pid: HashMap::default(),
        slots: Vec::new(),
        policy: HashMap::default(),
        prio: HashMap::default(),
        comms: HashMap::default(),
        skipped: HashSet::default(),
        dead: Vec::new(),
        free: Vec::new(),
        exited: HashSet::default(),
        dying: HashSet::default(),
        done_fid: Fidelity::default(),
        done_reanchors: 0,
        done_tasks: 0,
        top: Vec::new(),
        keep_top: opts.top.max(1),
        track_roots,
        home: HashMap::default(),
        members: vec![HashSet::default(); nr_cpus],
        reset: vec![false; nr_cpus],
        probes: Vec::new(),
        held: vec![Vec::new(); nr_cpus],
        root_rows_wanted: opts.rows && opts.root_rows,
        root_rows: Vec::new(),
        roots: Roots::new(nr_cpus),
    };
    // Each CPU's PELT clock: measured from the kernel's timestamps with
    // `--clock pelt`, advanced at the CPU's speed in between (and
    // throughout with `--clock ktime`).
    let mut clocks = Clocks::new(&pass.caps, &meta.cpu_max_freq_khz, opts.freq_invariance);
    let measure = clock == Clock::Pelt;
    let mut curr: Vec<u32> = vec![0; nr_cpus];
    let mut delayed: Vec<Vec<u32>> = vec![Vec::new(); nr_cpus];
    // Per CPU: the enqueue time of the latest wakeup onto it since its last switch.
    let mut woke: Vec<Option<(u64, u64)>> = vec![None; nr_cpus];
    let mut pending = 0usize;
    let mut records = 0u64;
    let mut last_ts = 0u64;
    let mut rows_total = 0u64;
    let mut excluded: BTreeMap<&'static str, u64> = BTreeMap::new();

    // Buffers reused from batch to batch (fresh pages cost more than the
    // replay itself).
    let mut rows: Vec<Row> = Vec::new();
    let mut keys: Vec<(u64, u32, u32, u32)> = Vec::new();
    // Rows not yet handed on: a held sample's row comes out at its task's
    // next event, possibly a batch later, earlier than rows already sorted.
    let mut carry: Vec<Row> = Vec::new();
    let mut run_batch = |pass: &mut Pass,
                         excluded: &mut BTreeMap<&'static str, u64>,
                         rows_total: &mut u64,
                         last: bool|
     -> Result<(), Error> {
        step_events(&mut pass.slots, &cfg);
        pass.judge_roots();
        if !opts.rows {
            for s in pass.slots.iter_mut() {
                for r in &s.out {
                    if let Some(why) = r.excluded {
                        *excluded.entry(why).or_default() += 1;
                    }
                }
                *rows_total += s.out.len() as u64;
                s.out.clear();
            }
            pass.retire_dead();
            return Ok(());
        }
        // Into time order: sort small keys (each task's rows are in order
        // already; the row index keeps them so), then copy each row once,
        // both in parallel.
        // Rows from this time on wait for the next batch (the held samples'
        // rows are the only ones that can come out of time order).
        let horizon = if last {
            u64::MAX
        } else {
            // (and root samples held for their CPU's next record).
            pass.slots
                .iter()
                .filter_map(|s| s.sim.held_ts())
                .chain(pass.held.iter().flatten().map(|p| p.ts))
                .min()
                .unwrap_or(u64::MAX)
        };
        keys.clear();
        // The rows carried over first: they go before this batch's rows of
        // the same time and task.
        let outs: Vec<&[Row]> = std::iter::once(carry.as_slice())
            .chain(std::iter::once(pass.root_rows.as_slice()))
            .chain(pass.slots.iter().map(|s| s.out.as_slice()))
            .collect();
        keys.par_extend(outs.par_iter().enumerate().flat_map_iter(|(si, out)| {
            out.iter()
                .enumerate()
                .map(move |(ri, r)| (r.ts, r.pid, si as u32, ri as u32))
        }));
        keys.par_sort_unstable();
        keys.par_iter()
            .map(|&(_, _, si, ri)| outs[si as usize][ri as usize].clone())
            .collect_into_vec(&mut rows);
        let keep = rows.partition_point(|r| r.ts < horizon);
        carry.clear();
        carry.extend(rows.drain(keep..));
        for s in pass.slots.iter_mut() {
            s.out.clear();
        }
        pass.root_rows.clear();
        pass.retire_dead();
        for r in rows.iter().filter(|r| r.event != ROOT_EVENT) {
            if let Some(why) = r.excluded {
                *excluded.entry(why).or_default() += 1;
            }
            *rows_total += 1;
        }
        sink(&rows)?;
        rows.clear();
        Ok(())
    };

    // Reading and decoding run on a thread of their own, a few batches of
    // records ahead of the routing: the two are the sequential part of a
    // replay, and overlap this way. Not when this replay runs on a rayon
    // worker (several traces replayed at once): a worker blocked on the
    // channel while the reading thread waits for rayon to decode deadlocks.
    std::thread::scope(|scope| -> Result<(), Error> {
        type Batch = Vec<schedrec_format::Result<Record>>;
        let tap_each = |tap: &mut (dyn FnMut(&Record) + Send), batch: &Batch| {
            for rec in batch.iter().flatten() {
                tap(rec);
            }
        };
        let mut next_batch: Box<dyn FnMut(Batch) -> Option<Batch>> =
            if rayon::current_thread_index().is_some() {
                let mut it = reader.records(Filter::default());
                let mut tap = tap.take();
                Box::new(move |mut buf: Batch| {
                    if let Some(tap) = tap.as_deref_mut() {
                        tap_each(tap, &buf);
                    }
                    buf.clear();
                    buf.extend(it.by_ref().take(READ_AHEAD));
                    (!buf.is_empty()).then_some(buf)
                })
            } else {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
                // Emptied batches go back to the reading thread: their
                // pages are reused, not freed and faulted in again.
                let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
                scope.spawn(move || {
                    let fresh = || {
                        back_rx
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(READ_AHEAD))
                    };
                    let mut buf = fresh();
                    reader.with_records(Filter::default(), |mut recs| loop {
                        let room = READ_AHEAD - buf.len();
                        recs.fill(&mut buf, room);
                        let end = buf.len() < READ_AHEAD || matches!(buf.last(), Some(Err(_)));
                        // The routing stopped (an error): so does the reading.
                        if tx.send(std::mem::replace(&mut buf, fresh())).is_err() || end {
                            return;
                        }
                    })
                });
                // A tap gets each batch once the routing is done with it,
                // on a thread of its own, and then hands it back (a few
                // batches in flight: a slow tap holds the routing back,
                // never piles records up).
                let tap_tx = tap.take().map(|tap| {
                    let (tap_tx, tap_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
                    let back_tx = back_tx.clone();
                    scope.spawn(move || {
                        for mut b in tap_rx {
                            tap_each(tap, &b);
                            b.clear();
                            let _ = back_tx.send(b);
                        }
                    });
                    tap_tx
                });
                Box::new(move |mut used: Batch| {
                    match &tap_tx {
                        Some(t) if !used.is_empty() => {
                            let _ = t.send(used);
                        }
                        _ => {
                            used.clear();
                            let _ = back_tx.send(used);
                        }
                    }
                    rx.recv().ok()
                })
            };
        let mut batch = Vec::new();
        while let Some(b) = next_batch(std::mem::take(&mut batch)) {
            batch = b;
            // The reader stops at its first error, the batch's last record.
            if let Some(Err(_)) = batch.last() {
                if let Some(Err(e)) = batch.pop() {
                    return Err(e.into());
                }
            }
            for rec in batch.iter() {
                let Ok(rec) = rec else { continue };
                // --as-switch strips a copy: a tap sees the records as read.
                let stripped;
                let rec = if as_switch {
                    let mut r = rec.clone();
                    match &mut r {
                        Record::Switch(r) => {
                            r.prev_sums = None;
                            r.next_sums = None;
                            r.next_pelt = None;
                        }
                        Record::Wakeup(r) => r.sums = None,
                        Record::Pelt(_) => continue,
                        _ => {}
                    }
                    stripped = r;
                    &stripped
                } else {
                    rec
                };
                records += 1;
                last_ts = last_ts.max(rec.ts());
                let deferred = pass.before_record(rec);
                match rec {
                    Record::Switch(r) => {
                        let c = r.cpu as usize;
                        // Only a fair task's sched_avg is maintained (an RT task's
                        // holds stale values, and last_update_time 0 when it never
                        // ran in the fair class).
                        let prev_lut = r
                            .prev_pelt
                            .filter(|p| {
                                r.prev.pid != 0
                                    && fair_weight(r.prev.prio, None).is_some()
                                    && p.last_update_time != 0
                            })
                            .map(|p| p.last_update_time);
                        clocks.advance(r.cpu, r.ts);
                        if let (Some(lut), true) = (prev_lut, measure) {
                            clocks.measure(r.cpu, r.ts, lut);
                        }
                        let (o, speed) = (clocks.off(r.cpu), clocks.speed(r.cpu));
                        if c < nr_cpus && curr[c] != 0 && curr[c] != r.prev.pid {
                            // The CPU was running another task than the one it
                            // switches away from: that task's switch out is missing.
                            pass.route(
                                curr[c],
                                None,
                                Event {
                                    ts: r.ts,
                                    cpu: r.cpu,
                                    off: o,
                                    speed,
                                    kind: EventKind::Unseen,
                                    k: None,
                                    sums: None,
                                },
                            );
                        }
                        // The PELT time of next's pick. After a switch out of a fair
                        // task it is prev's update time (same rq clock). Out of idle,
                        // the wakeup that ended the idle asked for a reschedule and
                        // `rq_clock_skip_update()` made the pick reuse the
                        // enqueue's clock: the pick is at the wakeup's time.
                        let idle_wake = if r.prev.pid == 0 && c < nr_cpus {
                            woke[c].take()
                        } else {
                            None
                        };
                        let pick_now = prev_lut.or(idle_wake.map(|(lut, _)| lut));
                        let pick_ts = idle_wake.map_or(r.ts, |(_, ts)| ts);
                        if c < nr_cpus {
                            woke[c] = None;
                        }
                        pass.route(
                            r.prev.pid,
                            Some(r.prev.prio),
                            Event {
                                ts: r.ts,
                                cpu: r.cpu,
                                off: o,
                                speed,
                                kind: EventKind::SwitchOut {
                                    prev_state: r.prev_state,
                                },
                                k: r.prev_pelt,
                                sums: r.prev_sums,
                            },
                        );
                        pass.route(
                            r.next.pid,
                            Some(r.next.prio),
                            Event {
                                ts: r.ts,
                                cpu: r.cpu,
                                off: o,
                                speed,
                                kind: EventKind::SwitchIn { pick_now, pick_ts },
                                k: r.next_pelt,
                                sums: r.next_sums,
                            },
                        );
                        if c < nr_cpus {
                            curr[c] = r.next.pid;
                            // Tasks left delayed on this CPU are dequeued when the
                            // kernel's pick reaches them, which the trace does not
                            // show; the next pick on the CPU is the estimate (on the
                            // fixtures it matches the kernel's load_avg more often than
                            // keeping them queued until their wakeup).
                            let drained = std::mem::take(&mut delayed[c]);
                            for pid in drained {
                                pass.route(
                                    pid,
                                    None,
                                    Event {
                                        ts: r.ts,
                                        cpu: r.cpu,
                                        off: o,
                                        speed,
                                        kind: EventKind::Pick,
                                        k: None,
                                        sums: None,
                                    },
                                );
                            }
                            if r.prev_pelt.is_some_and(|p| p.on_rq && p.sched_delayed) {
                                delayed[c].push(r.prev.pid);
                            }
                        }
                        pass.settle(r.prev.pid, r.cpu);
                        pass.settle(r.next.pid, r.cpu);
                        clocks.set_busy(r.cpu, r.next.pid != 0);
                    }
                    Record::Wakeup(r) => {
                        let t = r.target_cpu as usize;
                        // Only a known fair task's PELT maps clocks (the recorder
                        // reads sched_avg at every wakeup, whatever the class).
                        // A task first seen at its wakeup starts at its first
                        // switch, which says its class; a new one at its wakeup
                        // when its fork record said it (the kernel's initial
                        // state is exact there).
                        let prio = if r.new {
                            pass.prio.get(&r.pid).copied()
                        } else {
                            None
                        };
                        let known = pass.by_pid.contains_key(&r.pid)
                            || prio.is_some_and(|p| fair_weight(p, None).is_some());
                        clocks.advance(r.target_cpu, r.ts);
                        if let Some(p) = r.pelt.filter(|p| known && p.last_update_time != 0) {
                            if t < nr_cpus {
                                woke[t] = Some((p.last_update_time, r.ts));
                                if measure {
                                    clocks.measure(r.target_cpu, r.ts, p.last_update_time);
                                }
                            }
                        }
                        let ev = Event {
                            ts: r.ts,
                            cpu: r.target_cpu,
                            off: clocks.off(r.target_cpu),
                            speed: clocks.speed(r.target_cpu),
                            kind: EventKind::Wakeup { new: r.new },
                            k: r.pelt,
                            sums: r.sums,
                        };
                        pass.route(r.pid, prio, ev);
                        pass.settle(r.pid, r.target_cpu);
                    }
                    Record::Migrate(r) => {
                        clocks.advance(r.orig_cpu, r.ts);
                        clocks.advance(r.dest_cpu, r.ts);
                        let ev = Event {
                            ts: r.ts,
                            cpu: r.dest_cpu,
                            off: clocks.off(r.dest_cpu),
                            speed: clocks.speed(r.dest_cpu),
                            kind: EventKind::Migrate {
                                orig_off: clocks.off(r.orig_cpu),
                                dest_off: clocks.off(r.dest_cpu),
                                dest_off_ts: clocks.measured_ts(r.dest_cpu),
                            },
                            k: None,
                            sums: None,
                        };
                        pass.route(r.pid, None, ev);
                        pass.settle(r.pid, r.dest_cpu);
                    }
                    Record::Pelt(r) if r.entity == Entity::CfsRq => {
                        let c = r.rq_cpu as usize;
                        if pass.track_roots && c < nr_cpus {
                            pass.held[c].push(Probe {
                                ts: r.ts,
                                cpu: r.rq_cpu,
                                kernel: r.avg,
                                sums: r.sums,
                                reset: false,
                                total: Default::default(),
                                pre_attach: None,
                                unknown: false,
                            });
                        }
                    }
                    Record::Pelt(r) if r.entity == Entity::GroupSe => {
                        pass.roots.groups = true;
                    }
                    Record::Pelt(r) if r.entity == Entity::Task => {
                        let is_curr = curr.get(r.rq_cpu as usize) == Some(&r.pid);
                        clocks.advance(r.rq_cpu, r.ts);
                        let ev = Event {
                            ts: r.ts,
                            cpu: r.rq_cpu,
                            off: clocks.off(r.rq_cpu),
                            speed: clocks.speed(r.rq_cpu),
                            kind: EventKind::Sample { curr: is_curr },
                            k: Some(r.avg),
                            sums: r.sums,
                        };
                        pass.route(r.pid, None, ev);
                    }
                    Record::Task(r) => {
                        pass.policy.insert(r.pid, r.policy);
                        pass.prio.insert(r.pid, r.prio);
                        pass.comms
                            .insert(r.pid, String::from_utf8_lossy(&r.comm).into_owned());
                        if let Some(&i) = pass.by_pid.get(&r.pid) {
                            pass.slots[i].comm = String::from_utf8_lossy(&r.comm).into_owned();
                        }
                        use schedrec_format::TaskEvent;
                        if matches!(r.event, TaskEvent::Fork) && pass.by_pid.contains_key(&r.pid) {
                            // The pid is reused: the old task is gone.
                            pass.finish(r.pid, r.ts, r.cpu);
                        }
                        if matches!(r.event, TaskEvent::Exit) {
                            // The exit record comes from do_exit(): the task
                            // still runs (and can be preempted) until its
                            // final switch out, its load on its run-queue
                            // until then; it is finished there. One not
                            // replayed must not start a new task at that
                            // switch. Its metadata goes (a fork that reuses
                            // the pid brings new): memory follows the tasks
                            // alive.
                            if let Some(&i) = pass.by_pid.get(&r.pid) {
                                pass.dying.insert(r.pid);
                                pass.slots[i].events.push(Event {
                                    ts: r.ts,
                                    cpu: r.cpu,
                                    off: 0,
                                    speed: Speed::FULL,
                                    kind: EventKind::Exiting,
                                    k: None,
                                    sums: None,
                                });
                            } else {
                                pass.exited.insert(r.pid);
                            }
                            pass.policy.remove(&r.pid);
                            pass.prio.remove(&r.pid);
                            pass.comms.remove(&r.pid);
                        }
                        if matches!(r.event, TaskEvent::Fork) {
                            pass.skipped.remove(&r.pid);
                            pass.exited.remove(&r.pid);
                            pass.dying.remove(&r.pid);
                        }
                    }
                    Record::CpuFreq(r) => {
                        clocks.advance(r.target_cpu, r.ts);
                        clocks.set_freq(r.target_cpu, r.freq_khz);
                    }
                    Record::Loss(r) => {
                        // Lost events: every timeline breaks here (the lost records
                        // could have been about any task), and what the CPUs
                        // were doing is unknown.
                        curr.fill(0);
                        clocks.forget_busy(r.ts);
                        // Every root's residual is taken again after it.
                        pass.reset.fill(true);
                        // A dying task's final switch may have been lost:
                        // it ends here.
                        let dying: Vec<u32> = pass.dying.drain().collect();
                        for pid in dying {
                            pass.finish(pid, r.ts, r.cpu);
                            pass.exited.insert(pid);
                        }
                        woke.fill(None);
                        delayed.iter_mut().for_each(Vec::clear);
                        for s in pass.slots.iter_mut() {
                            s.events.push(Event {
                                ts: r.ts,
                                cpu: r.cpu,
                                off: 0,
                                speed: Speed::FULL,
                                kind: EventKind::Lost,
                                k: None,
                                sums: None,
                            });
                        }
                    }
                    _ => {}
                }
                pass.after_record(deferred);
                pending += 1;
                // (Held root samples wait into the next batch: they have no
                // probe yet.)
                if pending >= opts.batch {
                    run_batch(&mut pass, &mut excluded, &mut rows_total, false)?;
                    pending = 0;
                    progress(records);
                }
            }
        }
        Ok(())
    })?;
    pass.release_all();
    // The last batch's events first: the end of the trace comes after them.
    step_events(&mut pass.slots, &cfg);
    for s in pass.slots.iter_mut() {
        s.sim.finish(&cfg, last_ts, &mut s.out);
    }
    run_batch(&mut pass, &mut excluded, &mut rows_total, true)?;
    progress(records);

    // Totals: the tasks still alive join the retired ones.
    let live: Vec<usize> = pass.by_pid.values().copied().collect();
    pass.dead.extend(live);
    pass.retire_dead();
    let fid = pass.done_fid;
    let reanchors = pass.done_reanchors;
    let mut per_task = pass.top;
    per_task.truncate(opts.top);
    let samples = fid.get(Metric::Util).n;
    Ok(Summary {
        model: opts
            .model
            .as_ref()
            .map(|m| m.name())
            .unwrap_or_else(|| reference.name()),
        reference: reference.name(),
        measured: measured.name(),
        clock: match clock {
            Clock::Pelt => "pelt",
            Clock::Ktime => "ktime",
        },
        hz,
        rows: rows_total,
        samples,
        excluded,
        tasks: pass.done_tasks,
        skipped_tasks: pass.skipped.len() as u64,
        reanchors,
        invariance: [
            ("capacity", clocks.capacity_applied()),
            ("frequency", clocks.frequency_applied),
        ]
        .into_iter()
        .filter_map(|(what, on)| on.then_some(what))
        .collect(),
        unscaled_frequency_records: clocks.frequency_unscaled,
        util_avg: fid.get(Metric::Util).summary(),
        load_avg: fid.get(Metric::Load).summary(),
        runnable_avg: fid.get(Metric::Runnable).summary(),
        util_est: fid.get(Metric::UtilEst).summary(),
        per_task,
        records,
        root: pass.roots.summary(),
    })
}

/// What a record leaves to do once it is routed.
#[derive(Default)]
struct Deferred {
    /// Root samples of the record's own kernel operation (same PELT time),
    /// judged after it.
    after: Vec<Probe>,
    /// The source CPU's last sample before a migration (a queued task's
    /// detach), judged after it with the migrated task asked too.
    migrated_from: Option<(Probe, u32)>,
    /// A task never seen migrated away from this CPU: its load leaves the
    /// source's residual at the source's next update.
    unseen_from: Option<u32>,
    /// A task switched out dead, finished (if replayed) once the samples of
    /// that switch are judged (its load stays on the run-queue until the
    /// removal at the next update): pid, time, CPU.
    gone: Option<(u32, u64, u32)>,
}

/// Runs the tasks' queued events, in parallel (tasks are independent once
/// their events are known).
fn step_events(slots: &mut [Slot], cfg: &Config) {
    slots
        .par_iter_mut()
        .filter(|s| !s.events.is_empty())
        .for_each(|s| {
            for e in s.events.drain(..) {
                match e.kind {
                    EventKind::Probe {
                        id,
                        now,
                        source,
                        pre_attach,
                    } => {
                        let (fresh, share) = s.sim.root_share(now, source, pre_attach);
                        s.shares.push((id, fresh, share));
                    }
                    _ => s.sim.step(cfg, &e, &mut s.out),
                }
            }
        });
}

/// The sequential pass's task table.
struct Pass<'m> {
    models: Vec<&'m dyn Model>,
    caps: Vec<u64>,
    by_pid: HashMap<u32, usize>,
    slots: Vec<Slot>,
    policy: HashMap<u32, u32>,
    /// Priorities from task records.
    prio: HashMap<u32, i32>,
    comms: HashMap<u32, String>,
    skipped: HashSet<u32>,
    /// Slots whose task exited in the current batch.
    dead: Vec<usize>,
    /// Slots free for new tasks.
    free: Vec<usize>,
    /// Pids whose task exited (until a fork reuses them).
    exited: HashSet<u32>,
    /// Replayed tasks past their exit record, not yet switched out dead.
    dying: HashSet<u32>,
    /// What retired tasks leave: their errors, re-anchors, and the busiest
    /// of them (kept to a few times `top`).
    done_fid: Fidelity,
    done_reanchors: u64,
    done_tasks: u64,
    top: Vec<TaskSummary>,
    keep_top: usize,
    /// Root run-queues are rebuilt ([`crate::root`]).
    track_roots: bool,
    /// The CPU whose root run-queue each replayed task is attached to
    /// (its last switch, wakeup or migration), and each CPU's tasks.
    home: HashMap<u32, u32>,
    members: Vec<HashSet<u32>>,
    /// Per CPU: the residual is taken again at its next probe (events
    /// were lost, or a task never seen migrated away).
    reset: Vec<bool>,
    /// Root samples of the batch, waiting for their tasks' shares.
    probes: Vec<Probe>,
    /// Per CPU: root samples waiting for the CPU's next record.
    held: Vec<Vec<Probe>>,
    /// The root samples' rows of the batch ([`Options::root_rows`]).
    root_rows_wanted: bool,
    root_rows: Vec<Row>,
    roots: Roots,
}

impl Pass<'_> {
    /// Before a record is routed: the held root samples it makes due, and
    /// what it leaves for [`Pass::after_record`]. Root samples wait for the
    /// next record on their CPU: when it is the kernel operation they came
    /// from (the same PELT time: a wakeup's enqueue and attach, a switch's
    /// dequeue and pick), they are judged after it.
    fn before_record(&mut self, rec: &Record) -> Deferred {
        let mut d = Deferred::default();
        if let Record::Switch(r) = rec {
            if r.prev_state & TASK_DEAD_STATES != 0 && r.prev.pid != 0 {
                // Its final switch out (whether or not its exit record came
                // first): the task is gone.
                d.gone = Some((r.prev.pid, r.ts, r.cpu));
            }
        }
        if !self.track_roots {
            return d;
        }
        match rec {
            Record::Switch(r) => {
                let lut = r.prev_pelt.map(|p| p.last_update_time);
                d.after = self.release(r.cpu, lut);
            }
            Record::Wakeup(r) => {
                // Only the enqueue's last sample can be its attach (a new
                // or migrated task's): the ones before, a boundary crossed,
                // are without it.
                let lut = r.pelt.map(|p| p.last_update_time);
                d.after = self.release(r.target_cpu, lut);
                let n = d.after.len();
                for p in d.after.iter_mut().take(n.saturating_sub(1)) {
                    p.pre_attach = Some(r.pid);
                }
            }
            Record::Migrate(r) => {
                // A queued task is detached from the source
                // (`detach_entity_load_avg()`, its sample the last before
                // this record); a sleeping one's removal waits for the
                // source's next update. The task tells which, after the
                // migration.
                // (A record from a CPU to itself, or to one the trace does
                // not have, moves nothing.)
                let moves = r.orig_cpu != r.dest_cpu && (r.dest_cpu as usize) < self.members.len();
                let last = moves
                    .then(|| self.held.get_mut(r.orig_cpu as usize).and_then(|h| h.pop()))
                    .flatten();
                self.release(r.orig_cpu, None);
                self.release(r.dest_cpu, None);
                d.migrated_from = last.map(|p| (p, r.pid));
                if !self.by_pid.contains_key(&r.pid) && !self.skipped.contains(&r.pid) {
                    // (At the destination it is seen at its wakeup, which
                    // retakes the residual there.)
                    d.unseen_from = Some(r.orig_cpu);
                }
            }
            // Another update on the CPU at another time: the samples before
            // it are due (same time: the same kernel operation, whose record
            // may still come).
            Record::Pelt(r) => {
                let lut = r.avg.last_update_time;
                let same = self.release(r.rq_cpu, Some(lut));
                if let Some(h) = self.held.get_mut(r.rq_cpu as usize) {
                    h.extend(same);
                }
            }
            // A reused pid ends the old task: its CPU's samples before that
            // are due. (Other task records belong to the switch or wakeup
            // that follows: the recorder writes a task's metadata just
            // before it.)
            Record::Task(r) if r.event == schedrec_format::TaskEvent::Fork => {
                if let Some(&c) = self.home.get(&r.pid) {
                    self.release(c, None);
                }
            }
            Record::Loss(_) => self.release_all(),
            _ => {}
        }
        d
    }

    /// After a record is routed: what [`Pass::before_record`] left.
    fn after_record(&mut self, d: Deferred) {
        for p in d.after {
            self.probe(p, None);
        }
        if let Some((p, pid)) = d.migrated_from {
            self.probe(p, Some(pid));
        }
        if let Some(x) = d.unseen_from.and_then(|c| self.reset.get_mut(c as usize)) {
            *x = true;
        }
        if let Some((pid, ts, cpu)) = d.gone {
            // (Also a task first seen at that switch.)
            if self.by_pid.contains_key(&pid) {
                self.dying.remove(&pid);
                self.finish(pid, ts, cpu);
                self.exited.insert(pid);
            }
        }
    }

    /// `pid` is attached to CPU `cpu`'s root run-queue now (when it is a
    /// replayed task).
    #[inline]
    fn settle(&mut self, pid: u32, cpu: u32) {
        if self.track_roots {
            self.settle_tracked(pid, cpu);
        }
    }

    fn settle_tracked(&mut self, pid: u32, cpu: u32) {
        if pid == 0 || (cpu as usize) >= self.members.len() {
            return;
        }
        if !self.by_pid.contains_key(&pid) {
            return;
        }
        if let Some(old) = self.home.insert(pid, cpu) {
            if old == cpu {
                return;
            }
            self.members[old as usize].remove(&pid);
        }
        self.members[cpu as usize].insert(pid);
    }

    /// A root sample asks the tasks attached to its CPU for their parts.
    /// `source`: the task that just migrated away from the probe's CPU,
    /// asked too (it is still there if its removal is pending).
    fn probe(&mut self, mut p: Probe, source: Option<u32>) {
        let c = p.cpu as usize;
        let id = self.probes.len() as u32;
        let now = p.kernel.last_update_time;
        p.reset = std::mem::take(&mut self.reset[c]);
        let members: Vec<(u32, bool)> = self.members[c]
            .iter()
            .map(|&pid| (pid, false))
            .chain(source.map(|pid| (pid, true)))
            .collect();
        let pre = p.pre_attach;
        for (pid, source) in members {
            self.route(
                pid,
                None,
                Event {
                    ts: p.ts,
                    cpu: p.cpu,
                    off: 0,
                    speed: Speed::FULL,
                    kind: EventKind::Probe {
                        id,
                        now,
                        source,
                        pre_attach: pre == Some(pid),
                    },
                    k: None,
                    sums: None,
                },
            );
        }
        self.probes.push(p);
    }

    /// A record about CPU `cpu` is next: its held root samples are probed
    /// now, except those of the same PELT time `lut`, which came from the
    /// record's own kernel operation and are returned, to be probed after it.
    fn release(&mut self, cpu: u32, lut: Option<u64>) -> Vec<Probe> {
        let Some(held) = self.held.get_mut(cpu as usize) else {
            return Vec::new();
        };
        if held.is_empty() {
            return Vec::new();
        }
        let (after, before): (Vec<Probe>, Vec<Probe>) = std::mem::take(held)
            .into_iter()
            .partition(|p| Some(p.kernel.last_update_time) == lut);
        for p in before {
            self.probe(p, None);
        }
        after
    }

    fn release_all(&mut self) {
        for c in 0..self.held.len() {
            for p in std::mem::take(&mut self.held[c]) {
                self.probe(p, None);
            }
        }
    }

    /// The task is gone (dead, or its pid reused): its timeline ends here.
    fn finish(&mut self, pid: u32, ts: u64, cpu: u32) {
        self.unsettle(pid);
        if let Some(i) = self.by_pid.remove(&pid) {
            self.slots[i].events.push(Event {
                ts,
                cpu,
                off: 0,
                speed: Speed::FULL,
                kind: EventKind::Exit,
                k: None,
                sums: None,
            });
            self.dead.push(i);
        }
    }

    /// `pid` left every run-queue (it exited).
    fn unsettle(&mut self, pid: u32) {
        if let Some(old) = self.home.remove(&pid) {
            self.members[old as usize].remove(&pid);
        }
    }

    /// Sums the batch's root probes from their tasks' shares and judges
    /// them, in time order.
    fn judge_roots(&mut self) {
        if self.probes.is_empty() {
            return;
        }
        for s in self.slots.iter_mut() {
            for (id, fresh, share) in s.shares.drain(..) {
                self.probes[id as usize].add(fresh, share);
            }
        }
        for p in self.probes.drain(..) {
            if let Some(row) = self.roots.judge(&p) {
                if self.root_rows_wanted {
                    self.root_rows.push(row);
                }
            }
        }
    }

    /// Folds exited tasks into the totals and frees their slots: memory
    /// follows the tasks alive, not the tasks ever seen.
    fn retire_dead(&mut self) {
        for i in std::mem::take(&mut self.dead) {
            let slot = std::mem::replace(
                &mut self.slots[i],
                Slot {
                    sim: TaskSim::new(0, Vec::new()),
                    events: Vec::new(),
                    out: Vec::new(),
                    shares: Vec::new(),
                    comm: String::new(),
                    prio: None,
                },
            );
            let sim = &slot.sim;
            self.done_fid.merge(&sim.fid);
            self.done_reanchors += sim.reanchors;
            self.done_tasks += 1;
            self.top.push(TaskSummary {
                pid: sim.pid,
                comm: slot.comm,
                running_ms: sim.running_ns as f64 / 1e6,
                samples: sim.samples,
                reanchors: sim.reanchors,
                util_avg: sim.fid.get(Metric::Util).summary(),
            });
            if self.top.len() >= 4 * self.keep_top {
                self.trim_top();
            }
            self.free.push(i);
        }
        self.trim_top();
    }

    fn trim_top(&mut self) {
        self.top.sort_by(|a, b| {
            b.running_ms
                .total_cmp(&a.running_ms)
                .then(a.pid.cmp(&b.pid))
        });
        self.top.truncate(self.keep_top);
    }

    /// Routes an event to the pid's task, creating it on first sight when
    /// its priority says it is a fair task, and following its weight.
    fn route(&mut self, pid: u32, prio: Option<i32>, ev: Event) {
        self.route_inner(pid, prio, ev)
    }

    fn route_inner(&mut self, pid: u32, prio: Option<i32>, ev: Event) {
        // (A replayed task is neither skipped nor exited: looked up first,
        // the common case costs one lookup.)
        let idx = match self.by_pid.get(&pid) {
            Some(&i) => i,
            None => {
                if pid == 0 || self.skipped.contains(&pid) || self.exited.contains(&pid) {
                    return;
                }
                let weight = match prio {
                    Some(p) => fair_weight(p, self.policy.get(&pid).copied()),
                    None => return,
                };
                let Some(weight) = weight else {
                    self.skipped.insert(pid);
                    return;
                };
                let info = TaskInfo {
                    weight,
                    capacity: self.caps.get(ev.cpu as usize).copied().unwrap_or(1024),
                };
                let models = self.models.iter().map(|m| m.task(info)).collect();
                let slot = Slot {
                    sim: TaskSim::new(pid, models),
                    events: Vec::new(),
                    out: Vec::new(),
                    shares: Vec::new(),
                    comm: self.comms.get(&pid).cloned().unwrap_or_default(),
                    prio,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i] = slot;
                        i
                    }
                    None => {
                        self.slots.push(slot);
                        self.slots.len() - 1
                    }
                };
                self.by_pid.insert(pid, i);
                i
            }
        };
        let slot = &mut self.slots[idx];
        if let Some(p) = prio {
            if slot.prio != Some(p) {
                if let Some(weight) = fair_weight(p, self.policy.get(&pid).copied()) {
                    slot.events.push(Event {
                        kind: EventKind::Reweight { weight },
                        k: None,
                        sums: None,
                        ..ev
                    });
                }
                slot.prio = Some(p);
            }
        }
        slot.events.push(ev);
    }
}
