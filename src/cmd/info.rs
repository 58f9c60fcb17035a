//! `schedrec info`

use std::path::Path;

use schedrec_format::{HzSource, PeltMode, Reader, Summary};
use serde_json::json;

use crate::out::{human_bytes, secs, CliResult};

pub fn run(file: &Path, json: bool, columns: bool) -> CliResult {
    let r = Reader::open(file)?;
    let s = Summary::of(&r)?;
    let h = r.header();
    let m = r.meta();
    let ratio = if s.stored_bytes > 0 {
        s.raw_bytes as f64 / s.stored_bytes as f64
    } else {
        0.0
    };
    if json {
        let v = json!({
            "format_version": format!("{}.{}", h.major, h.minor),
            "complete": s.complete,
            "recovery": s.recovery,
            "records": s.records,
            "switches": s.switches,
            "lost_events": s.lost_events,
            "start_ns": s.start_ns,
            "end_ns": s.end_ns,
            "cpus": m.nr_cpus,
            "cpus_with_records": s.cpus,
            "chunks": s.chunks,
            "file_bytes": s.file_bytes,
            "raw_bytes": s.raw_bytes,
            "stored_bytes": s.stored_bytes,
            "compression_ratio": ratio,
            "bytes_per_switch": s.bytes_per_switch,
            "meta": m,
        });
        let mut v = v;
        if columns {
            let cols: Vec<_> = schedrec_format::summary::column_sizes(&r)?
                .into_iter()
                .map(|c| json!({"kind": c.kind.name(), "bit": c.bit, "name": c.name, "values": c.values, "raw_bytes": c.raw_bytes, "zstd_bytes": c.zstd_bytes}))
                .collect();
            v["columns"] = json!(cols);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let state = if s.complete {
        "complete".to_string()
    } else {
        format!(
            "RECOVERED (no valid footer): {}",
            s.recovery.as_deref().unwrap_or("")
        )
    };
    println!(
        "file:          {} ({})",
        file.display(),
        human_bytes(s.file_bytes)
    );
    println!("format:        {}.{}, {state}", h.major, h.minor);
    println!(
        "recorded by:   {} on {}, kernel {}",
        m.recorder,
        m.hostname.as_deref().unwrap_or("?"),
        m.kernel_release
    );
    if !m.command_line.is_empty() {
        println!("command:       {}", m.command_line.join(" "));
    }
    println!(
        "time:          {} .. {} s ({:.3} s)",
        secs(s.start_ns),
        secs(s.end_ns),
        (s.end_ns - s.start_ns) as f64 / 1e9
    );
    let with: Vec<String> = s.cpus.iter().map(|c| c.to_string()).collect();
    println!(
        "cpus:          {} (records on {})",
        m.nr_cpus,
        if with.is_empty() {
            "none".into()
        } else {
            with.join(",")
        }
    );
    let hz = if m.hz > 0 {
        let src = match m.hz_source {
            HzSource::Unknown => "source unknown",
            HzSource::KernelConfig => "from the kernel config",
            HzSource::Inferred => "inferred",
            HzSource::Given => "given",
        };
        format!("{} ({src})", m.hz)
    } else {
        "unknown".into()
    };
    println!("hz:            {hz}");
    let (on, off): (Vec<_>, Vec<_>) = m.counters.iter().partition(|c| c.available);
    let names = |v: &[&schedrec_format::CounterInfo]| {
        v.iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "counters:      {}{}",
        if on.is_empty() {
            "none".into()
        } else {
            names(&on)
        },
        if off.is_empty() {
            String::new()
        } else {
            format!(" (unavailable: {})", names(&off))
        }
    );
    let pelt = match m.pelt {
        PeltMode::Off => "off",
        PeltMode::Switch => "switch (the leaving task's averages at each switch)",
        PeltMode::Full => "full (complete sched_avg of prev and next, PELT update streams)",
    };
    println!("pelt:          {pelt}");
    let recs: Vec<String> = s.records.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "records:       {}",
        if recs.is_empty() {
            "none".into()
        } else {
            recs.join(", ")
        }
    );
    println!("lost events:   {}", s.lost_events);
    println!(
        "size:          {} chunks, {} raw -> {} stored (ratio {ratio:.1}), {:.2} bytes/switch",
        s.chunks,
        human_bytes(s.raw_bytes),
        human_bytes(s.stored_bytes),
        s.bytes_per_switch
    );
    if columns {
        println!("columns (bytes per record; zstd = the column compressed alone):");
        println!(
            "  {:<10} {:<28} {:>4} {:>10} {:>9} {:>9}",
            "kind", "column", "bit", "values", "raw B/rec", "zstd B/rec"
        );
        for c in schedrec_format::summary::column_sizes(&r)? {
            let per = |b: u64| b as f64 / c.values.max(1) as f64;
            println!(
                "  {:<10} {:<28} {:>4} {:>10} {:>9.3} {:>9.3}",
                c.kind.name(),
                c.name,
                c.bit,
                c.values,
                per(c.raw_bytes),
                per(c.zstd_bytes)
            );
        }
    }
    Ok(())
}
