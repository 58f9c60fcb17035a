//! `schedrec replay` on the committed real recordings: the kernel-exact
//! model must reproduce the kernel's own PELT values. These need no root;
//! `tests/record.rs` checks the same on fresh recordings. The floors are
//! what the replay reaches on these files (README, "Replay fidelity"),
//! rounded down.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{replay_json, task_util};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn metric(s: &serde_json::Value, m: &str, key: &str) -> f64 {
    s[m][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{m}.{key} in {s:#}"))
}

fn reanchor_rate(s: &serde_json::Value) -> f64 {
    s["reanchors"].as_f64().unwrap() / s["rows"].as_f64().unwrap()
}

#[test]
fn full_pelt_periodic_is_reproduced_bit_for_bit() {
    let s = replay_json(&fixture("periodic-16ms-50pct-full.sched"), &[]);
    assert_eq!(s["clock"], "pelt");
    assert_eq!(s["hz"], 250);
    let (n, exact, _, max) = task_util(&s, "periodic");
    assert!(n > 1000, "{n} samples");
    assert!(
        exact >= 0.995 && max <= 1,
        "periodic: exact {exact}, max {max}"
    );
    assert!(metric(&s, "util_avg", "exact_fraction") >= 0.995, "{s:#}");
    assert!(metric(&s, "util_avg", "max_abs_err") <= 1.0, "{s:#}");
    assert!(
        metric(&s, "runnable_avg", "exact_fraction") >= 0.999,
        "{s:#}"
    );
    assert!(metric(&s, "util_est", "exact_fraction") >= 0.99, "{s:#}");
    assert!(reanchor_rate(&s) <= 0.01, "{s:#}");
}

#[test]
fn full_pelt_mixed_workload_is_reproduced() {
    // Two CPUs saturated: hog, pingpong, periodic, burst and io at once,
    // with migrations, preemptions and delayed dequeues.
    let s = replay_json(&fixture("mixed-pelt-full.sched"), &[]);
    assert!(metric(&s, "util_avg", "exact_fraction") >= 0.995, "{s:#}");
    assert!(metric(&s, "util_avg", "within1_fraction") >= 0.999, "{s:#}");
    assert!(metric(&s, "util_avg", "max_abs_err") <= 2.0, "{s:#}");
    assert!(
        metric(&s, "runnable_avg", "exact_fraction") >= 0.98,
        "{s:#}"
    );
    assert!(metric(&s, "util_est", "exact_fraction") >= 0.99, "{s:#}");
    assert!(reanchor_rate(&s) <= 0.005, "{s:#}");
    for comm in ["hog", "periodic", "io", "ping", "pong", "burst"] {
        let (n, exact, _, max) = task_util(&s, comm);
        assert!(n >= 400, "{comm}: {n} samples");
        assert!(
            exact >= 0.98 && max <= 2,
            "{comm}: exact {exact}, max {max}"
        );
    }
}

/// Each CPU's root run-queue, rebuilt as the sum of its tasks' exact
/// states, against the kernel's `pelt_cfs_tp` samples (README, "Root
/// run-queues").
#[test]
fn root_run_queues_are_the_sum_of_their_tasks() {
    let root = |name: &str, args: &[&str]| replay_json(&fixture(name), args)["root"].clone();
    let m = |r: &serde_json::Value, metric: &str, key: &str| {
        r[metric][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{metric}.{key} in {r:#}"))
    };
    for (name, exact, within2, util_est) in [
        ("periodic-16ms-50pct-full.sched", 0.92, 0.97, 0.98),
        ("mixed-pelt-full.sched", 0.47, 0.89, 0.98),
    ] {
        let r = root(name, &[]);
        let samples = r["samples"].as_f64().unwrap();
        assert!(samples > 1000.0, "{name}: {r:#}");
        assert!(
            r["reanchors"].as_f64().unwrap() <= 0.03 * samples,
            "{name}: {r:#}"
        );
        assert!(
            m(&r, "util_avg", "exact_fraction") >= exact,
            "{name}: {r:#}"
        );
        assert!(
            m(&r, "util_avg", "within2_fraction") >= within2,
            "{name}: {r:#}"
        );
        assert!(
            m(&r, "util_est", "exact_fraction") >= util_est,
            "{name}: {r:#}"
        );
        // This VM runs autogroup: group entities, so load_avg and
        // runnable_avg are not judged.
        assert_eq!(r["task_groups"], true, "{name}: {r:#}");
        assert!(r["load_avg"].is_null(), "{name}: {r:#}");
        assert!(r["runnable_avg"].is_null(), "{name}: {r:#}");
    }
    // Without every update in the trace there is nothing to sum.
    assert!(root("mixed-pelt-full.sched", &["--as-switch"]).is_null());
    assert!(root("periodic-16ms-50pct.sched", &[]).is_null());
}

/// `replay -o` writes each root sample as a row (pid 0, event `cfs_rq`),
/// in time order with the tasks' rows, and the summary is those rows'.
#[test]
fn root_samples_are_rows() {
    let (stdout, text) = replay_csv("periodic-16ms-50pct-full.sched", &["--json"]);
    let s: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (ts, pid, event) = (col("ts"), col("pid"), col("event"));
    let (k, m, ex) = (
        col("kernel_util_avg"),
        col("exact_util_avg"),
        col("excluded"),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let times: Vec<u64> = rows.iter().map(|r| r[ts].parse().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "rows out of time order"
    );
    let root: Vec<&Vec<&str>> = rows.iter().filter(|r| r[event] == "cfs_rq").collect();
    assert!(root.iter().all(|r| r[pid] == "0"));
    let r = &s["root"];
    assert_eq!(root.len() as f64, r["samples"].as_f64().unwrap(), "{r:#}");
    assert_eq!(
        (rows.len() - root.len()) as f64,
        s["rows"].as_f64().unwrap(),
        "the summary's rows are the tasks'"
    );
    let judged: Vec<_> = root.iter().filter(|r| r[ex].is_empty()).collect();
    let exact = judged.iter().filter(|r| r[k] == r[m]).count();
    assert_eq!(
        judged.len() as f64,
        r["util_avg"]["samples"].as_f64().unwrap(),
        "{r:#}"
    );
    assert!(
        (exact as f64 / judged.len() as f64 - r["util_avg"]["exact_fraction"].as_f64().unwrap())
            .abs()
            < 1e-12
    );
}

#[test]
fn switch_pelt_recordings_are_reproduced() {
    // --pelt switch: no sums (rebuilt from the averages; the window position
    // follows from last_update_time), no pick times (derived from the clock
    // rules), ticks emulated on the HZ grid. After an anchor from averages
    // alone samples are judged from the first wakeup that crossed a period
    // boundary (or 168 ms later).
    for (file, comm) in [
        ("periodic-16ms-50pct.sched", "periodic"),
        ("step-10-80-10.sched", "step"),
    ] {
        let s = replay_json(&fixture(file), &[]);
        let (n, exact, _, max) = task_util(&s, comm);
        assert!(n >= 300, "{file}: {n} samples");
        assert!(
            exact >= 0.97 && max <= 1,
            "{file} {comm}: exact {exact}, max {max}"
        );
        assert!(reanchor_rate(&s) <= 0.01, "{file}: {s:#}");
    }
    // The same kernel seen through --pelt switch only.
    let s = replay_json(&fixture("periodic-16ms-50pct-full.sched"), &["--as-switch"]);
    let (_, exact, _, max) = task_util(&s, "periodic");
    assert!(
        exact >= 0.90 && max <= 2,
        "as switch: exact {exact}, max {max}"
    );
}

#[test]
fn trace_clock_alone_stays_within_two() {
    // Ignoring the kernel's PELT timestamps: steal time and the pick's
    // clock are then guessed from the trace clock.
    for (file, comm) in [
        ("periodic-16ms-50pct.sched", "periodic"),
        ("step-10-80-10.sched", "step"),
    ] {
        let s = replay_json(&fixture(file), &["--clock", "ktime"]);
        assert_eq!(s["clock"], "ktime");
        let t = s["per_task"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["comm"] == comm)
            .unwrap();
        let w2 = t["util_avg"]["within2_fraction"].as_f64().unwrap();
        assert!(w2 >= 0.90, "{file} {comm}: {w2} within ±2");
    }
}

#[test]
fn init_zero_converges_to_the_kernel() {
    let s = replay_json(
        &fixture("periodic-16ms-50pct-full.sched"),
        &["--init", "zero"],
    );
    assert!(s["excluded"]["warmup"].as_u64().unwrap() > 100, "{s:#}");
    let (_, exact, w1, _) = task_util(&s, "periodic");
    assert!(exact >= 0.99 && w1 >= 0.999, "exact {exact}, within1 {w1}");
}

/// Rows of the periodic task in `replay -o OUT.csv`.
/// `schedrec replay FIXTURE -o CSV ARGS`: its stdout and the CSV's text.
fn replay_csv(name: &str, args: &[&str]) -> (Vec<u8>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_schedrec"))
        .arg("replay")
        .arg(fixture(name))
        .arg("-o")
        .arg(&out)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (o.stdout, std::fs::read_to_string(&out).unwrap())
}

fn periodic_rows(args: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let (_, text) = replay_csv("periodic-16ms-50pct-full.sched", args);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<_> = lines
        .map(|l| {
            head.iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect::<std::collections::HashMap<_, _>>()
        })
        .collect();
    let pid = rows
        .iter()
        .filter(|r| r["event"] == "switch_out")
        .map(|r| r["pid"].clone())
        .fold(
            std::collections::HashMap::<String, u32>::new(),
            |mut m, p| {
                *m.entry(p).or_default() += 1;
                m
            },
        )
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap()
        .0;
    rows.into_iter().filter(|r| r["pid"] == pid).collect()
}

fn col(rows: &[std::collections::HashMap<String, String>], event: &str, c: &str) -> Vec<u64> {
    rows.iter()
        .filter(|r| r["event"] == event && r["excluded"].is_empty())
        .filter_map(|r| r[c].parse().ok())
        .collect()
}

#[test]
fn measured_utilisation_is_the_duty_cycle() {
    let rows = periodic_rows(&["--model", "measured", "--window-ms", "64"]);
    let m = col(&rows, "switch_out", "measured_util");
    assert!(m.len() > 100);
    let mean = m.iter().sum::<u64>() as f64 / m.len() as f64;
    // 8 ms of every 16 ms: 512 of 1024, whatever the window's phase.
    assert!((mean - 512.0).abs() < 25.0, "measured mean {mean}");
    // --model measured fills the model columns with it.
    assert_eq!(col(&rows, "switch_out", "model_util_avg"), m);
}

#[test]
fn shorter_halflife_swings_wider() {
    // Closed form for 8 ms run / 8 ms sleep: half-life 32 ms peaks near 554
    // (pelt-reference §7), half-life 8 ms at 1024·(1−½)/(1−¼) ≈ 683 and
    // falls to ≈ 341 while asleep.
    let rows = periodic_rows(&["--halflife", "8"]);
    let kmax = *col(&rows, "switch_out", "kernel_util_avg")
        .iter()
        .max()
        .unwrap();
    let mmax = *col(&rows, "switch_out", "model_util_avg")
        .iter()
        .max()
        .unwrap();
    let mmin = *col(&rows, "wakeup", "model_util_avg").iter().min().unwrap();
    assert!((540..=570).contains(&kmax), "kernel max {kmax}");
    assert!((650..=700).contains(&mmax), "half-life 8 max {mmax}");
    assert!(mmin <= 370, "half-life 8 min {mmin}");
    // The reference columns stay the kernel-exact model.
    let exact = col(&rows, "switch_out", "exact_util_avg");
    let kernel = col(&rows, "switch_out", "kernel_util_avg");
    let same = exact.iter().zip(&kernel).filter(|(a, b)| a == b).count();
    assert!(same as f64 >= 0.99 * kernel.len() as f64);
}

#[test]
fn bad_input_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.sched");
    std::fs::write(&bad, b"not a trace at all").unwrap();
    for args in [
        vec!["replay".to_string(), bad.display().to_string()],
        vec!["replay".into(), "/nonexistent/x.sched".into()],
        vec![
            "replay".into(),
            fixture("periodic-16ms-50pct.sched").display().to_string(),
            "-o".into(),
            tmp.path().join("x.txt").display().to_string(),
        ],
        vec![
            "replay".into(),
            fixture("periodic-16ms-50pct.sched").display().to_string(),
            "-o".into(),
            "/nonexistent/dir/x.csv".into(),
        ],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_schedrec"))
            .args(&args)
            .output()
            .unwrap();
        common::one_line_error(&o);
    }
}

#[test]
fn every_recorded_window_position_follows_from_last_update_time() {
    // The rule the replay uses where `--pelt switch` does not record
    // `period_contrib`: every sched_avg starts at last_update_time 0 and
    // period_contrib 0, both advance by the same whole 1024 ns units, and
    // attach copies both from the cfs_rq, so period_contrib ==
    // (last_update_time >> 10) % 1024 for every task, group entity and
    // run-queue. Checked on every state the kernel left in the `--pelt full`
    // fixtures.
    use schedrec_format::{Filter, Reader, Record};
    use schedrec_replay::pelt::lattice_period_contrib;
    let mut checked = 0u64;
    for name in [
        "periodic-16ms-50pct-full.sched",
        "mixed-pelt-full.sched",
        "io.sched",
        "burst-300-300.sched",
    ] {
        let r = Reader::open(fixture(name)).unwrap();
        for rec in r.records(Filter::default()) {
            let states = match rec.unwrap() {
                Record::Switch(s) => vec![(s.prev_pelt, s.prev_sums), (s.next_pelt, s.next_sums)],
                Record::Wakeup(w) => vec![(w.pelt, w.sums)],
                Record::Pelt(p) => vec![(Some(p.avg), p.sums)],
                _ => continue,
            };
            for (avg, sums) in states {
                let (Some(a), Some(s)) = (avg, sums) else {
                    continue;
                };
                if a.last_update_time == 0 {
                    continue; // idle, or never in the fair class
                }
                assert_eq!(
                    s.period_contrib,
                    lattice_period_contrib(a.last_update_time),
                    "{name}: {a:?} {s:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300_000, "{checked} states checked");
}

#[test]
fn writing_rows_changes_nothing_in_the_summary() {
    // Without -o the rows are neither ordered nor handed on (a faster path):
    // the summary must be the one of a replay that writes them, and the
    // file must hold every row the summary counts, in time order.
    let f = fixture("mixed-pelt-full.sched");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r.csv");
    let without = replay_json(&f, &[]);
    let with = replay_json(&f, &["-o", out.to_str().unwrap()]);
    assert_eq!(without, with);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let ts_col = head.iter().position(|&h| h == "ts").expect("a ts column");
    let ts: Vec<u64> = lines
        .map(|l| l.split(',').nth(ts_col).unwrap().parse().unwrap())
        .collect();
    // (The root run-queues' samples are rows too: `root_samples_are_rows`.)
    assert_eq!(
        ts.len() as u64,
        with["rows"].as_u64().unwrap() + with["root"]["samples"].as_u64().unwrap()
    );
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "rows out of time order"
    );
}
