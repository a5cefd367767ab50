//! The containment part of a policy: the pushed levels and scopes, and how
//! each rung of the ladder behaves (shedding, breaker, degrade, shadow),
//! plus the endpoints, anomaly thresholds, alerts and user-facing texts.

use super::PolicyError;
use crate::finding::{Category, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The ladder, weakest first. The level that applies to a request is the
/// highest of what the policy pushes, what the ledger tripped and what the
/// control endpoint set, over every scope the request belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize, Serialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Normal,
    /// Rate-limit the scope (429) and send suspect prompts to verification.
    Shed,
    /// Serve the fallback answer instead of the model.
    Breaker,
    /// Send the request to the fallback model (or route).
    Degrade,
    /// Serve the fallback; mirror the request to the shadow cluster for diagnosis.
    Shadow,
    /// Maintenance answer for the listed scopes.
    ScopedStop,
    /// Maintenance answer for all AI traffic.
    GlobalStop,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::Normal,
        Level::Shed,
        Level::Breaker,
        Level::Degrade,
        Level::Shadow,
        Level::ScopedStop,
        Level::GlobalStop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Shed => "shed",
            Level::Breaker => "breaker",
            Level::Degrade => "degrade",
            Level::Shadow => "shadow",
            Level::ScopedStop => "scoped_stop",
            Level::GlobalStop => "global_stop",
        }
    }

    /// The level's rung number (0 normal … 6 global_stop), for gauges.
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn from_rank(rank: u8) -> Level {
        Level::ALL
            .get(usize::from(rank))
            .copied()
            .unwrap_or(Level::Normal)
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// What a route does when the filter cannot do its job on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Pass the traffic on, with an audit event saying why it was not inspected.
    #[default]
    Open,
    /// Refuse with the safe response (high-risk domains: healthcare, finance).
    Closed,
}

/// A set of requests: every field given must match (fields left out match
/// anything). `{"tenant": "acme"}`, `{"route": "hiring", "region": "eu"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ScopeMatch {
    pub tenant: Option<String>,
    pub region: Option<String>,
    /// A route's `name` from `routes`, or the request path when no route matched.
    pub route: Option<String>,
    pub model: Option<String>,
}

impl ScopeMatch {
    pub fn is_global(&self) -> bool {
        self.tenant.is_none()
            && self.region.is_none()
            && self.route.is_none()
            && self.model.is_none()
    }

    /// A short label for events: `tenant=acme,route=hiring` or `global`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = [
            ("tenant", &self.tenant),
            ("region", &self.region),
            ("route", &self.route),
            ("model", &self.model),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
        if parts.is_empty() {
            "global".into()
        } else {
            parts.join(",")
        }
    }
}

/// A level pushed for a scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ScopedLevel {
    #[serde(flatten)]
    pub scope: ScopeMatch,
    pub level: Level,
}

/// The kinds of scope the ledger keeps counters and breakers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    Global,
    Route,
    Tenant,
    Region,
    Model,
}

impl ScopeKind {
    pub const ALL: [ScopeKind; 5] = [
        ScopeKind::Global,
        ScopeKind::Route,
        ScopeKind::Tenant,
        ScopeKind::Region,
        ScopeKind::Model,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScopeKind::Global => "global",
            ScopeKind::Route => "route",
            ScopeKind::Tenant => "tenant",
            ScopeKind::Region => "region",
            ScopeKind::Model => "model",
        }
    }
}

/// What counts as a failed exchange for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The upstream answered 5xx (504 from the router included).
    #[serde(rename = "upstream_5xx")]
    Upstream5xx,
    /// No answer in time (Envoy's 504 or a reset before any response).
    UpstreamTimeout,
    /// A response (or request) the filter blocked.
    Blocked,
    /// A response that failed the route's format check.
    Format,
    /// A thumbs-down or safety report through the feedback endpoint.
    NegativeFeedback,
}

/// An outgoing call target (an Envoy cluster).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CallTarget {
    /// The Envoy cluster name.
    pub cluster: String,
    #[serde(default = "default_call_path")]
    pub path: String,
    /// `:authority` of the call (defaults to the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_call_path() -> String {
    "/".into()
}

fn default_timeout_ms() -> u64 {
    5_000
}

impl CallTarget {
    pub fn authority(&self) -> &str {
        self.authority.as_deref().unwrap_or(&self.cluster)
    }
}

/// Rate limiting at the `shed` level: a token bucket per scope in shared data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ShedPolicy {
    /// Sustained requests per second allowed per scope while shedding.
    pub rate_per_sec: f64,
    /// Requests allowed in a burst above the rate.
    pub burst: f64,
    /// `retry-after` on the 429 answer.
    pub retry_after_secs: u64,
}

impl Default for ShedPolicy {
    fn default() -> Self {
        ShedPolicy {
            rate_per_sec: 10.0,
            burst: 20.0,
            retry_after_secs: 1,
        }
    }
}

/// The circuit breaker, per scope.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    pub enabled: bool,
    /// Opens when errors / requests in the current window exceed this.
    pub error_rate: f64,
    /// …and at least this many exchanges were counted in the window.
    pub min_requests: u64,
    /// Open for this long before half-open probes are let through.
    pub cooldown_secs: u64,
    /// Probes allowed through while half-open.
    pub probes: u32,
    /// Good probes needed to close (at most `probes`).
    pub close_after: u32,
    /// Which scope kinds get their own breaker.
    pub scopes: Vec<ScopeKind>,
    /// What counts as an error.
    pub errors: Vec<ErrorKind>,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            enabled: true,
            error_rate: 0.05,
            min_requests: 20,
            cooldown_secs: 30,
            probes: 3,
            close_after: 3,
            scopes: vec![
                ScopeKind::Global,
                ScopeKind::Route,
                ScopeKind::Tenant,
                ScopeKind::Model,
            ],
            errors: vec![ErrorKind::Upstream5xx, ErrorKind::UpstreamTimeout],
        }
    }
}

/// The `degrade` rung: a cheaper or safer model, and a header the Envoy
/// route can match to pick a fallback cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct DegradePolicy {
    /// Rewrites the request's `model` to this (unset: the model is kept).
    pub model: Option<String>,
    /// Request header set to `1` on degraded requests, at request-headers
    /// time so Envoy's route selection can see it. Responses carry
    /// `x-rheostat-degraded` either way.
    pub header: Option<String>,
    /// Adds `x-rheostat-notice` with `texts.degraded_notice` to degraded responses.
    pub notice: bool,
}

impl Default for DegradePolicy {
    fn default() -> Self {
        DegradePolicy {
            model: None,
            header: Some("x-rheostat-degraded".into()),
            notice: true,
        }
    }
}

/// Behavioural anomaly detection: EWMA baselines per scope and signal.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyPolicy {
    pub enabled: bool,
    /// A window is anomalous when a signal exceeds `factor` × its baseline.
    pub factor: f64,
    /// …and the window counted at least this many exchanges.
    pub min_requests: u64,
    /// Weight of the newest window in the baseline.
    pub alpha: f64,
    /// Windows observed before a baseline is trusted.
    pub warmup_windows: u32,
    /// Rates below this are treated as this when comparing (so a baseline of
    /// 0 does not turn one refusal into an anomaly).
    pub floor_rate: f64,
    /// Which scope kinds get baselines.
    pub scopes: Vec<ScopeKind>,
    /// The level an anomaly in a signal trips for its scope, if any.
    #[cfg_attr(feature = "schema", schemars(schema_with = "signal_map_schema"))]
    pub trip: BTreeMap<Signal, Level>,
    /// How many windows a tripped level holds after the last anomaly.
    pub hold_windows: u32,
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        AnomalyPolicy {
            enabled: true,
            factor: 3.0,
            min_requests: 20,
            alpha: 0.3,
            warmup_windows: 3,
            floor_rate: 0.02,
            scopes: vec![ScopeKind::Global, ScopeKind::Route, ScopeKind::Model],
            trip: BTreeMap::new(),
            hold_windows: 2,
        }
    }
}

/// `trip`'s keys are signals: schemars names its keys only for enums
/// without variant docs, so the schema says so itself.
#[cfg(feature = "schema")]
fn signal_map_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": generator.subschema_for::<Signal>(),
        "additionalProperties": generator.subschema_for::<Level>(),
    })
}

/// The behavioural signals the ledger keeps per scope and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Share of responses that refused.
    Refusal,
    /// Share of exchanges with an upstream error.
    UpstreamError,
    /// Share of exchanges with a finding of each category.
    Security,
    Safety,
    Reliability,
    Privacy,
    /// Negative feedback per exchange.
    NegativeFeedback,
    /// Mean milliseconds per exchange.
    Latency,
    /// Mean output tokens per response (as the provider reports usage).
    Tokens,
}

impl Signal {
    pub const ALL: [Signal; 9] = [
        Signal::Refusal,
        Signal::UpstreamError,
        Signal::Security,
        Signal::Safety,
        Signal::Reliability,
        Signal::Privacy,
        Signal::NegativeFeedback,
        Signal::Latency,
        Signal::Tokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Refusal => "refusal",
            Signal::UpstreamError => "upstream_error",
            Signal::Security => "security",
            Signal::Safety => "safety",
            Signal::Reliability => "reliability",
            Signal::Privacy => "privacy",
            Signal::NegativeFeedback => "negative_feedback",
            Signal::Latency => "latency",
            Signal::Tokens => "tokens",
        }
    }

    pub fn of_category(category: Category) -> Signal {
        match category {
            Category::Security => Signal::Security,
            Category::Safety => Signal::Safety,
            Category::Reliability => Signal::Reliability,
            Category::Privacy => Signal::Privacy,
        }
    }

    /// The finding category an anomaly in this signal is reported under.
    pub fn category(self) -> Category {
        match self {
            Signal::Security => Category::Security,
            Signal::Safety => Category::Safety,
            Signal::Privacy => Category::Privacy,
            _ => Category::Reliability,
        }
    }
}

/// The feedback endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackPolicy {
    pub enabled: bool,
    pub max_body_bytes: usize,
    /// Feedback accepted per client per window; the rest gets 429.
    pub per_client_per_window: u64,
    /// The request header naming the client (set by a trusted filter).
    /// Without it, the tenant header; without that, one shared bucket.
    pub client_header: Option<String>,
}

impl Default for FeedbackPolicy {
    fn default() -> Self {
        FeedbackPolicy {
            enabled: true,
            max_body_bytes: 2_048,
            per_client_per_window: 20,
            client_header: None,
        }
    }
}

/// User-facing texts. `{retry_after}` is replaced in `rate_limited`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Texts {
    pub maintenance: String,
    pub fallback: String,
    pub holding: String,
    pub degraded_notice: String,
    pub rate_limited: String,
}

impl Default for Texts {
    fn default() -> Self {
        Texts {
            maintenance: "The AI assistant is paused for maintenance. Please try again later.".into(),
            fallback: "The AI assistant is temporarily unavailable. Your request was not processed; please try again in a few minutes.".into(),
            holding: "Your request is being reviewed and will be answered shortly.".into(),
            degraded_notice: "Answers are temporarily served by a fallback model.".into(),
            rate_limited: "Too many requests. Retry after {retry_after} seconds.".into(),
        }
    }
}

/// The containment ladder.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ControlsPolicy {
    /// The pushed global level (`scoped_stop` is for scopes; use `global_stop`).
    pub level: Level,
    /// Pushed levels per scope.
    pub scopes: Vec<ScopedLevel>,
    pub shed: ShedPolicy,
    /// Where suspect prompts go while shedding (none: they are only flagged).
    pub verification: Option<CallTarget>,
    pub breaker: BreakerPolicy,
    pub degrade: DegradePolicy,
    /// Where requests are mirrored at the `shadow` level.
    pub shadow: Option<CallTarget>,
    pub anomaly: AnomalyPolicy,
    /// Bearer token for `POST /.rheostat/control` and `GET /.rheostat/status`;
    /// both endpoints answer 404 without one.
    pub token: Option<String>,
    pub feedback: FeedbackPolicy,
    /// Distinct values tracked per scope kind (tenants, routes, …). Shared
    /// data has no delete, so counters must be bounded: values beyond the
    /// cap share one `(other)` scope.
    pub max_scopes_per_kind: u32,
    pub texts: Texts,
}

impl Default for ControlsPolicy {
    fn default() -> Self {
        ControlsPolicy {
            level: Level::Normal,
            scopes: Vec::new(),
            shed: ShedPolicy::default(),
            verification: None,
            breaker: BreakerPolicy::default(),
            degrade: DegradePolicy::default(),
            shadow: None,
            anomaly: AnomalyPolicy::default(),
            token: None,
            feedback: FeedbackPolicy::default(),
            max_scopes_per_kind: 32,
            texts: Texts::default(),
        }
    }
}

/// Where alerts of a severity go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRoute {
    /// This route takes alerts of this severity or worse (P0 is worst).
    pub min_severity: Severity,
    #[serde(flatten)]
    pub target: CallTarget,
}

/// What on-call needs per category: how fast, and where the runbook is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct CategoryGuide {
    pub runbook: Option<String>,
    /// The response-time target, e.g. `15m`.
    pub response_time: Option<String>,
}

/// Alerting: where to send, when to repeat, what to say.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AlertPolicy {
    /// Routes by severity; an alert goes to the first route whose
    /// `min_severity` it meets. No routes: alerts are only logged.
    pub routes: Vec<AlertRoute>,
    /// Findings of this severity or worse raise an alert.
    pub finding_severity: Severity,
    /// One alert per scope and category per this many seconds.
    pub dedup_secs: u64,
    pub categories: BTreeMap<Category, CategoryGuide>,
    /// The alert body, with `{{field}}` placeholders filled with JSON-escaped
    /// values (severity, category, scope, reason, count, sample, runbook,
    /// response_time, containment, policy). Unset: a built-in JSON object.
    pub template: Option<String>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            routes: Vec::new(),
            finding_severity: Severity::P0,
            dedup_secs: 300,
            categories: BTreeMap::new(),
            template: None,
        }
    }
}

/// The placeholders an alert template may use.
pub const ALERT_FIELDS: &[&str] = &[
    "severity",
    "category",
    "scope",
    "reason",
    "count",
    "sample",
    "runbook",
    "response_time",
    "containment",
    "policy",
];

impl ControlsPolicy {
    pub(super) fn validate(&self) -> Result<(), PolicyError> {
        let err = |path: &str, msg: String| Err(PolicyError::new(format!("controls.{path}"), msg));
        if self.level == Level::ScopedStop {
            return err(
                "level",
                "scoped_stop applies to scopes; list them in controls.scopes, or use global_stop"
                    .into(),
            );
        }
        for (i, s) in self.scopes.iter().enumerate() {
            if s.scope.is_global() {
                return err(
                    &format!("scopes[{i}]"),
                    "names no tenant, region, route or model (use controls.level for everyone)"
                        .into(),
                );
            }
            if s.level == Level::GlobalStop {
                return err(
                    &format!("scopes[{i}].level"),
                    "global_stop is for controls.level; a scope stops with scoped_stop".into(),
                );
            }
        }
        let shed = &self.shed;
        if !(shed.rate_per_sec > 0.0 && shed.rate_per_sec.is_finite()) {
            return err("shed.rate_per_sec", "must be a positive number".into());
        }
        if !(shed.burst >= 1.0 && shed.burst.is_finite()) {
            return err("shed.burst", "must be at least 1".into());
        }
        let b = &self.breaker;
        if !(b.error_rate > 0.0 && b.error_rate <= 1.0) {
            return err(
                "breaker.error_rate",
                format!("must be in (0, 1] (got {})", b.error_rate),
            );
        }
        if b.probes == 0 {
            return err("breaker.probes", "must be at least 1".into());
        }
        if b.close_after == 0 || b.close_after > b.probes {
            return err(
                "breaker.close_after",
                format!("must be between 1 and breaker.probes ({})", b.probes),
            );
        }
        if b.cooldown_secs == 0 {
            return err("breaker.cooldown_secs", "must be at least 1".into());
        }
        let a = &self.anomaly;
        if !(a.factor > 1.0 && a.factor.is_finite()) {
            return err(
                "anomaly.factor",
                format!("must be greater than 1 (got {})", a.factor),
            );
        }
        if !(a.alpha > 0.0 && a.alpha <= 1.0) {
            return err(
                "anomaly.alpha",
                format!("must be in (0, 1] (got {})", a.alpha),
            );
        }
        if !(a.floor_rate >= 0.0 && a.floor_rate.is_finite()) {
            return err("anomaly.floor_rate", "must be zero or positive".into());
        }
        for (signal, level) in &a.trip {
            if matches!(level, Level::GlobalStop | Level::ScopedStop) {
                return err(
                    &format!("anomaly.trip.{}", signal.name()),
                    "an anomaly may trip shed, breaker, degrade or shadow; stops are for operators"
                        .into(),
                );
            }
        }
        if let Some(token) = &self.token {
            if token.len() < 16 {
                return err("token", "must be at least 16 characters".into());
            }
        }
        if let Some(header) = &self.degrade.header {
            if !super::is_header_name(header) {
                return err(
                    "degrade.header",
                    format!("{header:?} is not a lower-case HTTP header name"),
                );
            }
        }
        if let Some(header) = &self.feedback.client_header {
            if !super::is_header_name(header) {
                return err(
                    "feedback.client_header",
                    format!("{header:?} is not a lower-case HTTP header name"),
                );
            }
        }
        if !(1..=1024).contains(&self.max_scopes_per_kind) {
            return err("max_scopes_per_kind", "must be between 1 and 1024".into());
        }
        for (name, target) in [
            ("verification", &self.verification),
            ("shadow", &self.shadow),
        ] {
            if let Some(t) = target {
                t.validate()
                    .map_err(|e| e.within(&format!("controls.{name}")))?;
            }
        }
        if self.shadow.is_none() && self.uses(Level::Shadow) {
            return err(
                "shadow",
                "the shadow level is used but no shadow cluster is configured".into(),
            );
        }
        Ok(())
    }

    /// Whether the policy pushes `level` anywhere.
    fn uses(&self, level: Level) -> bool {
        self.level == level
            || self.scopes.iter().any(|s| s.level == level)
            || self.anomaly.trip.values().any(|l| *l == level)
    }
}

impl CallTarget {
    fn validate(&self) -> Result<(), PolicyError> {
        if self.cluster.is_empty() {
            return Err(PolicyError::new("cluster", "must name an Envoy cluster"));
        }
        if !self.path.starts_with('/') {
            return Err(PolicyError::new(
                "path",
                format!("must start with '/' (got {:?})", self.path),
            ));
        }
        Ok(())
    }
}

impl AlertPolicy {
    pub(super) fn validate(&self) -> Result<(), PolicyError> {
        for (i, route) in self.routes.iter().enumerate() {
            route
                .target
                .validate()
                .map_err(|e| e.within(&format!("alerts.routes[{i}]")))?;
        }
        if self.dedup_secs == 0 {
            return Err(PolicyError::new("alerts.dedup_secs", "must be at least 1"));
        }
        if let Some(template) = &self.template {
            let rendered = render_template(template, |_| "x".to_string());
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&rendered) {
                return Err(PolicyError::new(
                    "alerts.template",
                    format!("does not render to JSON ({e})"),
                ));
            }
            let mut rest = template.as_str();
            while let Some(open) = rest.find("{{") {
                let after = &rest[open + 2..];
                let Some(close) = after.find("}}") else { break };
                let field = after[..close].trim();
                if !ALERT_FIELDS.contains(&field) {
                    return Err(PolicyError::new(
                        "alerts.template",
                        format!(
                            "unknown placeholder {{{{{field}}}}} (expected one of: {})",
                            ALERT_FIELDS.join(", ")
                        ),
                    ));
                }
                rest = &after[close + 2..];
            }
        }
        Ok(())
    }

    /// The route for an alert of `severity`.
    pub fn route_for(&self, severity: Severity) -> Option<&AlertRoute> {
        self.routes.iter().find(|r| severity <= r.min_severity)
    }
}

/// Fills `{{field}}` placeholders with `value(field)`, JSON-escaped without
/// quotes (templates put the quotes where they want strings).
pub fn render_template(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let quoted = serde_json::to_string(&value(after[..close].trim())).unwrap_or_default();
        out.push_str(quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or(""));
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    fn err(json: &str) -> String {
        Policy::from_json(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn the_default_controls_are_normal_with_a_five_percent_breaker() {
        let p = Policy::from_json(b"{}").unwrap();
        assert_eq!(p.controls.level, super::Level::Normal);
        assert_eq!(p.controls.breaker.error_rate, 0.05);
        assert!(p.controls.token.is_none());
    }

    #[test]
    fn a_breaker_rate_out_of_range_names_its_path() {
        assert_eq!(
            err(r#"{"controls": {"breaker": {"error_rate": 0}}}"#),
            "controls.breaker.error_rate: must be in (0, 1] (got 0)"
        );
    }

    #[test]
    fn an_unknown_level_names_the_choices() {
        let e = err(r#"{"controls": {"level": "panic"}}"#);
        assert!(
            e.starts_with("controls.level: unknown variant `panic`"),
            "{e}"
        );
        assert!(e.contains("global_stop"), "{e}");
    }

    #[test]
    fn scoped_levels_flatten_their_scope() {
        let p = Policy::from_json(
            br#"{"controls": {"scopes": [{"tenant": "acme", "level": "scoped_stop"}]}}"#,
        )
        .unwrap();
        assert_eq!(p.controls.scopes[0].scope.tenant.as_deref(), Some("acme"));
        assert_eq!(p.controls.scopes[0].scope.label(), "tenant=acme");
    }

    #[test]
    fn a_scope_without_a_selector_or_with_global_stop_is_rejected() {
        assert!(err(r#"{"controls": {"scopes": [{"level": "shed"}]}}"#)
            .starts_with("controls.scopes[0]: names no tenant"));
        assert!(
            err(r#"{"controls": {"scopes": [{"route": "x", "level": "global_stop"}]}}"#)
                .starts_with("controls.scopes[0].level: global_stop is for controls.level")
        );
        assert!(err(r#"{"controls": {"level": "scoped_stop"}}"#).starts_with("controls.level:"));
    }

    #[test]
    fn a_short_token_and_a_shadow_level_without_a_cluster_are_rejected() {
        assert_eq!(
            err(r#"{"controls": {"token": "abc"}}"#),
            "controls.token: must be at least 16 characters"
        );
        assert!(err(r#"{"controls": {"level": "shadow"}}"#).starts_with("controls.shadow:"));
    }

    #[test]
    fn alert_templates_must_render_to_json_and_use_known_fields() {
        assert!(Policy::from_json(
            br#"{"alerts": {"template": "{\"text\": \"{{severity}} in {{scope}}\"}"}}"#
        )
        .is_ok());
        assert!(
            err(r#"{"alerts": {"template": "{\"t\": \"{{sevrity}}\"}"}}"#)
                .starts_with("alerts.template: unknown placeholder {{sevrity}}")
        );
        assert!(err(r#"{"alerts": {"template": "not json {{scope}}"}}"#)
            .starts_with("alerts.template: does not render to JSON"));
    }

    #[test]
    fn templates_escape_values_for_json() {
        let out = super::render_template("{\"t\": \"{{scope}}\"}", |_| "a\"b\nc".into());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["t"], "a\"b\nc");
    }

    #[test]
    fn alert_routes_pick_the_first_route_the_severity_meets() {
        let p = Policy::from_json(
            br#"{"alerts": {"routes": [
                {"min_severity": "P1", "cluster": "pager", "path": "/page"},
                {"min_severity": "P3", "cluster": "tickets"}]}}"#,
        )
        .unwrap();
        use crate::finding::Severity::*;
        assert_eq!(p.alerts.route_for(P0).unwrap().target.cluster, "pager");
        assert_eq!(p.alerts.route_for(P2).unwrap().target.cluster, "tickets");
    }
}
