//! The `rheostat` command line as a user meets it: exit codes and one-line errors.

use std::io::Write as _;
use std::process::{Command, Output};

fn rheostat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rheostat"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run rheostat")
}

fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rheostat-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    path
}

#[test]
fn check_accepts_the_example_policy_with_a_summary() {
    let out = rheostat(&["check", "examples/policies/default.json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("ok: policy \"default\""), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn check_accepts_every_example_policy() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let out = rheostat(&["check", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn check_compiles_patterns_and_names_the_bad_one() {
    let path = temp_file(
        "bad-regex.json",
        r#"{"custom_patterns": [{"name": "a", "pattern": "ACME-[0-9]{4}"}, {"name": "b", "pattern": "x(["}]}"#,
    );
    let out = rheostat(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: custom_patterns[1]."), "{stderr}");
}

#[test]
fn check_rejects_an_invalid_policy_with_exit_2_and_the_json_path() {
    let path = temp_file("bad.json", r#"{"subject": {"region_header": 7}}"#);
    let out = rheostat(&["check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: subject.region_header: invalid type: integer `7`"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn check_reports_an_unreadable_file_in_one_line() {
    let out = rheostat(&["check", "no/such/policy.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot read policy no/such/policy.json"),
        "{stderr}"
    );
}

#[test]
fn replay_prints_one_result_per_exchange_with_every_key() {
    let out = rheostat(&[
        "replay",
        "--policy",
        "examples/policies/default.json",
        "--workers",
        "2",
        "--chunk-size",
        "64",
        "examples/traffic/openai-chat.jsonl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inputs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/traffic/openai-chat.jsonl"
    ))
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        inputs.lines().filter(|l| !l.trim().is_empty()).count()
    );
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in [
            "id",
            "request",
            "response",
            "findings",
            "level",
            "events",
            "http_calls",
            "metrics",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {line}");
        }
        for key in ["forwarded", "headers", "body_text"] {
            assert!(v["request"].get(key).is_some(), "missing request.{key}");
        }
        for key in ["status", "headers", "body_text", "local", "reset"] {
            assert!(v["response"].get(key).is_some(), "missing response.{key}");
        }
    }
}

#[test]
fn replay_names_the_line_of_bad_json() {
    let path = temp_file(
        "bad.jsonl",
        "{\"id\":\"a\",\"request\":{},\"response\":{}}\n\n{not json}\n",
    );
    let out = rheostat(&[
        "replay",
        "--policy",
        "examples/policies/default.json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bad exchange JSON at line 3"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn replay_with_a_missing_module_says_so() {
    let out = rheostat(&[
        "replay",
        "--policy",
        "examples/policies/default.json",
        "--module",
        "nowhere.wasm",
        "examples/traffic/openai-chat.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: module not found: nowhere.wasm"),
        "{stderr}"
    );
}

#[test]
fn replay_rejects_an_invalid_policy_before_loading_anything() {
    let path = temp_file("bad-policy.json", r#"{"tick_ms": 5}"#);
    let out = rheostat(&[
        "replay",
        "--policy",
        path.to_str().unwrap(),
        "examples/traffic/openai-chat.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error: tick_ms: must be between 100"));
}
