//! `Clock`: the virtual time every worker reads. Nothing in the host looks at
//! the wall clock, so runs are reproducible; time moves only through
//! [`crate::Host::advance`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Nanoseconds since the Unix epoch, shared by all workers.
#[derive(Debug)]
pub struct Clock {
    start_ns: u64,
    now_ns: AtomicU64,
}

impl Clock {
    /// A clock reading `start_unix_ms`.
    pub fn new(start_unix_ms: u64) -> Clock {
        let start_ns = start_unix_ms.saturating_mul(1_000_000);
        Clock {
            start_ns,
            now_ns: AtomicU64::new(start_ns),
        }
    }

    /// Now, in nanoseconds since the Unix epoch (what
    /// `proxy_get_current_time_nanoseconds` and WASI `clock_time_get` return).
    pub fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    /// Milliseconds since the host started.
    pub fn elapsed_ms(&self) -> u64 {
        (self.now_ns() - self.start_ns) / 1_000_000
    }

    /// Nanoseconds since the host started (the monotonic clock).
    pub fn elapsed_ns(&self) -> u64 {
        self.now_ns() - self.start_ns
    }

    /// Move to `ns` (never backwards).
    pub(crate) fn set_ns(&self, ns: u64) {
        self.now_ns.fetch_max(ns, Ordering::SeqCst);
    }
}
