pub mod analyze;
pub mod bench;
pub mod dump;
pub mod info;
pub mod record;
pub mod replay;
pub mod synth;
pub mod workload;
