//! Grounding: configured facts the model must not contradict.
//!
//! A fact is a name, a `regex-lite` pattern with exactly one capture group
//! (the value), and the expected value(s):
//!
//! ```text
//! name: "refund window", pattern: "(?i)refunds? (?:within|for) (\d+) days", expected: ["30"]
//! ```
//!
//! A match whose captured value differs from every expected value (compared
//! after [`normalize_value`]: case, whitespace, thousands separators, and
//! numerically when both parse as numbers) is a contradiction.
//!
//! # Prefilter
//! `regex-lite` has no literal optimisations and must never scan every byte.
//! Each fact's pattern must contain a required literal of at least
//! [`MIN_LITERAL_LEN`] characters (found automatically, or given as
//! `prefilter`); one Aho-Corasick pass finds those literals and the regex
//! runs only on a window of [`WINDOW`] bytes around each hit. Patterns whose
//! match can be longer than the window are cut at its edge (and anchors such
//! as `^` see the window's start): keep fact patterns short and local.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_lite::Regex;

/// Shortest usable prefilter literal.
pub const MIN_LITERAL_LEN: usize = 3;
/// Bytes searched on each side of a prefilter hit.
pub const WINDOW: usize = 256;
/// Longest fact pattern accepted.
pub const MAX_PATTERN_LEN: usize = 1024;

/// A configured fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactSpec {
    /// Name for findings.
    pub name: String,
    /// `regex-lite` pattern with one capture group around the value.
    pub pattern: String,
    /// Accepted values.
    pub expected: Vec<String>,
    /// A literal every match contains, when it cannot be found in the
    /// pattern automatically (e.g. the pattern starts with an alternation).
    pub prefilter: Option<String>,
}

/// A statement contradicting a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contradiction {
    /// Index of the fact.
    pub fact: u16,
    /// Byte span of the captured value in the text.
    pub start: usize,
    /// End of the value (exclusive).
    pub end: usize,
    /// Span of the whole match.
    pub statement: (usize, usize),
}

#[derive(Debug, Clone)]
struct Fact {
    regex: Regex,
    expected: Vec<String>,
}

/// Compiled facts.
#[derive(Debug, Clone)]
pub struct FactChecker {
    names: Vec<String>,
    facts: Vec<Fact>,
    /// Prefilter: pattern i is the literal of fact `lit_fact[i]`.
    ac: Option<AhoCorasick>,
    lit_fact: Vec<u16>,
}

impl FactChecker {
    /// Compiles facts. Errors name the fact (`facts[2] "refund window": …`).
    pub fn new(specs: &[FactSpec]) -> Result<FactChecker, String> {
        if specs.len() > u16::MAX as usize {
            return Err("too many facts".into());
        }
        let mut facts = Vec::with_capacity(specs.len());
        let mut literals = Vec::with_capacity(specs.len());
        let mut lit_fact = Vec::with_capacity(specs.len());
        for (i, s) in specs.iter().enumerate() {
            let at = || format!("facts[{i}] {:?}", s.name);
            if s.pattern.len() > MAX_PATTERN_LEN {
                return Err(format!(
                    "{}: pattern longer than {MAX_PATTERN_LEN} bytes",
                    at()
                ));
            }
            let regex =
                Regex::new(&s.pattern).map_err(|e| format!("{}: invalid pattern: {e}", at()))?;
            if regex.captures_len() != 2 {
                return Err(format!(
                    "{}: pattern must have exactly one capture group, found {}",
                    at(),
                    regex.captures_len() - 1
                ));
            }
            if s.expected.is_empty() {
                return Err(format!("{}: expected needs at least one value", at()));
            }
            let literal = match &s.prefilter {
                Some(p) if p.chars().count() >= MIN_LITERAL_LEN => p.clone(),
                Some(p) => return Err(format!("{}: prefilter {p:?} shorter than {MIN_LITERAL_LEN} characters", at())),
                None => required_literal(&s.pattern).ok_or_else(|| {
                    format!("{}: no required literal of {MIN_LITERAL_LEN}+ characters in the pattern; add a `prefilter` literal every match contains", at())
                })?,
            };
            literals.push(literal);
            lit_fact.push(i as u16);
            facts.push(Fact {
                regex,
                expected: s.expected.iter().map(|e| normalize_value(e)).collect(),
            });
        }
        let ac = if literals.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&literals)
                    .map_err(|e| format!("facts prefilter: {e}"))?,
            )
        };
        Ok(FactChecker {
            names: specs.iter().map(|s| s.name.clone()).collect(),
            facts,
            ac,
            lit_fact,
        })
    }

    /// Name of fact `i`.
    pub fn name(&self, i: u16) -> Option<&str> {
        self.names.get(i as usize).map(String::as_str)
    }

    /// Appends every contradiction in `text` to `out` (ordered by position).
    pub fn check(&self, text: &str, out: &mut Vec<Contradiction>) {
        let Some(ac) = &self.ac else { return };
        let first = out.len();
        // Windows per fact, merged when they overlap.
        let mut windows: Vec<(u16, usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(text) {
            let fact = self.lit_fact[m.pattern().as_usize()];
            let s = floor_boundary(text, m.start().saturating_sub(WINDOW));
            let e = ceil_boundary(text, (m.end() + WINDOW).min(text.len()));
            match windows.iter_mut().rev().find(|w| w.0 == fact) {
                Some(w) if s <= w.2 => w.2 = w.2.max(e),
                _ => windows.push((fact, s, e)),
            }
        }
        for (fact, s, e) in windows {
            let f = &self.facts[fact as usize];
            for caps in f.regex.captures_iter(&text[s..e]) {
                let (Some(whole), Some(val)) = (caps.get(0), caps.get(1)) else {
                    continue;
                };
                let got = normalize_value(val.as_str());
                if f.expected.iter().any(|x| values_equal(x, &got)) {
                    continue;
                }
                let c = Contradiction {
                    fact,
                    start: s + val.start(),
                    end: s + val.end(),
                    statement: (s + whole.start(), s + whole.end()),
                };
                if !out[first..].contains(&c) {
                    out.push(c);
                }
            }
        }
        out[first..].sort_by_key(|c| (c.start, c.fact));
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Normalises a value for comparison: lower-case, whitespace removed,
/// thousands separators (`,` `'` `_` `’` and thin spaces between digits)
/// removed, trailing sentence punctuation dropped.
pub fn normalize_value(v: &str) -> String {
    let chars: Vec<char> = v
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .chars()
        .collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            continue;
        }
        if matches!(c, ',' | '\'' | '_' | '\u{2019}' | '\u{2009}' | '\u{202F}')
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
        {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Equal after normalisation, or numerically equal when both are numbers
/// (`30` = `30.0`, `1000` = `1e3`).
fn values_equal(expected: &str, got: &str) -> bool {
    if expected == got {
        return true;
    }
    match (expected.parse::<f64>(), got.parse::<f64>()) {
        (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() => {
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
        }
        _ => false,
    }
}

/// The longest literal run every match of `pattern` must contain (at least
/// [`MIN_LITERAL_LEN`] characters), lower-case. Runs inside groups, classes
/// or before an optional quantifier do not count; a top-level alternation
/// means there is none.
pub fn required_literal(pattern: &str) -> Option<String> {
    let c: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut runs: Vec<String> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, runs: &mut Vec<String>| {
        if !cur.is_empty() {
            runs.push(std::mem::take(cur));
        }
    };
    while i < c.len() {
        match c[i] {
            '\\' => {
                let Some(&n) = c.get(i + 1) else { break };
                if n.is_ascii_alphanumeric() {
                    // \d \w \s \b \p{..} \x.. … : not a literal.
                    flush(&mut cur, &mut runs);
                    i += 2;
                    if matches!(n, 'p' | 'P' | 'x' | 'u') && c.get(i) == Some(&'{') {
                        while i < c.len() && c[i] != '}' {
                            i += 1;
                        }
                        i += 1;
                    }
                    continue;
                }
                cur.push(n);
                i += 2;
            }
            '(' => {
                flush(&mut cur, &mut runs);
                let mut depth = 0;
                while i < c.len() {
                    match c[i] {
                        '\\' => i += 1,
                        '[' => {
                            i += 1;
                            while i < c.len() && c[i] != ']' {
                                if c[i] == '\\' {
                                    i += 1;
                                }
                                i += 1;
                            }
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            '[' => {
                flush(&mut cur, &mut runs);
                i += 1;
                if c.get(i) == Some(&']') {
                    i += 1;
                }
                while i < c.len() && c[i] != ']' {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '|' => return None,
            '?' | '*' => {
                // The previous char was optional.
                cur.pop();
                flush(&mut cur, &mut runs);
                i += 1;
            }
            '{' => {
                let close = c[i..]
                    .iter()
                    .position(|&x| x == '}')
                    .map_or(c.len(), |p| i + p);
                let body: String = c[i + 1..close.min(c.len())].iter().collect();
                if body.starts_with('0') || body.starts_with(',') {
                    cur.pop();
                }
                flush(&mut cur, &mut runs);
                i = close + 1;
            }
            '+' => {
                flush(&mut cur, &mut runs);
                i += 1;
            }
            '.' | '^' | '$' => {
                flush(&mut cur, &mut runs);
                i += 1;
            }
            ch => {
                cur.push(ch);
                i += 1;
            }
        }
    }
    flush(&mut cur, &mut runs);
    runs.into_iter()
        .map(|r| r.trim().to_string())
        .filter(|r| r.chars().count() >= MIN_LITERAL_LEN)
        .max_by_key(|r| r.chars().count())
        .map(|r| r.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(name: &str, pattern: &str, expected: &[&str]) -> FactSpec {
        FactSpec {
            name: name.into(),
            pattern: pattern.into(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
            prefilter: None,
        }
    }

    fn check(c: &FactChecker, text: &str) -> Vec<(u16, String)> {
        let mut v = Vec::new();
        c.check(text, &mut v);
        v.into_iter()
            .map(|x| (x.fact, text[x.start..x.end].to_string()))
            .collect()
    }

    #[test]
    fn contradictions_are_found_and_agreements_are_not() {
        let c = FactChecker::new(&[
            fact(
                "refund window",
                r"(?i)refunds? (?:are accepted )?within (\d+) days",
                &["30"],
            ),
            fact(
                "support email",
                r"(?i)contact us at ([\w.]+@[\w.]+\w)",
                &["help@acme.com"],
            ),
            fact(
                "headquarters",
                r"(?i)headquartered in ([A-Z][a-z]+(?: [A-Z][a-z]+)?)",
                &["Denver"],
            ),
        ])
        .unwrap();
        assert_eq!(
            check(&c, "Refunds are accepted within 60 days of purchase."),
            vec![(0, "60".into())]
        );
        assert!(check(&c, "Refunds within 30 days. Contact us at Help@Acme.com.").is_empty());
        assert_eq!(
            check(&c, "Acme is headquartered in Boulder Colorado."),
            vec![(2, "Boulder Colorado".into())]
        );
        assert_eq!(
            check(&c, "Contact us at sales@acme.com"),
            vec![(1, "sales@acme.com".into())]
        );
    }

    #[test]
    fn values_compare_after_normalisation() {
        let c = FactChecker::new(&[fact("price", r"(?i)costs \$([\d,.]+)", &["1200"])]).unwrap();
        assert!(check(&c, "The plan costs $1,200.").is_empty());
        assert!(check(&c, "The plan costs $1200.00 per year").is_empty());
        assert_eq!(check(&c, "The plan costs $1,250.")[0].1, "1,250.");
        assert_eq!(normalize_value(" 1 000 "), "1000");
        assert_eq!(normalize_value("Hello  World."), "helloworld");
        assert_eq!(normalize_value("1'234'567"), "1234567");
    }

    #[test]
    fn several_expected_values() {
        let c = FactChecker::new(&[fact(
            "ceo",
            r"CEO is ([A-Z][a-z]+ [A-Z][a-z]+)",
            &["Ada Lovelace", "A. Lovelace"],
        )])
        .unwrap();
        assert!(check(&c, "Our CEO is Ada Lovelace.").is_empty());
        assert_eq!(check(&c, "Our CEO is Grace Hopper.").len(), 1);
    }

    #[test]
    fn required_literals_are_extracted() {
        assert_eq!(
            required_literal(r"(?i)refunds? within (\d+) days").as_deref(),
            Some("within")
        );
        assert_eq!(
            required_literal(r"contact us at ([\w.]+@[\w.]+)").as_deref(),
            Some("contact us at")
        );
        assert_eq!(
            required_literal(r"costs \$([\d,.]+)").as_deref(),
            Some("costs $")
        );
        assert_eq!(required_literal(r"(a|b) or (c)"), None);
        assert_eq!(required_literal(r"x|yyyy"), None);
        assert_eq!(
            required_literal(r"colou?r is (\w+)").as_deref(),
            Some("r is")
        );
        assert_eq!(required_literal(r"\d+ (\w+)"), None);
    }

    #[test]
    fn configuration_errors_name_the_fact() {
        let e = FactChecker::new(&[fact("x", r"no group", &["1"])]).unwrap_err();
        assert!(
            e.contains("facts[0] \"x\"") && e.contains("one capture group"),
            "{e}"
        );
        let e = FactChecker::new(&[fact("y", r"(a)(b)", &["1"])]).unwrap_err();
        assert!(e.contains("found 2"), "{e}");
        let e = FactChecker::new(&[fact("z", r"(\d+)", &["1"])]).unwrap_err();
        assert!(e.contains("prefilter"), "{e}");
        let e = FactChecker::new(&[fact("w", r"(unclosed", &["1"])]).unwrap_err();
        assert!(e.contains("invalid pattern"), "{e}");
        let mut s = fact("v", r"(\d+) days", &["1"]);
        s.prefilter = Some("days".into());
        assert!(FactChecker::new(&[s]).is_ok());
    }

    #[test]
    fn regex_runs_only_near_the_literal() {
        let c =
            FactChecker::new(&[fact("refund", r"refund window is (\d+) days", &["30"])]).unwrap();
        let text = format!(
            "{}refund window is 14 days{}",
            "x".repeat(100_000),
            "é".repeat(50_000)
        );
        assert_eq!(check(&c, &text), vec![(0, "14".into())]);
    }

    #[test]
    fn windows_cut_inside_multibyte_text_stay_on_char_boundaries() {
        let c = FactChecker::new(&[fact("f", r"value is (\w+)", &["ok"])]).unwrap();
        let text = format!("{}value is bad{}", "ü".repeat(300), "ß".repeat(300));
        assert_eq!(check(&c, &text), vec![(0, "bad".into())]);
    }
}
