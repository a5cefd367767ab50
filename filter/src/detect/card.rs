//! Payment card numbers (PANs): 13–19 digits, written bare or in groups
//! separated by single spaces or single dashes, that pass the Luhn check *and*
//! start with a known issuer prefix of the right length.
//!
//! Accepted groupings: one bare run of 13–19 digits; groups of four with a
//! shorter last group (`4-4-4-4`, `4-4-4-4-3`, `4-4-4-1`…); Amex `4-6-5` and
//! Diners `4-6-4`. The separator must be the same throughout.
//!
//! Word-boundary rules (the [`CONTEXT`]): a card is not glued to a letter,
//! digit or `_`, is not the tail of a decimal or a punctuated run (`1.`, `9-`,
//! `12:` before it) and is not the head of one (`.5`, `-7` after it). A run of
//! same-separator groups longer than 19 digits is a longer number, not a card.
//!
//! Deliberately not caught: cards written with dots or mixed separators, a
//! card glued to letters (`card4111…`), numbers with a Luhn-valid body but an
//! unknown issuer (UATP `1…`, private-label ranges), issuer ranges newer than
//! the table below.

use super::{back, digits_end, is_word, scan_runs, Context};
use crate::finding::{DetectorKind, Match};

/// 19 digits plus four separators (`4-4-4-4-3`).
pub const MAX_SPAN: usize = 23;

/// Left: a separator and the digit behind it. Right: after a grouped card
/// the matcher reads on through same-separator groups up to 19 digits in all
/// (to reject a longer grouped number), at most 11 bytes past the span.
pub const CONTEXT: Context = Context { left: 2, right: 12 };

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;
const MAX_GROUPS: usize = 6;

/// Luhn (mod 10) check over ASCII digits, as printed on a card. Returns false
/// for fewer than two digits or for any byte that is not `0`–`9`: strip
/// separators first.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    let mut double = false;
    for &b in digits.iter().rev() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

/// Card networks recognised by [`issuer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Issuer {
    /// `4`; 13, 16 or 19 digits.
    Visa,
    /// `51`–`55`, `2221`–`2720`; 16 digits.
    Mastercard,
    /// `34`, `37`; 15 digits.
    Amex,
    /// `6011`, `644`–`649`, `65`, `622126`–`622925`; 16–19 digits.
    Discover,
    /// `3528`–`3589`; 16–19 digits.
    Jcb,
    /// `300`–`305`, `3095`, `36`, `38`, `39`; 14–19 digits.
    DinersClub,
    /// `62`; 16–19 digits.
    UnionPay,
    /// `5018`, `5020`, `5038`, `5893`, `6304`, `6759`, `6761`–`6763`; 12–19 digits.
    Maestro,
    /// `2200`–`2204`; 16–19 digits.
    Mir,
    /// `60`, `508`; 16 digits.
    RuPay,
    /// `9792`; 16 digits.
    Troy,
    /// `506099`–`506198`, `650002`–`650027`; 16–19 digits.
    Verve,
}

fn prefix(d: &[u8], n: usize) -> u32 {
    d[..n.min(d.len())]
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
}

/// The network a card number (ASCII digits, no separators) belongs to, judged
/// by its leading digits *and* its length. `None` when no known network
/// issues numbers with that prefix and length.
pub fn issuer(d: &[u8]) -> Option<Issuer> {
    let len = d.len();
    if !(12..=MAX_DIGITS).contains(&len) || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (p1, p2, p3, p4, p6) = (
        prefix(d, 1),
        prefix(d, 2),
        prefix(d, 3),
        prefix(d, 4),
        prefix(d, 6),
    );
    let l16_19 = (16..=19).contains(&len);
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some(Issuer::Amex);
    }
    if ((300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39)
        && (14..=19).contains(&len)
    {
        return Some(Issuer::DinersClub);
    }
    if (3528..=3589).contains(&p4) && l16_19 {
        return Some(Issuer::Jcb);
    }
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some(Issuer::Visa);
    }
    if (2200..=2204).contains(&p4) && l16_19 {
        return Some(Issuer::Mir);
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some(Issuer::Mastercard);
    }
    if matches!(
        p4,
        5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763
    ) && (12..=19).contains(&len)
    {
        return Some(Issuer::Maestro);
    }
    if ((506_099..=506_198).contains(&p6) || (650_002..=650_027).contains(&p6)) && l16_19 {
        return Some(Issuer::Verve);
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && l16_19
    {
        return Some(Issuer::Discover);
    }
    if p2 == 62 && l16_19 {
        return Some(Issuer::UnionPay);
    }
    if (p2 == 60 || p3 == 508) && len == 16 {
        return Some(Issuer::RuPay);
    }
    if p4 == 9792 && len == 16 {
        return Some(Issuer::Troy);
    }
    None
}

/// Whether `digits` (ASCII, no separators) is a plausible card number: 13–19
/// digits, Luhn-valid and from a known issuer.
pub fn is_card_number(digits: &[u8]) -> bool {
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && luhn_valid(digits)
        && issuer(digits).is_some()
}

/// Find card numbers in `text` and append them to `out`.
pub fn scan(text: &str, out: &mut Vec<Match>) {
    scan_runs(text.as_bytes(), DetectorKind::Card, at_run, out);
}

/// A card starting at the digit run at `d`, not before `floor`.
pub(crate) fn at_run(b: &[u8], d: usize, floor: usize) -> Option<(usize, usize)> {
    if d < floor {
        return None;
    }
    card_at(b, d).map(|e| (d, e))
}

/// A card starting at `s`, the first digit of a digit run; returns its end.
fn card_at(b: &[u8], s: usize) -> Option<usize> {
    // A card is one run of 13–19 digits or starts with a group of four.
    // (Read at most 20 digits: enough to tell.)
    let mut first = 0;
    while first <= MAX_DIGITS && b.get(s + first).is_some_and(u8::is_ascii_digit) {
        first += 1;
    }
    if first != 4 && !(MIN_DIGITS..=MAX_DIGITS).contains(&first) {
        return None;
    }
    // Groups: (start, end) of each digit run, joined by one separator byte.
    let mut groups = [(0usize, 0usize); MAX_GROUPS];
    let mut n = 0;
    let mut total = 0;
    let mut sep: Option<u8> = None;
    let mut j = s;
    loop {
        let e = digits_end(b, j);
        total += e - j;
        if total > MAX_DIGITS {
            // Part of a longer number (or a longer grouped run).
            return None;
        }
        groups[n] = (j, e);
        n += 1;
        j = e;
        let next = b.get(j).copied();
        let after_is_digit = b.get(j + 1).is_some_and(u8::is_ascii_digit);
        match next {
            Some(c @ (b' ' | b'-'))
                if after_is_digit && groups[0].1 - groups[0].0 == 4 && n < MAX_GROUPS =>
            {
                if sep.is_some_and(|p| p != c) {
                    break;
                }
                sep = Some(c);
                j += 1;
            }
            _ => break,
        }
    }

    if !left_ok(b, s, sep) {
        return None;
    }

    let mut lens = [0usize; MAX_GROUPS];
    for (l, g) in lens.iter_mut().zip(&groups[..n]) {
        *l = g.1 - g.0;
    }
    let mut digits = [0u8; MAX_DIGITS];
    for k in (1..=n).rev() {
        if !shape_ok(&lens[..k]) {
            continue;
        }
        let mut m = 0;
        for g in &groups[..k] {
            let len = g.1 - g.0;
            digits[m..m + len].copy_from_slice(&b[g.0..g.1]);
            m += len;
        }
        if !is_card_number(&digits[..m]) {
            continue;
        }
        let end = groups[k - 1].1;
        if k == n && !right_ok(b, end) {
            return None;
        }
        return Some(end);
    }
    None
}

/// Accepted group-length shapes (see the module documentation).
fn shape_ok(lens: &[usize]) -> bool {
    let total: usize = lens.iter().sum();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&total) {
        return false;
    }
    match lens {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [4, rest @ ..] if rest.len() >= 2 => {
            let (last, mid) = rest.split_last().unwrap_or((&0, &[]));
            mid.iter().all(|&l| l == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
}

fn left_ok(b: &[u8], s: usize, sep: Option<u8>) -> bool {
    match back(b, s, 1) {
        None => true,
        Some(c) if is_word(c) => false,
        Some(b'.' | b',' | b'-' | b'/' | b':') => {
            !back(b, s, 2).is_some_and(|c| c.is_ascii_digit())
        }
        // "…5 4111 1111 …": one more group of a space-grouped number.
        Some(b' ') if sep == Some(b' ') => !back(b, s, 2).is_some_and(|c| c.is_ascii_digit()),
        Some(_) => true,
    }
}

fn right_ok(b: &[u8], e: usize) -> bool {
    match b.get(e) {
        None => true,
        Some(&c) if is_word(c) => false,
        Some(b'.' | b',' | b'-' | b':') => !b.get(e + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn cards(text: &str) -> Vec<String> {
        found(DetectorKind::Card, text)
    }

    #[test]
    fn luhn_accepts_known_valid_numbers_and_rejects_one_digit_off() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b"79927398710"));
    }

    #[test]
    fn luhn_rejects_separators_and_short_input() {
        assert!(!luhn_valid(b"4111 1111 1111 1111"));
        assert!(!luhn_valid(b"0"));
        assert!(!luhn_valid(b""));
    }

    #[test]
    fn issuer_table_recognises_each_network_by_prefix_and_length() {
        assert_eq!(issuer(b"4111111111111111"), Some(Issuer::Visa));
        assert_eq!(issuer(b"4222222222222"), Some(Issuer::Visa));
        assert_eq!(issuer(b"5555555555554444"), Some(Issuer::Mastercard));
        assert_eq!(issuer(b"2223003122003222"), Some(Issuer::Mastercard));
        assert_eq!(issuer(b"378282246310005"), Some(Issuer::Amex));
        assert_eq!(issuer(b"6011111111111117"), Some(Issuer::Discover));
        assert_eq!(issuer(b"3530111333300000"), Some(Issuer::Jcb));
        assert_eq!(issuer(b"30569309025904"), Some(Issuer::DinersClub));
        assert_eq!(issuer(b"6200000000000005"), Some(Issuer::UnionPay));
        assert_eq!(issuer(b"6759649826438453"), Some(Issuer::Maestro));
        assert_eq!(issuer(b"2200000000000004"), Some(Issuer::Mir));
    }

    #[test]
    fn issuer_rejects_wrong_length_for_the_prefix() {
        // Amex is 15 digits, Mastercard 16.
        assert_eq!(issuer(b"3782822463100051"), None);
        assert_eq!(issuer(b"555555555555444"), None);
        assert_eq!(issuer(b"1234567812345670"), None);
    }

    #[test]
    fn finds_test_cards_of_every_major_network_bare() {
        for n in [
            "4111111111111111",
            "4012888888881881",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "6011000990139424",
            "3530111333300000",
            "3566002020360505",
            "30569309025904",
            "38520000023237",
            "6200000000000005",
            "6759649826438453",
        ] {
            assert_eq!(cards(&format!("pan {n} end")), vec![n.to_string()], "{n}");
        }
    }

    #[test]
    fn finds_cards_grouped_with_spaces_or_dashes() {
        for n in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555 5555 5555 4444",
            "3782 822463 10005",
            "3782-822463-10005",
            "3056 930902 5904",
            "6011 0009 9013 9424",
        ] {
            assert_eq!(cards(&format!("card: {n}.")), vec![n.to_string()], "{n}");
        }
    }

    #[test]
    fn finds_nineteen_digit_cards_in_4_4_4_4_3() {
        assert_eq!(
            cards("visa 4000 0000 0000 0000 006"),
            vec!["4000 0000 0000 0000 006"]
        );
        assert!(is_card_number(b"4000000000000000006"));
    }

    #[test]
    fn finds_card_at_text_edges_and_in_punctuation() {
        assert_eq!(cards("4111111111111111"), vec!["4111111111111111"]);
        assert_eq!(cards("(4111 1111 1111 1111)"), vec!["4111 1111 1111 1111"]);
        assert_eq!(cards("\"4111111111111111\","), vec!["4111111111111111"]);
        assert_eq!(
            cards("card=4111111111111111&exp=12"),
            vec!["4111111111111111"]
        );
        assert_eq!(cards("番号4111111111111111です"), vec!["4111111111111111"]);
    }

    #[test]
    fn finds_card_followed_by_expiry_or_cvv() {
        assert_eq!(
            cards("4111 1111 1111 1111 12/29 123"),
            vec!["4111 1111 1111 1111"]
        );
        assert_eq!(cards("4111111111111111 123"), vec!["4111111111111111"]);
        assert_eq!(
            cards("4111-1111-1111-1111 exp 01/30"),
            vec!["4111-1111-1111-1111"]
        );
    }

    #[test]
    fn finds_several_cards_in_a_list() {
        assert_eq!(
            cards("4111111111111111, 5555555555554444 and 378282246310005"),
            vec!["4111111111111111", "5555555555554444", "378282246310005"]
        );
    }

    /// `prefix` padded with ones to `len - 1` digits plus its Luhn check digit.
    fn luhn_number(prefix: &str, len: usize) -> String {
        let mut s = prefix.to_string();
        while s.len() < len - 1 {
            s.push('1');
        }
        (b'0'..=b'9')
            .map(|d| format!("{s}{}", d as char))
            .find(|c| luhn_valid(c.as_bytes()))
            .unwrap()
    }

    #[test]
    fn rejects_luhn_valid_numbers_without_a_known_issuer() {
        // 0…, 1… (UATP), 7…, 8… and 9… (bar Troy 9792) belong to no network,
        // nor does Visa at 15 digits or Amex at 16.
        for (p, len) in [
            ("0", 16),
            ("1", 16),
            ("7", 16),
            ("8", 16),
            ("91", 16),
            ("4", 15),
            ("34", 16),
            ("3", 16),
        ] {
            let n = luhn_number(p, len);
            assert!(luhn_valid(n.as_bytes()));
            assert!(cards(&format!("id {n}")).is_empty(), "{n}");
        }
    }

    #[test]
    fn rejects_luhn_invalid_numbers_with_an_issuer_prefix() {
        assert!(cards("4111111111111112").is_empty());
        assert!(cards("4111 1111 1111 1112").is_empty());
    }

    #[test]
    fn rejects_card_embedded_in_a_longer_digit_run() {
        assert!(cards("04111111111111111").is_empty());
        assert!(cards("41111111111111110").is_empty());
        assert!(cards("ref 941111111111111111 x").is_empty());
        assert!(cards("4111 1111 1111 1111 2222 3333").is_empty());
        assert!(cards("9999 4111 1111 1111 1111").is_empty());
    }

    #[test]
    fn rejects_card_glued_to_letters_or_decimals() {
        assert!(cards("x4111111111111111").is_empty());
        assert!(cards("4111111111111111x").is_empty());
        assert!(cards("0.4111111111111111").is_empty());
        assert!(cards("4111111111111111.5").is_empty());
        assert!(cards("12:4111111111111111").is_empty());
    }

    #[test]
    fn rejects_mixed_or_irregular_separators() {
        assert!(cards("4111 1111-1111 1111").is_empty());
        assert!(cards("411 11111 1111 1111").is_empty());
        assert!(cards("4111  1111  1111  1111").is_empty());
        assert!(cards("4111.1111.1111.1111").is_empty());
    }

    #[test]
    fn rejects_timestamps_and_order_ids() {
        // Epoch milliseconds, compact datetimes, long order numbers.
        for t in [
            "1705312245123",
            "20240115123045",
            "2024011512304599",
            "order 100000000000000001",
        ] {
            assert!(cards(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn too_short_or_too_long_is_not_a_card() {
        assert!(cards("411111111111").is_empty()); // 12 digits
        assert!(cards("41111111111111111111").is_empty()); // 20 digits
    }

    #[test]
    fn a_single_space_before_a_digit_does_not_block_a_bare_card() {
        assert_eq!(cards("qty 2 4111111111111111"), vec!["4111111111111111"]);
        // …but a space-grouped card right after a number is part of that number.
        assert!(cards("qty 2 4111 1111 1111 1111").is_empty());
    }
}
