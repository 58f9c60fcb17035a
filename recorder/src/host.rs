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

pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
        None => (0, HzSource::Unknown),
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
