//! Deterministic synthetic traces from a TOML workload description
//! (`schedrec synth`). A small discrete-event scheduler places tasks with
//! known behaviour — CPU hogs, periodic, bursty, I/O-like, fork/exit churn —
//! on CPUs and emits the records a recorder would: switches (with preemption,
//! idle, optional counters and PELT fields), wakeups, migrations and task
//! metadata.
//!
//! The same spec and seed always give the same bytes. Counter values are
//! modelled (cycles from a per-CPU frequency, instructions from a per-task
//! IPC) and PELT fields, when asked for, come from a floating-point
//! exponential average with PELT's half-life: plausible values for size and
//! speed work, **not** the kernel's integer PELT (the metadata says so under
//! `synth.pelt`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::meta::{CounterInfo, HzSource, Metadata, PeltMode, UtilEstLayout};
use crate::record::*;
use crate::writer::{Writer, WriterOptions};

/// A workload description (the TOML file).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default = "d_cpus")]
    pub cpus: u32,
    #[serde(default = "d_duration")]
    pub duration_ms: f64,
    #[serde(default = "d_hz")]
    pub hz: u32,
    /// Overridden by `--seed`.
    #[serde(default = "d_seed")]
    pub seed: u64,
    /// Scheduler time slice while others wait.
    #[serde(default = "d_slice")]
    pub timeslice_us: f64,
    /// A woken task preempts the running one once it has run this long.
    #[serde(default = "d_gran")]
    pub wakeup_granularity_us: f64,
    /// Emit per-slice counter deltas (cycles, instructions, cache refs/misses).
    #[serde(default)]
    pub counters: bool,
    /// "off", "switch" or "full".
    #[serde(default = "d_pelt")]
    pub pelt: String,
    /// Stop after this many switches (0 = run for duration_ms).
    #[serde(default)]
    pub max_switches: u64,
    #[serde(rename = "task", default)]
    pub tasks: Vec<TaskSpec>,
}

fn d_cpus() -> u32 {
    2
}
fn d_duration() -> f64 {
    1000.0
}
fn d_hz() -> u32 {
    250
}
fn d_seed() -> u64 {
    1
}
fn d_slice() -> f64 {
    3000.0
}
fn d_gran() -> f64 {
    1000.0
}
fn d_pelt() -> String {
    "off".into()
}
fn d_one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Always runnable.
    Hog,
    /// Runs `duty * period_ms` every `period_ms`, on absolute deadlines.
    Periodic,
    /// Runs `burst_ms`, sleeps `idle_ms`.
    Bursty,
    /// Runs `run_us`, then sleeps `sleep_us` uninterruptibly (I/O wait).
    Io,
    /// Every `period_ms` runs `run_us` and forks a child that runs
    /// `child_run_us` in total (in pieces of at most `run_us`) and exits.
    Spawner,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// comm (at most 15 bytes kept).
    pub name: String,
    pub kind: TaskKind,
    /// Number of threads of this kind; they share one tgid.
    #[serde(default = "d_one")]
    pub count: u32,
    /// Pin to this CPU.
    pub cpu: Option<u32>,
    #[serde(default)]
    pub nice: i32,
    #[serde(default)]
    pub period_ms: f64,
    #[serde(default)]
    pub duty: f64,
    #[serde(default)]
    pub burst_ms: f64,
    #[serde(default)]
    pub idle_ms: f64,
    #[serde(default)]
    pub run_us: f64,
    #[serde(default)]
    pub sleep_us: f64,
    #[serde(default)]
    pub child_run_us: f64,
    /// Relative random variation of run and sleep lengths (0..1).
    #[serde(default)]
    pub jitter: f64,
    #[serde(default)]
    pub start_ms: f64,
    pub exit_ms: Option<f64>,
    /// Instructions per cycle of this task (counters).
    #[serde(default = "d_ipc")]
    pub ipc: f64,
    /// Cache misses per cache reference.
    #[serde(default = "d_miss")]
    pub miss_rate: f64,
}

fn d_ipc() -> f64 {
    1.5
}
fn d_miss() -> f64 {
    0.05
}

impl Spec {
    pub fn from_toml(text: &str) -> Result<Spec> {
        let spec: Spec =
            toml::from_str(text).map_err(|e| Error::InvalidRecord(format!("synth spec: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Spec::from_toml(&text).map_err(|e| match e {
            Error::InvalidRecord(m) => Error::InvalidRecord(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    fn pelt_mode(&self) -> PeltMode {
        match self.pelt.as_str() {
            "switch" => PeltMode::Switch,
            "full" => PeltMode::Full,
            _ => PeltMode::Off,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidRecord(format!("synth spec: {m}")));
        if self.cpus == 0 || self.cpus > 4096 {
            return bad(format!("cpus = {} (1..4096)", self.cpus));
        }
        if !["off", "switch", "full"].contains(&self.pelt.as_str()) {
            return bad(format!("pelt = {:?} (off, switch or full)", self.pelt));
        }
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !positive(self.duration_ms) || !positive(self.timeslice_us) {
            return bad("duration_ms and timeslice_us must be > 0".into());
        }
        if self.tasks.is_empty() {
            return bad("no [[task]]".into());
        }
        for t in &self.tasks {
            let need = |ok: bool, what: &str| {
                if ok {
                    Ok(())
                } else {
                    bad(format!("task {:?} ({:?}): {what}", t.name, t.kind))
                }
            };
            need(t.cpu.is_none_or(|c| c < self.cpus), "cpu out of range")?;
            need(t.count >= 1 && t.count <= 10_000, "count must be 1..10000")?;
            need((-20..=19).contains(&t.nice), "nice must be -20..19")?;
            need((0.0..1.0).contains(&t.jitter), "jitter must be in [0, 1)")?;
            match t.kind {
                TaskKind::Hog => Ok(()),
                TaskKind::Periodic => need(
                    t.period_ms > 0.0 && t.duty > 0.0 && t.duty <= 1.0,
                    "needs period_ms > 0 and 0 < duty <= 1",
                ),
                TaskKind::Bursty => need(
                    t.burst_ms > 0.0 && t.idle_ms > 0.0,
                    "needs burst_ms and idle_ms > 0",
                ),
                TaskKind::Io => need(
                    t.run_us > 0.0 && t.sleep_us > 0.0,
                    "needs run_us and sleep_us > 0",
                ),
                TaskKind::Spawner => need(
                    t.period_ms > 0.0 && t.run_us > 0.0 && t.child_run_us > 0.0,
                    "needs period_ms, run_us and child_run_us > 0",
                ),
            }?;
        }
        Ok(())
    }
}

/// SplitMix64: tiny, fast, and fixed forever (unlike a crate's default RNG),
/// so traces stay byte-identical across releases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// `x` varied by ±`j` (relative).
    fn jit(&mut self, x: f64, j: f64) -> f64 {
        x * (1.0 + j * (2.0 * self.f() - 1.0))
    }
}

const MS: f64 = 1e6;
const US: f64 = 1e3;
const TASK_INTERRUPTIBLE: u32 = 1;
const TASK_UNINTERRUPTIBLE: u32 = 2;
const TASK_DEAD: u32 = 0x80;
/// PELT's time constant: y^32 = 1/2 with 1.024 µs units and 1024-unit periods.
const PELT_TAU_NS: f64 = 32.0 * 1_048_576.0 / std::f64::consts::LN_2;

struct T {
    spec: usize,
    pid: u32,
    tgid: u32,
    ppid: u32,
    prio: i32,
    comm: Vec<u8>,
    cpu: u32,
    /// Remaining run demand of the current phase (ns); infinite for hogs.
    remaining: f64,
    /// Next periodic activation (absolute ns).
    next_release: f64,
    alive: bool,
    /// Child of a spawner: total run left before exit.
    child_left: Option<f64>,
    exit_at: Option<u64>,
    ipc: f64,
    miss_rate: f64,
    // PELT-like state (floating point approximation).
    util: f64,
    runnable: f64,
    util_est: f64,
    last: u64,
    on_cpu: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// Task becomes runnable.
    Wake(usize),
    /// A CPU's current task has used its demand or its slice (generation-checked).
    Cpu(u32, u64),
    /// A spawner-created task comes into existence.
    Fork(usize),
}

struct Cpu {
    curr: Option<usize>,
    queue: VecDeque<usize>,
    /// When the current task was switched in (or the CPU went idle).
    since: u64,
    slice_end: u64,
    gen: u64,
    ghz: f64,
}

/// Statistics of a generated trace.
#[derive(Clone, Debug, Default)]
pub struct SynthStats {
    pub records: u64,
    pub switches: u64,
    pub tasks: u64,
    pub end_ns: u64,
}

/// The header metadata a spec produces.
pub fn metadata(spec: &Spec, seed: u64, command_line: Vec<String>) -> Metadata {
    let counters = COUNTER_SLOTS
        .iter()
        .map(|n| CounterInfo {
            name: n.to_string(),
            available: spec.counters,
        })
        .collect();
    Metadata {
        kernel_release: "synthetic".into(),
        hostname: Some("synth".into()),
        nr_cpus: spec.cpus,
        cpu_capacity: vec![1024; spec.cpus as usize],
        cpu_max_freq_khz: Vec::new(),
        hz: spec.hz,
        hz_source: HzSource::Given,
        clock_id: 1,
        anchor_clock_ns: START_NS,
        anchor_realtime_ns: 1_764_000_000_000_000_000,
        recorder: format!("schedrec-synth {}", env!("CARGO_PKG_VERSION")),
        command_line,
        counters,
        pelt: spec.pelt_mode(),
        util_est_layout: UtilEstLayout::Single,
        extra: vec![
            ("synth.seed".into(), seed.to_string()),
            (
                "synth.pelt".into(),
                "approximate (floating point), not kernel-exact".into(),
            ),
        ],
    }
}

/// Where synthetic time starts: 1000 s after boot.
pub const START_NS: u64 = 1_000_000_000_000;

/// Generates the trace of `spec` with `seed`, handing every record to `sink`
/// in per-CPU time order.
pub fn generate(
    spec: &Spec,
    seed: u64,
    mut sink: impl FnMut(Record) -> Result<()>,
) -> Result<SynthStats> {
    Sim::new(spec, seed).run(&mut sink)
}

/// Generates the trace of `spec` into a `.sched` file.
pub fn write_file(
    spec: &Spec,
    seed: u64,
    path: &Path,
    command_line: Vec<String>,
    opts: WriterOptions,
) -> Result<SynthStats> {
    let mut w = Writer::create(path, &metadata(spec, seed, command_line), opts)?;
    let stats = generate(spec, seed, |r| w.push(&r))?;
    w.finish()?;
    Ok(stats)
}

struct Sim<'s> {
    spec: &'s Spec,
    rng: Rng,
    tasks: Vec<T>,
    cpus: Vec<Cpu>,
    events: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    next_pid: u32,
    end: u64,
    mode: PeltMode,
    seed: u64,
    stats: SynthStats,
}

fn nice_to_prio(nice: i32) -> i32 {
    120 + nice
}

fn comm(name: &str) -> Vec<u8> {
    name.as_bytes().iter().take(15).copied().collect()
}

impl<'s> Sim<'s> {
    fn new(spec: &'s Spec, seed: u64) -> Self {
        let mut rng = Rng(seed ^ 0x5eed_5eed_0000_0001);
        let cpus = (0..spec.cpus)
            .map(|_| Cpu {
                curr: None,
                queue: VecDeque::new(),
                since: START_NS,
                slice_end: 0,
                gen: 0,
                ghz: 2.0 + rng.f(),
            })
            .collect();
        Sim {
            spec,
            rng,
            tasks: Vec::new(),
            cpus,
            events: BinaryHeap::new(),
            seq: 0,
            next_pid: 1000,
            end: START_NS.saturating_add((spec.duration_ms * MS) as u64),
            mode: spec.pelt_mode(),
            seed,
            stats: SynthStats::default(),
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, ev)));
    }

    fn new_task(&mut self, spec: usize, tgid: Option<u32>, now: u64) -> usize {
        let s = &self.spec.tasks[spec];
        let pid = self.next_pid;
        self.next_pid += 1;
        let cpu = s
            .cpu
            .unwrap_or((self.rng.next() % self.spec.cpus as u64) as u32);
        self.tasks.push(T {
            spec,
            pid,
            tgid: tgid.unwrap_or(pid),
            ppid: 1,
            prio: nice_to_prio(s.nice),
            comm: comm(&s.name),
            cpu,
            remaining: 0.0,
            next_release: now as f64,
            alive: true,
            child_left: None,
            exit_at: s.exit_ms.map(|e| START_NS + (e * MS) as u64),
            ipc: s.ipc,
            miss_rate: s.miss_rate,
            util: 0.0,
            runnable: 0.0,
            util_est: 0.0,
            last: now,
            on_cpu: false,
        });
        self.tasks.len() - 1
    }

    fn run(mut self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<SynthStats> {
        sink(Record::Marker(Marker {
            ts: START_NS,
            cpu: CPU_NONE,
            text: format!("synth seed={}", self.seed).into_bytes(),
        }))?;
        for si in 0..self.spec.tasks.len() {
            let s = &self.spec.tasks[si];
            let start = START_NS + (s.start_ms * MS) as u64;
            let count = s.count;
            let mut tgid = None;
            for _ in 0..count {
                let ti = self.new_task(si, tgid, start);
                tgid.get_or_insert(self.tasks[ti].tgid);
                if start > START_NS {
                    // Emitted (with a wakeup_new) when it starts.
                    self.at(start, Ev::Fork(ti));
                } else {
                    sink(self.task_record(ti, start, TaskEvent::Seen))?;
                    self.at(start, Ev::Wake(ti));
                }
            }
        }
        while let Some(Reverse((now, _, ev))) = self.events.pop() {
            if now > self.end
                || (self.spec.max_switches > 0 && self.stats.switches >= self.spec.max_switches)
            {
                break;
            }
            match ev {
                Ev::Wake(ti) => self.wake(ti, now, false, sink)?,
                Ev::Fork(ti) => {
                    sink(self.task_record(ti, now, TaskEvent::Fork))?;
                    self.wake(ti, now, true, sink)?;
                }
                Ev::Cpu(c, gen) => {
                    if self.cpus[c as usize].gen == gen {
                        self.cpu_event(c, now, sink)?;
                    }
                }
            }
        }
        self.stats.end_ns = self.end;
        self.stats.tasks = self.tasks.len() as u64;
        Ok(self.stats)
    }

    fn task_record(&self, ti: usize, ts: u64, event: TaskEvent) -> Record {
        let t = &self.tasks[ti];
        Record::Task(Task {
            ts,
            cpu: CPU_NONE,
            pid: t.pid,
            tgid: t.tgid,
            ppid: t.ppid,
            prio: t.prio,
            policy: 0,
            event,
            comm: t.comm.clone(),
        })
    }

    /// Length of the next run phase of a task (ns); sets up its next release.
    fn new_phase(&mut self, ti: usize, now: u64) -> f64 {
        let s = &self.spec.tasks[self.tasks[ti].spec];
        let j = s.jitter;
        if let Some(left) = self.tasks[ti].child_left {
            return left.min(s.run_us * US);
        }
        match s.kind {
            TaskKind::Hog => f64::INFINITY,
            TaskKind::Periodic => {
                let p = s.period_ms * MS;
                let t = &mut self.tasks[ti];
                if t.next_release < now as f64 - p {
                    // Overrun by more than a period: skip missed activations.
                    t.next_release = now as f64;
                }
                t.next_release += p;
                self.rng.jit(s.duty * p, j)
            }
            TaskKind::Bursty => self.rng.jit(s.burst_ms * MS, j),
            TaskKind::Io | TaskKind::Spawner => self.rng.jit(s.run_us * US, j),
        }
    }

    /// How long a task sleeps after a phase, and in which state.
    fn sleep_after(&mut self, ti: usize, now: u64) -> (u64, u32) {
        let s = &self.spec.tasks[self.tasks[ti].spec];
        let j = s.jitter;
        match s.kind {
            _ if self.tasks[ti].child_left.is_some() => {
                (self.rng.jit(50.0 * US, 0.5) as u64, TASK_INTERRUPTIBLE)
            }
            TaskKind::Hog => (0, 0),
            TaskKind::Periodic => (
                (self.tasks[ti].next_release - now as f64).max(0.0) as u64,
                TASK_INTERRUPTIBLE,
            ),
            TaskKind::Bursty => (self.rng.jit(s.idle_ms * MS, j) as u64, TASK_INTERRUPTIBLE),
            TaskKind::Io => (
                self.rng.jit(s.sleep_us * US, j) as u64,
                TASK_UNINTERRUPTIBLE,
            ),
            TaskKind::Spawner => (
                (s.period_ms * MS - s.run_us * US).max(0.0) as u64,
                TASK_INTERRUPTIBLE,
            ),
        }
    }

    fn wake(
        &mut self,
        ti: usize,
        now: u64,
        new: bool,
        sink: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        if !self.tasks[ti].alive {
            return Ok(());
        }
        let prev_cpu = self.tasks[ti].cpu;
        let pinned = self.spec.tasks[self.tasks[ti].spec].cpu;
        let target = match pinned {
            Some(c) => c,
            None => {
                let idle = |c: u32| {
                    let cpu = &self.cpus[c as usize];
                    cpu.curr.is_none() && cpu.queue.is_empty()
                };
                if idle(prev_cpu) {
                    prev_cpu
                } else if let Some(c) = (0..self.spec.cpus).find(|&c| idle(c)) {
                    c
                } else {
                    (0..self.spec.cpus)
                        .min_by_key(|&c| (self.cpus[c as usize].queue.len(), c != prev_cpu))
                        .unwrap_or(prev_cpu)
                }
            }
        };
        if target != prev_cpu && !new {
            sink(Record::Migrate(Migrate {
                ts: now,
                cpu: target,
                pid: self.tasks[ti].pid,
                orig_cpu: prev_cpu,
                dest_cpu: target,
            }))?;
        }
        self.pelt_update(ti, now);
        self.tasks[ti].cpu = target;
        let phase = self.new_phase(ti, now);
        self.tasks[ti].remaining = phase;
        let pelt = self.pelt_avg(ti, true);
        let sums = (self.mode == PeltMode::Full).then(|| self.pelt_sums(ti));
        sink(Record::Wakeup(Wakeup {
            ts: now,
            cpu: target,
            pid: self.tasks[ti].pid,
            target_cpu: target,
            new,
            pelt,
            sums,
        }))?;
        // The switch follows the wakeup after a short scheduling latency.
        let lat = 1_000 + self.rng.next() % 4_000;
        let gran = (self.spec.wakeup_granularity_us * US) as u64;
        let cpu = &mut self.cpus[target as usize];
        cpu.queue.push_back(ti);
        match cpu.curr {
            None => {
                cpu.gen += 1;
                let gen = cpu.gen;
                self.at(now + lat, Ev::Cpu(target, gen));
            }
            Some(curr) => {
                if now - cpu.since >= gran && self.tasks[curr].remaining.is_infinite() {
                    // Wakeup preemption: the sleeper has lag, the hog has run.
                    cpu.slice_end = now + lat;
                } else {
                    cpu.slice_end = cpu.since + (self.spec.timeslice_us * US) as u64;
                }
                self.arm(target, now);
            }
        }
        Ok(())
    }

    /// Schedules the CPU's next decision: demand exhausted or slice over.
    fn arm(&mut self, c: u32, now: u64) {
        let cpu = &mut self.cpus[c as usize];
        cpu.gen += 1;
        let Some(curr) = cpu.curr else { return };
        let rem = self.tasks[curr].remaining;
        let done = if rem.is_finite() {
            cpu.since + rem.max(0.0).ceil() as u64
        } else {
            u64::MAX
        };
        let mut t = done;
        if !cpu.queue.is_empty() {
            t = t.min(cpu.slice_end.max(now));
        }
        if t != u64::MAX {
            let gen = cpu.gen;
            self.at(t.max(now), Ev::Cpu(c, gen));
        }
    }

    fn cpu_event(
        &mut self,
        c: u32,
        now: u64,
        sink: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let Some(curr) = self.cpus[c as usize].curr else {
            // Idle CPU with a task queued by a wakeup.
            if let Some(next) = self.cpus[c as usize].queue.pop_front() {
                self.switch(c, now, None, Some(next), 0, false, sink)?;
            }
            return Ok(());
        };
        let ran = (now - self.cpus[c as usize].since) as f64;
        let left = self.tasks[curr].remaining - ran;
        if left <= 0.5 {
            // Demand done: block (or exit).
            let t = &mut self.tasks[curr];
            if let Some(cl) = t.child_left.as_mut() {
                *cl -= t.remaining;
                if *cl <= 0.5 {
                    t.alive = false;
                }
            }
            let exit = self.tasks[curr].exit_at.is_some_and(|e| now >= e);
            if exit {
                self.tasks[curr].alive = false;
            }
            let next = self.cpus[c as usize].queue.pop_front();
            if !self.tasks[curr].alive {
                self.switch(c, now, Some(curr), next, TASK_DEAD, false, sink)?;
                sink(self.task_record(curr, now, TaskEvent::Exit))?;
                return Ok(());
            }
            let (sleep, state) = self.sleep_after(curr, now);
            if self.spec.tasks[self.tasks[curr].spec].kind == TaskKind::Spawner
                && self.tasks[curr].child_left.is_none()
            {
                let child_spec = self.tasks[curr].spec;
                let child = self.new_task(child_spec, None, now);
                let s = &self.spec.tasks[child_spec];
                self.tasks[child].child_left = Some(self.rng.jit(s.child_run_us * US, s.jitter));
                self.tasks[child].tgid = self.tasks[child].pid;
                self.tasks[child].ppid = self.tasks[curr].pid;
                self.tasks[child].comm = comm(&format!("{}-child", s.name));
                self.at(now + 1, Ev::Fork(child));
            }
            if state == 0 {
                self.tasks[curr].remaining = self.new_phase(curr, now);
                self.switch(c, now, Some(curr), next, 0, true, sink)?;
                self.cpus[c as usize].queue.push_back(curr);
            } else {
                self.switch(c, now, Some(curr), next, state, false, sink)?;
                self.at(now + sleep.max(1), Ev::Wake(curr));
            }
        } else {
            // Slice over with others waiting: preempt.
            self.tasks[curr].remaining = left;
            let next = self.cpus[c as usize].queue.pop_front();
            self.cpus[c as usize].queue.push_back(curr);
            self.switch(c, now, Some(curr), next, 0, true, sink)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn switch(
        &mut self,
        c: u32,
        now: u64,
        prev: Option<usize>,
        next: Option<usize>,
        prev_state: u32,
        preempt: bool,
        sink: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let since = self.cpus[c as usize].since;
        let slice = now - since;
        if let Some(p) = prev {
            self.pelt_update(p, now);
            self.tasks[p].on_cpu = false;
            if prev_state != 0 {
                self.update_util_est(p);
            }
        }
        if let Some(n) = next {
            self.pelt_update(n, now);
            self.tasks[n].on_cpu = true;
            self.tasks[n].cpu = c;
        }
        let tref = |t: Option<usize>, s: &Self| match t {
            Some(i) => TaskRef {
                pid: s.tasks[i].pid,
                tgid: s.tasks[i].tgid,
                prio: s.tasks[i].prio,
            },
            None => TaskRef {
                pid: 0,
                tgid: 0,
                prio: 120,
            },
        };
        let mut counters = [None; 4];
        if self.spec.counters {
            let ghz = self.cpus[c as usize].ghz;
            let (ipc, miss, busy) = match prev {
                Some(p) => (self.tasks[p].ipc, self.tasks[p].miss_rate, 1.0),
                None => (0.3, 0.2, 0.01),
            };
            let cycles = (slice as f64 * ghz * busy * self.rng.jit(1.0, 0.002)) as u64;
            let instructions = (cycles as f64 * self.rng.jit(ipc, 0.1)) as u64;
            let refs = (instructions as f64 * self.rng.jit(0.02, 0.2)) as u64;
            let misses = (refs as f64 * self.rng.jit(miss, 0.2)) as u64;
            for (slot, v) in counters
                .iter_mut()
                .zip([cycles, instructions, refs, misses])
            {
                *slot = Some(Counter {
                    value: v,
                    enabled: slice,
                    running: slice,
                });
            }
        }
        let (prev_pelt, prev_sums, next_pelt, next_sums) = match self.mode {
            PeltMode::Off => (None, None, None, None),
            PeltMode::Switch => (
                prev.and_then(|p| self.pelt_avg(p, prev_state == 0)),
                None,
                None,
                None,
            ),
            PeltMode::Full => (
                prev.and_then(|p| self.pelt_avg(p, prev_state == 0)),
                prev.map(|p| self.pelt_sums(p)),
                next.and_then(|n| self.pelt_avg(n, true)),
                next.map(|n| self.pelt_sums(n)),
            ),
        };
        // The idle task has no PELT: give it zeros so the chunk stays uniform.
        let zero = (self.mode != PeltMode::Off).then(PeltAvg::default);
        let zsums = (self.mode == PeltMode::Full).then(PeltSums::default);
        sink(Record::Switch(Switch {
            ts: now,
            cpu: c,
            prev: tref(prev, self),
            prev_state,
            next: tref(next, self),
            preempt,
            counters,
            prev_pelt: prev_pelt.or(zero),
            prev_sums: prev_sums.or(zsums),
            next_pelt: if self.mode == PeltMode::Full {
                next_pelt.or(zero)
            } else {
                None
            },
            next_sums: next_sums.or(if self.mode == PeltMode::Full {
                zsums
            } else {
                None
            }),
        }))?;
        self.stats.switches += 1;
        let cpu = &mut self.cpus[c as usize];
        cpu.curr = next;
        cpu.since = now;
        cpu.slice_end = now + (self.spec.timeslice_us * US) as u64;
        self.arm(c, now);
        Ok(())
    }

    fn pelt_update(&mut self, ti: usize, now: u64) {
        let t = &mut self.tasks[ti];
        let dt = now.saturating_sub(t.last) as f64;
        let y = (-dt / PELT_TAU_NS).exp();
        let run = if t.on_cpu { 1024.0 } else { 0.0 };
        t.util = t.util * y + run * (1.0 - y);
        t.runnable = t.runnable * y + if t.on_cpu { 1024.0 * (1.0 - y) } else { 0.0 };
        t.last = now;
    }

    fn update_util_est(&mut self, ti: usize) {
        let t = &mut self.tasks[ti];
        if t.util >= t.util_est {
            t.util_est = t.util;
        } else {
            t.util_est -= (t.util_est - t.util) / 4.0;
        }
    }

    fn pelt_avg(&self, ti: usize, on_rq: bool) -> Option<PeltAvg> {
        if self.mode == PeltMode::Off {
            return None;
        }
        let t = &self.tasks[ti];
        let lut = pelt_clock(t.last);
        Some(PeltAvg {
            util_avg: t.util as u64,
            load_avg: if on_rq {
                t.runnable as u64
            } else {
                t.util as u64
            },
            runnable_avg: t.runnable as u64,
            util_est: t.util_est as u32,
            last_update_time: lut,
            on_rq,
            sched_delayed: false,
        })
    }

    fn pelt_sums(&self, ti: usize) -> PeltSums {
        let t = &self.tasks[ti];
        // As in the kernel, the window position follows from the PELT time:
        // both advance by whole 1024 ns units from 0.
        let period_contrib = ((pelt_clock(t.last) >> 10) % 1024) as u32;
        let divider = 47742.0 - 1024.0 + period_contrib as f64;
        PeltSums {
            load_sum: (t.runnable * divider / 1024.0) as u64,
            runnable_sum: (t.runnable * divider) as u64,
            util_sum: (t.util * divider) as u64,
            period_contrib,
        }
    }
}

/// The PELT time of an update at trace time `ts`: the PELT clock lags the
/// trace clock a little (steal time) and sits on a 1024 ns grid.
fn pelt_clock(ts: u64) -> u64 {
    (ts - ts / 20_000) & !1023
}
