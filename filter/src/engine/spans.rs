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
use crate::literals::Family;

/// Which side a text is on: a few detectors only make sense on one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideOf {
    Request,
    Response,
}

pub struct SpanContext<'a> {
    pub engine: &'a Engine,
    pub profile: &'a Profile,
    pub side: SideOf,
    pub samples: &'a Samples,
    pub key: &'a PseudonymKey,
}

impl SpanContext<'_> {
    fn request(&self) -> bool {
        self.side == SideOf::Request
    }

    /// Appends redactions (and report-only spans) for every enabled span
    /// detector to `out`. Offsets are into `text`.
    pub fn find(&self, text: &str, out: &mut Vec<Redaction>) {
        let set = if self.request() { self.profile.structured_request } else { self.profile.structured_response };
        let mut matches: Vec<Match> = Vec::new();
        scan_structured(text, &set, &mut matches);
        self.engine.custom.scan(text, &mut matches);
        for m in &matches {
            let Some((index, rule)) = self.profile.rule_on(m.detector, self.request()) else { continue };
            let Some(raw) = text.get(m.start..m.end) else { continue };
            let replacement_text = match m.detector {
                DetectorKind::Custom(i) => {
                    let name = self.engine.policy.custom_patterns.get(i as usize).map_or("CUSTOM", |p| p.name.as_str());
                    replacement_with_label(&name.to_ascii_uppercase(), m.detector, raw, rule.style, self.key)
                }
                kind => replacement(kind, raw, rule.style, self.key),
            };
            let tag = self.samples.tag(index, mask(m.detector, raw));
            out.push(Redaction { start: m.start, end: m.end, replacement: replacement_text, tag });
        }
        self.find_literals(text, out);
    }

    /// Blocked terms and canaries, matched on normalised text and mapped
    /// back to the original span.
    fn find_literals(&self, text: &str, out: &mut Vec<Redaction>) {
        if self.engine.literals.pattern_count() == 0 {
            return;
        }
        // Canaries are worth a second look inside encoded blobs: echoing a
        // secret in base64 is the oldest exfiltration trick.
        let decode = !self.request() && !self.engine.policy.canaries.is_empty();
        let scan = self.engine.literals.scan_text(text, decode);
        for source in scan.sources() {
            for hit in source.hits {
                let (kind, label) = match hit.family {
                    Family::Blocked(list) => (DetectorKind::BlockedTerm(list), "[BLOCKED]"),
                    Family::Canary => (DetectorKind::Canary(hit.item as u16), "[CANARY]"),
                    _ => continue,
                };
                let Some((index, _)) = self.profile.rule_on(kind, self.request()) else { continue };
                let (start, end) = source.original_span(hit.start, hit.end);
                let sample = match kind {
                    DetectorKind::Canary(i) => format!("canary#{i}"),
                    _ => source.normalized.text.get(hit.start..hit.end).map_or_else(String::new, first_letter_masked),
                };
                let tag = self.samples.tag(index, sample);
                out.push(Redaction { start, end, replacement: label.to_string(), tag });
            }
        }
    }
}

/// `competitor` → `c*********`: enough for an operator to recognise the
/// list entry, not enough to repeat a slur in a log line.
fn first_letter_masked(term: &str) -> String {
    let mut chars = term.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|c| if c == ' ' { ' ' } else { '*' })).collect(),
        None => String::new(),
    }
}
