//! Writes the benchmark's corpora to a directory, so the engine can be
//! profiled natively without the host (filter/examples/scan_loop.rs):
//! `cargo run --release -p rheostat-host --example profile_scan -- DIR`.

use rheostat_host::bench::corpus::{self, StreamMeta};
use rheostat_host::rng::Rng;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/corpus".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let seed = 0x5eed;
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes);
    write(
        "openai_request.json",
        &corpus::chat_request(seed + 1, 2048, true, false, true),
    )?;
    write(
        "anthropic_request.json",
        &corpus::chat_request(seed + 1, 2048, true, true, true),
    )?;
    let mut rng = Rng::new(seed);
    let openai = StreamMeta::openai(&mut rng);
    let anthropic = StreamMeta::anthropic(&mut rng);
    let (text, _) = corpus::answer_text(seed, 1 << 20);
    write("body.json", &corpus::openai_json(&openai, &text))?;
    let tokens = corpus::tokens(&text[..16 << 10]);
    write(
        "openai.sse",
        corpus::openai_sse(&openai, &tokens).concat().as_bytes(),
    )?;
    write(
        "responses.sse",
        corpus::openai_responses_sse(&openai, &tokens)
            .concat()
            .as_bytes(),
    )?;
    write(
        "anthropic.sse",
        corpus::anthropic_sse(&anthropic, &tokens)
            .concat()
            .as_bytes(),
    )?;
    println!("corpus written to {}", dir.display());
    Ok(())
}
