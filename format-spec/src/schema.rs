//! The column tables of every chunk kind: the one place that says which
//! column has which bit, name and coding. SPEC.md §5 is this file in prose;
//! `schedrec-format`'s tests check the two agree.

/// Chunk kinds (SPEC.md §5). Readers skip kinds they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Kind {
    Switch = 1,
    Wakeup = 2,
    Task = 3,
    Migrate = 4,
    Pelt = 5,
    CpuFreq = 6,
    Loss = 7,
    Marker = 8,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Switch,
        Kind::Wakeup,
        Kind::Task,
        Kind::Migrate,
        Kind::Pelt,
        Kind::CpuFreq,
        Kind::Loss,
        Kind::Marker,
    ];

    pub fn from_u16(v: u16) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u16 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Switch => "switch",
            Kind::Wakeup => "wakeup",
            Kind::Task => "task",
            Kind::Migrate => "migrate",
            Kind::Pelt => "pelt",
            Kind::CpuFreq => "cpu_freq",
            Kind::Loss => "loss",
            Kind::Marker => "marker",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The column table of this kind.
    pub fn columns(self) -> &'static [ColumnDef] {
        match self {
            Kind::Switch => SWITCH,
            Kind::Wakeup => WAKEUP,
            Kind::Task => TASK,
            Kind::Migrate => MIGRATE,
            Kind::Pelt => PELT,
            Kind::CpuFreq => CPU_FREQ,
            Kind::Loss => LOSS,
            Kind::Marker => MARKER,
        }
    }

    /// Bits every chunk of this kind must carry.
    pub fn required(self) -> u64 {
        self.columns()
            .iter()
            .filter(|c| c.required)
            .fold(0, |m, c| m | 1 << c.bit)
    }

    /// Bits this reader knows for this kind.
    pub fn known(self) -> u64 {
        self.columns().iter().fold(0, |m, c| m | 1 << c.bit)
    }

    pub fn column(self, bit: u8) -> Option<&'static ColumnDef> {
        self.columns().iter().find(|c| c.bit == bit)
    }
}

/// How a column's logical 64-bit values become the varints stored
/// (SPEC.md §4). `i` is the record index inside the chunk; all arithmetic
/// wraps modulo 2^64; `zz` is zig-zag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// uleb(v)
    Uv,
    /// uleb(zz(v as i64))
    Sv,
    /// uleb(zz(v[i] - v[i-1])), v[-1] = the chunk's ts_min. Timestamps.
    DeltaTs,
    /// uleb(zz(v[i] - last[key[i]])) with `key` the column at the given bit and
    /// `last` a per-column map from key to the value last stored for it in
    /// this chunk (absent = 0).
    Keyed(u8),
    /// d[i] = v[i] - other[i]; uleb(zz(d[i] - last[key[i]])), `last` keyed as
    /// in `Keyed` but holding d. (util_avg against runnable_avg of one task.)
    KeyedRel(u8, u8),
    /// Rate prediction: with `last_v[key]`, `last_o[key]` the values of this
    /// column and of `other` last stored for the key (absent = 0),
    /// pred = last_v if last_o = 0, else floor(other[i] * last_v / last_o)
    /// computed in 128 bits and clamped to 2^64-1; uleb(zz(v[i] - pred)).
    /// (A task's cycles per enabled ns, as on its previous slice.)
    KeyedScaled(u8, u8),
    /// uleb(zz(v[i] - other[i-1])), other[-1] = 0: the previous record's value
    /// of another column (prev_pid against the previous next_pid).
    Chain(u8),
    /// uleb(zz(v[i] - other[i])).
    Rel(u8),
    /// d[i] = v[i] - other[i]; uleb(zz(d[i] - d[i-1])), d[-1] = 0.
    RelDelta(u8),
    /// uleb(zz(v[i] - slice[i])), slice[i] = ts[i] - ts[i-1] for i > 0, 0 for i = 0.
    RelSlice,
    /// Byte strings: uleb(len) then the bytes.
    Bytes,
}

#[derive(Clone, Copy, Debug)]
pub struct ColumnDef {
    pub bit: u8,
    pub name: &'static str,
    pub coding: Coding,
    pub required: bool,
}

const fn c(bit: u8, name: &'static str, coding: Coding, required: bool) -> ColumnDef {
    ColumnDef {
        bit,
        name,
        coding,
        required,
    }
}

use Coding::*;

/// Bit of the timestamp column in every kind.
pub const TS: u8 = 0;

pub mod sw {
    //! Switch column bits.
    pub const NEXT_PID: u8 = 1;
    pub const NEXT_TGID: u8 = 2;
    pub const NEXT_PRIO: u8 = 3;
    pub const PREV_PID: u8 = 4;
    pub const PREV_TGID: u8 = 5;
    pub const PREV_PRIO: u8 = 6;
    pub const PREV_STATE: u8 = 7;
    pub const FLAGS: u8 = 8;
    /// Counter k occupies COUNTERS + 3k (time enabled), +1 (value), +2 (time running).
    pub const COUNTERS: u8 = 16;
    /// Prev PELT averages: runnable, util, load, util_est, last_update_time, flags.
    pub const PREV_AVG: u8 = 32;
    /// Prev PELT sums: load_sum, runnable_sum, util_sum, period_contrib.
    pub const PREV_SUMS: u8 = 38;
    pub const NEXT_AVG: u8 = 42;
    pub const NEXT_SUMS: u8 = 48;
    /// flags bit 0: the switch was a preemption.
    pub const FLAG_PREEMPT: u64 = 1;
}

pub mod wk {
    //! Wakeup column bits.
    pub const PID: u8 = 1;
    pub const TARGET_CPU: u8 = 2;
    pub const FLAGS: u8 = 3;
    pub const AVG: u8 = 8;
    pub const SUMS: u8 = 14;
    /// flags bit 0: sched_wakeup_new (first wakeup of a new task).
    pub const FLAG_NEW: u64 = 1;
}

pub mod pe {
    //! PELT-update column bits.
    pub const ENTITY: u8 = 1;
    pub const RQ_CPU: u8 = 2;
    pub const PID: u8 = 3;
    pub const AVG: u8 = 4;
    pub const SUMS: u8 = 10;
}

/// Bits of the PELT flags columns.
pub const PELT_ON_RQ: u64 = 1;
pub const PELT_SCHED_DELAYED: u64 = 2;

macro_rules! avg_group {
    ($base:expr, $key:expr, $p:literal) => {
        [
            c($base, concat!($p, "runnable_avg"), Keyed($key), false),
            c(
                $base + 1,
                concat!($p, "util_avg"),
                KeyedRel($key, $base),
                false,
            ),
            c(
                $base + 2,
                concat!($p, "load_avg"),
                KeyedRel($key, $base),
                false,
            ),
            c($base + 3, concat!($p, "util_est"), Keyed($key), false),
            c(
                $base + 4,
                concat!($p, "last_update_time"),
                RelDelta(TS),
                false,
            ),
            c($base + 5, concat!($p, "pelt_flags"), Uv, false),
        ]
    };
}
macro_rules! sums_group {
    ($base:expr, $key:expr, $p:literal) => {
        [
            c($base, concat!($p, "load_sum"), Keyed($key), false),
            c($base + 1, concat!($p, "runnable_sum"), Keyed($key), false),
            c($base + 2, concat!($p, "util_sum"), Keyed($key), false),
            c($base + 3, concat!($p, "period_contrib"), Uv, false),
        ]
    };
}
macro_rules! counter_group {
    ($k:expr, $p:literal) => {
        [
            c(
                sw::COUNTERS + 3 * $k,
                concat!($p, "_enabled"),
                RelSlice,
                false,
            ),
            c(
                sw::COUNTERS + 3 * $k + 1,
                $p,
                KeyedScaled(sw::PREV_PID, sw::COUNTERS + 3 * $k),
                false,
            ),
            c(
                sw::COUNTERS + 3 * $k + 2,
                concat!($p, "_running"),
                Rel(sw::COUNTERS + 3 * $k),
                false,
            ),
        ]
    };
}

const fn cat<const A: usize, const B: usize, const N: usize>(
    a: [ColumnDef; A],
    b: [ColumnDef; B],
) -> [ColumnDef; N] {
    let mut out = [c(0, "", Uv, false); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

const SWITCH_CORE: [ColumnDef; 9] = [
    c(TS, "ts", DeltaTs, true),
    c(sw::NEXT_PID, "next_pid", Uv, true),
    c(sw::NEXT_TGID, "next_tgid", Keyed(sw::NEXT_PID), true),
    c(sw::NEXT_PRIO, "next_prio", Keyed(sw::NEXT_PID), true),
    c(sw::PREV_PID, "prev_pid", Chain(sw::NEXT_PID), true),
    c(sw::PREV_TGID, "prev_tgid", Chain(sw::NEXT_TGID), true),
    c(sw::PREV_PRIO, "prev_prio", Chain(sw::NEXT_PRIO), true),
    c(sw::PREV_STATE, "prev_state", Uv, true),
    c(sw::FLAGS, "flags", Uv, true),
];
const SWITCH_COUNTERS: [ColumnDef; 12] = cat::<6, 6, 12>(
    cat::<3, 3, 6>(
        counter_group!(0, "cycles"),
        counter_group!(1, "instructions"),
    ),
    cat::<3, 3, 6>(
        counter_group!(2, "cache_references"),
        counter_group!(3, "cache_misses"),
    ),
);
const SWITCH_PELT: [ColumnDef; 20] = cat::<10, 10, 20>(
    cat::<6, 4, 10>(
        avg_group!(sw::PREV_AVG, sw::PREV_PID, "prev_"),
        sums_group!(sw::PREV_SUMS, sw::PREV_PID, "prev_"),
    ),
    cat::<6, 4, 10>(
        avg_group!(sw::NEXT_AVG, sw::NEXT_PID, "next_"),
        sums_group!(sw::NEXT_SUMS, sw::NEXT_PID, "next_"),
    ),
);
static SWITCH_ALL: [ColumnDef; 41] =
    cat::<21, 20, 41>(cat::<9, 12, 21>(SWITCH_CORE, SWITCH_COUNTERS), SWITCH_PELT);
static SWITCH: &[ColumnDef] = &SWITCH_ALL;

static WAKEUP_ALL: [ColumnDef; 14] = cat::<4, 10, 14>(
    [
        c(TS, "ts", DeltaTs, true),
        c(wk::PID, "pid", Uv, true),
        c(wk::TARGET_CPU, "target_cpu", Uv, true),
        c(wk::FLAGS, "flags", Uv, true),
    ],
    cat::<6, 4, 10>(
        avg_group!(wk::AVG, wk::PID, ""),
        sums_group!(wk::SUMS, wk::PID, ""),
    ),
);
static WAKEUP: &[ColumnDef] = &WAKEUP_ALL;

static TASK: &[ColumnDef] = &[
    c(TS, "ts", DeltaTs, true),
    c(1, "pid", Uv, true),
    c(2, "tgid", Uv, true),
    c(3, "ppid", Uv, true),
    c(4, "prio", Sv, true),
    c(5, "policy", Uv, true),
    c(6, "event", Uv, true),
    c(7, "comm", Bytes, true),
];

static MIGRATE: &[ColumnDef] = &[
    c(TS, "ts", DeltaTs, true),
    c(1, "pid", Uv, true),
    c(2, "orig_cpu", Uv, true),
    c(3, "dest_cpu", Uv, true),
];

static PELT_ALL: [ColumnDef; 14] = cat::<4, 10, 14>(
    [
        c(TS, "ts", DeltaTs, true),
        c(pe::ENTITY, "entity", Uv, true),
        c(pe::RQ_CPU, "rq_cpu", Uv, true),
        c(pe::PID, "pid", Uv, true),
    ],
    cat::<6, 4, 10>(
        avg_group!(pe::AVG, pe::PID, ""),
        sums_group!(pe::SUMS, pe::PID, ""),
    ),
);
static PELT: &[ColumnDef] = &PELT_ALL;

static CPU_FREQ: &[ColumnDef] = &[
    c(TS, "ts", DeltaTs, true),
    c(1, "target_cpu", Uv, true),
    c(2, "freq_khz", Uv, true),
];

static LOSS: &[ColumnDef] = &[
    c(TS, "ts", DeltaTs, true),
    c(1, "end_ts", Rel(TS), true),
    c(2, "count", Uv, true),
];

static MARKER: &[ColumnDef] = &[c(TS, "ts", DeltaTs, true), c(1, "text", Bytes, true)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_well_formed() {
        for kind in Kind::ALL {
            let cols = kind.columns();
            let mut seen = 0u64;
            for (i, col) in cols.iter().enumerate() {
                assert!(col.bit < 64, "{kind:?} {}", col.name);
                assert_eq!(seen & (1 << col.bit), 0, "{kind:?}: bit {} twice", col.bit);
                seen |= 1 << col.bit;
                if i > 0 {
                    assert!(cols[i - 1].bit < col.bit, "{kind:?}: bits out of order");
                }
                // Every column a coding refers to has a lower bit and is required
                // (or in the same optional group, before it).
                let dep = match col.coding {
                    KeyedRel(k, _)
                    | KeyedScaled(k, _)
                    | Keyed(k)
                    | Chain(k)
                    | Rel(k)
                    | RelDelta(k) => Some(k),
                    RelSlice | DeltaTs => (col.bit != TS).then_some(TS),
                    _ => None,
                };
                if let Some(b) = dep {
                    let d = kind.column(b).expect("dependency exists");
                    assert!(
                        b < col.bit || matches!(col.coding, Chain(_)),
                        "{kind:?} {} depends on a later column",
                        col.name
                    );
                    assert!(
                        d.required || (b < col.bit && b >= sw::COUNTERS),
                        "{kind:?} {} depends on optional column {}",
                        col.name,
                        d.name
                    );
                }
            }
            assert_eq!(cols[0].bit, TS);
            assert_eq!(cols[0].coding, DeltaTs);
        }
        assert_eq!(
            Kind::Switch.column(sw::NEXT_SUMS + 3).unwrap().name,
            "next_period_contrib"
        );
        assert_eq!(
            Kind::Switch.column(sw::PREV_AVG + 1).unwrap().name,
            "prev_util_avg"
        );
        assert_eq!(
            Kind::Switch.column(sw::COUNTERS + 11).unwrap().name,
            "cache_misses_running"
        );
        assert_eq!(
            Kind::Switch.column(sw::COUNTERS + 4).unwrap().name,
            "instructions"
        );
    }
}
