//! Secrets: provider API keys and tokens with a documented prefix, PEM
//! private-key blocks, JWTs, and `password=`-style assignments whose value
//! looks random.
//!
//! # Tokens with a known prefix
//!
//! | detector | shape |
//! |---|---|
//! | AWS access key id | `AKIA`/`ASIA`/`ABIA`/`ACCA` + 16 `[A-Z0-9]` |
//! | GitHub | `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + ≥ 36 `[A-Za-z0-9]`; `github_pat_` + ≥ 22 `[A-Za-z0-9_]` |
//! | Slack | `xox[abprse]-` + ≥ 10 `[A-Za-z0-9-]` with a digit |
//! | OpenAI | `sk-` (+ `proj-`/`svcacct-`/`admin-`/`None-`) + ≥ 20 `[A-Za-z0-9_-]` with letters and digits (and mixed case if it contains `-`) |
//! | Anthropic | `sk-ant-` + ≥ 20 `[A-Za-z0-9_-]` with a digit |
//! | Stripe | `sk_`/`rk_`/`pk_` + `live_`/`test_` + ≥ 10 `[A-Za-z0-9]` |
//! | Google API key | `AIza` + exactly 35 `[A-Za-z0-9_-]` |
//!
//! Candidates come from one `memchr3` pass over `_`, `-` and `A` (the byte
//! inside or at the start of every prefix), checked by a few comparisons. A
//! token must not be glued to a word byte on either side.
//!
//! # PEM private keys
//!
//! `-----BEGIN … PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, plain
//! PKCS#8, `PGP PRIVATE KEY BLOCK`) through the matching `-----END …-----`
//! line if it comes within [`PEM_MAX_SPAN`] bytes. A block cut off (a
//! truncated paste, a stream that ends, a key longer than the cap) is reported
//! through the end of its base64 body, so the key material is still covered.
//! Public keys and certificates are not secrets and are not reported.
//!
//! # JWTs
//!
//! Anchored on `eyJ` (base64url of `{"`): three base64url segments whose
//! header decodes to a JSON object with an `"alg"` string and whose payload
//! decodes to a JSON object; the signature may be empty (`alg: none`). A JWE
//! (five segments, header with `"enc"`) is reported too. Tokens longer than
//! [`JWT_MAX_SPAN`] are reported as their first `JWT_MAX_SPAN` bytes when the
//! header is valid and the payload starts as a JSON object: the tail beyond
//! the cap (the rest of the claims and the signature) is a known miss.
//!
//! # Secret assignments
//!
//! `key = value`, `key: value`, `"key": "value"`, `key => value`,
//! `key := value`, where the key (case-insensitive, ignoring `_-.`) contains
//! `password`, `passwd`, `passphrase`, `secret`, `token`, `apikey`,
//! `accesskey`, `privatekey`, `credential`, `authorization`… or is exactly
//! `pwd`, `pass`, `pw`, `auth` or `key`, and does not end in a word that
//! makes it metadata (`max_tokens`, `token_type`, `password_hash`,
//! `secret_name`, `token_url`…). An `Authorization`-style scheme word
//! (`Bearer `, `Basic `, `Token `, `Bot `) is skipped. The span is the value
//! only. The value must:
//! - be 8–[`ASSIGNMENT_MAX_SPAN`] printable ASCII bytes;
//! - not be a placeholder or a reference: `<…>`, `${…}`, `{{…}}`, `your_…`,
//!   `xxxx`, `****`, `changeme`, `null`, an `ENV_VAR_NAME`, a dotted
//!   identifier path (`os.environ`, `settings.SECRET`), a call (`getpass()`),
//!   a URL, or a UUID;
//! - mix character classes: contain a digit, or three of lower, upper,
//!   digit and symbol;
//! - have Shannon entropy of at least `min(3.0, 0.9·log2(len))` bits per byte
//!   when shorter than 16 bytes or all hex, and [`ENTROPY_MIN_LONG`] (3.5)
//!   from 16 bytes on. Random base64 of 16+ bytes scores ≥ 3.8 and random hex
//!   ≈ 3.7, while words, repeated characters and most placeholders stay below.
//!
//! Deliberately not caught: low-entropy passwords (`password=hunter2`), values
//! with non-ASCII bytes, CLI flags without `=` (`--password s3cr3t`), secrets
//! without a keyword or known prefix (a bare 40-character AWS secret key, a
//! git SHA, a sha256 digest, UUID tokens — these look like ordinary ids),
//! Slack webhook URLs, values longer than [`ASSIGNMENT_MAX_SPAN`].

use super::{back, is_word, Context, StructuredSet};
use crate::finding::{DetectorKind, Match};
use memchr::memmem;

/// `AKIA` + 16.
pub const AWS_MAX_SPAN: usize = 20;
/// GitHub documents tokens of up to 255 characters.
pub const GITHUB_MAX_SPAN: usize = 255;
/// Slack tokens are well under this.
pub const SLACK_MAX_SPAN: usize = 255;
/// Project and service-account keys are ~170 bytes today; room to grow.
pub const OPENAI_MAX_SPAN: usize = 256;
/// `sk-ant-api03-` keys are 108 bytes today.
pub const ANTHROPIC_MAX_SPAN: usize = 256;
/// Stripe keys are up to ~110 bytes.
pub const STRIPE_MAX_SPAN: usize = 255;
/// `AIza` + 35.
pub const GOOGLE_MAX_SPAN: usize = 39;
/// Cap on a JWT's span. Identity-provider tokens with many claims run 1–2 KiB;
/// longer ones are reported truncated (see the module documentation).
pub const JWT_MAX_SPAN: usize = 2048;
/// Cap on an assignment's value (its span).
pub const ASSIGNMENT_MAX_SPAN: usize = 256;
/// Cap on a PEM private-key block, header to footer. A 4096-bit RSA key is
/// ~3.3 KiB in PKCS#1 PEM; 8 KiB leaves room for encrypted and PGP blocks.
/// The streamer should treat blocks specially rather than hold back this
/// much for every detector.
pub const PEM_MAX_SPAN: usize = 8192;

/// Tokens and PEM blocks look one byte either side (the word boundary).
pub const TOKEN_CONTEXT: Context = Context { left: 1, right: 1 };
/// JWTs: the byte before; a `.` and the byte after (a further segment).
pub const JWT_CONTEXT: Context = Context { left: 1, right: 2 };
/// Assignments look left across the operator, spaces, quotes and the key
/// (≤ 64 bytes) to decide; the span is the value.
pub const ASSIGNMENT_CONTEXT: Context = Context { left: 96, right: 1 };

/// Entropy floor (bits per byte) for short or all-hex assignment values,
/// lowered to `0.9·log2(len)` for values too short to reach it.
pub const ENTROPY_MIN_SHORT: f64 = 3.0;
/// Entropy floor for assignment values of 16 bytes or more (not all hex).
pub const ENTROPY_MIN_LONG: f64 = 3.5;
/// Shortest assignment value considered.
pub const ASSIGNMENT_MIN_LEN: usize = 8;

const MAX_KEY: usize = 64;

const TOKEN_KINDS: [DetectorKind; 8] = [
    DetectorKind::AwsAccessKey,
    DetectorKind::GithubToken,
    DetectorKind::SlackToken,
    DetectorKind::OpenAiKey,
    DetectorKind::AnthropicKey,
    DetectorKind::StripeKey,
    DetectorKind::GoogleApiKey,
    DetectorKind::PrivateKey,
];

/// Find the enabled secret detectors' matches in `text` and append them.
pub fn scan(text: &str, enabled: &StructuredSet, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    if TOKEN_KINDS.iter().any(|k| enabled.contains(*k)) {
        scan_tokens(b, enabled, out);
    }
    if enabled.contains(DetectorKind::Jwt) {
        scan_jwts(b, out);
    }
    if enabled.contains(DetectorKind::SecretAssignment) {
        scan_assignments(b, out);
    }
}

// ---------------------------------------------------------------------------
// Tokens with a known prefix, and PEM blocks.

type Hit = (DetectorKind, usize, usize);

fn scan_tokens(b: &[u8], on: &StructuredSet, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut floor = 0;
    while let Some(off) = memchr::memchr3(b'_', b'-', b'A', &b[i..]) {
        let p = i + off;
        i = p + 1;
        let hit = match b[p] {
            b'_' => at_underscore(b, p),
            b'-' => at_dash(b, p),
            _ => at_capital_a(b, p),
        };
        if let Some((kind, s, e)) = hit {
            if s >= floor && on.contains(kind) {
                out.push(Match {
                    detector: kind,
                    start: s,
                    end: e,
                });
                floor = e;
                i = e;
            }
        }
    }
}

#[inline]
fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

#[inline]
fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// End of the run of `pred` bytes from `from`, reading at most `max + 1`
/// bytes so a run longer than `max` is recognisable (`end - from > max`).
fn run_end(b: &[u8], from: usize, max: usize, pred: impl Fn(u8) -> bool) -> usize {
    let lim = b.len().min(from.saturating_add(max + 1));
    let mut e = from.min(lim);
    while e < lim && pred(b[e]) {
        e += 1;
    }
    e
}

/// Not glued to a word byte on the left.
fn left_free(b: &[u8], s: usize) -> bool {
    !back(b, s, 1).is_some_and(is_word)
}

/// Not glued to a word byte on the right.
fn right_free(b: &[u8], e: usize) -> bool {
    !b.get(e).copied().is_some_and(is_word)
}

fn at_underscore(b: &[u8], p: usize) -> Option<Hit> {
    // ghp_ gho_ ghu_ ghs_ ghr_
    if p >= 3 && &b[p - 3..p - 1] == b"gh" && matches!(b[p - 1], b'p' | b'o' | b'u' | b's' | b'r') {
        let s = p - 3;
        let e = run_end(b, p + 1, GITHUB_MAX_SPAN, is_alnum);
        let len = e - (p + 1);
        if left_free(b, s) && len >= 36 && e - s <= GITHUB_MAX_SPAN && right_free(b, e) {
            return Some((DetectorKind::GithubToken, s, e));
        }
        return None;
    }
    // github_pat_
    if p >= 6 && &b[p - 6..p] == b"github" && b[p..].starts_with(b"_pat_") {
        let s = p - 6;
        let e = run_end(b, p + 5, GITHUB_MAX_SPAN, is_word);
        if left_free(b, s) && e - (p + 5) >= 22 && e - s <= GITHUB_MAX_SPAN {
            return Some((DetectorKind::GithubToken, s, e));
        }
        return None;
    }
    // sk_live_ rk_live_ pk_live_ (and _test_)
    if p >= 2
        && matches!(&b[p - 2..p], b"sk" | b"rk" | b"pk")
        && (b[p + 1..].starts_with(b"live_") || b[p + 1..].starts_with(b"test_"))
    {
        let s = p - 2;
        let e = run_end(b, p + 6, STRIPE_MAX_SPAN, is_alnum);
        if left_free(b, s) && e - (p + 6) >= 10 && e - s <= STRIPE_MAX_SPAN && right_free(b, e) {
            return Some((DetectorKind::StripeKey, s, e));
        }
    }
    None
}

fn at_dash(b: &[u8], p: usize) -> Option<Hit> {
    if b[p..].starts_with(b"-----BEGIN ") {
        return pem_at(b, p).map(|e| (DetectorKind::PrivateKey, p, e));
    }
    if p >= 2 && &b[p - 2..p] == b"sk" {
        let s = p - 2;
        if !left_free(b, s) {
            return None;
        }
        if b[p + 1..].starts_with(b"ant-") {
            let body = p + 5;
            let mut e = run_end(b, body, ANTHROPIC_MAX_SPAN, is_b64url);
            if e - s > ANTHROPIC_MAX_SPAN {
                return None;
            }
            while e > body && b[e - 1] == b'-' {
                e -= 1;
            }
            let v = &b[body..e];
            if v.len() >= 20 && v.iter().any(u8::is_ascii_digit) && !placeholder_run(v) {
                return Some((DetectorKind::AnthropicKey, s, e));
            }
            return None;
        }
        let body = p + 1;
        let mut e = run_end(b, body, OPENAI_MAX_SPAN, is_b64url);
        if e - s > OPENAI_MAX_SPAN {
            return None;
        }
        while e > body && b[e - 1] == b'-' {
            e -= 1;
        }
        let mut v = &b[body..e];
        for pre in [&b"proj-"[..], b"svcacct-", b"admin-", b"None-"] {
            if let Some(rest) = v.strip_prefix(pre) {
                v = rest;
                break;
            }
        }
        // Random keys mix letters and digits. A hyphenated run of words
        // (`sk-learn-compatible-2024`) must also mix case to count.
        let digit = v.iter().any(u8::is_ascii_digit);
        let letter = v.iter().any(u8::is_ascii_alphabetic);
        let mixed_case =
            v.iter().any(u8::is_ascii_uppercase) && v.iter().any(u8::is_ascii_lowercase);
        if v.len() >= 20
            && digit
            && letter
            && (mixed_case || !v.contains(&b'-'))
            && !placeholder_run(v)
        {
            return Some((DetectorKind::OpenAiKey, s, e));
        }
        return None;
    }
    if p >= 4
        && &b[p - 4..p - 1] == b"xox"
        && matches!(b[p - 1], b'a' | b'b' | b'p' | b'r' | b's' | b'e')
    {
        let s = p - 4;
        let mut e = run_end(b, p + 1, SLACK_MAX_SPAN, |c| is_alnum(c) || c == b'-');
        if e - s > SLACK_MAX_SPAN || !left_free(b, s) || !right_free(b, e) {
            return None;
        }
        while e > p + 1 && b[e - 1] == b'-' {
            e -= 1;
        }
        let v = &b[p + 1..e];
        if v.len() >= 10 && v.iter().any(u8::is_ascii_digit) {
            return Some((DetectorKind::SlackToken, s, e));
        }
    }
    None
}

const AWS_PREFIXES: [&[u8; 4]; 4] = [b"AKIA", b"ASIA", b"ABIA", b"ACCA"];

fn at_capital_a(b: &[u8], p: usize) -> Option<Hit> {
    let head = b.get(p..p + 4)?;
    if !left_free(b, p) {
        return None;
    }
    if head == b"AIza" {
        let e = run_end(b, p + 4, 35, is_b64url);
        return (e - (p + 4) == 35).then_some((DetectorKind::GoogleApiKey, p, e));
    }
    if AWS_PREFIXES.iter().any(|x| &x[..] == head) {
        let e = p + AWS_MAX_SPAN;
        let body = b.get(p + 4..e)?;
        if body
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && right_free(b, e)
        {
            return Some((DetectorKind::AwsAccessKey, p, e));
        }
    }
    None
}

/// A run that is one character repeated or `x`/`X` fillers: a placeholder.
fn placeholder_run(v: &[u8]) -> bool {
    v.iter().all(|&c| c == v[0]) || find_ci(v, b"xxxxx")
}

fn is_private_label(l: &[u8]) -> bool {
    (l.ends_with(b"PRIVATE KEY") || l.ends_with(b"PRIVATE KEY BLOCK"))
        && l.iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ')
}

#[inline]
fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
}

/// Length of a line break at `j`: a newline, CR, or an escaped `\n`/`\r`
/// (keys pasted from JSON or env files). 0 when there is none.
fn line_break(b: &[u8], j: usize) -> usize {
    match b.get(j) {
        Some(b'\n' | b'\r') => 1,
        Some(b'\\') if matches!(b.get(j + 1), Some(b'n' | b'r')) => 2,
        _ => 0,
    }
}

/// The end of a cut-off PEM body: the lines after the header that look
/// like PEM (base64 lines, `Proc-Type:`/`DEK-Info:` headers), up to `limit`.
fn pem_body_end(b: &[u8], header_end: usize, limit: usize) -> usize {
    let mut j = header_end;
    let mut last = header_end;
    loop {
        let mut breaks = 0;
        loop {
            let n = line_break(b, j);
            if n == 0 || j + n > limit {
                break;
            }
            j += n;
            breaks += 1;
        }
        if breaks == 0 && j != header_end {
            return last;
        }
        let ls = j;
        if b[ls..limit].starts_with(b"Proc-Type:") || b[ls..limit].starts_with(b"DEK-Info:") {
            while j < limit && line_break(b, j) == 0 {
                j += 1;
            }
            last = j;
            continue;
        }
        while j < limit && is_b64(b[j]) {
            j += 1;
        }
        // A body line is all base64 up to a line break (or the cap / end).
        if j == ls || (j < limit && line_break(b, j) == 0) {
            return last;
        }
        last = j;
        if j >= limit {
            return last;
        }
    }
}

/// A PEM private-key block starting at `p` (the `-----BEGIN `); its end.
fn pem_at(b: &[u8], p: usize) -> Option<usize> {
    let ls = p + 11;
    let le = ls + memmem::find(&b[ls..b.len().min(ls + 64)], b"-----")?;
    if !is_private_label(&b[ls..le]) {
        return None;
    }
    let header_end = le + 5;
    let limit = b.len().min(p + PEM_MAX_SPAN);
    if let Some(q) = memmem::find(&b[header_end..limit], b"-----END ") {
        let fs = header_end + q + 9;
        if let Some(fe) = memmem::find(&b[fs..limit.min(fs + 64)], b"-----") {
            if is_private_label(&b[fs..fs + fe]) {
                return Some(fs + fe + 5);
            }
        }
    }
    // No footer in reach: cover the body that is there.
    Some(pem_body_end(b, header_end, limit))
}

// ---------------------------------------------------------------------------
// JWTs.

fn scan_jwts(b: &[u8], out: &mut Vec<Match>) {
    let mut floor = 0;
    for s in memmem::find_iter(b, b"eyJ") {
        if s < floor {
            continue;
        }
        if let Some(e) = jwt_at(b, s) {
            out.push(Match {
                detector: DetectorKind::Jwt,
                start: s,
                end: e,
            });
            floor = e;
        }
    }
}

/// Decode unpadded base64url (RFC 4648 §5). `None` on a bad byte or length.
pub(crate) fn b64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn json_object(bytes: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice::<serde_json::Value>(bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

fn jwt_at(b: &[u8], s: usize) -> Option<usize> {
    if back(b, s, 1).is_some_and(|c| is_b64url(c) || c == b'.') {
        return None;
    }
    let cap = b.len().min(s + JWT_MAX_SPAN);
    let mut segs = [(0usize, 0usize); 5];
    let mut n = 0;
    let mut j = s;
    let mut truncated = false;
    loop {
        let st = j;
        while j < cap && is_b64url(b[j]) {
            j += 1;
        }
        segs[n] = (st, j);
        n += 1;
        if j == cap && b.get(cap).is_some_and(|&c| is_b64url(c) || c == b'.') {
            truncated = true;
            break;
        }
        if n < 5 && j < cap && b[j] == b'.' {
            j += 1;
        } else {
            break;
        }
    }
    // A sentence-final dot after the signature is not a fourth segment.
    if !truncated && n == 4 && segs[3].0 == segs[3].1 {
        n = 3;
    }
    let (h0, h1) = segs[0];
    if h1 - h0 > 1024 {
        return None;
    }
    let header = json_object(&b64url_decode(&b[h0..h1])?)?;
    if !header.get("alg").is_some_and(|v| v.is_string()) {
        return None;
    }
    if truncated {
        // Check what we can see of the payload: it must open a JSON object.
        if n < 2 {
            return None;
        }
        let (p0, p1) = segs[1];
        let head = &b[p0..p1.min(p0 + 256)];
        let head = &head[..head.len() / 4 * 4];
        let decoded = b64url_decode(head)?;
        let first = decoded.iter().find(|c| !c.is_ascii_whitespace());
        return (first == Some(&b'{')).then_some(cap);
    }
    let end = match n {
        3 => {
            let (p0, p1) = segs[1];
            if p0 == p1 {
                return None;
            }
            json_object(&b64url_decode(&b[p0..p1])?)?;
            segs[2].1
        }
        5 if header.contains_key("enc") => segs[4].1,
        _ => return None,
    };
    if b.get(end).is_some_and(|&c| is_word(c)) {
        return None;
    }
    Some(end)
}

// ---------------------------------------------------------------------------
// Secret assignments.

fn scan_assignments(b: &[u8], out: &mut Vec<Match>) {
    let mut floor = 0;
    for op in memchr::memchr2_iter(b'=', b':', b) {
        if op < floor {
            continue;
        }
        if let Some((s, e)) = assignment_at(b, op) {
            if s >= floor {
                out.push(Match {
                    detector: DetectorKind::SecretAssignment,
                    start: s,
                    end: e,
                });
                floor = e;
            }
        }
    }
}

#[inline]
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

#[inline]
fn is_unquoted_value(c: u8) -> bool {
    (0x21..0x7f).contains(&c)
        && !matches!(
            c,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b')' | b']' | b'}' | b'<' | b'>'
        )
}

fn find_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn starts_ci(hay: &[u8], p: &[u8]) -> bool {
    hay.len() >= p.len() && hay[..p.len()].eq_ignore_ascii_case(p)
}

/// Substrings of a normalised key (lower-case, `_-.` removed) that mark it
/// as holding a secret.
const KEY_WORDS: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"token",
    b"apikey",
    b"accesskey",
    b"privatekey",
    b"authkey",
    b"signingkey",
    b"encryptionkey",
    b"masterkey",
    b"sessionkey",
    b"credential",
    b"authorization",
];

/// Normalised keys that are secrets on their own.
const KEY_EXACT: &[&[u8]] = &[b"pwd", b"pass", b"pw", b"auth", b"key", b"bearer"];

/// Normalised key endings that make the value metadata about a secret.
const KEY_META_SUFFIXES: &[&[u8]] = &[
    b"count",
    b"tokens",
    b"type",
    b"url",
    b"uri",
    b"endpoint",
    b"limit",
    b"length",
    b"len",
    b"expiry",
    b"expires",
    b"expiresat",
    b"expiresin",
    b"expiration",
    b"ttl",
    b"policy",
    b"file",
    b"path",
    b"dir",
    b"name",
    b"hint",
    b"usage",
    b"size",
    b"format",
    b"field",
    b"header",
    b"id",
    b"ids",
    b"hash",
    b"sha",
    b"digest",
    b"checksum",
    b"fingerprint",
    b"prefix",
    b"enabled",
    b"required",
    b"min",
    b"max",
    b"version",
    b"label",
    b"description",
    b"placeholder",
    b"env",
    b"var",
    b"location",
    b"ref",
    b"arn",
];

/// Whether `key` names a secret (see the module documentation).
pub fn key_names_secret(key: &[u8]) -> bool {
    let mut norm = [0u8; MAX_KEY];
    let mut n = 0;
    for &c in key.iter().filter(|c| c.is_ascii_alphanumeric()) {
        if n == MAX_KEY {
            return false;
        }
        norm[n] = c.to_ascii_lowercase();
        n += 1;
    }
    let k = &norm[..n];
    if !(KEY_EXACT.iter().any(|x| bytes_eq(k, x)) || KEY_WORDS.iter().any(|w| bytes_contain(k, w)))
    {
        return false;
    }
    !KEY_META_SUFFIXES
        .iter()
        .any(|s| k.len() > s.len() && bytes_eq(&k[k.len() - s.len()..], s))
}

// Keys and keywords are a few bytes long: a byte loop beats a call to
// memcmp per comparison, and this runs at every `:` and `=` of the text.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[inline]
fn bytes_contain(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len()
        && (0..=hay.len() - needle.len())
            .any(|i| hay[i] == needle[0] && bytes_eq(&hay[i..i + needle.len()], needle))
}

/// Values that are placeholders or words, never secrets.
const STOP_VALUES: &[&[u8]] = &[
    b"true",
    b"false",
    b"null",
    b"none",
    b"nil",
    b"undefined",
    b"required",
    b"optional",
    b"password",
    b"secret",
    b"token",
    b"redacted",
    b"placeholder",
    b"hidden",
    b"string",
    b"example",
    b"default",
    b"string.empty",
];
const PLACEHOLDER_PREFIXES: &[&[u8]] = &[
    b"your",
    b"<",
    b"${",
    b"{{",
    b"$(",
    b"%(",
    b"%{",
    b"xxx",
    b"***",
    b"...",
    b"changeme",
    b"$",
];
const PLACEHOLDER_INNER: &[&[u8]] = &[
    b"xxxx",
    b"****",
    b"...",
    b"${",
    b"{{",
    b"://",
    b"<",
    b">",
    b"(",
    b"\xe2\x80\xa6",
];

/// Shannon entropy of `v` in bits per byte.
pub fn shannon_entropy(v: &[u8]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &c in v {
        counts[usize::from(c)] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Whether an assignment value looks like a real secret (see the module
/// documentation for the rules).
pub fn value_looks_secret(v: &[u8]) -> bool {
    let len = v.len();
    if !(ASSIGNMENT_MIN_LEN..=ASSIGNMENT_MAX_SPAN).contains(&len)
        || !v.iter().all(|c| (0x20..0x7f).contains(c))
    {
        return false;
    }
    if STOP_VALUES.iter().any(|s| s.eq_ignore_ascii_case(v))
        || PLACEHOLDER_PREFIXES.iter().any(|p| starts_ci(v, p))
        || PLACEHOLDER_INNER.iter().any(|p| find_ci(v, p))
        || is_uuid(v)
    {
        return false;
    }
    // ENV_VAR_NAME
    if v[0].is_ascii_uppercase()
        && v.contains(&b'_')
        && v.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
    {
        return false;
    }
    // dotted.identifier.path
    if v.contains(&b'.')
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
        && v.split(|&c| c == b'.').all(|seg| {
            seg.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        })
    {
        return false;
    }
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let digit = v.iter().any(u8::is_ascii_digit);
    let symbol = v.iter().any(|c| !c.is_ascii_alphanumeric());
    let classes =
        usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(symbol);
    if classes < 2 || !(digit || classes >= 3) {
        return false;
    }
    let all_hex = v.iter().all(u8::is_ascii_hexdigit);
    let floor = if len >= 16 && !all_hex {
        ENTROPY_MIN_LONG
    } else {
        ENTROPY_MIN_SHORT.min(0.9 * (len as f64).log2())
    };
    shannon_entropy(v) >= floor
}

fn assignment_at(b: &[u8], op: usize) -> Option<(usize, usize)> {
    let prev = back(b, op, 1);
    let next = b.get(op + 1).copied();
    let (key_end, mut v) = if b[op] == b'=' {
        if next == Some(b'=') || matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) {
            return None;
        }
        let ke = if prev == Some(b':') { op - 1 } else { op };
        (ke, op + 1 + usize::from(next == Some(b'>')))
    } else {
        if matches!(next, Some(b':' | b'=')) || prev == Some(b':') {
            return None;
        }
        if next == Some(b'/') && b.get(op + 2) == Some(&b'/') {
            return None;
        }
        (op, op + 1)
    };

    // The key, leftwards: spaces, an optional closing quote, key bytes.
    let mut k = key_end;
    while k > 0 && matches!(b[k - 1], b' ' | b'\t') && key_end - k < 4 {
        k -= 1;
    }
    if k > 0 && matches!(b[k - 1], b'"' | b'\'') {
        k -= 1;
    }
    let kend = k;
    while k > 0 && is_key_char(b[k - 1]) && kend - k <= MAX_KEY {
        k -= 1;
    }
    if k == kend || kend - k > MAX_KEY || !key_names_secret(&b[k..kend]) {
        return None;
    }

    // The value.
    let mut sp = 0;
    while v < b.len() && matches!(b[v], b' ' | b'\t') && sp < 8 {
        v += 1;
        sp += 1;
    }
    let quote = match b.get(v) {
        Some(&q @ (b'"' | b'\'' | b'`')) => {
            v += 1;
            Some(q)
        }
        _ => None,
    };
    for scheme in [&b"bearer "[..], b"basic ", b"token ", b"bot "] {
        if starts_ci(&b[v.min(b.len())..], scheme) {
            v += scheme.len();
            break;
        }
    }
    let limit = b.len().min(v + ASSIGNMENT_MAX_SPAN + 1);
    let mut e = v;
    match quote {
        Some(q) => {
            while e < limit && b[e] != q && b[e] != b'\n' && b[e] != b'\r' {
                e += 1;
            }
            if b.get(e) != Some(&q) {
                return None;
            }
        }
        None => {
            while e < limit && is_unquoted_value(b[e]) {
                e += 1;
            }
            if e - v > ASSIGNMENT_MAX_SPAN || b.get(e) == Some(&b'(') {
                return None;
            }
            while e > v && b[e - 1] == b'.' {
                e -= 1;
            }
        }
    }
    value_looks_secret(&b[v..e]).then_some((v, e))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{found, found_all};
    use super::*;

    fn kind_of(text: &str) -> Vec<(DetectorKind, String)> {
        found_all(text)
    }

    fn only(kind: DetectorKind, text: &str) -> Vec<String> {
        found(kind, text)
    }

    const GHP: &str = "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";

    #[test]
    fn finds_aws_access_key_ids() {
        for k in [
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "AKIA2E0A8F3B244C9986",
        ] {
            assert_eq!(
                only(DetectorKind::AwsAccessKey, &format!("key={k}\n")),
                vec![k.to_string()],
                "{k}"
            );
        }
    }

    #[test]
    fn rejects_aws_lookalikes() {
        for t in [
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLEX",
            "xAKIAIOSFODNN7EXAMPLE",
            "AKIAiosfodnn7example",
            "AKIDIOSFODNN7EXAMPLE",
        ] {
            assert!(only(DetectorKind::AwsAccessKey, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn finds_github_tokens_of_every_prefix() {
        for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            let t = format!("{p}{}", &GHP[4..]);
            assert_eq!(
                only(DetectorKind::GithubToken, &format!("export GH_TOKEN={t}")),
                vec![t.clone()],
                "{t}"
            );
        }
        let pat = "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd";
        assert_eq!(
            only(DetectorKind::GithubToken, &format!("token: {pat}")),
            vec![pat]
        );
    }

    #[test]
    fn rejects_short_or_glued_github_prefixes() {
        assert!(only(DetectorKind::GithubToken, "ghp_short123").is_empty());
        assert!(only(DetectorKind::GithubToken, &format!("x{GHP}")).is_empty());
        assert!(only(DetectorKind::GithubToken, &format!("{GHP}_")).is_empty());
        assert!(only(DetectorKind::GithubToken, "github_pat_tooshort").is_empty());
    }

    #[test]
    fn finds_slack_tokens() {
        for t in [
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxp-1234-5678-abcdef",
            "xoxe-1-abcdefghij123",
        ] {
            assert_eq!(
                only(DetectorKind::SlackToken, &format!("SLACK={t};")),
                vec![t.to_string()],
                "{t}"
            );
        }
        assert!(only(DetectorKind::SlackToken, "xoxb-abcdefghijklmnop").is_empty());
        assert!(only(DetectorKind::SlackToken, "xoxz-123456789012").is_empty());
    }

    #[test]
    fn finds_openai_keys_legacy_and_project() {
        for k in [
            "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zT3BlbkFJ",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Q-7rT",
            "sk-svcacct-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe",
            "sk-0123456789abcdef0123456789abcdef",
            "sk-abc123def456ghi789jkl012mno345pqr678",
        ] {
            assert_eq!(
                only(DetectorKind::OpenAiKey, &format!("OPENAI_API_KEY=\"{k}\"")),
                vec![k.to_string()],
                "{k}"
            );
        }
    }

    #[test]
    fn rejects_openai_lookalikes() {
        for t in [
            "sk-learn",
            "task-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "sk-this-is-not-a-real-key-at-all",
            "sk-learn-compatible-estimator-2024",
            "sk-short1A",
            "sk-abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(only(DetectorKind::OpenAiKey, t).is_empty(), "{t}");
        }
    }

    #[test]
    fn finds_anthropic_keys_and_not_as_openai() {
        let k = "sk-ant-api03-Xy9_ab12CD34ef56GH78ij90KL12mn34OP56qr78ST90uv12WX34yz56-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AA";
        assert_eq!(
            kind_of(&format!("ANTHROPIC_API_KEY={k}")),
            vec![(DetectorKind::AnthropicKey, k.to_string())]
        );
        assert!(only(DetectorKind::AnthropicKey, "sk-ant-").is_empty());
        assert!(only(
            DetectorKind::AnthropicKey,
            "sk-ant-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        )
        .is_empty());
    }

    #[test]
    fn finds_stripe_live_and_test_keys() {
        for k in [
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_51H8abcDEF0123456789",
            "pk_test_TYooMQauvdEDq54NiTphI7jx",
        ] {
            assert_eq!(
                only(DetectorKind::StripeKey, &format!("stripe.api_key = '{k}'")),
                vec![k.to_string()],
                "{k}"
            );
        }
        assert!(only(DetectorKind::StripeKey, "sk_live_short").is_empty());
        assert!(only(DetectorKind::StripeKey, "ask_live_4eC39HqLyjWDarjtT1zdp7dc").is_empty());
    }

    #[test]
    fn finds_google_api_keys_of_exact_length() {
        let k = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI";
        assert_eq!(k.len(), 39);
        assert_eq!(
            only(DetectorKind::GoogleApiKey, &format!("?key={k}&q=1")),
            vec![k]
        );
        assert!(only(DetectorKind::GoogleApiKey, &format!("{k}X")).is_empty());
        assert!(only(DetectorKind::GoogleApiKey, &k[..38]).is_empty());
    }

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500P\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn finds_pem_private_key_blocks_of_each_flavour() {
        for label in [
            "RSA PRIVATE KEY",
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "DSA PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ] {
            let block = format!("-----BEGIN {label}-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END {label}-----");
            let text = format!("here:\n{block}\nthanks");
            assert_eq!(
                only(DetectorKind::PrivateKey, &text),
                vec![block.clone()],
                "{label}"
            );
        }
    }

    #[test]
    fn finds_pem_block_with_escaped_newlines() {
        let block = PEM.replace('\n', "\\n");
        assert_eq!(
            only(DetectorKind::PrivateKey, &format!("\"key\": \"{block}\"")),
            vec![block.clone()]
        );
    }

    #[test]
    fn truncated_pem_block_covers_the_body_that_is_there() {
        let cut =
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7";
        assert_eq!(
            only(
                DetectorKind::PrivateKey,
                &format!("{cut}\n\nand then prose.")
            ),
            vec![cut]
        );
        assert_eq!(only(DetectorKind::PrivateKey, cut), vec![cut]);
    }

    #[test]
    fn pem_span_is_capped() {
        let body = "A".repeat(PEM_MAX_SPAN * 2);
        let text = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
        let got = only(DetectorKind::PrivateKey, &text);
        assert_eq!(got.len(), 1);
        assert!(got[0].len() <= PEM_MAX_SPAN);
    }

    #[test]
    fn rejects_public_keys_and_certificates() {
        for label in [
            "PUBLIC KEY",
            "CERTIFICATE",
            "RSA PUBLIC KEY",
            "CERTIFICATE REQUEST",
        ] {
            let t = format!(
                "-----BEGIN {label}-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END {label}-----"
            );
            assert!(only(DetectorKind::PrivateKey, &t).is_empty(), "{label}");
        }
    }

    // {"alg":"HS256","typ":"JWT"} . {"sub":"1234567890","name":"John Doe","iat":1516239022}
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    #[test]
    fn finds_jwts_in_headers_json_and_prose() {
        assert_eq!(
            only(DetectorKind::Jwt, &format!("Authorization: Bearer {JWT}")),
            vec![JWT]
        );
        assert_eq!(
            only(DetectorKind::Jwt, &format!("{{\"id_token\":\"{JWT}\"}}")),
            vec![JWT]
        );
        assert_eq!(
            only(DetectorKind::Jwt, &format!("token is {JWT}.")),
            vec![JWT]
        );
        assert_eq!(
            only(DetectorKind::Jwt, &format!("?jwt={JWT}&x=1")),
            vec![JWT]
        );
    }

    #[test]
    fn jwt_in_an_authorization_assignment_is_reported_as_jwt_only() {
        assert_eq!(
            kind_of(&format!("Authorization: Bearer {JWT}")),
            vec![(DetectorKind::Jwt, JWT.to_string())]
        );
    }

    #[test]
    fn finds_unsigned_jwts() {
        // {"alg":"none"} . {"sub":"x"} . (empty)
        let t = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert_eq!(only(DetectorKind::Jwt, &format!("t={t} ok")), vec![t]);
    }

    #[test]
    fn finds_jwe_with_five_segments() {
        // {"alg":"RSA-OAEP","enc":"A256GCM"}
        let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji.XFBoMYUZodetZdvTiFvSkQ";
        assert_eq!(only(DetectorKind::Jwt, jwe), vec![jwe]);
    }

    #[test]
    fn rejects_jwt_lookalikes() {
        // Header without "alg": {"typ":"JWT"}
        let no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln";
        assert!(only(DetectorKind::Jwt, no_alg).is_empty());
        // Payload that is not JSON ("hello").
        assert!(only(DetectorKind::Jwt, "eyJhbGciOiJIUzI1NiJ9.aGVsbG8.c2ln").is_empty());
        // Two segments only.
        assert!(only(DetectorKind::Jwt, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0").is_empty());
        // Base64 of a JSON object on its own.
        assert!(only(DetectorKind::Jwt, "eyJmb28iOiAiYmFyIn0=").is_empty());
        // Glued.
        assert!(only(DetectorKind::Jwt, &format!("x{JWT}")).is_empty());
    }

    #[test]
    fn over_long_jwt_is_reported_up_to_the_cap() {
        let claims = format!("{{\"sub\":\"x\",\"pad\":\"{}\"}}", "a".repeat(3000));
        let payload = b64url_encode(claims.as_bytes());
        let t = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl");
        let got = only(DetectorKind::Jwt, &format!("Bearer {t}"));
        assert_eq!(got, vec![t[..JWT_MAX_SPAN].to_string()]);
    }

    fn b64url_encode(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::new();
        for c in data.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, &x)| a | (u32::from(x) << (16 - 8 * i)));
            for i in 0..=c.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        s
    }

    #[test]
    fn b64url_round_trips() {
        for d in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"{\"alg\":\"HS256\"}",
        ] {
            assert_eq!(b64url_decode(b64url_encode(d).as_bytes()).unwrap(), d);
        }
        assert!(b64url_decode(b"abcde").is_none());
        assert!(b64url_decode(b"ab$d").is_none());
    }

    fn assigned(text: &str) -> Vec<String> {
        only(DetectorKind::SecretAssignment, text)
    }

    #[test]
    fn finds_high_entropy_assignments_in_many_syntaxes() {
        let v = "Xk9#mQ2$vL7pR4tW";
        for t in [
            format!("password={v}"),
            format!("PASSWORD = {v}"),
            format!("db_password: {v}"),
            format!("\"password\": \"{v}\""),
            format!("'api_key' => '{v}'"),
            format!("secret := \"{v}\""),
            format!("export CLIENT_SECRET={v}"),
            format!("spring.datasource.password={v}"),
            format!("X-Api-Key: {v}"),
            format!("https://x.example/cb?access_token={v}&state=1"),
            format!("<td>token: {v}</td>"),
        ] {
            assert_eq!(assigned(&t), vec![v.to_string()], "{t}");
        }
    }

    #[test]
    fn finds_aws_secret_key_and_hex_api_keys_by_keyword() {
        let aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            assigned(&format!("aws_secret_access_key = {aws}")),
            vec![aws]
        );
        let hex = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(assigned(&format!("api_key: {hex}")), vec![hex]);
    }

    #[test]
    fn skips_the_auth_scheme_word() {
        let v = "dXNlcjpwYXNzd29yZDEyMw==";
        assert_eq!(assigned(&format!("Authorization: Basic {v}")), vec![v]);
        let v = "Abc123xyzDEF456ghiJKL";
        assert_eq!(assigned(&format!("authorization: Bearer {v}")), vec![v]);
    }

    #[test]
    fn finds_short_passwords_that_still_look_random() {
        assert_eq!(assigned("password=P@ssw0rd"), vec!["P@ssw0rd"]);
        assert_eq!(assigned("pwd: Tr0ub4dor#3"), vec!["Tr0ub4dor#3"]);
        // Unquoted, `&` ends a value (URL query syntax); quoted, it does not.
        assert_eq!(assigned("pwd=\"Tr0ub4dor&3\""), vec!["Tr0ub4dor&3"]);
    }

    #[test]
    fn rejects_low_entropy_and_word_values() {
        for t in [
            "password=hunter2",
            "password: aaaaaaaaaaaa1",
            "password=correcthorsebatterystaple",
            "token: abcabcabcabc1",
            "secret=mysecretvalue",
            "Password: required",
        ] {
            assert!(assigned(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_placeholders_and_references() {
        for t in [
            "password=<your-password>",
            "api_key=YOUR_API_KEY_HERE",
            "token=${GITHUB_TOKEN}",
            "secret: {{ secrets.DEPLOY_KEY }}",
            "password: ********",
            "api_key=xxxxxxxxxxxxxxxx",
            "token=$TOKEN_VALUE1",
            "password = getpass.getpass()",
            "token = os.environ.get",
            "api_key = settings.API_KEY",
            "secret_key=get_secret(name2)",
            "password: changeme123",
            "token: null",
            "token_url: https://auth.example.com/oauth2/token",
        ] {
            assert!(assigned(t).is_empty(), "{t}: {:?}", assigned(t));
        }
    }

    #[test]
    fn rejects_uuids_git_shas_and_digests_as_metadata() {
        assert!(assigned("token: 550e8400-e29b-41d4-a716-446655440000").is_empty());
        assert!(assigned("commit: 3f786850e387550fdab836ed7e6dc881de23001b").is_empty());
        assert!(assigned(
            "password_hash: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        )
        .is_empty());
        assert!(assigned(
            "sha256 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        )
        .is_empty());
    }

    #[test]
    fn secret_kinds_ignore_hex_digests_uuids_and_base64_prose() {
        for t in [
            "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
            "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            "request id 550e8400-e29b-41d4-a716-446655440000",
            "data: SGVsbG8sIHRoaXMgaXMganVzdCBvcmRpbmFyeSB0ZXh0IGVuY29kZWQu",
        ] {
            let got = kind_of(t);
            assert!(got.is_empty(), "{t}: {got:?}");
        }
    }

    #[test]
    fn rejects_metadata_keys() {
        for t in [
            "max_tokens: 4096",
            "token_type: Bearer",
            "prompt_tokens=1234",
            "secret_name: prod-db-pass-2024",
            "token_count: 12345678",
            "password_min_length: 12",
        ] {
            assert!(assigned(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_comparisons_and_paths() {
        let v = "Xk9#mQ2$vL7pR4tW";
        for t in [
            format!("if password == \"{v}\""),
            format!("password != {v}"),
            format!("std::token::{v}"),
            format!("token <= {v}"),
        ] {
            assert!(assigned(&t).is_empty(), "{t}");
        }
    }

    #[test]
    fn key_names_secret_normalises_case_and_separators() {
        for k in [
            "password",
            "DB_PASSWORD",
            "apiKey",
            "api-key",
            "x-api-key",
            "client.secret",
            "GITHUB_TOKEN",
            "pwd",
            "AccessKey",
            "auth",
        ] {
            assert!(key_names_secret(k.as_bytes()), "{k}");
        }
        for k in [
            "username",
            "max_tokens",
            "token_type",
            "keyboard",
            "monkey",
            "bypass",
            "password_hash",
            "passenger",
        ] {
            assert!(!key_names_secret(k.as_bytes()), "{k}");
        }
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy(b"0123456789abcdef") - 4.0).abs() < 1e-9);
    }

    #[test]
    fn assignment_value_is_capped() {
        let long = "Ab1$".repeat(100);
        assert!(assigned(&format!("token={long}")).is_empty());
    }
}
