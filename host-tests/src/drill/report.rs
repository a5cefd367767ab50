//! What a drill tells people: the timeline on virtual time with a one-line
//! verdict (the console), and a post-incident review in the playbook's
//! template (Markdown) with improvements found in the run itself.

use super::run::Observation;
use super::spec::DrillSpec;
use super::verdict::{Check, Impact, KeyTimes};
use super::DrillResult;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub t_ms: u64,
    /// `phase`, `incident`, `detection`, `finding`, `alert`, `anomaly`,
    /// `breaker`, `control`, `action`, `level`, `containment`, `recovery`.
    pub kind: String,
    pub text: String,
}

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}.{}", s / 60, s % 60, (ms % 1000) / 100)
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

/// The timeline: phases, the incident's start, first findings per detector,
/// the filter's own events, operator actions and level changes per scope.
pub fn timeline(spec: &DrillSpec, obs: &Observation, keys: &KeyTimes) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut push = |t_ms: u64, kind: &str, text: String| {
        out.push(Entry {
            t_ms,
            kind: kind.into(),
            text,
        })
    };
    let mut at = 0;
    for p in &spec.phases {
        let total: f64 = p.mix.values().sum();
        let mix: Vec<String> = p
            .mix
            .iter()
            .filter(|(_, w)| **w > 0.0)
            .map(|(n, w)| format!("{n} {:.0}%", w * 100.0 / total))
            .collect();
        push(
            at,
            "phase",
            format!(
                "phase {}: {}/min for {} s ({})",
                p.name,
                p.rate_per_min,
                p.duration_secs,
                mix.join(", ")
            ),
        );
        at += p.duration_secs * 1000;
    }
    // Operator actions come before what they caused at the same moment.
    for a in &obs.actions {
        let note = if a.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", a.note)
        };
        push(
            a.t_ms,
            "action",
            format!(
                "operator: {} [{}: {}]{note}",
                a.what,
                if a.ok { "ok" } else { "FAILED" },
                a.detail
            ),
        );
    }
    if let Some(t) = keys.first_harmful_ms {
        let r = obs.requests.iter().find(|r| r.harmful);
        push(
            t,
            "incident",
            format!(
                "first harmful request ({})",
                r.map_or("?", |r| r.template.as_str())
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for r in &obs.requests {
        for f in &r.findings {
            if seen.insert(f.detector.clone()) {
                push(
                    r.t_ms,
                    "finding",
                    format!(
                        "first {} finding: {} {} → {} (on {})",
                        f.detector, f.category, f.severity, f.action, r.template
                    ),
                );
            }
        }
    }
    if let Some(d) = &keys.detection {
        push(
            d.t_ms,
            "detection",
            format!(
                "DETECTED: {} ({} {}, {}) on harmful request #{}, {:.1} s after the first",
                d.detector,
                d.category,
                d.severity,
                d.action,
                d.harmful_request,
                d.after_ms as f64 / 1000.0
            ),
        );
    }
    for e in &obs.events {
        let ev = &e.event;
        let s = |k: &str| ev[k].as_str().unwrap_or("?").to_string();
        match ev["event"].as_str() {
            Some("alert") => push(
                e.t_ms,
                "alert",
                format!(
                    "alert {} {} {} → {}: {} [{}]",
                    s("severity"),
                    s("category"),
                    s("scope"),
                    ev["cluster"].as_str().unwrap_or("logged only"),
                    s("reason"),
                    s("containment")
                ),
            ),
            Some("anomaly") => push(
                e.t_ms,
                "anomaly",
                format!(
                    "anomaly {} in {}: {:.3} vs baseline {:.3} over {} exchanges{}",
                    s("signal"),
                    s("scope"),
                    ev["value"].as_f64().unwrap_or(0.0),
                    ev["baseline"].as_f64().unwrap_or(0.0),
                    ev["requests"],
                    ev["tripped"]
                        .as_str()
                        .map(|l| format!(" → trips {l}"))
                        .unwrap_or_default()
                ),
            ),
            Some("breaker") => push(
                e.t_ms,
                "breaker",
                format!(
                    "breaker {}: {} → {} ({})",
                    s("scope"),
                    s("from"),
                    s("to"),
                    s("reason")
                ),
            ),
            Some("control") => push(
                e.t_ms,
                "control",
                format!(
                    "override {} for {} (was {}): {}",
                    s("level"),
                    s("scope"),
                    s("previous"),
                    s("reason")
                ),
            ),
            _ => {}
        }
    }
    for t in &keys.transitions {
        push(
            t.t_ms,
            "level",
            format!("level {}: {} → {}", t.scope, t.from, t.to),
        );
    }
    if let Some(c) = &keys.containment {
        push(
            c.t_ms,
            "containment",
            format!("CONTAINED: {} at {}", c.scope, c.to),
        );
    }
    if let Some(t) = keys.recovered_ms {
        push(
            t,
            "recovery",
            "RECOVERED: every scope back to normal".into(),
        );
    }
    out.sort_by_key(|e| e.t_ms);
    out
}

/// The verdict line: `PASS customer-pii: 7/7 expectations (detected in 1 request, contained at 00:42.0)`.
pub fn verdict_line(r: &DrillResult) -> String {
    let passed = r.checks.iter().filter(|c| c.passed).count();
    let mut notes = Vec::new();
    if let Some(d) = &r.keys.detection {
        notes.push(format!(
            "detected on harmful request #{} at {}",
            d.harmful_request,
            clock(d.t_ms)
        ));
    }
    if let Some(c) = &r.keys.containment {
        notes.push(format!("contained at {}", clock(c.t_ms)));
    }
    if let Some(t) = r.keys.recovered_ms {
        notes.push(format!("recovered at {}", clock(t)));
    }
    notes.push(format!(
        "{} harmful answer(s) reached users",
        r.impact.harmful_reached
    ));
    format!(
        "{} {}: {}/{} expectations ({})",
        if r.passed { "PASS" } else { "FAIL" },
        r.name,
        passed,
        r.checks.len(),
        notes.join(", ")
    )
}

/// The console text of one drill.
pub fn console(r: &DrillResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== drill {} — {}", r.name, r.title);
    for e in &r.timeline {
        let _ = writeln!(s, "  {}  {:<11} {}", clock(e.t_ms), e.kind, e.text);
    }
    for c in &r.checks {
        let _ = writeln!(
            s,
            "  [{}] {}: {}",
            if c.passed { "ok" } else { "FAILED" },
            c.name,
            c.detail
        );
    }
    let _ = writeln!(s, "{}", verdict_line(r));
    s
}

/// Improvements the run itself points at.
pub fn improvements(r: &DrillResult) -> Vec<String> {
    let mut out = Vec::new();
    for c in &r.checks {
        match (c.passed, c.used) {
            (false, _) => out.push(format!("Failed expectation — {}: {}.", c.name, c.detail)),
            (true, Some(u)) if u > 0.75 => out.push(format!(
                "Barely met — {}: {} ({:.0}% of the allowance used).",
                c.name,
                c.detail,
                u * 100.0
            )),
            _ => {}
        }
    }
    let i = &r.impact;
    if i.harmful_undetected > 0 {
        out.push(format!(
            "{} harmful answer(s) reached users with no finding at all: the detectors missed them (tune thresholds, add patterns or facts).",
            i.harmful_undetected
        ));
    }
    if i.harmful_reached > 0 {
        out.push(format!(
            "{} harmful answer(s) reached users before containment: consider `block` or `redact` instead of `flag`, or a tighter breaker.",
            i.harmful_reached
        ));
    }
    // Detectors that fired only after several requests of a harmful
    // template (counted per template: one kind of attack may be caught by
    // another detector first).
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_hit: BTreeMap<(String, String), (usize, u64)> = BTreeMap::new();
    for q in r.observation.requests.iter().filter(|q| q.harmful) {
        let n = seen.entry(q.template.as_str()).or_default();
        *n += 1;
        for f in &q.findings {
            first_hit
                .entry((q.template.clone(), f.detector.clone()))
                .or_insert((*n, q.t_ms));
        }
    }
    let first_harmful = r.keys.first_harmful_ms.unwrap_or(0);
    for ((template, detector), (n, t)) in first_hit {
        if n <= 3 {
            continue;
        }
        // A detector a push brought in did not fire late: it did not exist before.
        let push =
            r.observation.actions.iter().rfind(|a| {
                a.what == "policy push" && a.ok && a.t_ms > first_harmful && a.t_ms <= t
            });
        match push {
            Some(p) => out.push(format!(
                "Detector `{detector}` first fired on `{template}` request #{n} ({}), once the policy push at {} enabled it: {} such requests went by without it.",
                clock(t),
                clock(p.t_ms),
                n - 1
            )),
            None => out.push(format!(
                "Detector `{detector}` first fired on `{template}` request #{n} ({}): it fired late.",
                clock(t)
            )),
        }
    }
    let logged_only = r
        .observation
        .events
        .iter()
        .filter(|e| e.event["event"] == "alert" && e.event["cluster"].is_null())
        .count();
    if logged_only > 0 {
        out.push(format!(
            "{logged_only} alert(s) were only logged: no `alerts.routes` entry takes their severity, so nobody was paged."
        ));
    }
    if r.keys.containment.is_some() && r.keys.recovered_ms.is_none() {
        out.push("Containment was still in force when the drill ended: check the recovery path (cooldown, hold windows, clearing overrides).".into());
    }
    if out.is_empty() {
        out.push("None found in this run: every expectation was met with room to spare.".into());
    }
    out
}

/// The post-incident review in the playbook's template.
pub fn markdown(r: &DrillResult, spec: &DrillSpec, svg_name: &str) -> String {
    let mut s = String::new();
    let i: &Impact = &r.impact;
    let _ = writeln!(s, "# Post-incident review (drill): {}\n", r.title);
    let _ = writeln!(
        s,
        "*Drill `{}` ({}), run through the compiled filter on {} worker(s) over {} of virtual time. Verdict: **{}**.*\n",
        r.name,
        r.category,
        spec.workers,
        clock(r.observation.duration_ms),
        if r.passed { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(s, "## Summary\n");
    if !spec.description.is_empty() {
        let _ = writeln!(s, "{}\n", spec.description);
    }
    let _ = writeln!(s, "{}\n", verdict_line(r));
    let _ = writeln!(s, "![level per scope and finding rate]({svg_name})\n");
    let _ = writeln!(s, "## Timeline (virtual time)\n");
    let _ = writeln!(s, "| time | what | detail |\n|---|---|---|");
    for e in &r.timeline {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            clock(e.t_ms),
            e.kind,
            e.text.replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "\n## Detection — what and how\n");
    match &r.keys.detection {
        Some(d) => {
            let _ = writeln!(
                s,
                "The `{}` detector ({} {}, action `{}`) caught harmful request #{} at {}, {:.1} s after the first harmful request.",
                d.detector,
                d.category,
                d.severity,
                d.action,
                d.harmful_request,
                clock(d.t_ms),
                d.after_ms as f64 / 1000.0
            );
        }
        None => {
            let _ = writeln!(s, "No detector fired on a harmful request.");
        }
    }
    let _ = writeln!(s, "\nFindings by detector over the whole drill:\n");
    for (d, n) in &i.findings_by_detector {
        let _ = writeln!(s, "- `{d}`: {n}");
    }
    let anomalies: Vec<_> = r.timeline.iter().filter(|e| e.kind == "anomaly").collect();
    if !anomalies.is_empty() {
        let _ = writeln!(s, "\nBehavioural signals over their baselines:\n");
        for a in anomalies {
            let _ = writeln!(s, "- {} {}", clock(a.t_ms), a.text);
        }
    }
    let _ = writeln!(s, "\n## Containment — which controls worked\n");
    for e in r.timeline.iter().filter(|e| {
        matches!(
            e.kind.as_str(),
            "level" | "breaker" | "control" | "action" | "alert"
        )
    }) {
        let _ = writeln!(s, "- {} — {}", clock(e.t_ms), e.text);
    }
    let local: Vec<String> = i
        .outcomes
        .iter()
        .filter(|(o, _)| !matches!(o.as_str(), "forwarded" | "redacted"))
        .map(|(o, n)| format!("{n} {o}"))
        .collect();
    if !local.is_empty() {
        let _ = writeln!(
            s,
            "\nAnswers the filter gave instead of the model (or in its place): {}.",
            local.join(", ")
        );
    }
    let _ = writeln!(s, "\n## Root cause (as found)\n");
    let _ = writeln!(
        s,
        "{}\n",
        if spec.root_cause.is_empty() {
            "Not stated by the drill."
        } else {
            spec.root_cause.as_str()
        }
    );
    let _ = writeln!(s, "## Impact\n");
    let _ = writeln!(s, "| measure | value |\n|---|---|");
    let _ = writeln!(s, "| requests | {} |", i.requests);
    let _ = writeln!(s, "| harmful requests sent | {} |", i.harmful_sent);
    let _ = writeln!(
        s,
        "| harmful answers that reached users | {} |",
        i.harmful_reached
    );
    let _ = writeln!(
        s,
        "| harmful answers that reached users unflagged | {} |",
        i.harmful_undetected
    );
    let _ = writeln!(
        s,
        "| legitimate requests served by a model | {} of {} ({}) |",
        i.legitimate_served,
        i.legitimate,
        pct(i.legitimate_served, i.legitimate)
    );
    let _ = writeln!(s, "| alerts raised | {} |", i.alerts);
    for (cluster, n) in &i.calls_by_cluster {
        let _ = writeln!(s, "| calls to `{cluster}` | {n} |");
    }
    for (o, n) in &i.outcomes {
        let _ = writeln!(s, "| outcome `{o}` | {n} |");
    }
    let _ = writeln!(s, "\n## Expectations\n");
    let _ = writeln!(s, "| | expectation | observed |\n|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            if c.passed { "✅" } else { "❌" },
            c.name,
            c.detail.replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "\n## Improvements\n");
    for line in improvements(r) {
        let _ = writeln!(s, "- {line}");
    }
    s
}

/// A failed check in one line, for test messages.
pub fn failures(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}
