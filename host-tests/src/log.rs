//! Log lines the module emits through `proxy_log` or by writing to
//! stdout/stderr, captured instead of printed so tests can assert on them.

use serde::Serialize;

/// proxy-wasm log levels (the numbers are the ABI's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The level for an ABI number; `None` for anything above `Critical`.
    pub fn from_u32(n: u32) -> Option<LogLevel> {
        Some(match n {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// Parse `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// The worker index used for lines logged by the canary VM that
/// [`crate::Host::reconfigure`] starts to validate a configuration.
pub const CANARY_WORKER: usize = usize::MAX;

/// One line the module logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The worker (VM instance) that logged it; [`CANARY_WORKER`] for the canary.
    pub worker: usize,
    /// The level it was logged at (stdout: info, stderr: error).
    pub level: LogLevel,
    /// The text, one trailing newline removed for stdout/stderr.
    pub message: String,
    /// Virtual time, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl LogLine {
    /// The message as a JSON object when it is one with an `"event"` key:
    /// the convention for structured events (audit records, probe reports).
    pub fn event(&self) -> Option<serde_json::Value> {
        let trimmed = self.message.trim_start();
        if !trimmed.starts_with('{') {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        value.get("event")?;
        Some(value)
    }
}
