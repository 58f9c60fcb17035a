pub mod bench;
pub mod dump;
pub mod info;
pub mod synth;
