//! Arbitrary bytes as a whole `.sched` file: open, summarise, decode, iterate.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    schedrec_format::fuzz::read_file(data);
});
