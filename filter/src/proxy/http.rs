//! One HTTP stream: subject and timing, request inspection once the body is
//! complete, response handling (stream, buffer or pass) and one audit event
//! per finding plus one per exchange.

use super::host::{self, Metric, ProxyStore};
use super::root::Shared;
use crate::audit::{to_line, ExchangeEvent, FindingEvent, Subject};
use crate::codec::Provider;
use crate::decompress::{Coding, Decoder};
use crate::detect::redact::PseudonymKey;
use crate::engine::{FindingSource, RequestContext, RequestOutcome, ResponseMode, ResponseScanner};
use crate::finding::Finding;
use crate::stream::ResponseStream;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::rc::Rc;

/// What the response body callbacks do, decided in `on_http_response_headers`.
enum ResponseState {
    /// Nothing to inspect (or already decided): bodies pass untouched.
    Pass,
    Stream(Box<ResponseStream<ResponseScanner>>, FindingSource),
    Buffer(Provider),
    /// The body is being dropped: we already answered or ended the stream.
    Drop,
}

pub struct Exchange {
    shared: Rc<Shared>,
    context_id: u32,
    started_ms: u64,
    method: String,
    path: String,
    request_id: String,
    subject: Subject,
    status: u32,
    window_requests: u64,
    request: RequestContext,
    response: ResponseState,
    findings: Vec<Finding>,
    outcome: &'static str,
    /// Why a body went uninspected, for the audit event.
    note: Option<String>,
    /// Decodes a gzip/deflate response that arrived despite the stripped
    /// `accept-encoding`; the client then gets it uncompressed.
    decoder: Option<Decoder>,
    /// We answered locally during the request phase; Envoy passes that
    /// reply through our own response callbacks, which must leave it alone.
    local_reply: bool,
}

impl Exchange {
    pub fn new(shared: Rc<Shared>, context_id: u32) -> Self {
        Exchange {
            shared,
            context_id,
            started_ms: 0,
            method: String::new(),
            path: String::new(),
            request_id: String::new(),
            subject: Subject::default(),
            status: 0,
            window_requests: 0,
            request: RequestContext::default(),
            response: ResponseState::Pass,
            findings: Vec::new(),
            outcome: "forwarded",
            note: None,
            decoder: None,
            local_reply: false,
        }
    }

    /// A per-stream pseudonym key: stable within the exchange, different across them.
    fn pseudonym_key(&self) -> PseudonymKey {
        PseudonymKey::derive(
            &self.shared.pseudonym_secret,
            &(u64::from(self.context_id) ^ self.started_ms << 20).to_le_bytes(),
        )
    }

    fn answer_locally(&mut self, status: u32, body: &[u8], outcome: &'static str) {
        self.local_reply = true;
        self.outcome = outcome;
        let headers = vec![
            ("content-type", "application/json"),
            ("x-rheostat-outcome", outcome),
        ];
        if hostcalls::send_http_response(status, headers, Some(body)).is_err() {
            host::log(LogLevel::Warn, "rheostat: the host refused a local reply");
        }
    }

    fn record(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }

    fn take_stream_findings(&mut self) {
        if let ResponseState::Stream(stream, source) = &mut self.response {
            let found: Vec<Finding> = stream
                .take_findings()
                .into_iter()
                .filter(|f| !f.repeat)
                .filter_map(|f| source.finding(f.tag, f.start, f.end))
                .collect();
            if self.outcome == "forwarded"
                && found
                    .iter()
                    .any(|f| f.action == crate::finding::Action::Redact)
            {
                self.outcome = "redacted";
            }
            self.findings.extend(found);
        }
    }
}

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
        .ok()
        .flatten()
}

fn body(buffer: BufferType, size: usize) -> Vec<u8> {
    hostcalls::get_buffer(buffer, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Replaces the whole body seen by this callback (`start == 0` replaces and may change the length).
fn replace_body(buffer: BufferType, size: usize, with: &[u8]) {
    let _ = hostcalls::set_buffer(buffer, 0, size, with);
}

impl Context for Exchange {}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.started_ms = host::now_ms();
        self.method = request_header(":method").unwrap_or_default();
        self.path = request_header(":path").unwrap_or_default();
        self.request_id = request_header("x-request-id").unwrap_or_default();
        let policy = self.shared.engine.policy();
        let from = |header: &Option<String>| {
            header
                .as_deref()
                .and_then(request_header)
                .unwrap_or_default()
        };
        self.subject = Subject {
            tenant: from(&policy.subject.tenant_header),
            region: from(&policy.subject.region_header),
            route: policy
                .subject
                .route_header
                .as_deref()
                .and_then(request_header)
                .unwrap_or_else(|| self.path.split('?').next().unwrap_or_default().to_string()),
            model: String::new(),
        };
        self.window_requests = self
            .shared
            .requests
            .add(&ProxyStore, self.started_ms, 1)
            .unwrap_or(0);
        self.shared.requests_total.increment(1);
        if !end_of_stream {
            // The body may be rewritten, and headers cannot change once this
            // returns: drop the length now (Envoy re-frames the body).
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "content-length");
        }
        if policy.body.strip_accept_encoding {
            // Ask for an uncompressed answer: a compressed one cannot be scanned.
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "accept-encoding");
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.local_reply {
            return Action::Pause;
        }
        let limit = self.shared.engine.policy().body.max_request_bytes;
        if body_size > limit {
            let provider = Provider::from_path(&self.path).unwrap_or(Provider::Unknown);
            let body = crate::codec::error_body(
                provider,
                413,
                "The request body is larger than this gateway inspects.",
            );
            self.answer_locally(413, &body, "too_large");
            return Action::Pause;
        }
        if !end_of_stream {
            // Buffer: prompts are judged whole (an injection split across
            // chunks is still one injection).
            return Action::Pause;
        }
        let request_body = body(BufferType::HttpRequestBody, body_size);
        let verdict =
            self.shared
                .engine
                .inspect_request(&self.path, &request_body, &self.pseudonym_key());
        self.subject.model = verdict.context.model.clone().unwrap_or_default();
        self.note = verdict.uninspected.clone();
        self.request = verdict.context;
        self.record(verdict.findings);
        match verdict.outcome {
            RequestOutcome::Forward => Action::Continue,
            RequestOutcome::Rewrite(new_body) => {
                self.outcome = "redacted";
                replace_body(BufferType::HttpRequestBody, body_size, &new_body);
                Action::Continue
            }
            RequestOutcome::Block { status, body } => {
                self.answer_locally(u32::from(status), &body, "blocked");
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.status = response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if self.local_reply || end_of_stream {
            return Action::Continue;
        }
        let engine = &self.shared.engine;
        let content_type = response_header("content-type");
        let content_encoding = response_header("content-encoding");
        let mode = engine.response_mode(
            &self.request,
            content_type.as_deref(),
            content_encoding.as_deref(),
        );
        self.response = match mode {
            ResponseMode::Pass(reason) => {
                self.note = Some(reason);
                ResponseState::Pass
            }
            ResponseMode::Refuse(reason) => {
                self.note = Some(reason);
                let provider = self.request.provider.unwrap_or(Provider::Unknown);
                let body = crate::codec::error_body(
                    provider,
                    502,
                    "The response could not be inspected on a fail-closed route.",
                );
                // Headers have not gone downstream yet, so the local reply replaces them.
                self.outcome = "refused";
                let _ = hostcalls::send_http_response(
                    502,
                    vec![("content-type", "application/json")],
                    Some(&body),
                );
                return Action::Pause;
            }
            ResponseMode::Stream(provider) => {
                let (stream, source) =
                    engine.open_stream(&self.request, provider, self.pseudonym_key());
                ResponseState::Stream(Box::new(stream), source)
            }
            ResponseMode::Buffer(provider) => ResponseState::Buffer(provider),
        };
        if !matches!(self.response, ResponseState::Pass) {
            // Redaction changes the length; headers are final once this returns.
            let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, "content-length");
            if let Ok(Some(coding)) = Coding::from_header(content_encoding.as_deref()) {
                let _ =
                    hostcalls::remove_map_value(MapType::HttpResponseHeaders, "content-encoding");
                self.decoder = Some(Decoder::new(
                    coding,
                    engine.policy().body.max_response_bytes,
                ));
                self.note = Some(
                    format!("decompressed {coding:?} response", coding = coding).to_lowercase(),
                );
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match &mut self.response {
            ResponseState::Pass => Action::Continue,
            ResponseState::Drop => {
                replace_body(BufferType::HttpResponseBody, body_size, b"");
                Action::Continue
            }
            ResponseState::Stream(stream, _) => {
                let chunk = match decode(
                    &mut self.decoder,
                    body(BufferType::HttpResponseBody, body_size),
                    end_of_stream,
                ) {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        // Headers already promised an uncompressed body: end in-band.
                        let out = stream.block("The response could not be decoded for inspection.");
                        replace_body(BufferType::HttpResponseBody, body_size, &out);
                        self.note = Some(e.to_string());
                        self.outcome = "refused";
                        self.response = ResponseState::Drop;
                        return Action::Continue;
                    }
                };
                let mut out = stream.push(&chunk);
                let mut format_findings = Vec::new();
                if end_of_stream {
                    out.extend(stream.finish());
                    let texts = stream
                        .captured_text()
                        .filter(|(channel, _, _)| channel.kind == crate::codec::ChannelKind::Text)
                        .map(|(_, text, _)| text);
                    format_findings = self.shared.engine.format_findings(&self.request, texts);
                }
                let blocked = stream.is_blocked();
                replace_body(BufferType::HttpResponseBody, body_size, &out);
                self.take_stream_findings();
                self.findings.extend(format_findings);
                if blocked {
                    self.outcome = "blocked";
                }
                Action::Continue
            }
            ResponseState::Buffer(provider) => {
                let provider = *provider;
                let limit = self.shared.engine.policy().body.max_response_bytes;
                if body_size > limit {
                    self.note = Some(format!("response body over {limit} bytes"));
                    if self.shared.engine.profile(self.request.profile).fail_closed {
                        let body = crate::codec::error_body(
                            provider,
                            502,
                            "The response was too large to inspect.",
                        );
                        replace_body(BufferType::HttpResponseBody, body_size, &body);
                        self.outcome = "refused";
                        self.response = ResponseState::Drop;
                    } else {
                        // Fail open: what was buffered goes on unscanned, and so does the rest.
                        self.response = ResponseState::Pass;
                    }
                    return Action::Continue;
                }
                if !end_of_stream {
                    return Action::Pause;
                }
                let whole = match decode(
                    &mut self.decoder,
                    body(BufferType::HttpResponseBody, body_size),
                    true,
                ) {
                    Ok(whole) => whole,
                    Err(e) => {
                        let body = crate::codec::error_body(
                            provider,
                            502,
                            "The response could not be decoded for inspection.",
                        );
                        replace_body(BufferType::HttpResponseBody, body_size, &body);
                        self.note = Some(e.to_string());
                        self.outcome = "refused";
                        return Action::Continue;
                    }
                };
                let verdict = self.shared.engine.inspect_response_body(
                    &self.request,
                    provider,
                    &whole,
                    self.pseudonym_key(),
                );
                if let Some(new_body) = &verdict.body {
                    replace_body(BufferType::HttpResponseBody, body_size, new_body);
                    self.outcome = if verdict.blocked {
                        "blocked"
                    } else {
                        "redacted"
                    };
                }
                self.record(verdict.findings);
                Action::Continue
            }
        }
    }

    fn on_log(&mut self) {
        let policy = &self.shared.engine.policy().name;
        for finding in &self.findings {
            let event = FindingEvent {
                event: "finding",
                policy,
                request_id: &self.request_id,
                subject: &self.subject,
                finding,
            };
            host::log(LogLevel::Info, &to_line(&event));
            let name = format!(
                "rheostat.findings.{}.{}.{}",
                to_name(&finding.category),
                to_name(&finding.severity),
                to_name(&finding.action)
            );
            Metric::counter(&name).increment(1);
        }
        let event = ExchangeEvent {
            event: "exchange",
            policy,
            request_id: &self.request_id,
            method: &self.method,
            path: &self.path,
            subject: &self.subject,
            status: self.status,
            duration_ms: host::now_ms().saturating_sub(self.started_ms),
            level: "normal",
            outcome: self.outcome,
            note: self.note.as_deref(),
            findings: &self.findings,
            window_requests: self.window_requests,
        };
        host::log(LogLevel::Info, &to_line(&event));
    }
}

/// Runs response bytes through the decoder, if the response is compressed.
fn decode(
    decoder: &mut Option<Decoder>,
    bytes: Vec<u8>,
    end: bool,
) -> Result<Vec<u8>, crate::decompress::DecodeError> {
    let Some(decoder) = decoder else {
        return Ok(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len() * 4);
    decoder.push(&bytes, &mut out)?;
    if end {
        decoder.finish()?;
    }
    Ok(out)
}

/// The lower-case serde name of an enum value, for metric names.
fn to_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}
