//! Request inspection: parse the provider request, scan every prompt text
//! (PII, secrets, blocked terms, injection), and decide: forward, forward a
//! rewritten body, or block with an error in the provider's own shape.

use super::samples::Samples;
use super::spans::{SideOf, SpanContext};
use super::Engine;
use crate::codec::{self, Locator, Provider, SegmentKind};
use crate::detect::redact::PseudonymKey;
use crate::finding::{Action, DetectorKind, Finding};
use crate::holdback::{redact_str, Redaction, SpanAction, SpanDetector};
use crate::injection::Level;
use crate::literals::TextScan;

/// What the response side needs to know about the request it answers.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub provider: Option<Provider>,
    pub profile: usize,
    pub stream: bool,
    pub model: Option<String>,
    /// The request's system prompt, fingerprinted on the response side to
    /// catch a completion that echoes it.
    pub system_prompt: String,
    /// The client asked for JSON output (`response_format` json_object / json_schema).
    pub wants_json: bool,
    /// Tool names the request declares.
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestOutcome {
    /// Send the body on unchanged.
    Forward,
    /// Send this body instead (redacted prompts).
    Rewrite(Vec<u8>),
    /// Answer locally with this status and body; the upstream never sees the request.
    Block { status: u16, body: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct RequestVerdict {
    pub context: RequestContext,
    pub findings: Vec<Finding>,
    pub outcome: RequestOutcome,
    /// The highest injection score of any user-controlled text.
    pub injection_score: f32,
    /// Scored between the suspect and block thresholds: a candidate for verification.
    pub suspect: bool,
    /// For the audit event: why the body was not inspected (`"not JSON"`,
    /// …), or how it was read when that was unusual.
    pub note: Option<String>,
}

/// Adapts the span finder to the scanner interface, for one-shot redaction
/// with the same merge rules as streams.
#[derive(Clone, Copy)]
struct RequestSpans<'a> {
    context: SpanContext<'a>,
    max_span: usize,
    /// The literal pass over the prompt text being redacted, when injection
    /// scoring already made it: a window that is the whole text reuses it.
    scan: Option<&'a TextScan<'a>>,
}

impl SpanDetector for RequestSpans<'_> {
    fn max_span(&self) -> usize {
        self.max_span
    }
    fn context(&self) -> usize {
        self.context.engine.span_context()
    }
    fn find(&self, text: &str, out: &mut Vec<Redaction>) {
        match self.scan.filter(|scan| scan.original == text) {
            Some(scan) => self.context.find_with_scan(text, scan, out),
            None => self.context.find(text, out),
        }
    }
    fn action(&self, tag: u32) -> SpanAction {
        let rule = self
            .context
            .samples
            .rule_of(tag)
            .map(|r| self.context.profile.rule(r).action);
        match rule {
            Some(Action::Block) => SpanAction::Block,
            Some(Action::Redact) => SpanAction::Redact,
            _ => SpanAction::Report,
        }
    }
}

impl Engine {
    fn request_spans<'a>(
        &'a self,
        profile: &'a super::Profile,
        samples: &'a Samples,
        key: &'a PseudonymKey,
    ) -> RequestSpans<'a> {
        RequestSpans {
            context: SpanContext {
                engine: self,
                profile,
                side: SideOf::Request,
                samples,
                key,
                fingerprint: None,
            },
            // A request is judged whole, so even a PEM block fits one window.
            max_span: self
                .policy
                .redaction
                .max_span_bytes
                .max(crate::detect::secrets::PEM_MAX_SPAN),
            scan: None,
        }
    }

    /// Redacts one prompt text whole; appends its findings and says whether
    /// any of them blocks the request.
    fn redact_prompt(
        &self,
        spans: &RequestSpans<'_>,
        text: &str,
        findings: &mut Vec<Finding>,
    ) -> (crate::holdback::Redacted, bool) {
        let redacted = redact_str(spans, self.whole_text_config(), text);
        let mut blocked = false;
        for applied in &redacted.redactions {
            let Some((rule_index, sample)) = spans.context.samples.get(applied.tag) else {
                continue;
            };
            let rule = spans.context.profile.rule(rule_index);
            blocked |= rule.action == Action::Block;
            findings.push(rule.finding(applied.start, applied.end, sample));
        }
        (redacted, blocked)
    }

    /// A body of no known provider shape, scanned as one plain text
    /// (`body.scan_unknown_as_text`).
    fn inspect_plain_request(
        &self,
        profile: &super::Profile,
        text: &str,
        key: &PseudonymKey,
        mut verdict: RequestVerdict,
    ) -> RequestVerdict {
        let samples = Samples::default();
        let spans = self.request_spans(profile, &samples, key);
        let (redacted, blocked) = self.redact_prompt(&spans, text, &mut verdict.findings);
        verdict.note = Some("unknown format: scanned as plain text".into());
        verdict.outcome = if blocked {
            RequestOutcome::Block {
                status: 403,
                body: codec::error_body(
                    Provider::Unknown,
                    403,
                    "The request was blocked by a content policy.",
                ),
            }
        } else if redacted.changed {
            RequestOutcome::Rewrite(redacted.text.into_bytes())
        } else {
            RequestOutcome::Forward
        };
        verdict
    }

    /// Inspects a complete request body sent to `path`.
    pub fn inspect_request(&self, path: &str, body: &[u8], key: &PseudonymKey) -> RequestVerdict {
        let profile_index = self.profile_for(path);
        let profile = self.profile(profile_index);
        let mut verdict = RequestVerdict {
            context: RequestContext {
                profile: profile_index,
                ..RequestContext::default()
            },
            findings: Vec::new(),
            outcome: RequestOutcome::Forward,
            injection_score: 0.0,
            suspect: false,
            note: None,
        };
        if body.is_empty() {
            return verdict;
        }
        if let (Err(e), false) = (std::str::from_utf8(body), profile.fail_closed) {
            // Upstreams that replace bytes that are not UTF-8 (Go's
            // encoding/json, Python's errors="replace") read the rest, so the
            // body is judged as they read it. A rewrite sends that reading;
            // otherwise the client's bytes go on as they came.
            let read = String::from_utf8_lossy(body);
            let mut verdict = self.inspect_request(path, read.as_bytes(), key);
            let reading = format!(
                "request body is not UTF-8 (at byte {}): inspected with replacement characters",
                e.valid_up_to()
            );
            verdict.note = Some(match verdict.note.take() {
                Some(other) => format!("{reading}; {other}"),
                None => reading,
            });
            return verdict;
        }
        let parsed = codec::parse_request(path, body);
        let known = matches!(&parsed, Ok(view) if view.provider != Provider::Unknown);
        if !known && self.policy.body.scan_unknown_as_text {
            if let Ok(text) = std::str::from_utf8(body) {
                return self.inspect_plain_request(profile, text, key, verdict);
            }
        }
        let view = match parsed {
            Ok(view) => view,
            Err(e) => {
                verdict.note = Some(e.to_string());
                // The path still says which API answers: without this, a
                // client could switch off every response-side check (canary,
                // prompt leak, redaction) by sending a body we cannot parse
                // but the upstream accepts, such as one with a stray byte
                // that is not UTF-8 (upstreams that replace bad bytes take it).
                verdict.context.provider = Provider::from_path(path);
                if profile.fail_closed {
                    verdict.outcome = RequestOutcome::Block {
                        status: 400,
                        body: codec::error_body(
                            Provider::from_path(path).unwrap_or(Provider::Unknown),
                            400,
                            "The request could not be inspected and this route does not accept uninspected requests.",
                        ),
                    };
                }
                return verdict;
            }
        };
        verdict.context.provider = Some(view.provider);
        verdict.context.stream = view.stream;
        verdict.context.model = view.model.clone();
        verdict.context.system_prompt = view.system_prompt.clone();
        verdict.context.tools = view.tools.clone();
        verdict.context.wants_json = matches!(
            view.response_format.as_deref(),
            Some("json_object" | "json_schema")
        );

        let samples = Samples::default();
        let spans = self.request_spans(profile, &samples, key);
        let mut edits: Vec<(Locator, String)> = Vec::new();
        let mut blocked = false;
        for segment in &view.segments {
            // Operators write system prompts; users (and tools they control) inject.
            let user_controlled =
                matches!(segment.kind, SegmentKind::Text | SegmentKind::ToolResult)
                    && segment.role != "assistant";
            let injection_rule = profile
                .rule_on(DetectorKind::Injection, true)
                .filter(|_| user_controlled);
            // One literal pass serves injection scoring and the span finder.
            let scan = injection_rule.map(|_| self.request_literals.scan_text(&segment.text, true));
            let segment_spans = RequestSpans {
                scan: scan.as_ref(),
                ..spans
            };
            let (redacted, blocks) =
                self.redact_prompt(&segment_spans, &segment.text, &mut verdict.findings);
            blocked |= blocks;
            if redacted.changed && !blocked {
                edits.push((segment.locator, redacted.text));
            }
            if let (Some((_, rule)), Some(scan)) = (injection_rule, &scan) {
                let score = self.injection.score_scan(scan);
                verdict.injection_score = verdict.injection_score.max(score.score);
                if score.level != Level::Clean {
                    let block = score.level == Level::Block;
                    let action = if block { rule.action } else { Action::Flag };
                    blocked |= action == Action::Block;
                    verdict.suspect |= !block;
                    let (start, end) = score.signals.first().map_or((0, 0), |s| s.span_in_original);
                    let families: Vec<String> = score
                        .signals
                        .iter()
                        .take(3)
                        .map(|s| format!("{:?}", s.family).to_lowercase())
                        .collect();
                    verdict.findings.push(Finding {
                        detector: if block {
                            rule.name.clone()
                        } else {
                            format!("{}:suspect", rule.name)
                        },
                        action,
                        // A suspect prompt is an unusual pattern (P3), not a jailbreak.
                        severity: if block {
                            rule.severity
                        } else {
                            rule.severity.max(crate::finding::Severity::P3)
                        },
                        ..rule.finding(
                            start,
                            end,
                            format!("score {:.2}: {}", score.score, families.join("+")),
                        )
                    });
                }
            }
        }
        verdict.outcome = if blocked {
            RequestOutcome::Block {
                status: 403,
                body: codec::error_body(
                    view.provider,
                    403,
                    "The request was blocked by a content policy.",
                ),
            }
        } else if edits.is_empty() {
            RequestOutcome::Forward
        } else {
            RequestOutcome::Rewrite(codec::rewrite_request(body, &edits))
        };
        verdict
    }
}
