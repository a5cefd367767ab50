//! `rheostat test`: policy tests for users' CI, as `opa test` is for OPA
//! policies. A case is an exchange (the format `rheostat replay` reads) run
//! through the compiled module under a policy, and what must come of it:
//! which detectors fire (and with which action), the exchange's outcome and
//! control level, and — optionally — what the client and the model see.
//!
//! # Case files
//!
//! A directory is searched (recursively, skipping hidden directories and
//! `target`) for `*.json` and `*.jsonl` files. A `.jsonl` file has one case
//! per line (blank lines and `//` lines are skipped); a `.json` file holds one
//! case, an array of cases, or `{"policy": …, "cases": [...]}`, whose policy
//! applies to every case that names none. A `.json` object with none of
//! `cases`, `exchange` and `expect` (a policy kept beside its cases) is
//! skipped, and the report says so.
//!
//! ```json
//! {"name": "an email in a streamed answer is redacted",
//!  "policy": "../policies/default.json",
//!  "exchange": {"request": {...}, "response": {...}},
//!  "expect": {"findings": ["email"], "outcome": "redacted",
//!             "body_contains": ["[EMAIL]"], "body_excludes": ["jane@example.com"]}}
//! ```
//!
//! `policy` is a path relative to the case file, or the policy object
//! itself. The exchange's `id` may be left out (the case name is used).
//! `chunking` (optional) is `"whole"`, `{"fixed": N}` or `{"random": SEED}`.
//!
//! Expectations (`findings` and `outcome` are required, the rest optional):
//!
//! | key | checks |
//! |---|---|
//! | `findings` | the set of detectors that reported, `["email", "phone"]`, or detector → strongest action, `{"email": "redact"}`; `[]` means none |
//! | `outcome` | the `exchange` audit event's outcome (`forwarded`, `redacted`, `blocked`, `refused`, `too_large`; `reset` when the stream broke with no event) |
//! | `level` | the control level (default `"normal"`) |
//! | `status` | the status the client got |
//! | `forwarded` | whether the request reached the model |
//! | `body` | the exact body the client got |
//! | `body_contains`, `body_excludes` | texts that must / must not be in it |
//! | `upstream_body_contains`, `upstream_body_excludes` | the same for the request body the model got |
//!
//! Each case runs on a fresh host (one worker, new shared data, virtual
//! clock at its start), so cases never depend on each other's counters.

use crate::exchange::{Chunking, Exchange, ExchangeResult};
use crate::host::{Host, HostConfig};
use crate::replay;
use crate::Cluster;
use anyhow::{anyhow, bail, Context as _, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The clusters the deployment kit's `envoy/envoy.yaml` defines for the
/// filter's own calls. Each answers 200 here, so alert, shadow and
/// verification calls succeed as they would against healthy services.
pub const FILTER_CLUSTERS: [&str; 3] = ["rheostat_alerts", "rheostat_shadow", "rheostat_verify"];

/// How much of a body a failure message shows.
const SHOWN_BODY_CHARS: usize = 600;

/// One case as written in a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSpec {
    name: String,
    #[serde(default)]
    policy: Option<Value>,
    exchange: Value,
    #[serde(default)]
    chunking: Option<ChunkingSpec>,
    expect: Expect,
}

/// A `.json` file that shares one policy among its cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteSpec {
    #[serde(default)]
    policy: Option<Value>,
    cases: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChunkingSpec {
    Whole,
    Fixed(usize),
    Random(u64),
}

/// What a case expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub findings: FindingsExpect,
    pub outcome: String,
    #[serde(default = "normal")]
    pub level: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub forwarded: Option<bool>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_contains: Vec<String>,
    #[serde(default)]
    pub body_excludes: Vec<String>,
    #[serde(default)]
    pub upstream_body_contains: Vec<String>,
    #[serde(default)]
    pub upstream_body_excludes: Vec<String>,
}

fn normal() -> String {
    "normal".into()
}

/// The detectors a case expects: just which, or which with what action.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FindingsExpect {
    Detectors(BTreeSet<String>),
    Actions(BTreeMap<String, String>),
}

/// A case ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// `file` or `file:line` (JSONL) or `file[#index]` (arrays), for messages.
    pub location: String,
    pub name: String,
    pub policy: Vec<u8>,
    pub exchange: Exchange,
    pub chunking: Chunking,
    pub expect: Expect,
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: String,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    Fail(Vec<Mismatch>),
    /// The case could not run: a bad file, a policy that does not compile,
    /// a module that trapped.
    Error(String),
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case file (suite name in JUnit).
    pub file: String,
    pub location: String,
    pub name: String,
    pub verdict: Verdict,
    pub seconds: f64,
}

/// Every case result of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub results: Vec<CaseResult>,
    /// `.json` files that hold no cases (policies kept beside the cases).
    pub skipped: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Pass))
            .count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// The readable report: one line per case, each mismatch as expected vs
    /// got, and the count line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            match &r.verdict {
                Verdict::Pass => {
                    let _ = writeln!(out, "ok     {}  {}", r.location, r.name);
                }
                Verdict::Fail(mismatches) => {
                    let _ = writeln!(out, "FAIL   {}  {}", r.location, r.name);
                    out.push_str(&render_mismatches(mismatches));
                }
                Verdict::Error(e) => {
                    let _ = writeln!(out, "ERROR  {}  {}", r.location, r.name);
                    let _ = writeln!(out, "       {e}");
                }
            }
        }
        for file in &self.skipped {
            let _ = writeln!(
                out,
                "skip   {file}  (no `cases`, `exchange` or `expect`: not a case file)"
            );
        }
        let _ = writeln!(out, "{} passed, {} failed", self.passed(), self.failed());
        out
    }

    /// JUnit XML, one `testsuite` per case file, as CI systems read it.
    pub fn junit(&self) -> String {
        let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
        for r in &self.results {
            suites.entry(r.file.as_str()).or_default().push(r);
        }
        let count = |rs: &[&CaseResult], f: fn(&Verdict) -> bool| {
            rs.iter().filter(|r| f(&r.verdict)).count()
        };
        let is_fail = |v: &Verdict| matches!(v, Verdict::Fail(_));
        let is_error = |v: &Verdict| matches!(v, Verdict::Error(_));
        let all: Vec<&CaseResult> = self.results.iter().collect();
        let total_time: f64 = self.results.iter().map(|r| r.seconds).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"rheostat\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
            all.len(),
            count(&all, is_fail),
            count(&all, is_error),
            total_time
        );
        for (file, cases) in &suites {
            let time: f64 = cases.iter().map(|r| r.seconds).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
                xml_escape(file),
                cases.len(),
                count(cases, is_fail),
                count(cases, is_error),
                time
            );
            for r in cases {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml_escape(file),
                    xml_escape(&r.name),
                    r.seconds
                );
                match &r.verdict {
                    Verdict::Pass => out.push_str("/>\n"),
                    Verdict::Fail(mismatches) => {
                        let fields: Vec<&str> =
                            mismatches.iter().map(|m| m.field.as_str()).collect();
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml_escape(&format!("{} at {}", fields.join(", "), r.location)),
                            xml_escape(&render_mismatches(mismatches))
                        );
                    }
                    Verdict::Error(e) => {
                        let _ = writeln!(
                            out,
                            ">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                            xml_escape(&format!("cannot run {}", r.location)),
                            xml_escape(e)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// `rheostat test`: runs every case under `path` (a directory or one file),
/// prints the report, writes JUnit XML when asked; exit 0 only if every
/// case passed.
pub fn main(path: &Path, module: &Path, junit: Option<&Path>) -> Result<std::process::ExitCode> {
    let report = run_path(path, module)?;
    print!("{}", report.render());
    if let Some(junit) = junit {
        std::fs::write(junit, report.junit())
            .with_context(|| format!("cannot write JUnit report {}", junit.display()))?;
    }
    Ok(if report.failed() == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// Loads and runs every case under `path`. A file that cannot be read or
/// parsed becomes one error result, so the others still run.
pub fn run_path(path: &Path, module: &Path) -> Result<Report> {
    let files = case_files(path)?;
    if files.is_empty() {
        bail!("no case files (*.json, *.jsonl) under {}", path.display());
    }
    let mut report = Report::default();
    for file in &files {
        let file_name = file.display().to_string();
        match load_cases(file) {
            Ok(cases) if cases.is_empty() => report.skipped.push(file_name),
            Ok(cases) => {
                for case in cases {
                    report.results.push(run_case(&file_name, &case, module));
                }
            }
            Err(e) => report.results.push(CaseResult {
                file: file_name.clone(),
                location: file_name,
                name: "(case file)".into(),
                verdict: Verdict::Error(format!("{e:#}")),
                seconds: 0.0,
            }),
        }
    }
    if report.results.is_empty() {
        bail!(
            "no cases under {}: no JSON file there has `cases`, `exchange` or `expect`",
            path.display()
        );
    }
    Ok(report)
}

/// Runs one case on a fresh host and compares.
pub fn run_case(file: &str, case: &Case, module: &Path) -> CaseResult {
    let started = Instant::now();
    let verdict = match execute(case, module) {
        Ok(result) => {
            let mismatches = compare(&case.expect, &result);
            if mismatches.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail(mismatches)
            }
        }
        Err(e) => Verdict::Error(format!("{e:#}")),
    };
    CaseResult {
        file: file.to_string(),
        location: case.location.clone(),
        name: case.name.clone(),
        verdict,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn execute(case: &Case, module: &Path) -> Result<ExchangeResult> {
    let clusters = FILTER_CLUSTERS
        .iter()
        .map(|name| (name.to_string(), Cluster::respond(200, &[], "{}")))
        .collect();
    let mut host = Host::start(HostConfig {
        module: module.to_path_buf(),
        plugin_config: case.policy.clone(),
        clusters,
        ..HostConfig::default()
    })
    .context("the filter did not start with this policy")?;
    let mut results = replay::replay(
        &mut host,
        std::slice::from_ref(&case.exchange),
        &case.chunking,
    );
    let traps = host.shared().traps();
    if let Some(trap) = traps.first() {
        bail!("the module trapped: {trap}");
    }
    results
        .pop()
        .ok_or_else(|| anyhow!("the host returned no result"))
}

/// Every expectation of `expect` that `got` does not meet.
pub fn compare(expect: &Expect, got: &ExchangeResult) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut check = |field: &str, expected: String, actual: String| {
        if expected != actual {
            out.push(Mismatch {
                field: field.into(),
                expected,
                got: actual,
            });
        }
    };
    let actions = finding_actions(got);
    match &expect.findings {
        FindingsExpect::Detectors(want) => {
            let have: BTreeSet<String> = actions.keys().cloned().collect();
            check("findings", set_text(want), set_text(&have));
        }
        FindingsExpect::Actions(want) => {
            check("findings", map_text(want), map_text(&actions));
        }
    }
    check("outcome", quoted(&expect.outcome), quoted(&outcome(got)));
    check("level", quoted(&expect.level), quoted(&got.level));
    if let Some(status) = expect.status {
        check(
            "status",
            status.to_string(),
            got.response.status.to_string(),
        );
    }
    if let Some(forwarded) = expect.forwarded {
        check(
            "forwarded",
            forwarded.to_string(),
            got.request.forwarded.to_string(),
        );
    }
    let body = &got.response.body_text;
    if let Some(whole) = &expect.body {
        check("body", quoted(whole), quoted(body));
    }
    texts(
        &mut out,
        "body",
        body,
        &expect.body_contains,
        &expect.body_excludes,
    );
    texts(
        &mut out,
        "upstream body",
        &got.request.body_text,
        &expect.upstream_body_contains,
        &expect.upstream_body_excludes,
    );
    out
}

fn texts(
    out: &mut Vec<Mismatch>,
    what: &str,
    text: &str,
    contains: &[String],
    excludes: &[String],
) {
    for needle in contains {
        if !text.contains(needle.as_str()) {
            out.push(Mismatch {
                field: format!("{what} contains"),
                expected: quoted(needle),
                got: shown(text),
            });
        }
    }
    for needle in excludes {
        if text.contains(needle.as_str()) {
            out.push(Mismatch {
                field: format!("{what} excludes"),
                expected: format!("no {}", quoted(needle)),
                got: shown(text),
            });
        }
    }
}

/// Detector → the strongest action it took in this exchange.
fn finding_actions(result: &ExchangeResult) -> BTreeMap<String, String> {
    let rank = |a: &str| match a {
        "block" => 3,
        "redact" => 2,
        "flag" => 1,
        _ => 0,
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for f in &result.findings {
        let detector = f.get("detector").and_then(Value::as_str).unwrap_or("?");
        let action = f.get("action").and_then(Value::as_str).unwrap_or("?");
        let entry = out
            .entry(detector.to_string())
            .or_insert_with(|| action.to_string());
        if rank(action) > rank(entry) {
            *entry = action.to_string();
        }
    }
    out
}

/// The outcome the filter's `exchange` event reports, or what the client saw
/// when there is none.
fn outcome(result: &ExchangeResult) -> String {
    result
        .events
        .iter()
        .rev()
        .find(|e| e.get("event").and_then(Value::as_str) == Some("exchange"))
        .and_then(|e| e.get("outcome").and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| {
            if result.response.reset {
                "reset".into()
            } else {
                "none".into()
            }
        })
}

fn render_mismatches(mismatches: &[Mismatch]) -> String {
    let width = mismatches.iter().map(|m| m.field.len()).max().unwrap_or(0);
    let mut out = String::new();
    for m in mismatches {
        let _ = writeln!(out, "       {:<width$}  expected {}", m.field, m.expected);
        let _ = writeln!(out, "       {:<width$}  got      {}", "", m.got);
    }
    out
}

fn set_text(set: &BTreeSet<String>) -> String {
    format!("{{{}}}", set.iter().cloned().collect::<Vec<_>>().join(", "))
}

fn map_text(map: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A body as a failure message shows it: quoted, cut after a few hundred characters.
fn shown(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(SHOWN_BODY_CHARS).collect();
    let rest = chars.count();
    if rest == 0 {
        quoted(&head)
    } else {
        format!("{} … ({rest} more characters)", quoted(&head))
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The case files under `path` (or `path` itself), sorted.
pub fn case_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        bail!("{} is neither a case file nor a directory", path.display());
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    pending.push(p);
                }
            } else if name.ends_with(".json") || name.ends_with(".jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses one case file into runnable cases. A `.json` file whose top level
/// is an object with none of `cases`, `exchange` and `expect` is not a case
/// file (a policy kept beside the cases, say): it yields no cases.
pub fn load_cases(file: &Path) -> Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let shown = file.display().to_string();
    let mut cases = Vec::new();
    if file.extension().is_some_and(|e| e == "jsonl") {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            let location = format!("{shown}:{}", i + 1);
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("{location}: not a JSON case"))?;
            cases.push(build_case(value, None, base, location)?);
        }
    } else {
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("{shown}: not valid JSON"))?;
        match value {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    cases.push(build_case(item, None, base, format!("{shown}#{}", i + 1))?);
                }
            }
            Value::Object(ref map) if map.contains_key("cases") => {
                let suite: SuiteSpec =
                    serde_json::from_value(value).with_context(|| format!("{shown}: bad suite"))?;
                for (i, item) in suite.cases.into_iter().enumerate() {
                    cases.push(build_case(
                        item,
                        suite.policy.as_ref(),
                        base,
                        format!("{shown}#{}", i + 1),
                    )?);
                }
            }
            Value::Object(ref map)
                if !map.contains_key("expect") && !map.contains_key("exchange") =>
            {
                return Ok(Vec::new())
            }
            other => cases.push(build_case(other, None, base, shown.clone())?),
        }
    }
    if cases.is_empty() {
        bail!("{shown}: no cases");
    }
    Ok(cases)
}

fn build_case(
    value: Value,
    default_policy: Option<&Value>,
    base: &Path,
    location: String,
) -> Result<Case> {
    let spec: CaseSpec = serde_path_to_error::deserialize(value)
        .map_err(|e| anyhow!("{location}: {}: {}", e.path(), e.inner()))?;
    let policy = spec
        .policy
        .as_ref()
        .or(default_policy)
        .ok_or_else(|| anyhow!("{location}: the case names no policy"))?;
    let policy = policy_bytes(policy, base).with_context(|| location.clone())?;
    if let Err(e) = rheostat_filter::engine::Engine::from_json(&policy) {
        bail!("{location}: invalid policy: {e}");
    }
    let mut exchange = spec.exchange;
    if let Value::Object(map) = &mut exchange {
        map.entry("id")
            .or_insert_with(|| Value::String(spec.name.clone()));
    }
    let exchange: Exchange = serde_path_to_error::deserialize(exchange)
        .map_err(|e| anyhow!("{location}: exchange.{}: {}", e.path(), e.inner()))?;
    let chunking = match spec.chunking {
        None | Some(ChunkingSpec::Whole) => Chunking::Whole,
        Some(ChunkingSpec::Fixed(0)) => bail!("{location}: chunking.fixed must be at least 1"),
        Some(ChunkingSpec::Fixed(n)) => Chunking::Fixed(n),
        Some(ChunkingSpec::Random(seed)) => Chunking::Random { seed },
    };
    Ok(Case {
        location,
        name: spec.name,
        policy,
        exchange,
        chunking,
        expect: spec.expect,
    })
}

/// A policy given as a path (relative to the case file) or inline.
fn policy_bytes(policy: &Value, base: &Path) -> Result<Vec<u8>> {
    match policy {
        Value::String(path) => {
            let path = base.join(path);
            std::fs::read(&path).with_context(|| format!("cannot read policy {}", path.display()))
        }
        Value::Object(_) => {
            serde_json::to_vec(policy).context("cannot serialise the inline policy")
        }
        _ => bail!("policy must be a path or a policy object"),
    }
}
