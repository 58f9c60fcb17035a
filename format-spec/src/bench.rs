//! The measurements behind `schedrec bench format`: write cost per core,
//! decode rate on one and two threads, merged-iteration rate and bytes per
//! switch of one synthetic stream, measured in one run.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::reader::{Filter, Reader};
use crate::record::Record;
use crate::summary::Summary;
use crate::synth::{generate, metadata, Spec};
use crate::writer::{Writer, WriterOptions};

/// Figures for one stream. Rates are in millions of records per second.
#[derive(Clone, Debug, Default)]
pub struct StreamFigures {
    pub switches: u64,
    pub records: u64,
    /// Bytes of switch chunks per switch, and of the whole file per switch.
    pub switch_bytes: f64,
    pub file_bytes: f64,
    /// Records per second on one core: push time plus background time.
    pub write: f64,
    pub push_ns: f64,
    pub background_ns: f64,
    pub decode1: f64,
    pub decode2: f64,
    pub merged: f64,
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64() / 1e6
}

/// Writes `spec`'s trace to `path` and measures it.
pub fn measure_stream(spec: &Spec, path: &Path, zstd_level: i32) -> Result<StreamFigures> {
    let meta = metadata(spec, spec.seed, vec![]);
    // Write cost on one core = time in `push` + the background thread's
    // busy time. Records are generated beforehand in small batches, so
    // that they are in cache when pushed, as a recorder's are.
    let opts = WriterOptions {
        zstd_level,
        ..Default::default()
    };
    let mut w = Writer::create(path, &meta, opts)?;
    let stats = w.stats();
    let mut batch: Vec<Record> = Vec::with_capacity(8192);
    let mut pushing = Duration::ZERO;
    let mut records = 0u64;
    let mut drain = |batch: &mut Vec<Record>, w: &mut Writer| -> Result<()> {
        let t = Instant::now();
        for r in batch.iter() {
            w.push(r)?;
        }
        pushing += t.elapsed();
        records += batch.len() as u64;
        batch.clear();
        Ok(())
    };
    generate(spec, spec.seed, |r| {
        batch.push(r);
        if batch.len() == batch.capacity() {
            drain(&mut batch, &mut w)?;
        }
        Ok(())
    })?;
    drain(&mut batch, &mut w)?;
    drop(batch);
    // (finish() only waits for the background thread, whose time is
    // counted in busy_ns, and writes the footer.)
    w.finish()?;
    let ns = |a: &AtomicU64| Duration::from_nanos(a.load(Ordering::Relaxed));
    let busy = ns(&stats.busy_ns);
    // Time blocked on a full queue is waiting for the background thread,
    // whose work is already in `busy`.
    let pushing = pushing.saturating_sub(ns(&stats.blocked_ns));
    let spent = pushing + busy;

    let r = Reader::open(path)?;
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| Error::WriterFailed(e.to_string()))?;
    let pool2 = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .map_err(|e| Error::WriterFailed(e.to_string()))?;
    let s = Summary::of(&r)?;
    let decode = |pool: &rayon::ThreadPool| -> Result<Duration> {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let n: usize = pool.install(|| {
                r.par_decode(&Filter::default())
                    .map(|d| d.map(|d| d.len()))
                    .try_reduce(|| 0, |a, b| Ok(a + b))
            })?;
            best = best.min(t.elapsed());
            if n as u64 != records {
                return Err(Error::InvalidRecord(format!(
                    "decoded {n} of {records} records"
                )));
            }
        }
        Ok(best)
    };
    let d1 = decode(&pool1)?;
    let d2 = decode(&pool2)?;
    let t = Instant::now();
    let mut n = 0u64;
    pool1.install(|| -> Result<()> {
        for rec in r.records(Filter::default()) {
            std::hint::black_box(rec?);
            n += 1;
        }
        Ok(())
    })?;
    let merged = t.elapsed();
    Ok(StreamFigures {
        switches: s.switches,
        records,
        switch_bytes: s.bytes_per_switch,
        file_bytes: s.file_bytes as f64 / s.switches.max(1) as f64,
        write: rate(records, spent),
        push_ns: pushing.as_nanos() as f64 / records as f64,
        background_ns: busy.as_nanos() as f64 / records as f64,
        decode1: rate(records, d1),
        decode2: rate(records, d2),
        merged: rate(n, merged),
    })
}
