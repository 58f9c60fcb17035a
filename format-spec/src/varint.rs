//! ULEB128 varints and zig-zag, as SPEC.md §2 defines them.

/// Zig-zag maps a signed value onto an unsigned one: 0,-1,1,-2,… → 0,1,2,3,…
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as ULEB128: 7 bits per byte, least significant group first,
/// high bit set on every byte but the last. At most 10 bytes.
#[inline]
pub fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one ULEB128 value from `buf[*pos..]`. Fails on a value that runs
/// past the buffer, is longer than 10 bytes, or overflows 64 bits.
#[inline]
pub fn get_uleb(buf: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let p = *pos;
    if let Some(&b) = buf.get(p) {
        if b < 0x80 {
            *pos = p + 1;
            return Ok(b as u64);
        }
    }
    let mut v: u64 = 0;
    let mut shift = 0u32;
    let mut i = p;
    loop {
        let Some(&b) = buf.get(i) else {
            return Err("varint runs past the end of its column");
        };
        i += 1;
        if shift == 63 && b > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err("varint longer than 10 bytes");
        }
    }
    *pos = i;
    Ok(v)
}

/// Appends exactly `count` ULEB128 values read from the start of `buf` to
/// `out`; returns the bytes consumed. The column decoder's hot loop.
pub fn get_ulebs(buf: &[u8], count: usize, out: &mut Vec<u64>) -> Result<usize, &'static str> {
    out.reserve(count);
    let mut p = 0usize;
    let mut left = count;
    while left > 0 {
        if left >= 8 {
            if let Some(w) = buf.get(p..p + 8) {
                let w: [u8; 8] = w.try_into().expect("8 bytes");
                if u64::from_le_bytes(w) & 0x8080_8080_8080_8080 == 0 {
                    // Eight one-byte values at once (flags, zero deltas, …).
                    out.extend(w.iter().map(|&b| b as u64));
                    p += 8;
                    left -= 8;
                    continue;
                }
            }
        }
        left -= 1;
        if let Some(b) = buf.get(p..p + 10) {
            // At least 10 bytes left: no per-byte bounds checks.
            let b: &[u8; 10] = b.try_into().expect("10 bytes");
            if b[0] < 0x80 {
                out.push(b[0] as u64);
                p += 1;
                continue;
            }
            let mut v = (b[0] & 0x7f) as u64;
            let mut i = 1;
            loop {
                let byte = b[i];
                if i == 9 && byte > 1 {
                    return Err("varint overflows 64 bits");
                }
                v |= ((byte & 0x7f) as u64) << (7 * i);
                i += 1;
                if byte < 0x80 {
                    break;
                }
                if i == 10 {
                    return Err("varint longer than 10 bytes");
                }
            }
            out.push(v);
            p += i;
        } else {
            out.push(get_uleb(buf, &mut p)?);
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uleb_known_bytes() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            put_uleb(&mut out, *v);
            assert_eq!(&out[..], *bytes, "encoding {v}");
            let mut pos = 0;
            assert_eq!(get_uleb(&out, &mut pos).unwrap(), *v);
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn uleb_rejects_overlong_and_overflow() {
        let mut pos = 0;
        assert!(get_uleb(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        // 10th byte may only carry bit 63.
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(get_uleb(&over, &mut pos).is_err());
        let mut pos = 0;
        assert!(get_uleb(&[0x80, 0x80], &mut pos).is_err());
    }

    #[test]
    fn bulk_decoder_agrees_with_single_decoder() {
        let vals: Vec<u64> = (0..64)
            .flat_map(|s| [1u64 << s, (1u64 << s) - 1, (1u64 << s) + 1])
            .chain([0, u64::MAX])
            .collect();
        let mut buf = Vec::new();
        for &v in &vals {
            put_uleb(&mut buf, v);
        }
        let mut out = Vec::new();
        assert_eq!(get_ulebs(&buf, vals.len(), &mut out).unwrap(), buf.len());
        assert_eq!(out, vals);
        // Too few bytes, and overlong values, fail on both paths.
        let mut out = Vec::new();
        assert!(get_ulebs(&buf[..buf.len() - 1], vals.len(), &mut out).is_err());
        let mut long = vec![0x80u8; 11];
        long.push(0);
        assert!(get_ulebs(&long, 1, &mut Vec::new()).is_err());
        let mut over = vec![0xffu8; 9];
        over.extend_from_slice(&[0x02, 0, 0, 0]);
        assert!(get_ulebs(&over, 1, &mut Vec::new()).is_err());
    }

    #[test]
    fn zigzag_known_values() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        for v in [0i64, 1, -1, 12345, -98765, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
