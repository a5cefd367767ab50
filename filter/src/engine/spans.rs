//! Finding spans in one text for one side: the shared core of request
//! inspection and the response scanner, so a prompt and a completion are
//! judged by the same code.

use super::rules::Profile;
use super::samples::Samples;
use super::Engine;
use crate::detect::mask::mask;
use crate::detect::redact::{replacement, replacement_with_label, PseudonymKey};
use crate::detect::scan_structured;
use crate::finding::{DetectorKind, Match};
use crate::holdback::Redaction;
use crate::leak::{LeakConfig, PromptFingerprint};
use crate::links::LinkIssueKind;
use crate::literals::{Family, TextScan};

/// Which side a text is on: a few detectors only make sense on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideOf {
    Request,
    Response,
}

#[derive(Clone, Copy)]
pub struct SpanContext<'a> {
    pub engine: &'a Engine,
    pub profile: &'a Profile,
    pub side: SideOf,
    pub samples: &'a Samples,
    pub key: &'a PseudonymKey,
    /// The request's system prompt, when it is distinctive enough to spot an echo of.
    pub fingerprint: Option<&'a PromptFingerprint>,
}

impl SpanContext<'_> {
    fn request(&self) -> bool {
        self.side == SideOf::Request
    }

    /// Appends redactions (and report-only spans) for every enabled span
    /// detector to `out`. Offsets are into `text`.
    pub fn find(&self, text: &str, out: &mut Vec<Redaction>) {
        if self.request() && !self.profile.request_literal_spans {
            // Nothing in the literal pass could mark this prompt: skip its
            // normalisation and automaton (a system prompt, earlier turns).
            self.find_structured(text, out);
            return;
        }
        // Canaries are worth a second look inside encoded blobs: echoing a
        // secret in base64 is the oldest exfiltration trick.
        let decode = !self.request() && !self.engine.policy.canaries.is_empty();
        let scan = self.engine.literals(self.side).scan_text(text, decode);
        self.find_with_scan(text, &scan, out);
    }

    /// [`SpanContext::find`] with the literal pass over `text` already done
    /// (`scan.original` is `text`). Decoded blobs in `scan` are only looked
    /// at on the response side, as `find` scans them.
    pub fn find_with_scan(&self, text: &str, scan: &TextScan<'_>, out: &mut Vec<Redaction>) {
        self.find_structured(text, out);
        self.find_literals(scan, out);
        if !self.request() {
            self.find_response_only(text, scan, out);
        }
    }

    /// Structured detectors (PII, secrets) and the policy's custom patterns.
    fn find_structured(&self, text: &str, out: &mut Vec<Redaction>) {
        let set = if self.request() {
            self.profile.structured_request
        } else {
            self.profile.structured_response
        };
        let mut matches: Vec<Match> = Vec::new();
        scan_structured(text, &set, &mut matches);
        self.engine.custom.scan(text, &mut matches);
        for m in &matches {
            let Some((index, rule)) = self.profile.rule_on(m.detector, self.request()) else {
                continue;
            };
            let Some(raw) = text.get(m.start..m.end) else {
                continue;
            };
            let replacement_text = match m.detector {
                DetectorKind::Custom(i) => {
                    let name = self
                        .engine
                        .policy
                        .custom_patterns
                        .get(i as usize)
                        .map_or("CUSTOM", |p| p.name.as_str());
                    replacement_with_label(
                        &name.to_ascii_uppercase(),
                        m.detector,
                        raw,
                        rule.style,
                        self.key,
                    )
                }
                kind => replacement(kind, raw, rule.style, self.key),
            };
            let tag = self.samples.tag(index, mask(m.detector, raw));
            out.push(Redaction {
                start: m.start,
                end: m.end,
                replacement: replacement_text,
                tag,
            });
        }
    }

    fn push(
        &self,
        kind: DetectorKind,
        start: usize,
        end: usize,
        replacement: &str,
        sample: String,
        out: &mut Vec<Redaction>,
    ) {
        if let Some((index, _)) = self.profile.rule_on(kind, self.request()) {
            let tag = self.samples.tag(index, sample);
            out.push(Redaction {
                start,
                end,
                replacement: replacement.to_string(),
                tag,
            });
        }
    }

    /// Detectors that judge what a model says: leaks of its own prompt,
    /// SQL, links, contradicted facts, refusals and sensitive topics.
    fn find_response_only(&self, text: &str, scan: &TextScan<'_>, out: &mut Vec<Redaction>) {
        let engine = self.engine;
        if let Some(fp) = self.fingerprint {
            if let Some((start, end, matched)) = fp.find_in(text, &LeakConfig::default()) {
                let sample = format!("{matched} phrases of the system prompt");
                self.push(
                    DetectorKind::PromptLeak,
                    start,
                    end,
                    "[REDACTED]",
                    sample,
                    out,
                );
            }
        }
        if self.profile.rule_index(DetectorKind::Sql).is_some() {
            let mut found = Vec::new();
            crate::sql::find_sql(text, &mut found);
            for m in found {
                let sample = format!("{:?} statement", m.kind).to_lowercase();
                self.push(DetectorKind::Sql, m.start, m.end, "[SQL]", sample, out);
            }
        }
        let checks_links = self
            .profile
            .rule_index(DetectorKind::MarkdownExfil)
            .is_some()
            || self.profile.rule_index(DetectorKind::Link).is_some();
        if checks_links && memchr::memmem::find(text.as_bytes(), b"://").is_some() {
            let mut issues = Vec::new();
            engine.links.check(text, &mut issues);
            for issue in issues {
                let (kind, sample) = match issue.kind {
                    LinkIssueKind::Exfil => (
                        DetectorKind::MarkdownExfil,
                        format!("{} ({})", issue.host, issue.reason.unwrap_or("data in URL")),
                    ),
                    LinkIssueKind::OffAllowList => (DetectorKind::Link, issue.host.clone()),
                };
                self.push(kind, issue.start, issue.end, "[link removed]", sample, out);
            }
        }
        if let Some(facts) = &engine.facts {
            let mut contradictions = Vec::new();
            facts.check(text, &mut contradictions);
            for c in contradictions {
                let name = facts.name(c.fact).unwrap_or("fact").to_string();
                self.push(
                    DetectorKind::Fact(c.fact),
                    c.start,
                    c.end,
                    "[unverified]",
                    format!("{name} contradicted"),
                    out,
                );
            }
        }
        if self.profile.rule_index(DetectorKind::Refusal).is_some() {
            let verdict = engine.refusal.score_scan(scan);
            if let (true, Some(&(start, end))) = (verdict.refused, verdict.spans.first()) {
                let sample = format!("refusal score {:.2}", verdict.score);
                self.push(DetectorKind::Refusal, start, end, "", sample, out);
            }
        }
        if !self.profile.topics.is_empty() {
            for verdict in engine.topics.classify_scan(scan) {
                if let (true, Some(&(start, end))) = (verdict.flagged, verdict.spans.first()) {
                    let sample = format!("{} score {:.2}", verdict.name, verdict.score);
                    self.push(
                        DetectorKind::Topic(verdict.topic),
                        start,
                        end,
                        "[TOPIC]",
                        sample,
                        out,
                    );
                }
            }
        }
    }

    /// Blocked terms and canaries, matched on normalised text and mapped
    /// back to the original span.
    fn find_literals(&self, scan: &TextScan<'_>, out: &mut Vec<Redaction>) {
        let sources = scan
            .sources()
            .take(if self.request() { 1 } else { usize::MAX });
        for source in sources {
            for hit in source.hits {
                let (kind, label) = match hit.family {
                    Family::Blocked(list) => (DetectorKind::BlockedTerm(list), "[BLOCKED]"),
                    Family::Canary => (DetectorKind::Canary(hit.item as u16), "[CANARY]"),
                    _ => continue,
                };
                let Some((index, _)) = self.profile.rule_on(kind, self.request()) else {
                    continue;
                };
                let (start, end) = source.original_span(hit.start, hit.end);
                let sample = match kind {
                    DetectorKind::Canary(i) => format!("canary#{i}"),
                    _ => source
                        .normalized
                        .text
                        .get(hit.start..hit.end)
                        .map_or_else(String::new, first_letter_masked),
                };
                let tag = self.samples.tag(index, sample);
                out.push(Redaction {
                    start,
                    end,
                    replacement: label.to_string(),
                    tag,
                });
            }
        }
    }
}

/// `competitor` → `c*********`: enough for an operator to recognise the
/// list entry, not enough to repeat a slur in a log line.
fn first_letter_masked(term: &str) -> String {
    let mut chars = term.chars();
    match chars.next() {
        Some(first) => std::iter::once(first)
            .chain(chars.map(|c| if c == ' ' { ' ' } else { '*' }))
            .collect(),
        None => String::new(),
    }
}
