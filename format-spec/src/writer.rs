//! Streaming writer: bounded memory, compression and I/O on a background
//! thread, `flush()` for durability, `finish()` for the footer.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustc_hash::FxHashMap;

use crate::chunk::{encode_footer, ChunkInfo, Codec};
use crate::columns::Columns;
use crate::error::{Error, Result};
use crate::meta::{encode_header, Metadata};
use crate::record::Record;
use crate::schema::{sw, Kind};

/// Largest byte string (comm, marker text) a record may carry.
pub const MAX_STRING_LEN: usize = 1 << 16;

#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Records per chunk (per kind and CPU) before it is sealed.
    pub chunk_records: usize,
    pub codec: Codec,
    pub zstd_level: i32,
    /// Bound on records buffered across all open chunks, in bytes of column
    /// memory; past it the largest open chunk is sealed early.
    pub memory_limit: usize,
    /// Sealed chunks waiting for the background thread; a full queue makes
    /// `push` wait (back-pressure instead of unbounded memory).
    pub queue_depth: usize,
    /// Unix permissions of a created file. Traces list every process on a
    /// host, so the default is 0600.
    pub mode: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            chunk_records: 16 * 1024,
            codec: Codec::Zstd,
            // Level 1 writes ~35 % faster than 3 for ~2 % more bytes on
            // traces; a recorder wants the cheaper one. Archive with a
            // higher level by rewriting the file.
            zstd_level: 1,
            memory_limit: 64 << 20,
            queue_depth: 4,
            mode: 0o600,
        }
    }
}

/// Counters the writer keeps up to date while it runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records handed to the background thread (updated per chunk).
    pub records: AtomicU64,
    pub chunks: AtomicU64,
    /// Bytes written to the file so far (header, chunks, footer).
    pub bytes: AtomicU64,
    /// Time the background thread spent encoding, compressing and writing
    /// chunks (ns): the writer's cost beyond `push` itself.
    pub busy_ns: AtomicU64,
    /// Time `push`/`flush` waited for room in the queue to the background
    /// thread (ns): back-pressure, not work.
    pub blocked_ns: AtomicU64,
    /// Why the background thread stopped writing, once it has.
    failure: std::sync::Mutex<Option<String>>,
}

impl WriterStats {
    /// Why the background thread stopped writing (a full disk, an I/O
    /// error), once it has; the file keeps what was written before.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }
}

enum Msg {
    Chunk(Columns),
    Flush(Sender<Result<()>>),
    Finish,
}

/// Writes a `.sched` file.
pub struct Writer {
    opts: WriterOptions,
    open: FxHashMap<(Kind, u32), Columns>,
    buffered: usize,
    tx: Option<SyncSender<Msg>>,
    worker: Option<JoinHandle<Result<()>>>,
    stats: Arc<WriterStats>,
    /// Switch columns of counter slots the header declares unavailable.
    forbidden: u64,
}

impl Writer {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>, meta: &Metadata, opts: WriterOptions) -> Result<Writer> {
        let path = path.as_ref().to_path_buf();
        let mut oo = OpenOptions::new();
        oo.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut oo, opts.mode);
        let file = oo.open(&path).map_err(|e| Error::io(&path, e))?;
        Writer::from_file(file, path, meta, opts)
    }

    /// Writes to an already open file (positioned at its start).
    pub fn from_file(
        file: File,
        path: PathBuf,
        meta: &Metadata,
        opts: WriterOptions,
    ) -> Result<Writer> {
        assert!(opts.chunk_records > 0 && opts.chunk_records <= 1 << 20);
        // Chunks are large: write them straight to the file, so that `good`
        // below is exactly what reached the kernel.
        let mut out = file;
        let header = encode_header(meta);
        out.write_all(&header).map_err(|e| Error::io(&path, e))?;
        let stats = Arc::new(WriterStats::default());
        stats.bytes.store(header.len() as u64, Ordering::Relaxed);
        let (tx, rx) = sync_channel(opts.queue_depth.max(1));
        let mut w = Worker {
            path,
            out,
            offset: header.len() as u64,
            good: header.len() as u64,
            chunks: Vec::new(),
            codec: opts.codec,
            compressor: zstd::bulk::Compressor::new(opts.zstd_level)
                .map_err(|e| Error::io("zstd", e))?,
            stats: stats.clone(),
            failed: None,
        };
        let worker = std::thread::Builder::new()
            .name("schedrec-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| Error::io("writer thread", e))?;
        let forbidden = (0..4)
            .filter(|&k| !meta.counters.get(k).is_some_and(|c| c.available))
            .fold(0u64, |m, k| {
                m | (0b111u64 << (sw::COUNTERS as usize + 3 * k))
            });
        Ok(Writer {
            opts,
            open: FxHashMap::default(),
            buffered: 0,
            tx: Some(tx),
            worker: Some(worker),
            stats,
            forbidden,
        })
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    /// Appends one record. Records of one CPU and kind should come in time
    /// order (the reader sorts each chunk, so this only affects compression).
    pub fn push(&mut self, r: &Record) -> Result<()> {
        match r {
            Record::Task(t) if t.comm.len() > MAX_STRING_LEN => {
                return Err(Error::InvalidRecord(format!(
                    "comm of {} bytes (limit {MAX_STRING_LEN})",
                    t.comm.len()
                )))
            }
            Record::Marker(m) if m.text.len() > MAX_STRING_LEN => {
                return Err(Error::InvalidRecord(format!(
                    "marker of {} bytes (limit {MAX_STRING_LEN})",
                    m.text.len()
                )))
            }
            _ => {}
        }
        let key = (r.kind(), r.cpu());
        let mask = r.column_mask();
        if key.0 == Kind::Switch && mask & self.forbidden != 0 {
            let slot = (mask & self.forbidden).trailing_zeros() as u8 - sw::COUNTERS;
            return Err(Error::InvalidRecord(format!(
                "switch record has counter slot {} but the header declares it unavailable",
                slot / 3
            )));
        }
        let cap = self.opts.chunk_records;
        let fresh = || Columns::with_capacity(key.0, key.1, mask, cap);
        let cols = self.open.entry(key).or_insert_with(fresh);
        if cols.present != mask {
            // The set of present fields changed: seal and start anew.
            let full = std::mem::replace(cols, fresh());
            if full.len > 0 {
                self.buffered -= full.heap_bytes().min(self.buffered);
                self.send(Msg::Chunk(full))?;
            }
            return self.push(r);
        }
        let before = cols.heap_bytes();
        cols.push(r);
        self.buffered += cols.heap_bytes() - before;
        if cols.len >= self.opts.chunk_records {
            self.seal(key)?;
        }
        if self.buffered > self.opts.memory_limit {
            let largest = self
                .open
                .iter()
                .max_by_key(|(_, c)| c.heap_bytes())
                .map(|(k, _)| *k);
            if let Some(k) = largest {
                self.seal(k)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, key: (Kind, u32)) -> Result<()> {
        if let Some(cols) = self.open.remove(&key) {
            self.buffered -= cols.heap_bytes().min(self.buffered);
            if cols.len > 0 {
                self.send(Msg::Chunk(cols))?;
            }
        }
        Ok(())
    }

    fn seal_all(&mut self) -> Result<()> {
        let mut keys: Vec<_> = self.open.keys().copied().collect();
        keys.sort();
        for k in keys {
            self.seal(k)?;
        }
        Ok(())
    }

    fn send(&mut self, m: Msg) -> Result<()> {
        if let Msg::Chunk(c) = &m {
            self.stats
                .records
                .fetch_add(c.len as u64, Ordering::Relaxed);
        }
        let ok = self
            .tx
            .as_ref()
            .map(|tx| tx.send(m).is_ok())
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    fn worker_error(&mut self) -> Error {
        self.tx = None;
        match self.worker.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Ok(Ok(()))) | None => Error::WriterFailed("writer already finished".into()),
            Some(Err(_)) => Error::WriterFailed("writer thread panicked".into()),
        }
    }

    /// Seals every open chunk, writes it, and syncs the file: everything
    /// pushed so far is durable and readable (by scan) when this returns.
    pub fn flush(&mut self) -> Result<()> {
        self.seal_all()?;
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        self.send(Msg::Flush(ack_tx))?;
        match ack_rx.recv() {
            Ok(r) => r,
            Err(_) => Err(self.worker_error()),
        }
    }

    /// Seals every open chunk and queues it for the background thread,
    /// without waiting for the disk (only for room in the queue, when it is
    /// full): once the thread has written them (to the page cache) they
    /// survive the process being killed, though not a crash of the host —
    /// `flush` and `finish` sync the file. For a caller that must not stall
    /// on the disk (a recorder draining kernel buffers: a sync per second
    /// made this VM's writes wait seconds for writeback); a failure of the
    /// background thread is returned by a later call.
    pub fn flush_background(&mut self) -> Result<()> {
        if let Some(e) = self.stats.failure() {
            return Err(Error::WriterFailed(e));
        }
        self.seal_all()
    }

    /// Writes everything, the footer index and the trailer, and syncs.
    /// Returns the file's size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<u64> {
        self.seal_all()?;
        self.send(Msg::Finish)?;
        self.tx = None;
        match self.worker.take().map(|h| h.join()) {
            Some(Ok(Ok(()))) => Ok(self.stats.bytes.load(Ordering::Relaxed)),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(Error::WriterFailed("writer thread panicked".into())),
            None => Err(Error::WriterFailed("writer already finished".into())),
        }
    }
}

impl Drop for Writer {
    /// A writer dropped without `finish()` still finishes the file (best
    /// effort, errors ignored), as `BufWriter` flushes on drop.
    fn drop(&mut self) {
        if self.worker.is_some() {
            let _ = self.finish_inner();
        }
    }
}

struct Worker {
    path: PathBuf,
    out: File,
    /// Where the next byte goes.
    offset: u64,
    /// End of the last chunk known to be completely written.
    good: u64,
    chunks: Vec<ChunkInfo>,
    codec: Codec,
    compressor: zstd::bulk::Compressor<'static>,
    stats: Arc<WriterStats>,
    failed: Option<String>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Msg>) -> Result<()> {
        for msg in rx {
            match msg {
                Msg::Chunk(cols) => {
                    if self.failed.is_none() {
                        let t = std::time::Instant::now();
                        if let Err(e) = self.write_chunk(&cols) {
                            self.fail(e);
                        }
                        self.stats
                            .busy_ns
                            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                }
                Msg::Flush(ack) => {
                    if self.failed.is_none() {
                        if let Err(e) = self.sync() {
                            self.fail(e);
                        }
                    }
                    let r = match &self.failed {
                        Some(e) => Err(Error::WriterFailed(e.clone())),
                        None => Ok(()),
                    };
                    let _ = ack.send(r);
                }
                Msg::Finish => break,
            }
        }
        if let Some(e) = &self.failed {
            return Err(Error::WriterFailed(e.clone()));
        }
        let footer = encode_footer(&self.chunks, self.offset);
        let r = self
            .out
            .write_all(&footer)
            .and_then(|_| self.out.sync_all())
            .map_err(|e| Error::io(&self.path, e));
        match r {
            Ok(()) => {
                self.stats
                    .bytes
                    .fetch_add(footer.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // Leave the chunks readable by scan: cut off the partial footer.
                let _ = self.out.set_len(self.good);
                Err(e)
            }
        }
    }

    fn sync(&mut self) -> Result<()> {
        self.out.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// After a failed write (a full disk): cut the file back to the last
    /// complete chunk and try to close it with a footer, so everything that
    /// fit stays readable. Later chunks are dropped and the error reported.
    fn fail(&mut self, e: Error) {
        let kept: u64 = self.chunks.iter().map(|c| c.count as u64).sum();
        let why = format!("{e}; the file keeps the {kept} records written before the failure");
        if let Ok(mut f) = self.stats.failure.lock() {
            *f = Some(why.clone());
        }
        self.failed = Some(why);
        let file = &self.out;
        let _ = file.set_len(self.good);
        let mut f = match file.try_clone() {
            Ok(f) => f,
            Err(_) => return,
        };
        if f.seek(SeekFrom::Start(self.good)).is_ok() {
            let footer = encode_footer(&self.chunks, self.good);
            if f.write_all(&footer).and_then(|_| f.sync_all()).is_err() {
                let _ = f.set_len(self.good);
                let _ = f.sync_all();
            }
        }
    }

    fn write_chunk(&mut self, cols: &Columns) -> Result<()> {
        let (ts_min, ts_max) = cols.ts_range();
        let raw = cols.encode(ts_min);
        let stored;
        let payload: &[u8] = match self.codec {
            Codec::None => &raw,
            Codec::Zstd => {
                stored = self
                    .compressor
                    .compress(&raw)
                    .map_err(|e| Error::io("zstd", e))?;
                &stored
            }
        };
        let info = ChunkInfo {
            offset: self.offset,
            kind_raw: cols.kind as u16,
            codec: self.codec as u8,
            cpu: cols.cpu,
            count: cols.len as u32,
            raw_len: u32::try_from(raw.len())
                .ok()
                .filter(|&l| l <= crate::chunk::MAX_RAW_LEN)
                .ok_or_else(|| Error::InvalidRecord("chunk exceeds 256 MiB".into()))?,
            stored_len: payload.len() as u32,
            present: cols.present,
            ts_min,
            ts_max,
            payload_crc: crc32c::crc32c(payload),
        };
        let header = info.encode();
        self.out
            .write_all(&header)
            .and_then(|_| self.out.write_all(payload))
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += info.total_len();
        self.good = self.offset;
        self.chunks.push(info);
        self.stats.chunks.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes
            .fetch_add(info.total_len(), Ordering::Relaxed);
        Ok(())
    }
}
