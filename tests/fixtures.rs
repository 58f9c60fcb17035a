//! The committed real recordings (fixtures/*.sched) still say what they
//! were recorded to show: these run anywhere, without root or BPF.

mod common;

use std::path::PathBuf;

use schedrec_format::{Filter, PeltMode, Reader, Record, Switch};

fn load(name: &str) -> (Reader, Vec<Record>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let r = Reader::open(&path).unwrap();
    assert!(r.is_complete(), "{name}: {:?}", r.recovery());
    let recs = r.records(Filter::default()).map(|x| x.unwrap()).collect();
    (r, recs)
}

/// Switch-outs of `pid` into sleep: (ts, util_avg).
fn sleeps(recs: &[Record], pid: u32) -> Vec<(u64, u64)> {
    recs.iter()
        .filter_map(|r| match r {
            Record::Switch(s) if s.prev.pid == pid && s.prev_state != 0 => {
                Some((s.ts, s.prev_pelt.expect("pelt recorded").util_avg))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn periodic_fixture() {
    let (r, recs) = load("periodic-16ms-50pct.sched");
    assert_eq!(r.meta().pelt, PeltMode::Switch);
    assert_eq!(r.meta().hz, 250);
    assert!(
        r.meta().counters.iter().all(|c| !c.available),
        "this VM has no PMU"
    );
    let pid = common::pid_of(&recs, "periodic");
    let s = sleeps(&recs, pid);
    assert!(s.len() > 170, "{} periods", s.len());
    let t0 = s[0].0 + 500_000_000;
    let late: Vec<u64> = s.iter().filter(|(t, _)| *t > t0).map(|(_, u)| *u).collect();
    let (lo, hi) = (*late.iter().min().unwrap(), *late.iter().max().unwrap());
    // PELT's closed form for 16 ms / 50 %: 469..554 (pelt-reference.md §7).
    assert!(lo >= 469 - 30 && hi <= 554 + 30, "util_avg {lo}..{hi}");
}

#[test]
fn step_fixture_shows_the_step() {
    let (_, recs) = load("step-10-80-10.sched");
    let pid = common::pid_of(&recs, "step");
    let s = sleeps(&recs, pid);
    let start = s[0].0;
    // Mean util_avg at switch-out in the last 0.5 s of each 1.5 s phase.
    let phase = |k: u64| {
        let (a, b) = (
            start + k * 1_500_000_000 + 1_000_000_000,
            start + (k + 1) * 1_500_000_000,
        );
        let v: Vec<u64> = s
            .iter()
            .filter(|(t, _)| *t >= a && *t < b)
            .map(|(_, u)| *u)
            .collect();
        assert!(v.len() > 10, "phase {k}: {} samples", v.len());
        v.iter().sum::<u64>() as f64 / v.len() as f64
    };
    let (p0, p1, p2) = (phase(0), phase(1), phase(2));
    // Steady state of a 16 ms periodic task: ~10 % duty -> ~100-170,
    // 80 % -> ~820-900 (the dequeue-time value sits above the mean).
    assert!(p0 < 250.0 && p2 < 250.0, "low phases {p0:.0} {p2:.0}");
    assert!(p1 > 700.0, "high phase {p1:.0}");
}

#[test]
fn full_pelt_fixture_has_every_pelt_stream() {
    let (r, recs) = load("mixed-pelt-full.sched");
    assert_eq!(r.meta().pelt, PeltMode::Full);
    let switches: Vec<&Switch> = recs
        .iter()
        .filter_map(|r| match r {
            Record::Switch(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(switches.len() > 10_000);
    assert!(switches.iter().all(|s| s.prev_pelt.is_some()
        && s.prev_sums.is_some()
        && s.next_pelt.is_some()
        && s.next_sums.is_some()));
    let mut task_updates = 0;
    let mut rq_cpus = std::collections::BTreeSet::new();
    for r in &recs {
        if let Record::Pelt(p) = r {
            match p.entity {
                schedrec_format::Entity::Task => task_updates += 1,
                schedrec_format::Entity::CfsRq => {
                    rq_cpus.insert(p.rq_cpu);
                }
                _ => {}
            }
            assert!(p.sums.is_some());
        }
    }
    assert!(task_updates > 1000, "{task_updates} task PELT updates");
    assert_eq!(rq_cpus.len(), 2, "root cfs_rq updates of both CPUs");
    // Every workload thread is named.
    for comm in ["periodic", "hog", "burst", "io", "ping", "pong"] {
        common::pid_of(&recs, comm);
    }
    let lost: u64 = recs
        .iter()
        .map(|r| if let Record::Loss(l) = r { l.count } else { 0 })
        .sum();
    assert_eq!(lost, 0);
}
