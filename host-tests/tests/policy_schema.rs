//! The policy's JSON Schema (docs/policy.schema.json): derived from the
//! filter's types, so it cannot drift from what the filter accepts. The
//! committed file must be what `rheostat schema` prints, every example
//! policy must satisfy it, and it must reject what the filter rejects.

use rheostat_filter::policy::Policy;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const REGENERATE: &str =
    "cargo run -p rheostat-host --bin rheostat -- schema > docs/policy.schema.json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&Policy::json_schema()).expect("the policy schema compiles")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_what_rheostat_schema_prints() {
    let out = Command::new(env!("CARGO_BIN_EXE_rheostat"))
        .arg("schema")
        .output()
        .expect("run rheostat schema");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let printed_value: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed_value, Policy::json_schema());

    let committed =
        std::fs::read_to_string(root().join("docs/policy.schema.json")).unwrap_or_default();
    assert!(
        committed == printed,
        "docs/policy.schema.json is missing or out of date with the policy types; run\n    {REGENERATE}"
    );
}

#[test]
fn the_schema_is_draft_2020_12_and_closed() {
    let schema = Policy::json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
}

/// Every policy object in the examples: the policy files, and any policy
/// written inline in a policy test case (`"policy": {...}`).
fn example_policies() -> Vec<(String, Value)> {
    let mut policies = Vec::new();
    let mut files: Vec<PathBuf> = ["examples/policies", "examples/tests"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root().join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let ext = path.extension().and_then(|e| e.to_str());
        if name.starts_with("examples/policies/") && ext == Some("json") {
            policies.push((name, serde_json::from_str(&text).unwrap()));
            continue;
        }
        let docs: Vec<Value> = match ext {
            Some("json") => vec![serde_json::from_str(&text).unwrap()],
            Some("jsonl") => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            _ => continue,
        };
        for (i, doc) in docs.iter().enumerate() {
            inline_policies(doc, &format!("{name}[{i}]"), &mut policies);
        }
    }
    policies
}

fn inline_policies(value: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "policy" && v.is_object() {
                    out.push((format!("{at}.policy"), v.clone()));
                } else {
                    inline_policies(v, &format!("{at}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                inline_policies(v, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_example_policy_satisfies_the_schema() {
    let validator = validator();
    let policies = example_policies();
    assert!(
        policies
            .iter()
            .any(|(n, _)| n == "examples/policies/default.json"),
        "{:?}",
        policies.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, policy) in &policies {
        let errs = errors(&validator, policy);
        assert!(
            errs.is_empty(),
            "{name} fails the schema:\n{}",
            errs.join("\n")
        );
        // And the filter agrees: the schema is no looser a gate than this.
        let bytes = serde_json::to_vec(policy).unwrap();
        Policy::from_json(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_empty_policy_and_an_editor_schema_key_are_accepted() {
    let validator = validator();
    for policy in [
        json!({}),
        json!({"$schema": "../docs/policy.schema.json", "name": "x"}),
    ] {
        assert!(errors(&validator, &policy).is_empty(), "{policy}");
        let bytes = serde_json::to_vec(&policy).unwrap();
        Policy::from_json(&bytes).unwrap_or_else(|e| panic!("{policy}: {e}"));
    }
}

#[test]
fn unknown_fields_and_wrong_enum_values_are_rejected() {
    let validator = validator();
    let bad = [
        (json!({"nmae": "typo"}), ""),
        (
            json!({"controls": {"breaker": {"eror_rate": 0.1}}}),
            "/controls/breaker",
        ),
        (json!({"controls": {"level": "panic"}}), "/controls/level"),
        (
            json!({"detectors": {"email": {"action": "delete"}}}),
            "/detectors/email/action",
        ),
        (
            json!({"detectors": {"email": {"severity": "P9"}}}),
            "/detectors/email/severity",
        ),
        (
            json!({"routes": [{"name": "r", "fail_mode": "ajar"}]}),
            "/routes/0/fail_mode",
        ),
        // A flattened scope keeps deny_unknown_fields: no stray keys beside it.
        (
            json!({"controls": {"scopes": [{"tenant": "a", "level": "shed", "colour": "red"}]}}),
            "/controls/scopes/0",
        ),
        (
            json!({"controls": {"anomaly": {"trip": {"refusals": "shed"}}}}),
            "/controls/anomaly/trip",
        ),
        (
            json!({"alerts": {"categories": {"harm": {}}}}),
            "/alerts/categories",
        ),
        (json!({"window_secs": "60"}), "/window_secs"),
    ];
    for (policy, path) in bad {
        let errs = errors(&validator, &policy);
        assert!(
            errs.iter().any(|e| e.starts_with(&format!("{path}:"))
                || (!path.is_empty() && e.starts_with(&format!("{path}/")))),
            "{policy} should fail the schema at {path:?}; errors: {errs:?}"
        );
        // The filter rejects each of them too.
        let bytes = serde_json::to_vec(&policy).unwrap();
        assert!(
            Policy::from_json(&bytes).is_err(),
            "the filter accepted {policy}"
        );
    }
}
