//! The file header (SPEC.md §3): magic, version, flags and the metadata block.

#[cfg(feature = "serde")]
use serde::Serialize;

use crate::error::{Error, Result};

/// First 8 bytes of every `.sched` file.
pub const MAGIC: [u8; 8] = *b"\x89SCHED\r\n";
/// Format version this crate writes.
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 0;
/// Upper bound on the metadata block (a reader refuses larger ones).
pub const MAX_META_LEN: u32 = 1 << 20;
/// Bytes before the metadata block.
pub const HEADER_FIXED_LEN: usize = 20;

/// How the HZ value in the metadata was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, bincode::Encode, bincode::Decode)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum HzSource {
    #[default]
    Unknown,
    /// CONFIG_HZ from /proc/config.gz or /boot/config-*.
    KernelConfig,
    /// Inferred from observed tick spacing.
    Inferred,
    /// Given by the user or a synthetic workload.
    Given,
}

/// Which PELT fields the recording carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, bincode::Encode, bincode::Decode)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum PeltMode {
    #[default]
    Off,
    /// The leaving task's averages, last_update_time and flags at each switch.
    Switch,
    /// Complete sched_avg of prev and next, wakeups, pelt_se_tp/pelt_cfs_tp streams.
    Full,
}

/// Layout of `sched_avg.util_est` on the recorded kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, bincode::Encode, bincode::Decode)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(rename_all = "snake_case"))]
pub enum UtilEstLayout {
    #[default]
    Unknown,
    /// v6.8+: a single `unsigned int util_est` with UTIL_AVG_UNCHANGED in bit 31.
    Single,
    /// before v6.8: `struct util_est { enqueued, ewma }`; the trace holds `ewma`.
    EnqueuedEwma,
}

/// One counter slot of switch records.
#[derive(Clone, Debug, PartialEq, Eq, Default, bincode::Encode, bincode::Decode)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct CounterInfo {
    /// What the slot counted: a generic name ("cycles") or a raw event ("r01c2").
    pub name: String,
    /// False when the host could not count it (no PMU): the column is absent.
    pub available: bool,
}

/// The metadata block. Encoded with bincode 2's standard configuration; the
/// bytes are spelled out in SPEC.md §3.2. New fields are only ever appended,
/// and readers ignore bytes after the fields they know.
#[derive(Clone, Debug, PartialEq, Eq, Default, bincode::Encode, bincode::Decode)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Metadata {
    /// `uname -r` of the recorded host.
    pub kernel_release: String,
    pub hostname: Option<String>,
    pub nr_cpus: u32,
    /// `cpu_capacity` per CPU (1024 = the biggest CPU at its top frequency).
    pub cpu_capacity: Vec<u32>,
    /// Maximum frequency per CPU in kHz (empty when unknown).
    pub cpu_max_freq_khz: Vec<u32>,
    /// CONFIG_HZ, 0 when unknown.
    pub hz: u32,
    pub hz_source: HzSource,
    /// Linux clockid of every `ts` (1 = CLOCK_MONOTONIC, 7 = CLOCK_BOOTTIME).
    pub clock_id: u32,
    /// A simultaneous reading of that clock and of CLOCK_REALTIME, in ns.
    pub anchor_clock_ns: u64,
    pub anchor_realtime_ns: u64,
    /// Name and version of what wrote the file ("schedrec 0.1.0").
    pub recorder: String,
    pub command_line: Vec<String>,
    /// Counter slots of switch records (see `record::COUNTER_SLOTS`).
    pub counters: Vec<CounterInfo>,
    pub pelt: PeltMode,
    pub util_est_layout: UtilEstLayout,
    /// Free-form key/value pairs ("synth.seed" = "1", …).
    pub extra: Vec<(String, String)>,
}

impl Metadata {
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The decoded file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    pub meta: Metadata,
    /// Bytes the header occupies (the first chunk starts here).
    pub len: usize,
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<{ MAX_META_LEN as usize }>()
}

/// Encodes the complete file header.
pub fn encode_header(meta: &Metadata) -> Vec<u8> {
    let body = bincode::encode_to_vec(meta, bincode_config()).expect("metadata encodes");
    let mut out = Vec::with_capacity(HEADER_FIXED_LEN + body.len() + 4);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Decodes the file header at the start of `buf`.
pub fn decode_header(buf: &[u8]) -> Result<FileHeader> {
    let len = buf.len() as u64;
    if buf.len() < 8 || buf[..8] != MAGIC {
        if buf.len() < 8 && MAGIC.starts_with(buf) {
            return Err(Error::Truncated {
                what: "file header",
                offset: 0,
                needed: HEADER_FIXED_LEN as u64,
                len,
            });
        }
        return Err(Error::BadMagic);
    }
    if buf.len() < HEADER_FIXED_LEN {
        return Err(Error::Truncated {
            what: "file header",
            offset: 0,
            needed: HEADER_FIXED_LEN as u64,
            len,
        });
    }
    let major = le16(buf, 8);
    let minor = le16(buf, 10);
    if major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion {
            found_major: major,
            found_minor: minor,
            supported_major: VERSION_MAJOR,
            supported_minor: VERSION_MINOR,
        });
    }
    let flags = le32(buf, 12);
    let meta_len = le32(buf, 16);
    if meta_len > MAX_META_LEN {
        return Err(Error::CorruptHeader(format!(
            "metadata length {meta_len} exceeds the {MAX_META_LEN}-byte limit"
        )));
    }
    let total = HEADER_FIXED_LEN + meta_len as usize + 4;
    if buf.len() < total {
        return Err(Error::Truncated {
            what: "file header",
            offset: 0,
            needed: total as u64,
            len,
        });
    }
    let crc = le32(buf, total - 4);
    if crc32c::crc32c(&buf[..total - 4]) != crc {
        return Err(Error::CorruptHeader("checksum mismatch".into()));
    }
    if flags != 0 {
        // No flags are defined in 1.x; a set flag means a writer this reader
        // cannot understand.
        return Err(Error::CorruptHeader(format!(
            "unknown header flags {flags:#x}"
        )));
    }
    let body = &buf[HEADER_FIXED_LEN..total - 4];
    let (meta, _used): (Metadata, usize) = bincode::decode_from_slice(body, bincode_config())
        .map_err(|e| Error::CorruptHeader(format!("metadata: {e}")))?;
    Ok(FileHeader {
        major,
        minor,
        flags,
        meta,
        len: total,
    })
}
