//! The circuit breaker of one scope, as a shared record moved by CAS.
//!
//! closed --(error rate over threshold, enough volume)--> open
//! open --(cool-down elapsed, first request claims a probe)--> half-open
//! half-open --(close_after good probes)--> closed
//! half-open --(a bad probe)--> open
//!
//! Every transition is one successful CAS, so exactly one worker sees (and
//! reports) it however many race. On closing, the window's counts so far are
//! remembered as a base and subtracted from later rate checks in the same
//! window, or the errors that opened the breaker would open it again at once.

use super::counts::ScopeCounts;
use super::scope::Scope;
use crate::ledger::{update_shared, SharedStore, StoreError};
use crate::policy::BreakerPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// The stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BreakerRecord {
    pub state: BreakerState,
    /// When the current state began.
    pub since_ms: u64,
    pub probes_started: u32,
    pub probes_ok: u32,
    /// Counts of `base_window` at the last close.
    pub base_window: u64,
    pub base_requests: u64,
    pub base_errors: u64,
    /// How many times this breaker opened.
    pub trips: u32,
}

/// A state change, reported by the worker whose CAS made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub scope: Scope,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// Whether a request may reach the upstream while this breaker is involved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Pass,
    /// Through, as one of the half-open probes: report its outcome.
    Probe,
    /// Serve the fallback.
    Fallback,
}

pub fn key(scope: &Scope) -> String {
    format!("rheostat/b/{}", scope.key())
}

pub fn ensure(store: &dyn SharedStore, scope: &Scope) {
    let key = key(scope);
    if store.get(&key).is_none() {
        let _ = store.set(&key, &encode(BreakerRecord::default()), None);
    }
}

pub fn read(store: &dyn SharedStore, scope: &Scope) -> BreakerRecord {
    store
        .get(&key(scope))
        .and_then(|(v, _)| decode(&v))
        .unwrap_or_default()
}

/// After an exchange was counted: opens the breaker when the window's
/// error rate (since the last close) crosses the threshold.
pub fn observe(
    store: &dyn SharedStore,
    scope: &Scope,
    policy: &BreakerPolicy,
    window: u64,
    counts: &ScopeCounts,
    now_ms: u64,
) -> Result<Option<Transition>, StoreError> {
    let mut transition = None;
    update_shared(store, &key(scope), |current| {
        transition = None;
        let mut r = current.and_then(decode).unwrap_or_default();
        if r.state != BreakerState::Closed {
            return None;
        }
        let (mut requests, mut errors) = (counts.requests, counts.errors(&policy.errors));
        if r.base_window == window {
            requests = requests.saturating_sub(r.base_requests);
            errors = errors.saturating_sub(r.base_errors);
        }
        if requests < policy.min_requests || (errors as f64) <= policy.error_rate * requests as f64
        {
            return None;
        }
        r.state = BreakerState::Open;
        r.since_ms = now_ms;
        r.probes_started = 0;
        r.probes_ok = 0;
        r.trips += 1;
        transition = Some(Transition {
            scope: scope.clone(),
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: format!(
                "{errors} errors in {requests} exchanges this window ({:.1}% > {:.1}%)",
                100.0 * errors as f64 / requests as f64,
                100.0 * policy.error_rate
            ),
        });
        Some(encode(r))
    })?;
    Ok(transition)
}

/// Decides whether a request passes an open or half-open breaker.
pub fn admit(
    store: &dyn SharedStore,
    scope: &Scope,
    policy: &BreakerPolicy,
    now_ms: u64,
) -> Result<(Admission, Option<Transition>), StoreError> {
    let cooldown = policy.cooldown_secs * 1000;
    let mut outcome = (Admission::Pass, None);
    update_shared(store, &key(scope), |current| {
        let mut r = current.and_then(decode).unwrap_or_default();
        // A half-open breaker whose probes never finished re-arms after a
        // cool-down, so a lost probe cannot hold it half-open forever.
        let stale_half_open = r.state == BreakerState::HalfOpen
            && r.probes_started >= policy.probes
            && now_ms >= r.since_ms + cooldown;
        match r.state {
            BreakerState::Closed => {
                outcome = (Admission::Pass, None);
                None
            }
            BreakerState::Open if now_ms < r.since_ms + cooldown => {
                outcome = (Admission::Fallback, None);
                None
            }
            BreakerState::Open => {
                r.state = BreakerState::HalfOpen;
                r.since_ms = now_ms;
                r.probes_started = 1;
                r.probes_ok = 0;
                outcome = (
                    Admission::Probe,
                    Some(Transition {
                        scope: scope.clone(),
                        from: BreakerState::Open,
                        to: BreakerState::HalfOpen,
                        reason: format!("cool-down of {}s elapsed", policy.cooldown_secs),
                    }),
                );
                Some(encode(r))
            }
            BreakerState::HalfOpen if stale_half_open => {
                r.since_ms = now_ms;
                r.probes_started = 1;
                r.probes_ok = 0;
                outcome = (Admission::Probe, None);
                Some(encode(r))
            }
            BreakerState::HalfOpen if r.probes_started < policy.probes => {
                r.probes_started += 1;
                outcome = (Admission::Probe, None);
                Some(encode(r))
            }
            BreakerState::HalfOpen => {
                outcome = (Admission::Fallback, None);
                None
            }
        }
    })?;
    Ok(outcome)
}

/// Reports a finished probe. `counts` are the scope's counts in `window`
/// after the probe was counted, the base for rate checks after a close.
pub fn probe_result(
    store: &dyn SharedStore,
    scope: &Scope,
    policy: &BreakerPolicy,
    good: bool,
    window: u64,
    counts: &ScopeCounts,
    now_ms: u64,
) -> Result<Option<Transition>, StoreError> {
    let mut transition = None;
    update_shared(store, &key(scope), |current| {
        transition = None;
        let mut r = current.and_then(decode).unwrap_or_default();
        if r.state != BreakerState::HalfOpen {
            return None;
        }
        if !good {
            r.state = BreakerState::Open;
            r.since_ms = now_ms;
            r.trips += 1;
            transition = Some(Transition {
                scope: scope.clone(),
                from: BreakerState::HalfOpen,
                to: BreakerState::Open,
                reason: "a half-open probe failed".into(),
            });
            return Some(encode(r));
        }
        r.probes_ok += 1;
        if r.probes_ok >= policy.close_after {
            r.state = BreakerState::Closed;
            r.since_ms = now_ms;
            r.base_window = window;
            r.base_requests = counts.requests;
            r.base_errors = counts.errors(&policy.errors);
            transition = Some(Transition {
                scope: scope.clone(),
                from: BreakerState::HalfOpen,
                to: BreakerState::Closed,
                reason: format!("{} good probes", r.probes_ok),
            });
        }
        Some(encode(r))
    })?;
    Ok(transition)
}

fn encode(r: BreakerRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.push(r.state.gauge() as u8);
    out.extend_from_slice(&r.since_ms.to_le_bytes());
    out.extend_from_slice(&r.probes_started.to_le_bytes());
    out.extend_from_slice(&r.probes_ok.to_le_bytes());
    out.extend_from_slice(&r.base_window.to_le_bytes());
    out.extend_from_slice(&r.base_requests.to_le_bytes());
    out.extend_from_slice(&r.base_errors.to_le_bytes());
    out.extend_from_slice(&r.trips.to_le_bytes());
    out
}

fn decode(b: &[u8]) -> Option<BreakerRecord> {
    let u64_at = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
    Some(BreakerRecord {
        state: match b.first()? {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        },
        since_ms: u64_at(1)?,
        probes_started: u32_at(9)?,
        probes_ok: u32_at(13)?,
        base_window: u64_at(17)?,
        base_requests: u64_at(25)?,
        base_errors: u64_at(33)?,
        trips: u32_at(41)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;
    use crate::policy::ErrorKind;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            error_rate: 0.1,
            min_requests: 10,
            cooldown_secs: 5,
            probes: 2,
            close_after: 2,
            errors: vec![ErrorKind::Upstream5xx],
            ..BreakerPolicy::default()
        }
    }

    fn counts(requests: u64, errors: u64) -> ScopeCounts {
        ScopeCounts {
            requests,
            upstream_5xx: errors,
            ..Default::default()
        }
    }

    #[test]
    fn opens_only_above_the_rate_with_enough_volume() {
        let store = MemoryStore::default();
        let (s, p) = (Scope::global(), policy());
        ensure(&store, &s);
        assert!(
            observe(&store, &s, &p, 0, &counts(9, 9), 0)
                .unwrap()
                .is_none(),
            "volume"
        );
        assert!(
            observe(&store, &s, &p, 0, &counts(10, 1), 0)
                .unwrap()
                .is_none(),
            "10% is not over 10%"
        );
        let t = observe(&store, &s, &p, 0, &counts(10, 2), 7)
            .unwrap()
            .unwrap();
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert!(
            observe(&store, &s, &p, 0, &counts(11, 3), 8)
                .unwrap()
                .is_none(),
            "already open"
        );
        assert_eq!(read(&store, &s).trips, 1);
    }

    #[test]
    fn cools_down_then_lets_a_bounded_number_of_probes_through_and_closes() {
        let store = MemoryStore::default();
        let (s, p) = (Scope::global(), policy());
        ensure(&store, &s);
        observe(&store, &s, &p, 0, &counts(10, 5), 0).unwrap();
        assert_eq!(admit(&store, &s, &p, 4_999).unwrap().0, Admission::Fallback);
        let (a, t) = admit(&store, &s, &p, 5_000).unwrap();
        assert_eq!(a, Admission::Probe);
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        assert_eq!(admit(&store, &s, &p, 5_001).unwrap().0, Admission::Probe);
        assert_eq!(
            admit(&store, &s, &p, 5_002).unwrap().0,
            Admission::Fallback,
            "two probes only"
        );
        assert!(probe_result(&store, &s, &p, true, 1, &counts(12, 5), 5_100)
            .unwrap()
            .is_none());
        let closed = probe_result(&store, &s, &p, true, 1, &counts(13, 5), 5_200)
            .unwrap()
            .unwrap();
        assert_eq!(closed.to, BreakerState::Closed);
        // The window's old errors no longer count: 3 new exchanges, none failed.
        assert!(observe(&store, &s, &p, 1, &counts(23, 5), 5_300)
            .unwrap()
            .is_none());
        assert_eq!(admit(&store, &s, &p, 5_300).unwrap().0, Admission::Pass);
    }

    #[test]
    fn a_bad_probe_reopens() {
        let store = MemoryStore::default();
        let (s, p) = (Scope::global(), policy());
        ensure(&store, &s);
        observe(&store, &s, &p, 0, &counts(10, 5), 0).unwrap();
        admit(&store, &s, &p, 6_000).unwrap();
        let t = probe_result(&store, &s, &p, false, 1, &counts(1, 1), 6_100)
            .unwrap()
            .unwrap();
        assert_eq!((t.from, t.to), (BreakerState::HalfOpen, BreakerState::Open));
        assert_eq!(admit(&store, &s, &p, 6_200).unwrap().0, Admission::Fallback);
        assert_eq!(read(&store, &s).trips, 2);
    }

    #[test]
    fn racing_workers_report_exactly_one_opening() {
        let store = MemoryStore::default();
        let (s, p) = (Scope::global(), policy());
        ensure(&store, &s);
        let opened = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for i in 0..50 {
                        if observe(&store, &s, &p, 0, &counts(10 + i, 5 + i), 1)
                            .unwrap()
                            .is_some()
                        {
                            opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(opened.into_inner(), 1);
    }
}
