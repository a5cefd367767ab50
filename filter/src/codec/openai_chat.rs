//! OpenAI Chat Completions: requests (`messages`), responses (`choices[].message`),
//! stream chunks (`choices[].delta`, `data: [DONE]`), error bodies and
//! fallbacks. Also the error shape for OpenAI Responses and unknown providers.
//!
//! Channels: `index` is the choice index; text and refusal use `sub = 0`,
//! tool call arguments use `sub = tool_calls[].index`, and the legacy
//! `function_call` uses `sub = LEGACY_FUNCTION_CALL`.

use serde_json::value::RawValue;

use super::json::{self, quote, Obj};
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
pub(super) fn parse_frame(data: &str) -> FrameView<'_> {
    let mut view = FrameView::default();
    if data.trim() == "[DONE]" {
        view.terminal = true;
        view.ends.push(ChannelEnd::All);
        return view;
    }
    let keys = ["error", "id", "model", "created", "system_fingerprint", "choices"];
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

/// One element of a chunk's `choices`.
fn frame_choice<'a>(view: &mut FrameView<'a>, data: &str, pos: usize, choice: &'a RawValue) {
    let Some([index, delta, finish]) = json::pick_raw(choice, ["index", "delta", "finish_reason"])
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
                let Some([index, function]) = json::pick_raw(call, ["index", "function"]) else {
                    return;
                };
                let sub = index
                    .and_then(|r| r.get().parse().ok())
                    .unwrap_or(k as u32);
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
            opened: vec![0, 1],
            ..FrameMeta::default()
        });
        codec.observe(&FrameMeta {
            closed: vec![0],
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
