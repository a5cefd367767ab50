//! `Cluster`: a scripted upstream for `proxy_http_call`. Envoy needs the
//! cluster to exist (else `BadArgument`); here each one is a responder the
//! test writes, and every call is recorded.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// What the module sent in one `proxy_http_call`.
#[derive(Debug, Clone, Serialize)]
pub struct CallRequest {
    /// The cluster named in the call.
    pub cluster: String,
    /// Headers in order, names lower-cased (as Envoy's header map holds them).
    pub headers: Vec<(String, String)>,
    /// The request body.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Request trailers, names lower-cased.
    pub trailers: Vec<(String, String)>,
    /// 0 means no timeout.
    pub timeout_ms: u32,
}

impl CallRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the upstream answers one call.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    /// A response: `:status` is added from `status`.
    #[allow(missing_docs)]
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        trailers: Vec<(String, String)>,
    },
    /// The async client reports a failure (a reset): the module's
    /// `on_http_call_response` sees `num_headers == 0`.
    Fail,
    /// The upstream never answers. With a timeout Envoy's router answers
    /// `504 upstream request timeout` when it expires; with timeout 0 the
    /// call stays pending forever.
    Timeout,
}

impl CallOutcome {
    /// A response with headers and a body.
    pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> CallOutcome {
        CallOutcome::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.into(),
            trailers: Vec::new(),
        }
    }
}

type Responder = dyn Fn(&CallRequest) -> CallOutcome + Send + Sync;

/// A named upstream: how it answers and after how long.
#[derive(Clone)]
pub struct Cluster {
    responder: Arc<Responder>,
    delay_ms: u64,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("delay_ms", &self.delay_ms)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Always answer with this response.
    pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Cluster {
        let outcome = CallOutcome::respond(status, headers, body);
        Cluster::from_fn(move |_| outcome.clone())
    }

    /// Always fail (a reset: `num_headers == 0`).
    pub fn fail() -> Cluster {
        Cluster::from_fn(|_| CallOutcome::Fail)
    }

    /// Never answer (see [`CallOutcome::Timeout`]).
    pub fn timeout() -> Cluster {
        Cluster::from_fn(|_| CallOutcome::Timeout)
    }

    /// Answer each call with a function of the request.
    pub fn from_fn(f: impl Fn(&CallRequest) -> CallOutcome + Send + Sync + 'static) -> Cluster {
        Cluster {
            responder: Arc::new(f),
            delay_ms: 0,
        }
    }

    /// Answer this many virtual milliseconds after the call (delivered by
    /// [`crate::Host::advance`]); 0 delivers right after the current callback.
    pub fn with_delay(mut self, delay_ms: u64) -> Cluster {
        self.delay_ms = delay_ms;
        self
    }

    pub(crate) fn answer(&self, request: &CallRequest) -> CallOutcome {
        (self.responder)(request)
    }

    pub(crate) fn delay_ms(&self) -> u64 {
        self.delay_ms
    }
}

/// A call as recorded for assertions.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    /// The cluster named in the call.
    pub cluster: String,
    /// Headers in order, names lower-cased; `content-length` added for a body.
    pub headers: Vec<(String, String)>,
    /// The request body.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Vec<(String, String)>,
    /// The call's timeout; 0 means none.
    pub timeout_ms: u32,
    /// The token the module got back.
    pub token: u32,
    /// The worker whose VM made the call.
    pub worker: usize,
    /// Virtual time of the call, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl RecordedCall {
    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The shape replay results use: cluster, headers, body_text, timeout_ms.
    pub fn to_json(&self) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "cluster": self.cluster,
            "headers": headers,
            "body_text": self.body_text(),
            "timeout_ms": self.timeout_ms,
        })
    }
}
