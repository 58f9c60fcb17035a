//! Memory-mapped reader: index from the footer or by scan, chunk decoding
//! (in parallel with rayon), and record iteration merged in time order.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::chunk::*;
use crate::columns::Columns;
use crate::error::{Error, Result};
use crate::meta::{decode_header, FileHeader, Metadata};
use crate::record::Record;
use crate::schema::Kind;

enum Data {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Map(m) => m,
            Data::Owned(v) => v,
        }
    }
}

/// An open `.sched` file.
pub struct Reader {
    path: PathBuf,
    data: Data,
    header: FileHeader,
    chunks: Vec<ChunkInfo>,
    complete: bool,
    recovery: Option<String>,
}

/// Which records to read. Empty fields match everything; `from`/`to` are
/// inclusive nanosecond bounds.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kinds: Option<Vec<Kind>>,
    pub cpu: Option<u32>,
    pub pid: Option<u32>,
    pub from: Option<u64>,
    pub to: Option<u64>,
}

impl Filter {
    fn chunk_matches(&self, c: &ChunkInfo) -> bool {
        let Some(kind) = c.kind() else {
            return false; // unknown kind (a newer minor version): skipped
        };
        self.kinds.as_ref().is_none_or(|ks| ks.contains(&kind))
            && self.cpu.is_none_or(|cpu| c.cpu == cpu)
            && self.from.is_none_or(|f| c.ts_max >= f)
            && self.to.is_none_or(|t| c.ts_min <= t)
    }
    fn record_matches(&self, r: &Record) -> bool {
        let ts = r.ts();
        self.from.is_none_or(|f| ts >= f)
            && self.to.is_none_or(|t| ts <= t)
            && self.pid.is_none_or(|p| r.involves_pid(p))
    }
}

/// A decoded chunk: its header and its columns.
pub struct Decoded {
    /// Position of the chunk in [`Reader::chunks`].
    pub index: usize,
    pub info: ChunkInfo,
    pub columns: Columns,
}

impl Decoded {
    pub fn len(&self) -> usize {
        self.columns.len
    }
    pub fn is_empty(&self) -> bool {
        self.columns.len == 0
    }
    /// Record `i` in stored order.
    pub fn record(&self, i: usize) -> Result<Record> {
        self.columns
            .record(i)
            .map_err(|e| Error::chunk(self.index, self.info.offset, e))
    }
    /// All records in stored order.
    pub fn records(&self) -> impl Iterator<Item = Result<Record>> + '_ {
        (0..self.len()).map(move |i| self.record(i))
    }
}

impl Reader {
    /// Opens and memory-maps `path`, reading the index from the footer, or by
    /// scanning the chunks when the footer is missing or damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let data = if len == 0 {
            Data::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only; a file truncated by another
            // process while mapped can fault, as with any mmap-based reader.
            Data::Map(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?)
        };
        Reader::from_data(path, data)
    }

    /// Reads a trace held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Reader> {
        Reader::from_data(PathBuf::from("<memory>"), Data::Owned(bytes))
    }

    fn from_data(path: PathBuf, data: Data) -> Result<Reader> {
        let header = decode_header(&data)?;
        let mut r = Reader {
            path,
            data,
            header,
            chunks: Vec::new(),
            complete: false,
            recovery: None,
        };
        match r.read_footer() {
            Ok(chunks) => {
                r.chunks = chunks;
                r.complete = true;
            }
            Err(why) => {
                let (chunks, stop) = r.scan();
                r.chunks = chunks;
                r.recovery = Some(match (why, stop) {
                    (None, s) => s,
                    (Some(f), s) => format!("{f}; {s}"),
                });
            }
        }
        // Checking every chunk header faulted in the pages around each
        // (the kernel maps 64 KiB around a fault): most of a large file.
        let len = r.data.len();
        r.release(0, len);
        Ok(r)
    }

    /// The footer's index, checked against every chunk header it names.
    /// `Err(None)`: there is no footer; `Err(Some(why))`: it is damaged.
    fn read_footer(&self) -> std::result::Result<Vec<ChunkInfo>, Option<String>> {
        let buf = &self.data[..];
        let len = buf.len();
        let start = self.header.len;
        if len < start + TRAILER_LEN || buf[len - 8..] != TRAILER_MAGIC {
            return Err(None);
        }
        let damaged = |w: String| Some(format!("footer damaged ({w})"));
        let index_offset = u64::from_le_bytes(buf[len - 16..len - 8].try_into().unwrap());
        let io = usize::try_from(index_offset)
            .ok()
            .filter(|&o| o >= start && o.checked_add(12).is_some_and(|e| e <= len - TRAILER_LEN))
            .ok_or_else(|| damaged(format!("index offset {index_offset} out of range")))?;
        if buf[io..io + 4] != INDEX_MAGIC {
            return Err(damaged(format!("no index at offset {io}")));
        }
        let n = u32::from_le_bytes(buf[io + 4..io + 8].try_into().unwrap()) as usize;
        let end = n
            .checked_mul(INDEX_ENTRY_LEN)
            .and_then(|b| b.checked_add(io + 12))
            .filter(|&e| e == len - TRAILER_LEN)
            .ok_or_else(|| damaged("index length disagrees with the file size".into()))?;
        let crc = u32::from_le_bytes(buf[end - 4..end].try_into().unwrap());
        if crc32c::crc32c(&buf[io..end - 4]) != crc {
            return Err(damaged("index checksum mismatch".into()));
        }
        let mut chunks = Vec::with_capacity(n);
        let mut expect = start as u64;
        for i in 0..n {
            let at = io + 8 + i * INDEX_ENTRY_LEN;
            let e = IndexEntry::decode(&buf[at..at + INDEX_ENTRY_LEN]);
            if e.offset != expect {
                return Err(damaged(format!(
                    "entry {i} does not follow chunk {}",
                    i.max(1) - 1
                )));
            }
            let off = e.offset as usize;
            let hdr = buf
                .get(off..off + CHUNK_HEADER_LEN)
                .ok_or_else(|| damaged(format!("entry {i} points past the data")))?;
            let c = ChunkInfo::decode(hdr, e.offset)
                .map_err(|w| damaged(format!("chunk {i} at offset {off}: {w}")))?;
            if !e.matches(&c) || c.offset + c.total_len() > index_offset {
                return Err(damaged(format!("entry {i} disagrees with its chunk")));
            }
            expect = c.offset + c.total_len();
            chunks.push(c);
        }
        if expect != index_offset {
            return Err(damaged("bytes between the last chunk and the index".into()));
        }
        Ok(chunks)
    }

    /// Walks the chunks from the header on, verifying every checksum, and
    /// stops at the first incomplete or corrupt one. Returns what it found
    /// and why it stopped.
    fn scan(&self) -> (Vec<ChunkInfo>, String) {
        let buf = &self.data[..];
        let mut pos = self.header.len;
        let mut chunks = Vec::new();
        let stop = loop {
            let n = chunks.len();
            if pos == buf.len() {
                break "no footer: the writer did not finish (killed or still running)".to_string();
            }
            if buf.len() - pos < 4 {
                break format!("truncated at offset {pos} (inside chunk {n}'s header)");
            }
            if buf[pos..pos + 4] == INDEX_MAGIC {
                break format!("footer at offset {pos} is truncated or damaged");
            }
            if buf.len() - pos < CHUNK_HEADER_LEN {
                break if buf[pos..pos + 4] == CHUNK_MAGIC {
                    format!("truncated at offset {pos} (inside chunk {n}'s header)")
                } else {
                    format!("chunk {n} at offset {pos}: bad chunk magic")
                };
            }
            let c = match ChunkInfo::decode(&buf[pos..pos + CHUNK_HEADER_LEN], pos as u64) {
                Ok(c) => c,
                Err(w) => break format!("chunk {n} at offset {pos}: {w}"),
            };
            let end = pos as u64 + c.total_len();
            if end > buf.len() as u64 {
                break format!(
                    "truncated at offset {} (chunk {n} at offset {pos} needs {} more bytes)",
                    buf.len(),
                    end - buf.len() as u64
                );
            }
            let payload = &buf[pos + CHUNK_HEADER_LEN..end as usize];
            if crc32c::crc32c(payload) != c.payload_crc {
                break format!("chunk {n} at offset {pos}: payload checksum mismatch");
            }
            chunks.push(c);
            pos = end as usize;
        };
        (chunks, stop)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn header(&self) -> &FileHeader {
        &self.header
    }
    pub fn meta(&self) -> &Metadata {
        &self.header.meta
    }
    /// True when the file has a valid footer (the writer finished).
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    /// For a file read by scan: why the scan stopped.
    pub fn recovery(&self) -> Option<&str> {
        self.recovery.as_deref()
    }
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }
    pub fn file_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Verifies and decodes chunk `i`.
    pub fn decode(&self, i: usize) -> Result<Decoded> {
        let c = *self
            .chunks
            .get(i)
            .ok_or_else(|| Error::InvalidRecord(format!("no chunk {i}")))?;
        let err = |w: String| Error::chunk(i, c.offset, w);
        let kind = c
            .kind()
            .ok_or_else(|| err(format!("unknown chunk kind {}", c.kind_raw)))?;
        let start = c.payload_offset() as usize;
        let payload = &self.data[start..start + c.stored_len as usize];
        if crc32c::crc32c(payload) != c.payload_crc {
            return Err(err("payload checksum mismatch".into()));
        }
        let owned;
        let raw: &[u8] = match c.codec {
            0 => payload,
            1 => {
                owned = zstd::bulk::decompress(payload, c.raw_len as usize)
                    .map_err(|e| err(format!("zstd: {e}")))?;
                &owned
            }
            codec => {
                return Err(Error::UnsupportedCodec {
                    chunk: i,
                    offset: c.offset,
                    codec,
                })
            }
        };
        if raw.len() != c.raw_len as usize {
            return Err(err(format!(
                "payload decompresses to {} bytes, header says {}",
                raw.len(),
                c.raw_len
            )));
        }
        let columns = Columns::decode(kind, c.cpu, c.present, c.count as usize, c.ts_min, raw)
            .map_err(err)?;
        self.release(start, c.stored_len as usize);
        let ts = columns.ts();
        let range = match (ts.iter().min(), ts.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (0, 0),
        };
        if range != (c.ts_min, c.ts_max) {
            return Err(err(format!(
                "timestamps span {}..{}, header says {}..{}",
                range.0, range.1, c.ts_min, c.ts_max
            )));
        }
        Ok(Decoded {
            index: i,
            info: c,
            columns,
        })
    }

    /// Drops the mapped pages that lie wholly inside `start..start + len`
    /// from this process (they stay in the page cache): a pass over a large
    /// trace does not keep the whole file resident, and the memory of a
    /// replay or an analysis follows what it holds, not the file's size.
    fn release(&self, start: usize, len: usize) {
        static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let Data::Map(m) = &self.data else { return };
        // SAFETY: sysconf has no preconditions.
        let page = *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => 4096,
        });
        let a = start.div_ceil(page) * page;
        let b = (start + len) / page * page;
        if b > a {
            // SAFETY: a read-only shared mapping of a file: MADV_DONTNEED
            // only unmaps the pages, and the next access (this or another
            // thread's) faults the same bytes back in from the page cache.
            // Only another process changing the file could change them: the
            // hazard of any mmap-based reader (see `Reader::open`).
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a) };
        }
    }

    /// Indices of the chunks a filter selects, in file order.
    pub fn select(&self, filter: &Filter) -> Vec<usize> {
        (0..self.chunks.len())
            .filter(|&i| filter.chunk_matches(&self.chunks[i]))
            .collect()
    }

    /// Decodes the selected chunks in parallel (rayon), in file order when
    /// collected.
    pub fn par_decode<'a>(
        &'a self,
        filter: &Filter,
    ) -> impl IndexedParallelIterator<Item = Result<Decoded>> + 'a {
        self.select(filter)
            .into_par_iter()
            .map(move |i| self.decode(i))
    }

    /// Verifies every chunk (checksums, decoding, value ranges).
    pub fn verify(&self) -> Result<u64> {
        (0..self.chunks.len())
            .into_par_iter()
            .filter(|&i| self.chunks[i].kind().is_some())
            .map(|i| {
                let d = self.decode(i)?;
                for r in d.records() {
                    r?;
                }
                Ok(d.len() as u64)
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }

    /// Records matching `filter`, merged across CPUs and kinds in time order
    /// (ties: file order). Chunks are decoded ahead in parallel batches.
    pub fn records(&self, filter: Filter) -> Records<'_> {
        let mut order = self.select(&filter);
        order.sort_by_key(|&i| (self.chunks[i].ts_min, i));
        Records {
            reader: self,
            pending: order.into(),
            ready: VecDeque::new(),
            heap: BinaryHeap::new(),
            active: Vec::new(),
            filter,
            batch: (rayon::current_num_threads() * 2).max(2),
            done: false,
            ahead: None,
        }
    }

    /// [`Reader::records`], handed to `f`, with the chunks decoded ahead on a
    /// thread of their own (in parallel batches on rayon) while `f`
    /// consumes: the merge does not wait for each batch's decoding. On a
    /// rayon worker (where waiting for the pool that has to do the
    /// decoding could deadlock) this is plain [`Reader::records`].
    pub fn with_records<R>(&self, filter: Filter, f: impl FnOnce(Records<'_>) -> R) -> R {
        let mut recs = self.records(filter);
        if rayon::current_thread_index().is_some() {
            return f(recs);
        }
        std::thread::scope(|scope| {
            let batch = recs.batch;
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Decoded>>(2 * batch);
            let order: Vec<usize> = recs.pending.iter().copied().collect();
            scope.spawn(move || {
                for group in order.chunks(batch) {
                    let decoded: Vec<Result<Decoded>> =
                        group.par_iter().map(|&i| self.decode(i)).collect();
                    for d in decoded {
                        // The consumer is done (or stopped at an error).
                        if tx.send(d).is_err() {
                            return;
                        }
                    }
                }
            });
            recs.ahead = Some(rx);
            f(recs)
        })
    }
}

struct Cursor {
    d: Decoded,
    /// Stored positions in time order (stable).
    order: Vec<u32>,
    next: usize,
}

/// Iterator returned by [`Reader::records`]. It stops after the first error.
pub struct Records<'r> {
    reader: &'r Reader,
    pending: VecDeque<usize>,
    ready: VecDeque<Result<Decoded>>,
    heap: BinaryHeap<Reverse<(u64, usize, usize)>>,
    active: Vec<Option<Cursor>>,
    filter: Filter,
    batch: usize,
    done: bool,
    /// Chunks decoded ahead, in `pending` order ([`Reader::with_records`]).
    ahead: Option<std::sync::mpsc::Receiver<Result<Decoded>>>,
}

impl Records<'_> {
    fn activate(&mut self) -> Result<()> {
        if let (true, Some(rx)) = (self.ready.is_empty(), &self.ahead) {
            let d = rx.recv().unwrap_or_else(|_| {
                Err(Error::InvalidRecord("the decoding thread stopped".into()))
            });
            self.ready.push_back(d);
        }
        if self.ready.is_empty() {
            let n = self.batch.min(self.pending.len());
            let idx: Vec<usize> = self.pending.iter().take(n).copied().collect();
            let r = self.reader;
            self.ready = idx.into_par_iter().map(|i| r.decode(i)).collect();
        }
        self.pending.pop_front();
        let d = self.ready.pop_front().expect("decoded ahead")?;
        let ts = d.columns.ts();
        let mut order: Vec<u32> = (0..ts.len() as u32).collect();
        if ts.windows(2).any(|w| w[0] > w[1]) {
            order.sort_by_key(|&i| ts[i as usize]);
        }
        if !order.is_empty() {
            let slot = self.active.len();
            self.heap
                .push(Reverse((ts[order[0] as usize], d.index, slot)));
            self.active.push(Some(Cursor { d, order, next: 0 }));
        }
        Ok(())
    }

    /// Moves the merge on by one record: activates the chunks that are due,
    /// hands the earliest record's chunk and position to `take`, and
    /// advances that chunk's cursor. `None` at the end.
    fn step<T>(&mut self, take: impl FnOnce(&Decoded, usize) -> T) -> Result<Option<T>> {
        loop {
            let top = self.heap.peek().map(|Reverse((ts, _, _))| *ts);
            let due = match (self.pending.front(), top) {
                (Some(&i), Some(t)) => self.reader.chunks[i].ts_min <= t,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if due {
                self.activate()?;
                continue;
            }
            // The earliest cursor yields its record and moves on in place
            // (one sift of the heap, not a pop and a push).
            let Some(mut top) = self.heap.peek_mut() else {
                return Ok(None);
            };
            let Reverse((_, _, slot)) = *top;
            let cur = self.active[slot].as_mut().expect("active cursor");
            let out = take(&cur.d, cur.order[cur.next] as usize);
            cur.next += 1;
            if cur.next < cur.order.len() {
                top.0 .0 = cur.d.columns.ts()[cur.order[cur.next] as usize];
            } else {
                PeekMut::pop(top);
                self.active[slot] = None;
            }
            return Ok(Some(out));
        }
    }

    /// Whether the filter keeps `rec` (`None`: the iteration is over, past
    /// the filter's end with nothing left that could be earlier).
    fn keeps(&self, rec: &Record) -> Option<bool> {
        if let Some(to) = self.filter.to {
            if rec.ts() > to && self.pending.is_empty() && self.heap.is_empty() {
                return None;
            }
        }
        Some(self.filter.record_matches(rec))
    }

    fn next_inner(&mut self) -> Result<Option<Record>> {
        loop {
            let Some(rec) = self.step(|d, i| d.record(i))? else {
                return Ok(None);
            };
            let rec = rec?;
            match self.keeps(&rec) {
                None => return Ok(None),
                Some(true) => return Ok(Some(rec)),
                Some(false) => {}
            }
        }
    }
}

impl Records<'_> {
    /// Appends up to `n` records to `buf`, as many calls of `next` would
    /// (an error is appended last, and ends the iteration), and says how
    /// many it appended. Each record is built straight into the batch: a
    /// record is 336 bytes, and returning it through the iterator
    /// copied it several times on the way.
    pub fn fill(&mut self, buf: &mut Vec<Result<Record>>, n: usize) -> usize {
        let start = buf.len();
        buf.reserve(n);
        while buf.len() - start < n && !self.done {
            match self.next_into(buf) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    buf.push(Err(e));
                    self.done = true;
                }
            }
        }
        buf.len() - start
    }

    /// [`Records::next_inner`], appending the record to `buf`.
    fn next_into(&mut self, buf: &mut Vec<Result<Record>>) -> Result<bool> {
        loop {
            let Some(built) = self.step(|d, i| d.record(i).map(|rec| buf.push(Ok(rec))))? else {
                return Ok(false);
            };
            built?;
            let Some(Ok(rec)) = buf.last() else {
                unreachable!("a record was just appended")
            };
            match self.keeps(rec) {
                None => {
                    buf.pop();
                    return Ok(false);
                }
                Some(true) => return Ok(true),
                Some(false) => {
                    buf.pop();
                }
            }
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        match self.next_inner() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
