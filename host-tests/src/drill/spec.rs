//! The drill file format (README, "Drills"): what traffic to send over
//! virtual time, what operators do and when, and what must come of it.
//!
//! Parsed with `serde_path_to_error` and `deny_unknown_fields`, so a typo is
//! an error naming its JSON path (`phases[1].mix.pii: unknown template`), the
//! way `rheostat check` reports a policy.

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One drill file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSpec {
    /// One line: the playbook scenario.
    pub title: String,
    /// The playbook category (`privacy`, `security`, `reliability`, `safety`).
    pub category: String,
    /// What the drill stages, for the report.
    #[serde(default)]
    pub description: String,
    /// The cause the traffic simulates, written into the review's root cause.
    #[serde(default)]
    pub root_cause: String,
    /// The policy in force at the start: a path relative to the drill file, or inline.
    pub policy: Value,
    /// Worker VMs sharing one store; requests go round-robin.
    #[serde(default = "one")]
    pub workers: usize,
    /// Seeds every choice of template, text, tenant, model and region.
    #[serde(default)]
    pub seed: u64,
    /// How often the runner samples levels per scope through `/.rheostat/status`.
    #[serde(default = "five")]
    pub sample_secs: u64,
    /// Exchange templates by name.
    pub templates: BTreeMap<String, Template>,
    /// Traffic, one phase after another from t = 0.
    pub phases: Vec<Phase>,
    /// Operator actions at given times.
    #[serde(default)]
    pub actions: Vec<Action>,
    pub expect: Expect,
}

fn one() -> usize {
    1
}
fn five() -> u64 {
    5
}

/// A kind of exchange. Each request picks one text from each list with the
/// drill's seeded generator; `{first}`, `{last}`, `{email}`, `{n}`,
/// `{order}`, `{tenant}`, `{model}` in texts are filled the same way.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(default = "default_path")]
    pub path: String,
    /// The client asks for SSE (`stream: true`); the upstream answers in frames.
    #[serde(default)]
    pub stream: bool,
    pub prompts: Vec<String>,
    /// What the model answers (empty: the upstream answers with an error body).
    #[serde(default)]
    pub answers: Vec<String>,
    /// Answers used instead when the request reaches the upstream with this
    /// `model` (after a degrade rewrite): how a fallback model behaves.
    #[serde(default)]
    pub answers_by_model: BTreeMap<String, Vec<String>>,
    /// A system prompt sent with each request.
    #[serde(default)]
    pub system: Option<String>,
    /// A raw request body instead of a generated one (e.g. a malformed one).
    #[serde(default)]
    pub request_body_text: Option<String>,
    #[serde(default = "default_tenants")]
    pub tenants: Vec<String>,
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    #[serde(default = "default_models")]
    pub models: Vec<String>,
    /// The upstream's status.
    #[serde(default = "default_status")]
    pub status: u16,
    /// This template is the incident: its answers hurt users when they reach them.
    #[serde(default)]
    pub harmful: bool,
    /// For harmful templates: the answer reached the user only if the body
    /// the client got still contains one of these (case-insensitive), e.g.
    /// the `@` of an email that redaction would have removed. Empty: any
    /// upstream answer that reached the client counts.
    #[serde(default)]
    pub harm: Vec<String>,
    /// Users post feedback on a share of these answers.
    #[serde(default)]
    pub feedback: Option<TemplateFeedback>,
}

fn default_path() -> String {
    "/v1/chat/completions".into()
}
fn default_tenants() -> Vec<String> {
    vec!["acme".into()]
}
fn default_regions() -> Vec<String> {
    vec!["eu".into()]
}
fn default_models() -> Vec<String> {
    vec!["gpt-4o".into()]
}
fn default_status() -> u16 {
    200
}

/// Feedback users post on answers of a template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFeedback {
    /// `thumbs_down`, `thumbs_up` or `safety_report`.
    pub verdict: String,
    /// Share of answers (0–1) that get feedback.
    pub share: f64,
}

/// A stretch of traffic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub duration_secs: u64,
    /// Requests per virtual minute, evenly spaced.
    pub rate_per_min: f64,
    /// Template name → weight.
    pub mix: BTreeMap<String, f64>,
}

/// What an operator does at `at_secs`: exactly one of `push`, `control`, `feedback`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub at_secs: u64,
    /// Why, for the timeline.
    #[serde(default)]
    pub note: String,
    /// A policy push (path relative to the drill file, or inline).
    #[serde(default)]
    pub push: Option<Value>,
    /// A `POST /.rheostat/control` body, sent with the policy's bearer token.
    #[serde(default)]
    pub control: Option<Value>,
    /// Feedback on recent answers of a template.
    #[serde(default)]
    pub feedback: Option<ActionFeedback>,
}

/// Feedback an operator (or support) files on recent answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFeedback {
    pub template: String,
    pub verdict: String,
    /// How many of the template's most recent answers.
    #[serde(default = "one")]
    pub last: usize,
    #[serde(default)]
    pub category: Option<String>,
}

/// What must come of the drill. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub detection: Option<DetectionExpect>,
    /// Levels each scope must reach (at least), optionally by a time.
    #[serde(default)]
    pub levels: Vec<LevelExpect>,
    /// Levels a scope must never reach.
    #[serde(default)]
    pub never: Vec<LevelExpect>,
    #[serde(default)]
    pub alerts: Vec<AlertExpect>,
    /// At most this many harmful answers reached users.
    #[serde(default)]
    pub max_harmful_reached: Option<u64>,
    /// Scopes back at (or under) a level from `by_secs` to the end.
    #[serde(default)]
    pub recovery: Vec<LevelExpect>,
    /// Shares of legitimate requests that got a model answer.
    #[serde(default)]
    pub served: Vec<ServedExpect>,
    /// Templates none of whose requests may reach the upstream.
    #[serde(default)]
    pub never_forwarded: Vec<String>,
}

/// The first finding on a harmful request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionExpect {
    /// Only findings of this detector count (default: any).
    #[serde(default)]
    pub detector: Option<String>,
    /// Detected on one of the first N harmful requests.
    #[serde(default)]
    pub within_requests: Option<u64>,
    /// Detected within N seconds of the first harmful request.
    #[serde(default)]
    pub within_secs: Option<u64>,
    /// The detecting finding's severity (`P0`…`P3`).
    #[serde(default)]
    pub severity: Option<String>,
}

/// A scope and a level: `{"scope": "route=hiring", "level": "scoped_stop", "by_secs": 300}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelExpect {
    /// A scope label as the filter writes it: `global`, `route=hiring`, `tenant=acme`, `model=gpt-4o`.
    pub scope: String,
    #[serde(default = "normal")]
    pub level: String,
    #[serde(default)]
    pub by_secs: Option<u64>,
}

fn normal() -> String {
    "normal".into()
}

/// An alert that must have been raised (every given field must match).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertExpect {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub by_secs: Option<u64>,
}

/// Legitimate traffic still served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedExpect {
    pub templates: Vec<String>,
    /// Share (0–1) of their requests that got a model answer (forwarded,
    /// not answered locally, status < 400, and no harm in it).
    pub min_share: f64,
    #[serde(default)]
    pub from_secs: Option<u64>,
    #[serde(default)]
    pub until_secs: Option<u64>,
}

/// The levels, as `rheostat` names them.
pub const LEVELS: [&str; 7] = [
    "normal",
    "shed",
    "breaker",
    "degrade",
    "shadow",
    "scoped_stop",
    "global_stop",
];

/// A level's rung (0 normal … 6 global_stop).
pub fn rank(level: &str) -> Option<u8> {
    LEVELS.iter().position(|l| *l == level).map(|i| i as u8)
}

const VERDICTS: [&str; 3] = ["thumbs_down", "thumbs_up", "safety_report"];
const SEVERITIES: [&str; 4] = ["P0", "P1", "P2", "P3"];

/// Reads and validates a drill file; errors name the file and the JSON path.
pub fn read(path: &Path) -> Result<DrillSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read drill {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid drill {}", path.display()))
}

/// Parses and validates drill JSON.
pub fn parse(text: &str) -> Result<DrillSpec> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let spec: DrillSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // As the policy parser does: serde_json's " at line L column C" only
        // where there is no path to point at (syntax errors).
        if path.is_empty() || path == "." {
            return anyhow::anyhow!("{message}");
        }
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        anyhow::anyhow!("{path}: {message}")
    })?;
    spec.validate()?;
    Ok(spec)
}

impl DrillSpec {
    fn validate(&self) -> Result<()> {
        if !(1..=16).contains(&self.workers) {
            bail!("workers: must be between 1 and 16 (got {})", self.workers);
        }
        if self.sample_secs == 0 {
            bail!("sample_secs: must be at least 1");
        }
        if !matches!(
            self.category.as_str(),
            "privacy" | "security" | "reliability" | "safety"
        ) {
            bail!(
                "category: must be privacy, security, reliability or safety (got {:?})",
                self.category
            );
        }
        if !(self.policy.is_string() || self.policy.is_object()) {
            bail!("policy: must be a path or a policy object");
        }
        if self.templates.is_empty() {
            bail!("templates: at least one template is needed");
        }
        for (name, t) in &self.templates {
            let at = |field: &str| format!("templates.{name}.{field}");
            if t.prompts.is_empty() {
                bail!("{}: at least one prompt is needed", at("prompts"));
            }
            for (field, list) in [
                ("tenants", &t.tenants),
                ("regions", &t.regions),
                ("models", &t.models),
            ] {
                if list.is_empty() {
                    bail!("{}: must not be empty", at(field));
                }
            }
            if !t.path.starts_with('/') {
                bail!("{}: must start with '/' (got {:?})", at("path"), t.path);
            }
            if !(100..=599).contains(&t.status) {
                bail!(
                    "{}: must be an HTTP status (got {})",
                    at("status"),
                    t.status
                );
            }
            if let Some(f) = &t.feedback {
                check_verdict(&f.verdict).with_context(|| at("feedback.verdict"))?;
                if !(0.0..=1.0).contains(&f.share) {
                    bail!(
                        "{}: must be in [0, 1] (got {})",
                        at("feedback.share"),
                        f.share
                    );
                }
            }
        }
        if self.phases.is_empty() {
            bail!("phases: at least one phase is needed");
        }
        for (i, p) in self.phases.iter().enumerate() {
            if !(p.rate_per_min > 0.0 && p.rate_per_min <= 60_000.0) {
                bail!(
                    "phases[{i}].rate_per_min: must be in (0, 60000] (got {})",
                    p.rate_per_min
                );
            }
            if p.duration_secs == 0 {
                bail!("phases[{i}].duration_secs: must be at least 1");
            }
            if p.mix.is_empty() {
                bail!("phases[{i}].mix: at least one template is needed");
            }
            for (name, weight) in &p.mix {
                if !self.templates.contains_key(name) {
                    bail!(
                        "phases[{i}].mix.{name}: unknown template (templates: {})",
                        self.template_names()
                    );
                }
                if !(*weight >= 0.0 && weight.is_finite()) {
                    bail!("phases[{i}].mix.{name}: weight must be zero or positive");
                }
            }
            if p.mix.values().sum::<f64>() <= 0.0 {
                bail!("phases[{i}].mix: weights sum to zero");
            }
        }
        for (i, a) in self.actions.iter().enumerate() {
            let given = [a.push.is_some(), a.control.is_some(), a.feedback.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                bail!("actions[{i}]: give exactly one of push, control, feedback");
            }
            if let Some(p) = &a.push {
                if !(p.is_string() || p.is_object()) {
                    bail!("actions[{i}].push: must be a path or a policy object");
                }
            }
            if let Some(c) = &a.control {
                if !c.is_object() {
                    bail!("actions[{i}].control: must be a control request object");
                }
            }
            if let Some(f) = &a.feedback {
                if !self.templates.contains_key(&f.template) {
                    bail!(
                        "actions[{i}].feedback.template: unknown template {:?}",
                        f.template
                    );
                }
                check_verdict(&f.verdict)
                    .with_context(|| format!("actions[{i}].feedback.verdict"))?;
            }
        }
        self.expect.validate(self)
    }

    fn template_names(&self) -> String {
        self.templates
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Seconds of traffic in all phases.
    pub fn duration_secs(&self) -> u64 {
        self.phases.iter().map(|p| p.duration_secs).sum()
    }
}

fn check_verdict(v: &str) -> Result<()> {
    if !VERDICTS.contains(&v) {
        bail!(
            "unknown verdict {v:?} (expected one of: {})",
            VERDICTS.join(", ")
        );
    }
    Ok(())
}

impl Expect {
    fn validate(&self, spec: &DrillSpec) -> Result<()> {
        if let Some(d) = &self.detection {
            if let Some(s) = &d.severity {
                if !SEVERITIES.contains(&s.as_str()) {
                    bail!("expect.detection.severity: must be P0, P1, P2 or P3 (got {s:?})");
                }
            }
            if !spec.templates.values().any(|t| t.harmful) {
                bail!(
                    "expect.detection: no template is marked harmful, so nothing can be detected"
                );
            }
        }
        for (field, list) in [
            ("levels", &self.levels),
            ("never", &self.never),
            ("recovery", &self.recovery),
        ] {
            for (i, l) in list.iter().enumerate() {
                if rank(&l.level).is_none() {
                    bail!(
                        "expect.{field}[{i}].level: unknown level {:?} (expected one of: {})",
                        l.level,
                        LEVELS.join(", ")
                    );
                }
                if l.scope != "global" && !l.scope.contains('=') {
                    bail!(
                        "expect.{field}[{i}].scope: {:?} is not `global` or `kind=value`",
                        l.scope
                    );
                }
            }
        }
        for (i, a) in self.alerts.iter().enumerate() {
            if let Some(s) = &a.severity {
                if !SEVERITIES.contains(&s.as_str()) {
                    bail!("expect.alerts[{i}].severity: must be P0, P1, P2 or P3 (got {s:?})");
                }
            }
        }
        for (i, s) in self.served.iter().enumerate() {
            if !(0.0..=1.0).contains(&s.min_share) {
                bail!(
                    "expect.served[{i}].min_share: must be in [0, 1] (got {})",
                    s.min_share
                );
            }
            for t in &s.templates {
                if !spec.templates.contains_key(t) {
                    bail!("expect.served[{i}].templates: unknown template {t:?}");
                }
            }
        }
        for t in &self.never_forwarded {
            if !spec.templates.contains_key(t) {
                bail!("expect.never_forwarded: unknown template {t:?}");
            }
        }
        Ok(())
    }
}

/// A policy given as a path (relative to `base`) or inline, as bytes.
pub fn policy_bytes(policy: &Value, base: &Path) -> Result<Vec<u8>> {
    match policy {
        Value::String(path) => {
            let path: PathBuf = base.join(path);
            std::fs::read(&path).with_context(|| format!("cannot read policy {}", path.display()))
        }
        Value::Object(_) => {
            serde_json::to_vec(policy).context("cannot serialise the inline policy")
        }
        _ => bail!("policy must be a path or a policy object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        serde_json::json!({
            "title": "t", "category": "privacy", "policy": {},
            "templates": {"normal": {"prompts": ["hi"], "answers": ["hello"]}},
            "phases": [{"name": "p", "duration_secs": 10, "rate_per_min": 60, "mix": {"normal": 1}}],
            "expect": {}
        })
    }

    fn err(v: Value) -> String {
        format!("{:#}", parse(&v.to_string()).unwrap_err())
    }

    #[test]
    fn a_minimal_drill_parses() {
        let spec = parse(&minimal().to_string()).unwrap();
        assert_eq!(spec.workers, 1);
        assert_eq!(spec.templates["normal"].tenants, ["acme"]);
    }

    #[test]
    fn unknown_fields_and_bad_values_name_their_json_path() {
        let mut v = minimal();
        v["phases"][0]["rate"] = serde_json::json!(5);
        assert!(err(v).starts_with("phases[0].rate: unknown field `rate`"));
        let mut v = minimal();
        v["phases"][0]["mix"] = serde_json::json!({"pii": 1});
        assert!(err(v).starts_with("phases[0].mix.pii: unknown template"));
        let mut v = minimal();
        v["expect"]["levels"] = serde_json::json!([{"scope": "global", "level": "panic"}]);
        assert!(err(v).starts_with("expect.levels[0].level: unknown level \"panic\""));
        let mut v = minimal();
        v["templates"]["normal"]["status"] = serde_json::json!("ok");
        assert!(err(v).starts_with("templates.normal.status: invalid type"));
    }
}
