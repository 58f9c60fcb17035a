//! The reader's side of the per-CPU buffers of `bpf/schedrec.h`: the switch
//! and wakeup records, written by each CPU's program into its own part of
//! a memory-mapped array map without locks, and consumed here on a timer.
//!
//! A CPU's part is `chunks` elements of `SR_PCB_CHUNK` (+ slack) bytes; its
//! `sr_pos` holds `head` (advanced by the program after it wrote a record)
//! and `tail` (advanced here after the records before it were read).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// `SR_PCB_CHUNK`, `SR_PCB_SLACK`, `sizeof(struct sr_pos)`, the offsets of
/// `sr_pos.tail` and `sr_hdr.type`, `SR_EV_PAD` (the C header asserts the
/// same sizes and offsets).
pub const CHUNK: u64 = 64 << 10;
pub const SLACK: usize = 512;
const POS_SIZE: usize = 128;
const TAIL_OFFSET: usize = 64;
pub const EV_PAD: u16 = 0;
const HDR_SIZE: u64 = 16;
const HDR_KIND_OFFSET: usize = 12;

/// Chunks per CPU, a power of two (the BPF side masks with it): `mib` MiB
/// rounded down to a power of two (at least one chunk), or by default about
/// 64 MiB over all CPUs, at least 1 MiB and at most 32 MiB per CPU.
pub fn chunks_per_cpu(cpus: u32, mib: Option<u32>) -> u32 {
    let per_cpu = match mib {
        Some(m) => u64::from(m) << 20,
        None => ((64u64 << 20) / u64::from(cpus.max(1))).clamp(1 << 20, 32 << 20),
    };
    let chunks = (per_cpu / CHUNK).clamp(1, 1 << 16) as u32;
    1 << chunks.ilog2()
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: impl AsFd, len: usize, writable: bool) -> std::io::Result<Self> {
        let prot = libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping of a BPF array map's values; the
        // kernel checks the length against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr as *mut u8,
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped, once.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

fn page_align(n: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    n.div_ceil(page) * page
}

pub struct PerCpuBuffers {
    data: Mapping,
    pos: Mapping,
    cpus: usize,
    chunks: u64,
    /// Bytes between two array elements (the value size rounded up to 8).
    elem: usize,
}

impl PerCpuBuffers {
    /// Maps the `pcb` and `pcb_pos` maps of a loaded object.
    pub fn map(data: impl AsFd, pos: impl AsFd, cpus: u32, chunks: u32) -> std::io::Result<Self> {
        let elem = (CHUNK as usize + SLACK).next_multiple_of(8);
        let cpus = cpus as usize;
        Ok(PerCpuBuffers {
            data: Mapping::new(data, page_align(elem * cpus * chunks as usize), false)?,
            pos: Mapping::new(pos, page_align(POS_SIZE * cpus), true)?,
            cpus,
            chunks: u64::from(chunks),
            elem,
        })
    }

    fn word(&self, cpu: usize, offset: usize) -> &AtomicU64 {
        debug_assert!(cpu < self.cpus);
        // SAFETY: `pos` maps `cpus` 128-byte, 8-aligned sr_pos values; the
        // kernel's program alone writes `head` (one aligned 8-byte store or
        // atomic add: never torn), we alone write `tail`.
        unsafe { AtomicU64::from_ptr(self.pos.ptr.add(cpu * POS_SIZE + offset) as *mut u64) }
    }

    /// Hands every record published since the last call to `f` (with its
    /// exact length from `len_of(kind)`), CPU by CPU, and frees their room.
    /// Returns how many bytes were found undecodable (a record kind
    /// `len_of` does not know: the rest of that CPU's published data is
    /// skipped, not misread).
    pub fn drain(
        &mut self,
        len_of: impl Fn(u16) -> Option<usize>,
        mut f: impl FnMut(&[u8]),
    ) -> u64 {
        let mut bad = 0;
        for cpu in 0..self.cpus {
            let head = self.word(cpu, 0).load(Ordering::Acquire);
            let tail = self.word(cpu, TAIL_OFFSET).load(Ordering::Relaxed);
            let mut t = tail;
            while t < head {
                let off = t % CHUNK;
                let room = CHUNK - off;
                // The program publishes a skipped chunk end together with
                // the record after it, so a skip ends before `head`.
                let skip_ok = room < head - t;
                // Published bytes from `t` in this chunk: the program may
                // be writing past `head` meanwhile, so nothing beyond it
                // is read.
                let avail = room.min(head - t);
                if room < HDR_SIZE && skip_ok {
                    t += room;
                    continue;
                }
                let kind = if avail >= HDR_SIZE {
                    let chunk = cpu as u64 * self.chunks + (t / CHUNK) % self.chunks;
                    let start = chunk as usize * self.elem + off as usize;
                    // SAFETY: `start` + `avail` lies inside the mapping
                    // (chunk < cpus * chunks elements, avail <= a chunk's
                    // room), and the program does not write below `head`
                    // until `tail` passes it.
                    let bytes = unsafe {
                        std::slice::from_raw_parts(self.data.ptr.add(start), avail as usize)
                    };
                    let kind =
                        u16::from_ne_bytes([bytes[HDR_KIND_OFFSET], bytes[HDR_KIND_OFFSET + 1]]);
                    match len_of(kind) {
                        Some(len) if kind != EV_PAD && len as u64 <= avail => {
                            f(&bytes[..len]);
                            t += len as u64;
                            continue;
                        }
                        _ => Some(kind),
                    }
                } else {
                    None
                };
                if kind == Some(EV_PAD) && skip_ok {
                    t += room;
                } else {
                    // Out of step with the program: skip what it has
                    // published, and never pass `head`.
                    bad += head - t;
                    t = head;
                }
            }
            if t != tail {
                // The program reads `tail` for every record: store it only
                // when it moved.
                self.word(cpu, TAIL_OFFSET).store(t, Ordering::Release);
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_a_power_of_two_within_bounds() {
        for cpus in [1, 2, 3, 6, 7, 64, 100, 255, 256, 1024, 8192] {
            let c = chunks_per_cpu(cpus, None);
            assert!(c.is_power_of_two(), "{cpus} CPUs: {c}");
            let bytes = u64::from(c) * CHUNK;
            assert!(
                (1 << 20..=32 << 20).contains(&bytes),
                "{cpus} CPUs: {bytes}"
            );
        }
        assert_eq!(chunks_per_cpu(2, None), 512); // 32 MiB each
        assert_eq!(chunks_per_cpu(6, None), 128); // 10.7 MiB rounds down to 8
        assert_eq!(chunks_per_cpu(2, Some(3)), 32); // 3 MiB rounds down to 2
        assert_eq!(chunks_per_cpu(2, Some(0)), 1);
    }
}
