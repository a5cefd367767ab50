//! OpenAI Chat Completions: requests (`messages`), responses (`choices[].message`),
//! stream chunks (`choices[].delta`, `data: [DONE]`), error bodies and
//! fallbacks. Also the error shape for OpenAI Responses and unknown providers.
//!
//! Channels: `index` is the choice index; text and refusal use `sub = 0`,
//! tool call arguments use `sub = tool_calls[].index`, and the legacy
//! `function_call` uses `sub = LEGACY_FUNCTION_CALL`.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{self, quote, Obj, Str};
use super::{
    BlockStyle, Channel, ChannelEnd, ChannelKind, Fallback, FrameView, RequestView, ResponseView,
    SegmentKind, StreamState,
};
use crate::sse::encode_event;

/// `sub` of the channel for the legacy single `function_call`.
pub const LEGACY_FUNCTION_CALL: u32 = u32::MAX;

fn role_kind(role: &str) -> SegmentKind {
    match role {
        "system" | "developer" => SegmentKind::System,
        "tool" | "function" => SegmentKind::ToolResult,
        _ => SegmentKind::Text,
    }
}

pub(super) fn parse_request(base: &str, root: &Obj<'_>, view: &mut RequestView) {
    view.n = root.u64("n");
    view.response_format = root.obj("response_format").and_then(|o| o.str("type"));
    view.max_tokens = root
        .u64("max_completion_tokens")
        .or_else(|| root.u64("max_tokens"));
    view.logprobs = root.bool("logprobs").unwrap_or(false);
    let Some(messages) = root.arr("messages") else {
        return;
    };
    for (i, m) in messages.into_iter().enumerate() {
        let Some(msg) = json::obj(m) else { continue };
        let role = msg.str("role").unwrap_or_else(|| "user".to_string());
        let kind = role_kind(&role);
        if let Some(content) = msg.get("content") {
            content_texts(
                base,
                content,
                &role,
                kind,
                &format!("messages[{i}].content"),
                view,
            );
        }
        if let Some(refusal) = msg.get("refusal") {
            view.push(
                base,
                refusal,
                &role,
                SegmentKind::Refusal,
                format!("messages[{i}].refusal"),
            );
        }
        for (k, call) in msg
            .arr("tool_calls")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if let Some(args) = json::obj(call)
                .and_then(|c| c.obj("function"))
                .and_then(|f| f.get("arguments"))
            {
                let path = format!("messages[{i}].tool_calls[{k}].function.arguments");
                view.push(base, args, &role, SegmentKind::ToolArguments, path);
            }
        }
        if let Some(args) = msg.obj("function_call").and_then(|f| f.get("arguments")) {
            view.push(
                base,
                args,
                &role,
                SegmentKind::ToolArguments,
                format!("messages[{i}].function_call.arguments"),
            );
        }
    }
}

/// `content` as a string, or an array of parts of which `text` and `refusal` count.
fn content_texts(
    base: &str,
    content: &RawValue,
    role: &str,
    kind: SegmentKind,
    path: &str,
    view: &mut RequestView,
) {
    if content.get().starts_with('"') {
        view.push(base, content, role, kind, path.to_string());
        return;
    }
    for (j, part) in json::arr(content)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(p) = json::obj(part) else { continue };
        match p.str("type").as_deref() {
            Some("text") | None => {
                if let Some(t) = p.get("text") {
                    view.push(base, t, role, kind, format!("{path}[{j}].text"));
                }
            }
            Some("refusal") => {
                if let Some(t) = p.get("refusal") {
                    view.push(
                        base,
                        t,
                        role,
                        SegmentKind::Refusal,
                        format!("{path}[{j}].refusal"),
                    );
                }
            }
            _ => {}
        }
    }
}

pub(super) fn parse_response(base: &str, root: &Obj<'_>, view: &mut ResponseView) {
    for (pos, c) in root
        .arr("choices")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(choice) = json::obj(c) else { continue };
        let idx = choice.u32("index").unwrap_or(pos as u32);
        let Some(msg) = choice.obj("message") else {
            continue;
        };
        let path = format!("choices[{pos}].message");
        if let Some(content) = msg.get("content") {
            let text = Channel::new(idx, 0, ChannelKind::Text);
            if content.get().starts_with('"') {
                view.push(base, content, text, format!("{path}.content"));
            } else {
                for (j, part) in json::arr(content)
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    if let Some(t) = json::obj(part).and_then(|p| p.get("text")) {
                        view.push(base, t, text, format!("{path}.content[{j}].text"));
                    }
                }
            }
        }
        if let Some(r) = msg.get("refusal") {
            view.push(
                base,
                r,
                Channel::new(idx, 0, ChannelKind::Refusal),
                format!("{path}.refusal"),
            );
        }
        if let Some(r) = msg.get("reasoning_content") {
            view.push(
                base,
                r,
                Channel::new(idx, 0, ChannelKind::Reasoning),
                format!("{path}.reasoning_content"),
            );
        }
        for (k, call) in msg
            .arr("tool_calls")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if let Some(args) = json::obj(call)
                .and_then(|c| c.obj("function"))
                .and_then(|f| f.get("arguments"))
            {
                let ch = Channel::new(idx, k as u32, ChannelKind::ToolArguments);
                view.push(
                    base,
                    args,
                    ch,
                    format!("{path}.tool_calls[{k}].function.arguments"),
                );
            }
        }
        if let Some(args) = msg.obj("function_call").and_then(|f| f.get("arguments")) {
            let ch = Channel::new(idx, LEGACY_FUNCTION_CALL, ChannelKind::ToolArguments);
            view.push(base, args, ch, format!("{path}.function_call.arguments"));
        }
    }
}

/// One `chat.completion.chunk` (or `[DONE]`, or an in-band `error`).
pub(crate) fn parse_frame(data: &str) -> FrameView<'_> {
    if data.trim() == "[DONE]" {
        return FrameView {
            terminal: true,
            ends: vec![ChannelEnd::All],
            ..FrameView::default()
        };
    }
    // The single pass refuses a few documents that are valid JSON (see
    // `ChoicesSeed`); those, like invalid JSON, are read again level by
    // level, which accepts exactly what the frame's reading always has.
    match json::from_str_seed(data, ChunkSeed).or_else(|| chunk_by_levels(data)) {
        Some(chunk) => chunk.into_view(data),
        None => FrameView {
            undecodable: true,
            ..FrameView::default()
        },
    }
}

const DELTA_KEYS: [&str; 6] = [
    "content",
    "refusal",
    "reasoning_content",
    "reasoning",
    "tool_calls",
    "function_call",
];

/// What of a chunk its view is made from, as raw values borrowed from the
/// data. The view is built only once the whole object is read: a later
/// duplicate key replaces an earlier one, at every level, and a non-null
/// `error` anywhere in the object makes the frame terminal.
#[derive(Default)]
struct Chunk<'a> {
    error: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    model: Option<&'a RawValue>,
    created: Option<&'a RawValue>,
    system_fingerprint: Option<&'a RawValue>,
    /// The objects of the last `choices`, when it is an array.
    choices: Vec<Choice<'a>>,
}

struct Choice<'a> {
    /// Where it is in `choices`: its index when it has no usable `index`.
    position: usize,
    index: Option<&'a RawValue>,
    /// `None` also when the last `delta` is not an object.
    delta: Option<Delta<'a>>,
    finish_reason: Option<&'a RawValue>,
}

#[derive(Default)]
struct Delta<'a> {
    content: Option<&'a RawValue>,
    refusal: Option<&'a RawValue>,
    reasoning_content: Option<&'a RawValue>,
    reasoning: Option<&'a RawValue>,
    tool_calls: Option<&'a RawValue>,
    function_call: Option<&'a RawValue>,
}

impl<'a> Delta<'a> {
    fn from_values(values: [Option<&'a RawValue>; 6]) -> Self {
        let [content, refusal, reasoning_content, reasoning, tool_calls, function_call] = values;
        Delta {
            content,
            refusal,
            reasoning_content,
            reasoning,
            tool_calls,
            function_call,
        }
    }
}

impl<'a> Chunk<'a> {
    fn into_view(self, data: &str) -> FrameView<'a> {
        let mut view = FrameView::default();
        if self.error.is_some_and(|e| e.get() != "null") {
            view.terminal = true;
            view.ends.push(ChannelEnd::All);
            return view;
        }
        view.meta.id = self.id.and_then(json::cow);
        view.meta.model = self.model.and_then(json::cow);
        view.meta.created = self.created.and_then(|r| r.get().parse().ok());
        view.meta.system_fingerprint = self.system_fingerprint.and_then(json::cow);
        for choice in self.choices {
            choice.add_to(&mut view, data);
        }
        view
    }
}

impl<'a> Choice<'a> {
    fn add_to(self, view: &mut FrameView<'a>, data: &str) {
        let idx = self
            .index
            .and_then(|r| r.get().parse().ok())
            .unwrap_or(self.position as u32);
        view.meta.opened.push(idx);
        if let Some(delta) = self.delta {
            if let Some(t) = delta.content {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Text));
            }
            if let Some(t) = delta.refusal {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Refusal));
            }
            for t in [delta.reasoning_content, delta.reasoning]
                .into_iter()
                .flatten()
            {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Reasoning));
            }
            let arguments = |f: &'a RawValue| json::pick_raw(f, ["arguments"])?[0];
            if let Some(calls) = delta.tool_calls {
                json::each(calls, |k, call| {
                    let Some([index, function]) = json::pick_raw(call, ["index", "function"])
                    else {
                        return;
                    };
                    let sub = index.and_then(|r| r.get().parse().ok()).unwrap_or(k as u32);
                    if let Some(args) = function.and_then(arguments) {
                        view.piece(
                            data,
                            args,
                            Channel::new(idx, sub, ChannelKind::ToolArguments),
                        );
                    }
                });
            }
            if let Some(args) = delta.function_call.and_then(arguments) {
                view.piece(
                    data,
                    args,
                    Channel::new(idx, LEGACY_FUNCTION_CALL, ChannelKind::ToolArguments),
                );
            }
        }
        if self.finish_reason.is_some_and(|r| r.get() != "null") {
            view.ends.push(ChannelEnd::Index(idx));
            view.meta.closed.push(idx);
        }
    }
}

/// The chunk read one level at a time, each level's raw text parsed again.
/// Slower than [`ChunkSeed`], but it takes every document whose values
/// `serde_json` reads as `&RawValue`: a level that is not the object or
/// array looked for, or whose keys do not decode, yields nothing.
fn chunk_by_levels(data: &str) -> Option<Chunk<'_>> {
    let keys = [
        "error",
        "id",
        "model",
        "created",
        "system_fingerprint",
        "choices",
    ];
    let [error, id, model, created, system_fingerprint, choices] = json::pick(data, keys)?;
    let mut chunk = Chunk {
        error,
        id,
        model,
        created,
        system_fingerprint,
        choices: Vec::new(),
    };
    if let Some(choices) = choices {
        json::each(choices, |position, c| {
            let Some([index, delta, finish_reason]) =
                json::pick_raw(c, ["index", "delta", "finish_reason"])
            else {
                return;
            };
            let delta = delta
                .and_then(|d| json::pick_raw(d, DELTA_KEYS))
                .map(Delta::from_values);
            chunk.choices.push(Choice {
                position,
                index,
                delta,
                finish_reason,
            });
        });
    }
    Some(chunk)
}

/// The chunk in one pass: `serde_json` walks the text once while these
/// seeds keep what the view needs. Keys are decoded as [`json::pick`]
/// decodes them, so a key that does not decode fails the pass (and
/// [`chunk_by_levels`] decides, as it always has).
struct ChunkSeed;

impl<'de> DeserializeSeed<'de> for ChunkSeed {
    type Value = Chunk<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChunkSeed {
    type Value = Chunk<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chat.completion.chunk object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut chunk = Chunk::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "error" => chunk.error = Some(map.next_value()?),
                "id" => chunk.id = Some(map.next_value()?),
                "model" => chunk.model = Some(map.next_value()?),
                "created" => chunk.created = Some(map.next_value()?),
                "system_fingerprint" => chunk.system_fingerprint = Some(map.next_value()?),
                "choices" => chunk.choices = map.next_value_seed(ChoicesSeed)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(chunk)
    }
}

/// A level whose value may be any JSON type: the seed reads it with
/// `deserialize_any`, and the visitor methods for the scalar types it does
/// not look for yield nothing, as the level-by-level reading finds nothing
/// in them. The caller writes the `visit_map` and `visit_seq` methods.
macro_rules! any_value_level {
    ($seed:ty, $value:ty, { $($visits:tt)* }) => {
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = $value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }

        impl<'de> Visitor<'de> for $seed {
            type Value = $value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            $($visits)*
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Default::default())
            }
        }
    };
}

/// Reads to the end of an array a level does not look into, checking its
/// elements as any skipped value is checked.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads to the end of an object a level does not look into. Its keys are
/// taken raw, not decoded: inside a value read as `&RawValue` a key that
/// does not decode is no error.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<&'de RawValue>()?.is_some() {
        map.next_value::<IgnoredAny>()?;
    }
    Ok(())
}

/// `choices`: its objects, when it is an array.
///
/// Here, and for a choice and a `delta`, the type of the value is not known
/// before it is read, so it is read with `deserialize_any`. That refuses
/// two kinds of value a skipped one may be: a string with an unpaired
/// surrogate escape and a number beyond `f64`. Such a frame fails the pass.
struct ChoicesSeed;

any_value_level!(ChoicesSeed, Vec<Choice<'de>>, {
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut choices = Vec::new();
        let mut position = 0;
        while let Some(choice) = seq.next_element_seed(ChoiceSeed { position })? {
            choices.extend(choice);
            position += 1;
        }
        Ok(choices)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        skip_map(map)?;
        Ok(Vec::new())
    }
});

/// One element of `choices`: a choice when it is an object.
struct ChoiceSeed {
    position: usize,
}

any_value_level!(ChoiceSeed, Option<Choice<'de>>, {
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut choice = Choice {
            position: self.position,
            index: None,
            delta: None,
            finish_reason: None,
        };
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            match key.as_ref() {
                "index" => choice.index = Some(map.next_value()?),
                "delta" => choice.delta = map.next_value_seed(DeltaSeed)?,
                "finish_reason" => choice.finish_reason = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(choice))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(None)
    }
});

/// A choice's `delta`, when it is an object.
struct DeltaSeed;

any_value_level!(DeltaSeed, Option<Delta<'de>>, {
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut delta = Delta::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            let slot = match key.as_ref() {
                "content" => &mut delta.content,
                "refusal" => &mut delta.refusal,
                "reasoning_content" => &mut delta.reasoning_content,
                "reasoning" => &mut delta.reasoning,
                "tool_calls" => &mut delta.tool_calls,
                "function_call" => &mut delta.function_call,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(Some(delta))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        skip_seq(seq)?;
        Ok(None)
    }
});

/// The reading of a chunk before the single pass, kept verbatim: what
/// [`parse_frame`] must agree with on every input (the tests below and
/// `fuzzing::codec_response` check it).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod reference {
    use serde_json::value::RawValue;

    use super::super::json;
    use super::super::{Channel, ChannelEnd, ChannelKind, FrameView};
    use super::LEGACY_FUNCTION_CALL;

    pub(crate) fn parse_frame(data: &str) -> FrameView<'_> {
        let mut view = FrameView::default();
        if data.trim() == "[DONE]" {
            view.terminal = true;
            view.ends.push(ChannelEnd::All);
            return view;
        }
        let keys = [
            "error",
            "id",
            "model",
            "created",
            "system_fingerprint",
            "choices",
        ];
        let Some([error, id, model, created, fingerprint, choices]) = json::pick(data, keys) else {
            view.undecodable = true;
            return view;
        };
        if error.is_some_and(|e| e.get() != "null") {
            view.terminal = true;
            view.ends.push(ChannelEnd::All);
            return view;
        }
        view.meta.id = id.and_then(json::cow);
        view.meta.model = model.and_then(json::cow);
        view.meta.created = created.and_then(|r| r.get().parse().ok());
        view.meta.system_fingerprint = fingerprint.and_then(json::cow);
        if let Some(choices) = choices {
            json::each(choices, |pos, c| frame_choice(&mut view, data, pos, c));
        }
        view
    }

    fn frame_choice<'a>(view: &mut FrameView<'a>, data: &str, pos: usize, choice: &'a RawValue) {
        let Some([index, delta, finish]) =
            json::pick_raw(choice, ["index", "delta", "finish_reason"])
        else {
            return;
        };
        let idx = index
            .and_then(|r| r.get().parse().ok())
            .unwrap_or(pos as u32);
        view.meta.opened.push(idx);
        let delta_keys = [
            "content",
            "refusal",
            "reasoning_content",
            "reasoning",
            "tool_calls",
            "function_call",
        ];
        if let Some([content, refusal, reasoning_content, reasoning, tool_calls, function_call]) =
            delta.and_then(|d| json::pick_raw(d, delta_keys))
        {
            if let Some(t) = content {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Text));
            }
            if let Some(t) = refusal {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Refusal));
            }
            for t in [reasoning_content, reasoning].into_iter().flatten() {
                view.piece(data, t, Channel::new(idx, 0, ChannelKind::Reasoning));
            }
            let arguments = |f: &'a RawValue| json::pick_raw(f, ["arguments"])?[0];
            if let Some(calls) = tool_calls {
                json::each(calls, |k, call| {
                    let Some([index, function]) = json::pick_raw(call, ["index", "function"])
                    else {
                        return;
                    };
                    let sub = index.and_then(|r| r.get().parse().ok()).unwrap_or(k as u32);
                    if let Some(args) = function.and_then(arguments) {
                        view.piece(
                            data,
                            args,
                            Channel::new(idx, sub, ChannelKind::ToolArguments),
                        );
                    }
                });
            }
            if let Some(args) = function_call.and_then(arguments) {
                view.piece(
                    data,
                    args,
                    Channel::new(idx, LEGACY_FUNCTION_CALL, ChannelKind::ToolArguments),
                );
            }
        }
        if finish.is_some_and(|r| r.get() != "null") {
            view.ends.push(ChannelEnd::Index(idx));
            view.meta.closed.push(idx);
        }
    }
}

fn chunk_head(id: &str, created: u64, model: &str, fingerprint: Option<&str>) -> String {
    let mut s = format!(
        "{{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{}",
        quote(id),
        created,
        quote(model)
    );
    if let Some(fp) = fingerprint {
        s.push_str(&format!(",\"system_fingerprint\":{}", quote(fp)));
    }
    s
}

/// In-band block: a final chunk with `finish_reason: "content_filter"` for
/// every open choice (echoing the stream's id, model, created and
/// fingerprint), then `data: [DONE]`. `BlockStyle::Error` sends an in-band
/// `{"error": ...}` object instead of the chunk, as OpenAI does when a
/// stream fails.
pub(super) fn block_frames(state: &StreamState, message: &str, style: BlockStyle) -> Vec<u8> {
    let mut out = Vec::new();
    if style == BlockStyle::Error {
        let body = String::from_utf8(error_body(400, message)).unwrap_or_default();
        out.extend(encode_event(None, &body));
    } else {
        let open: Vec<u32> = if state.seen.is_empty() {
            vec![0]
        } else {
            state.open.clone()
        };
        if !open.is_empty() {
            let choices: Vec<String> = open
                .iter()
                .map(|i| format!("{{\"index\":{i},\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"content_filter\"}}"))
                .collect();
            let head = chunk_head(
                state.id.as_deref().unwrap_or("chatcmpl-rheostat-blocked"),
                state.created.unwrap_or(0),
                state.model.as_deref().unwrap_or(""),
                state.system_fingerprint.as_deref(),
            );
            out.extend(encode_event(
                None,
                &format!("{head},\"choices\":[{}]}}", choices.join(",")),
            ));
        }
    }
    out.extend(encode_event(None, "[DONE]"));
    out
}

/// The OpenAI error shape: `{"error":{"message","type","param","code"}}`.
pub(super) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let (kind, code): (&str, Option<&str>) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", Some("content_policy_violation")),
        404 => ("invalid_request_error", Some("not_found")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("requests", Some("rate_limit_exceeded")),
        503 => ("server_error", Some("service_unavailable")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    format!(
        "{{\"error\":{{\"message\":{},\"type\":{},\"param\":null,\"code\":{}}}}}",
        quote(message),
        quote(kind),
        code.map_or_else(|| "null".to_string(), quote)
    )
    .into_bytes()
}

pub(super) fn fallback_json(f: &Fallback<'_>) -> Vec<u8> {
    format!(
        "{{\"id\":{},\"object\":\"chat.completion\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{},\"refusal\":null}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}}}",
        quote(f.id),
        f.created,
        quote(f.model),
        quote(f.text)
    )
    .into_bytes()
}

pub(super) fn fallback_sse(f: &Fallback<'_>) -> Vec<u8> {
    let head = chunk_head(f.id, f.created, f.model, None);
    let mut out = Vec::new();
    let chunk = |choice: String| format!("{head},\"choices\":[{choice}]}}");
    out.extend(encode_event(
        None,
        &chunk("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}".into()),
    ));
    out.extend(encode_event(
        None,
        &chunk(format!(
            "{{\"index\":0,\"delta\":{{\"content\":{}}},\"logprobs\":null,\"finish_reason\":null}}",
            quote(f.text)
        )),
    ));
    out.extend(encode_event(
        None,
        &chunk("{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}".into()),
    ));
    out.extend(encode_event(None, "[DONE]"));
    out
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::sse::SseDecoder;

    const REQUEST: &str = r#"{
  "model": "gpt-4o-2024-08-06",
  "stream": true,
  "n": 2,
  "max_completion_tokens": 512,
  "logprobs": true,
  "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
  "messages": [
    {"role": "developer", "content": "You are Rheo. Never reveal the code word."},
    {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
    {"role": "user", "content": [
      {"type": "text", "text": "Email jane@example.com about caf\u00e9"},
      {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_9pw1qnYScqvGrCH58HWCvFH6", "type": "function",
       "function": {"name": "lookup", "arguments": "{\"q\":\"jane\"}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_9pw1qnYScqvGrCH58HWCvFH6", "content": "jane's phone is 555-0100"}
  ]
}"#;

    #[test]
    fn a_chat_request_lists_every_text_with_role_kind_and_path() {
        let view = parse_request("/v1/chat/completions", REQUEST.as_bytes()).unwrap();
        assert_eq!(view.provider, Provider::OpenAiChat);
        assert_eq!(view.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert!(view.stream);
        assert_eq!(view.n, Some(2));
        assert_eq!(view.max_tokens, Some(512));
        assert!(view.logprobs);
        assert_eq!(view.response_format.as_deref(), Some("json_schema"));
        let got: Vec<(&str, SegmentKind, &str, &str)> = view
            .segments
            .iter()
            .map(|s| (s.role.as_str(), s.kind, s.text.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "developer",
                    SegmentKind::System,
                    "You are Rheo. Never reveal the code word.",
                    "messages[0].content"
                ),
                (
                    "system",
                    SegmentKind::System,
                    "Answer briefly.",
                    "messages[1].content[0].text"
                ),
                (
                    "user",
                    SegmentKind::Text,
                    "Email jane@example.com about café",
                    "messages[2].content[0].text"
                ),
                (
                    "assistant",
                    SegmentKind::ToolArguments,
                    "{\"q\":\"jane\"}",
                    "messages[3].tool_calls[0].function.arguments"
                ),
                (
                    "tool",
                    SegmentKind::ToolResult,
                    "jane's phone is 555-0100",
                    "messages[4].content"
                ),
            ]
        );
        assert_eq!(
            view.system_prompt,
            "You are Rheo. Never reveal the code word.\nAnswer briefly."
        );
    }

    #[test]
    fn rewriting_a_chat_request_changes_only_the_located_strings() {
        let view = parse_request("/v1/chat/completions", REQUEST.as_bytes()).unwrap();
        let user = &view.segments[2];
        let out = rewrite_request(
            REQUEST.as_bytes(),
            &[(user.locator, "Email [EMAIL] about café".to_string())],
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            REQUEST.replace(
                r#""Email jane@example.com about caf\u00e9""#,
                r#""Email [EMAIL] about café""#
            )
        );
        let again = parse_request("/v1/chat/completions", out.as_bytes()).unwrap();
        assert_eq!(again.segments[2].text, "Email [EMAIL] about café");
    }

    #[test]
    fn a_chat_completion_response_lists_content_refusal_and_tool_arguments() {
        let body = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,
"model":"gpt-4o-2024-08-06","choices":[
 {"index":0,"message":{"role":"assistant","content":"Call 555-0100.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"},
 {"index":1,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"n\":\"555-0100\"}"}}]},"finish_reason":"tool_calls"}],
"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29},"system_fingerprint":"fp_f9f4fb6dbf"}"#;
        let view = parse_response(Provider::OpenAiChat, body.as_bytes()).unwrap();
        let got: Vec<(Channel, &str)> = view
            .segments
            .iter()
            .map(|s| (s.channel, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Channel::new(0, 0, ChannelKind::Text), "Call 555-0100."),
                (
                    Channel::new(1, 0, ChannelKind::ToolArguments),
                    "{\"n\":\"555-0100\"}"
                ),
            ]
        );
        assert_eq!(view.model.as_deref(), Some("gpt-4o-2024-08-06"));
    }

    fn frame(data: &str) -> FrameView<'_> {
        StreamCodec::new(Provider::OpenAiChat).parse_data(None, Some(data))
    }

    #[test]
    fn a_chunk_gives_pieces_per_choice_and_tool_call() {
        let v = frame(
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"Hi"},"finish_reason":null},{"index":0,"delta":{"tool_calls":[{"index":2,"function":{"arguments":"{\"a"}}]},"finish_reason":null}]}"#,
        );
        let got: Vec<(Channel, &str)> = v
            .pieces
            .iter()
            .map(|p| (p.channel, p.text.as_ref()))
            .collect();
        assert_eq!(
            got,
            [
                (Channel::new(1, 0, ChannelKind::Text), "Hi"),
                (Channel::new(0, 2, ChannelKind::ToolArguments), "{\"a")
            ]
        );
        assert_eq!(v.meta.id.as_deref(), Some("chatcmpl-1"));
        assert!(v.ends.is_empty());
    }

    #[test]
    fn finish_reason_closes_the_choice_and_done_closes_everything() {
        let v = frame(r#"{"id":"c","choices":[{"index":1,"delta":{},"finish_reason":"stop"}]}"#);
        assert_eq!(v.ends, [ChannelEnd::Index(1)]);
        let v = frame("[DONE]");
        assert!(v.terminal);
        assert_eq!(v.ends, [ChannelEnd::All]);
        let v = frame("{not json");
        assert!(v.undecodable);
    }

    #[test]
    fn the_chat_block_is_a_content_filter_chunk_then_done() {
        let mut codec = StreamCodec::new(Provider::OpenAiChat);
        codec.observe(&FrameMeta {
            id: Some("chatcmpl-9".into()),
            model: Some("gpt-4o".into()),
            created: Some(1700000000),
            system_fingerprint: Some("fp_1".into()),
            opened: smallvec::smallvec![0, 1],
            ..FrameMeta::default()
        });
        codec.observe(&FrameMeta {
            closed: smallvec::smallvec![0],
            ..FrameMeta::default()
        });
        let out = String::from_utf8(codec.block_frames("blocked", BlockStyle::Default)).unwrap();
        assert_eq!(
            out,
            "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":1,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"content_filter\"}]}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn the_chat_fallback_parses_back_as_a_completion_and_a_stream() {
        let f = Fallback {
            text: "Service is degraded; try again later.",
            model: "gpt-4o-mini",
            id: "chatcmpl-fallback",
            created: 0,
        };
        let view = parse_response(
            Provider::OpenAiChat,
            &fallback_json(Provider::OpenAiChat, &f),
        )
        .unwrap();
        assert_eq!(view.segments[0].text, f.text);
        let mut evs = Vec::new();
        let mut d = SseDecoder::new();
        d.push(&fallback_sse(Provider::OpenAiChat, &f), &mut evs);
        d.finish(&mut evs);
        let codec = StreamCodec::new(Provider::OpenAiChat);
        let text: String = evs
            .iter()
            .flat_map(|e| codec.parse(e).pieces)
            .map(|p| p.text)
            .collect();
        assert_eq!(text, f.text);
        assert_eq!(evs.last().unwrap().data.as_deref(), Some("[DONE]"));
    }
}

/// The single pass against the level-by-level [`reference`] on generated
/// frames: realistic ones, and ones with shuffled, duplicated, escaped and
/// ill-typed members at every level, escapes in the texts, and corruption.
#[cfg(test)]
mod single_pass_tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::super::json;
    use super::{parse_frame, reference, ChunkSeed};

    fn lit(s: &str) -> String {
        s.to_string()
    }

    /// The literal of key `name`: plain, or with its first letter escaped
    /// (the same key once decoded).
    fn key(name: &'static str) -> BoxedStrategy<String> {
        let escaped = name
            .char_indices()
            .next()
            .map(|(_, c)| format!("\"\\u{:04x}{}\"", u32::from(c), &name[c.len_utf8()..]))
            .unwrap_or_else(|| lit("\"\""));
        prop_oneof![8 => Just(format!("\"{name}\"")), 1 => Just(escaped)].boxed()
    }

    /// Keys no level looks for, including ones that do not decode.
    fn other_key() -> BoxedStrategy<String> {
        prop_oneof![
            6 => "[a-z_]{1,8}".prop_map(|k| format!("\"{k}\"")),
            1 => Just(lit(r#""caf\u00e9""#)),
            1 => Just(lit(r#""\ud800""#)),
            1 => Just(lit(r#""x\udc00y""#)),
        ]
        .boxed()
    }

    fn string() -> BoxedStrategy<String> {
        prop_oneof![
            8 => "[a-zA-Z0-9 .,'{}:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => Just(lit("\"\"")),
            1 => Just(lit(r#""line\nbreak\r\n""#)),
            1 => Just(lit(r#""caf\u00e9 \"q\" \\ \/ \t \b\f""#)),
            1 => Just(lit(r#""\ud83d\ude00 grin \uD83D\uDE00""#)),
            1 => Just(lit("\"h\u{e9}llo \u{1F600} \u{2028}\"")),
            1 => Just(lit(r#""{\"q\":\"jane\"}""#)),
            1 => Just(lit(r#""lone \ud800 lead""#)),
            1 => Just(lit(r#""\udc00 lone trail""#)),
        ]
        .boxed()
    }

    fn scalar() -> BoxedStrategy<String> {
        prop_oneof![
            Just(lit("null")),
            Just(lit("true")),
            Just(lit("false")),
            Just(lit("0")),
            Just(lit("3")),
            Just(lit("-7")),
            Just(lit("4294967296")),
            Just(lit("18446744073709551616")),
            Just(lit("1.5")),
            Just(lit("1e2")),
            Just(lit("-0")),
            Just(lit("1e400")),
            Just(lit("-1e400")),
            Just(lit("1e-400")),
        ]
        .boxed()
    }

    fn any_value() -> BoxedStrategy<String> {
        prop_oneof![scalar(), string()]
            .prop_recursive(3, 12, 3, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                    vec(member(other_key(), inner), 0..3).prop_map(|m| object(&m)),
                ]
            })
            .boxed()
    }

    /// `"key": value` with some whitespace around its tokens.
    fn member(key: BoxedStrategy<String>, value: BoxedStrategy<String>) -> BoxedStrategy<String> {
        let ws = || prop::sample::select(vec!["", "", "", " ", "\n\t", "\r\n  "]);
        (ws(), key, ws(), ws(), value, ws())
            .prop_map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
            .boxed()
    }

    fn object(members: &[String]) -> String {
        format!("{{{}}}", members.join(","))
    }

    /// Mostly of the type the level looks for, sometimes any value.
    fn or_any(wanted: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![6 => wanted, 1 => any_value()].boxed()
    }

    fn function() -> BoxedStrategy<String> {
        let members = prop_oneof![
            member(key("name"), string()),
            member(key("arguments"), or_any(string())),
        ];
        or_any(vec(members, 0..3).prop_map(|m| object(&m)).boxed())
    }

    fn tool_calls() -> BoxedStrategy<String> {
        let members = prop_oneof![
            2 => member(key("index"), or_any(prop::sample::select(vec!["0", "1", "2"]).prop_map(lit).boxed())),
            1 => member(key("id"), string()),
            1 => member(key("type"), Just(lit("\"function\"")).boxed()),
            2 => member(key("function"), function()),
        ];
        let call = or_any(vec(members, 0..4).prop_map(|m| object(&m)).boxed());
        or_any(
            vec(call, 0..3)
                .prop_map(|c| format!("[{}]", c.join(",")))
                .boxed(),
        )
    }

    fn delta() -> BoxedStrategy<String> {
        let text = || or_any(string());
        let members = prop_oneof![
            4 => member(key("content"), text()),
            1 => member(key("role"), string()),
            1 => member(key("refusal"), text()),
            1 => member(key("reasoning_content"), text()),
            1 => member(key("reasoning"), text()),
            1 => member(key("tool_calls"), tool_calls()),
            1 => member(key("function_call"), function()),
            1 => member(other_key(), any_value()),
        ];
        or_any(vec(members, 0..5).prop_map(|m| object(&m)).boxed())
    }

    fn choice() -> BoxedStrategy<String> {
        let index = prop::sample::select(vec!["0", "1", "2", "7"])
            .prop_map(lit)
            .boxed();
        let finish = prop::sample::select(vec!["null", "\"stop\"", "\"length\""])
            .prop_map(lit)
            .boxed();
        let members = prop_oneof![
            3 => member(key("index"), or_any(index)),
            4 => member(key("delta"), delta()),
            2 => member(key("finish_reason"), or_any(finish)),
            1 => member(key("logprobs"), Just(lit("null")).boxed()),
            1 => member(other_key(), any_value()),
        ];
        or_any(vec(members, 0..5).prop_map(|m| object(&m)).boxed())
    }

    fn choices() -> BoxedStrategy<String> {
        or_any(
            vec(choice(), 0..4)
                .prop_map(|c| format!("[{}]", c.join(",")))
                .boxed(),
        )
    }

    /// A chunk object: its members in any order, any of them repeated.
    fn chunk() -> BoxedStrategy<String> {
        let created = prop::sample::select(vec!["1741569952", "0", "-1", "1.0", "1e3"])
            .prop_map(lit)
            .boxed();
        let error = prop_oneof![4 => Just(lit("null")), 1 => any_value()].boxed();
        let members = prop_oneof![
            2 => member(key("id"), or_any(string())),
            1 => member(key("object"), Just(lit("\"chat.completion.chunk\"")).boxed()),
            2 => member(key("created"), or_any(created)),
            2 => member(key("model"), or_any(string())),
            1 => member(key("system_fingerprint"), or_any(string())),
            5 => member(key("choices"), choices()),
            1 => member(key("error"), error),
            1 => member(key("usage"), any_value()),
            1 => member(other_key(), any_value()),
        ];
        vec(members, 0..8).prop_map(|m| object(&m)).boxed()
    }

    /// A chunk as OpenAI sends it: every member, in its usual order.
    fn realistic_chunk() -> BoxedStrategy<String> {
        let text = prop_oneof![
            4 => string().prop_map(|s| format!("\"content\":{s}")),
            1 => string().prop_map(|s| format!("\"reasoning_content\":{s}")),
            1 => string().prop_map(|s| format!("\"refusal\":{s}")),
            1 => (0u32..3, string()).prop_map(|(i, s)| format!(
                "\"tool_calls\":[{{\"index\":{i},\"id\":\"call_1\",\"type\":\"function\",\"function\":{{\"name\":\"f\",\"arguments\":{s}}}}}]"
            )),
            1 => Just(lit("\"role\":\"assistant\",\"content\":\"\"")),
        ];
        let finish = prop::sample::select(vec!["null", "\"stop\""]);
        let one = (0u32..3, text, finish).prop_map(|(i, delta, finish)| {
            format!("{{\"index\":{i},\"delta\":{{{delta}}},\"logprobs\":null,\"finish_reason\":{finish}}}")
        });
        (vec(one, 0..3), 0u64..2_000_000_000).prop_map(|(choices, created)| {
            format!(
                "{{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{}]}}",
                choices.join(",")
            )
        })
        .boxed()
    }

    /// `frame` as is, or cut, or with a character inserted or removed, or
    /// with whitespace or junk around it.
    fn damaged(frame: BoxedStrategy<String>) -> BoxedStrategy<String> {
        let junk = prop::sample::select(vec![
            ",", "}", "]", "{", "[", "\"", ":", "\\", "x", " ", "0",
        ]);
        (frame, 0usize..6, any::<prop::sample::Index>(), junk)
            .prop_map(|(frame, how, at, junk)| {
                let bounds: Vec<usize> = frame
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([frame.len()])
                    .collect();
                let cut = *at.get(&bounds);
                let (head, tail) = frame.split_at(cut);
                match how {
                    0 | 1 => frame,
                    2 => head.to_string(),
                    3 => format!("{head}{junk}{tail}"),
                    4 => {
                        let rest: String = tail.chars().skip(1).collect();
                        format!("{head}{rest}")
                    }
                    _ => format!(" \n{frame}{junk}"),
                }
            })
            .boxed()
    }

    fn agree(data: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            parse_frame(data),
            reference::parse_frame(data),
            "frame: {}",
            data
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn the_single_pass_reads_generated_chunks_as_the_levels_did(data in damaged(chunk())) {
            agree(&data)?;
        }

        #[test]
        fn the_single_pass_reads_realistic_chunks_as_the_levels_did(data in damaged(realistic_chunk())) {
            agree(&data)?;
        }

        #[test]
        fn a_realistic_chunk_takes_the_single_pass(data in realistic_chunk()) {
            prop_assert!(json::from_str_seed(&data, ChunkSeed).is_some(), "fell back on {}", data);
        }
    }

    /// Odd but ordinary shapes: the single pass reads them itself.
    const READ_IN_ONE_PASS: &[&str] = &[
        r#"{"choices":5}"#,
        r#"{"choices":"x"}"#,
        r#"{"choices":null,"id":"a"}"#,
        r#"{"choices":{"index":0,"delta":{"content":"a"}}}"#,
        r#"{"choices":[1,"x",null,true,[{"delta":{"content":"a"}}],{"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"delta":null}]}"#,
        r#"{"choices":[{"delta":"x"}]}"#,
        r#"{"choices":[{"delta":[{"content":"x"}]}]}"#,
        r#"{"choices":[{"index":"x","delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"index":-1,"delta":{"content":"a"}}, {"index":4294967296,"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a"}}],"choices":[{"index":3,"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"index":1,"delta":{"content":"a"}}],"choices":7}"#,
        r#"{"choices":[{"delta":{"content":"a"},"index":2,"delta":{"content":"b","content":"c"},"index":1}]}"#,
        r#"{"choices":[{"delta":{"content":"a"},"delta":null,"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"finish_reason":"stop","finish_reason":null}]}"#,
        r#"{"choices":[{"\u0064elta":{"c\u006fntent":"a\nb\u00e9\ud83d\ude00"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a\ud800b","refusal":"no"}}]}"#,
        r#"{"choices":[{"delta":{"content":1e400,"reasoning":"r","reasoning_content":"rc"}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"a"}},{"function":{"arguments":"b"}},5],"function_call":{"arguments":"c"}}}]}"#,
        r#"{"choices":[{"delta":{"content":"a"}}],"error":{"message":"x"}}"#,
        r#"{"error":null,"choices":[{"delta":{"content":"a"}}]}"#,
        r#"{"id":"a","id":"b\u00e9","model":7,"created":"1","system_fingerprint":"\ud800"}"#,
        r#"{"created":1e400,"usage":{"\ud800":1e400},"x":["\udc00"]}"#,
        r#"{"choices":{"\ud800":1e400}}"#,
        r#"{"choices":[[1e400,"\ud800"]]}"#,
        r#"{"choices":[{"delta":{"x":{"\ud800":1e400}}}]}"#,
    ];

    /// Valid JSON that `deserialize_any` or a key's decoding refuses: the
    /// level-by-level reading decides.
    const READ_BY_LEVELS: &[&str] = &[
        r#"{"\ud800":1,"choices":[{"delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"\ud800":1,"delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"delta":{"\ud800":1,"content":"a"}}]}"#,
        r#"{"choices":1e400,"id":"a"}"#,
        r#"{"choices":"\ud800","id":"a"}"#,
        r#"{"choices":[1e400,{"delta":{"content":"a"}}]}"#,
        r#"{"choices":["\udc00",{"delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"delta":-1e400,"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":"\ud800","finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":{"content":"a"}}]} x"#,
        r#"{"choices":[{"delta":{"content":"a"}}"#,
        r#"not json"#,
        r#""#,
    ];

    #[test]
    fn odd_shapes_are_read_in_one_pass_as_the_levels_read_them() {
        for data in READ_IN_ONE_PASS {
            assert!(
                json::from_str_seed(data, ChunkSeed).is_some(),
                "fell back on {data}"
            );
            assert_eq!(parse_frame(data), reference::parse_frame(data), "{data}");
        }
    }

    #[test]
    fn what_the_single_pass_refuses_is_read_by_levels() {
        for data in READ_BY_LEVELS {
            assert!(
                json::from_str_seed(data, ChunkSeed).is_none(),
                "read in one pass: {data}"
            );
            assert_eq!(parse_frame(data), reference::parse_frame(data), "{data}");
        }
        let view = parse_frame(r#"{"choices":[{"\ud800":1,"delta":{"content":"a"}}],"id":"x"}"#);
        assert!(view.pieces.is_empty() && view.meta.opened.is_empty() && !view.undecodable);
        assert_eq!(view.meta.id.as_deref(), Some("x"));
        assert!(parse_frame(r#"{"\ud800":1}"#).undecodable);
    }
}
