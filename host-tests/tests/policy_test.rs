//! `rheostat test` as a user's CI meets it: the example policies' own cases
//! pass, a wrong expectation fails with a diff a person can read, and a
//! broken case file is an error, never a silent pass.

use crate::common;

use rheostat_host::policy_test::{self, Verdict};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rheostat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rheostat"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run rheostat")
}

/// A case file in a fresh temporary directory, next to a copy of the
/// default policy so relative policy paths resolve.
fn case_dir(name: &str, file: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rheostat-policy-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("examples/policies/default.json"),
        dir.join("policy.json"),
    )
    .unwrap();
    std::fs::write(dir.join(file), contents).unwrap();
    dir
}

/// An OpenAI stream whose answer carries an email address.
const EMAIL_STREAM_CASE: &str = r#"{"name": "an email in a stream", "policy": "policy.json",
 "exchange": {"request": {"body": {"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Who handles billing?"}]}},
              "response": {"headers": {"content-type": "text/event-stream"},
                           "chunks": ["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Write to jane.doe@example.com today.\"},\"finish_reason\":null}]}\n\n", "data: [DONE]\n\n"]}},
 "expect": EXPECT}"#;

/// `make test` runs the examples through the module (`rheostat test
/// examples/tests`); here they only have to load, so the suite stays fast.
#[test]
fn the_example_cases_load_and_cover_both_example_policies() {
    let files = policy_test::case_files(&root().join("examples/tests")).unwrap();
    let mut cases = Vec::new();
    for file in &files {
        cases.extend(policy_test::load_cases(file).unwrap_or_else(|e| panic!("{e:#}")));
    }
    assert!(
        cases.len() >= 8,
        "at least 8 example cases, got {}",
        cases.len()
    );
    for policy in ["default.json", "support-bot.json"] {
        let bytes = std::fs::read(root().join("examples/policies").join(policy)).unwrap();
        assert!(
            cases.iter().any(|c| c.policy == bytes),
            "no case for {policy}"
        );
    }
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for topic in ["email", "injection", "canary", "plain answer"] {
        assert!(
            names.iter().any(|n| n.contains(topic)),
            "no case about {topic}: {names:?}"
        );
    }
}

/// One run of the command over a wrong and a right case: the wrong one
/// fails with a per-field diff, the right one passes, the exit code and the
/// JUnit report say so. (One process: each compiles the module anew.)
#[test]
fn a_wrong_expectation_fails_with_a_readable_diff() {
    let wrong = EMAIL_STREAM_CASE.replace(
        "EXPECT",
        r#"{"findings": [], "outcome": "forwarded", "body_contains": ["jane.doe@example.com"]}"#,
    );
    let right = EMAIL_STREAM_CASE
        .replace("an email in a stream", "the same stream, expected right")
        .replace(
            "EXPECT",
            r#"{"findings": {"email": "redact"}, "outcome": "redacted", "level": "normal",
                "body_contains": ["[EMAIL]"], "body_excludes": ["jane.doe@example.com"]}"#,
        );
    let dir = case_dir("wrong", "wrong.json", &wrong);
    std::fs::write(dir.join("right.jsonl"), right.replace('\n', " ")).unwrap();
    let junit = dir.join("junit.xml");
    let out = rheostat(&[
        "test",
        dir.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed case fails the run:\n{stdout}"
    );
    // One block per failed case, each field as expected vs got, aligned.
    assert!(stdout.contains("FAIL "), "{stdout}");
    assert!(
        stdout.contains("wrong.json  an email in a stream"),
        "{stdout}"
    );
    assert!(stdout.contains("findings       expected {}"), "{stdout}");
    assert!(stdout.contains("got      {email}"), "{stdout}");
    assert!(
        stdout.contains("outcome        expected \"forwarded\""),
        "{stdout}"
    );
    assert!(stdout.contains("got      \"redacted\""), "{stdout}");
    assert!(
        stdout.contains("body contains  expected \"jane.doe@example.com\""),
        "{stdout}"
    );
    assert!(stdout.contains("ok     "), "{stdout}");
    assert!(
        stdout.contains("right.jsonl:1  the same stream, expected right"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip   "),
        "the policy beside the cases is no case: {stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("1 passed, 1 failed"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"rheostat\" tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"findings, outcome, body contains at "),
        "{xml}"
    );
    assert!(
        xml.contains("expected {}"),
        "the diff is in the failure body: {xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_case_file_is_an_error_not_a_pass() {
    let dir = case_dir("broken", "broken.json", "{\"name\": \"half a case\"");
    let report = policy_test::run_path(&dir, &common::module("rheostat_filter")).unwrap();
    assert_eq!(report.failed(), 1);
    match &report.results[0].verdict {
        Verdict::Error(e) => assert!(e.contains("not valid JSON"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(report.render().contains("ERROR"), "{}", report.render());
    assert!(
        report.junit().contains("<error message="),
        "{}",
        report.junit()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_expectation_is_rejected_with_its_path() {
    let case = EMAIL_STREAM_CASE.replace(
        "EXPECT",
        r#"{"findings": [], "outcome": "forwarded", "bodyy": "typo"}"#,
    );
    let dir = case_dir("typo", "typo.json", &case);
    let report = policy_test::run_path(&dir, &common::module("rheostat_filter")).unwrap();
    match &report.results[0].verdict {
        Verdict::Error(e) => assert!(e.contains("expect") && e.contains("bodyy"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_case_whose_policy_does_not_compile_is_an_error() {
    let case = EMAIL_STREAM_CASE
        .replace("\"policy.json\"", r#"{"window_secs": 0}"#)
        .replace("EXPECT", r#"{"findings": [], "outcome": "forwarded"}"#);
    let dir = case_dir("badpolicy", "bad.json", &case);
    let report = policy_test::run_path(&dir, &common::module("rheostat_filter")).unwrap();
    match &report.results[0].verdict {
        Verdict::Error(e) => assert!(
            e.contains("invalid policy") && e.contains("window_secs"),
            "{e}"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
