//! `schedrec record`: load the BPF programs, drain their per-CPU buffers
//! and ring buffer into a trace file, account for losses, stop cleanly.

use std::cell::RefCell;
use std::io::{IsTerminal, Write as _};
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, Link, MapCore, MapFlags, RingBufferBuilder};
use schedrec_format::{self as fmt, CounterInfo, PeltMode, Record, Writer, WriterOptions};

use crate::events::{convert, pcb_record_len, Shape, CPU_STATE_LEN};
use crate::pcb;
use crate::perf::{self, CounterSpec};
use crate::skel::*;
use crate::{host, Error};

#[derive(Clone, Debug)]
pub struct Options {
    pub output: PathBuf,
    pub pelt: PeltMode,
    /// Counter names (see `perf::parse_counter`); empty records none.
    pub counters: Vec<String>,
    pub cpus: Option<Vec<u32>>,
    /// Record only these processes (and what they fork).
    pub tgids: Vec<u32>,
    pub duration: Option<Duration>,
    /// `-- CMD ARGS`: run it, stop when it exits, return its exit code.
    pub command: Vec<String>,
    /// Record only the command and its descendants.
    pub only_command: bool,
    /// Record only tasks in these cgroup v2 directories (and the
    /// directories below them when the recording starts).
    pub cgroups: Vec<std::path::PathBuf>,
    pub quiet: bool,
    /// Use raw_tp/sched_switch even where tp_btf works (tests the fallback).
    pub force_raw_tp: bool,
    /// Nice value of the recorder's threads (negative: ahead of the workload).
    pub nice: i32,
    /// Attach everything but have the switch and wakeup programs return at
    /// once (`bench overhead`'s floor: the kernel's cost of the hooks).
    pub hooks_only: bool,
    /// Size of each CPU's buffer in MiB (default: 64 MiB over all CPUs, at
    /// least 1 and at most 32 per CPU).
    pub buffer_mib: Option<u32>,
    /// The recorder's own command line, for the header.
    pub command_line: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub records: u64,
    pub switches: u64,
    pub lost: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// How the recorded command ended: its exit code (128 + signal if killed).
    pub exit_code: Option<i32>,
    pub attached_to: &'static str,
    pub counters_unavailable: Vec<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn bpf_error(what: &str, e: libbpf_rs::Error) -> Error {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    match e.kind() {
        // The verifier also answers EACCES: for root that is a rejected
        // program, not a missing privilege.
        ErrorKind::PermissionDenied if !root => Error::NotPermitted,
        ErrorKind::PermissionDenied => Error::Bpf(format!(
            "{what}: the kernel's verifier rejected a BPF program ({e}); \
             run with SCHEDREC_BPF_DEBUG=1 for its log and report it"
        )),
        _ => Error::Bpf(format!("{what}: {e}")),
    }
}

/// Shared between the ring-buffer callback and the loop around it.
struct Sink {
    writer: Writer,
    shape: Shape,
    records: u64,
    switches: u64,
    bad: u64,
    /// Bytes of the per-CPU buffers skipped as undecodable.
    bad_bytes: u64,
    failed: Option<fmt::Error>,
}

impl Sink {
    fn push(&mut self, r: &Record) -> i32 {
        if self.failed.is_some() {
            return -1;
        }
        if let Err(e) = self.writer.push(r) {
            self.failed = Some(e);
            return -1;
        }
        self.records += 1;
        0
    }
}

/// The recorded command. It is started after every program is attached;
/// with `--only-cmd` its pid enters the filter right after exec, so a fork
/// in its first microseconds could escape the filter.
struct Child {
    child: std::process::Child,
}

/// Starts `cmd` at nice `nice` (the recorder's own before it raised its
/// drain thread's priority: the command must not inherit that).
fn spawn(cmd: &[String], nice: libc::c_int) -> Result<Child, Error> {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(&cmd[0]);
    c.args(&cmd[1..]);
    // SAFETY: setpriority is async-signal-safe; between fork and exec it
    // touches only the child.
    unsafe {
        c.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, nice);
            Ok(())
        });
    }
    let child = c
        .spawn()
        .map_err(|e| Error::Command(format!("cannot run {:?}: {e}", cmd[0])))?;
    Ok(Child { child })
}

/// The names of schedrec's BPF programs as the kernel reports them (at most
/// 15 bytes: `BPF_OBJ_NAME_LEN`), from the generated skeleton. Opening the
/// object only parses it: no privileges needed.
pub fn program_names() -> Result<Vec<String>, Error> {
    let mut obj = MaybeUninit::uninit();
    let open = SchedrecSkelBuilder::default()
        .open(&mut obj)
        .map_err(|e| bpf_error("opening the BPF object", e))?;
    Ok(open
        .open_object()
        .progs()
        .map(|p| {
            let mut n = p.name().to_string_lossy().into_owned();
            n.truncate(15);
            n
        })
        .collect())
}

/// Opens the BPF object, sets its read-only configuration, and loads it
/// with either the tp_btf or the raw_tp sched_switch program.
fn setup<'o>(
    obj: &'o mut MaybeUninit<libbpf_rs::OpenObject>,
    btf: bool,
    opts: &Options,
    ctr_mask: u32,
    nr_cpus: u32,
) -> Result<SchedrecSkel<'o>, Error> {
    let mut open = SchedrecSkelBuilder::default()
        .open(obj)
        .map_err(|e| bpf_error("opening the BPF object", e))?;
    let chunks = pcb::chunks_per_cpu(nr_cpus, opts.buffer_mib);
    let entries = nr_cpus.checked_mul(chunks).ok_or_else(|| {
        Error::Usage(format!(
            "--buffer-mib: {chunks} chunks for each of {nr_cpus} CPUs is too many"
        ))
    })?;
    open.maps
        .pcb
        .set_max_entries(entries)
        .and_then(|_| open.maps.pcb_pos.set_max_entries(nr_cpus))
        .map_err(|e| bpf_error("sizing the per-CPU buffers", e))?;
    // The ring buffer carries the rarer records: tasks and migrations, and
    // with --pelt full the kernel's PELT update streams (several records
    // per switch), which get the bigger one.
    if opts.pelt == PeltMode::Full {
        open.maps
            .events
            .set_max_entries(64 << 20)
            .map_err(|e| bpf_error("sizing the ring buffer", e))?;
    }
    let ro = open
        .maps
        .rodata_data
        .as_deref_mut()
        .ok_or_else(|| Error::Bpf("BPF read-only data not mapped".into()))?;
    ro.pelt_mode = match opts.pelt {
        PeltMode::Off => 0,
        PeltMode::Switch => 1,
        PeltMode::Full => 2,
    };
    ro.ctr_mask = ctr_mask;
    ro.pcb_chunks = chunks;
    ro.hooks_only = opts.hooks_only as u32;
    ro.filter_tasks = (opts.only_command || !opts.tgids.is_empty()) as u32;
    ro.filter_cpus = opts.cpus.is_some() as u32;
    ro.filter_cgroups = !opts.cgroups.is_empty() as u32;
    open.progs.switch_btf.set_autoload(btf);
    open.progs.switch_raw.set_autoload(!btf);
    open.progs.wakeup_btf.set_autoload(btf);
    open.progs.wakeup_new_btf.set_autoload(btf);
    open.progs.wakeup_raw.set_autoload(!btf);
    open.progs.wakeup_new_raw.set_autoload(!btf);
    let full = opts.pelt == PeltMode::Full;
    open.progs.pelt_se.set_autoload(full);
    open.progs.pelt_cfs.set_autoload(full);
    open.load()
        .map_err(|e| bpf_error("loading the BPF programs", e))
}

/// cgroup v2's filesystem magic (statfs f_type).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The cgroup v2 ids (directory inode numbers) of `dir` and every
/// directory below it.
pub fn cgroup_ids(dir: &std::path::Path) -> Result<Vec<u64>, Error> {
    use std::os::unix::fs::MetadataExt;
    let bad = |why: String| Error::Usage(format!("--cgroup {}: {why}", dir.display()));
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| bad("the path contains a NUL byte".into()))?;
    // SAFETY: an all-zero statfs is valid; statfs fills it from a C string we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(bad(std::io::Error::last_os_error().to_string()));
    }
    if st.f_type as i64 != CGROUP2_SUPER_MAGIC {
        return Err(bad(
            "not a cgroup v2 directory (look under the cgroup2 mount: `mount -t cgroup2`)".into(),
        ));
    }
    let mut ids = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::metadata(&d).map_err(|e| bad(e.to_string()))?;
        ids.push(m.ino());
        for e in std::fs::read_dir(&d)
            .map_err(|e| bad(e.to_string()))?
            .flatten()
        {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    Ok(ids)
}

pub fn record(opts: &Options) -> Result<Summary, Error> {
    // libbpf's own messages would add lines to our one-line errors; show
    // them only when asked (SCHEDREC_BPF_DEBUG=1).
    if std::env::var_os("SCHEDREC_BPF_DEBUG").is_none() {
        libbpf_rs::set_print(None);
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(Error::NoBtf);
    }
    let mut cgroup_ids_all = vec![];
    for d in &opts.cgroups {
        cgroup_ids_all.extend(cgroup_ids(d)?);
    }
    let nr_cpus = libbpf_rs::num_possible_cpus().map_err(|e| Error::Bpf(e.to_string()))? as u32;
    let online = host::online_cpus();
    let cpus: Vec<u32> = match &opts.cpus {
        Some(list) => {
            if let Some(c) = list.iter().find(|&&c| c >= nr_cpus) {
                return Err(Error::Usage(format!(
                    "CPU {c} does not exist (this host has {nr_cpus})"
                )));
            }
            list.clone()
        }
        None => online.clone(),
    };

    // Counters: open what the host can count; say once what it cannot.
    let specs: Vec<CounterSpec> = opts
        .counters
        .iter()
        .map(|n| perf::parse_counter(n).map_err(Error::Usage))
        .collect::<Result<_, _>>()?;
    if specs.len() > 4 {
        return Err(Error::Usage("at most 4 counters".into()));
    }
    let slots = perf::open_slots(&specs, &online);
    let mut counters_unavailable = Vec::new();
    let mut shape = Shape {
        counters: [false; 4],
        pelt: opts.pelt,
    };
    for (k, s) in slots.iter().enumerate() {
        match &s.unavailable {
            None => shape.counters[k] = true,
            Some(why) => counters_unavailable.push(format!("{} ({why})", s.spec.name)),
        }
    }
    let ctr_mask = (0..4)
        .filter(|&k| shape.counters[k])
        .fold(0u32, |m, k| m | 1 << k);

    // Load: tp_btf/sched_switch where the kernel has it, else raw_tp.
    let mut obj_btf = MaybeUninit::uninit();
    let mut obj_raw = MaybeUninit::uninit();
    let (mut skel, attached_to) = if opts.force_raw_tp {
        (
            setup(&mut obj_raw, false, opts, ctr_mask, nr_cpus)?,
            "raw_tp/sched_switch",
        )
    } else {
        match setup(&mut obj_btf, true, opts, ctr_mask, nr_cpus) {
            Ok(s) => (s, "tp_btf/sched_switch"),
            Err(Error::NotPermitted) => return Err(Error::NotPermitted),
            Err(_) => (
                setup(&mut obj_raw, false, opts, ctr_mask, nr_cpus)?,
                "raw_tp/sched_switch",
            ),
        }
    };

    let attach = |p: &mut libbpf_rs::ProgramMut, tp: &str| -> Result<Link, Error> {
        p.attach().map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Error::NotPermitted,
            _ => Error::Bpf(format!("attaching to the {tp} tracepoint failed: {e}")),
        })
    };
    let mut links = Vec::new();
    if attached_to.starts_with("tp_btf") {
        links.push(attach(&mut skel.progs.switch_btf, "sched_switch")?);
    } else {
        links.push(attach(&mut skel.progs.switch_raw, "sched_switch")?);
    }
    if attached_to.starts_with("tp_btf") {
        links.push(attach(&mut skel.progs.wakeup_btf, "sched_wakeup")?);
        links.push(attach(&mut skel.progs.wakeup_new_btf, "sched_wakeup_new")?);
    } else {
        links.push(attach(&mut skel.progs.wakeup_raw, "sched_wakeup")?);
        links.push(attach(&mut skel.progs.wakeup_new_raw, "sched_wakeup_new")?);
    }
    links.push(attach(&mut skel.progs.migrate, "sched_migrate_task")?);
    links.push(attach(&mut skel.progs.proc_fork, "sched_process_fork")?);
    links.push(attach(&mut skel.progs.proc_exec, "sched_process_exec")?);
    links.push(attach(&mut skel.progs.proc_exit, "sched_process_exit")?);
    links.push(attach(&mut skel.progs.task_rename, "task_rename")?);
    if opts.pelt == PeltMode::Full {
        links.push(attach(&mut skel.progs.pelt_se, "pelt_se_tp")?);
        links.push(attach(&mut skel.progs.pelt_cfs, "pelt_cfs_tp")?);
    }
    // CPU frequency events exist only with cpufreq; their absence is not an error.
    if let Ok(l) = skel.progs.cpu_frequency.attach() {
        links.push(l);
    }

    // Loaded and attached: only now is a counter warning worth a line (a
    // user without privileges gets the one error that matters).
    if !counters_unavailable.is_empty() && !opts.quiet {
        eprintln!(
            "schedrec: warning: counters unavailable, recording without them: {}",
            counters_unavailable.join(", ")
        );
    }
    // Counter fds, per CPU.
    let ctr_maps = [
        &skel.maps.ctr0,
        &skel.maps.ctr1,
        &skel.maps.ctr2,
        &skel.maps.ctr3,
    ];
    for (k, slot) in slots.iter().enumerate() {
        for (cpu, fd) in slot.fd_pairs() {
            ctr_maps[k]
                .update(
                    &cpu.to_ne_bytes(),
                    &(fd as u32).to_ne_bytes(),
                    MapFlags::ANY,
                )
                .map_err(|e| bpf_error("installing perf counters", e))?;
        }
    }
    if opts.cpus.is_some() {
        for &c in &cpus {
            skel.maps
                .cpu_filter
                .update(&c.to_ne_bytes(), &[1u8], MapFlags::ANY)
                .map_err(|e| bpf_error("setting the CPU filter", e))?;
        }
    }
    for id in &cgroup_ids_all {
        skel.maps
            .cgroup_filter
            .update(&id.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| bpf_error("setting the cgroup filter", e))?;
    }
    let one = 1u32.to_ne_bytes();
    for t in &opts.tgids {
        skel.maps
            .tracked
            .update(&t.to_ne_bytes(), &one, MapFlags::ANY)
            .map_err(|e| bpf_error("setting the process filter", e))?;
    }

    // The drain loop must keep up with every CPU's switches while the host
    // is saturated: run it (and the writer thread, created below, which
    // inherits it) at a higher priority than the workload. The command,
    // started just before the loop, gets the priority we had before.
    // SAFETY: gettid and getpriority have no preconditions; Linux nice is
    // per thread, and only this thread's is read and set.
    let tid = unsafe { libc::gettid() } as libc::id_t;
    let base_nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if opts.nice != 0 {
        // SAFETY: setpriority on this thread only.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, opts.nice) } != 0 && !opts.quiet {
            eprintln!(
                "schedrec: warning: cannot set nice {} for the recorder: {}",
                opts.nice,
                std::io::Error::last_os_error()
            );
        }
    }
    // Only now, with everything attached, create the output (mode 0600).
    let mut meta = host::metadata(nr_cpus, opts.pelt, opts.command_line.clone());
    meta.counters = slots
        .iter()
        .map(|s| CounterInfo {
            name: s.spec.name.clone(),
            available: s.unavailable.is_none(),
        })
        .collect();
    meta.extra
        .push(("recorder.sched_switch".into(), attached_to.into()));
    if let Some(list) = &opts.cpus {
        meta.extra.push((
            "recorder.cpus".into(),
            list.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    // The drain loop must never wait for the disk (a stalled write or sync
    // would stop it while the kernel buffers overflow): flushes run in the
    // background, and up to 128 sealed chunks may queue while the disk
    // catches up. A chunk is held raw, 8 bytes per column per record
    // (16 k records): ~2 MiB for a switch chunk, ~4 MiB with --pelt full,
    // so a long stall at the highest switch rates holds up to ~250 MiB
    // (~500 MiB) before the drain waits too.
    let wopts = WriterOptions {
        queue_depth: 128,
        ..WriterOptions::default()
    };
    let writer =
        Writer::create(&opts.output, &meta, wopts).map_err(|e| Error::Output(e.to_string()))?;
    let stats = writer.stats();
    let sink = Rc::new(RefCell::new(Sink {
        writer,
        shape,
        records: 0,
        switches: 0,
        bad: 0,
        bad_bytes: 0,
        failed: None,
    }));
    // cpufreq only reports changes: each selected CPU's frequency as the
    // recording starts (the programs are attached, so a change from here
    // on follows this record), for replays that scale the PELT clock. (On
    // older x86 kernels reading scaling_cur_freq interrupts the CPU once.)
    let now = host::clock_ns(libc::CLOCK_MONOTONIC);
    for (cpu, freq_khz) in host::current_freqs_khz(&cpus) {
        sink.borrow_mut().push(&Record::CpuFreq(fmt::CpuFreq {
            ts: now,
            cpu,
            target_cpu: cpu,
            freq_khz,
        }));
    }

    let mut rbb = RingBufferBuilder::new();
    {
        let sink = sink.clone();
        rbb.add(&skel.maps.events, move |data: &[u8]| {
            let mut s = sink.borrow_mut();
            let shape = s.shape;
            match convert(data, &shape) {
                Some(r) => {
                    if matches!(r, Record::Switch(_)) {
                        s.switches += 1;
                    }
                    s.push(&r)
                }
                None => {
                    s.bad += 1;
                    0
                }
            }
        })
        .map_err(|e| bpf_error("setting up the ring buffer", e))?;
    }
    let rb = rbb
        .build()
        .map_err(|e| bpf_error("setting up the ring buffer", e))?;
    let mut pcb = pcb::PerCpuBuffers::map(
        &skel.maps.pcb,
        &skel.maps.pcb_pos,
        nr_cpus,
        pcb::chunks_per_cpu(nr_cpus, opts.buffer_mib),
    )
    .map_err(|e| Error::Bpf(format!("mapping the per-CPU buffers: {e}")))?;
    // The switch and wakeup records, from every CPU's buffer.
    let drain = |pcb: &mut pcb::PerCpuBuffers, sink: &Rc<RefCell<Sink>>| {
        let mut s = sink.borrow_mut();
        let shape = s.shape;
        let bad_bytes = pcb.drain(
            |kind| pcb_record_len(kind, &shape),
            |data| match convert(data, &shape) {
                Some(r) => {
                    if matches!(r, Record::Switch(_)) {
                        s.switches += 1;
                    }
                    s.push(&r);
                }
                None => s.bad += 1,
            },
        );
        s.bad_bytes += bad_bytes;
    };

    // The command, as late as possible: everything else is set up, and its
    // first events are drained within 10 ms (were the output or the buffers
    // set up after it, a busy command could fill small per-CPU buffers
    // before the first drain).
    let mut child = if opts.command.is_empty() {
        None
    } else {
        // A command that cannot start leaves no trace file behind (the
        // writer, dropped on the way out, finishes an unlinked file).
        let mut c = spawn(&opts.command, base_nice).inspect_err(|_| {
            let _ = std::fs::remove_file(&opts.output);
        })?;
        if opts.only_command {
            if let Err(e) =
                skel.maps
                    .tracked
                    .update(&c.child.id().to_ne_bytes(), &one, MapFlags::ANY)
            {
                let _ = c.child.kill();
                let _ = std::fs::remove_file(&opts.output);
                return Err(bpf_error("setting the process filter", e));
            }
        }
        Some(c)
    };

    STOP.store(false, Ordering::SeqCst);
    install_signal_handlers();
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal() && !opts.quiet;
    let mut lost_seen = vec![0u64; nr_cpus as usize];
    let mut last_check_ns = host::clock_ns(libc::CLOCK_MONOTONIC);
    let mut lost_total = 0u64;
    let mut last_flush = Instant::now();
    let mut last_records = 0u64;
    let mut exit_code = None;
    let mut loss_check = |sink: &Rc<RefCell<Sink>>| -> Result<u64, Error> {
        let now = host::clock_ns(libc::CLOCK_MONOTONIC);
        let per_cpu = skel
            .maps
            .cpu_state
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| bpf_error("reading loss counters", e))?
            .unwrap_or_default();
        let mut new = 0;
        for (cpu, v) in per_cpu.iter().enumerate() {
            if v.len() < CPU_STATE_LEN || cpu >= lost_seen.len() {
                continue;
            }
            let lost = u64::from_ne_bytes(v[96..104].try_into().unwrap());
            let last_ts = u64::from_ne_bytes(v[104..112].try_into().unwrap());
            if lost > lost_seen[cpu] {
                let count = lost - lost_seen[cpu];
                lost_seen[cpu] = lost;
                new += count;
                sink.borrow_mut().push(&Record::Loss(fmt::Loss {
                    ts: last_check_ns.min(last_ts),
                    cpu: cpu as u32,
                    end_ts: last_ts.max(last_check_ns),
                    count,
                }));
            }
        }
        last_check_ns = now;
        Ok(new)
    };
    loop {
        // The per-CPU buffers wake no one: they are drained on this timer
        // (a busy CPU fills 1 MiB in ~17 ms at 400 k switches/s).
        match rb.poll(Duration::from_millis(10)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(bpf_error("reading the ring buffer", e)),
        }
        // Records are submitted without wake-ups: drain on the timer too.
        let _ = rb.consume();
        drain(&mut pcb, &sink);
        if sink.borrow().failed.is_some() {
            break;
        }
        let mut done = STOP.load(Ordering::SeqCst);
        if let Some(d) = opts.duration {
            // A command that was told the same duration gets a moment to
            // finish on its own (and print its report) before it is stopped.
            let grace = if child.is_some() {
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            };
            if start.elapsed() >= d + grace {
                done = true;
            }
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                exit_code = Some(
                    status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
                );
                done = true;
            }
        }
        if done || last_flush.elapsed() >= Duration::from_secs(1) {
            lost_total += loss_check(&sink)?;
            let mut s = sink.borrow_mut();
            if s.failed.is_none() {
                if let Err(e) = s.writer.flush_background() {
                    s.failed = Some(e);
                }
            }
            last_flush = Instant::now();
            if tty {
                let secs = start.elapsed().as_secs_f64();
                eprint!(
                    "\rrecording: {secs:.0} s, {:.1} k events/s, {lost_total} lost, {:.1} MiB   ",
                    (s.records - last_records) as f64 / 1e3,
                    stats.bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
                );
                let _ = std::io::stderr().flush();
            }
            last_records = s.records;
        }
        if done {
            break;
        }
    }
    if tty {
        eprintln!();
    }
    // Stop the kernel side before the last drain. Detaching does not wait
    // for a program already running on another CPU: give it time to
    // publish its record (microseconds) so that the drain sees it.
    drop(links);
    std::thread::sleep(Duration::from_millis(10));
    let _ = rb.consume();
    drain(&mut pcb, &sink);
    lost_total += loss_check(&sink)?;
    drop(rb);
    let sink = Rc::try_unwrap(sink)
        .map_err(|_| Error::Bpf("ring buffer still referenced".into()))?
        .into_inner();
    if let Some(c) = child.as_mut() {
        if exit_code.is_none() {
            // Stopped by a signal or --duration: stop the command too. The
            // recording ended as asked, so its exit code is not ours.
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.child.id() as i32, libc::SIGTERM) };
            let _ = c.child.wait();
        }
    }
    if let Some(e) = sink.failed {
        // The writer closed the file at the last complete chunk.
        let _ = sink.writer.finish();
        return Err(Error::Output(e.to_string()));
    }
    if sink.bad > 0 || sink.bad_bytes > 0 {
        eprintln!(
            "schedrec: warning: {} records and {} bytes of the per-CPU buffers could not be decoded (BPF object and recorder disagree?)",
            sink.bad, sink.bad_bytes
        );
    }
    let bytes = sink
        .writer
        .finish()
        .map_err(|e| Error::Output(e.to_string()))?;
    drop(slots); // the perf events stay open until here
    Ok(Summary {
        records: sink.records,
        switches: sink.switches,
        lost: lost_total,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        exit_code,
        attached_to,
        counters_unavailable,
    })
}

#[cfg(test)]
mod tests {
    /// The skeleton lists every program of the BPF source: the function
    /// after each `SEC("...")` line (what `bench overhead` reads bpf_stats
    /// for).
    #[test]
    fn program_names_are_the_sources_programs() {
        let src = include_str!("../../bpf/schedrec.bpf.c");
        let mut want: Vec<String> = src
            .lines()
            .zip(src.lines().skip(1))
            .filter(|(l, _)| l.starts_with("SEC(\"") && !l.starts_with("SEC(\".maps"))
            .filter_map(|(_, next)| {
                let args = next.split_once("BPF_PROG(")?.1;
                Some(args.split([',', ')']).next()?.trim().to_string())
            })
            .collect();
        let mut got = super::program_names().unwrap();
        want.sort();
        got.sort();
        assert!(want.len() >= 14, "{want:?}");
        assert_eq!(got, want);
        assert!(got.iter().all(|n| n.len() <= 15));
    }
}
