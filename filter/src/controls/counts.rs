//! Per-scope counters for one window, stored as one shared record so an
//! exchange updates all of its numbers with a single compare-and-swap.
//! Slots are reused by window index like [`crate::ledger::WindowCounter`].

use super::scope::Scope;
use crate::ledger::{update_shared, SharedStore, StoreError, SLOTS};
use crate::policy::{ErrorKind, Signal};

/// What the ledger knows about a scope in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeCounts {
    /// Exchanges that reached the upstream and finished.
    pub requests: u64,
    pub upstream_5xx: u64,
    pub upstream_timeouts: u64,
    pub blocked: u64,
    pub format_failures: u64,
    pub negative_feedback: u64,
    pub refusals: u64,
    /// Exchanges with at least one finding of each category
    /// (security, safety, reliability, privacy).
    pub with_findings: [u64; 4],
    pub latency_ms: u64,
    pub output_tokens: u64,
    /// Answered locally by the ladder (fallback, 429, maintenance).
    pub contained: u64,
}

const FIELDS: usize = 15;

impl ScopeCounts {
    fn to_array(self) -> [u64; FIELDS] {
        let f = self.with_findings;
        [
            self.requests,
            self.upstream_5xx,
            self.upstream_timeouts,
            self.blocked,
            self.format_failures,
            self.negative_feedback,
            self.refusals,
            f[0],
            f[1],
            f[2],
            f[3],
            self.latency_ms,
            self.output_tokens,
            self.contained,
            0,
        ]
    }

    fn from_array(a: [u64; FIELDS]) -> ScopeCounts {
        ScopeCounts {
            requests: a[0],
            upstream_5xx: a[1],
            upstream_timeouts: a[2],
            blocked: a[3],
            format_failures: a[4],
            negative_feedback: a[5],
            refusals: a[6],
            with_findings: [a[7], a[8], a[9], a[10]],
            latency_ms: a[11],
            output_tokens: a[12],
            contained: a[13],
        }
    }

    pub fn plus(self, other: ScopeCounts) -> ScopeCounts {
        let (a, b) = (self.to_array(), other.to_array());
        ScopeCounts::from_array(std::array::from_fn(|i| a[i].saturating_add(b[i])))
    }

    pub fn minus(self, other: ScopeCounts) -> ScopeCounts {
        let (a, b) = (self.to_array(), other.to_array());
        ScopeCounts::from_array(std::array::from_fn(|i| a[i].saturating_sub(b[i])))
    }

    /// Errors of the kinds the breaker counts.
    pub fn errors(&self, kinds: &[ErrorKind]) -> u64 {
        kinds
            .iter()
            .map(|k| match k {
                ErrorKind::Upstream5xx => self.upstream_5xx,
                ErrorKind::UpstreamTimeout => self.upstream_timeouts,
                ErrorKind::Blocked => self.blocked,
                ErrorKind::Format => self.format_failures,
                ErrorKind::NegativeFeedback => self.negative_feedback,
            })
            .sum()
    }

    /// A signal's value for the window: a share of exchanges, or a mean.
    pub fn signal(&self, signal: Signal) -> f64 {
        let per = |n: u64| {
            if self.requests == 0 {
                0.0
            } else {
                n as f64 / self.requests as f64
            }
        };
        match signal {
            Signal::Refusal => per(self.refusals),
            Signal::UpstreamError => per(self.upstream_5xx + self.upstream_timeouts),
            Signal::Security => per(self.with_findings[0]),
            Signal::Safety => per(self.with_findings[1]),
            Signal::Reliability => per(self.with_findings[2]),
            Signal::Privacy => per(self.with_findings[3]),
            Signal::NegativeFeedback => per(self.negative_feedback),
            Signal::Latency => per(self.latency_ms),
            Signal::Tokens => per(self.output_tokens),
        }
    }
}

/// The window counters of every scope.
#[derive(Debug, Clone)]
pub struct ScopeLedger {
    window_ms: u64,
}

impl ScopeLedger {
    pub fn new(window_ms: u64) -> ScopeLedger {
        ScopeLedger {
            window_ms: window_ms.max(1),
        }
    }

    pub fn window_of(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    fn key(scope_key: &str, window: u64) -> String {
        format!("rheostat/c/{scope_key}/{}", window % SLOTS)
    }

    /// Creates the slots of a scope so the first increment finds a cas
    /// (Envoy ignores the cas of a new key; see the ledger module).
    pub fn ensure(&self, store: &dyn SharedStore, scope_key: &str) {
        for slot in 0..SLOTS {
            let key = Self::key(scope_key, slot);
            if store.get(&key).is_none() {
                let _ = store.set(&key, &encode(u64::MAX, ScopeCounts::default()), None);
            }
        }
    }

    /// Adds `delta` to the scope's current window; returns the window's counts after.
    pub fn add(
        &self,
        store: &dyn SharedStore,
        scope: &Scope,
        now_ms: u64,
        delta: ScopeCounts,
    ) -> Result<ScopeCounts, StoreError> {
        let window = self.window_of(now_ms);
        let written = update_shared(store, &Self::key(&scope.key(), window), |current| {
            let counts = current
                .and_then(decode)
                .filter(|(w, _)| *w == window)
                .map_or_else(ScopeCounts::default, |(_, c)| c);
            Some(encode(window, counts.plus(delta)))
        })?;
        Ok(written
            .as_deref()
            .and_then(decode)
            .map_or_else(ScopeCounts::default, |(_, c)| c))
    }

    /// The counts of `window` (zeros when the slot holds another window).
    pub fn read(&self, store: &dyn SharedStore, scope: &Scope, window: u64) -> ScopeCounts {
        store
            .get(&Self::key(&scope.key(), window))
            .and_then(|(v, _)| decode(&v))
            .filter(|(w, _)| *w == window)
            .map_or_else(ScopeCounts::default, |(_, c)| c)
    }
}

fn encode(window: u64, counts: ScopeCounts) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * (FIELDS + 1));
    out.extend_from_slice(&window.to_le_bytes());
    for v in counts.to_array() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<(u64, ScopeCounts)> {
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let window = word(0)?;
    let mut a = [0u64; FIELDS];
    for (i, v) in a.iter_mut().enumerate() {
        *v = word(i + 1)?;
    }
    Some((window, ScopeCounts::from_array(a)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    #[test]
    fn one_record_counts_every_field_and_restarts_per_window() {
        let store = MemoryStore::default();
        let ledger = ScopeLedger::new(1_000);
        let scope = Scope::global();
        ledger.ensure(&store, &scope.key());
        let one = ScopeCounts {
            requests: 1,
            upstream_5xx: 1,
            latency_ms: 40,
            ..Default::default()
        };
        ledger.add(&store, &scope, 10, one).unwrap();
        let after = ledger.add(&store, &scope, 20, one).unwrap();
        assert_eq!(
            (after.requests, after.upstream_5xx, after.latency_ms),
            (2, 2, 80)
        );
        assert_eq!(after.signal(Signal::Latency), 40.0);
        assert_eq!(
            after.errors(&[ErrorKind::Upstream5xx, ErrorKind::Blocked]),
            2
        );
        assert_eq!(ledger.read(&store, &scope, 1).requests, 0);
        assert_eq!(ledger.add(&store, &scope, 1_500, one).unwrap().requests, 1);
    }

    #[test]
    fn concurrent_updates_from_threads_are_exact() {
        let store = MemoryStore::default();
        let ledger = ScopeLedger::new(60_000);
        let scope = Scope::global();
        ledger.ensure(&store, &scope.key());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1_000 {
                        let d = ScopeCounts {
                            requests: 1,
                            refusals: 1,
                            ..Default::default()
                        };
                        ledger.add(&store, &scope, 5, d).unwrap();
                    }
                });
            }
        });
        let c = ledger.read(&store, &scope, 0);
        assert_eq!((c.requests, c.refusals), (4_000, 4_000));
    }
}
