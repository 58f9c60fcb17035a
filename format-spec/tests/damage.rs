//! Damaged files: truncation at every byte offset and bit flips. The reader
//! must give a clear error or exactly the data that is intact: never a panic,
//! never wrong data.

mod common;

use schedrec_format::*;

/// A small multi-chunk file of several kinds and CPUs, with its records per chunk offset.
fn sample() -> (Vec<u8>, Vec<(ChunkInfo, Vec<Record>)>) {
    let mut records = Vec::new();
    for i in 0..40u64 {
        let cpu = (i % 2) as u32;
        records.push(Record::Switch(Switch {
            ts: 1_000_000 + i * 1000,
            cpu,
            prev: TaskRef {
                pid: 100 + i as u32 % 3,
                tgid: 100,
                prio: 120,
            },
            prev_state: (i % 3) as u32,
            next: TaskRef {
                pid: 100 + (i as u32 + 1) % 3,
                tgid: 100,
                prio: 120,
            },
            preempt: i % 5 == 0,
            counters: [
                Some(Counter {
                    value: i * 12345,
                    enabled: 1000,
                    running: 1000,
                }),
                None,
                None,
                None,
            ],
            prev_pelt: Some(PeltAvg {
                util_avg: i * 7 % 1024,
                load_avg: i * 7 % 1024,
                runnable_avg: i * 9 % 1024,
                util_est: 300,
                last_update_time: 999_000 + i * 1000,
                on_rq: i % 2 == 0,
                sched_delayed: false,
            }),
            ..Default::default()
        }));
        if i % 4 == 0 {
            records.push(Record::Wakeup(Wakeup {
                ts: 1_000_500 + i * 1000,
                cpu,
                pid: 101,
                target_cpu: cpu,
                new: false,
                pelt: None,
                sums: None,
            }));
        }
    }
    records.push(Record::Loss(Loss {
        ts: 1_010_000,
        cpu: 1,
        end_ts: 1_020_000,
        count: 3,
    }));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write(
        dir.path(),
        &records,
        WriterOptions {
            chunk_records: 6,
            ..Default::default()
        },
    );
    let bytes = std::fs::read(&path).unwrap();
    let r = Reader::from_bytes(bytes.clone()).unwrap();
    assert!(r.is_complete());
    assert!(r.chunks().len() >= 8, "{} chunks", r.chunks().len());
    let per_chunk = (0..r.chunks().len())
        .map(|i| {
            let d = r.decode(i).unwrap();
            (d.info, d.records().map(|x| x.unwrap()).collect())
        })
        .collect();
    (bytes, per_chunk)
}

#[test]
fn truncation_at_every_offset() {
    let (bytes, chunks) = sample();
    let header_len = Reader::from_bytes(bytes.clone()).unwrap().header().len;
    for cut in 0..bytes.len() {
        let r = match Reader::from_bytes(bytes[..cut].to_vec()) {
            Err(e) => {
                assert!(cut < header_len, "cut {cut}: unexpected error {e}");
                assert!(matches!(e, Error::Truncated { .. }), "cut {cut}: {e}");
                assert!(e.to_string().contains("truncated"), "{e}");
                continue;
            }
            Ok(r) => r,
        };
        assert!(cut >= header_len);
        assert!(!r.is_complete(), "cut {cut} read as complete");
        assert!(r.recovery().is_some());
        // Exactly the chunks that end at or before the cut.
        let want: Vec<&(ChunkInfo, Vec<Record>)> = chunks
            .iter()
            .filter(|(c, _)| c.offset + c.total_len() <= cut as u64)
            .collect();
        assert_eq!(r.chunks().len(), want.len(), "cut {cut}");
        for (i, (info, recs)) in want.iter().enumerate() {
            assert_eq!(&r.chunks()[i], info);
            let d = r.decode(i).unwrap();
            let got: Vec<Record> = d.records().map(|x| x.unwrap()).collect();
            assert_eq!(&got, recs, "cut {cut} chunk {i}");
        }
        let n: usize = want.iter().map(|(_, r)| r.len()).sum();
        let all: Vec<Record> = r.records(Filter::default()).collect::<Result<_>>().unwrap();
        assert_eq!(all.len(), n);
    }
    // The whole file is complete.
    assert!(Reader::from_bytes(bytes).unwrap().is_complete());
}

/// SplitMix64 for reproducible flips.
fn rng(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn bit_flips_are_caught() {
    let (bytes, chunks) = sample();
    let header_len = Reader::from_bytes(bytes.clone()).unwrap().header().len;
    let mut seed = 42;
    let mut caught = 0;
    for trial in 0..3000 {
        let at = (rng(&mut seed) % bytes.len() as u64) as usize;
        let bit = rng(&mut seed) % 8;
        let mut b = bytes.clone();
        b[at] ^= 1 << bit;
        let hit = chunks
            .iter()
            .position(|(c, _)| (c.offset..c.offset + c.total_len()).contains(&(at as u64)));
        let r = match Reader::from_bytes(b) {
            Err(e) => {
                assert!(at < header_len, "trial {trial}: flip at {at} gave {e}");
                caught += 1;
                continue;
            }
            Ok(r) => r,
        };
        assert!(
            at >= header_len,
            "trial {trial}: header flip at {at} not caught"
        );
        // The merged iteration, decoded ahead or not, stops at the same
        // record with the same error.
        let outcome = |recs: &mut dyn Iterator<Item = schedrec_format::Result<Record>>| {
            let mut n = 0;
            for rec in recs {
                match rec {
                    Ok(_) => n += 1,
                    Err(e) => return (n, Some(e.to_string())),
                }
            }
            (n, None)
        };
        let plain = outcome(&mut r.records(Filter::default()));
        let ahead = r.with_records(Filter::default(), |mut recs| outcome(&mut recs));
        assert_eq!(plain, ahead, "trial {trial}");
        // Batches filled in place: the error comes last, after the same records.
        let mut recs = r.records(Filter::default());
        let (mut n, mut err, mut buf) = (0, None, vec![]);
        while recs.fill(&mut buf, 1000) > 0 {
            for rec in buf.drain(..) {
                assert!(err.is_none(), "trial {trial}: a record after the error");
                match rec {
                    Ok(_) => n += 1,
                    Err(e) => err = Some(e.to_string()),
                }
            }
        }
        assert_eq!((n, err), plain, "trial {trial}");
        let mut flipped_chunk_ok = false;
        for i in 0..r.chunks().len() {
            let c = r.chunks()[i];
            let orig = chunks.iter().position(|(o, _)| o.offset == c.offset);
            match r.decode(i) {
                Ok(d) => {
                    let got: Vec<Record> = d.records().map(|x| x.unwrap()).collect();
                    let o = orig.expect("decoded chunk exists in the original");
                    assert_eq!(got, chunks[o].1, "trial {trial}: wrong data in chunk {i}");
                    if Some(o) == hit {
                        flipped_chunk_ok = true;
                    }
                }
                Err(e) => {
                    assert_eq!(
                        orig, hit,
                        "trial {trial}: chunk {i} failed but flip was elsewhere: {e}"
                    );
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("chunk {i} ")), "{msg}");
                    caught += 1;
                }
            }
        }
        assert!(
            !flipped_chunk_ok,
            "trial {trial}: flip at {at} went undetected"
        );
        if hit.is_some() && r.chunks().len() < chunks.len() {
            caught += 1; // the scan stopped at the damaged chunk
        }
    }
    assert!(caught > 1000, "only {caught} flips were detected");
}

#[test]
fn wrong_major_version_is_refused_naming_both() {
    let (mut bytes, _) = sample();
    bytes[8] = 2; // major = 2
    let e = Reader::from_bytes(bytes).err().expect("refused");
    let msg = e.to_string();
    assert!(msg.contains("2.0") && msg.contains("1."), "{msg}");
}

#[test]
fn newer_minor_version_is_read() {
    let (mut bytes, chunks) = sample();
    bytes[10] = 7; // minor = 7: additive changes only
                   // Re-seal the header checksum.
    let r0 = Reader::from_bytes(sample().0).unwrap();
    let hl = r0.header().len;
    let crc = crc32c::crc32c(&bytes[..hl - 4]);
    bytes[hl - 4..hl].copy_from_slice(&crc.to_le_bytes());
    let r = Reader::from_bytes(bytes).unwrap();
    assert_eq!(r.header().minor, 7);
    assert_eq!(r.chunks().len(), chunks.len());
}

#[test]
fn not_a_trace() {
    for junk in [
        &b""[..],
        b"hello world, this is not a trace file",
        &[0u8; 100],
    ] {
        let e = Reader::from_bytes(junk.to_vec()).err().expect("refused");
        assert!(
            matches!(e, Error::BadMagic | Error::Truncated { .. }),
            "{e}"
        );
    }
}

#[test]
fn garbage_payloads_with_valid_checksums_never_panic() {
    // Checksums stop random damage; this drives the column decoder itself
    // with arbitrary payloads sealed with correct checksums.
    let mut seed = 7;
    for _ in 0..20_000 {
        let n = (rng(&mut seed) % 64) as usize;
        let data: Vec<u8> = (0..n).map(|_| rng(&mut seed) as u8).collect();
        schedrec_format::fuzz::decode_sealed(&data);
    }
}

#[test]
fn fuzzer_findings_stay_fixed() {
    // Inputs that once crashed the fuzz targets (format-spec/fuzz/regressions).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("sealed-") {
            schedrec_format::fuzz::decode_sealed(&data);
        } else {
            schedrec_format::fuzz::read_file(&data);
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
