//! The compiled module under the host: the path Envoy runs. Exchanges go
//! through `Worker::run_exchange` (the filter manager, buffering, the
//! module's callbacks and host calls); per-frame questions use the
//! `Stream` API.

use crate::exchange::{Chunking, Exchange, ExchangeResult, RecordedRequest, RecordedResponse};
use crate::host::{Host, HostConfig};
use crate::replay::derive_findings;
use crate::Worker;
use anyhow::{bail, Result};
use rheostat_filter::codec::Provider;
use std::collections::BTreeMap;
use std::path::Path;

/// Envoy's per-connection buffer limit is configurable; the benchmark's
/// large buffered bodies need more than the 1 MiB default.
pub const BENCH_BUFFER_LIMIT: usize = 64 << 20;

/// Starts a one-worker host running `module` with `policy`.
pub fn start(module: &Path, policy: &[u8]) -> Result<Host> {
    Host::start(HostConfig {
        module: module.to_path_buf(),
        workers: 1,
        plugin_config: policy.to_vec(),
        buffer_limit: BENCH_BUFFER_LIMIT,
        ..HostConfig::default()
    })
}

/// The API path of a provider.
pub fn path_of(provider: Provider) -> &'static str {
    match provider {
        Provider::Anthropic => "/v1/messages",
        Provider::OpenAiResponses => "/v1/responses",
        _ => "/v1/chat/completions",
    }
}

/// One exchange: a JSON request to `provider`, answered with `body`
/// (`chunks`, when given, is the exact upstream chunking).
pub fn exchange(
    provider: Provider,
    request: &[u8],
    content_type: &str,
    body: String,
    chunks: Option<Vec<String>>,
) -> Exchange {
    let mut req_headers = BTreeMap::new();
    req_headers.insert("content-type".to_string(), "application/json".to_string());
    req_headers.insert("x-tenant-id".to_string(), "bench".to_string());
    req_headers.insert("x-region".to_string(), "eu-west-1".to_string());
    let mut resp_headers = BTreeMap::new();
    resp_headers.insert("content-type".to_string(), content_type.to_string());
    Exchange {
        id: "bench".into(),
        at_ms: 0,
        request: RecordedRequest {
            method: "POST".into(),
            path: path_of(provider).into(),
            headers: req_headers,
            body: None,
            body_text: Some(String::from_utf8_lossy(request).into_owned()),
        },
        response: RecordedResponse {
            status: 200,
            headers: resp_headers,
            body: None,
            body_text: if chunks.is_some() { None } else { Some(body) },
            chunks,
            trailers: None,
            latency_ms: 0,
        },
    }
}

/// Runs one exchange and checks it went through (forwarded, answered 200,
/// not reset, no trap): a benchmark of a broken path measures nothing.
pub fn run_checked(worker: &mut Worker, ex: &Exchange, chunking: &Chunking) -> Result<ExchangeResult> {
    let mut r = worker.run_exchange(ex, chunking);
    derive_findings(&mut r);
    if let Some(trap) = r.events.iter().find(|e| e.get("event").and_then(|v| v.as_str()) == Some("trap")) {
        bail!("the module trapped during a benchmark exchange: {trap}");
    }
    if !r.request.forwarded || r.response.status != 200 || r.response.reset || r.response.local {
        bail!(
            "a benchmark exchange did not go through (forwarded {}, status {}, reset {}, local {}): {}",
            r.request.forwarded,
            r.response.status,
            r.response.reset,
            r.response.local,
            r.response.body_text.chars().take(200).collect::<String>()
        );
    }
    Ok(r)
}

/// The `outcome` of the filter's `exchange` audit event, if it logged one.
pub fn outcome(r: &ExchangeResult) -> Option<String> {
    r.events
        .iter()
        .find(|e| e.get("event").and_then(|v| v.as_str()) == Some("exchange"))
        .and_then(|e| e.get("outcome"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Streams `frames` one per body callback through the module and reports
/// the index of the frame whose callback first released answer text.
pub fn first_text(worker: &mut Worker, provider: Provider, request: &[u8], frames: &[String]) -> Option<usize> {
    let mut s = worker.open_stream();
    let path = path_of(provider);
    s.request_headers(
        &[(":method", "POST"), (":path", path), (":authority", "llm.local"), (":scheme", "http"), ("content-type", "application/json")],
        false,
    );
    s.request_body(request, true);
    s.response_headers(&[(":status", "200"), ("content-type", "text/event-stream")], false);
    let mut seen = 0;
    let mut released = None;
    for (i, frame) in frames.iter().enumerate() {
        s.response_body(frame.as_bytes(), i + 1 == frames.len());
        let body = s.downstream_body();
        if released.is_none() && super::native::visible_text(provider, &body[seen..]) > 0 {
            released = Some(i);
        }
        seen = body.len();
    }
    s.finish();
    released
}

/// Linear memory of one VM with `n` streams open at once, each with its
/// request inspected and `frames` of its SSE response pushed.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamMemory {
    /// Before any of the streams was opened (after a warm-up exchange).
    pub base: usize,
    /// After every stream got its response headers (no body yet).
    pub opened: usize,
    /// After every stream got its frames.
    pub loaded: usize,
}

/// Opens `n` concurrent streams on worker 0 of `host` and measures linear
/// memory at each stage. The streams stay in flight (detached) until the
/// host is dropped.
pub fn stream_memory(host: &mut Host, provider: Provider, request: &[u8], frames: &[String], n: usize) -> StreamMemory {
    let worker = host.worker(0);
    let path = path_of(provider);
    let base = worker.memory_bytes();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = worker.open_stream();
        s.request_headers(
            &[(":method", "POST"), (":path", path), (":authority", "llm.local"), (":scheme", "http"), ("content-type", "application/json")],
            false,
        );
        s.request_body(request, true);
        s.response_headers(&[(":status", "200"), ("content-type", "text/event-stream")], false);
        ids.push(s.detach());
    }
    let opened = worker.memory_bytes();
    for id in &ids {
        if let Some(mut s) = worker.stream(*id) {
            for frame in frames {
                s.response_body(frame.as_bytes(), false);
            }
            s.detach();
        }
    }
    let loaded = worker.memory_bytes();
    StreamMemory { base, opened, loaded }
}
