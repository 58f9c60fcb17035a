//! Entry points for the fuzz target (`format-spec/fuzz`) and the tests that
//! stand in for it in CI. Not part of the stable API.

use crate::chunk::{ChunkInfo, Codec, CHUNK_HEADER_LEN};
use crate::meta::{encode_header, Metadata};
use crate::reader::{Filter, Reader};
use crate::summary::Summary;

/// Reads `data` as a whole file: open, summarise, decode every chunk, iterate.
pub fn read_file(data: &[u8]) {
    let Ok(r) = Reader::from_bytes(data.to_vec()) else {
        return;
    };
    exercise(&r);
}

fn exercise(r: &Reader) {
    let _ = Summary::of(r);
    for i in 0..r.chunks().len() {
        if let Ok(d) = r.decode(i) {
            for rec in d.records() {
                let _ = rec;
            }
        }
    }
    for rec in r.records(Filter::default()).take(10_000) {
        let _ = rec;
    }
}

/// Treats `data` as chunk parameters plus a payload and seals it into a
/// valid file (correct checksums), so the column decoder sees arbitrary
/// bytes instead of checksum failures.
pub fn decode_sealed(data: &[u8]) {
    if data.len() < 12 {
        return;
    }
    let kind = 1 + (data[0] % 9) as u16; // includes one unknown kind
    let present = u64::from_le_bytes(data[1..9].try_into().unwrap());
    let count = (data[9] as u32) % 64;
    let codec = if data[10] & 1 == 0 {
        Codec::None
    } else {
        Codec::Zstd
    };
    let payload = &data[11..];
    let stored: Vec<u8> = match codec {
        Codec::None => payload.to_vec(),
        Codec::Zstd => zstd::bulk::compress(payload, 1).unwrap_or_default(),
    };
    let mut file = encode_header(&Metadata::default());
    let info = ChunkInfo {
        offset: file.len() as u64,
        kind_raw: kind,
        codec: codec as u8,
        cpu: 0,
        count,
        raw_len: payload.len() as u32,
        stored_len: stored.len() as u32,
        present,
        ts_min: 0,
        ts_max: u64::MAX,
        payload_crc: crc32c::crc32c(&stored),
    };
    file.extend_from_slice(&info.encode());
    file.extend_from_slice(&stored);
    debug_assert_eq!(
        file.len() as u64,
        info.offset + CHUNK_HEADER_LEN as u64 + stored.len() as u64
    );
    if let Ok(r) = Reader::from_bytes(file) {
        exercise(&r);
    }
}
