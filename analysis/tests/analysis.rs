//! The analysis on the committed real recordings: classes and utilisation
//! with known answers, and an exported dataset read back through its
//! partitioned layout by polars' scanner (not the writing code path).

use std::path::PathBuf;

use schedrec_analysis::analyze::tasks;
use schedrec_analysis::frames::{export_dataset, frame, replay_frame, ReplaySink, TABLES};
use schedrec_analysis::load;
use schedrec_analysis::polars::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

#[test]
fn periodic_task_is_periodic_and_half_busy() {
    let (_, t) = load(&fixture("periodic-16ms-50pct-full.sched"), 32).unwrap();
    let ts = tasks(&t).unwrap();
    let p = ts
        .iter()
        .find(|t| t.comm == "periodic")
        .expect("periodic task");
    assert_eq!(p.class, "periodic", "{p:?}");
    // 8 ms of every 16 ms for 3 s (it starts a little after the recording).
    assert!((0.45..=0.52).contains(&p.runtime_share), "{p:?}");
    let m = p.measured_util_mean.unwrap();
    assert!((m - 512.0).abs() < 30.0, "measured {m}");
    // The trace-visible kernel value (held while asleep) lies within the
    // closed-form envelope 469..554 (pelt-reference §7) on average.
    let k = p.kernel_util_mean.unwrap();
    assert!((469.0..=554.0).contains(&k), "kernel mean {k}");
    let b = p.bias_pct.unwrap();
    assert!((b - (k - m) / m * 100.0).abs() < 1e-9);
    assert!(p.ipc.is_none(), "no PMU on the recording host: no counters");
}

#[test]
fn mixed_workload_classes() {
    let (_, t) = load(&fixture("mixed-pelt-full.sched"), 32).unwrap();
    let ts = tasks(&t).unwrap();
    let class = |comm: &str| ts.iter().find(|t| t.comm == comm).map(|t| t.class);
    assert_eq!(class("hog"), Some("cpu-bound"), "{ts:#?}");
    assert_eq!(class("io"), Some("io-bound"), "{ts:#?}");
    // Busiest first.
    assert!(ts.windows(2).all(|w| w[0].runtime_ms >= w[1].runtime_ms));
}

#[test]
fn dataset_reads_back_through_its_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, t) = load(&fixture("periodic-16ms-50pct.sched"), 32).unwrap();
    export_dataset(&t, tmp.path(), "host-a", "periodic").unwrap();
    export_dataset(&t, tmp.path(), "host b/2", "again").unwrap();
    for name in TABLES {
        let want = frame(&t, name).unwrap().height();
        if want == 0 {
            continue; // e.g. no PELT streams in a --pelt switch trace
        }
        let pattern = format!("{}/**/{name}.parquet", tmp.path().display());
        let args = ScanArgsParquet {
            hive_options: HiveOptions {
                enabled: Some(true),
                // Partition values are names: no date parsing.
                try_parse_dates: false,
                ..HiveOptions::default()
            },
            ..ScanArgsParquet::default()
        };
        let df = LazyFrame::scan_parquet(PlRefPath::new(pattern.as_str()), args)
            .unwrap()
            .group_by([col("host"), col("trace")])
            .agg([len().alias("n")])
            .sort(["host"], SortMultipleOptions::default())
            .collect()
            .unwrap();
        let hosts: Vec<String> = df
            .column("host")
            .unwrap()
            .cast(&DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        assert_eq!(hosts, ["host-a", "host_b_2"], "{name}");
        let n: Vec<u32> = df
            .column("n")
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        assert_eq!(n, [want as u32, want as u32], "{name}");
    }
}

/// `replay -o OUT.parquet|OUT.csv` streams in batches: written in batches
/// of 100 rows, both files hold exactly the rows of the replay table, and
/// the Parquet one reads back (by polars' scanner) equal to it.
#[test]
fn replay_sink_streams_the_replay_table() {
    let (_, t) = load(&fixture("periodic-16ms-50pct-full.sched"), 32).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rows = &t.replay;
    assert!(rows.len() > 1000);
    let mut all = vec![];
    // The sink takes the engine's rows: replay again to have them.
    let reader = schedrec_format::Reader::open(fixture("periodic-16ms-50pct-full.sched")).unwrap();
    let opts = schedrec_replay::engine::Options::default();
    schedrec_replay::engine::replay(
        &reader,
        &opts,
        |b| {
            all.extend_from_slice(b);
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(all.len(), rows.len());
    for ext in ["parquet", "csv"] {
        let path = tmp.path().join(format!("r.{ext}"));
        let mut sink = ReplaySink::with_batch(&path, 100).unwrap();
        for r in &all {
            sink.push(r).unwrap();
        }
        sink.finish().unwrap();
        if ext == "csv" {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines = text.lines();
            assert!(lines
                .next()
                .unwrap()
                .starts_with("ts,pid,cpu,event,kernel_util_avg"));
            assert_eq!(lines.count(), all.len());
        } else {
            let back = LazyFrame::scan_parquet(
                PlRefPath::new(path.to_str().unwrap()),
                ScanArgsParquet::default(),
            )
            .unwrap()
            .collect()
            .unwrap();
            let want = replay_frame(rows).unwrap();
            assert!(back.equals_missing(&want), "{back:?}\nvs\n{want:?}");
        }
    }
    // An unknown extension: a clear error, no file.
    let bad = tmp.path().join("r.txt");
    let e = ReplaySink::create(&bad).err().unwrap().to_string();
    assert!(e.contains("must end in .csv or .parquet"), "{e}");
    assert!(!bad.exists());
}
