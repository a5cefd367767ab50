//! Structured audit events: one JSON object per line, always with an
//! `"event"` key, so log pipelines (and the test host) can pick them out of
//! ordinary log text. Events carry masked samples only; the raw text of a
//! prompt or response never appears here.

use crate::detect::redact::PseudonymKey;
use crate::finding::Finding;
use serde::Serialize;

/// The longest `x-request-id` logged as it came (a UUID is 36 bytes).
const MAX_LOGGED_REQUEST_ID: usize = 128;

/// The client's `x-request-id` as audit events carry it: as it came when it
/// looks like an id (Envoy's UUIDs, trace ids), otherwise a keyed digest.
/// Clients set this header, so it may hold anything (an email, a prompt,
/// newlines for log injection) and nothing else scans it; the digest still
/// correlates the events of one request across workers.
pub fn loggable_request_id(raw: &str, key: &PseudonymKey) -> String {
    let id_like = raw.len() <= MAX_LOGGED_REQUEST_ID
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if id_like {
        raw.to_string()
    } else {
        format!("h-{:016x}", key.mac(raw.as_bytes()))
    }
}

/// Who and where a request is; scopes and counters are keyed by it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub tenant: String,
    pub region: String,
    pub route: String,
    pub model: String,
}

/// The summary of one exchange, logged once at the end of the stream.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub request_id: &'a str,
    pub method: &'a str,
    /// The request path, written without its query string or fragment:
    /// those carry whatever the client put there and nothing scans them.
    #[serde(serialize_with = "path_only")]
    pub path: &'a str,
    #[serde(flatten)]
    pub subject: &'a Subject,
    /// Response status the client saw (0 when the stream ended without one).
    pub status: u32,
    /// Time from request headers to the end of the exchange, in milliseconds.
    pub duration_ms: u64,
    pub level: &'a str,
    /// `forwarded`, `redacted`, `blocked`, `refused`, `too_large`.
    pub outcome: &'a str,
    /// Why a body was not inspected, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    pub findings: &'a [Finding],
    /// The count of requests in the current window after this one (all workers).
    pub window_requests: u64,
}

/// A path as audit events record it: the query string and fragment are
/// dropped, because they carry whatever the client put there (`?email=...`,
/// `?key=...`) and nothing scans them, while the body scan keeps the same
/// values out of every other field.
fn path_only<S: serde::Serializer>(path: &&str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(path.split(['?', '#']).next().unwrap_or_default())
}

/// One finding, logged on its own line so log pipelines can count and
/// alert on findings without parsing exchange summaries.
#[derive(Debug, Clone, Serialize)]
pub struct FindingEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub request_id: &'a str,
    #[serde(flatten)]
    pub subject: &'a Subject,
    #[serde(flatten)]
    pub finding: &'a Finding,
}

/// The housekeeping tick of the worker that holds the period's lease.
#[derive(Debug, Clone, Serialize)]
pub struct TickEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub period: u64,
    pub worker: u32,
    /// Requests counted in the window before the current one.
    pub previous_window_requests: u64,
}

/// Serialises an event to one line. Events are plain data, so this cannot
/// fail in practice; a failure yields a minimal event rather than a panic.
pub fn to_line<T: Serialize>(event: &T) -> String {
    serde_json::to_string(event).unwrap_or_else(|e| {
        format!(
            "{{\"event\":\"audit_error\",\"error\":{:?}}}",
            e.to_string()
        )
    })
}

/// A breaker state change, logged by the worker whose CAS made it.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub scope: String,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: &'a str,
    pub at_ms: u64,
}

/// A behavioural anomaly found when a window closed.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub scope: String,
    pub signal: &'static str,
    pub window: u64,
    pub value: f64,
    pub baseline: f64,
    pub requests: u64,
    /// The level tripped for the scope, if the policy asks for one.
    pub tripped: Option<&'static str>,
    pub at_ms: u64,
}

/// An alert as sent (or, without an alert route, only logged).
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    #[serde(flatten)]
    pub alert: &'a crate::controls::alerts::Alert,
    /// The cluster it went to (`null`: logged only).
    pub cluster: Option<&'a str>,
    pub at_ms: u64,
}

/// A level set or cleared through the control endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ControlEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub scope: String,
    pub level: &'static str,
    pub previous: &'static str,
    pub ttl_secs: Option<u64>,
    pub reason: &'a str,
    pub at_ms: u64,
}

/// What the shadow model answered to a mirrored request, for diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowEvent<'a> {
    pub event: &'static str,
    pub policy: &'a str,
    pub request_id: &'a str,
    pub status: u32,
    pub findings: &'a [Finding],
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_event_never_copies_a_query_string() {
        // Regression: the path was logged whole, so `?email=` and `?key=`
        // values reached the audit log raw.
        let subject = Subject::default();
        let event = ExchangeEvent {
            event: "exchange",
            policy: "p",
            request_id: "r",
            method: "POST",
            path: "/v1/chat/completions?email=jane.doe@example.com&key=AKIA1234#frag",
            subject: &subject,
            status: 200,
            duration_ms: 0,
            level: "normal",
            outcome: "forwarded",
            note: None,
            findings: &[],
            window_requests: 1,
        };
        let line = to_line(&event);
        assert!(line.contains(r#""path":"/v1/chat/completions","#), "{line}");
        assert!(
            !line.contains("jane.doe") && !line.contains("AKIA"),
            "{line}"
        );
    }

    #[test]
    fn request_ids_are_logged_only_when_they_look_like_ids() {
        let key = PseudonymKey::new(7, 9);
        let uuid = "5f0c7a2e-9b1d-4c3e-8f6a-2d4b6c8e0a1f";
        assert_eq!(loggable_request_id(uuid, &key), uuid);
        for hostile in [
            "jane.doe@example.com",
            "a\n{\"event\":\"forged\"}",
            &"x".repeat(129),
        ] {
            let logged = loggable_request_id(hostile, &key);
            assert!(logged.starts_with("h-") && logged.len() == 18, "{logged}");
            assert_eq!(
                logged,
                loggable_request_id(hostile, &key),
                "stable for correlation"
            );
        }
    }
}
