//! Reading a stream's frames by their shape.
//!
//! A provider streams hundreds of frames that differ only in one string:
//! `{"id":…,"choices":[{"index":0,"delta":{"content":" the"},…}]}`. Reading
//! each one with serde costs more than everything else the stream does with
//! it. But reading a frame is a pure function of its event name and data,
//! and replacing one JSON string token by another leaves the document's
//! structure alone. So when a frame is the same bytes as the frame before
//! except for the string its one piece came from, its reading is the one
//! before with that string's text: checked byte for byte, never guessed.
//!
//! A frame becomes a template when it has exactly one piece, no snapshot and
//! no usage count, and its strings other than the piece are outside the
//! piece's literal; the template keeps every other part of its reading.
//! The new string must be one JSON string token: plain text between the
//! quotes, or escapes that serde decodes (a `\n`, a `\"`, a `\u00e9`).
//! One other string may change too: OpenAI's random padding
//! ([`PADDING_KEY`]), which no reading depends on; it must still be one
//! string token.

use std::borrow::Cow;

use smallvec::{smallvec, SmallVec};

use super::{json, Channel, ChannelEnd, FrameMeta, FramePiece, FrameView, Locator};

/// The shape of the last frame read in full, when it can stand for the next.
#[derive(Debug, Clone, Default)]
pub struct FrameTemplate {
    /// Whether the fields below hold a shape (they keep their buffers when not).
    usable: bool,
    event: Option<String>,
    /// The data before the piece's opening quote.
    prefix: Vec<u8>,
    /// The data after its closing quote, up to the padding literal if any.
    suffix: Vec<u8>,
    /// Whether a padding literal follows `suffix` (see [`PADDING_KEY`]).
    padded: bool,
    /// The data after the padding literal.
    tail: Vec<u8>,
    channel: Option<Channel>,
    id: Option<Fact>,
    model: Option<Fact>,
    system_fingerprint: Option<Fact>,
    created: Option<u64>,
    sequence_number: Option<u64>,
    opened: SmallVec<[u32; 2]>,
    closed: SmallVec<[u32; 2]>,
    started: bool,
    ends: Vec<ChannelEnd>,
    terminal: bool,
}

/// A top-level key whose string value no codec reads and which changes
/// from frame to frame: OpenAI pads its delta events with random
/// characters there (`stream_options.include_obfuscation`, on by default
/// in the Chat Completions and Responses APIs), so without it no real
/// OpenAI stream would repeat a shape.
const PADDING_KEY: &str = "obfuscation";

/// Where a string fact of the template frame is.
#[derive(Debug, Clone)]
enum Fact {
    /// At this span of the prefix, which the next frame repeats.
    InPrefix(usize, usize),
    /// At this span of the suffix (offsets from the piece's closing quote).
    InSuffix(usize, usize),
    /// This many bytes before the end of the data (inside the tail).
    InTail(usize, usize),
    /// Decoded from escapes: the text itself.
    Owned(String),
}

impl FrameTemplate {
    /// The reading of `data` from the template, when `data` has the
    /// template's shape; `None` otherwise (read it in full).
    pub fn read<'a>(&self, event: Option<&str>, data: &'a str) -> Option<FrameView<'a>> {
        if !self.usable || event != self.event.as_deref() {
            return None;
        }
        let bytes = data.as_bytes();
        let start = self.prefix.len();
        if bytes.len() < start + self.suffix.len() + self.tail.len() + 2
            || !same_bytes(&bytes[..start], &self.prefix)
        {
            return None;
        }
        // The piece's literal ends where the suffix starts: found from the
        // end, or (with a padding literal of any length after it) at its
        // closing quote.
        let end = if self.padded {
            string_end(bytes, start)?
        } else {
            bytes.len() - self.suffix.len()
        };
        let suffix_end = end + self.suffix.len();
        if !same_bytes(bytes.get(end..suffix_end)?, &self.suffix) {
            return None;
        }
        if self.padded {
            let tail_start = bytes.len().checked_sub(self.tail.len())?;
            if tail_start < suffix_end || !same_bytes(&bytes[tail_start..], &self.tail) {
                return None;
            }
            json::string_token(data.get(suffix_end..tail_start)?)?;
        }
        // Each middle must be one string token, or the document's structure
        // could differ from the template's.
        let text = json::string_token(data.get(start..end)?)?;
        let fact = |fact: &Option<Fact>| -> Option<Option<Cow<'a, str>>> {
            Some(match fact {
                None => None,
                Some(Fact::InPrefix(from, to)) => Some(Cow::Borrowed(data.get(*from..*to)?)),
                Some(Fact::InSuffix(from, to)) => {
                    Some(Cow::Borrowed(data.get(end + from..end + to)?))
                }
                Some(Fact::InTail(from_end, to_end)) => Some(Cow::Borrowed(
                    data.get(bytes.len() - from_end..bytes.len() - to_end)?,
                )),
                Some(Fact::Owned(text)) => Some(Cow::Owned(text.clone())),
            })
        };
        Some(FrameView {
            pieces: smallvec![FramePiece {
                channel: self.channel?,
                text,
                locator: Locator { start, end },
            }],
            meta: FrameMeta {
                id: fact(&self.id)?,
                model: fact(&self.model)?,
                system_fingerprint: fact(&self.system_fingerprint)?,
                created: self.created,
                sequence_number: self.sequence_number,
                opened: self.opened.clone(),
                closed: self.closed.clone(),
                started: self.started,
                output_tokens: None,
            },
            snapshots: Vec::new(),
            ends: self.ends.clone(),
            terminal: self.terminal,
            undecodable: false,
        })
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
        let Locator { start, end } = piece.locator;
        let literal = data.get(start..end)?;
        if !simple || literal.len() < 2 || !literal.starts_with('"') || !literal.ends_with('"') {
            return None;
        }
        let padding = padding_literal(data, end);
        let fact = |text: &Option<Cow<'_, str>>| -> Option<Option<Fact>> {
            let Some(text) = text else {
                return Some(None);
            };
            let Some(Locator {
                start: from,
                end: to,
            }) = json::span_in(data, text)
            else {
                return Some(Some(Fact::Owned(text.to_string())));
            };
            let suffix_end = padding.map_or(data.len(), |p| p.start);
            Some(Some(if to <= start {
                Fact::InPrefix(from, to)
            } else if from >= end && to <= suffix_end {
                Fact::InSuffix(from - end, to - end)
            } else if padding.is_some_and(|p| from >= p.end) {
                Fact::InTail(data.len() - from, data.len() - to)
            } else {
                // Borrowed from a literal that changes from frame to frame.
                return None;
            }))
        };
        self.id = fact(&meta.id)?;
        self.model = fact(&meta.model)?;
        self.system_fingerprint = fact(&meta.system_fingerprint)?;
        self.created = meta.created;
        self.sequence_number = meta.sequence_number;
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
        let bytes = data.as_bytes();
        self.prefix.clear();
        self.prefix.extend_from_slice(&bytes[..start]);
        self.suffix.clear();
        self.tail.clear();
        self.padded = padding.is_some();
        match padding {
            Some(p) => {
                self.suffix.extend_from_slice(&bytes[end..p.start]);
                self.tail.extend_from_slice(&bytes[p.end..]);
            }
            None => self.suffix.extend_from_slice(&bytes[end..]),
        }
        Some(())
    }
}

/// The span of the top-level [`PADDING_KEY`] string in `data`, when it
/// comes after `after` (the end of the piece's literal).
fn padding_literal(data: &str, after: usize) -> Option<Locator> {
    memchr::memmem::find(data.as_bytes().get(after..)?, PADDING_KEY.as_bytes())?;
    let [Some(raw)] = json::pick(data, [PADDING_KEY])? else {
        return None;
    };
    let span = json::locate(data, raw)?;
    (raw.get().starts_with('"') && span.start >= after).then_some(span)
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
    // Padding that is not the top-level key: the frame must repeat it.
    const OPENAI_NESTED_PAD: &str =
        r#"{"id":"c","choices":[{"index":0,"delta":{"content":TEXT,"obfuscation":PAD}}]}"#;

    fn frame(shape: &str, literal: &str) -> String {
        padded(shape, literal, r#""Zq""#)
    }

    fn padded(shape: &str, literal: &str, padding: &str) -> String {
        shape.replace("PAD", padding).replace("TEXT", literal)
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
                .map(|(t, p)| (event, padded(shape, t, p)))
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
        // Nested, it is part of the shape like any other byte.
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.parse_next(None, Some(&padded(OPENAI_NESTED_PAD, r#""a""#, r#""p""#)));
        let again = padded(OPENAI_NESTED_PAD, r#""b""#, r#""p""#);
        assert!(codec.template.read(None, &again).is_some());
        let moved = padded(OPENAI_NESTED_PAD, r#""b""#, r#""q""#);
        assert!(codec.template.read(None, &moved).is_none());
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn templated_readings_equal_full_readings(
            frames in prop::collection::vec((0usize..12, literal(), literal()), 1..24)
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
            ];
            for provider in [Provider::OpenAiChat, Provider::Anthropic, Provider::OpenAiResponses] {
                let stream: Vec<(Option<&str>, String)> = frames
                    .iter()
                    .map(|(shape, text, padding)| (shapes[*shape].1, padded(shapes[*shape].2, text, padding)))
                    .collect();
                agree(provider, &stream)?;
            }
        }
    }
}
