//! Alerts: what on-call receives. Deduplicated per scope and category per
//! `dedup_secs` through a lease in shared data, so N workers seeing the
//! same incident send one alert; routed by severity; rendered from the
//! policy's template or the built-in JSON shape.

use super::scope::Scope;
use crate::finding::{Category, Severity};
use crate::lease::claim_period;
use crate::ledger::SharedStore;
use crate::policy::{render_template, AlertPolicy, CallTarget};
use serde::Serialize;

/// One alert, before rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub severity: Severity,
    pub category: Category,
    /// `global`, `tenant=acme`, …
    pub scope: String,
    /// What happened, in one line.
    pub reason: String,
    /// How many events this alert stands for.
    pub count: u64,
    /// A masked sample (never a raw value), when a finding caused it.
    pub sample: String,
    /// What the ladder is doing about it.
    pub containment: String,
}

/// Claims the right to send the alert for `(scope, category)` in the
/// current dedup period. Only the first worker per period gets true.
pub fn claim(
    store: &dyn SharedStore,
    policy: &AlertPolicy,
    scope: &Scope,
    category: Category,
    now_ms: u64,
) -> bool {
    let key = dedup_key(scope, category);
    let period = now_ms / (policy.dedup_secs.max(1) * 1000) + 1;
    matches!(claim_period(store, &key, period, 0), Ok(true))
}

/// The lease key deduplicating alerts of one scope and category.
pub fn dedup_key(scope: &Scope, category: Category) -> String {
    format!("rheostat/alert/{}/{}", scope.key(), category_name(category))
}

pub fn category_name(category: Category) -> &'static str {
    match category {
        Category::Security => "security",
        Category::Safety => "safety",
        Category::Reliability => "reliability",
        Category::Privacy => "privacy",
    }
}

pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::P0 => "P0",
        Severity::P1 => "P1",
        Severity::P2 => "P2",
        Severity::P3 => "P3",
    }
}

/// The alert body as the policy wants it.
pub fn render(policy: &AlertPolicy, policy_name: &str, alert: &Alert) -> String {
    let guide = policy
        .categories
        .get(&alert.category)
        .cloned()
        .unwrap_or_default();
    let field = |name: &str| -> String {
        match name {
            "severity" => severity_name(alert.severity).into(),
            "category" => category_name(alert.category).into(),
            "scope" => alert.scope.clone(),
            "reason" => alert.reason.clone(),
            "count" => alert.count.to_string(),
            "sample" => alert.sample.clone(),
            "runbook" => guide.runbook.clone().unwrap_or_default(),
            "response_time" => guide.response_time.clone().unwrap_or_default(),
            "containment" => alert.containment.clone(),
            "policy" => policy_name.into(),
            _ => String::new(),
        }
    };
    match &policy.template {
        Some(template) => render_template(template, field),
        None => serde_json::json!({
            "source": "rheostat",
            "policy": policy_name,
            "severity": field("severity"),
            "category": field("category"),
            "scope": alert.scope,
            "reason": alert.reason,
            "count": alert.count,
            "sample": alert.sample,
            "runbook": guide.runbook,
            "response_time": guide.response_time,
            "containment": alert.containment,
        })
        .to_string(),
    }
}

/// Where the alert goes (none: only logged).
pub fn target<'p>(policy: &'p AlertPolicy, alert: &Alert) -> Option<&'p CallTarget> {
    policy.route_for(alert.severity).map(|r| &r.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemoryStore;
    use crate::policy::Policy;

    fn alert() -> Alert {
        Alert {
            severity: Severity::P0,
            category: Category::Privacy,
            scope: "route=chat".into(),
            reason: "email in a response".into(),
            count: 1,
            sample: "j***@e***.com".into(),
            containment: "redacted".into(),
        }
    }

    #[test]
    fn one_alert_per_scope_and_category_per_period() {
        let store = MemoryStore::default();
        let p = AlertPolicy {
            dedup_secs: 60,
            ..AlertPolicy::default()
        };
        let s = Scope::global();
        for category in [Category::Privacy, Category::Safety] {
            crate::lease::ensure(&store, &dedup_key(&s, category));
        }
        assert!(claim(&store, &p, &s, Category::Privacy, 1_000));
        assert!(!claim(&store, &p, &s, Category::Privacy, 59_000));
        assert!(claim(&store, &p, &s, Category::Safety, 59_000));
        assert!(claim(&store, &p, &s, Category::Privacy, 60_000));
    }

    #[test]
    fn the_built_in_body_carries_the_runbook_and_the_template_is_filled() {
        let p = Policy::from_json(
            br#"{"alerts": {"categories": {"privacy": {"runbook": "https://rb/privacy", "response_time": "15m"}}}}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&render(&p.alerts, "x", &alert())).unwrap();
        assert_eq!(v["runbook"], "https://rb/privacy");
        assert_eq!(v["severity"], "P0");
        let p = Policy::from_json(
            br#"{"alerts": {"template": "{\"text\": \"[{{severity}}] {{reason}} ({{scope}})\"}"}}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&render(&p.alerts, "x", &alert())).unwrap();
        assert_eq!(v["text"], "[P0] email in a response (route=chat)");
    }
}
