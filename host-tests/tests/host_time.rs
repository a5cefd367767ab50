//! Virtual time: the clock the module reads, timers (one per root context
//! per VM), and outgoing HTTP calls answered now or later.

use crate::common::*;
use rheostat_host::{CallOutcome, Cluster, Host, HostConfig, DEFAULT_START_UNIX_MS};
use serde_json::{json, Value};

fn host_with(config: Value, workers: usize, clusters: &[(&str, Cluster)]) -> Host {
    let mut cfg = HostConfig {
        workers,
        ..probe_config(config)
    };
    for (name, cluster) in clusters {
        cfg.clusters.insert(name.to_string(), cluster.clone());
    }
    start(cfg)
}

fn ticks_by_worker(host: &Host, workers: usize) -> Vec<usize> {
    let logs = host.shared().logs();
    (0..workers)
        .map(|w| {
            logs.iter()
                .filter(|l| l.worker == w && l.event().is_some_and(|e| e["event"] == "tick"))
                .count()
        })
        .collect()
}

// ---- the clock -------------------------------------------------------------------------

#[test]
fn the_module_reads_virtual_time_through_proxy_and_wasi_clocks() {
    let mut host = host_with(
        json!({"tick": ["now"], "configure": ["now", "tick_period:1500"]}),
        1,
        &[],
    );
    let shared = host.shared();
    host.advance(1500);
    let now = events(&shared, "now");
    let start_ns = DEFAULT_START_UNIX_MS * 1_000_000;
    assert_eq!(now[0]["host_ns"], start_ns);
    assert_eq!(now[0]["wasi_ns"], start_ns);
    assert_eq!(now[1]["host_ns"], start_ns + 1_500_000_000);
    assert_eq!(now[1]["wasi_ns"], start_ns + 1_500_000_000);
    assert_eq!(host.elapsed_ms(), 1500);
    assert_eq!(host.now_ms(), DEFAULT_START_UNIX_MS + 1500);
}

// ---- timers ------------------------------------------------------------------------------

#[test]
fn one_timer_per_root_per_vm_ticks_every_worker() {
    let mut host = host_with(json!({"configure": ["tick_period:100"]}), 3, &[]);
    host.advance(99);
    assert_eq!(
        ticks_by_worker(&host, 3),
        [0, 0, 0],
        "the first tick comes one period after it is set"
    );
    host.advance(1);
    assert_eq!(ticks_by_worker(&host, 3), [1, 1, 1]);
    // One advance over several periods fires every period.
    host.advance(250);
    assert_eq!(ticks_by_worker(&host, 3), [3, 3, 3]);
}

#[test]
fn ticks_fire_in_time_order_across_workers() {
    let mut host = host_with(
        json!({"configure": ["tick_period:40"], "tick": ["now"]}),
        2,
        &[],
    );
    host.advance(130);
    let order: Vec<(u64, usize)> = host
        .shared()
        .logs()
        .iter()
        .filter(|l| l.event().is_some_and(|e| e["event"] == "now"))
        .map(|l| (l.at_ms - DEFAULT_START_UNIX_MS, l.worker))
        .collect();
    assert_eq!(
        order,
        [(40, 0), (40, 1), (80, 0), (80, 1), (120, 0), (120, 1)]
    );
}

#[test]
fn a_new_period_replaces_the_old_one() {
    let mut host = host_with(
        json!({"configure": ["tick_period:100", "tick_period:30"]}),
        1,
        &[],
    );
    host.advance(100);
    assert_eq!(ticks_by_worker(&host, 1), [3]);
}

#[test]
fn period_zero_disables_the_timer() {
    let mut host = host_with(
        json!({"configure": ["tick_period:10"], "tick": ["tick_period:0"]}),
        1,
        &[],
    );
    host.advance(1000);
    assert_eq!(ticks_by_worker(&host, 1), [1]);
}

// ---- HTTP calls ---------------------------------------------------------------------------

fn call_responses(host: &Host) -> Vec<Value> {
    events(&host.shared(), "call_response")
}

#[test]
fn a_call_to_an_unknown_cluster_is_bad_argument() {
    let mut host = host_with(json!({"request_headers": ["call:nosuch"]}), 1, &[]);
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert_eq!(
        events(&host.shared(), "call_dispatched")[0]["error"],
        "BadArgument"
    );
    assert!(host.shared().http_calls().is_empty());
}

#[test]
fn a_call_without_path_is_bad_argument() {
    let mut host = host_with(
        json!({"request_headers": ["call_no_path:alerts"]}),
        1,
        &[("alerts", Cluster::respond(200, &[], ""))],
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert_eq!(
        events(&host.shared(), "call_dispatched")[0]["error"],
        "BadArgument"
    );
}

#[test]
fn a_zero_delay_answer_arrives_right_after_the_callback() {
    let cluster = Cluster::respond(202, &[("x-upstream", "alerts")], "accepted");
    let mut host = host_with(
        json!({"trace": true, "request_headers": ["call:alerts"]}),
        1,
        &[("alerts", cluster)],
    );
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    let names: Vec<String> = shared
        .events()
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        &names[2..],
        ["request_headers", "call_dispatched", "call_response"]
    );
    s.response_headers(OK, true);
    drop(s);
    let answer = &call_responses(&host)[0];
    assert_eq!(answer["status"], "202");
    assert_eq!(answer["body"], "accepted");
    assert_eq!(answer["headers"], 2);
}

#[test]
fn a_delayed_answer_arrives_when_time_reaches_it() {
    let cluster = Cluster::respond(200, &[], "late").with_delay(50);
    let mut host = host_with(
        json!({"configure": ["call:alerts"]}),
        1,
        &[("alerts", cluster)],
    );
    host.advance(49);
    assert!(call_responses(&host).is_empty());
    host.advance(1);
    assert_eq!(call_responses(&host).len(), 1);
}

#[test]
fn the_call_belongs_to_the_root_context() {
    let cluster = Cluster::respond(200, &[], "ok");
    let mut host = host_with(
        json!({"configure": ["tick_period:10"], "tick": ["call:alerts"]}),
        1,
        &[("alerts", cluster)],
    );
    host.advance(10);
    let root = events(&host.shared(), "tick")[0]["ctx"].clone();
    assert_eq!(call_responses(&host)[0]["ctx"], root);
}

#[test]
fn an_answer_for_a_finished_stream_is_dropped_quietly() {
    let cluster = Cluster::respond(200, &[], "ok").with_delay(10);
    let mut host = host_with(
        json!({"request_headers": ["call:alerts"]}),
        1,
        &[("alerts", cluster)],
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, true);
    assert!(s.ended());
    drop(s);
    host.advance(10);
    assert!(call_responses(&host).is_empty());
    assert!(host.shared().traps().is_empty());
}

#[test]
fn a_failed_call_has_no_headers() {
    let mut host = host_with(
        json!({"configure": ["call:down"]}),
        1,
        &[("down", Cluster::fail())],
    );
    host.advance(0);
    let answer = &call_responses(&host)[0];
    assert_eq!(answer["headers"], 0);
    assert_eq!(answer["body_size"], 0);
    assert_eq!(answer["status"], Value::Null);
}

#[test]
fn a_call_that_times_out_gets_the_routers_504() {
    let mut host = host_with(
        json!({"configure": ["call_timeout:slow:100"]}),
        1,
        &[("slow", Cluster::timeout())],
    );
    host.advance(99);
    assert!(call_responses(&host).is_empty());
    host.advance(1);
    let answer = &call_responses(&host)[0];
    assert_eq!(answer["status"], "504");
    assert_eq!(answer["body"], "upstream request timeout");
}

#[test]
fn an_answer_slower_than_the_timeout_is_a_timeout() {
    let slow = Cluster::respond(200, &[], "too late").with_delay(500);
    let mut host = host_with(
        json!({"configure": ["call_timeout:slow:100"]}),
        1,
        &[("slow", slow)],
    );
    host.advance(1000);
    let answers = call_responses(&host);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["status"], "504");
}

#[test]
fn without_a_timeout_an_unanswered_call_waits_forever() {
    let mut host = host_with(
        json!({"configure": ["call_timeout:slow:0"]}),
        1,
        &[("slow", Cluster::timeout())],
    );
    host.advance(3_600_000);
    assert!(call_responses(&host).is_empty());
}

#[test]
fn every_call_is_recorded() {
    let cluster = Cluster::from_fn(|req| {
        assert_eq!(req.header(":path"), Some("/probe"));
        CallOutcome::respond(200, &[], req.body_text())
    });
    let mut host = host_with(json!({"configure": ["call:echo"]}), 1, &[("echo", cluster)]);
    host.advance(0);
    let calls = host.shared().http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (
            call.cluster.as_str(),
            call.timeout_ms,
            call.worker,
            call.at_ms
        ),
        ("echo", 5000, 0, DEFAULT_START_UNIX_MS)
    );
    assert_eq!(call.body_text(), "probe-body");
    assert!(call
        .headers
        .contains(&(":authority".into(), "probe.local".into())));
    assert!(call
        .headers
        .contains(&("content-length".into(), "10".into())));
    assert_eq!(call_responses(&host)[0]["body"], "probe-body");
}
