//! `schedrec synth`

use std::path::PathBuf;

use schedrec_format::synth::{write_file, Spec};
use schedrec_format::{Codec, WriterOptions};

use crate::out::{human_bytes, CliResult};

#[derive(clap::Args)]
pub struct Args {
    /// Workload description (see fixtures/synth/*.toml).
    spec: PathBuf,
    /// Output trace (.sched).
    #[arg(short, long)]
    output: PathBuf,
    /// Random seed (overrides the spec's).
    #[arg(long)]
    seed: Option<u64>,
    /// Payload codec.
    #[arg(long, default_value = "zstd", value_parser = ["zstd", "none"])]
    codec: String,
    /// zstd compression level (1..=22).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Records per chunk.
    #[arg(long, default_value_t = 16384, value_parser = clap::value_parser!(u32).range(1..=1048576))]
    chunk_records: u32,
}

pub fn run(a: Args) -> CliResult {
    let spec = Spec::load(&a.spec)?;
    let seed = a.seed.unwrap_or(spec.seed);
    let opts = WriterOptions {
        chunk_records: a.chunk_records as usize,
        codec: if a.codec == "none" {
            Codec::None
        } else {
            Codec::Zstd
        },
        zstd_level: a.zstd_level,
        mode: 0o644,
        ..Default::default()
    };
    let cmdline = std::env::args().collect();
    let st = write_file(&spec, seed, &a.output, cmdline, opts)?;
    let size = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {}: {} switches, {} tasks, {} ({:.2} bytes/switch overall)",
        a.output.display(),
        st.switches,
        st.tasks,
        human_bytes(size),
        size as f64 / st.switches.max(1) as f64
    );
    Ok(())
}
