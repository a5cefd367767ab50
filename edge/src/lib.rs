//! # Rheostat at the edge
//!
//! The same engine as the proxy-wasm filter, built for
//! `wasm32-unknown-unknown` and exported to JavaScript with wasm-bindgen,
//! for Cloudflare-style workers (workerd). Two objects cross the boundary:
//!
//! - [`Guard`] — the compiled policy, one per worker isolate. It opens an
//!   [`Exchange`](JsExchange) per request, which walks the request through
//!   inspection, the gate's decision, upstream and the response (streamed
//!   through `push(bytes) -> bytes` / `finish() -> bytes`, with the same
//!   chunk invariants as the filter: the output does not depend on how the
//!   upstream chunked its bytes).
//! - [`Ledger`](JsLedger) — the containment ladder's shared state, living
//!   in one Durable Object, which serialises every decision and every
//!   recorded outcome: counters, breakers and operator overrides are exact
//!   however many isolates serve traffic.
//!
//! Everything that decides lives in plain Rust modules ([`exchange`],
//! [`ledger`], [`store`], [`wire`]) tested natively; this file only
//! converts types. Structured results cross as JSON strings: the engine
//! already carries `serde_json`, and a JSON string costs one `JSON.parse`
//! where per-field getters would cost glue code and module size.

pub mod exchange;
pub mod ledger;
pub mod store;
pub mod wire;

use exchange::{Exchange, SubjectHeaders};
use rheostat_filter::detect::redact::PseudonymKey;
use rheostat_filter::engine::Engine;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wire::{Report, Ticket, WireSubject};

/// A key from JavaScript's random bytes (`crypto.getRandomValues`); fewer
/// than 16 bytes are zero-padded.
fn key_from(seed: &[u8]) -> PseudonymKey {
    let mut bytes = [0u8; 16];
    for (dst, src) in bytes.iter_mut().zip(seed) {
        *dst = *src;
    }
    PseudonymKey::from_bytes(bytes)
}

/// Milliseconds from JavaScript (`Date.now()`); negative or NaN reads as 0.
fn ms(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| wire::error_json(&e.to_string()))
}

/// The compiled policy of one worker isolate.
#[wasm_bindgen]
pub struct Guard {
    engine: Rc<Engine>,
    secret: PseudonymKey,
    hash: String,
    streams: u64,
}

#[wasm_bindgen]
impl Guard {
    /// Compiles `policy` (JSON). An invalid policy throws one line:
    /// `invalid policy: <json.path>: <what is wrong>`. `seed`: 16 random
    /// bytes behind this isolate's pseudonyms.
    #[wasm_bindgen(constructor)]
    pub fn new(policy: &str, seed: &[u8]) -> Result<Guard, JsError> {
        let engine = Engine::from_json(policy.as_bytes())
            .map_err(|e| JsError::new(&format!("invalid policy: {e}")))?;
        Ok(Guard {
            engine: Rc::new(engine),
            secret: key_from(seed),
            hash: ledger::policy_hash(policy),
            streams: 0,
        })
    }

    /// One line describing the policy, for logs.
    pub fn summary(&self) -> String {
        self.engine.summary()
    }

    /// The hash of the policy text this guard was built from.
    #[wasm_bindgen(getter, js_name = policyHash)]
    pub fn policy_hash(&self) -> String {
        self.hash.clone()
    }

    /// The request headers the worker must read, as JSON:
    /// `{"tenant", "region", "route", "feedback_client"}`, each a lower-case
    /// header name or null.
    #[wasm_bindgen(js_name = subjectHeaders)]
    pub fn subject_headers(&self) -> String {
        let p = self.engine.policy();
        serde_json::json!({
            "tenant": p.subject.tenant_header,
            "region": p.subject.region_header,
            "route": p.subject.route_header,
            "feedback_client": p.controls.feedback.client_header,
        })
        .to_string()
    }

    /// The largest request body inspected; the worker refuses larger ones
    /// from `content-length` before reading them.
    #[wasm_bindgen(getter, js_name = maxRequestBytes)]
    pub fn max_request_bytes(&self) -> f64 {
        self.engine.policy().body.max_request_bytes as f64
    }

    /// Opens the exchange of one request. Header values are those of the
    /// headers [`Guard::subject_headers`] names (empty when absent).
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        tenant: &str,
        region: &str,
        route: &str,
        now: f64,
    ) -> JsExchange {
        self.streams = self.streams.wrapping_add(1);
        let key = PseudonymKey::derive(&self.secret, &self.streams.to_le_bytes());
        let headers = SubjectHeaders {
            tenant: tenant.into(),
            region: region.into(),
            route: route.into(),
        };
        JsExchange(Exchange::new(
            Rc::clone(&self.engine),
            key,
            method,
            path,
            headers,
            ms(now),
        ))
    }
}

/// One request and its response. Every step returns JSON
/// `{"next": "local" | "gate" | "upstream" | "stream" | "buffer" | "pass", ...}`.
#[wasm_bindgen(js_name = Exchange)]
pub struct JsExchange(Exchange);

#[wasm_bindgen(js_class = Exchange)]
impl JsExchange {
    /// Inspects the complete request body.
    pub fn request(&mut self, body: Vec<u8>) -> String {
        to_json(&self.0.request(body))
    }

    /// Refuses a request whose declared length is over the policy's limit.
    #[wasm_bindgen(js_name = tooLarge)]
    pub fn too_large(&mut self) -> String {
        to_json(&self.0.too_large())
    }

    /// Acts on the Durable Object's decision (a ticket JSON); `undefined`
    /// when the object could not be reached.
    pub fn gate(&mut self, ticket: Option<String>) -> String {
        let ticket = ticket
            .and_then(|t| serde_json::from_str::<Ticket>(&t).ok())
            .unwrap_or_else(Ticket::unreachable);
        to_json(&self.0.gate(ticket))
    }

    #[wasm_bindgen(js_name = upstreamFailed)]
    pub fn upstream_failed(&mut self, reason: &str) -> String {
        to_json(&self.0.upstream_failed(reason))
    }

    /// The upstream's status and headers arrived.
    pub fn response(
        &mut self,
        status: u16,
        content_type: Option<String>,
        content_encoding: Option<String>,
    ) -> String {
        to_json(
            &self
                .0
                .response(status, content_type.as_deref(), content_encoding.as_deref()),
        )
    }

    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.0.push(chunk)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        self.0.finish()
    }

    pub fn buffered(&mut self, body: &[u8]) -> Vec<u8> {
        self.0.buffered(body)
    }

    pub fn abort(&mut self, reason: &str) {
        self.0.abort(reason)
    }

    #[wasm_bindgen(getter)]
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    #[wasm_bindgen(getter)]
    pub fn outcome(&self) -> String {
        self.0.outcome().into()
    }

    #[wasm_bindgen(js_name = upstreamBody)]
    pub fn upstream_body(&self) -> Vec<u8> {
        self.0.upstream_body().to_vec()
    }

    #[wasm_bindgen(js_name = localBody)]
    pub fn local_body(&self) -> Vec<u8> {
        self.0.local_body().to_vec()
    }

    /// Whether the Durable Object should hear how this exchange ended.
    #[wasm_bindgen(getter)]
    pub fn reportable(&self) -> bool {
        self.0.reportable()
    }

    /// The report for `Ledger.record`, as JSON.
    pub fn report(&self, now: f64) -> String {
        to_json(&self.0.report(ms(now)))
    }

    /// Audit events, one JSON object per line.
    #[wasm_bindgen(js_name = auditLines)]
    pub fn audit_lines(&self, now: f64) -> String {
        self.0.audit_lines(ms(now)).join("\n")
    }
}

/// The ladder's shared state; one per Durable Object.
#[wasm_bindgen(js_name = Ledger)]
pub struct JsLedger(ledger::Ledger);

#[wasm_bindgen(js_class = Ledger)]
impl JsLedger {
    /// An invalid policy throws `invalid policy: <json.path>: <problem>`.
    #[wasm_bindgen(constructor)]
    pub fn new(policy: &str, seed: &[u8], now: f64) -> Result<JsLedger, JsError> {
        ledger::Ledger::new(policy, key_from(seed), ms(now))
            .map(JsLedger)
            .map_err(|e| JsError::new(&e))
    }

    /// Switches policy, keeping all state; true when the text changed.
    pub fn configure(&mut self, policy: &str, now: f64) -> Result<bool, JsError> {
        self.0
            .configure(policy, ms(now))
            .map_err(|e| JsError::new(&e))
    }

    /// The gate's decision for a subject (JSON in, ticket JSON out).
    pub fn decide(&mut self, subject: &str, now: f64) -> String {
        match serde_json::from_str::<WireSubject>(subject) {
            Ok(subject) => to_json(&self.0.decide(&subject, ms(now))),
            Err(_) => to_json(&Ticket::unreachable()),
        }
    }

    /// Counts a finished exchange (report JSON); returns its events as a JSON array.
    pub fn record(&mut self, report: &str, now: f64) -> String {
        match serde_json::from_str::<Report>(report) {
            Ok(report) => to_json(&self.0.record(&report, ms(now))),
            Err(e) => {
                to_json(&[serde_json::json!({"event": "record_error", "error": e.to_string()})])
            }
        }
    }

    /// Answers a `/.rheostat/` endpoint: `{"status", "body", "events"}`.
    pub fn endpoint(
        &mut self,
        path: &str,
        method: &str,
        authorization: Option<String>,
        client: &str,
        body: &[u8],
        now: f64,
    ) -> String {
        to_json(&self.0.endpoint(
            path,
            method,
            authorization.as_deref(),
            client,
            body,
            ms(now),
        ))
    }

    /// Keys written since the last call, as `{"key": "hex"}`.
    #[wasm_bindgen(js_name = takeDirty)]
    pub fn take_dirty(&self) -> String {
        self.0.store().take_dirty()
    }

    /// Loads what `takeDirty` returned earlier; returns the keys restored.
    pub fn restore(&self, persisted: &str) -> Result<u32, JsError> {
        self.0
            .store()
            .restore(persisted)
            .map(|n| n as u32)
            .map_err(|e| JsError::new(&e))
    }

    /// How many keys the ledger holds.
    #[wasm_bindgen(getter)]
    pub fn keys(&self) -> u32 {
        self.0.store().len() as u32
    }
}
