//! `rheostat`: the command line over the host. A thin layer: parsing
//! arguments, reading files and printing; the work lives in the library.

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rheostat_filter::engine::Engine;
use rheostat_host::bench;
use rheostat_host::exchange::Chunking;
use rheostat_host::host::{Host, HostConfig};
use rheostat_host::replay;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rheostat",
    version,
    about = "Rheostat: guardrails for LLM traffic, run through the real filter module"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy file: exit 0 with a summary, or 2 with the JSON path of the problem.
    Check { policy: PathBuf },
    /// Serve the filter locally in front of an upstream, for trials with any client.
    Serve {
        /// The policy given to the filter.
        #[arg(long)]
        policy: PathBuf,
        /// Plain-HTTP upstream, e.g. http://127.0.0.1:8000 (the mock in envoy/mock-llm).
        #[arg(long)]
        upstream: String,
        #[arg(long, default_value = "127.0.0.1:10000")]
        listen: String,
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Replay recorded exchanges (JSONL) through the module; prints one JSON result per line.
    Replay {
        /// The policy given to the filter as its plugin configuration.
        #[arg(long)]
        policy: PathBuf,
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
        /// Worker VMs sharing one shared-data store; exchanges go round-robin.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Split bodies into chunks of this many bytes (default: one chunk).
        #[arg(long, conflicts_with = "chunking")]
        chunk_size: Option<usize>,
        /// `random`: chunk sizes from 1 to 64 bytes, reproducible with --seed.
        #[arg(long)]
        chunking: Option<ChunkingMode>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// One readable line per exchange instead of JSON.
        #[arg(long)]
        summary: bool,
        exchanges: PathBuf,
    },
    /// Benchmark the filter: the engine natively and inside the module, SSE, per-exchange
    /// overhead, time to first token, memory per stream, scaling, a regex baseline.
    Bench {
        /// Print one JSON object (keys documented in README.md, "Benchmarks") instead of the table.
        #[arg(long)]
        json: bool,
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
        /// The pass-through module the overhead is measured against.
        #[arg(long)]
        passthrough: Option<PathBuf>,
        /// The policy to measure (default: the default policy, `{}`).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Tiny inputs and one short run per figure: checks the machinery, not the speed.
        #[arg(long)]
        quick: bool,
    },
    /// Package the module as an OCI image layout (the `oci` and `compat` Wasm
    /// image variants) that Istio and Envoy Gateway pull once it is in a registry.
    Oci {
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
        /// The layout directory (created; an old layout there is replaced).
        #[arg(long, default_value = rheostat_host::oci::DEFAULT_OUT)]
        out: PathBuf,
        /// The image version annotation (default: the crate version).
        #[arg(long)]
        tag: Option<String>,
    },
    /// Run policy test cases: exchanges with the findings, outcome, level and
    /// text they must produce (README, "Policy tests"). Exit 1 if any fails.
    Test {
        /// A directory searched for *.json / *.jsonl case files, or one case file.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
        /// Also write the results as JUnit XML to this file.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Print the policy's JSON Schema (docs/policy.schema.json), derived from the filter's types.
    Schema,
    /// Run incident drills (README, "Drills"): timelines and verdicts; exit 1 if an expectation fails.
    Drill {
        /// Drill files or names in examples/drills/ (none: every drill there).
        drills: Vec<String>,
        /// The filter module (default: the one `make build` makes).
        #[arg(long)]
        module: Option<PathBuf>,
        /// Write a post-incident review (Markdown) and a chart (SVG) per drill here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Print machine-readable results instead of timelines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ChunkingMode {
    Random,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { policy } => check(&policy),
        Command::Serve {
            policy,
            upstream,
            listen,
            module,
        } => std::fs::read(&policy)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", policy.display()))
            .and_then(|bytes| {
                let module = replay::resolve_module(module.as_deref())?;
                rheostat_host::serve::serve(&rheostat_host::serve::ServeOptions {
                    module: &module,
                    policy: bytes,
                    listen: &listen,
                    upstream: &upstream,
                })
            })
            .map_or_else(fail, |()| ExitCode::SUCCESS),
        Command::Drill {
            drills,
            module,
            report,
            json,
        } => replay::resolve_module(module.as_deref())
            .and_then(|m| rheostat_host::drill::main(&drills, &m, report.as_deref(), json))
            .unwrap_or_else(fail),
        Command::Schema => {
            let schema = rheostat_filter::policy::Policy::json_schema();
            match serde_json::to_string_pretty(&schema) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.into()),
            }
        }
        Command::Replay {
            policy,
            module,
            workers,
            chunk_size,
            chunking,
            seed,
            summary,
            exchanges,
        } => {
            let chunking = match (chunk_size, chunking) {
                (Some(0), _) => return fail(anyhow::anyhow!("--chunk-size must be at least 1")),
                (Some(n), _) => Chunking::Fixed(n),
                (None, Some(ChunkingMode::Random)) => Chunking::Random { seed },
                (None, None) => Chunking::Whole,
            };
            match run_replay(
                &policy,
                module.as_deref(),
                workers,
                &chunking,
                summary,
                &exchanges,
            ) {
                Ok(code) => code,
                Err(e) => fail(e),
            }
        }
        Command::Oci { module, out, tag } => {
            rheostat_host::oci::main(module.as_deref(), &out, tag).unwrap_or_else(fail)
        }
        Command::Test {
            path,
            module,
            junit,
        } => replay::resolve_module(module.as_deref())
            .and_then(|m| rheostat_host::policy_test::main(&path, &m, junit.as_deref()))
            .unwrap_or_else(fail),
        Command::Bench {
            json,
            module,
            passthrough,
            policy,
            quick,
        } => {
            let (module, passthrough, policy) =
                (module.as_deref(), passthrough.as_deref(), policy.as_deref());
            match run_bench(json, module, passthrough, policy, quick) {
                Ok(code) => code,
                Err(e) => fail(e),
            }
        }
    }
}

fn fail(error: anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(1)
}

/// Reads and compiles a policy exactly as the filter's `on_configure` does;
/// an invalid one is reported with its JSON path and exit code 2.
fn load_policy(path: &std::path::Path) -> Result<Result<(Vec<u8>, Engine), ExitCode>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read policy {}", path.display()))?;
    match Engine::from_json(&bytes) {
        Ok(engine) => Ok(Ok((bytes, engine))),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(Err(ExitCode::from(2)))
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match load_policy(path) {
        Ok(Ok((_, engine))) => {
            println!("ok: {}", engine.summary());
            ExitCode::SUCCESS
        }
        Ok(Err(code)) => code,
        Err(e) => fail(e),
    }
}

fn run_replay(
    policy: &std::path::Path,
    module: Option<&std::path::Path>,
    workers: usize,
    chunking: &Chunking,
    summary: bool,
    exchanges: &std::path::Path,
) -> Result<ExitCode> {
    let (policy_bytes, _) = match load_policy(policy)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let module = replay::resolve_module(module)?;
    let exchanges = replay::read_exchanges(exchanges)?;
    let mut host = Host::start(HostConfig {
        module,
        workers: workers.max(1),
        plugin_config: policy_bytes,
        ..HostConfig::default()
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for result in replay::replay(&mut host, &exchanges, chunking) {
        if summary {
            writeln!(out, "{}", replay::summary_line(&result))?;
        } else {
            serde_json::to_writer(&mut out, &result)?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rheostat bench`: the work is in `rheostat_host::bench`; progress goes to stderr.
fn run_bench(
    json: bool,
    module: Option<&std::path::Path>,
    passthrough: Option<&std::path::Path>,
    policy: Option<&std::path::Path>,
    quick: bool,
) -> Result<ExitCode> {
    let filter = replay::resolve_module(module)?;
    let passthrough = passthrough
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| replay::built_module("rheostat_passthrough"));
    let mut config = if quick {
        bench::BenchConfig::smoke(filter, passthrough)
    } else {
        bench::BenchConfig::full(filter, passthrough)
    };
    if let Some(path) = policy {
        config.policy = match load_policy(path)? {
            Ok((bytes, _)) => bytes,
            Err(code) => return Ok(code),
        };
    }
    let report = bench::run(&config, &mut |step| eprintln!("bench: {step}"))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}
