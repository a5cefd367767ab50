//! User-defined patterns: `regex-lite` regexes, always behind a prefilter.
//!
//! `regex-lite` is a small backtrack-free PikeVM: correct, compact in wasm,
//! and one to two orders of magnitude slower than the hand-written detectors.
//! So it never scans every byte. Each pattern has a prefilter that finds
//! *where a match could be*, and the regex only runs in a bounded window
//! around each prefilter hit:
//!
//! - **prefix literals** — every match starts with one of these strings
//!   (derived from the pattern: `ACME-\d{6}` → `ACME-`,
//!   `(?:ghx|GHX)_[A-Za-z0-9]+` → `ghx_`/`GHX_`);
//! - **a required literal** — every match contains this string somewhere
//!   (derived from a literal run in the pattern's top-level sequence:
//!   `[a-z.]+@acme\.com` → `@acme.com`; or given by the operator);
//! - **a first-byte class** — every match starts with a byte of this class
//!   (derived: `\d{3}-\d{4}` → `[0-9]`; or given), accepted only when narrow
//!   enough to be rare in prose (no whitespace, at most two lower-case
//!   letters, at most 40 bytes).
//!
//! A pattern for which none of these can be derived, and for which the spec
//! gives none, is rejected with an error that says what to add. So is a
//! pattern that can match the empty string.
//!
//! Literal prefilters use `memchr::memmem` (one literal) or Aho-Corasick
//! (several, or case-insensitive when the pattern uses `(?i)`).
//!
//! # Spans and windows
//!
//! Every pattern has a `max_span` (default [`DEFAULT_MAX_SPAN`], at most
//! [`MAX_SPAN_LIMIT`]): matches longer than that are discarded, which keeps
//! the streaming hold-back bounded and makes a match independent of where a
//! scan window starts. For a hit at `h` the regex searches from
//! `lo = h − max_span` (from `lo = h` for prefix and class prefilters) up to
//! `lo + 2·max_span + len`; the text before `lo` stays visible to `\b` and
//! other look-arounds. Matches never split a UTF-8 character (`regex-lite`
//! works on `&str` and window edges are rounded to character boundaries).
//!
//! Context: look-arounds see one character either side ([`CONTEXT`]); but a
//! regex's leftmost-first choice between alternatives can depend on text up
//! to `max_span` past a match's start, so a streamer should treat a pattern's
//! right context as its `max_span` ([`CustomSet::context`]).
//!
//! Known limits: a user-given literal that some match does not contain makes
//! those matches invisible (the prefilter is trusted); overlapping matches
//! follow regex leftmost-first semantics from the left.

use super::Context;
use crate::finding::{DetectorKind, Match};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use memchr::memmem;
use regex_lite::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Span cap for a pattern that does not set `max_span`.
pub const DEFAULT_MAX_SPAN: usize = 256;

/// The largest `max_span` a pattern may ask for.
pub const MAX_SPAN_LIMIT: usize = 4096;

/// Look-arounds (`\b`, `^`, `$`) see one character either side: up to four
/// bytes of UTF-8.
pub const CONTEXT: Context = Context { left: 4, right: 4 };

/// At most this many user patterns (they are numbered with a `u16`).
pub const MAX_PATTERNS: usize = u16::MAX as usize + 1;

/// One user-defined pattern as written in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    /// Name shown in findings and errors.
    pub name: String,
    /// A `regex-lite` pattern.
    pub pattern: String,
    /// Where a match can be; derived from the pattern when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefilter: Option<PrefilterSpec>,
    /// Longest match to report, in bytes (default [`DEFAULT_MAX_SPAN`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_span: Option<usize>,
}

/// A prefilter given by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum PrefilterSpec {
    /// `"prefilter": "@acme.com"` — every match contains this literal.
    Literal(String),
    /// `"prefilter": {"any_of": ["ACME-", "acme_"], "case_insensitive": true}`
    /// — every match contains one of these literals.
    AnyOf {
        /// The literals.
        any_of: Vec<String>,
        /// Compare ASCII letters case-insensitively.
        #[serde(default)]
        case_insensitive: bool,
    },
    /// `"prefilter": {"byte_class": "0-9#"}` — every match *starts* with a
    /// byte of this class (regex bracket syntax, with or without `[ ]`).
    ByteClass {
        /// The class.
        byte_class: String,
    },
}

/// Why a custom pattern was rejected. [`fmt::Display`] renders
/// `[index].field: message`, so a caller prefixes its JSON path
/// (`detectors.custom` + `[2].pattern: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomError {
    /// Position of the spec in the list.
    pub index: usize,
    /// The spec's name.
    pub name: String,
    /// The offending field: `pattern`, `prefilter`, `max_span` or `name`.
    pub field: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for CustomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}].{}: {} (pattern {:?})",
            self.index, self.field, self.message, self.name
        )
    }
}

impl std::error::Error for CustomError {}

/// Compiled user patterns, scanned as [`DetectorKind::Custom`] with the
/// pattern's index.
#[derive(Debug, Default)]
pub struct CustomSet {
    patterns: Vec<CustomPattern>,
}

/// One compiled pattern.
#[derive(Debug)]
pub struct CustomPattern {
    index: u16,
    name: String,
    regex: Regex,
    prefilter: Prefilter,
    max_span: usize,
}

#[derive(Debug)]
enum Prefilter {
    /// Every match starts at a hit (`anchored`) or contains one.
    Literals {
        search: Literals,
        anchored: bool,
        max_len: usize,
        describe: String,
    },
    /// Every match starts with a byte of the set.
    FirstByte {
        set: Box<[bool; 256]>,
        describe: String,
    },
}

#[derive(Debug)]
enum Literals {
    One(Box<memmem::Finder<'static>>),
    Many(AhoCorasick),
}

impl Literals {
    fn next_hit(&self, b: &[u8], from: usize) -> Option<usize> {
        if from >= b.len() {
            return None;
        }
        match self {
            Literals::One(f) => f.find(&b[from..]).map(|p| p + from),
            Literals::Many(ac) => ac.find(Input::new(b).range(from..)).map(|m| m.start()),
        }
    }
}

impl Prefilter {
    fn next_hit(&self, b: &[u8], from: usize) -> Option<usize> {
        match self {
            Prefilter::Literals { search, .. } => search.next_hit(b, from),
            Prefilter::FirstByte { set, .. } => b
                .get(from..)?
                .iter()
                .position(|&c| set[usize::from(c)])
                .map(|p| p + from),
        }
    }
}

impl CustomSet {
    /// Compile every spec; the first bad one is reported.
    pub fn compile(specs: &[CustomSpec]) -> Result<CustomSet, CustomError> {
        if specs.len() > MAX_PATTERNS {
            return Err(CustomError {
                index: MAX_PATTERNS,
                name: specs[MAX_PATTERNS].name.clone(),
                field: "name",
                message: format!("at most {MAX_PATTERNS} custom patterns are supported"),
            });
        }
        let patterns = specs
            .iter()
            .enumerate()
            .map(|(i, s)| CustomPattern::compile(i, s))
            .collect::<Result<_, _>>()?;
        Ok(CustomSet { patterns })
    }

    /// Scan `text` with every pattern and append matches to `out`, pattern
    /// by pattern, each in text order.
    pub fn scan(&self, text: &str, out: &mut Vec<Match>) {
        for p in &self.patterns {
            p.scan(text, out);
        }
    }

    /// The largest `max_span` of the set (0 when empty): what the streaming
    /// scanner must hold back for these patterns.
    pub fn max_span(&self) -> usize {
        self.patterns.iter().map(|p| p.max_span).max().unwrap_or(0)
    }

    /// The context the set needs around a match for a stable result: one
    /// character (4 bytes) on the left, `max_span` on the right.
    pub fn context(&self) -> Context {
        Context {
            left: CONTEXT.left,
            right: self.max_span().max(CONTEXT.right),
        }
    }

    /// The compiled patterns, in spec order.
    pub fn patterns(&self) -> &[CustomPattern] {
        &self.patterns
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

fn one_line(s: impl fmt::Display) -> String {
    s.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl CustomPattern {
    /// Compile the spec at position `index`.
    pub fn compile(index: usize, spec: &CustomSpec) -> Result<CustomPattern, CustomError> {
        let err = |field: &'static str, message: String| CustomError {
            index,
            name: spec.name.clone(),
            field,
            message,
        };
        let idx = u16::try_from(index).map_err(|_| {
            err(
                "name",
                format!("at most {MAX_PATTERNS} custom patterns are supported"),
            )
        })?;
        if spec.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        let max_span = spec.max_span.unwrap_or(DEFAULT_MAX_SPAN);
        if max_span == 0 || max_span > MAX_SPAN_LIMIT {
            return Err(err(
                "max_span",
                format!("must be in 1..={MAX_SPAN_LIMIT} bytes"),
            ));
        }
        let regex = RegexBuilder::new(&spec.pattern)
            .build()
            .map_err(|e| err("pattern", format!("invalid regex: {}", one_line(e))))?;
        let ast = Parser::parse(&spec.pattern);
        if let Ok(a) = &ast {
            if first_bytes(a).1 {
                return Err(err(
                    "pattern",
                    "can match the empty string; require at least one character".into(),
                ));
            }
        }
        if regex.is_match("") && regex.find("").is_some_and(|m| m.is_empty()) {
            return Err(err(
                "pattern",
                "can match the empty string; require at least one character".into(),
            ));
        }
        let uses_ci = ast.as_ref().is_ok_and(has_ci);
        let prefilter = match &spec.prefilter {
            Some(p) => user_prefilter(p, uses_ci).map_err(|m| err("prefilter", m))?,
            None => {
                let a = ast.map_err(|why| {
                    err("prefilter", format!("no prefilter can be derived ({why}); set \"prefilter\" to a literal every match contains"))
                })?;
                derive_prefilter(&a).map_err(|m| err("prefilter", m))?
            }
        };
        Ok(CustomPattern {
            index: idx,
            name: spec.name.clone(),
            regex,
            prefilter,
            max_span,
        })
    }

    /// The pattern's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pattern's span cap.
    pub fn max_span(&self) -> usize {
        self.max_span
    }

    /// The detector kind its matches carry.
    pub fn kind(&self) -> DetectorKind {
        DetectorKind::Custom(self.index)
    }

    /// A one-line description of the prefilter in use, for diagnostics.
    pub fn prefilter_description(&self) -> &str {
        match &self.prefilter {
            Prefilter::Literals { describe, .. } | Prefilter::FirstByte { describe, .. } => {
                describe
            }
        }
    }

    /// Scan `text` and append this pattern's matches to `out`.
    pub fn scan(&self, text: &str, out: &mut Vec<Match>) {
        let b = text.as_bytes();
        let len = b.len();
        let (anchored, lit_len) = match &self.prefilter {
            Prefilter::Literals {
                anchored, max_len, ..
            } => (*anchored, *max_len),
            Prefilter::FirstByte { .. } => (true, 1),
        };
        let span = self.max_span;
        let mut from = 0; // where to look for the next hit
        let mut pos = 0; // no match may start before this (end of the last one)
        while let Some(hit) = self.prefilter.next_hit(b, from) {
            let lo = ceil_boundary(
                text,
                if anchored {
                    hit
                } else {
                    hit.saturating_sub(span)
                }
                .max(pos),
            );
            if anchored && lo > hit {
                from = hit + 1;
                continue;
            }
            let hi = ceil_boundary(text, len.min(lo + 2 * span + lit_len + 1));
            match self.regex.find_at(&text[..hi], lo) {
                None => {
                    // No match of at most `span` bytes starts in [lo, lo + span].
                    from = if anchored {
                        (hit + 1).max(lo + span + 1)
                    } else {
                        hit + 1
                    };
                }
                Some(m) if m.start() > hit => {
                    from = if anchored {
                        (hit + 1).max(m.start().min(lo + span + 1))
                    } else {
                        hit + 1
                    };
                }
                Some(m) => {
                    let truncated = m.end() == hi && hi < len;
                    if !m.is_empty() && !truncated && m.len() <= span {
                        out.push(Match {
                            detector: self.kind(),
                            start: m.start(),
                            end: m.end(),
                        });
                    }
                    pos = m.end().max(m.start() + 1);
                    from = (hit + 1).max(pos);
                }
            }
        }
    }
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i.min(s.len())
}

// ---------------------------------------------------------------------------
// Building prefilters.

fn literal_searcher(lits: &[Vec<u8>], ci: bool) -> Result<Literals, String> {
    if lits.len() == 1 && !ci {
        return Ok(Literals::One(Box::new(
            memmem::Finder::new(&lits[0]).into_owned(),
        )));
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(ci)
        .match_kind(MatchKind::Standard)
        .build(lits)
        .map(Literals::Many)
        .map_err(|e| format!("cannot build the literal prefilter: {e}"))
}

fn show_lits(lits: &[Vec<u8>]) -> String {
    lits.iter()
        .take(4)
        .map(|l| format!("{:?}", String::from_utf8_lossy(l)))
        .collect::<Vec<_>>()
        .join(", ")
        + if lits.len() > 4 { ", …" } else { "" }
}

fn literals_prefilter(lits: Vec<Vec<u8>>, ci: bool, anchored: bool) -> Result<Prefilter, String> {
    let max_len = lits.iter().map(Vec::len).max().unwrap_or(0);
    let describe = format!(
        "{} {}{}",
        if anchored {
            "prefix literal(s)"
        } else {
            "required literal(s)"
        },
        show_lits(&lits),
        if ci { " (ASCII case-insensitive)" } else { "" }
    );
    Ok(Prefilter::Literals {
        search: literal_searcher(&lits, ci)?,
        anchored,
        max_len,
        describe,
    })
}

fn describe_set(set: &[bool; 256]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < 256 {
        if !set[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 256 && set[j + 1] {
            j += 1;
        }
        let show = |c: usize| {
            if (0x21..0x7f).contains(&c) {
                (c as u8 as char).to_string()
            } else {
                format!("\\x{c:02X}")
            }
        };
        if j > i + 1 {
            s += &format!("{}-{}", show(i), show(j));
        } else {
            s += &show(i);
            if j == i + 1 {
                s += &show(j);
            }
        }
        i = j + 1;
    }
    format!("[{s}]")
}

/// Whether a first-byte class is rare enough in ordinary text to gate a regex.
fn class_is_selective(set: &[bool; 256]) -> Result<(), String> {
    let count = set.iter().filter(|&&x| x).count();
    let lower = (b'a'..=b'z').filter(|&c| set[usize::from(c)]).count();
    let high = (0x80..=0xFF).filter(|&c| set[c]).count();
    if count == 0 {
        return Err("the byte class is empty".into());
    }
    if [b' ', b'\t', b'\n', b'\r']
        .iter()
        .any(|&c| set[usize::from(c)])
    {
        return Err(format!(
            "the byte class {} contains whitespace, which is in every text",
            describe_set(set)
        ));
    }
    if lower > 2 || count > 40 || high > 16 {
        return Err(format!(
            "the byte class {} is too broad: it would run the regex at most bytes of prose",
            describe_set(set)
        ));
    }
    Ok(())
}

fn user_prefilter(p: &PrefilterSpec, pattern_ci: bool) -> Result<Prefilter, String> {
    match p {
        PrefilterSpec::Literal(l) => {
            if l.is_empty() {
                return Err("the literal must not be empty".into());
            }
            literals_prefilter(vec![l.as_bytes().to_vec()], pattern_ci, false)
        }
        PrefilterSpec::AnyOf {
            any_of,
            case_insensitive,
        } => {
            if any_of.is_empty() || any_of.iter().any(String::is_empty) {
                return Err("any_of must list at least one literal, none empty".into());
            }
            literals_prefilter(
                any_of.iter().map(|s| s.as_bytes().to_vec()).collect(),
                *case_insensitive || pattern_ci,
                false,
            )
        }
        PrefilterSpec::ByteClass { byte_class } => {
            let src = if byte_class.starts_with('[') {
                byte_class.clone()
            } else {
                format!("[{byte_class}]")
            };
            let mut parser = Parser {
                p: src.as_bytes(),
                i: 0,
                ci: pattern_ci,
            };
            let node = parser
                .class()
                .map_err(|why| format!("invalid byte class: {why}"))?;
            if parser.i != src.len() {
                return Err("invalid byte class: text after the closing ']'".into());
            }
            let (set, _) = first_bytes(&node);
            class_is_selective(&set)?;
            let describe = format!("first-byte class {}", describe_set(&set));
            Ok(Prefilter::FirstByte {
                set: Box::new(set),
                describe,
            })
        }
    }
}

fn derive_prefilter(ast: &Node) -> Result<Prefilter, String> {
    let pre = prefixes(ast);
    let prefix_ok = !pre.set.is_empty() && pre.set.iter().all(|s| !s.is_empty());
    let min_prefix = pre.set.iter().map(Vec::len).min().unwrap_or(0);
    let req = required_literal(ast);
    let req_len = req.as_ref().map_or(0, |r| r.0.len());
    if prefix_ok && min_prefix >= 3 {
        return literals_prefilter(pre.set, pre.ci, true);
    }
    if req_len >= 3 && req_len > min_prefix {
        let (lit, ci) = req.unwrap_or_default();
        return literals_prefilter(vec![lit], ci, false);
    }
    if prefix_ok && min_prefix >= 2 {
        return literals_prefilter(pre.set, pre.ci, true);
    }
    let (set, _) = first_bytes(ast);
    match class_is_selective(&set) {
        Ok(()) => {
            let describe = format!("first-byte class {}", describe_set(&set));
            Ok(Prefilter::FirstByte { set: Box::new(set), describe })
        }
        Err(why) => Err(format!(
            "no prefilter can be derived: the pattern neither starts with a literal nor contains one of 3+ bytes, and {why}; \
             set \"prefilter\" to a literal every match contains (e.g. \"prefilter\": \"@acme.com\") \
             or to {{\"byte_class\": \"…\"}} for the first byte"
        )),
    }
}

// ---------------------------------------------------------------------------
// A reader for regex-lite syntax, just deep enough to derive prefilters.
// It never decides what matches (regex-lite does); it computes supersets:
// which literals every match starts with or contains, and which bytes a match
// can start with. Anything it does not model makes it give up, never guess.

#[derive(Debug, Clone)]
enum Node {
    /// Matches the empty string (also `^`, `$`, `\b` and other assertions).
    Empty,
    /// One character, as UTF-8; `ci` when ASCII case-insensitive.
    Lit {
        bytes: Vec<u8>,
        ci: bool,
    },
    /// A class: the bytes a member can start with, and its members when it
    /// is a small exact set of ASCII bytes.
    Class {
        first: Box<[bool; 256]>,
        small: Option<Vec<u8>>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

struct Parser<'a> {
    p: &'a [u8],
    i: usize,
    ci: bool,
}

type PResult<T> = Result<T, &'static str>;

fn class_node(ascii: &[bool; 128], non_ascii: bool, exact: bool) -> Node {
    let mut first = [false; 256];
    first[..128].copy_from_slice(ascii);
    if non_ascii {
        for b in first.iter_mut().take(0xF5).skip(0xC2) {
            *b = true;
        }
    }
    let members: Vec<u8> = (0u8..128).filter(|&c| ascii[usize::from(c)]).collect();
    let small =
        (exact && !non_ascii && !members.is_empty() && members.len() <= 4).then_some(members);
    Node::Class {
        first: Box::new(first),
        small,
    }
}

fn perl_class(c: u8) -> Option<([bool; 128], bool)> {
    let mut s = [false; 128];
    let neg = c.is_ascii_uppercase();
    match c.to_ascii_lowercase() {
        b'd' => (b'0'..=b'9').for_each(|x| s[usize::from(x)] = true),
        b'w' => (0u8..128)
            .filter(|x| x.is_ascii_alphanumeric() || *x == b'_')
            .for_each(|x| s[usize::from(x)] = true),
        b's' => [b'\t', b'\n', 0x0B, 0x0C, b'\r', b' ']
            .iter()
            .for_each(|&x| s[usize::from(x)] = true),
        _ => return None,
    }
    if neg {
        s.iter_mut().for_each(|x| *x = !*x);
    }
    Some((s, neg))
}

fn posix_class(name: &[u8]) -> Option<[bool; 128]> {
    let f: fn(&u8) -> bool = match name {
        b"alnum" => |c| c.is_ascii_alphanumeric(),
        b"alpha" => |c| c.is_ascii_alphabetic(),
        b"ascii" => |_| true,
        b"blank" => |c| *c == b' ' || *c == b'\t',
        b"cntrl" => |c| c.is_ascii_control(),
        b"digit" => |c| c.is_ascii_digit(),
        b"graph" => |c| c.is_ascii_graphic(),
        b"lower" => |c| c.is_ascii_lowercase(),
        b"print" => |c| c.is_ascii_graphic() || *c == b' ',
        b"punct" => |c| c.is_ascii_punctuation(),
        b"space" => |c| c.is_ascii_whitespace() || *c == 0x0B,
        b"upper" => |c| c.is_ascii_uppercase(),
        b"word" => |c| c.is_ascii_alphanumeric() || *c == b'_',
        b"xdigit" => |c| c.is_ascii_hexdigit(),
        _ => return None,
    };
    let mut s = [false; 128];
    for c in 0u8..128 {
        s[usize::from(c)] = f(&c);
    }
    Some(s)
}

enum ClassItem {
    Char(u32),
    Set([bool; 128], bool),
}

impl<'a> Parser<'a> {
    fn parse(pattern: &'a str) -> PResult<Node> {
        let mut p = Parser {
            p: pattern.as_bytes(),
            i: 0,
            ci: false,
        };
        let n = p.alt()?;
        if p.i != p.p.len() {
            return Err("unbalanced ')'");
        }
        Ok(n)
    }

    fn peek(&self) -> Option<u8> {
        self.p.get(self.i).copied()
    }

    fn eat(&mut self, s: &[u8]) -> bool {
        if self.p[self.i..].starts_with(s) {
            self.i += s.len();
            true
        } else {
            false
        }
    }

    fn bump(&mut self) -> PResult<u8> {
        let c = self.peek().ok_or("unexpected end of pattern")?;
        self.i += 1;
        Ok(c)
    }

    /// The next UTF-8 character of the pattern, as bytes.
    fn next_char(&mut self) -> PResult<Vec<u8>> {
        let s = std::str::from_utf8(&self.p[self.i..]).map_err(|_| "invalid UTF-8")?;
        let c = s.chars().next().ok_or("unexpected end of pattern")?;
        self.i += c.len_utf8();
        Ok(c.to_string().into_bytes())
    }

    fn alt(&mut self) -> PResult<Node> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> PResult<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantifiers(atom)?);
        }
        Ok(Node::Concat(items))
    }

    fn lit(&self, bytes: Vec<u8>) -> Node {
        let ci = self.ci && bytes.len() == 1 && bytes[0].is_ascii_alphabetic();
        Node::Lit { bytes, ci }
    }

    fn atom(&mut self) -> PResult<Node> {
        match self.peek().ok_or("unexpected end of pattern")? {
            b'(' => self.group(),
            b'[' => self.class(),
            b'.' => {
                self.i += 1;
                let mut s = [true; 128];
                s[usize::from(b'\n')] = false;
                Ok(class_node(&s, true, false))
            }
            b'^' | b'$' => {
                self.i += 1;
                Ok(Node::Empty)
            }
            b'\\' => self.escape(),
            _ => {
                let c = self.next_char()?;
                Ok(self.lit(c))
            }
        }
    }

    fn group(&mut self) -> PResult<Node> {
        self.i += 1;
        let saved = self.ci;
        if self.eat(b"?") {
            if self.eat(b"P<") || self.eat(b"<") {
                while self.bump()? != b'>' {}
            } else {
                let mut neg = false;
                loop {
                    match self.bump()? {
                        b'i' => self.ci = !neg,
                        b'x' if !neg => {
                            return Err("verbose mode (the x flag) is not supported for derivation")
                        }
                        b'x' | b'm' | b's' | b'R' | b'U' => {}
                        b'-' => neg = true,
                        b':' => break,
                        // `(?i)`: the flags hold for the rest of the enclosing group.
                        b')' => return Ok(Node::Empty),
                        _ => return Err("unknown group flag"),
                    }
                }
            }
        }
        let inner = self.alt()?;
        if !self.eat(b")") {
            return Err("unbalanced '('");
        }
        self.ci = saved;
        Ok(inner)
    }

    fn hex_escape(&mut self, digits: usize) -> PResult<u32> {
        let s = if self.eat(b"{") {
            let st = self.i;
            while self.bump()? != b'}' {}
            &self.p[st..self.i - 1]
        } else {
            let st = self.i;
            self.i += digits;
            self.p.get(st..self.i).ok_or("truncated escape")?
        };
        let s = std::str::from_utf8(s).map_err(|_| "bad escape")?;
        u32::from_str_radix(s, 16).map_err(|_| "bad hex escape")
    }

    fn escape(&mut self) -> PResult<Node> {
        self.i += 1;
        let c = self.bump()?;
        if let Some((set, neg)) = perl_class(c) {
            return Ok(class_node(&set, neg, !neg));
        }
        let ch = match c {
            b'b' => {
                if self.peek() == Some(b'{') {
                    while self.bump()? != b'}' {}
                }
                return Ok(Node::Empty);
            }
            b'B' | b'A' | b'z' | b'<' | b'>' => return Ok(Node::Empty),
            b'n' => 0x0A,
            b't' => 0x09,
            b'r' => 0x0D,
            b'f' => 0x0C,
            b'v' => 0x0B,
            b'a' => 0x07,
            b'x' => self.hex_escape(2)?,
            b'u' => self.hex_escape(4)?,
            b'U' => self.hex_escape(8)?,
            c if c.is_ascii_punctuation() || c == b' ' => u32::from(c),
            _ => return Err("unsupported escape"),
        };
        let ch = char::from_u32(ch).ok_or("bad code point")?;
        Ok(self.lit(ch.to_string().into_bytes()))
    }

    fn class_item(&mut self) -> PResult<ClassItem> {
        if self.peek() == Some(b'\\') {
            self.i += 1;
            let c = self.bump()?;
            if let Some((s, neg)) = perl_class(c) {
                return Ok(ClassItem::Set(s, neg));
            }
            let v = match c {
                b'n' => 0x0A,
                b't' => 0x09,
                b'r' => 0x0D,
                b'f' => 0x0C,
                b'v' => 0x0B,
                b'a' => 0x07,
                b'x' => self.hex_escape(2)?,
                b'u' => self.hex_escape(4)?,
                b'U' => self.hex_escape(8)?,
                c if c.is_ascii_punctuation() || c == b' ' => u32::from(c),
                _ => return Err("unsupported escape in class"),
            };
            return Ok(ClassItem::Char(v));
        }
        let c = self.next_char()?;
        let s = std::str::from_utf8(&c).map_err(|_| "invalid UTF-8")?;
        Ok(ClassItem::Char(s.chars().next().map_or(0, u32::from)))
    }

    fn class(&mut self) -> PResult<Node> {
        self.i += 1;
        let neg = self.eat(b"^");
        let mut set = [false; 128];
        let mut non_ascii = false;
        let mut approx = false;
        let mut first = true;
        loop {
            let c = self.peek().ok_or("unclosed class")?;
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            if self.p[self.i..].starts_with(b"[:") {
                let st = self.i + 2;
                let end = self.p[st..]
                    .windows(2)
                    .position(|w| w == b":]")
                    .ok_or("bad POSIX class")?
                    + st;
                let (name, pneg) = match self.p[st..end].strip_prefix(b"^") {
                    Some(n) => (n, true),
                    None => (&self.p[st..end], false),
                };
                let mut s = posix_class(name).ok_or("unknown POSIX class")?;
                if pneg {
                    s.iter_mut().for_each(|x| *x = !*x);
                    non_ascii = true;
                }
                (0..128).for_each(|k| set[k] |= s[k]);
                self.i = end + 2;
                continue;
            }
            if c == b'[' {
                let inner = self.class()?;
                if let Node::Class { first: f, small } = inner {
                    (0..128).for_each(|k| set[k] |= f[k]);
                    non_ascii |= f[0xC2];
                    approx |= small.is_none();
                }
                continue;
            }
            if self.p[self.i..].starts_with(b"&&")
                || self.p[self.i..].starts_with(b"--")
                || self.p[self.i..].starts_with(b"~~")
            {
                self.i += 2;
                approx = true;
                continue;
            }
            match self.class_item()? {
                ClassItem::Set(s, sneg) => {
                    (0..128).for_each(|k| set[k] |= s[k]);
                    non_ascii |= sneg;
                }
                ClassItem::Char(a) => {
                    let mut b = a;
                    if self.peek() == Some(b'-')
                        && self.p.get(self.i + 1).is_some_and(|&x| x != b']')
                    {
                        self.i += 1;
                        match self.class_item()? {
                            ClassItem::Char(x) => b = x,
                            ClassItem::Set(..) => return Err("bad class range"),
                        }
                    }
                    for x in a..=b.min(127) {
                        set[x as usize] = true;
                    }
                    non_ascii |= b >= 128;
                }
            }
        }
        if self.ci {
            for c in b'a'..=b'z' {
                let u = c.to_ascii_uppercase();
                let any = set[usize::from(c)] || set[usize::from(u)];
                set[usize::from(c)] = any;
                set[usize::from(u)] = any;
            }
        }
        if neg {
            if approx {
                return Ok(class_node(&[true; 128], true, false));
            }
            set.iter_mut().for_each(|x| *x = !*x);
            return Ok(class_node(&set, true, false));
        }
        Ok(class_node(&set, non_ascii, !approx))
    }

    fn counted(&mut self) -> Option<(u32, Option<u32>)> {
        let rest = &self.p[self.i..];
        let close = rest.iter().position(|&c| c == b'}')?;
        let body = std::str::from_utf8(&rest[1..close]).ok()?;
        let (min, max) = match body.split_once(',') {
            None => {
                let n = body.trim().parse().ok()?;
                (n, Some(n))
            }
            Some((a, b)) => {
                let a = a.trim().parse().ok()?;
                let b = b.trim();
                (
                    a,
                    if b.is_empty() {
                        None
                    } else {
                        Some(b.parse().ok()?)
                    },
                )
            }
        };
        self.i += close + 1;
        Some((min, max))
    }

    fn quantifiers(&mut self, mut atom: Node) -> PResult<Node> {
        loop {
            let (min, max) = match self.peek() {
                Some(b'*') => {
                    self.i += 1;
                    (0, None)
                }
                Some(b'+') => {
                    self.i += 1;
                    (1, None)
                }
                Some(b'?') => {
                    self.i += 1;
                    (0, Some(1))
                }
                Some(b'{') => match self.counted() {
                    Some(r) => r,
                    None => return Ok(atom),
                },
                _ => return Ok(atom),
            };
            // A lazy marker is not another quantifier.
            self.eat(b"?");
            atom = Node::Repeat {
                node: Box::new(atom),
                min,
                max,
            };
        }
    }
}

fn has_ci(n: &Node) -> bool {
    match n {
        Node::Lit { ci, .. } => *ci,
        Node::Concat(v) | Node::Alt(v) => v.iter().any(has_ci),
        Node::Repeat { node, .. } => has_ci(node),
        Node::Empty | Node::Class { .. } => false,
    }
}

const LIT_SET_CAP: usize = 64;
const LIT_LEN_CAP: usize = 32;

/// Literal prefixes: every match starts with one of `set`; `complete` when
/// each member is a whole match of the node (so what follows can extend it).
struct Lits {
    set: Vec<Vec<u8>>,
    complete: bool,
    ci: bool,
}

impl Lits {
    fn unknown() -> Lits {
        Lits {
            set: vec![Vec::new()],
            complete: false,
            ci: false,
        }
    }
}

fn prefixes(n: &Node) -> Lits {
    match n {
        Node::Empty => Lits {
            set: vec![Vec::new()],
            complete: true,
            ci: false,
        },
        Node::Lit { bytes, ci } => Lits {
            set: vec![bytes.clone()],
            complete: true,
            ci: *ci,
        },
        Node::Class { small: Some(m), .. } => Lits {
            set: m.iter().map(|&b| vec![b]).collect(),
            complete: true,
            ci: false,
        },
        Node::Class { .. } => Lits::unknown(),
        Node::Concat(items) => {
            let mut acc = Lits {
                set: vec![Vec::new()],
                complete: true,
                ci: false,
            };
            for it in items {
                if !acc.complete {
                    break;
                }
                let l = prefixes(it);
                if acc.set.len() * l.set.len() > LIT_SET_CAP {
                    acc.complete = false;
                    break;
                }
                let mut truncated = false;
                let mut next = Vec::with_capacity(acc.set.len() * l.set.len());
                for a in &acc.set {
                    for b in &l.set {
                        let mut v = a.clone();
                        v.extend_from_slice(b);
                        if v.len() > LIT_LEN_CAP {
                            v.truncate(LIT_LEN_CAP);
                            truncated = true;
                        }
                        next.push(v);
                    }
                }
                next.sort();
                next.dedup();
                acc = Lits {
                    set: next,
                    complete: l.complete && !truncated,
                    ci: acc.ci || l.ci,
                };
            }
            acc
        }
        Node::Alt(branches) => {
            let mut set = Vec::new();
            let mut complete = true;
            let mut ci = false;
            for b in branches {
                let l = prefixes(b);
                set.extend(l.set);
                complete &= l.complete;
                ci |= l.ci;
                if set.len() > LIT_SET_CAP {
                    return Lits::unknown();
                }
            }
            set.sort();
            set.dedup();
            Lits { set, complete, ci }
        }
        Node::Repeat { node, min, max } => {
            if *min == 0 {
                return Lits::unknown();
            }
            let l = prefixes(node);
            if l.complete && Some(*min) == *max && *min <= 8 {
                let items: Vec<Node> = (0..*min).map(|_| (**node).clone()).collect();
                return prefixes(&Node::Concat(items));
            }
            Lits {
                set: l.set,
                complete: false,
                ci: l.ci,
            }
        }
    }
}

/// The bytes a match can start with, and whether the node can match empty.
fn first_bytes(n: &Node) -> ([bool; 256], bool) {
    let mut set = [false; 256];
    match n {
        Node::Empty => return (set, true),
        Node::Lit { bytes, ci } => {
            set[usize::from(bytes[0])] = true;
            if *ci {
                set[usize::from(bytes[0].to_ascii_lowercase())] = true;
                set[usize::from(bytes[0].to_ascii_uppercase())] = true;
            }
        }
        Node::Class { first, .. } => set = **first,
        Node::Concat(items) => {
            for it in items {
                let (f, nullable) = first_bytes(it);
                (0..256).for_each(|k| set[k] |= f[k]);
                if !nullable {
                    return (set, false);
                }
            }
            return (set, true);
        }
        Node::Alt(branches) => {
            let mut any_nullable = false;
            for b in branches {
                let (f, nullable) = first_bytes(b);
                (0..256).for_each(|k| set[k] |= f[k]);
                any_nullable |= nullable;
            }
            return (set, any_nullable);
        }
        Node::Repeat { node, min, .. } => {
            let (f, nullable) = first_bytes(node);
            return (f, nullable || *min == 0);
        }
    }
    (set, false)
}

fn flatten<'n>(n: &'n Node, out: &mut Vec<&'n Node>) {
    match n {
        Node::Concat(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// The longest literal every match must contain: a run of literal
/// characters in the pattern's top-level sequence.
fn required_literal(n: &Node) -> Option<(Vec<u8>, bool)> {
    let mut items = Vec::new();
    flatten(n, &mut items);
    let mut best: Option<(Vec<u8>, bool)> = None;
    let mut cur = Vec::new();
    let mut cur_ci = false;
    let mut flush = |cur: &mut Vec<u8>, cur_ci: &mut bool| {
        if cur.len() > best.as_ref().map_or(0, |b| b.0.len()) {
            best = Some((std::mem::take(cur), *cur_ci));
        }
        cur.clear();
        *cur_ci = false;
    };
    for it in items {
        match it {
            Node::Lit { bytes, ci } => {
                cur.extend_from_slice(bytes);
                cur_ci |= *ci;
            }
            Node::Empty => {}
            Node::Repeat { node, min, .. } if *min >= 1 => {
                if let Node::Lit { bytes, ci } = &**node {
                    cur.extend_from_slice(bytes);
                    cur_ci |= *ci;
                }
                flush(&mut cur, &mut cur_ci);
            }
            _ => flush(&mut cur, &mut cur_ci),
        }
    }
    flush(&mut cur, &mut cur_ci);
    best.filter(|b| !b.0.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, pattern: &str) -> CustomSpec {
        CustomSpec {
            name: name.into(),
            pattern: pattern.into(),
            prefilter: None,
            max_span: None,
        }
    }

    fn compile(pattern: &str) -> Result<CustomPattern, CustomError> {
        CustomPattern::compile(0, &spec("p", pattern))
    }

    fn matches(p: &CustomPattern, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        p.scan(text, &mut out);
        out.iter()
            .map(|m| text[m.start..m.end].to_string())
            .collect()
    }

    /// What a plain regex-lite find_iter reports (for patterns whose matches
    /// fit the span cap).
    fn reference(pattern: &str, text: &str) -> Vec<String> {
        Regex::new(pattern)
            .unwrap()
            .find_iter(text)
            .map(|m| m.as_str().to_string())
            .collect()
    }

    #[test]
    fn derives_a_prefix_literal_from_the_pattern() {
        let p = compile(r"ACME-\d{6}").unwrap();
        assert_eq!(p.prefilter_description(), "prefix literal(s) \"ACME-\"");
        assert_eq!(
            matches(&p, "ids ACME-123456, ACME-12345 and ACME-654321."),
            vec!["ACME-123456", "ACME-654321"]
        );
    }

    #[test]
    fn derives_prefix_literals_from_alternations_and_small_classes() {
        let p = compile(r"(?:ghx|GHX)_[A-Za-z0-9]{10}").unwrap();
        assert!(
            p.prefilter_description().contains("\"GHX_\""),
            "{}",
            p.prefilter_description()
        );
        assert_eq!(
            matches(&p, "a ghx_abcdefghij b GHX_0123456789"),
            vec!["ghx_abcdefghij", "GHX_0123456789"]
        );
        let p = compile(r"[Tt]icket-\d+").unwrap();
        assert!(p.prefilter_description().contains("\"Ticket-\""));
        assert_eq!(
            matches(&p, "ticket-12 Ticket-7"),
            vec!["ticket-12", "Ticket-7"]
        );
    }

    #[test]
    fn derives_a_case_insensitive_prefilter_for_i_flag_patterns() {
        let p = compile(r"(?i)project[ -]nightingale").unwrap();
        assert!(p.prefilter_description().contains("case-insensitive"));
        assert_eq!(
            matches(&p, "PROJECT NIGHTINGALE and Project-Nightingale"),
            vec!["PROJECT NIGHTINGALE", "Project-Nightingale"]
        );
    }

    #[test]
    fn derives_a_required_inner_literal_when_the_prefix_is_a_class() {
        let p = compile(r"[a-z0-9._]+@acme\.com").unwrap();
        assert_eq!(
            p.prefilter_description(),
            "required literal(s) \"@acme.com\""
        );
        assert_eq!(
            matches(&p, "mail jo.doe@acme.com or x@other.com, ann_1@acme.com."),
            vec!["jo.doe@acme.com", "ann_1@acme.com"]
        );
    }

    #[test]
    fn derives_a_narrow_first_byte_class() {
        let p = compile(r"\d{3}-\d{3}-\d{3}").unwrap();
        assert_eq!(p.prefilter_description(), "first-byte class [0-9]");
        assert_eq!(
            matches(&p, "a 123-456-789 b 12-345-678 c 999-000-111"),
            vec!["123-456-789", "999-000-111"]
        );
    }

    #[test]
    fn rejects_a_pattern_without_any_derivable_prefilter() {
        for pat in [
            r"[a-z]+\d+",
            r"\w+@\w+",
            r".+\d",
            r"(?x) abc  \d+",
            r"[^0-9]{4}\d",
        ] {
            let e = compile(pat).unwrap_err();
            assert_eq!(e.field, "prefilter", "{pat}");
            assert!(e.message.contains("prefilter"), "{pat}: {}", e.message);
        }
    }

    #[test]
    fn a_required_literal_after_a_wildcard_is_enough() {
        let p = compile(r".{0,20}secret").unwrap();
        assert_eq!(p.prefilter_description(), "required literal(s) \"secret\"");
    }

    #[test]
    fn rejection_message_names_the_index_field_and_the_fix() {
        let e = CustomPattern::compile(3, &spec("emp_id", r"[a-z]+\d+")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("[3].prefilter: no prefilter can be derived"),
            "{s}"
        );
        assert!(s.contains("\"emp_id\""), "{s}");
        assert!(s.contains("set \"prefilter\""), "{s}");
    }

    #[test]
    fn rejects_invalid_regex_with_a_one_line_message() {
        let e = compile(r"ACME-(\d+").unwrap_err();
        assert_eq!(e.field, "pattern");
        assert!(e.message.starts_with("invalid regex"));
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn rejects_patterns_that_match_the_empty_string() {
        for pat in [r"\d*", r"(ACME)?", r"x?y?", r"^"] {
            let e = compile(pat).unwrap_err();
            assert!(e.message.contains("empty string"), "{pat}: {e}");
        }
    }

    #[test]
    fn rejects_bad_max_span_and_empty_name() {
        let mut s = spec("p", "ACME-\\d+");
        s.max_span = Some(0);
        assert_eq!(CustomPattern::compile(0, &s).unwrap_err().field, "max_span");
        s.max_span = Some(MAX_SPAN_LIMIT + 1);
        assert_eq!(CustomPattern::compile(0, &s).unwrap_err().field, "max_span");
        let s = spec(" ", "ACME");
        assert_eq!(CustomPattern::compile(0, &s).unwrap_err().field, "name");
    }

    #[test]
    fn user_literal_prefilter_gates_a_pattern_with_no_derivable_one() {
        let mut s = spec("corp", r"\w+@\w+\.corp");
        s.prefilter = Some(PrefilterSpec::Literal(".corp".into()));
        let p = CustomPattern::compile(0, &s).unwrap();
        assert_eq!(matches(&p, "a bob@mail.corp b"), vec!["bob@mail.corp"]);
    }

    #[test]
    fn user_any_of_prefilter_with_case_folding() {
        let mut s = spec("code", r"(?i)(?:alpha|beta)-\d{2}");
        s.prefilter = Some(PrefilterSpec::AnyOf {
            any_of: vec!["alpha".into(), "beta".into()],
            case_insensitive: false,
        });
        let p = CustomPattern::compile(0, &s).unwrap();
        // The pattern's (?i) makes the prefilter case-insensitive too.
        assert_eq!(
            matches(&p, "ALPHA-12 beta-34 Gamma-56"),
            vec!["ALPHA-12", "beta-34"]
        );
    }

    #[test]
    fn user_byte_class_prefilter_is_checked_for_selectivity() {
        let mut s = spec("num", r"\w*\d{5}");
        s.prefilter = Some(PrefilterSpec::ByteClass {
            byte_class: "[A-Z0-9]".into(),
        });
        // \w* can start with a lower-case letter: the operator's class is
        // trusted, so lower-case-led matches are missed by design.
        let p = CustomPattern::compile(0, &s).unwrap();
        assert_eq!(matches(&p, "X12345 ab12345"), vec!["X12345", "12345"]);
        s.prefilter = Some(PrefilterSpec::ByteClass {
            byte_class: "a-z".into(),
        });
        assert!(CustomPattern::compile(0, &s)
            .unwrap_err()
            .message
            .contains("too broad"));
        s.prefilter = Some(PrefilterSpec::ByteClass {
            byte_class: " #".into(),
        });
        assert!(CustomPattern::compile(0, &s)
            .unwrap_err()
            .message
            .contains("whitespace"));
    }

    #[test]
    fn user_prefilter_rejects_empty_literals() {
        let mut s = spec("x", r"\w+");
        s.prefilter = Some(PrefilterSpec::Literal(String::new()));
        assert_eq!(
            CustomPattern::compile(0, &s).unwrap_err().field,
            "prefilter"
        );
        s.prefilter = Some(PrefilterSpec::AnyOf {
            any_of: vec![],
            case_insensitive: false,
        });
        assert_eq!(
            CustomPattern::compile(0, &s).unwrap_err().field,
            "prefilter"
        );
    }

    #[test]
    fn word_boundaries_see_text_before_the_window() {
        let p = compile(r"\bEMP\d{4}\b").unwrap();
        assert_eq!(
            matches(&p, "EMP1234 xEMP1234 EMP12345 (EMP0001)"),
            vec!["EMP1234", "EMP0001"]
        );
    }

    #[test]
    fn matches_longer_than_max_span_are_dropped() {
        let mut s = spec("long", r"ID-\d+");
        s.max_span = Some(8);
        let p = CustomPattern::compile(0, &s).unwrap();
        assert_eq!(
            matches(&p, "ID-12345 ID-123456789012345 ID-1"),
            vec!["ID-12345", "ID-1"]
        );
    }

    #[test]
    fn matches_agree_with_plain_regex_on_ordinary_text() {
        let text = "Order ACME-000123 shipped to jo@acme.com; call 555-123-456; ref ACME-9 and ACME-424242. \
                    日本語のテキスト ACME-777777 終わり";
        for pat in [
            r"ACME-\d{6}",
            r"[a-z]+@acme\.com",
            r"\d{3}-\d{3}-\d{3}",
            r"(?i)acme-\d+",
        ] {
            let p = compile(pat).unwrap();
            assert_eq!(matches(&p, text), reference(pat, text), "{pat}");
        }
    }

    #[test]
    fn matches_never_split_a_char() {
        let p = compile(r"é+x").unwrap();
        let text = "aéééx béx";
        for m in matches(&p, text) {
            assert!(m.starts_with('é'));
        }
        assert_eq!(matches(&p, text), vec!["éééx", "éx"]);
    }

    #[test]
    fn set_numbers_patterns_and_reports_max_span() {
        let mut b = spec("b", "BETA-\\d+");
        b.max_span = Some(1000);
        let set = CustomSet::compile(&[spec("a", "ALPHA-\\d+"), b]).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.max_span(), 1000);
        assert_eq!(
            set.context(),
            Context {
                left: 4,
                right: 1000
            }
        );
        let mut out = Vec::new();
        set.scan("BETA-1 ALPHA-2", &mut out);
        assert_eq!(out[0].detector, DetectorKind::Custom(0));
        assert_eq!(out[1].detector, DetectorKind::Custom(1));
        assert_eq!(set.patterns()[1].name(), "b");
    }

    #[test]
    fn set_reports_the_first_bad_spec_with_its_index() {
        let e = CustomSet::compile(&[spec("a", "ALPHA"), spec("b", "[a-z]+")]).unwrap_err();
        assert_eq!(e.index, 1);
        assert_eq!(e.name, "b");
    }

    #[test]
    fn specs_deserialize_from_policy_json() {
        let specs: Vec<CustomSpec> = serde_json::from_str(
            r#"[
                {"name": "a", "pattern": "ACME-\\d+"},
                {"name": "b", "pattern": "\\w+@x\\.corp", "prefilter": "@x.corp", "max_span": 64},
                {"name": "c", "pattern": "(?i)foo|bar", "prefilter": {"any_of": ["foo", "bar"], "case_insensitive": true}},
                {"name": "d", "pattern": "\\d{4}", "prefilter": {"byte_class": "0-9"}}
            ]"#,
        )
        .unwrap();
        assert_eq!(
            specs[1].prefilter,
            Some(PrefilterSpec::Literal("@x.corp".into()))
        );
        assert!(matches!(
            specs[2].prefilter,
            Some(PrefilterSpec::AnyOf {
                case_insensitive: true,
                ..
            })
        ));
        assert!(CustomSet::compile(&specs).is_ok());
        assert!(
            serde_json::from_str::<CustomSpec>(r#"{"name":"a","pattern":"A","bogus":1}"#).is_err()
        );
    }

    #[test]
    fn digit_dense_text_with_a_class_prefilter_stays_linear() {
        let p = compile(r"\d{3}-\d{3}-\d{3}x").unwrap();
        let text = "1234567890".repeat(20_000);
        let t = std::time::Instant::now();
        assert!(matches(&p, &text).is_empty());
        assert!(t.elapsed().as_secs() < 5);
    }

    #[test]
    fn parser_handles_escapes_classes_and_groups() {
        for (pat, want) in [
            (r"\x41\u{42}C-\d", "prefix literal(s) \"ABC-\""),
            (r"\$USD\d+", "prefix literal(s) \"$USD\""),
            (r"(?P<k>KEY)_[0-9]+", "prefix literal(s) \"KEY_\""),
            (r"\bINV-(?:\d{4})", "prefix literal(s) \"INV-\""),
            (r"(?:AB){2}\d", "prefix literal(s) \"ABAB\""),
            (r"[[:upper:]]{2}\d{6}", "first-byte class [A-Z]"),
            (r"#[0-9A-F]{6}", "first-byte class [#]"),
        ] {
            assert_eq!(compile(pat).unwrap().prefilter_description(), want, "{pat}");
        }
    }
}
