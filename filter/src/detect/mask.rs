//! Masked samples for audit events and replay reports: enough for a person
//! to recognise *what kind* of value was found, never the value itself.
//!
//! | kind | sample |
//! |---|---|
//! | email | `j***@e***.com` (first letters, TLD) |
//! | card | `****-****-****-1234` (last four; fixed shape hides the length) |
//! | phone | `(***) ***-**67` (format kept, last two digits) |
//! | SSN | `***-**-****` (nothing) |
//! | IBAN | `DE****************3000` (country and last four) |
//! | IPv4 / IPv6 | `192.*.*.*` / `2001:*` (first octet or group) |
//! | provider keys, PEM, JWT | the public prefix + `***` (`sk-proj-***`, `AKIA***`, `-----BEGIN RSA PRIVATE KEY-----***`, `eyJ***`) |
//! | secret assignments, custom patterns, anything else | `***` |
//!
//! Every function here is total: any input, however malformed, gives a
//! sample that does not contain more of it than the table says.

use crate::finding::DetectorKind;

/// The audit sample for a value `raw` found by `kind`.
pub fn mask(kind: DetectorKind, raw: &str) -> String {
    match kind {
        DetectorKind::Email => mask_email(raw),
        DetectorKind::Card => mask_card(raw),
        DetectorKind::Phone => keep_last_digits(raw, 2),
        DetectorKind::Ssn => "***-**-****".to_string(),
        DetectorKind::Iban => mask_iban(raw),
        DetectorKind::Ipv4 => match raw.split_once('.') {
            Some((first, _)) if first.len() <= 3 && first.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{first}.*.*.*")
            }
            _ => "*.*.*.*".to_string(),
        },
        DetectorKind::Ipv6 => match raw.split_once(':') {
            Some((first, _))
                if first.len() <= 4
                    && first.bytes().all(|b| b.is_ascii_hexdigit())
                    && !first.is_empty() =>
            {
                format!("{first}:*")
            }
            _ => "*:*".to_string(),
        },
        DetectorKind::AwsAccessKey
        | DetectorKind::GithubToken
        | DetectorKind::SlackToken
        | DetectorKind::OpenAiKey
        | DetectorKind::AnthropicKey
        | DetectorKind::StripeKey
        | DetectorKind::GoogleApiKey
        | DetectorKind::PrivateKey
        | DetectorKind::Jwt => format!("{}***", secret_prefix(kind, raw)),
        _ => "***".to_string(),
    }
}

/// The documented, non-secret prefix of a token found by `kind` (`sk-proj-`,
/// `ghp_`, `AKIA`, the PEM header line…), or `""` when `raw` does not start
/// with the expected prefix.
pub fn secret_prefix(kind: DetectorKind, raw: &str) -> &str {
    let take = |n: usize| raw.get(..n).unwrap_or("");
    let first_of = |cands: &[&'static str]| {
        cands
            .iter()
            .copied()
            .find(|c| raw.starts_with(c))
            .unwrap_or("")
    };
    match kind {
        DetectorKind::AwsAccessKey => first_of(&["AKIA", "ASIA", "ABIA", "ACCA"]),
        DetectorKind::GithubToken => {
            first_of(&["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"])
        }
        DetectorKind::SlackToken
            if raw.starts_with("xox") && raw.as_bytes().get(4) == Some(&b'-') =>
        {
            take(5)
        }
        DetectorKind::OpenAiKey => {
            first_of(&["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-", "sk-"])
        }
        DetectorKind::AnthropicKey => first_of(&["sk-ant-"]),
        DetectorKind::StripeKey => first_of(&[
            "sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_",
        ]),
        DetectorKind::GoogleApiKey => first_of(&["AIza"]),
        DetectorKind::PrivateKey if raw.starts_with("-----BEGIN ") => match raw[11..].find("-----")
        {
            Some(p) if p <= 64 => &raw[..11 + p + 5],
            _ => "",
        },
        DetectorKind::Jwt => first_of(&["eyJ"]),
        _ => "",
    }
}

fn first_char(s: &str) -> String {
    s.chars().next().map(String::from).unwrap_or_default()
}

fn mask_email(raw: &str) -> String {
    let Some((local, domain)) = raw.rsplit_once('@') else {
        return "***".to_string();
    };
    let tld = domain.rsplit_once('.').map(|(_, t)| t).unwrap_or("");
    if tld.is_empty() || tld.len() > 24 {
        return format!("{}***@***", first_char(local));
    }
    format!("{}***@{}***.{}", first_char(local), first_char(domain), tld)
}

fn last_digits(raw: &str, n: usize) -> String {
    let d: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
    if d.len() <= n {
        return String::new();
    }
    d[d.len() - n..].iter().collect()
}

fn mask_card(raw: &str) -> String {
    let last = last_digits(raw, 4);
    if last.is_empty() {
        return "****-****-****-****".to_string();
    }
    format!("****-****-****-{last}")
}

/// Every digit but the last `keep` becomes `*`; other characters stay (the
/// shape of the number tells a reader it was a phone).
pub(crate) fn keep_last_digits(raw: &str, keep: usize) -> String {
    let total = raw.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    raw.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if total > keep && seen > total - keep {
                    c
                } else {
                    '*'
                }
            } else if c.is_ascii_punctuation() || c == ' ' {
                c
            } else {
                '*'
            }
        })
        .collect()
}

fn mask_iban(raw: &str) -> String {
    let compact: Vec<char> = raw.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if compact.len() < 8 {
        return "***".to_string();
    }
    let cc: String = compact[..2]
        .iter()
        .filter(|c| c.is_ascii_uppercase())
        .collect();
    let last: String = compact[compact.len() - 4..].iter().collect();
    format!("{cc}{}{last}", "*".repeat(compact.len() - 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keeps_first_letters_and_tld_only() {
        assert_eq!(
            mask(DetectorKind::Email, "john.doe@example.com"),
            "j***@e***.com"
        );
        assert_eq!(
            mask(DetectorKind::Email, "a@mail.example.co.uk"),
            "a***@m***.uk"
        );
        assert_eq!(mask(DetectorKind::Email, "not-an-email"), "***");
    }

    #[test]
    fn card_keeps_last_four_in_a_fixed_shape() {
        assert_eq!(
            mask(DetectorKind::Card, "4111 1111 1111 1234"),
            "****-****-****-1234"
        );
        assert_eq!(
            mask(DetectorKind::Card, "378282246310005"),
            "****-****-****-0005"
        );
        assert_eq!(mask(DetectorKind::Card, "12"), "****-****-****-****");
    }

    #[test]
    fn phone_keeps_shape_and_last_two_digits() {
        assert_eq!(
            mask(DetectorKind::Phone, "(415) 555-2671"),
            "(***) ***-**71"
        );
        assert_eq!(
            mask(DetectorKind::Phone, "+44 20 7946 0958"),
            "+** ** **** **58"
        );
    }

    #[test]
    fn ssn_reveals_nothing() {
        assert_eq!(mask(DetectorKind::Ssn, "123-45-6789"), "***-**-****");
    }

    #[test]
    fn iban_keeps_country_and_last_four() {
        assert_eq!(
            mask(DetectorKind::Iban, "DE89 3704 0044 0532 0130 00"),
            "DE****************3000"
        );
    }

    #[test]
    fn ip_keeps_first_octet_or_group() {
        assert_eq!(mask(DetectorKind::Ipv4, "192.168.1.10"), "192.*.*.*");
        assert_eq!(mask(DetectorKind::Ipv6, "2001:db8::1"), "2001:*");
        assert_eq!(mask(DetectorKind::Ipv6, "::1"), "*:*");
    }

    #[test]
    fn secrets_keep_only_their_public_prefix() {
        let cases = [
            (
                DetectorKind::OpenAiKey,
                "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
                "sk-proj-***",
            ),
            (
                DetectorKind::OpenAiKey,
                "sk-Ab3dEf6hIj9kLm2nOp5qRs8t",
                "sk-***",
            ),
            (
                DetectorKind::AnthropicKey,
                "sk-ant-api03-abc123",
                "sk-ant-***",
            ),
            (
                DetectorKind::AwsAccessKey,
                "AKIAIOSFODNN7EXAMPLE",
                "AKIA***",
            ),
            (
                DetectorKind::GithubToken,
                "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",
                "ghp_***",
            ),
            (
                DetectorKind::GithubToken,
                "github_pat_11ABC",
                "github_pat_***",
            ),
            (DetectorKind::SlackToken, "xoxb-123-456-abc", "xoxb-***"),
            (
                DetectorKind::StripeKey,
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "sk_live_***",
            ),
            (
                DetectorKind::GoogleApiKey,
                "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
                "AIza***",
            ),
            (DetectorKind::Jwt, "eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJ***"),
            (
                DetectorKind::PrivateKey,
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY-----***",
            ),
        ];
        for (k, raw, want) in cases {
            assert_eq!(mask(k, raw), want, "{k:?}");
        }
    }

    #[test]
    fn assignments_custom_and_unknown_kinds_reveal_nothing() {
        assert_eq!(
            mask(DetectorKind::SecretAssignment, "Xk9#mQ2$vL7pR4tW"),
            "***"
        );
        assert_eq!(mask(DetectorKind::Custom(2), "ACME-123456"), "***");
        assert_eq!(mask(DetectorKind::OpenAiKey, "not a key"), "***");
    }

    #[test]
    fn masks_never_contain_the_raw_value() {
        let raws = [
            (DetectorKind::Email, "john.doe@example.com"),
            (DetectorKind::Card, "4111111111111111"),
            (DetectorKind::Phone, "+14155552671"),
            (DetectorKind::Ssn, "123-45-6789"),
            (DetectorKind::Iban, "DE89370400440532013000"),
            (DetectorKind::Ipv4, "192.168.1.10"),
            (DetectorKind::Ipv6, "2001:db8::1"),
            (DetectorKind::OpenAiKey, "sk-Ab3dEf6hIj9kLm2nOp5qRs8t"),
            (DetectorKind::SecretAssignment, "Xk9#mQ2$vL7pR4tW"),
        ];
        for (k, raw) in raws {
            let m = mask(k, raw);
            assert!(!m.contains(raw), "{k:?}: {m}");
            assert!(m.contains('*'), "{k:?}: {m}");
        }
    }

    #[test]
    fn masking_odd_input_does_not_panic() {
        for k in super::super::STRUCTURED_KINDS {
            for raw in [
                "",
                "é",
                "@",
                "-----BEGIN ",
                "😀😀😀😀😀😀😀😀",
                "x@y.",
                "1.2",
            ] {
                let _ = mask(k, raw);
            }
        }
    }
}
