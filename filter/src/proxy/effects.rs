//! Acting on what the controls return: audit lines for events, and the
//! outbox of outgoing calls (alerts, verification copies, shadow mirrors).
//!
//! ## Why an outbox
//! The Rust SDK delivers a call's response to the context that dispatched
//! it, and drops it if that context is gone. A shadow mirror is dispatched
//! while serving a request whose stream ends long before the shadow model
//! answers, so calls are queued here (per VM) and dispatched by the root
//! context on its next tick: their responses then reach the root, which
//! outlives every stream. The cost is up to one tick period of delay.

use super::host::{self, Metric};
use crate::audit::{to_line, AlertEvent, AnomalyEvent, BreakerEvent};
use crate::controls::alerts::{self, Alert};
use crate::controls::Event;
use crate::engine::RequestContext;
use crate::policy::{CallTarget, Policy};
use proxy_wasm::types::LogLevel;
use std::cell::RefCell;

/// Calls waiting for the next tick. Bounded: a stuck alert cluster must not
/// grow memory without limit; the oldest calls are dropped (and logged).
pub const MAX_OUTBOX: usize = 256;

/// Why a call is made, and what to do with its answer.
#[derive(Debug, Clone)]
pub enum Purpose {
    Alert,
    Verification,
    Shadow {
        request_id: String,
        context: Box<RequestContext>,
    },
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub target: CallTarget,
    pub body: Vec<u8>,
    pub purpose: Purpose,
}

thread_local! {
    static OUTBOX: RefCell<Vec<Outgoing>> = const { RefCell::new(Vec::new()) };
}

pub fn enqueue(call: Outgoing) {
    OUTBOX.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        if outbox.len() >= MAX_OUTBOX {
            outbox.remove(0);
            host::log(
                LogLevel::Warn,
                "rheostat: outbox full, dropped the oldest call",
            );
        }
        outbox.push(call);
    });
}

pub fn drain() -> Vec<Outgoing> {
    OUTBOX.with(|outbox| std::mem::take(&mut *outbox.borrow_mut()))
}

/// Logs every event; queues alerts for their route.
pub fn emit(policy: &Policy, events: Vec<Event>, now_ms: u64) {
    for event in events {
        match event {
            Event::Breaker(t) => {
                let line = BreakerEvent {
                    event: "breaker",
                    policy: &policy.name,
                    scope: t.scope.label(),
                    from: t.from.name(),
                    to: t.to.name(),
                    reason: &t.reason,
                    at_ms: now_ms,
                };
                host::log(LogLevel::Warn, &to_line(&line));
            }
            Event::Anomaly { anomaly, tripped } => {
                let line = AnomalyEvent {
                    event: "anomaly",
                    policy: &policy.name,
                    scope: anomaly.scope.label(),
                    signal: anomaly.signal.name(),
                    window: anomaly.window,
                    value: anomaly.value,
                    baseline: anomaly.baseline,
                    requests: anomaly.requests,
                    tripped: tripped.map(|l| l.name()),
                    at_ms: now_ms,
                };
                host::log(LogLevel::Warn, &to_line(&line));
            }
            Event::Alert(alert) => send_alert(policy, &alert, now_ms),
        }
    }
}

fn send_alert(policy: &Policy, alert: &Alert, now_ms: u64) {
    let target = alerts::target(&policy.alerts, alert);
    let line = AlertEvent {
        event: "alert",
        policy: &policy.name,
        alert,
        cluster: target.map(|t| t.cluster.as_str()),
        at_ms: now_ms,
    };
    host::log(LogLevel::Warn, &to_line(&line));
    if let Some(target) = target {
        enqueue(Outgoing {
            target: target.clone(),
            body: alerts::render(&policy.alerts, &policy.name, alert).into_bytes(),
            purpose: Purpose::Alert,
        });
        Metric::counter(&format!(
            "rheostat.alerts_sent.{}",
            alerts::severity_name(alert.severity).to_ascii_lowercase()
        ))
        .increment(1);
    }
}
