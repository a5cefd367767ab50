//! The adversarial evasion suite: tricks people use to slip injection
//! phrases, personal data, secrets, canaries and blocked terms past a
//! guardrail, each run through the engine's public API with the outcome we
//! expect.
//!
//! Every row is one attack: its name, the evasion technique, the input and
//! the detector that must (or must not) fire. Like a WAF's regression suite
//! with listed exclusions, techniques we do not catch stay in the table as
//! [`Expect::KnownMiss`] with the reason: the table is the honest record of
//! what the engine sees through. The test fails when an expected detection
//! is missed *and* when a known miss starts being detected, so the table
//! stays true (move the row to `Detected` and celebrate). `Clean` rows are
//! benign look-alikes that must not fire.
//!
//! Prompt-side rows go through `Engine::inspect_request` on an OpenAI chat
//! body; response-side rows through `open_stream` (SSE frames, fed one frame
//! per chunk) or `inspect_response_body` (a buffered JSON answer).
//!
//! Run with `--nocapture` to print the table.

#[path = "shared/evasion_table.rs"]
mod evasion_table;

use std::rc::Rc;

use evasion_table::{detectors, table, Expect, POLICY};
use rheostat_filter::engine::Engine;

#[test]
fn the_evasion_table_holds() {
    let engine = Rc::new(Engine::from_json(POLICY.as_bytes()).expect("the test policy compiles"));
    let table = table();
    let mut failures = Vec::new();
    let (mut detected, mut misses, mut clean) = (0, 0, 0);
    println!(
        "{:<32} {:<10} {:<26} {:<11} evasion",
        "row", "result", "detector", "expected"
    );
    for case in &table {
        let found = detectors(&engine, &case.input);
        // A clean row must not fire at all (`injection` covers `injection:suspect`).
        let fired = match case.expect {
            Expect::Clean => found.iter().any(|d| d.starts_with(case.detector)),
            _ => found.iter().any(|d| d == case.detector),
        };
        let (expected, ok) = match case.expect {
            Expect::Detected => {
                detected += 1;
                ("detected", fired)
            }
            Expect::KnownMiss(_) => {
                misses += 1;
                ("known miss", !fired)
            }
            Expect::Clean => {
                clean += 1;
                ("clean", !fired)
            }
        };
        println!(
            "{:<32} {:<10} {:<26} {:<11} {}",
            case.name,
            if ok { "ok" } else { "MISMATCH" },
            case.detector,
            expected,
            case.evasion
        );
        if !ok {
            let what = match case.expect {
                Expect::Detected => "expected a detection, got none".to_string(),
                Expect::KnownMiss(reason) => {
                    format!(
                        "listed as a known miss ({reason}) but now detected: move it to Detected"
                    )
                }
                Expect::Clean => "a benign input fired".to_string(),
            };
            failures.push(format!(
                "{} [{}]: {what}; findings: {found:?}",
                case.name, case.evasion
            ));
        }
    }
    println!(
        "{} rows: {detected} detected, {misses} known misses, {clean} clean controls",
        table.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} rows do not hold:\n  {}",
        failures.len(),
        table.len(),
        failures.join("\n  ")
    );
}

#[test]
fn the_evasion_table_is_large_and_names_are_unique() {
    let table = table();
    assert!(table.len() >= 60, "{} rows", table.len());
    let mut names: Vec<&str> = table.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "row names must be unique");
    for case in &table {
        if let Expect::KnownMiss(reason) = case.expect {
            assert!(
                reason.len() > 10,
                "{}: a known miss needs its reason",
                case.name
            );
        }
    }
}
