//! The proxy-wasm adapter: translates Envoy's callbacks into engine calls and
//! acts on what the engine returns. Nothing here decides policy.

mod effects;
mod host;
mod http;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Our own lines go through `host::log`; the SDK's `log` facade is only
    // used by the SDK itself, for its warnings.
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}
