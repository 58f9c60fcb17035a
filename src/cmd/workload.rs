//! `schedrec workload`

use std::time::Duration;

use schedrec_recorder::workload::{run, Workload};

use crate::out::CliResult;

#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub kind: Kind,
    /// How long to run, in seconds.
    #[arg(long, global = true, default_value_t = 5.0)]
    pub duration: f64,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing (for scripts that only want the load).
    #[arg(short, long, global = true, conflicts_with = "json")]
    pub quiet: bool,
}

#[derive(clap::Subcommand, Clone, Debug)]
pub enum Kind {
    /// rt-app-like periodic task: `duty * period` of CPU every period, absolute deadlines.
    Periodic {
        #[arg(long, default_value_t = 16.0)]
        period_ms: f64,
        #[arg(long, default_value_t = 0.5)]
        duty: f64,
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// Always runnable.
    Hog {
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// Sleep `idle_ms`, then burn `burst_ms` of CPU, repeatedly.
    Burst {
        #[arg(long, default_value_t = 200.0)]
        idle_ms: f64,
        #[arg(long, default_value_t = 50.0)]
        burst_ms: f64,
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// Short compute, then a synchronous disk write (uninterruptible sleep).
    Io {
        #[arg(long, default_value_t = 200.0)]
        run_us: f64,
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// A periodic task whose duty cycle steps through a list.
    Step {
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.8,0.1")]
        duties: Vec<f64>,
        #[arg(long, default_value_t = 1000.0)]
        step_ms: f64,
        #[arg(long, default_value_t = 16.0)]
        period_ms: f64,
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// Two threads handing a token through pipes as fast as possible.
    Pingpong {
        #[arg(long)]
        cpu: Option<u32>,
    },
    /// periodic + hog + burst + io + pingpong at once.
    Mixed,
}

impl Kind {
    pub fn workload(&self) -> Result<Workload, String> {
        let duty_ok = |d: f64| (0.0..=1.0).contains(&d);
        Ok(match self.clone() {
            Kind::Periodic {
                period_ms,
                duty,
                cpu,
            } => {
                if period_ms <= 0.0 || !duty_ok(duty) {
                    return Err("periodic needs --period-ms > 0 and 0 <= --duty <= 1".into());
                }
                Workload::Periodic {
                    period_ms,
                    duty,
                    cpu,
                }
            }
            Kind::Hog { cpu } => Workload::Hog { cpu },
            Kind::Burst {
                idle_ms,
                burst_ms,
                cpu,
            } => Workload::Burst {
                idle_ms,
                burst_ms,
                cpu,
            },
            Kind::Io { run_us, cpu } => Workload::Io { run_us, cpu },
            Kind::Step {
                duties,
                step_ms,
                period_ms,
                cpu,
            } => {
                if duties.is_empty() || !duties.iter().all(|&d| duty_ok(d)) || step_ms <= 0.0 {
                    return Err("step needs --duties in [0, 1] and --step-ms > 0".into());
                }
                Workload::Step {
                    duties,
                    step_ms,
                    period_ms,
                    cpu,
                }
            }
            Kind::Pingpong { cpu } => Workload::Pingpong { cpu },
            Kind::Mixed => Workload::Mixed,
        })
    }
}

pub fn run_cmd(a: Args) -> CliResult {
    let w = a.kind.workload()?;
    if !(a.duration > 0.0 && a.duration.is_finite()) {
        return Err("--duration must be > 0".into());
    }
    let report = run(&w, Duration::from_secs_f64(a.duration));
    if a.quiet {
        return Ok(());
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} (pid {}): {:.2} s, {:.0} switches/s",
            report.workload,
            report.pid,
            report.seconds,
            report.switches_per_second()
        );
        for t in &report.threads {
            println!(
                "  {:<10} tid {:<7} duty {:.3}  iterations {:<9} switches {} voluntary + {} involuntary",
                t.name, t.tid, t.duty, t.iterations, t.voluntary_switches, t.involuntary_switches
            );
        }
    }
    Ok(())
}
