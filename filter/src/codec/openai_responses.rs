//! OpenAI Responses: requests (`instructions`, `input` as a string or items),
//! responses (`output[]` items), stream events (`response.output_text.delta`
//! and friends) and fallbacks. Errors use the OpenAI shape
//! ([`super::openai_chat`]).
//!
//! Channels: `index` is `output_index`; `sub` is `content_index` for text and
//! refusals, `summary_index` for reasoning summaries, 0 for function call
//! arguments.
//!
//! Unlike the other formats, this one *repeats* text: `*.done` events,
//! `response.content_part.done`, `response.output_item.done` and
//! `response.completed` carry the full text again. Those are reported as
//! [`FrameView::snapshots`](super::FrameView) so the stream can redact them
//! whole, consistently with the deltas.

use serde_json::value::RawValue;

use super::json::{self, quote, Obj};
use super::{
    BlockStyle, Channel, ChannelEnd, ChannelKind, Fallback, FrameView, RequestView, ResponseView,
    SegmentKind, StreamState,
};
use crate::sse::encode_event;

fn role_kind(role: &str) -> SegmentKind {
    match role {
        "system" | "developer" => SegmentKind::System,
        _ => SegmentKind::Text,
    }
}

pub(super) fn parse_request(base: &str, root: &Obj<'_>, view: &mut RequestView) {
    view.response_format = root
        .obj("text")
        .and_then(|t| t.obj("format"))
        .and_then(|f| f.str("type"));
    view.max_tokens = root.u64("max_output_tokens");
    view.logprobs = root.u64("top_logprobs").is_some_and(|n| n > 0)
        || root
            .arr("include")
            .unwrap_or_default()
            .into_iter()
            .any(|i| json::string(i).is_some_and(|s| s.ends_with("logprobs")));
    if let Some(instr) = root.get("instructions") {
        view.push(
            base,
            instr,
            "system",
            SegmentKind::Instructions,
            "instructions".into(),
        );
    }
    let Some(input) = root.get("input") else {
        return;
    };
    if input.get().starts_with('"') {
        view.push(base, input, "user", SegmentKind::Text, "input".into());
        return;
    }
    for (i, it) in json::arr(input).unwrap_or_default().into_iter().enumerate() {
        let Some(item) = json::obj(it) else { continue };
        let path = format!("input[{i}]");
        match item.str("type").as_deref() {
            Some("message") | None => {
                let role = item.str("role").unwrap_or_else(|| "user".into());
                let kind = role_kind(&role);
                let Some(content) = item.get("content") else {
                    continue;
                };
                if content.get().starts_with('"') {
                    view.push(base, content, &role, kind, format!("{path}.content"));
                    continue;
                }
                for (j, part) in json::arr(content)
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let Some(p) = json::obj(part) else { continue };
                    match p.str("type").as_deref() {
                        Some("input_text" | "output_text" | "text") => {
                            if let Some(t) = p.get("text") {
                                view.push(
                                    base,
                                    t,
                                    &role,
                                    kind,
                                    format!("{path}.content[{j}].text"),
                                );
                            }
                        }
                        Some("refusal") => {
                            if let Some(t) = p.get("refusal") {
                                view.push(
                                    base,
                                    t,
                                    &role,
                                    SegmentKind::Refusal,
                                    format!("{path}.content[{j}].refusal"),
                                );
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some("function_call_output" | "custom_tool_call_output") => {
                let Some(output) = item.get("output") else {
                    continue;
                };
                if output.get().starts_with('"') {
                    view.push(
                        base,
                        output,
                        "tool",
                        SegmentKind::ToolResult,
                        format!("{path}.output"),
                    );
                } else {
                    for (j, part) in json::arr(output)
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                    {
                        if let Some(t) = json::obj(part).and_then(|p| p.get("text")) {
                            view.push(
                                base,
                                t,
                                "tool",
                                SegmentKind::ToolResult,
                                format!("{path}.output[{j}].text"),
                            );
                        }
                    }
                }
            }
            Some("function_call") => {
                if let Some(args) = item.get("arguments") {
                    view.push(
                        base,
                        args,
                        "assistant",
                        SegmentKind::ToolArguments,
                        format!("{path}.arguments"),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Calls `f(raw, channel, path)` for every text of an output item.
fn item_texts<'a>(
    item_raw: &'a RawValue,
    index: u32,
    path: &str,
    f: &mut dyn FnMut(&'a RawValue, Channel, String),
) {
    let Some(item) = json::obj(item_raw) else {
        return;
    };
    for (j, part) in item
        .arr("content")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let Some(p) = json::obj(part) else { continue };
        let sub = j as u32;
        if let Some(t) = p.get("text") {
            let kind = if item.str("type").as_deref() == Some("reasoning") {
                ChannelKind::Reasoning
            } else {
                ChannelKind::Text
            };
            f(
                t,
                Channel::new(index, sub, kind),
                format!("{path}.content[{j}].text"),
            );
        }
        if let Some(t) = p.get("refusal") {
            f(
                t,
                Channel::new(index, sub, ChannelKind::Refusal),
                format!("{path}.content[{j}].refusal"),
            );
        }
    }
    for (j, part) in item
        .arr("summary")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if let Some(t) = json::obj(part).and_then(|p| p.get("text")) {
            f(
                t,
                Channel::new(index, j as u32, ChannelKind::ReasoningSummary),
                format!("{path}.summary[{j}].text"),
            );
        }
    }
    if let Some(args) = item.get("arguments") {
        f(
            args,
            Channel::new(index, 0, ChannelKind::ToolArguments),
            format!("{path}.arguments"),
        );
    }
    if let Some(input) = item.get("input") {
        // custom tool calls carry free-form `input` text
        f(
            input,
            Channel::new(index, 0, ChannelKind::ToolArguments),
            format!("{path}.input"),
        );
    }
}

/// Every text of a response object (`output[]`), with channels.
fn response_texts<'a>(
    response: &Obj<'a>,
    path: &str,
    f: &mut dyn FnMut(&'a RawValue, Channel, String),
) {
    for (i, item) in response
        .arr("output")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        item_texts(item, i as u32, &format!("{path}output[{i}]"), f);
    }
}

pub(super) fn parse_response(base: &str, root: &Obj<'_>, view: &mut ResponseView) {
    response_texts(root, "", &mut |raw, ch, path| {
        view.push(base, raw, ch, path)
    });
    if let Some(t) = root.get("output_text") {
        // Not in the wire format, but some gateways add the SDK's convenience field.
        view.push(
            base,
            t,
            Channel::new(u32::MAX, 0, ChannelKind::Text),
            "output_text".into(),
        );
    }
}

pub(super) fn parse_frame<'a>(event_name: Option<&str>, data: &'a str) -> FrameView<'a> {
    let mut view = FrameView::default();
    let Some(root) = json::parse_obj(data) else {
        view.undecodable = true;
        return view;
    };
    let kind = root
        .str("type")
        .or_else(|| event_name.map(str::to_string))
        .unwrap_or_default();
    view.meta.sequence_number = root.u64("sequence_number");
    let oi = root.u32("output_index").unwrap_or(0);
    let ci = root.u32("content_index").unwrap_or(0);
    let si = root.u32("summary_index").unwrap_or(0);
    let delta = |view: &mut FrameView<'a>, ch: Channel| {
        if let Some(d) = root.get("delta") {
            view.piece(data, d, ch);
        }
    };
    match kind.as_str() {
        "response.output_text.delta" => delta(&mut view, Channel::new(oi, ci, ChannelKind::Text)),
        "response.refusal.delta" => delta(&mut view, Channel::new(oi, ci, ChannelKind::Refusal)),
        "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
            delta(&mut view, Channel::new(oi, 0, ChannelKind::ToolArguments))
        }
        "response.reasoning_summary_text.delta" => delta(
            &mut view,
            Channel::new(oi, si, ChannelKind::ReasoningSummary),
        ),
        "response.reasoning_text.delta" => {
            delta(&mut view, Channel::new(oi, ci, ChannelKind::Reasoning))
        }
        "response.output_text.done" => done(
            &mut view,
            data,
            &root,
            "text",
            Channel::new(oi, ci, ChannelKind::Text),
        ),
        "response.refusal.done" => done(
            &mut view,
            data,
            &root,
            "refusal",
            Channel::new(oi, ci, ChannelKind::Refusal),
        ),
        "response.function_call_arguments.done" => done(
            &mut view,
            data,
            &root,
            "arguments",
            Channel::new(oi, 0, ChannelKind::ToolArguments),
        ),
        "response.custom_tool_call_input.done" => done(
            &mut view,
            data,
            &root,
            "input",
            Channel::new(oi, 0, ChannelKind::ToolArguments),
        ),
        "response.reasoning_summary_text.done" => done(
            &mut view,
            data,
            &root,
            "text",
            Channel::new(oi, si, ChannelKind::ReasoningSummary),
        ),
        "response.reasoning_text.done" => done(
            &mut view,
            data,
            &root,
            "text",
            Channel::new(oi, ci, ChannelKind::Reasoning),
        ),
        "response.content_part.added" | "response.content_part.done" => {
            if let Some(part) = root.obj("part") {
                let reasoning = part.str("type").as_deref() == Some("reasoning_text");
                let text_kind = if reasoning {
                    ChannelKind::Reasoning
                } else {
                    ChannelKind::Text
                };
                if let Some(t) = part.get("text") {
                    view.snapshot(data, t, Channel::new(oi, ci, text_kind));
                }
                if let Some(t) = part.get("refusal") {
                    view.snapshot(data, t, Channel::new(oi, ci, ChannelKind::Refusal));
                }
            }
            if kind.ends_with(".done") {
                view.ends
                    .push(ChannelEnd::One(Channel::new(oi, ci, ChannelKind::Text)));
                view.ends
                    .push(ChannelEnd::One(Channel::new(oi, ci, ChannelKind::Refusal)));
                view.ends.push(ChannelEnd::One(Channel::new(
                    oi,
                    ci,
                    ChannelKind::Reasoning,
                )));
            }
        }
        "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
            if let Some(t) = root.obj("part").and_then(|p| p.get("text")) {
                view.snapshot(data, t, Channel::new(oi, si, ChannelKind::ReasoningSummary));
            }
            if kind.ends_with(".done") {
                view.ends.push(ChannelEnd::One(Channel::new(
                    oi,
                    si,
                    ChannelKind::ReasoningSummary,
                )));
            }
        }
        "response.output_item.added" | "response.output_item.done" => {
            if let Some(item) = root.get("item") {
                item_texts(item, oi, "item", &mut |raw, ch, _| {
                    view.snapshot(data, raw, ch)
                });
            }
            if kind.ends_with(".done") {
                view.ends.push(ChannelEnd::Index(oi));
                view.meta.closed.push(oi);
            } else {
                view.meta.opened.push(oi);
            }
        }
        "response.created"
        | "response.queued"
        | "response.in_progress"
        | "response.completed"
        | "response.incomplete"
        | "response.failed" => {
            if let Some(response) = root.obj("response") {
                response_texts(&response, "response.", &mut |raw, ch, _| {
                    view.snapshot(data, raw, ch)
                });
                view.meta.id = response.cow("id");
                view.meta.model = response.cow("model");
                view.meta.created = response.u64("created_at");
            }
            view.meta.started = true;
            if matches!(
                kind.as_str(),
                "response.completed" | "response.incomplete" | "response.failed"
            ) {
                view.terminal = true;
                view.ends.push(ChannelEnd::All);
            }
        }
        "error" => {
            view.terminal = true;
            view.ends.push(ChannelEnd::All);
        }
        _ => {}
    }
    view
}

fn done<'a>(view: &mut FrameView<'a>, data: &str, root: &Obj<'a>, key: &str, channel: Channel) {
    if let Some(t) = root.get(key) {
        view.snapshot(data, t, channel);
    }
    view.ends.push(ChannelEnd::One(channel));
}

fn response_object(id: &str, created: u64, model: &str, status: &str, tail: &str) -> String {
    format!(
        "{{\"id\":{},\"object\":\"response\",\"created_at\":{},\"status\":{},\"model\":{},{tail}}}",
        quote(id),
        created,
        quote(status),
        quote(model)
    )
}

/// In-band block. Default and `Error`: a `response.failed` event whose
/// response has `status: "failed"` and `error: {code: "content_filter",
/// message}`. `Graceful`: a `response.incomplete` event with
/// `incomplete_details: {reason: "content_filter"}`, as OpenAI's own filter
/// ends a response. Both echo the response id, model and `created_at`, and
/// continue the `sequence_number`s.
pub(super) fn block_frames(state: &StreamState, message: &str, style: BlockStyle) -> Vec<u8> {
    let id = state.id.as_deref().unwrap_or("resp_rheostat_blocked");
    let model = state.model.as_deref().unwrap_or("");
    let created = state.created.unwrap_or(0);
    let seq = state.sequence_number.map_or(0, |n| n + 1);
    let (event, response) = if style == BlockStyle::Graceful {
        (
            "response.incomplete",
            response_object(id, created, model, "incomplete", "\"output\":[],\"error\":null,\"incomplete_details\":{\"reason\":\"content_filter\"}"),
        )
    } else {
        (
            "response.failed",
            response_object(
                id,
                created,
                model,
                "failed",
                &format!(
                    "\"output\":[],\"error\":{{\"code\":\"content_filter\",\"message\":{}}},\"incomplete_details\":null",
                    quote(message)
                ),
            ),
        )
    };
    encode_event(
        Some(event),
        &format!("{{\"type\":\"{event}\",\"sequence_number\":{seq},\"response\":{response}}}"),
    )
}

fn message_item(f: &Fallback<'_>, status: &str, text: Option<&str>) -> String {
    let content = match text {
        Some(t) => format!(
            "[{{\"type\":\"output_text\",\"text\":{},\"annotations\":[]}}]",
            quote(t)
        ),
        None => "[]".into(),
    };
    format!(
        "{{\"id\":{},\"type\":\"message\",\"status\":\"{status}\",\"role\":\"assistant\",\"content\":{content}}}",
        quote(&format!("msg_{}", f.id))
    )
}

const ZERO_USAGE: &str = "\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"total_tokens\":0}";

pub(super) fn fallback_json(f: &Fallback<'_>) -> Vec<u8> {
    response_object(
        f.id,
        f.created,
        f.model,
        "completed",
        &format!(
            "\"output\":[{}],\"error\":null,\"incomplete_details\":null,{ZERO_USAGE}",
            message_item(f, "completed", Some(f.text))
        ),
    )
    .into_bytes()
}

pub(super) fn fallback_sse(f: &Fallback<'_>) -> Vec<u8> {
    let item_id = quote(&format!("msg_{}", f.id));
    let text = quote(f.text);
    let part_empty = "{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}";
    let part_full = format!("{{\"type\":\"output_text\",\"text\":{text},\"annotations\":[]}}");
    let events: Vec<(&str, String)> = vec![
        (
            "response.created",
            format!("\"response\":{}", response_object(f.id, f.created, f.model, "in_progress", "\"output\":[]")),
        ),
        ("response.output_item.added", format!("\"output_index\":0,\"item\":{}", message_item(f, "in_progress", None))),
        ("response.content_part.added", format!("\"item_id\":{item_id},\"output_index\":0,\"content_index\":0,\"part\":{part_empty}")),
        ("response.output_text.delta", format!("\"item_id\":{item_id},\"output_index\":0,\"content_index\":0,\"delta\":{text}")),
        ("response.output_text.done", format!("\"item_id\":{item_id},\"output_index\":0,\"content_index\":0,\"text\":{text}")),
        ("response.content_part.done", format!("\"item_id\":{item_id},\"output_index\":0,\"content_index\":0,\"part\":{part_full}")),
        ("response.output_item.done", format!("\"output_index\":0,\"item\":{}", message_item(f, "completed", Some(f.text)))),
        ("response.completed", format!("\"response\":{}", String::from_utf8(fallback_json(f)).unwrap_or_default())),
    ];
    let mut out = Vec::new();
    for (seq, (name, body)) in events.into_iter().enumerate() {
        out.extend(encode_event(
            Some(name),
            &format!("{{\"type\":\"{name}\",\"sequence_number\":{seq},{body}}}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::sse::SseDecoder;

    #[test]
    fn a_responses_request_lists_instructions_and_input_items() {
        let body = r#"{"model":"gpt-4.1","stream":true,"instructions":"Be terse.","max_output_tokens":300,
"text":{"format":{"type":"json_object"}},"include":["message.output_text.logprobs"],
"input":[
 {"role":"developer","content":"Never say the word."},
 {"type":"message","role":"user","content":[{"type":"input_text","text":"Hi, I am jane@example.com"},{"type":"input_image","image_url":"data:..."}]},
 {"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},
 {"type":"function_call_output","call_id":"call_1","output":"42"},
 {"type":"reasoning","id":"rs_1","summary":[]}
]}"#;
        let view = parse_request("/v1/responses", body.as_bytes()).unwrap();
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
                    SegmentKind::Instructions,
                    "Be terse.",
                    "instructions"
                ),
                (
                    "developer",
                    SegmentKind::System,
                    "Never say the word.",
                    "input[0].content"
                ),
                (
                    "user",
                    SegmentKind::Text,
                    "Hi, I am jane@example.com",
                    "input[1].content[0].text"
                ),
                (
                    "assistant",
                    SegmentKind::ToolArguments,
                    "{}",
                    "input[2].arguments"
                ),
                ("tool", SegmentKind::ToolResult, "42", "input[3].output"),
            ]
        );
        assert_eq!(view.system_prompt, "Be terse.\nNever say the word.");
        assert_eq!(view.response_format.as_deref(), Some("json_object"));
        assert_eq!(view.max_tokens, Some(300));
        assert!(view.logprobs);
        assert!(view.stream);
        let plain = parse_request("/v1/responses", br#"{"model":"o3","input":"hello"}"#).unwrap();
        assert_eq!(plain.segments[0].text, "hello");
        assert_eq!(plain.segments[0].path, "input");
    }

    #[test]
    fn a_responses_response_lists_output_texts_and_arguments() {
        let body = r#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,
"status":"completed","model":"gpt-4.1-2025-04-14","output":[
 {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Thinking about 555-0100"}]},
 {"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Call 555-0100","annotations":[]}]},
 {"type":"function_call","id":"fc_1","call_id":"call_1","name":"dial","arguments":"{\"n\":\"555-0100\"}","status":"completed"}],
"usage":{"input_tokens":36,"output_tokens":87,"total_tokens":123}}"#;
        let view = parse_response(Provider::OpenAiResponses, body.as_bytes()).unwrap();
        let got: Vec<(Channel, &str)> = view
            .segments
            .iter()
            .map(|s| (s.channel, s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Channel::new(0, 0, ChannelKind::ReasoningSummary),
                    "Thinking about 555-0100"
                ),
                (Channel::new(1, 0, ChannelKind::Text), "Call 555-0100"),
                (
                    Channel::new(2, 0, ChannelKind::ToolArguments),
                    "{\"n\":\"555-0100\"}"
                ),
            ]
        );
    }

    fn parse<'a>(name: &str, data: &'a str) -> FrameView<'a> {
        StreamCodec::new(Provider::OpenAiResponses).parse_data(Some(name), Some(data))
    }

    #[test]
    fn deltas_are_pieces_and_done_events_are_snapshots_that_close_channels() {
        let v = parse(
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hel","logprobs":[]}"#,
        );
        assert_eq!(v.pieces[0].channel, Channel::new(1, 0, ChannelKind::Text));
        assert_eq!(v.pieces[0].text, "Hel");
        assert_eq!(v.meta.sequence_number, Some(4));
        let v = parse(
            "response.output_text.done",
            r#"{"type":"response.output_text.done","sequence_number":9,"item_id":"msg_1","output_index":1,"content_index":0,"text":"Hello","logprobs":[]}"#,
        );
        assert!(v.pieces.is_empty());
        assert_eq!(v.snapshots[0].text, "Hello");
        assert_eq!(
            v.ends,
            [ChannelEnd::One(Channel::new(1, 0, ChannelKind::Text))]
        );
        let v = parse(
            "response.completed",
            r#"{"type":"response.completed","sequence_number":12,"response":{"id":"resp_1","object":"response","created_at":5,"status":"completed","model":"gpt-4.1","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[]}]}]}}"#,
        );
        assert!(v.terminal);
        assert_eq!(
            v.snapshots[0].channel,
            Channel::new(0, 0, ChannelKind::Text)
        );
        assert_eq!(v.meta.id.as_deref(), Some("resp_1"));
        let v = parse(
            "response.function_call_arguments.delta",
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":2,"delta":"{\"n\""}"#,
        );
        assert_eq!(
            v.pieces[0].channel,
            Channel::new(2, 0, ChannelKind::ToolArguments)
        );
    }

    #[test]
    fn the_responses_block_fails_or_ends_incomplete_with_the_next_sequence_number() {
        let mut codec = StreamCodec::new(Provider::OpenAiResponses);
        codec.observe(&FrameMeta {
            id: Some("resp_1".into()),
            model: Some("gpt-4.1".into()),
            created: Some(7),
            sequence_number: Some(41),
            started: true,
            ..FrameMeta::default()
        });
        let mut evs = Vec::new();
        SseDecoder::new().push(&codec.block_frames("policy", BlockStyle::Default), &mut evs);
        assert_eq!(evs[0].event.as_deref(), Some("response.failed"));
        let v: serde_json::Value = serde_json::from_str(evs[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(v["sequence_number"], 42);
        assert_eq!(v["response"]["id"], "resp_1");
        assert_eq!(v["response"]["status"], "failed");
        assert_eq!(v["response"]["error"]["message"], "policy");
        let mut evs = Vec::new();
        SseDecoder::new().push(
            &codec.block_frames("policy", BlockStyle::Graceful),
            &mut evs,
        );
        let v: serde_json::Value = serde_json::from_str(evs[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(v["type"], "response.incomplete");
        assert_eq!(
            v["response"]["incomplete_details"]["reason"],
            "content_filter"
        );
    }

    #[test]
    fn the_responses_fallback_parses_back() {
        let f = Fallback {
            text: "Temporarily unavailable.",
            model: "gpt-4.1",
            id: "resp_fallback",
            created: 0,
        };
        let view = parse_response(
            Provider::OpenAiResponses,
            &fallback_json(Provider::OpenAiResponses, &f),
        )
        .unwrap();
        assert_eq!(view.segments.len(), 1);
        assert_eq!(view.segments[0].text, f.text);
        let mut evs = Vec::new();
        SseDecoder::new().push(&fallback_sse(Provider::OpenAiResponses, &f), &mut evs);
        let codec = StreamCodec::new(Provider::OpenAiResponses);
        let frames: Vec<FrameView> = evs.iter().map(|e| codec.parse(e)).collect();
        let deltas: String = frames
            .iter()
            .flat_map(|v| v.pieces.clone())
            .map(|p| p.text)
            .collect();
        assert_eq!(deltas, f.text);
        assert!(frames.last().unwrap().terminal);
        for e in &evs {
            let v: serde_json::Value = serde_json::from_str(e.data.as_deref().unwrap()).unwrap();
            assert_eq!(v["type"].as_str(), e.event.as_deref());
        }
    }
}
