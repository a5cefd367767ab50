//! Replays every committed fuzz input through its target's body
//! (`rheostat_filter::fuzzing`): the seed corpora under `fuzz/corpus/<target>/`
//! and the minimised crashes under `fuzz/regressions/<target>/`. So a crash
//! the fuzzer once found stays fixed under plain `cargo test` on stable
//! Rust, without cargo-fuzz or nightly.
//!
//! To add a regression: copy the crashing input from
//! `fuzz/artifacts/<target>/` to `fuzz/regressions/<target>/` with a name
//! that says what it broke.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rheostat_filter::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of the target's corpus and regressions, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs `body` on every input of `target`; fails naming each input that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no inputs for fuzz target {target} under {}",
        fuzz_dir().display()
    );
    let mut failed = Vec::new();
    for path in &files {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed:\n  {}",
        failed.len(),
        files.len(),
        failed.join("\n  ")
    );
}

#[test]
fn policy_inputs_replay_cleanly() {
    replay("policy", fuzzing::policy);
}

#[test]
fn sse_inputs_replay_cleanly() {
    replay("sse", fuzzing::sse);
}

#[test]
fn codec_request_inputs_replay_cleanly() {
    replay("codec_request", fuzzing::codec_request);
}

#[test]
fn codec_response_inputs_replay_cleanly() {
    replay("codec_response", fuzzing::codec_response);
}

#[test]
fn stream_differential_inputs_replay_cleanly() {
    replay("stream_differential", fuzzing::stream_differential);
}

#[test]
fn normalize_inputs_replay_cleanly() {
    replay("normalize", fuzzing::normalize);
}

#[test]
fn json_schema_inputs_replay_cleanly() {
    replay("json_schema", fuzzing::json_schema);
}

#[test]
fn endpoints_inputs_replay_cleanly() {
    replay("endpoints", fuzzing::endpoints);
}
