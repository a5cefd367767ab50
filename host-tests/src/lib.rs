//! A proxy-wasm host on wasmtime that runs a compiled filter the way Envoy
//! does, so that tests, drills and benchmarks can trust what they see.
//!
//! # The nouns
//!
//! - [`Host`] — the Envoy process: one compiled module, N [`Worker`]s, the
//!   state they share, a virtual [`Clock`], configuration changes.
//! - [`Worker`] — one VM instance (own wasmtime `Store`), as one Envoy
//!   worker thread has. `Send`: drive each on its own thread.
//! - [`Stream`] — one HTTP stream on a worker, driven callback by callback
//!   through an emulation of Envoy's filter manager; or use
//!   [`Worker::run_exchange`] for a whole recorded exchange.
//! - [`SharedHandle`] — shared data (with Envoy's CAS rules), queues,
//!   metrics, captured logs, HTTP calls and traps.
//! - [`Cluster`] — a scripted upstream for `proxy_http_call`.
//!
//! # Example
//!
//! ```no_run
//! use rheostat_host::{Host, HostConfig, module_path};
//!
//! let mut host = Host::start(HostConfig {
//!     module: module_path("rheostat_probe"),
//!     plugin_config: br#"{"response_body": ["resp_body.replace:XYZ"]}"#.to_vec(),
//!     ..HostConfig::default()
//! })?;
//! let mut stream = host.worker(0).open_stream();
//! stream.request_headers(&[(":method", "GET"), (":path", "/"), (":authority", "x")], true);
//! stream.response_headers(&[(":status", "200")], false);
//! stream.response_body(b"hello", true);
//! assert_eq!(stream.downstream_body(), b"XYZ");
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Every semantic reproduced, with its source, and every known departure
//! from Envoy is listed in `docs/host.md`.

pub mod abi;
pub mod bench;
mod clock;
mod cluster;
pub mod drill;
pub mod exchange;
mod filter_manager;
mod headers;
pub mod host;
mod imports;
mod log;
mod metrics;
mod module;
pub mod oci;
pub mod policy_test;
mod properties;
mod queue;
pub mod replay;
pub mod rng;
pub mod serve;
mod shared;
mod shared_data;
mod stream;
mod vm;
mod wasi;
mod worker;

pub use clock::Clock;
pub use cluster::{CallOutcome, CallRequest, Cluster, RecordedCall};
pub use exchange::{Chunking, Exchange, ExchangeResult};
pub use headers::HeaderMap;
pub use host::{Host, HostConfig, DEFAULT_BUFFER_LIMIT, DEFAULT_START_UNIX_MS};
pub use imports::ENV_FUNCTIONS;
pub use log::{LogLevel, LogLine, CANARY_WORKER};
pub use metrics::{Histogram, MetricKind};
pub use module::{imports_of, provides, unresolved_imports};
pub use properties::{DESTINATION_ADDRESS, DESTINATION_PORT, SOURCE_ADDRESS, SOURCE_PORT};
pub use shared::SharedHandle;
pub use shared_data::SharedData;
pub use stream::{ActionRecord, Callback, Direction, Outcome, Stream, StreamId};
pub use worker::Worker;

use std::path::PathBuf;

/// Where the workspace puts a module built with
/// `cargo build --release --target wasm32-wasip1`:
/// `<target>/wasm32-wasip1/release/<name>.wasm`, with `<target>` from
/// `CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn module_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target
        .join("wasm32-wasip1")
        .join("release")
        .join(format!("{name}.wasm"))
}
