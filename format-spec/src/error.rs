//! Typed errors. Every error says what is wrong and, where it applies, where:
//! the byte offset in the file and the chunk number.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing a `.sched` file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a schedrec trace (bad magic at offset 0; expected a .sched file)")]
    BadMagic,
    #[error("trace format version {found_major}.{found_minor} is not supported: this reader understands {supported_major}.x (up to {supported_major}.{supported_minor}); use a matching schedrec release")]
    UnsupportedVersion {
        found_major: u16,
        found_minor: u16,
        supported_major: u16,
        supported_minor: u16,
    },
    #[error("truncated file: {what} needs {needed} bytes at offset {offset}, file has {len}")]
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
        len: u64,
    },
    #[error("corrupt file header: {0}")]
    CorruptHeader(String),
    #[error("chunk {chunk} at offset {offset}: {what}")]
    CorruptChunk {
        chunk: usize,
        offset: u64,
        what: String,
    },
    #[error("chunk {chunk} at offset {offset}: unsupported codec {codec} (this reader knows 0=none, 1=zstd)")]
    UnsupportedCodec {
        chunk: usize,
        offset: u64,
        codec: u8,
    },
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("{0}")]
    WriterFailed(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn chunk(chunk: usize, offset: u64, what: impl Into<String>) -> Self {
        Error::CorruptChunk {
            chunk,
            offset,
            what: what.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
