//! The tables as polars DataFrames, and their export to Parquet/CSV, as
//! single files or into a hive-partitioned dataset.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::tables::{Code, Labels, Nullable, ReplayRows, Tables};

/// The tables `export` writes, in this order.
pub const TABLES: [&str; 6] = ["switches", "slices", "wakeups", "tasks", "pelt", "replay"];

/// Builds the DataFrame of table `name`.
pub fn frame(t: &Tables, name: &str) -> PolarsResult<DataFrame> {
    macro_rules! c {
        ($n:expr, $v:expr) => {
            Column::new($n.into(), $v.as_slice())
        };
    }
    match name {
        "switches" => {
            let s = &t.switches;
            DataFrame::new_infer_height(vec![
                c!("ts", s.ts),
                c!("cpu", s.cpu),
                c!("prev_pid", s.prev_pid),
                c!("prev_tgid", s.prev_tgid),
                c!("prev_prio", s.prev_prio),
                c!("prev_state", s.prev_state),
                c!("next_pid", s.next_pid),
                c!("next_tgid", s.next_tgid),
                c!("next_prio", s.next_prio),
                c!("preempt", s.preempt),
                c!("cycles", s.counters[0]),
                c!("instructions", s.counters[1]),
                c!("cache_references", s.counters[2]),
                c!("cache_misses", s.counters[3]),
                c!("prev_util_avg", s.prev_util_avg),
                c!("prev_load_avg", s.prev_load_avg),
                c!("prev_runnable_avg", s.prev_runnable_avg),
                c!("prev_util_est", s.prev_util_est),
                c!("prev_last_update_time", s.prev_last_update_time),
            ])
        }
        "slices" => {
            let s = &t.slices;
            let mut df = DataFrame::new_infer_height(vec![
                c!("pid", s.pid),
                c!("cpu", s.cpu),
                c!("start", s.start),
                c!("end", s.end),
                Column::new(
                    "duration_ns".into(),
                    (0..s.pid.len())
                        .map(|i| s.duration_ns(i))
                        .collect::<Vec<u64>>(),
                ),
                labels("end_state", &s.end_state),
                u64s("cycles", &s.cycles),
                u64s("instructions", &s.instructions),
                u64s("cache_references", &s.cache_references),
                u64s("cache_misses", &s.cache_misses),
            ])?;
            // Derived: instructions per cycle, misses per reference, and the
            // effective frequency (cycles per ns = GHz); null without counters.
            df = df
                .lazy()
                .with_columns([
                    (col_f("instructions") / col_f("cycles")).alias("ipc"),
                    (col_f("cache_misses") / col_f("cache_references")).alias("miss_rate"),
                    (col_f("cycles") / col_f("duration_ns")).alias("ghz"),
                ])
                .collect()?;
            Ok(df)
        }
        "wakeups" => {
            let w = &t.wakeups;
            if w.target_cpu.len() != w.ts.len() {
                return Err(PolarsError::ComputeError(
                    "the wakeups table was read without its export columns (keep_switches)".into(),
                ));
            }
            DataFrame::new_infer_height(vec![
                c!("ts", w.ts),
                c!("pid", w.pid),
                c!("target_cpu", w.target_cpu),
                c!("new", w.new),
                u64s("latency_ns", &w.latency_ns),
                u64s("sleep_ns", &w.sleep_ns),
            ])
        }
        "tasks" => {
            let k = &t.tasks;
            DataFrame::new_infer_height(vec![
                c!("pid", k.pid),
                c!("tgid", k.tgid),
                c!("ppid", k.ppid),
                Column::new("comm".into(), k.comm.clone()),
                c!("prio", k.prio),
                c!("policy", k.policy),
                c!("first_ts", k.first_ts),
                c!("exited", k.exited),
            ])
        }
        "pelt" => {
            let p = &t.pelt;
            DataFrame::new_infer_height(vec![
                c!("ts", p.ts),
                Column::new("entity".into(), p.entity.clone()),
                c!("rq_cpu", p.rq_cpu),
                c!("pid", p.pid),
                c!("util_avg", p.util_avg),
                c!("load_avg", p.load_avg),
                c!("runnable_avg", p.runnable_avg),
                c!("last_update_time", p.last_update_time),
            ])
        }
        "replay" => replay_frame(&t.replay),
        other => Err(PolarsError::ComputeError(
            format!("no table named {other}").into(),
        )),
    }
}

/// A nullable column as polars UInt64 (the schema `export` documents).
pub(crate) fn u64s<T: Code>(name: &str, v: &Nullable<T>) -> Column {
    UInt64Chunked::from_iter_options(name.into(), v.iter()).into_column()
}

fn labels(name: &str, v: &Labels) -> Column {
    StringChunked::from_iter_options(name.into(), v.iter()).into_column()
}

fn col_f(name: &str) -> Expr {
    polars::prelude::col(name).cast(DataType::Float64)
}

/// Output format of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Writes `df` to `path`.
pub fn write(df: &mut DataFrame, path: &Path, format: Format) -> PolarsResult<()> {
    let mut f = File::create(path).map_err(|e| PolarsError::IO {
        error: std::sync::Arc::new(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )),
        msg: None,
    })?;
    match format {
        Format::Parquet => {
            ParquetWriter::new(&mut f).finish(df)?;
        }
        Format::Csv => {
            CsvWriter::new(&mut f).finish(df)?;
        }
    }
    Ok(())
}

/// The `replay` table as a DataFrame (the columns of `schedrec replay -o`).
pub fn replay_frame(r: &ReplayRows) -> PolarsResult<DataFrame> {
    let u = u64s::<u32>;
    let u16s = u64s::<u16>;
    let mut cols = vec![
        Column::new("ts".into(), &r.ts),
        Column::new("pid".into(), &r.pid),
    ];
    if let Some(x) = &r.extra {
        cols.push(Column::new("cpu".into(), &x.cpu));
    }
    cols.extend([
        labels("event", &r.event),
        u16s("kernel_util_avg", &r.kernel_util_avg),
    ]);
    if let Some(x) = &r.extra {
        cols.extend([
            u("kernel_load_avg", &x.kernel_load_avg),
            u("kernel_runnable_avg", &x.kernel_runnable_avg),
        ]);
    }
    cols.extend([
        u16s("kernel_util_est", &r.kernel_util_est),
        u16s("exact_util_avg", &r.exact_util_avg),
    ]);
    if let Some(x) = &r.extra {
        cols.extend([
            u("exact_load_avg", &x.exact_load_avg),
            u("exact_runnable_avg", &x.exact_runnable_avg),
            u("exact_util_est", &x.exact_util_est),
        ]);
    }
    cols.push(u16s("model_util_avg", &r.model_util_avg));
    if let Some(x) = &r.extra {
        cols.extend([
            u("model_load_avg", &x.model_load_avg),
            u("model_runnable_avg", &x.model_runnable_avg),
        ]);
    }
    cols.extend([
        u16s("model_util_est", &r.model_util_est),
        u16s("measured_util", &r.measured_util),
        labels("excluded", &r.excluded),
    ]);
    DataFrame::new_infer_height(cols)
}

enum SinkWriter {
    Csv(polars::io::csv::write::BatchedWriter<File>),
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
}

/// Streams replay rows into `OUT.csv` or `OUT.parquet`, a batch of rows at a
/// time (memory: one batch, whatever the trace's length).
pub struct ReplaySink {
    rows: ReplayRows,
    w: SinkWriter,
    batch: usize,
}

const SINK_BATCH: usize = 1 << 18;

impl ReplaySink {
    /// Creates `path`; its extension (`csv` or `parquet`) says the format.
    pub fn create(path: &Path) -> Result<Self, crate::Error> {
        Self::with_batch(path, SINK_BATCH)
    }

    /// [`ReplaySink::create`], writing every `batch` rows.
    pub fn with_batch(path: &Path, batch: usize) -> Result<Self, crate::Error> {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("parquet") => Format::Parquet,
            _ => {
                return Err(format!(
                    "{}: the output must end in .csv or .parquet",
                    path.display()
                )
                .into())
            }
        };
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let schema = replay_frame(&ReplayRows::full())?.schema().clone();
        let w = match format {
            // polars writes each batch with whole-buffer writes: no
            // BufWriter, whose flush on drop would hide a full disk.
            Format::Csv => SinkWriter::Csv(CsvWriter::new(f).batched(&schema)?),
            Format::Parquet => {
                SinkWriter::Parquet(Box::new(ParquetWriter::new(f).batched(&schema)?))
            }
        };
        Ok(ReplaySink {
            rows: ReplayRows::full(),
            w,
            batch: batch.max(1),
        })
    }

    pub fn push(&mut self, r: &schedrec_replay::task::Row) -> PolarsResult<()> {
        self.rows.push(r);
        if self.rows.len() >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> PolarsResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let df = replay_frame(&std::mem::replace(&mut self.rows, ReplayRows::full()))?;
        match &mut self.w {
            SinkWriter::Csv(w) => w.write_batch(&df),
            SinkWriter::Parquet(w) => w.write_batch(&df),
        }
    }

    /// Writes what is left and closes the file.
    pub fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        match &mut self.w {
            SinkWriter::Csv(w) => w.finish(),
            SinkWriter::Parquet(w) => w.finish().map(|_| ()),
        }
    }
}

/// Writes every table into `dir` as `<table>.<ext>`; returns the paths.
pub fn export(t: &Tables, dir: &Path, format: Format) -> PolarsResult<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| PolarsError::IO {
        error: std::sync::Arc::new(e),
        msg: None,
    })?;
    let mut out = Vec::new();
    for name in TABLES {
        let mut df = frame(t, name)?;
        let path = dir.join(format!("{name}.{}", format.ext()));
        write(&mut df, &path, format)?;
        out.push(path);
    }
    Ok(out)
}

/// Makes a string safe as a hive partition value (no `/`, `=`, spaces).
pub fn partition_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Appends the trace's tables to a hive-partitioned Parquet dataset:
/// `DIR/host=<host>/trace=<trace>/<table>.parquet`.
pub fn export_dataset(t: &Tables, root: &Path, host: &str, trace: &str) -> PolarsResult<PathBuf> {
    let dir = root
        .join(format!("host={}", partition_value(host)))
        .join(format!("trace={}", partition_value(trace)));
    export(t, &dir, Format::Parquet)?;
    Ok(dir)
}
