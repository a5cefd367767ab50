//! IP addresses: IPv4 dotted quads and IPv6 in full, compressed (`::`) and
//! IPv4-embedded forms.
//!
//! **IPv4**: four decimal octets `0`–`255` without leading zeros (`01` is an
//! octal-looking ambiguity and is rejected), not part of a longer dotted run
//! (`1.2.3.4.5`), not glued to a word (`v1.2.3.4`), and not right after a
//! version or document-numbering word (`version 1.2.3.4`, `section 4.5.3.1`,
//! `§ 2.1.1.3`; the list is `NON_ADDRESS_WORDS`). A port
//! (`:8080`) or prefix length (`/24`) after it is fine and not part of the
//! span. Every valid address is reported, loopback and private ranges
//! included: whether `127.0.0.1` matters is the policy's call.
//!
//! **IPv6**: anchored on `:` with `memchr`, expanded over `[0-9A-Fa-f:.]`,
//! then parsed: eight groups of 1–4 hex digits, or fewer with exactly one
//! `::`, the last 32 bits optionally written as a dotted quad. To keep code
//! (`A::B`, `std::io`) and hex-word look-alikes (`dead::beef`) out, the
//! address must contain a decimal digit and must not be glued to a word.
//! Times (`12:30:45`), Bible verses (`3:16`) and MAC addresses
//! (`00:1a:2b:3c:4d:5e`, six groups) fail the parse; MAC addresses are not
//! personal data in this sense and are deliberately not detected.
//! Zone ids (`fe80::1%eth0`) end the span before the `%`; bracketed forms
//! (`[::1]:443`) report the address inside the brackets.

use super::{back, digits_end, is_word, scan_runs, Context};
use crate::finding::{DetectorKind, Match};

/// `255.255.255.255`.
pub const IPV4_MAX_SPAN: usize = 15;

/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`.
pub const IPV6_MAX_SPAN: usize = 45;

/// Left: the `version `/`section ` word check (16 bytes, plus the byte
/// before the word); right: a `.` and the digit that would continue a
/// dotted run.
pub const IPV4_CONTEXT: Context = Context { left: 17, right: 2 };

/// One byte either side: the word boundary.
pub const IPV6_CONTEXT: Context = Context { left: 1, right: 1 };

/// Words after which a dotted quad is a version or a section number, not an
/// address (`version 1.2.3.4`, `section 4.5.3.1`, `§ 2.1.1.3`).
const NON_ADDRESS_WORDS: &[&[u8]] = &[
    b"version",
    b"ver",
    b"release",
    b"build",
    b"firmware",
    b"fw",
    b"section",
    b"sec",
    b"chapter",
    b"clause",
    b"paragraph",
    b"para",
    b"figure",
    b"fig",
    b"table",
    b"article",
    b"art",
    b"item",
    b"rule",
    b"step",
    b"appendix",
    "§".as_bytes(),
];

/// Parse one octet of a dotted quad: 1–3 digits, no leading zero, ≤ 255.
fn octet(d: &[u8]) -> bool {
    match d.len() {
        1 => true,
        2 | 3 => d[0] != b'0' && d.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0')) <= 255,
        _ => false,
    }
}

/// Parse a dotted quad at the start of `b[s..]`; returns its end.
fn quad_at(b: &[u8], s: usize) -> Option<usize> {
    let mut j = s;
    for k in 0..4 {
        if k > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        let e = digits_end(b, j);
        if !octet(&b[j..e]) {
            return None;
        }
        j = e;
    }
    Some(j)
}

/// Whether `s` is exactly a dotted-quad IPv4 address.
pub fn ipv4_valid(s: &[u8]) -> bool {
    !s.is_empty() && s[0].is_ascii_digit() && quad_at(s, 0) == Some(s.len())
}

/// Find IPv4 addresses in `text` and append them to `out`.
pub fn scan_v4(text: &str, out: &mut Vec<Match>) {
    scan_runs(text.as_bytes(), DetectorKind::Ipv4, v4_at_run, out);
}

/// An IPv4 address starting at the digit run at `d`, not before `floor`.
pub(crate) fn v4_at_run(b: &[u8], d: usize, floor: usize) -> Option<(usize, usize)> {
    if d < floor {
        return None;
    }
    ipv4_at(b, d).map(|e| (d, e))
}

fn ipv4_at(b: &[u8], s: usize) -> Option<usize> {
    let first = digits_end(b, s);
    if first - s > 3 || b.get(first) != Some(&b'.') {
        return None;
    }
    match back(b, s, 1) {
        Some(c) if is_word(c) || c == b'.' => return None,
        _ => {}
    }
    let e = quad_at(b, s)?;
    match b.get(e) {
        Some(&c) if is_word(c) => return None,
        Some(b'.') if b.get(e + 1).is_some_and(|c| c.is_ascii_alphanumeric()) => return None,
        _ => {}
    }
    if after_version_word(b, s) {
        return None;
    }
    Some(e)
}

/// Whether the text just before `s` is `version`, `ver.`, `section`, `§`…
/// (one of [`NON_ADDRESS_WORDS`], then optional spaces, `.`, `:` or `=`).
fn after_version_word(b: &[u8], s: usize) -> bool {
    let lo = s.saturating_sub(IPV4_CONTEXT.left);
    let mut j = s;
    while j > lo && matches!(b[j - 1], b' ' | b':' | b'=' | b'.' | b'\t') {
        j -= 1;
    }
    NON_ADDRESS_WORDS.iter().any(|w| {
        j >= lo + w.len()
            && b[j - w.len()..j].eq_ignore_ascii_case(w)
            && (j - w.len() == 0 || !b[j - w.len() - 1].is_ascii_alphabetic())
    })
}

#[inline]
fn is_v6(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Whether `s` is a textual IPv6 address (RFC 4291 section 2.2 forms).
pub fn ipv6_valid(s: &[u8]) -> bool {
    if s.len() < 2 || s.len() > IPV6_MAX_SPAN {
        return false;
    }
    let dc = s.windows(2).position(|w| w == b"::");
    let (head, tail, compressed) = match dc {
        Some(p) => {
            let tail = &s[p + 2..];
            if tail.windows(2).any(|w| w == b"::") || tail.first() == Some(&b':') {
                return false;
            }
            (&s[..p], tail, true)
        }
        None => (s, &s[..0], false),
    };
    // The embedded dotted quad may only end the address.
    let (n_head, head_v4) = match groups(head, !compressed) {
        Some(x) => x,
        None => return false,
    };
    let (n_tail, _) = match groups(tail, true) {
        Some(x) => x,
        None => return false,
    };
    if compressed && head_v4 {
        return false;
    }
    let n = n_head + n_tail;
    if compressed {
        n <= 7
    } else {
        n == 8
    }
}

/// Count the 16-bit groups of a `:`-separated part; a final dotted quad (if
/// `allow_v4`) counts two. Returns (count, ended in a quad). Empty is 0.
fn groups(part: &[u8], allow_v4: bool) -> Option<(usize, bool)> {
    if part.is_empty() {
        return Some((0, false));
    }
    let mut n = 0;
    let mut it = part.split(|&c| c == b':').peekable();
    while let Some(g) = it.next() {
        let last = it.peek().is_none();
        if last && allow_v4 && g.contains(&b'.') {
            if !ipv4_valid(g) {
                return None;
            }
            return Some((n + 2, true));
        }
        if g.is_empty() || g.len() > 4 || !g.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        n += 1;
    }
    Some((n, false))
}

/// Find IPv6 addresses in `text` and append them to `out`.
pub fn scan_v6(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut floor = 0;
    for c in memchr::memchr_iter(b':', b) {
        if c < floor {
            continue;
        }
        // The run of address bytes around this colon; every colon inside it
        // is handled now.
        let mut l = c;
        while l > floor && is_v6(b[l - 1]) && c - l <= IPV6_MAX_SPAN {
            l -= 1;
        }
        let mut r = c;
        while r < b.len() && is_v6(b[r]) && r - l <= IPV6_MAX_SPAN {
            r += 1;
        }
        floor = r;
        if let Some((s, e)) = ipv6_in_run(b, l, r) {
            out.push(Match {
                detector: DetectorKind::Ipv6,
                start: s,
                end: e,
            });
        }
    }
}

fn ipv6_in_run(b: &[u8], l: usize, r: usize) -> Option<(usize, usize)> {
    // Glued to a word on either side, or a run too long to be an address
    // (the expansion stopped at its cap on an address byte).
    if l > 0 && (is_word(b[l - 1]) || is_v6(b[l - 1])) {
        return None;
    }
    if b.get(r).is_some_and(|&c| is_word(c) || is_v6(c)) {
        return None;
    }
    let (mut s, mut e) = (l, r);
    // A sentence may end right after an address; a dot never starts one.
    while e > s && b[e - 1] == b'.' {
        e -= 1;
    }
    while s < e && b[s] == b'.' {
        s += 1;
    }
    let cand = &b[s..e];
    if !cand.iter().any(u8::is_ascii_digit) || !ipv6_valid(cand) {
        return None;
    }
    Some((s, e))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn v4(text: &str) -> Vec<String> {
        found(DetectorKind::Ipv4, text)
    }
    fn v6(text: &str) -> Vec<String> {
        found(DetectorKind::Ipv6, text)
    }

    #[test]
    fn finds_dotted_quads_in_prose_urls_and_configs() {
        assert_eq!(v4("server at 192.168.1.10 is down"), vec!["192.168.1.10"]);
        assert_eq!(v4("http://10.0.0.1:8080/health"), vec!["10.0.0.1"]);
        assert_eq!(v4("allow 172.16.0.0/12;"), vec!["172.16.0.0"]);
        assert_eq!(v4("\"ip\":\"8.8.8.8\""), vec!["8.8.8.8"]);
        assert_eq!(v4("ends with 1.1.1.1."), vec!["1.1.1.1"]);
        assert_eq!(
            v4("0.0.0.0 and 255.255.255.255"),
            vec!["0.0.0.0", "255.255.255.255"]
        );
    }

    #[test]
    fn rejects_octets_over_255_and_leading_zeros() {
        for t in [
            "256.1.1.1",
            "1.2.3.999",
            "192.168.01.1",
            "010.0.0.1",
            "1.2.3.1000",
        ] {
            assert!(v4(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_longer_dotted_runs_and_short_ones() {
        for t in [
            "1.2.3.4.5",
            "10.0.19045.3803",
            "1.2.3",
            "a 1.2.3. b",
            "5.1.2.3.4",
        ] {
            assert!(v4(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_version_strings() {
        for t in [
            "v1.2.3.4",
            "V10.0.0.1",
            "version 1.2.3.4",
            "Version: 4.2.1.0",
            "build 1.0.0.123",
            "ver. 2.0.0.1",
        ] {
            assert!(v4(t).is_empty(), "{t}");
        }
        // "server" ends in "ver" but is not the word "ver".
        assert_eq!(v4("server 10.1.2.3"), vec!["10.1.2.3"]);
    }

    #[test]
    fn rejects_section_numbers() {
        for t in [
            "see section 4.5.3.1",
            "Section 1.2.3.4:",
            "§ 2.1.1.3",
            "§2.1.1.3",
            "Fig. 1.2.3.4",
            "step 1.1.1.2",
        ] {
            assert!(v4(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_quads_glued_to_words() {
        assert!(v4("x10.0.0.1").is_empty());
        assert!(v4("10.0.0.1x").is_empty());
        assert!(v4("10.0.0.1.com").is_empty());
    }

    #[test]
    fn finds_full_and_compressed_ipv6() {
        for a in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:db8::1",
            "::1",
            "fe80::1",
            "FE80::0202:B3FF:FE1E:8329",
            "2001:db8::",
            "1:2:3:4:5:6:7:8",
        ] {
            assert_eq!(v6(&format!("addr {a} ok")), vec![a.to_string()], "{a}");
        }
    }

    #[test]
    fn finds_ipv4_embedded_ipv6() {
        assert_eq!(v6("::ffff:192.168.1.1"), vec!["::ffff:192.168.1.1"]);
        assert_eq!(v6("64:ff9b::10.0.0.1"), vec!["64:ff9b::10.0.0.1"]);
        assert_eq!(v6("0:0:0:0:0:ffff:1.2.3.4"), vec!["0:0:0:0:0:ffff:1.2.3.4"]);
    }

    #[test]
    fn finds_ipv6_in_brackets_with_port_and_before_zone_id() {
        assert_eq!(v6("http://[2001:db8::1]:443/"), vec!["2001:db8::1"]);
        assert_eq!(v6("ping fe80::1%eth0"), vec!["fe80::1"]);
        assert_eq!(v6("loopback is ::1."), vec!["::1"]);
    }

    #[test]
    fn rejects_times_verses_and_mac_addresses() {
        for t in [
            "12:30:45",
            "at 09:15",
            "John 3:16",
            "00:1a:2b:3c:4d:5e",
            "2024-01-15T12:30:45Z",
            "12:30:45.123",
        ] {
            assert!(v6(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_code_paths_and_hex_words() {
        for t in [
            "std::io",
            "A::B",
            "Foo::Bar::baz",
            "dead::beef",
            "::",
            "x ::= y",
            "obj::cafe",
            "a::b::c",
        ] {
            assert!(v6(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_malformed_ipv6() {
        for t in [
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::1",
            "1:::2",
            "::1.2.3",
            "1.2.3.4::1",
            "1:2:3:4:5:6:7::8:9",
            "::ffff:256.1.1.1",
        ] {
            assert!(v6(&format!(" {t} ")).is_empty(), "{t}");
        }
    }

    #[test]
    fn ipv6_valid_follows_rfc_4291_forms() {
        assert!(ipv6_valid(b"::"));
        assert!(ipv6_valid(b"1::"));
        assert!(ipv6_valid(b"1:2:3:4:5:6:7::"));
        assert!(ipv6_valid(b"1:2:3:4:5:6:1.2.3.4"));
        assert!(!ipv6_valid(b"1:2:3:4:5:6:7:1.2.3.4"));
        assert!(!ipv6_valid(b":1:2:3:4:5:6:7"));
        assert!(!ipv6_valid(b"1:2:3:4:5:6:7:"));
    }

    #[test]
    fn ipv4_valid_checks_a_whole_string() {
        assert!(ipv4_valid(b"127.0.0.1"));
        assert!(!ipv4_valid(b"127.0.0.1 "));
        assert!(!ipv4_valid(b"127.0.0"));
    }

    #[test]
    fn long_runs_of_colons_and_hex_are_linear_and_find_nothing() {
        let t = "a:".repeat(50_000);
        assert!(v6(&t).is_empty());
    }

    use proptest::prelude::*;

    fn compress(groups: &[u16; 8]) -> String {
        // Longest run of zero groups (length ≥ 2) becomes "::", as RFC 5952.
        let (mut best, mut best_len, mut i) = (0, 0, 0);
        while i < 8 {
            if groups[i] == 0 {
                let st = i;
                while i < 8 && groups[i] == 0 {
                    i += 1;
                }
                if i - st > best_len {
                    best = st;
                    best_len = i - st;
                }
            } else {
                i += 1;
            }
        }
        let hex = |g: &[u16]| {
            g.iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        if best_len < 2 {
            return hex(groups);
        }
        format!(
            "{}::{}",
            hex(&groups[..best]),
            hex(&groups[best + best_len..])
        )
    }

    proptest! {
        #[test]
        fn every_dotted_quad_is_found(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, d in 0u8..=255) {
            let ip = format!("{a}.{b}.{c}.{d}");
            prop_assert_eq!(v4(&format!("host {ip}:443 up")), vec![ip]);
        }

        #[test]
        fn every_ipv6_is_found_full_and_compressed(mut g in proptest::array::uniform8(0u16..=0xffff), zeros in 0usize..8, run in 0usize..6) {
            for x in g.iter_mut().skip(zeros).take(run) {
                *x = 0;
            }
            let full = g.iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":");
            let short = compress(&g);
            for a in [full, short] {
                prop_assert!(ipv6_valid(a.as_bytes()), "{}", a);
                prop_assume!(a.bytes().any(|c| c.is_ascii_digit()));
                prop_assert_eq!(v6(&format!("addr {a} ok")), vec![a.clone()]);
            }
        }
    }
}
