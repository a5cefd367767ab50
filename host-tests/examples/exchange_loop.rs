//! Drives the benchmark's typical exchange (a 2 KiB chat request, a
//! ~100-frame OpenAI stream) through a module many times, for a profiler:
//! `RHEOSTAT_PERF_MAP=1 perf record -g target/release/examples/exchange_loop MODULE N`.
//! The per-exchange overhead `rheostat bench` reports is this loop timed.

use rheostat_host::bench::corpus::{self, StreamMeta};
use rheostat_host::rng::Rng;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let module = args
        .next()
        .unwrap_or_else(|| "target/wasm32-wasip1/release/rheostat_filter.wasm".into());
    let runs: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let seed = 0x5eed;
    let request = corpus::chat_request(seed + 1, 2048, true, false, true);
    let mut rng = Rng::new(seed);
    let meta = StreamMeta::openai(&mut rng);
    let (answer, _) = corpus::answer_text(seed + 3, 800);
    let tokens: Vec<&str> = corpus::tokens(&answer).into_iter().take(96).collect();
    let frames = corpus::openai_sse(&meta, &tokens);
    let mut host = rheostat_host::bench::wasm::start(module.as_ref(), b"{}")?;
    let shared = host.shared();
    let start = Instant::now();
    for i in 0..runs {
        let complete = rheostat_host::bench::drive(host.worker(0), &request, &frames);
        assert_eq!(complete, 1, "exchange {i} did not complete");
        if i % 256 == 0 {
            shared.take_logs();
        }
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!(
        "{runs} exchanges, {} frames each: {us:.0} us per exchange",
        frames.len()
    );
    Ok(())
}
