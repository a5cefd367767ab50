//! # Rheostat: a guardrail engine for LLM traffic
//!
//! Rheostat sits in the data path between an application and an LLM
//! provider. It inspects requests and responses (including streamed SSE),
//! turns what it finds into findings with a category and a severity, and
//! contains incidents with graduated controls rather than one kill switch.
//!
//! The crate is layered so the engine never knows its host:
//! - [`policy`] parses and validates the operator's JSON configuration,
//!   naming the JSON path of every error.
//! - [`ledger`] keeps counters in fixed time windows in a [`ledger::SharedStore`]
//!   with compare-and-swap, so every worker of a proxy sees the same numbers.
//! - [`lease`] elects one worker per period for periodic work.
//! - [`audit`] builds the structured events the adapters log.
//! - `proxy` (only on `wasm32-wasip1`) adapts proxy-wasm callbacks to engine calls.
//!
//! The engine decides and returns data; adapters act on it. That keeps every
//! decision testable natively and the adapters thin.

pub mod audit;
pub mod controls;
pub mod decompress;
pub mod engine;
pub mod finding;
pub mod lease;
pub mod ledger;
pub mod policy;

pub mod codec;
pub mod detect;
pub mod format;
pub mod grounding;
pub mod holdback;
pub mod injection;
pub mod leak;
pub mod links;
pub mod literals;
pub mod normalize;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod proxy;
pub mod refusal;
pub mod sql;
pub mod sse;
pub mod stream;
pub mod topics;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
