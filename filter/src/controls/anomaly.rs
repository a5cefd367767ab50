//! Behavioural anomalies: an EWMA baseline per scope and signal, updated
//! once per completed window by the worker holding the tick lease.
//!
//! A window is anomalous in a signal when it counted at least
//! `min_requests` exchanges, the baseline has seen `warmup_windows`
//! windows, and the value exceeds `factor × max(baseline, floor)`. The
//! floor keeps a near-zero baseline from turning one refusal into an
//! incident. Anomalous windows do not feed the baseline, so a sustained
//! incident keeps being reported instead of becoming the new normal.

use super::counts::ScopeCounts;
use super::scope::Scope;
use crate::ledger::{update_shared, SharedStore, StoreError};
use crate::policy::{AnomalyPolicy, Signal};

const SIGNALS: usize = Signal::ALL.len();

/// The stored baseline of one scope.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Baseline {
    pub windows: u32,
    /// The last window folded in (so a window is never counted twice).
    pub last_window: u64,
    pub values: [f64; SIGNALS],
}

/// One anomalous signal in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub scope: Scope,
    pub signal: Signal,
    pub window: u64,
    pub value: f64,
    pub baseline: f64,
    pub requests: u64,
}

pub fn key(scope: &Scope) -> String {
    format!("rheostat/ewma/{}", scope.key())
}

pub fn read(store: &dyn SharedStore, scope: &Scope) -> Baseline {
    store
        .get(&key(scope))
        .and_then(|(v, _)| decode(&v))
        .unwrap_or_default()
}

/// Floors for signals measured in their own units rather than as shares.
fn floor(policy: &AnomalyPolicy, signal: Signal) -> f64 {
    match signal {
        // A mean latency or token count is compared without a share floor.
        Signal::Latency | Signal::Tokens => 1.0,
        _ => policy.floor_rate,
    }
}

/// Judges `window`'s counts against the scope's baseline and folds the
/// window in. Returns the anomalous signals (empty during warm-up).
pub fn evaluate(
    store: &dyn SharedStore,
    scope: &Scope,
    policy: &AnomalyPolicy,
    window: u64,
    counts: &ScopeCounts,
) -> Result<Vec<Anomaly>, StoreError> {
    let mut found = Vec::new();
    update_shared(store, &key(scope), |current| {
        found.clear();
        let mut b = current.and_then(decode).unwrap_or_default();
        if b.windows > 0 && b.last_window >= window {
            return None;
        }
        let judged = b.windows >= policy.warmup_windows && counts.requests >= policy.min_requests;
        for (i, signal) in Signal::ALL.into_iter().enumerate() {
            let value = counts.signal(signal);
            let base = b.values[i];
            if judged && value > policy.factor * base.max(floor(policy, signal)) {
                found.push(Anomaly {
                    scope: scope.clone(),
                    signal,
                    window,
                    value,
                    baseline: base,
                    requests: counts.requests,
                });
            } else if counts.requests > 0 {
                b.values[i] = if b.windows == 0 {
                    value
                } else {
                    policy.alpha * value + (1.0 - policy.alpha) * base
                };
            }
        }
        if counts.requests > 0 {
            b.windows += 1;
        }
        b.last_window = window;
        Some(encode(&b))
    })?;
    Ok(found)
}

fn encode(b: &Baseline) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + 8 * SIGNALS);
    out.extend_from_slice(&b.windows.to_le_bytes());
    out.extend_from_slice(&b.last_window.to_le_bytes());
    for v in b.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Baseline> {
    let mut b = Baseline {
        windows: u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?),
        last_window: u64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?),
        values: [0.0; SIGNALS],
    };
    for (i, v) in b.values.iter_mut().enumerate() {
        let at = 12 + i * 8;
        *v = f64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    fn window(requests: u64, refusals: u64) -> ScopeCounts {
        ScopeCounts {
            requests,
            refusals,
            latency_ms: requests * 100,
            ..Default::default()
        }
    }

    #[test]
    fn a_refusal_storm_after_warm_up_is_an_anomaly_and_does_not_become_the_baseline() {
        let store = MemoryStore::default();
        let p = AnomalyPolicy {
            warmup_windows: 3,
            min_requests: 20,
            ..AnomalyPolicy::default()
        };
        let s = Scope::global();
        for w in 0..3 {
            assert!(
                evaluate(&store, &s, &p, w, &window(100, 5))
                    .unwrap()
                    .is_empty(),
                "warm-up"
            );
        }
        let storm = evaluate(&store, &s, &p, 3, &window(100, 60)).unwrap();
        assert_eq!(storm.len(), 1);
        assert_eq!(storm[0].signal, Signal::Refusal);
        assert!((storm[0].baseline - 0.05).abs() < 1e-9);
        assert_eq!(
            evaluate(&store, &s, &p, 4, &window(100, 60)).unwrap().len(),
            1,
            "still anomalous"
        );
        assert!(
            evaluate(&store, &s, &p, 4, &window(100, 60))
                .unwrap()
                .is_empty(),
            "window judged once"
        );
    }

    #[test]
    fn low_volume_and_small_rates_are_not_anomalies() {
        let store = MemoryStore::default();
        let p = AnomalyPolicy {
            warmup_windows: 1,
            min_requests: 20,
            ..AnomalyPolicy::default()
        };
        let s = Scope::global();
        evaluate(&store, &s, &p, 0, &window(100, 0)).unwrap();
        assert!(
            evaluate(&store, &s, &p, 1, &window(10, 10))
                .unwrap()
                .is_empty(),
            "volume"
        );
        assert!(
            evaluate(&store, &s, &p, 2, &window(100, 5))
                .unwrap()
                .is_empty(),
            "under 3 × floor"
        );
    }
}
