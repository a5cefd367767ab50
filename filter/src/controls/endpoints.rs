//! The filter's own endpoints under `/.rheostat/`, answered locally and
//! never forwarded:
//! - `POST /.rheostat/control` (bearer token): set or clear a level override;
//! - `GET /.rheostat/status` (bearer token): levels, breakers, counts, inventory;
//! - `POST /.rheostat/feedback`: a user's verdict on an answer, by response id.
//!
//! Control and status answer 404 unless the policy sets `controls.token`;
//! feedback answers 404 when `controls.feedback.enabled` is false.
//!
//! Response ids name the scopes of the answer (registry indices) and carry
//! a MAC under a secret kept in shared data, so feedback is counted against
//! the right scopes without storing every answer, and an invented id is
//! rejected rather than counted.

use super::breaker;
use super::levels::{self, Override};
use super::scope::{Registry, Scope, OTHER, TOOLS};
use super::Controls;
use crate::detect::redact::PseudonymKey;
use crate::ledger::{update_shared, SharedStore, WindowCounter};
use crate::policy::{Level, ScopeKind, ScopeMatch};
use serde::Deserialize;
use serde_json::json;

pub const PREFIX: &str = "/.rheostat/";

/// Which endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Control,
    Status,
    Feedback,
    Unknown,
}

/// `Some` for every path under [`PREFIX`] (query ignored).
pub fn endpoint_of(path: &str) -> Option<Endpoint> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let rest = path.strip_prefix(PREFIX)?;
    Some(match rest.trim_end_matches('/') {
        "control" => Endpoint::Control,
        "status" => Endpoint::Status,
        "feedback" => Endpoint::Feedback,
        _ => Endpoint::Unknown,
    })
}

/// Whether `authorization` carries the policy's token, compared in constant
/// time (a timing side channel must not reveal the token byte by byte).
pub fn authorized(token: Option<&str>, authorization: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let (Some(token), Some(given)) = (token, authorization) else {
        return false;
    };
    let Some(given) = given
        .strip_prefix("Bearer ")
        .or_else(|| given.strip_prefix("bearer "))
    else {
        return false;
    };
    bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

/// The largest control body accepted.
pub const MAX_CONTROL_BYTES: usize = 4_096;

/// `POST /.rheostat/control`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    pub level: Level,
    /// Omitted: the global scope.
    #[serde(default)]
    pub scope: ScopeMatch,
    /// The override expires after this long (omitted: until changed).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub reason: String,
}

pub fn parse_control(body: &[u8]) -> Result<ControlRequest, String> {
    if body.len() > MAX_CONTROL_BYTES {
        return Err(format!("body over {MAX_CONTROL_BYTES} bytes"));
    }
    let request: ControlRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid control request: {e}"))?;
    if request.scope.is_global() && request.level == Level::ScopedStop {
        return Err("scoped_stop needs a scope; use global_stop for everyone".into());
    }
    if !request.scope.is_global() && request.level == Level::GlobalStop {
        return Err("global_stop takes no scope; use scoped_stop".into());
    }
    if request.reason.len() > 512 {
        return Err("reason over 512 bytes".into());
    }
    Ok(request)
}

/// Applies a control request; returns the level it replaced.
pub fn apply_control(
    store: &dyn SharedStore,
    request: &ControlRequest,
    now_ms: u64,
) -> Result<Level, String> {
    let until_ms = request
        .ttl_secs
        .map_or(0, |t| now_ms.saturating_add(t.saturating_mul(1000)));
    levels::set_override(
        store,
        Override {
            scope: request.scope.clone(),
            level: request.level,
            set_ms: now_ms,
            until_ms,
            reason: request.reason.clone(),
        },
    )
    .map_err(|e| e.to_string())
}

/// A user's verdict on an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    ThumbsUp,
    ThumbsDown,
    SafetyReport,
}

/// `POST /.rheostat/feedback`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub response_id: String,
    pub verdict: Verdict,
    #[serde(default)]
    pub category: Option<crate::finding::Category>,
}

pub fn parse_feedback(body: &[u8], max_bytes: usize) -> Result<FeedbackRequest, String> {
    if body.len() > max_bytes {
        return Err(format!("body over {max_bytes} bytes"));
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid feedback: {e}"))
}

pub const SECRET_KEY: &str = "rheostat/secret";

/// Stores the id-signing secret once; every worker then reads the same one.
pub fn ensure_secret(store: &dyn SharedStore, seed: &PseudonymKey) {
    let _ = update_shared(store, SECRET_KEY, |current| match current {
        Some(v) if v.len() == 16 => None,
        _ => {
            let mut out = seed.mac(b"secret-lo").to_le_bytes().to_vec();
            out.extend_from_slice(&seed.mac(b"secret-hi").to_le_bytes());
            Some(out)
        }
    });
}

fn secret(store: &dyn SharedStore) -> Option<PseudonymKey> {
    let (v, _) = store.get(SECRET_KEY)?;
    Some(PseudonymKey::from_bytes(v.get(0..16)?.try_into().ok()?))
}

const ID_KINDS: [ScopeKind; 4] = [
    ScopeKind::Route,
    ScopeKind::Tenant,
    ScopeKind::Region,
    ScopeKind::Model,
];

/// `r1.<route>.<tenant>.<region>.<model>.<nonce>.<mac>`: indices or `-`.
pub fn response_id(store: &dyn SharedStore, scopes: &[Scope], nonce: u64) -> String {
    let mut body = String::from("r1");
    for kind in ID_KINDS {
        match scopes.iter().find(|s| s.kind == kind) {
            Some(s) => body.push_str(&format!(".{}", s.index)),
            None => body.push_str(".-"),
        }
    }
    body.push_str(&format!(".{nonce:x}"));
    let mac = secret(store).map_or(0, |k| k.mac(body.as_bytes()));
    format!("{body}.{mac:016x}")
}

/// The scopes an id names, if its MAC is ours.
pub fn scopes_of_response_id(
    store: &dyn SharedStore,
    registry: &Registry,
    id: &str,
) -> Result<Vec<Scope>, String> {
    let invalid = || "unknown response_id".to_string();
    if id.len() > 128 {
        return Err(invalid());
    }
    let (body, mac) = id.rsplit_once('.').ok_or_else(invalid)?;
    let key = secret(store).ok_or_else(invalid)?;
    let expected = format!("{:016x}", key.mac(body.as_bytes()));
    {
        use subtle::ConstantTimeEq;
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(invalid());
        }
    }
    let parts: Vec<&str> = body.split('.').collect();
    if parts.len() != 6 || parts[0] != "r1" {
        return Err(invalid());
    }
    let mut scopes = vec![Scope::global()];
    for (kind, part) in ID_KINDS.iter().zip(&parts[1..5]) {
        if *part == "-" {
            continue;
        }
        let index: u32 = part.parse().map_err(|_| invalid())?;
        let value = registry
            .values(store, *kind)
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| OTHER.to_string());
        scopes.push(Scope {
            kind: *kind,
            index: index.min(registry.cap()),
            value,
        });
    }
    Ok(scopes)
}

/// Per-client feedback buckets. Clients hash into a fixed number of
/// counters (keys must stay bounded); two clients sharing a bucket share
/// its limit, which errs on the strict side.
pub const FEEDBACK_BUCKETS: u64 = 64;

pub fn feedback_counter(bucket: u64, window_ms: u64) -> WindowCounter {
    WindowCounter::new(&format!("feedback/{bucket}"), window_ms)
}

pub fn feedback_bucket(store: &dyn SharedStore, client: &str) -> u64 {
    secret(store).map_or(0, |k| k.mac(client.as_bytes())) % FEEDBACK_BUCKETS
}

/// First and last sighting and count of a value in the inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sighting {
    pub count: u64,
    pub first_ms: u64,
    pub last_ms: u64,
}

fn inventory_key(list: &str, index: u32) -> String {
    format!("rheostat/inv/{list}/{index}")
}

/// Creates the inventory record slots (see `Controls::prepare`).
pub fn ensure_inventory(store: &dyn SharedStore, registry: &Registry) {
    for list in ["route", "tenant", "region", "model", TOOLS] {
        for index in 0..=registry.cap() {
            let key = inventory_key(list, index);
            if store.get(&key).is_none() {
                let _ = store.set(&key, &encode_sighting(Sighting::default()), None);
            }
        }
    }
}

/// Notes that the request's scopes and declared tools were seen.
pub fn note_inventory(
    store: &dyn SharedStore,
    registry: &Registry,
    scopes: &[Scope],
    tools: &[String],
    now_ms: u64,
) {
    let mut targets: Vec<(&str, u32)> = scopes
        .iter()
        .filter(|s| s.kind != ScopeKind::Global)
        .map(|s| (s.kind.name(), s.index))
        .collect();
    for tool in tools.iter().take(32) {
        targets.push((
            TOOLS,
            registry.index(store, TOOLS, tool).min(registry.cap()),
        ));
    }
    for (list, index) in targets {
        let _ = update_shared(store, &inventory_key(list, index), |current| {
            let mut s = current.and_then(decode_sighting).unwrap_or_default();
            if s.count == 0 {
                s.first_ms = now_ms;
            }
            s.count += 1;
            s.last_ms = s.last_ms.max(now_ms);
            Some(encode_sighting(s))
        });
    }
}

fn encode_sighting(s: Sighting) -> Vec<u8> {
    [s.count, s.first_ms, s.last_ms]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn decode_sighting(b: &[u8]) -> Option<Sighting> {
    let at = |i: usize| {
        Some(u64::from_le_bytes(
            b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    Some(Sighting {
        count: at(0)?,
        first_ms: at(1)?,
        last_ms: at(2)?,
    })
}

/// `GET /.rheostat/status`: everything an on-call engineer asks first.
pub fn status(
    controls: &Controls,
    store: &dyn SharedStore,
    now_ms: u64,
    policy_hash: &str,
) -> serde_json::Value {
    let policy = controls.policy();
    let registry = &controls.registry;
    let window = controls.ledger.window_of(now_ms);
    let levels: serde_json::Map<String, serde_json::Value> = controls
        .levels_by_kind(store, now_ms)
        .into_iter()
        .map(|(kind, level)| (kind.name().to_string(), json!(level.name())))
        .collect();
    let mut scopes = Vec::new();
    for kind in ScopeKind::ALL {
        for scope in registry.scopes(store, kind) {
            let b = breaker::read(store, &scope);
            let c = controls.ledger.read(store, &scope, window);
            let trip = levels::trip(store, &scope, now_ms);
            scopes.push(json!({
                "scope": scope.label(),
                "breaker": b.state.name(),
                "breaker_trips": b.trips,
                "tripped_level": trip.map(|t| t.level.name()),
                "window": {
                    "requests": c.requests,
                    "upstream_errors": c.upstream_5xx + c.upstream_timeouts,
                    "blocked": c.blocked,
                    "format_failures": c.format_failures,
                    "negative_feedback": c.negative_feedback,
                    "refusals": c.refusals,
                    "contained": c.contained,
                    "latency_ms": c.latency_ms,
                    "output_tokens": c.output_tokens,
                },
            }));
        }
    }
    let overrides: Vec<serde_json::Value> = levels::overrides(store)
        .into_iter()
        .filter(|o| o.active(now_ms))
        .map(|o| json!({"scope": o.scope.label(), "level": o.level.name(), "until_ms": o.until_ms, "reason": o.reason}))
        .collect();
    let mut inventory = serde_json::Map::new();
    for list in ["route", "tenant", "region", "model", TOOLS] {
        let names = registry.list(store, list);
        let entries: Vec<serde_json::Value> = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let s = store.get(&inventory_key(list, i as u32)).and_then(|(v, _)| decode_sighting(&v))?;
                Some(json!({"name": name, "count": s.count, "first_seen_ms": s.first_ms, "last_seen_ms": s.last_ms}))
            })
            .collect();
        inventory.insert(format!("{list}s"), json!(entries));
    }
    json!({
        "policy": policy.name,
        "policy_hash": policy_hash,
        "now_ms": now_ms,
        "window": window,
        "levels": levels,
        "overrides": overrides,
        "scopes": scopes,
        "inventory": inventory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;

    #[test]
    fn paths_under_the_prefix_are_endpoints_and_others_are_not() {
        assert_eq!(endpoint_of("/.rheostat/control"), Some(Endpoint::Control));
        assert_eq!(endpoint_of("/.rheostat/status?x=1"), Some(Endpoint::Status));
        assert_eq!(endpoint_of("/.rheostat/nope"), Some(Endpoint::Unknown));
        assert_eq!(endpoint_of("/v1/chat/completions"), None);
    }

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let t = Some("0123456789abcdef");
        assert!(authorized(t, Some("Bearer 0123456789abcdef")));
        assert!(!authorized(t, Some("Bearer 0123456789abcdeg")));
        assert!(!authorized(t, Some("Bearer 0123456789abcdef0")));
        assert!(!authorized(t, Some("0123456789abcdef")));
        assert!(!authorized(t, None));
        assert!(!authorized(None, Some("Bearer ")));
    }

    #[test]
    fn control_requests_are_validated() {
        let ok = parse_control(
            br#"{"level": "scoped_stop", "scope": {"tenant": "acme"}, "ttl_secs": 60}"#,
        )
        .unwrap();
        assert_eq!(ok.scope.tenant.as_deref(), Some("acme"));
        assert!(parse_control(br#"{"level": "scoped_stop"}"#).is_err());
        assert!(parse_control(br#"{"level": "global_stop", "scope": {"route": "x"}}"#).is_err());
        assert!(parse_control(br#"{"level": "loud"}"#)
            .unwrap_err()
            .contains("unknown variant"));
        assert!(parse_control(&vec![b' '; MAX_CONTROL_BYTES + 1]).is_err());
    }

    #[test]
    fn response_ids_round_trip_to_their_scopes_and_forgeries_are_rejected() {
        let store = MemoryStore::default();
        ensure_secret(&store, &PseudonymKey::new(1, 2));
        let registry = Registry::new(8);
        let subject = crate::audit::Subject {
            tenant: "acme".into(),
            route: "chat".into(),
            ..Default::default()
        };
        let scopes = registry.scopes_of(&store, &subject);
        let id = response_id(&store, &scopes, 42);
        assert_eq!(
            scopes_of_response_id(&store, &registry, &id).unwrap(),
            scopes
        );
        let forged = id.replacen("r1.0", "r1.1", 1);
        assert!(scopes_of_response_id(&store, &registry, &forged).is_err());
        assert!(scopes_of_response_id(&store, &registry, "r1.-.-.-.-.0.0").is_err());
        assert!(scopes_of_response_id(&store, &registry, "").is_err());
    }

    #[test]
    fn feedback_is_size_limited_and_typed() {
        assert!(parse_feedback(br#"{"response_id": "x", "verdict": "thumbs_down"}"#, 100).is_ok());
        assert!(parse_feedback(br#"{"response_id": "x", "verdict": "meh"}"#, 100).is_err());
        assert!(parse_feedback(&[b'x'; 101], 100).is_err());
    }
}
