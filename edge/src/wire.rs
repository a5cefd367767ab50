//! What the worker and the Durable Object send each other, as JSON: the
//! request's subject going in, the gate's decision coming back, and the
//! exchange's outcome at the end. Both ends are this crate, so the shapes
//! only need to agree with themselves; they stay JSON so a person can read
//! them in a log or a test.

use rheostat_filter::audit::Subject;
use rheostat_filter::controls::scope::Scope;
use rheostat_filter::controls::GateAction;
use rheostat_filter::finding::Finding;
use serde::{Deserialize, Serialize};

/// Who a request is, as the worker saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WireSubject {
    pub tenant: String,
    pub region: String,
    pub route: String,
    pub model: String,
    /// Tool names the request declares, for the inventory.
    pub tools: Vec<String>,
}

impl WireSubject {
    pub fn subject(&self) -> Subject {
        Subject {
            tenant: self.tenant.clone(),
            region: self.region.clone(),
            route: self.route.clone(),
            model: self.model.clone(),
        }
    }
}

/// The gate's decision for one request, from the Durable Object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ticket {
    pub level: String,
    /// `policy`, `override`, `anomaly`, `breaker` or `none`.
    pub source: String,
    /// The scope that set the level (`global`, `tenant=acme`).
    pub scope: String,
    /// `pass`, `rate_limited`, `fallback`, `degrade`, `shadow`, `maintenance`.
    pub action: String,
    pub retry_after_secs: u64,
    /// Keys of the breakers this request passes as a half-open probe; they
    /// come back in the [`Report`] so the probe's result moves the breaker.
    pub probes: Vec<String>,
    /// `x-rheostat-response-id`: names the answer's scopes for feedback.
    pub response_id: String,
    /// Shared state could not be read or written (or the object could not
    /// be reached): fail-closed routes refuse.
    pub store_failed: bool,
    /// Audit events the decision caused (breaker transitions), one JSON object each.
    pub events: Vec<serde_json::Value>,
}

impl Ticket {
    /// The decision when the Durable Object could not be asked.
    pub fn unreachable() -> Ticket {
        Ticket {
            level: "normal".into(),
            source: "none".into(),
            scope: "global".into(),
            action: "pass".into(),
            store_failed: true,
            ..Ticket::default()
        }
    }
}

/// The wire name of a gate action.
pub fn action_name(action: &GateAction) -> &'static str {
    match action {
        GateAction::Pass => "pass",
        GateAction::RateLimited { .. } => "rate_limited",
        GateAction::Fallback => "fallback",
        GateAction::Degrade => "degrade",
        GateAction::Shadow => "shadow",
        GateAction::Maintenance => "maintenance",
    }
}

/// How an exchange ended, for the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub subject: WireSubject,
    pub probes: Vec<String>,
    pub upstream: bool,
    pub contained: bool,
    pub status: u32,
    pub timed_out: bool,
    pub blocked: bool,
    pub format_failed: bool,
    pub findings: Vec<Finding>,
    pub latency_ms: u64,
    pub output_tokens: u64,
}

/// The scopes among `scopes` whose keys are listed.
pub fn scopes_named(scopes: &[Scope], keys: &[String]) -> Vec<Scope> {
    scopes
        .iter()
        .filter(|s| keys.iter().any(|k| *k == s.key()))
        .cloned()
        .collect()
}

/// An answer from one of the `/.rheostat/` endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointAnswer {
    pub status: u16,
    /// A JSON document.
    pub body: String,
    /// Headers beyond `content-type` (`www-authenticate`, `allow`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub events: Vec<serde_json::Value>,
}

impl EndpointAnswer {
    pub fn new(status: u16, body: String) -> EndpointAnswer {
        EndpointAnswer {
            status,
            body,
            headers: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> EndpointAnswer {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// `{"error": "..."}`, the shape of every endpoint error (as the filter answers).
pub fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}
