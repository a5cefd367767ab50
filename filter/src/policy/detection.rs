//! The detection part of a policy: which detectors run, on which side, with
//! which category, severity and action; the lists and thresholds they use;
//! and per-route overrides.

pub use crate::detect::custom::PrefilterSpec;
pub use crate::detect::redact::RedactStyle;
use crate::finding::{Action, Category, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every built-in detector by its policy name, with its defaults.
/// `side` says where it runs unless a rule overrides it.
pub struct BuiltIn {
    pub name: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub action: Action,
    pub side: Side,
}

const fn builtin(
    name: &'static str,
    category: Category,
    severity: Severity,
    action: Action,
    side: Side,
) -> BuiltIn {
    BuiltIn {
        name,
        category,
        severity,
        action,
        side,
    }
}

use Action::{Block, Flag, Redact};
use Category::{Privacy, Reliability, Safety, Security};
use Severity::{P0, P1, P2, P3};

/// The defaults an operator overrides. Privacy and secrets are redacted on
/// both sides (a prompt must not carry a customer's card to the model
/// either); request-only and response-only detectors say so. Severities
/// follow the playbook: a PII or secret leak (found in a response) is P0
/// whatever the table says for prompts, a single jailbreak P2, a merely
/// suspect prompt P3.
pub const BUILT_INS: &[BuiltIn] = &[
    builtin("email", Privacy, P2, Redact, Side::Both),
    builtin("phone", Privacy, P2, Redact, Side::Both),
    builtin("card", Privacy, P1, Redact, Side::Both),
    builtin("ssn", Privacy, P1, Redact, Side::Both),
    builtin("iban", Privacy, P2, Redact, Side::Both),
    builtin("ipv4", Privacy, P3, Flag, Side::Both),
    builtin("ipv6", Privacy, P3, Flag, Side::Both),
    builtin("aws_access_key", Security, P1, Redact, Side::Both),
    builtin("github_token", Security, P1, Redact, Side::Both),
    builtin("slack_token", Security, P1, Redact, Side::Both),
    builtin("openai_key", Security, P1, Redact, Side::Both),
    builtin("anthropic_key", Security, P1, Redact, Side::Both),
    builtin("stripe_key", Security, P1, Redact, Side::Both),
    builtin("google_api_key", Security, P1, Redact, Side::Both),
    builtin("private_key", Security, P0, Redact, Side::Both),
    builtin("jwt", Security, P1, Redact, Side::Both),
    builtin("secret_assignment", Security, P2, Redact, Side::Both),
    builtin("injection", Security, P2, Block, Side::Request),
    builtin("prompt_leak", Security, P1, Block, Side::Response),
    builtin("canary", Security, P0, Block, Side::Response),
    builtin("sql", Security, P2, Flag, Side::Response),
    builtin("markdown_exfil", Security, P1, Redact, Side::Response),
    builtin("link", Reliability, P3, Flag, Side::Response),
    builtin("blocked_term", Safety, P2, Block, Side::Both),
    builtin("topic", Safety, P2, Flag, Side::Response),
    builtin("refusal", Reliability, P3, Flag, Side::Response),
    builtin("fact", Reliability, P2, Flag, Side::Response),
    builtin("format", Reliability, P2, Flag, Side::Response),
];

pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.name == name)
}

/// Where a detector runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Request,
    Response,
    Both,
}

impl Side {
    pub fn request(self) -> bool {
        matches!(self, Side::Request | Side::Both)
    }
    pub fn response(self) -> bool {
        matches!(self, Side::Response | Side::Both)
    }
}

/// An operator's override of one detector's defaults; absent fields keep them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DetectorRule {
    pub enabled: Option<bool>,
    pub action: Option<Action>,
    pub severity: Option<Severity>,
    pub category: Option<Category>,
    pub side: Option<Side>,
    /// How a redaction looks: `label` (`[EMAIL]`), `partial` (card keeps its
    /// last 4), or `pseudonym` (a stable per-stream token).
    pub redaction: Option<RedactStyle>,
}

/// Prompt-injection scoring: the sum of weighted signals against two thresholds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct InjectionPolicy {
    /// At or above this score a prompt is suspect: flagged (and, with the
    /// shed control, sent to verification).
    pub suspect_score: f32,
    /// At or above this score a prompt is blocked (the `injection` rule's action).
    pub block_score: f32,
    /// Extra phrases, scored like the built-in signals.
    pub phrases: Vec<WeightedPhrase>,
}

impl Default for InjectionPolicy {
    fn default() -> Self {
        InjectionPolicy {
            suspect_score: crate::injection::DEFAULT_SUSPECT,
            block_score: crate::injection::DEFAULT_BLOCK,
            phrases: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WeightedPhrase {
    pub phrase: String,
    #[serde(default = "one")]
    pub weight: f32,
}

fn one() -> f32 {
    1.0
}

/// A user-defined pattern (regex-lite), always behind a prefilter.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    pub name: String,
    pub pattern: String,
    /// Where a match can be (a literal, `{"any_of": [...]}` or
    /// `{"byte_class": "0-9"}`); derived from the pattern when absent.
    #[serde(default)]
    pub prefilter: Option<PrefilterSpec>,
    /// Longest match in bytes (default 256).
    #[serde(default)]
    pub max_span: Option<usize>,
    #[serde(default = "default_custom_category")]
    pub category: Category,
    #[serde(default = "default_custom_severity")]
    pub severity: Severity,
    #[serde(default = "default_custom_action")]
    pub action: Action,
    #[serde(default = "default_side")]
    pub side: Side,
}

fn default_custom_category() -> Category {
    Category::Privacy
}
fn default_custom_severity() -> Severity {
    Severity::P2
}
fn default_custom_action() -> Action {
    Action::Redact
}
fn default_side() -> Side {
    Side::Both
}

/// A configured fact: a pattern with one capture group and the value(s) it must have.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FactRule {
    pub name: String,
    pub pattern: String,
    pub expected: Vec<String>,
    /// A literal every match contains, when the pattern has none to derive.
    #[serde(default)]
    pub prefilter: Option<String>,
}

/// Link checks on responses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LinkPolicy {
    /// Hosts (and their subdomains) links may point to. Empty: every link is
    /// off the list for the `link` rule, and exfiltration checks still apply.
    pub allow_hosts: Vec<String>,
}

/// Per-route settings, matched by path prefix (longest prefix wins).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RoutePolicy {
    /// The route's name in scopes, counters and events.
    pub name: String,
    pub path_prefix: String,
    /// Detector overrides for this route only (same names as `detectors`).
    pub detectors: BTreeMap<String, DetectorRule>,
    /// Sensitive topics checked on this route's responses.
    pub topics: Vec<String>,
    /// Responses must be JSON (and match `json_schema` when given).
    pub require_json: bool,
    pub json_schema: Option<serde_json::Value>,
    /// `closed` for a high-risk route: when the filter cannot do its job
    /// (broken body, a response it cannot decode, overflow, shared state
    /// unavailable) it refuses with the safe response rather than passing.
    pub fail_mode: super::FailMode,
}

/// Streaming redaction limits.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RedactionPolicy {
    /// The longest match (bytes) the streaming scanner guarantees to see
    /// whole. Text is held back by about this much plus a step, so it is the
    /// latency price of redaction; longer matches (a 2 KiB JWT) can be missed
    /// in streams but not in buffered bodies.
    pub max_span_bytes: usize,
    /// Bytes committed per scan step (0: automatic, a quarter of the window).
    pub step_bytes: usize,
    /// Cap on held frames and text per stream before the filter flushes (or
    /// blocks, on fail-closed routes).
    pub max_held_bytes: usize,
}

impl Default for RedactionPolicy {
    fn default() -> Self {
        RedactionPolicy {
            max_span_bytes: 256,
            step_bytes: 0,
            max_held_bytes: 256 * 1024,
        }
    }
}

/// Body limits and content handling.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BodyPolicy {
    /// Largest request body buffered for inspection; larger ones answer 413.
    pub max_request_bytes: usize,
    /// Largest non-streamed response body buffered for inspection.
    pub max_response_bytes: usize,
    /// Remove `accept-encoding` from requests so upstreams answer uncompressed.
    pub strip_accept_encoding: bool,
    /// Bodies that are not a known provider format (other APIs behind the
    /// same route, plain text answers) are scanned as plain UTF-8 text
    /// instead of passing with an audit note. Streams of unknown events
    /// still pass (buffering them would stall the client).
    pub scan_unknown_as_text: bool,
}

impl Default for BodyPolicy {
    fn default() -> Self {
        BodyPolicy {
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            strip_accept_encoding: true,
            scan_unknown_as_text: false,
        }
    }
}
