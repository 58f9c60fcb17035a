//! What the trace header says about the recorded host.

use schedrec_format::{HzSource, Metadata, PeltMode, UtilEstLayout};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn kernel_release() -> String {
    read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// (major, minor) of a release string such as "6.18.44-foo".
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Parses a CPU list such as "0-3,8,10-11".
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list {s:?} (expected e.g. 0-3,8)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

pub fn online_cpus() -> Vec<u32> {
    read("/sys/devices/system/cpu/online")
        .and_then(|s| parse_cpu_list(&s).ok())
        .unwrap_or_default()
}

/// CONFIG_HZ from the kernel's config, when the host has it.
pub fn config_hz(release: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/boot/config-{release}"))
        .ok()
        .or_else(|| {
            let out = std::process::Command::new("gzip")
                .args(["-dc", "/proc/config.gz"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })?;
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
}

/// Pins the calling thread to `cpu`.
pub fn pin_thread(cpu: u32) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Local timer interrupts so far on `cpu` (the `LOC:` line of
/// /proc/interrupts, x86), if the kernel shows them.
fn local_timer_interrupts(cpu: u32) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/interrupts").ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = header.iter().position(|c| *c == format!("CPU{cpu}"))?;
    let loc = lines.find(|l| l.trim_start().starts_with("LOC:"))?;
    loc.split_whitespace().nth(1 + col)?.parse().ok()
}

/// The standard HZ nearest to a measured tick rate, if one is within 15 %.
pub fn nearest_hz(rate: f64) -> Option<u32> {
    [100u32, 250, 300, 1000]
        .into_iter()
        .min_by(|a, b| {
            (rate - *a as f64)
                .abs()
                .total_cmp(&(rate - *b as f64).abs())
        })
        .filter(|&hz| (rate - hz as f64).abs() <= 0.15 * hz as f64)
}

/// HZ measured where the kernel config is not available: a thread spins
/// for `ms` on one CPU (a busy CPU ticks at HZ even with NO_HZ_IDLE) while
/// its local timer interrupts are counted. `None` where /proc/interrupts
/// has no `LOC:` line (not x86) or the rate is no standard HZ (NO_HZ_FULL).
pub fn infer_hz(ms: u64) -> Option<u32> {
    std::thread::spawn(move || {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        if cpu < 0 {
            return None;
        }
        let cpu = cpu as u32;
        pin_thread(cpu).ok()?;
        let (n0, t0) = (
            local_timer_interrupts(cpu)?,
            clock_ns(libc::CLOCK_MONOTONIC),
        );
        let mut x = 0u64;
        while clock_ns(libc::CLOCK_MONOTONIC) - t0 < ms * 1_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (n1, t1) = (
            local_timer_interrupts(cpu)?,
            clock_ns(libc::CLOCK_MONOTONIC),
        );
        nearest_hz(n1.saturating_sub(n0) as f64 / ((t1 - t0) as f64 / 1e9))
    })
    .join()
    .ok()
    .flatten()
}

pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The current frequency (kHz) of each of `cpus` that has cpufreq.
pub fn current_freqs_khz(cpus: &[u32]) -> Vec<(u32, u64)> {
    cpus.iter()
        .filter_map(|&c| {
            let f = read(&format!(
                "/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq"
            ))?;
            Some((c, f.parse().ok()?))
        })
        .collect()
}

/// The header metadata, except counters and PELT mode (the recorder's).
pub fn metadata(nr_cpus: u32, pelt: PeltMode, command_line: Vec<String>) -> Metadata {
    let release = kernel_release();
    let cpu_file = |cpu: u32, f: &str| read(&format!("/sys/devices/system/cpu/cpu{cpu}/{f}"));
    let cpu_capacity = (0..nr_cpus)
        .map(|c| {
            cpu_file(c, "cpu_capacity")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1024)
        })
        .collect();
    let freqs: Option<Vec<u32>> = (0..nr_cpus)
        .map(|c| cpu_file(c, "cpufreq/cpuinfo_max_freq").and_then(|s| s.parse().ok()))
        .collect();
    let (hz, hz_source) = match config_hz(&release) {
        Some(hz) => (hz, HzSource::KernelConfig),
        None => match infer_hz(200) {
            Some(hz) => (hz, HzSource::Inferred),
            None => (0, HzSource::Unknown),
        },
    };
    let util_est_layout = match kernel_version(&release) {
        Some(v) if v >= (6, 8) => UtilEstLayout::Single,
        Some(_) => UtilEstLayout::EnqueuedEwma,
        None => UtilEstLayout::Unknown,
    };
    // Take the two clocks as close together as possible.
    let anchor_clock_ns = clock_ns(libc::CLOCK_MONOTONIC);
    let anchor_realtime_ns = clock_ns(libc::CLOCK_REALTIME);
    Metadata {
        kernel_release: release,
        hostname: read("/proc/sys/kernel/hostname"),
        nr_cpus,
        cpu_capacity,
        cpu_max_freq_khz: freqs.unwrap_or_default(),
        hz,
        hz_source,
        clock_id: libc::CLOCK_MONOTONIC as u32,
        anchor_clock_ns,
        anchor_realtime_ns,
        recorder: format!("schedrec {}", env!("CARGO_PKG_VERSION")),
        command_line,
        counters: Vec::new(),
        pelt,
        util_est_layout,
        extra: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn measured_tick_rates_round_to_standard_hz() {
        use super::nearest_hz;
        assert_eq!(nearest_hz(248.7), Some(250));
        assert_eq!(nearest_hz(1003.0), Some(1000));
        assert_eq!(nearest_hz(101.0), Some(100));
        assert_eq!(nearest_hz(296.0), Some(300));
        // NO_HZ_FULL (no ticks) or a flood of hrtimers: no standard HZ.
        assert_eq!(nearest_hz(3.0), None);
        assert_eq!(nearest_hz(600.0), None);
    }

    /// On this machine's kind (x86, busy CPUs tick) the measured rate is
    /// the configured HZ; where /proc/interrupts has no LOC line the test
    /// says so and checks nothing.
    #[test]
    fn inferred_hz_matches_the_kernel_config() {
        let release = super::kernel_release();
        let Some(config) = super::config_hz(&release) else {
            eprintln!(
                "SKIPPED inferred_hz_matches_the_kernel_config: no kernel config to compare with"
            );
            return;
        };
        match super::infer_hz(300) {
            Some(hz) => assert_eq!(hz, config),
            None => eprintln!(
                "SKIPPED inferred_hz_matches_the_kernel_config: no LOC line in /proc/interrupts"
            ),
        }
    }

    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("5").unwrap(), vec![5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(kernel_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(kernel_version("5.15.0-91-generic"), Some((5, 15)));
        assert_eq!(kernel_version("weird"), None);
    }
}
