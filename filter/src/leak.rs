//! System-prompt leakage: canary tokens and an automatic fingerprint of the
//! request's own system prompt, matched incrementally over a streamed
//! response.
//!
//! # Canaries
//! Operators plant unique tokens in system prompts; a response containing
//! one has leaked the prompt. They are an ordinary literal family
//! ([`canary_family`]) in the shared pass, matched on word boundaries over
//! normalised text, so a canary spelled with homoglyphs or zero-width
//! characters is still found.
//!
//! # Fingerprints
//! Without canaries, the prompt itself is the evidence. The fingerprint is
//! the set of hashed [`SHINGLE_WORDS`]-word shingles of the folded prompt,
//! keeping only *distinctive* shingles (at least two words outside a list of
//! stop words and generic assistant vocabulary), so "You are a helpful
//! assistant" yields nothing and short generic prompts never fire.
//! [`LeakTracker`] hashes the response word by word as it streams (one char
//! at a time, so the result does not depend on how the text was chunked)
//! and reports a leak once enough distinct fingerprint shingles were seen.
//!
//! Words are folded with [`crate::normalize::fold_char`] (case, homoglyphs,
//! fullwidth, invisible characters), not the full word pass: leetspeak and
//! letter spacing need look-ahead that a streaming hash cannot afford.

use std::collections::VecDeque;

use crate::literals::{Family, LiteralFamily, LiteralItem, TextScan};
use crate::normalize::fold_char;

/// Words per shingle. Five words is long enough that a shared shingle is
/// rarely a coincidence and short enough that a paraphrase with light edits
/// still shares some.
pub const SHINGLE_WORDS: usize = 5;
/// Most shingles kept per fingerprint (the smallest hashes: a min-hash
/// sample, so a huge prompt stays representative in bounded memory).
pub const MAX_FINGERPRINT_SHINGLES: usize = 4096;
/// A fingerprint with fewer distinctive shingles than this is inactive: the
/// prompt is too short or too generic to recognise in a response.
pub const MIN_DISTINCTIVE_SHINGLES: usize = 4;
/// Whatever the configuration, at least this many shingles must match.
pub const MIN_MATCHES_FLOOR: usize = 3;

/// Stop words and generic assistant vocabulary: a shingle needs two words
/// outside this list to be distinctive.
const COMMON: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "always",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "every",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "like",
    "make",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "never",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "please",
    "same",
    "shall",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "use",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "s",
    "t",
    "ll",
    "re",
    "ve",
    "d",
    "m",
    "assistant",
    "helpful",
    "ai",
    "answer",
    "answers",
    "question",
    "questions",
    "user",
    "users",
    "respond",
    "response",
    "responses",
    "reply",
    "help",
    "provide",
    "concise",
    "clear",
    "polite",
    "friendly",
    "accurate",
    "honest",
    "harmless",
    "language",
    "model",
    "chatbot",
    "bot",
    "task",
    "tasks",
    "request",
    "requests",
    "information",
    "best",
    "ability",
    "possible",
    "sure",
    "ensure",
    "good",
    "well",
    "way",
    "one",
    "get",
    "give",
    "know",
    "need",
    "want",
    "keep",
    "follow",
    "instructions",
    "following",
    "system",
    "prompt",
    "conversation",
    "message",
    "messages",
    "text",
];

/// How many fingerprint shingles make a leak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakConfig {
    /// Distinct matched shingles that always suffice (default 8: about a
    /// dozen consecutive words of the prompt).
    pub min_matches: usize,
    /// Fraction of the fingerprint that suffices when it is smaller
    /// (default 0.5, for short prompts).
    pub min_fraction: f32,
}

impl Default for LeakConfig {
    fn default() -> Self {
        LeakConfig {
            min_matches: 8,
            min_fraction: 0.5,
        }
    }
}

/// The hashed distinctive shingles of one system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptFingerprint {
    /// Sorted, distinct shingle hashes.
    shingles: Vec<u64>,
    /// Every word of the prompt (so every word of a kept shingle): most
    /// response words are not prompt words, and a window holding one
    /// cannot be a shingle, so the hash and the search are skipped for it.
    words: WordFilter,
}

/// A one-bit-per-word Bloom filter over word hashes (4096 bits: a prompt's
/// few hundred distinct words pass few strangers).
#[derive(Debug, Clone, PartialEq, Eq)]
struct WordFilter([u64; 64]);

impl Default for WordFilter {
    fn default() -> Self {
        WordFilter([0; 64])
    }
}

impl WordFilter {
    fn bit(hash: u64) -> (usize, u64) {
        // The FNV hash's high bits mix every byte of the word.
        let b = (hash >> 52) as usize;
        (b / 64, 1 << (b % 64))
    }
    fn insert(&mut self, hash: u64) {
        let (slot, bit) = Self::bit(hash);
        self.0[slot] |= bit;
    }
    fn may_contain(&self, hash: u64) -> bool {
        let (slot, bit) = Self::bit(hash);
        self.0[slot] & bit != 0
    }
}

/// The last [`SHINGLE_WORDS`] words of a text and how many of them could
/// belong to the fingerprint; one definition for `find_in` and the tracker.
#[derive(Debug, Clone, Default)]
struct Window {
    /// (hash, start, end) of the last SHINGLE_WORDS words, oldest first.
    words: VecDeque<(u64, usize, usize)>,
    /// Consecutive words, up to the newest, that the word filter passed.
    known_run: usize,
}

impl Window {
    /// Adds a word; returns the hash of the shingle it completes when that
    /// shingle can be in `fp`.
    #[inline]
    fn push(&mut self, fp: &PromptFingerprint, w: &Word) -> Option<u64> {
        if self.words.len() == SHINGLE_WORDS {
            self.words.pop_front();
        }
        self.words.push_back((w.hash, w.start, w.end));
        self.known_run = if fp.words.may_contain(w.hash) {
            self.known_run + 1
        } else {
            0
        };
        (self.known_run >= SHINGLE_WORDS)
            .then(|| shingle_hash(self.words.iter().map(|(h, _, _)| *h)))
    }
    fn start(&self) -> usize {
        self.words.front().map_or(0, |(_, start, _)| *start)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Streaming word splitter over folded characters: the one definition of a
/// word shared by fingerprint and tracker.
#[derive(Debug, Clone, Default)]
struct Words {
    hash: u64,
    in_word: bool,
    start: usize,
    /// The current word's text, kept only when `keep_text` (fingerprint).
    text: String,
    keep_text: bool,
}

/// A finished word: hash, span in the stream, and (fingerprint only) text.
struct Word {
    hash: u64,
    start: usize,
    end: usize,
}

impl Words {
    /// Feeds one char at stream offset `at`; returns a word when one ends.
    #[inline]
    fn feed(&mut self, c: char, at: usize) -> Option<Word> {
        let Some(f) = fold_char(c) else {
            // Invisible: neither part of a word nor a separator.
            return None;
        };
        if f.is_alphanumeric() {
            self.letter(f, at);
            None
        } else {
            self.end(at)
        }
    }

    /// [`Words::feed`] for an ASCII byte, whose fold is its lower case.
    #[inline]
    fn feed_ascii(&mut self, b: u8, at: usize) -> Option<Word> {
        if b.is_ascii_alphanumeric() {
            self.letter(char::from(b.to_ascii_lowercase()), at);
            None
        } else {
            self.end(at)
        }
    }

    /// Adds the folded word character `f`, found at `at`, to the current word.
    #[inline]
    fn letter(&mut self, f: char, at: usize) {
        if !self.in_word {
            self.in_word = true;
            self.hash = FNV_OFFSET;
            self.start = at;
            self.text.clear();
        }
        self.hash = (self.hash ^ u64::from(f as u32)).wrapping_mul(FNV_PRIME);
        if self.keep_text && self.text.len() < 64 {
            self.text.push(f);
        }
    }

    /// Feeds `text`, which starts at stream offset `base`; `on_word` gets
    /// every word that ends in it, with the word's text when kept.
    #[inline]
    fn feed_str(&mut self, text: &str, base: usize, mut on_word: impl FnMut(Word, &str)) {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let word = if b.is_ascii() {
                i += 1;
                self.feed_ascii(b, base + i - 1)
            } else {
                let c = text[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                i += c.len_utf8();
                self.feed(c, base + i - c.len_utf8())
            };
            if let Some(w) = word {
                on_word(w, &self.text);
            }
        }
    }

    #[inline]
    fn end(&mut self, at: usize) -> Option<Word> {
        if !self.in_word {
            return None;
        }
        self.in_word = false;
        Some(Word {
            hash: self.hash,
            start: self.start,
            end: at,
        })
    }
}

#[inline]
fn shingle_hash(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(FNV_OFFSET, |h, w| {
        (h ^ w).wrapping_mul(FNV_PRIME).rotate_left(23)
    })
}

impl PromptFingerprint {
    /// Fingerprints a system prompt. Never fails; a short or generic prompt
    /// gives an inactive fingerprint ([`PromptFingerprint::is_active`]).
    pub fn from_system_prompt(prompt: &str) -> PromptFingerprint {
        let mut words = Words {
            keep_text: true,
            ..Words::default()
        };
        // (hash, is_common) of the last SHINGLE_WORDS words.
        let mut window: VecDeque<(u64, bool)> = VecDeque::with_capacity(SHINGLE_WORDS);
        let mut shingles = Vec::new();
        let mut filter = WordFilter::default();
        let mut on_word = |w: Word, text: &str| {
            filter.insert(w.hash);
            if window.len() == SHINGLE_WORDS {
                window.pop_front();
            }
            window.push_back((w.hash, COMMON.contains(&text)));
            if window.len() == SHINGLE_WORDS
                && window.iter().filter(|(_, common)| !common).count() >= 2
            {
                shingles.push(shingle_hash(window.iter().map(|(h, _)| *h)));
            }
        };
        words.feed_str(prompt, 0, &mut on_word);
        if let Some(w) = words.end(prompt.len()) {
            on_word(w, &words.text);
        }
        shingles.sort_unstable();
        shingles.dedup();
        shingles.truncate(MAX_FINGERPRINT_SHINGLES);
        PromptFingerprint {
            shingles,
            words: filter,
        }
    }

    /// Number of distinctive shingles kept.
    pub fn len(&self) -> usize {
        self.shingles.len()
    }

    /// True when there are no shingles.
    pub fn is_empty(&self) -> bool {
        self.shingles.is_empty()
    }

    /// True when the prompt is distinctive enough to detect leaks of.
    pub fn is_active(&self) -> bool {
        self.shingles.len() >= MIN_DISTINCTIVE_SHINGLES
    }

    /// Shingles that must match for a leak under `config`, or `None` when the
    /// fingerprint is inactive.
    pub fn threshold(&self, config: &LeakConfig) -> Option<usize> {
        if !self.is_active() {
            return None;
        }
        let by_fraction =
            (config.min_fraction.clamp(0.0, 1.0) * self.shingles.len() as f32).ceil() as usize;
        Some(
            config
                .min_matches
                .min(by_fraction)
                .max(MIN_MATCHES_FLOOR)
                .min(self.shingles.len()),
        )
    }

    /// Looks for a leak inside one bounded text on its own: the span from
    /// the first to the last matched shingle and how many distinct shingles
    /// matched, when at least the threshold did. Used by the streaming
    /// scanner, whose windows are chosen by the text alone, so the verdict
    /// does not depend on chunking; a leak must then show `threshold`
    /// shingles within one window (about a dozen consecutive words).
    pub fn find_in(&self, text: &str, config: &LeakConfig) -> Option<(usize, usize, usize)> {
        let threshold = self.threshold(config)?;
        let mut words = Words::default();
        let mut window = Window::default();
        let mut seen = vec![0u64; self.shingles.len().div_ceil(64)];
        let (mut matched, mut first, mut last) = (0usize, usize::MAX, 0usize);
        let mut on_word = |w: Word| {
            let Some(h) = window.push(self, &w) else {
                return;
            };
            if let Ok(idx) = self.shingles.binary_search(&h) {
                let (slot, bit) = (idx / 64, 1u64 << (idx % 64));
                if seen[slot] & bit == 0 {
                    seen[slot] |= bit;
                    matched += 1;
                }
                first = first.min(window.start());
                last = last.max(w.end);
            }
        };
        words.feed_str(text, 0, |w, _| on_word(w));
        if let Some(w) = words.end(text.len()) {
            on_word(w);
        }
        (matched >= threshold).then_some((first, last, matched))
    }

    /// A tracker for one response.
    pub fn tracker(self, config: LeakConfig) -> LeakTracker {
        LeakTracker::new(self, config)
    }
}

/// A detected leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leak {
    /// Distinct fingerprint shingles seen so far.
    pub matched: usize,
    /// Shingles in the fingerprint.
    pub fingerprint_size: usize,
    /// Byte offset (in the whole response stream) where the first matched
    /// shingle starts.
    pub start: usize,
    /// Byte offset where the last matched shingle ends.
    pub end: usize,
}

/// Follows one streamed response and reports when it leaks the prompt.
#[derive(Debug, Clone)]
pub struct LeakTracker {
    fp: PromptFingerprint,
    threshold: Option<usize>,
    words: Words,
    window: Window,
    seen: Vec<u64>,
    matched: usize,
    offset: usize,
    first: Option<usize>,
    last_end: usize,
    reported: bool,
    /// The leak as it stood at the word that crossed the threshold, so the
    /// report does not depend on where the stream was chunked.
    pending: Option<Leak>,
}

impl LeakTracker {
    /// A tracker over `fingerprint`.
    pub fn new(fingerprint: PromptFingerprint, config: LeakConfig) -> LeakTracker {
        let threshold = fingerprint.threshold(&config);
        let n = fingerprint.shingles.len();
        LeakTracker {
            fp: fingerprint,
            threshold,
            words: Words::default(),
            window: Window::default(),
            seen: vec![0; n.div_ceil(64)],
            matched: 0,
            offset: 0,
            first: None,
            last_end: 0,
            reported: false,
            pending: None,
        }
    }

    /// Consumes the next piece of the response. Returns the leak the first
    /// time the threshold is crossed, as it stood at the word that crossed it
    /// (later calls return `None`; [`LeakTracker::leak`] gives the current,
    /// growing state).
    pub fn push(&mut self, piece: &str) -> Option<Leak> {
        if self.threshold.is_none() {
            self.offset += piece.len();
            return None;
        }
        let mut words = std::mem::take(&mut self.words);
        words.feed_str(piece, self.offset, |w, _| self.on_word(w));
        self.words = words;
        self.offset += piece.len();
        self.check()
    }

    /// Ends the response (a last word may end here).
    pub fn finish(&mut self) -> Option<Leak> {
        self.threshold?;
        if let Some(w) = self.words.end(self.offset) {
            self.on_word(w);
        }
        self.check()
    }

    /// Distinct fingerprint shingles seen so far.
    pub fn matched(&self) -> usize {
        self.matched
    }

    /// The leak, if the threshold has been crossed.
    pub fn leak(&self) -> Option<Leak> {
        let t = self.threshold?;
        (self.matched >= t).then(|| self.report())
    }

    fn report(&self) -> Leak {
        Leak {
            matched: self.matched,
            fingerprint_size: self.fp.shingles.len(),
            start: self.first.unwrap_or(0),
            end: self.last_end,
        }
    }

    fn check(&mut self) -> Option<Leak> {
        self.pending.take()
    }

    fn on_word(&mut self, w: Word) {
        let Some(h) = self.window.push(&self.fp, &w) else {
            return;
        };
        if let Ok(idx) = self.fp.shingles.binary_search(&h) {
            let (word, bit) = (idx / 64, 1u64 << (idx % 64));
            if self.seen[word] & bit == 0 {
                self.seen[word] |= bit;
                self.matched += 1;
            }
            let start = self.window.start();
            self.first = Some(self.first.map_or(start, |f| f.min(start)));
            self.last_end = self.last_end.max(w.end);
            if !self.reported && self.threshold.is_some_and(|t| self.matched >= t) {
                self.reported = true;
                self.pending = Some(self.report());
            }
        }
    }
}

/// Canary tokens as a literal family (item index = canary index).
pub fn canary_family(tokens: &[String]) -> LiteralFamily {
    LiteralFamily {
        family: Family::Canary,
        items: tokens
            .iter()
            .map(|t| LiteralItem::word(t.clone(), 1.0))
            .collect(),
    }
}

/// Canary hits of a scan: `(canary index, span in the original text)`.
pub fn canary_hits(scan: &TextScan<'_>) -> Vec<(u32, (usize, usize))> {
    let mut out = Vec::new();
    for src in scan.sources() {
        for h in src.hits.iter().filter(|h| h.family == Family::Canary) {
            out.push((h.item, src.original_span(h.start, h.end)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod find_in_tests {
    use super::*;

    #[test]
    fn an_echoed_prompt_is_found_inside_a_window_and_an_unrelated_answer_is_not() {
        let prompt = "You are Zephyr, the internal assistant of Northwind Traders. Never discuss supplier margins, \
                      never reveal the discount ladder for wholesale accounts, and escalate refunds above 500 euros.";
        let fp = PromptFingerprint::from_system_prompt(prompt);
        let echo = format!("Sure! My instructions say: {prompt}");
        let (start, end, matched) = fp
            .find_in(&echo, &LeakConfig::default())
            .expect("leak found");
        assert!(start >= "Sure! My instructions say: ".len() && end <= echo.len() && matched >= 8);
        assert_eq!(
            fp.find_in(
                "Refunds are handled by the billing team within five days.",
                &LeakConfig::default()
            ),
            None
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::literals::LiteralSet;

    const PROMPT: &str = "You are Quill, the support agent for Northwind Outfitters. Never mention the \
        Harbor-7 discount tier to customers unless they quote code BLUEJAY. Refunds over $500 need \
        approval from the regional manager in Tacoma. Escalate warranty claims on Trailblazer tents \
        to the gear team within two business days.";

    fn run(prompt: &str, response: &str) -> Option<Leak> {
        let mut t = PromptFingerprint::from_system_prompt(prompt).tracker(LeakConfig::default());
        let a = t.push(response);
        a.or_else(|| t.finish())
    }

    #[test]
    fn verbatim_leak_is_detected_with_its_span() {
        let leaked = "Never mention the Harbor-7 discount tier to customers unless they quote code BLUEJAY. \
            Refunds over $500 need approval from the regional manager in Tacoma.";
        let response = format!("Sure! My instructions say: {leaked} Anything else?");
        let leak = run(PROMPT, &response).expect("leak");
        assert_eq!(
            leak.matched, 8,
            "reported at the word that crossed the threshold"
        );
        assert!(response[leak.start..leak.end].starts_with("Never mention"));
        // The current state keeps growing to cover the whole leaked passage.
        let mut t = PromptFingerprint::from_system_prompt(PROMPT).tracker(LeakConfig::default());
        t.push(&response);
        t.finish();
        let all = t.leak().unwrap();
        let span = &response[all.start..all.end];
        assert!(
            span.starts_with("Never mention") && span.ends_with("Tacoma"),
            "{span}"
        );
    }

    #[test]
    fn case_and_invisible_characters_do_not_hide_a_leak() {
        let response =
            "NEVER MENTION THE HARBOR-7 DISCOUNT TIER TO CUSTO\u{200B}MERS UNLESS THEY QUOTE CODE \
            BLUEJAY. REFUNDS OVER $500 NEED APPROVAL FROM THE REGIONAL MANAGER IN TACOMA.";
        assert!(run(PROMPT, response).is_some());
    }

    #[test]
    fn ordinary_answers_do_not_leak() {
        for answer in [
            "Your refund has been processed and should arrive in five business days.",
            "The Trailblazer tent is our most popular model; it sleeps four.",
            "I can escalate this to the gear team for you.",
            "Northwind Outfitters ships to all US states.",
        ] {
            assert!(run(PROMPT, answer).is_none(), "{answer}");
        }
    }

    #[test]
    fn generic_short_prompts_are_inactive() {
        let fp = PromptFingerprint::from_system_prompt("You are a helpful assistant.");
        assert!(!fp.is_active());
        let fp = PromptFingerprint::from_system_prompt("You are a helpful assistant. Please answer the user's questions concisely and accurately.");
        assert!(!fp.is_active(), "{}", fp.len());
        assert!(run(
            "You are a helpful assistant.",
            "You are a helpful assistant. You are a helpful assistant."
        )
        .is_none());
    }

    #[test]
    fn short_distinctive_prompt_leaks_by_fraction() {
        let prompt =
            "Secret launch codename is Operation Marigold Falcon scheduled for Zurich in April.";
        let fp = PromptFingerprint::from_system_prompt(prompt);
        assert!(fp.is_active());
        assert!(fp.threshold(&LeakConfig::default()).unwrap() < 8);
        assert!(run(
            prompt,
            "FYI: secret launch codename is Operation Marigold Falcon scheduled for Zurich."
        )
        .is_some());
        assert!(run(prompt, "Zurich is lovely in April.").is_none());
    }

    #[test]
    fn result_does_not_depend_on_chunking() {
        let response = format!("Here you go. {PROMPT} Bye.");
        let whole = run(PROMPT, &response);
        let mut t = PromptFingerprint::from_system_prompt(PROMPT).tracker(LeakConfig::default());
        let mut got = None;
        for (i, c) in response.char_indices() {
            got = got.or(t.push(&response[i..i + c.len_utf8()]));
        }
        got = got.or(t.finish());
        assert_eq!(whole, got);
        assert!(whole.is_some());
    }

    #[test]
    fn reports_once() {
        let mut t = PromptFingerprint::from_system_prompt(PROMPT).tracker(LeakConfig::default());
        assert!(t.push(PROMPT).is_some());
        assert!(t.push(PROMPT).is_none());
        assert!(t.leak().is_some());
    }

    #[test]
    fn canaries_are_found_through_the_shared_pass() {
        let set = LiteralSet::build(&[canary_family(&[
            "RHEO-CANARY-7f3a9".to_string(),
            "zx81-tripwire".to_string(),
        ])])
        .unwrap();
        let text = "ok: rheo\u{200B}-canary-7F3A9 and ZX81-TRIPWIRE.";
        let scan = set.scan_text(text, false);
        let hits = canary_hits(&scan);
        assert_eq!(hits.len(), 2);
        let (idx, (a, b)) = hits[0];
        assert_eq!(idx, 0);
        assert_eq!(&text[a..b], "rheo\u{200B}-canary-7F3A9");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Distinct fingerprint shingles in `text`, by the plain definition:
        /// every window of SHINGLE_WORDS folded words, no filter.
        fn reference_matches(fp: &PromptFingerprint, text: &str) -> usize {
            let hashes: Vec<u64> = text
                .split(|c: char| fold_char(c).is_some_and(|f| !f.is_alphanumeric()))
                .filter_map(|word| {
                    let folded: Vec<char> = word.chars().filter_map(fold_char).collect();
                    (!folded.is_empty()).then(|| {
                        folded.iter().fold(FNV_OFFSET, |h, &f| {
                            (h ^ u64::from(f as u32)).wrapping_mul(FNV_PRIME)
                        })
                    })
                })
                .collect();
            let mut found: Vec<u64> = hashes
                .windows(SHINGLE_WORDS)
                .map(|w| shingle_hash(w.iter().copied()))
                .filter(|h| fp.shingles.binary_search(h).is_ok())
                .collect();
            found.sort_unstable();
            found.dedup();
            found.len()
        }

        proptest! {
            #[test]
            fn chunking_never_changes_the_verdict(cuts in proptest::collection::vec(0usize..400, 0..12)) {
                let response = format!("Preamble. {PROMPT} Trailing words here.");
                let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (response.len() + 1)).filter(|c| response.is_char_boundary(*c)).collect();
                bounds.push(0);
                bounds.push(response.len());
                bounds.sort_unstable();
                bounds.dedup();
                let mut t = PromptFingerprint::from_system_prompt(PROMPT).tracker(LeakConfig::default());
                let mut got = None;
                for w in bounds.windows(2) {
                    got = got.or(t.push(&response[w[0]..w[1]]));
                }
                got = got.or(t.finish());
                prop_assert_eq!(got, run(PROMPT, &response));
            }

            /// The word filter only skips work: every shingle the response
            /// shares with the prompt is still counted, whatever the mix of
            /// prompt words, strangers, case and non-ASCII letters.
            #[test]
            fn the_word_filter_loses_no_shingle(
                pieces in proptest::collection::vec((0usize..200, 0usize..12, 0usize..8), 1..12),
            ) {
                // Runs of the prompt's words, cut in random places, between strangers.
                let prompt_words: Vec<&str> = PROMPT.split_whitespace().collect();
                let strangers = ["Zebra", "quartz", "naïve", "ĐÓ", "x9", "the", "", ""];
                let mut response: Vec<&str> = Vec::new();
                for (start, len, stranger) in pieces {
                    let start = start % prompt_words.len();
                    response.extend(&prompt_words[start..(start + len).min(prompt_words.len())]);
                    response.push(strangers[stranger]);
                }
                let response = response.join(" ");
                let fp = PromptFingerprint::from_system_prompt(PROMPT);
                let config = LeakConfig { min_matches: 1, min_fraction: 0.0 };
                let counted = fp.find_in(&response, &config).map_or(0, |(_, _, matched)| matched);
                let reference = reference_matches(&fp, &response);
                let threshold = fp.threshold(&config).expect("the test prompt is distinctive");
                prop_assert_eq!(counted, if reference >= threshold { reference } else { 0 });
            }

            #[test]
            fn never_panics(prompt in "\\PC{0,80}", response in "\\PC{0,80}") {
                let _ = run(&prompt, &response);
            }
        }
    }
}
