//! The root context: one per worker VM and configuration. Owns the compiled
//! policy, the worker's identity, the tick, and creates stream contexts.

use super::effects::{self, Outgoing, Purpose};
use super::host::{self, Metric, ProxyStore};
use super::http::Exchange;
use crate::audit::{to_line, ShadowEvent, TickEvent};
use crate::codec::Provider;
use crate::controls::breaker;
use crate::controls::endpoints::ensure_secret;
use crate::controls::scope::Scope;
use crate::controls::Controls;
use crate::detect::redact::PseudonymKey;
use crate::engine::{Engine, RequestContext, ResponseMode};
use crate::lease::{claim_period, TICK_LEASE_KEY};
use crate::ledger::{update_shared, WindowCounter};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

/// Identity of this VM among the workers sharing our `vm_id`. A static, not
/// a root-context field: Envoy reuses the VM across configuration changes
/// (new root context, statics persist), and the identity must not change.
static WORKER_ID: OnceLock<u32> = OnceLock::new();
const WORKER_SEQUENCE_KEY: &str = "rheostat/workers";

/// The lease that elects one worker per window to judge anomalies.
const WINDOW_LEASE_KEY: &str = "rheostat/lease/window";

/// Everything a stream needs from the configuration, shared read-only.
pub struct Shared {
    pub engine: Rc<Engine>,
    pub controls: Controls,
    /// Identifies the configuration in status output (SipHash of its bytes).
    pub policy_hash: String,
    /// Per-VM secret behind per-stream pseudonyms, so tokens cannot be
    /// linked across workers or restarts.
    pub pseudonym_secret: PseudonymKey,
    pub requests: WindowCounter,
    pub requests_total: Metric,
}

pub struct Root {
    shared: Option<Rc<Shared>>,
    window_requests_gauge: Metric,
    /// Calls this root dispatched, by token.
    pending: HashMap<u32, Purpose>,
}

impl Root {
    pub fn new() -> Self {
        Root {
            shared: None,
            window_requests_gauge: Metric::gauge("rheostat.window_requests"),
            pending: HashMap::new(),
        }
    }

    fn dispatch_outbox(&mut self) {
        for Outgoing {
            target,
            body,
            purpose,
        } in effects::drain()
        {
            let headers = vec![
                (":method", "POST"),
                (":path", target.path.as_str()),
                (":authority", target.authority()),
                ("content-type", "application/json"),
            ];
            match hostcalls::dispatch_http_call(
                &target.cluster,
                headers,
                Some(&body),
                vec![],
                Duration::from_millis(target.timeout_ms),
            ) {
                Ok(token) => {
                    self.pending.insert(token, purpose);
                }
                Err(status) => host::log(
                    LogLevel::Warn,
                    &format!(
                        "rheostat: call to cluster {:?} not sent ({status:?})",
                        target.cluster
                    ),
                ),
            }
        }
    }

    /// The shadow model's answer: scanned like a real response, findings logged.
    fn shadow_answered(&self, request_id: &str, context: &RequestContext, body_size: usize) {
        let Some(shared) = &self.shared else { return };
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let content_type =
            hostcalls::get_map_value(MapType::HttpCallResponseHeaders, "content-type")
                .ok()
                .flatten();
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let engine = &shared.engine;
        let key = PseudonymKey::derive(&shared.pseudonym_secret, request_id.as_bytes());
        let findings = match engine.response_mode(context, content_type.as_deref(), None) {
            ResponseMode::Stream(provider) => {
                let (mut stream, source) = engine.open_stream(context, provider, key);
                stream.push(&body);
                stream.finish();
                stream
                    .take_findings()
                    .into_iter()
                    .filter(|f| !f.repeat)
                    .filter_map(|f| source.finding(f.tag, f.start, f.end))
                    .collect()
            }
            ResponseMode::Buffer(provider) => {
                engine
                    .inspect_response_body(context, provider, &body, key)
                    .findings
            }
            ResponseMode::Pass(_) | ResponseMode::Refuse(_) => {
                let provider = context.provider.unwrap_or(Provider::Unknown);
                engine
                    .inspect_response_body(context, provider, &body, key)
                    .findings
            }
        };
        let event = ShadowEvent {
            event: "shadow",
            policy: &engine.policy().name,
            request_id,
            status,
            findings: &findings,
            at_ms: host::now_ms(),
        };
        host::log(LogLevel::Info, &to_line(&event));
    }

    /// Once per window (one worker): judge the window that just closed.
    fn close_window(&self, shared: &Shared, now: u64) {
        let window = shared.controls.ledger.window_of(now);
        if window == 0 {
            return;
        }
        if !matches!(
            claim_period(&ProxyStore, WINDOW_LEASE_KEY, window, worker_id()),
            Ok(true)
        ) {
            return;
        }
        let events = shared
            .controls
            .evaluate_window(&ProxyStore, window - 1, now);
        effects::emit(shared.engine.policy(), events, now);
    }

    /// Level and breaker gauges (one worker per tick sets them).
    fn set_gauges(&self, shared: &Shared, now: u64) {
        for (kind, level) in shared.controls.levels_by_kind(&ProxyStore, now) {
            Metric::gauge(&format!("rheostat.level.{}", kind.name())).set(u64::from(level.rank()));
        }
        let global = breaker::read(&ProxyStore, &Scope::global()).state;
        Metric::gauge("rheostat.breaker.state").set(global.gauge());
        let open = crate::policy::ScopeKind::ALL
            .into_iter()
            .flat_map(|kind| shared.controls.registry.scopes(&ProxyStore, kind))
            .filter(|scope| {
                breaker::read(&ProxyStore, scope).state != breaker::BreakerState::Closed
            })
            .count();
        Metric::gauge("rheostat.breakers_open").set(open as u64);
    }
}

fn worker_id() -> u32 {
    *WORKER_ID.get_or_init(|| {
        let written = update_shared(&ProxyStore, WORKER_SEQUENCE_KEY, |current| {
            let n = current
                .and_then(|b| b.get(0..4)?.try_into().ok())
                .map_or(0, u32::from_le_bytes);
            Some((n + 1).to_le_bytes().to_vec())
        });
        written
            .ok()
            .flatten()
            .and_then(|b| b.get(0..4)?.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    })
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        match self.pending.remove(&token_id) {
            Some(Purpose::Shadow {
                request_id,
                context,
            }) => self.shadow_answered(&request_id, &context, body_size),
            Some(Purpose::Alert | Purpose::Verification) => {
                let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "none".into());
                if !status.starts_with('2') {
                    host::log(
                        LogLevel::Warn,
                        &format!("rheostat: an outgoing call answered {status}"),
                    );
                }
            }
            None => {}
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        worker_id();
        true
    }

    /// Returning false makes Envoy reject (NACK) the new configuration and
    /// keep serving with the previous one, so parse fully before replacing.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let engine = match Engine::from_json(&bytes) {
            Ok(engine) => engine,
            Err(e) => {
                host::log(LogLevel::Error, &format!("rheostat: invalid policy: {e}"));
                return false;
            }
        };
        let policy = engine.policy();
        let requests = WindowCounter::new("requests", policy.window_secs * 1000);
        requests.ensure(&ProxyStore);
        let now_ms = host::now_ms();
        let controls = Controls::new(Rc::new(policy.clone()));
        controls.prepare(&ProxyStore, now_ms);
        for key in [TICK_LEASE_KEY, WINDOW_LEASE_KEY] {
            crate::lease::ensure(&ProxyStore, key);
        }
        let _ = proxy_wasm::hostcalls::set_tick_period(Duration::from_millis(policy.tick_ms));
        host::log(
            LogLevel::Info,
            &format!(
                "rheostat: worker {} configured: {}",
                worker_id(),
                engine.summary()
            ),
        );
        let now_ns = proxy_wasm::hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        let pseudonym_secret = PseudonymKey::new(now_ns, u64::from(worker_id()) << 32 | 0x5eed);
        ensure_secret(&ProxyStore, &pseudonym_secret);
        self.shared = Some(Rc::new(Shared {
            engine: Rc::new(engine),
            controls,
            policy_hash: format!("{:016x}", PseudonymKey::new(0, 0).mac(&bytes)),
            pseudonym_secret,
            requests,
            requests_total: Metric::counter("rheostat.requests_total"),
        }));
        true
    }

    /// Every worker ticks and sends what its streams queued; only the one
    /// that claims the period does the shared work.
    fn on_tick(&mut self) {
        self.dispatch_outbox();
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = host::now_ms();
        let policy = shared.engine.policy();
        let period = now / policy.tick_ms;
        if !matches!(
            claim_period(&ProxyStore, TICK_LEASE_KEY, period, worker_id()),
            Ok(true)
        ) {
            return;
        }
        let current = shared.requests.window_of(now);
        let previous = shared
            .requests
            .read_window(&ProxyStore, current.saturating_sub(1));
        self.window_requests_gauge.set(previous);
        self.close_window(&shared, now);
        self.set_gauges(&shared, now);
        let event = TickEvent {
            event: "tick",
            policy: &policy.name,
            period,
            worker: worker_id(),
            previous_window_requests: previous,
        };
        host::log(LogLevel::Info, &to_line(&event));
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a policy Envoy would not have accepted the configuration;
        // the None case only arises between VM start and configure.
        let shared = self.shared.clone()?;
        Some(Box::new(Exchange::new(shared, context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
