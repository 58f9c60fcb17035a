//! How closely a model reproduced the kernel: per metric, the distribution
//! of |model − kernel| over the counted samples.

use serde::Serialize;

/// The four signals the kernel exposes per task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Util = 0,
    Load = 1,
    Runnable = 2,
    UtilEst = 3,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Util => "util_avg",
            Metric::Load => "load_avg",
            Metric::Runnable => "runnable_avg",
            Metric::UtilEst => "util_est",
        }
    }
}

/// Errors from this size up are counted together (their exact size still
/// feeds the mean and the maximum; a quantile that falls among them is
/// reported as the maximum). Every task keeps four of these.
const BINS: usize = 64;

/// Histogram of absolute errors of one metric. Bins grow with the largest
/// error seen (every task has four of these: most never leave 0..2).
#[derive(Clone, Debug, Default)]
pub struct ErrHist {
    bins: Vec<u64>,
    pub n: u64,
    pub sum: u64,
    pub max: u64,
}

impl ErrHist {
    fn bin(&self, e: usize) -> u64 {
        self.bins.get(e).copied().unwrap_or(0)
    }
    pub fn add(&mut self, err: u64) {
        let b = (err as usize).min(BINS);
        if self.bins.len() <= b {
            self.bins.resize(b + 1, 0);
        }
        self.bins[b] += 1;
        self.n += 1;
        self.sum += err;
        self.max = self.max.max(err);
    }
    pub fn merge(&mut self, o: &ErrHist) {
        if self.bins.len() < o.bins.len() {
            self.bins.resize(o.bins.len(), 0);
        }
        for (a, b) in self.bins.iter_mut().zip(&o.bins) {
            *a += b;
        }
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }
    /// Smallest error e with at least q of the samples ≤ e.
    pub fn quantile(&self, q: f64) -> u64 {
        let want = (q * self.n as f64).ceil() as u64;
        let mut acc = 0;
        for (e, c) in self.bins.iter().enumerate() {
            acc += c;
            if acc >= want.max(1) {
                return if e == BINS { self.max } else { e as u64 };
            }
        }
        self.max
    }
    pub fn summary(&self) -> Option<MetricSummary> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        Some(MetricSummary {
            samples: self.n,
            exact_fraction: self.bin(0) as f64 / n,
            within1_fraction: (self.bin(0) + self.bin(1)) as f64 / n,
            within2_fraction: (self.bin(0) + self.bin(1) + self.bin(2)) as f64 / n,
            mean_abs_err: self.sum as f64 / n,
            p99_abs_err: self.quantile(0.99),
            max_abs_err: self.max,
        })
    }
}

/// The summary `schedrec replay --json` prints per metric.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MetricSummary {
    pub samples: u64,
    pub exact_fraction: f64,
    pub within1_fraction: f64,
    pub within2_fraction: f64,
    pub mean_abs_err: f64,
    pub p99_abs_err: u64,
    pub max_abs_err: u64,
}

/// Error histograms of the four metrics.
#[derive(Clone, Debug, Default)]
pub struct Fidelity {
    pub hist: [ErrHist; 4],
}

impl Fidelity {
    /// Counts one comparison; nothing when the model has no value.
    pub fn add(&mut self, m: Metric, model: Option<u64>, kernel: u64) {
        if let Some(v) = model {
            self.hist[m as usize].add(v.abs_diff(kernel));
        }
    }
    pub fn merge(&mut self, o: &Fidelity) {
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            a.merge(b);
        }
    }
    pub fn get(&self, m: Metric) -> &ErrHist {
        &self.hist[m as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_errors() {
        let mut h = ErrHist::default();
        for e in [0u64, 0, 0, 0, 0, 0, 0, 1, 1, 5000] {
            // 5000 lands in the overflow bin.
            h.add(e);
        }
        let s = h.summary().unwrap();
        assert_eq!(s.samples, 10);
        assert_eq!(s.exact_fraction, 0.7);
        assert_eq!(s.within1_fraction, 0.9);
        assert_eq!(s.within2_fraction, 0.9);
        assert_eq!(s.mean_abs_err, 500.2);
        assert_eq!(s.p99_abs_err, 5000);
        assert_eq!(s.max_abs_err, 5000);
        assert_eq!(h.quantile(0.9), 1);
        assert_eq!(h.quantile(0.5), 0);
        assert!(ErrHist::default().summary().is_none());
    }
}
