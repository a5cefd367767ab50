//! `Host`: the process Envoy would be — one compiled module, N workers
//! (VM instances), the process-wide state they share, the virtual clock,
//! and configuration changes.

use crate::cluster::Cluster;
use crate::log::{LogLevel, CANARY_WORKER};
use crate::module;
use crate::shared::{Shared, SharedHandle};
use crate::vm::Plugin;
use crate::worker::Worker;
use crate::Clock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// 2026-01-01T00:00:00Z: the default start of virtual time.
pub const DEFAULT_START_UNIX_MS: u64 = 1_767_225_600_000;

/// Envoy's default per-connection buffer limit (1 MiB).
pub const DEFAULT_BUFFER_LIMIT: usize = 1 << 20;

/// How to run a module, in the terms of Envoy's Wasm filter configuration.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The `.wasm` file.
    pub module: PathBuf,
    /// VM instances (Envoy: one per worker thread). Default 1.
    pub workers: usize,
    /// The plugin configuration (`proxy_on_configure`, buffer type 7).
    pub plugin_config: Vec<u8>,
    /// The VM configuration (`proxy_on_vm_start`, buffer type 6).
    pub vm_config: Vec<u8>,
    /// The plugin's name (`plugin_name` property).
    pub plugin_name: String,
    /// The root id (`plugin_root_id` property).
    pub root_id: String,
    /// The VM id: shared data and queues are per vm_id.
    pub vm_id: String,
    /// Envoy's `fail_open`: after a trap the filter is skipped instead of
    /// failing streams with 503.
    pub fail_open: bool,
    /// Per-stream buffer limit (Envoy's `per_connection_buffer_limit_bytes`).
    pub buffer_limit: usize,
    /// Clusters `proxy_http_call` may use.
    pub clusters: BTreeMap<String, Cluster>,
    /// Virtual clock start, milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// Envoy's log level: lines below it are dropped, and
    /// `proxy_get_log_level` returns it. Default info.
    pub log_level: LogLevel,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            module: PathBuf::new(),
            workers: 1,
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            plugin_name: "rheostat".into(),
            root_id: "rheostat".into(),
            vm_id: "rheostat".into(),
            fail_open: false,
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            clusters: BTreeMap::new(),
            start_unix_ms: DEFAULT_START_UNIX_MS,
            log_level: LogLevel::Info,
        }
    }
}

/// A running module: its workers and what they share.
pub struct Host {
    workers: Vec<Worker>,
    shared: Arc<Shared>,
    plugin: Arc<Plugin>,
    plugin_config: Arc<Vec<u8>>,
}

impl Host {
    /// Compile the module (once per process), then start `workers` VMs: each
    /// runs `_initialize`, creates its root context and runs
    /// `proxy_on_vm_start` and `proxy_on_configure`. Fails — as Envoy refuses
    /// to start — if any of them returns false or traps; the error carries
    /// what the module logged.
    pub fn start(cfg: HostConfig) -> anyhow::Result<Host> {
        if cfg.workers == 0 {
            anyhow::bail!("a host needs at least one worker (HostConfig.workers is 0)");
        }
        let runtime = module::load(&cfg.module)?;
        let shared = Arc::new(Shared::new(
            Clock::new(cfg.start_unix_ms),
            cfg.vm_id.clone(),
            cfg.clusters.clone(),
        ));
        let plugin = Arc::new(Plugin {
            name: cfg.plugin_name.clone(),
            root_id: cfg.root_id.clone(),
            vm_id: cfg.vm_id.clone(),
            vm_config: cfg.vm_config.clone(),
            fail_open: cfg.fail_open,
            buffer_limit: cfg.buffer_limit,
            log_level: cfg.log_level,
        });
        let config = Arc::new(cfg.plugin_config.clone());
        let mut workers = Vec::with_capacity(cfg.workers);
        for i in 0..cfg.workers {
            workers.push(Worker::boot(
                i,
                0,
                runtime.clone(),
                shared.clone(),
                plugin.clone(),
                config.clone(),
                None,
            )?);
        }
        Ok(Host {
            workers,
            shared,
            plugin,
            plugin_config: config,
        })
    }

    /// Push a new plugin configuration, as an xDS update would. Envoy first
    /// validates it in a fresh canary VM: if that VM rejects it (or traps)
    /// the update is NACKed — this returns `Ok(false)` and every worker keeps
    /// serving the old configuration. Otherwise each worker creates a new
    /// root context in its *existing* VM (statics persist): on_context_create,
    /// on_vm_start, on_configure. Streams in flight keep their old root,
    /// which is deleted after them. A worker whose VM had failed gets a
    /// fresh VM with the new configuration.
    pub fn reconfigure(&mut self, plugin_config: Vec<u8>) -> anyhow::Result<bool> {
        let config = Arc::new(plugin_config);
        let runtime = self.workers[0].runtime();
        let canary = Worker::boot(
            CANARY_WORKER,
            0,
            runtime,
            self.shared.clone(),
            self.plugin.clone(),
            config.clone(),
            None,
        );
        match canary {
            Ok(canary) => {
                drop(canary);
                crate::shared::lock(&self.shared.inbox).remove(&CANARY_WORKER);
            }
            Err(e) => {
                crate::shared::lock(&self.shared.logs).push(crate::log::LogLine {
                    worker: CANARY_WORKER,
                    level: LogLevel::Warn,
                    message: format!("configuration rejected (NACK): {e}"),
                    at_ms: self.shared.clock.now_ms(),
                });
                return Ok(false);
            }
        }
        self.plugin_config = config.clone();
        for i in 0..self.workers.len() {
            if self.workers[i].failed().is_some() {
                self.reload_worker(i)?;
            } else {
                self.workers[i].reconfigure(config.clone());
                self.workers[i].settle();
            }
        }
        Ok(true)
    }

    /// The workers.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// The workers, to drive them (each may go to its own thread).
    pub fn workers_mut(&mut self) -> &mut [Worker] {
        &mut self.workers
    }

    /// Worker `i`.
    ///
    /// # Panics
    /// If there is no worker `i`.
    pub fn worker(&mut self, i: usize) -> &mut Worker {
        let n = self.workers.len();
        self.workers
            .get_mut(i)
            .unwrap_or_else(|| panic!("no worker {i}: this host has {n}"))
    }

    /// Move virtual time forward by `ms`, firing what falls due on every
    /// worker in time order (ties: lower worker index first): ticks — one
    /// per period, several if `ms` spans several — and HTTP call answers.
    pub fn advance(&mut self, ms: u64) {
        let target = self
            .shared
            .clock
            .now_ns()
            .saturating_add(ms.saturating_mul(1_000_000));
        loop {
            let mut next: Option<(u64, usize)> = None;
            for (i, w) in self.workers.iter().enumerate() {
                if let Some(t) = w.next_event_ns() {
                    if t <= target && next.is_none_or(|(best, _)| t < best) {
                        next = Some((t, i));
                    }
                }
            }
            let Some((t, i)) = next else { break };
            self.shared.clock.set_ns(t);
            self.workers[i].fire_due(t);
        }
        self.shared.clock.set_ns(target);
        for w in &mut self.workers {
            w.settle();
        }
    }

    /// Virtual now, milliseconds since the Unix epoch (it starts at
    /// `HostConfig::start_unix_ms`).
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// Virtual milliseconds since the host started.
    pub fn elapsed_ms(&self) -> u64 {
        self.shared.clock.elapsed_ms()
    }

    /// The process-wide state: shared data, metrics, logs, HTTP calls, traps.
    pub fn shared(&self) -> SharedHandle {
        SharedHandle(self.shared.clone())
    }

    /// Replace worker `i`'s VM with a fresh one running the current
    /// configuration (Envoy's FAIL_RELOAD). Streams in flight on the old VM
    /// stay on it, failed.
    pub fn reload_worker(&mut self, i: usize) -> anyhow::Result<()> {
        let n = self.workers.len();
        let old = self
            .workers
            .get_mut(i)
            .ok_or_else(|| anyhow::anyhow!("no worker {i}: this host has {n}"))?;
        let inherited = old.inherit();
        let generation = old.generation() + 1;
        let fresh = Worker::boot(
            i,
            generation,
            old.runtime(),
            self.shared.clone(),
            self.plugin.clone(),
            self.plugin_config.clone(),
            Some(inherited),
        )?;
        self.workers[i] = fresh;
        Ok(())
    }
}
