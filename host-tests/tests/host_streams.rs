//! How a stream reaches the filter: body buffering, header access, trailers,
//! local replies and buffer limits — each rule as Envoy's filter manager
//! applies it, pinned with the probe module.

use crate::common::*;
use rheostat_host::{Callback, Cluster, HostConfig, Outcome};
use serde_json::{json, Value};

fn texts(events: &[Value], field: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| e[field].as_str().unwrap_or("<null>").to_string())
        .collect()
}

fn sizes(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["size"].as_u64().unwrap_or(u64::MAX))
        .collect()
}

// ---- body buffering ---------------------------------------------------------------

#[test]
fn pause_then_continue_sends_whole_buffer() {
    let mut host =
        probe(json!({"trace": true, "request_body": ["req_body.read", "pause_unless_eos"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    assert_eq!(s.request_body(b"ab", false), Outcome::Returned(1));
    assert_eq!(s.request_body(b"cd", false), Outcome::Returned(1));
    assert_eq!(
        s.upstream_body(),
        b"",
        "nothing goes upstream while the filter pauses"
    );
    assert_eq!(s.request_body(b"ef", true), Outcome::Returned(0));
    assert_eq!(s.upstream_body(), b"abcdef");
    assert!(s.upstream_complete());
    // After a pause the body callback and get_buffer_bytes cover the whole accumulated body.
    assert_eq!(sizes(&events(&shared, "request_body")), [2, 4, 6]);
    assert_eq!(
        texts(&events(&shared, "body"), "text"),
        ["ab", "abcd", "abcdef"]
    );
}

#[test]
fn after_continue_the_next_callback_sees_only_the_new_chunk() {
    let mut host = probe(json!({"trace": true, "request_body": ["req_body.read"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    s.request_body(b"ab", false);
    assert_eq!(s.upstream_body(), b"ab");
    s.request_body(b"cd", false);
    s.request_body(b"ef", true);
    assert_eq!(s.upstream_body(), b"abcdef");
    assert_eq!(sizes(&events(&shared, "request_body")), [2, 2, 2]);
    assert_eq!(texts(&events(&shared, "body"), "text"), ["ab", "cd", "ef"]);
}

#[test]
fn replacing_the_whole_chunk_may_change_its_length() {
    let mut host = probe(json!({"response_body": ["resp_body.replace:a much longer body"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"short", true);
    assert_eq!(s.downstream_body(), b"a much longer body");
    assert!(s.downstream_complete());
}

#[test]
fn set_buffer_bytes_at_start_zero_prepends_and_past_the_end_appends() {
    let mut host = probe(json!({"response_body": ["resp_body.prepend:<", "resp_body.append:>"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"hello", true);
    assert_eq!(s.downstream_body(), b"<hello>");
}

#[test]
fn middle_start_set_buffer_bytes_traps_the_vm() {
    let mut host = probe(json!({"response_body": ["resp_body.set_middle:X"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    let outcome = s.response_body(b"hello", true);
    // BadArgument (2) is a status the SDK does not expect from set_buffer_bytes: it panics.
    assert!(
        matches!(&outcome, Outcome::Trapped(m) if m.contains("unexpected status: 2")),
        "{outcome:?}"
    );
    // Headers had gone to the client, so the fail-closed answer is a reset.
    assert!(s.reset());
    drop(s);
    assert!(host.worker(0).failed().is_some());
    assert_eq!(shared.traps().len(), 1);
}

#[test]
fn reads_past_the_end_return_nothing() {
    let mut host = probe(json!({"response_body": ["resp_body.read_past_end"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"hello", true);
    // A zero-length read is Ok with a null pointer: the SDK returns None.
    assert_eq!(events(&shared, "body_past_end")[0]["value"], Value::Null);
    assert_eq!(s.downstream_body(), b"hello");
}

// ---- buffer limits -----------------------------------------------------------------

fn limited(config: Value, limit: usize) -> rheostat_host::Host {
    start(HostConfig {
        buffer_limit: limit,
        ..probe_config(config)
    })
}

#[test]
fn a_paused_request_body_over_the_buffer_limit_gets_413() {
    let mut host = limited(json!({"trace": true, "request_body": ["pause"]}), 10);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    s.request_body(b"123456", false);
    s.request_body(b"7890ab", false);
    assert_eq!(s.local_reply(), Some(413));
    assert_eq!(s.downstream_status(), Some(413));
    assert!(!s.upstream_complete());
    // The 413 is a local reply sent before any response: it passes through
    // the filter's own response callbacks.
    assert_eq!(events(&shared, "response_headers").len(), 1);
    assert_eq!(s.request_body(b"more", true), Outcome::NotCalled);
}

#[test]
fn a_paused_response_body_over_the_limit_resets_once_headers_went_out() {
    let mut host = limited(json!({"response_body": ["pause"]}), 10);
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"123456", false);
    s.response_body(b"7890ab", false);
    assert!(s.reset());
    assert_eq!(s.downstream_status(), Some(200));
    assert!(s.ended());
}

#[test]
fn a_body_held_by_paused_headers_is_exempt_from_the_limit() {
    // Header StopIteration becomes StopAllIterationAndWatermark: back-pressure, no 413.
    let mut host = limited(json!({"trace": true, "request_headers": ["pause"]}), 10);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    assert_eq!(
        s.request_body(b"0123456789abcdef", false),
        Outcome::NotCalled
    );
    assert_eq!(s.request_body(b"ghij", true), Outcome::NotCalled);
    assert_eq!(s.local_reply(), None);
    assert!(events(&shared, "request_body").is_empty());
}

// ---- headers that stop iteration ------------------------------------------------------

#[test]
fn paused_response_headers_hold_the_body_until_resumed() {
    let mut cfg = probe_config(json!({
        "trace": true,
        "response_headers": ["call:verdict", "pause"],
        "http_call_response": ["resume_response"],
    }));
    cfg.clusters.insert(
        "verdict".into(),
        Cluster::respond(200, &[], "ok").with_delay(10),
    );
    let mut host = start(cfg);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert_eq!(s.response_headers(OK, false), Outcome::Returned(1));
    assert_eq!(s.response_body(b"hel", false), Outcome::NotCalled);
    assert_eq!(s.response_body(b"lo", true), Outcome::NotCalled);
    assert_eq!(s.downstream_headers(), None);
    assert!(
        events(&shared, "response_body").is_empty(),
        "no body callback while headers are paused"
    );
    let id = s.detach();

    host.advance(10);
    let s = host
        .worker(0)
        .stream(id)
        .expect("the stream is still there");
    assert_eq!(s.downstream_status(), Some(200));
    assert_eq!(s.downstream_body(), b"hello");
    // On resume the buffered body reaches the filter in one callback.
    let bodies = events(&shared, "response_body");
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["size"], 5);
    assert_eq!(bodies[0]["eos"], true);
}

#[test]
fn paused_request_headers_hold_the_body_until_resumed() {
    let mut cfg = probe_config(json!({
        "trace": true,
        "request_headers": ["call:auth", "pause"],
        "http_call_response": ["resume_request"],
    }));
    cfg.clusters
        .insert("auth".into(), Cluster::respond(200, &[], "").with_delay(5));
    let mut host = start(cfg);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    s.request_body(b"{\"a\":1}", true);
    assert_eq!(s.upstream_headers(), None);
    let id = s.detach();
    host.advance(5);
    let s = host.worker(0).stream(id).expect("in flight");
    assert!(s.upstream_complete());
    assert_eq!(s.upstream_body(), b"{\"a\":1}");
    assert_eq!(sizes(&events(&shared, "request_body")), [7]);
}

#[test]
fn trailers_held_by_paused_headers_reach_the_filter_after_the_body() {
    let mut cfg = probe_config(json!({
        "trace": true,
        "response_headers": ["call:verdict", "pause"],
        "http_call_response": ["resume_response"],
    }));
    cfg.clusters.insert(
        "verdict".into(),
        Cluster::respond(200, &[], "ok").with_delay(10),
    );
    let mut host = start(cfg);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"data", false);
    assert_eq!(s.response_trailers(&[("x-t", "1")]), Outcome::NotCalled);
    let id = s.detach();
    host.advance(10);
    let s = host.worker(0).stream(id).expect("in flight");
    assert_eq!(s.downstream_body(), b"data");
    assert_eq!(
        s.downstream_trailers(),
        Some(vec![("x-t".into(), "1".into())])
    );
    let order: Vec<String> = shared
        .events()
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .filter(|e| e.starts_with("response_"))
        .collect();
    assert_eq!(
        order,
        ["response_headers", "response_body", "response_trailers"]
    );
    assert_eq!(events(&shared, "response_body")[0]["eos"], false);
}

#[test]
fn continuing_from_inside_a_body_callback_keeps_the_chunk() {
    let mut host = probe(json!({"request_body": ["resume_request", "req_body.read"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    s.request_body(b"payload", true);
    assert_eq!(s.upstream_body(), b"payload");
    // Envoy's continueStream drops the Context's body pointer at once.
    assert_eq!(events(&shared, "body")[0]["text"], Value::Null);
}

// ---- end of stream and trailers ----------------------------------------------------------

#[test]
fn no_body_callback_sees_end_of_stream_when_trailers_follow() {
    let mut host = probe(json!({"trace": true}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"a", false);
    s.response_body(b"b", false);
    s.response_trailers(&[("grpc-status", "0")]);
    let eos: Vec<Value> = events(&shared, "response_body")
        .iter()
        .map(|e| e["eos"].clone())
        .collect();
    assert_eq!(eos, [json!(false), json!(false)]);
    assert_eq!(events(&shared, "response_trailers").len(), 1);
    assert_eq!(
        s.downstream_trailers(),
        Some(vec![("grpc-status".into(), "0".into())])
    );
    assert!(s.downstream_complete());
}

#[test]
fn trailers_can_be_added_from_the_last_body_callback() {
    let mut host = probe(json!({"response_body": ["resp_trailers.add:x-verdict=clean"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"all of it", true);
    assert_eq!(s.downstream_body(), b"all of it");
    assert_eq!(
        s.downstream_trailers(),
        Some(vec![("x-verdict".into(), "clean".into())])
    );
}

#[test]
fn adding_trailers_before_the_last_body_callback_traps() {
    let mut host = probe(json!({"response_body": ["resp_trailers.add:x-verdict=clean"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    let outcome = s.response_body(b"part", false);
    assert!(matches!(outcome, Outcome::Trapped(_)), "{outcome:?}");
}

// ---- header access -------------------------------------------------------------------------

#[test]
fn request_headers_are_mutable_in_on_request_headers() {
    let mut host = probe(
        json!({"request_headers": ["req.set:x-tenant=acme", "req.remove:x-drop", "req.add:x-seen=1"]}),
    );
    let mut s = host.worker(0).open_stream();
    let mut headers = GET.to_vec();
    headers.push(("x-drop", "secret"));
    headers.push(("x-tenant", "other"));
    s.request_headers(&headers, true);
    let up = s.upstream_headers().expect("forwarded");
    let get = |k: &str| up.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("x-tenant").as_deref(), Some("acme"));
    assert_eq!(get("x-drop"), None);
    assert_eq!(get("x-seen").as_deref(), Some("1"));
}

#[test]
fn header_names_are_lower_cased_and_get_returns_the_first_value() {
    let mut host = probe(json!({"request_headers": ["req.get:X-Multi"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    let mut headers = GET.to_vec();
    headers.push(("X-Multi", "first"));
    headers.push(("x-multi", "second"));
    s.request_headers(&headers, true);
    assert_eq!(events(&shared, "header")[0]["value"], "first");
    let up = s.upstream_headers().expect("forwarded");
    let multi: Vec<_> = up
        .iter()
        .filter(|(k, _)| k == "x-multi")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(multi, ["first", "second"]);
}

#[test]
fn response_headers_after_continue_are_gone_and_single_reads_trap() {
    let mut host = probe(json!({"response_body": ["resp.get:content-type"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    let outcome = s.response_body(b"x", true);
    assert!(
        matches!(&outcome, Outcome::Trapped(m) if m.contains("unexpected status: 2")),
        "{outcome:?}"
    );
}

#[test]
fn response_header_pairs_after_continue_read_as_an_empty_list() {
    let mut host = probe(json!({"response_body": ["resp.pairs"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"x", true);
    assert_eq!(events(&shared, "headers")[0]["pairs"], json!([]));
    assert!(s.downstream_complete());
}

#[test]
fn request_headers_are_not_readable_in_the_response_path() {
    let mut host = probe(json!({"response_headers": ["req.get::path"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert!(matches!(s.response_headers(OK, true), Outcome::Trapped(_)));
}

#[test]
fn headers_are_readable_again_in_on_log() {
    let mut host = probe(json!({"log": ["req.get::path", "resp.get::status", "req.get:x-absent"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, true);
    assert!(s.ended());
    let values: Vec<Value> = events(&shared, "header")
        .iter()
        .map(|e| e["value"].clone())
        .collect();
    assert_eq!(values, [json!("/v1/models"), json!("200"), Value::Null]);
}

#[test]
fn paused_response_headers_are_writable_until_resumed() {
    let mut cfg = probe_config(json!({
        "response_headers": ["call:verdict", "pause"],
        "http_call_response": ["resp.set:x-verdict=clean", "resp.remove:content-length", "resume_response"],
    }));
    cfg.clusters
        .insert("verdict".into(), Cluster::respond(200, &[], "ok"));
    let mut host = start(cfg);
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(&[(":status", "200"), ("content-length", "5")], false);
    s.response_body(b"hello", true);
    let headers = s.downstream_headers().expect("sent");
    assert!(
        headers.contains(&("x-verdict".into(), "clean".into())),
        "{headers:?}"
    );
    assert!(!headers.iter().any(|(k, _)| k == "content-length"));
    assert_eq!(s.downstream_body(), b"hello");
}

// ---- local replies -----------------------------------------------------------------------------

#[test]
fn a_local_reply_before_any_response_passes_through_the_filters_own_response_callbacks() {
    let mut host = probe(json!({
        "trace": true,
        "request_headers": ["local:403:blocked by policy", "continue"],
        "response_headers": ["resp.get::status"],
        "response_body": ["resp_body.read"],
    }));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert_eq!(
        s.upstream_headers(),
        None,
        "send_local_response forces the callback to stop"
    );
    assert_eq!(s.local_reply(), Some(403));
    assert_eq!(s.downstream_status(), Some(403));
    assert_eq!(s.downstream_body(), b"blocked by policy");
    let headers = s.downstream_headers().unwrap_or_default();
    assert!(headers.contains(&("x-probe".into(), "local".into())));
    assert_eq!(events(&shared, "header")[0]["value"], "403");
    assert_eq!(
        texts(&events(&shared, "body"), "text"),
        ["blocked by policy"]
    );
    assert!(s.ended());
}

#[test]
fn a_local_reply_from_response_headers_goes_straight_to_the_client() {
    let mut host =
        probe(json!({"trace": true, "response_headers": ["local:502:upstream said no"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    assert_eq!(s.downstream_status(), Some(502));
    assert_eq!(s.downstream_body(), b"upstream said no");
    assert_eq!(s.response_body(b"upstream body", true), Outcome::NotCalled);
    assert_eq!(events(&shared, "response_headers").len(), 1, "no re-entry");
    assert!(events(&shared, "response_body").is_empty());
}

#[test]
fn a_local_reply_after_headers_went_downstream_resets_the_stream() {
    let mut host = probe(json!({"response_body": ["local:500:too late"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"partial", false);
    assert!(s.reset());
    assert_eq!(s.downstream_status(), Some(200));
    assert_eq!(s.local_reply(), None);
}

#[test]
fn a_local_reply_from_an_http_call_answer_ends_a_paused_request() {
    let mut cfg = probe_config(json!({
        "request_headers": ["call:ratelimit", "pause"],
        "http_call_response": ["local:429:slow down"],
    }));
    cfg.clusters
        .insert("ratelimit".into(), Cluster::respond(200, &[], "over"));
    let mut host = start(cfg);
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    // A zero-delay answer arrives right after the callback returns.
    assert_eq!(s.downstream_status(), Some(429));
    assert_eq!(s.downstream_body(), b"slow down");
    assert_eq!(s.upstream_headers(), None);
}

#[test]
fn close_stream_resets_the_stream() {
    let mut host = probe(json!({"request_headers": ["reset_request"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert!(s.reset());
    assert!(s.ended());
}

#[test]
fn a_stream_ends_with_on_log_then_on_done() {
    let mut host = probe(json!({"trace": true}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    assert!(!s.ended());
    s.response_body(b"x", true);
    assert!(s.ended(), "a complete response ends the stream");
    let called: Vec<(Callback, u32)> = s.actions().iter().map(|a| (a.callback, a.code)).collect();
    assert_eq!(
        called,
        [
            (Callback::RequestHeaders, 0),
            (Callback::ResponseHeaders, 0),
            (Callback::ResponseBody, 0)
        ]
    );
    let order: Vec<String> = shared
        .events()
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .filter(|e| e == "log" || e == "done")
        .collect();
    assert_eq!(order, ["log", "done"]);
}

#[test]
fn finishing_an_unanswered_stream_is_a_downstream_reset() {
    let mut host = probe(json!({"trace": true, "request_headers": ["pause"]}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert!(!s.ended());
    s.finish();
    assert!(s.reset());
    assert!(s.ended());
    assert_eq!(events(&shared, "log").len(), 1);
}

#[test]
fn an_upstream_reset_after_response_headers_resets_the_client_and_runs_on_log() {
    let mut host = probe(json!({"trace": true}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"part", false);
    s.upstream_reset();
    assert!(s.reset() && s.ended());
    assert_eq!(s.response_body(b"more", true), Outcome::NotCalled);
    let bodies = events(&shared, "response_body");
    assert_eq!(
        bodies.len(),
        1,
        "no body callback after the reset: {bodies:?}"
    );
    assert_eq!(events(&shared, "log").len(), 1);
}

#[test]
fn an_upstream_reset_before_response_headers_is_a_503_through_the_filter() {
    let mut host = probe(json!({"trace": true}));
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.upstream_reset();
    assert_eq!(s.local_reply(), Some(503));
    assert_eq!(s.downstream_status(), Some(503));
    assert!(s.downstream_complete() && !s.reset() && s.ended());
    assert_eq!(
        events(&shared, "response_headers").len(),
        1,
        "the router's reply passes our encoder callbacks"
    );
    assert_eq!(events(&shared, "log").len(), 1);
}

// ---- raw codes the SDK cannot return ------------------------------------------------------

fn raw(codes: raw_module::Codes, limit: usize) -> rheostat_host::Host {
    start(HostConfig {
        module: raw_module::path(codes),
        buffer_limit: limit,
        ..HostConfig::default()
    })
}

const PASS: raw_module::Codes = raw_module::Codes {
    request_headers: 0,
    request_body_until_eos: 0,
    response_headers: 0,
    response_body_until_eos: 0,
};

fn upstream_after_three_chunks(body_code: u8) -> Vec<u8> {
    let mut host = raw(
        raw_module::Codes {
            request_body_until_eos: body_code,
            ..PASS
        },
        DEFAULT_LIMIT,
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    assert_eq!(
        s.request_body(b"ab", false),
        Outcome::Returned(body_code as u32)
    );
    assert_eq!(
        s.request_body(b"cd", false),
        Outcome::Returned(body_code as u32)
    );
    assert_eq!(s.upstream_body(), b"");
    assert_eq!(s.request_body(b"ef", true), Outcome::Returned(0));
    assert!(s.upstream_complete());
    s.upstream_body()
}

const DEFAULT_LIMIT: usize = rheostat_host::DEFAULT_BUFFER_LIMIT;

#[test]
fn body_code_1_buffers_and_continue_sends_everything() {
    assert_eq!(upstream_after_three_chunks(1), b"abcdef");
}

#[test]
fn body_code_2_watermark_buffers_and_continue_sends_everything() {
    assert_eq!(upstream_after_three_chunks(2), b"abcdef");
}

#[test]
fn body_code_3_drops_the_chunk_and_so_does_any_larger_code() {
    assert_eq!(upstream_after_three_chunks(3), b"ef");
    assert_eq!(upstream_after_three_chunks(9), b"ef");
}

#[test]
fn a_watermark_body_is_exempt_from_the_buffer_limit() {
    let mut host = raw(
        raw_module::Codes {
            request_body_until_eos: 2,
            ..PASS
        },
        4,
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(POST, false);
    s.request_body(b"0123456789", false);
    assert_eq!(s.local_reply(), None);
    s.request_body(b"!", true);
    assert_eq!(s.upstream_body(), b"0123456789!");
}

#[test]
fn header_code_3_buffers_the_response_under_the_limit_and_overflow_is_a_500() {
    // StopAllIterationAndBuffer: the limit applies while the headers have not gone out.
    let mut host = raw(
        raw_module::Codes {
            response_headers: 3,
            ..PASS
        },
        8,
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert_eq!(s.response_headers(OK, false), Outcome::Returned(3));
    assert_eq!(s.response_body(b"0123456789", false), Outcome::NotCalled);
    assert_eq!(s.downstream_status(), Some(500));
    assert_eq!(s.local_reply(), Some(500));
    assert!(!s.reset());
}

#[test]
fn header_code_2_continues() {
    let mut host = raw(
        raw_module::Codes {
            request_headers: 2,
            ..PASS
        },
        DEFAULT_LIMIT,
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    assert!(s.upstream_complete());
}
