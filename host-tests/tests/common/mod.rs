//! Helpers shared by the host's behaviour tests: locating the built modules
//! and starting the probe with a configuration written in plain sight.
#![allow(dead_code)]

pub mod raw_module;

use rheostat_host::{Host, HostConfig, SharedHandle};
use serde_json::Value;
use std::path::PathBuf;

/// A module built by `make build`, or a clear failure saying so.
pub fn module(name: &str) -> PathBuf {
    let path = rheostat_host::module_path(name);
    assert!(
        path.exists(),
        "{} is missing: run `make build` first (or `cargo build --release --target wasm32-wasip1 -p rheostat-probe -p rheostat-passthrough`)",
        path.display()
    );
    path
}

/// A host config running the probe with this plugin configuration.
pub fn probe_config(config: Value) -> HostConfig {
    HostConfig {
        module: module("rheostat_probe"),
        plugin_config: config.to_string().into_bytes(),
        ..HostConfig::default()
    }
}

/// Start the probe with this plugin configuration on one worker.
pub fn probe(config: Value) -> Host {
    start(probe_config(config))
}

pub fn start(cfg: HostConfig) -> Host {
    match Host::start(cfg) {
        Ok(h) => h,
        Err(e) => panic!("the host did not start: {e:#}"),
    }
}

/// The probe's events of one kind, in order.
pub fn events(shared: &SharedHandle, kind: &str) -> Vec<Value> {
    shared
        .events()
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

/// A GET request's headers.
pub const GET: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/v1/models"),
    (":authority", "llm.local"),
    (":scheme", "http"),
];
/// A POST request's headers.
pub const POST: &[(&str, &str)] = &[
    (":method", "POST"),
    (":path", "/v1/chat/completions"),
    (":authority", "llm.local"),
    (":scheme", "http"),
    ("content-type", "application/json"),
];
pub const OK: &[(&str, &str)] = &[(":status", "200"), ("content-type", "text/plain")];
