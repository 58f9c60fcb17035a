//! One task's timeline: its state (sleeping, runnable-waiting, running,
//! delayed) rebuilt from its records, turned into PELT update points in the
//! kernel's order (`pelt-reference.md` §3), and fed to every model.
//!
//! The rule at each record: update with the inputs of the interval that
//! just ended, then change state. Where the trace carries the kernel's
//! `last_update_time` for the record, that is the exact PELT `now` of the
//! kernel's update; otherwise `now` is estimated from the trace clock.

use schedrec_format::record::{PeltAvg, PeltSums};

use crate::clock::Speed;
use crate::fidelity::{Fidelity, Metric};
use crate::model::{Inputs, Moved, TaskModel, Values};
use crate::root::Share;

/// How long after the jiffies boundary the tick's update reads the rq
/// clock, as the trace clock maps it: measured on this project's fixtures
/// with `--pelt full` (the kernel's tick updates against the grid: 8–50 µs,
/// median ≈ 25 µs, on a 2-vCPU VM, kernel 6.18, HZ 250).
pub const TICK_CLOCK_DELAY_NS: u64 = 25_000;

/// Where a task is, as far as PELT is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not known yet (trace start, after lost events).
    Unknown,
    Sleeping,
    /// On the run-queue, waiting for the CPU.
    Waiting,
    Running,
    /// Blocked but still on the run-queue (v6.12+ delayed dequeue): load
    /// counts, runnable does not.
    Delayed,
}

impl State {
    pub fn inputs(self) -> Inputs {
        let (on_rq, runnable, running) = match self {
            State::Unknown | State::Sleeping => (false, false, false),
            State::Waiting => (true, true, false),
            State::Running => (true, true, true),
            State::Delayed => (true, false, false),
        };
        Inputs {
            on_rq,
            runnable,
            running,
        }
    }
    /// The state a kernel sample's flags describe, for a task not running.
    fn from_flags(k: &PeltAvg) -> State {
        match (k.on_rq, k.sched_delayed) {
            (false, _) => State::Sleeping,
            (true, false) => State::Waiting,
            (true, true) => State::Delayed,
        }
    }
}

/// What happened to the task at an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `sched_wakeup` / `sched_wakeup_new` (with `new`).
    Wakeup { new: bool },
    /// Picked to run (the `next` of a switch). `pick_now`: the PELT time of
    /// the pick when the record carries it only indirectly (prev's
    /// `last_update_time` at the same switch).
    /// `pick_ts`: the trace time the pick's clock was read (the wakeup's
    /// for a pick out of idle), for replays on the trace clock.
    SwitchIn { pick_now: Option<u64>, pick_ts: u64 },
    /// Left the CPU (the `prev` of a switch).
    SwitchOut { prev_state: u32 },
    /// A `pelt_se_tp` update of the task (`--pelt full`); `curr`: whether
    /// the task was the CPU's current task.
    Sample { curr: bool },
    /// `sched_migrate_task`; `orig_off`/`dest_off` map the trace clock to
    /// the PELT clocks of the two CPUs.
    /// `dest_off_ts`: the trace time `dest_off` was measured at (0: never,
    /// another CPU's offset stands in).
    Migrate {
        orig_off: i64,
        dest_off: i64,
        dest_off_ts: u64,
    },
    /// A pick on the CPU where the task sits delayed (v6.12+): the
    /// kernel's pick dequeues a delayed entity when it comes first, so this
    /// is the best estimate of when a delayed task finally leaves.
    Pick,
    /// The task's load weight is now this (its priority changed, or was
    /// first learnt).
    Reweight { weight: u64 },
    /// The task's exit record (`sched_process_exit`, in `do_exit()`): it
    /// runs on until its final switch out, but is moved between task groups
    /// meanwhile (autogroup) at a time the trace does not give, and its
    /// samples from here on are not judged.
    Exiting,
    /// The task is gone (its final switch out, or its pid reused).
    Exit,
    /// Events were lost: the timeline breaks here.
    Lost,
    /// The task's switch out never reached the trace: its CPU switched away
    /// from another task while the timeline had this one running there.
    /// Its timeline breaks here, and its next kernel sample re-anchors it.
    Unseen,
    /// A kernel sample of the root run-queue of the CPU the task is
    /// attached to, at PELT time `now`: the task gives its part
    /// ([`TaskSim::root_share`]) to probe `id`, and is not changed.
    /// `source`: the probe is of the CPU the task just migrated away from.
    /// `pre_attach`: the sample came before the last one of the task's own
    /// wakeup (the enqueue's attach, if the wakeup attached it).
    Probe {
        id: u32,
        now: u64,
        source: bool,
        pre_attach: bool,
    },
}

/// How long samples after an anchor from averages alone are not judged:
/// an error of a period's contribution (~22 units) decays below one unit in
/// five half-lives.
const PROVISIONAL_NS: u64 = 5 * 32 * 1024 * 1024;

/// A record about one task, prepared by the sequential pass.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub ts: u64,
    pub cpu: u32,
    /// trace clock − PELT clock on `cpu` at `ts` ([`crate::clock`]: the
    /// latest kernel timestamps seen on that CPU, and its speed since).
    pub off: i64,
    /// How fast `cpu`'s PELT clock runs while busy: maps the trace times of
    /// the ticks of a slice ending at this event onto the PELT clock.
    pub speed: Speed,
    pub kind: EventKind,
    pub k: Option<PeltAvg>,
    pub sums: Option<PeltSums>,
}

impl Event {
    fn est_now(&self) -> u64 {
        (self.ts as i64).saturating_sub(self.off).max(0) as u64
    }
}

/// How the driver gets PELT time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The kernel's `last_update_time` where recorded, else trace time
    /// mapped onto the CPU's PELT clock.
    Pelt,
    /// The trace clock alone (what a trace without PELT timestamps
    /// allows), advanced as the kernel advances each CPU's PELT clock
    /// ([`crate::clock`]).
    Ktime,
}

/// Settings shared by all tasks.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Tick period (ns) from HZ.
    pub tick_ns: u64,
    pub clock: Clock,
    /// The trace has every boundary-crossing update of each task
    /// (`--pelt full`): emulated ticks never cross a boundary themselves.
    pub full: bool,
    /// `--init zero`: models start empty at first sight; samples within
    /// `warmup_ns` of it are not counted.
    pub init_zero: bool,
    pub warmup_ns: u64,
}

/// A row of output: one kernel sample (or, in traces without PELT, one
/// switch) with what each model said at that point.
#[derive(Clone, Debug)]
pub struct Row {
    pub ts: u64,
    pub pid: u32,
    pub cpu: u32,
    pub event: &'static str,
    pub kernel: Option<PeltAvg>,
    /// The kernel-exact reference model.
    pub exact: Values,
    /// The chosen model (same as `exact` when it is the reference).
    pub model: Values,
    pub measured: Option<u64>,
    /// Why the sample is not counted in fidelity, if it is not.
    pub excluded: Option<&'static str>,
}

/// A task being replayed. `models[0]` is the kernel-exact reference,
/// `models[1]` the measured utilisation, `models[2]` (optional) the model
/// the user chose when it is not the reference.
pub struct TaskSim {
    pub pid: u32,
    pub state: State,
    /// Trace time of the last step (ticks are emulated after it).
    last_ts: u64,
    /// PELT time of the last update.
    last_now: u64,
    /// Set when the models hold no kernel state yet (or after a loss).
    unanchored: bool,
    /// The timeline broke at an unseen switch out (the next anchor is a
    /// re-anchor).
    lost_sight: bool,
    /// Anchored from averages alone: samples are not judged before this
    /// trace time (see `anchor`).
    provisional_until: Option<u64>,
    /// The CPU of the task's last switch-in.
    run_cpu: u32,
    /// The trace time of its exit record ([`EventKind::Exiting`]): its
    /// samples from then on are not judged.
    exiting: Option<u64>,
    /// The PELT time of the task's last attach at a wakeup (new task,
    /// wakeup migration).
    attached_at: Option<u64>,
    first_ts: Option<u64>,
    /// A wakeup migration in progress: the estimated PELT time of the
    /// source run-queue's sync.
    migrating: Option<u64>,
    /// A load-balance migration in progress: the estimated PELT time of
    /// the attach, the trace time of the migration, and the trace time the
    /// destination clock offset behind the estimate was measured at.
    attach_at: Option<(u64, u64, u64)>,
    /// The kernel's util_sum and last_update_time at the task's last sample
    /// (with `--pelt full`), and whether the task ran since: util_sum only
    /// grows while running.
    last_k_util_sum: Option<(u64, u64)>,
    ran_since_k: bool,
    /// A `pelt_se_tp` sample of the running task not yet applied (it may be
    /// the update of the switch-out that follows).
    pending: Option<Event>,
    models: Vec<Box<dyn TaskModel>>,
    pub fid: Fidelity,
    pub reanchors: u64,
    pub running_ns: u64,
    run_start: Option<u64>,
    pub samples: u64,
    /// Counts the times the task's state started or broke off (for the
    /// root run-queues), and its value at the task's last share.
    root_epoch: u32,
    root_epoch_seen: u32,
}

impl TaskSim {
    pub fn new(pid: u32, models: Vec<Box<dyn TaskModel>>) -> TaskSim {
        TaskSim {
            pid,
            state: State::Unknown,
            last_ts: 0,
            last_now: 0,
            unanchored: true,
            lost_sight: false,
            provisional_until: None,
            run_cpu: u32::MAX,
            exiting: None,
            attached_at: None,
            first_ts: None,
            migrating: None,
            attach_at: None,
            pending: None,
            last_k_util_sum: None,
            ran_since_k: false,
            models,
            fid: Fidelity::default(),
            reanchors: 0,
            running_ns: 0,
            run_start: None,
            samples: 0,
            root_epoch: 0,
            root_epoch_seen: 0,
        }
    }

    pub fn set_weight(&mut self, weight: u64) {
        for m in &mut self.models {
            m.set_weight(weight);
        }
    }

    fn update_all(&mut self, now: u64, ts: u64, inp: Inputs, tick: bool, may_cross: bool) {
        self.last_now = self.last_now.max(now);
        for m in &mut self.models {
            m.update(now, ts, inp, tick, may_cross);
        }
    }

    /// A sleeping task's sync before a wakeup migration, in every model.
    fn sync_all(&mut self, now: u64, ts: u64) {
        self.last_now = self.last_now.max(now);
        for m in &mut self.models {
            m.sync_blocked(now, ts);
        }
    }

    /// The kernel's ticks while the task ran, from the last step to `ev`.
    /// Their PELT times are estimated from the trace clock, counted back
    /// from `ev`'s at the CPU's speed (the PELT clock of a busy CPU runs
    /// slower than the trace clock below full capacity or frequency), and
    /// kept strictly between the updates around them (a vCPU that was not
    /// running makes the trace clock run ahead of the PELT clock).
    fn ticks(&mut self, cfg: &Config, ev: &Event) {
        if self.state != State::Running || cfg.tick_ns == 0 || ev.ts <= self.last_ts {
            return;
        }
        let end = self.now(cfg, ev);
        let at_ev = ev.est_now();
        let mut t = (self.last_ts / cfg.tick_ns + 1) * cfg.tick_ns;
        while t < ev.ts {
            // The tick timer fires on the jiffies grid of the trace clock;
            // the rq clock the tick's update reads is taken a little later.
            let read = t + TICK_CLOCK_DELAY_NS;
            let now = match read.checked_sub(ev.ts) {
                Some(after) => at_ev.saturating_add(ev.speed.scale(after)),
                None => at_ev.saturating_sub(ev.speed.scale(ev.ts - read)),
            };
            if now > self.last_now && now < end {
                self.update_all(now, t, State::Running.inputs(), true, !cfg.full);
                self.last_now = now;
            }
            t += cfg.tick_ns;
        }
    }

    /// The PELT `now` of the kernel's update at `ev`.
    fn now(&self, cfg: &Config, ev: &Event) -> u64 {
        match cfg.clock {
            // The pick out of idle read the clock at the wakeup (the CPU
            // was idle since: the same offset).
            Clock::Ktime => match ev.kind {
                EventKind::SwitchIn { pick_ts, .. } => {
                    (pick_ts as i64).saturating_sub(ev.off).max(0) as u64
                }
                _ => ev.est_now(),
            },
            Clock::Pelt => match (ev.k, ev.kind) {
                (Some(k), _) => k.last_update_time,
                (
                    None,
                    EventKind::SwitchIn {
                        pick_now: Some(n), ..
                    },
                ) => n,
                _ => ev.est_now(),
            },
        }
    }

    fn anchor(&mut self, cfg: &Config, ev: &Event, k: &PeltAvg) {
        let now = self.now(cfg, ev);
        let sums = if cfg.clock == Clock::Pelt {
            ev.sums.as_ref()
        } else {
            None
        };
        for m in &mut self.models {
            m.anchor(k, sums, now, ev.ts, ev.cpu);
        }
        // Averages alone leave the sums uncertain: the averages were
        // computed at the task's last update that crossed a period
        // boundary, and the sums have grown since by up to a period's
        // contribution (~22 util units). Not judged until a wakeup whose
        // enqueue crossed a boundary anchors it again, or that much error
        // has decayed below one unit.
        // (A trace time: a migration changes the PELT clock.)
        self.provisional_until = (sums.is_none() && cfg.clock == Clock::Pelt)
            .then_some(ev.ts.saturating_add(PROVISIONAL_NS));
        self.last_now = now;
        if self.unanchored {
            self.root_epoch += 1;
        }
        self.unanchored = false;
        self.first_ts.get_or_insert(ev.ts);
    }

    fn provisional(&self) -> bool {
        self.provisional_until.is_some_and(|t| self.last_ts < t)
    }

    /// First sight of the task (or after a loss): start from the kernel's
    /// values, unless `--init zero` already started it empty.
    fn init(&mut self, cfg: &Config, ev: &Event, k: &PeltAvg) {
        if self.unanchored || !cfg.init_zero {
            self.anchor(cfg, ev, k);
        }
    }

    fn values(&self, i: usize, ts: u64) -> Values {
        self.models.get(i).map(|m| m.values(ts)).unwrap_or_default()
    }

    fn row(
        &mut self,
        cfg: &Config,
        ev: &Event,
        event: &'static str,
        excluded: Option<&'static str>,
    ) -> Row {
        let exact = self.values(0, ev.ts);
        let measured = self.values(1, ev.ts).util_avg;
        let model = if self.models.len() > 2 {
            self.values(2, ev.ts)
        } else {
            exact
        };
        let mut excluded = excluded;
        if excluded == Some("init") && self.lost_sight {
            // Not a first sight: the re-anchor after an unseen switch out.
            excluded = Some("reanchor");
            self.lost_sight = false;
            self.reanchors += 1;
        }
        if excluded.is_none() && self.provisional() {
            excluded = Some("init");
        }
        if excluded.is_none()
            && cfg.init_zero
            && self.first_ts.is_some_and(|f| ev.ts < f + cfg.warmup_ns)
        {
            excluded = Some("warmup");
        }
        if excluded.is_none() && self.exiting.is_some_and(|t| ev.ts >= t) {
            excluded = Some("exit");
        }
        if let (Some(k), None) = (ev.k, excluded) {
            self.fid.add(Metric::Util, exact.util_avg, k.util_avg);
            self.fid.add(Metric::Load, exact.load_avg, k.load_avg);
            self.fid
                .add(Metric::Runnable, exact.runnable_avg, k.runnable_avg);
            self.fid.add(
                Metric::UtilEst,
                exact.util_est.map(u64::from),
                (k.util_est & !crate::pelt::UTIL_AVG_UNCHANGED) as u64,
            );
        }
        if ev.k.is_some() {
            self.last_k_util_sum = ev
                .sums
                .zip(ev.k)
                .map(|(s, k)| (s.util_sum, k.last_update_time));
            self.ran_since_k = self.state == State::Running;
        }
        self.samples += 1;
        Row {
            ts: ev.ts,
            pid: self.pid,
            cpu: ev.cpu,
            event,
            kernel: ev.k,
            exact,
            model,
            measured,
            excluded,
        }
    }

    /// A sample the timeline cannot explain: copy the kernel's state
    /// (counted), and do not judge the models on it.
    fn reanchor(&mut self, cfg: &Config, ev: &Event, event: &'static str, out: &mut Vec<Row>) {
        let Some(k) = ev.k else {
            self.unanchored = true;
            return;
        };
        let row = self.row(cfg, ev, event, Some("reanchor"));
        out.push(row);
        self.reanchors += 1;
        self.anchor(cfg, ev, &k);
    }

    fn set_state(&mut self, s: State, ts: u64) {
        if self.state == State::Running && s != State::Running {
            if let Some(a) = self.run_start.take() {
                self.running_ns += ts.saturating_sub(a);
            }
        }
        if s == State::Running && self.state != State::Running {
            self.run_start = Some(ts);
            self.ran_since_k = true;
        }
        self.state = s;
    }

    /// Applies a held `pelt_se_tp` sample of the running task as the tick
    /// (or other update) it was.
    fn flush_pending(&mut self, cfg: &Config, out: &mut Vec<Row>) {
        // Its ticks were emulated when it arrived (it was the last step).
        if let Some(p) = self.pending.take() {
            let now = self.now(cfg, &p);
            self.update_all(now, p.ts, self.state.inputs(), false, true);
            let row = self.row(cfg, &p, "pelt", None);
            out.push(row);
        }
    }

    /// The time of the sample held back (applied at the task's next event,
    /// when its row is written): no later row of this task is earlier.
    pub fn held_ts(&self) -> Option<u64> {
        self.pending.map(|p| p.ts)
    }

    /// The end of the trace: a held sample is applied, a run in progress
    /// counted.
    pub fn finish(&mut self, cfg: &Config, end_ts: u64, out: &mut Vec<Row>) {
        if !self.models.is_empty() {
            self.flush_pending(cfg, out);
        }
        if let Some(a) = self.run_start.take() {
            self.running_ns += end_ts.saturating_sub(a);
        }
    }

    /// The task's part of the root run-queue of the CPU it is attached to,
    /// at PELT time `now` ([`crate::root`]); None when it has no state yet.
    /// A held sample need not be applied first: the task runs on through it.
    /// `fresh`: the task's state started or broke off since its previous
    /// share (the run-queue's residual holds what it was before).
    ///
    /// `source`: the run-queue is the one the task just migrated away
    /// from. A queued task was detached from it; a sleeping one's removal
    /// waits for that run-queue's next update, so it is still there.
    ///
    /// `pre_attach`: the sample came before the last one of this task's
    /// wakeup at the same PELT time: if that wakeup attached the task (a
    /// new task, a wakeup migration), it is not on the run-queue yet.
    pub fn root_share(
        &mut self,
        now: u64,
        source: bool,
        pre_attach: bool,
    ) -> (bool, Option<Share>) {
        if source {
            if self.migrating.is_none() {
                return (false, Some(Share::default()));
            }
            let inp = self.state.inputs();
            return (
                false,
                self.models
                    .first()
                    .and_then(|m| m.root_share(now, inp, Moved::No, false)),
            );
        }
        let fresh =
            std::mem::replace(&mut self.root_epoch_seen, self.root_epoch) != self.root_epoch;
        if self.unanchored || self.state == State::Unknown {
            return (fresh, None);
        }
        let Some(m) = self.models.first() else {
            return (fresh, None);
        };
        if pre_attach && self.attached_at == Some(now) {
            return (fresh, Some(Share::default()));
        }
        let moved = match (self.migrating, self.attach_at) {
            // Woken on another CPU: attached in the enqueue, whose last
            // sample comes after the wakeup record. Not there yet.
            (Some(_), _) => return (fresh, Some(Share::default())),
            (None, Some((at, _, _))) => Moved::Attached(at),
            (None, None) => Moved::No,
        };
        // util_est is the run-queue's while the task is enqueued (a
        // delayed task's came off at its dequeue).
        let enqueued = matches!(self.state, State::Waiting | State::Running);
        (
            fresh,
            m.root_share(now, self.state.inputs(), moved, enqueued),
        )
    }

    /// Processes one event, appending output rows.
    pub fn step(&mut self, cfg: &Config, ev: &Event, out: &mut Vec<Row>) {
        match ev.kind {
            // (The driver asks `root_share()`; a probe changes nothing.)
            EventKind::Probe { .. } => return,
            // A mark, not an update: no ticks, no clock (a sample held
            // from before it is still judged when it is applied).
            EventKind::Exiting => {
                self.exiting = Some(ev.ts);
                return;
            }
            _ => {}
        }
        if let Some(p) = &self.pending {
            let same_update = matches!(ev.kind, EventKind::SwitchOut { .. })
                && ev
                    .k
                    .is_some_and(|k| Some(k.last_update_time) == p.k.map(|k| k.last_update_time));
            if same_update {
                self.pending = None;
            } else {
                self.flush_pending(cfg, out);
            }
        }
        match ev.kind {
            EventKind::Exit => {
                self.root_epoch += 1;
                self.set_state(State::Sleeping, ev.ts);
                self.models.clear();
                self.state = State::Unknown;
                return;
            }
            EventKind::Lost | EventKind::Unseen => {
                if ev.kind == EventKind::Unseen {
                    // (Running elsewhere: it was switched in on another
                    // CPU since, and that switch-in re-anchored it.)
                    if self.state != State::Running || self.unanchored || self.run_cpu != ev.cpu {
                        return;
                    }
                    self.lost_sight = true;
                }
                for m in &mut self.models {
                    m.reset();
                }
                self.root_epoch += 1;
                self.set_state(State::Unknown, ev.ts);
                self.unanchored = true;
                self.migrating = None;
                self.attach_at = None;
                return;
            }
            _ => {}
        }
        if self.models.is_empty() {
            return;
        }
        self.ticks(cfg, ev);
        self.last_ts = self.last_ts.max(ev.ts);
        if self.unanchored
            && cfg.init_zero
            && self.state == State::Unknown
            && self.first_ts.is_none()
        {
            // --init zero: empty state at first sight (after a break in the
            // timeline the kernel's values restart it).
            let zero = PeltAvg::default();
            let now = self.now(cfg, ev);
            let zs = PeltSums {
                load_sum: 0,
                runnable_sum: 0,
                util_sum: 0,
                period_contrib: 0,
            };
            for m in &mut self.models {
                m.anchor(&zero, Some(&zs), now, ev.ts, ev.cpu);
            }
            self.root_epoch += 1;
            self.last_now = now;
            self.unanchored = false;
            self.first_ts.get_or_insert(ev.ts);
        }
        match ev.kind {
            EventKind::Wakeup { new } => self.wakeup(cfg, ev, new, out),
            EventKind::SwitchIn { .. } => self.switch_in(cfg, ev, out),
            EventKind::SwitchOut { prev_state } => self.switch_out(cfg, ev, prev_state, out),
            EventKind::Sample { curr } => self.sample(cfg, ev, curr, out),
            EventKind::Migrate {
                orig_off,
                dest_off,
                dest_off_ts,
            } => self.migrate(cfg, ev, orig_off, dest_off, dest_off_ts),
            EventKind::Reweight { weight } => self.set_weight(weight),
            EventKind::Pick => {
                if self.state == State::Delayed && !self.unanchored {
                    let now = self.now(cfg, ev);
                    self.update_all(now, ev.ts, State::Delayed.inputs(), false, true);
                    self.set_state(State::Sleeping, ev.ts);
                }
            }
            EventKind::Exit
            | EventKind::Lost
            | EventKind::Unseen
            | EventKind::Probe { .. }
            | EventKind::Exiting => unreachable!(),
        }
    }

    fn wakeup(&mut self, cfg: &Config, ev: &Event, new: bool, out: &mut Vec<Row>) {
        let Some(k) = ev.k else {
            // No PELT in the trace: the timeline alone.
            if matches!(
                self.state,
                State::Sleeping | State::Delayed | State::Unknown
            ) {
                let now = self.now(cfg, ev);
                self.update_all(now, ev.ts, self.state.inputs(), false, true);
                self.set_state(State::Waiting, ev.ts);
            }
            return;
        };
        if new || self.unanchored || self.state == State::Unknown {
            // A new task is initialised by the kernel (post_init_entity_util_avg):
            // start from its values. Its sums are what attach rebuilt from
            // them (wake_up_new_task() attaches it): exact.
            self.init(cfg, ev, &k);
            if new {
                self.attached_at = Some(self.now(cfg, ev));
            }
            if new && !cfg.init_zero && cfg.clock == Clock::Pelt && ev.sums.is_none() {
                let now = self.now(cfg, ev);
                for m in &mut self.models {
                    m.attach(now, None, ev.cpu);
                }
                self.provisional_until = None;
            }
            self.set_state(State::Waiting, ev.ts);
            self.migrating = None;
            let row = self.row(cfg, ev, "wakeup", Some("init"));
            out.push(row);
            return;
        }
        match self.state {
            State::Sleeping | State::Delayed => {
                if !k.on_rq {
                    // (On the destination CPU: the anchor ends any
                    // migration in progress.)
                    self.migrating = None;
                    self.reanchor(cfg, ev, "wakeup", out);
                    return;
                }
                let now = self.now(cfg, ev);
                if let Some(sync_now) = self.migrating.take() {
                    // Wakeup migration: decayed to the old run-queue's
                    // clock, then attached to the new one (adopting its
                    // clock and window). With --pelt full a sync that
                    // changed the averages was a sample already.
                    if !cfg.full && cfg.clock == Clock::Pelt {
                        self.sync_all(sync_now, ev.ts);
                    }
                    let pc = ev.sums.map(|s| s.period_contrib);
                    for m in &mut self.models {
                        m.attach(now, pc, ev.cpu);
                    }
                    self.last_now = now;
                    self.attached_at = Some(now);
                } else if self.provisional() && now >> 20 > self.last_now >> 20 {
                    // The enqueue crossed a period boundary since the dequeue
                    // (the task's last update): its averages are its sums
                    // at this update. Anchor there (not judged).
                    self.anchor(cfg, ev, &k);
                    self.provisional_until = None;
                    self.set_state(State::Waiting, ev.ts);
                    let row = self.row(cfg, ev, "wakeup", Some("init"));
                    out.push(row);
                    return;
                } else {
                    let inp = self.state.inputs();
                    self.update_all(now, ev.ts, inp, false, true);
                }
                self.set_state(State::Waiting, ev.ts);
                let row = self.row(cfg, ev, "wakeup", None);
                out.push(row);
            }
            State::Waiting | State::Running => {
                // Not an enqueue: the kernel made no update, so its
                // last_update_time is that of the task's last update — no
                // later than the last tick the model applied. Much later, the
                // task was not running or queued after all (a switch out
                // that never reached the tracepoint, seen on this VM): the
                // timeline is broken, re-anchor. (Not while a load-balance
                // attach is pending: the kernel's update is then on the
                // destination's clock.)
                if cfg.clock == Clock::Pelt
                    && self.attach_at.is_none()
                    && k.last_update_time > self.last_now.saturating_add(2 * cfg.tick_ns)
                {
                    self.reanchor(cfg, ev, "wakeup", out);
                    self.set_state(State::Waiting, ev.ts);
                    return;
                }
                let row = self.row(cfg, ev, "wakeup", None);
                out.push(row);
            }
            State::Unknown => unreachable!(),
        }
    }

    /// Completes a load-balance migration before the task's first update on
    /// its new CPU: attached to the run-queue there at the estimated time;
    /// with `--pelt full` the window position follows exactly from this
    /// update's sums (the run-queue's window does not move in between).
    fn finish_attach(&mut self, cfg: &Config, ev: &Event) {
        let Some((at, migrated_ts, off_ts)) = self.attach_at.take() else {
            return;
        };
        // Bounds on the attach time: no later than this update's, and no
        // earlier than that minus the trace time since the migration (the
        // PELT clock runs no faster than the trace clock; it stops while the
        // vCPU loses time to steal). The lower bound is the attach time by
        // the clock offset measured at this update; the estimate, by the
        // destination's offset last measured before the migration. Steal
        // accumulates with time, so the offset measured nearer the migration
        // wins (a live episode: a stale offset, 5.6 ms off after steal,
        // attached a waiting task at its pick and left it 12 units high for
        // a second).
        //
        // This update's exact PELT time: the kernel's sample, or the pick's
        // clock (an estimate from another CPU's offset can be off by the
        // hundreds of ms between CPUs' PELT clocks early in a trace).
        let exact = match (cfg.clock, ev.k, ev.kind) {
            (Clock::Pelt, Some(k), _) => Some(k.last_update_time),
            (
                Clock::Pelt,
                None,
                EventKind::SwitchIn {
                    pick_now: Some(n), ..
                },
            ) => Some(n),
            _ => None,
        };
        let at = match exact {
            Some(lut) => {
                let since = ev.ts.saturating_sub(migrated_ts);
                let lower = lut.saturating_sub(since);
                if migrated_ts.saturating_sub(off_ts) > since + cfg.tick_ns {
                    lower
                } else {
                    at.clamp(lower, lut)
                }
            }
            None => at,
        };
        let (at, pc) = match (ev.k, ev.sums, cfg.clock) {
            (Some(k), Some(s), Clock::Pelt) if k.last_update_time >= at => {
                let back = (k.last_update_time - at) >> 10;
                let pc = (s.period_contrib as i64 - back as i64).rem_euclid(1024) as u32;
                (k.last_update_time - (back << 10), Some(pc))
            }
            _ => (at, None),
        };
        for m in &mut self.models {
            m.attach(at, pc, ev.cpu);
        }
        self.last_now = at;
    }

    fn switch_in(&mut self, cfg: &Config, ev: &Event, out: &mut Vec<Row>) {
        self.run_cpu = ev.cpu;
        let now = self.now(cfg, ev);
        self.finish_attach(cfg, ev);
        match self.state {
            State::Waiting => {
                self.update_all(now, ev.ts, State::Waiting.inputs(), false, true);
                self.set_state(State::Running, ev.ts);
                if ev.k.is_some() {
                    let row = self.row(cfg, ev, "switch_in", None);
                    out.push(row);
                }
            }
            _ => {
                // Picked without a wakeup we saw, or twice in a row.
                if self.state != State::Unknown && !self.unanchored {
                    if ev.k.is_some() {
                        self.reanchor(cfg, ev, "switch_in", out);
                    } else {
                        self.reanchors += 1;
                        self.unanchored = true;
                    }
                } else if let Some(k) = ev.k {
                    self.init(cfg, ev, &k);
                    let row = self.row(cfg, ev, "switch_in", Some("init"));
                    out.push(row);
                }
                self.set_state(State::Running, ev.ts);
            }
        }
    }

    fn switch_out(&mut self, cfg: &Config, ev: &Event, prev_state: u32, out: &mut Vec<Row>) {
        let next = match ev.k {
            Some(k) => State::from_flags(&k),
            None if prev_state == 0 => State::Waiting,
            None => State::Sleeping,
        };
        if self.state != State::Running {
            if self.state != State::Unknown && !self.unanchored {
                self.reanchor(cfg, ev, "switch_out", out);
            } else if let Some(k) = ev.k {
                self.init(cfg, ev, &k);
                let row = self.row(cfg, ev, "switch_out", Some("init"));
                out.push(row);
            }
            self.set_state(next, ev.ts);
            return;
        }
        if self.unanchored {
            // Seen running before any kernel values (a switch-in without
            // them): start here.
            if let Some(k) = ev.k {
                self.init(cfg, ev, &k);
                let row = self.row(cfg, ev, "switch_out", Some("init"));
                out.push(row);
            }
            self.set_state(next, ev.ts);
            return;
        }
        let now = self.now(cfg, ev);
        let inp = State::Running.inputs();
        if next == State::Waiting {
            self.update_all(now, ev.ts, inp, false, true);
        } else {
            for m in &mut self.models {
                m.dequeue_sleep(now, ev.ts, inp);
            }
        }
        self.set_state(next, ev.ts);
        if ev.k.is_some() || cfg.clock == Clock::Ktime {
            let row = self.row(cfg, ev, "switch_out", None);
            out.push(row);
        }
    }

    fn sample(&mut self, cfg: &Config, ev: &Event, curr: bool, out: &mut Vec<Row>) {
        let Some(k) = ev.k else { return };
        if self.unanchored || self.state == State::Unknown {
            self.init(cfg, ev, &k);
            self.set_state(
                if curr {
                    State::Running
                } else {
                    State::from_flags(&k)
                },
                ev.ts,
            );
            let row = self.row(cfg, ev, "pelt", Some("init"));
            out.push(row);
            return;
        }
        let consistent = match self.state {
            // (`curr` is not required: the switch-in may be one the trace
            // missed, proven below by a rise in util_avg.) A running task is
            // never delayed: dequeue_entity() updates before set_delayed().
            State::Running => k.on_rq && !k.sched_delayed,
            State::Waiting => k.on_rq && !k.sched_delayed,
            State::Delayed => k.on_rq,
            // A sleeping task's sample: a wakeup-path sync or the wakeup's
            // own enqueue update (flags not yet set).
            State::Sleeping => !k.on_rq,
            State::Unknown => false,
        };
        // Off the CPU, util_sum only decays, by exactly decay_load() of the
        // periods crossed: more than that in a task the timeline has kept
        // off the CPU since its last sample proves a run the trace does not
        // have. (util_avg cannot prove it: it is recomputed only at period
        // boundaries, so it can jump up long after the run.)
        let ran_unseen = self.state != State::Running
            && !self.ran_since_k
            && match (self.last_k_util_sum, ev.sums) {
                (Some((a, t0)), Some(b)) if k.last_update_time >= t0 => {
                    b.util_sum > crate::pelt::decayed_off_cpu(a, t0, k.last_update_time)
                }
                _ => false,
            };
        if !consistent || ran_unseen {
            self.reanchor(cfg, ev, "pelt", out);
            if ran_unseen {
                self.set_state(State::Running, ev.ts);
            }
            return;
        }
        if self.state == State::Waiting {
            self.finish_attach(cfg, ev);
        }
        if self.state == State::Running {
            // Maybe the update of the switch-out that follows: decide then.
            self.pending = Some(*ev);
            return;
        }
        let now = self.now(cfg, ev);
        if self.state == State::Sleeping && self.migrating.is_some() {
            // The sync of a wakeup migration (its record comes first).
            self.sync_all(now, ev.ts);
        } else {
            self.update_all(now, ev.ts, self.state.inputs(), false, true);
        }
        let row = self.row(cfg, ev, "pelt", None);
        out.push(row);
    }

    fn migrate(
        &mut self,
        cfg: &Config,
        ev: &Event,
        orig_off: i64,
        dest_off: i64,
        dest_off_ts: u64,
    ) {
        if self.unanchored {
            return;
        }
        // The last sample's util_sum was on the source CPU's clock and
        // attach rebuilds the sums: the off-CPU decay check restarts.
        self.last_k_util_sum = None;
        let est = |off: i64| (ev.ts as i64).saturating_sub(off).max(0) as u64;
        match self.state {
            State::Sleeping | State::Delayed => self.migrating = Some(est(orig_off)),
            State::Waiting | State::Running => {
                // Detached from the source run-queue (its dequeue update was a
                // sample with --pelt full), attached to the destination's.
                if !cfg.full {
                    self.update_all(est(orig_off), ev.ts, State::Waiting.inputs(), false, true);
                }
                if self.state == State::Running {
                    self.set_state(State::Waiting, ev.ts);
                }
                self.attach_at = Some((est(dest_off), ev.ts, dest_off_ts));
            }
            State::Unknown => {}
        }
    }
}
