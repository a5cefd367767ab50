//! What workers share: shared data with Envoy's compare-and-swap, queues,
//! and metrics — with several VM instances, some on their own threads.

use crate::common::*;
use rheostat_host::{Host, HostConfig, LogLine};
use serde_json::{json, Value};

fn with_workers(config: Value, workers: usize) -> Host {
    start(HostConfig {
        workers,
        ..probe_config(config)
    })
}

/// Run one request with this worker and end it.
fn one_request(host: &mut Host, worker: usize) {
    let mut s = host.worker(worker).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, true);
    assert!(s.ended());
}

/// The events one worker logged, of one kind.
fn worker_events(logs: &[LogLine], worker: usize, kind: &str) -> Vec<Value> {
    logs.iter()
        .filter(|l| l.worker == worker)
        .filter_map(|l| l.event())
        .filter(|e| e["event"] == kind)
        .collect()
}

// ---- shared data ---------------------------------------------------------------------

#[test]
fn counters_stay_exact_with_four_workers_on_four_threads() {
    const PER_WORKER: u64 = 10_000;
    let mut host = with_workers(
        json!({"configure": ["cas_init:hits"], "request_headers": ["cas_increment:hits"]}),
        4,
    );
    std::thread::scope(|scope| {
        for worker in host.workers_mut() {
            scope.spawn(move || {
                for _ in 0..PER_WORKER {
                    let mut s = worker.open_stream();
                    s.request_headers(GET, true);
                    s.response_headers(OK, true);
                }
            });
        }
    });
    let (value, _) = host
        .shared()
        .shared_data_get("hits")
        .expect("the counter exists");
    assert_eq!(
        String::from_utf8_lossy(&value),
        (4 * PER_WORKER).to_string()
    );
    assert!(host.shared().traps().is_empty());
}

#[test]
fn stale_cas_is_rejected() {
    let mut host = probe(json!({"request_headers": ["set_shared:k=v", "stale_cas:k"]}));
    let shared = host.shared();
    one_request(&mut host, 0);
    let report = &events(&shared, "stale_cas")[0];
    assert_eq!(report["first"], "Ok");
    assert_eq!(report["second"], "CasMismatch");
    assert_eq!(
        shared.shared_data_get("k").map(|(v, _)| v),
        Some(b"first".to_vec())
    );
}

#[test]
fn every_write_gets_a_new_cas_and_none_is_zero() {
    let mut host = probe(
        json!({"request_headers": ["set_shared:a=1", "get_shared:a", "set_shared:a=2", "get_shared:a", "get_shared:b"]}),
    );
    let shared = host.shared();
    one_request(&mut host, 0);
    let reads = events(&shared, "shared");
    let first = reads[0]["cas"].as_u64().expect("a cas");
    let second = reads[1]["cas"].as_u64().expect("a cas");
    assert!(first >= 1 && second > first, "{reads:?}");
    // An unknown key is NotFound, which the SDK reads as no value and no cas.
    assert_eq!(reads[2]["value"], Value::Null);
    assert_eq!(reads[2]["cas"], Value::Null);
}

#[test]
fn workers_share_one_store() {
    let mut host = with_workers(json!({"request_headers": ["cas_increment:n"]}), 3);
    for w in 0..3 {
        one_request(&mut host, w);
    }
    assert_eq!(
        host.shared().shared_data_get("n").map(|(v, _)| v),
        Some(b"3".to_vec())
    );
    assert_eq!(host.shared().shared_data_keys(), ["n"]);
}

// ---- queues ---------------------------------------------------------------------------------

#[test]
fn only_the_last_registering_worker_hears_about_enqueued_items() {
    let mut host = with_workers(
        json!({"configure": ["register_queue:jobs"], "request_headers": ["enqueue:jobs=job-1"]}),
        3,
    );
    let shared = host.shared();
    one_request(&mut host, 0);
    // The owner hears on its next turn, never inside the enqueuing call.
    assert!(events(&shared, "queue_ready").is_empty());
    host.advance(0);
    let logs = shared.logs();
    assert!(worker_events(&logs, 0, "queue_ready").is_empty());
    assert!(worker_events(&logs, 1, "queue_ready").is_empty());
    let ready = worker_events(&logs, 2, "queue_ready");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["items"], json!(["job-1"]));
}

#[test]
fn queues_are_keyed_by_vm_id_and_name() {
    let mut host = probe(json!({
        "configure": ["register_queue:jobs"],
        "request_headers": ["resolve_queue:/jobs", "resolve_queue:other-vm/jobs", "enqueue:nosuch=x"],
    }));
    let shared = host.shared();
    one_request(&mut host, 0);
    let registered = events(&shared, "queue_registered")[0]["queue"].clone();
    let resolved = events(&shared, "queue_resolved");
    assert_eq!(resolved[0]["queue"], registered);
    assert_eq!(
        resolved[1]["queue"],
        Value::Null,
        "another vm_id's queue is NotFound"
    );
    assert_eq!(events(&shared, "enqueued")[0]["result"], "NotFound");
}

#[test]
fn unknown_queue_tokens_are_not_found_and_an_empty_queue_is_empty() {
    let mut host = probe(json!({
        "configure": ["register_queue:jobs"],
        "request_headers": ["enqueue_token:999=x", "dequeue_token:999", "dequeue_token:1"],
    }));
    let shared = host.shared();
    one_request(&mut host, 0);
    assert_eq!(events(&shared, "queue_registered")[0]["queue"], 1);
    assert_eq!(events(&shared, "enqueued")[0]["result"], "NotFound");
    let dequeued: Vec<Value> = events(&shared, "dequeued")
        .iter()
        .map(|e| e["result"].clone())
        .collect();
    assert_eq!(dequeued, [json!("NotFound"), json!("Empty")]);
}

#[test]
fn re_registering_keeps_the_items_and_moves_the_owner() {
    let mut host = with_workers(
        json!({"configure": ["register_queue:jobs"], "request_headers": ["enqueue:jobs=a"]}),
        2,
    );
    let shared = host.shared();
    one_request(&mut host, 0);
    one_request(&mut host, 0);
    host.advance(0);
    // Two notifications for worker 1; the first drains both items, the second finds it Empty.
    let ready = worker_events(&shared.logs(), 1, "queue_ready");
    assert_eq!(ready.len(), 2);
    assert_eq!(ready[0]["items"], json!(["a", "a"]));
    assert_eq!(ready[1]["items"], json!([]));
}

// ---- metrics ----------------------------------------------------------------------------------

#[test]
fn metric_ids_carry_their_type_in_the_low_two_bits() {
    let mut host = probe(
        json!({"configure": ["define_metric:counter:c", "define_metric:gauge:g", "define_metric:histogram:h"]}),
    );
    let shared = host.shared();
    let ids: Vec<u64> = events(&shared, "metric_defined")
        .iter()
        .map(|e| e["id"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(ids.iter().map(|id| id & 3).collect::<Vec<_>>(), [0, 1, 2]);
    one_request(&mut host, 0);
}

#[test]
fn workers_share_one_counter_per_name() {
    let mut host = with_workers(json!({"request_headers": ["counter:requests"]}), 3);
    for w in [0, 1, 2, 0] {
        one_request(&mut host, w);
    }
    assert_eq!(host.shared().metric("requests"), Some(4));
}

#[test]
fn counters_refuse_a_non_positive_increment_but_record_adds() {
    let mut host = probe(
        json!({"request_headers": ["counter_add:c:5", "counter_add:c:-1", "counter_add:c:0", "gauge_set:unused:0"],
                                "response_headers": ["metric_get:c"]}),
    );
    let shared = host.shared();
    one_request(&mut host, 0);
    let results: Vec<Value> = events(&shared, "metric")
        .iter()
        .take(3)
        .map(|e| e["result"].clone())
        .collect();
    assert_eq!(
        results,
        [json!("Ok"), json!("BadArgument"), json!("BadArgument")]
    );
    assert_eq!(events(&shared, "metric_value")[0]["value"], 5);
    assert_eq!(shared.metric("c"), Some(5));
}

#[test]
fn gauges_go_both_ways_and_record_sets_them() {
    let mut host = probe(
        json!({"request_headers": ["gauge_add:inflight:3", "gauge_add:inflight:-1", "gauge_set:level:7"]}),
    );
    one_request(&mut host, 0);
    assert_eq!(host.shared().metric("inflight"), Some(2));
    assert_eq!(host.shared().metric("level"), Some(7));
}

#[test]
fn histograms_only_record() {
    let mut host = probe(
        json!({"request_headers": ["histogram:latency_ms:30", "histogram:latency_ms:50", "metric_get:latency_ms"]}),
    );
    let shared = host.shared();
    one_request(&mut host, 0);
    let h = shared.histogram("latency_ms").expect("defined");
    assert_eq!((h.count, h.sum, h.min, h.max), (2, 80, 30, 50));
    assert_eq!(
        events(&shared, "metric_value")[0]["value"],
        "BadArgument",
        "get_metric refuses histograms"
    );
}
