//! Golden vectors (format-spec/vectors/): files written from fixed input,
//! with their expected `schedrec dump --jsonl`. The writer must reproduce
//! them byte for byte, and the reader must decode them forever. Changing a
//! vector needs a format version bump and a SPEC.md changelog entry; then
//! regenerate with `SCHEDREC_BLESS=1 cargo test -p schedrec-format --test golden`.

use std::path::PathBuf;

use schedrec_format::synth::{self, Spec};
use schedrec_format::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn meta() -> Metadata {
    Metadata {
        kernel_release: "6.18.0-golden".into(),
        hostname: Some("golden-host".into()),
        nr_cpus: 2,
        cpu_capacity: vec![1024, 512],
        cpu_max_freq_khz: vec![3_000_000, 1_800_000],
        hz: 250,
        hz_source: HzSource::KernelConfig,
        clock_id: 1,
        anchor_clock_ns: 1_000_000_000,
        anchor_realtime_ns: 1_764_000_000_000_000_000,
        recorder: "schedrec golden".into(),
        command_line: vec![
            "schedrec".into(),
            "record".into(),
            "-o".into(),
            "x.sched".into(),
        ],
        counters: vec![
            CounterInfo {
                name: "cycles".into(),
                available: true,
            },
            CounterInfo {
                name: "instructions".into(),
                available: true,
            },
            CounterInfo {
                name: "cache-references".into(),
                available: true,
            },
            CounterInfo {
                name: "r01c2".into(),
                available: false,
            },
        ],
        pelt: PeltMode::Full,
        util_est_layout: UtilEstLayout::Single,
        extra: vec![("note".into(), "golden vector".into())],
    }
}

fn avg(u: u64, lut: u64, on_rq: bool) -> PeltAvg {
    PeltAvg {
        util_avg: u,
        load_avg: u + 3,
        runnable_avg: u + 5,
        util_est: (u as u32) | 0x8000_0000,
        last_update_time: lut,
        on_rq,
        sched_delayed: !on_rq && u % 2 == 1,
    }
}

fn sums(u: u64) -> PeltSums {
    PeltSums {
        load_sum: u * 46_718,
        runnable_sum: u * 46_718 * 1024,
        util_sum: u * 46_000,
        period_contrib: (u % 1024) as u32,
    }
}

/// One or more records of every kind, on two CPUs and none.
fn kinds() -> Vec<Record> {
    let t = 1_000_000_000u64;
    vec![
        Record::Marker(Marker {
            ts: t,
            cpu: CPU_NONE,
            text: b"start".to_vec(),
        }),
        Record::Task(Task {
            ts: t,
            cpu: CPU_NONE,
            pid: 4242,
            tgid: 4242,
            ppid: 1,
            prio: 120,
            policy: 0,
            event: TaskEvent::Seen,
            comm: b"worker".to_vec(),
        }),
        Record::Task(Task {
            ts: t + 10,
            cpu: CPU_NONE,
            pid: 4243,
            tgid: 4242,
            ppid: 4242,
            prio: -1,
            policy: 6,
            event: TaskEvent::Fork,
            comm: b"dl-thread".to_vec(),
        }),
        Record::Wakeup(Wakeup {
            ts: t + 100,
            cpu: 0,
            pid: 4242,
            target_cpu: 1,
            new: false,
            pelt: None,
            sums: None,
        }),
        Record::Migrate(Migrate {
            ts: t + 150,
            cpu: 0,
            pid: 4242,
            orig_cpu: 0,
            dest_cpu: 1,
        }),
        Record::Switch(Switch {
            ts: t + 200,
            cpu: 1,
            prev: TaskRef {
                pid: 0,
                tgid: 0,
                prio: 120,
            },
            prev_state: 0,
            next: TaskRef {
                pid: 4242,
                tgid: 4242,
                prio: 120,
            },
            preempt: false,
            ..Default::default()
        }),
        Record::Switch(Switch {
            ts: t + 5_000_200,
            cpu: 1,
            prev: TaskRef {
                pid: 4242,
                tgid: 4242,
                prio: 120,
            },
            prev_state: 2,
            next: TaskRef {
                pid: 0,
                tgid: 0,
                prio: 120,
            },
            preempt: false,
            ..Default::default()
        }),
        Record::Pelt(PeltUpdate {
            ts: t + 5_000_300,
            cpu: 1,
            entity: Entity::CfsRq,
            rq_cpu: 1,
            pid: 0,
            avg: avg(400, t + 5_000_000, true),
            sums: Some(sums(400)),
        }),
        Record::Pelt(PeltUpdate {
            ts: t + 5_000_400,
            cpu: 1,
            entity: Entity::Task,
            rq_cpu: 0,
            pid: 4242,
            avg: avg(150, t + 5_000_100, false),
            sums: None,
        }),
        Record::CpuFreq(CpuFreq {
            ts: t + 6_000_000,
            cpu: 0,
            target_cpu: 0,
            freq_khz: 2_400_000,
        }),
        Record::Loss(Loss {
            ts: t + 7_000_000,
            cpu: 0,
            end_ts: t + 7_500_000,
            count: 17,
        }),
        Record::Marker(Marker {
            ts: t + 8_000_000,
            cpu: 0,
            text: "fin \u{2713}".as_bytes().to_vec(),
        }),
    ]
}

/// Switches with every optional group, and wakeups with PELT.
fn switch_full() -> Vec<Record> {
    let t = 2_000_000_000u64;
    let mut out = Vec::new();
    let pids = [0u32, 300, 301, 302];
    for i in 0..14u64 {
        let cpu = (i % 2) as u32;
        let prev = pids[(i as usize) % 4];
        let next = pids[(i as usize + 1) % 4];
        let slice = 100_000 + i * 7_919;
        let c = |k: u64| Counter {
            value: slice * (k + 2) + i,
            enabled: slice,
            running: if k == 2 { slice / 2 } else { slice },
        };
        let ts = t + i * 150_000;
        out.push(Record::Switch(Switch {
            ts,
            cpu,
            prev: TaskRef {
                pid: prev,
                tgid: if prev == 0 { 0 } else { 300 },
                prio: 120,
            },
            prev_state: (i % 3) as u32,
            next: TaskRef {
                pid: next,
                tgid: if next == 0 { 0 } else { 300 },
                prio: if next == 302 { 100 } else { 120 },
            },
            preempt: i % 3 == 0,
            counters: [Some(c(0)), Some(c(1)), Some(c(2)), None],
            prev_pelt: Some(avg(100 + i * 13, ts - 1_024 - i, i % 3 == 0)),
            prev_sums: Some(sums(100 + i * 13)),
            next_pelt: Some(avg(200 + i, ts - 4_096, true)),
            next_sums: Some(sums(200 + i)),
        }));
        if i % 3 == 1 {
            out.push(Record::Wakeup(Wakeup {
                ts: ts + 50_000,
                cpu,
                pid: 301,
                target_cpu: 1 - cpu,
                new: i == 1,
                pelt: Some(avg(77 + i, ts + 49_152, true)),
                sums: Some(sums(77 + i)),
            }));
        }
    }
    out
}

fn write(records: &[Record], codec: Codec, chunk_records: usize) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v.sched");
    let mut w = Writer::create(
        &path,
        &meta(),
        WriterOptions {
            codec,
            chunk_records,
            ..Default::default()
        },
    )
    .unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(path).unwrap()
}

fn synth_periodic() -> Vec<u8> {
    let mut spec = Spec::from_toml(include_str!("../../fixtures/synth/periodic.toml")).unwrap();
    spec.duration_ms = 100.0;
    spec.counters = true;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.sched");
    synth::write_file(
        &spec,
        1,
        &path,
        vec!["golden".into()],
        WriterOptions::default(),
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

fn jsonl(bytes: &[u8]) -> String {
    let r = Reader::from_bytes(bytes.to_vec()).unwrap();
    let mut s = String::new();
    for rec in r.records(Filter::default()) {
        s += &serde_json::to_string(&rec.unwrap()).unwrap();
        s.push('\n');
    }
    s
}

/// (name, bytes the current writer produces)
fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let kinds = write(&kinds(), Codec::None, 3);
    // A recorder killed mid-write: everything up to the middle of the last
    // chunk, no footer.
    let r = Reader::from_bytes(kinds.clone()).unwrap();
    let last = *r.chunks().last().unwrap();
    let cut = (last.offset + last.total_len() / 2) as usize;
    vec![
        ("v1-kinds", kinds.clone()),
        ("v1-switch-full", write(&switch_full(), Codec::None, 4)),
        (
            "v1-switch-full-zstd",
            write(&switch_full(), Codec::Zstd, 16384),
        ),
        ("v1-synth-periodic", synth_periodic()),
        ("v1-recovered", kinds[..cut].to_vec()),
    ]
}

#[test]
fn golden_vectors() {
    let bless = std::env::var_os("SCHEDREC_BLESS").is_some();
    let dir = dir();
    for (name, bytes) in vectors() {
        let file = dir.join(format!("{name}.sched"));
        let expect = dir.join(format!("{name}.jsonl"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &bytes).unwrap();
            std::fs::write(&expect, jsonl(&bytes)).unwrap();
            eprintln!("blessed {}", file.display());
            continue;
        }
        let golden = std::fs::read(&file).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with SCHEDREC_BLESS=1 to create)",
                file.display()
            )
        });
        // The reader decodes the committed file to the committed JSON lines.
        let want = std::fs::read_to_string(&expect).unwrap();
        assert_eq!(jsonl(&golden), want, "{name}: decoding changed");
        // The writer reproduces the committed bytes exactly.
        if let Some(at) = golden.iter().zip(&bytes).position(|(a, b)| a != b) {
            panic!("{name}: writer output differs from the golden vector at byte {at}");
        }
        assert_eq!(
            golden.len(),
            bytes.len(),
            "{name}: writer output length changed"
        );
    }
}

#[test]
fn recovered_vector_says_so() {
    let golden = std::fs::read(dir().join("v1-recovered.sched")).unwrap();
    let r = Reader::from_bytes(golden).unwrap();
    assert!(!r.is_complete());
    assert!(
        r.recovery().unwrap().contains("truncated"),
        "{:?}",
        r.recovery()
    );
    let full = Reader::from_bytes(std::fs::read(dir().join("v1-kinds.sched")).unwrap()).unwrap();
    assert_eq!(r.chunks().len(), full.chunks().len() - 1);
}

#[test]
fn header_metadata_round_trips() {
    let golden = std::fs::read(dir().join("v1-kinds.sched")).unwrap();
    let r = Reader::from_bytes(golden).unwrap();
    assert_eq!(r.meta(), &meta());
    assert_eq!((r.header().major, r.header().minor), (1, 0));
}
