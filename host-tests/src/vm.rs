//! `VmState`: what the host functions of one VM instance work on — its
//! contexts (roots and streams), the call in progress, pending HTTP calls,
//! metric ids — and the logic of the `proxy_*` calls that do not need guest
//! memory. `imports.rs` is the thin layer that moves bytes in and out of the
//! guest and calls in here.

use crate::abi::{buffer, map, Status};
use crate::cluster::{CallOutcome, CallRequest, RecordedCall};
use crate::headers::HeaderMap;
use crate::log::{LogLevel, LogLine};
use crate::metrics::{MetricChange, MetricIds};
use crate::queue::QueueOwner;
use crate::shared::{lock, Shared};
use crate::stream::{Direction, StreamState};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::{Memory, TypedFunc};

/// The plugin as Envoy's configuration describes it (fixed for a host).
#[derive(Debug)]
pub(crate) struct Plugin {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub vm_config: Vec<u8>,
    pub fail_open: bool,
    pub buffer_limit: usize,
    pub log_level: LogLevel,
}

/// A root context: one per plugin configuration in this VM.
#[derive(Debug)]
pub(crate) struct Root {
    pub tick_period_ms: u64,
    pub next_tick_ns: Option<u64>,
    /// A newer configuration replaced this one; it is deleted once its last
    /// stream is done.
    pub retired: bool,
    pub open_streams: usize,
    /// `on_done` returned false: waiting for `proxy_done`.
    pub pending_done: bool,
}

/// An HTTP call's answer as the module reads it in `on_http_call_response`.
#[derive(Debug, Clone)]
pub(crate) struct CallResponse {
    /// `None` for a failure (`num_headers == 0`).
    pub headers: Option<HeaderMap>,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

#[derive(Debug)]
pub(crate) struct PendingCall {
    pub root: u32,
    pub due_ns: Option<u64>,
    pub response: CallResponse,
}

/// Work Envoy defers until the VM call returns (`addAfterVmCallAction`).
#[derive(Debug)]
pub(crate) enum Deferred {
    Continue {
        ctx: u32,
        dir: Direction,
    },
    Reset {
        ctx: u32,
    },
    LocalReply {
        ctx: u32,
        phase: Option<Direction>,
        reply: LocalReply,
    },
    DeleteRoot {
        ctx: u32,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct LocalReply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub details: String,
}

/// What is true only during the current call into the VM.
#[derive(Debug, Default)]
pub(crate) struct CallScope {
    /// The stream callback running, if this is one.
    pub dir: Option<Direction>,
    /// The plugin configuration, readable during on_configure (Envoy's `temp_plugin_`).
    pub plugin_config: Option<Arc<Vec<u8>>>,
    /// The HTTP call response being delivered.
    pub http_response: Option<CallResponse>,
    /// `get_status` after a failed HTTP call: BrokenConnection, "reset".
    pub call_failed: bool,
    /// `send_local_response` was called: the callback's result is forced to stop.
    pub stop_iteration: bool,
    pub deferred: Vec<Deferred>,
}

/// What one exchange produced on this worker, collected as it happens so
/// that other workers' activity never leaks in.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub logs: Vec<LogLine>,
    pub traps: Vec<String>,
    pub calls: Vec<RecordedCall>,
    pub metrics: BTreeMap<String, MetricDelta>,
}

/// One metric's change during an exchange.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MetricDelta {
    pub counter: i64,
    pub gauge: Option<i64>,
    pub samples: i64,
}

impl MetricDelta {
    fn apply(&mut self, change: MetricChange) {
        match change {
            MetricChange::Counter(n) => self.counter += n,
            MetricChange::Gauge(v) => self.gauge = Some(v),
            MetricChange::Sample => self.samples += 1,
        }
    }

    /// The number replay results report: counters' delta, gauges' value,
    /// histograms' sample count.
    pub fn reported(&self) -> i64 {
        self.gauge.unwrap_or(self.counter + self.samples)
    }
}

pub(crate) struct VmState {
    pub worker: usize,
    pub generation: u64,
    pub shared: Arc<Shared>,
    pub plugin: Arc<Plugin>,
    pub memory: Option<Memory>,
    pub malloc: Option<TypedFunc<u32, u32>>,
    /// The context the host called into, and the one the module switched to
    /// with `proxy_set_effective_context` (0: none).
    pub current: u32,
    pub effective: u32,
    pub next_context_id: u32,
    pub roots: BTreeMap<u32, Root>,
    /// The root new streams attach to (the latest configuration).
    pub active_root: u32,
    pub streams: BTreeMap<u32, StreamState>,
    pub scope: CallScope,
    pub next_call_token: u32,
    pub calls: BTreeMap<u32, PendingCall>,
    pub metric_ids: MetricIds,
    pub failed: Option<String>,
    pub rng: u64,
    pub capture: Option<Capture>,
    /// The last critical log line: the SDK's panic hook logs the panic
    /// message there just before the VM traps.
    pub last_critical: Option<String>,
}

/// Seed for the module's `random_get`: deterministic runs, different per worker.
const RNG_SEED: u64 = 0x5eed_0f4e_57a7;

impl VmState {
    pub(crate) fn new(
        worker: usize,
        generation: u64,
        shared: Arc<Shared>,
        plugin: Arc<Plugin>,
    ) -> VmState {
        VmState {
            worker,
            generation,
            shared,
            plugin,
            memory: None,
            malloc: None,
            current: 0,
            effective: 0,
            next_context_id: 1,
            roots: BTreeMap::new(),
            active_root: 0,
            streams: BTreeMap::new(),
            scope: CallScope::default(),
            next_call_token: 0,
            calls: BTreeMap::new(),
            metric_ids: MetricIds::default(),
            failed: None,
            rng: RNG_SEED ^ (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ generation,
            capture: None,
            last_critical: None,
        }
    }

    pub(crate) fn alloc_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }

    /// Envoy's `contextOrEffectiveContext()`: the effective context if it
    /// still exists, else the one called into.
    pub(crate) fn context(&self) -> u32 {
        if self.effective != 0 && self.context_exists(self.effective) {
            self.effective
        } else {
            self.current
        }
    }

    pub(crate) fn context_exists(&self, id: u32) -> bool {
        self.roots.contains_key(&id) || self.streams.get(&id).is_some_and(|s| s.in_vm && !s.ended)
    }

    /// The root context of `ctx` (itself for a root).
    pub(crate) fn root_of(&self, ctx: u32) -> u32 {
        match self.streams.get(&ctx) {
            Some(s) => s.root,
            None => ctx,
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    // ---- logging -------------------------------------------------------

    /// `proxy_log`: Envoy drops lines below its log level.
    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if level == LogLevel::Critical {
            self.last_critical = Some(message.clone());
        }
        if level < self.plugin.log_level {
            return;
        }
        let line = LogLine {
            worker: self.worker,
            level,
            message,
            at_ms: self.now_ms(),
        };
        if let Some(c) = &mut self.capture {
            c.logs.push(line.clone());
        }
        lock(&self.shared.logs).push(line);
    }

    // ---- randomness ----------------------------------------------------

    /// splitmix64: the module's `random_get` is deterministic.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    // ---- buffers -------------------------------------------------------

    /// `proxy_get_buffer_bytes`: the bytes of a buffer, or NotFound when
    /// Envoy's `getBuffer` has no buffer of that type now.
    pub(crate) fn buffer(&self, buffer_type: u32) -> Result<Vec<u8>, Status> {
        let ctx = self.context();
        match buffer_type {
            buffer::HTTP_REQUEST_BODY | buffer::HTTP_RESPONSE_BODY => {
                let dir = body_dir(buffer_type);
                // A root context or a body that is not accessible now reads as
                // an empty buffer (Envoy wraps a null buffer instance).
                Ok(self
                    .streams
                    .get(&ctx)
                    .and_then(|s| s.side(dir).body().cloned())
                    .unwrap_or_default())
            }
            buffer::DOWNSTREAM_DATA
            | buffer::UPSTREAM_DATA
            | buffer::GRPC_RECEIVE_BUFFER
            | buffer::CALL_DATA => Ok(Vec::new()),
            buffer::HTTP_CALL_RESPONSE_BODY => self
                .scope
                .http_response
                .as_ref()
                .map(|r| r.body.clone())
                .ok_or(Status::NotFound),
            buffer::VM_CONFIGURATION => Ok(self.plugin.vm_config.clone()),
            buffer::PLUGIN_CONFIGURATION => self
                .scope
                .plugin_config
                .as_ref()
                .map(|c| c.to_vec())
                .ok_or(Status::NotFound),
            _ => Err(Status::BadArgument),
        }
    }

    /// `proxy_set_buffer_bytes` (Envoy's `Buffer::copyFrom`): start 0 drains
    /// `size` bytes and prepends `data`; start at or past the end appends;
    /// anything in between is BadArgument. Buffers other than the bodies are
    /// read-only.
    pub(crate) fn set_buffer(
        &mut self,
        buffer_type: u32,
        start: u32,
        size: u32,
        data: &[u8],
    ) -> Status {
        if buffer_type > buffer::MAX {
            return Status::BadArgument;
        }
        if buffer_type == buffer::HTTP_CALL_RESPONSE_BODY && self.scope.http_response.is_none() {
            return Status::NotFound;
        }
        if buffer_type == buffer::PLUGIN_CONFIGURATION && self.scope.plugin_config.is_none() {
            return Status::NotFound;
        }
        if buffer_type != buffer::HTTP_REQUEST_BODY && buffer_type != buffer::HTTP_RESPONSE_BODY {
            return Status::BadArgument;
        }
        let ctx = self.context();
        let dir = body_dir(buffer_type);
        let Some(body) = self
            .streams
            .get_mut(&ctx)
            .and_then(|s| s.side_mut(dir).body_mut())
        else {
            return Status::BadArgument;
        };
        let (start, size) = (start as usize, size as usize);
        if start == 0 {
            let drained = size.min(body.len());
            body.splice(0..drained, data.iter().copied());
            Status::Ok
        } else if start >= body.len() {
            body.extend_from_slice(data);
            Status::Ok
        } else {
            Status::BadArgument
        }
    }

    // ---- header maps ---------------------------------------------------

    /// The map Envoy's `getConstMap` returns: `Ok(None)` is a null map.
    pub(crate) fn const_map(&self, map_type: u32) -> Result<Option<&HeaderMap>, Status> {
        if map_type > map::MAX {
            return Err(Status::BadArgument);
        }
        if map_type == map::HTTP_CALL_RESPONSE_HEADERS {
            return Ok(self
                .scope
                .http_response
                .as_ref()
                .and_then(|r| r.headers.as_ref()));
        }
        if map_type == map::HTTP_CALL_RESPONSE_TRAILERS {
            return Ok(self
                .scope
                .http_response
                .as_ref()
                .and_then(|r| r.trailers.as_ref()));
        }
        let Some(s) = self.streams.get(&self.context()) else {
            return Ok(None);
        };
        if s.access_log_phase {
            // The access log's view: the final maps of the stream.
            return Ok(match map_type {
                map::REQUEST_HEADERS => s.req.headers_arrived.then_some(&s.req.headers),
                map::RESPONSE_HEADERS => s
                    .resp
                    .out
                    .headers
                    .as_ref()
                    .or(s.resp.headers_arrived.then_some(&s.resp.headers)),
                map::RESPONSE_TRAILERS => s.resp.out.trailers.as_ref().or(s.resp.trailers.as_ref()),
                _ => None,
            });
        }
        Ok(match map_type {
            map::REQUEST_HEADERS => s.req.headers_access.then_some(&s.req.headers),
            map::REQUEST_TRAILERS => s.req.trailers.as_ref().filter(|_| s.req.trailers_access),
            map::RESPONSE_HEADERS => s.resp.headers_access.then_some(&s.resp.headers),
            map::RESPONSE_TRAILERS => s.resp.trailers.as_ref().filter(|_| s.resp.trailers_access),
            _ => None,
        })
    }

    /// The map Envoy's `getMap` returns for writing; BadArgument when null.
    /// Trailers can be created only from a body callback that sees the end
    /// of the stream (Envoy's `addDecodedTrailers` / `addEncodedTrailers`).
    pub(crate) fn mut_map(&mut self, map_type: u32) -> Result<&mut HeaderMap, Status> {
        let ctx = self.context();
        let Some(s) = self.streams.get_mut(&ctx) else {
            return Err(Status::BadArgument);
        };
        let (side, trailers) = match map_type {
            map::REQUEST_HEADERS => (&mut s.req, false),
            map::REQUEST_TRAILERS => (&mut s.req, true),
            map::RESPONSE_HEADERS => (&mut s.resp, false),
            map::RESPONSE_TRAILERS => (&mut s.resp, true),
            _ => return Err(Status::BadArgument),
        };
        if !trailers {
            return if side.headers_access {
                Ok(&mut side.headers)
            } else {
                Err(Status::BadArgument)
            };
        }
        if side.trailers.is_none() && side.body().is_some() && side.callback_eos {
            side.trailers = Some(HeaderMap::new());
            side.trailers_added = true;
            side.trailers_access = true;
        }
        if side.trailers_access {
            side.trailers.as_mut().ok_or(Status::BadArgument)
        } else {
            Err(Status::BadArgument)
        }
    }

    /// `proxy_get_header_map_value`.
    pub(crate) fn header_value(&self, map_type: u32, key: &str) -> Result<String, Status> {
        let in_log = self
            .streams
            .get(&self.context())
            .is_some_and(|s| s.access_log_phase);
        match self.const_map(map_type)? {
            // In the access-log phase a missing map reads as a missing key.
            None if in_log => Err(Status::NotFound),
            None => Err(Status::BadArgument),
            Some(m) => m.get(key).map(str::to_string).ok_or(Status::NotFound),
        }
    }

    // ---- stream control -------------------------------------------------

    /// `proxy_continue_stream` (Envoy `Context::continueStream`).
    pub(crate) fn continue_stream(&mut self, stream_type: u32) -> Status {
        use crate::abi::stream_type as st;
        let ctx = self.context();
        let dir = match stream_type {
            st::REQUEST => Direction::Request,
            st::RESPONSE => Direction::Response,
            st::DOWNSTREAM => return Status::Ok,
            st::UPSTREAM => return Status::Unimplemented,
            _ => return Status::BadArgument,
        };
        if let Some(s) = self.streams.get_mut(&ctx) {
            // Envoy clears the *request* pointers for both stream types: after
            // a continue the request headers, body and trailers are gone.
            s.req.headers_access = false;
            s.req.chunk_access = false;
            s.req.trailers_access = false;
            self.scope.deferred.push(Deferred::Continue { ctx, dir });
        }
        Status::Ok
    }

    /// `proxy_close_stream`: both HTTP directions reset the stream.
    pub(crate) fn close_stream(&mut self, stream_type: u32) -> Status {
        use crate::abi::stream_type as st;
        let ctx = self.context();
        match stream_type {
            st::REQUEST | st::RESPONSE => {
                if let Some(s) = self.streams.get_mut(&ctx) {
                    s.code_details
                        .get_or_insert_with(|| "wasm_close_stream".to_string());
                    self.scope.deferred.push(Deferred::Reset { ctx });
                }
                Status::Ok
            }
            st::DOWNSTREAM | st::UPSTREAM => Status::Ok,
            _ => Status::BadArgument,
        }
    }

    /// `proxy_send_local_response`: takes effect after the callback returns,
    /// and forces the callback's result to stop iteration.
    pub(crate) fn send_local_response(&mut self, reply: LocalReply) -> Status {
        let ctx = self.context();
        if self.streams.contains_key(&ctx) {
            let phase = if ctx == self.current {
                self.scope.dir
            } else {
                None
            };
            self.scope
                .deferred
                .push(Deferred::LocalReply { ctx, phase, reply });
        }
        self.scope.stop_iteration = true;
        Status::Ok
    }

    // ---- timers ----------------------------------------------------------

    /// `proxy_set_tick_period_milliseconds`: one timer per root context; a
    /// new period replaces the old one, 0 disables it, the first tick comes
    /// one period from now.
    pub(crate) fn set_tick_period(&mut self, period_ms: u32) -> Status {
        let root = self.root_of(self.context());
        let now = self.shared.clock.now_ns();
        if let Some(r) = self.roots.get_mut(&root) {
            r.tick_period_ms = period_ms as u64;
            r.next_tick_ns = (period_ms > 0).then(|| now + period_ms as u64 * 1_000_000);
        }
        Status::Ok
    }

    // ---- shared data and queues -------------------------------------------

    pub(crate) fn get_shared_data(&self, key: &str) -> Result<(Vec<u8>, u32), Status> {
        lock(&self.shared.data).get(&self.plugin.vm_id, key)
    }

    pub(crate) fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Status {
        lock(&self.shared.data).set(&self.plugin.vm_id, key, value, cas)
    }

    pub(crate) fn register_queue(&mut self, name: &str) -> u32 {
        // on_queue_ready goes to the root context, even when a stream registers.
        let owner = QueueOwner {
            worker: self.worker,
            generation: self.generation,
            root_context: self.root_of(self.context()),
        };
        lock(&self.shared.queues).register(&self.plugin.vm_id, name, owner)
    }

    pub(crate) fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<u32, Status> {
        let vm_id = if vm_id.is_empty() {
            self.plugin.vm_id.as_str()
        } else {
            vm_id
        };
        lock(&self.shared.queues)
            .resolve(vm_id, name)
            .ok_or(Status::NotFound)
    }

    pub(crate) fn enqueue(&self, token: u32, value: &[u8]) -> Status {
        let owner = match lock(&self.shared.queues).enqueue(token, value) {
            Ok(owner) => owner,
            Err(s) => return s,
        };
        // Envoy posts on_queue_ready to the owner's thread: it runs later,
        // on that worker's next turn, never inside this call.
        if owner.worker == crate::log::CANARY_WORKER {
            // The canary VM that registered last is gone: nobody hears.
            return Status::Ok;
        }
        let note = crate::shared::QueueNote {
            generation: owner.generation,
            root_context: owner.root_context,
            token,
        };
        lock(&self.shared.inbox)
            .entry(owner.worker)
            .or_default()
            .push_back(note);
        Status::Ok
    }

    pub(crate) fn dequeue(&self, token: u32) -> Result<Vec<u8>, Status> {
        lock(&self.shared.queues).dequeue(token)
    }

    // ---- metrics ----------------------------------------------------------

    pub(crate) fn define_metric(&mut self, metric_type: u32, name: &str) -> Result<u32, Status> {
        let mut metrics = lock(&self.shared.metrics);
        self.metric_ids.define(&mut metrics, metric_type, name)
    }

    fn note_metric(&mut self, change: Result<(String, MetricChange), Status>) -> Status {
        match change {
            Ok((name, change)) => {
                if let Some(c) = &mut self.capture {
                    c.metrics.entry(name).or_default().apply(change);
                }
                Status::Ok
            }
            Err(s) => s,
        }
    }

    pub(crate) fn increment_metric(&mut self, id: u32, offset: i64) -> Status {
        let change = {
            let mut metrics = lock(&self.shared.metrics);
            self.metric_ids.increment(&mut metrics, id, offset)
        };
        self.note_metric(change)
    }

    pub(crate) fn record_metric(&mut self, id: u32, value: u64) -> Status {
        let change = {
            let mut metrics = lock(&self.shared.metrics);
            self.metric_ids.record(&mut metrics, id, value)
        };
        self.note_metric(change)
    }

    pub(crate) fn get_metric(&self, id: u32) -> Result<u64, Status> {
        let metrics = lock(&self.shared.metrics);
        self.metric_ids.get(&metrics, id)
    }

    // ---- HTTP calls --------------------------------------------------------

    /// `proxy_http_call` (Envoy `Context::httpCall`). The call belongs to the
    /// root context: its answer comes to the root, whatever stream made it.
    pub(crate) fn http_call(
        &mut self,
        cluster_name: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        trailers: Vec<(String, String)>,
        timeout_ms: u32,
    ) -> Result<u32, Status> {
        if (timeout_ms as i32) < 0 {
            return Err(Status::BadArgument);
        }
        let Some(cluster) = self.shared.clusters.get(cluster_name).cloned() else {
            return Err(Status::BadArgument);
        };
        let mut header_map = HeaderMap::from_pairs(&headers);
        if header_map.get(":path").is_none()
            || header_map.get(":method").is_none()
            || header_map.get(":authority").is_none()
        {
            return Err(Status::BadArgument);
        }
        if !body.is_empty() {
            header_map.set("content-length", &body.len().to_string());
        }
        let root = self.root_of(self.context());
        self.next_call_token += 4;
        let token = self.next_call_token;
        let request = CallRequest {
            cluster: cluster_name.to_string(),
            headers: header_map.pairs().to_vec(),
            body,
            trailers: HeaderMap::from_pairs(&trailers).pairs().to_vec(),
            timeout_ms,
        };
        let now = self.shared.clock.now_ns();
        let outcome = cluster.answer(&request);
        let delay_ns = cluster.delay_ms().saturating_mul(1_000_000);
        let timeout_ns = (timeout_ms as u64) * 1_000_000;
        let timed_out = |delay: u64| timeout_ms > 0 && delay >= timeout_ns;
        let (due_ns, response) = match outcome {
            CallOutcome::Respond {
                status,
                headers,
                body,
                trailers,
            } if !timed_out(delay_ns) => {
                let mut h = HeaderMap::new();
                h.add(":status", &status.to_string());
                for (k, v) in &headers {
                    h.add(k, v);
                }
                let trailers = (!trailers.is_empty()).then(|| HeaderMap::from_pairs(&trailers));
                (
                    Some(now + delay_ns),
                    CallResponse {
                        headers: Some(h),
                        body,
                        trailers,
                    },
                )
            }
            CallOutcome::Fail if !timed_out(delay_ns) => (
                Some(now + delay_ns),
                CallResponse {
                    headers: None,
                    body: Vec::new(),
                    trailers: None,
                },
            ),
            _ if timeout_ms > 0 => (Some(now + timeout_ns), upstream_timeout()),
            // No timeout and no answer: pending forever.
            _ => (None, upstream_timeout()),
        };
        let recorded = RecordedCall {
            cluster: request.cluster,
            headers: request.headers,
            body: request.body,
            trailers: request.trailers,
            timeout_ms,
            token,
            worker: self.worker,
            at_ms: self.now_ms(),
        };
        if let Some(c) = &mut self.capture {
            c.calls.push(recorded.clone());
        }
        lock(&self.shared.calls).push(recorded);
        self.calls.insert(
            token,
            PendingCall {
                root,
                due_ns,
                response,
            },
        );
        Ok(token)
    }

    /// `proxy_done`: only a root whose on_done returned false may call it.
    pub(crate) fn done(&mut self) -> Status {
        let ctx = self.context();
        match self.roots.get_mut(&ctx) {
            Some(r) if r.pending_done => {
                r.pending_done = false;
                self.scope.deferred.push(Deferred::DeleteRoot { ctx });
                Status::Ok
            }
            _ => Status::NotFound,
        }
    }
}

/// What Envoy's router answers when an HTTP call's timeout expires.
fn upstream_timeout() -> CallResponse {
    let body = b"upstream request timeout".to_vec();
    let mut h = HeaderMap::new();
    h.add(":status", "504");
    h.add("content-length", &body.len().to_string());
    h.add("content-type", "text/plain");
    CallResponse {
        headers: Some(h),
        body,
        trailers: None,
    }
}

fn body_dir(buffer_type: u32) -> Direction {
    if buffer_type == buffer::HTTP_REQUEST_BODY {
        Direction::Request
    } else {
        Direction::Response
    }
}
