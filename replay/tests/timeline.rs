//! The replay driver on small hand-built traces whose answers are known:
//! closed-form PELT values through the whole timeline (wakeup → pick →
//! ticks → block), and the rules that must hold whatever the numbers.

use schedrec_format::{
    CpuFreq, Loss, Metadata, PeltAvg, PeltMode, Reader, Record, Switch, Task, TaskEvent, TaskRef,
    Wakeup, Writer, WriterOptions,
};
use schedrec_replay::engine::{replay, Options, Summary};
use schedrec_replay::task::Row;

const MS: u64 = 1_000_000;
const PID: u32 = 100;

fn task_ref(pid: u32) -> TaskRef {
    TaskRef {
        pid,
        tgid: pid,
        prio: 120,
    }
}

/// The kernel's view at an update at `lut` (values unused by these tests
/// except flags: they judge the model against closed forms, not samples).
fn k(lut: u64, on_rq: bool) -> Option<PeltAvg> {
    Some(PeltAvg {
        last_update_time: lut,
        on_rq,
        ..PeltAvg::default()
    })
}

fn wakeup(t: u64) -> Record {
    Record::Wakeup(Wakeup {
        ts: t,
        cpu: 0,
        pid: PID,
        target_cpu: 0,
        new: false,
        pelt: k(t, true),
        sums: None,
    })
}

fn switch(t: u64, prev: u32, next: u32, prev_state: u32, prev_pelt: Option<PeltAvg>) -> Record {
    Record::Switch(Switch {
        ts: t,
        cpu: 0,
        prev: task_ref(prev),
        prev_state,
        next: task_ref(next),
        prev_pelt,
        ..Switch::default()
    })
}

/// A 16 ms / 50 % periodic task alone on CPU 0 for `periods` periods, its
/// clock the PELT clock (offset 0).
fn periodic(periods: u64, extra: impl Fn(u64) -> Vec<Record>) -> Vec<Record> {
    let mut v = Vec::new();
    for p in 0..periods {
        let t = 1_000 * MS + p * 16 * MS + 123_457;
        v.push(wakeup(t));
        v.push(switch(t + 5_000, 0, PID, 0, None));
        v.extend(extra(t));
        v.push(switch(t + 8 * MS, PID, 0, 1, k(t + 8 * MS, false)));
    }
    v
}

/// The task's fork or exit record.
fn task_event(ts: u64, event: TaskEvent) -> Record {
    Record::Task(Task {
        ts,
        cpu: u32::MAX,
        pid: PID,
        tgid: PID,
        ppid: 1,
        prio: 120,
        policy: 0,
        event,
        comm: b"p".to_vec(),
    })
}

fn run(records: &[Record], opts: &Options) -> (Summary, Vec<Row>) {
    run_on(records, opts, meta(PeltMode::Switch))
}

fn meta(pelt: PeltMode) -> Metadata {
    Metadata {
        kernel_release: "6.18.0-test".into(),
        nr_cpus: 1,
        hz: 250,
        pelt,
        ..Metadata::default()
    }
}

fn run_on(records: &[Record], opts: &Options, meta: Metadata) -> (Summary, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sched");
    let mut w = Writer::create(&path, &meta, WriterOptions::default()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
    let reader = Reader::open(&path).unwrap();
    let mut rows = Vec::new();
    let s = replay(
        &reader,
        opts,
        |b| {
            rows.extend_from_slice(b);
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    (s, rows)
}

fn zero_init() -> Options {
    Options {
        init_zero: true,
        ..Options::default()
    }
}

fn util(rows: &[Row], event: &str, after: u64) -> Vec<u64> {
    rows.iter()
        .filter(|r| r.pid == PID && r.event == event && r.ts > after)
        .map(|r| r.exact.util_avg.unwrap())
        .collect()
}

#[test]
fn periodic_task_reaches_the_closed_form_envelope() {
    // pelt-reference §7: P = 16 ms, d = 0.5 → U_max 554 at dequeue, U_min
    // 469 at enqueue, within ±1, over the phases a 16 ms period takes
    // against PELT's 1.048576 ms periods.
    let (_, rows) = run(&periodic(150, |_| vec![]), &zero_init());
    let settled = 1_000 * MS + 800 * MS;
    let out = util(&rows, "switch_out", settled);
    let inn = util(&rows, "wakeup", settled);
    let (max, min) = (*out.iter().max().unwrap(), *inn.iter().min().unwrap());
    assert!(max.abs_diff(554) <= 1, "max at dequeue {max}");
    assert!(min.abs_diff(469) <= 1, "min at enqueue {min}");
    assert!(out.iter().chain(&inn).all(|u| (468..=555).contains(u)));
}

#[test]
fn a_wakeup_of_a_running_task_is_not_an_enqueue() {
    // The same task woken again while it runs (an expired timer): the
    // kernel makes no update; the model must not either.
    let plain = run(&periodic(40, |_| vec![]), &zero_init()).1;
    let woken = run(
        &periodic(40, |t| {
            let mut w = wakeup(t + 3 * MS);
            if let Record::Wakeup(x) = &mut w {
                x.pelt = k(t + 5_000, true); // no update since the pick
            }
            vec![w]
        }),
        &zero_init(),
    )
    .1;
    assert_eq!(util(&plain, "switch_out", 0), util(&woken, "switch_out", 0));
}

#[test]
fn lost_events_break_the_timeline_and_are_not_bridged() {
    let recs = periodic(60, |t| {
        if t == 1_000 * MS + 30 * 16 * MS + 123_457 {
            vec![Record::Loss(Loss {
                ts: t + MS,
                cpu: 0,
                end_ts: t + 2 * MS,
                count: 3,
            })]
        } else {
            vec![]
        }
    });
    let (s, rows) = run(&recs, &Options::default());
    // Initialised twice: at the start and after the loss, from the kernel's
    // averages; each time the sums are only known at the next wakeup (its
    // enqueue crossed a period boundary), which anchors again: four rows not
    // judged. The switch-out right after the loss is one of them.
    assert_eq!(s.excluded.get("init"), Some(&4), "{:?}", s.excluded);
    let after = rows
        .iter()
        .find(|r| r.ts > 1_000 * MS + 30 * 16 * MS + 2 * MS)
        .unwrap();
    assert_eq!(after.excluded, Some("init"));
}

#[test]
fn a_reused_pid_is_a_new_task() {
    let mut recs = periodic(10, |_| vec![]);
    let end = 1_000 * MS + 10 * 16 * MS;
    for (ts, event) in [(end, TaskEvent::Exit), (end + MS, TaskEvent::Fork)] {
        recs.push(task_event(ts, event));
    }
    let later: Vec<Record> = periodic(10, |_| vec![])
        .into_iter()
        .map(|mut r| {
            match &mut r {
                Record::Wakeup(w) => {
                    w.ts += 200 * MS;
                    w.pelt.as_mut().unwrap().last_update_time += 200 * MS;
                }
                Record::Switch(s) => {
                    s.ts += 200 * MS;
                    if let Some(p) = s.prev_pelt.as_mut() {
                        p.last_update_time += 200 * MS;
                    }
                }
                _ => {}
            }
            r
        })
        .collect();
    recs.extend(later);
    let (s, _) = run(&recs, &zero_init());
    assert_eq!(s.tasks, 2, "{s:?}");
}

#[test]
fn a_switch_out_missing_from_the_trace_breaks_the_timeline() {
    // In period 10 the task's switch out never reached the trace; the CPU
    // next switches away from another task (300). The task's timeline
    // breaks there: its next sample re-anchors it, counted as such,
    // instead of the model running it on through its sleep.
    let p10 = 1_000 * MS + 10 * 16 * MS + 123_457;
    let recs: Vec<Record> = periodic(20, |_| vec![])
        .into_iter()
        .map(|r| match r {
            Record::Switch(s) if s.ts == p10 + 8 * MS && s.prev.pid == PID => {
                switch(s.ts + 10_000, 300, 0, 1, None)
            }
            r => r,
        })
        .collect();
    let (s, rows) = run(&recs, &Options::default());
    assert_eq!(s.reanchors, 1, "{:?}", s.excluded);
    let next = rows
        .iter()
        .find(|r| r.pid == PID && r.ts > p10 + 8 * MS)
        .unwrap();
    assert_eq!(next.excluded, Some("reanchor"), "{next:?}");
}

/// A task on CPU 0 of a trace without PELT values (replayed on the trace
/// clock): `work(p)` of wall time from 5 µs into each 16 ms period `p`,
/// after the CPU's frequency was set to `khz` (when given).
fn on_trace_clock(periods: u64, khz: Option<u64>, work: impl Fn(u64) -> u64) -> Vec<Record> {
    let t0 = 1_000 * MS;
    let mut v: Vec<Record> = khz
        .map(|freq_khz| {
            Record::CpuFreq(CpuFreq {
                ts: t0 - MS,
                cpu: 0,
                target_cpu: 0,
                freq_khz,
            })
        })
        .into_iter()
        .collect();
    for p in 0..periods {
        let t = t0 + p * 16 * MS;
        let mut w = wakeup(t);
        if let Record::Wakeup(x) = &mut w {
            x.pelt = None;
        }
        v.push(w);
        v.push(switch(t + 5_000, 0, PID, 0, None));
        v.push(switch(t + 5_000 + work(p), PID, 0, 1, None));
    }
    v
}

#[test]
fn slow_cpus_run_the_pelt_clock_slower_on_the_trace_clock() {
    // pelt-reference §7: 4 ms of full-capacity work every 16 ms peaks at
    // util 288 whatever the frequency or capacity it ran at. The work takes
    // 4 ms × 1024 / speed of wall time; the PELT clock advances 4 ms while
    // the CPU is busy and catches up when it goes idle.
    let max_khz: u32 = 2_048_000;
    let scaled = Options {
        freq_invariance: true,
        ..Options::default()
    };
    let peak = |m: Metadata, khz: Option<u64>, wall: u64| {
        let (s, rows) = run_on(&on_trace_clock(150, khz, |_| wall), &scaled, m);
        assert_eq!(s.clock, "ktime");
        *util(&rows, "switch_out", 1_800 * MS).iter().max().unwrap()
    };
    let with = |capacity: u32, max: Option<u32>| Metadata {
        cpu_capacity: vec![capacity],
        cpu_max_freq_khz: max.into_iter().collect(),
        ..meta(PeltMode::Off)
    };
    for freq in [1024u64, 768, 512] {
        let wall = 4 * MS * 1024 / freq;
        let p = peak(
            with(1024, Some(max_khz)),
            Some(max_khz as u64 * freq / 1024),
            wall,
        );
        assert!(p.abs_diff(288) <= 1, "freq {freq}: peak {p}");
    }
    // A CPU of half the capacity at full frequency.
    let p = peak(with(512, Some(max_khz)), Some(max_khz as u64), 8 * MS);
    assert!(p.abs_diff(288) <= 1, "capacity 512: peak {p}");
    // Without the maximum frequency the scale is unknown, and frequency
    // scaling is opt-in: either way 8 ms of 16 is a 50 % duty cycle (554
    // at dequeue), and the summary says the record was not applied.
    for (opts, m) in [
        (&scaled, with(1024, None)),
        (&Options::default(), with(1024, Some(max_khz))),
    ] {
        let (s, rows) = run_on(
            &on_trace_clock(150, Some(max_khz as u64 / 2), |_| 8 * MS),
            opts,
            m,
        );
        let p = *util(&rows, "switch_out", 1_800 * MS).iter().max().unwrap();
        assert!(p.abs_diff(554) <= 1, "unscaled: peak {p}");
        assert!(s.invariance.is_empty(), "{:?}", s.invariance);
        assert_eq!(s.unscaled_frequency_records, 1);
    }
}

#[test]
fn a_saturated_slow_cpu_loses_its_idle_time() {
    // 1 s of work at half speed (500 ms of PELT time: the run-queue
    // saturates), then 100 ms of sleep. Going idle, a saturated CPU's PELT
    // clock does not catch up (the 500 ms it lagged are lost idle time): the
    // sleep decays util_avg from ~1024 by 100 ms only (§7: 129), where
    // catching up would decay it by 600 ms (to 0).
    let recs = on_trace_clock(
        2,
        Some(500_000),
        |p| if p == 0 { 1_000 * MS } else { 50_000 },
    );
    // The second period starts 16 ms after the first: move it 100 ms after
    // the end of the first run.
    let recs: Vec<Record> = recs
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            if i >= 4 {
                match &mut r {
                    Record::Wakeup(w) => w.ts += 1_084 * MS,
                    Record::Switch(s) => s.ts += 1_084 * MS,
                    _ => {}
                }
            }
            r
        })
        .collect();
    let m = Metadata {
        cpu_max_freq_khz: vec![1_000_000],
        ..meta(PeltMode::Off)
    };
    let opts = Options {
        freq_invariance: true,
        ..Options::default()
    };
    let (s, rows) = run_on(&recs, &opts, m);
    assert_eq!(s.invariance, ["frequency"]);
    let u = util(&rows, "switch_out", 0);
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u[0] >= 1022, "after 1 s at half speed: {}", u[0]);
    assert!(
        (127..=132).contains(&u[1]),
        "after 100 ms of sleep: {}",
        u[1]
    );
}

/// The exit record comes from `do_exit()`: the task runs on (its load on
/// its run-queue) until its final switch out, which ends it; its samples
/// in between are not judged (`exit`).
#[test]
fn an_exiting_task_runs_until_its_final_switch_out() {
    const TASK_DEAD: u32 = 0x80;
    let exit = |ts: u64| task_event(ts, TaskEvent::Exit);
    let t = 1_000 * MS + 40 * 16 * MS + 123_457;
    let mut recs = periodic(40, |_| vec![]);
    recs.push(wakeup(t));
    recs.push(switch(t + 5_000, 0, PID, 0, None));
    recs.push(exit(t + MS));
    recs.push(switch(t + 3 * MS, PID, 0, TASK_DEAD, k(t + 3 * MS, false)));
    let (s, rows) = run(&recs, &zero_init());
    assert_eq!(s.tasks, 1, "{s:?}");
    let last = rows.iter().rfind(|r| r.pid == PID).unwrap();
    assert_eq!(
        (last.ts, last.event, last.excluded),
        (t + 3 * MS, "switch_out", Some("exit"))
    );
    assert_eq!(s.excluded.get("exit"), Some(&1), "{s:?}");
    // 40 runs of 8 ms − 5 µs, and the last 3 ms − 5 µs to the final switch.
    let ran = s.per_task[0].running_ms;
    assert!((ran - (40.0 * 7.995 + 2.995)).abs() < 1e-6, "{ran}");

    // A trace that writes the final switch before the exit record: the
    // task ends at its exit record, and its final switch is judged.
    let mut recs = periodic(40, |_| vec![]);
    recs.push(wakeup(t));
    recs.push(switch(t + 5_000, 0, PID, 0, None));
    recs.push(switch(t + 3 * MS, PID, 0, TASK_DEAD, k(t + 3 * MS, false)));
    recs.push(exit(t + 3 * MS));
    let (s, rows) = run(&recs, &zero_init());
    assert_eq!(s.tasks, 1, "{s:?}");
    assert!(!s.excluded.contains_key("exit"), "{s:?}");
    let last = rows.iter().rfind(|r| r.pid == PID).unwrap();
    assert_eq!((last.ts, last.excluded), (t + 3 * MS, None));
}

/// The root run-queue of a CPU with one periodic task, its kernel samples
/// written where the kernel writes them: inside the wakeup's enqueue and
/// the switch's dequeue (before their records, at the same PELT time), and
/// at a tick after the task's own update. Every task value in the trace
/// comes from the kernel's arithmetic (`schedrec_replay::pelt`), and the
/// root's from the same sums: so each root sample must be the task's sums
/// exactly, and its util_est the task's while it is enqueued, 0 once its
/// dequeue took it off — which only holds if each sample is judged after
/// the record of the operation it came from.
#[test]
fn root_samples_are_judged_after_the_operation_they_came_from() {
    use schedrec_format::{Entity, PeltSums, PeltUpdate};
    use schedrec_replay::pelt::{
        lattice_period_contrib, update_load_avg_se, util_est_update, SchedAvg, PELT_MIN_DIVIDER,
        UTIL_AVG_UNCHANGED,
    };
    let avg = |sa: &SchedAvg, on_rq: bool| PeltAvg {
        util_avg: sa.util_avg,
        load_avg: sa.load_avg,
        runnable_avg: sa.runnable_avg,
        util_est: sa.util_est,
        last_update_time: sa.last_update_time,
        on_rq,
        sched_delayed: false,
    };
    let sums = |sa: &SchedAvg| PeltSums {
        load_sum: sa.load_sum,
        runnable_sum: sa.runnable_sum,
        util_sum: sa.util_sum as u64,
        period_contrib: sa.period_contrib,
    };
    // The root run-queue holding this task alone (the task's weight, 1024,
    // times its load_sum; util_est the task's while enqueued).
    let root = |ts: u64, sa: &SchedAvg, enqueued: bool| {
        let divider = (PELT_MIN_DIVIDER + lattice_period_contrib(sa.last_update_time)) as u64;
        Record::Pelt(PeltUpdate {
            ts,
            cpu: 0,
            entity: Entity::CfsRq,
            rq_cpu: 0,
            pid: 0,
            avg: PeltAvg {
                util_avg: sa.util_sum as u64 / divider,
                load_avg: 1024 * sa.load_sum / divider,
                runnable_avg: sa.runnable_sum / divider,
                util_est: if enqueued {
                    sa.util_est & !UTIL_AVG_UNCHANGED
                } else {
                    0
                },
                last_update_time: sa.last_update_time,
                on_rq: false,
                sched_delayed: false,
            },
            sums: Some(PeltSums {
                load_sum: 1024 * sa.load_sum,
                ..sums(sa)
            }),
        })
    };
    // The PELT clock is the trace clock; the first update on a period
    // boundary. (A root sample's trace time is a little before the record
    // of its operation, as the kernel writes them; its PELT time is the
    // operation's.)
    let t0 = 1_000 * 1024 * 1024;
    let mut sa = SchedAvg {
        last_update_time: t0,
        ..SchedAvg::default()
    };
    let mut recs = Vec::new();
    for p in 0..40u64 {
        let t = t0 + p * 16 * MS + 123_457;
        // Enqueue: the sleep closes; the root's sample, then the record.
        update_load_avg_se(t, &mut sa, 1024, false, false, false);
        recs.push(root(t - 1_000, &sa, true));
        recs.push(Record::Wakeup(Wakeup {
            ts: t,
            cpu: 0,
            pid: PID,
            target_cpu: 0,
            new: false,
            pelt: Some(avg(&sa, true)),
            sums: Some(sums(&sa)),
        }));
        // The pick out of idle reuses the enqueue's clock.
        recs.push(Record::Switch(Switch {
            ts: t + 5_000,
            cpu: 0,
            prev: task_ref(0),
            next: task_ref(PID),
            next_pelt: Some(avg(&sa, true)),
            next_sums: Some(sums(&sa)),
            ..Switch::default()
        }));
        // A tick: the task's update, then the root's.
        let tick = t + 4 * MS;
        update_load_avg_se(tick, &mut sa, 1024, true, true, true);
        recs.push(Record::Pelt(PeltUpdate {
            ts: tick,
            cpu: 0,
            entity: Entity::Task,
            rq_cpu: 0,
            pid: PID,
            avg: avg(&sa, true),
            sums: Some(sums(&sa)),
        }));
        recs.push(root(tick + 1_000, &sa, true));
        // Block: util_est (v6.12+: before the update), the dequeue's
        // update, the root's sample without the task's util_est, then the
        // switch's record.
        let end = t + 8 * MS;
        let (u, r) = (sa.util_avg, sa.runnable_avg);
        util_est_update(&mut sa, u, r, 1024);
        update_load_avg_se(end, &mut sa, 1024, true, true, true);
        recs.push(root(end - 1_000, &sa, false));
        recs.push(switch(end, PID, 0, 1, Some(avg(&sa, false))));
        if let Some(Record::Switch(s)) = recs.last_mut() {
            s.prev_sums = Some(sums(&sa));
        }
    }
    let (s, rows) = run_on(
        &recs,
        &Options {
            root_rows: true,
            ..Options::default()
        },
        meta(PeltMode::Full),
    );
    // The task itself, from the same arithmetic: exact.
    let util = s.util_avg.as_ref().unwrap();
    assert_eq!((util.exact_fraction, util.max_abs_err), (1.0, 0), "{s:?}");
    // The root: its first sample takes the residual (the task, not
    // replayed before its first switch says its class), its second too
    // (the task first seen); every other one is the task's sums, and
    // util_est follows the enqueue.
    let r = s.root.as_ref().expect("a root summary");
    assert_eq!((r.samples, r.reanchors), (120, 2), "{r:?}");
    for m in [&r.util_avg, &r.util_est] {
        let m = m.as_ref().unwrap();
        assert_eq!((m.samples, m.max_abs_err), (118, 0), "{r:?}");
    }
    // (load and runnable: this trace has no group entities.)
    assert_eq!(r.load_avg.as_ref().unwrap().max_abs_err, 0, "{r:?}");
    assert_eq!(r.runnable_avg.as_ref().unwrap().max_abs_err, 0, "{r:?}");
    let root_rows = rows.iter().filter(|r| r.event == "cfs_rq").count();
    assert_eq!(root_rows, 120);
}
