//! Timing: warm up, calibrate a batch to a minimum duration, repeat, take
//! the median. Medians (not means) because the machine is shared: one run
//! disturbed by a neighbour's build should not move the figure.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Timed runs; the figure is their median.
    pub runs: usize,
    /// Each run repeats the work until it lasts at least this long.
    pub min_run: Duration,
    /// Time one figure may take: a call so slow that `runs` of it would
    /// pass this gets fewer runs (at least one), so a slow engine makes the
    /// suite report slow figures instead of running for an hour.
    pub max_figure: Duration,
}

/// The median of `values` (the mean of the middle two for an even count);
/// 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0–100) by nearest rank; 0 for none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Median seconds per call of `f`: one warm-up call (which also sizes the
/// batch), then `timing.runs` batches of equal size, each lasting at least
/// `timing.min_run`. Within `timing.max_figure`: fewer runs of a slow call,
/// and a call slower than the whole budget is measured once (its warm-up).
pub fn seconds_per_call<R>(timing: Timing, mut f: impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    black_box(f());
    let once = start.elapsed().max(Duration::from_nanos(50));
    if once >= timing.max_figure {
        return once.as_secs_f64();
    }
    let batch = (timing.min_run.as_secs_f64() / once.as_secs_f64())
        .ceil()
        .clamp(1.0, 1e7) as usize;
    let affordable =
        (timing.max_figure.as_secs_f64() / (once.as_secs_f64() * batch as f64)).floor() as usize;
    let runs = timing.runs.max(1).min(affordable.max(1));
    let mut per_call = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(f());
        }
        per_call.push(start.elapsed().as_secs_f64() / batch as f64);
    }
    median(&per_call)
}

/// [`seconds_per_call`] for two things to be compared (native and module,
/// say): their timed runs alternate, A then B, so a neighbour's burst of
/// load falls on both and their ratio stays meaningful. Returns the median
/// seconds per call of each.
pub fn seconds_per_call_pair<A, B>(
    timing: Timing,
    mut a: impl FnMut() -> A,
    mut b: impl FnMut() -> B,
) -> (f64, f64) {
    let time_once = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().max(Duration::from_nanos(50)).as_secs_f64()
    };
    let once_a = time_once(&mut || {
        black_box(a());
    });
    let once_b = time_once(&mut || {
        black_box(b());
    });
    let budget = timing.max_figure.as_secs_f64();
    if once_a + once_b >= budget {
        return (once_a, once_b);
    }
    let min_run = timing.min_run.as_secs_f64();
    let batch_a = (min_run / once_a).ceil().clamp(1.0, 1e7) as usize;
    let batch_b = (min_run / once_b).ceil().clamp(1.0, 1e7) as usize;
    let per_run = once_a * batch_a as f64 + once_b * batch_b as f64;
    let runs = timing
        .runs
        .max(1)
        .min(((budget / per_run).floor() as usize).max(1));
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..batch_a {
            black_box(a());
        }
        ta.push(start.elapsed().as_secs_f64() / batch_a as f64);
        let start = Instant::now();
        for _ in 0..batch_b {
            black_box(b());
        }
        tb.push(start.elapsed().as_secs_f64() / batch_b as f64);
    }
    (median(&ta), median(&tb))
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    bytes as f64 / seconds / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_follow_their_definitions() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
