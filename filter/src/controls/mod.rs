//! Graduated containment: the ladder `normal → shed → breaker → degrade →
//! shadow → scoped_stop → global_stop`, decided per request from every
//! source at once, and the ledger that trips it.
//!
//! ## Where a level comes from
//! - the pushed policy (`controls.level` and `controls.scopes`);
//! - operator overrides written by the control endpoint ([`levels`]);
//! - the ledger: breakers per scope ([`breaker`]) and levels tripped by
//!   anomalies ([`anomaly`], [`levels::Trip`]).
//!
//! The effective level is the highest of these over every scope the
//! request belongs to. Nothing a client sends is a source: tenant and region
//! come from headers the policy names, which a trusted filter (JWT
//! authentication, an ingress) must set ahead of Rheostat.
//!
//! Everything here works on a [`SharedStore`] and returns data (decisions,
//! events, alerts); the adapters act on it. All state lives in the store,
//! so it survives configuration pushes and is the same for every worker.

pub mod alerts;
pub mod anomaly;
pub mod breaker;
pub mod bucket;
pub mod counts;
pub mod endpoints;
pub mod levels;
pub mod scope;

use crate::audit::Subject;
use crate::finding::{Category, Finding, Severity};
use crate::ledger::SharedStore;
use crate::policy::{ErrorKind, Level, Policy, ScopeKind, ScopeMatch};
use alerts::Alert;
use breaker::{Admission, BreakerState, Transition};
use counts::{ScopeCounts, ScopeLedger};
use scope::{Registry, Scope};

/// When the gate runs: at request headers (the model is not known yet), or
/// once the body named the model (only model scopes are judged then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Headers,
    Model,
}

/// What the gate tells the adapter to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAction {
    Pass,
    /// 429 with `retry-after`.
    RateLimited {
        retry_after_secs: u64,
    },
    /// Answer with the fallback completion.
    Fallback,
    /// Send on to the fallback model / route.
    Degrade,
    /// Answer with the fallback and mirror the request to the shadow cluster.
    Shadow,
    /// 503 maintenance.
    Maintenance,
}

/// The gate's decision for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub level: Level,
    /// Which source set the level: `policy`, `override`, `anomaly`, `breaker` (or `none`).
    pub source: &'static str,
    /// The scope that set it (`global`, `tenant=acme`).
    pub scope: String,
    pub action: GateAction,
    /// Breakers this request passes as a half-open probe.
    pub probes: Vec<Scope>,
    pub events: Vec<Event>,
    /// Shared state could not be read or written: fail-closed routes refuse.
    pub store_failed: bool,
}

/// Something the ladder did or saw, for audit lines and alerts.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Breaker(Transition),
    Anomaly {
        anomaly: anomaly::Anomaly,
        tripped: Option<Level>,
    },
    Alert(Alert),
}

/// How an exchange ended, for the ledger.
#[derive(Debug, Clone, Default)]
pub struct ExchangeRecord<'a> {
    /// The request reached the upstream (not answered by the filter first).
    pub upstream: bool,
    /// Answered locally by the ladder (fallback, 429, maintenance).
    pub contained: bool,
    pub status: u32,
    /// No response arrived (reset or timeout).
    pub timed_out: bool,
    /// The filter blocked the response, or (with `upstream` false) the prompt.
    pub blocked: bool,
    pub format_failed: bool,
    pub findings: &'a [Finding],
    pub latency_ms: u64,
    pub output_tokens: u64,
    pub probes: &'a [Scope],
}

/// The compiled controls of one policy. Cheap to keep per configuration;
/// all state is in the store.
#[derive(Debug)]
pub struct Controls {
    policy: std::rc::Rc<Policy>,
    pub registry: Registry,
    pub ledger: ScopeLedger,
}

impl Controls {
    pub fn new(policy: std::rc::Rc<Policy>) -> Controls {
        let registry = Registry::new(policy.controls.max_scopes_per_kind);
        let ledger = ScopeLedger::new(policy.window_secs * 1000);
        Controls {
            policy,
            registry,
            ledger,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Creates every shared key the data path will update, before traffic
    /// (Envoy ignores the cas of a new key, so racing first writes could
    /// lose an update). Existing keys are left alone: state survives pushes.
    pub fn prepare(&self, store: &dyn SharedStore, now_ms: u64) {
        for kind in ScopeKind::ALL {
            for index in self.registry.all_indices(kind) {
                let scope = Scope {
                    kind,
                    index,
                    value: String::new(),
                };
                self.ledger.ensure(store, &scope.key());
                breaker::ensure(store, &scope);
                levels::ensure_trip(store, &scope);
                for category in CATEGORIES {
                    crate::lease::ensure(store, &alerts::dedup_key(&scope, category));
                }
                bucket::ensure(store, &scope.key(), self.policy.controls.shed.burst, now_ms);
            }
        }
        levels::ensure_overrides(store);
        self.registry.ensure_lists(store);
        for s in &self.policy.controls.scopes {
            bucket::ensure(
                store,
                &bucket_label(&s.scope),
                self.policy.controls.shed.burst,
                now_ms,
            );
        }
        bucket::ensure(store, "global", self.policy.controls.shed.burst, now_ms);
        endpoints::ensure_inventory(store, &self.registry);
        for bucket in 0..endpoints::FEEDBACK_BUCKETS {
            endpoints::feedback_counter(bucket, self.ledger.window_ms()).ensure(store);
        }
    }

    pub fn scopes_of(&self, store: &dyn SharedStore, subject: &Subject) -> Vec<Scope> {
        self.registry.scopes_of(store, subject)
    }

    /// The level for a request and what to do about it, from every source
    /// over `scopes`. Claims a half-open probe or a shed token as a side
    /// effect, so it runs once per scope: at request headers for everything
    /// but the model, and again with [`Phase::Model`] once the body names it.
    pub fn decide(
        &self,
        store: &dyn SharedStore,
        subject: &Subject,
        scopes: &[Scope],
        now_ms: u64,
        phase: Phase,
    ) -> Decision {
        let c = &self.policy.controls;
        let global = if phase == Phase::Headers {
            c.level
        } else {
            Level::Normal
        };
        let in_phase = |m: &ScopeMatch| phase == Phase::Headers || m.model.is_some();
        let mut best = (global, "policy", "global".to_string(), None::<String>);
        let mut raise =
            |level: Level, source: &'static str, scope: String, bucket: Option<String>| {
                if level > best.0 {
                    best = (level, source, scope, bucket);
                }
            };
        for s in &c.scopes {
            if in_phase(&s.scope) && matches(&s.scope, subject) {
                raise(
                    s.level,
                    "policy",
                    s.scope.label(),
                    Some(bucket_label(&s.scope)),
                );
            }
        }
        for o in levels::overrides(store) {
            if o.active(now_ms) && in_phase(&o.scope) && matches(&o.scope, subject) {
                let bucket = if o.scope.is_global() {
                    "global".into()
                } else {
                    bucket_label(&o.scope)
                };
                raise(o.level, "override", o.scope.label(), Some(bucket));
            }
        }
        let mut open_breakers = Vec::new();
        for scope in scopes {
            if let Some(t) = levels::trip(store, scope, now_ms) {
                raise(t.level, "anomaly", scope.label(), Some(scope.key()));
            }
            if c.breaker.enabled && c.breaker.scopes.contains(&scope.kind) {
                let r = breaker::read(store, scope);
                if r.state != BreakerState::Closed {
                    open_breakers.push(scope.clone());
                    raise(Level::Breaker, "breaker", scope.label(), None);
                }
            }
        }
        let (level, source, scope_label, bucket) = best;
        let mut decision = Decision {
            level,
            source: if level == Level::Normal {
                "none"
            } else {
                source
            },
            scope: scope_label,
            action: GateAction::Pass,
            probes: Vec::new(),
            events: Vec::new(),
            store_failed: false,
        };
        decision.action = match level {
            Level::Normal => GateAction::Pass,
            Level::Shed => {
                let label = bucket.unwrap_or_else(|| "global".into());
                bucket::ensure(store, &label, c.shed.burst, now_ms);
                match bucket::take(store, &label, c.shed.rate_per_sec, c.shed.burst, now_ms) {
                    Ok(None) => GateAction::Pass,
                    Ok(Some(wait_ms)) => GateAction::RateLimited {
                        retry_after_secs: c.shed.retry_after_secs.max(wait_ms.div_ceil(1000)),
                    },
                    Err(_) => {
                        decision.store_failed = true;
                        GateAction::Pass
                    }
                }
            }
            Level::Breaker => {
                let mut action = GateAction::Pass;
                if decision.source != "breaker" {
                    action = GateAction::Fallback;
                }
                for scope in &open_breakers {
                    match breaker::admit(store, scope, &c.breaker, now_ms) {
                        Ok((Admission::Pass, _)) => {}
                        Ok((Admission::Probe, transition)) => {
                            decision.probes.push(scope.clone());
                            decision.events.extend(transition.map(Event::Breaker));
                        }
                        Ok((Admission::Fallback, _)) => action = GateAction::Fallback,
                        Err(_) => {
                            decision.store_failed = true;
                            action = GateAction::Fallback;
                        }
                    }
                }
                action
            }
            Level::Degrade => GateAction::Degrade,
            Level::Shadow => GateAction::Shadow,
            Level::ScopedStop | Level::GlobalStop => GateAction::Maintenance,
        };
        decision
    }

    /// Counts a finished exchange in every scope it belongs to; moves
    /// breakers; raises finding alerts. Returns what happened.
    pub fn record(
        &self,
        store: &dyn SharedStore,
        scopes: &[Scope],
        now_ms: u64,
        record: &ExchangeRecord<'_>,
    ) -> Vec<Event> {
        let c = &self.policy.controls;
        let mut delta = ScopeCounts::default();
        if record.contained {
            delta.contained = 1;
        } else if record.upstream || record.blocked {
            // A prompt blocked before the upstream is still an exchange the
            // ledger must see: jailbreak floods show up in the security
            // signal and, if the policy counts blocks, in the breaker.
            delta.requests = 1;
            delta.upstream_5xx =
                u64::from((500..600).contains(&record.status) && !record.timed_out);
            delta.upstream_timeouts = u64::from(record.timed_out);
            delta.blocked = u64::from(record.blocked);
            delta.format_failures = u64::from(record.format_failed);
            delta.refusals = u64::from(record.findings.iter().any(|f| f.detector == "refusal"));
            for (i, category) in CATEGORIES.iter().enumerate() {
                delta.with_findings[i] =
                    u64::from(record.findings.iter().any(|f| f.category == *category));
            }
            delta.latency_ms = record.latency_ms;
            delta.output_tokens = record.output_tokens;
        } else {
            return Vec::new();
        }
        let window = self.ledger.window_of(now_ms);
        let mut events = Vec::new();
        for scope in scopes {
            let Ok(after) = self.ledger.add(store, scope, now_ms, delta) else {
                continue;
            };
            if !(c.breaker.enabled && c.breaker.scopes.contains(&scope.kind)) {
                continue;
            }
            let transition = if record.upstream && record.probes.contains(scope) {
                let good = delta.errors(&c.breaker.errors) == 0;
                breaker::probe_result(store, scope, &c.breaker, good, window, &after, now_ms)
            } else {
                breaker::observe(store, scope, &c.breaker, window, &after, now_ms)
            };
            if let Ok(Some(t)) = transition {
                if t.to == BreakerState::Open {
                    events.extend(self.alert_for(store, scope, breaker_alert(&t), now_ms));
                }
                events.push(Event::Breaker(t));
            }
        }
        events.extend(self.finding_alerts(store, scopes, record.findings, now_ms));
        events
    }

    /// Alerts for findings at or above the policy's alert severity, one per
    /// category, deduplicated per route scope (or global).
    fn finding_alerts(
        &self,
        store: &dyn SharedStore,
        scopes: &[Scope],
        findings: &[Finding],
        now_ms: u64,
    ) -> Vec<Event> {
        let threshold = self.policy.alerts.finding_severity;
        let scope = scopes
            .iter()
            .find(|s| s.kind == ScopeKind::Route)
            .cloned()
            .unwrap_or_else(Scope::global);
        let mut events = Vec::new();
        for category in CATEGORIES {
            let hits: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.category == category && f.severity <= threshold)
                .collect();
            let Some(worst) = hits.iter().min_by_key(|f| f.severity) else {
                continue;
            };
            let alert = Alert {
                severity: worst.severity,
                category,
                scope: scope.label(),
                reason: format!("{} finding(s) of {}", hits.len(), worst.detector),
                count: hits.len() as u64,
                sample: worst.sample.clone(),
                containment: format!("{:?}", worst.action).to_lowercase(),
            };
            events.extend(self.alert_for(store, &scope, alert, now_ms));
        }
        events
    }

    /// The alert as an event, if this worker won the dedup claim.
    pub fn alert_for(
        &self,
        store: &dyn SharedStore,
        scope: &Scope,
        alert: Alert,
        now_ms: u64,
    ) -> Option<Event> {
        alerts::claim(store, &self.policy.alerts, scope, alert.category, now_ms)
            .then_some(Event::Alert(alert))
    }

    /// Counts negative feedback in the scopes of the answer it is about; the
    /// breaker may open if the policy counts feedback as an error (it still
    /// needs `min_requests` real exchanges in the window).
    pub fn negative_feedback(
        &self,
        store: &dyn SharedStore,
        scopes: &[Scope],
        now_ms: u64,
    ) -> Vec<Event> {
        let c = &self.policy.controls;
        let delta = ScopeCounts {
            negative_feedback: 1,
            ..Default::default()
        };
        let window = self.ledger.window_of(now_ms);
        let mut events = Vec::new();
        for scope in scopes {
            let Ok(after) = self.ledger.add(store, scope, now_ms, delta) else {
                continue;
            };
            if c.breaker.enabled
                && c.breaker.scopes.contains(&scope.kind)
                && c.breaker.errors.contains(&ErrorKind::NegativeFeedback)
            {
                if let Ok(Some(t)) =
                    breaker::observe(store, scope, &c.breaker, window, &after, now_ms)
                {
                    events.extend(self.alert_for(store, scope, breaker_alert(&t), now_ms));
                    events.push(Event::Breaker(t));
                }
            }
        }
        events
    }

    /// `POST /.rheostat/feedback` after its body: validated, rate-limited
    /// per client, matched to the answer's scopes by its response id, then
    /// counted (negative verdicts) and alerted (safety reports). Returns the
    /// status, the JSON answer and the events to emit.
    pub fn feedback(
        &self,
        store: &dyn SharedStore,
        client: &str,
        body: &[u8],
        now_ms: u64,
    ) -> (u16, serde_json::Value, Vec<Event>) {
        use endpoints::Verdict;
        let policy = &self.policy.controls.feedback;
        let error = |status: u16, message: &str| {
            (status, serde_json::json!({ "error": message }), Vec::new())
        };
        let request = match endpoints::parse_feedback(body, policy.max_body_bytes) {
            Ok(request) => request,
            Err(e) => return error(400, &e),
        };
        let bucket = endpoints::feedback_bucket(store, client);
        let counter = endpoints::feedback_counter(bucket, self.ledger.window_ms());
        if counter.add(store, now_ms, 1).unwrap_or(u64::MAX) > policy.per_client_per_window {
            return error(429, "too much feedback from this client; try later");
        }
        let scopes =
            match endpoints::scopes_of_response_id(store, &self.registry, &request.response_id) {
                Ok(scopes) => scopes,
                Err(e) => return error(404, &e),
            };
        let mut events = Vec::new();
        if request.verdict != Verdict::ThumbsUp {
            events = self.negative_feedback(store, &scopes, now_ms);
        }
        if request.verdict == Verdict::SafetyReport {
            let scope = scopes
                .iter()
                .find(|s| s.kind == ScopeKind::Route)
                .cloned()
                .unwrap_or_else(Scope::global);
            let alert = Alert {
                severity: Severity::P1,
                category: request.category.unwrap_or(Category::Safety),
                scope: scope.label(),
                reason: "a user filed a safety report".into(),
                count: 1,
                sample: String::new(),
                containment: "none yet: review the answer by its response id".into(),
            };
            events.extend(self.alert_for(store, &scope, alert, now_ms));
        }
        (202, serde_json::json!({ "accepted": true }), events)
    }

    /// Judges the completed `window` of every scope with a baseline, trips
    /// the levels the policy asks for, raises alerts. Run by one worker per
    /// window (the tick lease holder).
    pub fn evaluate_window(&self, store: &dyn SharedStore, window: u64, now_ms: u64) -> Vec<Event> {
        let a = &self.policy.controls.anomaly;
        if !a.enabled {
            return Vec::new();
        }
        let mut events = Vec::new();
        for kind in &a.scopes {
            for scope in self.registry.scopes(store, *kind) {
                let counts = self.ledger.read(store, &scope, window);
                let Ok(found) = anomaly::evaluate(store, &scope, a, window, &counts) else {
                    continue;
                };
                for anomaly in found {
                    let tripped = a.trip.get(&anomaly.signal).copied();
                    if let Some(level) = tripped {
                        let until =
                            (window + 1 + u64::from(a.hold_windows)) * self.ledger.window_ms();
                        let _ = levels::set_trip(
                            store,
                            &scope,
                            levels::Trip {
                                level,
                                until_ms: until,
                            },
                            now_ms,
                        );
                        if level == Level::Shed {
                            bucket::ensure(
                                store,
                                &scope.key(),
                                self.policy.controls.shed.burst,
                                now_ms,
                            );
                        }
                    }
                    let alert = Alert {
                        severity: Severity::P1,
                        category: anomaly.signal.category(),
                        scope: scope.label(),
                        reason: format!(
                            "{} at {:.3} vs baseline {:.3} over {} exchanges",
                            anomaly.signal.name(),
                            anomaly.value,
                            anomaly.baseline,
                            anomaly.requests
                        ),
                        count: anomaly.requests,
                        sample: String::new(),
                        containment: tripped
                            .map_or("none (observe)".into(), |l| format!("level {}", l.name())),
                    };
                    events.extend(self.alert_for(store, &scope, alert, now_ms));
                    events.push(Event::Anomaly { anomaly, tripped });
                }
            }
        }
        events
    }

    /// The highest level in force per scope kind right now (from every
    /// source), for gauges and the status endpoint.
    pub fn levels_by_kind(&self, store: &dyn SharedStore, now_ms: u64) -> Vec<(ScopeKind, Level)> {
        let c = &self.policy.controls;
        let overrides = levels::overrides(store);
        ScopeKind::ALL
            .into_iter()
            .map(|kind| {
                let mut level = if kind == ScopeKind::Global {
                    c.level
                } else {
                    Level::Normal
                };
                let kind_of = |m: &ScopeMatch| match kind {
                    ScopeKind::Global => m.is_global(),
                    ScopeKind::Tenant => m.tenant.is_some(),
                    ScopeKind::Region => m.region.is_some(),
                    ScopeKind::Route => m.route.is_some(),
                    ScopeKind::Model => m.model.is_some(),
                };
                for s in c.scopes.iter().filter(|s| kind_of(&s.scope)) {
                    level = level.max(s.level);
                }
                for o in overrides
                    .iter()
                    .filter(|o| o.active(now_ms) && kind_of(&o.scope))
                {
                    level = level.max(o.level);
                }
                for scope in self.registry.scopes(store, kind) {
                    if let Some(t) = levels::trip(store, &scope, now_ms) {
                        level = level.max(t.level);
                    }
                    if c.breaker.scopes.contains(&kind)
                        && breaker::read(store, &scope).state != BreakerState::Closed
                    {
                        level = level.max(Level::Breaker);
                    }
                }
                (kind, level)
            })
            .collect()
    }
}

const CATEGORIES: [Category; 4] = [
    Category::Security,
    Category::Safety,
    Category::Reliability,
    Category::Privacy,
];

fn breaker_alert(t: &Transition) -> Alert {
    Alert {
        severity: Severity::P1,
        category: Category::Reliability,
        scope: t.scope.label(),
        reason: format!("circuit breaker opened: {}", t.reason),
        count: 1,
        sample: String::new(),
        containment: "breaker open: the fallback answer is served".into(),
    }
}

/// Whether a pushed or overridden scope covers the request.
pub fn matches(m: &ScopeMatch, subject: &Subject) -> bool {
    let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    field(&m.tenant, &subject.tenant)
        && field(&m.region, &subject.region)
        && field(&m.route, &subject.route)
        && field(&m.model, &subject.model)
}

/// The token bucket of a pushed scope.
pub fn bucket_label(m: &ScopeMatch) -> String {
    format!("p/{}", m.label())
}

#[cfg(test)]
mod tests;
