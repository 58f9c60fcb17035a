//! What `schedrec info` reports about a file, computed from chunk headers
//! (plus the loss chunks, which are decoded to add up lost events).

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::error::Result;
use crate::reader::{Filter, Reader};
use crate::record::{Record, CPU_NONE};
use crate::schema::Kind;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub complete: bool,
    pub recovery: Option<String>,
    pub chunks: usize,
    /// Records per kind name (unknown kinds as "kind<N>").
    pub records: BTreeMap<String, u64>,
    pub switches: u64,
    pub lost_events: u64,
    /// Smallest and largest timestamp over all records (0 when empty).
    pub start_ns: u64,
    pub end_ns: u64,
    /// CPUs that have records.
    pub cpus: Vec<u32>,
    pub file_bytes: u64,
    /// Payload bytes before and after compression.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Bytes of switch chunks (headers included) per switch record.
    pub bytes_per_switch: f64,
}

impl Summary {
    pub fn of(reader: &Reader) -> Result<Summary> {
        let mut s = Summary {
            complete: reader.is_complete(),
            recovery: reader.recovery().map(str::to_string),
            chunks: reader.chunks().len(),
            file_bytes: reader.file_len(),
            ..Default::default()
        };
        let mut cpus = std::collections::BTreeSet::new();
        let mut switch_bytes = 0u64;
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for c in reader.chunks() {
            let name = c
                .kind()
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("kind{}", c.kind_raw));
            *s.records.entry(name).or_default() += c.count as u64;
            if c.kind() == Some(Kind::Switch) {
                s.switches += c.count as u64;
                switch_bytes += c.total_len();
            }
            if c.count > 0 {
                lo = lo.min(c.ts_min);
                hi = hi.max(c.ts_max);
            }
            if c.cpu != CPU_NONE {
                cpus.insert(c.cpu);
            }
            s.raw_bytes += c.raw_len as u64;
            s.stored_bytes += c.stored_len as u64;
        }
        if lo <= hi {
            s.start_ns = lo;
            s.end_ns = hi;
        }
        s.cpus = cpus.into_iter().collect();
        if s.switches > 0 {
            s.bytes_per_switch = switch_bytes as f64 / s.switches as f64;
        }
        let losses = Filter {
            kinds: Some(vec![Kind::Loss]),
            ..Default::default()
        };
        for d in reader.par_decode(&losses).collect::<Vec<_>>() {
            for r in d?.records() {
                if let Record::Loss(l) = r? {
                    s.lost_events += l.count;
                }
            }
        }
        Ok(s)
    }
}

/// Bytes one column takes, summed over a file's chunks of its kind.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSize {
    pub kind: Kind,
    pub bit: u8,
    pub name: String,
    pub values: u64,
    /// Encoded (varint) bytes.
    pub raw_bytes: u64,
    /// The column compressed alone with zstd level 1 (the chunk compresses
    /// all columns together, so this is an estimate of its share).
    pub zstd_bytes: u64,
}

/// Per-column sizes (for `schedrec info --columns`), decoding every chunk.
pub fn column_sizes(reader: &Reader) -> Result<Vec<ColumnSize>> {
    let mut out: std::collections::BTreeMap<(Kind, u8), ColumnSize> = Default::default();
    for i in 0..reader.chunks().len() {
        let c = reader.chunks()[i];
        let Some(kind) = c.kind() else { continue };
        let d = reader.decode(i)?;
        for col in crate::columns::split_payload(&d.columns, c.ts_min) {
            let (bit, bytes) = col;
            let z = zstd::bulk::compress(&bytes, 1)
                .map(|z| z.len())
                .unwrap_or(bytes.len());
            let e = out.entry((kind, bit)).or_insert_with(|| ColumnSize {
                kind,
                bit,
                name: kind
                    .column(bit)
                    .map_or(format!("bit{bit}"), |c| c.name.to_string()),
                values: 0,
                raw_bytes: 0,
                zstd_bytes: 0,
            });
            e.values += c.count as u64;
            e.raw_bytes += bytes.len() as u64;
            e.zstd_bytes += z as u64;
        }
    }
    Ok(out.into_values().collect())
}
