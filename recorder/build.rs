//! Compiles ../bpf/schedrec.bpf.c with clang and generates its libbpf-rs
//! skeleton (needs clang; libbpf itself is vendored by libbpf-sys).

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "../bpf/schedrec.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("schedrec.skel.rs");
    let mut args = vec!["-I", "../bpf", "-Wall", "-Werror"];
    // Off x86, publishing a per-CPU buffer record needs the fully ordered
    // (fetching) atomic add of BPF ISA v3 (see pcb_commit).
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        args.push("-mcpu=v3");
    }
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .clang_args(args)
        .build_and_generate(&out)
    {
        panic!(
            "building the BPF programs failed: {e:#}\n\
             (they need clang: run `bash .ci/setup`, or `apt-get install clang libelf-dev zlib1g-dev pkg-config make`)"
        );
    }
    for f in [
        "schedrec.bpf.c",
        "hotpath.bpf.h",
        "schedrec.h",
        "vmlinux_min.h",
    ] {
        println!("cargo:rerun-if-changed=../bpf/{f}");
    }
}
