//! End-to-end tests of the `schedrec` binary: what a user types, what they see.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_schedrec"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run schedrec")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "schedrec {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command expected to fail: exit code 1, exactly one line on
/// stderr starting with "schedrec: error:", no panic.
fn fails(args: &[&str]) -> String {
    common::one_line_error(&run(args))
}

fn synth(dir: &Path, spec: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{spec}.sched"));
    let spec = root().join("fixtures/synth").join(format!("{spec}.toml"));
    let mut args = vec!["synth", spec.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    ok(&args);
    out
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn synth_info_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let f = synth(tmp.path(), "mixed", &[]);
    let f = f.to_str().unwrap();

    let info = json(&ok(&["info", f, "--json"]));
    for key in [
        "format_version",
        "complete",
        "records",
        "switches",
        "lost_events",
        "start_ns",
        "end_ns",
        "cpus",
        "file_bytes",
        "bytes_per_switch",
    ] {
        assert!(info.get(key).is_some(), "info --json lacks {key}: {info}");
    }
    assert_eq!(info["format_version"], "1.0");
    assert_eq!(info["complete"], true);
    assert_eq!(info["cpus"], 2);
    assert_eq!(info["lost_events"], 0);
    let switches = info["switches"].as_u64().unwrap();
    assert!(switches > 1000, "{info}");
    assert_eq!(info["records"]["switch"].as_u64().unwrap(), switches);
    assert_eq!(
        info["file_bytes"].as_u64().unwrap(),
        std::fs::metadata(f).unwrap().len()
    );

    // dump --jsonl: one object per record, in time order, all kinds.
    let dump = ok(&["dump", f, "--jsonl"]);
    let lines: Vec<serde_json::Value> = dump.lines().map(json).collect();
    let total: u64 = info["records"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(lines.len() as u64, total);
    assert!(lines
        .windows(2)
        .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()));
    assert_eq!(lines[0]["ts"], info["start_ns"]);

    // Filters.
    let sw = ok(&["dump", f, "--jsonl", "--kind", "switch", "--cpu", "1"]);
    assert!(sw.lines().count() > 100);
    assert!(sw
        .lines()
        .map(json)
        .all(|v| v["kind"] == "switch" && v["cpu"] == 1));
    let start = info["start_ns"].as_u64().unwrap();
    let to = (start + 100_000_000).to_string();
    let early = ok(&["dump", f, "--jsonl", "--to", &to]);
    assert!(early
        .lines()
        .map(json)
        .all(|v| v["ts"].as_u64().unwrap() <= start + 100_000_000));
    assert_eq!(ok(&["dump", f, "--limit", "7"]).lines().count(), 7);
    let pid = ok(&["dump", f, "--jsonl", "--pid", "1002", "--kind", "wakeup"]);
    assert!(pid.lines().count() > 10);
    assert!(pid.lines().map(json).all(|v| v["pid"] == 1002));

    // Human output names tasks.
    let text = ok(&["dump", f, "--kind", "switch", "--limit", "50"]);
    assert!(text.contains("hog/1000"), "{text}");
    let human = ok(&["info", f]);
    assert!(
        human.contains("complete") && human.contains("bytes/switch"),
        "{human}"
    );
}

#[test]
fn synth_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let a = std::fs::read(synth(tmp.path(), "periodic", &["--seed", "5"])).unwrap();
    let b = std::fs::read(synth(tmp.path(), "periodic", &["--seed", "5"])).unwrap();
    assert_eq!(a, b);
    let c = std::fs::read(synth(tmp.path(), "mixed", &["--seed", "5"])).unwrap();
    let d = std::fs::read(synth(tmp.path(), "mixed", &["--seed", "6"])).unwrap();
    assert_ne!(c, d);
}

#[test]
fn every_example_spec_works() {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(root().join("fixtures/synth")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let f = synth(tmp.path(), &name, &[]);
            let info = json(&ok(&["info", f.to_str().unwrap(), "--json"]));
            assert!(info["switches"].as_u64().unwrap() > 0, "{name}");
        }
    }
}

#[test]
fn periodic_spec_has_the_asked_duty_cycle() {
    // 16 ms period, 50 % duty, pinned to CPU 0: measured from the trace.
    let tmp = tempfile::tempdir().unwrap();
    let f = synth(tmp.path(), "periodic", &[]);
    let dump = ok(&[
        "dump",
        f.to_str().unwrap(),
        "--jsonl",
        "--kind",
        "switch",
        "--pid",
        "1000",
    ]);
    let (mut run, mut on, mut first, mut last) = (0u64, None::<u64>, None, 0);
    for v in dump.lines().map(json) {
        let ts = v["ts"].as_u64().unwrap();
        assert_eq!(v["cpu"], 0);
        if v["next"]["pid"] == 1000 {
            on = Some(ts);
            first.get_or_insert(ts);
        } else if let Some(t) = on.take() {
            run += ts - t;
            last = ts;
        }
    }
    let duty = run as f64 / (last - first.unwrap()) as f64;
    assert!((duty - 0.5).abs() < 0.01, "duty {duty}");
}

#[test]
fn errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.sched");
    let e = fails(&["info", missing.to_str().unwrap()]);
    assert!(e.contains("No such file"), "{e}");

    let junk = tmp.path().join("junk.sched");
    std::fs::write(&junk, b"this is not a trace at all, not even close").unwrap();
    let e = fails(&["dump", junk.to_str().unwrap()]);
    assert!(e.contains("not a schedrec trace"), "{e}");

    let good = synth(tmp.path(), "periodic", &[]);
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[8] = 9; // major version 9
    let v9 = tmp.path().join("v9.sched");
    std::fs::write(&v9, &bytes).unwrap();
    let e = fails(&["info", v9.to_str().unwrap()]);
    assert!(e.contains("9.0") && e.contains("1.x"), "{e}");

    let e = fails(&["dump", good.to_str().unwrap(), "--kind", "bogus"]);
    assert!(e.contains("unknown kind"), "{e}");

    let bad_spec = tmp.path().join("bad.toml");
    std::fs::write(&bad_spec, "cpus = 0\n[[task]]\nname='x'\nkind='hog'\n").unwrap();
    let out = tmp.path().join("o.sched");
    let e = fails(&[
        "synth",
        bad_spec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("cpus"), "{e}");

    // Unwritable output.
    let e = fails(&[
        "synth",
        root()
            .join("fixtures/synth/periodic.toml")
            .to_str()
            .unwrap(),
        "-o",
        "/proc/nope/x.sched",
    ]);
    assert!(e.contains("/proc/nope/x.sched"), "{e}");
}

#[test]
fn damaged_files_are_reported_not_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let good = synth(tmp.path(), "mixed", &["--chunk-records", "256"]);
    let bytes = std::fs::read(&good).unwrap();

    // Truncated (a killed recorder): info and dump work on what is there.
    let cut = tmp.path().join("cut.sched");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let info = json(&ok(&["info", cut.to_str().unwrap(), "--json"]));
    assert_eq!(info["complete"], false);
    assert!(
        info["recovery"].as_str().unwrap().contains("truncated"),
        "{info}"
    );
    let o = run(&["dump", cut.to_str().unwrap(), "--jsonl"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("incomplete"));
    assert!(!o.stdout.is_empty());

    // A flipped bit in a chunk payload: dump fails naming the chunk.
    let r = schedrec_format::Reader::open(&good).unwrap();
    let c = r.chunks()[3];
    let mut flipped = bytes.clone();
    flipped[(c.payload_offset() + 5) as usize] ^= 0x10;
    let bad = tmp.path().join("flip.sched");
    std::fs::write(&bad, &flipped).unwrap();
    let e = fails(&["dump", bad.to_str().unwrap(), "--jsonl"]);
    assert!(e.contains("chunk 3 ") && e.contains("checksum"), "{e}");
}

#[test]
fn dump_into_a_closed_pipe_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let f = synth(tmp.path(), "mixed", &[]);
    let mut child = bin()
        .args(["dump", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `| head -0`
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn golden_vectors_dump_as_committed() {
    // The CLI's --jsonl is the vectors' expected output, byte for byte.
    let dir = root().join("format-spec/vectors");
    for name in ["v1-kinds", "v1-switch-full-zstd", "v1-recovered"] {
        let got = ok(&[
            "dump",
            dir.join(format!("{name}.sched")).to_str().unwrap(),
            "--jsonl",
        ]);
        let want = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn full_disk_keeps_what_fit() {
    // A file-size limit makes writes fail with EFBIG, as a full disk fails
    // with ENOSPC: the writer must stop with one clear error and leave a
    // readable file holding everything that fit.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("big.sched");
    let spec = tmp.path().join("long.toml");
    let text = std::fs::read_to_string(root().join("fixtures/synth/busy-host.toml")).unwrap();
    std::fs::write(
        &spec,
        text.replace("duration_ms = 2000", "duration_ms = 30000"),
    )
    .unwrap();
    common::full_disk_error(
        256,
        &format!(
            "synth '{}' -o '{}' --chunk-records 1024",
            spec.display(),
            out.display()
        ),
    );
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size <= 256 * 1024, "{size}");
    let info = json(&ok(&["info", out.to_str().unwrap(), "--json"]));
    assert!(info["switches"].as_u64().unwrap() > 1000, "{info}");
    // Every chunk that is there decodes.
    let dump = ok(&["dump", out.to_str().unwrap(), "--jsonl"]);
    assert!(dump.lines().count() > 1000);
}

#[test]
fn replay_of_a_trace_damaged_mid_file_stops_with_one_line() {
    // The records are read on a thread of their own: an error there must
    // end the replay with the reader's message, not hang or panic.
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/mixed-pelt-full.sched");
    let mut bytes = std::fs::read(&src).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    let bad = dir.path().join("bad.sched");
    std::fs::write(&bad, bytes).unwrap();
    let err = fails(&["replay", bad.to_str().unwrap(), "--json", "--quiet"]);
    assert!(err.contains("chunk") && err.contains("checksum"), "{err}");
}
