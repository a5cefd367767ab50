//! Judging a drill: its expectations against what the run observed, and the
//! key moments (first detection, containment, recovery) that the timeline
//! and the review are written from.

use super::run::{level_name, Observation, RequestRecord};
use super::spec::{rank, DrillSpec, LevelExpect};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One expectation and how it came out.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The expectation in words: `detection within 20 requests`.
    pub name: String,
    pub passed: bool,
    /// What was observed.
    pub detail: String,
    /// How much of the allowance was used (0–1), when that means something:
    /// above 0.75 the review calls it barely met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<f64>,
}

/// The first finding on a harmful request.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub t_ms: u64,
    /// 1 = the first harmful request was caught.
    pub harmful_request: u64,
    /// Milliseconds after the first harmful request.
    pub after_ms: u64,
    pub detector: String,
    pub category: String,
    pub severity: String,
    pub action: String,
}

/// A scope's level changing, as the samples saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub t_ms: u64,
    pub scope: String,
    pub from: String,
    pub to: String,
}

/// The moments the review is written around.
#[derive(Debug, Clone, Serialize)]
pub struct KeyTimes {
    pub first_harmful_ms: Option<u64>,
    pub detection: Option<Detection>,
    /// The first level above normal anywhere: (time, scope, level).
    pub containment: Option<Transition>,
    /// The last return to normal, if every scope ended at normal.
    pub recovered_ms: Option<u64>,
    pub transitions: Vec<Transition>,
}

/// Impact in numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub requests: u64,
    pub harmful_sent: u64,
    pub harmful_reached: u64,
    /// Harmful answers that reached users with no finding at all: misses,
    /// as opposed to requests contained before the model could do harm.
    pub harmful_undetected: u64,
    pub legitimate: u64,
    pub legitimate_served: u64,
    /// Outcomes the filter reported, with their counts.
    pub outcomes: BTreeMap<String, u64>,
    pub findings_by_detector: BTreeMap<String, u64>,
    pub alerts: u64,
    pub calls_by_cluster: BTreeMap<String, u64>,
}

fn worst_severity<'a>(
    findings: impl Iterator<Item = &'a super::run::FindingBrief>,
) -> Option<&'a super::run::FindingBrief> {
    findings.min_by(|a, b| a.severity.cmp(&b.severity))
}

/// `topic:hiring_protected` is a `topic` finding; `fact:refund_window` a `fact` one.
pub fn detector_is(found: &str, wanted: &str) -> bool {
    found == wanted
        || found
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// Level of `scope` in a sample (absent: normal).
fn level_at(levels: &BTreeMap<String, u8>, scope: &str) -> u8 {
    levels.get(scope).copied().unwrap_or(0)
}

pub fn key_times(spec: &DrillSpec, obs: &Observation) -> KeyTimes {
    let detector = spec
        .expect
        .detection
        .as_ref()
        .and_then(|d| d.detector.clone());
    let harmful: Vec<&RequestRecord> = obs.requests.iter().filter(|r| r.harmful).collect();
    let first_harmful_ms = harmful.first().map(|r| r.t_ms);
    let detection = harmful.iter().enumerate().find_map(|(i, r)| {
        let matching = r.findings.iter().filter(|f| {
            detector
                .as_deref()
                .is_none_or(|d| detector_is(&f.detector, d))
        });
        let worst = worst_severity(matching)?;
        Some(Detection {
            t_ms: r.t_ms,
            harmful_request: i as u64 + 1,
            after_ms: r.t_ms - first_harmful_ms.unwrap_or(r.t_ms),
            detector: worst.detector.clone(),
            category: worst.category.clone(),
            severity: worst.severity.clone(),
            action: worst.action.clone(),
        })
    });
    let mut transitions = Vec::new();
    let mut current: BTreeMap<String, u8> = BTreeMap::new();
    for s in &obs.samples {
        let scopes: std::collections::BTreeSet<String> =
            current.keys().chain(s.levels.keys()).cloned().collect();
        for scope in scopes {
            let (from, to) = (level_at(&current, &scope), level_at(&s.levels, &scope));
            if from != to {
                transitions.push(Transition {
                    t_ms: s.t_ms,
                    scope: scope.clone(),
                    from: level_name(from).into(),
                    to: level_name(to).into(),
                });
            }
        }
        current = s.levels.clone();
        current.retain(|_, r| *r > 0);
    }
    let containment = transitions.iter().find(|t| t.from == "normal").cloned();
    let recovered_ms = if current.is_empty() && containment.is_some() {
        transitions
            .iter()
            .rev()
            .find(|t| t.to == "normal")
            .map(|t| t.t_ms)
    } else {
        None
    };
    KeyTimes {
        first_harmful_ms,
        detection,
        containment,
        recovered_ms,
        transitions,
    }
}

pub fn impact(obs: &Observation) -> Impact {
    let mut outcomes = BTreeMap::new();
    let mut findings_by_detector = BTreeMap::new();
    for r in &obs.requests {
        *outcomes.entry(r.outcome.clone()).or_default() += 1;
        for f in &r.findings {
            *findings_by_detector.entry(f.detector.clone()).or_default() += 1;
        }
    }
    let count =
        |f: &dyn Fn(&RequestRecord) -> bool| obs.requests.iter().filter(|r| f(r)).count() as u64;
    Impact {
        requests: obs.requests.len() as u64,
        harmful_sent: count(&|r| r.harmful),
        harmful_reached: count(&|r| r.harm_reached),
        harmful_undetected: count(&|r| r.harm_reached && r.findings.is_empty()),
        legitimate: count(&|r| !r.harmful),
        legitimate_served: count(&|r| !r.harmful && r.served),
        outcomes,
        findings_by_detector,
        alerts: obs
            .events
            .iter()
            .filter(|e| e.event["event"] == "alert")
            .count() as u64,
        calls_by_cluster: obs.calls_by_cluster.clone(),
    }
}

fn secs(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Every expectation of the drill, judged.
pub fn checks(spec: &DrillSpec, obs: &Observation, keys: &KeyTimes) -> Vec<Check> {
    let e = &spec.expect;
    let mut out = Vec::new();
    if let Some(d) = &e.detection {
        let harmful = obs.requests.iter().filter(|r| r.harmful).count();
        let what = d.detector.as_deref().unwrap_or("any detector");
        match &keys.detection {
            None => out.push(Check {
                name: format!("detection by {what}"),
                passed: false,
                detail: format!("none of the {harmful} harmful requests was detected"),
                used: None,
            }),
            Some(det) => {
                if let Some(n) = d.within_requests {
                    out.push(Check {
                        name: format!("detection by {what} within {n} harmful requests"),
                        passed: det.harmful_request <= n,
                        detail: format!(
                            "{} ({}, {}) on harmful request #{}",
                            det.detector, det.severity, det.action, det.harmful_request
                        ),
                        // Harmful requests that got past before detection, against the allowance.
                        used: Some((det.harmful_request - 1) as f64 / n.max(1) as f64),
                    });
                }
                if let Some(n) = d.within_secs {
                    out.push(Check {
                        name: format!("detection by {what} within {n} s"),
                        passed: det.after_ms <= n * 1000,
                        detail: format!("{} after the first harmful request", secs(det.after_ms)),
                        used: Some(det.after_ms as f64 / (n * 1000).max(1) as f64),
                    });
                }
                if let Some(s) = &d.severity {
                    out.push(Check {
                        name: format!("detection severity {s}"),
                        passed: &det.severity == s,
                        detail: format!(
                            "{} reported {} ({}, {})",
                            det.detector, det.severity, det.category, det.action
                        ),
                        used: None,
                    });
                }
            }
        }
    }
    // Time allowances count from the incident's start, not from t = 0.
    let origin = keys.first_harmful_ms.unwrap_or(0);
    for l in &e.levels {
        out.push(level_reached(obs, l, origin));
    }
    for l in &e.never {
        let r = rank(&l.level).unwrap_or(0);
        let hit = obs
            .samples
            .iter()
            .find(|s| level_at(&s.levels, &l.scope) >= r);
        out.push(Check {
            name: format!("{} never reaches {}", l.scope, l.level),
            passed: hit.is_none(),
            detail: match hit {
                Some(s) => format!(
                    "it was at {} at t={}",
                    level_name(level_at(&s.levels, &l.scope)),
                    secs(s.t_ms)
                ),
                None => format!("highest: {}", level_name(highest(obs, &l.scope))),
            },
            used: None,
        });
    }
    let alerts: Vec<(u64, &Value)> = obs
        .events
        .iter()
        .filter(|e| e.event["event"] == "alert")
        .map(|e| (e.t_ms, &e.event))
        .collect();
    for a in &e.alerts {
        let mut want = Vec::new();
        for (k, v) in [
            ("cluster", &a.cluster),
            ("severity", &a.severity),
            ("category", &a.category),
            ("scope", &a.scope),
        ] {
            if let Some(v) = v {
                want.push(format!("{k} {v}"));
            }
        }
        let matches = |(t, ev): &&(u64, &Value)| {
            let is = |k: &str, want: &Option<String>| {
                want.as_ref()
                    .is_none_or(|w| ev[k].as_str() == Some(w.as_str()))
            };
            is("cluster", &a.cluster)
                && is("severity", &a.severity)
                && is("category", &a.category)
                && is("scope", &a.scope)
                && a.by_secs.is_none_or(|by| *t <= by * 1000)
        };
        let found = alerts.iter().find(matches);
        let mut name = format!("alert {}", want.join(", "));
        if let Some(by) = a.by_secs {
            name.push_str(&format!(" by t={by} s"));
        }
        out.push(Check {
            name,
            passed: found.is_some(),
            detail: match found {
                Some((t, ev)) => format!(
                    "at t={}: {} {} {} → {}",
                    secs(*t),
                    ev["severity"].as_str().unwrap_or("?"),
                    ev["category"].as_str().unwrap_or("?"),
                    ev["scope"].as_str().unwrap_or("?"),
                    ev["cluster"].as_str().unwrap_or("logged only")
                ),
                None if alerts.is_empty() => "no alert was raised".into(),
                None => format!(
                    "raised instead: {}",
                    alerts
                        .iter()
                        .map(|(t, ev)| format!(
                            "{} {} {} → {} at {}",
                            ev["severity"].as_str().unwrap_or("?"),
                            ev["category"].as_str().unwrap_or("?"),
                            ev["scope"].as_str().unwrap_or("?"),
                            ev["cluster"].as_str().unwrap_or("logged only"),
                            secs(*t)
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            },
            used: None,
        });
    }
    if let Some(k) = e.max_harmful_reached {
        let reached = obs.requests.iter().filter(|r| r.harm_reached).count() as u64;
        let sent = obs.requests.iter().filter(|r| r.harmful).count();
        out.push(Check {
            name: format!("at most {k} harmful answers reach users"),
            passed: reached <= k,
            detail: format!("{reached} of {sent} harmful answers reached users"),
            used: (k > 0).then(|| reached as f64 / k as f64),
        });
    }
    for l in &e.recovery {
        out.push(recovered(obs, l, origin));
    }
    for s in &e.served {
        let from = s.from_secs.unwrap_or(0) * 1000;
        let until = s.until_secs.map_or(u64::MAX, |u| u * 1000);
        let pool: Vec<&RequestRecord> = obs
            .requests
            .iter()
            .filter(|r| s.templates.contains(&r.template) && r.t_ms >= from && r.t_ms < until)
            .collect();
        // A harmful answer that reached the user (a refusal, say) served nobody.
        let served = pool.iter().filter(|r| r.served && !r.harm_reached).count();
        let share = if pool.is_empty() {
            0.0
        } else {
            served as f64 / pool.len() as f64
        };
        let mut name = format!(
            "{} served ≥ {:.0}%",
            s.templates.join("+"),
            s.min_share * 100.0
        );
        if s.from_secs.is_some() || s.until_secs.is_some() {
            name.push_str(&format!(
                " from t={} s{}",
                s.from_secs.unwrap_or(0),
                s.until_secs
                    .map(|u| format!(" to {u} s"))
                    .unwrap_or_default()
            ));
        }
        out.push(Check {
            name,
            passed: !pool.is_empty() && share >= s.min_share,
            detail: format!("{served} of {} served ({:.1}%)", pool.len(), share * 100.0),
            // Headroom above the floor: 1.0 means exactly at the floor.
            used: (s.min_share < 1.0 && !pool.is_empty())
                .then(|| ((1.0 - share) / (1.0 - s.min_share)).clamp(0.0, 10.0)),
        });
    }
    for t in &e.never_forwarded {
        let pool: Vec<&RequestRecord> = obs.requests.iter().filter(|r| &r.template == t).collect();
        let forwarded = pool.iter().filter(|r| r.forwarded).count();
        let statuses: BTreeMap<u16, usize> = pool.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.status).or_default() += 1;
            m
        });
        out.push(Check {
            name: format!("{t} never reaches the upstream"),
            passed: forwarded == 0 && !pool.is_empty(),
            detail: format!(
                "{forwarded} of {} forwarded; the client got {}",
                pool.len(),
                statuses
                    .iter()
                    .map(|(s, n)| format!("{n}× {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            used: None,
        });
    }
    out
}

/// How far into the allowance from `origin` to `by_secs` a moment `t` lies.
fn share_of(t: u64, origin: u64, by_secs: u64) -> f64 {
    let by = by_secs * 1000;
    if by <= origin {
        return if t <= by { 0.0 } else { 1.0 };
    }
    t.saturating_sub(origin) as f64 / (by - origin) as f64
}

fn highest(obs: &Observation, scope: &str) -> u8 {
    obs.samples
        .iter()
        .map(|s| level_at(&s.levels, scope))
        .max()
        .unwrap_or(0)
}

fn level_reached(obs: &Observation, l: &LevelExpect, origin: u64) -> Check {
    let r = rank(&l.level).unwrap_or(0);
    let first = obs
        .samples
        .iter()
        .find(|s| level_at(&s.levels, &l.scope) >= r);
    let mut name = format!("{} reaches {}", l.scope, l.level);
    if let Some(by) = l.by_secs {
        name.push_str(&format!(" by t={by} s"));
    }
    match first {
        None => Check {
            name,
            passed: false,
            detail: format!(
                "never reached it (highest: {})",
                level_name(highest(obs, &l.scope))
            ),
            used: None,
        },
        Some(s) => Check {
            passed: l.by_secs.is_none_or(|by| s.t_ms <= by * 1000),
            detail: format!(
                "{} at t={}",
                level_name(level_at(&s.levels, &l.scope)),
                secs(s.t_ms)
            ),
            used: l.by_secs.map(|by| share_of(s.t_ms, origin, by)),
            name,
        },
    }
}

fn recovered(obs: &Observation, l: &LevelExpect, origin: u64) -> Check {
    let r = rank(&l.level).unwrap_or(0);
    let from = l.by_secs.map_or(obs.duration_ms, |b| b * 1000);
    let late = obs
        .samples
        .iter()
        .filter(|s| s.t_ms >= from)
        .find(|s| level_at(&s.levels, &l.scope) > r);
    let back = obs
        .samples
        .iter()
        .rev()
        .take_while(|s| level_at(&s.levels, &l.scope) <= r)
        .last()
        .map(|s| s.t_ms);
    let name = match l.by_secs {
        Some(by) => format!("{} back to {} by t={by} s", l.scope, l.level),
        None => format!("{} back to {} at the end", l.scope, l.level),
    };
    match late {
        Some(s) => Check {
            name,
            passed: false,
            detail: format!(
                "still at {} at t={}",
                level_name(level_at(&s.levels, &l.scope)),
                secs(s.t_ms)
            ),
            used: None,
        },
        None => Check {
            name,
            passed: true,
            detail: match back {
                Some(0) => "never left it".into(),
                Some(t) => format!("since t={}", secs(t)),
                None => "no sample".into(),
            },
            used: match (back, l.by_secs) {
                (Some(t), Some(by)) if t > 0 => Some(share_of(t, origin, by)),
                _ => None,
            },
        },
    }
}
