//! The schedrec trace format (`.sched`), version 1.
//!
//! [`Writer`] streams [`Record`]s into a chunked, columnar, zstd-compressed
//! file; [`Reader`] memory-maps one and yields records merged in time order,
//! or decodes chunks column-wise in parallel. The bytes are defined by
//! `SPEC.md` beside this crate, independently of this code.
//!
//! ```no_run
//! use schedrec_format::*;
//! let mut w = Writer::create("t.sched", &Metadata::default(), WriterOptions::default())?;
//! w.push(&Record::Marker(Marker { ts: 1, cpu: CPU_NONE, text: b"hello".to_vec() }))?;
//! w.finish()?;
//! let r = Reader::open("t.sched")?;
//! for rec in r.records(Filter::default()) {
//!     println!("{:?}", rec?);
//! }
//! # Ok::<(), schedrec_format::Error>(())
//! ```

#[cfg(feature = "synth")]
pub mod bench;
pub mod chunk;
pub mod columns;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod meta;
pub mod reader;
pub mod record;
pub mod schema;
pub mod summary;
#[cfg(feature = "synth")]
pub mod synth;
pub mod varint;
pub mod writer;

pub use chunk::{ChunkInfo, Codec};
pub use error::{Error, Result};
pub use meta::{
    CounterInfo, FileHeader, HzSource, Metadata, PeltMode, UtilEstLayout, VERSION_MAJOR,
    VERSION_MINOR,
};
pub use reader::{Decoded, Filter, Reader, Records};
pub use record::*;
pub use schema::Kind;
pub use summary::Summary;
pub use writer::{Writer, WriterOptions, WriterStats};
