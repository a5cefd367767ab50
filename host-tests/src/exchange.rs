//! The replay file format: one recorded HTTP exchange in, one result out.
//!
//! These types are the contract of `rheostat replay` (one JSON object per
//! line, both ways) and of `Worker::run_exchange`, so tests, drills and the
//! CLI all describe traffic the same way.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One recorded exchange: what the client sent and what the upstream answered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub id: String,
    /// Virtual time of the request, in milliseconds since the replay started.
    #[serde(default)]
    pub at_ms: u64,
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body, serialised compactly before it is sent.
    #[serde(default)]
    pub body: Option<Value>,
    /// A body given as raw text (wins over `body`).
    #[serde(default)]
    pub body_text: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub body_text: Option<String>,
    /// The exact upstream chunking; when absent the replay's chunking applies.
    #[serde(default)]
    pub chunks: Option<Vec<String>>,
    /// Upstream trailers; when present no body callback sees end_of_stream.
    #[serde(default)]
    pub trailers: Option<BTreeMap<String, String>>,
    /// Upstream latency in milliseconds (virtual time between request and response headers).
    #[serde(default)]
    pub latency_ms: u64,
}

fn default_method() -> String {
    "POST".into()
}
fn default_path() -> String {
    "/v1/chat/completions".into()
}
fn default_status() -> u16 {
    200
}

impl RecordedRequest {
    pub fn body_bytes(&self) -> Vec<u8> {
        body_bytes(&self.body_text, &self.body)
    }
}

impl RecordedResponse {
    /// The body as the upstream sends it, chunked if `chunks` says so.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.chunks {
            Some(chunks) => chunks.concat().into_bytes(),
            None => body_bytes(&self.body_text, &self.body),
        }
    }
}

fn body_bytes(text: &Option<String>, json: &Option<Value>) -> Vec<u8> {
    match (text, json) {
        (Some(t), _) => t.clone().into_bytes(),
        (None, Some(v)) => serde_json::to_vec(v).unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

/// How the host splits a body into upstream chunks when the recording does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunking {
    /// The whole body in one callback.
    Whole,
    /// Fixed-size chunks of this many bytes.
    Fixed(usize),
    /// Random chunk sizes between 1 and 64 bytes from this seed (deterministic).
    Random { seed: u64 },
}

/// What happened to one exchange, as the client and the upstream saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExchangeResult {
    pub id: String,
    pub request: ForwardedRequest,
    pub response: DeliveredResponse,
    /// Findings reported by the filter (from its audit events).
    pub findings: Vec<Value>,
    /// The control level the filter applied.
    pub level: String,
    /// Structured audit events the filter logged during this exchange.
    pub events: Vec<Value>,
    /// `dispatch_http_call`s the filter made during this exchange.
    pub http_calls: Vec<Value>,
    /// Metric changes during this exchange: name → delta (counters) or value (gauges).
    pub metrics: BTreeMap<String, i64>,
}

/// The request as the upstream received it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ForwardedRequest {
    /// False when the filter answered locally or the stream was reset before upstream.
    pub forwarded: bool,
    pub headers: BTreeMap<String, String>,
    pub body_text: String,
}

/// The response as the client received it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveredResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// Lossy UTF-8 of the bytes the client received.
    pub body_text: String,
    /// The client got a local reply from the filter (or from Envoy on its behalf).
    pub local: bool,
    /// The stream was reset: the client saw a broken response.
    pub reset: bool,
}

impl Chunking {
    /// Split `body` into the chunks the upstream (or client) sends. `stream`
    /// picks an independent random sequence for each direction of one
    /// exchange, so request and response chunk sizes differ. An empty body
    /// has no chunks.
    pub fn split(&self, body: &[u8], stream: u64) -> Vec<Vec<u8>> {
        if body.is_empty() {
            return Vec::new();
        }
        match self {
            Chunking::Whole | Chunking::Fixed(0) => vec![body.to_vec()],
            Chunking::Fixed(n) => body.chunks(*n).map(<[u8]>::to_vec).collect(),
            Chunking::Random { seed } => {
                let mut state = seed ^ stream.wrapping_mul(0xa076_1d64_78bd_642f);
                let mut chunks = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    let size = (1 + (z % 64) as usize).min(rest.len());
                    chunks.push(rest[..size].to_vec());
                    rest = &rest[size..];
                }
                chunks
            }
        }
    }
}
