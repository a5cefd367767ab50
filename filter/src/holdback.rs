//! The text-level streaming redactor: one [`Holdback`] per channel (a choice,
//! a content block, an output item) turns a sequence of text *pieces* into a
//! sequence of redacted pieces, holding back only a bounded window.
//!
//! # The problem
//!
//! An LLM streams its answer in small pieces (a few bytes per SSE frame) and a
//! secret such as `jane@example.com` may arrive as `ja`, `ne@exa`, `mple.com`.
//! We must redact it, yet forward text as early as possible, and put each
//! piece of redacted text back into the frame its input came from. Above all
//! the result must not depend on how the provider (or the network) happened
//! to cut the text: otherwise a replay, a retry or an attacker choosing the
//! chunking could change what leaks.
//!
//! # The design: a canonical block schedule
//!
//! The scanner never runs the detector on "whatever has arrived"; it runs it
//! on windows whose positions depend only on the text:
//!
//! ```text
//!   committed (b_k)        b_{k+1} = b_k + step           b_{k+1} + lookahead
//!        |<------- block k ------->|<------ lookahead ------->|
//!  |<-C->|                                                    |
//!  ws    window passed to SpanDetector::find ................ we
//! ```
//!
//! * `lookahead = max_span + context`; `C = context`; `step` is configurable.
//! * Block `k` is decided once the text reaches `we` (or at [`Holdback::finish`]):
//!   the detector sees `[ws, we)` and the scanner keeps the redactions that
//!   *start* inside the block. A redaction starting in block `k` is at most
//!   `max_span` long, so the window shows it whole, with `context` bytes on
//!   either side.
//! * Every boundary is rounded up to a char boundary of the text, so windows
//!   are valid `&str` and are the same for every split.
//! * Because the sequence of detector calls is a function of the text alone,
//!   the output is too, **for any deterministic detector** — even one that
//!   breaks its own `max_span`/`context` promise (it then risks misses, never
//!   split-dependence). For a *local* detector (its verdict on a span depends
//!   on at most `context` bytes around it) the output also equals redacting
//!   the whole text in one call.
//!
//! Redactions are merged deterministically: sorted by start (ties: longest
//! first, then tag), any redaction that overlaps or touches the current run
//! extends it, and the run is replaced by the *earliest* redaction's
//! replacement. The replacement goes to the piece holding the run's first
//! byte; the rest of the run is removed from whatever pieces hold it.
//! A detector can mark a tag as report-only or blocking ([`SpanAction`]):
//! reported spans are listed but change no text and take no part in merging.
//!
//! # Bounds
//!
//! After every call, the uncommitted text is shorter than
//! `step + max_span + context + 3` bytes (two char-boundary roundings of at
//! most 3 bytes each, minus one), and the scanner keeps at most `context + 3`
//! further bytes of already released text as left context. Text no longer
//! needed is dropped lazily (when it is at least as long as the live text,
//! or 4 KiB while the live text is at most four times that), so a large text
//! pushed at once costs linear time, not a copy per step. A piece is
//! released when its last byte is committed, so a piece longer than the
//! window is held whole until then (the stream layer bounds frame sizes).
//! See [`Bounds`].
//!
//! Latency is the price of split-independence: text is released up to
//! `step + lookahead` bytes after it arrives. The default step is a quarter of
//! the lookahead (at least [`HoldbackConfig::MIN_AUTO_STEP`]), so the detector
//! reads each byte about `(step + lookahead + context) / step` ≈ 5–6 times.

use std::collections::VecDeque;

/// Dead text kept before compaction, at most (see `decide_block`).
const COMPACT_SLACK: usize = 4096;

/// One edit a detector wants: replace `text[start..end]` with `replacement`.
/// `tag` is an opaque id the caller uses to map the edit back to a finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Redaction {
    /// Byte offset of the first redacted byte in the text given to `find`.
    pub start: usize,
    /// Byte offset one past the last redacted byte.
    pub end: usize,
    /// Text written in place of the span.
    pub replacement: String,
    /// Caller-defined id (detector, rule) reported back with the edit.
    pub tag: u32,
}

/// A detector the scanner can drive over windows of text.
///
/// The scanner's split-independence holds for any deterministic detector;
/// `max_span` and `context` only decide how far it looks ahead, and so
/// whether matches near window edges are found whole.
pub trait SpanDetector {
    /// The longest span (in bytes) a redaction can cover.
    fn max_span(&self) -> usize;
    /// How many bytes on either side of a span can change the verdict on it
    /// (word boundaries, a preceding `key=`, ...).
    fn context(&self) -> usize;
    /// Append the redactions found in `text` (offsets into `text`) to `out`.
    /// Spans should fall on char boundaries; the scanner widens those that do not.
    fn find(&self, text: &str, out: &mut Vec<Redaction>);
    /// What a span with `tag` does. The default redacts.
    fn action(&self, tag: u32) -> SpanAction {
        let _ = tag;
        SpanAction::Redact
    }
}

/// What the scanner does with a span a detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanAction {
    /// Replace the span (merged with overlapping and touching spans).
    #[default]
    Redact,
    /// Only report it (a flag): the text is left as it is and the span
    /// takes no part in merging.
    Report,
    /// Redact it *and* ask the caller to end the response. The stream
    /// ([`crate::stream::ResponseStream`]) ends in-band before any byte of
    /// the span's piece is sent.
    Block,
}

macro_rules! forward_detector {
    ($($ty:ty),*) => {$(
        impl<T: SpanDetector + ?Sized> SpanDetector for $ty {
            fn max_span(&self) -> usize {
                (**self).max_span()
            }
            fn context(&self) -> usize {
                (**self).context()
            }
            fn find(&self, text: &str, out: &mut Vec<Redaction>) {
                (**self).find(text, out)
            }
            fn action(&self, tag: u32) -> SpanAction {
                (**self).action(tag)
            }
        }
    )*};
}

forward_detector!(&T, Box<T>, std::rc::Rc<T>, std::sync::Arc<T>);

/// Tuning for a [`Holdback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldbackConfig {
    /// Bytes committed per detector call. `0` picks
    /// `max(MIN_AUTO_STEP, lookahead / 4)`. Smaller steps release text
    /// sooner but call the detector more often.
    pub step: usize,
}

impl HoldbackConfig {
    /// The smallest step the automatic choice makes: below this the per-call
    /// overhead of a detector dominates.
    pub const MIN_AUTO_STEP: usize = 64;
}

/// The sizes that shape a scanner, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes committed per detector call (at least 1).
    pub step: usize,
    /// `max_span + context`: how far past a block the window reaches.
    pub lookahead: usize,
    /// Bytes of left context given to the detector before each block.
    pub context: usize,
}

impl Bounds {
    /// Computes the bounds for `detector` under `config`.
    pub fn new<D: SpanDetector + ?Sized>(detector: &D, config: HoldbackConfig) -> Bounds {
        let context = detector.context();
        let lookahead = detector.max_span().saturating_add(context);
        let step = if config.step == 0 {
            (lookahead / 4).max(HoldbackConfig::MIN_AUTO_STEP)
        } else {
            config.step
        };
        Bounds {
            step,
            lookahead,
            context,
        }
    }

    /// Upper bound on uncommitted (held back) text bytes after any call:
    /// `step + lookahead + 3`.
    pub fn max_uncommitted(&self) -> usize {
        self.step + self.lookahead + 3
    }

    /// Upper bound on the original text bytes a scanner retains after any
    /// call: the uncommitted text plus up to `context + 3` bytes of left context.
    pub fn max_retained(&self) -> usize {
        self.max_uncommitted() + self.context + 3
    }
}

/// A redaction as applied, in offsets of the channel's whole input text
/// (counted from the scanner's creation or last [`Holdback::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppliedRedaction {
    /// Input offset of the first redacted byte.
    pub start: usize,
    /// Input offset one past the last redacted byte.
    pub end: usize,
    /// The detector's tag.
    pub tag: u32,
    /// What the detector asked for ([`SpanDetector::action`]).
    pub action: SpanAction,
}

/// A piece whose output is final, released in the order pieces were pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// The id [`Holdback::push`] returned for the piece.
    pub id: u64,
    /// The redacted text that belongs in the piece's frame, when a redaction
    /// touched the piece (it then differs from the input, unless a
    /// replacement happened to equal what it replaced). `None`: the output
    /// is the input verbatim. Most pieces are untouched, and their text is
    /// not copied for the caller, which has it already.
    pub rewrite: Option<String>,
    /// Spans that start in this piece (merged runs report every member;
    /// [`SpanAction::Report`] spans are listed but were not applied).
    pub redactions: Vec<AppliedRedaction>,
}

impl Released {
    /// Whether any redaction touched the piece.
    pub fn changed(&self) -> bool {
        self.rewrite.is_some()
    }

    /// The piece's output, given the `input` it was pushed with.
    pub fn text<'a>(&'a self, input: &'a str) -> &'a str {
        self.rewrite.as_deref().unwrap_or(input)
    }
}

#[derive(Debug)]
struct Pending {
    id: u64,
    start: usize,
    end: usize,
    /// The output emitted so far, once it has to be kept apart from `buf`:
    /// the piece changed, or compaction dropped its start. `None`: the
    /// output so far is `buf[start..committed]`, not copied.
    out: Option<String>,
    changed: bool,
    redactions: Vec<AppliedRedaction>,
}

impl Pending {
    fn out_len(&self) -> usize {
        self.out.as_ref().map_or(0, String::len)
    }

    /// The piece's output so far, copied out of `buf` (whose text from
    /// `base` on is the input) if it was not yet: everything of the piece
    /// before `emitted_to` has been emitted, and verbatim while `out` is
    /// `None`.
    fn materialize(&mut self, buf: &str, base: usize, emitted_to: usize) -> &mut String {
        let (start, end) = (self.start, self.end);
        self.out.get_or_insert_with(|| {
            let to = emitted_to.clamp(start, end);
            buf[start - base..to - base].to_string()
        })
    }
}

/// The latest merged run of redactions. Its replacement has been emitted
/// already (at its start); only its end still matters, for merging.
#[derive(Debug, Clone, Copy)]
struct Run {
    end: usize,
}

/// A streaming redactor for one channel of text. See the module docs for the
/// schedule, the merge rule and the bounds.
#[derive(Debug)]
pub struct Holdback {
    bounds: Bounds,
    /// Original text from absolute offset `base` to `total`.
    buf: String,
    base: usize,
    /// Text before this offset is no longer needed (compacted lazily).
    keep_from: usize,
    total: usize,
    /// Everything before this offset is decided (a block boundary).
    committed: usize,
    /// The latest merged run; it may reach past `committed`.
    run: Option<Run>,
    pieces: VecDeque<Pending>,
    /// The sum of the pieces' `out` lengths, kept as they change: the stream
    /// checks its cap after every frame, and summing ~100 pieces each time
    /// was 6% of a stream's time.
    out_bytes: usize,
    next_id: u64,
    scratch: Vec<Redaction>,
    accepted: Vec<Redaction>,
    /// Bytes moved by compaction, for the test that keeps it linear.
    #[cfg(test)]
    moved: usize,
}

impl Holdback {
    /// A scanner sized for `detector`.
    pub fn new<D: SpanDetector + ?Sized>(detector: &D, config: HoldbackConfig) -> Holdback {
        Holdback::with_bounds(Bounds::new(detector, config))
    }

    /// A scanner with explicit bounds (the detector passed to `push` should
    /// agree with them).
    pub fn with_bounds(bounds: Bounds) -> Holdback {
        let bounds = Bounds {
            step: bounds.step.max(1),
            ..bounds
        };
        Holdback {
            bounds,
            buf: String::new(),
            base: 0,
            keep_from: 0,
            total: 0,
            committed: 0,
            run: None,
            pieces: VecDeque::new(),
            out_bytes: 0,
            next_id: 0,
            scratch: Vec::new(),
            accepted: Vec::new(),
            #[cfg(test)]
            moved: 0,
        }
    }

    /// The sizes this scanner works with.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Feeds one piece; appends every piece that became final to `out`, in
    /// order. Returns the id the piece will be released under.
    pub fn push<D: SpanDetector + ?Sized>(
        &mut self,
        detector: &D,
        piece: &str,
        out: &mut Vec<Released>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let start = self.total;
        self.total += piece.len();
        self.buf.push_str(piece);
        self.pieces.push_back(Pending {
            id,
            start,
            end: self.total,
            out: None,
            changed: false,
            redactions: Vec::new(),
        });
        self.advance(detector, false);
        self.release(out);
        debug_assert_eq!(
            self.out_bytes,
            self.pieces.iter().map(Pending::out_len).sum::<usize>()
        );
        id
    }

    /// Ends the text: decides the remaining blocks, releases every piece and
    /// resets the scanner (offsets restart at 0, ids keep counting).
    pub fn finish<D: SpanDetector + ?Sized>(&mut self, detector: &D, out: &mut Vec<Released>) {
        self.advance(detector, true);
        self.release(out);
        debug_assert!(self.pieces.is_empty() && self.out_bytes == 0);
        self.buf.clear();
        self.base = 0;
        self.keep_from = 0;
        self.total = 0;
        self.committed = 0;
        self.run = None;
    }

    /// Bytes of text received but not yet decided.
    pub fn uncommitted(&self) -> usize {
        self.total - self.committed
    }

    /// Bytes this scanner holds: retained input plus output built for pieces
    /// not yet released.
    pub fn held_bytes(&self) -> usize {
        let dead = self.keep_from.saturating_sub(self.base);
        self.buf.len() - dead.min(self.buf.len()) + self.out_bytes
    }

    /// Pieces pushed but not yet released.
    pub fn pending_pieces(&self) -> usize {
        self.pieces.len()
    }

    fn is_boundary(&self, abs: usize) -> bool {
        abs >= self.total || self.buf.is_char_boundary(abs - self.base)
    }

    /// Smallest char boundary `>= abs` (for `abs <= total`).
    fn ceil_boundary(&self, mut abs: usize) -> usize {
        while !self.is_boundary(abs) {
            abs += 1;
        }
        abs
    }

    /// Largest char boundary `<= abs`, not below `base`.
    fn floor_boundary(&self, mut abs: usize) -> usize {
        abs = abs.max(self.base);
        while !self.is_boundary(abs) {
            abs -= 1;
        }
        abs
    }

    fn advance<D: SpanDetector + ?Sized>(&mut self, detector: &D, finishing: bool) {
        while self.committed < self.total {
            let raw_next = self.committed + self.bounds.step;
            let next = if raw_next <= self.total {
                self.ceil_boundary(raw_next)
            } else if finishing {
                self.total
            } else {
                return;
            };
            let raw_end = next + self.bounds.lookahead;
            let window_end = if raw_end <= self.total {
                self.ceil_boundary(raw_end)
            } else if finishing {
                self.total
            } else {
                return;
            };
            self.decide_block(detector, next, window_end);
        }
    }

    /// Decides `[committed, next)` from the window `[committed - context, window_end)`.
    fn decide_block<D: SpanDetector + ?Sized>(
        &mut self,
        detector: &D,
        next: usize,
        window_end: usize,
    ) {
        let block_start = self.committed;
        let window_start = self.floor_boundary(block_start.saturating_sub(self.bounds.context));
        let window = &self.buf[window_start - self.base..window_end - self.base];

        self.scratch.clear();
        detector.find(window, &mut self.scratch);
        self.accepted.clear();
        for r in self.scratch.drain(..) {
            let (s, e) = (r.start.min(r.end), r.start.max(r.end));
            let e = e.min(window.len());
            if s >= e {
                continue;
            }
            let s = floor_char(window, s);
            let e = ceil_char(window, e);
            let abs_s = window_start + s;
            if abs_s < block_start || abs_s >= next {
                continue;
            }
            self.accepted.push(Redaction {
                start: abs_s,
                end: window_start + e,
                ..r
            });
        }
        self.accepted.sort_by(|a, b| {
            (a.start, std::cmp::Reverse(a.end), a.tag, &a.replacement).cmp(&(
                b.start,
                std::cmp::Reverse(b.end),
                b.tag,
                &b.replacement,
            ))
        });
        self.accepted
            .dedup_by(|a, b| a.start == b.start && a.end == b.end && a.tag == b.tag);

        // `pos` walks the block; everything before it has been emitted. The
        // current run (possibly carried over from an earlier block) always
        // starts at or before `pos`.
        let mut pos = block_start;
        let accepted = std::mem::take(&mut self.accepted);
        for r in &accepted {
            let action = detector.action(r.tag);
            self.note_redaction(r, action);
            if action == SpanAction::Report {
                continue;
            }
            match &mut self.run {
                Some(run) if r.start <= run.end => run.end = run.end.max(r.end),
                _ => {
                    self.flush_to(&mut pos, r.start);
                    self.emit_replacement(r.start, &r.replacement);
                    self.run = Some(Run { end: r.end });
                }
            }
        }
        self.accepted = accepted;
        self.flush_to(&mut pos, next);

        self.committed = next;
        // Keep `context` bytes of left context for the next window.
        // Dropping the front of `buf` moves everything after it, so a large
        // text pushed at once would be copied once per step (quadratic: a
        // 10 MiB body spent a third of its time in memmove). Compact when
        // the copy is paid for by the bytes dropped: the dead prefix is at
        // least half the buffer, or a few KiB while the live part is at
        // most four times that. Each byte is then moved a bounded number of
        // times, and in a stream (where the live part is about one window)
        // dead bytes never pass the slack.
        let keep_from = self.floor_boundary(next.saturating_sub(self.bounds.context));
        self.keep_from = self.keep_from.max(keep_from);
        let dead = self.keep_from.saturating_sub(self.base);
        let live = self.buf.len().saturating_sub(dead);
        if dead > 0 && (dead >= live || (dead >= COMPACT_SLACK && live <= 4 * dead)) {
            #[cfg(test)]
            {
                self.moved += live;
            }
            // Pieces that can still be changed keep the output they had.
            // Committed ones are final: an unchanged one is released
            // without its text, so it needs nothing from `buf`.
            for p in self.pieces.iter_mut() {
                if p.start >= self.keep_from {
                    break;
                }
                if p.end > next {
                    let before = p.out_len();
                    p.materialize(&self.buf, self.base, next);
                    self.out_bytes += p.out_len() - before;
                }
            }
            self.buf.drain(..dead);
            self.base = self.keep_from;
        }
    }

    /// Emits `[*pos, to)`: removed while the current run covers it, original after.
    fn flush_to(&mut self, pos: &mut usize, to: usize) {
        let covered_to = self
            .run
            .as_ref()
            .map_or(*pos, |run| run.end.clamp(*pos, to));
        self.emit_removed(*pos, covered_to);
        self.emit_original(covered_to, to);
        *pos = to;
    }

    fn note_redaction(&mut self, r: &Redaction, action: SpanAction) {
        let applied = AppliedRedaction {
            start: r.start,
            end: r.end,
            tag: r.tag,
            action,
        };
        if let Some(p) = self
            .pieces
            .iter_mut()
            .find(|p| p.start <= r.start && r.start < p.end)
        {
            p.redactions.push(applied);
        }
    }

    /// Copies original text `[from, to)` into the pieces that hold it.
    fn emit_original(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        for p in self.pieces.iter_mut() {
            if p.end <= from || p.start == p.end {
                continue;
            }
            if p.start >= to {
                break;
            }
            // A piece not yet copied out reads its output from `buf`.
            if let Some(out) = &mut p.out {
                let s = p.start.max(from);
                let e = p.end.min(to);
                out.push_str(&self.buf[s - self.base..e - self.base]);
                self.out_bytes += e - s;
            }
        }
    }

    /// Marks `[from, to)` as removed from the pieces that hold it.
    fn emit_removed(&mut self, from: usize, to: usize) {
        if from >= to {
            return;
        }
        for p in self.pieces.iter_mut() {
            if p.end <= from || p.start == p.end {
                continue;
            }
            if p.start >= to {
                break;
            }
            let before = p.out_len();
            p.materialize(&self.buf, self.base, from);
            self.out_bytes += p.out_len() - before;
            p.changed = true;
        }
    }

    fn emit_replacement(&mut self, at: usize, text: &str) {
        if let Some(p) = self.pieces.iter_mut().find(|p| p.start <= at && at < p.end) {
            let before = p.out_len();
            p.materialize(&self.buf, self.base, at).push_str(text);
            self.out_bytes += p.out_len() - before;
            p.changed = true;
        }
    }

    fn release(&mut self, out: &mut Vec<Released>) {
        while let Some(p) = self.pieces.front() {
            if p.end > self.committed {
                break;
            }
            let Some(p) = self.pieces.pop_front() else {
                break;
            };
            self.out_bytes -= p.out_len();
            out.push(Released {
                id: p.id,
                rewrite: if p.changed { p.out } else { None },
                redactions: p.redactions,
            });
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The result of redacting a whole text at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The redacted text.
    pub text: String,
    /// Whether any redaction applied.
    pub changed: bool,
    /// Every redaction applied, in input offsets.
    pub redactions: Vec<AppliedRedaction>,
}

/// Redacts a complete text with the same schedule a [`Holdback`] uses, so the
/// result equals the concatenation of a streamed redaction of the same text
/// (for every split). Used for non-streamed bodies and for full-text repeats
/// inside streams.
pub fn redact_str<D: SpanDetector + ?Sized>(
    detector: &D,
    config: HoldbackConfig,
    text: &str,
) -> Redacted {
    let mut scanner = Holdback::new(detector, config);
    let mut out = Vec::new();
    scanner.push(detector, text, &mut out);
    scanner.finish(detector, &mut out);
    let mut result = Redacted {
        text: String::new(),
        changed: false,
        redactions: Vec::new(),
    };
    // One piece: its output is the whole text.
    for r in out {
        result.text.push_str(r.text(text));
        result.changed |= r.changed();
        result.redactions.extend(r.redactions);
    }
    result
}

#[cfg(test)]
pub(crate) mod testing {
    //! Toy detectors shared by the holdback, codec and stream tests.
    use super::{Redaction, SpanDetector};

    /// Redacts whole-word occurrences (ASCII word boundaries) of each word,
    /// overlapping ones included. Local with `context = 1`.
    #[derive(Debug, Clone)]
    pub struct WordDetector {
        pub words: Vec<(String, u32)>,
    }

    impl WordDetector {
        pub fn new(words: &[&str]) -> WordDetector {
            WordDetector {
                words: words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (w.to_string(), i as u32))
                    .collect(),
            }
        }
    }

    fn is_word(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    impl SpanDetector for WordDetector {
        fn max_span(&self) -> usize {
            self.words.iter().map(|(w, _)| w.len()).max().unwrap_or(0)
        }
        fn context(&self) -> usize {
            1
        }
        fn find(&self, text: &str, out: &mut Vec<Redaction>) {
            let bytes = text.as_bytes();
            for (word, tag) in &self.words {
                let mut from = 0;
                while let Some(off) = text[from..].find(word.as_str()) {
                    let s = from + off;
                    let e = s + word.len();
                    let left_ok = s == 0 || !is_word(bytes[s - 1]);
                    let right_ok = e == bytes.len() || !is_word(bytes[e]);
                    if left_ok && right_ok {
                        out.push(Redaction {
                            start: s,
                            end: e,
                            replacement: format!("[W{tag}]"),
                            tag: *tag,
                        });
                    }
                    from = s + word.chars().next().map_or(1, char::len_utf8);
                }
            }
        }
    }

    /// Redacts runs of 4 to `max` ASCII digits (runs longer than `max` are
    /// cut greedily from the left, so this detector is *not* local: it
    /// exercises the scanner's split-independence for misbehaving detectors).
    #[derive(Debug, Clone)]
    pub struct DigitRunDetector {
        pub max: usize,
    }

    impl SpanDetector for DigitRunDetector {
        fn max_span(&self) -> usize {
            self.max
        }
        fn context(&self) -> usize {
            1
        }
        fn find(&self, text: &str, out: &mut Vec<Redaction>) {
            let bytes = text.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i].is_ascii_digit() {
                    let s = i;
                    while i < bytes.len() && bytes[i].is_ascii_digit() && i - s < self.max {
                        i += 1;
                    }
                    if i - s >= 4 {
                        out.push(Redaction {
                            start: s,
                            end: i,
                            replacement: "#".into(),
                            tag: 100,
                        });
                    }
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Both detectors at once.
    #[derive(Debug, Clone)]
    pub struct Both(pub WordDetector, pub DigitRunDetector);

    impl SpanDetector for Both {
        fn max_span(&self) -> usize {
            self.0.max_span().max(self.1.max_span())
        }
        fn context(&self) -> usize {
            1
        }
        fn find(&self, text: &str, out: &mut Vec<Redaction>) {
            self.0.find(text, out);
            self.1.find(text, out);
        }
    }

    /// Redacts a whole text in one detector call with the documented merge
    /// rule: the reference a local detector's streamed output must equal.
    pub fn one_shot<D: SpanDetector>(d: &D, text: &str) -> String {
        let mut rs = Vec::new();
        d.find(text, &mut rs);
        rs.sort_by_key(|a| (a.start, std::cmp::Reverse(a.end), a.tag));
        let mut out = String::new();
        let mut pos = 0;
        let mut run_end: Option<usize> = None;
        for r in rs {
            if let Some(e) = run_end {
                if r.start <= e {
                    run_end = Some(e.max(r.end));
                    continue;
                }
                pos = pos.max(e);
            }
            out.push_str(&text[pos..r.start]);
            out.push_str(&r.replacement);
            pos = r.start;
            run_end = Some(r.end);
        }
        if let Some(e) = run_end {
            pos = pos.max(e);
        }
        out.push_str(&text[pos..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use proptest::prelude::*;

    fn run<D: SpanDetector>(d: &D, config: HoldbackConfig, pieces: &[&str]) -> Vec<Released> {
        let mut h = Holdback::new(d, config);
        let mut out = Vec::new();
        for p in pieces {
            h.push(d, p, &mut out);
            assert!(
                h.uncommitted() < h.bounds().max_uncommitted(),
                "uncommitted bound"
            );
            let dead = h.keep_from - h.base;
            assert!(
                h.buf.len() - dead <= h.bounds().max_retained(),
                "retained bound"
            );
            assert!(
                dead < COMPACT_SLACK.max(h.buf.len() - dead + 1),
                "compaction slack"
            );
        }
        h.finish(d, &mut out);
        out
    }

    /// The output of `pieces`, released as `out` (one each, in order).
    fn joined(out: &[Released], pieces: &[&str]) -> String {
        assert_eq!(out.len(), pieces.len());
        out.iter().zip(pieces).map(|(r, p)| r.text(p)).collect()
    }

    #[test]
    fn a_large_text_pushed_at_once_is_moved_a_bounded_number_of_times() {
        let d = WordDetector::new(&["secret"]);
        for size in [64 << 10, 1 << 20, 4 << 20] {
            let text = "a secret in plain words. ".repeat(size / 25);
            let mut scanner = Holdback::new(&d, HoldbackConfig { step: 16 << 10 });
            let mut out = Vec::new();
            scanner.push(&d, &text, &mut out);
            scanner.finish(&d, &mut out);
            assert_eq!(joined(&out, &[&text]), text.replace("secret", "[W0]"));
            // Compacting after every block would move ~size²/(2·step) bytes.
            assert!(
                scanner.moved <= 4 * text.len(),
                "{} bytes moved for {}",
                scanner.moved,
                text.len()
            );
        }
    }

    #[test]
    fn a_word_split_across_three_pieces_is_redacted_in_the_piece_where_it_starts() {
        let d = WordDetector::new(&["secret"]);
        let out = run(
            &d,
            HoldbackConfig { step: 4 },
            &["the se", "cr", "et is out"],
        );
        let texts: Vec<Option<&str>> = out.iter().map(|r| r.rewrite.as_deref()).collect();
        assert_eq!(texts, [Some("the [W0]"), Some(""), Some(" is out")]);
        assert_eq!(
            out[0].redactions,
            [AppliedRedaction {
                start: 4,
                end: 10,
                tag: 0,
                action: SpanAction::Redact,
            }]
        );
    }

    /// Tag 0 (`secret`) redacts, tag 1 (`flag`) only reports, tag 2 (`stop`) blocks.
    struct Actions(WordDetector);

    impl SpanDetector for Actions {
        fn max_span(&self) -> usize {
            self.0.max_span()
        }
        fn context(&self) -> usize {
            self.0.context()
        }
        fn find(&self, text: &str, out: &mut Vec<Redaction>) {
            self.0.find(text, out)
        }
        fn action(&self, tag: u32) -> SpanAction {
            match tag {
                1 => SpanAction::Report,
                2 => SpanAction::Block,
                _ => SpanAction::Redact,
            }
        }
    }

    #[test]
    fn reported_spans_leave_the_text_alone_and_block_spans_are_still_redacted() {
        let d = Actions(WordDetector::new(&[
            "secret",
            "flag",
            "stop",
            "flag secret",
        ]));
        let r = redact_str(&d, HoldbackConfig { step: 3 }, "a flag secret, a stop.");
        // "flag secret" (tag 3) redacts and overlaps the reported "flag".
        assert_eq!(r.text, "a [W3], a [W2].");
        let got: Vec<(u32, SpanAction)> = r.redactions.iter().map(|a| (a.tag, a.action)).collect();
        assert_eq!(
            got,
            [
                (3, SpanAction::Redact),
                (1, SpanAction::Report),
                (0, SpanAction::Redact),
                (2, SpanAction::Block)
            ]
        );
        let r = redact_str(&d, HoldbackConfig { step: 3 }, "only a flag here");
        assert_eq!(r.text, "only a flag here");
        assert!(!r.changed);
        assert_eq!(r.redactions.len(), 1);
    }

    #[test]
    fn pieces_are_released_in_order_with_their_ids() {
        let d = WordDetector::new(&["x"]);
        let out = run(&d, HoldbackConfig { step: 1 }, &["a", "", "b", "c"]);
        assert_eq!(out.iter().map(|r| r.id).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(joined(&out, &["a", "", "b", "c"]), "abc");
        assert!(out.iter().all(|r| !r.changed()));
    }

    #[test]
    fn text_is_held_back_only_within_the_window() {
        // max_span 6 + context 1 = lookahead 7, step 4: a piece is released
        // once 4 + 7 (+ rounding) bytes follow the start of its block.
        let d = WordDetector::new(&["secret"]);
        let mut h = Holdback::new(&d, HoldbackConfig { step: 4 });
        let mut out = Vec::new();
        h.push(&d, "abcd", &mut out);
        assert!(out.is_empty());
        h.push(&d, "efghijk", &mut out); // 11 bytes: block [0,4) decidable
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text("abcd"), "abcd");
        assert!(!out[0].changed());
    }

    #[test]
    fn overlapping_and_adjacent_redactions_merge_into_the_earliest_replacement() {
        let d = Both(
            WordDetector::new(&["ab", "ab_cd"]),
            DigitRunDetector { max: 8 },
        );
        let text = "x ab_cd 1234 ab 5678";
        assert_eq!(
            redact_str(&d, HoldbackConfig::default(), text).text,
            "x [W1] # [W0] #"
        );
        let d = WordDetector::new(&["a b", "b c"]);
        assert_eq!(
            redact_str(&d, HoldbackConfig::default(), "x a b c y").text,
            "x [W0] y"
        );
        let d = DigitRunDetector { max: 4 };
        // "12345678" is two adjacent runs [0,4) and [4,8): one replacement.
        assert_eq!(
            redact_str(&d, HoldbackConfig::default(), "12345678 z").text,
            "# z"
        );
    }

    #[test]
    fn a_long_digit_run_split_anywhere_gives_one_answer() {
        let d = DigitRunDetector { max: 5 };
        let text = "call 0123456789012345678 now";
        let whole = joined(&run(&d, HoldbackConfig { step: 3 }, &[text]), &[text]);
        for cut in 0..=text.len() {
            let pieces = [&text[..cut], &text[cut..]];
            let out = run(&d, HoldbackConfig { step: 3 }, &pieces);
            assert_eq!(joined(&out, &pieces), whole, "cut at {cut}");
        }
        // This detector is not local (greedy cuts depend on where a window
        // starts), so parts of the run can escape: the schedule makes that
        // outcome the same for every split, it cannot make the detector right.
        assert!(whole.starts_with("call #"), "{whole}");
    }

    #[test]
    fn multibyte_text_keeps_char_boundaries() {
        let d = WordDetector::new(&["clé"]);
        let text = "é€ la clé 𝄞 est là";
        for step in 1..6 {
            let pieces = ["é€ la c", "lé 𝄞", " est là"];
            let out = run(&d, HoldbackConfig { step }, &pieces);
            assert_eq!(joined(&out, &pieces), "é€ la [W0] 𝄞 est là");
        }
        assert_eq!(
            redact_str(&d, HoldbackConfig { step: 1 }, text).text,
            "é€ la [W0] 𝄞 est là"
        );
    }

    #[test]
    fn out_of_range_and_mid_char_spans_from_a_detector_do_not_panic() {
        struct Wild;
        impl SpanDetector for Wild {
            fn max_span(&self) -> usize {
                3
            }
            fn context(&self) -> usize {
                0
            }
            fn find(&self, text: &str, out: &mut Vec<Redaction>) {
                out.push(Redaction {
                    start: 1,
                    end: 1000,
                    replacement: "!".into(),
                    tag: 1,
                });
                out.push(Redaction {
                    start: 5,
                    end: 2,
                    replacement: "?".into(),
                    tag: 2,
                });
                out.push(Redaction {
                    start: text.len(),
                    end: text.len(),
                    replacement: "".into(),
                    tag: 3,
                });
            }
        }
        let text = "éééééééééé";
        let whole = redact_str(&Wild, HoldbackConfig { step: 2 }, text).text;
        let pieces = ["éé", "ééééé", "ééé"];
        let out = run(&Wild, HoldbackConfig { step: 2 }, &pieces);
        assert_eq!(joined(&out, &pieces), whole);
    }

    #[test]
    fn finish_resets_offsets_for_the_next_text() {
        let d = WordDetector::new(&["k"]);
        let mut h = Holdback::new(&d, HoldbackConfig::default());
        let mut out = Vec::new();
        h.push(&d, "a k", &mut out);
        h.finish(&d, &mut out);
        h.push(&d, "k b", &mut out);
        h.finish(&d, &mut out);
        assert_eq!(
            out.iter().map(|r| r.rewrite.as_deref()).collect::<Vec<_>>(),
            [Some("a [W0]"), Some("[W0] b")]
        );
        assert_eq!(out[1].redactions[0].start, 0);
    }

    #[test]
    fn auto_step_is_a_quarter_of_the_lookahead_but_at_least_the_minimum() {
        let d = DigitRunDetector { max: 999 };
        assert_eq!(Bounds::new(&d, HoldbackConfig::default()).step, 250);
        let d = DigitRunDetector { max: 9 };
        assert_eq!(
            Bounds::new(&d, HoldbackConfig::default()).step,
            HoldbackConfig::MIN_AUTO_STEP
        );
    }

    /// Random text over a small alphabet with planted words, digit runs and
    /// multibyte chars, so matches are frequent and often adjacent.
    fn text_strategy() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("secret".to_string()),
            Just("key".to_string()),
            Just("keys".to_string()),
            Just(" ".to_string()),
            Just("é".to_string()),
            Just("𝄞".to_string()),
            Just("_".to_string()),
            "[a-z]{1,3}",
            "[0-9]{1,12}",
        ];
        prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
    }

    fn split_at_chars(text: &str, cuts: &[usize]) -> Vec<String> {
        let mut points: Vec<usize> = cuts
            .iter()
            .map(|c| {
                let mut i = c % (text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                i
            })
            .collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(text[last..p].to_string());
            last = p;
        }
        pieces.push(text[last..].to_string());
        pieces
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        #[test]
        fn any_split_gives_the_unsplit_output(
            text in text_strategy(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            step in 1usize..20,
            max in 4usize..10,
        ) {
            let d = Both(WordDetector::new(&["secret", "key", "keys", "y_k"]), DigitRunDetector { max });
            let config = HoldbackConfig { step };
            let pieces = split_at_chars(&text, &cuts);
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let split = run(&d, config, &refs);
            let whole = run(&d, config, &[text.as_str()]);
            prop_assert_eq!(joined(&split, &refs), joined(&whole, &[text.as_str()]));
            // One released piece per input piece, in order.
            prop_assert_eq!(split.iter().map(|r| r.id).collect::<Vec<_>>(), (0..pieces.len() as u64).collect::<Vec<_>>());
            // Same redactions reported, whatever the split.
            let tags = |out: &[Released]| out.iter().flat_map(|r| r.redactions.iter().copied()).collect::<Vec<_>>();
            prop_assert_eq!(tags(&split), tags(&whole));
        }

        #[test]
        fn a_local_detector_streamed_equals_one_shot(
            text in text_strategy(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            step in 1usize..20,
        ) {
            let d = WordDetector::new(&["secret", "key", "keys", "y_k", "é𝄞"]);
            let pieces = split_at_chars(&text, &cuts);
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let split = run(&d, HoldbackConfig { step }, &refs);
            prop_assert_eq!(joined(&split, &refs), one_shot(&d, &text));
        }
    }
}
