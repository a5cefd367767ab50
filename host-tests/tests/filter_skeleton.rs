//! The filter's plumbing, through the compiled module in the host: shared
//! counters, the tick lease, reconfiguration, audit events, pass-through.

use rheostat_host::exchange::{Chunking, Exchange};
use rheostat_host::host::{Host, HostConfig};
use rheostat_host::replay::built_module;
use serde_json::{json, Value};

fn filter_module() -> std::path::PathBuf {
    let path = built_module("rheostat_filter");
    assert!(
        path.exists(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

fn start(workers: usize, policy: Value) -> Host {
    Host::start(HostConfig {
        module: filter_module(),
        workers,
        plugin_config: policy.to_string().into_bytes(),
        ..HostConfig::default()
    })
    .expect("host starts with a valid policy")
}

fn chat_exchange(id: &str) -> Exchange {
    serde_json::from_value(json!({
        "id": id,
        "request": {"method": "POST", "path": "/v1/chat/completions",
                    "headers": {"content-type": "application/json", "x-tenant-id": "acme", "x-region": "eu"},
                    "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}},
        "response": {"status": 200, "headers": {"content-type": "application/json"},
                     "body_text": "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello! How can I help?\"},\"finish_reason\":\"stop\"}]}"}
    }))
    .unwrap()
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Reads the ledger's value for `counter` in `window` straight from shared data.
fn window_count(host: &Host, counter: &str, window: u64) -> u64 {
    let key = format!(
        "rheostat/w/{counter}/{}",
        window % rheostat_filter::ledger::SLOTS
    );
    let (value, _) = host
        .shared()
        .shared_data_get(&key)
        .expect("counter slot exists");
    let stored_window = u64::from_le_bytes(value[0..8].try_into().unwrap());
    assert_eq!(stored_window, window, "slot holds the expected window");
    u64::from_le_bytes(value[8..16].try_into().unwrap())
}

#[test]
fn request_counter_is_exact_with_four_workers_on_four_threads() {
    const PER_WORKER: usize = 2_500;
    let mut host = start(4, json!({"window_secs": 3600}));
    let exchange = chat_exchange("load");
    std::thread::scope(|s| {
        for worker in host.workers_mut() {
            let exchange = &exchange;
            s.spawn(move || {
                for _ in 0..PER_WORKER {
                    let result = worker.run_exchange(exchange, &Chunking::Whole);
                    assert_eq!(result.response.status, 200);
                }
            });
        }
    });
    let window = host.now_ms() / 3_600_000;
    assert_eq!(
        window_count(&host, "requests", window),
        4 * PER_WORKER as u64
    );
    assert_eq!(
        host.shared().metric("rheostat.requests_total"),
        Some(4 * PER_WORKER as i64)
    );
}

#[test]
fn exactly_one_worker_does_the_tick_work_each_period() {
    let mut host = start(4, json!({"tick_ms": 1000}));
    host.shared().take_logs();
    host.advance(20_000);
    let ticks: Vec<Value> = host
        .shared()
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line.message).ok())
        .filter(|e| e["event"] == "tick")
        .collect();
    let mut periods: Vec<u64> = ticks
        .iter()
        .map(|t| t["period"].as_u64().unwrap())
        .collect();
    periods.sort_unstable();
    let first = periods[0];
    assert_eq!(
        periods,
        (first..first + 20).collect::<Vec<_>>(),
        "one tick event per period, none twice"
    );
    let holders: std::collections::BTreeSet<u64> = ticks
        .iter()
        .map(|t| t["worker"].as_u64().unwrap())
        .collect();
    assert!(!holders.is_empty() && holders.len() <= 4);
}

#[test]
fn tick_event_reports_the_previous_windows_request_count() {
    let mut host = start(2, json!({"window_secs": 10, "tick_ms": 1000}));
    // Align to the start of a window so all three requests land in one.
    let to_next_window = 10_000 - host.now_ms() % 10_000;
    host.advance(to_next_window);
    for i in 0..3 {
        host.worker(i % 2)
            .run_exchange(&chat_exchange("count"), &Chunking::Whole);
    }
    host.shared().take_logs();
    host.advance(11_000);
    let reported: Vec<u64> = host
        .shared()
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line.message).ok())
        .filter(|e| e["event"] == "tick")
        .map(|e| e["previous_window_requests"].as_u64().unwrap())
        .collect();
    assert_eq!(reported.last(), Some(&3), "ticks reported {reported:?}");
}

#[test]
fn rejected_reconfiguration_keeps_the_previous_policy_serving() {
    let mut host = start(2, json!({"name": "first"}));
    host.shared().take_logs();
    let accepted = host
        .reconfigure(br#"{"name": "second", "window_secs": 0}"#.to_vec())
        .unwrap();
    assert!(!accepted, "an invalid policy must be rejected");
    let logs = host.shared().logs();
    assert!(
        logs.iter().any(|l| l.message == "rheostat: invalid policy: window_secs: must be between 1 and 86400 seconds (got 0)"),
        "the rejection names the JSON path: {logs:?}"
    );
    for worker in 0..2 {
        let result = host
            .worker(worker)
            .run_exchange(&chat_exchange("after-reject"), &Chunking::Whole);
        let exchange = events_named(&result.events, "exchange");
        assert_eq!(exchange.len(), 1);
        assert_eq!(exchange[0]["policy"], "first");
    }
    assert!(host.reconfigure(br#"{"name": "second"}"#.to_vec()).unwrap());
    let result = host
        .worker(1)
        .run_exchange(&chat_exchange("after-accept"), &Chunking::Whole);
    assert_eq!(
        events_named(&result.events, "exchange")[0]["policy"],
        "second"
    );
}

#[test]
fn invalid_policy_at_boot_refuses_to_start_and_says_why() {
    let err = Host::start(HostConfig {
        module: filter_module(),
        plugin_config: br#"{"subject": {"tenant_header": "X-Tenant"}}"#.to_vec(),
        ..HostConfig::default()
    })
    .err()
    .expect("start fails");
    let message = format!("{err:#}");
    assert!(message.contains("subject.tenant_header"), "{message}");
}

#[test]
fn every_exchange_gets_one_audit_event_with_subject_and_status() {
    let mut host = start(1, json!({"name": "audit"}));
    let mut exchange = chat_exchange("audit-1");
    exchange.response.status = 503;
    let result = host.worker(0).run_exchange(&exchange, &Chunking::Whole);
    let events = events_named(&result.events, "exchange");
    assert_eq!(events.len(), 1, "{:?}", result.events);
    let e = events[0];
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["region"], "eu");
    assert_eq!(e["route"], "/v1/chat/completions");
    assert_eq!(e["method"], "POST");
    assert_eq!(e["status"], 503);
    assert_eq!(e["level"], "normal");
}

#[test]
fn pass_through_is_byte_exact_for_any_chunking() {
    let mut host = start(1, json!({}));
    let exchange = chat_exchange("bytes");
    let expected_body = exchange.response.body_bytes();
    for chunking in [
        Chunking::Whole,
        Chunking::Fixed(1),
        Chunking::Fixed(7),
        Chunking::Random { seed: 42 },
    ] {
        let result = host.worker(0).run_exchange(&exchange, &chunking);
        assert!(result.request.forwarded);
        assert_eq!(
            result.request.body_text.as_bytes(),
            exchange.request.body_bytes().as_slice()
        );
        assert_eq!(
            result.response.body_text.as_bytes(),
            expected_body.as_slice(),
            "{chunking:?}"
        );
        assert!(!result.response.local && !result.response.reset);
    }
}

#[test]
fn shared_data_keys_stay_bounded_over_a_long_run() {
    // Keys are created at configuration time or on first use of a bounded
    // family (registries, leases); traffic from many more tenants than the
    // registry's cap, over many windows, adds nothing after that.
    let mut host = start(
        2,
        json!({"window_secs": 1, "tick_ms": 500, "controls": {"max_scopes_per_kind": 8}}),
    );
    let run = |host: &mut Host, from: usize| {
        for i in from..from + 100 {
            host.advance(700);
            let mut exchange = chat_exchange("long");
            exchange
                .request
                .headers
                .insert("x-tenant-id".into(), format!("tenant-{i}"));
            host.worker(i % 2).run_exchange(&exchange, &Chunking::Whole);
        }
    };
    run(&mut host, 0);
    let settled = host.shared().shared_data_keys();
    run(&mut host, 100);
    let keys = host.shared().shared_data_keys();
    let added: Vec<&String> = keys.iter().filter(|k| !settled.contains(k)).collect();
    assert!(added.is_empty(), "shared data grew by {added:?}");
}
