//! SQL statements in model output (or SQL-injection payloads in prompts):
//! `SELECT … FROM`, `INSERT INTO … VALUES`, `UPDATE … SET`, `DELETE FROM`,
//! `DROP/TRUNCATE/ALTER/CREATE TABLE`, `UNION SELECT`, `; --` comment tails
//! and `' OR '1'='1` tautologies.
//!
//! # Structure, not words
//! "Select a plan from the menu" contains SELECT and FROM. A statement is
//! recognised only when its keywords come in order within a bounded window
//! ([`MAX_STATEMENT_BYTES`]) AND enough structure backs it up, scored per
//! statement: keywords in upper case next to lower-case identifiers (+2),
//! `*`, a function call, a comma list or a qualified name in the column list
//! (+1 each, at most +2), an identifier with `_`, `.` or quotes (+1), a
//! `WHERE x = …` clause (+2), a `;` (+1), a statement that ends cleanly
//! after its table (+1). [`MIN_SCORE`] is 2. INSERT … VALUES (, UPDATE … SET
//! x =, UNION SELECT and DROP TABLE carry their structure in their syntax.
//!
//! # Fast path
//! A case-insensitive Aho-Corasick prefilter finds the few keyword positions
//! (a packed SIMD searcher natively); text without them costs one scan.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};

/// Bytes after a statement keyword within which its structure must appear.
pub const MAX_STATEMENT_BYTES: usize = 400;
/// Most tokens examined per candidate statement.
const MAX_TOKENS: usize = 96;
/// Score at which a candidate is a statement.
pub const MIN_SCORE: i32 = 2;

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlKind {
    /// `SELECT … FROM …`
    Select,
    /// `INSERT INTO … VALUES (…` or `INSERT INTO … SELECT`
    Insert,
    /// `UPDATE … SET x = …`
    Update,
    /// `DELETE FROM …`
    Delete,
    /// `DROP TABLE|DATABASE|VIEW|…`
    Drop,
    /// `TRUNCATE TABLE …`
    Truncate,
    /// `ALTER TABLE … ADD|DROP|…`
    Alter,
    /// `CREATE TABLE … (`
    Create,
    /// `UNION [ALL] SELECT`
    Union,
    /// A `; --` or `' --` comment tail (injection payload)
    CommentTail,
    /// `' OR '1'='1`, `" or 1=1` (injection payload)
    Tautology,
}

/// A statement or payload found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlMatch {
    /// Its kind.
    pub kind: SqlKind,
    /// Byte span in the text.
    pub start: usize,
    /// End of the span (exclusive).
    pub end: usize,
}

const KEYWORDS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "truncate", "alter", "create", "union", "--",
];

fn prefilter() -> &'static AhoCorasick {
    static P: OnceLock<AhoCorasick> = OnceLock::new();
    P.get_or_init(|| {
        // Static keywords: building cannot fail.
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(KEYWORDS)
            .unwrap_or_else(|e| panic!("sql prefilter: {e}"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokKind {
    Word,
    Num,
    Str,
    Punct(u8),
    Newline,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: TokKind,
    start: usize,
    end: usize,
}

/// Tokenises `text[from..]` up to `limit` bytes or [`MAX_TOKENS`] tokens.
fn tokenize(text: &str, from: usize, limit: usize, out: &mut Vec<Tok>) {
    out.clear();
    let b = text.as_bytes();
    let end = (from + limit).min(b.len());
    let mut i = from;
    while i < end && out.len() < MAX_TOKENS {
        let c = b[i];
        let start = i;
        let kind = if c == b'\n' {
            i += 1;
            TokKind::Newline
        } else if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < end
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            TokKind::Word
        } else if c.is_ascii_digit() {
            while i < end && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            TokKind::Num
        } else if c == b'\'' || c == b'"' || c == b'`' {
            i += 1;
            while i < end && b[i] != c && b[i] != b'\n' {
                i += 1;
            }
            if i < end && b[i] == c {
                i += 1;
                TokKind::Str
            } else {
                // Unclosed quote: just punctuation.
                i = start + 1;
                TokKind::Punct(c)
            }
        } else {
            i += 1;
            TokKind::Punct(c)
        };
        out.push(Tok {
            kind,
            start,
            end: i,
        });
    }
}

struct Cand<'a> {
    text: &'a str,
    toks: &'a [Tok],
}

impl<'a> Cand<'a> {
    fn s(&self, i: usize) -> &'a str {
        self.toks
            .get(i)
            .map_or("", |t| self.text.get(t.start..t.end).unwrap_or(""))
    }
    fn kind(&self, i: usize) -> Option<TokKind> {
        self.toks.get(i).map(|t| t.kind)
    }
    fn is_kw(&self, i: usize, kw: &str) -> bool {
        self.kind(i) == Some(TokKind::Word) && self.s(i).eq_ignore_ascii_case(kw)
    }
    fn is_punct(&self, i: usize, p: u8) -> bool {
        self.kind(i) == Some(TokKind::Punct(p))
    }
    fn upper(&self, i: usize) -> bool {
        let s = self.s(i);
        s.bytes().any(|b| b.is_ascii_alphabetic()) && !s.bytes().any(|b| b.is_ascii_lowercase())
    }
    /// An identifier: word, quoted name, or dotted/qualified name. Returns
    /// the index after it and whether it looks special (`_`, `.`, quotes).
    fn ident(&self, i: usize) -> Option<(usize, bool)> {
        let mut j = i;
        let mut special = false;
        loop {
            match self.kind(j) {
                Some(TokKind::Word) => {
                    if self.s(j).contains('_') {
                        special = true;
                    }
                }
                Some(TokKind::Str) if self.s(j).starts_with(['`', '"']) => special = true,
                _ => return if j == i { None } else { Some((j, special)) },
            }
            j += 1;
            if self.is_punct(j, b'.')
                && matches!(self.kind(j + 1), Some(TokKind::Word) | Some(TokKind::Str))
            {
                special = true;
                j += 1;
                continue;
            }
            return Some((j, special));
        }
    }
    fn is_clause_kw(&self, i: usize) -> bool {
        const CLAUSES: &[&str] = &[
            "where",
            "join",
            "inner",
            "left",
            "right",
            "outer",
            "full",
            "cross",
            "group",
            "order",
            "limit",
            "having",
            "offset",
            "union",
            "on",
            "as",
            "natural",
            "using",
            "returning",
            "values",
            "set",
            "fetch",
            "window",
        ];
        self.kind(i) == Some(TokKind::Word)
            && CLAUSES.iter().any(|k| self.s(i).eq_ignore_ascii_case(k))
    }
    /// End of statement right at token `i`: text end, newline, `;`, `)`.
    fn clean_end(&self, i: usize) -> bool {
        matches!(
            self.kind(i),
            None | Some(TokKind::Newline)
                | Some(TokKind::Punct(b';'))
                | Some(TokKind::Punct(b')'))
                | Some(TokKind::Punct(b'`'))
        )
    }
    /// `WHERE ident op value` starting at `i` (the WHERE token).
    fn where_clause(&self, i: usize) -> bool {
        if !self.is_kw(i, "where") {
            return false;
        }
        let Some((j, _)) = self.ident(i + 1) else {
            return false;
        };
        let op = self.s(j);
        matches!(op, "=" | "<" | ">" | "!")
            || ["like", "in", "is", "between", "not"]
                .iter()
                .any(|k| op.eq_ignore_ascii_case(k))
    }
    fn has_semicolon(&self) -> bool {
        self.toks.iter().any(|t| t.kind == TokKind::Punct(b';'))
    }
}

/// Finds SQL statements and payloads in `text`, appending them to `out` in
/// order. Never panics; work per candidate is bounded.
pub fn find_sql(text: &str, out: &mut Vec<SqlMatch>) {
    let mut toks = Vec::new();
    let mut covered = 0usize;
    for m in prefilter().find_iter(text) {
        let p = m.start();
        if p < covered {
            continue;
        }
        let kw = &text[m.start()..m.end()];
        if kw == "--" {
            if let Some(sm) = comment_tail(text, p) {
                covered = sm.end;
                out.push(sm);
            }
            continue;
        }
        // Word boundaries around the keyword.
        let b = text.as_bytes();
        if (p > 0 && (b[p - 1].is_ascii_alphanumeric() || b[p - 1] == b'_'))
            || b.get(m.end())
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            continue;
        }
        tokenize(text, p, MAX_STATEMENT_BYTES, &mut toks);
        let c = Cand { text, toks: &toks };
        let found = match kw.to_ascii_lowercase().as_str() {
            "select" => select(&c),
            "insert" => insert(&c),
            "update" => update(&c),
            "delete" => delete(&c),
            "drop" => drop_like(&c, SqlKind::Drop),
            "truncate" => drop_like(&c, SqlKind::Truncate),
            "alter" => alter(&c),
            "create" => create(&c),
            "union" => union(&c),
            _ => None,
        };
        if let Some((kind, last_tok)) = found {
            // Statements whose last structural token opens a clause or value
            // list run on to the end of the statement; others end there.
            let extend = matches!(
                kind,
                SqlKind::Insert
                    | SqlKind::Update
                    | SqlKind::Union
                    | SqlKind::Create
                    | SqlKind::Alter
            ) || toks
                .get(last_tok)
                .is_some_and(|t| t.kind == TokKind::Word && c_is_clause(text, t));
            let end = if extend {
                statement_end(text, &toks, last_tok)
            } else {
                let e = toks.get(last_tok).map_or(p, |t| t.end);
                // Keep a `;` that closes the statement.
                match toks.get(last_tok + 1) {
                    Some(t) if t.kind == TokKind::Punct(b';') => t.end,
                    _ => e,
                }
            };
            // The window may have cut a multi-byte character.
            let mut end = end.max(p);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            covered = end;
            out.push(SqlMatch {
                kind,
                start: p,
                end,
            });
        }
    }
    find_tautologies(text, out);
    out.sort_by_key(|m| (m.start, m.end));
    out.dedup_by(|a, b| a.start < b.end && b.start < a.end);
}

fn c_is_clause(text: &str, t: &Tok) -> bool {
    let toks = [*t];
    Cand { text, toks: &toks }.is_clause_kw(0)
}

/// True when `text` contains any SQL statement or payload.
pub fn contains_sql(text: &str) -> bool {
    let mut v = Vec::new();
    find_sql(text, &mut v);
    !v.is_empty()
}

/// The statement ends at the first `;` (included), newline, sentence end or
/// code-span end after its last structural token.
fn statement_end(text: &str, toks: &[Tok], last: usize) -> usize {
    let b = text.as_bytes();
    let mut end = toks.get(last).map_or(text.len(), |t| t.end);
    for t in toks.iter().skip(last + 1) {
        match t.kind {
            TokKind::Punct(b';') => return t.end,
            TokKind::Newline
            | TokKind::Punct(b'`')
            | TokKind::Punct(b'?')
            | TokKind::Punct(b'!') => return end,
            TokKind::Punct(b'.') if b.get(t.end).is_none_or(|c| c.is_ascii_whitespace()) => {
                return end
            }
            _ => end = t.end,
        }
    }
    end
}

fn select(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    // Column list up to FROM.
    let mut i = 1;
    let mut score = 0;
    let (mut star, mut func, mut comma, mut qual) = (false, false, false, false);
    let mut words = 0;
    let mut lower_ident = false;
    while i < c.toks.len() && !c.is_kw(i, "from") {
        match c.kind(i)? {
            TokKind::Punct(b'*') => star = true,
            TokKind::Punct(b',') => comma = true,
            TokKind::Punct(b'(') if c.kind(i - 1) == Some(TokKind::Word) => func = true,
            TokKind::Punct(b'.')
                if c.kind(i - 1) == Some(TokKind::Word) && c.kind(i + 1) == Some(TokKind::Word) =>
            {
                qual = true
            }
            TokKind::Punct(b'?') | TokKind::Punct(b'!') | TokKind::Newline if !comma => {
                return None
            }
            TokKind::Word => {
                words += 1;
                if !c.upper(i) {
                    lower_ident = true;
                }
            }
            _ => {}
        }
        if words > 16 || i > 60 {
            return None;
        }
        i += 1;
    }
    if !c.is_kw(i, "from") {
        return None;
    }
    let from = i;
    let (after, special) = c.ident(from + 1)?;
    if c.kind(from + 1) == Some(TokKind::Word) && !c.upper(from + 1) {
        lower_ident = true;
    }
    let upper_kw = c.upper(0) && c.upper(from) && lower_ident;
    if upper_kw {
        score += 2;
    }
    score += (star as i32 + func as i32 + comma as i32 + qual as i32).min(2);
    if special {
        score += 1;
    }
    // What follows the table: a clause keyword, an alias then a clause, or the end.
    let mut last = after - 1;
    let mut k = after;
    if c.kind(k) == Some(TokKind::Word)
        && !c.is_clause_kw(k)
        && (c.is_clause_kw(k + 1) || c.clean_end(k + 1))
    {
        k += 1; // alias
    }
    if c.is_clause_kw(k) {
        score += 1;
        if c.where_clause(k) {
            score += 1;
        }
        last = k;
    } else if c.clean_end(k) {
        score += 1;
        last = k.saturating_sub(1).max(after - 1);
    } else if c.is_punct(k, b',') {
        // FROM a, b
        last = k;
    } else if !upper_kw {
        // Lower-case keywords followed by prose: "select x from the menu".
        score -= 1;
    }
    if c.has_semicolon() {
        score += 1;
    }
    (score >= MIN_SCORE).then_some((SqlKind::Select, last))
}

fn insert(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    if !c.is_kw(1, "into") {
        return None;
    }
    let (mut j, _) = c.ident(2)?;
    if c.is_punct(j, b'(') {
        // Column list: identifiers and commas up to ')'.
        j += 1;
        while j < c.toks.len() && !c.is_punct(j, b')') {
            if !matches!(
                c.kind(j),
                Some(TokKind::Word) | Some(TokKind::Str) | Some(TokKind::Punct(b','))
            ) {
                return None;
            }
            j += 1;
        }
        j += 1;
    }
    if (c.is_kw(j, "values") || c.is_kw(j, "value")) && c.is_punct(j + 1, b'(') {
        return Some((SqlKind::Insert, j + 1));
    }
    if c.is_kw(j, "select") {
        return Some((SqlKind::Insert, j));
    }
    None
}

fn update(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    let (j, _) = c.ident(1)?;
    if !c.is_kw(j, "set") {
        return None;
    }
    let (k, _) = c.ident(j + 1)?;
    c.is_punct(k, b'=').then_some((SqlKind::Update, k + 1))
}

fn delete(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    if !c.is_kw(1, "from") {
        return None;
    }
    let (j, special) = c.ident(2)?;
    let mut score = 1 + special as i32;
    if c.upper(0) && c.upper(1) && !c.upper(2) {
        score += 2;
    }
    let mut last = j - 1;
    if c.where_clause(j) {
        score += 2;
        last = j;
    } else if !c.clean_end(j) {
        return None;
    }
    if c.has_semicolon() {
        score += 1;
    }
    (score >= MIN_SCORE).then_some((SqlKind::Delete, last))
}

const OBJECTS: &[&str] = &[
    "table",
    "database",
    "view",
    "index",
    "schema",
    "procedure",
    "function",
    "trigger",
    "sequence",
    "user",
    "role",
];

fn drop_like(c: &Cand<'_>, kind: SqlKind) -> Option<(SqlKind, usize)> {
    let objects: &[&str] = if kind == SqlKind::Truncate {
        &["table"]
    } else {
        OBJECTS
    };
    if !objects.iter().any(|o| c.is_kw(1, o)) {
        // TRUNCATE may omit TABLE.
        if kind != SqlKind::Truncate {
            return None;
        }
    }
    let mut i = if kind == SqlKind::Truncate && !c.is_kw(1, "table") {
        1
    } else {
        2
    };
    let mut score = 1;
    if c.is_kw(i, "if") && c.is_kw(i + 1, "exists") {
        i += 2;
        score += 2;
    }
    let (j, special) = c.ident(i)?;
    score += special as i32;
    if c.upper(0) && !c.upper(i) {
        score += 2;
    }
    if c.clean_end(j) || c.is_kw(j, "cascade") || c.is_punct(j, b',') {
        score += 1;
    }
    if c.has_semicolon() {
        score += 1;
    }
    (score >= MIN_SCORE).then_some((kind, j - 1))
}

fn alter(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    if !c.is_kw(1, "table") {
        return None;
    }
    let (j, _) = c.ident(2)?;
    const ACTIONS: &[&str] = &[
        "add", "drop", "alter", "rename", "modify", "change", "owner", "set",
    ];
    ACTIONS
        .iter()
        .any(|a| c.is_kw(j, a))
        .then_some((SqlKind::Alter, j))
}

fn create(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    let mut i = 1;
    if c.is_kw(i, "temporary") || c.is_kw(i, "temp") {
        i += 1;
    }
    if !c.is_kw(i, "table") {
        return None;
    }
    i += 1;
    if c.is_kw(i, "if") && c.is_kw(i + 1, "not") && c.is_kw(i + 2, "exists") {
        i += 3;
    }
    let (j, _) = c.ident(i)?;
    // Column definitions: "(" identifier type …
    (c.is_punct(j, b'(')
        && c.kind(j + 1) == Some(TokKind::Word)
        && c.kind(j + 2) == Some(TokKind::Word))
    .then_some((SqlKind::Create, j + 2))
}

fn union(c: &Cand<'_>) -> Option<(SqlKind, usize)> {
    let i = if c.is_kw(1, "all") || c.is_kw(1, "distinct") {
        2
    } else {
        1
    };
    if !c.is_kw(i, "select") {
        return None;
    }
    // "union select" in prose is vanishingly rare, but demand something
    // after SELECT that looks like a column list.
    match c.kind(i + 1) {
        Some(TokKind::Word)
        | Some(TokKind::Num)
        | Some(TokKind::Str)
        | Some(TokKind::Punct(b'*'))
        | Some(TokKind::Punct(b'@')) => Some((SqlKind::Union, i + 1)),
        _ => None,
    }
}

/// `; --`, `' --`, `') --` at `p` (the `--`), followed by the end of the line.
fn comment_tail(text: &str, p: usize) -> Option<SqlMatch> {
    let b = text.as_bytes();
    let mut i = p;
    while i > 0 && b[i - 1] == b' ' {
        i -= 1;
    }
    if i == 0 || !matches!(b[i - 1], b';' | b'\'' | b'"' | b')') {
        return None;
    }
    // A `--` inside an em-dash run or an ASCII arrow is not a comment.
    if b.get(p + 2).is_some_and(|&c| c == b'-' || c == b'>') {
        return None;
    }
    let start = i - 1;
    let mut end = p + 2;
    while end < b.len() && b[end] != b'\n' && end - p < 80 {
        end += 1;
    }
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // For `'` and `"` demand something SQL-ish before: `'--` right after a
    // word (admin'--) or a `;`.
    if matches!(b[start], b'\'' | b'"')
        && !(start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b' '))
    {
        return None;
    }
    Some(SqlMatch {
        kind: SqlKind::CommentTail,
        start,
        end,
    })
}

/// `' OR '1'='1`, `" or 1=1`, `OR 'a'='a'`: a literal compared to itself
/// after OR (or AND), preceded by a quote or a number.
fn find_tautologies(text: &str, out: &mut Vec<SqlMatch>) {
    let b = text.as_bytes();
    for eq in memchr::memchr_iter(b'=', b) {
        if out.len() > 1024 {
            return;
        }
        // Right literal.
        let Some((r_start, r_end, r_val)) = literal_at(b, eq + 1) else {
            continue;
        };
        // Left literal ends right before '=' (spaces allowed).
        let mut l_end = eq;
        while l_end > 0 && b[l_end - 1] == b' ' {
            l_end -= 1;
        }
        let Some((l_start, l_val)) = literal_before(b, l_end) else {
            continue;
        };
        if l_val != r_val {
            continue;
        }
        // "OR"/"AND" before the left literal, preceded by a quote, digit or ')'.
        let mut k = l_start;
        while k > 0 && b[k - 1] == b' ' {
            k -= 1;
        }
        let word_start = k.saturating_sub(3);
        let w = &b[word_start..k];
        let is_or = k >= 2
            && b[k - 2..k].eq_ignore_ascii_case(b"or")
            && (k == 2 || !b[k - 3].is_ascii_alphanumeric());
        let is_and = w.len() == 3
            && w.eq_ignore_ascii_case(b"and")
            && (word_start == 0 || !b[word_start - 1].is_ascii_alphanumeric());
        if !(is_or || is_and) {
            continue;
        }
        let op_start = if is_or { k - 2 } else { word_start };
        let mut q = op_start;
        while q > 0 && b[q - 1] == b' ' {
            q -= 1;
        }
        if q == 0 || !matches!(b[q - 1], b'\'' | b'"' | b')' | b'0'..=b'9') {
            continue;
        }
        // A number before OR counts only as a parameter value: `id=1 or 1=1`.
        if b[q - 1].is_ascii_digit() {
            let mut d = q - 1;
            while d > 0 && b[d - 1].is_ascii_digit() {
                d -= 1;
            }
            if d == 0 || b[d - 1] != b'=' {
                continue;
            }
        }
        let _ = r_start;
        let mut end = r_end;
        // Swallow a trailing comment.
        let rest = &b[end..];
        let trimmed = rest.iter().take_while(|c| **c == b' ').count();
        if rest[trimmed..].starts_with(b"--") || rest[trimmed..].starts_with(b"#") {
            end += trimmed;
            while end < b.len() && b[end] != b'\n' {
                end += 1;
            }
        }
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push(SqlMatch {
            kind: SqlKind::Tautology,
            start: q - 1,
            end,
        });
    }
}

/// A literal (quoted string, possibly unclosed at the end of the payload, or
/// a number) starting at `i` after spaces: `(start, end, value)`.
fn literal_at(b: &[u8], mut i: usize) -> Option<(usize, usize, &[u8])> {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let start = i;
    match *b.get(i)? {
        q @ (b'\'' | b'"') => {
            let body = i + 1;
            let mut j = body;
            while j < b.len() && b[j] != q && j - body < 16 && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if j == body {
                return None;
            }
            let end = if b.get(j) == Some(&q) { j + 1 } else { j };
            Some((start, end, &b[body..j]))
        }
        c if c.is_ascii_digit() => {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() && j - i < 12 {
                j += 1;
            }
            if b.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            Some((start, j, &b[i..j]))
        }
        _ => None,
    }
}

/// A literal ending at `end` (exclusive): `(start, value)`.
fn literal_before(b: &[u8], end: usize) -> Option<(usize, &[u8])> {
    if end == 0 {
        return None;
    }
    let last = b[end - 1];
    if last == b'\'' || last == b'"' {
        let close = end - 1;
        let mut j = close;
        while j > 0 && b[j - 1] != last && close - j < 16 && b[j - 1].is_ascii_alphanumeric() {
            j -= 1;
        }
        if j == 0 || b[j - 1] != last || j == close {
            return None;
        }
        return Some((j - 1, &b[j..close]));
    }
    if last.is_ascii_digit() {
        let mut j = end;
        while j > 0 && b[j - 1].is_ascii_digit() && end - j < 12 {
            j -= 1;
        }
        if j > 0 && (b[j - 1].is_ascii_alphabetic() || b[j - 1] == b'_') {
            return None;
        }
        return Some((j, &b[j..end]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(SqlKind, &str)> {
        let mut v = Vec::new();
        find_sql(text, &mut v);
        v.iter().map(|m| (m.kind, &text[m.start..m.end])).collect()
    }

    #[test]
    fn statements_are_found_with_their_span() {
        assert_eq!(
            kinds("Run SELECT name FROM users to list them."),
            vec![(SqlKind::Select, "SELECT name FROM users")]
        );
        assert_eq!(
            kinds("select * from orders where id = 42;"),
            vec![(SqlKind::Select, "select * from orders where id = 42;")]
        );
        assert_eq!(
            kinds("select id, email from customers"),
            vec![(SqlKind::Select, "select id, email from customers")]
        );
        assert_eq!(
            kinds("SELECT COUNT(*) FROM public.events e WHERE e.kind = 'x'")[0].0,
            SqlKind::Select
        );
        assert_eq!(
            kinds("INSERT INTO users (name, email) VALUES ('a', 'b');")[0].0,
            SqlKind::Insert
        );
        assert_eq!(
            kinds("insert into audit_log select * from staging")[0].0,
            SqlKind::Insert
        );
        assert_eq!(
            kinds("UPDATE accounts SET balance = 0 WHERE id = 7")[0].0,
            SqlKind::Update
        );
        assert_eq!(
            kinds("DELETE FROM sessions WHERE expires < now();")[0].0,
            SqlKind::Delete
        );
        assert_eq!(kinds("delete from users;")[0].0, SqlKind::Delete);
        assert_eq!(
            kinds("DROP TABLE users;"),
            vec![(SqlKind::Drop, "DROP TABLE users;")]
        );
        assert_eq!(kinds("drop table if exists tmp_data")[0].0, SqlKind::Drop);
        assert_eq!(kinds("TRUNCATE TABLE logs;")[0].0, SqlKind::Truncate);
        assert_eq!(
            kinds("ALTER TABLE users ADD COLUMN age int")[0].0,
            SqlKind::Alter
        );
        assert_eq!(
            kinds("CREATE TABLE pets (id INT, name TEXT)")[0].0,
            SqlKind::Create
        );
    }

    #[test]
    fn statements_in_code_blocks_and_multiline() {
        let t = "Here you go:\n```sql\nSELECT u.id,\n       u.name\nFROM users u\nJOIN orders o ON o.user_id = u.id;\n```";
        let k = kinds(t);
        assert_eq!(k.len(), 1, "{k:?}");
        assert_eq!(k[0].0, SqlKind::Select);
    }

    #[test]
    fn injection_payloads_are_found() {
        assert_eq!(
            kinds("id=1 UNION SELECT username, password FROM users--")[0].0,
            SqlKind::Union
        );
        assert!(kinds("name=admin'-- ")
            .iter()
            .any(|k| k.0 == SqlKind::CommentTail));
        assert!(kinds("x'; DROP TABLE students; --")
            .iter()
            .any(|k| k.0 == SqlKind::Drop));
        assert_eq!(kinds("' OR '1'='1")[0].0, SqlKind::Tautology);
        assert_eq!(kinds("pass=\" or 1=1 --")[0].0, SqlKind::Tautology);
        assert_eq!(kinds("1' or 'a'='a")[0].0, SqlKind::Tautology);
    }

    #[test]
    fn prose_is_not_sql() {
        for t in [
            "Select a plan from the menu.",
            "Please select the columns you need from the list below.",
            "SELECT A PLAN FROM THE MENU",
            "You can update the settings at any time.",
            "Delete from your history any item you don't need.",
            "Insert into the slot the card with the chip facing up.",
            "We need to drop the table tennis class this term.",
            "Create a table of contents for the report.",
            "The union selected a new leader from its members.",
            "This is fine -- really.",
            "2 + 2 = 4 or 3 = 3 in arithmetic",
            "Set x = 1 or y = 1 and update accordingly.",
            "Alter the table layout for the wedding.",
            "Pick what you select from: apples, pears or plums?",
            "a == b or c == c",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for t in [
            "select",
            "SELECT * FROM",
            "insert into",
            "update x set",
            "'",
            "' OR '",
            "=",
            "1=1",
            "--",
            ";--",
            "é--é",
            "SELECT é FROM ü WHERE ö = 'ä'",
            "'='",
            "\"=\"",
            "OR 1=",
        ] {
            let _ = kinds(t);
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn spans_are_char_boundaries(s in "(SELECT|select|FROM|from|WHERE|=|'|\"|;|--| |or|1|é|ü|x_y|\n|\\*|,){0,40}") {
                let mut v = Vec::new();
                find_sql(&s, &mut v);
                for m in v {
                    prop_assert!(m.start <= m.end && m.end <= s.len());
                    prop_assert!(s.is_char_boundary(m.start) && s.is_char_boundary(m.end));
                }
            }
        }
    }

    #[test]
    fn work_is_bounded_on_long_inputs() {
        let t = "select ".repeat(20_000);
        assert!(kinds(&t).is_empty());
        let t = format!("SELECT {} FROM users", "a, ".repeat(10_000));
        let _ = kinds(&t);
    }
}
