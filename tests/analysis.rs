//! `schedrec analyze`, `export` and `report` end to end on the committed
//! real recordings.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn run(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_schedrec"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "schedrec {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn analyze_classifies_and_compares_traces() {
    let mixed = fixture("mixed-pelt-full.sched");
    let periodic = fixture("periodic-16ms-50pct-full.sched");
    let out = run(&[
        "analyze",
        mixed.to_str().unwrap(),
        periodic.to_str().unwrap(),
        "--json",
        "--top",
        "20",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let traces = v["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    let class_of = |t: usize, comm: &str| {
        traces[t]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["comm"] == comm)
            .map(|x| x["class"].as_str().unwrap().to_string())
    };
    assert_eq!(class_of(0, "hog").as_deref(), Some("cpu-bound"));
    assert_eq!(class_of(0, "io").as_deref(), Some("io-bound"));
    assert_eq!(class_of(1, "periodic").as_deref(), Some("periodic"));
    for t in traces {
        let classes: Vec<&str> = t["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["class"].as_str().unwrap())
            .collect();
        assert_eq!(classes, ["cpu-bound", "io-bound", "periodic", "bursty"]);
    }
    // Text: both traces, then the side-by-side class biases.
    let text = run(&[
        "analyze",
        mixed.to_str().unwrap(),
        periodic.to_str().unwrap(),
    ]);
    assert!(text.contains("bias per class, side by side"), "{text}");
}

#[test]
fn export_writes_every_table() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture("periodic-16ms-50pct.sched");
    run(&[
        "export",
        f.to_str().unwrap(),
        "--format",
        "csv",
        "-o",
        tmp.path().to_str().unwrap(),
    ]);
    let info: serde_json::Value =
        serde_json::from_str(&run(&["info", f.to_str().unwrap(), "--json"])).unwrap();
    for table in ["switches", "slices", "wakeups", "tasks", "pelt", "replay"] {
        let text = std::fs::read_to_string(tmp.path().join(format!("{table}.csv"))).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.starts_with(match table {
                "slices" | "tasks" => "pid,",
                _ => "ts,",
            }),
            "{table}: {header}"
        );
        if table == "switches" {
            assert_eq!(
                text.lines().count() as u64 - 1,
                info["switches"].as_u64().unwrap()
            );
        }
        if table == "slices" {
            assert!(
                header.contains("end_state") && header.contains("ipc"),
                "{header}"
            );
        }
    }
    // Parquet into a dataset.
    run(&[
        "export",
        f.to_str().unwrap(),
        "--dataset",
        tmp.path().join("ds").to_str().unwrap(),
    ]);
    let trace_dir = std::fs::read_dir(tmp.path().join("ds"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(trace_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("host="));
    assert!(trace_dir
        .join("trace=periodic-16ms-50pct")
        .join("replay.parquet")
        .exists());
}

#[test]
fn report_is_one_self_contained_page() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture("mixed-pelt-full.sched");
    let out = run(&[
        "report",
        f.to_str().unwrap(),
        "-o",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(out.contains("index.html"));
    let html = std::fs::read_to_string(tmp.path().join("index.html")).unwrap();
    for want in [
        "<svg",
        "Replay fidelity",
        "CPU timeline",
        "<td>hog (29454)</td><td>cpu-bound</td>",
        "<td>io (29457)</td><td>io-bound</td>",
        "-estimated by",
    ] {
        assert!(html.contains(want), "missing {want}");
    }
    // Nothing to fetch: the only URL is the SVG namespace.
    let urls = html.matches("http").count();
    let ns = html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(urls, ns, "external references in the report");
    assert!(!html.contains("<script"));
}

#[test]
fn bad_input_is_one_clear_line() {
    for cmd in ["analyze", "export", "report"] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_schedrec"));
        c.arg(cmd).arg("/nonexistent/x.sched");
        if cmd != "analyze" {
            c.args(["-o", "/tmp/schedrec-never-written"]);
        }
        common::one_line_error(&c.output().unwrap());
    }
}
