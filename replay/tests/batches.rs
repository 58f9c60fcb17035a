//! A replay's result must not depend on how its records are batched for
//! the parallel part: not the summary (the root run-queues' included), not
//! a row. Root samples held for the record that follows them, and task
//! samples held for the switch-out they may be, cross batch boundaries.

use std::hash::{DefaultHasher, Hash, Hasher};

use schedrec_format::Reader;
use schedrec_replay::engine::{replay, Options};

fn run(batch: usize) -> (String, u64, usize) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/mixed-pelt-full.sched"
    );
    let reader = Reader::open(path).unwrap();
    let opts = Options {
        batch,
        root_rows: true,
        ..Options::default()
    };
    let mut h = DefaultHasher::new();
    let mut n = 0;
    let s = replay(
        &reader,
        &opts,
        |rows| {
            for r in rows {
                format!("{r:?}").hash(&mut h);
            }
            n += rows.len();
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    (format!("{s:?}"), h.finish(), n)
}

#[test]
fn batches_do_not_change_the_replay() {
    let (summary, rows, n) = run(1 << 16);
    assert!(n > 100_000, "{n} rows");
    assert!(summary.contains("root: Some"), "{summary}");
    for batch in [4096, 997] {
        let (s, r, m) = run(batch);
        assert_eq!(summary, s, "batch {batch}");
        assert_eq!((rows, n), (r, m), "batch {batch}: the rows differ");
    }
}
