//! `Worker`: one VM instance, as Envoy runs one per worker thread. It owns
//! the wasmtime `Store`, calls the module's exports (handling traps the way
//! Envoy does: the VM is failed for good), manages root contexts, timers
//! and HTTP-call answers, and runs whole exchanges.
//!
//! The per-stream filter-manager rules are in `filter_manager.rs`.

use crate::exchange::{Chunking, DeliveredResponse, Exchange, ExchangeResult, ForwardedRequest};
use crate::headers::HeaderMap;
use crate::module::Runtime;
use crate::shared::{lock, Shared};
use crate::stream::{Direction, Stream, StreamId, StreamState};
use crate::vm::{Capture, Deferred, Plugin, Root, VmState};
use anyhow::anyhow;
use std::sync::Arc;
use wasmtime::{Store, TypedFunc};

type F<P, R> = Option<TypedFunc<P, R>>;

/// The module's exports the host calls. All optional but the memory and
/// the allocator: cpp-host treats a missing callback as "continue".
pub(crate) struct Exports {
    initialize: F<(), ()>,
    start: F<(), ()>,
    pub on_context_create: F<(u32, u32), ()>,
    pub on_vm_start: F<(u32, u32), u32>,
    pub on_configure: F<(u32, u32), u32>,
    pub on_request_headers: F<(u32, u32, u32), u32>,
    pub on_request_body: F<(u32, u32, u32), u32>,
    pub on_request_trailers: F<(u32, u32), u32>,
    pub on_response_headers: F<(u32, u32, u32), u32>,
    pub on_response_body: F<(u32, u32, u32), u32>,
    pub on_response_trailers: F<(u32, u32), u32>,
    pub on_http_call_response: F<(u32, u32, u32, u32, u32), ()>,
    pub on_tick: F<u32, ()>,
    pub on_queue_ready: F<(u32, u32), ()>,
    pub on_done: F<u32, u32>,
    pub on_log: F<u32, ()>,
    pub on_delete: F<u32, ()>,
}

/// Why starting a root context failed.
pub(crate) enum StartFailure {
    Rejected(&'static str),
    Trapped(String),
}

impl StartFailure {
    fn describe(&self) -> String {
        match self {
            StartFailure::Rejected(cb) => format!("{cb} returned false"),
            StartFailure::Trapped(t) => format!("the VM trapped: {t}"),
        }
    }
}

/// Streams carried over to a reloaded VM: they started on the failed one.
pub(crate) struct Inherited {
    pub streams: std::collections::BTreeMap<u32, StreamState>,
    pub next_context_id: u32,
}

/// One VM instance with its own store, as one Envoy worker thread has. A
/// `Worker` is `Send`: tests may drive each one on its own thread.
pub struct Worker {
    index: usize,
    generation: u64,
    runtime: Arc<Runtime>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) store: Store<VmState>,
    pub(crate) exports: Exports,
}

fn typed<P, R>(
    instance: &wasmtime::Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> anyhow::Result<Option<TypedFunc<P, R>>>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    if instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map(Some)
        .map_err(|e| {
            anyhow!(
                "the module's export {name} does not have the proxy-wasm 0.2.1 signature: {e:#}"
            )
        })
}

impl Worker {
    /// Instantiate the module and start it: `_initialize`, then a root
    /// context (`on_context_create`, `on_vm_start`, `on_configure`).
    pub(crate) fn boot(
        index: usize,
        generation: u64,
        runtime: Arc<Runtime>,
        shared: Arc<Shared>,
        plugin: Arc<Plugin>,
        config: Arc<Vec<u8>>,
        inherited: Option<Inherited>,
    ) -> anyhow::Result<Worker> {
        let mut state = VmState::new(index, generation, shared.clone(), plugin.clone());
        state.capture = Some(Capture::default());
        if let Some(inh) = inherited {
            state.streams = inh.streams;
            state.next_context_id = inh.next_context_id;
        }
        let mut store = Store::new(&runtime.engine, state);
        let path = runtime.path.display().to_string();
        let instance = runtime
            .linker
            .instantiate(&mut store, &runtime.module)
            .map_err(|e| anyhow!("cannot instantiate {path}: {e:#}"))?;
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| {
            anyhow!("{path} exports no memory named `memory`: it is not a proxy-wasm module")
        })?;
        let malloc = match typed::<u32, u32>(&instance, &mut store, "malloc")? {
            Some(f) => Some(f),
            None => typed::<u32, u32>(&instance, &mut store, "proxy_on_memory_allocate")?,
        };
        if malloc.is_none() {
            anyhow::bail!("{path} exports neither malloc nor proxy_on_memory_allocate: the host cannot hand it data");
        }
        store.data_mut().memory = Some(memory);
        store.data_mut().malloc = malloc;
        let exports = Exports {
            initialize: typed(&instance, &mut store, "_initialize")?,
            start: typed(&instance, &mut store, "_start")?,
            on_context_create: typed(&instance, &mut store, "proxy_on_context_create")?,
            on_vm_start: typed(&instance, &mut store, "proxy_on_vm_start")?,
            on_configure: typed(&instance, &mut store, "proxy_on_configure")?,
            on_request_headers: typed(&instance, &mut store, "proxy_on_request_headers")?,
            on_request_body: typed(&instance, &mut store, "proxy_on_request_body")?,
            on_request_trailers: typed(&instance, &mut store, "proxy_on_request_trailers")?,
            on_response_headers: typed(&instance, &mut store, "proxy_on_response_headers")?,
            on_response_body: typed(&instance, &mut store, "proxy_on_response_body")?,
            on_response_trailers: typed(&instance, &mut store, "proxy_on_response_trailers")?,
            on_http_call_response: typed(&instance, &mut store, "proxy_on_http_call_response")?,
            on_tick: typed(&instance, &mut store, "proxy_on_tick")?,
            on_queue_ready: typed(&instance, &mut store, "proxy_on_queue_ready")?,
            on_done: typed(&instance, &mut store, "proxy_on_done")?,
            on_log: typed(&instance, &mut store, "proxy_on_log")?,
            on_delete: typed(&instance, &mut store, "proxy_on_delete")?,
        };
        let mut worker = Worker {
            index,
            generation,
            runtime,
            shared,
            plugin,
            store,
            exports,
        };
        let who = if index == crate::log::CANARY_WORKER {
            "the canary VM".to_string()
        } else {
            format!("worker {index}")
        };
        // WASI reactor initialisation (the SDK's `main!` runs here).
        let init = worker.call_vm(0, None, "_initialize", |e, s| {
            match (&e.initialize, &e.start) {
                (Some(f), _) => f.call(s, ()),
                (None, Some(f)) => f.call(s, ()),
                (None, None) => Ok(()),
            }
        });
        if let Err(trap) = init {
            return Err(worker.start_error(&who, &format!("the VM trapped in _initialize: {trap}")));
        }
        if let Err(f) = worker.create_root(config) {
            return Err(worker.start_error(&who, &f.describe()));
        }
        worker.store.data_mut().capture = None;
        // Answers to calls made while starting arrive right after, as for any callback.
        worker.settle();
        Ok(worker)
    }

    fn start_error(&mut self, who: &str, what: &str) -> anyhow::Error {
        let logs = self
            .store
            .data_mut()
            .capture
            .take()
            .map(|c| c.logs)
            .unwrap_or_default();
        let mut message = format!(
            "{} refused to start on {who}: {what}. Envoy would reject this configuration; check the plugin and VM configuration.",
            self.runtime.path.display()
        );
        if logs.is_empty() {
            message.push_str("\nThe module logged nothing.");
        } else {
            message.push_str("\nThe module logged:");
            for l in logs {
                message.push_str(&format!("\n  [{:?}] {}", l.level, l.message));
            }
        }
        anyhow!(message)
    }

    /// This worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Bytes of this VM's linear memory now. Wasm memory only grows, so
    /// this is the high-water mark of everything the module has allocated
    /// (what Envoy reports per VM); benchmarks difference it to get the
    /// state one open stream costs.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }

    /// The trap message once the VM has failed (until [`crate::Host::reload_worker`]).
    pub fn failed(&self) -> Option<&str> {
        self.store.data().failed.as_deref()
    }

    /// Start a new stream on this worker, attached to the current root context.
    pub fn open_stream(&mut self) -> Stream<'_> {
        let id = self.create_stream();
        Stream { worker: self, id }
    }

    /// Take back a stream left in flight with [`Stream::detach`].
    pub fn stream(&mut self, id: StreamId) -> Option<Stream<'_>> {
        if self.store.data().streams.contains_key(&id.0) {
            Some(Stream {
                worker: self,
                id: id.0,
            })
        } else {
            None
        }
    }

    pub(crate) fn stream_state(&self, id: u32) -> Option<&StreamState> {
        self.store.data().streams.get(&id)
    }

    pub(crate) fn forget_stream_if_ended(&mut self, id: u32) {
        let vm = self.store.data_mut();
        if vm.streams.get(&id).is_some_and(|s| s.ended) {
            vm.streams.remove(&id);
        }
    }

    // ---- calling into the VM ------------------------------------------------

    /// Call into the module with `ctx` as the current context. A trap fails
    /// the VM for good: it is recorded, work deferred by the call is dropped,
    /// and every later call is refused (Envoy never re-enters a failed VM).
    pub(crate) fn call_vm<R>(
        &mut self,
        ctx: u32,
        dir: Option<Direction>,
        what: &str,
        f: impl FnOnce(&Exports, &mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> Result<R, String> {
        if let Some(failed) = &self.store.data().failed {
            return Err(failed.clone());
        }
        {
            let vm = self.store.data_mut();
            vm.current = ctx;
            vm.effective = 0;
            vm.scope.dir = dir;
            vm.scope.stop_iteration = false;
            vm.last_critical = None;
        }
        let result = f(&self.exports, &mut self.store);
        let vm = self.store.data_mut();
        vm.current = 0;
        vm.effective = 0;
        vm.scope.dir = None;
        match result {
            Ok(r) => Ok(r),
            Err(e) => {
                // One line: what was called, why it trapped, and the panic
                // message the SDK's hook logged just before (file:line included).
                let mut message = format!("{what}: {}", e.root_cause());
                match vm.last_critical.take() {
                    Some(said) => message.push_str(&format!(
                        " (the module logged: {})",
                        said.replace('\n', " ")
                    )),
                    None => {
                        if let Some(trace) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
                            message.push_str(&format!("\n{trace}"));
                        }
                    }
                }
                vm.failed = Some(message.clone());
                vm.scope.deferred.clear();
                if let Some(s) = vm.streams.get_mut(&ctx) {
                    s.trap = Some(message.clone());
                }
                if let Some(c) = &mut vm.capture {
                    c.traps.push(message.clone());
                }
                let who = if self.index == crate::log::CANARY_WORKER {
                    "canary".to_string()
                } else {
                    format!("worker {}", self.index)
                };
                lock(&self.shared.traps).push(format!("{who}: {message}"));
                Err(message)
            }
        }
    }

    /// Work the last call deferred (continue, local reply, reset), and whether
    /// it asked to stop iteration (`send_local_response`).
    pub(crate) fn take_deferred(&mut self) -> (Vec<Deferred>, bool) {
        let scope = &mut self.store.data_mut().scope;
        (
            std::mem::take(&mut scope.deferred),
            std::mem::take(&mut scope.stop_iteration),
        )
    }

    pub(crate) fn vm_failed(&self) -> bool {
        self.store.data().failed.is_some()
    }

    // ---- root contexts --------------------------------------------------------

    /// Create a root context and run on_context_create, on_vm_start and
    /// on_configure on it (Envoy's `WasmBase::start` then `configure`).
    pub(crate) fn create_root(&mut self, config: Arc<Vec<u8>>) -> Result<u32, StartFailure> {
        let id = {
            let vm = self.store.data_mut();
            let id = vm.alloc_context_id();
            vm.roots.insert(
                id,
                Root {
                    tick_period_ms: 0,
                    next_tick_ns: None,
                    retired: false,
                    open_streams: 0,
                    pending_done: false,
                },
            );
            id
        };
        match self.start_root(id, config) {
            Ok(()) => {
                self.store.data_mut().active_root = id;
                Ok(id)
            }
            Err(f) => {
                // A root that failed to start serves nothing and must not tick.
                let vm = self.store.data_mut();
                vm.roots.remove(&id);
                vm.calls.retain(|_, c| c.root != id);
                Err(f)
            }
        }
    }

    fn start_root(&mut self, id: u32, config: Arc<Vec<u8>>) -> Result<(), StartFailure> {
        let vm_config_len = self.plugin.vm_config.len() as u32;
        self.store.data_mut().scope.plugin_config = Some(config.clone());
        let created = self.call_vm(id, None, "proxy_on_context_create", |e, s| {
            match &e.on_context_create {
                Some(f) => f.call(s, (id, 0)),
                None => Ok(()),
            }
        });
        self.store.data_mut().scope.plugin_config = None;
        created.map_err(StartFailure::Trapped)?;
        self.run_deferred_now();
        let started = self.call_vm(id, None, "proxy_on_vm_start", |e, s| match &e.on_vm_start {
            Some(f) => f.call(s, (id, vm_config_len)),
            None => Ok(1),
        });
        self.run_deferred_now();
        if started.map_err(StartFailure::Trapped)? == 0 {
            return Err(StartFailure::Rejected("proxy_on_vm_start"));
        }
        self.store.data_mut().scope.plugin_config = Some(config.clone());
        let configured = self.call_vm(id, None, "proxy_on_configure", |e, s| {
            match &e.on_configure {
                Some(f) => f.call(s, (id, config.len() as u32)),
                None => Ok(1),
            }
        });
        self.store.data_mut().scope.plugin_config = None;
        self.run_deferred_now();
        if configured.map_err(StartFailure::Trapped)? == 0 {
            return Err(StartFailure::Rejected("proxy_on_configure"));
        }
        Ok(())
    }

    /// Run what the last call deferred, now that it returned.
    pub(crate) fn run_deferred_now(&mut self) {
        let (deferred, _) = self.take_deferred();
        self.run_deferred(deferred);
    }

    /// A new configuration on the same VM: a new root context (statics
    /// persist); the old root keeps serving its streams in flight and is
    /// deleted after the last one. A configuration this VM rejects fails
    /// the worker.
    pub(crate) fn reconfigure(&mut self, config: Arc<Vec<u8>>) {
        let old = self.store.data().active_root;
        match self.create_root(config) {
            Ok(_) => self.retire_root(old),
            Err(f) => {
                let message = format!(
                    "the new configuration failed on this worker: {}",
                    f.describe()
                );
                let vm = self.store.data_mut();
                vm.failed.get_or_insert(message.clone());
                lock(&self.shared.traps).push(format!("worker {}: {message}", self.index));
            }
        }
    }

    fn retire_root(&mut self, id: u32) {
        let delete_now = match self.store.data_mut().roots.get_mut(&id) {
            Some(r) => {
                r.retired = true;
                r.open_streams == 0
            }
            None => false,
        };
        if delete_now {
            self.shutdown_root(id);
        }
    }

    /// A stream of `root` ended: a retired root goes once it has none left.
    pub(crate) fn stream_left_root(&mut self, root: u32) {
        let delete_now = match self.store.data_mut().roots.get_mut(&root) {
            Some(r) => {
                r.open_streams = r.open_streams.saturating_sub(1);
                r.retired && r.open_streams == 0
            }
            None => false,
        };
        if delete_now {
            self.shutdown_root(root);
        }
    }

    /// Envoy's `startShutdown(plugin_key)`: on_done, then on_delete unless
    /// on_done asked to wait for `proxy_done`.
    fn shutdown_root(&mut self, id: u32) {
        let done = self.call_vm(id, None, "proxy_on_done", |e, s| match &e.on_done {
            Some(f) => f.call(s, id),
            None => Ok(1),
        });
        self.run_deferred_now();
        match done {
            Ok(0) => {
                if let Some(r) = self.store.data_mut().roots.get_mut(&id) {
                    r.pending_done = true;
                    r.next_tick_ns = None;
                }
            }
            _ => self.delete_root(id),
        }
    }

    pub(crate) fn delete_root(&mut self, id: u32) {
        let _ = self.call_vm(id, None, "proxy_on_delete", |e, s| match &e.on_delete {
            Some(f) => f.call(s, id),
            None => Ok(()),
        });
        self.run_deferred_now();
        let vm = self.store.data_mut();
        vm.roots.remove(&id);
        // Envoy's Context destructor cancels the root's outstanding calls.
        vm.calls.retain(|_, c| c.root != id);
    }

    // ---- events: timers, HTTP call answers, queues ------------------------------

    /// When this worker next has something to do on its own (a tick or an
    /// HTTP call answer), in Unix nanoseconds.
    pub(crate) fn next_event_ns(&self) -> Option<u64> {
        let vm = self.store.data();
        if vm.failed.is_some() {
            return None;
        }
        let ticks = vm.roots.values().filter_map(|r| r.next_tick_ns);
        let calls = vm.calls.values().filter_map(|c| c.due_ns);
        ticks.chain(calls).min()
    }

    /// Fire everything due at or before `now_ns` (the clock already reads
    /// it): ticks first, in time order, then HTTP call answers and queue
    /// notifications.
    pub(crate) fn fire_due(&mut self, now_ns: u64) {
        loop {
            let due = {
                let vm = self.store.data();
                if vm.failed.is_some() {
                    break;
                }
                vm.roots
                    .iter()
                    .filter_map(|(id, r)| r.next_tick_ns.filter(|t| *t <= now_ns).map(|t| (t, *id)))
                    .min()
            };
            let Some((_, root)) = due else { break };
            let _ = self.call_vm(root, None, "proxy_on_tick", |e, s| match &e.on_tick {
                Some(f) => f.call(s, root),
                None => Ok(()),
            });
            // Envoy re-arms the timer after the tick with the period in force then.
            let now = self.shared.clock.now_ns();
            if let Some(r) = self.store.data_mut().roots.get_mut(&root) {
                r.next_tick_ns = (r.tick_period_ms > 0).then(|| now + r.tick_period_ms * 1_000_000);
            }
            self.run_deferred_now();
        }
        self.settle();
    }

    /// Run this worker's event loop until nothing is ready: end streams whose
    /// response is complete, deliver queue notifications and HTTP call
    /// answers that are due. Called after every host operation, which is
    /// "right after the current callback returns".
    pub(crate) fn settle(&mut self) {
        // A module that re-enqueues from on_queue_ready would keep Envoy's
        // event loop busy forever; here it would hang the test, so one
        // settle handles a bounded number of rounds and leaves the rest.
        for _ in 0..MAX_SETTLE_ROUNDS {
            self.end_finished_streams();
            let mut progressed = false;
            let notes: Vec<_> = lock(&self.shared.inbox)
                .get_mut(&self.index)
                .map(|q| q.drain(..).collect())
                .unwrap_or_default();
            for note in notes {
                progressed = true;
                let live = note.generation == self.generation
                    && self.store.data().roots.contains_key(&note.root_context);
                if live {
                    let (root, token) = (note.root_context, note.token);
                    let _ = self.call_vm(root, None, "proxy_on_queue_ready", |e, s| {
                        match &e.on_queue_ready {
                            Some(f) => f.call(s, (root, token)),
                            None => Ok(()),
                        }
                    });
                    self.run_deferred_now();
                }
            }
            let now = self.shared.clock.now_ns();
            loop {
                let due = self
                    .store
                    .data()
                    .calls
                    .iter()
                    .filter_map(|(token, c)| c.due_ns.filter(|t| *t <= now).map(|t| (t, *token)))
                    .min();
                let Some((_, token)) = due else { break };
                progressed = true;
                self.deliver_call(token);
            }
            if !progressed {
                break;
            }
        }
        self.end_finished_streams();
    }

    fn deliver_call(&mut self, token: u32) {
        let Some(call) = self.store.data_mut().calls.remove(&token) else {
            return;
        };
        if self.vm_failed() || !self.store.data().roots.contains_key(&call.root) {
            return;
        }
        let root = call.root;
        let n_headers = call.response.headers.as_ref().map_or(0, |h| h.len()) as u32;
        let body = call.response.body.len() as u32;
        let n_trailers = call.response.trailers.as_ref().map_or(0, |h| h.len()) as u32;
        {
            let scope = &mut self.store.data_mut().scope;
            scope.call_failed = call.response.headers.is_none();
            scope.http_response = Some(call.response);
        }
        let _ = self.call_vm(root, None, "proxy_on_http_call_response", |e, s| {
            match &e.on_http_call_response {
                Some(f) => f.call(s, (root, token, n_headers, body, n_trailers)),
                None => Ok(()),
            }
        });
        {
            let scope = &mut self.store.data_mut().scope;
            scope.http_response = None;
            scope.call_failed = false;
        }
        self.run_deferred_now();
    }

    /// Hand this VM's streams to its replacement (they stay failed there).
    pub(crate) fn inherit(&mut self) -> Inherited {
        let vm = self.store.data_mut();
        let mut streams = std::mem::take(&mut vm.streams);
        for s in streams.values_mut() {
            s.orphaned = true;
        }
        Inherited {
            streams,
            next_context_id: vm.next_context_id,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    // ---- whole exchanges --------------------------------------------------------

    /// Run one recorded exchange through this worker the way Envoy's filter
    /// manager would: request headers (`:method`, `:path`, `:authority`
    /// from `host` or `llm.local`, `:scheme`, then the recorded headers),
    /// the request body in chunks, and — if the request reached the upstream
    /// — the recorded response, then the end of the stream.
    ///
    /// The shared clock does not move; a stream the filter leaves waiting
    /// gets what Envoy's stream idle timeout would give it (a 408 local
    /// reply, or a reset once response headers exist).
    pub fn run_exchange(&mut self, ex: &Exchange, chunking: &Chunking) -> ExchangeResult {
        self.store.data_mut().capture = Some(Capture::default());
        let sid = self.create_stream();

        let mut headers = HeaderMap::new();
        headers.add(":method", &ex.request.method);
        headers.add(":path", &ex.request.path);
        let authority = ex
            .request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("llm.local");
        headers.add(":authority", authority);
        headers.add(":scheme", "http");
        for (k, v) in &ex.request.headers {
            // HTTP/1 `host` becomes `:authority`.
            if !k.eq_ignore_ascii_case("host") {
                headers.add(k, v);
            }
        }
        // Envoy's connection manager adds these before any filter runs.
        if headers.get("x-forwarded-proto").is_none() {
            headers.add("x-forwarded-proto", "http");
        }
        if headers.get("x-request-id").is_none() {
            headers.add("x-request-id", &request_id(&ex.id));
        }

        let body = ex.request.body_bytes();
        self.client_headers(sid, Direction::Request, headers, body.is_empty());
        let request_chunks = chunking.split(&body, 0);
        let n = request_chunks.len();
        for (i, chunk) in request_chunks.into_iter().enumerate() {
            if self.stream_done(sid, Direction::Request) {
                break;
            }
            self.client_data(sid, Direction::Request, chunk, i + 1 == n);
        }

        let forwarded = self
            .stream_state(sid)
            .is_some_and(|s| s.req.out.complete && s.local_reply.is_none() && !s.reset);
        if forwarded {
            self.play_response(sid, ex, chunking);
        }
        let stalled = self
            .stream_state(sid)
            .is_some_and(|s| !s.ended && !s.reset && !s.resp.out.complete);
        if stalled {
            self.idle_timeout(sid);
        }
        self.finish_stream(sid);
        let result = self.exchange_result(sid, ex);
        self.store.data_mut().streams.remove(&sid);
        result
    }

    fn stream_done(&self, sid: u32, dir: Direction) -> bool {
        self.stream_state(sid)
            .is_none_or(|s| s.aborted(dir) || s.local_reply.is_some())
    }

    fn play_response(&mut self, sid: u32, ex: &Exchange, chunking: &Chunking) {
        let resp = &ex.response;
        let mut headers = HeaderMap::new();
        headers.add(":status", &resp.status.to_string());
        for (k, v) in &resp.headers {
            headers.add(k, v);
        }
        let chunks: Vec<Vec<u8>> = match &resp.chunks {
            Some(chunks) => chunks
                .iter()
                .map(|c| c.as_bytes().to_vec())
                .filter(|c| !c.is_empty())
                .collect(),
            None => chunking.split(&resp.body_bytes(), 1),
        };
        let trailers = resp
            .trailers
            .as_ref()
            .map(|t| HeaderMap::from_pairs(&t.iter().collect::<Vec<_>>()));
        self.client_headers(
            sid,
            Direction::Response,
            headers,
            chunks.is_empty() && trailers.is_none(),
        );
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            if self.stream_done(sid, Direction::Response) {
                return;
            }
            self.client_data(
                sid,
                Direction::Response,
                chunk,
                i + 1 == n && trailers.is_none(),
            );
        }
        if let Some(t) = trailers {
            if !self.stream_done(sid, Direction::Response) {
                self.client_trailers(sid, Direction::Response, t);
            }
        }
    }

    fn exchange_result(&mut self, sid: u32, ex: &Exchange) -> ExchangeResult {
        let capture = self.store.data_mut().capture.take().unwrap_or_default();
        let Some(s) = self.stream_state(sid) else {
            return ExchangeResult {
                id: ex.id.clone(),
                level: "normal".into(),
                ..Default::default()
            };
        };
        let mut events: Vec<serde_json::Value> =
            capture.logs.iter().filter_map(|l| l.event()).collect();
        for trap in &capture.traps {
            events.push(serde_json::json!({"event": "trap", "message": trap}));
        }
        let out_headers = s.resp.out.headers.as_ref();
        ExchangeResult {
            id: ex.id.clone(),
            request: ForwardedRequest {
                forwarded: s.req.out.complete,
                headers: s
                    .req
                    .out
                    .headers
                    .as_ref()
                    .map(|h| h.to_plain_map())
                    .unwrap_or_default(),
                body_text: String::from_utf8_lossy(&s.req.out.body).into_owned(),
            },
            response: DeliveredResponse {
                status: out_headers
                    .and_then(|h| h.get(":status"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                headers: out_headers.map(|h| h.to_plain_map()).unwrap_or_default(),
                body_text: String::from_utf8_lossy(&s.resp.out.body).into_owned(),
                local: s.local_reply.is_some(),
                reset: s.reset,
            },
            findings: Vec::new(),
            level: "normal".into(),
            events,
            http_calls: capture.calls.iter().map(|c| c.to_json()).collect(),
            metrics: capture
                .metrics
                .iter()
                .map(|(k, d)| (k.clone(), d.reported()))
                .collect(),
        }
    }
}

/// Rounds of queue notifications and call answers one `settle` handles.
const MAX_SETTLE_ROUNDS: usize = 10_000;

/// A deterministic `x-request-id` in UUID shape, from the exchange id.
fn request_id(seed: &str) -> String {
    // FNV-1a, twice with different offsets, is plenty to look unique.
    let hash = |offset: u64| {
        seed.bytes()
            .fold(offset, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}
