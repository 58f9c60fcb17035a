//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use schedrec_format::Record;

/// A failed `schedrec` run as users must see it: exit code 1 and exactly
/// one line on stderr starting with "schedrec: error:", no panic. Returns
/// that line.
pub fn one_line_error(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("schedrec: error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The pid of the (last) task named `comm` in a trace's task records.
pub fn pid_of(recs: &[Record], comm: &str) -> u32 {
    recs.iter()
        .rev()
        .find_map(|r| match r {
            Record::Task(t) if t.comm == comm.as_bytes() => Some(t.pid),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no task named {comm} in the trace"))
}

/// The switch records of a trace.
pub fn switches(recs: &[Record]) -> impl Iterator<Item = &schedrec_format::Switch> {
    recs.iter().filter_map(|r| match r {
        Record::Switch(s) => Some(s),
        _ => None,
    })
}

/// The task records of a trace.
pub fn tasks(recs: &[Record]) -> impl Iterator<Item = &schedrec_format::Task> {
    recs.iter().filter_map(|r| match r {
        Record::Task(t) => Some(t),
        _ => None,
    })
}

/// `schedrec replay FILE --json ARGS…`, parsed.
pub fn replay_json(file: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_schedrec"))
        .arg("replay")
        .arg(file)
        .arg("--json")
        .args(args)
        .output()
        .expect("run schedrec replay");
    assert!(
        o.status.success(),
        "schedrec replay {file:?} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("replay --json prints JSON")
}

/// util_avg fidelity of the busiest task named `comm` in a replay summary:
/// (samples, exact fraction, within-1 fraction, max |err|).
pub fn task_util(summary: &serde_json::Value, comm: &str) -> (u64, f64, f64, u64) {
    let t = summary["per_task"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["comm"] == comm)
        .unwrap_or_else(|| panic!("no task {comm} among the busiest: {summary:#}"));
    let u = &t["util_avg"];
    (
        u["samples"].as_u64().unwrap(),
        u["exact_fraction"].as_f64().unwrap(),
        u["within1_fraction"].as_f64().unwrap(),
        u["max_abs_err"].as_u64().unwrap(),
    )
}

/// The row `key` of `experiment findings --json`.
pub fn finding_row(v: &serde_json::Value, key: &str) -> serde_json::Value {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}: {v:#}"))
        .clone()
}

/// Runs `schedrec ARGS` (shell words) under `ulimit -f LIMIT`, so that its
/// writes past the limit fail (EFBIG) as they would on a full disk (ENOSPC),
/// and checks the one line that must say so and what the file keeps. The
/// file stays at most LIMIT KiB (the unit is 1 KiB in bash, 512 bytes in
/// dash).
pub fn full_disk_error(limit: u32, args: &str) -> String {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit}; exec '{}' {args}",
            env!("CARGO_BIN_EXE_schedrec")
        ))
        .output()
        .unwrap();
    let err = one_line_error(&o);
    assert!(
        err.contains("too large") && err.contains("keeps the"),
        "{err}"
    );
    err
}
