//! Electing one worker per period for work that must happen once, not once
//! per worker: Envoy gives every worker VM its own timer, so with N workers
//! there are N ticks per period.
//!
//! A period is claimed by advancing the stored period number with CAS: the
//! first worker whose tick falls in period `p` moves the record from an
//! older period to `p` and does the work; every other worker then sees `p`
//! and stands aside. This gives exactly one holder per period without any
//! clock agreement beyond the shared virtual or real time.

use crate::ledger::{update_shared, SharedStore, StoreError};

/// The shared key of the tick lease.
pub const TICK_LEASE_KEY: &str = "rheostat/lease/tick";

/// Who holds which period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRecord {
    pub period: u64,
    pub holder: u32,
}

impl LeaseRecord {
    fn encode(self) -> Vec<u8> {
        let mut out = self.period.to_le_bytes().to_vec();
        out.extend_from_slice(&self.holder.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<LeaseRecord> {
        Some(LeaseRecord {
            period: u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?),
            holder: u32::from_le_bytes(bytes.get(8..12)?.try_into().ok()?),
        })
    }
}

/// Creates the lease key before workers race for it. Envoy ignores the cas
/// of a key that does not exist yet, so two workers that both found it
/// missing would both "win", and the later write could even move the record
/// back to an older period, handing out every period since a second time.
/// An empty value reads as "nothing claimed yet".
pub fn ensure(store: &dyn SharedStore, key: &str) {
    if store.get(key).is_none() {
        let _ = store.set(key, b"", None);
    }
}

/// Tries to claim `period` for `worker`. True when this worker must do the
/// period's work; false when another worker already holds the period.
pub fn claim_period(
    store: &dyn SharedStore,
    key: &str,
    period: u64,
    worker: u32,
) -> Result<bool, StoreError> {
    let mut won = false;
    update_shared(store, key, |current| {
        won = false;
        match current.and_then(LeaseRecord::decode) {
            Some(record) if record.period >= period => None,
            _ => {
                won = true;
                Some(
                    LeaseRecord {
                        period,
                        holder: worker,
                    }
                    .encode(),
                )
            }
        }
    })?;
    Ok(won)
}

/// The current lease record, if any worker ever claimed a period.
pub fn current(store: &dyn SharedStore, key: &str) -> Option<LeaseRecord> {
    store.get(key).and_then(|(v, _)| LeaseRecord::decode(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    #[test]
    fn first_claim_of_a_period_wins_and_later_ones_stand_aside() {
        let store = MemoryStore::default();
        assert!(claim_period(&store, TICK_LEASE_KEY, 5, 1).unwrap());
        assert!(!claim_period(&store, TICK_LEASE_KEY, 5, 2).unwrap());
        assert!(
            !claim_period(&store, TICK_LEASE_KEY, 4, 2).unwrap(),
            "a late tick for an old period"
        );
        assert!(claim_period(&store, TICK_LEASE_KEY, 6, 2).unwrap());
        assert_eq!(
            current(&store, TICK_LEASE_KEY),
            Some(LeaseRecord {
                period: 6,
                holder: 2
            })
        );
    }

    #[test]
    fn racing_workers_get_exactly_one_winner_per_period() {
        let store = MemoryStore::default();
        ensure(&store, TICK_LEASE_KEY);
        let wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for worker in 0..8 {
                let (store, wins) = (&store, &wins);
                s.spawn(move || {
                    for period in 0..500 {
                        if claim_period(store, TICK_LEASE_KEY, period, worker).unwrap() {
                            wins.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 500);
    }
}
