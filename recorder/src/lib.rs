//! schedrec's recorder: the BPF programs of `../bpf` loaded with libbpf-rs,
//! their per-CPU buffers and ring buffer drained into a `.sched` trace, and the built-in
//! workloads used by tests, the demo and experiments.

pub mod events;
pub mod host;
pub mod overhead;
pub mod pcb;
pub mod perf;
pub mod record;
pub mod workload;

pub(crate) mod skel {
    #![allow(
        clippy::all,
        unused,
        missing_docs,
        non_camel_case_types,
        non_snake_case
    )]
    include!(concat!(env!("OUT_DIR"), "/schedrec.skel.rs"));
}

pub use record::{record, Options, Summary};

/// Why a recording could not start or finish. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("permission denied loading BPF programs: run as root, or grant CAP_BPF and CAP_PERFMON (e.g. sudo schedrec record ...)")]
    NotPermitted,
    #[error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): schedrec needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("{0}")]
    Bpf(String),
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Command(String),
    #[error("{0}")]
    Usage(String),
}
