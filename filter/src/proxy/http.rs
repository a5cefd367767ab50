//! One HTTP stream: subject and timing, request inspection once the body is
//! complete, response handling (stream, buffer or pass) and one audit event
//! per finding plus one per exchange.

use super::effects::{self, Outgoing, Purpose};
use super::host::{self, Metric, ProxyStore};
use super::root::Shared;
use crate::audit::{
    loggable_request_id, to_line, ControlEvent, ExchangeEvent, FindingEvent, Subject,
};
use crate::codec::{Fallback, Provider};
use crate::controls::alerts::Alert;
use crate::controls::endpoints::{self, Endpoint};
use crate::controls::scope::Scope;
use crate::controls::{Decision, ExchangeRecord, GateAction, Phase};
use crate::decompress::{Coding, Decoder};
use crate::detect::redact::PseudonymKey;
use crate::engine::{FindingSource, RequestContext, RequestOutcome, ResponseMode, ResponseScanner};
use crate::finding::Finding;
use crate::finding::{Category, Severity};
use crate::policy::{Level, ScopeKind};
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
    /// The request is for one of our own endpoints (never forwarded).
    endpoint: Option<Endpoint>,
    scopes: Vec<Scope>,
    /// The gate's decision at request headers (and, raised, at body end).
    decision: Option<Decision>,
    /// Breakers this exchange passes as a half-open probe.
    probes: Vec<Scope>,
    response_id: String,
    /// The request was sent to the fallback model / route.
    degraded: bool,
    /// The request went to the upstream (it was not answered locally).
    upstream: bool,
    /// Read at request headers: Envoy refuses header reads once they went on.
    authorization: Option<String>,
    feedback_client: String,
    /// As the provider reported them (`usage`), for the tokens baseline.
    output_tokens: u64,
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
            endpoint: None,
            scopes: Vec::new(),
            decision: None,
            probes: Vec::new(),
            response_id: String::new(),
            degraded: false,
            upstream: false,
            authorization: None,
            feedback_client: String::new(),
            output_tokens: 0,
        }
    }

    fn level(&self) -> Level {
        self.decision.as_ref().map_or(Level::Normal, |d| d.level)
    }

    fn provider(&self) -> Provider {
        self.request
            .provider
            .or_else(|| Provider::from_path(&self.path))
            .unwrap_or(Provider::Unknown)
    }

    fn fail_closed(&self) -> bool {
        let engine = &self.shared.engine;
        engine.profile(engine.profile_for(&self.path)).fail_closed
    }

    /// A per-stream pseudonym key: stable within the exchange, different across them.
    fn pseudonym_key(&self) -> PseudonymKey {
        PseudonymKey::derive(
            &self.shared.pseudonym_secret,
            &(u64::from(self.context_id) ^ self.started_ms << 20).to_le_bytes(),
        )
    }

    fn answer_locally(&mut self, status: u32, body: &[u8], outcome: &'static str) {
        self.answer_with(status, body, outcome, "application/json", &[]);
    }

    /// A local reply: it never reaches the upstream. Every one carries the
    /// response id and the level, so a user's report can be traced.
    fn answer_with(
        &mut self,
        status: u32,
        body: &[u8],
        outcome: &'static str,
        content_type: &str,
        extra: &[(&str, &str)],
    ) {
        self.local_reply = true;
        self.outcome = outcome;
        let level = self.level().name();
        let mut headers = vec![
            ("content-type", content_type),
            ("x-rheostat-outcome", outcome),
            ("x-rheostat-level", level),
        ];
        if !self.response_id.is_empty() {
            headers.push(("x-rheostat-response-id", self.response_id.as_str()));
        }
        headers.extend_from_slice(extra);
        Metric::counter(&format!("rheostat.local_responses.{outcome}")).increment(1);
        if hostcalls::send_http_response(status, headers, Some(body)).is_err() {
            host::log(LogLevel::Warn, "rheostat: the host refused a local reply");
        }
    }

    /// Acts on the gate's decision; true when the request was answered.
    fn apply_gate(&mut self, decision: &Decision, at_body_end: bool) -> bool {
        let texts = &self.shared.engine.policy().controls.texts;
        let provider = self.provider();
        if decision.store_failed && self.fail_closed() {
            let body = crate::codec::error_body(
                provider,
                503,
                "The gateway's shared state is unavailable.",
            );
            self.answer_locally(503, &body, "refused");
            return true;
        }
        match &decision.action {
            GateAction::Pass => false,
            GateAction::Maintenance => {
                let body = crate::codec::error_body(provider, 503, &texts.maintenance.clone());
                self.answer_with(
                    503,
                    &body,
                    "maintenance",
                    "application/json",
                    &[("retry-after", "300")],
                );
                true
            }
            GateAction::RateLimited { retry_after_secs } => {
                let secs = retry_after_secs.to_string();
                let message = texts.rate_limited.replace("{retry_after}", &secs);
                let body = crate::codec::error_body(provider, 429, &message);
                self.answer_with(
                    429,
                    &body,
                    "rate_limited",
                    "application/json",
                    &[("retry-after", &secs)],
                );
                true
            }
            // The answer's shape (stream or not) is in the body.
            GateAction::Fallback | GateAction::Shadow if !at_body_end => false,
            GateAction::Fallback => {
                let text = texts.fallback.clone();
                self.answer_fallback(&text, "fallback");
                true
            }
            GateAction::Shadow => {
                let text = texts.fallback.clone();
                self.answer_fallback(&text, "shadow");
                true
            }
            GateAction::Degrade => {
                self.degraded = true;
                false
            }
        }
    }

    /// A complete answer in the provider's shape (SSE when the client asked to stream).
    fn answer_fallback(&mut self, text: &str, outcome: &'static str) {
        let provider = self.provider();
        let model = self.request.model.clone().unwrap_or_default();
        let id = format!("rheostat-{}", self.response_id);
        let fallback = Fallback {
            text,
            model: &model,
            id: &id,
            created: self.started_ms / 1000,
        };
        if self.request.stream {
            let body = crate::codec::fallback_sse(provider, &fallback);
            self.answer_with(200, &body, outcome, "text/event-stream", &[]);
        } else {
            let body = crate::codec::fallback_json(provider, &fallback);
            self.answer_with(200, &body, outcome, "application/json", &[]);
        }
    }

    /// Our own endpoints, answered here and never forwarded.
    fn serve_endpoint(&mut self, endpoint: Endpoint, body: &[u8]) {
        let policy = self.shared.engine.policy();
        let controls = &self.shared.controls;
        let now = host::now_ms();
        let token = policy.controls.token.as_deref();
        let authorization = self.authorization.clone();
        let json = |v: serde_json::Value| v.to_string().into_bytes();
        let method = self.method.clone();
        match endpoint {
            Endpoint::Control | Endpoint::Status if token.is_none() => {
                self.answer_locally(
                    404,
                    &json(serde_json::json!({"error": "not enabled"})),
                    "endpoint",
                );
            }
            Endpoint::Control | Endpoint::Status
                if !endpoints::authorized(token, authorization.as_deref()) =>
            {
                self.answer_with(
                    401,
                    &json(serde_json::json!({"error": "unauthorized"})),
                    "endpoint",
                    "application/json",
                    &[("www-authenticate", "Bearer")],
                );
            }
            Endpoint::Status if method == "GET" => {
                let status =
                    endpoints::status(controls, &ProxyStore, now, &self.shared.policy_hash);
                self.answer_locally(200, &json(status), "endpoint");
            }
            Endpoint::Control if method == "POST" => {
                let result = endpoints::parse_control(body).and_then(|request| {
                    let previous = endpoints::apply_control(&ProxyStore, &request, now)?;
                    Ok((request, previous))
                });
                match result {
                    Ok((request, previous)) => {
                        let event = ControlEvent {
                            event: "control",
                            policy: &policy.name,
                            scope: request.scope.label(),
                            level: request.level.name(),
                            previous: previous.name(),
                            ttl_secs: request.ttl_secs,
                            reason: &request.reason,
                            at_ms: now,
                        };
                        host::log(LogLevel::Warn, &to_line(&event));
                        let answer = serde_json::json!({
                            "scope": request.scope.label(),
                            "level": request.level.name(),
                            "previous": previous.name(),
                        });
                        self.answer_locally(200, &json(answer), "endpoint");
                    }
                    Err(e) => {
                        self.answer_locally(400, &json(serde_json::json!({"error": e})), "endpoint")
                    }
                }
            }
            Endpoint::Feedback if !policy.controls.feedback.enabled => {
                self.answer_locally(
                    404,
                    &json(serde_json::json!({"error": "not enabled"})),
                    "endpoint",
                );
            }
            Endpoint::Feedback if method == "POST" => {
                let (status, answer, events) =
                    controls.feedback(&ProxyStore, &self.feedback_client, body, now);
                effects::emit(policy, events, now);
                self.answer_locally(u32::from(status), &json(answer), "endpoint");
            }
            Endpoint::Unknown => {
                self.answer_locally(
                    404,
                    &json(serde_json::json!({"error": "no such endpoint"})),
                    "endpoint",
                );
            }
            _ => self.answer_with(
                405,
                &json(serde_json::json!({"error": "method not allowed"})),
                "endpoint",
                "application/json",
                &[(
                    "allow",
                    if endpoint == Endpoint::Status {
                        "GET"
                    } else {
                        "POST"
                    },
                )],
            ),
        }
    }

    /// Counts the exchange in every scope; moves breakers; raises alerts.
    fn record_in_ledger(&mut self) {
        let now = host::now_ms();
        let contained = self.local_reply
            && matches!(
                self.outcome,
                "maintenance" | "rate_limited" | "fallback" | "shadow" | "held"
            );
        let upstream = self.upstream && !self.local_reply;
        let findings = std::mem::take(&mut self.findings);
        let record = ExchangeRecord {
            upstream,
            contained,
            status: self.status,
            timed_out: upstream && (self.status == 504 || self.status == 0),
            blocked: self.outcome == "blocked" || self.outcome == "refused",
            format_failed: findings.iter().any(|f| f.detector == "format"),
            findings: &findings,
            latency_ms: now.saturating_sub(self.started_ms),
            output_tokens: self.output_tokens,
            probes: &self.probes,
        };
        let events = self
            .shared
            .controls
            .record(&ProxyStore, &self.scopes, now, &record);
        self.findings = findings;
        effects::emit(self.shared.engine.policy(), events, now);
    }

    /// A suspect prompt while shedding: a copy goes to the verification
    /// queue, the client gets the holding answer, on-call is alerted.
    fn hold_for_verification(&mut self, target: crate::policy::CallTarget, request_body: &[u8]) {
        let now = host::now_ms();
        let envelope = serde_json::json!({
            "response_id": self.response_id,
            "tenant": self.subject.tenant,
            "route": self.subject.route,
            "model": self.subject.model,
            "request": String::from_utf8_lossy(request_body),
        });
        effects::enqueue(Outgoing {
            target,
            body: envelope.to_string().into_bytes(),
            purpose: Purpose::Verification,
        });
        let controls = &self.shared.controls;
        let scope = self
            .scopes
            .iter()
            .find(|s| s.kind == ScopeKind::Route)
            .cloned()
            .unwrap_or_else(Scope::global);
        let alert = Alert {
            severity: Severity::P2,
            category: Category::Security,
            scope: scope.label(),
            reason: "suspect prompt held for verification".into(),
            count: 1,
            sample: String::new(),
            containment: "holding answer served; a copy is in the verification queue".into(),
        };
        let events: Vec<_> = controls
            .alert_for(&ProxyStore, &scope, alert, now)
            .into_iter()
            .collect();
        effects::emit(self.shared.engine.policy(), events, now);
        let text = self.shared.engine.policy().controls.texts.holding.clone();
        self.answer_fallback(&text, "held");
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
        self.request_id = request_header("x-request-id")
            .map(|id| loggable_request_id(&id, &self.shared.pseudonym_secret))
            .unwrap_or_default();
        let shared = self.shared.clone();
        let policy = shared.engine.policy();
        if let Some(endpoint) = endpoints::endpoint_of(&self.path) {
            self.endpoint = Some(endpoint);
            self.authorization = request_header("authorization");
            let feedback = &policy.controls.feedback;
            self.feedback_client = feedback
                .client_header
                .as_deref()
                .or(policy.subject.tenant_header.as_deref())
                .and_then(request_header)
                .unwrap_or_default();
            // With a body, Envoy's router opens the upstream request when
            // these headers continue (a paused header phase would also hold
            // the body back from us). The answer is ours either way; the
            // token must not travel, and the route should point elsewhere
            // (envoy/envoy.yaml routes /.rheostat/ to a sink cluster).
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "authorization");
            if end_of_stream {
                self.serve_endpoint(endpoint, b"");
            }
            // Continue: Envoy keeps delivering the body (the request never
            // reaches the upstream: we answer at its end).
            return Action::Continue;
        }
        let from = |header: &Option<String>| {
            header
                .as_deref()
                .and_then(request_header)
                .unwrap_or_default()
        };
        // A route scope is the policy's route name where one matches, so
        // scopes stay few; otherwise the route header, otherwise the path.
        let route = policy
            .route_for(&self.path)
            .map(|r| r.name.clone())
            .or_else(|| {
                policy
                    .subject
                    .route_header
                    .as_deref()
                    .and_then(request_header)
            })
            .unwrap_or_else(|| self.path.split('?').next().unwrap_or_default().to_string());
        self.subject = Subject {
            tenant: from(&policy.subject.tenant_header),
            region: from(&policy.subject.region_header),
            route,
            model: String::new(),
        };
        self.window_requests = self
            .shared
            .requests
            .add(&ProxyStore, self.started_ms, 1)
            .unwrap_or(0);
        self.shared.requests_total.increment(1);
        let controls = &shared.controls;
        self.scopes = controls.scopes_of(&ProxyStore, &self.subject);
        self.response_id = endpoints::response_id(
            &ProxyStore,
            &self.scopes,
            u64::from(self.context_id) << 32 ^ self.started_ms,
        );
        if let Some(header) = &policy.controls.degrade.header {
            // Only the filter says a request is degraded: a client's own
            // header would pick the fallback route by itself.
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, header);
        }
        if !end_of_stream {
            // The body may be rewritten, and headers cannot change once this
            // returns: drop the length now (Envoy re-frames the body).
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "content-length");
        }
        if policy.body.strip_accept_encoding {
            // Ask for an uncompressed answer: a compressed one cannot be scanned.
            let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, "accept-encoding");
        }
        let decision = controls.decide(
            &ProxyStore,
            &self.subject,
            &self.scopes,
            self.started_ms,
            Phase::Headers,
        );
        self.probes = decision.probes.clone();
        effects::emit(policy, decision.events.clone(), self.started_ms);
        self.decision = Some(decision.clone());
        if self.apply_gate(&decision, end_of_stream) {
            return Action::Pause;
        }
        if self.degraded {
            if let Some(header) = &policy.controls.degrade.header {
                // Set while the headers are still ours, so route selection sees it.
                let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, header, "1");
            }
        }
        self.upstream = end_of_stream;
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.local_reply {
            return Action::Pause;
        }
        if let Some(endpoint) = self.endpoint {
            let limit = endpoints::MAX_CONTROL_BYTES
                .max(self.shared.engine.policy().controls.feedback.max_body_bytes);
            if body_size > limit {
                self.answer_locally(413, br#"{"error":"body too large"}"#, "endpoint");
            } else if end_of_stream {
                let request_body = body(BufferType::HttpRequestBody, body_size);
                self.serve_endpoint(endpoint, &request_body);
            }
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
        let shared = self.shared.clone();
        let request_body = body(BufferType::HttpRequestBody, body_size);
        let verdict =
            shared
                .engine
                .inspect_request(&self.path, &request_body, &self.pseudonym_key());
        self.subject.model = verdict.context.model.clone().unwrap_or_default();
        self.note = verdict.note.clone();
        self.request = verdict.context;
        self.record(verdict.findings);
        let controls = &shared.controls;
        let policy = shared.engine.policy();
        // The model is known now: judge its scope, once.
        if let Some(model) =
            controls
                .registry
                .scope(&ProxyStore, ScopeKind::Model, &self.subject.model)
        {
            self.scopes.push(model.clone());
            // Feedback on this answer must reach the model's counters too.
            self.response_id = endpoints::response_id(
                &ProxyStore,
                &self.scopes,
                u64::from(self.context_id) << 32 ^ self.started_ms,
            );
            let decision = controls.decide(
                &ProxyStore,
                &self.subject,
                &[model],
                self.started_ms,
                Phase::Model,
            );
            self.probes.extend(decision.probes.iter().cloned());
            effects::emit(policy, decision.events.clone(), self.started_ms);
            if decision.level > self.level() {
                self.decision = Some(decision);
            }
        }
        endpoints::note_inventory(
            &ProxyStore,
            &controls.registry,
            &self.scopes,
            &self.request.tools,
            self.started_ms,
        );
        let mut outgoing = match verdict.outcome {
            RequestOutcome::Block { status, body } => {
                self.answer_locally(u32::from(status), &body, "blocked");
                return Action::Pause;
            }
            RequestOutcome::Forward => None,
            RequestOutcome::Rewrite(new_body) => {
                self.outcome = "redacted";
                Some(new_body)
            }
        };
        if let Some(decision) = self.decision.clone() {
            if decision.action == GateAction::Shadow {
                if let Some(target) = &policy.controls.shadow {
                    effects::enqueue(Outgoing {
                        target: target.clone(),
                        body: outgoing.clone().unwrap_or_else(|| request_body.clone()),
                        purpose: Purpose::Shadow {
                            request_id: self.response_id.clone(),
                            context: Box::new(self.request.clone()),
                        },
                    });
                }
            }
            if self.apply_gate(&decision, true) {
                return Action::Pause;
            }
        }
        if verdict.suspect && self.level() == Level::Shed {
            if let Some(target) = &policy.controls.verification {
                self.hold_for_verification(
                    target.clone(),
                    outgoing.as_deref().unwrap_or(&request_body),
                );
                return Action::Pause;
            }
        }
        if self.degraded {
            if let Some(model) = &policy.controls.degrade.model {
                let current = outgoing.as_deref().unwrap_or(&request_body);
                if let Some(rewritten) = crate::codec::replace_model(current, model) {
                    outgoing = Some(rewritten);
                }
            }
        }
        if let Some(new_body) = outgoing {
            replace_body(BufferType::HttpRequestBody, body_size, &new_body);
        }
        self.upstream = true;
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.status = response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if self.local_reply {
            return Action::Continue;
        }
        if !self.response_id.is_empty() {
            let _ = hostcalls::add_map_value(
                MapType::HttpResponseHeaders,
                "x-rheostat-response-id",
                &self.response_id,
            );
        }
        if self.degraded {
            let controls = &self.shared.engine.policy().controls;
            let scope = self
                .decision
                .as_ref()
                .map_or("global".into(), |d| d.scope.clone());
            let _ = hostcalls::add_map_value(
                MapType::HttpResponseHeaders,
                "x-rheostat-degraded",
                &scope,
            );
            if controls.degrade.notice {
                let _ = hostcalls::add_map_value(
                    MapType::HttpResponseHeaders,
                    "x-rheostat-notice",
                    &controls.texts.degraded_notice,
                );
            }
        }
        if end_of_stream {
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
                self.output_tokens = stream.output_tokens().unwrap_or(0);
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
                self.output_tokens = std::str::from_utf8(&whole)
                    .ok()
                    .and_then(crate::codec::reported_output_tokens)
                    .unwrap_or(0);
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
        if self.endpoint.is_none() {
            self.record_in_ledger();
        }
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
            level: self.level().name(),
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
