//! Levels set at run time, in shared data so every worker sees them at once:
//! operator overrides from the control endpoint, and levels tripped by
//! anomalies. Both survive configuration pushes (shared data outlives root
//! contexts); the effective level is the highest of these and the policy's.

use super::scope::Scope;
use crate::ledger::{update_shared, SharedStore, StoreError};
use crate::policy::{Level, ScopeMatch};
use serde::{Deserialize, Serialize};

pub const OVERRIDES_KEY: &str = "rheostat/overrides";

/// At most this many overrides are kept (a value must stay small: every
/// request reads it).
pub const MAX_OVERRIDES: usize = 64;

/// A level an operator set through `POST /.rheostat/control`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub scope: ScopeMatch,
    pub level: Level,
    pub set_ms: u64,
    /// Expiry (0: until changed).
    pub until_ms: u64,
    pub reason: String,
}

impl Override {
    pub fn active(&self, now_ms: u64) -> bool {
        self.until_ms == 0 || now_ms < self.until_ms
    }
}

pub fn ensure_overrides(store: &dyn SharedStore) {
    if store.get(OVERRIDES_KEY).is_none() {
        let _ = store.set(OVERRIDES_KEY, b"[]", None);
    }
}

pub fn overrides(store: &dyn SharedStore) -> Vec<Override> {
    store
        .get(OVERRIDES_KEY)
        .and_then(|(v, _)| serde_json::from_slice(&v).ok())
        .unwrap_or_default()
}

/// Sets (or, with `normal`, clears) the override of a scope. Returns the
/// level it replaced.
pub fn set_override(store: &dyn SharedStore, new: Override) -> Result<Level, StoreError> {
    let mut previous = Level::Normal;
    update_shared(store, OVERRIDES_KEY, |current| {
        let mut list: Vec<Override> = current
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        let now = new.set_ms;
        previous = list
            .iter()
            .find(|o| o.scope == new.scope && o.active(now))
            .map_or(Level::Normal, |o| o.level);
        list.retain(|o| o.scope != new.scope && o.active(now));
        if new.level != Level::Normal {
            list.push(new.clone());
        }
        if list.len() > MAX_OVERRIDES {
            list.remove(0);
        }
        serde_json::to_vec(&list).ok()
    })?;
    Ok(previous)
}

/// A level an anomaly tripped for a scope, held until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub level: Level,
    pub until_ms: u64,
}

pub fn trip_key(scope: &Scope) -> String {
    format!("rheostat/trip/{}", scope.key())
}

pub fn ensure_trip(store: &dyn SharedStore, scope: &Scope) {
    let key = trip_key(scope);
    if store.get(&key).is_none() {
        let _ = store.set(
            &key,
            &encode_trip(Trip {
                level: Level::Normal,
                until_ms: 0,
            }),
            None,
        );
    }
}

pub fn trip(store: &dyn SharedStore, scope: &Scope, now_ms: u64) -> Option<Trip> {
    store
        .get(&trip_key(scope))
        .and_then(|(v, _)| decode_trip(&v))
        .filter(|t| t.level != Level::Normal && now_ms < t.until_ms)
}

/// Trips `level` for the scope until `until_ms` (extending, never lowering,
/// a trip in force). True when the scope's tripped level rose.
pub fn set_trip(
    store: &dyn SharedStore,
    scope: &Scope,
    new: Trip,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let mut rose = false;
    update_shared(store, &trip_key(scope), |current| {
        let old = current
            .and_then(decode_trip)
            .filter(|t| now_ms < t.until_ms)
            .unwrap_or(Trip {
                level: Level::Normal,
                until_ms: 0,
            });
        rose = new.level > old.level;
        let merged = Trip {
            level: old.level.max(new.level),
            until_ms: old.until_ms.max(new.until_ms),
        };
        (merged != old).then(|| encode_trip(merged))
    })?;
    Ok(rose)
}

fn encode_trip(t: Trip) -> Vec<u8> {
    let mut out = vec![t.level.rank()];
    out.extend_from_slice(&t.until_ms.to_le_bytes());
    out
}

fn decode_trip(b: &[u8]) -> Option<Trip> {
    Some(Trip {
        level: Level::from_rank(*b.first()?),
        until_ms: u64::from_le_bytes(b.get(1..9)?.try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    fn tenant(t: &str) -> ScopeMatch {
        ScopeMatch {
            tenant: Some(t.into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_override_replaces_the_scope_s_previous_one_and_normal_clears_it() {
        let store = MemoryStore::default();
        ensure_overrides(&store);
        let o = |scope, level| Override {
            scope,
            level,
            set_ms: 5,
            until_ms: 0,
            reason: String::new(),
        };
        assert_eq!(
            set_override(&store, o(tenant("a"), Level::Shed)).unwrap(),
            Level::Normal
        );
        assert_eq!(
            set_override(&store, o(tenant("a"), Level::Degrade)).unwrap(),
            Level::Shed
        );
        set_override(&store, o(ScopeMatch::default(), Level::Breaker)).unwrap();
        assert_eq!(overrides(&store).len(), 2);
        set_override(&store, o(tenant("a"), Level::Normal)).unwrap();
        assert_eq!(
            overrides(&store),
            vec![o(ScopeMatch::default(), Level::Breaker)]
        );
    }

    #[test]
    fn trips_expire_and_never_lower_a_level_in_force() {
        let store = MemoryStore::default();
        let s = Scope::global();
        ensure_trip(&store, &s);
        assert!(set_trip(
            &store,
            &s,
            Trip {
                level: Level::Degrade,
                until_ms: 100
            },
            0
        )
        .unwrap());
        assert!(!set_trip(
            &store,
            &s,
            Trip {
                level: Level::Shed,
                until_ms: 200
            },
            10
        )
        .unwrap());
        assert_eq!(
            trip(&store, &s, 150),
            Some(Trip {
                level: Level::Degrade,
                until_ms: 200
            })
        );
        assert_eq!(trip(&store, &s, 200), None);
    }
}
