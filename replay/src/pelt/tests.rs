//! The closed-form oracles of the PELT reference (§7), reproduced by the
//! integer port.

use super::*;

const MS: u64 = 1_000_000;

/// A task that runs from `start` to `end` (ns), with the kernel's tick
/// updates at every multiple of `tick` in between, then a final update at
/// `end`. Returns the util_avg seen at each tick.
fn run(sa: &mut SchedAvg, start: u64, end: u64, tick: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut t = (start / tick + 1) * tick;
    while t < end {
        update_load_avg_se(t, sa, 1024, true, true, true);
        out.push((t, sa.util_avg));
        t += tick;
    }
    update_load_avg_se(end, sa, 1024, true, true, true);
    out
}

/// A task that wakes at `t`: the sleeping interval closes (decay only),
/// then it is enqueued and picked at once.
fn wake(sa: &mut SchedAvg, t: u64) {
    update_load_avg_se(t, sa, 1024, false, false, false);
}

#[test]
fn decay_load_matches_the_table() {
    assert_eq!(decay_load(1024, 0), 1023); // 0xffffffff / 2^32 < 1
    assert_eq!(decay_load(LOAD_AVG_MAX, LOAD_AVG_PERIOD), 23870);
    assert_eq!(decay_load(1 << 20, 64), (1u64 << 18) - 1);
    assert_eq!(decay_load(u64::MAX, 32 * 63 + 1), 0);
}

#[test]
fn step_response_at_hz_1000_and_250() {
    // From zero, always running: first tick at which util_avg reaches each
    // level (pelt-reference §7).
    for (hz, want) in [
        (1000u64, [34u64, 145, 222, 314]),
        (250, [36, 148, 228, 336]),
    ] {
        let tick = 1_000_000_000 / hz;
        let mut sa = SchedAvg::default();
        let ticks = run(&mut sa, 0, 500 * MS, tick);
        let first = |level: u64| {
            ticks
                .iter()
                .find(|(_, u)| *u >= level)
                .map(|(t, _)| t / MS)
                .unwrap()
        };
        let got = [first(512), first(973), first(1014), first(1023)];
        assert_eq!(got, want, "HZ={hz}");
        assert!(
            (1023..=1024).contains(&sa.util_avg),
            "settles at {}",
            sa.util_avg
        );
    }
}

#[test]
fn decay_after_sleep() {
    // From util 1024: 32 ms -> 528, 64 -> 273, 100 -> 129, 200 -> 16.
    for (sleep_ms, want) in [(32u64, 528u64), (64, 273), (100, 129), (200, 16)] {
        let mut sa = SchedAvg::default();
        run(&mut sa, 0, 1000 * MS, MS);
        assert!(sa.util_avg >= 1023);
        wake(&mut sa, (1000 + sleep_ms) * MS);
        assert!(
            sa.util_avg.abs_diff(want) <= 1,
            "after {sleep_ms} ms asleep: {} (oracle {want})",
            sa.util_avg
        );
    }
}

#[test]
fn periodic_tasks_reach_the_closed_form_max_and_min() {
    // (period ms, duty, U_max at dequeue, U_min at enqueue), within +-1.
    // A period of P ms is not a whole number of PELT periods (1.048576 ms),
    // so the phase of the task against PELT's period boundaries cycles, and
    // the value exposed at dequeue is the one of the last boundary crossed:
    // over many periods the largest dequeue value is U_max, the smallest
    // enqueue value U_min, and no value leaves [U_min, U_max].
    let cases = [
        (16u64, 0.5, 554u64, 469u64),
        (16, 0.25, 288, 225),
        (10, 0.1, 112, 93),
        (32, 0.5, 595, 428),
        (100, 0.5, 755, 268),
        (100, 0.25, 473, 100),
        (64, 0.1, 172, 52),
    ];
    for (p, d, want_max, want_min) in cases {
        let period = p * MS;
        let busy = (d * period as f64) as u64;
        let mut sa = SchedAvg::default();
        let (mut at_dequeue, mut at_enqueue) = (Vec::new(), Vec::new());
        for k in 0..300u64 {
            let t = k * period;
            wake(&mut sa, t);
            if k >= 100 {
                at_enqueue.push(sa.util_avg);
            }
            run(&mut sa, t, t + busy, MS); // HZ=1000
            if k >= 100 {
                at_dequeue.push(sa.util_avg);
            }
        }
        let umax = *at_dequeue.iter().max().unwrap();
        let umin = *at_enqueue.iter().min().unwrap();
        assert!(
            umax.abs_diff(want_max) <= 1 && umin.abs_diff(want_min) <= 1,
            "P={p} ms d={d}: {umax}/{umin}, oracle {want_max}/{want_min}"
        );
        let lo = *at_dequeue.iter().chain(&at_enqueue).min().unwrap();
        let hi = *at_dequeue.iter().chain(&at_enqueue).max().unwrap();
        assert!(
            lo + 1 >= want_min && hi <= want_max + 1,
            "P={p} d={d}: {lo}..{hi}"
        );
    }
}

#[test]
fn util_est_sequence() {
    // From 755 with a constant dequeued 473 (pelt-reference §7).
    let want = [
        684u32, 631, 591, 561, 539, 522, 509, 500, 493, 488, 484, 481, 481, 481,
    ];
    let mut sa = SchedAvg {
        util_est: 755,
        ..Default::default()
    };
    for (i, w) in want.iter().enumerate() {
        util_est_update(&mut sa, 473, 473, 1024);
        assert_eq!(sa.util_est & !UTIL_AVG_UNCHANGED, *w, "step {i}");
        // Without a new util_avg the next dequeue must not update again.
        let before = sa.util_est;
        util_est_update(&mut sa, 300, 300, 1024);
        assert_eq!(sa.util_est, before, "updated without a new util_avg");
        cfs_se_util_change(&mut sa);
    }
}

#[test]
fn two_tasks_sharing_a_cpu() {
    // Two always-runnable nice-0 tasks alternating 4 ms slices at HZ=250,
    // and their CPU's root cfs_rq.
    let (mut a, mut b, mut rq) = (
        SchedAvg::default(),
        SchedAvg::default(),
        SchedAvg::default(),
    );
    let slice = 4 * MS;
    for k in 0..500u64 {
        let t = (k + 1) * slice;
        let a_ran = k % 2 == 0;
        update_load_avg_se(t, &mut a, 1024, true, true, a_ran);
        update_load_avg_se(t, &mut b, 1024, true, true, !a_ran);
        // cfs_rq: load = sum of weights, runnable = runnable tasks, running = a task runs.
        if update_load_sum(t, &mut rq, 2048, 2, true) {
            update_load_avg(&mut rq, 1);
        }
    }
    for s in [&a, &b] {
        assert!((490..=533).contains(&s.util_avg), "util {}", s.util_avg);
        assert!(
            s.runnable_avg.abs_diff(1024) <= 2,
            "runnable {}",
            s.runnable_avg
        );
        assert!(s.load_avg.abs_diff(1023) <= 2, "load {}", s.load_avg);
    }
    assert!(rq.util_avg.abs_diff(1024) <= 2, "rq util {}", rq.util_avg);
    assert!(
        rq.runnable_avg.abs_diff(2048) <= 4,
        "rq runnable {}",
        rq.runnable_avg
    );
    assert!(rq.load_avg.abs_diff(2048) <= 4, "rq load {}", rq.load_avg);
}

#[test]
fn frequency_invariance() {
    // 4 ms of full-capacity work every 16 ms peaks at 288 whatever the
    // frequency: at 768/1024 the work takes 5.33 ms of wall time, but the
    // PELT clock advances by 4 ms while busy and catches up when idle.
    for freq in [1024u64, 768, 512] {
        let mut clk = RqClockPelt::default();
        let mut sa = SchedAvg::default();
        let work_ns = 4 * MS * 1024 / freq; // wall time of 4 ms of full-speed work
        let mut peaks = Vec::new();
        for k in 0..300u64 {
            // Wake at the start of the period (the CPU was idle).
            let start = k * 16 * MS;
            clk.update(start - clk.clock_task, true, 1024, freq);
            update_load_avg_se(clk.now(), &mut sa, 1024, false, false, false);
            // Run with ticks every 1 ms of wall time.
            let mut t = start;
            while t + MS < start + work_ns {
                clk.update(MS, false, 1024, freq);
                t += MS;
                update_load_avg_se(clk.now(), &mut sa, 1024, true, true, true);
            }
            clk.update(start + work_ns - t, false, 1024, freq);
            update_load_avg_se(clk.now(), &mut sa, 1024, true, true, true);
            clk.go_idle(sa.util_sum);
            if k >= 100 {
                peaks.push(sa.util_avg);
            }
        }
        let peak = *peaks.iter().max().unwrap();
        assert!(peak.abs_diff(288) <= 1, "freq {freq}: peak {peak}");
    }
}

#[test]
fn saturated_cpu_loses_its_idle_time() {
    let mut clk = RqClockPelt::default();
    clk.update(10 * MS, false, 1024, 512); // busy at half speed: pelt +5 ms
    assert_eq!((clk.clock_task, clk.clock_pelt), (10 * MS, 5 * MS));
    clk.go_idle(0); // not saturated: the 5 ms are idle time
    assert_eq!((clk.now(), clk.lost_idle_time), (10 * MS, 0));
    clk.update(10 * MS, false, 1024, 512);
    clk.go_idle(47_791_490); // saturated: the missing 5 ms are lost
    assert_eq!(clk.lost_idle_time, 5 * MS);
    assert_eq!(clk.now(), 15 * MS);
}

#[test]
fn a_blocked_sync_keeps_util_est_unchanged_flag() {
    // __update_load_avg_blocked_se() decays like any update but, unlike
    // __update_load_avg_se(), does not call cfs_se_util_change().
    let mut sa = SchedAvg::default();
    run(&mut sa, 0, 20 * MS, 4 * MS);
    sa.util_est = 300 | UTIL_AVG_UNCHANGED;
    let mut blocked = sa;
    assert!(update_load_avg_blocked_se(40 * MS, &mut blocked, 1024));
    assert!(blocked.util_avg < sa.util_avg);
    assert_eq!(blocked.util_est, 300 | UTIL_AVG_UNCHANGED);
    let mut enqueued = sa;
    assert!(update_load_avg_se(
        40 * MS,
        &mut enqueued,
        1024,
        false,
        false,
        false
    ));
    assert_eq!(enqueued.util_avg, blocked.util_avg);
    assert_eq!(enqueued.util_est, 300);
}
