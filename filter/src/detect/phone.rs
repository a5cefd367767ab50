//! Telephone numbers in the formats people write, with the structure checked
//! rather than "any ten digits".
//!
//! A candidate starts at `+`, `(` or a digit and is read as digit groups
//! joined by one separator each (space, `-`, `.`, or nothing around a
//! parenthesised group). It is accepted when it has one of these shapes:
//!
//! - **International**: `+` or `00`, an assigned ITU country code (the table
//!   below; codes form a prefix code, so at most one reading fits), then 7–14
//!   national digits, at most 15 in all (E.164). An area code may follow in
//!   parentheses, and `(0)` is read as a trunk prefix (`+44 (0)20 7946 0958`).
//!   Under `+1` the national part must be ten digits. With separators or
//!   without (`+14155552671`).
//! - **NANP**: `XXX XXX XXXX` in `(555) 123-4567`, `555-123-4567`,
//!   `555.123.4567`, `555 123 4567`, optionally after a `1` trunk prefix
//!   (`1-800-555-0199`). Any leading digits are accepted in the area code
//!   and exchange: `123-456-7890` and `555-123-4567` are what people type.
//! - **National with trunk `0`** (UK, FR, DE, IT, NL, AU, JP, IN landlines…):
//!   first group `0` + 1–4 digits, 10–12 digits in all, groups of 2–8:
//!   `020 7946 0958`, `07911 123456`, `01 23 45 67 89`, `030 1234567`,
//!   `(02) 9876 5432`, `090-1234-5678`.
//! - **Parenthesised two-digit area code** (Brazil): `(11) 91234-5678`.
//! - **Mobile without prefix**: India `98765 43210` (first digit 6–9) and
//!   China `138 1234 5678`.
//!
//! Separators after the country code, the trunk prefix or a parenthesised
//! area code are free; the remaining ones must all be the same.
//!
//! Hard negatives, by construction or explicit check: plain digit runs
//! without `+` (order ids, timestamps, `20240115`), ISO dates and times
//! (`2024-01-15 12:30:45`, `dd.mm.yyyy`), version numbers, IPv4 addresses,
//! arithmetic (`12 - 34 = 56`: a spaced operator is not a separator), ranges,
//! prices (a currency sign before), numbers glued to words or decimals, and
//! card numbers (13–19 Luhn-valid digits with an issuer are never phones).
//! A candidate that continues with the same separator and more digits
//! (`555 123 4567 890`) is part of a longer number and is rejected whole.
//!
//! Deliberately not caught: 7-digit local numbers (`555-1234`), national
//! numbers without a trunk `0` outside NANP/IN/CN (`612 34 56 78` in Spain
//! needs `+34`), German `030/1234567` slashes, vanity letters
//! (`1-800-FLOWERS`), extensions (the span ends before `ext. 12`), numbers
//! longer than [`MAX_SPAN`] bytes, space-separated lists of space-grouped
//! numbers (`555 123 4567 555 987 6543` reads as one longer number).

use super::card::is_card_number;
use super::{back, is_word, scan_runs, Context};
use crate::finding::{DetectorKind, Match};

/// The longest phone span: room for `+44 (0)20 7946 0958`-style numbers with
/// a few more groups; candidates that would run longer are not phones.
pub const MAX_SPAN: usize = 24;

/// Left: the byte before (and the one before that: a digit behind a
/// separator, a currency sign behind a space, up to four bytes of UTF-8).
/// Right: the tokenizer reads at most `MAX_SPAN + 2` bytes from a
/// candidate's start (to see whether the groups go on), and the shortest
/// phone is 9 bytes, so at most 17 bytes past a match's end.
pub const CONTEXT: Context = Context {
    left: 8,
    right: MAX_SPAN + 2 - 9,
};

const MAX_GROUPS: usize = 8;
const MAX_DIGITS: usize = 17;
const MIN_DIGITS: usize = 8;

/// Assigned ITU-T E.164 country codes. They form a prefix code.
const COUNTRY_CODES: &[u16] = &[
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54,
    55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211,
    212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298,
    299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377,
    378, 379, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675,
    676, 677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 800, 808, 850,
    852, 853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960, 961, 962, 963, 964, 965, 966,
    967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996, 998,
];

/// The length (1–3) of the country code that `digits` starts with.
fn country_code_len(digits: &[u8]) -> Option<usize> {
    let mut v = 0u16;
    for (i, &d) in digits.iter().take(3).enumerate() {
        v = v * 10 + u16::from(d - b'0');
        if COUNTRY_CODES.binary_search(&v).is_ok() {
            return Some(i + 1);
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Space,
    Dash,
    Dot,
    /// Nothing: a group right after `)` or right before `(`.
    Glued,
}

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    paren: bool,
    /// The separator before this group; `None` for the first.
    sep: Option<Sep>,
}

impl Group {
    fn len(&self) -> usize {
        self.end - self.start
    }
    /// End of the group's text, including a closing parenthesis.
    fn text_end(&self) -> usize {
        self.end + usize::from(self.paren)
    }
}

struct Tokens {
    plus: bool,
    groups: [Group; MAX_GROUPS],
    n: usize,
}

/// Find phone numbers in `text` and append them to `out`.
pub fn scan(text: &str, out: &mut Vec<Match>) {
    scan_runs(text.as_bytes(), DetectorKind::Phone, at_run, out);
}

/// A phone number around the digit run at `d` (it may start at a `+` or
/// `(` just before), not starting before `floor`.
pub(crate) fn at_run(b: &[u8], d: usize, floor: usize) -> Option<(usize, usize)> {
    match back(b, d, 1) {
        Some(b'+') if d > floor => phone_at(b, d - 1),
        Some(b'(') if d > floor => phone_at(b, d - 1).or_else(|| phone_at(b, d)),
        _ if d >= floor => phone_at(b, d),
        _ => None,
    }
}

/// A phone number starting at `s` (`+`, `(` or a digit); returns its span.
fn phone_at(b: &[u8], s: usize) -> Option<(usize, usize)> {
    let mut t = Tokens {
        plus: false,
        groups: [Group::default(); MAX_GROUPS],
        n: 0,
    };
    if !tokenize(b, s, &mut t) {
        return None;
    }
    // Every accepted shape has at least 8 digits (+CC and 7 national);
    // most numbers in prose have fewer, so stop here for them.
    if t.groups[..t.n].iter().map(Group::len).sum::<usize>() < MIN_DIGITS {
        return None;
    }
    let mut digits = [0u8; MAX_DIGITS];
    for k in (1..=t.n).rev() {
        let g = &t.groups[..k];
        let end = g[k - 1].text_end();
        if end - s > MAX_SPAN {
            continue;
        }
        let mut m = 0;
        for gr in g {
            if m + gr.len() > MAX_DIGITS {
                return None;
            }
            digits[m..m + gr.len()].copy_from_slice(&b[gr.start..gr.end]);
            m += gr.len();
        }
        let d = &digits[..m];
        let Some(body) = classify(&t, k, b, d) else {
            continue;
        };
        if k < t.n {
            // Only cut where the next group would break the pattern.
            let next = t.groups[k].sep;
            if next == Some(Sep::Glued) || (body.is_some() && next == body) {
                continue;
            }
        }
        if looks_like_date(b, g) || ((13..=19).contains(&m) && is_card_number(d)) {
            return None;
        }
        if !left_ok(b, s, body) || !right_ok(b, end, body) {
            return None;
        }
        return Some((s, end));
    }
    None
}

/// Read digit groups from `s` into `t`; false when there are none or a
/// plain run is too long to be a phone.
fn tokenize(b: &[u8], s: usize, t: &mut Tokens) -> bool {
    t.plus = b[s] == b'+';
    t.n = 0;
    let mut j = s + usize::from(t.plus);
    let mut sep = None;
    let mut used_paren = false;
    // Never read past here: a group reaching it would make the span too long.
    let lim = b.len().min(s + MAX_SPAN + 1);
    loop {
        let paren = b.get(j) == Some(&b'(');
        let gs = j + usize::from(paren);
        let mut ge = gs;
        while ge < lim && b[ge].is_ascii_digit() {
            ge += 1;
        }
        if ge == gs {
            break;
        }
        if ge - gs > 15 || (ge == lim && b.get(ge).is_some_and(u8::is_ascii_digit)) {
            // A long plain digit run is an id, never a phone; a long later
            // group ends the candidate before it.
            if t.n == 0 {
                return false;
            }
            break;
        }
        if paren && (used_paren || b.get(ge) != Some(&b')')) {
            break;
        }
        used_paren |= paren;
        let g = Group {
            start: gs,
            end: ge,
            paren,
            sep,
        };
        if g.text_end() - s > MAX_SPAN {
            break;
        }
        t.groups[t.n] = g;
        t.n += 1;
        if t.n == MAX_GROUPS {
            break;
        }
        j = g.text_end();
        let (kind, adv) = match b.get(j) {
            Some(b' ') => (Sep::Space, 1),
            Some(b'-') => (Sep::Dash, 1),
            Some(b'.') => (Sep::Dot, 1),
            Some(c) if c.is_ascii_digit() && paren => (Sep::Glued, 0),
            Some(b'(') => (Sep::Glued, 0),
            _ => break,
        };
        let k = j + adv;
        let starts_group = match b.get(k) {
            Some(c) if c.is_ascii_digit() => true,
            Some(b'(') => !used_paren && b.get(k + 1).is_some_and(u8::is_ascii_digit),
            _ => false,
        };
        if !starts_group {
            break;
        }
        sep = Some(kind);
        j = k;
    }
    t.n > 0
}

/// Whether the first `k` groups form a phone number; returns the body
/// separator (`None` when there is none, e.g. `+14155552671`).
fn classify(t: &Tokens, k: usize, b: &[u8], d: &[u8]) -> Option<Option<Sep>> {
    let g = &t.groups[..k];
    let g0 = &b[g[0].start..g[0].end];
    if t.plus || (g0.starts_with(b"00") && !g[0].paren) {
        return international(t, k, b, d);
    }
    let lens = |i: usize| g[i].len();
    // NANP, optionally behind a "1" trunk prefix. Any leading digits are
    // accepted: the fictional 123-456-7890 and 555-123-4567 are what people
    // type, and the shape alone is distinctive enough.
    let off = match k {
        3 => Some(0),
        4 if g0 == b"1" && !g[0].paren => Some(1),
        _ => None,
    };
    if let Some(o) = off {
        let (a, x, l) = (&g[o], &g[o + 1], &g[o + 2]);
        let no_other_paren = !x.paren && !l.paren;
        if a.len() == 3 && x.len() == 3 && l.len() == 4 && no_other_paren {
            let (sx, sl) = (x.sep?, l.sep?);
            if a.paren {
                if matches!(sx, Sep::Space | Sep::Glued | Sep::Dash)
                    && matches!(sl, Sep::Dash | Sep::Space | Sep::Dot)
                {
                    return Some(Some(sl));
                }
            } else if sx == sl && sx != Sep::Glued {
                return Some(Some(sl));
            }
        }
    }
    // National numbers with a trunk 0.
    if g0.first() == Some(&b'0')
        && g0.get(1) != Some(&b'0')
        && (2..=5).contains(&g0.len())
        && k >= 2
    {
        if !(10..=12).contains(&d.len())
            || !g.iter().all(|gr| (2..=8).contains(&gr.len()))
            || g[1..].iter().any(|gr| gr.paren)
        {
            return None;
        }
        if g[0].paren && !matches!(g[1].sep, Some(Sep::Space | Sep::Glued | Sep::Dash)) {
            return None;
        }
        let skip = if g[0].paren { 2 } else { 1 };
        return uniform(g.iter().skip(skip).filter_map(|gr| gr.sep));
    }
    // Brazil-style (11) 91234-5678.
    if k == 3
        && g[0].paren
        && g0.len() == 2
        && g0[0] != b'0'
        && matches!(lens(1), 4 | 5)
        && lens(2) == 4
    {
        if matches!(g[1].sep, Some(Sep::Space | Sep::Glued))
            && matches!(g[2].sep, Some(Sep::Dash | Sep::Space))
        {
            return Some(g[2].sep);
        }
        return None;
    }
    if g.iter().any(|gr| gr.paren) {
        return None;
    }
    // India mobile 98765 43210.
    if k == 2
        && lens(0) == 5
        && lens(1) == 5
        && (b'6'..=b'9').contains(&g0[0])
        && matches!(g[1].sep, Some(Sep::Space | Sep::Dash))
    {
        return Some(g[1].sep);
    }
    // China mobile 138 1234 5678.
    if k == 3
        && lens(0) == 3
        && lens(1) == 4
        && lens(2) == 4
        && g0[0] == b'1'
        && (b'3'..=b'9').contains(&g0[1])
        && g[1].sep == g[2].sep
        && matches!(g[1].sep, Some(Sep::Space | Sep::Dash))
    {
        return Some(g[1].sep);
    }
    None
}

/// `+CC …` or `00CC …`.
fn international(t: &Tokens, k: usize, b: &[u8], d: &[u8]) -> Option<Option<Sep>> {
    let g = &t.groups[..k];
    // Index of the group holding the country code, and digits to skip ("00").
    let (first, skip) = if t.plus {
        (0, 0)
    } else if g[0].len() == 2 {
        (1, 2)
    } else {
        (0, 2)
    };
    // "00" + digits with no separator is a plain digit run, not a phone.
    if first >= k || g[first].paren || (!t.plus && k == 1) {
        return None;
    }
    let rest = &d[skip..];
    let cc_group_len = g[first].len() - if first == 0 { skip } else { 0 };
    let cc = country_code_len(rest)?;
    if cc > cc_group_len {
        return None;
    }
    // Only the group right after the country code may be parenthesised: an
    // area code, or "(0)", a trunk prefix that is not part of the number.
    if g.iter()
        .enumerate()
        .any(|(i, gr)| gr.paren && i != first + 1)
    {
        return None;
    }
    let mut national = rest.len() - cc;
    let mut free = first + 1; // groups up to here have a free leading separator
    if let Some(p) = g.get(first + 1).filter(|p| p.paren) {
        if &b[p.start..p.end] == b"0" {
            national -= 1;
        }
        free = first + 2;
    }
    if !(7..=14).contains(&national) || cc + national > 15 {
        return None;
    }
    if &rest[..cc] == b"1" && national != 10 {
        return None;
    }
    let body = &g[first + 1..];
    if body.len() > 6 || body.iter().filter(|gr| gr.len() == 1 && !gr.paren).count() > 1 {
        return None;
    }
    uniform(g.iter().skip(free + 1).filter_map(|gr| gr.sep))
}

/// All the same separator (and not "glued"): `Some(Some(sep))`; none at all:
/// `Some(None)`; mixed: `None`.
fn uniform(mut seps: impl Iterator<Item = Sep>) -> Option<Option<Sep>> {
    match seps.next() {
        None => Some(None),
        Some(f) if f != Sep::Glued && seps.all(|s| s == f) => Some(Some(f)),
        _ => None,
    }
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'))
}

/// `yyyy-mm…` or `dd-mm-yyyy` at the head of the groups.
fn looks_like_date(b: &[u8], g: &[Group]) -> bool {
    if g.len() < 2 || g[0].paren {
        return false;
    }
    let t = |i: usize| &b[g[i].start..g[i].end];
    let year = |x: &[u8]| x.len() == 4 && (1900..=2099).contains(&num(x));
    let month = |x: &[u8]| x.len() == 2 && (1..=12).contains(&num(x));
    let day = |x: &[u8]| (1..=2).contains(&x.len()) && (1..=31).contains(&num(x));
    (year(t(0)) && month(t(1)))
        || (g.len() >= 3 && day(t(0)) && (month(t(1)) || day(t(1))) && year(t(2)))
}

const CURRENCY: &[char] = &['$', '€', '£', '¥', '₹', '₩', '₽', '¢', '₺', '₪', '₫', '฿'];

/// The character ending just before byte `i`, decoded from UTF-8.
fn char_before(b: &[u8], i: usize) -> Option<char> {
    let lo = i.saturating_sub(4);
    (lo..i).find_map(|j| {
        std::str::from_utf8(&b[j..i])
            .ok()
            .and_then(|s| s.chars().next())
            .filter(|c| c.len_utf8() == i - j)
    })
}

fn left_ok(b: &[u8], s: usize, body: Option<Sep>) -> bool {
    let Some(p1) = back(b, s, 1) else { return true };
    let p2 = back(b, s, 2);
    let p2_digit = p2.is_some_and(|c| c.is_ascii_digit());
    match p1 {
        c if is_word(c) || c == b'@' => false,
        b'.' | b',' | b':' => !p2_digit,
        b'-' | b'/' => !p2.is_some_and(|c| c.is_ascii_alphanumeric()),
        b' ' => {
            if p2_digit && body == Some(Sep::Space) {
                return false;
            }
            !char_before(b, s - 1).is_some_and(|c| CURRENCY.contains(&c))
        }
        _ => !char_before(b, s).is_some_and(|c| CURRENCY.contains(&c)),
    }
}

fn right_ok(b: &[u8], e: usize, body: Option<Sep>) -> bool {
    let n2_digit = b.get(e + 1).is_some_and(u8::is_ascii_digit);
    match b.get(e) {
        None => true,
        Some(&c) if is_word(c) || c == b'@' => false,
        Some(b'.' | b',' | b'/' | b':' | b'-') => !n2_digit,
        Some(b' ') => !(n2_digit && body == Some(Sep::Space)),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn phones(text: &str) -> Vec<String> {
        found(DetectorKind::Phone, text)
    }

    fn assert_phone(p: &str) {
        assert_eq!(phones(&format!("call {p} now")), vec![p.to_string()], "{p}");
    }

    fn assert_not_phone(t: &str) {
        assert!(phones(t).is_empty(), "{t}: {:?}", phones(t));
    }

    #[test]
    fn finds_e164_with_and_without_separators() {
        for p in [
            "+14155552671",
            "+1 415 555 2671",
            "+1-415-555-2671",
            "+1.415.555.2671",
            "+1 (415) 555-2671",
            "+442079460958",
            "+44 20 7946 0958",
            "+44 7911 123456",
            "+44 (0)20 7946 0958",
            "+44(0)20 7946 0958",
            "+49 30 12345678",
            "+49 (0)30 1234567",
            "+33 1 23 45 67 89",
            "+33 6 12 34 56 78",
            "+91 98765 43210",
            "+91-98765-43210",
            "+86 138 1234 5678",
            "+81 3-1234-5678",
            "+61 2 9876 5432",
            "+55 (11) 91234-5678",
            "+353 1 234 5678",
            "+971 50 123 4567",
        ] {
            assert_phone(p);
        }
    }

    #[test]
    fn finds_international_with_00_prefix() {
        assert_phone("0044 20 7946 0958");
        assert_phone("00 44 20 7946 0958");
        assert_phone("0033 1 23 45 67 89");
    }

    #[test]
    fn finds_nanp_formats() {
        for p in [
            "(415) 555-2671",
            "(415)555-2671",
            "(415) 555 2671",
            "415-555-2671",
            "415.555.2671",
            "415 555 2671",
            "1-800-555-0199",
            "1 (800) 555-0199",
            "1.800.555.0199",
            "1 800 555 0199",
        ] {
            assert_phone(p);
        }
    }

    #[test]
    fn finds_national_formats_with_trunk_zero() {
        for p in [
            "020 7946 0958",
            "07911 123456",
            "0161 496 0000",
            "01 23 45 67 89",
            "01.23.45.67.89",
            "030 1234567",
            "0151 23456789",
            "06 1234 5678",
            "06-12345678",
            "(02) 9876 5432",
            "(020) 7946 0958",
            "0412 345 678",
            "090-1234-5678",
            "03-1234-5678",
        ] {
            assert_phone(p);
        }
    }

    #[test]
    fn finds_fictional_example_numbers() {
        assert_phone("123-456-7890");
        assert_phone("555-123-4567");
        assert_phone("(555) 123-4567");
        assert_phone("555.123.4567");
        assert_phone("+1 555 123 4567");
    }

    #[test]
    fn finds_other_common_formats() {
        assert_phone("(11) 91234-5678");
        assert_phone("98765 43210");
        assert_phone("138 1234 5678");
    }

    #[test]
    fn finds_phones_in_punctuation_and_labels() {
        assert_eq!(phones("Phone: (415) 555-2671."), vec!["(415) 555-2671"]);
        assert_eq!(phones("tel:+14155552671"), vec!["+14155552671"]);
        assert_eq!(phones("phone=415-555-2671&x=1"), vec!["415-555-2671"]);
        assert_eq!(phones("\"415-555-2671\""), vec!["415-555-2671"]);
        assert_eq!(phones("(call 415-555-2671)"), vec!["415-555-2671"]);
        assert_eq!(
            phones("电话：+86 138 1234 5678。"),
            vec!["+86 138 1234 5678"]
        );
    }

    #[test]
    fn finds_several_phones_in_a_list() {
        assert_eq!(
            phones("415-555-2671, 415-555-2672"),
            vec!["415-555-2671", "415-555-2672"]
        );
        assert_eq!(
            phones("415-555-2671 415-555-2672"),
            vec!["415-555-2671", "415-555-2672"]
        );
        assert_eq!(
            phones("+1 415 555 2671 or +44 20 7946 0958"),
            vec!["+1 415 555 2671", "+44 20 7946 0958"]
        );
    }

    #[test]
    fn a_long_digit_run_after_a_different_separator_does_not_hide_the_phone() {
        assert_eq!(
            phones("415-555-2671 12345678901234567890"),
            vec!["415-555-2671"]
        );
        assert!(phones("+12345678901234567890").is_empty());
    }

    #[test]
    fn span_ends_before_an_extension() {
        assert_eq!(phones("415-555-2671 ext. 12"), vec!["415-555-2671"]);
        assert_eq!(phones("415-555-2671 x12"), vec!["415-555-2671"]);
    }

    #[test]
    fn rejects_plain_digit_runs_without_plus() {
        for t in [
            "order 4155552671",
            "id 14155552671",
            "ref 020794609580",
            "9876543210",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_dates_and_times() {
        for t in [
            "2024-01-15",
            "2024-01-15 12:30:45",
            "2024-01-15T12:30:45Z",
            "on 15.01.2024 10:30",
            "01-15-2024 1030",
            "20240115",
            "12:30:45",
            "2024 01 15 1230",
            "15 01 2024 1230",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_versions_and_ip_addresses() {
        for t in [
            "1.2.3",
            "v10.4.1",
            "version 10.0.19045.3803",
            "192.168.100.200",
            "10.0.0.1",
            "2001:db8::1",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_arithmetic_and_ranges() {
        for t in [
            "12 - 34 = 56",
            "3*4",
            "100 - 200",
            "1000-2000",
            "415 + 555 - 2671",
            "123456-234567",
            "10-20",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_prices() {
        for t in [
            "$415 555 2671",
            "€ 415-555-2671",
            "£415.555.2671",
            "USD 1,234,567.89",
            "1 234 567 890",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_card_numbers() {
        for t in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "+4111111111111111",
            "3782 822463 10005",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_numbers_embedded_in_longer_runs() {
        for t in [
            "415-555-2671-99",
            "9415-555-2671",
            "415 555 2671 890",
            "7 415 555 2671",
            "ID-415-555-2671",
            "x415-555-2671",
            "415-555-2671x",
            "3.415 555 2671",
            "415-555-2671.5",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_invalid_structure() {
        for t in [
            "+999 123 456 789", // unassigned country code
            "+1 415 555 267",   // NANP too short
            "+20 30 40 50",     // too few national digits
            "+44 20 7946-0958", // mixed body separators
            "415-555 2671",     // mixed
            "415 - 555 - 2671", // spaced operators
            "(415 555-2671",    // unbalanced parenthesis
            "123-45-6789",      // SSN shape
            "555-1234",         // 7-digit local number
            "0 800 123",        // too short
            "+1 2 3 4 5 6 7 8 9 0",
        ] {
            assert_not_phone(t);
        }
    }

    #[test]
    fn rejects_phone_shaped_tokens_glued_to_email_local_parts() {
        assert_not_phone("415-555-2671@example.com");
    }

    #[test]
    fn country_codes_are_sorted_and_prefix_free() {
        assert!(COUNTRY_CODES.windows(2).all(|w| w[0] < w[1]));
        for &c in COUNTRY_CODES {
            let s = c.to_string();
            for l in 1..s.len() {
                let p: u16 = s[..l].parse().unwrap();
                assert!(
                    COUNTRY_CODES.binary_search(&p).is_err(),
                    "{p} is a prefix of {c}"
                );
            }
        }
    }

    #[test]
    fn spans_never_exceed_max_span() {
        let t = "+44 (0) 20 7946 0958 12 34 56";
        for p in phones(t) {
            assert!(p.len() <= MAX_SPAN);
        }
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn nanp_numbers_are_found_in_every_common_format(area in 200u32..1000, exch in 200u32..1000, line in 0u32..10000, style in 0usize..7) {
            let p = match style {
                0 => format!("({area}) {exch}-{line:04}"),
                1 => format!("{area}-{exch}-{line:04}"),
                2 => format!("{area}.{exch}.{line:04}"),
                3 => format!("{area} {exch} {line:04}"),
                4 => format!("+1 {area} {exch} {line:04}"),
                5 => format!("+1-{area}-{exch}-{line:04}"),
                _ => format!("1-{area}-{exch}-{line:04}"),
            };
            prop_assert_eq!(phones(&format!("Reach me at {p}, thanks")), vec![p]);
        }

        #[test]
        fn plain_digit_runs_are_never_phones(n in "[0-9]{6,15}") {
            let text = format!("id {n} ok");
            prop_assert!(phones(&text).is_empty(), "{}", text);
        }

        #[test]
        fn iso_dates_and_times_are_never_phones(y in 1970u32..2100, mo in 1u32..13, d in 1u32..29, h in 0u32..24, mi in 0u32..60, s in 0u32..60, t in "[ T]") {
            let stamp = format!("{y}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}");
            let text = format!("at {stamp} UTC");
            prop_assert!(phones(&text).is_empty(), "{}", text);
        }
    }
}
