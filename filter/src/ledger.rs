//! Counters in fixed time windows, shared by every worker through a
//! compare-and-swap store (proxy-wasm shared data in Envoy, a Durable Object
//! at the edge, a `HashMap` in native tests).
//!
//! Shared data in ABI 0.2.1 has no delete, so keys must not grow with time:
//! each counter owns [`SLOTS`] keys and window `w` lives in slot `w % SLOTS`.
//! The value records which window it counts, so a slot left over from an
//! older window reads as zero and is overwritten by the first increment of
//! the new one.
//!
//! ## Why a retry loop
//! Every worker is a separate VM on its own thread. A read-modify-write
//! without CAS loses updates under contention (off by up to the number of
//! workers). Each increment therefore reads the value and its cas, writes
//! with that cas, and retries on `CasMismatch`. A mismatch means another
//! worker's write succeeded, so the loop always makes global progress.
//!
//! ## The first write
//! Envoy ignores the cas when a key does not exist yet, so two workers that
//! both see "not found" could both create it and one increment would be
//! lost. [`WindowCounter::ensure`] creates every slot at configuration time,
//! which Envoy runs before workers take traffic.

use std::fmt;

/// How many window slots each counter keeps. Two would suffice for "this and
/// the previous window"; four leaves room for trend checks over three.
pub const SLOTS: u64 = 4;

/// Upper bound on CAS retries for one update. Each retry means another
/// worker made progress, so this is only reached with a broken store.
pub const MAX_CAS_RETRIES: usize = 10_000;

/// A key/value store with Envoy's shared-data CAS rules.
pub trait SharedStore {
    /// The value and its cas, or `None` when the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if the stored cas still equals `cas` (`None`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// Why a shared write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Someone else wrote since we read: read again and retry.
    CasMismatch,
    /// The host refused the write (or retries ran out).
    Failed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CasMismatch => write!(f, "shared data changed concurrently"),
            StoreError::Failed => write!(f, "shared data write failed"),
        }
    }
}

/// Applies `update` to the value at `key` atomically (CAS retry loop).
/// `update` receives the current bytes (`None` when absent) and returns the
/// new bytes, or `None` to leave the value unchanged. Returns the bytes written
/// (or the unchanged current bytes).
pub fn update_shared(
    store: &dyn SharedStore,
    key: &str,
    mut update: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    for _ in 0..MAX_CAS_RETRIES {
        let current = store.get(key);
        let next = update(current.as_ref().map(|(v, _)| v.as_slice()));
        let Some(next) = next else {
            return Ok(current.map(|(v, _)| v));
        };
        // Envoy treats cas 0 as "unconditional"; an absent key has no cas.
        let cas = current.as_ref().map(|(_, cas)| *cas);
        match store.set(key, &next, cas) {
            Ok(()) => return Ok(Some(next)),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Failed)
}

/// A counter of events per fixed window of `window_ms`.
#[derive(Debug, Clone)]
pub struct WindowCounter {
    prefix: String,
    window_ms: u64,
}

impl WindowCounter {
    /// `name` must be unique per counter and scope, e.g. `requests` or `findings/privacy/p1`.
    pub fn new(name: &str, window_ms: u64) -> Self {
        WindowCounter {
            prefix: format!("rheostat/w/{name}/"),
            window_ms: window_ms.max(1),
        }
    }

    /// The index of the window containing `now_ms`.
    pub fn window_of(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms
    }

    fn key(&self, window: u64) -> String {
        format!("{}{}", self.prefix, window % SLOTS)
    }

    /// Creates every slot so later increments always find a cas (see module docs).
    pub fn ensure(&self, store: &dyn SharedStore) {
        for slot in 0..SLOTS {
            let key = format!("{}{}", self.prefix, slot);
            if store.get(&key).is_none() {
                // An unconditional write of "window u64::MAX, count 0" reads as
                // zero for every real window.
                let _ = store.set(&key, &encode(u64::MAX, 0), None);
            }
        }
    }

    /// Adds `delta` to the window containing `now_ms`; returns the new count.
    pub fn add(&self, store: &dyn SharedStore, now_ms: u64, delta: u64) -> Result<u64, StoreError> {
        let window = self.window_of(now_ms);
        let written = update_shared(store, &self.key(window), |current| {
            let count = current
                .and_then(decode)
                .filter(|(w, _)| *w == window)
                .map_or(0, |(_, c)| c);
            Some(encode(window, count.saturating_add(delta)))
        })?;
        Ok(written.as_deref().and_then(decode).map_or(0, |(_, c)| c))
    }

    /// The count of window `window` (zero when its slot holds another window).
    pub fn read_window(&self, store: &dyn SharedStore, window: u64) -> u64 {
        store
            .get(&self.key(window))
            .and_then(|(v, _)| decode(&v))
            .filter(|(w, _)| *w == window)
            .map_or(0, |(_, c)| c)
    }

    /// The count of the window containing `now_ms`.
    pub fn read(&self, store: &dyn SharedStore, now_ms: u64) -> u64 {
        self.read_window(store, self.window_of(now_ms))
    }
}

fn encode(window: u64, count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&window.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    let window = u64::from_le_bytes(bytes.get(0..8)?.try_into().ok()?);
    let count = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((window, count))
}

/// The last cas handed out, and every key's value and cas.
type Entries = (u32, std::collections::HashMap<String, (Vec<u8>, u32)>);

/// An in-memory [`SharedStore`] with Envoy's CAS rules, for native tests and tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: std::sync::Mutex<Entries>,
}

impl MemoryStore {
    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (next_cas, map) = &mut *guard;
        if let (Some(expected), Some((_, stored))) = (cas.filter(|c| *c != 0), map.get(key)) {
            if expected != *stored {
                return Err(StoreError::CasMismatch);
            }
        }
        *next_cas = next_cas.wrapping_add(1).max(1);
        map.insert(key.to_string(), (value.to_vec(), *next_cas));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_a_window_and_restarts_in_the_next() {
        let store = MemoryStore::default();
        let c = WindowCounter::new("requests", 60_000);
        c.ensure(&store);
        assert_eq!(c.add(&store, 1_000, 1).unwrap(), 1);
        assert_eq!(c.add(&store, 59_999, 2).unwrap(), 3);
        assert_eq!(c.add(&store, 60_000, 1).unwrap(), 1);
        assert_eq!(c.read_window(&store, 0), 3);
        assert_eq!(c.read(&store, 60_500), 1);
    }

    #[test]
    fn a_slot_reused_after_slots_windows_reads_zero_for_the_new_window() {
        let store = MemoryStore::default();
        let c = WindowCounter::new("requests", 1_000);
        c.ensure(&store);
        c.add(&store, 500, 7).unwrap();
        assert_eq!(c.read(&store, SLOTS * 1_000 + 10), 0);
        assert_eq!(c.add(&store, SLOTS * 1_000 + 10, 1).unwrap(), 1);
        assert_eq!(c.read_window(&store, 0), 0, "window 0 was overwritten");
    }

    #[test]
    fn keys_are_bounded_whatever_the_time() {
        let store = MemoryStore::default();
        let c = WindowCounter::new("requests", 10);
        c.ensure(&store);
        for t in (0..100_000).step_by(7) {
            c.add(&store, t, 1).unwrap();
        }
        assert_eq!(store.inner.lock().unwrap().1.len() as u64, SLOTS);
    }

    #[test]
    fn concurrent_increments_from_threads_are_exact() {
        let store = MemoryStore::default();
        let c = WindowCounter::new("requests", 60_000);
        c.ensure(&store);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        c.add(&store, 5, 1).unwrap();
                    }
                });
            }
        });
        assert_eq!(c.read(&store, 5), 8_000);
    }

    #[test]
    fn stale_cas_is_rejected_and_zero_cas_always_writes() {
        let store = MemoryStore::default();
        store.set("k", b"a", None).unwrap();
        let (_, cas) = store.get("k").unwrap();
        store.set("k", b"b", Some(cas)).unwrap();
        assert_eq!(
            store.set("k", b"c", Some(cas)),
            Err(StoreError::CasMismatch)
        );
        store.set("k", b"d", Some(0)).unwrap();
        assert_eq!(store.get("k").unwrap().0, b"d");
    }
}
