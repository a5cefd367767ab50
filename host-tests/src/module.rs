//! `Runtime`: one compiled module with the linker that satisfies its imports.
//!
//! Compiling a filter with Cranelift takes far longer than instantiating it,
//! so compiled modules are cached for the life of the process, keyed by path,
//! size and modification time: every `Host::start` in a test binary after
//! the first is cheap. All modules share one `Engine`.

use crate::log::LogLevel;
use crate::shared::Shared;
use crate::vm::{Plugin, VmState};
use crate::Clock;
use anyhow::{anyhow, Context as _};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use wasmtime::{Config, Engine, Extern, ExternType, FuncType, Linker, Module, Store};

pub(crate) struct Runtime {
    pub engine: Engine,
    pub module: Module,
    pub linker: Linker<VmState>,
    pub path: PathBuf,
}

fn engine() -> anyhow::Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let mut config = Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // `perf record` can then name the module's functions (README, "Benchmarks").
    if std::env::var_os("RHEOSTAT_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine =
        Engine::new(&config).map_err(|e| anyhow!("cannot create the wasmtime engine: {e:#}"))?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// The linker with every host function this host provides.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<VmState>> {
    let mut linker = Linker::new(engine);
    crate::imports::add_to_linker(&mut linker)
        .map_err(|e| anyhow!("cannot define the proxy-wasm imports: {e:#}"))?;
    crate::wasi::add_to_linker(&mut linker)
        .map_err(|e| anyhow!("cannot define the WASI imports: {e:#}"))?;
    Ok(linker)
}

type Key = (PathBuf, u64, Option<SystemTime>);

/// Load (or reuse) the compiled module at `path`.
pub(crate) fn load(path: &Path) -> anyhow::Result<Arc<Runtime>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Runtime>>>> = OnceLock::new();
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "cannot read the module {}: build it first (`make build`, or `cargo build --release --target wasm32-wasip1`)",
            path.display()
        )
    })?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(rt) = crate::shared::lock(cache).get(&key) {
        return Ok(rt.clone());
    }
    let engine = engine()?;
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the module {}", path.display()))?;
    let module = Module::new(&engine, &bytes).map_err(|e| {
        anyhow!(
            "{} is not a valid WebAssembly module: {e:#}",
            path.display()
        )
    })?;
    check_abi(&module, path)?;
    let rt = Arc::new(Runtime {
        linker: linker(&engine)?,
        engine,
        module,
        path: path.to_path_buf(),
    });
    crate::shared::lock(cache).insert(key, rt.clone());
    Ok(rt)
}

/// Envoy refuses modules that export no known ABI version.
fn check_abi(module: &Module, path: &Path) -> anyhow::Result<()> {
    let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
    if exports.contains(&"proxy_abi_version_0_2_1") || exports.contains(&"proxy_abi_version_0_2_0")
    {
        return Ok(());
    }
    if exports.contains(&"proxy_abi_version_0_1_0") {
        anyhow::bail!(
            "{} uses proxy-wasm ABI 0.1.0; this host speaks 0.2.x: rebuild it with a 0.2 SDK",
            path.display()
        );
    }
    anyhow::bail!(
        "{} is not a proxy-wasm module: it exports no proxy_abi_version_0_2_x function (is it built with the proxy-wasm SDK's main! macro?)",
        path.display()
    )
}

/// A store to resolve imports against (nothing is instantiated in it).
fn probe_store(engine: &Engine) -> Store<VmState> {
    let shared = Arc::new(Shared::new(Clock::new(0), String::new(), BTreeMap::new()));
    let plugin = Arc::new(Plugin {
        name: String::new(),
        root_id: String::new(),
        vm_id: String::new(),
        vm_config: Vec::new(),
        fail_open: false,
        buffer_limit: 0,
        log_level: LogLevel::Info,
    });
    Store::new(engine, VmState::new(0, 0, shared, plugin))
}

/// The imports of the module at `path` that this host's linker does not
/// satisfy (missing, or defined with another signature), as
/// `module.name`. Empty for every module the host can run.
pub fn unresolved_imports(path: &Path) -> anyhow::Result<Vec<String>> {
    let rt = load(path)?;
    let mut store = probe_store(&rt.engine);
    let mut missing = Vec::new();
    for import in rt.module.imports() {
        let name = format!("{}.{}", import.module(), import.name());
        match (rt.linker.get_by_import(&mut store, &import), import.ty()) {
            (Some(Extern::Func(f)), ExternType::Func(want)) => {
                if !FuncType::eq(&f.ty(&store), &want) {
                    missing.push(format!("{name} (signature differs)"));
                }
            }
            (Some(_), _) => {}
            (None, _) => missing.push(name),
        }
    }
    Ok(missing)
}

/// Every import of the module at `path`, as `module.name`.
pub fn imports_of(path: &Path) -> anyhow::Result<Vec<String>> {
    let rt = load(path)?;
    Ok(rt
        .module
        .imports()
        .map(|i| format!("{}.{}", i.module(), i.name()))
        .collect())
}

/// Whether the host defines `module.name` (for example `env.proxy_http_call`).
pub fn provides(module: &str, name: &str) -> bool {
    let Ok(engine) = engine() else { return false };
    let Ok(linker) = linker(&engine) else {
        return false;
    };
    let mut store = probe_store(&engine);
    linker.get(&mut store, module, name).is_ok()
}
