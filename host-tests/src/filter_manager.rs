//! Envoy's HTTP filter manager, reduced to one filter: how headers, body
//! chunks and trailers reach the module's callbacks, what each return code
//! does to the stream, and how local replies, buffer limits, resets and VM
//! failures end it.
//!
//! Sources: Envoy `source/common/http/filter_manager.cc` (`decodeData`,
//! `commonHandleAfterDataCallback`, `commonContinue`, `sendLocalReply`),
//! `source/extensions/common/wasm/context.cc` (`decodeData`,
//! `continueStream`, `sendLocalResponse`) and proxy-wasm-cpp-host
//! `src/context.cc` (`CHECK_FAIL_HTTP`, the return-code conversions).
//!
//! The same code serves both directions: the request path ends at the
//! upstream, the response path at the client.

use crate::abi::{trailers_continue, DataStatus, HeadersStatus};
use crate::headers::HeaderMap;
use crate::stream::{ActionRecord, Callback, Direction, Iteration, Outcome, StreamState};
use crate::vm::{Deferred, LocalReply};
use crate::worker::Worker;

use Direction::{Request, Response};

impl Worker {
    fn st(&self, sid: u32) -> Option<&StreamState> {
        self.store.data().streams.get(&sid)
    }

    fn st_mut(&mut self, sid: u32) -> Option<&mut StreamState> {
        self.store.data_mut().streams.get_mut(&sid)
    }

    fn aborted(&self, sid: u32, dir: Direction) -> bool {
        self.st(sid).is_none_or(|s| s.aborted(dir))
    }

    pub(crate) fn create_stream(&mut self) -> u32 {
        let now = self.shared.clock.now_ns();
        let vm = self.store.data_mut();
        let id = vm.alloc_context_id();
        let root = vm.active_root;
        vm.streams.insert(id, StreamState::new(id, root, now));
        if let Some(r) = vm.roots.get_mut(&root) {
            r.open_streams += 1;
        }
        id
    }

    // ---- what the client and the upstream send ------------------------------

    /// Headers arriving from the client (request) or the upstream (response).
    pub(crate) fn client_headers(
        &mut self,
        sid: u32,
        dir: Direction,
        headers: HeaderMap,
        eos: bool,
    ) -> Outcome {
        if !self.accepts(sid, dir) {
            return Outcome::NotCalled;
        }
        self.create_in_vm(sid);
        let outcome = self.filter_headers(sid, dir, headers, eos);
        self.settle();
        outcome
    }

    pub(crate) fn client_data(
        &mut self,
        sid: u32,
        dir: Direction,
        data: Vec<u8>,
        eos: bool,
    ) -> Outcome {
        if !self.accepts(sid, dir) {
            return Outcome::NotCalled;
        }
        let outcome = self.filter_data(sid, dir, data, eos);
        self.settle();
        outcome
    }

    pub(crate) fn client_trailers(
        &mut self,
        sid: u32,
        dir: Direction,
        trailers: HeaderMap,
    ) -> Outcome {
        if !self.accepts(sid, dir) {
            return Outcome::NotCalled;
        }
        let outcome = self.filter_trailers(sid, dir, trailers);
        self.settle();
        outcome
    }

    /// Whether input from outside still reaches this direction: not after a
    /// reset or the end of the stream, and no upstream response once a local
    /// reply answered the client (Envoy resets the upstream request then).
    fn accepts(&self, sid: u32, dir: Direction) -> bool {
        match self.st(sid) {
            None => false,
            Some(s) => !(s.aborted(dir) || (dir == Response && s.local_reply.is_some())),
        }
    }

    /// `proxy_on_context_create` for a stream, when its request begins
    /// (Envoy's `onCreate` in `decodeHeaders`); skipped on a failed VM.
    fn create_in_vm(&mut self, sid: u32) {
        let Some(s) = self.st(sid) else { return };
        if s.in_vm || s.orphaned || self.vm_failed() {
            return;
        }
        let root = s.root;
        if self
            .call_vm(sid, None, "proxy_on_context_create", |e, st| {
                match &e.on_context_create {
                    Some(f) => f.call(st, (sid, root)),
                    None => Ok(()),
                }
            })
            .is_ok()
        {
            if let Some(s) = self.st_mut(sid) {
                s.in_vm = true;
            }
        }
        self.run_deferred_now();
    }

    /// The client went away, or the test is done with the stream.
    pub(crate) fn finish_stream(&mut self, sid: u32) {
        let Some(s) = self.st(sid) else { return };
        if !s.ended && !s.resp.out.complete {
            self.reset_stream(sid);
        }
        self.settle();
    }

    /// The upstream connection reset the request (Envoy's router
    /// `onUpstreamReset`): before any response headers came back the router
    /// answers 503 with a local reply (which passes through our response
    /// callbacks); once they have, the client's stream is reset. Either way
    /// no more upstream data reaches the filter, and the access log
    /// (`on_log`) runs when the stream ends. Nothing happens to a stream
    /// that already has its answer (a local reply reset the upstream request
    /// itself) or has ended.
    pub(crate) fn upstream_reset(&mut self, sid: u32) {
        let Some(s) = self.st(sid) else { return };
        if s.ended || s.reset || s.local_reply.is_some() || s.resp.remote_complete {
            return;
        }
        if s.resp.headers_arrived {
            self.reset_stream(sid);
        } else {
            let reply = LocalReply {
                status: 503,
                body: b"upstream connect error or disconnect/reset before headers. reset reason: remote reset".to_vec(),
                headers: Vec::new(),
                details: "upstream_reset_before_response_started{remote_reset}".into(),
            };
            self.send_local_reply(sid, None, reply);
        }
        self.settle();
    }

    /// What Envoy's stream idle timeout does to a stream the filter left
    /// waiting: a 408 if no response has started, else a reset.
    pub(crate) fn idle_timeout(&mut self, sid: u32) {
        if self.st(sid).is_some_and(|s| s.response_started) {
            self.reset_stream(sid);
            self.settle();
            return;
        }
        let reply = LocalReply {
            status: 408,
            body: b"stream timeout".to_vec(),
            headers: Vec::new(),
            details: "stream_idle_timeout".into(),
        };
        self.send_local_reply(sid, None, reply);
        self.settle();
    }

    // ---- the VM's failure (CHECK_FAIL_HTTP) -------------------------------------

    fn vm_failed_for(&self, sid: u32) -> bool {
        self.vm_failed() || self.st(sid).is_some_and(|s| s.orphaned || !s.in_vm)
    }

    /// `Some(true)`: fail open, skip the filter. `Some(false)`: fail closed;
    /// the first time, the stream gets a 503 (or a reset if the client
    /// already has response headers).
    fn check_fail(&mut self, sid: u32) -> Option<bool> {
        if !self.vm_failed_for(sid) {
            return None;
        }
        if self.plugin.fail_open {
            return Some(true);
        }
        let first = self
            .st_mut(sid)
            .is_some_and(|s| !std::mem::replace(&mut s.stream_failed, true));
        if first {
            self.fail_stream(sid);
        }
        Some(false)
    }

    fn fail_stream(&mut self, sid: u32) {
        let Some(s) = self.st_mut(sid) else { return };
        if std::mem::replace(&mut s.failure_reply_sent, true) {
            return;
        }
        let reply = LocalReply {
            status: 503,
            body: Vec::new(),
            headers: Vec::new(),
            details: "wasm_fail_stream".into(),
        };
        self.send_local_reply(sid, None, reply);
    }

    /// Once the failure reply is on its way, Envoy's encoder callbacks skip the VM.
    fn failure_reply_sent(&self, sid: u32) -> bool {
        self.st(sid).is_some_and(|s| s.failure_reply_sent)
    }

    // ---- calling the stream callbacks ---------------------------------------------

    fn call_callback(&mut self, sid: u32, cb: Callback, a: u32, b: u32) -> Result<u32, String> {
        let dir = match cb {
            Callback::RequestHeaders | Callback::RequestBody | Callback::RequestTrailers => Request,
            _ => Response,
        };
        let name = match cb {
            Callback::RequestHeaders => "proxy_on_request_headers",
            Callback::RequestBody => "proxy_on_request_body",
            Callback::RequestTrailers => "proxy_on_request_trailers",
            Callback::ResponseHeaders => "proxy_on_response_headers",
            Callback::ResponseBody => "proxy_on_response_body",
            Callback::ResponseTrailers => "proxy_on_response_trailers",
        };
        let result = self.call_vm(sid, Some(dir), name, |e, s| {
            let f3 = |f: &Option<wasmtime::TypedFunc<(u32, u32, u32), u32>>,
                      s: &mut wasmtime::Store<_>| match f {
                Some(f) => f.call(s, (sid, a, b)),
                None => Ok(0),
            };
            let f2 = |f: &Option<wasmtime::TypedFunc<(u32, u32), u32>>,
                      s: &mut wasmtime::Store<_>| match f {
                Some(f) => f.call(s, (sid, a)),
                None => Ok(0),
            };
            match cb {
                Callback::RequestHeaders => f3(&e.on_request_headers, s),
                Callback::RequestBody => f3(&e.on_request_body, s),
                Callback::RequestTrailers => f2(&e.on_request_trailers, s),
                Callback::ResponseHeaders => f3(&e.on_response_headers, s),
                Callback::ResponseBody => f3(&e.on_response_body, s),
                Callback::ResponseTrailers => f2(&e.on_response_trailers, s),
            }
        });
        if let (Ok(code), Some(s)) = (&result, self.st_mut(sid)) {
            s.actions.push(ActionRecord {
                callback: cb,
                code: *code,
            });
        }
        result
    }

    /// Run what the module asked for during a call, now that it returned.
    pub(crate) fn run_deferred(&mut self, deferred: Vec<Deferred>) {
        for d in deferred {
            match d {
                Deferred::Continue { ctx, dir } => self.resume(ctx, dir),
                Deferred::Reset { ctx } => self.reset_stream(ctx),
                Deferred::LocalReply { ctx, phase, reply } => {
                    self.send_local_reply(ctx, phase, reply)
                }
                Deferred::DeleteRoot { ctx } => self.delete_root(ctx),
            }
        }
    }

    // ---- headers ------------------------------------------------------------------------

    fn filter_headers(
        &mut self,
        sid: u32,
        dir: Direction,
        headers: HeaderMap,
        eos: bool,
    ) -> Outcome {
        let n = headers.len() as u32;
        {
            let Some(s) = self.st_mut(sid) else {
                return Outcome::NotCalled;
            };
            if dir == Response {
                s.response_started = true;
                if let Some(code) = headers.get(":status").and_then(|v| v.parse().ok()) {
                    s.response_code = Some(code);
                }
            }
            let side = s.side_mut(dir);
            side.headers = headers;
            side.headers_arrived = true;
            side.remote_complete = eos;
            side.callback_eos = eos;
        }
        if dir == Response && self.failure_reply_sent(sid) {
            self.headers_out(sid, dir);
            return Outcome::NotCalled;
        }
        let (status, outcome) = match self.check_fail(sid) {
            Some(true) => (HeadersStatus::Continue, Outcome::NotCalled),
            Some(false) => (
                HeadersStatus::StopAll { watermark: true },
                Outcome::NotCalled,
            ),
            None => {
                if let Some(s) = self.st_mut(sid) {
                    s.side_mut(dir).headers_access = true;
                }
                let cb = if dir == Request {
                    Callback::RequestHeaders
                } else {
                    Callback::ResponseHeaders
                };
                let result = self.call_callback(sid, cb, n, eos as u32);
                let (deferred, stopped) = self.take_deferred();
                let decided = match &result {
                    Ok(raw) => (
                        HeadersStatus::from_raw(*raw, stopped),
                        Outcome::Returned(*raw),
                    ),
                    Err(trap) => {
                        let open = self.check_fail(sid) == Some(true);
                        let status = if open {
                            HeadersStatus::Continue
                        } else {
                            HeadersStatus::StopAll { watermark: true }
                        };
                        (status, Outcome::Trapped(trap.clone()))
                    }
                };
                self.run_deferred(deferred);
                decided
            }
        };
        if self.aborted(sid, dir) {
            return outcome;
        }
        match status {
            HeadersStatus::Continue => {
                if let Some(s) = self.st_mut(sid) {
                    // Envoy drops its pointer to headers that went on.
                    s.side_mut(dir).headers_access = false;
                }
                self.headers_out(sid, dir);
            }
            HeadersStatus::StopAll { watermark } => {
                if let Some(s) = self.st_mut(sid) {
                    s.side_mut(dir).iteration = Iteration::StopAll { watermark };
                }
            }
        }
        outcome
    }

    /// The headers pass our filter: to the upstream, or to the client.
    fn headers_out(&mut self, sid: u32, dir: Direction) {
        let Some(s) = self.st_mut(sid) else { return };
        let side = s.side_mut(dir);
        side.headers_continued = true;
        side.out.headers = Some(side.headers.clone());
        let more = side.buffered.is_some() || side.trailers.is_some() || !side.remote_complete;
        if !more {
            side.out.complete = true;
        }
    }

    fn body_out(&mut self, sid: u32, dir: Direction, bytes: Vec<u8>, eos: bool) {
        let Some(s) = self.st_mut(sid) else { return };
        let side = s.side_mut(dir);
        side.out.body.extend_from_slice(&bytes);
        if eos {
            if side.trailers_added {
                // Trailers the filter added go out after the last data.
                side.out.trailers = side.trailers.clone();
            }
            side.out.complete = true;
        }
    }

    fn trailers_out(&mut self, sid: u32, dir: Direction) {
        let Some(s) = self.st_mut(sid) else { return };
        let side = s.side_mut(dir);
        side.out.trailers = side.trailers.clone();
        side.out.complete = true;
    }

    // ---- body -----------------------------------------------------------------------------

    fn filter_data(&mut self, sid: u32, dir: Direction, data: Vec<u8>, eos: bool) -> Outcome {
        let limit = self.plugin.buffer_limit;
        let over = {
            let Some(s) = self.st_mut(sid) else {
                return Outcome::NotCalled;
            };
            let side = s.side_mut(dir);
            side.remote_complete |= eos;
            side.received += data.len();
            match side.iteration {
                // Stopped by the headers callback: the data waits without
                // reaching the filter.
                Iteration::StopAll { watermark } => {
                    let buffered = side.buffered.get_or_insert_with(Vec::new);
                    buffered.extend_from_slice(&data);
                    Some(!watermark && buffered.len() > limit)
                }
                _ => None,
            }
        };
        match over {
            Some(true) => {
                self.too_large(sid, dir);
                Outcome::NotCalled
            }
            Some(false) => Outcome::NotCalled,
            None => self.deliver_data(sid, dir, data, eos),
        }
    }

    /// Envoy's `decodeData` / `encodeData` on our filter.
    fn deliver_data(&mut self, sid: u32, dir: Direction, data: Vec<u8>, eos: bool) -> Outcome {
        if dir == Response && self.failure_reply_sent(sid) {
            self.after_data(sid, dir, DataStatus::Continue, Some(data), eos);
            return Outcome::NotCalled;
        }
        match self.check_fail(sid) {
            Some(true) => {
                self.after_data(sid, dir, DataStatus::Continue, Some(data), eos);
                return Outcome::NotCalled;
            }
            Some(false) => return Outcome::NotCalled,
            None => {}
        }
        let limit = self.plugin.buffer_limit;
        let (size, over) = {
            let Some(s) = self.st_mut(sid) else {
                return Outcome::NotCalled;
            };
            let side = s.side_mut(dir);
            side.callback_eos = eos;
            if side.buffering {
                // The filter paused on the previous chunk: this one joins the
                // buffer and the filter sees all of it.
                let buffered = side.buffered.get_or_insert_with(Vec::new);
                buffered.extend_from_slice(&data);
                side.chunk = None;
                (buffered.len(), buffered.len() > limit)
            } else {
                let len = data.len();
                side.chunk = Some(data);
                side.chunk_access = true;
                (len, false)
            }
        };
        if over {
            // The buffer overflowed while being filled: Envoy answers before
            // calling the VM.
            self.too_large(sid, dir);
            return Outcome::NotCalled;
        }
        let cb = if dir == Request {
            Callback::RequestBody
        } else {
            Callback::ResponseBody
        };
        let result = self.call_callback(sid, cb, size as u32, eos as u32);
        let (deferred, stopped) = self.take_deferred();
        let (status, outcome) = match &result {
            Ok(raw) => (DataStatus::from_raw(*raw, stopped), Outcome::Returned(*raw)),
            Err(trap) => {
                let open = self.check_fail(sid) == Some(true);
                (
                    if open {
                        DataStatus::Continue
                    } else {
                        DataStatus::StopNoBuffer
                    },
                    Outcome::Trapped(trap.clone()),
                )
            }
        };
        let chunk = self.st_mut(sid).and_then(|s| {
            let side = s.side_mut(dir);
            side.buffering = false;
            side.chunk_access = false;
            side.chunk.take()
        });
        self.run_deferred(deferred);
        if self.aborted(sid, dir) {
            return outcome;
        }
        self.after_data(sid, dir, status, chunk, eos);
        outcome
    }

    /// Envoy's `commonHandleAfterDataCallback`.
    fn after_data(
        &mut self,
        sid: u32,
        dir: Direction,
        status: DataStatus,
        chunk: Option<Vec<u8>>,
        eos: bool,
    ) {
        enum Next {
            Nothing,
            Resume,
            Out(Vec<u8>, bool),
            TooLarge,
        }
        let limit = self.plugin.buffer_limit;
        let next = {
            let Some(s) = self.st_mut(sid) else { return };
            let side = s.side_mut(dir);
            match status {
                DataStatus::Continue if side.iteration == Iteration::StopSingle => {
                    if let Some(c) = chunk {
                        side.buffered
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(&c);
                    }
                    Next::Resume
                }
                DataStatus::Continue => {
                    let has_trailers = side.trailers.is_some() && !side.trailers_added;
                    Next::Out(chunk.unwrap_or_default(), eos && !has_trailers)
                }
                DataStatus::StopAndBuffer => {
                    side.iteration = Iteration::StopSingle;
                    side.buffering = true;
                    let buffered = side.buffered.get_or_insert_with(Vec::new);
                    if let Some(c) = chunk {
                        buffered.extend_from_slice(&c);
                    }
                    if buffered.len() > limit {
                        Next::TooLarge
                    } else {
                        Next::Nothing
                    }
                }
                DataStatus::StopAndWatermark => {
                    side.iteration = Iteration::StopSingle;
                    if let Some(c) = chunk {
                        side.buffered
                            .get_or_insert_with(Vec::new)
                            .extend_from_slice(&c);
                    }
                    Next::Nothing
                }
                DataStatus::StopNoBuffer => {
                    side.iteration = Iteration::StopSingle;
                    // The chunk is the filter's now. At the end of the stream
                    // an empty buffer remembers that the end must still go out.
                    if eos && side.buffered.is_none() {
                        side.buffered = Some(Vec::new());
                    }
                    Next::Nothing
                }
            }
        };
        match next {
            Next::Nothing => {}
            Next::Resume => self.resume(sid, dir),
            Next::Out(bytes, eos) => self.body_out(sid, dir, bytes, eos),
            Next::TooLarge => self.too_large(sid, dir),
        }
    }

    /// The per-stream buffer limit was exceeded in buffering mode.
    fn too_large(&mut self, sid: u32, dir: Direction) {
        let reply = match dir {
            Request => LocalReply {
                status: 413,
                body: b"Payload Too Large".to_vec(),
                headers: Vec::new(),
                details: "request_payload_too_large".into(),
            },
            Response => LocalReply {
                status: 500,
                body: b"Internal Server Error".to_vec(),
                headers: Vec::new(),
                details: "response_payload_too_large".into(),
            },
        };
        self.send_local_reply(sid, Some(dir), reply);
    }

    // ---- trailers -------------------------------------------------------------------------

    fn filter_trailers(&mut self, sid: u32, dir: Direction, trailers: HeaderMap) -> Outcome {
        let stopped_all = {
            let Some(s) = self.st_mut(sid) else {
                return Outcome::NotCalled;
            };
            let side = s.side_mut(dir);
            side.remote_complete = true;
            side.trailers = Some(trailers);
            matches!(side.iteration, Iteration::StopAll { .. })
        };
        if stopped_all {
            // Held with the body until the filter continues.
            return Outcome::NotCalled;
        }
        self.deliver_trailers(sid, dir)
    }

    fn deliver_trailers(&mut self, sid: u32, dir: Direction) -> Outcome {
        let n = {
            let Some(s) = self.st_mut(sid) else {
                return Outcome::NotCalled;
            };
            let side = s.side_mut(dir);
            side.trailers_seen = true;
            side.callback_eos = true;
            side.trailers.as_ref().map_or(0, |t| t.len()) as u32
        };
        let (go_on, outcome) = if dir == Response && self.failure_reply_sent(sid) {
            (true, Outcome::NotCalled)
        } else {
            match self.check_fail(sid) {
                Some(open) => (open, Outcome::NotCalled),
                None => {
                    if let Some(s) = self.st_mut(sid) {
                        s.side_mut(dir).trailers_access = true;
                    }
                    let cb = if dir == Request {
                        Callback::RequestTrailers
                    } else {
                        Callback::ResponseTrailers
                    };
                    let result = self.call_callback(sid, cb, n, 0);
                    let (deferred, stopped) = self.take_deferred();
                    let decided = match &result {
                        Ok(raw) => (trailers_continue(*raw, stopped), Outcome::Returned(*raw)),
                        Err(trap) => (
                            self.check_fail(sid) == Some(true),
                            Outcome::Trapped(trap.clone()),
                        ),
                    };
                    self.run_deferred(deferred);
                    decided
                }
            }
        };
        if self.aborted(sid, dir) {
            return outcome;
        }
        let stopped = {
            let Some(s) = self.st_mut(sid) else {
                return outcome;
            };
            let side = s.side_mut(dir);
            if !go_on {
                side.iteration = Iteration::StopSingle;
                return outcome;
            }
            side.trailers_access = false;
            side.iteration == Iteration::StopSingle
        };
        if stopped {
            self.resume(sid, dir);
        } else {
            self.trailers_out(sid, dir);
        }
        outcome
    }

    // ---- resuming ---------------------------------------------------------------------------

    /// Envoy's `commonContinue`: headers go on if they had not, buffered data
    /// goes to the filter (if it had stopped everything at the headers) or
    /// past it, then held trailers.
    pub(crate) fn resume(&mut self, sid: u32, dir: Direction) {
        if self.aborted(sid, dir) {
            return;
        }
        let (stopped_all, headers_pending) = {
            let Some(s) = self.st_mut(sid) else { return };
            let side = s.side_mut(dir);
            let stopped_all = match side.iteration {
                Iteration::Continue => return,
                Iteration::StopSingle => false,
                Iteration::StopAll { .. } => true,
            };
            side.iteration = Iteration::Continue;
            (stopped_all, !side.headers_continued)
        };
        if headers_pending {
            self.headers_out(sid, dir);
        }
        let (buffered, eos, trailers_pending) = {
            let Some(s) = self.st_mut(sid) else { return };
            let side = s.side_mut(dir);
            let trailers_pending =
                side.trailers.is_some() && !side.trailers_added && side.out.trailers.is_none();
            (
                side.buffered.take(),
                side.remote_complete && !trailers_pending,
                trailers_pending,
            )
        };
        if let Some(buf) = buffered {
            if stopped_all {
                self.deliver_data(sid, dir, buf, eos);
            } else {
                self.body_out(sid, dir, buf, eos);
            }
            if self.aborted(sid, dir) {
                return;
            }
        }
        if trailers_pending {
            let Some(s) = self.st(sid) else { return };
            let side = s.side(dir);
            if !side.trailers_seen {
                if !matches!(side.iteration, Iteration::StopAll { .. }) {
                    self.deliver_trailers(sid, dir);
                }
            } else if side.iteration == Iteration::Continue {
                self.trailers_out(sid, dir);
            }
        }
    }

    // ---- local replies and resets ----------------------------------------------------------

    /// Envoy's `FilterManager::sendLocalReply`: through our own response
    /// callbacks if no response has started; straight to the client if
    /// response headers exist but have not gone out; else a reset.
    pub(crate) fn send_local_reply(
        &mut self,
        sid: u32,
        phase: Option<Direction>,
        reply: LocalReply,
    ) {
        let mut headers = HeaderMap::new();
        headers.add(":status", &reply.status.to_string());
        for (k, v) in &reply.headers {
            headers.add(k, v);
        }
        if !reply.body.is_empty() {
            headers.set("content-length", &reply.body.len().to_string());
            if headers.get("content-type").is_none() {
                headers.add("content-type", "text/plain");
            }
        }
        let through_filter = {
            let Some(s) = self.st_mut(sid) else { return };
            if s.ended || s.reset {
                return;
            }
            s.code_details = Some(reply.details.clone());
            match phase {
                Some(Request) => s.decoder_aborted = true,
                Some(Response) => s.encoder_aborted = true,
                None => {}
            }
            if !s.response_started {
                // The request is over: nothing more reaches the filter or the upstream.
                s.decoder_aborted = true;
                s.local_reply = Some(reply.status);
                s.response_code = Some(reply.status);
                true
            } else if s.resp.out.headers.is_none() {
                s.encoder_aborted = true;
                s.local_reply = Some(reply.status);
                s.response_code = Some(reply.status);
                s.resp.iteration = Iteration::Continue;
                s.resp.out.headers = Some(headers.clone());
                s.resp.out.body = reply.body.clone();
                s.resp.out.trailers = None;
                s.resp.out.complete = true;
                return;
            } else {
                false
            }
        };
        if through_filter {
            let body = reply.body;
            self.filter_headers(sid, Response, headers, body.is_empty());
            if !body.is_empty() && !self.aborted(sid, Response) {
                self.filter_data(sid, Response, body, true);
            }
        } else {
            self.reset_stream(sid);
        }
    }

    /// The stream is reset: the client sees a broken response.
    pub(crate) fn reset_stream(&mut self, sid: u32) {
        if let Some(s) = self.st_mut(sid) {
            if !s.ended {
                s.reset = true;
            }
        }
    }

    // ---- the end of a stream -----------------------------------------------------------------

    /// End every stream whose response reached the client whole, or that
    /// was reset (Envoy's `doEndStream` / `doDeferredStreamDestroy`).
    pub(crate) fn end_finished_streams(&mut self) {
        let finished: Vec<u32> = self
            .store
            .data()
            .streams
            .values()
            .filter(|s| !s.ended && (s.reset || s.resp.out.complete))
            .map(|s| s.id)
            .collect();
        for sid in finished {
            self.end_stream(sid);
        }
    }

    /// The access log first (`on_log`, where headers are readable again),
    /// then the filter's destruction (`on_done`, `on_delete`).
    fn end_stream(&mut self, sid: u32) {
        let now = self.shared.clock.now_ns();
        let (in_vm, orphaned, root) = {
            let Some(s) = self.st_mut(sid) else { return };
            if s.ended {
                return;
            }
            // From here on nothing the module asks for changes the stream.
            s.ended = true;
            s.end_ns = Some(now);
            s.req.headers_access = false;
            s.resp.headers_access = false;
            s.req.trailers_access = false;
            s.resp.trailers_access = false;
            s.req.chunk_access = false;
            s.resp.chunk_access = false;
            s.req.buffering = false;
            s.resp.buffering = false;
            (s.in_vm, s.orphaned, s.root)
        };
        if in_vm && !orphaned && !self.vm_failed() {
            if let Some(s) = self.st_mut(sid) {
                s.access_log_phase = true;
            }
            let _ = self.call_vm(sid, None, "proxy_on_log", |e, st| match &e.on_log {
                Some(f) => f.call(st, sid),
                None => Ok(()),
            });
            if let Some(s) = self.st_mut(sid) {
                s.access_log_phase = false;
            }
            self.run_deferred_now();
            let _ = self.call_vm(sid, None, "proxy_on_done", |e, st| match &e.on_done {
                Some(f) => f.call(st, sid),
                None => Ok(1),
            });
            self.run_deferred_now();
            let _ = self.call_vm(sid, None, "proxy_on_delete", |e, st| match &e.on_delete {
                Some(f) => f.call(st, sid),
                None => Ok(()),
            });
            self.run_deferred_now();
        }
        if !orphaned {
            self.stream_left_root(root);
        }
    }
}
