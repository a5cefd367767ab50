//! The host's integration tests as one binary: each file below was its own
//! test binary, and each linked wasmtime (~50 MB apiece, sixteen of them),
//! which cost CI a minute of linking and more disk than a CI machine can
//! spare. One binary links once; `cargo test -p rheostat-host -- cli::`
//! still runs one file's tests.

mod common;

mod bench_smoke;
mod cli;
mod deploy_kit;
mod drills;
mod filter_controls;
mod filter_detection;
mod filter_hostile;
mod filter_skeleton;
mod host_exchange;
mod host_lifecycle;
mod host_shared;
mod host_streams;
mod host_time;
mod policy_schema;
mod policy_test;
mod serve;
