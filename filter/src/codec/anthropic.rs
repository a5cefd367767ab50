//! Anthropic Messages: requests (`system`, `messages[].content` blocks,
//! `tool_result`), responses (`content[]` blocks), stream events
//! (`message_start`, `content_block_start/delta/stop`, `message_delta`,
//! `message_stop`, `ping`, `error`), error bodies and fallbacks.
//!
//! Channels: `index` is the content block index. Text blocks stream on
//! `(index, 0, Text)`, `tool_use` input JSON on `(index, 0, ToolArguments)`,
//! thinking on `(index, 0, Reasoning)`. In a non-streamed response a
//! `tool_use` block's `input` is an object: each of its string leaves is a
//! segment, numbered by `sub`.
//!
//! Thinking blocks in *requests* are not listed: they carry a signature the
//! API verifies, so they cannot be edited.

use serde_json::value::RawValue;

use super::json::{self, quote, Obj};
use super::{
    BlockStyle, Channel, ChannelEnd, ChannelKind, Fallback, FrameView, RequestView, ResponseView,
    SegmentKind, StreamState,
};
use crate::sse::encode_event;

/// How deep string leaves of a `tool_use` input are collected.
const MAX_INPUT_DEPTH: usize = 16;

pub(super) fn parse_request(base: &str, root: &Obj<'_>, view: &mut RequestView) {
    view.max_tokens = root.u64("max_tokens");
    view.response_format = root.obj("output_format").and_then(|o| o.str("type"));
    if let Some(system) = root.get("system") {
        blocks_or_string(base, system, "system", SegmentKind::System, "system", view);
    }
    for (i, m) in root
        .arr("messages")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(msg) = json::obj(m) else { continue };
        let role = msg.str("role").unwrap_or_else(|| "user".into());
        let Some(content) = msg.get("content") else {
            continue;
        };
        let path = format!("messages[{i}].content");
        if content.get().starts_with('"') {
            view.push(base, content, &role, SegmentKind::Text, path);
            continue;
        }
        for (j, b) in json::arr(content)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let Some(block) = json::obj(b) else { continue };
            let bpath = format!("{path}[{j}]");
            match block.str("type").as_deref() {
                Some("text") => {
                    if let Some(t) = block.get("text") {
                        view.push(base, t, &role, SegmentKind::Text, format!("{bpath}.text"));
                    }
                }
                Some("tool_result") => {
                    if let Some(c) = block.get("content") {
                        blocks_or_string(
                            base,
                            c,
                            "tool",
                            SegmentKind::ToolResult,
                            &format!("{bpath}.content"),
                            view,
                        );
                    }
                }
                Some("tool_use") => {
                    if let Some(input) = block.get("input") {
                        json::string_leaves(
                            input,
                            &format!("{bpath}.input"),
                            MAX_INPUT_DEPTH,
                            &mut |raw, p| {
                                view.push(base, raw, &role, SegmentKind::ToolArguments, p)
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// A string, or an array of blocks whose `text` blocks count.
fn blocks_or_string(
    base: &str,
    raw: &RawValue,
    role: &str,
    kind: SegmentKind,
    path: &str,
    view: &mut RequestView,
) {
    if raw.get().starts_with('"') {
        view.push(base, raw, role, kind, path.to_string());
        return;
    }
    for (k, b) in json::arr(raw).unwrap_or_default().into_iter().enumerate() {
        let Some(block) = json::obj(b) else { continue };
        if block.str("type").as_deref() == Some("text") {
            if let Some(t) = block.get("text") {
                view.push(base, t, role, kind, format!("{path}[{k}].text"));
            }
        }
    }
}

pub(super) fn parse_response(base: &str, root: &Obj<'_>, view: &mut ResponseView) {
    for (i, b) in root
        .arr("content")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(block) = json::obj(b) else { continue };
        let index = i as u32;
        let path = format!("content[{i}]");
        match block.str("type").as_deref() {
            Some("text") => {
                if let Some(t) = block.get("text") {
                    view.push(
                        base,
                        t,
                        Channel::new(index, 0, ChannelKind::Text),
                        format!("{path}.text"),
                    );
                }
            }
            Some("thinking") => {
                if let Some(t) = block.get("thinking") {
                    view.push(
                        base,
                        t,
                        Channel::new(index, 0, ChannelKind::Reasoning),
                        format!("{path}.thinking"),
                    );
                }
            }
            Some("tool_use" | "server_tool_use") => {
                if let Some(input) = block.get("input") {
                    let mut sub = 0u32;
                    json::string_leaves(
                        input,
                        &format!("{path}.input"),
                        MAX_INPUT_DEPTH,
                        &mut |raw, p| {
                            view.push(
                                base,
                                raw,
                                Channel::new(index, sub, ChannelKind::ToolArguments),
                                p,
                            );
                            sub += 1;
                        },
                    );
                }
            }
            _ => {}
        }
    }
}

pub(super) fn parse_frame<'a>(event_name: Option<&str>, data: &'a str) -> FrameView<'a> {
    let mut view = FrameView::default();
    let keys = ["type", "index", "message", "content_block", "delta"];
    let Some([kind, index, message, content_block, delta]) = json::pick(data, keys) else {
        view.undecodable = true;
        return view;
    };
    let kind = kind.and_then(json::cow);
    let kind = kind.as_deref().or(event_name).unwrap_or_default();
    let index = index.and_then(|r| r.get().parse().ok()).unwrap_or(0);
    match kind {
        "message_start" => {
            if let Some([id, model, content]) =
                message.and_then(|m| json::pick_raw(m, ["id", "model", "content"]))
            {
                view.meta.id = id.and_then(json::cow);
                view.meta.model = model.and_then(json::cow);
                if let Some(content) = content {
                    json::each(content, |i, b| {
                        if let Some(t) = json::pick_raw(b, ["text"]).and_then(|[t]| t) {
                            view.snapshot(data, t, Channel::new(i as u32, 0, ChannelKind::Text));
                        }
                    });
                }
            }
            view.meta.started = true;
        }
        "content_block_start" => {
            if let Some([text, thinking]) =
                content_block.and_then(|b| json::pick_raw(b, ["text", "thinking"]))
            {
                if let Some(t) = text {
                    view.piece(data, t, Channel::new(index, 0, ChannelKind::Text));
                }
                if let Some(t) = thinking {
                    view.piece(data, t, Channel::new(index, 0, ChannelKind::Reasoning));
                }
            }
            view.meta.opened.push(index);
        }
        "content_block_delta" => {
            let keys = ["type", "text", "partial_json", "thinking"];
            if let Some([kind, text, partial_json, thinking]) =
                delta.and_then(|d| json::pick_raw(d, keys))
            {
                let (t, kind) = match kind.and_then(json::cow).as_deref() {
                    Some("text_delta") => (text, ChannelKind::Text),
                    Some("input_json_delta") => (partial_json, ChannelKind::ToolArguments),
                    Some("thinking_delta") => (thinking, ChannelKind::Reasoning),
                    _ => (None, ChannelKind::Text),
                };
                if let Some(t) = t {
                    view.piece(data, t, Channel::new(index, 0, kind));
                }
            }
        }
        "content_block_stop" => {
            view.ends.push(ChannelEnd::Index(index));
            view.meta.closed.push(index);
        }
        "message_stop" | "error" => {
            view.terminal = true;
            view.ends.push(ChannelEnd::All);
        }
        _ => {}
    }
    view
}

/// In-band block. Default and `Error`: `event: error` with
/// `{"type":"error","error":{"type":"invalid_request_error","message":...}}`,
/// which the SDKs raise as an API error. `Graceful`: close every open
/// content block, then `message_delta` with `stop_reason: "refusal"` and
/// `message_stop` (Anthropic's own way to stop a message on policy).
pub(super) fn block_frames(state: &StreamState, message: &str, style: BlockStyle) -> Vec<u8> {
    let mut out = Vec::new();
    if style != BlockStyle::Graceful {
        let body = format!("{{\"type\":\"error\",\"error\":{{\"type\":\"invalid_request_error\",\"message\":{}}}}}", quote(message));
        out.extend(encode_event(Some("error"), &body));
        return out;
    }
    if !state.started {
        let start = format!(
            "{{\"type\":\"message_start\",\"message\":{{\"id\":{},\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":0,\"output_tokens\":0}}}}}}",
            quote(state.id.as_deref().unwrap_or("msg_rheostat_blocked")),
            quote(state.model.as_deref().unwrap_or(""))
        );
        out.extend(encode_event(Some("message_start"), &start));
    }
    for i in &state.open {
        out.extend(encode_event(
            Some("content_block_stop"),
            &format!("{{\"type\":\"content_block_stop\",\"index\":{i}}}"),
        ));
    }
    out.extend(encode_event(
        Some("message_delta"),
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}",
    ));
    out.extend(encode_event(
        Some("message_stop"),
        "{\"type\":\"message_stop\"}",
    ));
    out
}

/// The Anthropic error shape: `{"type":"error","error":{"type","message"}}`.
pub(super) fn error_body(status: u16, message: &str) -> Vec<u8> {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    format!(
        "{{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":{}}}}}",
        quote(message)
    )
    .into_bytes()
}

fn message(f: &Fallback<'_>, content: &str, stop: &str) -> String {
    format!(
        "{{\"id\":{},\"type\":\"message\",\"role\":\"assistant\",\"model\":{},\"content\":{content},\"stop_reason\":{stop},\"stop_sequence\":null,\"usage\":{{\"input_tokens\":0,\"output_tokens\":0}}}}",
        quote(f.id),
        quote(f.model)
    )
}

pub(super) fn fallback_json(f: &Fallback<'_>) -> Vec<u8> {
    message(
        f,
        &format!("[{{\"type\":\"text\",\"text\":{}}}]", quote(f.text)),
        "\"end_turn\"",
    )
    .into_bytes()
}

pub(super) fn fallback_sse(f: &Fallback<'_>) -> Vec<u8> {
    let events = [
        ("message_start", format!("{{\"type\":\"message_start\",\"message\":{}}}", message(f, "[]", "null"))),
        ("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}".into()),
        (
            "content_block_delta",
            format!("{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":{}}}}}", quote(f.text)),
        ),
        ("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}".into()),
        (
            "message_delta",
            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":0}}".into(),
        ),
        ("message_stop", "{\"type\":\"message_stop\"}".into()),
    ];
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(encode_event(Some(name), &data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::sse::SseDecoder;

    const REQUEST: &str = r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":1024,"stream":true,
"system":[{"type":"text","text":"You are a support bot.","cache_control":{"type":"ephemeral"}}],
"messages":[
 {"role":"user","content":"What is my balance? My card is 4111 1111 1111 1111"},
 {"role":"assistant","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"balance","input":{"card":"4111 1111 1111 1111","opts":{"verbose":true,"tags":["a"]}}}]},
 {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A09q90qw90lq917835lq9","content":[{"type":"text","text":"Balance: $12"}]},{"type":"text","text":"thanks"}]}
]}"#;

    #[test]
    fn an_anthropic_request_lists_system_blocks_messages_tool_use_and_results() {
        let view = parse_request("/v1/messages", REQUEST.as_bytes()).unwrap();
        assert_eq!(view.provider, Provider::Anthropic);
        assert_eq!(view.max_tokens, Some(1024));
        let got: Vec<(&str, SegmentKind, &str, &str)> = view
            .segments
            .iter()
            .map(|s| (s.role.as_str(), s.kind, s.text.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "system",
                    SegmentKind::System,
                    "You are a support bot.",
                    "system[0].text"
                ),
                (
                    "user",
                    SegmentKind::Text,
                    "What is my balance? My card is 4111 1111 1111 1111",
                    "messages[0].content"
                ),
                (
                    "assistant",
                    SegmentKind::Text,
                    "Let me check.",
                    "messages[1].content[0].text"
                ),
                (
                    "assistant",
                    SegmentKind::ToolArguments,
                    "4111 1111 1111 1111",
                    "messages[1].content[1].input.card"
                ),
                (
                    "assistant",
                    SegmentKind::ToolArguments,
                    "a",
                    "messages[1].content[1].input.opts.tags[0]"
                ),
                (
                    "tool",
                    SegmentKind::ToolResult,
                    "Balance: $12",
                    "messages[2].content[0].content[0].text"
                ),
                (
                    "user",
                    SegmentKind::Text,
                    "thanks",
                    "messages[2].content[1].text"
                ),
            ]
        );
        assert_eq!(view.system_prompt, "You are a support bot.");
        let plain = parse_request(
            "/v1/messages",
            br#"{"model":"m","system":"Be kind.","messages":[]}"#,
        )
        .unwrap();
        assert_eq!(plain.system_prompt, "Be kind.");
    }

    #[test]
    fn an_anthropic_response_lists_text_thinking_and_tool_input_leaves() {
        let body = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
"content":[{"type":"thinking","thinking":"hmm","signature":"EqQB"},{"type":"text","text":"Card 4111"},{"type":"tool_use","id":"toolu_1","name":"t","input":{"a":"x","b":["y"]}}],
"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6}}"#;
        let view = parse_response(Provider::Anthropic, body.as_bytes()).unwrap();
        let got: Vec<(Channel, &str, &str)> = view
            .segments
            .iter()
            .map(|s| (s.channel, s.text.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Channel::new(0, 0, ChannelKind::Reasoning),
                    "hmm",
                    "content[0].thinking"
                ),
                (
                    Channel::new(1, 0, ChannelKind::Text),
                    "Card 4111",
                    "content[1].text"
                ),
                (
                    Channel::new(2, 0, ChannelKind::ToolArguments),
                    "x",
                    "content[2].input.a"
                ),
                (
                    Channel::new(2, 1, ChannelKind::ToolArguments),
                    "y",
                    "content[2].input.b[0]"
                ),
            ]
        );
    }

    fn parse<'a>(name: &str, data: &'a str) -> FrameView<'a> {
        StreamCodec::new(Provider::Anthropic).parse_data(Some(name), Some(data))
    }

    #[test]
    fn stream_events_give_pieces_per_block_and_close_blocks() {
        let v = parse(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ello"}}"#,
        );
        assert_eq!(v.pieces[0].channel, Channel::new(1, 0, ChannelKind::Text));
        assert_eq!(v.pieces[0].text, "ello");
        let v = parse(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"loc"}}"#,
        );
        assert_eq!(
            v.pieces[0].channel,
            Channel::new(2, 0, ChannelKind::ToolArguments)
        );
        assert_eq!(v.pieces[0].text, "{\"loc");
        let v = parse(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":2}"#,
        );
        assert_eq!(v.ends, [ChannelEnd::Index(2)]);
        let v = parse("message_stop", r#"{"type":"message_stop"}"#);
        assert!(v.terminal);
        let v = parse("ping", r#"{"type": "ping"}"#);
        assert_eq!(v, FrameView::default());
        let v = parse(
            "mystery_event",
            r#"{"type":"mystery_event","index":0,"text":"zz"}"#,
        );
        assert_eq!(v, FrameView::default());
    }

    #[test]
    fn the_anthropic_block_is_an_error_event_or_a_refusal_stop() {
        let mut codec = StreamCodec::new(Provider::Anthropic);
        codec.observe(&FrameMeta {
            id: Some("msg_1".into()),
            model: Some("claude".into()),
            started: true,
            ..FrameMeta::default()
        });
        codec.observe(&FrameMeta {
            opened: smallvec::smallvec![0],
            ..FrameMeta::default()
        });
        let out = String::from_utf8(codec.block_frames("Blocked by policy", BlockStyle::Default))
            .unwrap();
        assert_eq!(
            out,
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Blocked by policy\"}}\n\n"
        );
        let mut evs = Vec::new();
        SseDecoder::new().push(&codec.block_frames("x", BlockStyle::Graceful), &mut evs);
        let names: Vec<&str> = evs.iter().map(|e| e.event_type()).collect();
        assert_eq!(
            names,
            ["content_block_stop", "message_delta", "message_stop"]
        );
        assert!(evs[1]
            .data
            .as_deref()
            .unwrap()
            .contains("\"stop_reason\":\"refusal\""));
    }

    #[test]
    fn the_anthropic_fallback_parses_back() {
        let f = Fallback {
            text: "We're in maintenance.",
            model: "claude-haiku-4-5",
            id: "msg_fallback",
            created: 0,
        };
        let view =
            parse_response(Provider::Anthropic, &fallback_json(Provider::Anthropic, &f)).unwrap();
        assert_eq!(view.segments[0].text, f.text);
        let mut evs = Vec::new();
        SseDecoder::new().push(&fallback_sse(Provider::Anthropic, &f), &mut evs);
        let codec = StreamCodec::new(Provider::Anthropic);
        let text: String = evs
            .iter()
            .flat_map(|e| codec.parse(e).pieces)
            .map(|p| p.text)
            .collect();
        assert_eq!(text, f.text);
        assert!(codec.parse(evs.last().unwrap()).terminal);
    }
}
