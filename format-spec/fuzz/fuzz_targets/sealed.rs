//! Arbitrary chunk parameters and payload sealed with valid checksums, so
//! the column decoder sees the bytes instead of a checksum failure.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    schedrec_format::fuzz::decode_sealed(data);
});
