//! Provider formats: find the text in requests, responses and stream frames
//! of the OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
//! APIs, and write changed text back into the *same* document.
//!
//! # Editing without re-serialising
//!
//! Every text this module reports carries a [`Locator`]: the byte span of its
//! JSON string literal (quotes included) in the document it came from. A
//! rewrite splices new string literals into the original bytes
//! ([`splice`]), so every other byte — field order, whitespace, number
//! formatting, unknown fields — stays as the provider sent it. Spans come
//! from `serde_json`'s borrowed [`RawValue`]s (a sub-slice of the input, so
//! its offset is a pointer difference), which is why the crate enables
//! `serde_json`'s `raw_value` feature.
//!
//! # Never fail on traffic
//!
//! Unknown providers, fields, event types and content part types are passed
//! over, not rejected: an unrecognised document simply has no text segments.
//! Only a request body that is not JSON at all is an error
//! ([`parse_request`]), so the caller can choose to pass it or fail closed.
//! A string that JSON-decodes to invalid Unicode (a lone `\ud800` escape) is
//! counted in `undecodable`, never guessed at.

pub mod anthropic;
pub mod openai_chat;
pub mod openai_responses;
mod template;

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use memchr::memmem;
use serde_json::value::RawValue;
use smallvec::SmallVec;

use crate::sse::SseEvent;

/// The wire format a request, response or stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI `POST /v1/chat/completions` (and compatible servers).
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// Anthropic `POST /v1/messages`.
    Anthropic,
    /// Anything else: passed through untouched.
    Unknown,
}

impl Provider {
    /// The provider an API path names, if any (query string ignored; Azure
    /// style `/openai/deployments/x/chat/completions` included).
    pub fn from_path(path: &str) -> Option<Provider> {
        let path = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(Provider::OpenAiChat)
        } else if path.ends_with("/responses") {
            Some(Provider::OpenAiResponses)
        } else if path.ends_with("/messages") || path.ends_with("/messages/count_tokens") {
            Some(Provider::Anthropic)
        } else {
            None
        }
    }

    /// Guesses the provider from a request body's top-level keys, for paths
    /// that do not say.
    fn from_request_shape(root: &json::Obj<'_>) -> Provider {
        let has = |k: &str| root.get(k).is_some();
        if has("messages") {
            let anthropic_only = [
                "system",
                "anthropic_version",
                "stop_sequences",
                "top_k",
                "thinking",
            ];
            let openai_only = [
                "n",
                "response_format",
                "max_completion_tokens",
                "frequency_penalty",
                "presence_penalty",
                "stream_options",
                "logprobs",
            ];
            if anthropic_only.iter().any(|k| has(k)) && !openai_only.iter().any(|k| has(k)) {
                Provider::Anthropic
            } else {
                Provider::OpenAiChat
            }
        } else if has("input") || has("instructions") {
            Provider::OpenAiResponses
        } else {
            Provider::Unknown
        }
    }

    /// A short stable name for logs and audit events.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAiChat => "openai_chat",
            Provider::OpenAiResponses => "openai_responses",
            Provider::Anthropic => "anthropic",
            Provider::Unknown => "unknown",
        }
    }
}

/// Byte span of a JSON string literal, quotes included, in the document it
/// was found in (a request or response body, or one SSE event's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Locator {
    /// Offset of the opening quote.
    pub start: usize,
    /// Offset one past the closing quote.
    pub end: usize,
}

/// What part of a conversation a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// Ordinary message text.
    Text,
    /// A system or developer prompt (Anthropic `system`, OpenAI system/developer messages).
    System,
    /// OpenAI Responses `instructions`.
    Instructions,
    /// The output of a tool, fed back to the model.
    ToolResult,
    /// Arguments of a tool call (a JSON text, or one string inside Anthropic's `input`).
    ToolArguments,
    /// A refusal message.
    Refusal,
    /// Reasoning or thinking text.
    Reasoning,
}

/// One text in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSegment {
    /// The role of the message it belongs to (`system`, `developer`, `user`,
    /// `assistant`, `tool`, or whatever the document says).
    pub role: String,
    /// What the text is.
    pub kind: SegmentKind,
    /// The decoded text.
    pub text: String,
    /// Where its string literal is in the body.
    pub locator: Locator,
    /// A JSON path for humans and audit events, such as `messages[2].content[0].text`.
    pub path: String,
}

/// What the engine needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// The format, from the path or the body's shape.
    pub provider: Provider,
    /// The `model` field.
    pub model: Option<String>,
    /// Whether the client asked for a streamed (SSE) answer.
    pub stream: bool,
    /// OpenAI chat `n` (number of choices).
    pub n: Option<u64>,
    /// The requested output format's `type` (`json_object`, `json_schema`, `text`).
    pub response_format: Option<String>,
    /// The output token limit, under whichever name the format uses.
    pub max_tokens: Option<u64>,
    /// The client asked for log probabilities (OpenAI chat `logprobs: true`,
    /// Responses `top_logprobs` or an `include` of `*.logprobs`). Those repeat
    /// the raw tokens of the answer, which redaction does not rewrite.
    pub logprobs: bool,
    /// Every text, in document order.
    pub segments: Vec<TextSegment>,
    /// System, developer and instruction texts joined with `\n`: the text to
    /// fingerprint for prompt-leak detection.
    pub system_prompt: String,
    /// Paths of strings that could not be decoded (lone surrogate escapes).
    pub undecodable: Vec<String>,
    /// Names of the tools (functions) the request declares, for the inventory.
    pub tools: Vec<String>,
}

impl RequestView {
    fn new(provider: Provider) -> RequestView {
        RequestView {
            provider,
            model: None,
            stream: false,
            n: None,
            response_format: None,
            max_tokens: None,
            logprobs: false,
            segments: Vec::new(),
            system_prompt: String::new(),
            undecodable: Vec::new(),
            tools: Vec::new(),
        }
    }

    fn push(&mut self, base: &str, raw: &RawValue, role: &str, kind: SegmentKind, path: String) {
        match json::text(base, raw) {
            Some(Ok((text, locator))) => self.segments.push(TextSegment {
                role: role.to_string(),
                kind,
                text: text.into_owned(),
                locator,
                path,
            }),
            Some(Err(())) => self.undecodable.push(path),
            None => {}
        }
    }
}

/// Which text stream inside a response a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// Answer text.
    Text,
    /// A refusal.
    Refusal,
    /// Tool call arguments (JSON text streamed in fragments).
    ToolArguments,
    /// Reasoning or thinking text.
    Reasoning,
    /// A reasoning summary (OpenAI Responses).
    ReasoningSummary,
}

/// A channel: one text that a response streams in pieces. `index` is the
/// choice (OpenAI chat), content block (Anthropic) or output item (OpenAI
/// Responses); `sub` is the tool call, content part or summary part within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    /// Choice, content block or output item index.
    pub index: u32,
    /// Tool call, content part or summary index within it (0 if none).
    pub sub: u32,
    /// What the text is.
    pub kind: ChannelKind,
}

impl Channel {
    /// A channel from its parts.
    pub const fn new(index: u32, sub: u32, kind: ChannelKind) -> Channel {
        Channel { index, sub, kind }
    }
}

/// One text in a non-streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSegment {
    /// The channel the same text would stream in.
    pub channel: Channel,
    /// The decoded text.
    pub text: String,
    /// Where its string literal is in the body.
    pub locator: Locator,
    /// A JSON path, such as `choices[0].message.content`.
    pub path: String,
}

/// The texts of a non-streamed response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseView {
    /// The `model` field.
    pub model: Option<String>,
    /// Every text, in document order.
    pub segments: Vec<ResponseSegment>,
    /// Paths of strings that could not be decoded.
    pub undecodable: Vec<String>,
}

impl ResponseView {
    fn push(&mut self, base: &str, raw: &RawValue, channel: Channel, path: String) {
        match json::text(base, raw) {
            Some(Ok((text, locator))) => self.segments.push(ResponseSegment {
                channel,
                text: text.into_owned(),
                locator,
                path,
            }),
            Some(Err(())) => self.undecodable.push(path),
            None => {}
        }
    }
}

/// A piece of a channel's text carried by one stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePiece<'a> {
    /// Its channel.
    pub channel: Channel,
    /// The decoded piece: borrowed from the event's data unless it has escapes.
    pub text: Cow<'a, str>,
    /// Where its string literal is in the event's data.
    pub locator: Locator,
}

/// Which channels a frame closes: no more pieces will follow for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelEnd {
    /// Exactly this channel.
    One(Channel),
    /// Every channel with this `index` (a finished choice, a stopped block, a done item).
    Index(u32),
    /// Every channel (end of the message or the stream).
    All,
}

/// Facts a frame reveals that an in-band block must echo (ids, model,
/// sequence numbers) or respect (which choices and blocks are open). The
/// stream applies them when the frame is *sent*, so a block never refers to
/// frames it dropped. Its strings borrow from the event's data while the
/// frame is parsed: nearly every frame repeats its predecessor's, and only
/// a changed one is kept ([`FrameMeta::into_owned`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameMeta<'a> {
    /// Response / message / completion id.
    pub id: Option<Cow<'a, str>>,
    /// Model name.
    pub model: Option<Cow<'a, str>>,
    /// `created` / `created_at`.
    pub created: Option<u64>,
    /// OpenAI `system_fingerprint`.
    pub system_fingerprint: Option<Cow<'a, str>>,
    /// OpenAI Responses `sequence_number`.
    pub sequence_number: Option<u64>,
    /// Choices or content blocks this frame opens.
    pub opened: SmallVec<[u32; 2]>,
    /// Choices or content blocks this frame closes.
    pub closed: SmallVec<[u32; 2]>,
    /// Anthropic `message_start` / Responses `response.created`.
    pub started: bool,
    /// Output tokens the provider reports (`usage`), when this frame has them.
    pub output_tokens: Option<u64>,
}

impl FrameMeta<'_> {
    /// The same facts, owning their strings.
    pub fn into_owned(self) -> FrameMeta<'static> {
        let own = |s: Option<Cow<'_, str>>| s.map(|s| Cow::Owned(s.into_owned()));
        FrameMeta {
            id: own(self.id),
            model: own(self.model),
            created: self.created,
            system_fingerprint: own(self.system_fingerprint),
            sequence_number: self.sequence_number,
            opened: self.opened,
            closed: self.closed,
            started: self.started,
            output_tokens: self.output_tokens,
        }
    }
}

/// What one stream frame holds; its texts borrow from the event's data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameView<'a> {
    /// Pieces of streamed text (deltas), in document order.
    pub pieces: SmallVec<[FramePiece<'a>; 1]>,
    /// Full-text repeats of a channel (OpenAI Responses `*.done`, `response.completed`):
    /// to be redacted as a whole so they agree with the streamed pieces.
    pub snapshots: Vec<FramePiece<'a>>,
    /// Channels this frame closes (applied after its pieces).
    pub ends: Vec<ChannelEnd>,
    /// The frame ends the stream (`[DONE]`, `message_stop`, `response.completed`, an error).
    pub terminal: bool,
    /// The data is not JSON, or holds a string that cannot be decoded.
    pub undecodable: bool,
    /// Facts for in-band blocks.
    pub meta: FrameMeta<'a>,
}

impl<'a> FrameView<'a> {
    fn piece(&mut self, data: &str, raw: &'a RawValue, channel: Channel) {
        match json::text(data, raw) {
            Some(Ok((text, locator))) => self.pieces.push(FramePiece {
                channel,
                text,
                locator,
            }),
            Some(Err(())) => self.undecodable = true,
            None => {}
        }
    }

    fn snapshot(&mut self, data: &str, raw: &'a RawValue, channel: Channel) {
        match json::text(data, raw) {
            Some(Ok((text, locator))) => self.snapshots.push(FramePiece {
                channel,
                text,
                locator,
            }),
            Some(Err(())) => self.undecodable = true,
            None => {}
        }
    }
}

/// How an in-band block ends a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockStyle {
    /// Per provider: OpenAI chat a `content_filter` finish, Responses a
    /// `response.failed` event, Anthropic an `error` event.
    #[default]
    Default,
    /// End as the provider's own content filter would, without an error:
    /// OpenAI chat `finish_reason: "content_filter"`, Responses
    /// `response.incomplete` with reason `content_filter`, Anthropic
    /// `stop_reason: "refusal"`.
    Graceful,
    /// End with the provider's error shape: OpenAI chat an in-band `error`
    /// object, Responses `response.failed`, Anthropic `event: error`.
    Error,
}

/// Per-stream state for a provider's frames: parses frames and writes the
/// frames that end a stream in-band.
#[derive(Debug, Clone)]
pub struct StreamCodec {
    provider: Provider,
    state: StreamState,
    template: template::FrameTemplate,
}

/// How many choices / blocks a [`StreamState`] tracks; a stream that opens
/// more (only a broken or hostile upstream would) is not tracked further.
pub const MAX_TRACKED_INDICES: usize = 1024;

/// What has been sent downstream so far, for in-band blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Last seen id.
    pub id: Option<String>,
    /// Last seen model.
    pub model: Option<String>,
    /// Last seen creation time.
    pub created: Option<u64>,
    /// Last seen OpenAI system fingerprint.
    pub system_fingerprint: Option<String>,
    /// Last seen Responses sequence number.
    pub sequence_number: Option<u64>,
    /// Choices / blocks opened and not closed, in opening order.
    pub open: Vec<u32>,
    /// Every choice / block ever opened.
    pub seen: Vec<u32>,
    /// The message or response has started.
    pub started: bool,
    /// The highest output-token count reported so far.
    pub output_tokens: Option<u64>,
}

impl StreamCodec {
    /// A codec for one stream of `provider`.
    pub fn new(provider: Provider) -> StreamCodec {
        StreamCodec {
            provider,
            state: StreamState::default(),
            template: template::FrameTemplate::default(),
        }
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// What has been sent so far.
    pub fn state(&self) -> &StreamState {
        &self.state
    }

    /// Parses one event. Never fails: an event it does not understand has
    /// no pieces.
    pub fn parse<'a>(&self, event: &'a SseEvent) -> FrameView<'a> {
        self.parse_data(event.event.as_deref(), event.data.as_deref())
    }

    /// [`StreamCodec::parse`] on an event's `event` and `data` fields.
    pub fn parse_data<'a>(&self, event: Option<&str>, data: Option<&'a str>) -> FrameView<'a> {
        let Some(data) = data else {
            return FrameView::default();
        };
        let mut view = match self.provider {
            Provider::OpenAiChat => openai_chat::parse_frame(data),
            Provider::OpenAiResponses => openai_responses::parse_frame(event, data),
            Provider::Anthropic => anthropic::parse_frame(event, data),
            Provider::Unknown => FrameView::default(),
        };
        view.meta.output_tokens = reported_output_tokens(data);
        view
    }

    /// The next frame of this stream, as [`StreamCodec::parse_data`] reads
    /// it; a frame shaped like the one before (the same bytes but for its
    /// one piece's string) reuses that reading (see `codec/template.rs`).
    pub fn parse_next<'a>(&mut self, event: Option<&str>, data: Option<&'a str>) -> FrameView<'a> {
        let Some(data) = data else {
            return FrameView::default();
        };
        if let Some(view) = self.template.read(event, data) {
            return view;
        }
        let view = self.parse_data(event, Some(data));
        self.template.learn(event, data, &view);
        view
    }

    /// Records what a frame revealed, once it has been sent.
    pub fn observe(&mut self, meta: &FrameMeta<'_>) {
        let s = &mut self.state;
        let keep = |to: &mut Option<String>, from: &Option<Cow<'_, str>>| {
            if let Some(from) = from {
                let to = to.get_or_insert_with(String::new);
                to.clear();
                to.push_str(from);
            }
        };
        keep(&mut s.id, &meta.id);
        keep(&mut s.model, &meta.model);
        if meta.created.is_some() {
            s.created = meta.created;
        }
        keep(&mut s.system_fingerprint, &meta.system_fingerprint);
        if meta.sequence_number.is_some() {
            s.sequence_number = meta.sequence_number;
        }
        s.started |= meta.started;
        // Anthropic reports a running total, OpenAI one final count: keep the highest.
        s.output_tokens = s.output_tokens.max(meta.output_tokens);
        for &i in &meta.opened {
            if s.seen.len() < MAX_TRACKED_INDICES && !s.seen.contains(&i) {
                s.seen.push(i);
                s.open.push(i);
            }
        }
        s.open.retain(|i| !meta.closed.contains(i));
    }

    /// The frames that end the stream in-band with `message`.
    pub fn block_frames(&self, message: &str, style: BlockStyle) -> Vec<u8> {
        match self.provider {
            Provider::OpenAiChat => openai_chat::block_frames(&self.state, message, style),
            Provider::OpenAiResponses => {
                openai_responses::block_frames(&self.state, message, style)
            }
            Provider::Anthropic => anthropic::block_frames(&self.state, message, style),
            Provider::Unknown => Vec::new(),
        }
    }
}

/// Output tokens a provider reports in a frame or a whole response:
/// `usage.completion_tokens` (OpenAI chat) or `usage.output_tokens`
/// (Anthropic, Responses), at the top or under `message` / `response`.
/// Most frames carry no usage, so they are not parsed a second time.
pub fn reported_output_tokens(data: &str) -> Option<u64> {
    // Once per frame: a prebuilt searcher, not `str::contains`, which sets
    // up a Two-Way searcher on every call (5 % of a stream's time in wasm).
    static USAGE_KEY: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\"usage\""));
    USAGE_KEY.find(data.as_bytes())?;
    fn counts(usage: &RawValue) -> Option<[Option<&RawValue>; 2]> {
        json::pick_raw(usage, ["completion_tokens", "output_tokens"])
    }
    fn nested(outer: Option<&RawValue>) -> Option<[Option<&RawValue>; 2]> {
        counts(json::pick_raw(outer?, ["usage"])?[0]?)
    }
    let [usage, message, response] = json::pick(data, ["usage", "message", "response"])?;
    let [completion, output] = usage
        .and_then(counts)
        .or_else(|| nested(message))
        .or_else(|| nested(response))?;
    let count = |r: Option<&RawValue>| r?.get().parse().ok();
    count(completion).or_else(|| count(output))
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// What was being read (`request body`).
    pub what: &'static str,
    /// The problem, in one line.
    pub message: String,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.message)
    }
}

impl std::error::Error for CodecError {}

fn parse_root<'a>(
    what: &'static str,
    body: &'a [u8],
) -> Result<(&'a str, json::Obj<'a>), CodecError> {
    let text = std::str::from_utf8(body).map_err(|e| CodecError {
        what,
        message: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    match serde_json::from_str::<json::Obj<'a>>(text) {
        Ok(root) => Ok((text, root)),
        Err(e) => Err(CodecError {
            what,
            message: format!("not a JSON object: {e}"),
        }),
    }
}

/// Reads a request body: the provider (from `path`, else the body's shape),
/// its texts with their locators, model, stream flag and output format.
/// Only a body that is not a UTF-8 JSON object is an error; an unknown shape
/// gives [`Provider::Unknown`] and no segments.
pub fn parse_request(path: &str, body: &[u8]) -> Result<RequestView, CodecError> {
    let (base, root) = parse_root("request body", body)?;
    let provider = Provider::from_path(path).unwrap_or_else(|| Provider::from_request_shape(&root));
    let mut view = RequestView::new(provider);
    view.model = root.str("model");
    view.stream = root.bool("stream").unwrap_or(false);
    // OpenAI chat nests the name under `function`; Responses and Anthropic do not.
    view.tools = root
        .arr("tools")
        .unwrap_or_default()
        .into_iter()
        .filter_map(json::obj)
        .filter_map(|t| t.str("name").or_else(|| t.obj("function")?.str("name")))
        .collect();
    match provider {
        Provider::OpenAiChat => openai_chat::parse_request(base, &root, &mut view),
        Provider::OpenAiResponses => openai_responses::parse_request(base, &root, &mut view),
        Provider::Anthropic => anthropic::parse_request(base, &root, &mut view),
        Provider::Unknown => {}
    }
    let system: Vec<&str> = view
        .segments
        .iter()
        .filter(|s| matches!(s.kind, SegmentKind::System | SegmentKind::Instructions))
        .map(|s| s.text.as_str())
        .collect();
    view.system_prompt = system.join("\n");
    Ok(view)
}

/// The request body with its top-level `model` replaced (the degrade
/// rung), every other byte unchanged; `None` when the body has no string
/// `model` to replace.
pub fn replace_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let (base, root) = parse_root("request body", body).ok()?;
    let (_, locator) = json::text(base, root.get("model")?)?.ok()?;
    Some(rewrite_request(body, &[(locator, model.to_string())]))
}

/// Writes new texts into a request body at the given locators (from
/// [`parse_request`] on the same body). Everything else stays byte-for-byte.
/// Overlapping or out-of-range locators are skipped.
pub fn rewrite_request(body: &[u8], edits: &[(Locator, String)]) -> Vec<u8> {
    splice_bytes(body, edits)
}

/// Reads a non-streamed response body of `provider`. Only a body that is
/// not a UTF-8 JSON object is an error.
pub fn parse_response(provider: Provider, body: &[u8]) -> Result<ResponseView, CodecError> {
    let (base, root) = parse_root("response body", body)?;
    let mut view = ResponseView {
        model: root.str("model"),
        ..ResponseView::default()
    };
    match provider {
        Provider::OpenAiChat => openai_chat::parse_response(base, &root, &mut view),
        Provider::OpenAiResponses => openai_responses::parse_response(base, &root, &mut view),
        Provider::Anthropic => anthropic::parse_response(base, &root, &mut view),
        Provider::Unknown => {}
    }
    Ok(view)
}

/// Writes new texts into a response body at the given locators.
pub fn rewrite_response(body: &[u8], edits: &[(Locator, String)]) -> Vec<u8> {
    splice_bytes(body, edits)
}

fn splice_bytes(body: &[u8], edits: &[(Locator, String)]) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(text) => {
            let refs: Vec<(Locator, &str)> = edits.iter().map(|(l, t)| (*l, t.as_str())).collect();
            splice(text, &refs).into_bytes()
        }
        Err(_) => body.to_vec(),
    }
}

/// Replaces the JSON string literals at `edits` in `doc` with literals
/// encoding the new texts. Edits that overlap an earlier one, fall outside
/// `doc` or do not cover a string literal are skipped.
pub fn splice(doc: &str, edits: &[(Locator, &str)]) -> String {
    let mut sorted: Vec<&(Locator, &str)> = edits.iter().collect();
    sorted.sort_by_key(|(l, _)| (l.start, l.end));
    let mut out = String::with_capacity(doc.len() + 64);
    let mut pos = 0;
    for (loc, text) in sorted {
        let ok = loc.start >= pos
            && loc.end <= doc.len()
            && loc.start < loc.end
            && doc.is_char_boundary(loc.start)
            && doc.is_char_boundary(loc.end)
            && doc[loc.start..loc.end].starts_with('"');
        if !ok {
            continue;
        }
        out.push_str(&doc[pos..loc.start]);
        json::write_string(&mut out, text);
        pos = loc.end;
    }
    out.push_str(&doc[pos..]);
    out
}

/// Sets the top-level `model` of a JSON object body (degrade: rewrite to a
/// cheaper model), keeping every other byte. A body without `model` gets one
/// inserted first; a body that is not a JSON object is returned unchanged.
pub fn set_model(body: &[u8], model: &str) -> Vec<u8> {
    let Ok((base, root)) = parse_root("request body", body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(base.len() + model.len() + 16);
    if let Some(loc) = root.get("model").and_then(|raw| json::locate(base, raw)) {
        out.push_str(&base[..loc.start]);
        json::write_string(&mut out, model);
        out.push_str(&base[loc.end..]);
    } else {
        let Some(open) = base.find('{') else {
            return body.to_vec();
        };
        out.push_str(&base[..=open]);
        out.push_str("\"model\":");
        json::write_string(&mut out, model);
        if !root.is_empty() {
            out.push(',');
        }
        out.push_str(&base[open + 1..]);
    }
    out.into_bytes()
}

/// A local error response body in `provider`'s error shape, for answers the
/// engine gives itself (403 block, 429 shed, 503 stop). Unknown providers
/// get the OpenAI shape, the de facto standard.
pub fn error_body(provider: Provider, status: u16, message: &str) -> Vec<u8> {
    match provider {
        Provider::Anthropic => anthropic::error_body(status, message),
        _ => openai_chat::error_body(status, message),
    }
}

/// What a fallback completion says and claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback<'a> {
    /// The assistant's text.
    pub text: &'a str,
    /// The model to name (the request's, usually).
    pub model: &'a str,
    /// The id to give the completion.
    pub id: &'a str,
    /// Unix seconds for `created` / `created_at` (pass 0 for fully
    /// deterministic output).
    pub created: u64,
}

/// A complete non-streamed response in `provider`'s shape carrying
/// `fallback.text` (degrade and shadow answer with it). Unknown providers
/// get the OpenAI chat shape.
pub fn fallback_json(provider: Provider, fallback: &Fallback<'_>) -> Vec<u8> {
    match provider {
        Provider::OpenAiResponses => openai_responses::fallback_json(fallback),
        Provider::Anthropic => anthropic::fallback_json(fallback),
        _ => openai_chat::fallback_json(fallback),
    }
}

/// The same answer as a complete SSE stream in `provider`'s event shape.
pub fn fallback_sse(provider: Provider, fallback: &Fallback<'_>) -> Vec<u8> {
    match provider {
        Provider::OpenAiResponses => openai_responses::fallback_sse(fallback),
        Provider::Anthropic => anthropic::fallback_sse(fallback),
        _ => openai_chat::fallback_sse(fallback),
    }
}

/// Minimal borrowed JSON access over `serde_json`'s `RawValue`: objects as
/// key/raw-value lists, arrays as raw-value lists, and the byte span of any
/// value inside the document it was parsed from.
pub(crate) mod json {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    use super::Locator;

    /// A decoded JSON string: borrowed from the document unless it has
    /// escapes. Stream frames are parsed one level at a time, so owning
    /// every key and text would cost an allocation per key per level.
    pub struct Str<'a>(pub Cow<'a, str>);

    impl<'de> Deserialize<'de> for Str<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Str<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON string")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(s.to_owned())))
                }
                fn visit_string<E>(self, s: String) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(s)))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// Runs `seed` over the whole of `s` as `serde_json::from_str` would
    /// (trailing characters other than whitespace are an error).
    pub fn from_str_seed<'a, S: DeserializeSeed<'a>>(s: &'a str, seed: S) -> Option<S::Value> {
        let mut de = serde_json::Deserializer::from_str(s);
        let value = seed.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(value)
    }

    /// A JSON object whose values are still raw text. Duplicate keys: the last wins.
    #[derive(Debug, Default)]
    pub struct Obj<'a> {
        entries: Vec<(Cow<'a, str>, &'a RawValue)>,
    }

    impl<'de> Deserialize<'de> for Obj<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Obj<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Obj<'de>, A::Error> {
                    let mut entries = Vec::new();
                    while let Some((Str(k), v)) = map.next_entry::<Str<'de>, &'de RawValue>()? {
                        entries.push((k, v));
                    }
                    Ok(Obj { entries })
                }
            }
            d.deserialize_map(V)
        }
    }

    impl<'a> Obj<'a> {
        pub fn get(&self, key: &str) -> Option<&'a RawValue> {
            self.entries
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
        }
        pub fn is_empty(&self) -> bool {
            self.entries.is_empty()
        }
        pub fn entries(&self) -> &[(Cow<'a, str>, &'a RawValue)] {
            &self.entries
        }
        pub fn str(&self, key: &str) -> Option<String> {
            self.get(key).and_then(string)
        }
        /// As [`Obj::str`], without copying a string that has no escapes.
        pub fn cow(&self, key: &str) -> Option<Cow<'a, str>> {
            self.get(key).and_then(cow)
        }
        pub fn obj(&self, key: &str) -> Option<Obj<'a>> {
            self.get(key).and_then(obj)
        }
        pub fn arr(&self, key: &str) -> Option<Vec<&'a RawValue>> {
            self.get(key).and_then(arr)
        }
        pub fn u64(&self, key: &str) -> Option<u64> {
            self.get(key).and_then(|r| r.get().parse().ok())
        }
        pub fn u32(&self, key: &str) -> Option<u32> {
            self.get(key).and_then(|r| r.get().parse().ok())
        }
        pub fn bool(&self, key: &str) -> Option<bool> {
            match self.get(key)?.get() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }
        }
    }

    pub fn obj(raw: &RawValue) -> Option<Obj<'_>> {
        parse_obj(raw.get())
    }

    pub fn parse_obj(s: &str) -> Option<Obj<'_>> {
        if !s.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(s).ok()
    }

    /// The values of `keys` in the JSON object `s` (`None` where absent; the
    /// last of duplicate keys wins), or `None` when `s` is not a JSON object —
    /// exactly what [`parse_obj`] followed by [`Obj::get`] for each key
    /// gives, without building the entry list. The hot path of stream
    /// frames, which look up a handful of keys per level.
    pub fn pick<'a, const N: usize>(
        s: &'a str,
        keys: [&str; N],
    ) -> Option<[Option<&'a RawValue>; N]> {
        struct Pick<'k, 'a, const N: usize> {
            keys: [&'k str; N],
            found: PhantomData<&'a ()>,
        }
        impl<'de, const N: usize> DeserializeSeed<'de> for Pick<'_, 'de, N> {
            type Value = [Option<&'de RawValue>; N];
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de, const N: usize> Visitor<'de> for Pick<'_, 'de, N> {
            type Value = [Option<&'de RawValue>; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = [None; N];
                while let Some(Str(k)) = map.next_key::<Str<'de>>()? {
                    // Every value is read as raw text, wanted or not, so a
                    // document is accepted or rejected exactly as `Obj` would.
                    let v: &'de RawValue = map.next_value()?;
                    if let Some(i) = self.keys.iter().position(|key| *key == k) {
                        found[i] = Some(v);
                    }
                }
                Ok(found)
            }
        }
        if !s.trim_start().starts_with('{') {
            return None;
        }
        from_str_seed(
            s,
            Pick {
                keys,
                found: PhantomData,
            },
        )
    }

    /// [`pick`] on a raw value.
    pub fn pick_raw<'a, const N: usize>(
        raw: &'a RawValue,
        keys: [&str; N],
    ) -> Option<[Option<&'a RawValue>; N]> {
        pick(raw.get(), keys)
    }

    /// Calls `f` with the position and raw text of each element of the JSON
    /// array `raw`, in order, without collecting them; nothing when `raw` is
    /// not an array. `raw` was read by `serde_json` already, so it is valid
    /// JSON and the walk cannot stop part way: `f` sees all the elements
    /// [`arr`] would return, or none.
    pub fn each<'a>(raw: &'a RawValue, f: impl FnMut(usize, &'a RawValue)) {
        struct Each<'a, F> {
            f: F,
            seen: PhantomData<&'a ()>,
        }
        impl<'de, F: FnMut(usize, &'de RawValue)> DeserializeSeed<'de> for Each<'de, F> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_seq(self)
            }
        }
        impl<'de, F: FnMut(usize, &'de RawValue)> Visitor<'de> for Each<'de, F> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
                let mut i = 0;
                while let Some(v) = seq.next_element::<&'de RawValue>()? {
                    (self.f)(i, v);
                    i += 1;
                }
                Ok(())
            }
        }
        let s = raw.get();
        if !s.trim_start().starts_with('[') {
            return;
        }
        let _ = from_str_seed(
            s,
            Each {
                f,
                seen: PhantomData,
            },
        );
    }

    pub fn arr(raw: &RawValue) -> Option<Vec<&RawValue>> {
        let s = raw.get();
        if !s.trim_start().starts_with('[') {
            return None;
        }
        serde_json::from_str(s).ok()
    }

    /// The value if it is a decodable JSON string.
    pub fn string(raw: &RawValue) -> Option<String> {
        cow(raw).map(Cow::into_owned)
    }

    /// The value if it is a decodable JSON string, borrowed when it has no escapes.
    pub fn cow(raw: &RawValue) -> Option<Cow<'_, str>> {
        if !raw.get().starts_with('"') {
            return None;
        }
        string_text(raw)
    }

    /// The text of `literal` when it is exactly one JSON string token, quotes
    /// included; `None` otherwise. Unlike [`string_text`], `literal` need
    /// not have been validated: a plain one is checked for quotes and
    /// control bytes, and one with escapes is decoded by serde, which
    /// rejects bad escapes and a closing quote before the last byte.
    pub fn string_token(literal: &str) -> Option<Cow<'_, str>> {
        let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
        if !inner.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            return Some(Cow::Borrowed(inner));
        }
        serde_json::from_str::<Str<'_>>(literal).ok().map(|s| s.0)
    }

    /// The text of the JSON string `raw` holds. A raw value was validated
    /// when it was read (control characters included), so a string without
    /// a backslash is the text between its quotes: most stream pieces are,
    /// and they skip a second parse.
    fn string_text(raw: &RawValue) -> Option<Cow<'_, str>> {
        let s = raw.get();
        if let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
                return Some(Cow::Borrowed(inner));
            }
        }
        serde_json::from_str::<Str<'_>>(s).ok().map(|s| s.0)
    }

    /// `None` if not a string; `Some(Err)` if a string that does not decode.
    #[allow(clippy::result_unit_err, clippy::type_complexity)]
    pub fn text<'a>(base: &str, raw: &'a RawValue) -> Option<Result<(Cow<'a, str>, Locator), ()>> {
        if !raw.get().starts_with('"') {
            return None;
        }
        let Some(loc) = locate(base, raw) else {
            return Some(Err(()));
        };
        match string_text(raw) {
            Some(text) => Some(Ok((text, loc))),
            None => Some(Err(())),
        }
    }

    /// The span of `raw` in `base`, if `raw` was borrowed from it.
    pub fn locate(base: &str, raw: &RawValue) -> Option<Locator> {
        span_in(base, raw.get())
    }

    /// The span of `part` in `base`, if `part` was borrowed from it.
    pub fn span_in(base: &str, part: &str) -> Option<Locator> {
        let b = base.as_ptr() as usize;
        let p = part.as_ptr() as usize;
        let len = part.len();
        if p < b || p + len > b + base.len() {
            return None;
        }
        Some(Locator {
            start: p - b,
            end: p - b + len,
        })
    }

    /// Appends `s` as a JSON string literal.
    pub fn write_string(out: &mut String, s: &str) {
        // Serialising a str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
    }

    /// `s` as a JSON string literal.
    pub fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        write_string(&mut out, s);
        out
    }

    /// Calls `f` with every string leaf under `raw` (depth-limited), with
    /// its path suffix (`.a[0].b`).
    pub fn string_leaves<'a>(
        raw: &'a RawValue,
        path: &str,
        depth: usize,
        f: &mut dyn FnMut(&'a RawValue, String),
    ) {
        if depth == 0 {
            return;
        }
        let s = raw.get();
        if s.starts_with('"') {
            f(raw, path.to_string());
        } else if let Some(o) = obj(raw) {
            for (k, v) in o.entries() {
                string_leaves(v, &format!("{path}.{k}"), depth - 1, f);
            }
        } else if let Some(a) = arr(raw) {
            for (i, v) in a.into_iter().enumerate() {
                string_leaves(v, &format!("{path}[{i}]"), depth - 1, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_from_path_ignores_query_and_prefixes() {
        assert_eq!(
            Provider::from_path("/v1/chat/completions?x=1"),
            Some(Provider::OpenAiChat)
        );
        assert_eq!(
            Provider::from_path("/openai/deployments/gpt4/chat/completions?api-version=2024-10-21"),
            Some(Provider::OpenAiChat)
        );
        assert_eq!(
            Provider::from_path("/v1/responses"),
            Some(Provider::OpenAiResponses)
        );
        assert_eq!(
            Provider::from_path("/v1/messages"),
            Some(Provider::Anthropic)
        );
        assert_eq!(Provider::from_path("/v1/embeddings"), None);
    }

    #[test]
    fn provider_from_body_shape_when_the_path_says_nothing() {
        let p = |body: &str| parse_request("/proxy", body.as_bytes()).unwrap().provider;
        assert_eq!(p(r#"{"model":"m","messages":[]}"#), Provider::OpenAiChat);
        assert_eq!(
            p(r#"{"model":"m","system":"s","max_tokens":5,"messages":[]}"#),
            Provider::Anthropic
        );
        assert_eq!(
            p(r#"{"model":"m","input":"hi"}"#),
            Provider::OpenAiResponses
        );
        assert_eq!(p(r#"{"prompt":"hi"}"#), Provider::Unknown);
    }

    #[test]
    fn a_body_that_is_not_json_is_an_error_naming_the_body() {
        let e = parse_request("/v1/chat/completions", b"hello").unwrap_err();
        assert!(
            e.to_string().starts_with("request body: not a JSON object"),
            "{e}"
        );
        let e = parse_request("/v1/chat/completions", b"\xFF").unwrap_err();
        assert_eq!(e.to_string(), "request body: not UTF-8 (at byte 0)");
    }

    #[test]
    fn splice_keeps_every_other_byte_and_escapes_new_text() {
        let doc = r#"{ "a" : "x\u00e9y",  "b":[1, "z"] }"#;
        let a = doc.find("\"x").unwrap();
        let a_end = doc.find("y\"").unwrap() + 2;
        let z = doc.find("\"z\"").unwrap();
        let out = splice(
            doc,
            &[
                (
                    Locator {
                        start: z,
                        end: z + 3,
                    },
                    "q\"\n",
                ),
                (
                    Locator {
                        start: a,
                        end: a_end,
                    },
                    "é",
                ),
            ],
        );
        assert_eq!(out, r#"{ "a" : "é",  "b":[1, "q\"\n"] }"#);
        // Overlapping and bogus edits are skipped, never a panic.
        let out = splice(
            doc,
            &[
                (Locator { start: 2, end: 900 }, "x"),
                (Locator { start: 0, end: 1 }, "x"),
            ],
        );
        assert_eq!(out, doc);
    }

    #[test]
    fn set_model_rewrites_or_inserts_and_keeps_the_rest() {
        let body = br#"{"model": "gpt-4o", "stream":true}"#;
        assert_eq!(
            set_model(body, "gpt-4o-mini"),
            br#"{"model": "gpt-4o-mini", "stream":true}"#
        );
        assert_eq!(set_model(br#" {"x":1}"#, "m"), br#" {"model":"m","x":1}"#);
        assert_eq!(set_model(b"{}", "m"), br#"{"model":"m"}"#);
        assert_eq!(set_model(b"[1]", "m"), b"[1]");
    }

    #[test]
    fn raw_values_locate_their_bytes_in_the_document() {
        let doc = r#"{"a": {"b": [ "one" , "tw\"o" ]}}"#;
        let root = json::parse_obj(doc).unwrap();
        let b = root.obj("a").unwrap().arr("b").unwrap();
        let loc = json::locate(doc, b[1]).unwrap();
        assert_eq!(&doc[loc.start..loc.end], r#""tw\"o""#);
        assert_eq!(json::text(doc, b[1]).unwrap().unwrap().0, "tw\"o");
    }

    #[test]
    fn a_lone_surrogate_is_undecodable_not_guessed() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"a\ud800b"}]}"#;
        let view = parse_request("/v1/chat/completions", body).unwrap();
        assert!(view.segments.is_empty());
        assert_eq!(view.undecodable, ["messages[0].content"]);
    }

    proptest::proptest! {
        // The unescaped fast path of `json::cow` must read what serde_json reads.
        #[test]
        fn a_raw_string_reads_as_serde_json_reads_it(
            text in ".*",
            literal in r#""([a-z é😀]|\\[nt"\\/]|\\u00[0-7][0-9a-f]|\\ud83d\\ude00)*""#,
        ) {
            for lit in [serde_json::to_string(&text).unwrap(), literal] {
                let raw: &RawValue = serde_json::from_str(lit.as_str()).unwrap();
                let expected: String = serde_json::from_str(&lit).unwrap();
                let read = json::cow(raw);
                proptest::prop_assert_eq!(read.as_deref(), Some(expected.as_str()));
                let (decoded, at) = json::text(&lit, raw).unwrap().unwrap();
                proptest::prop_assert_eq!(decoded.as_ref(), expected.as_str());
                proptest::prop_assert_eq!((at.start, at.end), (0, lit.len()));
            }
        }

        #[test]
        fn rewritten_texts_parse_back_and_nothing_else_moves(
            texts in proptest::collection::vec(".*", 1..6),
            news in proptest::collection::vec(".*", 1..6),
        ) {
            let messages: Vec<String> = texts
                .iter()
                .map(|t| format!("{{\"role\":\"user\",\"content\":{}}}", serde_json::to_string(t).unwrap()))
                .collect();
            let body = format!("{{\"model\":\"m\",\"messages\":[{}]}}", messages.join(", "));
            let view = parse_request("/v1/chat/completions", body.as_bytes()).unwrap();
            proptest::prop_assert_eq!(view.segments.iter().map(|s| s.text.clone()).collect::<Vec<_>>(), texts.clone());
            let edits: Vec<(Locator, String)> =
                view.segments.iter().zip(news.iter().cycle()).map(|(s, n)| (s.locator, n.clone())).collect();
            let out = rewrite_request(body.as_bytes(), &edits);
            let again = parse_request("/v1/chat/completions", &out).unwrap();
            let expected: Vec<String> = news.iter().cycle().take(texts.len()).cloned().collect();
            proptest::prop_assert_eq!(again.segments.iter().map(|s| s.text.clone()).collect::<Vec<_>>(), expected);
            // Outside the edited literals the bytes are the same.
            let strip = |doc: &str, view: &RequestView| {
                let mut rest = String::new();
                let mut pos = 0;
                for s in &view.segments {
                    rest.push_str(&doc[pos..s.locator.start]);
                    pos = s.locator.end;
                }
                rest.push_str(&doc[pos..]);
                rest
            };
            proptest::prop_assert_eq!(strip(&body, &view), strip(std::str::from_utf8(&out).unwrap(), &again));
        }
    }

    #[test]
    fn error_bodies_take_each_providers_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&error_body(Provider::OpenAiChat, 429, "slow down")).unwrap();
        assert_eq!(v["error"]["message"], "slow down");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        let v: serde_json::Value =
            serde_json::from_slice(&error_body(Provider::Anthropic, 403, "blocked")).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "permission_error");
        assert_eq!(v["error"]["message"], "blocked");
        let v: serde_json::Value =
            serde_json::from_slice(&error_body(Provider::Anthropic, 503, "down")).unwrap();
        assert_eq!(v["error"]["type"], "overloaded_error");
    }
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    #[test]
    fn output_tokens_are_read_from_every_provider_s_usage() {
        assert_eq!(
            reported_output_tokens(
                r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12}}"#
            ),
            Some(12)
        );
        assert_eq!(
            reported_output_tokens(r#"{"type":"message_delta","usage":{"output_tokens":89}}"#),
            Some(89)
        );
        assert_eq!(
            reported_output_tokens(
                r#"{"type":"message_start","message":{"usage":{"input_tokens":4,"output_tokens":1}}}"#
            ),
            Some(1)
        );
        assert_eq!(
            reported_output_tokens(
                r#"{"type":"response.completed","response":{"usage":{"output_tokens":30}}}"#
            ),
            Some(30)
        );
        assert_eq!(
            reported_output_tokens(r#"{"choices":[{"delta":{"content":"usage"}}]}"#),
            None
        );
        assert_eq!(reported_output_tokens(r#"{"usage":null}"#), None);
    }

    #[test]
    fn a_stream_keeps_the_highest_count_it_saw() {
        let mut codec = StreamCodec::new(Provider::Anthropic);
        for data in [
            r#"{"type":"message_start","message":{"id":"m","usage":{"output_tokens":1}}}"#,
            r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":42}}"#,
        ] {
            let mut events = Vec::new();
            crate::sse::SseDecoder::new().push(&crate::sse::encode_event(None, data), &mut events);
            let event = events.pop().expect("one event");
            let view = codec.parse(&event);
            codec.observe(&view.meta);
        }
        assert_eq!(codec.state().output_tokens, Some(42));
    }
}
