pub mod bench;
pub mod dump;
pub mod info;
pub mod record;
pub mod synth;
pub mod workload;
