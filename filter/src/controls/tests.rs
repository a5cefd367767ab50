//! The gate and the ledger together, on an in-memory store.

use super::*;
use crate::finding::Action;
use crate::ledger::MemoryStore;
use std::rc::Rc;

fn controls(json: &str) -> (Controls, MemoryStore) {
    let policy = Policy::from_json(json.as_bytes()).unwrap();
    let c = Controls::new(Rc::new(policy));
    let store = MemoryStore::default();
    c.prepare(&store, 0);
    (c, store)
}

fn subject(tenant: &str, route: &str) -> Subject {
    Subject {
        tenant: tenant.into(),
        route: route.into(),
        ..Default::default()
    }
}

fn upstream(status: u32) -> ExchangeRecord<'static> {
    ExchangeRecord {
        upstream: true,
        status,
        ..Default::default()
    }
}

#[test]
fn a_scoped_stop_stops_only_its_scope() {
    let (c, store) =
        controls(r#"{"controls": {"scopes": [{"tenant": "acme", "level": "scoped_stop"}]}}"#);
    let acme = subject("acme", "chat");
    let d = c.decide(
        &store,
        &acme,
        &c.scopes_of(&store, &acme),
        0,
        Phase::Headers,
    );
    assert_eq!(
        (d.level, d.action.clone(), d.scope.as_str()),
        (Level::ScopedStop, GateAction::Maintenance, "tenant=acme")
    );
    let other = subject("globex", "chat");
    let d = c.decide(
        &store,
        &other,
        &c.scopes_of(&store, &other),
        0,
        Phase::Headers,
    );
    assert_eq!((d.level, d.action), (Level::Normal, GateAction::Pass));
}

#[test]
fn the_highest_source_wins_and_an_override_is_seen_at_once() {
    let (c, store) = controls(
        r#"{"controls": {"level": "shed", "scopes": [{"route": "chat", "level": "degrade"}]}}"#,
    );
    let s = subject("acme", "chat");
    let scopes = c.scopes_of(&store, &s);
    assert_eq!(
        c.decide(&store, &s, &scopes, 0, Phase::Headers).level,
        Level::Degrade
    );
    let request =
        endpoints::parse_control(br#"{"level": "shadow", "scope": {"tenant": "acme"}}"#).unwrap();
    endpoints::apply_control(&store, &request, 0).unwrap();
    let d = c.decide(&store, &s, &scopes, 1, Phase::Headers);
    assert_eq!((d.level, d.source), (Level::Shadow, "override"));
    let clear =
        endpoints::parse_control(br#"{"level": "normal", "scope": {"tenant": "acme"}}"#).unwrap();
    endpoints::apply_control(&store, &clear, 2).unwrap();
    assert_eq!(
        c.decide(&store, &s, &scopes, 3, Phase::Headers).level,
        Level::Degrade
    );
}

#[test]
fn the_breaker_opens_on_the_exchange_that_crosses_the_rate_and_recovers_through_probes() {
    let (c, store) = controls(
        r#"{"controls": {"breaker": {"error_rate": 0.2, "min_requests": 10, "cooldown_secs": 10, "probes": 2, "close_after": 2, "scopes": ["route"]}}}"#,
    );
    let s = subject("", "chat");
    let scopes = c.scopes_of(&store, &s);
    for _ in 0..8 {
        assert!(c.record(&store, &scopes, 0, &upstream(200)).is_empty());
    }
    assert!(
        c.record(&store, &scopes, 0, &upstream(502)).is_empty(),
        "9 exchanges: under min volume"
    );
    assert!(
        c.record(&store, &scopes, 0, &upstream(502)).is_empty(),
        "2 of 10 is not over 20%"
    );
    let events = c.record(&store, &scopes, 0, &upstream(503));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Breaker(t) if t.to == BreakerState::Open)),
        "{events:?}"
    );
    let d = c.decide(&store, &s, &scopes, 5_000, Phase::Headers);
    assert_eq!((d.level, d.action), (Level::Breaker, GateAction::Fallback));
    let probe1 = c.decide(&store, &s, &scopes, 10_000, Phase::Headers);
    let probe2 = c.decide(&store, &s, &scopes, 10_001, Phase::Headers);
    assert_eq!(
        (probe1.action.clone(), probe1.probes.len()),
        (GateAction::Pass, 1)
    );
    assert_eq!(probe2.probes.len(), 1);
    assert_eq!(
        c.decide(&store, &s, &scopes, 10_002, Phase::Headers).action,
        GateAction::Fallback
    );
    for p in [&probe1, &probe2] {
        let r = ExchangeRecord {
            probes: &p.probes,
            ..upstream(200)
        };
        c.record(&store, &scopes, 10_100, &r);
    }
    let d = c.decide(&store, &s, &scopes, 10_200, Phase::Headers);
    assert_eq!((d.level, d.action), (Level::Normal, GateAction::Pass));
}

#[test]
fn shedding_answers_429_once_the_bucket_is_empty() {
    let (c, store) = controls(
        r#"{"controls": {"level": "shed", "shed": {"rate_per_sec": 1, "burst": 2, "retry_after_secs": 1}}}"#,
    );
    let s = subject("a", "chat");
    let scopes = c.scopes_of(&store, &s);
    assert_eq!(
        c.decide(&store, &s, &scopes, 0, Phase::Headers).action,
        GateAction::Pass
    );
    assert_eq!(
        c.decide(&store, &s, &scopes, 0, Phase::Headers).action,
        GateAction::Pass
    );
    assert_eq!(
        c.decide(&store, &s, &scopes, 0, Phase::Headers).action,
        GateAction::RateLimited {
            retry_after_secs: 1
        }
    );
    assert_eq!(
        c.decide(&store, &s, &scopes, 1_000, Phase::Headers).action,
        GateAction::Pass
    );
}

#[test]
fn p0_findings_raise_one_alert_per_category_per_period() {
    let (c, store) = controls(r#"{"alerts": {"finding_severity": "P1", "dedup_secs": 60}}"#);
    let s = subject("a", "chat");
    let scopes = c.scopes_of(&store, &s);
    let finding = Finding {
        detector: "email".into(),
        category: Category::Privacy,
        severity: Severity::P0,
        action: Action::Redact,
        start: 0,
        end: 5,
        sample: "j***@e***.com".into(),
    };
    let findings = [finding];
    let r = ExchangeRecord {
        findings: &findings,
        ..upstream(200)
    };
    let first = c.record(&store, &scopes, 0, &r);
    assert!(
        matches!(&first[..], [Event::Alert(a)] if a.sample == "j***@e***.com" && a.scope == "route=chat"),
        "{first:?}"
    );
    assert!(c.record(&store, &scopes, 1_000, &r).is_empty());
}

#[test]
fn a_refusal_storm_trips_the_configured_level_for_its_scope() {
    let (c, store) = controls(
        r#"{"window_secs": 10, "controls": {"anomaly": {"warmup_windows": 2, "min_requests": 10, "scopes": ["model"], "trip": {"refusal": "degrade"}}}}"#,
    );
    let s = Subject {
        model: "m1".into(),
        route: "chat".into(),
        ..Default::default()
    };
    let scopes = c.scopes_of(&store, &s);
    let refusal = Finding {
        detector: "refusal".into(),
        category: Category::Reliability,
        severity: Severity::P3,
        action: Action::Flag,
        start: 0,
        end: 1,
        sample: String::new(),
    };
    let refused = [refusal];
    for w in 0..3u64 {
        for i in 0..20 {
            let findings: &[Finding] = if w == 2 || i == 0 { &refused } else { &[] };
            c.record(
                &store,
                &scopes,
                w * 10_000 + i,
                &ExchangeRecord {
                    findings,
                    ..upstream(200)
                },
            );
        }
        let events = c.evaluate_window(&store, w, (w + 1) * 10_000);
        assert_eq!(
            events.iter().any(|e| matches!(e, Event::Anomaly { .. })),
            w == 2,
            "window {w}: {events:?}"
        );
    }
    let d = c.decide(&store, &s, &scopes, 30_500, Phase::Headers);
    assert_eq!(
        (d.level, d.source, d.action),
        (Level::Degrade, "anomaly", GateAction::Degrade)
    );
}

#[test]
fn feedback_alone_cannot_open_the_breaker_without_volume() {
    let (c, store) = controls(
        r#"{"controls": {"breaker": {"min_requests": 10, "errors": ["negative_feedback"], "scopes": ["global"]}}}"#,
    );
    let scopes = vec![scope::Scope::global()];
    for _ in 0..100 {
        assert!(c
            .negative_feedback(&store, &scopes, 0)
            .iter()
            .all(|e| !matches!(e, Event::Breaker(_))));
    }
    // The tenth real exchange brings the volume; the feedback already
    // counted makes the rate, and the breaker opens on that exchange.
    let opened: Vec<usize> = (0..10)
        .filter(|_| {
            c.record(&store, &scopes, 0, &upstream(200))
                .iter()
                .any(|e| matches!(e, Event::Breaker(t) if t.to == BreakerState::Open))
        })
        .collect();
    assert_eq!(opened, [9]);
}

#[test]
fn a_model_scope_is_judged_once_the_body_names_the_model() {
    let (c, store) =
        controls(r#"{"controls": {"scopes": [{"model": "m-old", "level": "degrade"}]}}"#);
    let mut s = subject("a", "chat");
    let at_headers = c.decide(&store, &s, &c.scopes_of(&store, &s), 0, Phase::Headers);
    assert_eq!(at_headers.level, Level::Normal);
    s.model = "m-old".into();
    let model_scope: Vec<_> = c
        .scopes_of(&store, &s)
        .into_iter()
        .filter(|x| x.kind == ScopeKind::Model)
        .collect();
    let d = c.decide(&store, &s, &model_scope, 0, Phase::Model);
    assert_eq!((d.level, d.action), (Level::Degrade, GateAction::Degrade));
}

#[test]
fn a_blocked_prompt_is_counted_with_its_findings_but_never_as_a_probe() {
    let (c, store) = controls(
        r#"{"controls": {"breaker": {"errors": ["blocked"], "min_requests": 2, "error_rate": 0.5, "scopes": ["global"]}}}"#,
    );
    let scopes = vec![scope::Scope::global()];
    let jailbreak = Finding {
        detector: "injection".into(),
        category: Category::Security,
        severity: Severity::P2,
        action: Action::Block,
        start: 0,
        end: 1,
        sample: String::new(),
    };
    let findings = [jailbreak];
    let blocked = ExchangeRecord {
        blocked: true,
        findings: &findings,
        ..Default::default()
    };
    assert!(c.record(&store, &scopes, 0, &blocked).is_empty());
    let events = c.record(&store, &scopes, 0, &blocked);
    assert!(
        events.iter().any(|e| matches!(e, Event::Breaker(_))),
        "{events:?}"
    );
    let counts = c.ledger.read(&store, &scopes[0], 0);
    assert_eq!(
        (counts.requests, counts.blocked, counts.with_findings[0]),
        (2, 2, 2)
    );
}

#[test]
fn the_breaker_error_kinds_use_the_documented_names() {
    let p = Policy::from_json(
        br#"{"controls": {"breaker": {"errors": ["upstream_5xx", "upstream_timeout"]}}}"#,
    )
    .unwrap();
    assert_eq!(
        p.controls.breaker.errors,
        [ErrorKind::Upstream5xx, ErrorKind::UpstreamTimeout]
    );
}
