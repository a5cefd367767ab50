//! Response inspection: how to handle a response (stream, buffer, pass,
//! refuse), the span scanner streams and buffered bodies share, and the
//! verdict on a buffered body.

use super::request::RequestContext;
use super::samples::Samples;
use super::spans::{SideOf, SpanContext};
use super::Engine;
use crate::codec::{self, Fallback, Provider};
use crate::detect::redact::PseudonymKey;
use crate::finding::{Action, Finding};
use crate::holdback::{HoldbackConfig, Redaction, SpanAction, SpanDetector};
use crate::leak::PromptFingerprint;
use crate::stream::{
    rewrite_json_response_with, OpaquePolicy, OverflowPolicy, ResponseStream, StreamOptions,
};
use std::rc::Rc;

/// Scan step for texts judged whole (see [`Engine::whole_text_config`]).
const WHOLE_TEXT_STEP: usize = 16 * 1024;

/// How the adapter must handle a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMode {
    /// SSE: scan frame by frame through a [`ResponseStream`].
    Stream(Provider),
    /// JSON: buffer the whole body (up to the policy's limit), then inspect it.
    Buffer(Provider),
    /// Forward untouched; the reason goes into the audit event.
    Pass(String),
    /// The route fails closed and this response cannot be inspected.
    Refuse(String),
}

/// The response-side span detector. One per response: it carries the
/// stream's pseudonym key and its interned samples.
pub struct ResponseScanner {
    engine: Rc<Engine>,
    profile: usize,
    samples: Rc<Samples>,
    key: PseudonymKey,
    max_span: usize,
    fingerprint: Option<PromptFingerprint>,
}

impl ResponseScanner {
    fn context(&self) -> SpanContext<'_> {
        SpanContext {
            engine: &self.engine,
            profile: self.engine.profile(self.profile),
            side: SideOf::Response,
            samples: &self.samples,
            key: &self.key,
            fingerprint: self.fingerprint.as_ref(),
        }
    }
}

impl SpanDetector for ResponseScanner {
    fn max_span(&self) -> usize {
        self.max_span
    }
    fn context(&self) -> usize {
        self.engine.span_context()
    }
    fn find(&self, text: &str, out: &mut Vec<Redaction>) {
        self.context().find(text, out)
    }
    fn action(&self, tag: u32) -> SpanAction {
        let profile = self.engine.profile(self.profile);
        match self.samples.rule_of(tag).map(|r| profile.rule(r).action) {
            Some(Action::Block) => SpanAction::Block,
            Some(Action::Redact) => SpanAction::Redact,
            _ => SpanAction::Report,
        }
    }
}

/// Turns scanner tags back into findings.
#[derive(Clone)]
pub struct FindingSource {
    engine: Rc<Engine>,
    profile: usize,
    samples: Rc<Samples>,
}

impl FindingSource {
    pub fn finding(&self, tag: u32, start: usize, end: usize) -> Option<Finding> {
        let (rule_index, sample) = self.samples.get(tag)?;
        Some(
            self.engine
                .profile(self.profile)
                .rule(rule_index)
                .response_finding(start, end, sample),
        )
    }
}

/// The verdict on a buffered response body.
#[derive(Debug, Clone)]
pub struct BodyVerdict {
    /// The body to send instead, when it changed (redacted or withheld).
    pub body: Option<Vec<u8>>,
    pub findings: Vec<Finding>,
    pub blocked: bool,
}

impl Engine {
    /// Decides how to handle a response from its status and headers.
    pub fn response_mode(
        &self,
        request: &RequestContext,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> ResponseMode {
        let profile = self.profile(request.profile);
        let uninspectable = |reason: String| {
            if profile.fail_closed {
                ResponseMode::Refuse(reason)
            } else {
                ResponseMode::Pass(reason)
            }
        };
        if let Err(coding) = crate::decompress::Coding::from_header(content_encoding) {
            return uninspectable(format!("compressed response ({coding})"));
        }
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let provider = request.provider.unwrap_or(Provider::Unknown);
        let as_text = self.policy.body.scan_unknown_as_text;
        match media.as_str() {
            "text/event-stream" => ResponseMode::Stream(provider),
            "application/json" if provider == Provider::Unknown && as_text => {
                ResponseMode::Buffer(Provider::Unknown)
            }
            "application/json" => ResponseMode::Buffer(provider),
            m if as_text && (m.starts_with("text/") || m.ends_with("+json")) => {
                ResponseMode::Buffer(Provider::Unknown)
            }
            _ if request.provider.is_none() => ResponseMode::Pass("not an LLM API request".into()),
            "" => uninspectable("response without a content-type".into()),
            other => uninspectable(format!("unexpected content-type {other}")),
        }
    }

    fn scanner(
        self: &Rc<Self>,
        request: &RequestContext,
        key: PseudonymKey,
    ) -> (ResponseScanner, FindingSource) {
        let samples = Rc::new(Samples::default());
        let scanner = ResponseScanner {
            engine: Rc::clone(self),
            profile: request.profile,
            samples: Rc::clone(&samples),
            key,
            max_span: self.policy.redaction.max_span_bytes,
            fingerprint: Some(PromptFingerprint::from_system_prompt(
                &request.system_prompt,
            ))
            .filter(|fp| {
                fp.is_active()
                    && self
                        .profile(request.profile)
                        .rule_index(crate::finding::DetectorKind::PromptLeak)
                        .is_some()
            }),
        };
        let source = FindingSource {
            engine: Rc::clone(self),
            profile: request.profile,
            samples,
        };
        (scanner, source)
    }

    /// The span detector a response stream for `request` runs, and the
    /// hold-back tuning of its streams: the scanning alone, without SSE or
    /// JSON around it (`rheostat bench` measures it so).
    pub fn stream_scanner(
        self: &Rc<Self>,
        request: &RequestContext,
        key: PseudonymKey,
    ) -> (ResponseScanner, HoldbackConfig) {
        (self.scanner(request, key).0, self.holdback_config())
    }

    fn holdback_config(&self) -> HoldbackConfig {
        HoldbackConfig {
            step: self.policy.redaction.step_bytes,
        }
    }

    /// For texts judged whole (buffered bodies, prompts): nothing is held
    /// back for latency, so large steps cut the re-reading of window overlaps
    /// from ~5× to ~1.05× per byte. Local detectors give the same spans.
    pub(crate) fn whole_text_config(&self) -> HoldbackConfig {
        HoldbackConfig {
            step: WHOLE_TEXT_STEP,
        }
    }

    /// A redacting stream over an SSE response, and the way to name its findings.
    pub fn open_stream(
        self: &Rc<Self>,
        request: &RequestContext,
        provider: Provider,
        key: PseudonymKey,
    ) -> (ResponseStream<ResponseScanner>, FindingSource) {
        let (scanner, source) = self.scanner(request, key);
        let fail_closed = self.profile(request.profile).fail_closed;
        let options = StreamOptions {
            max_held_bytes: self.policy.redaction.max_held_bytes,
            holdback: self.holdback_config(),
            overflow: if fail_closed {
                OverflowPolicy::Block
            } else {
                OverflowPolicy::FlushEarly
            },
            opaque: if fail_closed {
                OpaquePolicy::Block
            } else {
                OpaquePolicy::Forward
            },
            capture_text_bytes: if self.checks_format(request) {
                self.policy.body.max_response_bytes
            } else {
                0
            },
            ..StreamOptions::default()
        };
        (ResponseStream::new(provider, scanner, options), source)
    }

    /// Inspects a complete JSON response body.
    pub fn inspect_response_body(
        self: &Rc<Self>,
        request: &RequestContext,
        provider: Provider,
        body: &[u8],
        key: PseudonymKey,
    ) -> BodyVerdict {
        let (scanner, source) = self.scanner(request, key);
        if provider == Provider::Unknown {
            return self.inspect_plain_response(request, &scanner, &source, body);
        }
        let rewrite =
            rewrite_json_response_with(provider, body, &scanner, self.whole_text_config());
        if rewrite.undecodable.iter().any(|path| path == "$") && looks_like_sse(body) {
            // An event stream labelled as JSON: read it as the stream it is,
            // or its text would pass unscanned.
            drop(scanner);
            return self.inspect_buffered_stream(request, provider, body, key);
        }
        if !rewrite.undecodable.is_empty() && self.profile(request.profile).fail_closed {
            return Self::refused(provider);
        }
        let findings: Vec<Finding> = rewrite
            .findings
            .iter()
            .filter(|(_, f)| !f.repeat)
            .filter_map(|(_, f)| source.finding(f.tag, f.start, f.end))
            .collect();
        let mut findings = findings;
        if self.checks_format(request) {
            if let Ok(view) = codec::parse_response(provider, body) {
                let texts: Vec<&str> = view
                    .segments
                    .iter()
                    .filter(|s| s.channel.kind == crate::codec::ChannelKind::Text)
                    .map(|s| s.text.as_str())
                    .collect();
                findings.extend(self.format_findings(request, texts));
            }
        }
        let blocked = findings.iter().any(|f| f.action == Action::Block);
        let body = if blocked {
            let model = request.model.as_deref().unwrap_or("");
            Some(codec::fallback_json(
                provider,
                &Fallback {
                    text: "The response was withheld by a content policy.",
                    model,
                    id: "rheostat-blocked",
                    created: 0,
                },
            ))
        } else if rewrite.changed {
            Some(rewrite.body)
        } else {
            None
        };
        BodyVerdict {
            body,
            findings,
            blocked,
        }
    }
}

/// Whether a body starts like a server-sent event stream (a field or a
/// comment line), after an optional BOM and blank lines.
fn looks_like_sse(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(body.len());
    let body = &body[start..];
    [&b"data:"[..], b"event:", b"id:", b"retry:", b":"]
        .iter()
        .any(|field| body.starts_with(field))
}

impl Engine {
    /// What a fail-closed route answers instead of a body it could not
    /// inspect: the provider's error shape (the status already went out).
    fn refused(provider: Provider) -> BodyVerdict {
        BodyVerdict {
            body: Some(codec::error_body(
                provider,
                502,
                "The response could not be inspected on a fail-closed route.",
            )),
            findings: Vec::new(),
            blocked: true,
        }
    }

    /// A complete event stream that arrived where JSON was expected: run
    /// through the same pipeline as a live stream, in one push.
    fn inspect_buffered_stream(
        self: &Rc<Self>,
        request: &RequestContext,
        provider: Provider,
        body: &[u8],
        key: PseudonymKey,
    ) -> BodyVerdict {
        let (mut stream, source) = self.open_stream(request, provider, key);
        let mut out = stream.push(body);
        out.extend(stream.finish());
        let findings: Vec<Finding> = stream
            .take_findings()
            .into_iter()
            .filter(|f| !f.repeat)
            .filter_map(|f| source.finding(f.tag, f.start, f.end))
            .collect();
        let blocked = stream.is_blocked();
        BodyVerdict {
            body: (out != body).then_some(out),
            findings,
            blocked,
        }
    }

    /// A response body of no known shape, scanned as one plain text
    /// (`body.scan_unknown_as_text`); a block replaces it with a plain notice.
    fn inspect_plain_response(
        &self,
        request: &RequestContext,
        scanner: &ResponseScanner,
        source: &FindingSource,
        body: &[u8],
    ) -> BodyVerdict {
        let Ok(text) = std::str::from_utf8(body) else {
            if self.profile(request.profile).fail_closed {
                return Self::refused(Provider::Unknown);
            }
            return BodyVerdict {
                body: None,
                findings: Vec::new(),
                blocked: false,
            };
        };
        let redacted = crate::holdback::redact_str(scanner, self.whole_text_config(), text);
        let mut findings: Vec<Finding> = redacted
            .redactions
            .iter()
            .filter_map(|r| source.finding(r.tag, r.start, r.end))
            .collect();
        if self.checks_format(request) {
            findings.extend(self.format_findings(request, [text]));
        }
        let blocked = findings.iter().any(|f| f.action == Action::Block);
        let body = if blocked {
            Some(b"The response was withheld by a content policy.".to_vec())
        } else {
            redacted.changed.then(|| redacted.text.into_bytes())
        };
        BodyVerdict {
            body,
            findings,
            blocked,
        }
    }

    /// Whether answers to this request must be JSON: the route requires it or
    /// the client asked for it (`response_format`).
    pub fn checks_format(&self, request: &RequestContext) -> bool {
        let profile = self.profile(request.profile);
        (profile.require_json || request.wants_json)
            && profile
                .rule_index(crate::finding::DetectorKind::Format)
                .is_some()
    }

    /// Checks complete answer texts against JSON validity and the route's
    /// schema. One finding per bad text; the sample is the parse error or the
    /// first violation (paths and types, never values).
    pub fn format_findings<'t>(
        &self,
        request: &RequestContext,
        texts: impl IntoIterator<Item = &'t str>,
    ) -> Vec<Finding> {
        let profile = self.profile(request.profile);
        let Some(index) = profile.rule_index(crate::finding::DetectorKind::Format) else {
            return Vec::new();
        };
        if !self.checks_format(request) {
            return Vec::new();
        }
        let rule = profile.rule(index);
        let schema = self.schemas.get(request.profile).and_then(Option::as_ref);
        let mut out = Vec::new();
        for text in texts {
            let problem = match schema {
                Some(schema) => schema.check_response(text).err().map(|p| match p {
                    crate::format::FormatProblem::Json(e) => format!("not JSON: {}", e.message),
                    crate::format::FormatProblem::Schema(v) => {
                        v.first().map_or_else(String::new, |v| {
                            format!("schema: {}: {}", v.path, v.message)
                        })
                    }
                }),
                None => crate::format::parse_response(text)
                    .err()
                    .map(|e| format!("not JSON: {}", e.message)),
            };
            if let Some(sample) = problem {
                out.push(rule.finding(0, text.len(), sample));
            }
        }
        out
    }
}
