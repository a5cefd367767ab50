//! US Social Security numbers.
//!
//! Shapes: `ddd-dd-dddd` and `ddd dd dddd` (one separator kind throughout),
//! and a bare `ddddddddd` only when a keyword (`ssn`, `social security`,
//! `ss#`…) appears in the [`KEYWORD_WINDOW`] bytes before it — nine bare
//! digits are far more often something else.
//!
//! Validation follows the SSA's rules: area (first three digits) not `000`,
//! `666` or `900`–`999`; group (middle two) not `00`; serial (last four) not
//! `0000`; and numbers voided after being published in advertising
//! (`078-05-1120`, `219-09-9999`) are rejected.
//!
//! Deliberately not caught: dotted forms (`123.45.6789`, read as versions or
//! IPs more often than SSNs), bare nine digits without a keyword, ITINs
//! (area 9xx, which the rules above exclude by design).

use super::{back, digits_end, is_word, scan_runs, Context};
use crate::finding::{DetectorKind, Match};

/// `ddd-dd-dddd`.
pub const MAX_SPAN: usize = 11;

/// How far left a keyword may be for a bare nine-digit run.
pub const KEYWORD_WINDOW: usize = 32;

/// The keyword window on the left; a separator and a digit on the right.
pub const CONTEXT: Context = Context {
    left: KEYWORD_WINDOW,
    right: 2,
};

/// Lower-case keywords that license a bare nine-digit run.
const KEYWORDS: &[&[u8]] = &[
    b"ssn",
    b"social security",
    b"social sec",
    b"soc sec",
    b"soc. sec",
    b"ss#",
    b"ss #",
    b"ss no",
];

/// Numbers the SSA voided after they appeared in advertising and specimens.
const VOIDED: &[[u16; 3]] = &[[78, 5, 1120], [219, 9, 9999]];

/// Whether area-group-serial is a number the SSA could have issued.
pub fn ssn_valid(area: u16, group: u16, serial: u16) -> bool {
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && group <= 99
        && serial != 0
        && serial <= 9999
        && !VOIDED.contains(&[area, group, serial])
}

fn num(b: &[u8]) -> u16 {
    b.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0'))
}

/// Find Social Security numbers in `text` and append them to `out`.
pub fn scan(text: &str, out: &mut Vec<Match>) {
    scan_runs(text.as_bytes(), DetectorKind::Ssn, at_run, out);
}

/// An SSN starting at the digit run at `d`, not before `floor`.
pub(crate) fn at_run(b: &[u8], d: usize, floor: usize) -> Option<(usize, usize)> {
    if d < floor {
        return None;
    }
    ssn_at(b, d).map(|e| (d, e))
}

fn ssn_at(b: &[u8], s: usize) -> Option<usize> {
    let e1 = digits_end(b, s);
    let (area, group, serial, end, sep) = match e1 - s {
        3 => {
            let sep = *b.get(e1)?;
            if sep != b'-' && sep != b' ' {
                return None;
            }
            let e2 = digits_end(b, e1 + 1);
            if e2 - (e1 + 1) != 2 || b.get(e2) != Some(&sep) {
                return None;
            }
            let e3 = digits_end(b, e2 + 1);
            if e3 - (e2 + 1) != 4 {
                return None;
            }
            (&b[s..e1], &b[e1 + 1..e2], &b[e2 + 1..e3], e3, Some(sep))
        }
        9 => {
            if !keyword_before(b, s) {
                return None;
            }
            (&b[s..s + 3], &b[s + 3..s + 5], &b[s + 5..s + 9], e1, None)
        }
        _ => return None,
    };
    if !ssn_valid(num(area), num(group), num(serial)) {
        return None;
    }
    // Left: not glued to a word, not the tail of a punctuated number.
    match back(b, s, 1) {
        Some(c) if is_word(c) => return None,
        Some(b'.' | b',' | b'-' | b'/' | b':' | b'+')
            if back(b, s, 2).is_some_and(|c| c.is_ascii_digit()) =>
        {
            return None
        }
        Some(b' ') if sep == Some(b' ') && back(b, s, 2).is_some_and(|c| c.is_ascii_digit()) => {
            return None
        }
        _ => {}
    }
    // Right: not glued, not followed by more of the same number.
    match b.get(end) {
        Some(&c) if is_word(c) => return None,
        Some(b'.' | b',' | b'-' | b'/' | b':')
            if b.get(end + 1).is_some_and(u8::is_ascii_digit) =>
        {
            return None
        }
        Some(b' ') if sep == Some(b' ') && b.get(end + 1).is_some_and(u8::is_ascii_digit) => {
            return None
        }
        _ => {}
    }
    Some(end)
}

/// Whether an SSN keyword appears in the window before `s`.
fn keyword_before(b: &[u8], s: usize) -> bool {
    let w = &b[s.saturating_sub(KEYWORD_WINDOW)..s];
    KEYWORDS.iter().any(|k| {
        w.windows(k.len()).enumerate().any(|(i, x)| {
            x.eq_ignore_ascii_case(k)
                // The keyword starts a word ("ssn", not "classn…").
                && (i == 0 || !w[i - 1].is_ascii_alphabetic())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn ssns(text: &str) -> Vec<String> {
        found(DetectorKind::Ssn, text)
    }

    #[test]
    fn finds_dashed_and_spaced_forms() {
        assert_eq!(ssns("SSN 123-45-6789."), vec!["123-45-6789"]);
        assert_eq!(ssns("his number is 536 22 1234, ok"), vec!["536 22 1234"]);
        assert_eq!(ssns("(001-01-0001)"), vec!["001-01-0001"]);
    }

    #[test]
    fn finds_bare_nine_digits_only_after_a_keyword() {
        assert_eq!(ssns("SSN: 536221234"), vec!["536221234"]);
        assert_eq!(ssns("social security number 536221234"), vec!["536221234"]);
        assert_eq!(ssns("ss# 536221234"), vec!["536221234"]);
        assert!(ssns("invoice 536221234").is_empty());
        assert!(ssns("536221234").is_empty());
    }

    #[test]
    fn keyword_must_be_within_the_window() {
        let far = format!("ssn{}536221234", " ".repeat(KEYWORD_WINDOW));
        assert!(ssns(&far).is_empty());
        let near = format!("ssn{}536221234", " ".repeat(KEYWORD_WINDOW - 4));
        assert_eq!(ssns(&near), vec!["536221234"]);
    }

    #[test]
    fn keyword_must_start_a_word() {
        assert!(ssns("classn 536221234").is_empty());
    }

    #[test]
    fn rejects_invalid_areas() {
        for t in ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456"] {
            assert!(ssns(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_zero_group_or_serial() {
        assert!(ssns("123-00-4567").is_empty());
        assert!(ssns("123-45-0000").is_empty());
    }

    #[test]
    fn rejects_voided_advertising_numbers() {
        assert!(ssns("078-05-1120").is_empty());
        assert!(ssns("219-09-9999").is_empty());
        assert_eq!(ssns("219-09-9998"), vec!["219-09-9998"]);
    }

    #[test]
    fn rejects_mixed_separators_and_wrong_grouping() {
        for t in [
            "123-45 6789",
            "123 45-6789",
            "12-345-6789",
            "1234-56-789",
            "123--45-6789",
            "123.45.6789",
        ] {
            assert!(ssns(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn rejects_numbers_embedded_in_longer_runs() {
        for t in [
            "9123-45-6789",
            "123-45-67890",
            "1-123-45-6789",
            "123-45-6789-1",
            "a123-45-6789",
            "123-45-6789b",
        ] {
            assert!(ssns(t).is_empty(), "{t}");
        }
        assert!(ssns("5 123 45 6789").is_empty());
    }

    #[test]
    fn rejects_dates_and_phone_numbers() {
        for t in ["2024-01-15", "555-123-4567", "12:30:45", "20240115"] {
            assert!(ssns(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn ssn_valid_encodes_the_ssa_rules() {
        assert!(ssn_valid(123, 45, 6789));
        assert!(ssn_valid(899, 99, 9999));
        assert!(!ssn_valid(0, 45, 6789));
        assert!(!ssn_valid(666, 45, 6789));
        assert!(!ssn_valid(900, 45, 6789));
        assert!(!ssn_valid(123, 0, 6789));
        assert!(!ssn_valid(123, 45, 0));
        assert!(!ssn_valid(78, 5, 1120));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_valid_ssn_is_found_dashed_and_spaced(area in 1u16..900, group in 1u16..100, serial in 1u16..10000, sep in "[ -]") {
            prop_assume!(ssn_valid(area, group, serial));
            let s = format!("{area:03}{sep}{group:02}{sep}{serial:04}");
            prop_assert_eq!(ssns(&format!("number {s}.")), vec![s]);
        }
    }
}
