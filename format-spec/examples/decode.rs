//! Decodes every chunk of a trace a few times on one thread and prints the
//! rate: a target for profilers (`perf record`), not a benchmark of record
//! (that is `schedrec bench format`).
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: decode FILE.sched [ROUNDS]")?;
    let rounds: usize = std::env::args().nth(2).map_or(Ok(5), |s| s.parse())?;
    let r = schedrec_format::Reader::open(&path)?;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut n = 0;
        for i in 0..r.chunks().len() {
            n += r.decode(i)?.len();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{n} records in {s:.3} s: {:.1} M records/s",
            n as f64 / s / 1e6
        );
    }
    Ok(())
}
