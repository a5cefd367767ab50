//! The edge's shared state, owned by one Durable Object: the containment
//! ladder ([`Controls`]) over an in-memory [`EdgeStore`]. Every worker
//! isolate asks it for the gate's decision before a request goes upstream
//! and tells it how the exchange ended; the object serialises those calls,
//! so counters, breakers and overrides are exact across isolates, as
//! Envoy's shared data makes them across workers.
//!
//! What Envoy does on a timer (judging the last window for anomalies) is
//! done here by the first call of each window, claimed through a lease in
//! the store: a Durable Object needs no alarm for it, and a quiet window
//! with no calls has nothing to judge anyway.

use crate::store::EdgeStore;
use crate::wire::{
    action_name, error_json, scopes_named, EndpointAnswer, Report, Ticket, WireSubject,
};
use rheostat_filter::controls::alerts;
use rheostat_filter::controls::endpoints::{self, Endpoint};
use rheostat_filter::controls::{Controls, Event, ExchangeRecord, GateAction, Phase};
use rheostat_filter::detect::redact::PseudonymKey;
use rheostat_filter::lease::claim_period;
use rheostat_filter::policy::Policy;
use serde_json::json;
use std::rc::Rc;

/// The lease naming the last window whose predecessor was judged.
const EVALUATED_KEY: &str = "rheostat/edge/evaluated";

/// Controls of the current policy plus the store they act on.
pub struct Ledger {
    controls: Controls,
    policy_hash: String,
    store: EdgeStore,
    /// Per-object sequence for response ids (the id's MAC makes it unforgeable;
    /// the nonce only makes it unique).
    nonce: u64,
}

/// A short stable hash of the policy text, for the status endpoint and to
/// notice a changed policy.
pub fn policy_hash(text: &str) -> String {
    format!(
        "{:016x}",
        PseudonymKey::new(0x7268_656f, 0x7374_6174).mac(text.as_bytes())
    )
}

impl Ledger {
    /// A ledger for `policy_json`. `seed` keys the response-id MAC when the
    /// store has none yet (a restored store keeps its own).
    pub fn new(policy_json: &str, seed: PseudonymKey, now_ms: u64) -> Result<Ledger, String> {
        let controls = compile(policy_json)?;
        let store = EdgeStore::default();
        let ledger = Ledger {
            controls,
            policy_hash: policy_hash(policy_json),
            store,
            nonce: seed.mac(b"nonce") & 0xffff_ffff,
        };
        ledger.prepare(seed, now_ms);
        Ok(ledger)
    }

    fn prepare(&self, seed: PseudonymKey, now_ms: u64) {
        self.controls.prepare(&self.store, now_ms);
        endpoints::ensure_secret(&self.store, &seed);
    }

    /// Switches to a new policy text, keeping every counter, breaker and
    /// override (as Envoy keeps shared data across configuration pushes).
    /// Returns whether the policy changed.
    pub fn configure(&mut self, policy_json: &str, now_ms: u64) -> Result<bool, String> {
        let hash = policy_hash(policy_json);
        if hash == self.policy_hash {
            return Ok(false);
        }
        self.controls = compile(policy_json)?;
        self.policy_hash = hash;
        self.controls.prepare(&self.store, now_ms);
        Ok(true)
    }

    pub fn store(&self) -> &EdgeStore {
        &self.store
    }

    /// Judges the window before `now_ms`'s, once per window.
    fn evaluate_if_due(&self, now_ms: u64) -> Vec<Event> {
        let window = self.controls.ledger.window_of(now_ms);
        if window == 0
            || !matches!(
                claim_period(&self.store, EVALUATED_KEY, window, 0),
                Ok(true)
            )
        {
            return Vec::new();
        }
        self.controls
            .evaluate_window(&self.store, window - 1, now_ms)
    }

    /// The gate's decision for a request, as a [`Ticket`].
    pub fn decide(&mut self, subject: &WireSubject, now_ms: u64) -> Ticket {
        let mut events = self.evaluate_if_due(now_ms);
        let scopes = self.controls.scopes_of(&self.store, &subject.subject());
        endpoints::note_inventory(
            &self.store,
            &self.controls.registry,
            &scopes,
            &subject.tools,
            now_ms,
        );
        // The worker read the whole body before asking, so the model is
        // known and one decision covers every scope: `Phase::Headers` judges
        // all of them (`Phase::Model` exists for proxies that decide twice).
        let decision = self.controls.decide(
            &self.store,
            &subject.subject(),
            &scopes,
            now_ms,
            Phase::Headers,
        );
        events.extend(decision.events.iter().cloned());
        self.nonce = self.nonce.wrapping_add(1);
        Ticket {
            level: decision.level.name().into(),
            source: decision.source.into(),
            scope: decision.scope.clone(),
            action: action_name(&decision.action).into(),
            retry_after_secs: match decision.action {
                GateAction::RateLimited { retry_after_secs } => retry_after_secs,
                _ => 0,
            },
            probes: decision.probes.iter().map(|s| s.key()).collect(),
            response_id: endpoints::response_id(&self.store, &scopes, self.nonce),
            store_failed: decision.store_failed,
            events: self.render(&events),
        }
    }

    /// Counts a finished exchange; returns the audit events it caused.
    pub fn record(&mut self, report: &Report, now_ms: u64) -> Vec<serde_json::Value> {
        let mut events = self.evaluate_if_due(now_ms);
        let scopes = self
            .controls
            .scopes_of(&self.store, &report.subject.subject());
        let probes = scopes_named(&scopes, &report.probes);
        let record = ExchangeRecord {
            upstream: report.upstream,
            contained: report.contained,
            status: report.status,
            timed_out: report.timed_out,
            blocked: report.blocked,
            format_failed: report.format_failed,
            findings: &report.findings,
            latency_ms: report.latency_ms,
            output_tokens: report.output_tokens,
            probes: &probes,
        };
        events.extend(self.controls.record(&self.store, &scopes, now_ms, &record));
        self.render(&events)
    }

    /// Answers `/.rheostat/control`, `/.rheostat/status` and
    /// `/.rheostat/feedback` with the filter's statuses and bodies.
    /// `client` names the feedback sender (see `controls.feedback.client_header`).
    pub fn endpoint(
        &mut self,
        path: &str,
        method: &str,
        authorization: Option<&str>,
        client: &str,
        body: &[u8],
        now_ms: u64,
    ) -> EndpointAnswer {
        let answer = EndpointAnswer::new;
        let policy = self.controls.policy();
        let token = policy.controls.token.as_deref();
        let Some(endpoint) = endpoints::endpoint_of(path) else {
            return answer(404, error_json("no such endpoint"));
        };
        let allow = if endpoint == Endpoint::Status {
            "GET"
        } else {
            "POST"
        };
        match endpoint {
            Endpoint::Unknown => answer(404, error_json("no such endpoint")),
            Endpoint::Control | Endpoint::Status if token.is_none() => {
                answer(404, error_json("not enabled"))
            }
            Endpoint::Control | Endpoint::Status
                if !endpoints::authorized(token, authorization) =>
            {
                answer(401, error_json("unauthorized")).with_header("www-authenticate", "Bearer")
            }
            Endpoint::Feedback if !policy.controls.feedback.enabled => {
                answer(404, error_json("not enabled"))
            }
            _ if method != allow => {
                answer(405, error_json("method not allowed")).with_header("allow", allow)
            }
            Endpoint::Status => {
                let status =
                    endpoints::status(&self.controls, &self.store, now_ms, &self.policy_hash);
                answer(200, status.to_string())
            }
            Endpoint::Control => {
                let result = endpoints::parse_control(body).and_then(|request| {
                    let previous = endpoints::apply_control(&self.store, &request, now_ms)?;
                    Ok((request, previous))
                });
                let (request, previous) = match result {
                    Ok(applied) => applied,
                    Err(e) => return answer(400, error_json(&e)),
                };
                let mut done = answer(
                    200,
                    json!({
                        "scope": request.scope.label(),
                        "level": request.level.name(),
                        "previous": previous.name(),
                    })
                    .to_string(),
                );
                done.events.push(json!({
                    "event": "control",
                    "policy": policy.name,
                    "scope": request.scope.label(),
                    "level": request.level.name(),
                    "previous": previous.name(),
                    "ttl_secs": request.ttl_secs,
                    "reason": request.reason,
                    "at_ms": now_ms,
                }));
                done
            }
            Endpoint::Feedback => self.feedback(client, body, now_ms),
        }
    }

    /// Validates, rate-limits per client, and counts a feedback report.
    fn feedback(&mut self, client: &str, body: &[u8], now_ms: u64) -> EndpointAnswer {
        let (status, body, events) = self.controls.feedback(&self.store, client, body, now_ms);
        let mut answer = EndpointAnswer::new(status, body.to_string());
        answer.events = self.render(&events);
        answer
    }

    /// Events as audit objects. An alert whose route names an `http(s)://`
    /// URL as its cluster carries `deliver` (the worker posts it there);
    /// other alerts are only logged.
    fn render(&self, events: &[Event]) -> Vec<serde_json::Value> {
        let policy = self.controls.policy();
        events
            .iter()
            .map(|event| match event {
                Event::Breaker(t) => json!({
                    "event": "breaker",
                    "policy": policy.name,
                    "scope": t.scope.label(),
                    "from": t.from.name(),
                    "to": t.to.name(),
                    "reason": t.reason,
                }),
                Event::Anomaly { anomaly, tripped } => json!({
                    "event": "anomaly",
                    "policy": policy.name,
                    "scope": anomaly.scope.label(),
                    "signal": anomaly.signal.name(),
                    "window": anomaly.window,
                    "value": anomaly.value,
                    "baseline": anomaly.baseline,
                    "requests": anomaly.requests,
                    "tripped": tripped.map(|l| l.name()),
                }),
                Event::Alert(alert) => {
                    let body = alerts::render(&policy.alerts, &policy.name, alert);
                    let url = alerts::target(&policy.alerts, alert)
                        .filter(|t| {
                            t.cluster.starts_with("https://") || t.cluster.starts_with("http://")
                        })
                        .map(|t| format!("{}{}", t.cluster.trim_end_matches('/'), t.path));
                    json!({
                        "event": "alert",
                        "policy": policy.name,
                        "severity": alerts::severity_name(alert.severity),
                        "category": alerts::category_name(alert.category),
                        "scope": alert.scope,
                        "reason": alert.reason,
                        "deliver": url.map(|url| json!({ "url": url, "body": body })),
                    })
                }
            })
            .collect()
    }
}

fn compile(policy_json: &str) -> Result<Controls, String> {
    let policy =
        Policy::from_json(policy_json.as_bytes()).map_err(|e| format!("invalid policy: {e}"))?;
    Ok(Controls::new(Rc::new(policy)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "controls": {
            "token": "0123456789abcdef",
            "breaker": {"min_requests": 3, "error_rate": 0.5, "scopes": ["global"]}
        }
    }"#;

    fn ledger() -> Ledger {
        Ledger::new(POLICY, PseudonymKey::new(1, 2), 1_000).unwrap()
    }

    fn failed(tenant: &str) -> Report {
        Report {
            subject: WireSubject {
                tenant: tenant.into(),
                route: "/v1/chat/completions".into(),
                ..Default::default()
            },
            upstream: true,
            status: 502,
            ..Default::default()
        }
    }

    #[test]
    fn three_upstream_failures_open_the_global_breaker_and_the_next_request_gets_the_fallback() {
        let mut l = ledger();
        let subject = failed("acme").subject;
        assert_eq!(l.decide(&subject, 1_000).action, "pass");
        let mut opened = Vec::new();
        for t in 0..3 {
            opened.extend(l.record(&failed("acme"), 1_100 + t));
        }
        assert!(
            opened
                .iter()
                .any(|e| e["event"] == "breaker" && e["to"] == "open"),
            "{opened:?}"
        );
        let ticket = l.decide(&subject, 1_200);
        assert_eq!(
            (ticket.level.as_str(), ticket.action.as_str()),
            ("breaker", "fallback")
        );
        assert!(ticket.response_id.starts_with("r1."));
    }

    #[test]
    fn a_scoped_stop_set_through_the_control_endpoint_stops_only_that_tenant() {
        let mut l = ledger();
        let body = br#"{"level": "scoped_stop", "scope": {"tenant": "acme"}}"#;
        let a = l.endpoint(
            "/.rheostat/control",
            "POST",
            Some("Bearer 0123456789abcdef"),
            "",
            body,
            1_000,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        let acme = WireSubject {
            tenant: "acme".into(),
            ..Default::default()
        };
        let other = WireSubject {
            tenant: "globex".into(),
            ..Default::default()
        };
        assert_eq!(l.decide(&acme, 1_001).action, "maintenance");
        assert_eq!(l.decide(&other, 1_001).action, "pass");
        let denied = l.endpoint(
            "/.rheostat/control",
            "POST",
            Some("Bearer nope"),
            "",
            body,
            1_002,
        );
        assert_eq!(denied.status, 401);
    }

    #[test]
    fn feedback_is_counted_only_for_ids_this_ledger_issued() {
        let mut l = ledger();
        let subject = WireSubject {
            tenant: "acme".into(),
            ..Default::default()
        };
        let id = l.decide(&subject, 1_000).response_id;
        let ok = format!(r#"{{"response_id": "{id}", "verdict": "thumbs_down"}}"#);
        let feedback = |l: &mut Ledger, body: &[u8]| {
            l.endpoint("/.rheostat/feedback", "POST", None, "c", body, 1_001)
                .status
        };
        assert_eq!(feedback(&mut l, ok.as_bytes()), 202);
        let forged =
            br#"{"response_id": "r1.0.0.-.-.1.0000000000000000", "verdict": "thumbs_down"}"#;
        assert_eq!(feedback(&mut l, forged), 404);
        let token = Some("Bearer 0123456789abcdef");
        let status = l.endpoint("/.rheostat/status", "GET", token, "", b"", 1_002);
        let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        let acme = status["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["scope"] == "tenant=acme")
            .unwrap();
        assert_eq!(acme["window"]["negative_feedback"], 1);
    }

    #[test]
    fn a_new_policy_keeps_the_state_and_an_invalid_one_is_refused_with_its_path() {
        let mut l = ledger();
        for t in 0..3 {
            l.record(&failed("acme"), 1_100 + t);
        }
        assert!(l.configure(r#"{"name": "v2"}"#, 1_200).unwrap());
        assert!(!l.configure(r#"{"name": "v2"}"#, 1_200).unwrap());
        assert_eq!(l.decide(&failed("acme").subject, 1_300).level, "breaker");
        let e = l
            .configure(r#"{"controls": {"level": "loud"}}"#, 1_300)
            .unwrap_err();
        assert!(
            e.starts_with("invalid policy: controls.level: unknown variant"),
            "{e}"
        );
    }
}
