//! The root context: one per worker VM and configuration. Owns the compiled
//! policy, the worker's identity, the tick, and creates stream contexts.

use super::host::{self, Metric, ProxyStore};
use super::http::Exchange;
use crate::audit::{to_line, TickEvent};
use crate::detect::redact::PseudonymKey;
use crate::engine::Engine;
use crate::lease::{claim_period, TICK_LEASE_KEY};
use crate::ledger::{update_shared, WindowCounter};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

/// Identity of this VM among the workers sharing our `vm_id`. A static, not
/// a root-context field: Envoy reuses the VM across configuration changes
/// (new root context, statics persist), and the identity must not change.
static WORKER_ID: OnceLock<u32> = OnceLock::new();
const WORKER_SEQUENCE_KEY: &str = "rheostat/workers";

/// Everything a stream needs from the configuration, shared read-only.
pub struct Shared {
    pub engine: Rc<Engine>,
    /// Per-VM secret behind per-stream pseudonyms, so tokens cannot be
    /// linked across workers or restarts.
    pub pseudonym_secret: PseudonymKey,
    pub requests: WindowCounter,
    pub requests_total: Metric,
}

pub struct Root {
    shared: Option<Rc<Shared>>,
    window_requests_gauge: Metric,
}

impl Root {
    pub fn new() -> Self {
        Root {
            shared: None,
            window_requests_gauge: Metric::gauge("rheostat.window_requests"),
        }
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

impl Context for Root {}

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
        self.shared = Some(Rc::new(Shared {
            engine: Rc::new(engine),
            pseudonym_secret: PseudonymKey::new(now_ns, u64::from(worker_id()) << 32 | 0x5eed),
            requests,
            requests_total: Metric::counter("rheostat.requests_total"),
        }));
        true
    }

    /// Every worker ticks; only the one that claims the period does its work.
    fn on_tick(&mut self) {
        let Some(shared) = &self.shared else { return };
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
