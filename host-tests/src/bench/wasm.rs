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
pub fn run_checked(
    worker: &mut Worker,
    ex: &Exchange,
    chunking: &Chunking,
) -> Result<ExchangeResult> {
    let mut r = worker.run_exchange(ex, chunking);
    derive_findings(&mut r);
    if let Some(trap) = r
        .events
        .iter()
        .find(|e| e.get("event").and_then(|v| v.as_str()) == Some("trap"))
    {
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
pub fn first_text(
    worker: &mut Worker,
    provider: Provider,
    request: &[u8],
    frames: &[String],
) -> Option<usize> {
    let id = open_sse_stream(worker, path_of(provider), request);
    let mut s = worker.stream(id)?;
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

/// Linear memory of one VM with many streams open at once.
///
/// Linear memory is only a high-water mark: the allocator first reuses the
/// memory freed after compiling the policy (several MiB), so the first
/// streams cost no growth at all. The per-stream figures are therefore
/// slopes: memory is sampled after each batch of streams, and the cost of a
/// stream is the growth per stream from the first batch that made memory
/// grow to the last one.
#[derive(Debug, Clone, Default)]
pub struct StreamMemory {
    /// Before any stream was opened (after a warm-up exchange).
    pub base: usize,
    /// With every loaded stream open.
    pub loaded: usize,
    /// Bytes per stream with its hold-back window full (0: never grew).
    pub per_loaded_stream: f64,
    /// Bytes per stream with only response headers (0: never grew).
    pub per_idle_stream: f64,
}

/// The growth per stream of `(streams, memory)` samples, from the first
/// sample that grew past `base` to the last (0 when fewer than two grew).
pub fn slope(base: usize, samples: &[(usize, usize)]) -> f64 {
    let Some(first) = samples.iter().position(|&(_, m)| m > base) else {
        return 0.0;
    };
    let (n0, m0) = samples[first];
    let (n1, m1) = samples[samples.len() - 1];
    if n1 <= n0 {
        return 0.0;
    }
    (m1 - m0) as f64 / (n1 - n0) as f64
}

fn open_sse_stream(worker: &mut Worker, path: &str, request: &[u8]) -> crate::StreamId {
    let mut s = worker.open_stream();
    s.request_headers(
        &[
            (":method", "POST"),
            (":path", path),
            (":authority", "llm.local"),
            (":scheme", "http"),
            ("content-type", "application/json"),
        ],
        false,
    );
    s.request_body(request, true);
    s.response_headers(
        &[(":status", "200"), ("content-type", "text/event-stream")],
        false,
    );
    s.detach()
}

/// Opens `n` concurrent streams on worker 0 of `host`, each with `frames`
/// of its SSE answer pushed, then `n` more with only response headers, and
/// measures linear memory in `batches` steps. Every stream stays in flight
/// (detached) until the host is dropped.
pub fn stream_memory(
    host: &mut Host,
    provider: Provider,
    request: &[u8],
    frames: &[String],
    n: usize,
    batches: usize,
) -> StreamMemory {
    let worker = host.worker(0);
    let path = path_of(provider);
    let base = worker.memory_bytes();
    let batch = n.div_ceil(batches.max(1)).max(1);
    let mut loaded_samples = Vec::new();
    let mut opened = 0;
    while opened < n {
        for _ in 0..batch.min(n - opened) {
            let id = open_sse_stream(worker, path, request);
            if let Some(mut s) = worker.stream(id) {
                for frame in frames {
                    s.response_body(frame.as_bytes(), false);
                }
                s.detach();
            }
            opened += 1;
        }
        loaded_samples.push((opened, worker.memory_bytes()));
    }
    let loaded = worker.memory_bytes();
    let mut idle_samples = Vec::new();
    opened = 0;
    while opened < n {
        for _ in 0..batch.min(n - opened) {
            open_sse_stream(worker, path, request);
            opened += 1;
        }
        idle_samples.push((opened, worker.memory_bytes()));
    }
    StreamMemory {
        base,
        loaded,
        per_loaded_stream: slope(base, &loaded_samples),
        per_idle_stream: slope(loaded, &idle_samples),
    }
}
