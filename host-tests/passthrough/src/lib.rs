//! The smallest proxy-wasm HTTP filter the SDK allows: every callback
//! continues. Benchmarks subtract its cost to show what Rheostat adds.
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PassthroughRoot) });
}}

struct PassthroughRoot;
impl Context for PassthroughRoot {}
impl RootContext for PassthroughRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Passthrough))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Passthrough;
impl Context for Passthrough {}
impl HttpContext for Passthrough {}
