//! Runs one engine path in a loop over a corpus written by
//! `host-tests/examples/profile_scan.rs`, for a profiler:
//! `cargo build --profile profiling -p rheostat-filter --example scan_loop`, then
//! `perf record -g target/profiling/examples/scan_loop target/corpus body 5`.
//! Paths: `body` (buffered OpenAI JSON), `openai`, `responses` and
//! `anthropic` (SSE in 1 KiB pushes), `request` (the 2 KiB chat request), `exchange` (that
//! request, then a 100-frame OpenAI answer pushed frame by frame: the
//! engine's share of the bench's per-exchange figure).

use rheostat_filter::codec::Provider;
use rheostat_filter::detect::redact::PseudonymKey;
use rheostat_filter::engine::Engine;
use std::alloc::{GlobalAlloc, Layout, System};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Counts heap allocations, so a change's effect on the steady state
/// ("no allocation per frame") shows as a number, not a profile share.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/corpus".into()));
    let what = args.next().unwrap_or_else(|| "body".into());
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    let key = PseudonymKey::new(1, 2);
    let engine = Rc::new(Engine::from_json(b"{}").expect("the default policy compiles"));
    let openai = engine
        .inspect_request("/v1/chat/completions", &read("openai_request.json"), &key)
        .context;
    let anthropic = engine
        .inspect_request("/v1/messages", &read("anthropic_request.json"), &key)
        .context;
    let (input, provider, context) = match what.as_str() {
        "openai" | "exchange" => (read("openai.sse"), Provider::OpenAiChat, &openai),
        "anthropic" => (read("anthropic.sse"), Provider::Anthropic, &anthropic),
        "responses" => (read("responses.sse"), Provider::OpenAiResponses, &openai),
        _ => (read("body.json"), Provider::OpenAiChat, &openai),
    };
    let request = read("openai_request.json");
    let answer: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let answer_frames: Vec<Vec<u8>> = answer.chunks(2).take(100).map(|c| c.concat()).collect();
    let frames = input.windows(2).filter(|w| w == b"\n\n").count();
    let started = Instant::now();
    let allocations_before = ALLOCATIONS.load(Relaxed);
    let mut calls = 0usize;
    let mut findings = 0;
    while started.elapsed().as_secs_f64() < seconds {
        findings = if what == "request" {
            engine
                .inspect_request("/v1/chat/completions", &request, &key)
                .findings
                .len()
        } else if what == "exchange" {
            let context = engine
                .inspect_request("/v1/chat/completions", &request, &key)
                .context;
            let (mut stream, _) = engine.open_stream(&context, Provider::OpenAiChat, key);
            for frame in &answer_frames {
                stream.push(frame);
            }
            stream.finish();
            stream.findings().len()
        } else if what == "body" {
            engine
                .inspect_response_body(context, provider, &input, key)
                .findings
                .len()
        } else {
            let (mut stream, _) = engine.open_stream(context, provider, key);
            for piece in input.chunks(1024) {
                stream.push(piece);
            }
            stream.finish();
            stream.findings().len()
        };
        calls += 1;
    }
    let s = started.elapsed().as_secs_f64();
    let allocations = (ALLOCATIONS.load(Relaxed) - allocations_before) as f64 / calls as f64;
    let mb_s = (input.len() * calls) as f64 / s / 1e6;
    println!(
        "{what}: {calls} calls ({:.1} us each), {findings} findings, {mb_s:.1} MB/s of input, \
         {:.0} frames/s, {allocations:.0} allocations per call ({:.2} per frame)",
        s * 1e6 / calls as f64,
        (frames * calls) as f64 / s,
        allocations / frames.max(1) as f64
    );
}
