//! International Bank Account Numbers (ISO 13616).
//!
//! An IBAN is a two-letter country code, two check digits and a BBAN of
//! letters and digits; its total length is fixed per country (the table
//! below: every SEPA country plus the other registry members and the common
//! partner ones). The number is valid when moving the first four characters
//! to the end and reading letters as 10–35 gives a number ≡ 1 (mod 97).
//!
//! Written forms: electronic (`DE89370400440532013000`) or print, groups of
//! four separated by single spaces (`DE89 3704 0044 0532 0130 00`).
//! IBANs are upper-case by standard; only upper-case letters are accepted,
//! which keeps ordinary words from ever starting a candidate. Lower-case or
//! mixed-case IBANs, and groupings other than fours, are deliberate misses.
//!
//! Candidates are anchored on a digit run (the check digits) preceded by two
//! capital letters at a word start, so prose costs the shared digit skip.

use super::{is_word, scan_runs, Context};
use crate::finding::{DetectorKind, Match};

/// 34 characters (the ISO maximum) plus 8 separating spaces.
pub const MAX_SPAN: usize = 42;

/// One byte either side: the word boundary.
pub const CONTEXT: Context = Context { left: 1, right: 1 };

/// IBAN length by country code (SWIFT IBAN registry, plus partner countries
/// that publish IBANs: several West and Central African states, Algeria, Iran…).
const LENGTHS: &[([u8; 2], u8)] = &[
    (*b"AD", 24),
    (*b"AE", 23),
    (*b"AL", 28),
    (*b"AO", 25),
    (*b"AT", 20),
    (*b"AZ", 28),
    (*b"BA", 20),
    (*b"BE", 16),
    (*b"BF", 28),
    (*b"BG", 22),
    (*b"BH", 22),
    (*b"BI", 27),
    (*b"BJ", 28),
    (*b"BR", 29),
    (*b"BY", 28),
    (*b"CF", 27),
    (*b"CG", 27),
    (*b"CH", 21),
    (*b"CI", 28),
    (*b"CM", 27),
    (*b"CR", 22),
    (*b"CV", 25),
    (*b"CY", 28),
    (*b"CZ", 24),
    (*b"DE", 22),
    (*b"DJ", 27),
    (*b"DK", 18),
    (*b"DO", 28),
    (*b"DZ", 26),
    (*b"EE", 20),
    (*b"EG", 29),
    (*b"ES", 24),
    (*b"FI", 18),
    (*b"FK", 18),
    (*b"FO", 18),
    (*b"FR", 27),
    (*b"GA", 27),
    (*b"GB", 22),
    (*b"GE", 22),
    (*b"GI", 23),
    (*b"GL", 18),
    (*b"GQ", 27),
    (*b"GR", 27),
    (*b"GT", 28),
    (*b"GW", 25),
    (*b"HN", 28),
    (*b"HR", 21),
    (*b"HU", 28),
    (*b"IE", 22),
    (*b"IL", 23),
    (*b"IQ", 23),
    (*b"IR", 26),
    (*b"IS", 26),
    (*b"IT", 27),
    (*b"JO", 30),
    (*b"KM", 27),
    (*b"KW", 30),
    (*b"KZ", 20),
    (*b"LB", 28),
    (*b"LC", 32),
    (*b"LI", 21),
    (*b"LT", 20),
    (*b"LU", 20),
    (*b"LV", 21),
    (*b"LY", 25),
    (*b"MA", 28),
    (*b"MC", 27),
    (*b"MD", 24),
    (*b"ME", 22),
    (*b"MG", 27),
    (*b"MK", 19),
    (*b"ML", 28),
    (*b"MN", 20),
    (*b"MR", 27),
    (*b"MT", 31),
    (*b"MU", 30),
    (*b"MZ", 25),
    (*b"NE", 28),
    (*b"NI", 28),
    (*b"NL", 18),
    (*b"NO", 15),
    (*b"OM", 23),
    (*b"PK", 24),
    (*b"PL", 28),
    (*b"PS", 29),
    (*b"PT", 25),
    (*b"QA", 29),
    (*b"RO", 24),
    (*b"RS", 22),
    (*b"RU", 33),
    (*b"SA", 24),
    (*b"SC", 31),
    (*b"SD", 18),
    (*b"SE", 24),
    (*b"SI", 19),
    (*b"SK", 24),
    (*b"SM", 27),
    (*b"SN", 28),
    (*b"SO", 23),
    (*b"ST", 25),
    (*b"SV", 28),
    (*b"TD", 27),
    (*b"TG", 28),
    (*b"TL", 23),
    (*b"TN", 24),
    (*b"TR", 26),
    (*b"UA", 29),
    (*b"VA", 22),
    (*b"VG", 24),
    (*b"XK", 20),
    (*b"YE", 30),
];

/// The IBAN length for an upper-case country code, if the country has IBANs.
pub fn iban_length(country: [u8; 2]) -> Option<usize> {
    LENGTHS
        .binary_search_by(|(c, _)| c.cmp(&country))
        .ok()
        .map(|i| usize::from(LENGTHS[i].1))
}

#[inline]
fn is_iban_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

/// Mod-97 over the IBAN's characters (no spaces), rearranged.
fn mod97(chars: &[u8]) -> u32 {
    let (head, tail) = chars.split_at(4);
    tail.iter().chain(head).fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A' + 10)) % 97
        }
    })
}

/// Whether `chars` (no spaces) is a valid IBAN: known country, its length,
/// upper-case letters and digits only, and the mod-97 check.
fn valid_compact(chars: &[u8]) -> bool {
    if chars.len() < 5
        || !chars[0].is_ascii_uppercase()
        || !chars[1].is_ascii_uppercase()
        || !chars[2].is_ascii_digit()
        || !chars[3].is_ascii_digit()
        || !chars.iter().all(|&c| is_iban_char(c))
    {
        return false;
    }
    iban_length([chars[0], chars[1]]) == Some(chars.len()) && mod97(chars) == 1
}

/// Whether `s` is a valid IBAN: electronic or print form (spaces are ignored
/// wherever they are), upper-case letters only, the country's length and the
/// mod-97 check.
pub fn iban_valid(s: &str) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0;
    for &c in s.as_bytes() {
        if c == b' ' {
            continue;
        }
        if n == buf.len() {
            return false;
        }
        buf[n] = c;
        n += 1;
    }
    valid_compact(&buf[..n])
}

/// Find IBANs in `text` and append them to `out`.
pub fn scan(text: &str, out: &mut Vec<Match>) {
    scan_runs(text.as_bytes(), DetectorKind::Iban, at_run, out);
}

/// An IBAN whose check digits are the digit run at `d` (the country code
/// is the two bytes before), not starting before `floor`.
pub(crate) fn at_run(b: &[u8], d: usize, floor: usize) -> Option<(usize, usize)> {
    let s = d.checked_sub(2).filter(|&s| s >= floor)?;
    iban_at(b, s).map(|e| (s, e))
}

/// An IBAN starting at `s` (the country code); returns its end.
fn iban_at(b: &[u8], s: usize) -> Option<usize> {
    let cc = [b[s], b[s + 1]];
    if !cc[0].is_ascii_uppercase() || !cc[1].is_ascii_uppercase() {
        return None;
    }
    if s > 0 && is_word(b[s - 1]) {
        return None;
    }
    let len = iban_length(cc)?;
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut j = s;
    let spaced = b.get(s + 4) == Some(&b' ');
    while n < len {
        if spaced && n > 0 && n % 4 == 0 {
            // Print form: exactly one space between groups of four.
            if *b.get(j)? != b' ' {
                return None;
            }
            j += 1;
        }
        let c = *b.get(j)?;
        if !is_iban_char(c) {
            return None;
        }
        chars[n] = c;
        n += 1;
        j += 1;
    }
    if b.get(j).is_some_and(|&c| is_word(c)) {
        return None;
    }
    valid_compact(&chars[..n]).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::found;
    use super::*;

    fn ibans(text: &str) -> Vec<String> {
        found(DetectorKind::Iban, text)
    }

    /// Registry examples, one per country family.
    const EXAMPLES: &[&str] = &[
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "CH9300762011623852957",
        "AT611904300234573201",
        "NO9386011117947",
        "PL61109010140000071219812874",
        "SE4550000000058398257466",
        "IE29AIBK93115212345678",
        "PT50000201231234567890154",
        "LU280019400644750000",
        "MT84MALT011000012345MTLCAST001S",
        "SA0380000000608010167519",
        "BR1800360305000010009795493C1",
        "RU0204452560040702810412345678901",
        "LC55HEMM000100010012001200023015",
    ];

    #[test]
    fn registry_examples_are_valid() {
        for e in EXAMPLES {
            assert!(iban_valid(e), "{e}");
        }
    }

    #[test]
    fn finds_electronic_form_for_every_example() {
        for e in EXAMPLES {
            assert_eq!(ibans(&format!("IBAN: {e}.")), vec![e.to_string()], "{e}");
        }
    }

    #[test]
    fn finds_print_form_in_groups_of_four() {
        for e in EXAMPLES {
            let printed = e
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ");
            assert_eq!(
                ibans(&format!("pay to {printed} please")),
                vec![printed.clone()],
                "{printed}"
            );
        }
    }

    #[test]
    fn iban_valid_accepts_spaces_anywhere() {
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(iban_valid("DE8937040044 0532013000"));
    }

    #[test]
    fn rejects_a_wrong_check_digit_or_a_changed_character() {
        assert!(!iban_valid("DE88370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(ibans("DE88 3704 0044 0532 0130 00").is_empty());
    }

    #[test]
    fn rejects_wrong_length_for_the_country() {
        assert!(!iban_valid("DE8937040044053201300"));
        assert!(!iban_valid("DE893704004405320130000"));
        assert!(ibans("DE893704004405320130001").is_empty());
    }

    #[test]
    fn rejects_unknown_countries() {
        // Correct mod-97 but "US" and "ZZ" have no IBANs.
        assert!(!iban_valid("US64SVBKUS6S3300958879"));
        assert!(iban_length(*b"ZZ").is_none());
    }

    #[test]
    fn rejects_lower_case() {
        assert!(!iban_valid("de89370400440532013000"));
        assert!(ibans("de89 3704 0044 0532 0130 00").is_empty());
        assert!(ibans("GB82west12345698765432").is_empty());
    }

    #[test]
    fn rejects_irregular_spacing() {
        assert!(ibans("DE89 37040044 0532013000").is_empty());
        assert!(ibans("DE89  3704 0044 0532 0130 00").is_empty());
    }

    #[test]
    fn rejects_ibans_glued_to_words() {
        assert!(ibans("XDE89370400440532013000").is_empty());
        assert!(ibans("DE89370400440532013000X").is_empty());
        assert!(ibans("DE893704004405320130007").is_empty());
    }

    #[test]
    fn trailing_text_after_the_last_group_is_not_part_of_it() {
        assert_eq!(
            ibans("DE89 3704 0044 0532 0130 00 EUR"),
            vec!["DE89 3704 0044 0532 0130 00"]
        );
    }

    #[test]
    fn length_table_is_sorted_and_within_iso_bounds() {
        assert!(LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(LENGTHS.iter().all(|(_, l)| (15..=34).contains(l)));
    }

    use proptest::prelude::*;

    /// A valid IBAN for `country` with the given BBAN digits (check digits
    /// computed per ISO 7064 mod 97-10).
    fn make_iban(country: [u8; 2], bban: &str) -> String {
        let mut probe = Vec::from(country);
        probe.extend_from_slice(b"00");
        probe.extend_from_slice(bban.as_bytes());
        let check = 98 - mod97(&probe);
        format!("{}{check:02}{bban}", std::str::from_utf8(&country).unwrap())
    }

    proptest! {
        #[test]
        fn every_country_accepts_a_generated_valid_iban_in_both_forms(i in 0..LENGTHS.len(), digits in "[0-9A-Z]{30}") {
            let (cc, len) = LENGTHS[i];
            let bban = &digits[..usize::from(len) - 4];
            let iban = make_iban(cc, bban);
            prop_assert!(iban_valid(&iban), "{}", iban);
            prop_assert_eq!(ibans(&format!("to {iban}.")), vec![iban.clone()]);
            let printed = iban.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(ibans(&format!("IBAN {printed}, thanks")), vec![printed]);
        }

        #[test]
        fn changing_one_bban_digit_breaks_the_check(i in 0..LENGTHS.len(), digits in "[0-9]{30}", pos in 0usize..11, delta in 1u8..10) {
            let (cc, len) = LENGTHS[i];
            let bban = &digits[..usize::from(len) - 4];
            let mut iban = make_iban(cc, bban).into_bytes();
            let p = 4 + pos % bban.len();
            iban[p] = b'0' + (iban[p] - b'0' + delta) % 10;
            prop_assert!(!iban_valid(std::str::from_utf8(&iban).unwrap()));
        }
    }
}
