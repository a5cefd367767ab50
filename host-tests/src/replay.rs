//! Replaying recorded exchanges through the compiled module: the engine of
//! `rheostat replay`, `make demo`, and the filter's integration tests.

use crate::exchange::{Chunking, Exchange, ExchangeResult};
use crate::host::Host;
use anyhow::{bail, Context as _, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Reads a JSONL file of exchanges; blank lines and `//` comment lines are skipped.
pub fn read_exchanges(path: &Path) -> Result<Vec<Exchange>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_exchanges(&text).with_context(|| format!("in {}", path.display()))
}

/// Parses JSONL exchanges, naming the line of the first bad one.
pub fn parse_exchanges(text: &str) -> Result<Vec<Exchange>> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        let exchange: Exchange = serde_json::from_str(trimmed)
            .with_context(|| format!("bad exchange JSON at line {}", index + 1))?;
        out.push(exchange);
    }
    Ok(out)
}

/// Runs exchanges in file order, spreading them over the workers
/// round-robin and moving virtual time forward to each `at_ms` (time never
/// goes backwards: an earlier `at_ms` runs at the current time).
pub fn replay(host: &mut Host, exchanges: &[Exchange], chunking: &Chunking) -> Vec<ExchangeResult> {
    let workers = host.workers().len().max(1);
    let start = host.now_ms();
    let mut results = Vec::with_capacity(exchanges.len());
    for (i, exchange) in exchanges.iter().enumerate() {
        let due = start + exchange.at_ms;
        if due > host.now_ms() {
            host.advance(due - host.now_ms());
        }
        let mut result = host.worker(i % workers).run_exchange(exchange, chunking);
        derive_findings(&mut result);
        results.push(result);
    }
    results
}

/// Fills `findings` and `level` from the filter's audit events: findings are
/// the union of every event's `findings` array, and the level is the one the
/// `exchange` event reports (`normal` when the filter logged none).
pub fn derive_findings(result: &mut ExchangeResult) {
    let mut level = None;
    for event in &result.events {
        if let Some(Value::Array(findings)) = event.get("findings") {
            result.findings.extend(findings.iter().cloned());
        }
        if event.get("event").and_then(Value::as_str) == Some("exchange") {
            level = event
                .get("level")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
    result.level = level.unwrap_or_else(|| "normal".to_string());
}

/// Where `make build` puts a module of this workspace (`name` without `.wasm`).
/// Looks under `./target` first (the usual working directory), then under the
/// workspace this binary was built from.
pub fn built_module(name: &str) -> PathBuf {
    let relative = Path::new("target/wasm32-wasip1/release").join(format!("{name}.wasm"));
    if relative.exists() {
        return relative;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(&relative)
}

/// Resolves the module to load, with an error that says how to get it.
pub fn resolve_module(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => built_module("rheostat_filter"),
    };
    if !path.exists() {
        if explicit.is_some() {
            bail!("module not found: {}", path.display());
        }
        bail!(
            "module not found at {}: run `make build` first (or pass --module)",
            path.display()
        );
    }
    Ok(path)
}

/// One line for people: id, status, outcome, level, and each finding as
/// `detector/action(sample)`.
pub fn summary_line(result: &ExchangeResult) -> String {
    let outcome = result
        .events
        .iter()
        .find(|e| e.get("event").and_then(Value::as_str) == Some("exchange"))
        .and_then(|e| e.get("outcome").and_then(Value::as_str))
        .unwrap_or(if result.response.reset { "reset" } else { "-" });
    let findings: Vec<String> = result
        .findings
        .iter()
        .map(|f| {
            let field = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
            format!(
                "{}/{}({})",
                field("detector"),
                field("action"),
                field("sample")
            )
        })
        .collect();
    format!(
        "{:<24} {:>3} {:<10} {:<8} {}",
        result.id,
        result.response.status,
        outcome,
        result.level,
        if findings.is_empty() {
            "-".to_string()
        } else {
            findings.join(" ")
        }
    )
}
