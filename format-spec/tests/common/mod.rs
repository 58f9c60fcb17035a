//! Shared helpers for the format tests: proptest strategies for records.
#![allow(dead_code)]

use proptest::prelude::*;
use schedrec_format::*;

pub fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1u64 << 63),
        0u64..1000,
        any::<u64>(),
    ]
}
pub fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), 0u32..64, any::<u32>()]
}
pub fn any_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MIN),
        Just(i32::MAX),
        Just(-1),
        100i32..140,
        any::<i32>()
    ]
}
pub fn ts() -> impl Strategy<Value = u64> {
    prop_oneof![any_u64(), 1_000_000_000u64..1_000_100_000]
}
pub fn cpu() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..3, Just(CPU_NONE), Just(u32::MAX - 1)]
}
fn task_ref() -> impl Strategy<Value = TaskRef> {
    (prop_oneof![0u32..5, any_u32()], any_u32(), any_i32()).prop_map(|(pid, tgid, prio)| TaskRef {
        pid,
        tgid,
        prio,
    })
}
fn counter() -> impl Strategy<Value = Option<Counter>> {
    proptest::option::of(
        (any_u64(), any_u64(), any_u64()).prop_map(|(value, enabled, running)| Counter {
            value,
            enabled,
            running,
        }),
    )
}
pub fn pelt_avg() -> impl Strategy<Value = PeltAvg> {
    (
        any_u64(),
        any_u64(),
        any_u64(),
        any_u32(),
        any_u64(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                util_avg,
                load_avg,
                runnable_avg,
                util_est,
                last_update_time,
                on_rq,
                sched_delayed,
            )| {
                PeltAvg {
                    util_avg,
                    load_avg,
                    runnable_avg,
                    util_est,
                    last_update_time,
                    on_rq,
                    sched_delayed,
                }
            },
        )
}
pub fn pelt_sums() -> impl Strategy<Value = PeltSums> {
    (any_u64(), any_u64(), any_u64(), any_u32()).prop_map(
        |(load_sum, runnable_sum, util_sum, period_contrib)| PeltSums {
            load_sum,
            runnable_sum,
            util_sum,
            period_contrib,
        },
    )
}
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..20)
}

pub fn record() -> BoxedStrategy<Record> {
    let switch = (
        (
            ts(),
            cpu(),
            task_ref(),
            any_u32(),
            task_ref(),
            any::<bool>(),
        ),
        (counter(), counter(), counter(), counter()),
        (
            proptest::option::of(pelt_avg()),
            proptest::option::of(pelt_sums()),
            proptest::option::of(pelt_avg()),
            proptest::option::of(pelt_sums()),
        ),
    )
        .prop_map(
            |((ts, cpu, prev, prev_state, next, preempt), (a, b, c, d), (pa, ps, na, ns))| {
                Record::Switch(Switch {
                    ts,
                    cpu,
                    prev,
                    prev_state,
                    next,
                    preempt,
                    counters: [a, b, c, d],
                    prev_pelt: pa,
                    prev_sums: ps,
                    next_pelt: na,
                    next_sums: ns,
                })
            },
        );
    let wakeup = (
        ts(),
        cpu(),
        any_u32(),
        any_u32(),
        any::<bool>(),
        proptest::option::of(pelt_avg()),
        proptest::option::of(pelt_sums()),
    )
        .prop_map(|(ts, cpu, pid, target_cpu, new, pelt, sums)| {
            Record::Wakeup(Wakeup {
                ts,
                cpu,
                pid,
                target_cpu,
                new,
                pelt,
                sums,
            })
        });
    let task = (
        ts(),
        cpu(),
        any_u32(),
        any_u32(),
        any_u32(),
        any_i32(),
        any_u32(),
        0u64..6,
        bytes(),
    )
        .prop_map(|(ts, cpu, pid, tgid, ppid, prio, policy, ev, comm)| {
            Record::Task(Task {
                ts,
                cpu,
                pid,
                tgid,
                ppid,
                prio,
                policy,
                event: TaskEvent::from_u64(ev),
                comm,
            })
        });
    let migrate = (ts(), cpu(), any_u32(), any_u32(), any_u32()).prop_map(
        |(ts, cpu, pid, orig_cpu, dest_cpu)| {
            Record::Migrate(Migrate {
                ts,
                cpu,
                pid,
                orig_cpu,
                dest_cpu,
            })
        },
    );
    let pelt = (
        ts(),
        cpu(),
        0u64..4,
        any_u32(),
        any_u32(),
        pelt_avg(),
        proptest::option::of(pelt_sums()),
    )
        .prop_map(|(ts, cpu, e, rq_cpu, pid, avg, sums)| {
            Record::Pelt(PeltUpdate {
                ts,
                cpu,
                entity: Entity::from_u64(e),
                rq_cpu,
                pid,
                avg,
                sums,
            })
        });
    let freq = (ts(), cpu(), any_u32(), any_u64()).prop_map(|(ts, cpu, target_cpu, freq_khz)| {
        Record::CpuFreq(CpuFreq {
            ts,
            cpu,
            target_cpu,
            freq_khz,
        })
    });
    let loss = (ts(), cpu(), any_u64(), any_u64()).prop_map(|(ts, cpu, end_ts, count)| {
        Record::Loss(Loss {
            ts,
            cpu,
            end_ts,
            count,
        })
    });
    let marker =
        (ts(), cpu(), bytes()).prop_map(|(ts, cpu, text)| Record::Marker(Marker { ts, cpu, text }));
    prop_oneof![
        4 => switch.boxed(),
        2 => wakeup.boxed(),
        1 => task.boxed(),
        1 => migrate.boxed(),
        1 => pelt.boxed(),
        1 => freq.boxed(),
        1 => loss.boxed(),
        1 => marker.boxed()
    ]
    .boxed()
}

/// Writes `records` to a file in `dir` and returns its path.
pub fn write(dir: &std::path::Path, records: &[Record], opts: WriterOptions) -> std::path::PathBuf {
    let path = dir.join("t.sched");
    let meta = Metadata {
        kernel_release: "6.18.0-test".into(),
        nr_cpus: 3,
        counters: COUNTER_SLOTS
            .iter()
            .map(|n| CounterInfo {
                name: n.to_string(),
                available: true,
            })
            .collect(),
        ..Default::default()
    };
    let mut w = Writer::create(&path, &meta, opts).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
    path
}

/// The input grouped per (kind, cpu) stream, each stably sorted by time:
/// what a reader must give back for that stream.
pub fn per_stream(records: &[Record]) -> std::collections::BTreeMap<(Kind, u32), Vec<Record>> {
    let mut m: std::collections::BTreeMap<(Kind, u32), Vec<Record>> = Default::default();
    for r in records {
        m.entry((r.kind(), r.cpu())).or_default().push(r.clone());
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.ts());
    }
    m
}
