//! Streams: the per-request state Envoy's filter manager keeps for our one
//! filter (`StreamState`), and `Stream`, the handle tests use to drive a
//! request callback by callback.
//!
//! The rules that move a stream forward live in `filter_manager.rs`; this
//! file holds the data and the public accessors.

use crate::headers::HeaderMap;
use crate::worker::Worker;
use std::collections::BTreeMap;

/// Which half of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream (Envoy's decoder path).
    Request,
    /// Upstream to client (Envoy's encoder path).
    Response,
}

/// A stream callback of the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Callback {
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
}

/// One stream callback and the raw code it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ActionRecord {
    /// Which callback.
    pub callback: Callback,
    /// The raw return value (0 Continue, 1 StopIteration / Pause, ...).
    pub code: u32,
}

/// What one call of the [`Stream`] API did with the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The filter was not called for this input: it had stopped all
    /// iteration (the input was buffered), the stream was already answered
    /// or reset, or the VM had failed.
    NotCalled,
    /// The callback returned this raw code (0 Continue, 1 Pause, ...).
    Returned(u32),
    /// The VM trapped in the callback.
    Trapped(String),
}

impl Outcome {
    /// The raw code, when the filter was called and returned.
    pub fn code(&self) -> Option<u32> {
        match self {
            Outcome::Returned(c) => Some(*c),
            _ => None,
        }
    }
}

/// How far the filter manager let one direction iterate past our filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Iteration {
    Continue,
    /// Stopped by a body or trailers callback (`StopSingleIteration`).
    StopSingle,
    /// Stopped by a headers callback: body and trailers wait in the buffer
    /// without reaching the filter. `watermark` exempts the buffer from the
    /// per-stream limit (back-pressure only).
    StopAll {
        watermark: bool,
    },
}

/// What left the filter on one side: to the upstream for the request, to the
/// client for the response.
#[derive(Debug, Clone, Default)]
pub(crate) struct Output {
    pub headers: Option<HeaderMap>,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    pub complete: bool,
}

/// One direction of a stream, as Envoy's filter manager and the Wasm
/// `Context` (its `request_headers_`, `request_body_buffer_`, ... pointers)
/// see it.
#[derive(Debug, Clone)]
pub(crate) struct Side {
    pub headers: HeaderMap,
    pub headers_arrived: bool,
    /// The Context's header pointer is set: the map is readable and writable.
    pub headers_access: bool,
    /// The headers went past our filter.
    pub headers_continued: bool,
    pub iteration: Iteration,
    /// The filter manager's buffered data (`bufferedData()`).
    pub buffered: Option<Vec<u8>>,
    /// The last body callback returned StopIterationAndBuffer: the next
    /// chunk is appended to `buffered` and the filter sees all of it.
    pub buffering: bool,
    /// The chunk handed to the current body callback (when not buffering).
    pub chunk: Option<Vec<u8>>,
    /// The Context's body pointer is set: the chunk is readable and
    /// writable (a `continue_stream` clears the pointer, not the data).
    pub chunk_access: bool,
    /// `end_of_stream` of the last callback on this side.
    pub callback_eos: bool,
    pub trailers: Option<HeaderMap>,
    pub trailers_access: bool,
    /// The filter's trailers callback has run for these trailers.
    pub trailers_seen: bool,
    /// The filter added these trailers from a body callback.
    pub trailers_added: bool,
    /// The peer has sent everything (end of stream or trailers).
    pub remote_complete: bool,
    /// Bytes received from the peer (for `request.size`).
    pub received: usize,
    pub out: Output,
}

impl Default for Side {
    fn default() -> Self {
        Side {
            headers: HeaderMap::new(),
            headers_arrived: false,
            headers_access: false,
            headers_continued: false,
            iteration: Iteration::Continue,
            buffered: None,
            buffering: false,
            chunk: None,
            chunk_access: false,
            callback_eos: false,
            trailers: None,
            trailers_access: false,
            trailers_seen: false,
            trailers_added: false,
            remote_complete: false,
            received: 0,
            out: Output::default(),
        }
    }
}

impl Side {
    /// The body buffer the filter reads and writes now, if any: the whole
    /// buffered body while buffering, else the current chunk.
    pub(crate) fn body_mut(&mut self) -> Option<&mut Vec<u8>> {
        if self.buffering {
            self.buffered.as_mut()
        } else if self.chunk_access {
            self.chunk.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn body(&self) -> Option<&Vec<u8>> {
        if self.buffering {
            self.buffered.as_ref()
        } else if self.chunk_access {
            self.chunk.as_ref()
        } else {
            None
        }
    }
}

/// Everything the host knows about one HTTP stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamState {
    pub id: u32,
    pub root: u32,
    pub req: Side,
    pub resp: Side,
    /// `proxy_on_context_create` ran for this stream.
    pub in_vm: bool,
    /// Response headers exist (from upstream or a local reply).
    pub response_started: bool,
    /// A local reply ended the request path: no more request callbacks.
    pub decoder_aborted: bool,
    /// A local reply went straight to the client: no more response callbacks.
    pub encoder_aborted: bool,
    /// Status of the local reply the client gets.
    pub local_reply: Option<u16>,
    pub reset: bool,
    /// The failure of the VM has been handled for this stream (Envoy's `stream_failed_`).
    pub stream_failed: bool,
    /// Envoy's `failure_local_reply_sent_`: the 503 is on its way, skip the VM.
    pub failure_reply_sent: bool,
    pub response_code: Option<u16>,
    pub code_details: Option<String>,
    /// `proxy_set_property` values (Envoy's filter state `wasm.<path>`).
    pub filter_state: BTreeMap<String, Vec<u8>>,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    pub access_log_phase: bool,
    /// on_log / on_done / on_delete have run (or were skipped): the stream is over.
    pub ended: bool,
    /// The VM this stream started on was replaced by `Host::reload_worker`.
    pub orphaned: bool,
    pub actions: Vec<ActionRecord>,
    pub trap: Option<String>,
}

impl StreamState {
    pub(crate) fn new(id: u32, root: u32, now_ns: u64) -> StreamState {
        StreamState {
            id,
            root,
            req: Side::default(),
            resp: Side::default(),
            in_vm: false,
            response_started: false,
            decoder_aborted: false,
            encoder_aborted: false,
            local_reply: None,
            reset: false,
            stream_failed: false,
            failure_reply_sent: false,
            response_code: None,
            code_details: None,
            filter_state: BTreeMap::new(),
            start_ns: now_ns,
            end_ns: None,
            access_log_phase: false,
            ended: false,
            orphaned: false,
            actions: Vec::new(),
            trap: None,
        }
    }

    pub(crate) fn side(&self, dir: Direction) -> &Side {
        match dir {
            Direction::Request => &self.req,
            Direction::Response => &self.resp,
        }
    }

    pub(crate) fn side_mut(&mut self, dir: Direction) -> &mut Side {
        match dir {
            Direction::Request => &mut self.req,
            Direction::Response => &mut self.resp,
        }
    }

    /// No more callbacks in this direction.
    pub(crate) fn aborted(&self, dir: Direction) -> bool {
        self.ended
            || self.reset
            || match dir {
                Direction::Request => self.decoder_aborted,
                Direction::Response => self.encoder_aborted,
            }
    }
}

/// Identifies a stream on its worker, to come back to it after
/// [`Stream::detach`] (for instance around [`crate::Host::advance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(pub(crate) u32);

impl StreamId {
    /// The stream's context id in the VM.
    pub fn context_id(&self) -> u32 {
        self.0
    }
}

/// A handle to drive one stream callback by callback, as Envoy's HTTP
/// connection manager would: what went upstream and downstream is readable
/// at any point. Dropping the handle of an unfinished stream keeps the stream
/// in flight (see [`Stream::detach`]); [`Stream::finish`] ends it.
pub struct Stream<'w> {
    pub(crate) worker: &'w mut Worker,
    pub(crate) id: u32,
}

fn pairs(list: &[(&str, &str)]) -> HeaderMap {
    HeaderMap::from_pairs(list)
}

impl<'w> Stream<'w> {
    /// This stream's id.
    pub fn id(&self) -> StreamId {
        StreamId(self.id)
    }

    /// Request headers from the client (`:method`, `:path`, `:authority`,
    /// `:scheme` included as given). `end_of_stream` when there is no body.
    pub fn request_headers(&mut self, headers: &[(&str, &str)], end_of_stream: bool) -> Outcome {
        self.worker
            .client_headers(self.id, Direction::Request, pairs(headers), end_of_stream)
    }

    /// A request body chunk; `end_of_stream` on the last one unless trailers follow.
    pub fn request_body(&mut self, data: &[u8], end_of_stream: bool) -> Outcome {
        self.worker
            .client_data(self.id, Direction::Request, data.to_vec(), end_of_stream)
    }

    /// Request trailers (end the request).
    pub fn request_trailers(&mut self, trailers: &[(&str, &str)]) -> Outcome {
        self.worker
            .client_trailers(self.id, Direction::Request, pairs(trailers))
    }

    /// Response headers from the upstream, `:status` included.
    pub fn response_headers(&mut self, headers: &[(&str, &str)], end_of_stream: bool) -> Outcome {
        self.worker
            .client_headers(self.id, Direction::Response, pairs(headers), end_of_stream)
    }

    /// A response body chunk from the upstream.
    pub fn response_body(&mut self, data: &[u8], end_of_stream: bool) -> Outcome {
        self.worker
            .client_data(self.id, Direction::Response, data.to_vec(), end_of_stream)
    }

    /// Response trailers from the upstream.
    pub fn response_trailers(&mut self, trailers: &[(&str, &str)]) -> Outcome {
        self.worker
            .client_trailers(self.id, Direction::Response, pairs(trailers))
    }

    /// The upstream resets the stream: a 503 local reply if no response
    /// headers came back yet, else the client's stream is reset (see
    /// `docs/host.md`, "Local replies and resets").
    pub fn upstream_reset(&mut self) {
        self.worker.upstream_reset(self.id);
    }

    /// End the stream. A stream whose response reached the client completely
    /// (or that was reset) has already ended by itself; otherwise the client
    /// goes away now (a downstream reset). Either way on_log, on_done and
    /// on_delete have run when this returns — in Envoy's order: the access
    /// log first (`on_log`, where headers are readable again), then the
    /// filter's destruction (`on_done`, `on_delete`).
    pub fn finish(&mut self) {
        self.worker.finish_stream(self.id);
    }

    /// Keep the stream in flight without holding the worker borrowed; get it
    /// back with [`Worker::stream`].
    pub fn detach(self) -> StreamId {
        let id = StreamId(self.id);
        std::mem::forget(self);
        id
    }

    fn state(&self) -> Option<&StreamState> {
        self.worker.stream_state(self.id)
    }

    /// The request headers as the upstream received them (pseudo-headers
    /// included), once the filter let them through.
    pub fn upstream_headers(&self) -> Option<Vec<(String, String)>> {
        self.state()?
            .req
            .out
            .headers
            .as_ref()
            .map(|h| h.pairs().to_vec())
    }

    /// The request body bytes the upstream has received so far.
    pub fn upstream_body(&self) -> Vec<u8> {
        self.state()
            .map(|s| s.req.out.body.clone())
            .unwrap_or_default()
    }

    /// The request trailers the upstream received.
    pub fn upstream_trailers(&self) -> Option<Vec<(String, String)>> {
        self.state()?
            .req
            .out
            .trailers
            .as_ref()
            .map(|h| h.pairs().to_vec())
    }

    /// The upstream has received the whole request.
    pub fn upstream_complete(&self) -> bool {
        self.state().is_some_and(|s| s.req.out.complete)
    }

    /// The `:status` the client received, once response headers reached it.
    pub fn downstream_status(&self) -> Option<u16> {
        let h = self.state()?.resp.out.headers.as_ref()?;
        h.get(":status")?.parse().ok()
    }

    /// The response headers the client received (`:status` included).
    pub fn downstream_headers(&self) -> Option<Vec<(String, String)>> {
        self.state()?
            .resp
            .out
            .headers
            .as_ref()
            .map(|h| h.pairs().to_vec())
    }

    /// The response body bytes the client has received so far.
    pub fn downstream_body(&self) -> Vec<u8> {
        self.state()
            .map(|s| s.resp.out.body.clone())
            .unwrap_or_default()
    }

    /// How many response body bytes the client has received so far,
    /// without copying them (for bodies of many MiB).
    pub fn downstream_body_len(&self) -> usize {
        self.state().map_or(0, |s| s.resp.out.body.len())
    }

    /// The response trailers the client received.
    pub fn downstream_trailers(&self) -> Option<Vec<(String, String)>> {
        self.state()?
            .resp
            .out
            .trailers
            .as_ref()
            .map(|h| h.pairs().to_vec())
    }

    /// The client has received the whole response.
    pub fn downstream_complete(&self) -> bool {
        self.state().is_some_and(|s| s.resp.out.complete)
    }

    /// The status of the local reply the client got (from the filter's
    /// `send_local_response`, the buffer limit, or a failed VM).
    pub fn local_reply(&self) -> Option<u16> {
        self.state()?.local_reply
    }

    /// The stream was reset: the client saw a broken response.
    pub fn reset(&self) -> bool {
        self.state().is_some_and(|s| s.reset)
    }

    /// on_log / on_done / on_delete have run: the stream is over.
    pub fn ended(&self) -> bool {
        self.state().is_some_and(|s| s.ended)
    }

    /// Every stream callback made so far with its raw return code, in order.
    pub fn actions(&self) -> Vec<ActionRecord> {
        self.state().map(|s| s.actions.clone()).unwrap_or_default()
    }

    /// The trap that failed the VM during this stream, if one did.
    pub fn trap(&self) -> Option<String> {
        self.state()?.trap.clone()
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        // A finished stream's state is no longer needed; an unfinished one
        // stays in flight, as it would in Envoy.
        self.worker.forget_stream_if_ended(self.id);
    }
}
