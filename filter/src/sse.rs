//! Server-sent events: an incremental decoder that keeps every event's exact
//! original bytes, and a small encoder.
//!
//! The decoder follows the WHATWG EventSource parsing rules (line endings
//! `\n`, `\r\n` and `\r`; an optional BOM at the start of the stream; `:`
//! comments; a field without a colon; one optional space after the colon;
//! `data` lines joined with `\n`; `id` containing NUL ignored; `retry` only
//! when all digits) but, unlike a browser, it reports *every* blank-line
//! terminated block of lines as an [`SseEvent`] — comments-only blocks and
//! stray blank lines included — so that concatenating the `raw` bytes of all
//! events gives back the input exactly. A proxy forwards untouched events by
//! their `raw` bytes and rewrites only the ones it must ([`SseEvent::with_data`]).
//!
//! # Split-independence
//!
//! The sequence of events (bytes and fields) does not depend on how the
//! input was cut into chunks. Two places need care: a `\r` at the end of a
//! chunk may be the first half of `\r\n`, so the decoder waits for the next
//! byte (or the end of the stream) before deciding; and a BOM may arrive a
//! byte at a time.
//!
//! # Bounds and opaque events
//!
//! An event longer than `max_event_size` bytes (default
//! [`DEFAULT_MAX_EVENT_SIZE`]) is not buffered whole: it is emitted as opaque
//! parts of exactly `max_event_size` bytes (the last part shorter, ending
//! with the blank line), each marked [`Opaque::Oversized`], so memory stays
//! bounded and the caller can audit it or fail closed. An event whose lines
//! are not valid UTF-8 is emitted whole and marked [`Opaque::InvalidUtf8`].
//! Opaque events have no parsed fields. At the end of the stream an
//! unterminated event is emitted as it is, with `terminated == false`.

use std::borrow::Cow;

use memchr::memchr2;
use smallvec::SmallVec;

/// Default cap on one event's size: 1 MiB. LLM frames are a few hundred
/// bytes; a final Responses `response.completed` event repeats the whole
/// answer and can reach tens of KiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Spare event buffers a decoder keeps ([`SseDecoder::recycle`]). A stream
/// sends a frame for about every frame it reads, but in batches: the
/// hold-back releases a step of text (~80 bytes, a few bytes per frame) at
/// once, so a pool as large as a batch saves more allocations (32 spares:
/// 1.4 instead of 2.7 per OpenAI frame). But a stream's pool is memory no
/// other stream can use: 32 cost ~11 KB per open stream in the bench's
/// 1,000-stream VM, against ~6.4 KB beyond the window for everything else.
pub(crate) const SPARE_BUFFERS: usize = 4;
/// Room the input buffer keeps beyond twice what it holds. Shrinking it to
/// fit after every chunk made the next chunk grow it again: two reallocations
/// per 1 KiB chunk of an OpenAI stream.
const RETAINED_BUFFER: usize = 4096;
/// Buffers larger than this are freed, not kept: an idle stream should not
/// hold room for its largest events.
const SPARE_BUFFER_CAPACITY: usize = 512;

/// Why an event was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opaque {
    /// A line was not valid UTF-8.
    InvalidUtf8,
    /// The event exceeded the size cap; this is part `part` (from 0) of it,
    /// and `last` says whether the event ends with this part.
    Oversized {
        /// Index of this part within the event.
        part: u32,
        /// True for the part that holds the event's terminating blank line
        /// (or the end of the stream).
        last: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Data,
    Other,
}

/// One line of an event: `raw[start..content_end]` is its content and
/// `raw[content_end..end]` its terminator (empty only for a last line at the
/// end of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    start: usize,
    content_end: usize,
    end: usize,
    kind: LineKind,
}

/// An event's lines: one `data` line, or an `event` and a `data` line, is
/// what providers send, so two are kept without a heap allocation per event.
type Lines = SmallVec<[Line; 2]>;

/// A decoded event with its original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The exact input bytes of this event, terminating blank line included
    /// (and the stream's BOM, for the first event).
    pub raw: Vec<u8>,
    /// The `event` field, if any.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`; `None` when the event has no `data` line.
    pub data: Option<String>,
    /// The last valid `id` field, if any.
    pub id: Option<String>,
    /// The last valid `retry` field, if any.
    pub retry: Option<u64>,
    /// Comment lines, without their leading `:`.
    pub comments: Vec<String>,
    /// False for an event cut off by the end of the stream.
    pub terminated: bool,
    /// Set when the event was not parsed; its fields are then empty.
    pub opaque: Option<Opaque>,
    lines: Lines,
}

impl SseEvent {
    fn opaque(raw: Vec<u8>, opaque: Opaque, terminated: bool) -> SseEvent {
        SseEvent {
            raw,
            event: None,
            data: None,
            id: None,
            retry: None,
            comments: Vec::new(),
            terminated,
            opaque: Some(opaque),
            lines: Lines::new(),
        }
    }

    /// Parses `raw` whose lines are `lines` (offsets into `raw`).
    fn parse(raw: Vec<u8>, lines: Lines, terminated: bool) -> SseEvent {
        let RawEvent { raw, lines, opaque } = RawEvent::new(raw, lines);
        if let Some(opaque) = opaque {
            return SseEvent::opaque(raw, opaque, terminated);
        }
        let mut ev = SseEvent {
            raw,
            event: None,
            data: None,
            id: None,
            retry: None,
            comments: Vec::new(),
            terminated,
            opaque: None,
            lines,
        };
        for line in &ev.lines {
            let Some(text) = line.text(&ev.raw) else {
                continue;
            };
            if let Some(comment) = text.strip_prefix(':') {
                ev.comments.push(comment.to_string());
                continue;
            }
            let (name, value) = field(text);
            match name {
                "event" => ev.event = Some(value.to_string()),
                "id" if !value.contains('\0') => ev.id = Some(value.to_string()),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    ev.retry = value.parse().ok();
                }
                _ => {}
            }
        }
        ev.data = data_of(&ev.raw, &ev.lines).map(Cow::into_owned);
        ev
    }

    /// The event's bytes and lines without its parsed fields (see
    /// [`RawEvent`]).
    pub fn into_raw(self) -> RawEvent {
        RawEvent {
            raw: self.raw,
            lines: self.lines,
            opaque: self.opaque,
        }
    }

    /// The `data` field rebuilt from the event's own lines: equal to `data`.
    pub fn rebuild_data(&self) -> Option<String> {
        data_of(&self.raw, &self.lines).map(Cow::into_owned)
    }

    /// The event type a client dispatches on: the `event` field, or `message`.
    pub fn event_type(&self) -> &str {
        match &self.event {
            Some(e) if !e.is_empty() => e,
            _ => "message",
        }
    }

    /// True when the event has no data and no event name: a comment, a
    /// keep-alive or a stray blank line.
    pub fn is_empty(&self) -> bool {
        self.data.is_none() && self.event.is_none() && self.opaque.is_none()
    }

    /// This event's bytes with its data replaced by `data`, keeping every
    /// other line, its order and the line endings as they were. New data
    /// lines take the place of the first original `data` line and use its
    /// style (`data:` or `data: `, its terminator); a data-less event gets
    /// them before its blank line. Returns `None` for opaque events.
    pub fn with_data(&self, data: &str) -> Option<Vec<u8>> {
        if self.opaque.is_some() {
            return None;
        }
        Some(with_data(&self.raw, &self.lines, data))
    }
}

/// An event's exact bytes and its line layout, without the parsed fields:
/// all a proxy needs to forward an event, read its `event` and `data`,
/// or rewrite it with [`RawEvent::with_data`]. A stream holds about a
/// hundred events in its hold-back window; this is the smallest form that
/// can still be rewritten (on wasm32, 32 bytes against an [`SseEvent`]'s
/// ~100), and the decoder emits it directly ([`SseDecoder::push_raw`]) so
/// a stream does not pay for owned copies of fields it only reads once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The exact input bytes (as [`SseEvent::raw`]).
    pub raw: Vec<u8>,
    lines: Lines,
    opaque: Option<Opaque>,
}

impl RawEvent {
    /// Marks the data lines of an event the decoder cut; one with a line
    /// that is not UTF-8 is opaque (and keeps no lines, as [`SseEvent`]).
    fn new(raw: Vec<u8>, mut lines: Lines) -> RawEvent {
        for line in &mut lines {
            let Some(text) = line.text(&raw) else {
                return RawEvent {
                    raw,
                    lines: Lines::new(),
                    opaque: Some(Opaque::InvalidUtf8),
                };
            };
            // A comment's name is empty, so it is never a data line.
            if field(text).0 == "data" {
                line.kind = LineKind::Data;
            }
        }
        RawEvent {
            raw,
            lines,
            opaque: None,
        }
    }

    /// As [`SseEvent::with_data`].
    pub fn with_data(&self, data: &str) -> Option<Vec<u8>> {
        self.opaque
            .is_none()
            .then(|| with_data(&self.raw, &self.lines, data))
    }

    /// The `data` field the event was parsed with, rebuilt from its lines;
    /// `None` for an event without data lines (or opaque).
    pub fn rebuild_data(&self) -> Option<String> {
        self.data().map(Cow::into_owned)
    }

    /// As [`RawEvent::rebuild_data`], borrowing the bytes of an event with
    /// a single data line (nearly every LLM frame).
    pub fn data(&self) -> Option<Cow<'_, str>> {
        data_of(&self.raw, &self.lines)
    }

    /// The `event` field, as [`SseEvent::event`].
    pub fn event(&self) -> Option<&str> {
        let mut event = None;
        for line in self.lines.iter().filter(|l| l.kind == LineKind::Other) {
            if let Some(("event", value)) = line.text(&self.raw).map(field) {
                event = Some(value);
            }
        }
        event
    }

    /// Why the event was not parsed, as [`SseEvent::opaque`].
    pub fn opaque(&self) -> Option<Opaque> {
        self.opaque
    }
}

impl Line {
    /// The line's content, if it is UTF-8.
    fn text(self, raw: &[u8]) -> Option<&str> {
        std::str::from_utf8(&raw[self.start..self.content_end]).ok()
    }
}

/// A line's field name and value: the value after the first colon (one
/// leading space dropped), or empty for a line without a colon.
fn field(text: &str) -> (&str, &str) {
    match memchr::memchr(b':', text.as_bytes()) {
        Some(p) => (
            &text[..p],
            text[p + 1..].strip_prefix(' ').unwrap_or(&text[p + 1..]),
        ),
        None => (text, ""),
    }
}

/// The data lines' values joined with `\n`, exactly as parsing builds `data`.
fn data_of<'a>(raw: &'a [u8], lines: &[Line]) -> Option<Cow<'a, str>> {
    let mut data: Option<Cow<'a, str>> = None;
    for line in lines.iter().filter(|l| l.kind == LineKind::Data) {
        let value = field(line.text(raw)?).1;
        match &mut data {
            Some(d) => {
                let d = d.to_mut();
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(Cow::Borrowed(value)),
        }
    }
    data
}

/// `raw` with its data lines replaced by `data` (see [`SseEvent::with_data`]).
fn with_data(raw: &[u8], lines: &[Line], data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + data.len());
    let first_start = lines.first().map_or(prefix_len(raw), |l| l.start);
    out.extend_from_slice(&raw[..first_start]);
    let mut written = false;
    let mut tail_from = first_start;
    for line in lines {
        tail_from = line.end;
        match line.kind {
            LineKind::Other => out.extend_from_slice(&raw[line.start..line.end]),
            LineKind::Data if written => {}
            LineKind::Data => {
                let content = &raw[line.start..line.content_end];
                let spaced = content.starts_with(b"data: ");
                let term = &raw[line.content_end..line.end];
                write_data_lines(&mut out, data, spaced, term);
                written = true;
            }
        }
    }
    if !written {
        if lines.last().is_some_and(|l| l.content_end == l.end) {
            // A last line with no terminator (end of stream): end it first.
            out.push(b'\n');
        }
        write_data_lines(&mut out, data, true, b"\n");
    }
    out.extend_from_slice(&raw[tail_from..]);
    out
}

fn prefix_len(raw: &[u8]) -> usize {
    if raw.starts_with(BOM) {
        3
    } else {
        0
    }
}

fn write_data_lines(out: &mut Vec<u8>, data: &str, spaced: bool, term: &[u8]) {
    let lines = split_lines(data);
    let n = lines.len();
    for (i, l) in lines.into_iter().enumerate() {
        // A line that starts with a space needs the separator space even in
        // the `data:` style: the decoder strips one space after the colon.
        out.extend_from_slice(if spaced || l.starts_with(' ') {
            b"data: "
        } else {
            b"data:"
        });
        out.extend_from_slice(l.as_bytes());
        if term.is_empty() {
            if i + 1 < n {
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(term);
        }
    }
}

/// Splits on `\r\n`, `\r` and `\n` (a raw `\r` would end an SSE line too).
fn split_lines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&s[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push(&s[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push(&s[start..]);
    out
}

/// Encodes one event: an optional `event:` line, one `data:` line per line
/// of `data`, and the blank line.
pub fn encode_event(event: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    write_data_lines(&mut out, data, true, b"\n");
    out.push(b'\n');
    out
}

/// Encodes a comment event (`: text`), the usual keep-alive.
pub fn encode_comment(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for l in split_lines(text) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Incremental SSE decoder. Feed chunks with [`SseDecoder::push`], then call
/// [`SseDecoder::finish`] once at the end of the stream.
///
/// A chunk usually completes several events. Each is copied out into a
/// `raw` of exactly its own size, and the decoder only moves past it
/// (`head`); the consumed prefix is dropped once per `push`. Splitting the
/// buffer per event instead would copy the rest of the chunk for every event
/// (quadratic in the events per chunk) and leave each event's `raw` with the
/// capacity of the whole chunk — memory a stream then holds for as long as
/// the frame waits in the hold-back queue.
#[derive(Debug)]
pub struct SseDecoder {
    max: usize,
    /// `buf[head..]` holds the bytes of the current event (or the current
    /// part of an oversized event); `buf[..head]` was emitted already.
    buf: Vec<u8>,
    head: usize,
    /// Next byte of the current event to examine (relative to `head`, as
    /// are `line_start` and `lines`).
    scan: usize,
    /// Start of the current line's content.
    line_start: usize,
    /// The current line began in a part already emitted (so it is not empty).
    line_carried: bool,
    lines: Vec<Line>,
    bom_checked: bool,
    /// Parts of the current oversized event already emitted (0: not oversized).
    parts: u32,
    /// Buffers of events the caller is done with, for the next events.
    spare: SmallVec<[Vec<u8>; SPARE_BUFFERS]>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new()
    }
}

impl SseDecoder {
    /// A decoder with the default event size cap.
    pub fn new() -> SseDecoder {
        SseDecoder::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder that emits events longer than `max` bytes as opaque parts.
    pub fn with_max_event_size(max: usize) -> SseDecoder {
        SseDecoder {
            max: max.max(1),
            buf: Vec::new(),
            head: 0,
            scan: 0,
            line_start: 0,
            line_carried: false,
            lines: Vec::new(),
            bom_checked: false,
            parts: 0,
            spare: SmallVec::new(),
        }
    }

    /// The size cap in force.
    pub fn max_event_size(&self) -> usize {
        self.max
    }

    /// Bytes received but not yet emitted (at most the cap, plus the last chunk).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Bytes of the current event received so far.
    fn current(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Takes the next `len` bytes of the current event out of the buffer.
    fn take(&mut self, len: usize) -> Vec<u8> {
        let mut raw = self.spare.pop().unwrap_or_default();
        raw.clear();
        raw.extend_from_slice(&self.buf[self.head..self.head + len]);
        self.head += len;
        raw
    }

    /// Hands back the bytes of an event the caller is done with (sent or
    /// dropped), so a later event can reuse their allocation.
    pub fn recycle(&mut self, raw: Vec<u8>) {
        if raw.capacity() <= SPARE_BUFFER_CAPACITY && self.spare.len() < SPARE_BUFFERS {
            self.spare.push(raw);
        }
    }

    #[cfg(test)]
    pub(crate) fn spare_buffers(&self) -> usize {
        self.spare.len()
    }

    /// Drops what was emitted, so the buffer holds only the current event;
    /// its allocation shrinks back after a large chunk, since an idle
    /// stream should not keep the largest chunk it ever saw.
    fn compact(&mut self) {
        self.buf.drain(..self.head);
        self.head = 0;
        if self.buf.capacity() > 2 * self.buf.len() + RETAINED_BUFFER {
            self.buf.shrink_to(self.buf.len());
        }
    }

    /// Feeds a chunk; appends the events it completes to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        self.push_into(bytes, out);
    }

    /// As [`SseDecoder::push`], with the events in their compact form.
    pub fn push_raw(&mut self, bytes: &[u8], out: &mut Vec<RawEvent>) {
        self.push_into(bytes, out);
    }

    /// Ends the stream: a pending `\r` ends its line, and an unterminated
    /// event is emitted as it is. The decoder is then ready for a new stream.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        self.finish_into(out);
    }

    /// As [`SseDecoder::finish`], with the events in their compact form.
    pub fn finish_raw(&mut self, out: &mut Vec<RawEvent>) {
        self.finish_into(out);
    }

    fn push_into<S: Sink>(&mut self, bytes: &[u8], out: &mut S) {
        self.buf.extend_from_slice(bytes);
        self.drain(false, out);
        self.compact();
    }

    fn finish_into<S: Sink>(&mut self, out: &mut S) {
        self.drain(true, out);
        if self.buffered() > 0 {
            let raw = self.take(self.buffered());
            if self.parts > 0 {
                out.opaque(
                    raw,
                    Opaque::Oversized {
                        part: self.parts,
                        last: true,
                    },
                    false,
                );
            } else {
                let mut lines = Lines::from_vec(std::mem::take(&mut self.lines));
                if self.line_start < raw.len() {
                    lines.push(Line {
                        start: self.line_start,
                        content_end: raw.len(),
                        end: raw.len(),
                        kind: LineKind::Other,
                    });
                }
                out.event(raw, lines, false);
            }
        }
        *self = SseDecoder::with_max_event_size(self.max);
    }

    fn drain<S: Sink>(&mut self, eof: bool, out: &mut S) {
        loop {
            if !self.bom_checked {
                let cur = self.current();
                if cur.len() < BOM.len() && BOM.starts_with(cur) && !eof {
                    return;
                }
                let bom = cur.starts_with(BOM);
                self.bom_checked = true;
                if bom {
                    self.scan = BOM.len();
                    self.line_start = BOM.len();
                }
            }
            let len = self.buffered();
            let Some(off) = memchr2(b'\r', b'\n', &self.current()[self.scan..]) else {
                self.scan = len;
                if len > self.max {
                    self.cut(out);
                    continue;
                }
                return;
            };
            let i = self.scan + off;
            let cur = self.current();
            let term_end = if cur[i] == b'\n' {
                i + 1
            } else if i + 1 < len {
                if cur[i + 1] == b'\n' {
                    i + 2
                } else {
                    i + 1
                }
            } else if eof {
                i + 1
            } else {
                // A `\r` at the end of what we have: it may be half of `\r\n`.
                self.scan = i;
                if len > self.max {
                    self.cut(out);
                    continue;
                }
                return;
            };
            if i == self.line_start && !self.line_carried {
                self.emit(term_end, out);
            } else {
                self.lines.push(Line {
                    start: self.line_start,
                    content_end: i,
                    end: term_end,
                    kind: LineKind::Other,
                });
                self.line_start = term_end;
                self.line_carried = false;
                self.scan = term_end;
                while self.scan > self.max {
                    self.cut(out);
                }
            }
        }
    }

    /// Emits the first `max` bytes of an event known to be longer than `max`.
    fn cut<S: Sink>(&mut self, out: &mut S) {
        let part = self.take(self.max);
        out.opaque(
            part,
            Opaque::Oversized {
                part: self.parts,
                last: false,
            },
            true,
        );
        self.parts += 1;
        self.lines.clear();
        self.scan -= self.max;
        if self.line_start < self.max {
            self.line_carried = true;
            self.line_start = 0;
        } else {
            self.line_start -= self.max;
        }
    }

    /// Emits the event that ends at `end` (its blank line included).
    fn emit<S: Sink>(&mut self, mut end: usize, out: &mut S) {
        if self.parts == 0 && end <= self.max {
            let raw = self.take(end);
            // A copy of exactly the event's lines (inline for the usual one
            // or two); `self.lines` keeps its allocation for the next event.
            let lines = Lines::from_slice(&self.lines);
            self.lines.clear();
            out.event(raw, lines, true);
        } else {
            while end > self.max {
                let part = self.take(self.max);
                out.opaque(
                    part,
                    Opaque::Oversized {
                        part: self.parts,
                        last: false,
                    },
                    true,
                );
                self.parts += 1;
                end -= self.max;
            }
            let part = self.take(end);
            out.opaque(
                part,
                Opaque::Oversized {
                    part: self.parts,
                    last: true,
                },
                true,
            );
            self.lines.clear();
        }
        self.parts = 0;
        self.scan = 0;
        self.line_start = 0;
        self.line_carried = false;
    }
}

/// What the decoder emits events into: parsed [`SseEvent`]s, or the
/// compact [`RawEvent`]s a stream holds (whether an event was terminated
/// does not matter to it).
trait Sink {
    fn event(&mut self, raw: Vec<u8>, lines: Lines, terminated: bool);
    fn opaque(&mut self, raw: Vec<u8>, opaque: Opaque, terminated: bool);
}

impl Sink for Vec<SseEvent> {
    fn event(&mut self, raw: Vec<u8>, lines: Lines, terminated: bool) {
        self.push(SseEvent::parse(raw, lines, terminated));
    }
    fn opaque(&mut self, raw: Vec<u8>, opaque: Opaque, terminated: bool) {
        self.push(SseEvent::opaque(raw, opaque, terminated));
    }
}

impl Sink for Vec<RawEvent> {
    fn event(&mut self, raw: Vec<u8>, lines: Lines, _terminated: bool) {
        self.push(RawEvent::new(raw, lines));
    }
    fn opaque(&mut self, raw: Vec<u8>, opaque: Opaque, _terminated: bool) {
        self.push(RawEvent {
            raw,
            lines: Lines::new(),
            opaque: Some(opaque),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_chunks(chunks: &[&[u8]], max: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::with_max_event_size(max);
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn decode(input: &[u8]) -> Vec<SseEvent> {
        decode_chunks(&[input], DEFAULT_MAX_EVENT_SIZE)
    }

    #[test]
    fn data_with_and_without_space_after_the_colon() {
        let evs = decode(b"data: a\n\ndata:b\n\ndata:  c\n\n");
        let data: Vec<_> = evs.iter().map(|e| e.data.clone().unwrap()).collect();
        assert_eq!(data, ["a", "b", " c"]);
    }

    #[test]
    fn multiple_data_lines_are_joined_with_newlines() {
        let evs = decode(b"event: delta\ndata: {\"a\":\ndata: 1}\nid: 7\nretry: 1500\n\n");
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event.as_deref(), Some("delta"));
        assert_eq!(evs[0].data.as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(evs[0].id.as_deref(), Some("7"));
        assert_eq!(evs[0].retry, Some(1500));
    }

    #[test]
    fn all_three_line_endings_end_lines_and_events() {
        let evs = decode(b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n");
        let data: Vec<_> = evs.iter().map(|e| e.data.clone().unwrap()).collect();
        assert_eq!(data, ["a", "b", "c", "d"]);
        assert_eq!(evs[1].raw, b"data: b\r\r");
    }

    #[test]
    fn recycled_buffers_carry_only_the_new_events_bytes_and_large_ones_are_freed() {
        let mut d = SseDecoder::new();
        let mut events = Vec::new();
        d.push_raw(b"data: a long first event\n\n", &mut events);
        d.recycle(std::mem::take(&mut events[0].raw));
        d.recycle(vec![0; SPARE_BUFFER_CAPACITY + 1]);
        assert_eq!(d.spare.len(), 1);
        events.clear();
        d.push_raw(b"data: b\n\n", &mut events);
        assert_eq!(events[0].raw, b"data: b\n\n");
        assert_eq!(events[0].data().as_deref(), Some("b"));
        assert!(d.spare.is_empty());
        for _ in 0..2 * SPARE_BUFFERS {
            d.recycle(Vec::with_capacity(8));
        }
        assert_eq!(d.spare.len(), SPARE_BUFFERS);
    }

    #[test]
    fn a_bom_at_the_start_is_skipped_but_kept_in_the_raw_bytes() {
        let evs = decode(b"\xEF\xBB\xBFdata: x\n\n");
        assert_eq!(evs[0].data.as_deref(), Some("x"));
        assert_eq!(evs[0].raw, b"\xEF\xBB\xBFdata: x\n\n");
        let rewritten = evs[0].with_data("y").unwrap();
        assert_eq!(rewritten, b"\xEF\xBB\xBFdata: y\n\n");
        // A BOM later in the stream is not special.
        let evs = decode(b"data: x\n\n\xEF\xBB\xBFdata: z\n\n");
        assert_eq!(evs[1].data, None);
    }

    #[test]
    fn a_bom_arriving_a_byte_at_a_time_is_still_recognised() {
        let evs = decode_chunks(&[b"\xEF", b"\xBB", b"\xBF", b"data: x\n\n"], 1 << 20);
        assert_eq!(evs[0].data.as_deref(), Some("x"));
    }

    #[test]
    fn events_from_one_large_chunk_hold_only_their_own_bytes() {
        // Regression: the decoder used to split its buffer per event, so each
        // event's `raw` kept the capacity of the rest of the chunk (a stream
        // holding ~100 frames of a 26 KiB chunk held ~600 KiB).
        let frame = b"data: {\"choices\":[{\"delta\":{\"content\":\"word\"}}]}\n\n";
        let chunk: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * 200)
            .collect();
        let mut d = SseDecoder::new();
        let mut evs = Vec::new();
        d.push(&chunk, &mut evs);
        d.push(b"data: par", &mut evs);
        assert_eq!(evs.len(), 200);
        for ev in &evs {
            assert_eq!(ev.raw, frame);
            assert_eq!(ev.raw.capacity(), ev.raw.len());
            assert!(!ev.lines.spilled(), "one line is kept inline");
        }
        // Only the partial event stays buffered, in an allocation of about its size.
        assert_eq!(d.buffered(), 9);
        assert!(
            d.buf.capacity() <= 2 * 9 + RETAINED_BUFFER,
            "{}",
            d.buf.capacity()
        );
        d.push(b"tial\n\n", &mut evs);
        assert_eq!(evs[200].raw, b"data: partial\n\n");
    }

    #[test]
    fn steady_small_chunks_reuse_the_input_buffer() {
        // Frames of an OpenAI stream's size (~250 bytes) in 1 KiB chunks.
        let frame = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "w".repeat(200)
        );
        let stream: Vec<u8> = frame.bytes().cycle().take(frame.len() * 400).collect();
        let mut d = SseDecoder::new();
        let mut evs = Vec::new();
        let mut chunks = stream.chunks(1024);
        for c in chunks.by_ref().take(2) {
            d.push(c, &mut evs);
        }
        let capacity = d.buf.capacity();
        for c in chunks {
            d.push(c, &mut evs);
            assert_eq!(d.buf.capacity(), capacity, "no reallocation per chunk");
        }
        assert_eq!(evs.len(), 400);
    }

    #[test]
    fn a_raw_event_rebuilds_and_rewrites_its_data_like_the_parsed_one() {
        let evs = decode(b"event: e\r\ndata: a\r\ndata:b\r\n: c\r\n\r\n");
        let raw = evs[0].clone().into_raw();
        assert_eq!(raw.raw, evs[0].raw);
        assert_eq!(raw.rebuild_data(), evs[0].data);
        assert_eq!(raw.with_data("x\ny"), evs[0].with_data("x\ny"));
        let opaque = decode(b"data: \xff\n\n")[0].clone().into_raw();
        assert_eq!((opaque.rebuild_data(), opaque.with_data("x")), (None, None));
    }

    #[test]
    fn a_field_without_colon_and_comments() {
        let evs = decode(b": keep-alive\ndata\nevent\n\n");
        assert_eq!(evs[0].comments, [" keep-alive"]);
        assert_eq!(evs[0].data.as_deref(), Some(""));
        assert_eq!(evs[0].event.as_deref(), Some(""));
        assert_eq!(evs[0].event_type(), "message");
    }

    #[test]
    fn comment_only_blocks_and_stray_blank_lines_are_events_without_data() {
        let input = b": ping\n\n\n\ndata: x\n\n";
        let evs = decode(input);
        assert_eq!(evs.len(), 4);
        assert!(evs[0].is_empty() && evs[1].is_empty() && evs[2].is_empty());
        assert_eq!(
            evs.iter().flat_map(|e| e.raw.clone()).collect::<Vec<_>>(),
            input
        );
    }

    #[test]
    fn id_with_nul_and_non_numeric_retry_are_ignored() {
        let evs = decode(b"id: a\0b\nretry: 12a\ndata: x\n\n");
        assert_eq!(evs[0].id, None);
        assert_eq!(evs[0].retry, None);
    }

    #[test]
    fn invalid_utf8_makes_the_event_opaque_not_a_panic() {
        let input = b"data: ok\n\ndata: \xFF\xFE\n\ndata: ok2\n\n";
        let evs = decode(input);
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1].opaque, Some(Opaque::InvalidUtf8));
        assert_eq!(evs[1].data, None);
        assert_eq!(evs[1].with_data("x"), None);
        assert_eq!(evs[2].data.as_deref(), Some("ok2"));
    }

    #[test]
    fn an_oversized_event_is_forwarded_in_opaque_parts_of_the_cap() {
        let input = b"data: 0123456789abcdef\n\ndata: ok\n\n";
        let evs = decode_chunks(&[input], 10);
        let parts: Vec<_> = evs.iter().map(|e| (e.raw.len(), e.opaque)).collect();
        assert_eq!(
            parts,
            [
                (
                    10,
                    Some(Opaque::Oversized {
                        part: 0,
                        last: false
                    })
                ),
                (
                    10,
                    Some(Opaque::Oversized {
                        part: 1,
                        last: false
                    })
                ),
                (
                    4,
                    Some(Opaque::Oversized {
                        part: 2,
                        last: true
                    })
                ),
                (10, None),
            ]
        );
        assert_eq!(
            evs.iter().flat_map(|e| e.raw.clone()).collect::<Vec<_>>(),
            input
        );
    }

    #[test]
    fn an_event_of_exactly_the_cap_is_parsed() {
        let evs = decode_chunks(&[b"data: abc\n\n"], 11);
        assert_eq!(evs[0].data.as_deref(), Some("abc"));
    }

    #[test]
    fn a_trailing_unterminated_event_is_flushed_as_is() {
        let evs = decode(b"data: a\n\ndata: {\"b\":1}");
        assert_eq!(evs.len(), 2);
        assert!(!evs[1].terminated);
        assert_eq!(evs[1].raw, b"data: {\"b\":1}");
        assert_eq!(evs[1].data.as_deref(), Some("{\"b\":1}"));
        assert_eq!(evs[1].with_data("{}").unwrap(), b"data: {}");
        let evs = decode(b"data: a\n");
        assert_eq!(evs[0].data.as_deref(), Some("a"));
        assert_eq!(evs[0].with_data("b\nc").unwrap(), b"data: b\ndata: c\n");
    }

    #[test]
    fn a_cr_at_the_end_of_a_chunk_waits_for_the_next_byte() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.push(b"data: a\r\n\r", &mut out);
        assert!(out.is_empty(), "the second \\r may be half of \\r\\n");
        d.push(b"\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].raw, b"data: a\r\n\r\n");
    }

    #[test]
    fn with_data_keeps_other_lines_terminators_and_style() {
        let evs = decode(b"event: x\r\nid: 3\r\ndata:{\"a\":\r\ndata:1}\r\n: c\r\n\r\n");
        let out = evs[0].with_data("{\"a\":2}\nz").unwrap();
        assert_eq!(
            out,
            b"event: x\r\nid: 3\r\ndata:{\"a\":2}\r\ndata:z\r\n: c\r\n\r\n"
        );
        let again = decode(&out);
        assert_eq!(again[0].data.as_deref(), Some("{\"a\":2}\nz"));
    }

    #[test]
    fn the_encoder_round_trips_through_the_decoder() {
        let bytes = encode_event(Some("error"), "line1\nline2\r\nline3");
        let evs = decode(&bytes);
        assert_eq!(evs[0].event.as_deref(), Some("error"));
        assert_eq!(evs[0].data.as_deref(), Some("line1\nline2\nline3"));
        assert!(decode(&encode_comment("hi"))[0].comments == [" hi"]);
    }

    fn soup() -> impl Strategy<Value = Vec<u8>> {
        let atom = prop_oneof![
            Just(b"data: ".to_vec()),
            Just(b"data:".to_vec()),
            Just(b"event: e\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b": c".to_vec()),
            Just(b"id: 1".to_vec()),
            Just(BOM.to_vec()),
            Just(b"\xFF".to_vec()),
            Just("é€𝄞".as_bytes().to_vec()),
            "[a-z{}\":]{1,8}".prop_map(|s| s.into_bytes()),
        ];
        prop::collection::vec(atom, 0..40).prop_map(|v| v.concat())
    }

    fn chunked(input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        let mut out = Vec::new();
        let mut last = 0;
        for p in points {
            out.push(input[last..p].to_vec());
            last = p;
        }
        out.push(input[last..].to_vec());
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        #[test]
        fn any_chunking_yields_the_same_events_and_loses_no_byte(
            input in soup(),
            cuts in prop::collection::vec(any::<usize>(), 0..16),
            max in prop_oneof![Just(usize::MAX), 1usize..40],
        ) {
            let chunks = chunked(&input, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let split = decode_chunks(&refs, max);
            let whole = decode_chunks(&[&input], max);
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(split.iter().flat_map(|e| e.raw.clone()).collect::<Vec<_>>(), input);
            // The compact events a stream decodes are the parsed ones, minus fields.
            let mut d = SseDecoder::with_max_event_size(max);
            let mut raw = Vec::new();
            for c in &refs {
                d.push_raw(c, &mut raw);
            }
            d.finish_raw(&mut raw);
            prop_assert_eq!(raw.len(), split.len());
            for (r, e) in raw.iter().zip(&split) {
                prop_assert_eq!(r, &e.clone().into_raw());
                prop_assert_eq!(r.event(), e.event.as_deref());
                prop_assert_eq!(r.data(), e.data.as_deref().map(Cow::Borrowed));
                prop_assert_eq!(r.opaque(), e.opaque);
            }
            for (i, e) in split.iter().enumerate() {
                prop_assert!(e.raw.len() <= max);
                prop_assert_eq!(&e.rebuild_data(), &e.data);
                if let Some(d) = &e.data {
                    // Re-encoding the same data is a parseable event with that
                    // data, in its place: first (where a BOM is special) or
                    // after another event.
                    let mut re = if i == 0 { Vec::new() } else { b"\n".to_vec() };
                    re.extend(e.with_data(d).unwrap());
                    let again = decode_chunks(&[&re], usize::MAX);
                    prop_assert_eq!(again[usize::from(i > 0)].data.as_ref(), Some(d));
                }
            }
        }
    }
}
