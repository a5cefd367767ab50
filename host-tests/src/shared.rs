//! `Shared`: the process-wide state every worker sees (Envoy keeps these
//! per process, not per worker thread), and `SharedHandle`, the view tests
//! use to look at it.

use crate::cluster::{Cluster, RecordedCall};
use crate::log::LogLine;
use crate::metrics::{Histogram, Metrics};
use crate::queue::SharedQueues;
use crate::shared_data::SharedData;
use crate::Clock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Lock a mutex even if a panicking test thread poisoned it: the data is
/// still the best record of what happened.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A queue-ready notification waiting for its worker's next turn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueNote {
    pub generation: u64,
    pub root_context: u32,
    pub token: u32,
}

pub(crate) struct Shared {
    pub clock: Clock,
    pub vm_id: String,
    pub clusters: BTreeMap<String, Cluster>,
    pub data: Mutex<SharedData>,
    pub queues: Mutex<SharedQueues>,
    pub metrics: Mutex<Metrics>,
    pub logs: Mutex<Vec<LogLine>>,
    pub calls: Mutex<Vec<RecordedCall>>,
    pub traps: Mutex<Vec<String>>,
    /// Queue notifications per worker, delivered when that worker next runs.
    pub inbox: Mutex<HashMap<usize, VecDeque<QueueNote>>>,
}

impl Shared {
    pub(crate) fn new(clock: Clock, vm_id: String, clusters: BTreeMap<String, Cluster>) -> Shared {
        Shared {
            clock,
            vm_id,
            clusters,
            data: Mutex::default(),
            queues: Mutex::default(),
            metrics: Mutex::default(),
            logs: Mutex::default(),
            calls: Mutex::default(),
            traps: Mutex::default(),
            inbox: Mutex::default(),
        }
    }
}

/// A cheap, cloneable view of the process-wide state: shared data, metrics,
/// logs, HTTP calls and traps. Safe to use from any thread.
#[derive(Clone)]
pub struct SharedHandle(pub(crate) Arc<Shared>);

impl SharedHandle {
    /// The value and cas stored under `key` (in the host's vm_id).
    pub fn shared_data_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.0.data).get(&self.0.vm_id, key).ok()
    }

    /// Store a value as the host would for a write with cas 0 (test setup).
    pub fn shared_data_set(&self, key: &str, value: &[u8]) {
        lock(&self.0.data).set(&self.0.vm_id, key, value, 0);
    }

    /// Every shared-data key, sorted.
    pub fn shared_data_keys(&self) -> Vec<String> {
        lock(&self.0.data).keys(&self.0.vm_id)
    }

    /// A counter's or gauge's value (histograms: the sample count), by the
    /// name the module defined — without Envoy's `wasmcustom.` prefix.
    pub fn metric(&self, name: &str) -> Option<i64> {
        lock(&self.0.metrics).value(name)
    }

    /// Every counter and gauge by name.
    pub fn metrics(&self) -> BTreeMap<String, i64> {
        lock(&self.0.metrics).values()
    }

    /// A histogram's count, sum, min and max.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        lock(&self.0.metrics).histogram(name)
    }

    /// Every line logged so far, all workers, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        lock(&self.0.logs).clone()
    }

    /// Every line logged so far, removing them.
    pub fn take_logs(&self) -> Vec<LogLine> {
        std::mem::take(&mut *lock(&self.0.logs))
    }

    /// The structured events (JSON log lines with an `"event"` key) logged so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        lock(&self.0.logs)
            .iter()
            .filter_map(|l| l.event())
            .collect()
    }

    /// Every `proxy_http_call` made so far.
    pub fn http_calls(&self) -> Vec<RecordedCall> {
        lock(&self.0.calls).clone()
    }

    /// Every VM trap so far, as `worker N: message`.
    pub fn traps(&self) -> Vec<String> {
        lock(&self.0.traps).clone()
    }

    /// Virtual now, milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.0.clock.now_ms()
    }

    /// Virtual milliseconds since the host started.
    pub fn elapsed_ms(&self) -> u64 {
        self.0.clock.elapsed_ms()
    }
}
