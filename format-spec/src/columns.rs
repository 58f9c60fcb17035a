//! A chunk's contents as columns (struct of arrays), the transforms of
//! SPEC.md §4 between logical values and stored varints, and the mapping
//! between columns and typed records.

use crate::record::*;
use crate::schema::{pe, sw, wk, Coding, Kind, PELT_ON_RQ, PELT_SCHED_DELAYED, TS};
use crate::varint::{get_uleb, get_ulebs, put_uleb, unzigzag, zigzag};

/// Open-addressing map from key to last value for the keyed codings: a
/// chunk holds few distinct keys (pids), and this is on the decode hot path.
pub(crate) struct KeyMap {
    slots: Vec<Slot>,
    len: usize,
    bits: u32,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    val: u64,
    used: bool,
}

impl KeyMap {
    pub(crate) fn new() -> Self {
        let bits = 8;
        KeyMap {
            slots: vec![Slot::default(); 1 << bits],
            len: 0,
            bits,
        }
    }
    fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill(Slot::default());
            self.len = 0;
        }
    }
    /// The value stored for `key`, inserting 0 when absent.
    #[inline]
    fn slot(&mut self, key: u64) -> &mut u64 {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize;
        loop {
            let s = &self.slots[i];
            if !s.used || s.key == key {
                break;
            }
            i = (i + 1) & mask;
        }
        let s = &mut self.slots[i];
        if !s.used {
            *s = Slot {
                key,
                val: 0,
                used: true,
            };
            self.len += 1;
        }
        &mut s.val
    }
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.bits += 1;
        self.slots = vec![Slot::default(); 1 << self.bits];
        self.len = 0;
        for s in old.into_iter().filter(|s| s.used) {
            *self.slot(s.key) = s.val;
        }
    }
}

/// Dense ids of a chunk's key columns: for each key column used by a keyed
/// coding, each record's key mapped to 0, 1, 2, … in order of first
/// appearance. Keyed codings then index plain vectors instead of hashing,
/// and the columns sharing a key (tgid and prio by pid, …) share the work.
struct KeyIds {
    ids: Vec<Option<(Vec<u32>, usize)>>,
    map: KeyMap,
}

impl KeyIds {
    fn new() -> Self {
        KeyIds {
            ids: vec![None; 64],
            map: KeyMap::new(),
        }
    }
    /// The ids of key column `k` (whose values are `keys`), and how many distinct keys.
    fn get(&mut self, k: u8, keys: &[u64]) -> (&[u32], usize) {
        if self.ids[k as usize].is_none() {
            self.map.clear();
            let mut n = 0u64;
            let map = &mut self.map;
            let dense: Vec<u32> = keys
                .iter()
                .map(|&key| {
                    let s = map.slot(key);
                    if *s == 0 {
                        n += 1;
                        *s = n;
                    }
                    (*s - 1) as u32
                })
                .collect();
            self.ids[k as usize] = Some((dense, n as usize));
        }
        let (ids, n) = self.ids[k as usize].as_ref().expect("just computed");
        (ids, *n)
    }
}

/// The `KeyedScaled` prediction: `other * last_v / last_o` (128-bit,
/// clamped), or `last_v` when `last_o` is 0.
#[inline]
fn scaled(last_v: u64, last_o: u64, other: u64) -> u64 {
    if last_o == 0 {
        last_v
    } else {
        u64::try_from(other as u128 * last_v as u128 / last_o as u128).unwrap_or(u64::MAX)
    }
}

/// One column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum ColData {
    U64(Vec<u64>),
    Bytes(Vec<Vec<u8>>),
}

/// The records of one chunk, column by column.
#[derive(Clone, Debug)]
pub struct Columns {
    pub kind: Kind,
    pub cpu: u32,
    pub len: usize,
    /// Bit `b` set: column `b` is present.
    pub present: u64,
    cols: Vec<Option<ColData>>,
    /// Approximate heap bytes held (for the writer's memory bound).
    held: usize,
}

/// Column groups that are present together or not at all.
fn groups(kind: Kind) -> &'static [(u8, u8)] {
    match kind {
        Kind::Switch => &[
            (sw::COUNTERS, 3),
            (sw::COUNTERS + 3, 3),
            (sw::COUNTERS + 6, 3),
            (sw::COUNTERS + 9, 3),
            (sw::PREV_AVG, 6),
            (sw::PREV_SUMS, 4),
            (sw::NEXT_AVG, 6),
            (sw::NEXT_SUMS, 4),
        ],
        Kind::Wakeup => &[(wk::AVG, 6), (wk::SUMS, 4)],
        Kind::Pelt => &[(pe::AVG, 6), (pe::SUMS, 4)],
        _ => &[],
    }
}

const fn mask(base: u8, n: u8) -> u64 {
    ((1u64 << n) - 1) << base
}

fn avg_mask(base: u8, p: &Option<PeltAvg>) -> u64 {
    if p.is_some() {
        mask(base, 6)
    } else {
        0
    }
}
fn sums_mask(base: u8, p: &Option<PeltSums>) -> u64 {
    if p.is_some() {
        mask(base, 4)
    } else {
        0
    }
}

impl Record {
    /// The set of columns this record needs.
    pub fn column_mask(&self) -> u64 {
        let k = self.kind();
        let req = k.required();
        req | match self {
            Record::Switch(s) => {
                let mut m = 0;
                for (i, c) in s.counters.iter().enumerate() {
                    if c.is_some() {
                        m |= mask(sw::COUNTERS + 3 * i as u8, 3);
                    }
                }
                m | avg_mask(sw::PREV_AVG, &s.prev_pelt)
                    | sums_mask(sw::PREV_SUMS, &s.prev_sums)
                    | avg_mask(sw::NEXT_AVG, &s.next_pelt)
                    | sums_mask(sw::NEXT_SUMS, &s.next_sums)
            }
            Record::Wakeup(w) => avg_mask(wk::AVG, &w.pelt) | sums_mask(wk::SUMS, &w.sums),
            Record::Pelt(p) => mask(pe::AVG, 6) | sums_mask(pe::SUMS, &p.sums),
            _ => 0,
        }
    }
}

fn pelt_flags(p: &PeltAvg) -> u64 {
    ((p.on_rq as u64) * PELT_ON_RQ) | ((p.sched_delayed as u64) * PELT_SCHED_DELAYED)
}

impl Columns {
    pub fn new(kind: Kind, cpu: u32, present: u64) -> Self {
        Columns::with_capacity(kind, cpu, present, 0)
    }

    /// Empty columns with room for `cap` records each.
    pub fn with_capacity(kind: Kind, cpu: u32, present: u64, cap: usize) -> Self {
        let mut cols = Vec::with_capacity(64);
        for bit in 0..64u8 {
            cols.push(if present & (1 << bit) == 0 {
                None
            } else if kind.column(bit).map(|c| c.coding) == Some(Coding::Bytes) {
                Some(ColData::Bytes(Vec::with_capacity(cap)))
            } else {
                Some(ColData::U64(Vec::with_capacity(cap)))
            });
        }
        Columns {
            kind,
            cpu,
            len: 0,
            present,
            cols,
            held: 0,
        }
    }

    /// The values of a 64-bit column, if present.
    pub fn u64s(&self, bit: u8) -> Option<&[u64]> {
        match self.cols.get(bit as usize)? {
            Some(ColData::U64(v)) => Some(v),
            _ => None,
        }
    }

    pub fn bytes(&self, bit: u8) -> Option<&[Vec<u8>]> {
        match self.cols.get(bit as usize)? {
            Some(ColData::Bytes(v)) => Some(v),
            _ => None,
        }
    }

    /// Timestamps (always present).
    pub fn ts(&self) -> &[u64] {
        self.u64s(TS).unwrap_or(&[])
    }

    #[inline(always)]
    fn put(&mut self, bit: u8, v: u64) {
        match &mut self.cols[bit as usize] {
            Some(ColData::U64(c)) => c.push(v),
            _ => unreachable!(
                "column {bit} of {:?} is not a present u64 column",
                self.kind
            ),
        }
    }
    fn put_bytes(&mut self, bit: u8, v: &[u8]) {
        self.held += v.len() + 24;
        match &mut self.cols[bit as usize] {
            Some(ColData::Bytes(c)) => c.push(v.to_vec()),
            _ => unreachable!("column {bit} of {:?} is not a bytes column", self.kind),
        }
    }
    fn put_avg(&mut self, base: u8, p: &PeltAvg) {
        self.put(base, p.runnable_avg);
        self.put(base + 1, p.util_avg);
        self.put(base + 2, p.load_avg);
        self.put(base + 3, p.util_est as u64);
        self.put(base + 4, p.last_update_time);
        self.put(base + 5, pelt_flags(p));
    }
    fn put_sums(&mut self, base: u8, p: &PeltSums) {
        self.put(base, p.load_sum);
        self.put(base + 1, p.runnable_sum);
        self.put(base + 2, p.util_sum);
        self.put(base + 3, p.period_contrib as u64);
    }

    /// Appends a record. The caller guarantees `r.kind() == self.kind`,
    /// `r.cpu() == self.cpu` and `r.column_mask() == self.present`.
    #[inline]
    pub fn push(&mut self, r: &Record) {
        debug_assert_eq!(r.kind(), self.kind);
        debug_assert_eq!(r.column_mask(), self.present);
        self.put(TS, r.ts());
        match r {
            Record::Switch(s) => {
                self.put(sw::NEXT_PID, s.next.pid as u64);
                self.put(sw::NEXT_TGID, s.next.tgid as u64);
                self.put(sw::NEXT_PRIO, s.next.prio as i64 as u64);
                self.put(sw::PREV_PID, s.prev.pid as u64);
                self.put(sw::PREV_TGID, s.prev.tgid as u64);
                self.put(sw::PREV_PRIO, s.prev.prio as i64 as u64);
                self.put(sw::PREV_STATE, s.prev_state as u64);
                self.put(sw::FLAGS, s.preempt as u64 * sw::FLAG_PREEMPT);
                for (k, c) in s.counters.iter().enumerate() {
                    if let Some(c) = c {
                        let b = sw::COUNTERS + 3 * k as u8;
                        self.put(b, c.enabled);
                        self.put(b + 1, c.value);
                        self.put(b + 2, c.running);
                    }
                }
                if let Some(p) = &s.prev_pelt {
                    self.put_avg(sw::PREV_AVG, p);
                }
                if let Some(p) = &s.prev_sums {
                    self.put_sums(sw::PREV_SUMS, p);
                }
                if let Some(p) = &s.next_pelt {
                    self.put_avg(sw::NEXT_AVG, p);
                }
                if let Some(p) = &s.next_sums {
                    self.put_sums(sw::NEXT_SUMS, p);
                }
            }
            Record::Wakeup(w) => {
                self.put(wk::PID, w.pid as u64);
                self.put(wk::TARGET_CPU, w.target_cpu as u64);
                self.put(wk::FLAGS, w.new as u64 * wk::FLAG_NEW);
                if let Some(p) = &w.pelt {
                    self.put_avg(wk::AVG, p);
                }
                if let Some(p) = &w.sums {
                    self.put_sums(wk::SUMS, p);
                }
            }
            Record::Task(t) => {
                self.put(1, t.pid as u64);
                self.put(2, t.tgid as u64);
                self.put(3, t.ppid as u64);
                self.put(4, t.prio as i64 as u64);
                self.put(5, t.policy as u64);
                self.put(6, t.event.to_u64());
                self.put_bytes(7, &t.comm);
            }
            Record::Migrate(m) => {
                self.put(1, m.pid as u64);
                self.put(2, m.orig_cpu as u64);
                self.put(3, m.dest_cpu as u64);
            }
            Record::Pelt(p) => {
                self.put(pe::ENTITY, p.entity.to_u64());
                self.put(pe::RQ_CPU, p.rq_cpu as u64);
                self.put(pe::PID, p.pid as u64);
                self.put_avg(pe::AVG, &p.avg);
                if let Some(s) = &p.sums {
                    self.put_sums(pe::SUMS, s);
                }
            }
            Record::CpuFreq(f) => {
                self.put(1, f.target_cpu as u64);
                self.put(2, f.freq_khz);
            }
            Record::Loss(l) => {
                self.put(1, l.end_ts);
                self.put(2, l.count);
            }
            Record::Marker(m) => self.put_bytes(1, &m.text),
        }
        self.len += 1;
        self.held += 8 * self.present.count_ones() as usize;
    }

    /// Smallest and largest timestamp (0, 0 when empty).
    pub fn ts_range(&self) -> (u64, u64) {
        let ts = self.ts();
        match (ts.iter().min(), ts.iter().max()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => (0, 0),
        }
    }

    /// Approximate bytes held in memory (for the writer's memory bound).
    pub fn heap_bytes(&self) -> usize {
        self.held
    }

    /// Encodes the raw (uncompressed) payload: for each present column in
    /// ascending bit order, uleb(byte length) then the column's varints.
    pub fn encode(&self, ts_min: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len * 8 + 64);
        let mut col = Vec::with_capacity(self.len * 3);
        let mut ids = KeyIds::new();
        for bit in 0..64u8 {
            if self.encode_column(bit, ts_min, &mut col, &mut ids) {
                put_uleb(&mut out, col.len() as u64);
                out.extend_from_slice(&col);
            }
        }
        out
    }

    /// Encodes column `bit` into `col` (cleared first); false when absent.
    fn encode_column(&self, bit: u8, ts_min: u64, col: &mut Vec<u8>, ids: &mut KeyIds) -> bool {
        {
            let Some(data) = &self.cols[bit as usize] else {
                return false;
            };
            col.clear();
            let coding = self
                .kind
                .column(bit)
                .map(|c| c.coding)
                .unwrap_or(Coding::Uv);
            match data {
                ColData::Bytes(vals) => {
                    for v in vals {
                        put_uleb(col, v.len() as u64);
                        col.extend_from_slice(v);
                    }
                }
                ColData::U64(vals) => {
                    let dep = |b: u8| self.u64s(b).expect("dependency present");
                    let zz = |a: u64, b: u64| zigzag(a.wrapping_sub(b) as i64);
                    match coding {
                        Coding::Uv | Coding::Bytes => vals.iter().for_each(|&v| put_uleb(col, v)),
                        Coding::Sv => vals.iter().for_each(|&v| put_uleb(col, zigzag(v as i64))),
                        Coding::DeltaTs => {
                            let mut prev = ts_min;
                            for &v in vals {
                                put_uleb(col, zz(v, prev));
                                prev = v;
                            }
                        }
                        Coding::Keyed(k) => {
                            let (id, n) = ids.get(k, dep(k));
                            let mut last = vec![0u64; n];
                            for (&v, &id) in vals.iter().zip(id) {
                                let old = std::mem::replace(&mut last[id as usize], v);
                                put_uleb(col, zz(v, old));
                            }
                        }
                        Coding::KeyedRel(k, o) => {
                            let (id, n) = ids.get(k, dep(k));
                            let mut last = vec![0u64; n];
                            for ((&v, &id), &other) in vals.iter().zip(id).zip(dep(o)) {
                                let d = v.wrapping_sub(other);
                                let old = std::mem::replace(&mut last[id as usize], d);
                                put_uleb(col, zz(d, old));
                            }
                        }
                        Coding::KeyedScaled(k, o) => {
                            let (id, n) = ids.get(k, dep(k));
                            let (mut lv, mut lo) = (vec![0u64; n], vec![0u64; n]);
                            for ((&v, &id), &other) in vals.iter().zip(id).zip(dep(o)) {
                                let id = id as usize;
                                put_uleb(col, zz(v, scaled(lv[id], lo[id], other)));
                                lv[id] = v;
                                lo[id] = other;
                            }
                        }
                        Coding::Chain(o) => {
                            let mut prev = 0;
                            for (&v, &other) in vals.iter().zip(dep(o)) {
                                put_uleb(col, zz(v, prev));
                                prev = other;
                            }
                        }
                        Coding::Rel(o) => {
                            for (&v, &other) in vals.iter().zip(dep(o)) {
                                put_uleb(col, zz(v, other));
                            }
                        }
                        Coding::RelDelta(o) => {
                            let mut dprev = 0u64;
                            for (&v, &other) in vals.iter().zip(dep(o)) {
                                let d = v.wrapping_sub(other);
                                put_uleb(col, zz(d, dprev));
                                dprev = d;
                            }
                        }
                        Coding::RelSlice => {
                            let ts = dep(TS);
                            for (i, &v) in vals.iter().enumerate() {
                                let slice = if i == 0 {
                                    0
                                } else {
                                    ts[i].wrapping_sub(ts[i - 1])
                                };
                                put_uleb(col, zz(v, slice));
                            }
                        }
                    }
                }
            }
        }
        true
    }

    /// Decodes a raw payload. Columns this reader does not know are skipped.
    /// Errors are short descriptions; the caller adds the chunk's position.
    pub fn decode(
        kind: Kind,
        cpu: u32,
        present: u64,
        count: usize,
        ts_min: u64,
        raw: &[u8],
    ) -> Result<Columns, String> {
        let required = kind.required();
        if present & required != required {
            return Err(format!(
                "{} chunk lacks required columns (mask {present:#x}, needs {required:#x})",
                kind.name()
            ));
        }
        for &(base, n) in groups(kind) {
            let m = mask(base, n);
            if present & m != 0 && present & m != m {
                return Err(format!(
                    "{} chunk has part of the column group at bits {base}..{}",
                    kind.name(),
                    base + n - 1
                ));
            }
        }
        let known = kind.known();
        let mut cols = Columns::new(kind, cpu, present & known);
        cols.present = present;
        cols.len = count;
        let mut pos = 0usize;
        let mut ids = KeyIds::new();
        for bit in 0..64u8 {
            if present & (1 << bit) == 0 {
                continue;
            }
            let len = get_uleb(raw, &mut pos).map_err(|e| format!("column {bit} length: {e}"))?;
            let end = pos
                .checked_add(usize::try_from(len).unwrap_or(usize::MAX))
                .filter(|&e| e <= raw.len())
                .ok_or_else(|| format!("column {bit} runs past the payload"))?;
            let buf = &raw[pos..end];
            pos = end;
            let Some(def) = kind.column(bit) else {
                continue; // a newer minor version's column: skip it
            };
            let mut p = 0usize;
            let err = |e: &str| format!("column {} ({bit}): {e}", def.name);
            if def.coding == Coding::Bytes {
                let mut vals = Vec::with_capacity(count.min(buf.len()));
                for _ in 0..count {
                    let n = get_uleb(buf, &mut p).map_err(err)?;
                    let e = p
                        .checked_add(usize::try_from(n).unwrap_or(usize::MAX))
                        .filter(|&e| e <= buf.len())
                        .ok_or_else(|| err("string runs past the column"))?;
                    vals.push(buf[p..e].to_vec());
                    p = e;
                }
                cols.cols[bit as usize] = Some(ColData::Bytes(vals));
            } else {
                if count > buf.len() {
                    return Err(err("fewer bytes than records"));
                }
                // Varints first (tight loop), then the coding's transform in place.
                let mut vals = Vec::with_capacity(count);
                p = get_ulebs(buf, count, &mut vals).map_err(err)?;
                let dep = |b: u8| -> Result<&[u64], String> {
                    cols.u64s(b)
                        .filter(|d| d.len() == count)
                        .ok_or_else(|| err("depends on a column that is absent"))
                };
                let un = |z: u64, base: u64| base.wrapping_add(unzigzag(z) as u64);
                match def.coding {
                    Coding::Uv | Coding::Bytes => {}
                    Coding::Sv => vals.iter_mut().for_each(|v| *v = unzigzag(*v) as u64),
                    Coding::DeltaTs => {
                        let mut prev = ts_min;
                        for v in vals.iter_mut() {
                            prev = un(*v, prev);
                            *v = prev;
                        }
                    }
                    Coding::Keyed(k) => {
                        let (id, n) = ids.get(k, dep(k)?);
                        let mut last = vec![0u64; n];
                        for (v, &id) in vals.iter_mut().zip(id) {
                            let s = &mut last[id as usize];
                            *s = un(*v, *s);
                            *v = *s;
                        }
                    }
                    Coding::KeyedRel(k, o) => {
                        let (id, n) = ids.get(k, dep(k)?);
                        let mut last = vec![0u64; n];
                        for ((v, &id), &other) in vals.iter_mut().zip(id).zip(dep(o)?) {
                            let s = &mut last[id as usize];
                            *s = un(*v, *s);
                            *v = other.wrapping_add(*s);
                        }
                    }
                    Coding::KeyedScaled(k, o) => {
                        let (id, n) = ids.get(k, dep(k)?);
                        let (mut lv, mut lo) = (vec![0u64; n], vec![0u64; n]);
                        for ((v, &id), &other) in vals.iter_mut().zip(id).zip(dep(o)?) {
                            let id = id as usize;
                            *v = un(*v, scaled(lv[id], lo[id], other));
                            lv[id] = *v;
                            lo[id] = other;
                        }
                    }
                    Coding::Chain(o) => {
                        let mut prev = 0;
                        for (v, &other) in vals.iter_mut().zip(dep(o)?) {
                            *v = un(*v, prev);
                            prev = other;
                        }
                    }
                    Coding::Rel(o) => {
                        for (v, &other) in vals.iter_mut().zip(dep(o)?) {
                            *v = un(*v, other);
                        }
                    }
                    Coding::RelDelta(o) => {
                        let mut dprev = 0u64;
                        for (v, &other) in vals.iter_mut().zip(dep(o)?) {
                            dprev = un(*v, dprev);
                            *v = other.wrapping_add(dprev);
                        }
                    }
                    Coding::RelSlice => {
                        let ts = dep(TS)?;
                        for i in 0..count {
                            let slice = if i == 0 {
                                0
                            } else {
                                ts[i].wrapping_sub(ts[i - 1])
                            };
                            vals[i] = un(vals[i], slice);
                        }
                    }
                }
                cols.cols[bit as usize] = Some(ColData::U64(vals));
            }
            if p != buf.len() {
                return Err(err("bytes left over after its values"));
            }
        }
        if pos != raw.len() {
            return Err(format!("{} bytes after the last column", raw.len() - pos));
        }
        Ok(cols)
    }

    /// The record at index `i` (< len). Fails on a value out of its field's range.
    pub fn record(&self, i: usize) -> Result<Record, String> {
        let ts = self.ts()[i];
        let cpu = self.cpu;
        let g = |bit: u8| -> u64 { self.u64s(bit).map(|c| c[i]).unwrap_or(0) };
        let has = |bit: u8| self.present & (1 << bit) != 0;
        let u32_ = |bit: u8| -> Result<u32, String> {
            let v = g(bit);
            u32::try_from(v).map_err(|_| {
                format!(
                    "{} = {v} does not fit 32 bits",
                    self.kind.column(bit).map_or("?", |c| c.name)
                )
            })
        };
        let i32_ = |bit: u8| -> Result<i32, String> {
            let v = g(bit) as i64;
            i32::try_from(v).map_err(|_| {
                format!(
                    "{} = {v} does not fit a signed 32-bit value",
                    self.kind.column(bit).map_or("?", |c| c.name)
                )
            })
        };
        let avg = |base: u8| -> Result<Option<PeltAvg>, String> {
            if !has(base) {
                return Ok(None);
            }
            let flags = g(base + 5);
            Ok(Some(PeltAvg {
                runnable_avg: g(base),
                util_avg: g(base + 1),
                load_avg: g(base + 2),
                util_est: u32_(base + 3)?,
                last_update_time: g(base + 4),
                on_rq: flags & PELT_ON_RQ != 0,
                sched_delayed: flags & PELT_SCHED_DELAYED != 0,
            }))
        };
        let sums = |base: u8| -> Result<Option<PeltSums>, String> {
            if !has(base) {
                return Ok(None);
            }
            Ok(Some(PeltSums {
                load_sum: g(base),
                runnable_sum: g(base + 1),
                util_sum: g(base + 2),
                period_contrib: u32_(base + 3)?,
            }))
        };
        let bytes = |bit: u8| self.bytes(bit).map(|b| b[i].clone()).unwrap_or_default();
        Ok(match self.kind {
            Kind::Switch => {
                let mut counters = [None; 4];
                for (k, slot) in counters.iter_mut().enumerate() {
                    let b = sw::COUNTERS + 3 * k as u8;
                    if has(b) {
                        *slot = Some(Counter {
                            enabled: g(b),
                            value: g(b + 1),
                            running: g(b + 2),
                        });
                    }
                }
                Record::Switch(Switch {
                    ts,
                    cpu,
                    prev: TaskRef {
                        pid: u32_(sw::PREV_PID)?,
                        tgid: u32_(sw::PREV_TGID)?,
                        prio: i32_(sw::PREV_PRIO)?,
                    },
                    prev_state: u32_(sw::PREV_STATE)?,
                    next: TaskRef {
                        pid: u32_(sw::NEXT_PID)?,
                        tgid: u32_(sw::NEXT_TGID)?,
                        prio: i32_(sw::NEXT_PRIO)?,
                    },
                    preempt: g(sw::FLAGS) & sw::FLAG_PREEMPT != 0,
                    counters,
                    prev_pelt: avg(sw::PREV_AVG)?,
                    prev_sums: sums(sw::PREV_SUMS)?,
                    next_pelt: avg(sw::NEXT_AVG)?,
                    next_sums: sums(sw::NEXT_SUMS)?,
                })
            }
            Kind::Wakeup => Record::Wakeup(Wakeup {
                ts,
                cpu,
                pid: u32_(wk::PID)?,
                target_cpu: u32_(wk::TARGET_CPU)?,
                new: g(wk::FLAGS) & wk::FLAG_NEW != 0,
                pelt: avg(wk::AVG)?,
                sums: sums(wk::SUMS)?,
            }),
            Kind::Task => Record::Task(Task {
                ts,
                cpu,
                pid: u32_(1)?,
                tgid: u32_(2)?,
                ppid: u32_(3)?,
                prio: i32_(4)?,
                policy: u32_(5)?,
                event: TaskEvent::from_u64(g(6)),
                comm: bytes(7),
            }),
            Kind::Migrate => Record::Migrate(Migrate {
                ts,
                cpu,
                pid: u32_(1)?,
                orig_cpu: u32_(2)?,
                dest_cpu: u32_(3)?,
            }),
            Kind::Pelt => Record::Pelt(PeltUpdate {
                ts,
                cpu,
                entity: Entity::from_u64(g(pe::ENTITY)),
                rq_cpu: u32_(pe::RQ_CPU)?,
                pid: u32_(pe::PID)?,
                avg: avg(pe::AVG)?.unwrap_or_default(),
                sums: sums(pe::SUMS)?,
            }),
            Kind::CpuFreq => Record::CpuFreq(CpuFreq {
                ts,
                cpu,
                target_cpu: u32_(1)?,
                freq_khz: g(2),
            }),
            Kind::Loss => Record::Loss(Loss {
                ts,
                cpu,
                end_ts: g(1),
                count: g(2),
            }),
            Kind::Marker => Record::Marker(Marker {
                ts,
                cpu,
                text: bytes(1),
            }),
        })
    }
}

/// Each present column of `cols` encoded alone: (bit, varint bytes).
pub fn split_payload(cols: &Columns, ts_min: u64) -> Vec<(u8, Vec<u8>)> {
    let mut ids = KeyIds::new();
    let mut out = Vec::new();
    for bit in 0..64u8 {
        let mut col = Vec::new();
        if cols.encode_column(bit, ts_min, &mut col, &mut ids) {
            out.push((bit, col));
        }
    }
    out
}
