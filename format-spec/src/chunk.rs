//! Chunk headers, the footer index and the trailer (SPEC.md §6, §7).

use crate::schema::Kind;

pub const CHUNK_MAGIC: [u8; 4] = *b"SRCK";
pub const CHUNK_HEADER_LEN: usize = 56;
pub const INDEX_MAGIC: [u8; 4] = *b"SRIX";
pub const INDEX_ENTRY_LEN: usize = 40;
pub const TRAILER_MAGIC: [u8; 8] = *b"\x89SCHEND\n";
pub const TRAILER_LEN: usize = 16;
/// Largest raw (uncompressed) payload a chunk may declare.
pub const MAX_RAW_LEN: u32 = 1 << 28;
/// Largest stored payload (room for incompressible data plus zstd's framing).
pub const MAX_STORED_LEN: u32 = 1 << 29;

/// Payload codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Zstd = 1,
}

/// A chunk header as stored, with where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Byte offset of the chunk header in the file.
    pub offset: u64,
    /// Raw kind number (see [`Kind`]); unknown kinds are kept and skipped.
    pub kind_raw: u16,
    pub codec: u8,
    pub cpu: u32,
    pub count: u32,
    pub raw_len: u32,
    pub stored_len: u32,
    pub present: u64,
    pub ts_min: u64,
    pub ts_max: u64,
    pub payload_crc: u32,
}

impl ChunkInfo {
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_u16(self.kind_raw)
    }
    /// Header plus payload.
    pub fn total_len(&self) -> u64 {
        CHUNK_HEADER_LEN as u64 + self.stored_len as u64
    }
    pub fn payload_offset(&self) -> u64 {
        self.offset + CHUNK_HEADER_LEN as u64
    }

    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut h = [0u8; CHUNK_HEADER_LEN];
        h[0..4].copy_from_slice(&CHUNK_MAGIC);
        h[4..6].copy_from_slice(&self.kind_raw.to_le_bytes());
        h[6] = self.codec;
        h[7] = 0;
        h[8..12].copy_from_slice(&self.cpu.to_le_bytes());
        h[12..16].copy_from_slice(&self.count.to_le_bytes());
        h[16..20].copy_from_slice(&self.raw_len.to_le_bytes());
        h[20..24].copy_from_slice(&self.stored_len.to_le_bytes());
        h[24..32].copy_from_slice(&self.present.to_le_bytes());
        h[32..40].copy_from_slice(&self.ts_min.to_le_bytes());
        h[40..48].copy_from_slice(&self.ts_max.to_le_bytes());
        h[48..52].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&h[..52]);
        h[52..56].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Parses and checks a chunk header (magic, header checksum, internal
    /// consistency). Errors are short descriptions.
    pub fn decode(h: &[u8], offset: u64) -> Result<ChunkInfo, String> {
        if h.len() < CHUNK_HEADER_LEN {
            return Err("truncated chunk header".into());
        }
        if h[0..4] != CHUNK_MAGIC {
            return Err("bad chunk magic".into());
        }
        let crc = u32::from_le_bytes(h[52..56].try_into().unwrap());
        if crc32c::crc32c(&h[..52]) != crc {
            return Err("chunk header checksum mismatch".into());
        }
        let u32at = |a: usize| u32::from_le_bytes(h[a..a + 4].try_into().unwrap());
        let u64at = |a: usize| u64::from_le_bytes(h[a..a + 8].try_into().unwrap());
        let info = ChunkInfo {
            offset,
            kind_raw: u16::from_le_bytes([h[4], h[5]]),
            codec: h[6],
            cpu: u32at(8),
            count: u32at(12),
            raw_len: u32at(16),
            stored_len: u32at(20),
            present: u64at(24),
            ts_min: u64at(32),
            ts_max: u64at(40),
            payload_crc: u32at(48),
        };
        if h[7] != 0 {
            return Err("reserved chunk header byte is not zero".into());
        }
        if info.raw_len > MAX_RAW_LEN {
            return Err(format!(
                "raw length {} exceeds the {MAX_RAW_LEN}-byte limit",
                info.raw_len
            ));
        }
        if info.stored_len > MAX_STORED_LEN {
            return Err(format!(
                "stored length {} exceeds the {MAX_STORED_LEN}-byte limit",
                info.stored_len
            ));
        }
        if info.count > info.raw_len {
            return Err(format!(
                "{} records cannot fit {} raw bytes",
                info.count, info.raw_len
            ));
        }
        if info.ts_min > info.ts_max {
            return Err("ts_min is after ts_max".into());
        }
        if info.codec == Codec::None as u8 && info.stored_len != info.raw_len {
            return Err("uncompressed chunk whose stored and raw lengths differ".into());
        }
        Ok(info)
    }

    pub fn encode_index_entry(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.kind_raw.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.cpu.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.total_len() as u32).to_le_bytes());
        out.extend_from_slice(&self.ts_min.to_le_bytes());
        out.extend_from_slice(&self.ts_max.to_le_bytes());
    }
}

/// One entry of the footer index, before it is checked against its chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub kind_raw: u16,
    pub reserved: u16,
    pub cpu: u32,
    pub count: u32,
    pub total_len: u32,
    pub ts_min: u64,
    pub ts_max: u64,
}

impl IndexEntry {
    pub fn decode(e: &[u8]) -> IndexEntry {
        let u32at = |a: usize| u32::from_le_bytes(e[a..a + 4].try_into().unwrap());
        let u64at = |a: usize| u64::from_le_bytes(e[a..a + 8].try_into().unwrap());
        IndexEntry {
            offset: u64at(0),
            kind_raw: u16::from_le_bytes([e[8], e[9]]),
            reserved: u16::from_le_bytes([e[10], e[11]]),
            cpu: u32at(12),
            count: u32at(16),
            total_len: u32at(20),
            ts_min: u64at(24),
            ts_max: u64at(32),
        }
    }

    pub fn matches(&self, c: &ChunkInfo) -> bool {
        self.offset == c.offset
            && self.reserved == 0
            && self.kind_raw == c.kind_raw
            && self.cpu == c.cpu
            && self.count == c.count
            && self.total_len as u64 == c.total_len()
            && self.ts_min == c.ts_min
            && self.ts_max == c.ts_max
    }
}

/// Encodes the footer: index block then trailer.
pub fn encode_footer(chunks: &[ChunkInfo], index_offset: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + chunks.len() * INDEX_ENTRY_LEN + TRAILER_LEN);
    out.extend_from_slice(&INDEX_MAGIC);
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for c in chunks {
        c.encode_index_entry(&mut out);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&TRAILER_MAGIC);
    out
}
