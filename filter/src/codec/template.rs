//! Reading a stream's frames by their shape.
//!
//! A provider streams hundreds of frames that differ only in one string:
//! `{"id":…,"choices":[{"index":0,"delta":{"content":" the"},…}]}`. Reading
//! each one with serde costs more than everything else the stream does with
//! it. But reading a frame is a pure function of its event name and data,
//! and replacing one JSON token by another of the same kind leaves the
//! document's structure alone. So when a frame is the same bytes as the
//! frame before except in a few known places, its reading is the one
//! before with those places read anew: checked byte for byte, never guessed.
//!
//! A frame becomes a template when it has exactly one piece, no snapshot and
//! no usage count, and its facts (id, model, …) are outside the places that
//! change. Those places, the template's *holes*, are:
//! - the piece's string: one JSON string token, plain or with escapes that
//!   serde decodes (a `\n`, a `\"`, a `\u00e9`);
//! - OpenAI's random padding ([`PADDING_KEY`]): one string token, not read;
//! - the Responses API's event counter ([`COUNTER_KEY`]): a plain integer,
//!   read as the frame's sequence number.
//!
//! Padding and counter are holes only as top-level keys; anywhere else
//! their bytes are part of the shape like any other.

use std::borrow::Cow;

use smallvec::{smallvec, SmallVec};

use super::{json, Channel, ChannelEnd, FrameMeta, FramePiece, FrameView, Locator};

/// A top-level key whose string value no codec reads and which changes
/// from frame to frame: OpenAI pads its delta events with random
/// characters there (`stream_options.include_obfuscation`, on by default
/// in the Chat Completions and Responses APIs), so without it no real
/// OpenAI stream would repeat a shape.
const PADDING_KEY: &str = "obfuscation";

/// The Responses API numbers every event: a top-level integer that grows
/// by one per frame.
const COUNTER_KEY: &str = "sequence_number";

/// A place where a frame may differ from its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hole {
    Piece,
    Padding,
    Counter,
}

/// The shape of the last frame read in full, when it can stand for the next.
#[derive(Debug, Clone, Default)]
pub struct FrameTemplate {
    /// Whether the fields below hold a shape (they keep their buffers when not).
    usable: bool,
    event: Option<String>,
    /// The data's fixed bytes, every segment end to end.
    fixed: Vec<u8>,
    /// Each fixed segment's end in `fixed` and the hole after it; the last
    /// segment has none and ends the data.
    segments: SmallVec<[(usize, Option<Hole>); 4]>,
    channel: Option<Channel>,
    id: Option<Fact>,
    model: Option<Fact>,
    system_fingerprint: Option<Fact>,
    created: Option<u64>,
    opened: SmallVec<[u32; 2]>,
    closed: SmallVec<[u32; 2]>,
    started: bool,
    ends: Vec<ChannelEnd>,
    terminal: bool,
}

/// Where a string fact of the template frame is.
#[derive(Debug, Clone)]
enum Fact {
    /// At this span of a fixed segment (by index), which the next frame repeats.
    Fixed {
        segment: usize,
        from: usize,
        to: usize,
    },
    /// Decoded from escapes: the text itself.
    Owned(String),
}

/// What a frame has in its template's holes.
#[derive(Default)]
struct Filled<'a> {
    piece: Option<(Cow<'a, str>, Locator)>,
    sequence_number: Option<u64>,
    /// Where each fixed segment starts in the frame.
    starts: SmallVec<[usize; 4]>,
}

impl FrameTemplate {
    /// The reading of `data` from the template, when `data` has the
    /// template's shape; `None` otherwise (read it in full).
    pub fn read<'a>(&self, event: Option<&str>, data: &'a str) -> Option<FrameView<'a>> {
        if !self.usable || event != self.event.as_deref() {
            return None;
        }
        let filled = self.fill(data)?;
        let fact = |fact: &Option<Fact>| -> Option<Option<Cow<'a, str>>> {
            Some(match fact {
                None => None,
                Some(Fact::Fixed { segment, from, to }) => {
                    let at = *filled.starts.get(*segment)?;
                    Some(Cow::Borrowed(data.get(at + from..at + to)?))
                }
                Some(Fact::Owned(text)) => Some(Cow::Owned(text.clone())),
            })
        };
        let meta = FrameMeta {
            id: fact(&self.id)?,
            model: fact(&self.model)?,
            system_fingerprint: fact(&self.system_fingerprint)?,
            created: self.created,
            sequence_number: filled.sequence_number,
            opened: self.opened.clone(),
            closed: self.closed.clone(),
            started: self.started,
            output_tokens: None,
        };
        let (text, locator) = filled.piece?;
        Some(FrameView {
            pieces: smallvec![FramePiece {
                channel: self.channel?,
                text,
                locator,
            }],
            meta,
            snapshots: Vec::new(),
            ends: self.ends.clone(),
            terminal: self.terminal,
            undecodable: false,
        })
    }

    /// Walks `data` along the template: each fixed segment must be there
    /// byte for byte, each hole must hold one token of its kind, and the
    /// last segment must end the data.
    fn fill<'a>(&self, data: &'a str) -> Option<Filled<'a>> {
        let bytes = data.as_bytes();
        let mut filled = Filled::default();
        let (mut at, mut from) = (0, 0);
        for &(to, hole) in &self.segments {
            let fixed = &self.fixed[from..to];
            if !same_bytes(bytes.get(at..at + fixed.len())?, fixed) {
                return None;
            }
            filled.starts.push(at);
            at += fixed.len();
            from = to;
            match hole {
                None => return (at == bytes.len()).then_some(filled),
                Some(Hole::Piece) => {
                    let (text, end) = string_at(data, at)?;
                    filled.piece = Some((text, Locator { start: at, end }));
                    at = end;
                }
                Some(Hole::Padding) => at = string_at(data, at)?.1,
                Some(Hole::Counter) => {
                    let end = bytes[at..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(bytes.len(), |n| at + n);
                    let digits = data.get(at..end)?;
                    // JSON has no leading zeros; anything else is read in full.
                    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
                        return None;
                    }
                    filled.sequence_number = Some(digits.parse().ok()?);
                    at = end;
                }
            }
        }
        None
    }

    /// Learns the shape of a frame read in full, if it can be a template;
    /// forgets the old shape otherwise. Buffers are reused.
    pub fn learn(&mut self, event: Option<&str>, data: &str, view: &FrameView<'_>) {
        self.usable = self.try_learn(event, data, view).is_some();
    }

    fn try_learn(&mut self, event: Option<&str>, data: &str, view: &FrameView<'_>) -> Option<()> {
        let [piece] = view.pieces.as_slice() else {
            return None;
        };
        let meta = &view.meta;
        let simple = view.snapshots.is_empty() && !view.undecodable && meta.output_tokens.is_none();
        let literal = data.get(piece.locator.start..piece.locator.end)?;
        if !simple || literal.len() < 2 || !literal.starts_with('"') || !literal.ends_with('"') {
            return None;
        }
        let mut holes: SmallVec<[(Locator, Hole); 3]> = smallvec![(piece.locator, Hole::Piece)];
        holes.extend(top_level_holes(data, meta.sequence_number));
        // A sequence number is read from the counter hole, so it needs one.
        if meta.sequence_number.is_some() && !holes.iter().any(|(_, h)| *h == Hole::Counter) {
            return None;
        }
        holes.sort_by_key(|(at, _)| at.start);
        // Fixed segments: the data between holes.
        let mut spans: SmallVec<[Locator; 4]> = SmallVec::new();
        let mut at = 0;
        for (hole, _) in &holes {
            if hole.start < at {
                return None;
            }
            spans.push(Locator {
                start: at,
                end: hole.start,
            });
            at = hole.end;
        }
        spans.push(Locator {
            start: at,
            end: data.len(),
        });
        let fact = |text: &Option<Cow<'_, str>>| -> Option<Option<Fact>> {
            let Some(text) = text else {
                return Some(None);
            };
            let Some(found) = json::span_in(data, text) else {
                return Some(Some(Fact::Owned(text.to_string())));
            };
            // Borrowed from a hole, it would change with it.
            let segment = spans
                .iter()
                .position(|s| s.start <= found.start && found.end <= s.end)?;
            let base = spans[segment].start;
            Some(Some(Fact::Fixed {
                segment,
                from: found.start - base,
                to: found.end - base,
            }))
        };
        self.id = fact(&meta.id)?;
        self.model = fact(&meta.model)?;
        self.system_fingerprint = fact(&meta.system_fingerprint)?;
        self.created = meta.created;
        self.opened.clone_from(&meta.opened);
        self.closed.clone_from(&meta.closed);
        self.started = meta.started;
        self.ends.clone_from(&view.ends);
        self.terminal = view.terminal;
        self.channel = Some(piece.channel);
        match event {
            Some(name) => {
                let kept = self.event.get_or_insert_with(String::new);
                kept.clear();
                kept.push_str(name);
            }
            None => self.event = None,
        }
        self.fixed.clear();
        self.segments.clear();
        let hole_after = holes.iter().map(|(_, hole)| Some(*hole)).chain([None]);
        for (span, hole) in spans.iter().zip(hole_after) {
            self.fixed
                .extend_from_slice(&data.as_bytes()[span.start..span.end]);
            self.segments.push((self.fixed.len(), hole));
        }
        Some(())
    }
}

/// The padding and counter holes of `data`: top-level values of
/// [`PADDING_KEY`] (a string) and [`COUNTER_KEY`] (the plain integer the
/// reading took as `sequence_number`).
fn top_level_holes(data: &str, sequence_number: Option<u64>) -> SmallVec<[(Locator, Hole); 2]> {
    let mut holes = SmallVec::new();
    let has = |key: &str| memchr::memmem::find(data.as_bytes(), key.as_bytes()).is_some();
    if !has(PADDING_KEY) && !has(COUNTER_KEY) {
        return holes;
    }
    let Some([padding, counter]) = json::pick(data, [PADDING_KEY, COUNTER_KEY]) else {
        return holes;
    };
    if let Some(raw) = padding.filter(|raw| raw.get().starts_with('"')) {
        holes.extend(json::locate(data, raw).map(|at| (at, Hole::Padding)));
    }
    let plain = |raw: &&serde_json::value::RawValue| {
        sequence_number.is_some_and(|n| raw.get() == n.to_string())
    };
    if let Some(raw) = counter.filter(plain) {
        holes.extend(json::locate(data, raw).map(|at| (at, Hole::Counter)));
    }
    holes
}

/// The text of the JSON string token that opens at `start` in `data`, and
/// the offset one past its closing quote; `None` if none opens there.
fn string_at(data: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let end = string_end(data.as_bytes(), start)?;
    Some((json::string_token(data.get(start..end)?)?, end))
}

/// One past the closing quote of the JSON string that opens at `start`
/// (its escapes skipped, not checked), if it closes.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// `a == b`, eight bytes at a time. Slice equality calls `memcmp`, which in
/// the wasm module is wasi-libc's byte-at-a-time loop: comparing each
/// frame's ~200 bytes of prefix and suffix that way was 8 % of an exchange
/// inside the module (perf over `exchange_loop`).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = a_words.remainder() == b_words.remainder();
    let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
    tails_equal && a_words.zip(b_words).all(|(x, y)| word(x) == word(y))
}

#[cfg(test)]
mod tests {
    use super::super::{Provider, StreamCodec};
    use super::same_bytes;
    use proptest::prelude::*;

    const OPENAI_SORTED: &str = r#"{"choices":[{"delta":{"content":TEXT},"finish_reason":null,"index":0,"logprobs":null}],"created":1767274245,"id":"chatcmpl-1","model":"gpt-4o","object":"chat.completion.chunk","system_fingerprint":"fp_7f"}"#;
    const OPENAI: &str = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp_\u0041","choices":[{"index":1,"delta":{"content":TEXT},"logprobs":null,"finish_reason":null}]}"#;
    const OPENAI_FINISH: &str = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":TEXT},"finish_reason":"stop"}]}"#;
    const OPENAI_TOOL: &str = r#"{"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":TEXT}}]}}]}"#;
    const OPENAI_USAGE: &str = r#"{"id":"c","choices":[{"index":0,"delta":{"content":TEXT}}],"usage":{"completion_tokens":7}}"#;
    const ANTHROPIC: &str =
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":TEXT}}"#;
    const ANTHROPIC_THINKING: &str = r#"{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":TEXT}}"#;
    const RESPONSES: &str = r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":TEXT,"sequence_number":4}"#;
    // As OpenAI sends them by default: random padding after the text.
    const OPENAI_PADDED: &str = r#"{"id":"chatcmpl-3","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_b","choices":[{"index":0,"delta":{"content":TEXT},"logprobs":null,"finish_reason":null}],"obfuscation":PAD}"#;
    // Facts between the text and the padding, and after it.
    const OPENAI_SORTED_PADDED: &str = r#"{"choices":[{"delta":{"content":TEXT},"finish_reason":null,"index":0,"logprobs":null}],"created":1767274245,"id":"chatcmpl-1","model":"gpt-4o","obfuscation":PAD,"object":"chat.completion.chunk","system_fingerprint":"fp_7f"}"#;
    const RESPONSES_PADDED: &str = r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":TEXT,"logprobs":[],"obfuscation":PAD,"sequence_number":4}"#;
    // As the Responses API sends them: a counter before the text, padding after.
    const RESPONSES_COUNTED: &str = r#"{"type":"response.output_text.delta","sequence_number":SEQ,"item_id":"msg_1","output_index":0,"content_index":0,"delta":TEXT,"logprobs":[],"obfuscation":PAD}"#;
    // Padding that is not the top-level key: the frame must repeat it.
    const OPENAI_NESTED_PAD: &str =
        r#"{"id":"c","choices":[{"index":0,"delta":{"content":TEXT,"obfuscation":PAD}}]}"#;

    fn frame(shape: &str, literal: &str) -> String {
        padded(shape, literal, r#""Zq""#)
    }

    fn padded(shape: &str, literal: &str, padding: &str) -> String {
        counted(shape, literal, padding, "7")
    }

    fn counted(shape: &str, literal: &str, padding: &str, counter: &str) -> String {
        shape
            .replace("SEQ", counter)
            .replace("PAD", padding)
            .replace("TEXT", literal)
    }

    /// Reads `frames` in order with one templating codec, and each alone
    /// in full: the readings must agree. Returns how many were templated.
    fn agree(
        provider: Provider,
        frames: &[(Option<&str>, String)],
    ) -> Result<usize, TestCaseError> {
        let mut codec = StreamCodec::new(provider);
        let full = StreamCodec::new(provider);
        let mut templated = 0;
        for (event, data) in frames {
            templated += usize::from(codec.template.read(*event, data).is_some());
            let next = codec.parse_next(*event, Some(data));
            prop_assert_eq!(next, full.parse_data(*event, Some(data)), "frame {}", data);
        }
        Ok(templated)
    }

    #[test]
    fn frames_that_differ_only_in_their_text_reuse_the_reading() {
        for (provider, event, shape) in [
            (Provider::OpenAiChat, None, OPENAI_SORTED),
            (Provider::OpenAiChat, None, OPENAI),
            (Provider::OpenAiChat, None, OPENAI_FINISH),
            (Provider::OpenAiChat, None, OPENAI_TOOL),
            (Provider::Anthropic, Some("content_block_delta"), ANTHROPIC),
            (
                Provider::Anthropic,
                Some("content_block_delta"),
                ANTHROPIC_THINKING,
            ),
            (
                Provider::OpenAiResponses,
                Some("response.output_text.delta"),
                RESPONSES,
            ),
            (Provider::OpenAiChat, None, OPENAI_PADDED),
            (Provider::OpenAiChat, None, OPENAI_SORTED_PADDED),
            (
                Provider::OpenAiResponses,
                Some("response.output_text.delta"),
                RESPONSES_PADDED,
            ),
            (
                Provider::OpenAiResponses,
                Some("response.output_text.delta"),
                RESPONSES_COUNTED,
            ),
        ] {
            let texts = [
                r#"" the""#,
                r#""""#,
                r#"" caf\u00e9""#,
                r#""é 🦀""#,
                r#""line\nbreak, \"quoted\" \\ \ud83e\udd80""#,
                r#""\\""#,
                r#""x""#,
            ];
            let paddings = [r#""a""#, r#""""#, r#""KpX0w""#, r#""\u0041\"b""#];
            let frames: Vec<_> = texts
                .iter()
                .zip(paddings.iter().cycle())
                .enumerate()
                .map(|(i, (t, p))| (event, counted(shape, t, p, &(8 + i * 45).to_string())))
                .collect();
            // Every frame after the first is templated, escapes decoded.
            assert_eq!(
                agree(provider, &frames).unwrap(),
                texts.len() - 1,
                "{shape}"
            );
        }
    }

    #[test]
    fn anything_but_one_string_token_in_the_same_place_is_read_in_full() {
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.parse_next(None, Some(&frame(OPENAI, r#""a""#)));
        for literal in [
            r#""a","content":"b""#,
            r#""a\\"b""#,
            r#""ends in an escaped quote\""#,
            r#""bad \x escape""#,
            r#""lone \ud800 surrogate""#,
            r#""short \u12 escape""#,
            "\"tab\there\"",
            "\"new\nline\"",
            "null",
            "7",
            r#"["a"]"#,
            r#""a"#,
        ] {
            assert!(
                codec.template.read(None, &frame(OPENAI, literal)).is_none(),
                "{literal}"
            );
            // (and reading in full forgets or relearns the shape)
            codec.parse_next(None, Some(&frame(OPENAI, r#""a""#)));
        }
        // Another event name, or other bytes around the text.
        let mut codec = StreamCodec::new(Provider::Anthropic);
        codec.parse_next(
            Some("content_block_delta"),
            Some(&frame(ANTHROPIC, r#""a""#)),
        );
        assert!(codec
            .template
            .read(Some("other"), &frame(ANTHROPIC, r#""b""#))
            .is_none());
        assert!(codec
            .template
            .read(None, &frame(ANTHROPIC, r#""b""#))
            .is_none());
        let moved = frame(ANTHROPIC, r#""b""#).replace("\"index\":0", "\"index\":1");
        assert!(codec
            .template
            .read(Some("content_block_delta"), &moved)
            .is_none());
    }

    #[test]
    fn only_top_level_string_padding_may_change() {
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.parse_next(None, Some(&padded(OPENAI_PADDED, r#""a""#, r#""p""#)));
        assert!(codec
            .template
            .read(None, &padded(OPENAI_PADDED, r#""b""#, r#""longer pad""#))
            .is_some());
        for padding in ["7", "null", r#""a","x":"b""#, r#""bad \x""#, r#""open"#] {
            assert!(
                codec
                    .template
                    .read(None, &padded(OPENAI_PADDED, r#""b""#, padding))
                    .is_none(),
                "{padding}"
            );
        }
        // The bytes on either side of the padding are still the shape.
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        let learned = padded(OPENAI_SORTED_PADDED, r#""a""#, r#""p""#);
        codec.parse_next(None, Some(&learned));
        for (from, to) in [
            ("\"fp_7f\"", "\"fp_8g\""),
            ("\"gpt-4o\"", "\"gpt-5o\""),
            ("}]", "},{\"index\":1,\"delta\":{}}]"),
            ("\"system_", "\"usage\":{\"completion_tokens\":5},\"system_"),
        ] {
            let changed = learned.replace(from, to);
            assert_ne!(changed, learned);
            assert!(codec.template.read(None, &changed).is_none(), "{changed}");
        }
        let trailing = format!("{learned}x");
        assert!(codec.template.read(None, &trailing).is_none());
        // Nested, it is part of the shape like any other byte.
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.parse_next(None, Some(&padded(OPENAI_NESTED_PAD, r#""a""#, r#""p""#)));
        let again = padded(OPENAI_NESTED_PAD, r#""b""#, r#""p""#);
        assert!(codec.template.read(None, &again).is_some());
        let moved = padded(OPENAI_NESTED_PAD, r#""b""#, r#""q""#);
        assert!(codec.template.read(None, &moved).is_none());
    }

    /// Values the counter hole must not take (each read in full instead):
    /// leading zero, sign, fraction, exponent, past u64, string, null, none.
    const NOT_COUNTERS: [&str; 8] = [
        "010",
        "-1",
        "4.0",
        "1e3",
        "99999999999999999999",
        r#""4""#,
        "null",
        "",
    ];

    #[test]
    fn only_a_top_level_plain_integer_counter_may_change() {
        let event = Some("response.output_text.delta");
        let mut codec = StreamCodec::new(Provider::OpenAiResponses);
        codec.parse_next(
            event,
            Some(&counted(RESPONSES_COUNTED, r#""a""#, r#""p""#, "9")),
        );
        let next = counted(RESPONSES_COUNTED, r#""b""#, r#""q""#, "10");
        let read = codec.template.read(event, &next).expect("templated");
        assert_eq!(read.meta.sequence_number, Some(10));
        for counter in NOT_COUNTERS {
            let frame = counted(RESPONSES_COUNTED, r#""b""#, r#""q""#, counter);
            assert!(codec.template.read(event, &frame).is_none(), "{counter}");
        }
        // Nested, a counter is part of the shape.
        let nested =
            r#"{"type":"response.output_text.delta","item":{"sequence_number":SEQ},"delta":TEXT}"#;
        let mut codec = StreamCodec::new(Provider::OpenAiResponses);
        codec.parse_next(event, Some(&counted(nested, r#""a""#, "", "1")));
        assert!(codec
            .template
            .read(event, &counted(nested, r#""b""#, "", "1"))
            .is_some());
        assert!(codec
            .template
            .read(event, &counted(nested, r#""b""#, "", "2"))
            .is_none());
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let text = b"0123456789abcdefghijklmnopqrstuvwxyz";
        for len in 0..text.len() {
            let a = &text[..len];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &text[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "{len} {at}");
            }
        }
    }

    #[test]
    fn frames_with_usage_or_snapshots_are_not_templates() {
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.parse_next(None, Some(&frame(OPENAI_USAGE, r#""a""#)));
        assert!(codec
            .template
            .read(None, &frame(OPENAI_USAGE, r#""b""#))
            .is_none());
        let done = r#"{"type":"response.output_text.done","item_id":"m","output_index":0,"content_index":0,"text":"a"}"#;
        let mut codec = StreamCodec::new(Provider::OpenAiResponses);
        codec.parse_next(Some("response.output_text.done"), Some(done));
        assert!(codec
            .template
            .read(
                Some("response.output_text.done"),
                &done.replace("\"a\"", "\"b\"")
            )
            .is_none());
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            // Any text, correctly encoded (escapes included).
            any::<String>().prop_map(|t| serde_json::to_string(&t).unwrap_or_default()),
            "[a-z ]{0,12}".prop_map(|t| format!("\"{t}\"")),
            // Raw bytes that are not one string token.
            prop::sample::select(vec![
                r#""a","content":"b""#,
                r#""a"}},{"index":1,"delta":{"content":"b""#,
                "null",
                r#""\ud800""#,
                r#""\x""#,
                r#""a\\"b""#,
                r#""a\""#,
                "\"\u{1}\"",
                r#"""#,
                "",
            ])
            .prop_map(str::to_string),
        ]
    }

    fn counter() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..1000).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            prop::sample::select(NOT_COUNTERS.to_vec()).prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn templated_readings_equal_full_readings(
            frames in prop::collection::vec((0usize..13, literal(), literal(), counter()), 1..24)
        ) {
            let shapes = [
                (Provider::OpenAiChat, None, OPENAI_SORTED),
                (Provider::OpenAiChat, None, OPENAI),
                (Provider::OpenAiChat, None, OPENAI_FINISH),
                (Provider::OpenAiChat, None, OPENAI_TOOL),
                (Provider::OpenAiChat, None, OPENAI_USAGE),
                (Provider::Anthropic, Some("content_block_delta"), ANTHROPIC),
                (Provider::Anthropic, Some("content_block_delta"), ANTHROPIC_THINKING),
                (Provider::OpenAiResponses, Some("response.output_text.delta"), RESPONSES),
                (Provider::OpenAiChat, None, OPENAI_PADDED),
                (Provider::OpenAiChat, None, OPENAI_SORTED_PADDED),
                (Provider::OpenAiResponses, Some("response.output_text.delta"), RESPONSES_PADDED),
                (Provider::OpenAiChat, None, OPENAI_NESTED_PAD),
                (Provider::OpenAiResponses, Some("response.output_text.delta"), RESPONSES_COUNTED),
            ];
            for provider in [Provider::OpenAiChat, Provider::Anthropic, Provider::OpenAiResponses] {
                let stream: Vec<(Option<&str>, String)> = frames
                    .iter()
                    .map(|(shape, text, padding, counter)| {
                        (shapes[*shape].1, counted(shapes[*shape].2, text, padding, counter))
                    })
                    .collect();
                agree(provider, &stream)?;
            }
        }
    }
}
