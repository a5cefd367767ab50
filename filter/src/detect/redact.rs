//! The text that replaces a redacted span, in one of three styles:
//!
//! - [`RedactStyle::Label`]: `[EMAIL]`, `[CARD]`, `[OPENAI_KEY]`… — says what
//!   was there, nothing about which value.
//! - [`RedactStyle::Partial`]: keeps what a human needs to tell values apart
//!   and nothing an attacker can use: a card's last four (`**** **** ****
//!   1111`, separators kept), a phone's last two, an SSN's last four, an
//!   email's first letter and domain (`j***@example.com`), an IP's network
//!   half, a token's public prefix (`sk-proj-***`). Kinds with nothing safe
//!   to keep (secret assignments, PEM blocks, custom patterns) fall back to
//!   the label.
//! - [`RedactStyle::Pseudonym`]: `[EMAIL_3f9a1c]`, a stable token derived
//!   from a keyed SipHash-2-4 of the value's canonical form (an email
//!   lower-cased, a card's or phone's digits, an IBAN without spaces). The
//!   key is per stream ([`PseudonymKey`]), so the same value maps to the same
//!   token throughout one conversation — the model can still tell "the same
//!   person" from "another person" — while tokens cannot be joined across
//!   streams or reversed without the key. 24 bits of hash make a collision
//!   between two values in one stream unlikely (~1 in 16 million per pair);
//!   this is a readability aid, not an identifier.

use super::mask::{keep_last_digits, secret_prefix};
use crate::finding::DetectorKind;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// How a redacted span is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RedactStyle {
    /// `[EMAIL]`.
    #[default]
    Label,
    /// `j***@example.com`, `**** **** **** 1111`.
    Partial,
    /// `[EMAIL_3f9a1c]`, stable within one stream.
    Pseudonym,
}

/// A per-stream key for pseudonyms (128 bits, SipHash's key size).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PseudonymKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

impl PseudonymKey {
    /// A key from two 64-bit halves.
    pub const fn new(k0: u64, k1: u64) -> Self {
        PseudonymKey { k0, k1 }
    }

    /// A key from 16 bytes (little-endian halves).
    pub fn from_bytes(b: [u8; 16]) -> Self {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        hi.copy_from_slice(&b[8..]);
        PseudonymKey {
            k0: u64::from_le_bytes(lo),
            k1: u64::from_le_bytes(hi),
        }
    }

    /// A 64-bit keyed hash of `data` (SipHash-2-4): a MAC for ids the
    /// filter hands out and must recognise later.
    pub fn mac(&self, data: &[u8]) -> u64 {
        siphash24(self.k0, self.k1, data)
    }

    /// A stream's key derived from a long-lived secret (e.g. from the policy
    /// or the host's entropy at start-up) and something unique to the
    /// stream (a request id). Different streams get unrelated keys.
    pub fn derive(secret: &PseudonymKey, stream_id: &[u8]) -> Self {
        let k0 = siphash24(secret.k0, secret.k1, &[b"rheostat-k0:", stream_id].concat());
        let k1 = siphash24(secret.k0, secret.k1, &[b"rheostat-k1:", stream_id].concat());
        PseudonymKey { k0, k1 }
    }
}

/// The label of a detector kind, upper-case without brackets: `EMAIL`,
/// `CARD`, `OPENAI_KEY`, `CUSTOM_3`…
pub fn label(kind: DetectorKind) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        DetectorKind::Email => "EMAIL",
        DetectorKind::Phone => "PHONE",
        DetectorKind::Card => "CARD",
        DetectorKind::Ssn => "SSN",
        DetectorKind::Iban => "IBAN",
        DetectorKind::Ipv4 | DetectorKind::Ipv6 => "IP",
        DetectorKind::AwsAccessKey => "AWS_KEY",
        DetectorKind::GithubToken => "GITHUB_TOKEN",
        DetectorKind::SlackToken => "SLACK_TOKEN",
        DetectorKind::OpenAiKey => "OPENAI_KEY",
        DetectorKind::AnthropicKey => "ANTHROPIC_KEY",
        DetectorKind::StripeKey => "STRIPE_KEY",
        DetectorKind::GoogleApiKey => "GOOGLE_API_KEY",
        DetectorKind::PrivateKey => "PRIVATE_KEY",
        DetectorKind::Jwt => "JWT",
        DetectorKind::SecretAssignment => "SECRET",
        DetectorKind::Custom(i) => return Cow::Owned(format!("CUSTOM_{i}")),
        DetectorKind::BlockedTerm(_) => "BLOCKED",
        DetectorKind::Canary(_) => "CANARY",
        DetectorKind::Fact(_) => "FACT",
        DetectorKind::Topic(_) => "TOPIC",
        DetectorKind::Injection => "INJECTION",
        DetectorKind::Refusal => "REFUSAL",
        DetectorKind::PromptLeak => "PROMPT",
        DetectorKind::Sql => "SQL",
        DetectorKind::MarkdownExfil => "LINK",
        DetectorKind::Link => "LINK",
        DetectorKind::Format => "REDACTED",
    })
}

/// The replacement for `raw`, found by `kind`, in `style`. `key` is only
/// used by [`RedactStyle::Pseudonym`].
pub fn replacement(
    kind: DetectorKind,
    raw: &str,
    style: RedactStyle,
    key: &PseudonymKey,
) -> String {
    replacement_with_label(&label(kind), kind, raw, style, key)
}

/// As [`replacement`], with the label chosen by the caller (a custom
/// pattern's policy name, upper-cased by the caller if it likes).
pub fn replacement_with_label(
    label: &str,
    kind: DetectorKind,
    raw: &str,
    style: RedactStyle,
    key: &PseudonymKey,
) -> String {
    match style {
        RedactStyle::Label => format!("[{label}]"),
        RedactStyle::Pseudonym => pseudonym(label, kind, raw, key),
        RedactStyle::Partial => partial(kind, raw).unwrap_or_else(|| format!("[{label}]")),
    }
}

/// `[LABEL_xxxxxx]`: six hex digits of a keyed hash of the value's canonical
/// form (see [`canonical`]), so formatting variants of one value share a token.
pub fn pseudonym(label: &str, kind: DetectorKind, raw: &str, key: &PseudonymKey) -> String {
    let canon = canonical(kind, raw);
    // Domain-separate by label so one value found by two detectors (or an
    // email and a phone with the same digits) gets unrelated tokens.
    let mut msg = Vec::with_capacity(label.len() + 1 + canon.len());
    msg.extend_from_slice(label.as_bytes());
    msg.push(0);
    msg.extend_from_slice(canon.as_bytes());
    let h = siphash24(key.k0, key.k1, &msg);
    format!("[{label}_{:06x}]", h & 0xFF_FFFF)
}

/// The canonical form of a value for pseudonyms: emails and IPv6 lower-case;
/// cards, phones and SSNs as their digits; IBANs upper-case without spaces;
/// anything else as is.
pub fn canonical(kind: DetectorKind, raw: &str) -> Cow<'_, str> {
    match kind {
        DetectorKind::Email | DetectorKind::Ipv6 => Cow::Owned(raw.to_ascii_lowercase()),
        DetectorKind::Card | DetectorKind::Phone | DetectorKind::Ssn => {
            Cow::Owned(raw.chars().filter(char::is_ascii_digit).collect())
        }
        DetectorKind::Iban => Cow::Owned(
            raw.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase(),
        ),
        _ => Cow::Borrowed(raw),
    }
}

/// Every digit of `raw` except the last `keep` becomes `*`, other characters
/// stay. Returns `None` when there are not more than `keep` digits.
fn keep_digits_shape(raw: &str, keep: usize) -> Option<String> {
    let total = raw.chars().filter(char::is_ascii_digit).count();
    (total > keep).then(|| keep_last_digits(raw, keep))
}

fn partial(kind: DetectorKind, raw: &str) -> Option<String> {
    match kind {
        DetectorKind::Card => keep_digits_shape(raw, 4),
        DetectorKind::Phone => keep_digits_shape(raw, 2),
        DetectorKind::Ssn => keep_digits_shape(raw, 4),
        DetectorKind::Email => {
            let (local, domain) = raw.rsplit_once('@')?;
            let first = local.chars().next()?;
            Some(format!("{first}***@{domain}"))
        }
        DetectorKind::Iban => {
            // Country code and last four kept, spacing kept.
            let n = raw.chars().filter(char::is_ascii_alphanumeric).count();
            if n < 8 {
                return None;
            }
            let mut seen = 0;
            Some(
                raw.chars()
                    .map(|c| {
                        if !c.is_ascii_alphanumeric() {
                            return c;
                        }
                        seen += 1;
                        if seen <= 2 || seen > n - 4 {
                            c
                        } else {
                            '*'
                        }
                    })
                    .collect(),
            )
        }
        DetectorKind::Ipv4 => {
            let parts: Vec<&str> = raw.split('.').collect();
            (parts.len() == 4).then(|| format!("{}.{}.*.*", parts[0], parts[1]))
        }
        DetectorKind::Ipv6 => {
            let head: Vec<&str> = raw.split(':').take(2).filter(|g| !g.is_empty()).collect();
            (!head.is_empty()).then(|| format!("{}:*", head.join(":")))
        }
        DetectorKind::AwsAccessKey
        | DetectorKind::GithubToken
        | DetectorKind::SlackToken
        | DetectorKind::OpenAiKey
        | DetectorKind::AnthropicKey
        | DetectorKind::StripeKey
        | DetectorKind::GoogleApiKey
        | DetectorKind::Jwt => {
            let p = secret_prefix(kind, raw);
            (!p.is_empty()).then(|| format!("{p}***"))
        }
        _ => None,
    }
}

/// SipHash-2-4 (Aumasson & Bernstein), written out so pseudonyms do not
/// depend on std's unspecified `DefaultHasher` algorithm.
pub fn siphash24(k0: u64, k1: u64, m: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let chunks = m.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let mi = u64::from_le_bytes(w);
        v[3] ^= mi;
        round(&mut v);
        round(&mut v);
        v[0] ^= mi;
    }
    let mut last = (m.len() as u64) << 56;
    for (i, &b) in rem.iter().enumerate() {
        last |= u64::from(b) << (8 * i);
    }
    v[3] ^= last;
    round(&mut v);
    round(&mut v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PseudonymKey = PseudonymKey::new(1, 2);

    #[test]
    fn siphash_matches_the_reference_vector() {
        // SipHash paper, appendix A: key 00..0f, message 00..0e.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let k = PseudonymKey::from_bytes(key);
        let msg: Vec<u8> = (0u8..15).collect();
        assert_eq!(siphash24(k.k0, k.k1, &msg), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(k.k0, k.k1, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn label_style_names_the_kind() {
        assert_eq!(
            replacement(DetectorKind::Email, "a@b.co", RedactStyle::Label, &KEY),
            "[EMAIL]"
        );
        assert_eq!(
            replacement(
                DetectorKind::Card,
                "4111111111111111",
                RedactStyle::Label,
                &KEY
            ),
            "[CARD]"
        );
        assert_eq!(
            replacement(DetectorKind::Ipv6, "::1", RedactStyle::Label, &KEY),
            "[IP]"
        );
        assert_eq!(
            replacement(DetectorKind::Custom(7), "x", RedactStyle::Label, &KEY),
            "[CUSTOM_7]"
        );
        assert_eq!(
            replacement_with_label(
                "EMPLOYEE_ID",
                DetectorKind::Custom(7),
                "x",
                RedactStyle::Label,
                &KEY
            ),
            "[EMPLOYEE_ID]"
        );
    }

    #[test]
    fn partial_card_keeps_last_four_and_separators() {
        assert_eq!(
            replacement(
                DetectorKind::Card,
                "4111 1111 1111 1234",
                RedactStyle::Partial,
                &KEY
            ),
            "**** **** **** 1234"
        );
        assert_eq!(
            replacement(
                DetectorKind::Card,
                "4111111111111234",
                RedactStyle::Partial,
                &KEY
            ),
            "************1234"
        );
    }

    #[test]
    fn partial_phone_ssn_email_iban_ip() {
        let p = |k, r| replacement(k, r, RedactStyle::Partial, &KEY);
        assert_eq!(
            p(DetectorKind::Phone, "+1 (415) 555-2671"),
            "+* (***) ***-**71"
        );
        assert_eq!(p(DetectorKind::Ssn, "123-45-6789"), "***-**-6789");
        assert_eq!(
            p(DetectorKind::Email, "john.doe@example.com"),
            "j***@example.com"
        );
        assert_eq!(
            p(DetectorKind::Iban, "DE89 3704 0044 0532 0130 00"),
            "DE** **** **** **** **30 00"
        );
        assert_eq!(p(DetectorKind::Ipv4, "192.168.1.10"), "192.168.*.*");
        assert_eq!(p(DetectorKind::Ipv6, "2001:db8::1"), "2001:db8:*");
    }

    #[test]
    fn partial_secrets_keep_the_public_prefix() {
        let p = |k, r| replacement(k, r, RedactStyle::Partial, &KEY);
        assert_eq!(
            p(DetectorKind::OpenAiKey, "sk-proj-Ab3dEf6hIj9kLm2nOp5q"),
            "sk-proj-***"
        );
        assert_eq!(
            p(DetectorKind::StripeKey, "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
            "sk_live_***"
        );
    }

    #[test]
    fn partial_falls_back_to_the_label_when_nothing_is_safe_to_keep() {
        let p = |k, r| replacement(k, r, RedactStyle::Partial, &KEY);
        assert_eq!(
            p(DetectorKind::SecretAssignment, "Xk9#mQ2$vL7pR4tW"),
            "[SECRET]"
        );
        assert_eq!(
            p(
                DetectorKind::PrivateKey,
                "-----BEGIN PRIVATE KEY-----\nAAAA"
            ),
            "[PRIVATE_KEY]"
        );
        assert_eq!(p(DetectorKind::Card, "123"), "[CARD]");
    }

    #[test]
    fn pseudonym_is_stable_for_one_value_in_one_stream() {
        let a = replacement(
            DetectorKind::Email,
            "jane@example.com",
            RedactStyle::Pseudonym,
            &KEY,
        );
        let b = replacement(
            DetectorKind::Email,
            "jane@example.com",
            RedactStyle::Pseudonym,
            &KEY,
        );
        assert_eq!(a, b);
        assert!(
            a.starts_with("[EMAIL_") && a.ends_with(']') && a.len() == "[EMAIL_]".len() + 6,
            "{a}"
        );
    }

    #[test]
    fn pseudonym_ignores_formatting_variants() {
        let p = |k, r| replacement(k, r, RedactStyle::Pseudonym, &KEY);
        assert_eq!(
            p(DetectorKind::Email, "Jane@Example.com"),
            p(DetectorKind::Email, "jane@example.com")
        );
        assert_eq!(
            p(DetectorKind::Card, "4111 1111 1111 1111"),
            p(DetectorKind::Card, "4111-1111-1111-1111")
        );
        assert_eq!(
            p(DetectorKind::Iban, "DE89 3704 0044 0532 0130 00"),
            p(DetectorKind::Iban, "DE89370400440532013000")
        );
    }

    #[test]
    fn pseudonym_differs_between_values_and_between_streams() {
        let p =
            |r, k: &PseudonymKey| replacement(DetectorKind::Email, r, RedactStyle::Pseudonym, k);
        assert_ne!(p("jane@example.com", &KEY), p("john@example.com", &KEY));
        let secret = PseudonymKey::new(42, 43);
        let s1 = PseudonymKey::derive(&secret, b"req-1");
        let s2 = PseudonymKey::derive(&secret, b"req-2");
        assert_ne!(s1, s2);
        assert_ne!(p("jane@example.com", &s1), p("jane@example.com", &s2));
        assert_eq!(PseudonymKey::derive(&secret, b"req-1"), s1);
    }

    #[test]
    fn replacements_are_not_detected_again() {
        use super::super::{scan_structured, StructuredSet};
        let values = [
            (DetectorKind::Email, "john.doe@example.com"),
            (DetectorKind::Card, "4111 1111 1111 1111"),
            (DetectorKind::Phone, "+1 (415) 555-2671"),
            (DetectorKind::Ssn, "123-45-6789"),
            (DetectorKind::Iban, "DE89 3704 0044 0532 0130 00"),
            (DetectorKind::Ipv4, "192.168.1.10"),
            (DetectorKind::Ipv6, "2001:db8::1"),
            (
                DetectorKind::OpenAiKey,
                "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w",
            ),
            (DetectorKind::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE"),
        ];
        for (kind, raw) in values {
            for style in [
                RedactStyle::Label,
                RedactStyle::Partial,
                RedactStyle::Pseudonym,
            ] {
                let text = format!("value: {} end", replacement(kind, raw, style, &KEY));
                let mut out = Vec::new();
                scan_structured(&text, &StructuredSet::all(), &mut out);
                assert!(out.is_empty(), "{kind:?} {style:?}: {text} -> {out:?}");
            }
        }
    }

    #[test]
    fn pseudonym_never_contains_the_value() {
        let r = replacement(
            DetectorKind::Ssn,
            "123-45-6789",
            RedactStyle::Pseudonym,
            &KEY,
        );
        assert!(!r.contains("6789"));
    }

    #[test]
    fn style_deserializes_from_lowercase_names() {
        assert_eq!(
            serde_json::from_str::<RedactStyle>("\"pseudonym\"").unwrap(),
            RedactStyle::Pseudonym
        );
        assert_eq!(
            serde_json::from_str::<RedactStyle>("\"label\"").unwrap(),
            RedactStyle::Label
        );
        assert_eq!(RedactStyle::default(), RedactStyle::Label);
    }

    #[test]
    fn key_debug_does_not_print_the_key() {
        assert_eq!(
            format!("{:?}", PseudonymKey::new(1234, 5678)),
            "PseudonymKey(..)"
        );
    }
}
