//! The incident drills in `examples/drills/` through the compiled filter:
//! every drill must pass, and a drill must be able to fail — the same
//! scenario under a deliberately weakened policy misses its expectations
//! and says which.

use rheostat_host::drill::{self, spec};
use rheostat_host::replay::built_module;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Drills share the process's compiled module; running them one at a time
/// keeps two test threads from compiling it twice on a small machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn module() -> PathBuf {
    let module = built_module("rheostat_filter");
    assert!(
        module.exists(),
        "{} is missing: run `make wasm` first",
        module.display()
    );
    module
}

fn drills_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/drills")
}

#[test]
fn every_drill_in_examples_passes_through_the_compiled_filter() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let module = module();
    let files = drill::drill_files(&drills_dir()).unwrap();
    assert!(
        files.len() >= 7,
        "the playbook's seven scenarios at least: {files:?}"
    );
    let mut failed = Vec::new();
    for file in &files {
        let result =
            drill::run_file(file, &module).unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
        assert!(
            result.keys.detection.is_some(),
            "{}: nothing was detected",
            result.name
        );
        assert!(
            result.keys.containment.is_some(),
            "{}: nothing was contained",
            result.name
        );
        if !result.passed {
            failed.push(format!(
                "{}:\n  {}",
                result.name,
                result.failures().join("\n  ")
            ));
        }
    }
    assert!(failed.is_empty(), "drills failed:\n{}", failed.join("\n"));
}

#[test]
fn a_drill_under_a_policy_without_its_breaker_fails_and_names_the_missed_expectation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let file = drills_dir().join("sql-injection.json");
    let mut spec = spec::read(&file).unwrap();
    // The same scenario, with the route's breaker switched off in the policy
    // in force when the injection starts.
    let policy_path = file.parent().unwrap().join(spec.policy.as_str().unwrap());
    let mut policy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(policy_path).unwrap()).unwrap();
    policy["controls"]["breaker"]["enabled"] = serde_json::json!(false);
    spec.policy = policy;
    let result = drill::run_spec(&spec, "sql-injection-weakened", &file, &module()).unwrap();
    assert!(!result.passed, "a drill without its breaker must fail");
    let failures = result.failures();
    assert!(
        failures.contains(
            &"route=reports reaches breaker by t=200 s: never reached it (highest: normal)"
                .to_string()
        ),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f.starts_with(
            "alert cluster pager, severity P1, category reliability, scope route=reports:"
        )),
        "no breaker, no breaker alert: {failures:#?}"
    );
    // Detection itself still works: only containment is missing.
    assert!(result
        .checks
        .iter()
        .filter(|c| c.name.starts_with("detection"))
        .all(|c| c.passed));
    let console = drill::report::console(&result);
    assert!(
        console.contains("[FAILED] route=reports reaches breaker by t=200 s"),
        "{console}"
    );
    assert!(
        console
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("FAIL sql-injection-weakened:"),
        "{console}"
    );
}

#[test]
fn a_drill_file_with_a_typo_is_rejected_with_its_json_path() {
    let text = std::fs::read_to_string(drills_dir().join("customer-pii.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["expect"]["levels"][0]["levle"] = serde_json::json!("degrade");
    let err = format!("{:#}", spec::parse(&v.to_string()).unwrap_err());
    assert!(err.starts_with("expect.levels[0].levle: unknown field `levle`, expected one of `scope`, `level`, `by_secs`"), "{err}");
    assert!(!err.contains("line 1"), "{err}");
}
