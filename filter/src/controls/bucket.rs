//! A token bucket in shared data: the `shed` level's rate limit, exact
//! across workers because every take is one compare-and-swap of
//! `(tokens, last refill time)`.
//!
//! Tokens are kept in thousandths so fractional refills are not lost
//! between takes that arrive a few milliseconds apart.

use crate::ledger::{update_shared, SharedStore, StoreError};

const MILLI: u64 = 1000;

pub fn key(label: &str) -> String {
    format!("rheostat/tb/{label}")
}

/// Creates a full bucket so the first take finds a cas.
pub fn ensure(store: &dyn SharedStore, label: &str, burst: f64, now_ms: u64) {
    let key = key(label);
    if store.get(&key).is_none() {
        let _ = store.set(&key, &encode((burst * MILLI as f64) as u64, now_ms), None);
    }
}

/// Takes one token. `Ok(None)` when taken; `Ok(Some(ms))` when empty, with
/// the wait until the next token.
pub fn take(
    store: &dyn SharedStore,
    label: &str,
    rate_per_sec: f64,
    burst: f64,
    now_ms: u64,
) -> Result<Option<u64>, StoreError> {
    let capacity = (burst * MILLI as f64) as u64;
    // Thousandths of a token per millisecond = tokens per second.
    let per_ms = rate_per_sec;
    let mut wait = None;
    update_shared(store, &key(label), |current| {
        let (tokens, last) = current.and_then(decode).unwrap_or((capacity, now_ms));
        let elapsed = now_ms.saturating_sub(last);
        let refilled = (tokens as f64 + elapsed as f64 * per_ms).min(capacity as f64) as u64;
        // Time only moves forward in the record, so a worker with a
        // slightly older clock cannot refill twice.
        let stamp = last.max(now_ms);
        if refilled >= MILLI {
            wait = None;
            Some(encode(refilled - MILLI, stamp))
        } else {
            wait = Some(((MILLI - refilled) as f64 / per_ms).ceil().max(1.0) as u64);
            Some(encode(refilled, stamp))
        }
    })?;
    Ok(wait)
}

fn encode(tokens: u64, last_ms: u64) -> Vec<u8> {
    let mut out = tokens.to_le_bytes().to_vec();
    out.extend_from_slice(&last_ms.to_le_bytes());
    out
}

fn decode(b: &[u8]) -> Option<(u64, u64)> {
    Some((
        u64::from_le_bytes(b.get(0..8)?.try_into().ok()?),
        u64::from_le_bytes(b.get(8..16)?.try_into().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    #[test]
    fn a_burst_then_the_rate() {
        let store = MemoryStore::default();
        ensure(&store, "global", 3.0, 0);
        for _ in 0..3 {
            assert_eq!(take(&store, "global", 2.0, 3.0, 0).unwrap(), None);
        }
        assert_eq!(take(&store, "global", 2.0, 3.0, 0).unwrap(), Some(500));
        assert_eq!(take(&store, "global", 2.0, 3.0, 499).unwrap(), Some(1));
        assert_eq!(take(&store, "global", 2.0, 3.0, 500).unwrap(), None);
    }

    #[test]
    fn workers_on_threads_share_one_rate() {
        let store = MemoryStore::default();
        ensure(&store, "t", 10.0, 0);
        let taken = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    // 10 s of virtual time at 5/s, every worker asking every 10 ms.
                    for t in (0..10_000).step_by(10) {
                        if take(&store, "t", 5.0, 10.0, t).unwrap().is_none() {
                            taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // Burst 10 + 5/s over 9.99 s: 59 or 60 whatever the interleaving.
        let n = taken.into_inner();
        assert!((59..=60).contains(&n), "{n}");
    }
}
