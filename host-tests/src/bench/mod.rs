//! `rheostat bench`: how fast the engine scans, natively and inside the
//! module under the host, what a stream costs in latency and memory, how
//! cost scales, and how it compares with the per-pattern regex scanning
//! gateways typically do.
//!
//! Every figure is the median of several timed runs, and every figure of a
//! report is measured in the same process run, so ratios between them
//! (module vs native, filter vs pass-through, engine vs baseline) compare
//! like with like on whatever the machine was doing at the time.
//!
//! The inputs are generated ([`corpus`]): deterministic, seeded, no
//! network and no data files. What each figure means, and the key it has
//! in `--json`, is documented in README.md ("Benchmarks").
//!
//! ```no_run
//! use rheostat_host::bench::{run, BenchConfig};
//! use rheostat_host::replay::built_module;
//!
//! let config = BenchConfig::full(built_module("rheostat_filter"), built_module("rheostat_passthrough"));
//! let report = run(&config, &mut |line| eprintln!("{line}"))?;
//! println!("{}", report.table());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod baseline;
pub mod corpus;
pub mod measure;
pub mod native;
pub mod report;
pub mod wasm;

pub use report::Report;

use anyhow::{bail, Context as _, Result};
use corpus::{Rng, StreamMeta};
use measure::{mb_per_s, median, percentile, seconds_per_call, seconds_per_call_pair, Timing};
use native::Native;
use report::{ExchangeFigures, LiteralPoint, ScalePoint, SseFigure};
use rheostat_filter::codec::Provider;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to measure and how hard. [`BenchConfig::full`] is `make bench`;
/// [`BenchConfig::smoke`] is small enough for a test.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The filter module (`rheostat_filter.wasm`).
    pub filter_module: PathBuf,
    /// The do-nothing module the overhead is measured against.
    pub passthrough_module: PathBuf,
    /// The policy every figure uses (the default policy: `{}`).
    pub policy: Vec<u8>,
    /// Seed of every generated corpus.
    pub seed: u64,
    /// Answer text in the buffered body (and the baseline's text).
    pub corpus_bytes: usize,
    /// Upstream chunk size for buffered bodies (Envoy reads bodies in chunks).
    pub body_chunk: usize,
    /// Answer text streamed in each SSE throughput stream (one token per frame).
    pub sse_text_bytes: usize,
    /// SSE chunk sizes measured.
    pub sse_chunks: Vec<usize>,
    /// Timed runs per figure and their minimum length.
    pub timing: Timing,
    /// Per-exchange latency: runs, and exchanges of each module per run.
    pub exchange_runs: usize,
    pub exchanges_per_run: usize,
    /// Request size and answer frames of the typical chat exchange.
    pub exchange_request_bytes: usize,
    pub exchange_frames: usize,
    /// Concurrent open streams for the memory figure.
    pub streams: usize,
    /// Answer text (bytes) of the frames pushed into each of those streams:
    /// enough to fill the hold-back window.
    pub stream_fill_text_bytes: usize,
    /// Answer text sizes for the length scaling.
    pub length_sizes: Vec<usize>,
    /// Blocked-term counts for the literal scaling, and the text scanned.
    pub literal_counts: Vec<usize>,
    pub literal_corpus_bytes: usize,
}

impl BenchConfig {
    /// The full suite (`make bench`): about a minute on an idle 2-core machine.
    pub fn full(filter_module: PathBuf, passthrough_module: PathBuf) -> BenchConfig {
        BenchConfig {
            filter_module,
            passthrough_module,
            policy: b"{}".to_vec(),
            seed: 0x5eed,
            corpus_bytes: 1 << 20,
            body_chunk: 16 << 10,
            sse_text_bytes: 16 << 10,
            sse_chunks: vec![256, 1024, 16 << 10],
            timing: Timing {
                runs: 5,
                min_run: Duration::from_millis(100),
                max_figure: Duration::from_secs(3),
            },
            exchange_runs: 5,
            exchanges_per_run: 400,
            exchange_request_bytes: 2048,
            exchange_frames: 100,
            streams: 1000,
            stream_fill_text_bytes: 1024,
            length_sizes: vec![1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20],
            literal_counts: vec![10, 100, 1000, 10_000],
            literal_corpus_bytes: 256 << 10,
        }
    }

    /// Tiny sizes and one short run per figure: checks the machinery, not speed.
    pub fn smoke(filter_module: PathBuf, passthrough_module: PathBuf) -> BenchConfig {
        BenchConfig {
            corpus_bytes: 16 << 10,
            body_chunk: 4 << 10,
            sse_text_bytes: 1 << 10,
            sse_chunks: vec![256, 1024],
            timing: Timing {
                runs: 1,
                min_run: Duration::from_millis(1),
                max_figure: Duration::from_secs(1),
            },
            exchange_runs: 1,
            exchanges_per_run: 5,
            exchange_frames: 20,
            streams: 20,
            length_sizes: vec![1 << 10, 10 << 10, 20 << 10],
            literal_counts: vec![10, 100],
            literal_corpus_bytes: 8 << 10,
            ..BenchConfig::full(filter_module, passthrough_module)
        }
    }
}

/// Assumed bytes per token for the time-to-first-token figure.
pub const BYTES_PER_TOKEN: f64 = 4.0;

/// Runs every measurement; `progress` gets one line per step.
pub fn run(config: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let started = Instant::now();
    let progress = &mut |step: &str| {
        progress(&format!(
            "[{:5.1} s] {step}",
            started.elapsed().as_secs_f64()
        ))
    };
    for (what, path) in [
        ("filter", &config.filter_module),
        ("pass-through", &config.passthrough_module),
    ] {
        if !path.exists() {
            bail!(
                "the {what} module {} does not exist: run `make build` first",
                path.display()
            );
        }
    }
    let timing = config.timing;
    let mut report = Report {
        runs: timing.runs,
        min_run_ms: timing.min_run.as_secs_f64() * 1e3,
        seed: config.seed,
        ..Report::default()
    };
    report.module_bytes = std::fs::metadata(&config.filter_module)?.len();
    report.passthrough_module_bytes = std::fs::metadata(&config.passthrough_module)?.len();

    // The buffered-body exchange asks without PII, so its findings are the answer's alone.
    let request = corpus::chat_request(
        config.seed + 1,
        config.exchange_request_bytes,
        false,
        false,
        false,
    );
    let stream_request = corpus::chat_request(
        config.seed + 1,
        config.exchange_request_bytes,
        true,
        false,
        true,
    );
    let anthropic_request = corpus::chat_request(
        config.seed + 1,
        config.exchange_request_bytes,
        true,
        true,
        true,
    );
    let native = Native::new(&config.policy, &stream_request, &anthropic_request)?;
    let mut rng = Rng::new(config.seed);
    let openai_meta = StreamMeta::openai(&mut rng);
    let anthropic_meta = StreamMeta::anthropic(&mut rng);

    // ---- buffered bodies: native, module, pass-through, baseline ----
    // Figures compared with each other are measured alternately, with
    // room for a few runs of a slow call.
    let pair_timing = Timing {
        max_figure: timing.max_figure * 2,
        ..timing
    };
    let (text, planted) = corpus::answer_text(config.seed, config.corpus_bytes);
    let body = corpus::openai_json(&openai_meta, &text);
    report.body_bytes = body.len();
    report.content_bytes = text.len();
    report.planted_items = planted.items;
    let (findings, blocked) = native.body(Provider::OpenAiChat, &body);
    if blocked {
        bail!("the default policy blocked the benchmark corpus: the figures would measure the block path");
    }
    report.native_findings = findings;

    progress("body scan: per-pattern regex baseline");
    let baseline = baseline::Baseline::new()?;
    report.baseline_patterns = baseline.len();
    report.baseline_matches = baseline.scan(&text);
    let baseline_s = seconds_per_call(timing, || baseline.scan(&text));
    report.baseline_mb_s = mb_per_s(text.len(), baseline_s);

    progress("body scan: native engine and the module under the host, alternating");
    let body_for_native = body.clone();
    let body_text = String::from_utf8(body).context("the generated body is not UTF-8")?;
    let body_exchange = wasm::exchange(
        Provider::OpenAiChat,
        &request,
        "application/json",
        body_text,
        None,
    );
    let chunking = crate::exchange::Chunking::Fixed(config.body_chunk);
    let mut filter = wasm::start(&config.filter_module, &config.policy)?;
    let shared = filter.shared();
    let first = wasm::run_checked(filter.worker(0), &body_exchange, &chunking)?;
    report.wasm_findings = first.findings.len();
    report.wasm_outcome = wasm::outcome(&first).unwrap_or_default();
    let worker = filter.worker(0);
    let (native_s, wasm_s) = seconds_per_call_pair(
        pair_timing,
        || native.body(Provider::OpenAiChat, &body_for_native),
        || {
            let r = worker.run_exchange(&body_exchange, &chunking);
            shared.take_logs();
            r.response.body_text.len()
        },
    );
    report.native_mb_s = mb_per_s(text.len(), native_s);
    report.wasm_mb_s = mb_per_s(text.len(), wasm_s);
    report.wasm_vs_native = ratio(report.wasm_mb_s, report.native_mb_s);
    report.baseline_ratio = ratio(report.native_mb_s, report.baseline_mb_s);

    let mut pass = wasm::start(&config.passthrough_module, &config.policy)?;
    let pass_shared = pass.shared();
    wasm::run_checked(pass.worker(0), &body_exchange, &chunking)?;
    let pass_worker = pass.worker(0);
    let pass_s = seconds_per_call(timing, || {
        let r = pass_worker.run_exchange(&body_exchange, &chunking);
        pass_shared.take_logs();
        r.response.body_text.len()
    });
    report.passthrough_body_mb_s = mb_per_s(text.len(), pass_s);
    drop(body_exchange);

    // ---- SSE streams ----
    let (sse_text, _) = corpus::answer_text(config.seed + 2, config.sse_text_bytes);
    let sse_tokens = corpus::tokens(&sse_text);
    for (provider, name) in [
        (Provider::OpenAiChat, "openai"),
        (Provider::Anthropic, "anthropic"),
    ] {
        let frames = match provider {
            Provider::Anthropic => corpus::anthropic_sse(&anthropic_meta, &sse_tokens),
            _ => corpus::openai_sse(&openai_meta, &sse_tokens),
        };
        let stream = frames.concat();
        let req = if provider == Provider::Anthropic {
            &anthropic_request
        } else {
            &stream_request
        };
        let ex = wasm::exchange(provider, req, "text/event-stream", stream.clone(), None);
        for &chunk in &config.sse_chunks {
            progress(&format!("SSE: {name}, {chunk}-byte chunks"));
            let chunking = crate::exchange::Chunking::Fixed(chunk);
            let worker = filter.worker(0);
            wasm::run_checked(worker, &ex, &chunking)?;
            let (native_s, wasm_s) = seconds_per_call_pair(
                pair_timing,
                || native.stream(provider, stream.as_bytes(), chunk),
                || {
                    let r = worker.run_exchange(&ex, &chunking);
                    shared.take_logs();
                    r.response.body_text.len()
                },
            );
            report.sse.push(SseFigure {
                provider: name.into(),
                chunk_bytes: chunk,
                frames: frames.len(),
                stream_bytes: stream.len(),
                native_frames_per_s: frames.len() as f64 / native_s,
                native_mb_s: mb_per_s(stream.len(), native_s),
                wasm_frames_per_s: frames.len() as f64 / wasm_s,
                wasm_mb_s: mb_per_s(stream.len(), wasm_s),
            });
        }
    }
    // The headline SSE figure: OpenAI through the module at 1 KiB chunks
    // (or the nearest chunk size measured).
    if let Some(f) = report
        .sse
        .iter()
        .filter(|f| f.provider == "openai")
        .min_by_key(|f| f.chunk_bytes.abs_diff(1024))
    {
        report.sse_frames_per_s = f.wasm_frames_per_s;
        report.sse_mb_s = f.wasm_mb_s;
        report.sse_native_frames_per_s = f.native_frames_per_s;
    }

    // ---- what bounds the scan: its parts alone, natively ----
    // Every default-policy text scan starts with the literal pass, and every
    // stream frame pays for the hold-back's window scans; timed alone, they
    // are ceilings the full figures above cannot pass.
    progress("limits: the literal pass and the hold-back's scanning alone");
    let literals = native.engine.response_literals();
    report.literal_patterns = literals.pattern_count();
    let literal_pass_s = seconds_per_call(timing, || literals.scan_text(&text, false).hits.len());
    report.literal_pass_mb_s = mb_per_s(text.len(), literal_pass_s);
    let normalized = rheostat_filter::normalize::normalize(&text).text;
    let mut hits = Vec::new();
    let automaton_s = seconds_per_call(timing, || {
        hits.clear();
        literals.scan(&normalized, &mut hits)
    });
    report.automaton_mb_s = mb_per_s(normalized.len(), automaton_s);
    let token_bytes: usize = sse_tokens.iter().map(|t| t.len()).sum();
    let (_, read) = native.holdback(Provider::OpenAiChat, &sse_tokens);
    report.holdback_reads_per_byte = read as f64 / token_bytes.max(1) as f64;
    let holdback_s = seconds_per_call(timing, || {
        native.holdback(Provider::OpenAiChat, &sse_tokens)
    });
    report.holdback_frames_per_s = sse_tokens.len() as f64 / holdback_s;

    // ---- per-exchange overhead: filter vs pass-through ----
    progress("per-exchange latency: filter vs pass-through");
    let (answer, _) = corpus::answer_text(config.seed + 3, config.exchange_frames * 8);
    let answer_tokens: Vec<&str> = corpus::tokens(&answer)
        .into_iter()
        .take(config.exchange_frames.saturating_sub(4))
        .collect();
    let chat_frames = corpus::openai_sse(&openai_meta, &answer_tokens);
    report.exchange = exchange_latency(
        config,
        &mut filter,
        &mut pass,
        &stream_request,
        &chat_frames,
    );
    report.overhead_us_p50 = report.exchange.filter_us_p50 - report.exchange.passthrough_us_p50;
    report.overhead_us_p99 = report.exchange.filter_us_p99 - report.exchange.passthrough_us_p99;
    drop(pass);

    // ---- time to first token ----
    progress("time to first token");
    let (ttft_text, _) = corpus::answer_text(config.seed + 4, 4096);
    let ttft_tokens = corpus::tokens(&ttft_text);
    let openai_frames = corpus::openai_sse(&openai_meta, &ttft_tokens);
    let first = native.first_text(Provider::OpenAiChat, &openai_frames);
    let (delayed, held_text) = delay(&first, &ttft_tokens, 1);
    report.ttft_frames = delayed;
    report.ttft_text_bytes = held_text;
    report.ttft_ms_at_30_tps = held_text as f64 / BYTES_PER_TOKEN / 30.0 * 1e3;
    report.ttft_ms_at_100_tps = held_text as f64 / BYTES_PER_TOKEN / 100.0 * 1e3;
    let anthropic_frames = corpus::anthropic_sse(&anthropic_meta, &ttft_tokens);
    let first_anthropic = native.first_text(Provider::Anthropic, &anthropic_frames);
    report.ttft_anthropic_frames = delay(&first_anthropic, &ttft_tokens, 3).0;
    let released = wasm::first_text(
        filter.worker(0),
        Provider::OpenAiChat,
        &stream_request,
        &openai_frames,
    );
    report.ttft_wasm_frames = released.map_or(openai_frames.len(), |r| r.saturating_sub(1));
    shared.take_logs();
    drop(filter);

    // ---- memory per open stream ----
    progress(&format!("memory: {} concurrent streams", config.streams));
    let (fill_text, _) = corpus::answer_text(config.seed + 5, config.stream_fill_text_bytes);
    let fill_tokens = corpus::tokens(&fill_text);
    let mut fill_frames = corpus::openai_sse(&openai_meta, &fill_tokens);
    fill_frames.truncate(fill_tokens.len() + 1); // the role frame and the token frames: the stream stays open
    let mut mem_host = wasm::start(&config.filter_module, &config.policy)?;
    let warm = wasm::exchange(
        Provider::OpenAiChat,
        &stream_request,
        "text/event-stream",
        String::new(),
        Some(fill_frames.clone()),
    );
    wasm::run_checked(mem_host.worker(0), &warm, &crate::exchange::Chunking::Whole)?;
    let memory = wasm::stream_memory(
        &mut mem_host,
        Provider::OpenAiChat,
        &stream_request,
        &fill_frames,
        config.streams,
        20,
    );
    mem_host.shared().take_logs();
    drop(mem_host);
    report.streams = config.streams;
    report.linear_memory_base_bytes = memory.base;
    report.linear_memory_bytes = memory.loaded;
    report.bytes_per_idle_stream = memory.per_idle_stream;
    report.bytes_per_stream = memory.per_loaded_stream;
    report.holdback_bytes = native
        .first_text(Provider::OpenAiChat, &fill_frames)
        .held_bytes;
    report.bytes_per_stream_beyond_window =
        (report.bytes_per_stream - report.holdback_bytes as f64).max(0.0);

    // ---- scaling with response length ----
    let scale_timing = Timing {
        runs: timing.runs.min(3),
        ..timing
    };
    for &size in &config.length_sizes {
        progress(&format!("scaling: {size}-byte answer"));
        let (t, _) = corpus::answer_text(config.seed + 6, size);
        let b = corpus::openai_json(&openai_meta, &t);
        let s = seconds_per_call(scale_timing, || native.body(Provider::OpenAiChat, &b));
        report.length_scaling.push(point(t.len(), s));
        // An SSE stream of about `size` bytes (~200 bytes per frame, ~4 bytes of text each).
        let (t, _) = corpus::answer_text(config.seed + 7, (size / 50).max(64));
        let toks = corpus::tokens(&t);
        let stream = corpus::openai_sse(&openai_meta, &toks).concat();
        let s = seconds_per_call(scale_timing, || {
            native.stream(Provider::OpenAiChat, stream.as_bytes(), 16 << 10)
        });
        report.sse_length_scaling.push(point(stream.len(), s));
    }
    report.length_linearity = report::spread(&report.length_scaling, 10 << 10);
    report.sse_length_linearity = report::spread(&report.sse_length_scaling, 10 << 10);

    // ---- scaling with the number of literals ----
    let (lit_text, _) = corpus::answer_text(config.seed + 8, config.literal_corpus_bytes);
    let lit_body = corpus::openai_json(&openai_meta, &lit_text);
    for &terms in &config.literal_counts {
        progress(&format!("scaling: {terms} blocked terms"));
        let policy = blocked_terms_policy(config.seed, terms);
        let compile_s = seconds_per_call(
            Timing {
                runs: 3,
                min_run: Duration::from_millis(1),
                ..timing
            },
            || rheostat_filter::engine::Engine::from_json(&policy).is_ok(),
        );
        let with_terms = Native::new(&policy, &stream_request, &anthropic_request)?;
        let s = seconds_per_call(timing, || with_terms.body(Provider::OpenAiChat, &lit_body));
        let p = point(lit_text.len(), s);
        report.literal_scaling.push(LiteralPoint {
            terms,
            compile_ms: compile_s * 1e3,
            ns_per_byte: p.ns_per_byte,
            mb_s: p.mb_s,
        });
    }
    if let (Some(first), Some(last)) = (
        report.literal_scaling.first(),
        report.literal_scaling.last(),
    ) {
        report.literal_flatness = ratio(last.ns_per_byte, first.ns_per_byte);
    }

    report.elapsed_s = started.elapsed().as_secs_f64();
    report.judge();
    Ok(report)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn point(bytes: usize, seconds: f64) -> ScalePoint {
    ScalePoint {
        bytes,
        ns_per_byte: seconds * 1e9 / bytes.max(1) as f64,
        mb_s: mb_per_s(bytes, seconds),
    }
}

/// Frames and text bytes that arrived after the first text-bearing frame
/// and before the first text reached the client. `lead` is the number of
/// frames before the first token frame in the generated stream.
fn delay(first: &native::FirstText, tokens: &[&str], lead: usize) -> (usize, usize) {
    let Some(first_in) = first.first_text_frame else {
        return (0, 0);
    };
    let released = first.released_at.unwrap_or(tokens.len() + lead);
    let frames = released.saturating_sub(first_in);
    // Token i is in frame i + lead; count the text of frames first_in+1 ..= released.
    let text: usize = (first_in + 1..=released)
        .filter_map(|f| f.checked_sub(lead).and_then(|i| tokens.get(i)))
        .map(|t| t.len())
        .sum();
    (frames, text)
}

/// A policy with `n` blocked terms that do not occur in the corpus (their
/// cost is the scan, not the findings): pseudo-words and two-word phrases.
fn blocked_terms_policy(seed: u64, n: usize) -> Vec<u8> {
    let mut r = Rng::new(seed ^ 0xb10c);
    let letters = b"bcdfghjklmnpqrstvwxz";
    let word = |r: &mut Rng| -> String {
        let len = r.range(5, 11);
        (0..len)
            .map(|i| {
                if i % 2 == 1 {
                    b"aeiou"[r.below(5)] as char
                } else {
                    letters[r.below(letters.len())] as char
                }
            })
            .collect()
    };
    let terms: Vec<String> = (0..n)
        .map(|i| {
            if i % 4 == 3 {
                format!("{} {}", word(&mut r), word(&mut r))
            } else {
                format!("{}{}", word(&mut r), i % 7)
            }
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "blocked_terms": { "bench": terms } }))
        .unwrap_or_default()
}

/// Drives one chat exchange through `worker` with the Stream API: request
/// headers and a 2 KiB body, response headers, then one frame per body
/// callback (as an upstream flushing every token), then the end.
pub fn drive(worker: &mut crate::Worker, request: &[u8], frames: &[String]) -> usize {
    let mut s = worker.open_stream();
    s.request_headers(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "llm.local"),
            (":scheme", "http"),
            ("content-type", "application/json"),
            ("x-tenant-id", "bench"),
            ("x-request-id", "7d1e9c52-4b1f-4a8e-9d2c-3f6a1b0e5c7d"),
        ],
        false,
    );
    s.request_body(request, true);
    s.response_headers(
        &[
            (":status", "200"),
            ("content-type", "text/event-stream; charset=utf-8"),
        ],
        false,
    );
    let n = frames.len();
    for (i, f) in frames.iter().enumerate() {
        s.response_body(f.as_bytes(), i + 1 == n);
    }
    let complete = s.downstream_complete();
    s.finish();
    usize::from(complete)
}

fn exchange_latency(
    config: &BenchConfig,
    filter: &mut crate::Host,
    pass: &mut crate::Host,
    request: &[u8],
    frames: &[String],
) -> ExchangeFigures {
    let (fs, ps) = (filter.shared(), pass.shared());
    let once = |host: &mut crate::Host| {
        let start = Instant::now();
        std::hint::black_box(drive(host.worker(0), request, frames));
        start.elapsed().as_secs_f64() * 1e6
    };
    for _ in 0..config.exchanges_per_run.min(50) {
        once(filter);
        once(pass);
    }
    let (mut f50, mut f99, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..config.exchange_runs.max(1) {
        let mut f = Vec::with_capacity(config.exchanges_per_run);
        let mut p = Vec::with_capacity(config.exchanges_per_run);
        // Interleaved, so both modules see the same machine.
        for _ in 0..config.exchanges_per_run.max(1) {
            f.push(once(filter));
            p.push(once(pass));
        }
        fs.take_logs();
        ps.take_logs();
        f50.push(percentile(&f, 50.0));
        f99.push(percentile(&f, 99.0));
        p50.push(percentile(&p, 50.0));
        p99.push(percentile(&p, 99.0));
    }
    ExchangeFigures {
        request_bytes: request.len(),
        response_frames: frames.len(),
        samples: config.exchange_runs.max(1) * config.exchanges_per_run.max(1),
        filter_us_p50: median(&f50),
        filter_us_p99: median(&f99),
        passthrough_us_p50: median(&p50),
        passthrough_us_p99: median(&p99),
    }
}
