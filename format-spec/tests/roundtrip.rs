//! Round-trip property tests over arbitrary record streams.

mod common;

use common::*;
use proptest::prelude::*;
use rayon::prelude::*;
use schedrec_format::*;

fn check_roundtrip(records: &[Record], chunk_records: usize, codec: Codec) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        chunk_records,
        codec,
        ..Default::default()
    };
    let path = write(dir.path(), records, opts);
    let r = Reader::open(&path).unwrap();
    assert!(r.is_complete(), "{:?}", r.recovery());
    assert_eq!(r.meta().kernel_release, "6.18.0-test");

    // Merged iteration: non-decreasing time, and each stream is the input
    // stream stably sorted by time.
    let got: Vec<Record> = r.records(Filter::default()).map(|x| x.unwrap()).collect();
    assert_eq!(got.len(), records.len());
    assert!(got.windows(2).all(|w| w[0].ts() <= w[1].ts()));
    assert_eq!(per_stream(&got), per_stream(records));
    // Decoding ahead on a thread of its own changes nothing, and so does
    // calling it from a rayon worker (where it is the plain iterator).
    let ahead: Vec<Record> =
        r.with_records(Filter::default(), |recs| recs.map(|x| x.unwrap()).collect());
    assert_eq!(ahead, got);
    let on_worker: Vec<Record> = rayon::join(
        || r.with_records(Filter::default(), |recs| recs.map(|x| x.unwrap()).collect()),
        || (),
    )
    .0;
    assert_eq!(on_worker, got);
    // Batches filled in place hold the same records, whatever the batch
    // size, with or without a filter (pid, and a time window that ends
    // the iteration early).
    let filled = |filter: Filter, n: usize| -> Vec<Record> {
        let (mut recs, mut all, mut buf) = (r.records(filter), vec![], vec![]);
        loop {
            buf.clear();
            let got = recs.fill(&mut buf, n);
            assert_eq!(got, buf.len());
            assert!(got <= n);
            all.extend(buf.drain(..).map(|x| x.unwrap()));
            if got < n {
                assert_eq!(
                    recs.fill(&mut buf, n),
                    0,
                    "more records after a short batch"
                );
                return all;
            }
        }
    };
    for n in [1, 7, 4096] {
        assert_eq!(filled(Filter::default(), n), got, "batches of {n}");
    }
    if let Some(mid) = got.get(got.len() / 2).map(Record::ts) {
        let pid = got.iter().find_map(|r| match r {
            Record::Switch(s) => Some(s.next.pid),
            _ => None,
        });
        let filter = Filter {
            pid,
            to: Some(mid),
            ..Default::default()
        };
        let want: Vec<Record> = r.records(filter.clone()).map(|x| x.unwrap()).collect();
        assert_eq!(filled(filter, 5), want);
    }

    // Chunk-by-chunk decoding gives each stream back in the exact order written.
    let mut stored: std::collections::BTreeMap<(Kind, u32), Vec<Record>> = Default::default();
    for d in r.par_decode(&Filter::default()).collect::<Vec<_>>() {
        let d = d.unwrap();
        for rec in d.records() {
            let rec = rec.unwrap();
            stored.entry((rec.kind(), rec.cpu())).or_default().push(rec);
        }
    }
    let mut want: std::collections::BTreeMap<(Kind, u32), Vec<Record>> = Default::default();
    for rec in records {
        want.entry((rec.kind(), rec.cpu()))
            .or_default()
            .push(rec.clone());
    }
    assert_eq!(stored, want);
    assert_eq!(r.verify().unwrap(), records.len() as u64);

    // Filters: one CPU, one kind, a time window.
    let cpu0: Vec<Record> = r
        .records(Filter {
            cpu: Some(0),
            ..Default::default()
        })
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(cpu0.len(), records.iter().filter(|x| x.cpu() == 0).count());
    if let Some(mid) = records.get(records.len() / 2).map(|x| x.ts()) {
        let window: Vec<Record> = r
            .records(Filter {
                from: Some(mid / 2),
                to: Some(mid),
                kinds: Some(vec![Kind::Switch, Kind::Wakeup]),
                ..Default::default()
            })
            .map(|x| x.unwrap())
            .collect();
        let want = records
            .iter()
            .filter(|x| {
                x.ts() >= mid / 2
                    && x.ts() <= mid
                    && matches!(x.kind(), Kind::Switch | Kind::Wakeup)
            })
            .count();
        assert_eq!(window.len(), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_streams_round_trip(
        records in proptest::collection::vec(record(), 0..120),
        chunk_records in prop_oneof![Just(1usize), 2usize..9, Just(16384)],
        zstd in any::<bool>(),
    ) {
        check_roundtrip(&records, chunk_records, if zstd { Codec::Zstd } else { Codec::None });
    }
}

#[test]
fn empty_file_round_trips() {
    check_roundtrip(&[], 16, Codec::Zstd);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &[], WriterOptions::default());
    let r = Reader::open(&path).unwrap();
    assert!(r.is_complete());
    assert!(r.chunks().is_empty());
    let s = Summary::of(&r).unwrap();
    assert_eq!((s.switches, s.start_ns, s.end_ns), (0, 0, 0));
}

#[test]
fn single_record_chunks_with_extremes() {
    let recs = vec![
        Record::Loss(Loss {
            ts: u64::MAX,
            cpu: 0,
            end_ts: 0,
            count: u64::MAX,
        }),
        Record::Loss(Loss {
            ts: 0,
            cpu: 0,
            end_ts: u64::MAX,
            count: 0,
        }),
        Record::Marker(Marker {
            ts: 5,
            cpu: CPU_NONE,
            text: vec![0xff, 0, b'x'],
        }),
    ];
    check_roundtrip(&recs, 1, Codec::Zstd);
    check_roundtrip(&recs, 3, Codec::None);
}

/// A writer that was given ten markers and not flushed.
fn ten_markers(path: &std::path::Path) -> Writer {
    let mut w = Writer::create(path, &Metadata::default(), WriterOptions::default()).unwrap();
    for i in 0..10u64 {
        w.push(&Record::Marker(Marker {
            ts: i,
            cpu: 0,
            text: b"m".to_vec(),
        }))
        .unwrap();
    }
    w
}

#[test]
fn unfinished_writer_is_finished_on_drop_and_flush_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sched");
    let mut w = ten_markers(&path);
    w.flush().unwrap();
    // After flush, a reader sees everything so far (by scan: no footer yet).
    let r = Reader::open(&path).unwrap();
    assert!(!r.is_complete());
    assert!(
        r.recovery().unwrap().contains("no footer"),
        "{:?}",
        r.recovery()
    );
    assert_eq!(r.records(Filter::default()).count(), 10);
    drop(w);
    let r = Reader::open(&path).unwrap();
    assert!(r.is_complete());
    assert_eq!(r.records(Filter::default()).count(), 10);
}

#[test]
fn background_flush_makes_records_readable_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sched");
    let mut w = ten_markers(&path);
    w.flush_background().unwrap();
    assert!(w.stats().failure().is_none());
    // The background thread writes them soon (a bound, not a speed target).
    let mut seen = 0;
    for _ in 0..500 {
        seen = Reader::open(&path).map_or(0, |r| r.records(Filter::default()).count());
        if seen == 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(seen, 10);
    w.finish().unwrap();
    assert_eq!(
        Reader::open(&path)
            .unwrap()
            .records(Filter::default())
            .count(),
        10
    );
}

#[test]
fn created_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &[], WriterOptions::default());
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn counters_declared_unavailable_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Metadata {
        counters: vec![CounterInfo {
            name: "cycles".into(),
            available: false,
        }],
        ..Default::default()
    };
    let mut w =
        Writer::create(dir.path().join("c.sched"), &meta, WriterOptions::default()).unwrap();
    let mut s = Switch::default();
    w.push(&Record::Switch(s.clone())).unwrap();
    s.counters[0] = Some(Counter::default());
    let e = w.push(&Record::Switch(s)).unwrap_err();
    assert!(e.to_string().contains("counter slot 0"), "{e}");
}

/// Resident bytes of the mapping of `path` in this process (smaps `Rss`).
fn mapped_rss(path: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let mut rss = 0;
    let mut inside = false;
    for line in smaps.lines() {
        if line.contains('-') && line.split_whitespace().count() >= 5 {
            inside = line.ends_with(name);
        } else if inside {
            if let Some(kb) = line.strip_prefix("Rss:") {
                rss += kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap()
                    * 1024;
            }
        }
    }
    rss
}

#[test]
fn a_read_trace_does_not_stay_resident() {
    // ~16 MiB of uncompressed marker chunks: after opening (which checks
    // every chunk header) and after a full pass, at most the pages shared
    // by two chunks' boundaries stay mapped in, not the file.
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Record> = (0..4096u64)
        .map(|i| {
            Record::Marker(Marker {
                ts: 1_000 + i,
                cpu: (i % 2) as u32,
                text: vec![(i % 251) as u8; 5000],
            })
        })
        .collect();
    let opts = WriterOptions {
        chunk_records: 64,
        codec: Codec::None,
        ..Default::default()
    };
    let path = write(dir.path(), &records, opts);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 16 << 20, "{len}");
    let r = Reader::open(&path).unwrap();
    // Two 4 KiB pages per chunk (its ends share pages with its neighbours)
    // and 1 MiB for the footer and headers.
    let bound = 2 * 4096 * r.chunks().len() as u64 + (1 << 20);
    assert!(
        mapped_rss(&path) < bound,
        "after open: {}",
        mapped_rss(&path)
    );
    let n = r
        .with_records(Filter::default(), |mut recs| {
            recs.try_fold(0usize, |n, x| x.map(|_| n + 1))
        })
        .unwrap();
    assert_eq!(n, records.len());
    let rss = mapped_rss(&path);
    assert!(rss < bound, "after a pass: {rss} of {len} bytes resident");
}
