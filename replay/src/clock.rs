//! Each CPU's PELT clock (`rq_clock_pelt()`, kernel/sched/pelt.h) as the
//! replay maps the trace clock onto it.
//!
//! With `--clock pelt` the kernel's own timestamps (`last_update_time` at
//! switches and wakeups) measure the offset between the two clocks; with
//! `--clock ktime` nothing does. Between measurements, and with `ktime`
//! throughout, each CPU's clock advances as the kernel advances
//! `rq->clock_pelt`: while the CPU is busy, by the elapsed time scaled by
//! the CPU's capacity and current frequency (work done on a small or slow
//! CPU counts for what it would have taken at full speed); when the CPU
//! goes idle it catches up with the task clock, unless the run-queue was
//! saturated, in which case the time it never had goes to
//! `lost_idle_time`. On a CPU at full capacity and frequency (no
//! capacities below 1024 in the header, no `cpu_frequency` records applied)
//! the PELT clock runs at the trace clock's pace and nothing here changes
//! a replay.
//!
//! Frequency scaling is opt-in (`--freq-invariance`): the kernel takes its
//! frequency scale from cpufreq (the frequency set over the maximum) only
//! on architectures without counters for it — arm64 without activity
//! monitors, for one. x86 derives it from APERF/MPERF at each tick (and
//! `cpu_frequency` often never fires there), arm64 with activity monitors
//! from those; a trace does not say which the recorded kernel used.
//!
//! What is estimated: the trace clock stands for `clock_task` (which
//! excludes IRQ and steal time); a frequency holds from its
//! `cpu_frequency` record on, and the ticks of a slice are mapped at the
//! speed in effect at its end; the maximum is `cpuinfo_max_freq` (kernels
//! since v6.7 may divide by another reference); and the run-queue's
//! utilisation that decides whether idle time is lost is that of "some
//! task runs on this CPU" (the kernel sums its fair, RT and deadline
//! utilisation, which also includes what migrating tasks bring).

use crate::pelt::{cap_scale, update_load_sum, RqClockPelt, SchedAvg, SCHED_CAPACITY_SCALE};

/// How fast a CPU's PELT clock runs while it is busy: its capacity and
/// its current frequency scale, both out of 1024.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speed {
    pub capacity: u16,
    pub freq_scale: u16,
}

impl Speed {
    pub const FULL: Speed = Speed {
        capacity: SCHED_CAPACITY_SCALE as u16,
        freq_scale: SCHED_CAPACITY_SCALE as u16,
    };

    /// The PELT time that passes in `delta` of busy time (as
    /// `update_rq_clock_pelt()` scales it).
    pub fn scale(self, delta: u64) -> u64 {
        cap_scale(
            cap_scale(delta, self.capacity as u64),
            self.freq_scale as u64,
        )
    }
}

#[derive(Clone, Debug)]
struct Cpu {
    /// `clock_task` is the trace time of the last advance.
    clk: RqClockPelt,
    /// The kernel's PELT time − `clk.now()`, as last measured (0 on the
    /// trace clock).
    shift: i64,
    /// The trace time of the last measurement (None: never measured).
    measured_ts: Option<u64>,
    busy: bool,
    speed: Speed,
    /// "Some task runs on this CPU" as a PELT signal: stands for the
    /// run-queue's util_sum when the CPU goes idle.
    rq: SchedAvg,
}

/// The PELT clocks of a trace's CPUs.
#[derive(Clone, Debug)]
pub struct Clocks {
    cpus: Vec<Cpu>,
    /// The lowest-numbered CPU whose clock was measured (the others borrow
    /// its offset until theirs is).
    first_measured: Option<usize>,
    max_freq_khz: Vec<u32>,
    /// Whether `cpu_frequency` records scale the clocks.
    use_frequency: bool,
    /// A `cpu_frequency` record set a CPU below full speed.
    pub frequency_applied: bool,
    /// `cpu_frequency` records not applied: frequency scaling is off, or
    /// the header does not give the CPU's maximum frequency.
    pub frequency_unscaled: u64,
}

impl Clocks {
    /// Clocks of CPUs of these capacities (out of 1024) and maximum
    /// frequencies (kHz; missing or 0: unknown), scaled by `cpu_frequency`
    /// records when `use_frequency`.
    pub fn new(capacities: &[u64], max_freq_khz: &[u32], use_frequency: bool) -> Clocks {
        Clocks {
            cpus: capacities
                .iter()
                .map(|&c| Cpu {
                    clk: RqClockPelt::default(),
                    shift: 0,
                    measured_ts: None,
                    busy: false,
                    speed: Speed {
                        capacity: c.clamp(1, SCHED_CAPACITY_SCALE) as u16,
                        ..Speed::FULL
                    },
                    rq: SchedAvg::default(),
                })
                .collect(),
            first_measured: None,
            max_freq_khz: max_freq_khz.to_vec(),
            use_frequency,
            frequency_applied: false,
            frequency_unscaled: 0,
        }
    }

    /// Whether some CPU has less than full capacity.
    pub fn capacity_applied(&self) -> bool {
        self.cpus
            .iter()
            .any(|c| (c.speed.capacity as u64) < SCHED_CAPACITY_SCALE)
    }

    /// Advances `cpu`'s clock to trace time `ts` (busy or idle as it was).
    pub fn advance(&mut self, cpu: u32, ts: u64) {
        let Some(c) = self.cpus.get_mut(cpu as usize) else {
            return;
        };
        let delta = ts.saturating_sub(c.clk.clock_task);
        if delta == 0 {
            return;
        }
        c.clk.update(
            delta,
            !c.busy,
            c.speed.capacity as u64,
            c.speed.freq_scale as u64,
        );
        update_load_sum(c.clk.now(), &mut c.rq, 1, c.busy as u64, c.busy);
    }

    /// The CPU starts or stops running tasks (at its last advance). Going
    /// idle applies `update_idle_rq_clock_pelt()`.
    pub fn set_busy(&mut self, cpu: u32, busy: bool) {
        let Some(c) = self.cpus.get_mut(cpu as usize) else {
            return;
        };
        if c.busy && !busy {
            c.clk.go_idle(c.rq.util_sum);
        }
        c.busy = busy;
    }

    /// Every CPU's state is unknown from trace time `ts` on (lost
    /// events): advanced to `ts` as they were, then taken as idle, without
    /// the idle rule.
    pub fn forget_busy(&mut self, ts: u64) {
        for cpu in 0..self.cpus.len() {
            self.advance(cpu as u32, ts);
            self.cpus[cpu].busy = false;
        }
    }

    /// `cpu_frequency`: `cpu` runs at `khz` from its last advance on.
    pub fn set_freq(&mut self, cpu: u32, khz: u64) {
        let Some(c) = self.cpus.get_mut(cpu as usize) else {
            return;
        };
        match self.max_freq_khz.get(cpu as usize).copied() {
            Some(max) if max > 0 && self.use_frequency => {
                // arch_set_freq_scale(): cur << SCHED_CAPACITY_SHIFT / max.
                let scale = (khz.saturating_mul(SCHED_CAPACITY_SCALE) / max as u64)
                    .clamp(1, SCHED_CAPACITY_SCALE);
                c.speed.freq_scale = scale as u16;
                self.frequency_applied |= scale < SCHED_CAPACITY_SCALE;
            }
            _ => self.frequency_unscaled += 1,
        }
    }

    /// The kernel's PELT clock read `lut` on `cpu` at trace time `ts` (its
    /// clock advanced to `ts` first).
    pub fn measure(&mut self, cpu: u32, ts: u64, lut: u64) {
        self.advance(cpu, ts);
        let Some(c) = self.cpus.get_mut(cpu as usize) else {
            return;
        };
        c.shift = (lut as i64).wrapping_sub(c.clk.now() as i64);
        c.measured_ts = Some(ts);
        let cpu = cpu as usize;
        self.first_measured = Some(self.first_measured.map_or(cpu, |f| f.min(cpu)));
    }

    /// How far `c`'s PELT clock lags its task clock (busy time not yet
    /// caught up, and lost idle time).
    fn lag(c: &Cpu) -> i64 {
        (c.clk.clock_task as i64).wrapping_sub(c.clk.now() as i64)
    }

    /// Trace clock − PELT clock on `cpu` at its last advance: its own lag
    /// and the offset measured on it. A CPU whose clock was never measured
    /// borrows the lowest-numbered measured CPU's measured offset, with its
    /// own lag (on the trace clock, where nothing is measured, that is all).
    pub fn off(&self, cpu: u32) -> i64 {
        let Some(c) = self.cpus.get(cpu as usize) else {
            return self.first_measured.map_or(0, |f| -self.cpus[f].shift);
        };
        let shift = match (c.measured_ts, self.first_measured) {
            (Some(_), _) | (None, None) => c.shift,
            (None, Some(f)) => self.cpus[f].shift,
        };
        Self::lag(c).wrapping_sub(shift)
    }

    /// The trace time `cpu`'s offset was last measured at (0: never).
    pub fn measured_ts(&self, cpu: u32) -> u64 {
        self.cpus
            .get(cpu as usize)
            .and_then(|c| c.measured_ts)
            .unwrap_or(0)
    }

    /// How fast `cpu`'s clock runs while busy.
    pub fn speed(&self, cpu: u32) -> Speed {
        self.cpus.get(cpu as usize).map_or(Speed::FULL, |c| c.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn at_full_speed_the_pelt_clock_is_the_trace_clock_plus_the_measured_offset() {
        let mut c = Clocks::new(&[1024, 1024], &[], true);
        for cpu in 0..2 {
            c.advance(cpu, 5 * MS);
            assert_eq!(c.off(cpu), 0);
        }
        c.measure(0, 6 * MS, 6 * MS - 300);
        // CPU 1, never measured, borrows CPU 0's offset.
        assert_eq!((c.off(0), c.off(1)), (300, 300));
        c.set_busy(0, true);
        c.advance(0, 20 * MS);
        c.set_busy(0, false);
        c.advance(0, 30 * MS);
        assert_eq!(c.off(0), 300);
        assert_eq!(c.measured_ts(0), 6 * MS);
        assert!(!c.capacity_applied() && !c.frequency_applied);
    }

    #[test]
    fn an_unmeasured_cpu_borrows_the_lowest_numbered_measured_one() {
        let mut c = Clocks::new(&[1024; 3], &[], true);
        c.measure(2, MS, MS - 200);
        c.measure(1, 2 * MS, 2 * MS - 100);
        c.advance(0, 3 * MS);
        assert_eq!((c.off(0), c.off(1), c.off(2)), (100, 100, 200));
    }

    #[test]
    fn a_slow_cpu_clock_lags_while_busy_and_catches_up_at_idle() {
        let mut c = Clocks::new(&[512], &[2_000_000], true);
        c.advance(0, 10 * MS);
        c.set_freq(0, 1_500_000); // 768 / 1024
        assert_eq!(c.speed(0).scale(1024 * 1024), 384 * 1024);
        c.set_busy(0, true);
        c.advance(0, 18 * MS);
        // 8 ms busy at capacity 512 and 3/4 speed: 3 ms of PELT time.
        assert_eq!(c.off(0), 5 * MS as i64);
        c.set_busy(0, false); // not saturated: the 5 ms are idle time
        assert_eq!(c.off(0), 0);
        assert!(c.capacity_applied() && c.frequency_applied);
    }

    /// CPU 0 busy for 1 s at half speed (from 1 ms on): saturated.
    fn saturate_at_half_speed(c: &mut Clocks) {
        c.set_freq(0, 500_000);
        c.set_busy(0, true);
        c.advance(0, 1001 * MS);
        c.set_busy(0, false);
    }

    #[test]
    fn a_saturated_cpu_loses_the_time_it_never_had() {
        let mut c = Clocks::new(&[1024], &[1_000_000], true);
        c.advance(0, MS);
        saturate_at_half_speed(&mut c);
        assert_eq!(c.off(0), 500 * MS as i64);
        c.advance(0, 1100 * MS);
        assert_eq!(c.off(0), 500 * MS as i64);
    }

    #[test]
    fn a_frequency_is_applied_only_when_asked_and_with_the_maximum() {
        let mut c = Clocks::new(&[1024], &[], true);
        c.set_freq(0, 800_000);
        assert_eq!(c.speed(0), Speed::FULL);
        assert_eq!((c.frequency_applied, c.frequency_unscaled), (false, 1));
        let mut c = Clocks::new(&[1024], &[1_000_000], false);
        c.set_freq(0, 800_000);
        assert_eq!(c.speed(0), Speed::FULL);
        assert_eq!((c.frequency_applied, c.frequency_unscaled), (false, 1));
        // At the maximum: applied, but nothing was slowed down.
        let mut c = Clocks::new(&[1024], &[1_000_000], true);
        c.set_freq(0, 1_000_000);
        assert_eq!((c.frequency_applied, c.frequency_unscaled), (false, 0));
        c.set_freq(0, 500_000);
        assert_eq!(c.speed(0).freq_scale, 512);
        assert!(c.frequency_applied);
    }

    #[test]
    fn a_borrowed_offset_does_not_carry_the_lenders_lag() {
        // CPU 0, measured, lost 500 ms of idle time at half speed; CPU 1,
        // never measured and always idle, borrows CPU 0's measured offset
        // (300 ns), not its lag.
        let mut c = Clocks::new(&[1024, 1024], &[1_000_000, 1_000_000], true);
        c.measure(0, MS, MS - 300);
        saturate_at_half_speed(&mut c);
        c.advance(1, 1001 * MS);
        assert_eq!(c.off(0), 500 * MS as i64 + 300);
        assert_eq!(c.off(1), 300);
    }

    #[test]
    fn lost_events_end_busy_time_where_they_start() {
        let mut c = Clocks::new(&[1024], &[1_000_000], true);
        c.advance(0, MS);
        c.set_freq(0, 500_000);
        c.set_busy(0, true);
        c.forget_busy(11 * MS); // busy at half speed until the loss
        assert_eq!(c.off(0), 5 * MS as i64);
        c.advance(0, 21 * MS); // idle after it: the clock catches up
        assert_eq!(c.off(0), 0);
    }
}
