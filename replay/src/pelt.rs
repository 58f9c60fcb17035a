//! PELT as `kernel/sched/pelt.c` computes it (v5.7 … v6.18), in the kernel's
//! integer arithmetic and with the kernel's names, so that it can be checked
//! line by line against the C. Times are in ns of the PELT clock; the
//! arithmetic works in 1024 ns units ("us") and 1024-unit periods.

/// `LOAD_AVG_PERIOD`: y^32 = 1/2.
pub const LOAD_AVG_PERIOD: u64 = 32;
/// `LOAD_AVG_MAX`: the maximum possible sum.
pub const LOAD_AVG_MAX: u64 = 47742;
/// `PELT_MIN_DIVIDER`.
pub const PELT_MIN_DIVIDER: u32 = (LOAD_AVG_MAX - 1024) as u32;
pub const SCHED_CAPACITY_SHIFT: u32 = 10;
pub const SCHED_CAPACITY_SCALE: u64 = 1 << SCHED_CAPACITY_SHIFT;
/// `UTIL_AVG_UNCHANGED`: set in util_est when util_avg has not changed since.
pub const UTIL_AVG_UNCHANGED: u32 = 0x8000_0000;
/// `UTIL_EST_MARGIN` (1 % of SCHED_CAPACITY_SCALE).
pub const UTIL_EST_MARGIN: u32 = (SCHED_CAPACITY_SCALE / 100) as u32;
pub const UTIL_EST_WEIGHT_SHIFT: u32 = 2;

/// `runnable_avg_yN_inv[n]` = y^n * 2^32 (kernel/sched/sched-pelt.h).
pub const RUNNABLE_AVG_YN_INV: [u32; 32] = [
    0xffffffff, 0xfa83b2da, 0xf5257d14, 0xefe4b99a, 0xeac0c6e6, 0xe5b906e6, 0xe0ccdeeb, 0xdbfbb796,
    0xd744fcc9, 0xd2a81d91, 0xce248c14, 0xc9b9bd85, 0xc5672a10, 0xc12c4cc9, 0xbd08a39e, 0xb8fbaf46,
    0xb504f333, 0xb123f581, 0xad583ee9, 0xa9a15ab4, 0xa5fed6a9, 0xa2704302, 0x9ef5325f, 0x9b8d39b9,
    0x9837f050, 0x94f4efa8, 0x91c3d373, 0x8ea4398a, 0x8b95c1e3, 0x88980e80, 0x85aac367, 0x82cd8698,
];

/// `struct sched_avg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAvg {
    pub last_update_time: u64,
    pub load_sum: u64,
    pub runnable_sum: u64,
    pub util_sum: u32,
    pub period_contrib: u32,
    pub load_avg: u64,
    pub runnable_avg: u64,
    pub util_avg: u64,
    /// v6.8+: one value, bit 31 = UTIL_AVG_UNCHANGED.
    pub util_est: u32,
}

/// `mul_u64_u32_shr(a, mul, shift)`.
fn mul_u64_u32_shr(a: u64, mul: u32, shift: u32) -> u64 {
    ((a as u128 * mul as u128) >> shift) as u64
}

/// `decay_load(val, n)`: val * y^n.
pub fn decay_load(mut val: u64, n: u64) -> u64 {
    if n > LOAD_AVG_PERIOD * 63 {
        return 0;
    }
    let mut local_n = n as u32;
    if local_n as u64 >= LOAD_AVG_PERIOD {
        val >>= local_n / LOAD_AVG_PERIOD as u32;
        local_n %= LOAD_AVG_PERIOD as u32;
    }
    mul_u64_u32_shr(val, RUNNABLE_AVG_YN_INV[local_n as usize], 32)
}

/// `__accumulate_pelt_segments(periods, d1, d3)`.
pub fn accumulate_pelt_segments(periods: u64, d1: u32, d3: u32) -> u32 {
    let c3 = d3; // y^0 == 1
    let c1 = decay_load(d1 as u64, periods) as u32;
    let c2 = (LOAD_AVG_MAX - decay_load(LOAD_AVG_MAX, periods) - 1024) as u32;
    c1.wrapping_add(c2).wrapping_add(c3)
}

/// `accumulate_sum(delta, sa, load, runnable, running)`: returns the number
/// of period boundaries crossed.
pub fn accumulate_sum(
    mut delta: u64,
    sa: &mut SchedAvg,
    load: u64,
    runnable: u64,
    running: bool,
) -> u64 {
    let mut contrib = delta as u32; // p == 0 -> delta < 1024
    delta += sa.period_contrib as u64;
    let periods = delta / 1024; // a period is 1024us (~1ms)
    if periods != 0 {
        sa.load_sum = decay_load(sa.load_sum, periods);
        sa.runnable_sum = decay_load(sa.runnable_sum, periods);
        sa.util_sum = decay_load(sa.util_sum as u64, periods) as u32;
        delta %= 1024;
        if load != 0 {
            contrib = accumulate_pelt_segments(periods, 1024 - sa.period_contrib, delta as u32);
        }
    }
    sa.period_contrib = delta as u32;
    if load != 0 {
        sa.load_sum += load * contrib as u64;
    }
    if runnable != 0 {
        sa.runnable_sum += (runnable * contrib as u64) << SCHED_CAPACITY_SHIFT;
    }
    if running {
        sa.util_sum = sa.util_sum.wrapping_add(contrib << SCHED_CAPACITY_SHIFT);
    }
    periods
}

/// `___update_load_sum(now, sa, load, runnable, running)`: true when a
/// period boundary was crossed (only then do the averages change).
pub fn update_load_sum(
    now: u64,
    sa: &mut SchedAvg,
    load: u64,
    mut runnable: u64,
    mut running: bool,
) -> bool {
    let delta = now.wrapping_sub(sa.last_update_time);
    // This should only happen when time goes backwards.
    if (delta as i64) < 0 {
        sa.last_update_time = now;
        return false;
    }
    // Use 1024ns as the unit of measurement since it's a reasonable
    // approximation of 1us and fast to compute.
    let delta = delta >> 10;
    if delta == 0 {
        return false;
    }
    sa.last_update_time += delta << 10;
    // running is a subset of runnable (weight) so running can't be set if
    // runnable is clear.
    if load == 0 {
        runnable = 0;
        running = false;
    }
    accumulate_sum(delta, sa, load, runnable, running) != 0
}

/// `get_pelt_divider(sa)`.
pub fn get_pelt_divider(sa: &SchedAvg) -> u32 {
    PELT_MIN_DIVIDER + sa.period_contrib
}

/// `___update_load_avg(sa, load)`.
pub fn update_load_avg(sa: &mut SchedAvg, load: u64) {
    let divider = get_pelt_divider(sa) as u64;
    sa.load_avg = load * sa.load_sum / divider;
    sa.runnable_avg = sa.runnable_sum / divider;
    sa.util_avg = sa.util_sum as u64 / divider;
}

/// `cfs_se_util_change(avg)`: util_avg was recomputed, clear UTIL_AVG_UNCHANGED.
pub fn cfs_se_util_change(avg: &mut SchedAvg) {
    if avg.util_est & UTIL_AVG_UNCHANGED != 0 {
        avg.util_est &= !UTIL_AVG_UNCHANGED;
    }
}

/// `scale_load_down(weight)` on 64-bit: the weight used in averages.
pub fn se_weight(weight: u64) -> u64 {
    weight.max(2)
}

/// `__update_load_avg_se(now, cfs_rq, se)` for a task entity: `on_rq`,
/// `runnable` (on_rq and not delayed) and `running` describe the interval
/// that ends at `now`. Returns whether the averages changed.
pub fn update_load_avg_se(
    now: u64,
    sa: &mut SchedAvg,
    weight: u64,
    on_rq: bool,
    runnable: bool,
    running: bool,
) -> bool {
    if update_load_sum(now, sa, on_rq as u64, runnable as u64, running) {
        update_load_avg(sa, se_weight(weight));
        cfs_se_util_change(sa);
        return true;
    }
    false
}

/// `__update_load_avg_blocked_se(now, se)`: a sleeping task's averages
/// brought to `now` (the sync before a wakeup migration). Unlike
/// `__update_load_avg_se()` it does not call `cfs_se_util_change()`, so
/// UTIL_AVG_UNCHANGED survives it. Returns whether the averages changed.
pub fn update_load_avg_blocked_se(now: u64, sa: &mut SchedAvg, weight: u64) -> bool {
    if update_load_sum(now, sa, 0, 0, false) {
        update_load_avg(sa, se_weight(weight));
        return true;
    }
    false
}

/// `util_est_update()` (v6.8+) when a task goes to sleep: `dequeued` is the
/// task's util_avg at the sampling point, `runnable` its runnable_avg,
/// `capacity` its CPU's capacity.
pub fn util_est_update(sa: &mut SchedAvg, dequeued: u64, runnable: u64, capacity: u64) {
    let mut ewma = sa.util_est;
    // Skip update of task's estimated utilization when its util_avg has
    // not been updated since last time.
    if ewma & UTIL_AVG_UNCHANGED != 0 {
        return;
    }
    let dequeued32 = dequeued as u32;
    'done: {
        // Reset EWMA on utilization increases, the moving average is used
        // only to smooth utilization decreases.
        if ewma as u64 <= dequeued {
            ewma = dequeued32;
            break 'done;
        }
        // Skip update of task's estimated utilization when its members are
        // already ~1% close to its last activation value.
        let last_ewma_diff = ewma - dequeued32;
        if last_ewma_diff < UTIL_EST_MARGIN {
            break 'done;
        }
        // To avoid underestimate of task utilization, skip updates of EWMA
        // if we cannot grant that thread got all CPU time it wanted.
        if dequeued > capacity {
            return;
        }
        if dequeued + (UTIL_EST_MARGIN as u64) < runnable {
            break 'done;
        }
        // Update Task's estimated utilization:
        //   ewma(t) = w * task_util(p) + (1-w) * ewma(t-1)
        //           = ewma(t-1) - w * (ewma(t-1) - task_util(p))
        ewma <<= UTIL_EST_WEIGHT_SHIFT;
        ewma -= last_ewma_diff;
        ewma >>= UTIL_EST_WEIGHT_SHIFT;
    }
    sa.util_est = ewma | UTIL_AVG_UNCHANGED;
}

/// `cap_scale(v, s)`.
pub fn cap_scale(v: u64, s: u64) -> u64 {
    // In 128 bits: the same value as the kernel's u64 product wherever that
    // does not overflow, and no overflow on a trace's absurd time jump.
    ((v as u128 * s as u128) >> SCHED_CAPACITY_SHIFT) as u64
}

/// A run-queue's PELT clock (`rq->clock_pelt`, kernel/sched/pelt.h): while
/// the CPU is busy it advances by the elapsed `clock_task` scaled by the
/// CPU's capacity and current frequency, so that work done slowly counts
/// for what it would have taken at full speed; when the CPU goes idle it
/// catches up with `clock_task` (and the time a saturated CPU never had
/// idle goes to `lost_idle_time` instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RqClockPelt {
    pub clock_task: u64,
    pub clock_pelt: u64,
    pub lost_idle_time: u64,
}

impl RqClockPelt {
    /// `update_rq_clock_pelt(rq, delta)`: `clock_task` advanced by `delta`;
    /// `idle` is whether the CPU was idle over it.
    pub fn update(&mut self, delta: u64, idle: bool, capacity: u64, freq_scale: u64) {
        self.clock_task += delta;
        if idle {
            self.clock_pelt = self.clock_task;
            return;
        }
        let delta = cap_scale(delta, capacity);
        let delta = cap_scale(delta, freq_scale);
        self.clock_pelt += delta;
    }

    /// `update_idle_rq_clock_pelt(rq)` as the CPU goes idle, with
    /// `util_sum` the run-queue's cfs + rt + dl util_sum: the time PELT did
    /// not see is idle time, unless the run-queue was saturated, in which
    /// case it is lost; then the PELT clock catches up with `clock_task`.
    pub fn go_idle(&mut self, util_sum: u32) {
        let divider: u32 = (((LOAD_AVG_MAX - 1024) << SCHED_CAPACITY_SHIFT) - LOAD_AVG_MAX) as u32;
        if util_sum >= divider {
            self.lost_idle_time += self.clock_task - self.clock_pelt;
        }
        self.clock_pelt = self.clock_task;
    }

    /// `rq_clock_pelt(rq)`: the `now` of PELT updates on this run-queue.
    pub fn now(&self) -> u64 {
        self.clock_pelt - self.lost_idle_time
    }
}

#[cfg(test)]
mod tests;

/// The window position (`period_contrib`) of a PELT update at `lut`.
///
/// Every `sched_avg` starts with `last_update_time` = 0 and
/// `period_contrib` = 0 (`init_cfs_rq()`, `init_entity_runnable_average()`),
/// `___update_load_sum()` advances `last_update_time` by whole 1024 ns units
/// and `accumulate_sum()` advances `period_contrib` by the same units modulo
/// 1024, and `attach_entity_load_avg()` copies both from the cfs_rq: so
/// `period_contrib == (last_update_time >> 10) % 1024` for every entity
/// and run-queue, for ever. The period boundaries of all of them fall on
/// multiples of 1024 × 1024 ns of the PELT clock. (Every one of the 307 682
/// `sched_avg` states in the `--pelt full` fixtures obeys it; a test checks.)
pub fn lattice_period_contrib(lut: u64) -> u32 {
    ((lut >> 10) % 1024) as u32
}

/// A util_sum of `sum` at PELT time `t0`, at `t1` if the entity did not
/// run in between: `accumulate_sum()` decays it by the periods crossed (the
/// window position at `t0` follows from `t0`) and adds nothing.
pub fn decayed_off_cpu(sum: u64, t0: u64, t1: u64) -> u64 {
    let delta = t1.saturating_sub(t0) >> 10;
    let periods = (lattice_period_contrib(t0) as u64 + delta) / 1024;
    if periods == 0 {
        sum
    } else {
        decay_load(sum, periods)
    }
}
