//! Whole recorded exchanges through `Worker::run_exchange`, and the
//! properties a module can read about its stream.

use crate::common::*;
use rheostat_host::exchange::{Chunking, Exchange};
use rheostat_host::{
    Cluster, Host, HostConfig, DEFAULT_START_UNIX_MS, SOURCE_ADDRESS, SOURCE_PORT,
};
use serde_json::{json, Value};

fn exchange(v: Value) -> Exchange {
    serde_json::from_value(v).expect("a valid exchange")
}

fn chat() -> Exchange {
    exchange(json!({
        "id": "ex-1",
        "request": {"headers": {"Host": "api.openai.com", "Content-Type": "application/json"},
                    "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}},
        "response": {"status": 200, "headers": {"content-type": "application/json"}, "body_text": "{\"ok\":true}"},
    }))
}

// ---- run_exchange ---------------------------------------------------------------------

#[test]
fn an_exchange_reaches_the_filter_as_envoy_would_send_it() {
    let mut host = probe(json!({"request_headers": ["req.pairs"]}));
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    let pairs = &result.events[0]["pairs"];
    let seen: Vec<(String, String)> = serde_json::from_value(pairs.clone()).expect("pairs");
    assert_eq!(
        &seen[..4],
        &[
            (":method".into(), "POST".into()),
            (":path".into(), "/v1/chat/completions".into()),
            (":authority".into(), "api.openai.com".into()),
            (":scheme".into(), "http".into()),
        ]
    );
    assert!(
        !seen.iter().any(|(k, _)| k == "host"),
        "HTTP/1 host becomes :authority"
    );
    assert!(
        seen.contains(&("content-type".into(), "application/json".into())),
        "names are lower-cased"
    );
    assert!(seen.iter().any(|(k, _)| k == "x-request-id"));

    assert!(result.request.forwarded);
    assert_eq!(
        result
            .request
            .headers
            .get("content-type")
            .map(String::as_str),
        Some("application/json")
    );
    assert!(!result.request.headers.contains_key(":path"));
    assert_eq!(
        result.request.body_text,
        r#"{"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o"}"#
    );
    assert_eq!(
        (
            result.response.status,
            result.response.local,
            result.response.reset
        ),
        (200, false, false)
    );
    assert_eq!(result.response.body_text, r#"{"ok":true}"#);
    assert_eq!(result.level, "normal");
    assert!(result.findings.is_empty());
}

#[test]
fn random_chunking_is_deterministic_and_stays_between_1_and_64_bytes() {
    let body = "x".repeat(700);
    let ex = exchange(
        json!({"id": "big", "request": {"body_text": body}, "response": {"body_text": body}}),
    );
    let sizes = |seed: u64| {
        let mut host = probe(json!({"trace": true}));
        let result = host.worker(0).run_exchange(&ex, &Chunking::Random { seed });
        let of = |kind: &str| -> Vec<u64> {
            result
                .events
                .iter()
                .filter(|e| e["event"] == kind)
                .map(|e| e["size"].as_u64().unwrap_or(0))
                .collect()
        };
        (of("request_body"), of("response_body"))
    };
    let (request, response) = sizes(7);
    assert_eq!(request.iter().sum::<u64>(), 700);
    assert_eq!(response.iter().sum::<u64>(), 700);
    assert!(
        request
            .iter()
            .chain(&response)
            .all(|n| (1..=64).contains(n)),
        "{request:?}"
    );
    assert_eq!(
        sizes(7),
        (request.clone(), response),
        "same seed, same chunks"
    );
    assert_ne!(sizes(8).0, request, "another seed, other chunks");
}

#[test]
fn recorded_chunks_and_trailers_are_replayed_as_given() {
    let ex = exchange(json!({"id": "sse", "request": {"body_text": "{}"},
        "response": {"chunks": ["data: a\n\n", "data: [DONE]\n\n"], "trailers": {"x-done": "1"}}}));
    let mut host = probe(json!({"trace": true}));
    let result = host.worker(0).run_exchange(&ex, &Chunking::Fixed(1));
    let bodies: Vec<(u64, bool)> = result
        .events
        .iter()
        .filter(|e| e["event"] == "response_body")
        .map(|e| {
            (
                e["size"].as_u64().unwrap_or(0),
                e["eos"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(bodies, [(9, false), (14, false)]);
    assert_eq!(
        result
            .events
            .iter()
            .filter(|e| e["event"] == "response_trailers")
            .count(),
        1
    );
    assert_eq!(result.response.body_text, "data: a\n\ndata: [DONE]\n\n");
    assert_eq!(
        result
            .events
            .iter()
            .filter(|e| e["event"] == "request_body")
            .count(),
        2,
        "Fixed(1) splits the request"
    );
}

#[test]
fn a_local_reply_is_reported_as_local_and_not_forwarded() {
    let mut host = probe(json!({"request_body": ["local:403:blocked"]}));
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert!(!result.request.forwarded);
    assert_eq!((result.response.status, result.response.local), (403, true));
    assert_eq!(result.response.body_text, "blocked");
    assert_eq!(
        result.response.headers.get("x-probe").map(String::as_str),
        Some("local")
    );
}

#[test]
fn a_stream_the_filter_leaves_waiting_gets_envoys_idle_timeout() {
    let mut host = probe(json!({"request_headers": ["pause"]}));
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert!(!result.request.forwarded);
    assert_eq!((result.response.status, result.response.local), (408, true));
}

#[test]
fn events_calls_and_metrics_are_those_of_this_exchange() {
    let mut cfg = probe_config(
        json!({"request_headers": ["counter:requests", "gauge_set:level:3", "call:audit", "log:seen"]}),
    );
    cfg.clusters
        .insert("audit".into(), Cluster::respond(204, &[], ""));
    let mut host = start(cfg);
    host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert_eq!(
        result.metrics.get("requests"),
        Some(&1),
        "a per-exchange delta"
    );
    assert_eq!(result.metrics.get("level"), Some(&3), "a gauge's value");
    assert_eq!(host.shared().metric("requests"), Some(2));
    assert_eq!(result.http_calls.len(), 1);
    assert_eq!(result.http_calls[0]["cluster"], "audit");
    assert_eq!(result.http_calls[0]["headers"][":path"], "/probe");
    assert_eq!(result.http_calls[0]["body_text"], "probe-body");
    assert_eq!(result.http_calls[0]["timeout_ms"], 5000);
    let kinds: Vec<&str> = result
        .events
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(kinds, ["metric", "call_dispatched", "log", "call_response"]);
}

#[test]
fn a_trap_mid_exchange_is_an_event_and_fails_the_stream_closed() {
    let mut host = probe(json!({"response_headers": ["panic:mid-stream"]}));
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    let trap = result
        .events
        .iter()
        .find(|e| e["event"] == "trap")
        .expect("a trap event");
    assert!(trap["message"]
        .as_str()
        .unwrap_or("")
        .contains("mid-stream"));
    assert_eq!((result.response.status, result.response.local), (503, true));
    let next = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert_eq!((next.response.status, next.request.forwarded), (503, false));
}

#[test]
fn a_trap_mid_exchange_fails_open_when_configured() {
    let mut host = start(HostConfig {
        fail_open: true,
        ..probe_config(json!({"response_headers": ["panic"]}))
    });
    let result = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert_eq!(
        (result.response.status, result.response.local),
        (200, false)
    );
    assert_eq!(result.response.body_text, r#"{"ok":true}"#);
    let next = host.worker(0).run_exchange(&chat(), &Chunking::Whole);
    assert!(next.request.forwarded);
}

// ---- properties -----------------------------------------------------------------------------

fn property_values(host: &mut Host, ex: &Exchange) -> Vec<Value> {
    let result = host.worker(0).run_exchange(ex, &Chunking::Whole);
    result
        .events
        .into_iter()
        .filter(|e| e["event"] == "property")
        .collect()
}

#[test]
fn request_properties_are_readable_while_the_request_headers_are() {
    let mut host = probe(json!({"request_headers": [
        "property:request.path", "property:request.url_path", "property:request.query", "property:request.method",
        "property:request.host", "property:request.scheme", "property:request.protocol", "property:request.headers.content-type",
        "property:request.time", "property:request.id",
    ]}));
    let ex = exchange(
        json!({"id": "p", "request": {"method": "GET", "path": "/v1/models?limit=2", "headers": {"content-type": "text/plain"}}, "response": {}}),
    );
    let values = property_values(&mut host, &ex);
    let texts: Vec<&str> = values
        .iter()
        .take(8)
        .map(|v| v["text"].as_str().unwrap_or("<missing>"))
        .collect();
    assert_eq!(
        texts,
        [
            "/v1/models?limit=2",
            "/v1/models",
            "limit=2",
            "GET",
            "llm.local",
            "http",
            "HTTP/1.1",
            "text/plain"
        ]
    );
    // Times are int64 nanoseconds, little-endian.
    assert_eq!(values[8]["len"], 8);
    assert_eq!(values[8]["int"], DEFAULT_START_UNIX_MS * 1_000_000);
    assert_eq!(values[9]["len"], 36, "Envoy's x-request-id");
}

#[test]
fn request_header_properties_are_gone_in_the_response_path_and_back_in_on_log() {
    let mut host = probe(json!({
        "response_headers": ["property:request.path", "property:response.code", "property:request.time"],
        "log": ["property:request.path", "property:response.code", "property:request.duration"],
    }));
    let values = property_values(&mut host, &chat());
    assert_eq!(values[0]["found"], false);
    assert_eq!(values[1]["int"], 200);
    assert_eq!(
        values[2]["found"], true,
        "request.time does not need the headers"
    );
    assert_eq!(values[3]["text"], "/v1/chat/completions");
    assert_eq!(values[4]["int"], 200);
    assert_eq!(values[5]["int"], 0, "no virtual time passed");
}

#[test]
fn plugin_and_peer_properties() {
    let mut host = start(HostConfig {
        plugin_name: "guard".into(),
        root_id: "guard_root".into(),
        vm_id: "guard_vm".into(),
        ..probe_config(json!({
            "configure": ["property:plugin_name", "property:plugin_root_id", "property:plugin_vm_id", "property:request.path"],
            "request_headers": ["property:source.address", "property:source.port", "property:destination.port", "property:no.such.thing"],
        }))
    });
    let configure: Vec<Value> = events(&host.shared(), "property");
    assert_eq!(configure[0]["text"], "guard");
    assert_eq!(configure[1]["text"], "guard_root");
    assert_eq!(configure[2]["text"], "guard_vm");
    assert_eq!(
        configure[3]["found"], false,
        "a root context has no request"
    );
    let values = property_values(&mut host, &chat());
    assert_eq!(values[0]["text"], format!("{SOURCE_ADDRESS}:{SOURCE_PORT}"));
    assert_eq!(values[1]["int"], SOURCE_PORT);
    assert_eq!(values[2]["int"], rheostat_host::DESTINATION_PORT);
    assert_eq!(values[3]["found"], false);
}

#[test]
fn a_property_set_on_a_stream_is_readable_later_on_it() {
    let mut host = probe(json!({
        "request_headers": ["set_property:verdict=allow"],
        "response_headers": ["property:verdict"],
        "log": ["property:response.code_details"],
    }));
    let values = property_values(&mut host, &chat());
    assert_eq!(values[0]["text"], "allow");
    assert_eq!(
        values[1]["found"], false,
        "no details without a local reply"
    );

    let mut host = probe(
        json!({"request_headers": ["local:403:no"], "log": ["property:response.code_details", "property:response.code"]}),
    );
    let values = property_values(&mut host, &chat());
    assert_eq!(values[1]["int"], 403);
}
