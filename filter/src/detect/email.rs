//! Email addresses, RFC 5321-ish: `local@domain.tld`.
//!
//! Candidates are found with `memchr` on `@` and expanded both ways, so prose
//! without `@` costs one vectorised pass.
//!
//! - Local part: up to 64 bytes of `[A-Za-z0-9._%+-]` (dot-atom with `+tags`);
//!   no empty, leading, trailing or doubled dot. The rarer RFC 5322 atext
//!   (`!#$&'*/=?^`{|}~`) is left out on purpose: it would swallow `=`, quotes
//!   and slashes of the code around an address (`email='bob@x.org'`).
//!   Leading `.`, `-` and `+` are trimmed off the reported span.
//! - Domain: at least two labels of `[A-Za-z0-9-]` (1–63 bytes, no leading or
//!   trailing `-`), at most 253 bytes; the last label (TLD) is letters only,
//!   two or more, or an IDN punycode `xn--…` label. Addresses are ASCII:
//!   internationalised (UTF-8) local parts and U-label domains are not caught,
//!   so CJK text glued to an address does not become part of it.
//! - Bounded by non-email bytes: the byte after the domain is not
//!   `[A-Za-z0-9_@]`, and the byte before the local part is not `@`.
//!
//! Hard negatives: `@decorator` and `@user` mentions (no local part),
//! `user@localhost` and other single-label hosts (no dot — intranet names are
//! a deliberate miss), `icon@2x.png` and similar asset names (TLD is a file
//! extension), `pkg@1.2.3` (numeric TLD), and `git@github.com:org/repo` (an
//! SSH remote: `:` and a path right after the host).

use super::Context;
use crate::finding::{DetectorKind, Match};

/// RFC 5321: a forward-path is at most 256 bytes including the angle
/// brackets, so an address is at most 254.
pub const MAX_SPAN: usize = 254;

/// One byte left (a stray `@` before the local part); two right (`:` plus a
/// path byte marks an SSH remote).
pub const CONTEXT: Context = Context { left: 1, right: 2 };

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// TLD-shaped file extensions that are not real TLDs: `logo@2x.png`,
/// `bundle@1.0.js`.
const FILE_EXTENSIONS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"tif", b"tiff", b"heic",
    b"avif", b"css", b"js", b"mjs", b"ts", b"tsx", b"jsx", b"json", b"yaml", b"yml", b"toml",
    b"lock", b"txt", b"html", b"htm", b"xml", b"pdf", b"wasm", b"map", b"woff", b"woff2", b"ttf",
    b"otf", b"mp3", b"mp4", b"webm", b"wav",
];

#[inline]
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

#[inline]
fn is_label(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Find email addresses in `text` and append them to `out`.
pub fn scan(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut floor = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < floor {
            continue;
        }
        if let Some((s, e)) = email_at(b, at, floor) {
            out.push(Match {
                detector: DetectorKind::Email,
                start: s,
                end: e,
            });
            floor = e;
        }
    }
}

/// Whether `s` is, as a whole, an address this detector would report.
pub fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    match memchr::memchr(b'@', b) {
        Some(at) => email_at(b, at, 0) == Some((0, b.len())),
        None => false,
    }
}

fn email_at(b: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    // Local part, leftwards. Read one byte past the limit to tell "exactly 64"
    // from "longer".
    let mut s = at;
    while s > floor && is_local(b[s - 1]) && at - s <= MAX_LOCAL {
        s -= 1;
    }
    let mut trimmed = false;
    // A doubled dot cannot be inside a local part: start after the last one.
    if let Some(p) = b[s..at].windows(2).rposition(|w| w == b"..") {
        s += p + 2;
        trimmed = true;
    }
    while s < at && matches!(b[s], b'.' | b'-' | b'+') {
        s += 1;
        trimmed = true;
    }
    if s == at || at - s > MAX_LOCAL || b[at - 1] == b'.' {
        return None;
    }
    if !trimmed && s > 0 && (is_local(b[s - 1]) || b[s - 1] == b'@') {
        return None;
    }
    if trimmed && s >= 1 && b[s - 1] == b'@' {
        return None;
    }

    // Domain, rightwards, label by label.
    let d = at + 1;
    let mut e = d;
    let mut labels = 0;
    let mut last;
    loop {
        let ls = e;
        while e < b.len() && is_label(b[e]) && e - ls <= MAX_LABEL {
            e += 1;
        }
        let label = &b[ls..e];
        if label.is_empty()
            || label.len() > MAX_LABEL
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
        labels += 1;
        last = (ls, e);
        if e - d > MAX_DOMAIN {
            return None;
        }
        if e + 1 < b.len() && b[e] == b'.' && is_label(b[e + 1]) {
            e += 1;
        } else {
            break;
        }
    }
    if labels < 2 || e - s > MAX_SPAN {
        return None;
    }
    let tld = &b[last.0..last.1];
    let punycode = tld.len() > 4 && tld[..4].eq_ignore_ascii_case(b"xn--");
    if !punycode && (tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic)) {
        return None;
    }
    if FILE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(tld)) {
        return None;
    }
    // Right boundary.
    match b.get(e) {
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'@' => return None,
        Some(b':')
            if b.get(e + 1)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'~' | b'_')) =>
        {
            return None
        }
        _ => {}
    }
    Some((s, e))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn emails(text: &str) -> Vec<String> {
        found(DetectorKind::Email, text)
    }

    #[test]
    fn finds_plain_addresses_in_prose() {
        assert_eq!(
            emails("write to john@example.com today"),
            vec!["john@example.com"]
        );
        assert_eq!(emails("JOHN.DOE@EXAMPLE.ORG"), vec!["JOHN.DOE@EXAMPLE.ORG"]);
    }

    #[test]
    fn finds_dot_atoms_plus_tags_and_subdomains() {
        for a in [
            "first.last@example.com",
            "user+newsletter@mail.example.co.uk",
            "a_b-c%d@sub-domain.example.io",
            "x@y.museum",
            "o'brien@example.com",
            "123@numbers.net",
        ] {
            let want = a.rsplit('\'').next().unwrap();
            assert_eq!(emails(&format!("<{a}>")), vec![want.to_string()], "{a}");
        }
    }

    #[test]
    fn finds_punycode_domains_and_tlds() {
        assert_eq!(
            emails("info@xn--mnchen-3ya.de"),
            vec!["info@xn--mnchen-3ya.de"]
        );
        assert_eq!(
            emails("info@example.xn--p1ai"),
            vec!["info@example.xn--p1ai"]
        );
    }

    #[test]
    fn finds_addresses_in_markup_and_code() {
        assert_eq!(emails("mailto:bob@example.com"), vec!["bob@example.com"]);
        assert_eq!(
            emails("{\"email\":\"bob@example.com\"}"),
            vec!["bob@example.com"]
        );
        assert_eq!(emails("email='bob@example.com'"), vec!["bob@example.com"]);
        assert_eq!(
            emails("[bob@example.com](mailto:bob@example.com)"),
            vec!["bob@example.com", "bob@example.com"]
        );
        assert_eq!(
            emails("Bob <bob@example.com>, Ann <ann@example.org>"),
            vec!["bob@example.com", "ann@example.org"]
        );
    }

    #[test]
    fn excludes_trailing_sentence_punctuation() {
        assert_eq!(
            emails("mail me at bob@example.com."),
            vec!["bob@example.com"]
        );
        assert_eq!(emails("bob@example.com, or"), vec!["bob@example.com"]);
        assert_eq!(emails("(bob@example.com)"), vec!["bob@example.com"]);
    }

    #[test]
    fn address_next_to_non_ascii_text_stops_at_the_ascii() {
        assert_eq!(emails("連絡先bob@example.comまで"), vec!["bob@example.com"]);
        assert_eq!(emails("é.bob@example.com"), vec!["bob@example.com"]);
    }

    #[test]
    fn rejects_decorators_and_mentions() {
        for t in [
            "@decorator",
            "@app.route('/')",
            "  @Override",
            "cc @john.smith please",
            "x = @foo.bar",
        ] {
            assert!(emails(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_single_label_hosts_like_localhost() {
        assert!(emails("user@localhost").is_empty());
        assert!(emails("root@server1:").is_empty());
    }

    #[test]
    fn rejects_asset_names_with_density_suffix() {
        for t in [
            "icon@2x.png",
            "logo@3x.jpg",
            "sprite@1.5x.webp",
            "bundle@2x.svg",
        ] {
            assert!(emails(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_package_versions() {
        for t in [
            "react@18.2.0",
            "npm i lodash@4.17.21",
            "@babel/core@7.23.0",
            "pkg@latest",
        ] {
            assert!(emails(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_ssh_remotes() {
        assert!(emails("git clone git@github.com:rust-lang/rust.git").is_empty());
        assert!(emails("deploy@host.example.com:~/app").is_empty());
        // A colon that ends a clause is fine.
        assert_eq!(emails("bob@example.com: hi"), vec!["bob@example.com"]);
    }

    #[test]
    fn rejects_bad_tlds_and_labels() {
        for t in [
            "a@b.c",
            "a@example.c0m",
            "a@-example.com",
            "a@example-.com",
            "a@example..com",
            "a@.example.com",
        ] {
            assert!(emails(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_bad_local_parts() {
        assert!(emails("john.@example.com").is_empty());
        assert!(emails(" @example.com").is_empty());
        assert!(emails("a@b@example.com").is_empty());
    }

    #[test]
    fn doubled_dot_starts_the_local_part_after_it() {
        assert_eq!(emails("wait..john@example.com"), vec!["john@example.com"]);
    }

    #[test]
    fn rejects_addresses_glued_to_word_bytes_on_the_right() {
        assert!(emails("bob@example.com_backup").is_empty());
        assert!(emails("bob@example.com@x").is_empty());
    }

    #[test]
    fn enforces_rfc_length_limits() {
        let local64 = "a".repeat(64);
        let local65 = "a".repeat(65);
        assert_eq!(
            emails(&format!("{local64}@example.com")),
            vec![format!("{local64}@example.com")]
        );
        assert!(emails(&format!("{local65}@example.com")).is_empty());
        let label63 = "b".repeat(63);
        assert_eq!(emails(&format!("x@{label63}.com")).len(), 1);
        assert!(emails(&format!("x@{}.com", "b".repeat(64))).is_empty());
        let long_domain = format!("x@{}.com", vec!["c".repeat(60); 5].join("."));
        assert!(emails(&long_domain).is_empty());
    }

    #[test]
    fn is_email_checks_a_whole_string() {
        assert!(is_email("bob@example.com"));
        assert!(!is_email("bob@example.com trailing"));
        assert!(!is_email("bob@localhost"));
    }

    #[test]
    fn many_at_signs_in_a_row_are_handled_quickly_and_find_nothing() {
        let t = "@".repeat(100_000);
        assert!(emails(&t).is_empty());
        let t = "a@".repeat(50_000);
        assert!(emails(&t).is_empty());
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn generated_addresses_are_found_exactly(
            local in "[a-z0-9]{1,10}([._+-][a-z0-9]{1,8}){0,2}",
            domain in "[a-z0-9]{1,12}(-[a-z0-9]{1,6})?(\\.[a-z0-9]{1,10}){0,2}",
            tld in "(com|org|net|io|de|co\\.uk|museum|xn--p1ai)",
            open in "[ (<\"'\\[:]",
            close in "[ )>\"'\\],;.!?]",
        ) {
            let a = format!("{local}@{domain}.{tld}");
            prop_assert_eq!(emails(&format!("x{open}{a}{close} y")), vec![a]);
        }
    }
}
