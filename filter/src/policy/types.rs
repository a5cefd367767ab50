//! The policy's shape, as operators write it. Every field has a default so
//! `{}` is a working policy; unknown fields are rejected.

use super::controls::*;
use super::detection::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole configuration of one filter instance.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// The policy's JSON Schema (docs/policy.schema.json), for editors;
    /// the filter ignores it.
    #[serde(rename = "$schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// A name for logs and audit events.
    pub name: String,
    /// Length of the ledger's fixed counting windows. Error rates and
    /// thresholds are judged per window, so this is the reaction time scale.
    pub window_secs: u64,
    /// Period of the housekeeping tick (one worker per period does the work).
    pub tick_ms: u64,
    /// Where the subject of a request (tenant, region, route) comes from.
    pub subject: SubjectSource,
    /// Overrides of built-in detectors by name (`email`, `card`, `injection`, …).
    pub detectors: BTreeMap<String, DetectorRule>,
    pub injection: InjectionPolicy,
    /// Canary tokens planted in system prompts; seeing one in a response is a leak.
    pub canaries: Vec<String>,
    /// Named lists of blocked terms (word-boundary aware, case-insensitive).
    pub blocked_terms: BTreeMap<String, Vec<String>>,
    pub custom_patterns: Vec<CustomPattern>,
    pub facts: Vec<FactRule>,
    pub links: LinkPolicy,
    /// Per-route overrides, matched by the longest path prefix.
    pub routes: Vec<RoutePolicy>,
    pub redaction: RedactionPolicy,
    pub body: BodyPolicy,
    /// The containment ladder: levels, scopes, breaker, shedding, endpoints.
    pub controls: ControlsPolicy,
    pub alerts: AlertPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            schema: None,
            name: "default".into(),
            window_secs: 60,
            tick_ms: 1000,
            subject: SubjectSource::default(),
            detectors: BTreeMap::new(),
            injection: InjectionPolicy::default(),
            canaries: Vec::new(),
            blocked_terms: BTreeMap::new(),
            custom_patterns: Vec::new(),
            facts: Vec::new(),
            links: LinkPolicy::default(),
            routes: Vec::new(),
            redaction: RedactionPolicy::default(),
            body: BodyPolicy::default(),
            controls: ControlsPolicy::default(),
            alerts: AlertPolicy::default(),
        }
    }
}

#[cfg(feature = "schema")]
impl Policy {
    /// The policy's JSON Schema (draft 2020-12), derived from these types
    /// and their serde attributes; `rheostat schema` prints it.
    pub fn json_schema() -> serde_json::Value {
        schemars::schema_for!(Policy).to_value()
    }
}

/// Which request headers name the tenant, region and route. The route falls
/// back to the request path when no header is configured or present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SubjectSource {
    pub tenant_header: Option<String>,
    pub region_header: Option<String>,
    pub route_header: Option<String>,
}

impl Default for SubjectSource {
    fn default() -> Self {
        SubjectSource {
            tenant_header: Some("x-tenant-id".into()),
            region_header: Some("x-region".into()),
            route_header: None,
        }
    }
}
