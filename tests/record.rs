//! Real recordings (root, BPF, BTF): what `schedrec record` writes must
//! agree with what the kernel and the workloads report. Without privileges
//! these tests say so on stderr and skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use schedrec_format::{Filter, Kind, Reader, Record, TaskEvent};

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_schedrec")
}

/// Recordings run one at a time: they see the whole machine, and a
/// pingpong in one test would disturb the periodic task of another.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this test can record; says why not, loudly, when it cannot.
fn can_record(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: recording needs root (CAP_BPF + CAP_PERFMON); CI runs as root");
        return false;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("SKIPPED {test}: this kernel has no BTF (/sys/kernel/btf/vmlinux)");
        return false;
    }
    true
}

fn record(out: &Path, args: &[&str]) -> std::process::Output {
    let o = Command::new(exe())
        .arg("record")
        .arg("-q")
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("run schedrec record");
    assert!(
        o.status.success(),
        "schedrec record {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn records(path: &Path) -> Vec<Record> {
    let r = Reader::open(path).unwrap();
    assert!(r.is_complete(), "{:?}", r.recovery());
    r.records(Filter::default()).map(|x| x.unwrap()).collect()
}

#[test]
fn periodic_task_is_recorded_with_its_duty_cycle_and_pelt() {
    if !can_record("periodic_task_is_recorded_with_its_duty_cycle_and_pelt") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.sched");
    record(
        &out,
        &[
            "--duration",
            "3",
            "--workload",
            "periodic --period-ms 16 --duty 0.5 --cpu 0",
        ],
    );
    let recs = records(&out);
    let pid = common::pid_of(&recs, "periodic");
    // From its first sleep on: the thread pins itself when it starts.
    let mine: Vec<&schedrec_format::Switch> = common::switches(&recs)
        .filter(|s| s.prev.pid == pid || s.next.pid == pid)
        .skip_while(|s| !(s.prev.pid == pid && s.prev_state != 0))
        .skip(1)
        .collect();
    // ~187 periods in 3 s, each a switch in and a switch out, all on CPU 0.
    assert!(
        mine.len() >= 2 * 170,
        "only {} switches of the workload",
        mine.len()
    );
    assert!(
        mine.iter().all(|s| s.cpu == 0),
        "the pinned task ran elsewhere"
    );
    // Duty cycle from the trace alone.
    let (mut run, mut since, mut first, mut last) = (0u64, None, None, 0u64);
    for s in &mine {
        if s.next.pid == pid {
            since = Some(s.ts);
            first.get_or_insert(s.ts);
        } else if let Some(t) = since.take() {
            run += s.ts - t;
            last = s.ts;
        }
    }
    let duty = run as f64 / (last - first.unwrap()) as f64;
    assert!((duty - 0.5).abs() <= 0.05, "duty from the trace: {duty:.3}");
    // The kernel's util_avg at switch-out, after the first 0.5 s, stays in
    // PELT's envelope for 16 ms / 50 % (469..554, pelt-reference.md §7) ± 30.
    let t0 = first.unwrap() + 500_000_000;
    let utils: Vec<u64> = mine
        .iter()
        .filter(|s| s.prev.pid == pid && s.ts > t0)
        .map(|s| {
            s.prev_pelt
                .expect("--pelt switch records prev's PELT")
                .util_avg
        })
        .collect();
    assert!(utils.len() > 100);
    // A VM's interrupts and steal occasionally stretch one run phase: allow
    // 1 % of samples outside the band. (Each run phase also lasts a little
    // more than the 8 ms of CPU the thread asks for — the scheduler and
    // syscall paths count as running for PELT — so the dequeue values sit
    // a few units above 554.)
    let inside = utils
        .iter()
        .filter(|&&u| (469 - 30..=554 + 30).contains(&u))
        .count();
    let mut sorted = utils.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!(
        inside * 100 >= utils.len() * 99,
        "only {inside} of {} util_avg samples in 439..584: {sorted:?}",
        utils.len()
    );
    assert!(
        (469 - 30..=554 + 30).contains(&median),
        "median util_avg {median}"
    );
    // Its metadata came once (fork/rename/exit), not per switch.
    let task_recs = recs
        .iter()
        .filter(|r| matches!(r, Record::Task(t) if t.pid == pid))
        .count();
    assert!(task_recs <= 5, "{task_recs} task records for one thread");
    let info: serde_json::Value = serde_json::from_slice(
        &Command::new(exe())
            .args(["info", "--json", out.to_str().unwrap()])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(info["lost_events"], 0, "{info}");
}

#[test]
fn pingpong_switches_match_the_kernels_count() {
    if !can_record("pingpong_switches_match_the_kernels_count") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pp.sched");
    let o = record(
        &out,
        &[
            "--no-counters",
            "--workload",
            "pingpong --duration 2 --json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = records(&out);
    let losses: u64 = recs
        .iter()
        .map(|r| match r {
            Record::Loss(l) => l.count,
            _ => 0,
        })
        .sum();
    assert_eq!(losses, 0, "events were lost");
    for t in report["threads"].as_array().unwrap() {
        let tid = t["tid"].as_u64().unwrap() as u32;
        let kernel =
            t["voluntary_switches"].as_u64().unwrap() + t["involuntary_switches"].as_u64().unwrap();
        let traced = recs
            .iter()
            .filter(|r| matches!(r, Record::Switch(s) if s.prev.pid == tid))
            .count() as u64;
        assert!(kernel > 10_000, "{t}");
        // The thread reads its counters just before it exits; the exit
        // path switches out once or twice more.
        let diff = traced.abs_diff(kernel) as f64 / kernel as f64;
        assert!(
            diff <= 0.01,
            "tid {tid}: {traced} switches traced, kernel counted {kernel}"
        );
    }
}

#[test]
fn small_per_cpu_buffers_wrap_without_garbling_records() {
    // 1 MiB per CPU holds ~10 k switch records: a 2 s pingpong wraps it
    // dozens of times, through every chunk boundary and padding rule of
    // bpf/schedrec.h. A reader out of step with the BPF side would decode
    // garbage: the switches of each CPU must chain (each one's `prev` is
    // the previous one's `next`) except across a counted loss.
    if !can_record("small_per_cpu_buffers_wrap_without_garbling_records") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wrap.sched");
    let o = record(
        &out,
        &[
            "--no-counters",
            "--buffer-mib",
            "1",
            "--workload",
            "pingpong --duration 2 --cpu 0",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("could not be decoded"), "{stderr}");
    let recs = records(&out);
    let losses: u64 = recs
        .iter()
        .map(|r| match r {
            Record::Loss(l) if l.cpu == 0 => l.count,
            _ => 0,
        })
        .sum();
    let cpu0: Vec<_> = recs
        .iter()
        .filter_map(|r| match r {
            Record::Switch(s) if s.cpu == 0 => Some(s),
            _ => None,
        })
        .collect();
    let bytes = cpu0.len() * 88;
    assert!(bytes > 8 << 20, "only {} switches on CPU 0", cpu0.len());
    let breaks = cpu0
        .windows(2)
        .filter(|w| w[0].next.pid != w[1].prev.pid)
        .count();
    // A switch the tracepoint never sees (a VM-agent thread's, now and
    // then) breaks the chain too; a garbled buffer would break most links.
    assert!(
        breaks as u64 <= losses + 10,
        "{breaks} breaks in {} switches, {losses} losses",
        cpu0.len()
    );
}

#[test]
fn sigkill_leaves_a_readable_file_missing_at_most_a_second() {
    if !can_record("sigkill_leaves_a_readable_file_missing_at_most_a_second") {
        return;
    }
    let _serial = serial();
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("k.sched");
    let mut child = Command::new(exe())
        .args(["record", "-q", "--no-counters", "-o"])
        .arg(&out)
        .args(["--workload", "hog --duration 60"])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills ts; kill signals our own process group.
    let killed_at = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        libc::kill(-(child.id() as i32), libc::SIGKILL);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let _ = child.wait();
    let r = Reader::open(&out).unwrap();
    assert!(
        !r.is_complete(),
        "a killed recorder cannot have written the footer"
    );
    assert!(
        r.recovery().unwrap().contains("no footer"),
        "{:?}",
        r.recovery()
    );
    let last = r
        .records(Filter::default())
        .map(|x| x.unwrap().ts())
        .max()
        .unwrap();
    let missing = killed_at.saturating_sub(last);
    assert!(
        missing <= 1_300_000_000,
        "the file ends {:.2} s before the kill",
        missing as f64 / 1e9
    );
    assert!(
        r.records(Filter {
            kinds: Some(vec![Kind::Switch]),
            ..Default::default()
        })
        .count()
            > 100
    );
}

#[test]
fn full_disk_stops_with_one_line_and_keeps_what_fit() {
    // A file-size limit makes the writer's writes fail (EFBIG), as a full
    // disk does (ENOSPC). The writer runs in the background, so the failure
    // reaches the drain loop at its next flush: the recording must stop
    // within seconds with one clear line, stop the command, and leave a
    // readable file holding what fit.
    if !can_record("full_disk_stops_with_one_line_and_keeps_what_fit") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("full.sched");
    let started = std::time::Instant::now();
    common::full_disk_error(
        512,
        &format!(
            "record -q --pelt full -o '{}' --workload 'pingpong --duration 30'",
            out.display()
        ),
    );
    // Stopped by the failure, not by the end of the 30 s workload.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size <= 512 * 1024, "{size}");
    let r = Reader::open(&out).unwrap();
    let switches = r
        .records(Filter {
            kinds: Some(vec![Kind::Switch]),
            ..Default::default()
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("every chunk that is there decodes")
        .len();
    assert!(switches > 1000, "{switches}");
}

#[test]
fn without_privileges_a_clear_error_and_no_file() {
    if !can_record("without_privileges_a_clear_error_and_no_file") {
        return;
    }
    let _serial = serial();
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        eprintln!("SKIPPED without_privileges_a_clear_error_and_no_file: setpriv (util-linux) not installed");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // SAFETY: chmod on our own temp dir, so that user nobody may write there.
    let dir: PathBuf = tmp.path().to_path_buf();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = dir.join("x.sched");
    let o = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(exe())
        .args(["record", "--duration", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = common::one_line_error(&o);
    assert!(err.contains("root") && err.contains("CAP_BPF"), "{err}");
    assert!(!out.exists(), "a file was created");
}

#[test]
fn task_metadata_follows_fork_exec_and_exit() {
    if !can_record("task_metadata_follows_fork_exec_and_exit") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t.sched");
    record(
        &out,
        &[
            "--no-counters",
            "--",
            "sh",
            "-c",
            "sleep 0.2; /bin/true; sleep 0.1",
        ],
    );
    let recs = records(&out);
    let tasks: Vec<&schedrec_format::Task> = common::tasks(&recs).collect();
    let find = |comm: &str, ev: TaskEvent| {
        tasks
            .iter()
            .any(|t| t.comm == comm.as_bytes() && t.event == ev)
    };
    assert!(find("sh", TaskEvent::Exec), "no exec of sh");
    assert!(find("true", TaskEvent::Exec), "no exec of true");
    assert!(find("true", TaskEvent::Exit), "no exit of true");
    assert!(tasks.iter().any(|t| t.event == TaskEvent::Fork), "no fork");
}

#[test]
fn raw_tp_fallback_records_the_same_fields() {
    if !can_record("raw_tp_fallback_records_the_same_fields") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("raw.sched");
    record(
        &out,
        &[
            "--raw-tp",
            "--duration",
            "1",
            "--workload",
            "periodic --period-ms 10 --duty 0.3 --cpu 1",
        ],
    );
    let r = Reader::open(&out).unwrap();
    assert_eq!(
        r.meta().extra("recorder.sched_switch"),
        Some("raw_tp/sched_switch")
    );
    let recs = records(&out);
    let pid = common::pid_of(&recs, "periodic");
    let outs: Vec<u64> = common::switches(&recs)
        .filter(|s| s.prev.pid == pid)
        .filter_map(|s| s.prev_pelt.map(|p| p.util_avg))
        .collect();
    assert!(outs.len() > 50);
    assert!(
        outs.iter().any(|&u| u > 100),
        "util_avg never rose: {outs:?}"
    );
}

#[test]
fn software_counters_exercise_the_counter_path() {
    // No hardware PMU in CI's VM, but cpu-clock is a real perf event read by
    // the same BPF code (bpf_perf_event_read_value, per-slice deltas).
    if !can_record("software_counters_exercise_the_counter_path") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.sched");
    record(
        &out,
        &[
            "--counters",
            "cpu-clock,cycles",
            "--duration",
            "1",
            "--workload",
            "periodic --period-ms 10 --duty 0.4 --cpu 1",
        ],
    );
    let r = Reader::open(&out).unwrap();
    let c = &r.meta().counters;
    assert_eq!(c.len(), 2);
    assert!(c[0].name == "cpu-clock" && c[0].available, "{c:?}");
    let recs = records(&out);
    let pid = common::pid_of(&recs, "periodic");
    // For the periodic task's run slices on CPU 1, cpu-clock counts the
    // slice's nanoseconds: within 5 % of the time between the switches.
    let (mut since, mut checked) = (None, 0);
    for rec in &recs {
        let Record::Switch(s) = rec else { continue };
        if s.cpu != 1 {
            continue;
        }
        if let (Some(t), true) = (since, s.prev.pid == pid) {
            let ctr = s.counters[0].expect("cpu-clock recorded");
            assert!(s.counters[1].is_none() || c[1].available);
            let slice = s.ts - t;
            if slice > 1_000_000 && ctr.enabled > 0 {
                let err = (ctr.value as f64 - slice as f64).abs() / slice as f64;
                assert!(err < 0.05, "slice {slice} ns, cpu-clock {} ns", ctr.value);
                assert!(ctr.running <= ctr.enabled);
                checked += 1;
            }
        }
        since = Some(s.ts);
    }
    assert!(checked > 30, "only {checked} slices checked");
}

#[test]
fn cpu_and_command_filters_apply_in_bpf() {
    if !can_record("cpu_and_command_filters_apply_in_bpf") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    // --cpus: only CPU 1's switches.
    let out = tmp.path().join("cpu1.sched");
    record(
        &out,
        &[
            "--no-counters",
            "--cpus",
            "1",
            "--duration",
            "1",
            "--workload",
            "periodic --cpu 1",
        ],
    );
    let recs = records(&out);
    let switches: Vec<u32> = common::switches(&recs).map(|s| s.cpu).collect();
    assert!(switches.len() > 50);
    assert!(
        switches.iter().all(|&c| c == 1),
        "a switch of another CPU was recorded"
    );
    // --only-cmd: only switches in or out of the command's processes.
    let out = tmp.path().join("cmd.sched");
    record(
        &out,
        &[
            "--no-counters",
            "--only-cmd",
            "--",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do sleep 0.05; done",
        ],
    );
    let recs = records(&out);
    let tgids: std::collections::BTreeSet<u32> = common::tasks(&recs).map(|t| t.tgid).collect();
    let mut n = 0;
    for r in &recs {
        if let Record::Switch(s) = r {
            assert!(
                tgids.contains(&s.prev.tgid) || tgids.contains(&s.next.tgid),
                "switch of unrelated tasks {}->{}",
                s.prev.pid,
                s.next.pid
            );
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} switches of the command");
    // The command and its children (sh, sleep) only.
    let comms: std::collections::BTreeSet<Vec<u8>> =
        common::tasks(&recs).map(|t| t.comm.clone()).collect();
    assert!(comms.contains(b"sleep".as_slice()), "{comms:?}");
}

#[test]
fn tgid_filter_keeps_one_process() {
    if !can_record("tgid_filter_keeps_one_process") {
        return;
    }
    let _serial = serial();
    // A process to follow, started before the recording.
    let mut target = Command::new(exe())
        .args([
            "workload",
            "periodic",
            "--period-ms",
            "10",
            "--duty",
            "0.2",
            "--duration",
            "3",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let tgid = target.id();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tgid.sched");
    record(
        &out,
        &[
            "--no-counters",
            "--tgid",
            &tgid.to_string(),
            "--duration",
            "1",
        ],
    );
    let _ = target.kill();
    let _ = target.wait();
    let recs = records(&out);
    let mut n = 0;
    for r in &recs {
        if let Record::Switch(s) = r {
            assert!(
                s.prev.tgid == tgid || s.next.tgid == tgid,
                "switch {}->{} of another process",
                s.prev.pid,
                s.next.pid
            );
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} switches of process {tgid}");
}

/// Replays a fresh recording and checks the kernel-exact model against the
/// kernel's own util_avg for the workload's task(s).
#[test]
fn replay_reproduces_the_live_kernel() {
    if !can_record("replay_reproduces_the_live_kernel") {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let periodic = "periodic --period-ms 16 --duty 0.5 --cpu 0";
    // (pelt mode, workload, seconds, tasks, exact floor, within-1 floor, max |err|)
    // With --pelt full the kernel's tick updates are in the trace: exact.
    // With --pelt switch ticks are emulated on the HZ grid; a tick whose
    // real clock read falls on the other side of a PELT period boundary
    // than the estimate moves one period's growth (≈ 8 at util 550) to the
    // next update, at about 1 % of switch-outs: no max bound there.
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], f64, f64, u64);
    let cases: [Case; 4] = [
        // The floor. (Silent ticks are emulated at estimated times:
        // ±1 at 0–1.5 % of samples; live runs 99.5–100 %.)
        ("full", periodic, "3", &["periodic"], 0.99, 0.995, 1),
        // (Live runs: 93–99 % exact, ≥ 99.5 % within ±1; one CI run under
        // load, before the fixes of this version, 91.7 %.)
        ("switch", periodic, "3", &["periodic"], 0.90, 0.98, 1024),
        (
            "switch",
            "step --duties 0.1,0.8,0.1 --step-ms 700 --period-ms 16 --cpu 0",
            "2.2",
            &["step"],
            0.90,
            0.98,
            1024,
        ),
        (
            "full",
            "mixed",
            "2",
            &["hog", "periodic", "burst", "io", "ping", "pong"],
            // Silent ticks (no boundary crossed, no sample) are emulated at
            // estimated times; where the kernel's fell elsewhere the sums
            // round differently: ±1, mostly on the CPU-bound hog. A load-
            // balance attach is at an estimated time (an isolated 2–3).
            // Live runs: every task 95.5–100 % exact, ≥ 99.93 % within ±1.
            0.95,
            0.995,
            4,
        ),
    ];
    for (i, (pelt, workload, secs, tasks, floor, w1_floor, max_err)) in cases.iter().enumerate() {
        // One recording judged; a miss is said on stderr and the workload
        // recorded once more (a `--pelt switch` recording's emulated ticks
        // can land on the wrong side of a period boundary for a stretch):
        // two misses in a row fail.
        let judge = |attempt: usize| -> Result<(), String> {
            let out = tmp.path().join(format!("r{i}-{attempt}.sched"));
            record(
                &out,
                &["--pelt", pelt, "--duration", secs, "--workload", workload],
            );
            // A missed recording is kept for a look (target/tmp/).
            let keep = |e: String| {
                let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("missed-{pelt}-case{i}-{attempt}.sched"));
                match std::fs::copy(&out, &kept) {
                    Ok(_) => format!("{e} (recording kept: {})", kept.display()),
                    Err(c) => format!("{e} (keeping the recording failed: {c})"),
                }
            };
            let s = common::replay_json(&out, &[]);
            let rows = s["rows"].as_f64().unwrap();
            let reanchors = s["reanchors"].as_f64().unwrap();
            // Live runs: 0.02–0.05 % with --pelt full, up to 2.6 % with
            // --pelt switch (a 3 s periodic recording has only ~950 rows).
            if reanchors > 0.04 * rows {
                return Err(keep(format!(
                    "{pelt} {workload}: {reanchors} re-anchors in {rows} rows"
                )));
            }
            for comm in *tasks {
                let (n, exact, w1, max) = common::task_util(&s, comm);
                eprintln!(
                    "replay {pelt} {workload}: {comm}: {n} samples, {exact:.4} exact, {w1:.4} within 1, max {max}"
                );
                assert!(n >= 50, "{pelt} {workload} {comm}: only {n} samples");
                let msg = format!(
                    "{pelt} {workload} {comm}: {exact:.4} exact (floor {floor}), {w1:.4} within 1 (floor {w1_floor}), max |err| {max} (≤ {max_err})"
                );
                if !(exact >= *floor && w1 >= *w1_floor && max <= *max_err) {
                    return Err(keep(msg));
                }
            }
            if *pelt == "full" {
                // Each CPU's root run-queue as the sum of its tasks (README,
                // "Root run-queues"). Live runs: periodic 94.8–96.8 % exact,
                // 98.3–99.3 % within ±2; mixed (its threads migrate, and
                // sit in an autogroup; 10 runs) 43.3–62.4 % exact,
                // 84.9–94.7 % within ±2. util_est at the root is the
                // enqueued tasks' own, and inherits their misses: 92–99 %
                // on those runs, but 85–88 % on two CI recordings where the
                // periodic task's own util_est was only 84–86 % exact (it
                // ran through a switch the trace missed; README).
                let (exact_floor, w2_floor) = if *workload == "mixed" {
                    (0.35, 0.80)
                } else {
                    (0.90, 0.95)
                };
                let ue_floor = 0.80;
                let r = &s["root"];
                let get = |m: &str, k: &str| r[m][k].as_f64().unwrap_or(-1.0);
                let (exact, w2, ue) = (
                    get("util_avg", "exact_fraction"),
                    get("util_avg", "within2_fraction"),
                    get("util_est", "exact_fraction"),
                );
                eprintln!(
                    "replay {pelt} {workload}: root util_avg {exact:.4} exact, {w2:.4} within 2; util_est {ue:.4} exact"
                );
                if !(exact >= exact_floor && w2 >= w2_floor && ue >= ue_floor) {
                    return Err(keep(format!(
                        "{pelt} {workload}: root util_avg {exact:.4} exact (floor {exact_floor}), {w2:.4} within 2 (floor {w2_floor}), util_est {ue:.4} exact (floor {ue_floor})"
                    )));
                }
            }
            Ok(())
        };
        if let Err(first) = judge(0) {
            eprintln!("MISSED once (recording again): {first}");
            if let Err(second) = judge(1) {
                panic!("missed twice in a row:\n  {first}\n  {second}");
            }
        }
    }
}

/// `experiment findings` records its three scenarios for real and measures
/// the kernel's own estimates: ramp-up after a burst and convergence after
/// a step match PELT's closed form.
#[test]
fn findings_experiment_records_and_measures() {
    if !can_record("findings_experiment_records_and_measures") {
        return;
    }
    let _g = serial();
    // One measurement judged; a miss is said on stderr and the experiment
    // run once more (one repetition on a shared 2-vCPU VM: a CI run once
    // measured the step's convergence at 114 ms against 138): two misses
    // in a row fail.
    let measure = || -> Result<(), String> {
        let o = Command::new(exe())
            .args([
                "experiment",
                "findings",
                "--reps",
                "1",
                "--seconds",
                "3",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["source"], "recorded on this machine", "{v:#}");
        let row = |k: &str| common::finding_row(&v, k);
        for (k, tol) in [("burst_util_t80", 5.0), ("step_up_util", 20.0)] {
            let r = row(k);
            let (m, t) = (r["median"].as_f64(), r["theory"].as_f64());
            let (Some(m), Some(t)) = (m, t) else {
                return Err(format!("{k} not measured: {v:#}"));
            };
            if (m - t).abs() > tol {
                return Err(format!("{k}: measured {m}, theory {t} (± {tol})"));
            }
        }
        // The ramps are the kernel's own values, not interpolation.
        let n = row("burst_samples_in_ramp")["median"]
            .as_f64()
            .unwrap_or(0.0);
        if n < 20.0 {
            return Err(format!("only {n} kernel samples per ramp"));
        }
        // The I/O task's time average is its duty cycle within 10 %.
        let io = row("io_util_bias")["median"]
            .as_f64()
            .ok_or("io bias not measured")?;
        if io.abs() >= 10.0 {
            return Err(format!("io bias {io} %"));
        }
        Ok(())
    };
    if let Err(first) = measure() {
        eprintln!("MISSED once (measuring again): {first}");
        if let Err(second) = measure() {
            panic!("missed twice in a row:\n  {first}\n  {second}");
        }
    }
}

/// The cgroup v2 mount point, if the host has one.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
    })
}

/// --cgroup: only switches in or out of the cgroup's tasks reach the file.
#[test]
fn cgroup_filter_applies_in_bpf() {
    if !can_record("cgroup_filter_applies_in_bpf") {
        return;
    }
    let Some(mnt) = cgroup2_mount() else {
        eprintln!("SKIPPED cgroup_filter_applies_in_bpf: no cgroup2 filesystem mounted");
        return;
    };
    let _serial = serial();
    let dir = mnt.join(format!("schedrec-test-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        eprintln!(
            "SKIPPED cgroup_filter_applies_in_bpf: cannot create a cgroup under {}: {e}",
            mnt.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cg.sched");
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} workload periodic --period-ms 10 --duty 0.3 --duration 1.5 -q",
        dir.display(),
        exe()
    );
    let o = Command::new(exe())
        .args(["record", "-q", "--no-counters", "-o"])
        .arg(&out)
        .arg("--cgroup")
        .arg(&dir)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = records(&out);
    let tgid = common::tasks(&recs)
        .find(|t| t.comm == b"periodic")
        .expect("the workload's thread is recorded")
        .tgid;
    let mut n = 0;
    for s in common::switches(&recs) {
        assert!(
            s.prev.tgid == tgid || s.next.tgid == tgid,
            "switch outside the cgroup: {} -> {}",
            s.prev.pid,
            s.next.pid
        );
        n += 1;
    }
    // ~150 periods of 10 ms, each a switch in and out.
    assert!(n >= 200, "only {n} switches of the cgroup's tasks");
    // A path that is not a cgroup v2 directory: one clear line.
    let o = Command::new(exe())
        .args(["record", "-q", "-o"])
        .arg(tmp.path().join("x.sched"))
        .args(["--cgroup", "/tmp", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a cgroup v2 directory"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_command_runs_at_its_own_priority_and_a_bad_one_leaves_no_file() {
    if !can_record("the_command_runs_at_its_own_priority_and_a_bad_one_leaves_no_file") {
        return;
    }
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    // The recorder's drain thread runs at nice -10 (its default); the
    // command it starts must not inherit that, but run at the nice the
    // recorder was started with (this test's own, whatever CI runs it at).
    let ours = Command::new("nice").output().unwrap();
    let ours = String::from_utf8_lossy(&ours.stdout).trim().to_string();
    assert_ne!(
        ours, "-10",
        "the test itself runs at the drain thread's nice"
    );
    let out = tmp.path().join("nice.sched");
    let said = tmp.path().join("nice.txt");
    let script = format!("nice > {}", said.display());
    record(&out, &["--nice", "-10", "--", "sh", "-c", &script]);
    assert_eq!(std::fs::read_to_string(&said).unwrap().trim(), ours);
    assert!(!records(&out).is_empty());
    // A command that cannot start: one line, non-zero, and no file.
    let bad = tmp.path().join("bad.sched");
    let o = Command::new(exe())
        .args(["record", "-q", "-o"])
        .arg(&bad)
        .args(["--", "/nonexistent/command"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let line = common::one_line_error(&o);
    assert!(line.contains("cannot run"), "{line}");
    assert!(!bad.exists(), "a file was left behind");
}
