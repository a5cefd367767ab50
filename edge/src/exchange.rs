//! One exchange through the guard at the edge, as a sequence of steps the
//! worker's JavaScript carries out: inspect the request, ask the Durable
//! Object for the gate's decision, go upstream (or answer locally), then
//! stream, buffer or pass the response. Each step returns a [`Step`]
//! saying what to do next, so the decisions stay here (testable natively)
//! and the worker only does I/O.
//!
//! The semantics are those of the proxy-wasm adapter (`filter/src/proxy`):
//! prompts are judged whole, `content-length` goes whenever a body may be
//! rewritten, gzip/deflate answers are decoded and sent on uncompressed,
//! streamed blocks end in-band, and a `fail_mode: closed` route refuses
//! what it cannot inspect.

use crate::wire::{Report, Ticket, WireSubject};
use rheostat_filter::codec::{self, Fallback, Provider};
use rheostat_filter::decompress::{Coding, Decoder};
use rheostat_filter::detect::redact::PseudonymKey;
use rheostat_filter::engine::{
    Engine, FindingSource, RequestContext, RequestOutcome, ResponseMode, ResponseScanner,
};
use rheostat_filter::finding::{Action, Finding};
use rheostat_filter::stream::ResponseStream;
use serde::Serialize;
use serde_json::json;
use std::rc::Rc;

/// What the worker does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum Step {
    /// Answer the client now with `status`, `headers` and `local_body()`.
    /// `mirror`: also send the request to the shadow upstream (the `shadow` rung).
    Local {
        status: u16,
        headers: Vec<(String, String)>,
        mirror: bool,
    },
    /// Ask the Durable Object for the gate's decision on `subject`, then call `gate`.
    Gate { subject: WireSubject },
    /// Send `upstream_body()` upstream with these header changes.
    Upstream {
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
    /// Response: pipe the body through `push` / `finish`.
    Stream {
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
    /// Response: read the whole body, then send `buffered(body)` with `status()`.
    Buffer {
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
    /// Response: send the body on untouched.
    Pass {
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
}

/// The request headers the subject comes from, as the worker read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectHeaders {
    pub tenant: String,
    pub region: String,
    pub route: String,
}

/// What the response body handling is.
enum Body {
    /// Not decided yet, or nothing to inspect.
    Pass,
    Stream(Box<ResponseStream<ResponseScanner>>, FindingSource),
    Buffer(Provider),
}

/// One request and its response.
pub struct Exchange {
    engine: Rc<Engine>,
    key: PseudonymKey,
    started_ms: u64,
    method: String,
    path: String,
    subject: WireSubject,
    request: RequestContext,
    findings: Vec<Finding>,
    ticket: Option<Ticket>,
    events: Vec<serde_json::Value>,
    upstream_body: Vec<u8>,
    local_body: Vec<u8>,
    status: u16,
    outcome: &'static str,
    note: Option<String>,
    body: Body,
    decoder: Option<Decoder>,
    /// Response headers every answer after the gate carries.
    response_headers: Vec<(String, String)>,
    upstream: bool,
    contained: bool,
    timed_out: bool,
}

/// `retry-after` on maintenance answers, as the filter sends it.
const MAINTENANCE_RETRY_AFTER_SECS: u64 = 300;

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

impl Exchange {
    /// `key` is the stream's pseudonym key (stable within the exchange only).
    pub fn new(
        engine: Rc<Engine>,
        key: PseudonymKey,
        method: &str,
        path: &str,
        headers: SubjectHeaders,
        now_ms: u64,
    ) -> Exchange {
        let bare = path.split(['?', '#']).next().unwrap_or_default();
        // As the filter names it: the policy's route, else the route
        // header, else the path.
        let route = engine
            .policy()
            .route_for(bare)
            .map(|r| r.name.clone())
            .or_else(|| Some(headers.route).filter(|r| !r.is_empty()))
            .unwrap_or_else(|| bare.to_string());
        Exchange {
            engine,
            key,
            started_ms: now_ms,
            method: method.to_string(),
            path: path.to_string(),
            subject: WireSubject {
                tenant: headers.tenant,
                region: headers.region,
                route,
                ..WireSubject::default()
            },
            request: RequestContext::default(),
            findings: Vec::new(),
            ticket: None,
            events: Vec::new(),
            upstream_body: Vec::new(),
            local_body: Vec::new(),
            status: 0,
            outcome: "forwarded",
            note: None,
            body: Body::Pass,
            decoder: None,
            response_headers: Vec::new(),
            upstream: false,
            contained: false,
            timed_out: false,
        }
    }

    fn provider(&self) -> Provider {
        self.request
            .provider
            .or_else(|| Provider::from_path(&self.path))
            .unwrap_or(Provider::Unknown)
    }

    fn fail_closed(&self) -> bool {
        self.engine.profile(self.request.profile).fail_closed
    }

    /// A local answer in the provider's error shape.
    fn local_error(&mut self, status: u16, message: &str, outcome: &'static str) -> Step {
        self.local_body = codec::error_body(self.provider(), status, message);
        self.local(status, "application/json", outcome, Vec::new())
    }

    fn local(
        &mut self,
        status: u16,
        content_type: &str,
        outcome: &'static str,
        extra: Vec<(String, String)>,
    ) -> Step {
        self.status = status;
        self.outcome = outcome;
        let level = self.ticket.as_ref().map_or("normal", |t| t.level.as_str());
        let mut headers = vec![
            header("content-type", content_type),
            header("x-rheostat-outcome", outcome),
            header("x-rheostat-level", level),
        ];
        headers.extend(extra);
        headers.extend(self.response_headers.iter().cloned());
        Step::Local {
            status,
            headers,
            mirror: false,
        }
    }

    /// The request declared a body over `body.max_request_bytes`: refused
    /// before it is read.
    pub fn too_large(&mut self) -> Step {
        self.local_error(
            413,
            "The request body is larger than this gateway inspects.",
            "too_large",
        )
    }

    /// Inspects the complete request body.
    pub fn request(&mut self, body: Vec<u8>) -> Step {
        if body.len() > self.engine.policy().body.max_request_bytes {
            return self.too_large();
        }
        let verdict = self.engine.inspect_request(&self.path, &body, &self.key);
        self.subject.model = verdict.context.model.clone().unwrap_or_default();
        self.subject.tools = verdict.context.tools.clone();
        self.note = verdict.note.clone();
        self.request = verdict.context;
        self.findings.extend(verdict.findings);
        match verdict.outcome {
            RequestOutcome::Forward => self.upstream_body = body,
            RequestOutcome::Rewrite(rewritten) => {
                self.outcome = "redacted";
                self.upstream_body = rewritten;
            }
            RequestOutcome::Block { status, body } => {
                // Blocked before the gate: the ledger only counts exchanges
                // that reached the upstream or that the ladder contained.
                self.local_body = body;
                return self.local(status, "application/json", "blocked", Vec::new());
            }
        }
        Step::Gate {
            subject: self.subject.clone(),
        }
    }

    /// Acts on the gate's decision (see [`Ticket::unreachable`] when the
    /// Durable Object could not be asked).
    pub fn gate(&mut self, ticket: Ticket) -> Step {
        self.events.extend(ticket.events.iter().cloned());
        if !ticket.response_id.is_empty() {
            self.response_headers
                .push(header("x-rheostat-response-id", ticket.response_id.clone()));
        }
        let action = ticket.action.clone();
        let retry_after = ticket.retry_after_secs;
        let store_failed = ticket.store_failed;
        self.ticket = Some(ticket);
        let engine = Rc::clone(&self.engine);
        let controls = &engine.policy().controls;
        if store_failed && self.fail_closed() {
            self.note = Some("shared state unavailable".into());
            return self.local_error(503, "The gateway's shared state is unavailable.", "refused");
        }
        match action.as_str() {
            "maintenance" => {
                self.contained = true;
                self.local_body =
                    codec::error_body(self.provider(), 503, &controls.texts.maintenance);
                self.local(
                    503,
                    "application/json",
                    "maintenance",
                    vec![header(
                        "retry-after",
                        MAINTENANCE_RETRY_AFTER_SECS.to_string(),
                    )],
                )
            }
            "rate_limited" => {
                self.contained = true;
                let text = controls
                    .texts
                    .rate_limited
                    .replace("{retry_after}", &retry_after.to_string());
                self.local_body = codec::error_body(self.provider(), 429, &text);
                self.local(
                    429,
                    "application/json",
                    "rate_limited",
                    vec![header("retry-after", retry_after.to_string())],
                )
            }
            "fallback" | "shadow" => {
                self.contained = true;
                let model = self.request.model.clone().unwrap_or_default();
                let id = format!(
                    "rheostat-{}",
                    self.ticket.as_ref().map_or("", |t| t.response_id.as_str())
                );
                let fallback = Fallback {
                    text: &controls.texts.fallback,
                    model: &model,
                    id: &id,
                    created: self.started_ms / 1000,
                };
                let provider = self.provider();
                let (body, content_type) = if self.request.stream {
                    (
                        codec::fallback_sse(provider, &fallback),
                        "text/event-stream",
                    )
                } else {
                    (
                        codec::fallback_json(provider, &fallback),
                        "application/json",
                    )
                };
                self.local_body = body;
                let shadow = action == "shadow";
                let mut step = self.local(
                    200,
                    content_type,
                    if shadow { "shadow" } else { "fallback" },
                    Vec::new(),
                );
                if let Step::Local { mirror, .. } = &mut step {
                    *mirror = shadow;
                }
                step
            }
            "degrade" => {
                let d = &controls.degrade;
                let mut set = Vec::new();
                if let Some(model) = &d.model {
                    if let Some(body) = codec::replace_model(&self.upstream_body, model) {
                        self.upstream_body = body;
                    }
                }
                if let Some(name) = &d.header {
                    set.push(header(name, "1"));
                }
                let scope = self
                    .ticket
                    .as_ref()
                    .map_or("global".into(), |t| t.scope.clone());
                self.response_headers
                    .push(header("x-rheostat-degraded", scope));
                if d.notice {
                    self.response_headers.push(header(
                        "x-rheostat-notice",
                        controls.texts.degraded_notice.clone(),
                    ));
                }
                self.upstream_step(set)
            }
            _ => self.upstream_step(Vec::new()),
        }
    }

    fn upstream_step(&mut self, set: Vec<(String, String)>) -> Step {
        // The body may have been rewritten: let fetch frame it.
        let mut remove = vec!["content-length".to_string()];
        if let Some(name) = &self.engine.policy().controls.degrade.header {
            // Only the guard says a request is degraded: a client's own
            // header would pick the fallback route by itself. (Removals
            // apply before `set`, which may put it back.)
            remove.push(name.clone());
        }
        if self.engine.policy().body.strip_accept_encoding {
            // Ask for an uncompressed answer: a compressed one cannot be scanned.
            remove.push("accept-encoding".into());
        }
        Step::Upstream { set, remove }
    }

    /// The upstream could not be reached (or reset before answering).
    pub fn upstream_failed(&mut self, reason: &str) -> Step {
        self.upstream = true;
        self.timed_out = true;
        self.note = Some(format!("upstream failed: {reason}"));
        self.local_error(
            502,
            "The model provider could not be reached.",
            "upstream_error",
        )
    }

    /// Decides how to handle the response from its status and headers.
    /// `content_encoding` is the coding of the bytes the worker will push,
    /// which is none when the runtime already decoded them.
    pub fn response(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> Step {
        self.upstream = true;
        self.status = status;
        let set = self.response_headers.clone();
        let mode = self
            .engine
            .response_mode(&self.request, content_type, content_encoding);
        self.body = match mode {
            ResponseMode::Pass(reason) => {
                self.note = Some(reason);
                return Step::Pass {
                    set,
                    remove: Vec::new(),
                };
            }
            ResponseMode::Refuse(reason) => {
                self.note = Some(reason);
                return self.local_error(
                    502,
                    "The response could not be inspected on a fail-closed route.",
                    "refused",
                );
            }
            ResponseMode::Stream(provider) => {
                let (stream, source) = self.engine.open_stream(&self.request, provider, self.key);
                Body::Stream(Box::new(stream), source)
            }
            ResponseMode::Buffer(provider) => Body::Buffer(provider),
        };
        let mut remove = vec!["content-length".to_string()];
        if let Ok(Some(coding)) = Coding::from_header(content_encoding) {
            remove.push("content-encoding".into());
            self.decoder = Some(Decoder::new(
                coding,
                self.engine.policy().body.max_response_bytes,
            ));
            self.note = Some(format!("decompressed {coding:?} response").to_lowercase());
        }
        if matches!(self.body, Body::Stream(..)) {
            Step::Stream { set, remove }
        } else {
            Step::Buffer { set, remove }
        }
    }

    /// Runs bytes through the decoder, if the response is compressed.
    fn decode(&mut self, bytes: &[u8], end: bool) -> Result<Vec<u8>, String> {
        let Some(decoder) = &mut self.decoder else {
            return Ok(bytes.to_vec());
        };
        let mut out = Vec::with_capacity(bytes.len() * 4);
        decoder.push(bytes, &mut out).map_err(|e| e.to_string())?;
        if end {
            decoder.finish().map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// Feeds one chunk of a streamed response; returns what to send now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.stream_step(chunk, false)
    }

    /// Ends a streamed response; returns the rest.
    pub fn finish(&mut self) -> Vec<u8> {
        self.stream_step(&[], true)
    }

    fn stream_step(&mut self, chunk: &[u8], end: bool) -> Vec<u8> {
        if !matches!(self.body, Body::Stream(..)) {
            return Vec::new();
        }
        let decoded = self.decode(chunk, end);
        let Body::Stream(stream, source) = &mut self.body else {
            return Vec::new();
        };
        let mut out = match decoded {
            Ok(chunk) => stream.push(&chunk),
            Err(e) => {
                // Headers already promised an uncompressed body: end in-band.
                self.note = Some(e);
                self.outcome = "refused";
                return stream.block("The response could not be decoded for inspection.");
            }
        };
        let mut format = Vec::new();
        if end {
            out.extend(stream.finish());
            let texts = stream
                .captured_text()
                .filter(|(channel, _, _)| channel.kind == codec::ChannelKind::Text)
                .map(|(_, text, _)| text);
            format = self.engine.format_findings(&self.request, texts);
        }
        let found: Vec<Finding> = stream
            .take_findings()
            .into_iter()
            .filter(|f| !f.repeat)
            .filter_map(|f| source.finding(f.tag, f.start, f.end))
            .collect();
        if stream.is_blocked() {
            self.outcome = "blocked";
        } else if self.outcome == "forwarded" && found.iter().any(|f| f.action == Action::Redact) {
            self.outcome = "redacted";
        }
        self.findings.extend(found);
        self.findings.extend(format);
        out
    }

    /// Inspects a complete (buffered) response body; returns the body to
    /// send, with [`Exchange::status`] possibly changed.
    pub fn buffered(&mut self, body: &[u8]) -> Vec<u8> {
        let Body::Buffer(provider) = self.body else {
            return body.to_vec();
        };
        let limit = self.engine.policy().body.max_response_bytes;
        if body.len() > limit {
            self.note = Some(format!("response body over {limit} bytes"));
            if self.fail_closed() {
                self.status = 502;
                self.outcome = "refused";
                return codec::error_body(provider, 502, "The response was too large to inspect.");
            }
            return body.to_vec();
        }
        let whole = match self.decode(body, true) {
            Ok(whole) => whole,
            Err(e) => {
                self.note = Some(e);
                self.status = 502;
                self.outcome = "refused";
                return codec::error_body(
                    provider,
                    502,
                    "The response could not be decoded for inspection.",
                );
            }
        };
        let verdict = self
            .engine
            .inspect_response_body(&self.request, provider, &whole, self.key);
        self.findings.extend(verdict.findings);
        match verdict.body {
            Some(new_body) => {
                self.outcome = if verdict.blocked {
                    "blocked"
                } else {
                    "redacted"
                };
                new_body
            }
            None => whole,
        }
    }

    /// The stream ended abnormally (upstream reset or client gone).
    pub fn abort(&mut self, reason: &str) {
        self.note = Some(format!("stream ended early: {reason}"));
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn upstream_body(&self) -> &[u8] {
        &self.upstream_body
    }

    pub fn local_body(&self) -> &[u8] {
        &self.local_body
    }

    pub fn outcome(&self) -> &'static str {
        self.outcome
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether the Durable Object needs to hear about this exchange: only
    /// exchanges the gate saw count (a request blocked before it does not).
    pub fn reportable(&self) -> bool {
        self.ticket.is_some() && (self.upstream || self.contained)
    }

    /// How the exchange ended, for the ledger.
    pub fn report(&self, now_ms: u64) -> Report {
        Report {
            subject: self.subject.clone(),
            probes: self
                .ticket
                .as_ref()
                .map(|t| t.probes.clone())
                .unwrap_or_default(),
            upstream: self.upstream,
            contained: self.contained,
            status: u32::from(self.status),
            // As the filter counts them: a gateway timeout is a timeout, and a
            // refused answer (uninspectable on a fail-closed route) a block.
            timed_out: self.timed_out || (self.upstream && self.status == 504),
            blocked: matches!(self.outcome, "blocked" | "refused"),
            format_failed: self.findings.iter().any(|f| f.detector == "format"),
            findings: self.findings.clone(),
            latency_ms: now_ms.saturating_sub(self.started_ms),
            output_tokens: 0,
        }
    }

    /// The audit lines: gate events, one `finding` per finding, one `exchange`.
    pub fn audit_lines(&self, now_ms: u64) -> Vec<String> {
        let policy = &self.engine.policy().name;
        let s = &self.subject;
        let mut lines: Vec<String> = self.events.iter().map(|e| e.to_string()).collect();
        for finding in &self.findings {
            let mut event = json!({
                "event": "finding", "policy": policy,
                "tenant": s.tenant, "region": s.region, "route": s.route, "model": s.model,
            });
            if let (Some(obj), Ok(serde_json::Value::Object(f))) =
                (event.as_object_mut(), serde_json::to_value(finding))
            {
                obj.extend(f);
            }
            lines.push(event.to_string());
        }
        let ticket = self.ticket.as_ref();
        lines.push(
            json!({
                "event": "exchange",
                "policy": policy,
                "method": self.method,
                "path": self.path,
                "tenant": s.tenant, "region": s.region, "route": s.route, "model": s.model,
                "status": self.status,
                "duration_ms": now_ms.saturating_sub(self.started_ms),
                "level": ticket.map_or("normal", |t| t.level.as_str()),
                "outcome": self.outcome,
                "note": self.note,
                "response_id": ticket.map(|t| t.response_id.as_str()),
                "findings": self.findings,
            })
            .to_string(),
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "/v1/chat/completions";

    fn engine(policy: &str) -> Rc<Engine> {
        Rc::new(Engine::from_json(policy.as_bytes()).unwrap())
    }

    fn exchange(engine: &Rc<Engine>) -> Exchange {
        let headers = SubjectHeaders {
            tenant: "acme".into(),
            ..Default::default()
        };
        Exchange::new(
            Rc::clone(engine),
            PseudonymKey::new(7, 9),
            "POST",
            CHAT,
            headers,
            1_000,
        )
    }

    fn ticket(action: &str) -> Ticket {
        Ticket {
            level: "normal".into(),
            action: action.into(),
            response_id: "r1.test".into(),
            ..Ticket::default()
        }
    }

    fn sse(texts: &[&str]) -> String {
        let mut out = String::new();
        for t in texts {
            let frame = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
            out.push_str(&format!("data: {frame}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }

    fn streamed(engine: &Rc<Engine>, body: &str, chunk: usize) -> (String, Exchange) {
        let mut ex = exchange(engine);
        let request = br#"{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;
        assert!(matches!(ex.request(request.to_vec()), Step::Gate { .. }));
        assert!(matches!(ex.gate(ticket("pass")), Step::Upstream { .. }));
        assert!(matches!(
            ex.response(200, Some("text/event-stream"), None),
            Step::Stream { .. }
        ));
        let mut out = Vec::new();
        for piece in body.as_bytes().chunks(chunk) {
            out.extend(ex.push(piece));
        }
        out.extend(ex.finish());
        (String::from_utf8(out).unwrap(), ex)
    }

    #[test]
    fn an_email_split_across_chunks_is_redacted_the_same_as_in_one_chunk() {
        let e = engine("{}");
        let body = sse(&["Write to jane.do", "e@example.com today"]);
        let (whole, _) = streamed(&e, &body, body.len());
        let (split, ex) = streamed(&e, &body, 7);
        assert_eq!(whole, split);
        assert!(
            !whole.contains("jane.doe@example.com") && whole.contains("[EMAIL]"),
            "{whole}"
        );
        assert_eq!(ex.outcome(), "redacted");
        assert_eq!(ex.findings()[0].detector, "email");
    }

    #[test]
    fn a_canary_in_a_stream_ends_it_in_band_and_counts_as_blocked() {
        let e = engine(r#"{"canaries": ["rheo-canary-7f3a9c2e"]}"#);
        let (out, ex) = streamed(&e, &sse(&["the token is rheo-canary-", "7f3a9c2e ok"]), 16);
        assert!(
            out.contains(r#""finish_reason":"content_filter""#)
                && out.ends_with("data: [DONE]\n\n"),
            "{out}"
        );
        assert!(!out.contains("7f3a9c2e"));
        assert!(ex.report(2_000).blocked);
    }

    #[test]
    fn gate_actions_become_local_answers_in_the_provider_shape() {
        let e = engine("{}");
        let request = br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
        let mut ex = exchange(&e);
        ex.request(request.to_vec());
        let Step::Local {
            status, headers, ..
        } = ex.gate(ticket("maintenance"))
        else {
            panic!()
        };
        assert_eq!(status, 503);
        assert!(headers.contains(&header("x-rheostat-response-id", "r1.test")));
        assert!(String::from_utf8_lossy(ex.local_body()).contains("paused for maintenance"));
        assert!(ex.report(1_000).contained);

        let mut ex = exchange(&e);
        ex.request(request.to_vec());
        let mut limited = ticket("rate_limited");
        limited.retry_after_secs = 4;
        let Step::Local {
            status, headers, ..
        } = ex.gate(limited)
        else {
            panic!()
        };
        assert_eq!(status, 429);
        assert!(headers.contains(&header("retry-after", "4")));

        let mut ex = exchange(&e);
        ex.request(request.to_vec());
        let Step::Local { status, .. } = ex.gate(ticket("fallback")) else {
            panic!()
        };
        let body: serde_json::Value = serde_json::from_slice(ex.local_body()).unwrap();
        assert_eq!(status, 200);
        assert!(body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("temporarily unavailable"));
    }

    #[test]
    fn degrade_rewrites_the_model_and_marks_request_and_response() {
        let e = engine(
            r#"{"controls": {"degrade": {"model": "gpt-4o-mini", "header": "x-degraded"}}}"#,
        );
        let mut ex = exchange(&e);
        ex.request(
            br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(),
        );
        let mut degrade = ticket("degrade");
        degrade.scope = "tenant=acme".into();
        let Step::Upstream { set, remove } = ex.gate(degrade) else {
            panic!()
        };
        assert_eq!(set, vec![header("x-degraded", "1")]);
        assert!(remove.contains(&"content-length".to_string()));
        assert!(
            remove.contains(&"x-degraded".to_string()),
            "a client's own header is dropped"
        );
        assert!(String::from_utf8_lossy(ex.upstream_body()).contains(r#""model": "gpt-4o-mini""#));
        let Step::Buffer { set, .. } = ex.response(200, Some("application/json"), None) else {
            panic!()
        };
        assert!(set.contains(&header("x-rheostat-degraded", "tenant=acme")));
    }

    #[test]
    fn an_unreachable_gate_refuses_on_a_fail_closed_route_and_passes_elsewhere() {
        let e = engine(
            r#"{"routes": [{"name": "health", "path_prefix": "/health/", "fail_mode": "closed"}]}"#,
        );
        let request = br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#;
        let mut open = exchange(&e);
        open.request(request.to_vec());
        assert!(matches!(
            open.gate(Ticket::unreachable()),
            Step::Upstream { .. }
        ));
        let mut closed = Exchange::new(
            Rc::clone(&e),
            PseudonymKey::new(1, 1),
            "POST",
            "/health/chat/completions",
            SubjectHeaders::default(),
            0,
        );
        closed.request(request.to_vec());
        assert_eq!(closed.subject.route, "health");
        assert!(matches!(
            closed.gate(Ticket::unreachable()),
            Step::Local { status: 503, .. }
        ));
    }

    #[test]
    fn a_blocked_prompt_is_answered_locally_and_never_reported() {
        let e = engine(r#"{"blocked_terms": {"x": ["Globex"]}}"#);
        let mut ex = exchange(&e);
        let step = ex.request(
            br#"{"model": "m", "messages": [{"role": "user", "content": "tell me about Globex"}]}"#
                .to_vec(),
        );
        assert!(matches!(step, Step::Local { status: 403, .. }), "{step:?}");
        assert!(!ex.reportable());
        assert!(ex
            .audit_lines(1_000)
            .last()
            .unwrap()
            .contains(r#""outcome":"blocked""#));
    }
}
