//! The engine called directly (natively, in this process): the reference
//! the module is compared with, and the only place the scaling and
//! hold-back figures need (they are properties of the engine, not of Wasm).

use anyhow::{anyhow, Result};
use rheostat_filter::codec::Provider;
use rheostat_filter::detect::redact::PseudonymKey;
use rheostat_filter::engine::{Engine, RequestContext};
use rheostat_filter::holdback::{Holdback, Redaction, SpanAction, SpanDetector};
use std::cell::Cell;
use std::rc::Rc;

const KEY: PseudonymKey = PseudonymKey::new(1, 2);

/// A compiled policy and the request contexts the benchmark answers.
pub struct Native {
    pub engine: Rc<Engine>,
    pub openai: RequestContext,
    pub anthropic: RequestContext,
}

impl Native {
    /// Compiles `policy` and inspects one OpenAI and one Anthropic request
    /// (their contexts carry the system prompt the response side checks).
    pub fn new(policy: &[u8], openai_request: &[u8], anthropic_request: &[u8]) -> Result<Native> {
        let engine = Rc::new(
            Engine::from_json(policy)
                .map_err(|e| anyhow!("the benchmark policy is invalid: {e}"))?,
        );
        let openai = engine
            .inspect_request("/v1/chat/completions", openai_request, &KEY)
            .context;
        let anthropic = engine
            .inspect_request("/v1/messages", anthropic_request, &KEY)
            .context;
        Ok(Native {
            engine,
            openai,
            anthropic,
        })
    }

    fn context(&self, provider: Provider) -> &RequestContext {
        match provider {
            Provider::Anthropic => &self.anthropic,
            _ => &self.openai,
        }
    }

    /// Inspects a buffered JSON response: (findings, blocked).
    pub fn body(&self, provider: Provider, body: &[u8]) -> (usize, bool) {
        let v = self
            .engine
            .inspect_response_body(self.context(provider), provider, body, KEY);
        (v.findings.len(), v.blocked)
    }

    /// Streams `bytes` through a response stream in `chunk`-byte pushes;
    /// returns the bytes sent downstream and the findings.
    pub fn stream(&self, provider: Provider, bytes: &[u8], chunk: usize) -> (usize, usize) {
        let (mut stream, _) = self
            .engine
            .open_stream(self.context(provider), provider, KEY);
        let mut out = 0;
        for piece in bytes.chunks(chunk.max(1)) {
            out += stream.push(piece).len();
        }
        out += stream.finish().len();
        (out, stream.findings().len())
    }

    /// The scanning a stream does and nothing else: `tokens` pushed one
    /// per piece (as one per frame) through a hold-back with the stream's
    /// own span detector, then finished, with no SSE or JSON around them.
    /// Returns the pieces released and the bytes the detector read.
    pub fn holdback(&self, provider: Provider, tokens: &[&str]) -> (usize, usize) {
        let (scanner, config) = self.engine.stream_scanner(self.context(provider), KEY);
        let counting = Counting {
            inner: &scanner,
            read: Cell::new(0),
        };
        let mut holdback = Holdback::new(&counting, config);
        let mut released = Vec::new();
        for token in tokens {
            holdback.push(&counting, token, &mut released);
        }
        holdback.finish(&counting, &mut released);
        (released.len(), counting.read.get())
    }

    /// Pushes `frames` one at a time and reports when the first visible
    /// text comes out, and the state the stream holds after all of them.
    pub fn first_text(&self, provider: Provider, frames: &[String]) -> FirstText {
        let (mut stream, _) = self
            .engine
            .open_stream(self.context(provider), provider, KEY);
        let mut result = FirstText::default();
        let first_in = frames
            .iter()
            .position(|f| visible_text(provider, f.as_bytes()) > 0);
        for (i, frame) in frames.iter().enumerate() {
            let out = stream.push(frame.as_bytes());
            if result.released_at.is_none() && visible_text(provider, &out) > 0 {
                result.released_at = Some(i);
            }
        }
        result.first_text_frame = first_in;
        result.held_bytes = stream.held_bytes();
        result.held_frames = stream.held_frames();
        result
    }
}

/// A span detector that counts the bytes it is given to read.
struct Counting<'a, D> {
    inner: &'a D,
    read: Cell<usize>,
}

impl<D: SpanDetector> SpanDetector for Counting<'_, D> {
    fn max_span(&self) -> usize {
        self.inner.max_span()
    }
    fn context(&self) -> usize {
        self.inner.context()
    }
    fn find(&self, text: &str, out: &mut Vec<Redaction>) {
        self.read.set(self.read.get() + text.len());
        self.inner.find(text, out);
    }
    fn action(&self, tag: u32) -> SpanAction {
        self.inner.action(tag)
    }
}

/// When the first text reached the client.
#[derive(Debug, Clone, Default)]
pub struct FirstText {
    /// Index of the first input frame that carries text.
    pub first_text_frame: Option<usize>,
    /// Index of the input frame whose push released the first text.
    pub released_at: Option<usize>,
    /// Held state after every frame was pushed (bytes, per `held_bytes`).
    pub held_bytes: usize,
    pub held_frames: usize,
}

/// Bytes of answer text in SSE bytes (any number of whole events): the
/// `delta.content` of OpenAI chunks or the `delta.text` of Anthropic
/// `content_block_delta` events.
pub fn visible_text(provider: Provider, sse: &[u8]) -> usize {
    let text = String::from_utf8_lossy(sse);
    let mut total = 0;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
            continue;
        };
        let piece = match provider {
            Provider::Anthropic => v.pointer("/delta/text"),
            _ => v.pointer("/choices/0/delta/content"),
        };
        total += piece.and_then(|p| p.as_str()).map_or(0, str::len);
    }
    total
}
