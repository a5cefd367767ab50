//! A module's life in Envoy: linking, start-up, configuration changes,
//! logs, and what a trap does to a worker.

use crate::common::*;
use rheostat_host::{Host, HostConfig, LogLevel, Outcome, CANARY_WORKER};
use serde_json::{json, Value};

fn err_of(cfg: HostConfig) -> String {
    match Host::start(cfg) {
        Ok(_) => panic!("the host started, but it should have refused"),
        Err(e) => format!("{e:#}"),
    }
}

// ---- linking ---------------------------------------------------------------------------

/// Every `env` function the Rust SDK 0.2.5 declares (its `hostcalls.rs`).
const SDK_IMPORTS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
];

#[test]
fn the_host_defines_every_function_the_sdk_can_import() {
    for name in SDK_IMPORTS {
        assert!(
            rheostat_host::provides("env", name),
            "env.{name} is not provided"
        );
    }
    for name in [
        "fd_write",
        "environ_get",
        "environ_sizes_get",
        "proc_exit",
        "random_get",
        "clock_time_get",
        "fd_close",
        "fd_seek",
        "fd_fdstat_get",
        "sched_yield",
        "args_get",
        "args_sizes_get",
        "poll_oneoff",
    ] {
        assert!(
            rheostat_host::provides("wasi_snapshot_preview1", name),
            "wasi_snapshot_preview1.{name} is not provided"
        );
    }
}

#[test]
fn every_import_of_the_filter_the_probe_and_the_passthrough_is_provided() {
    for name in ["rheostat_filter", "rheostat_probe", "rheostat_passthrough"] {
        let path = module(name);
        let missing = rheostat_host::unresolved_imports(&path).expect("the module loads");
        assert!(
            missing.is_empty(),
            "{name} imports what the host lacks: {missing:?}"
        );
    }
    // And they instantiate: no import is left to a trapping stub.
    for name in ["rheostat_probe", "rheostat_passthrough"] {
        start(HostConfig {
            module: module(name),
            ..HostConfig::default()
        });
    }
    if let Err(e) = Host::start(HostConfig {
        module: module("rheostat_filter"),
        plugin_config: b"{}".to_vec(),
        ..HostConfig::default()
    }) {
        // An empty policy may be refused by on_configure; linking must not be why.
        let message = format!("{e:#}");
        assert!(!message.contains("cannot instantiate"), "{message}");
    }
    // The probe uses most of the ABI: its imports are the real test of the linker.
    let probe_imports = rheostat_host::imports_of(&module("rheostat_probe")).expect("loads");
    assert!(probe_imports.len() >= 40, "{probe_imports:?}");
}

#[test]
fn a_missing_module_says_to_build_it() {
    let message = err_of(HostConfig {
        module: "target/nowhere/nothing.wasm".into(),
        ..HostConfig::default()
    });
    assert!(message.contains("make build"), "{message}");
}

#[test]
fn a_module_without_a_proxy_wasm_abi_is_refused() {
    let dir = std::env::temp_dir().join(format!("rheostat-host-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("empty.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").expect("write");
    let message = err_of(HostConfig {
        module: path,
        ..HostConfig::default()
    });
    assert!(message.contains("not a proxy-wasm module"), "{message}");
}

// ---- start-up and configuration -----------------------------------------------------------

#[test]
fn start_fails_when_on_configure_returns_false_and_shows_the_modules_logs() {
    let message = err_of(probe_config(
        json!({"reject": true, "configure": ["log:policy rejected: missing field"]}),
    ));
    assert!(
        message.contains("proxy_on_configure returned false"),
        "{message}"
    );
    assert!(
        message.contains("policy rejected: missing field"),
        "{message}"
    );
}

#[test]
fn start_fails_when_on_vm_start_returns_false() {
    let message = err_of(HostConfig {
        vm_config: br#"{"reject": true}"#.to_vec(),
        ..probe_config(json!({}))
    });
    assert!(
        message.contains("proxy_on_vm_start returned false"),
        "{message}"
    );
}

#[test]
fn start_fails_when_the_module_traps_while_configuring() {
    // set_property needs a stream; on a root context Envoy answers NotFound and the SDK panics.
    let message = err_of(probe_config(json!({"configure": ["set_property:x=1"]})));
    assert!(
        message.contains("trapped") && message.contains("unexpected status: 1"),
        "{message}"
    );
}

#[test]
fn a_rejected_configuration_keeps_the_old_one_serving() {
    let mut host = probe(json!({"tag": "v1", "trace": true}));
    let shared = host.shared();
    assert!(!host
        .reconfigure(
            json!({"tag": "v2", "reject": true})
                .to_string()
                .into_bytes()
        )
        .expect("no host error"));
    let canary = shared
        .logs()
        .into_iter()
        .filter(|l| l.worker == CANARY_WORKER)
        .collect::<Vec<_>>();
    assert!(
        canary.iter().any(|l| l.message.contains("NACK")),
        "{canary:?}"
    );
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert_eq!(events(&shared, "request_headers")[0]["tag"], "v1");
}

#[test]
fn an_accepted_configuration_gets_a_new_root_in_the_same_vm() {
    let mut host = probe(json!({"tag": "v1"}));
    let shared = host.shared();
    assert!(host
        .reconfigure(json!({"tag": "v2", "trace": true}).to_string().into_bytes())
        .expect("no host error"));
    let logs = shared.logs();
    let starts: Vec<Value> = logs
        .iter()
        .filter(|l| l.worker == 0)
        .filter_map(|l| l.event())
        .filter(|e| e["event"] == "vm_start")
        .collect();
    // on_vm_start runs again for the new root, and statics persist: same VM.
    assert_eq!(
        starts
            .iter()
            .map(|e| e["count"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert_ne!(starts[0]["ctx"], starts[1]["ctx"], "a new root context id");
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert_eq!(events(&shared, "request_headers")[0]["tag"], "v2");
}

#[test]
fn streams_in_flight_keep_their_old_root() {
    let mut host = probe(json!({"tag": "v1", "trace": true}));
    let shared = host.shared();
    let mut old = host.worker(0).open_stream();
    old.request_headers(GET, true);
    let old = old.detach();
    assert!(host
        .reconfigure(json!({"tag": "v2", "trace": true}).to_string().into_bytes())
        .expect("ok"));
    let mut new = host.worker(0).open_stream();
    new.request_headers(GET, true);
    new.response_headers(OK, true);
    drop(new);
    let mut old = host.worker(0).stream(old).expect("still in flight");
    old.response_headers(OK, true);
    assert!(old.ended());
    drop(old);
    let tags: Vec<(String, String)> = events(&shared, "response_headers")
        .iter()
        .map(|e| {
            (
                e["ctx"].to_string(),
                e["tag"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["v2", "v1"]
    );
}

// ---- logs ---------------------------------------------------------------------------------------

#[test]
fn lines_below_the_log_level_are_dropped_and_the_module_can_read_the_level() {
    let mut host = start(HostConfig {
        log_level: LogLevel::Warn,
        ..probe_config(
            json!({"request_headers": ["log_level", "eprint:to stderr", "print:to stdout"]}),
        )
    });
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    let logs = shared.logs();
    assert!(logs.iter().all(|l| l.level >= LogLevel::Warn), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.level == LogLevel::Error && l.message == "to stderr"),
        "stderr is captured at error"
    );

    let mut host = start(HostConfig {
        log_level: LogLevel::Debug,
        ..probe_config(json!({"request_headers": ["log_level", "print:to stdout"]}))
    });
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert_eq!(events(&shared, "log_level")[0]["level"], 1);
    assert!(
        shared
            .logs()
            .iter()
            .any(|l| l.level == LogLevel::Info && l.message == "to stdout"),
        "stdout is captured at info"
    );
}

// ---- traps -----------------------------------------------------------------------------------------

#[test]
fn a_panic_traps_the_vm_and_is_recorded() {
    let mut host = probe(json!({"request_headers": ["panic:boom"]}));
    let mut s = host.worker(0).open_stream();
    let outcome = s.request_headers(GET, true);
    assert!(
        matches!(&outcome, Outcome::Trapped(m) if m.contains("probe panic: boom")),
        "{outcome:?}"
    );
    assert!(s.trap().is_some());
    drop(s);
    assert!(host
        .worker(0)
        .failed()
        .is_some_and(|m| m.contains("probe panic: boom")));
    let traps = host.shared().traps();
    assert_eq!(traps.len(), 1);
    assert!(
        traps[0].starts_with("worker 0: proxy_on_request_headers"),
        "{traps:?}"
    );
}

#[test]
fn after_a_trap_fail_closed_answers_503_until_the_worker_is_reloaded() {
    let mut host = probe(json!({"trace": true, "response_headers": ["panic"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    // The response headers had not gone out: the stream gets the 503.
    assert_eq!(s.downstream_status(), Some(503));
    assert!(s.ended());
    drop(s);

    let mut next = host.worker(0).open_stream();
    assert_eq!(next.request_headers(GET, true), Outcome::NotCalled);
    assert_eq!(next.downstream_status(), Some(503));
    assert_eq!(next.upstream_headers(), None);
    drop(next);

    host.reload_worker(0).expect("a fresh VM starts");
    assert!(host.worker(0).failed().is_none());
    let mut fresh = host.worker(0).open_stream();
    assert_eq!(fresh.request_headers(GET, true), Outcome::Returned(0));
    assert!(fresh.upstream_complete());
}

#[test]
fn after_a_trap_a_stream_whose_headers_went_out_is_reset() {
    let mut host = probe(json!({"response_body": ["panic"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    s.response_headers(OK, false);
    s.response_body(b"x", true);
    assert!(s.reset());
}

#[test]
fn after_a_trap_fail_open_skips_the_filter() {
    let cfg = HostConfig {
        fail_open: true,
        ..probe_config(
            json!({"trace": true, "request_headers": ["req.set:x-touched=1", "panic"], "response_body": ["resp_body.replace:CHANGED"]}),
        )
    };
    let mut host = start(cfg);
    let shared = host.shared();
    let mut s = host.worker(0).open_stream();
    assert!(matches!(s.request_headers(GET, true), Outcome::Trapped(_)));
    assert!(s.upstream_complete(), "the rest passes through");
    s.response_headers(OK, false);
    assert_eq!(s.response_body(b"original", true), Outcome::NotCalled);
    assert_eq!(s.downstream_body(), b"original");
    drop(s);
    let mut next = host.worker(0).open_stream();
    next.request_headers(GET, true);
    assert!(next.upstream_complete());
    drop(next);
    assert_eq!(
        events(&shared, "request_headers").len(),
        1,
        "a failed VM is never called again"
    );
}

#[test]
fn a_trap_in_a_root_callback_fails_the_worker_too() {
    let mut host = start(HostConfig {
        workers: 2,
        ..probe_config(json!({"configure": ["tick_period:10"], "tick": ["panic:tick"]}))
    });
    host.advance(10);
    assert!(host.workers().iter().all(|w| w.failed().is_some()));
    assert_eq!(host.shared().traps().len(), 2);
    // A failed VM gets no more ticks.
    host.advance(100);
    assert_eq!(host.shared().traps().len(), 2);
}

#[test]
fn streams_in_flight_on_a_reloaded_worker_stay_on_the_failed_vm() {
    let mut host = probe(json!({
        "trace": true,
        "request_headers": ["pause"],
        "configure": ["tick_period:10"],
        "tick": ["panic:timer"],
    }));
    let shared = host.shared();
    let mut waiting = host.worker(0).open_stream();
    waiting.request_headers(GET, true);
    let waiting = waiting.detach();
    host.advance(10);
    assert!(host.worker(0).failed().is_some());
    host.reload_worker(0).expect("a fresh VM");
    let mut waiting = host.worker(0).stream(waiting).expect("carried over");
    assert_eq!(waiting.response_headers(OK, true), Outcome::NotCalled);
    waiting.finish();
    assert!(waiting.ended());
    drop(waiting);
    assert!(
        events(&shared, "log").is_empty(),
        "no VM runs on_log for it"
    );
    assert_eq!(host.shared().traps().len(), 1);
}

#[test]
fn a_reconfiguration_reloads_a_failed_worker() {
    let mut host = probe(json!({"tag": "v1", "request_headers": ["panic"]}));
    let mut s = host.worker(0).open_stream();
    s.request_headers(GET, true);
    drop(s);
    assert!(host.worker(0).failed().is_some());
    assert!(host
        .reconfigure(json!({"tag": "v2", "trace": true}).to_string().into_bytes())
        .expect("ok"));
    assert!(host.worker(0).failed().is_none());
    let mut s = host.worker(0).open_stream();
    assert_eq!(s.request_headers(GET, true), Outcome::Returned(0));
}
