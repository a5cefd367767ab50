//! What `rheostat bench` reports: one [`Report`] (serialised as the
//! `--json` object, whose keys are documented in README.md "Benchmarks")
//! and its human rendering, with each target and whether it was met.

use serde::Serialize;
use std::fmt::Write as _;

/// SSE throughput for one provider and chunk size.
#[derive(Debug, Clone, Serialize)]
pub struct SseFigure {
    pub provider: String,
    pub chunk_bytes: usize,
    pub frames: usize,
    pub stream_bytes: usize,
    pub native_frames_per_s: f64,
    pub native_mb_s: f64,
    pub wasm_frames_per_s: f64,
    pub wasm_mb_s: f64,
}

/// Per-exchange latency of a typical chat exchange, filter and pass-through.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExchangeFigures {
    pub request_bytes: usize,
    pub response_frames: usize,
    pub samples: usize,
    pub filter_us_p50: f64,
    pub filter_us_p99: f64,
    pub passthrough_us_p50: f64,
    pub passthrough_us_p99: f64,
}

/// One point of a scaling curve.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePoint {
    /// Content bytes (bodies) or stream bytes (SSE).
    pub bytes: usize,
    pub ns_per_byte: f64,
    pub mb_s: f64,
}

/// Scan cost with `terms` blocked terms.
#[derive(Debug, Clone, Serialize)]
pub struct LiteralPoint {
    pub terms: usize,
    pub compile_ms: f64,
    pub ns_per_byte: f64,
    pub mb_s: f64,
}

/// One target from the issue and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    /// The key of the figure checked.
    pub key: String,
    /// The condition, e.g. `>= 300`.
    pub target: String,
    pub value: f64,
    pub pass: bool,
}

/// Everything one `rheostat bench` run measured. The first nine fields
/// are the stable headline keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub native_mb_s: f64,
    pub wasm_mb_s: f64,
    pub wasm_vs_native: f64,
    pub sse_frames_per_s: f64,
    pub overhead_us_p50: f64,
    pub overhead_us_p99: f64,
    pub bytes_per_stream: f64,
    pub module_bytes: u64,
    pub baseline_ratio: f64,

    pub passthrough_module_bytes: u64,
    pub body_bytes: usize,
    pub content_bytes: usize,
    pub planted_items: usize,
    pub native_findings: usize,
    pub wasm_findings: usize,
    pub wasm_outcome: String,
    pub passthrough_body_mb_s: f64,

    pub sse_mb_s: f64,
    pub sse_native_frames_per_s: f64,
    pub sse: Vec<SseFigure>,

    pub exchange: ExchangeFigures,

    pub ttft_frames: usize,
    pub ttft_text_bytes: usize,
    pub ttft_ms_at_30_tps: f64,
    pub ttft_ms_at_100_tps: f64,
    pub ttft_wasm_frames: usize,
    pub ttft_anthropic_frames: usize,

    pub streams: usize,
    pub bytes_per_idle_stream: f64,
    pub holdback_bytes: usize,
    pub bytes_per_stream_beyond_window: f64,
    pub linear_memory_base_bytes: usize,
    pub linear_memory_bytes: usize,

    pub length_scaling: Vec<ScalePoint>,
    pub length_linearity: f64,
    pub sse_length_scaling: Vec<ScalePoint>,
    pub sse_length_linearity: f64,
    pub literal_scaling: Vec<LiteralPoint>,
    pub literal_flatness: f64,

    pub baseline_mb_s: f64,
    pub baseline_patterns: usize,
    pub baseline_matches: usize,

    pub literal_patterns: usize,
    pub literal_pass_mb_s: f64,
    pub automaton_mb_s: f64,
    pub holdback_frames_per_s: f64,
    pub holdback_reads_per_byte: f64,

    pub targets: Vec<Target>,
    pub runs: usize,
    pub min_run_ms: f64,
    pub seed: u64,
    pub elapsed_s: f64,
}

/// How far apart a curve's worst and best ns/byte are, over the points of
/// at least `from` bytes (below that, fixed per-call costs dominate and
/// say nothing about linearity). 1.0 is perfectly linear.
pub fn spread(points: &[ScalePoint], from: usize) -> f64 {
    let v: Vec<f64> = points
        .iter()
        .filter(|p| p.bytes >= from)
        .map(|p| p.ns_per_byte)
        .collect();
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    if v.is_empty() || lo <= 0.0 {
        0.0
    } else {
        hi / lo
    }
}

impl Report {
    /// Fills `targets` from the figures.
    pub fn judge(&mut self) {
        let mut t = Vec::new();
        let mut at_least = |name: &str, key: &str, value: f64, min: f64| {
            t.push(Target {
                name: name.into(),
                key: key.into(),
                target: format!(">= {min}"),
                value,
                pass: value >= min,
            });
        };
        at_least(
            "inside the module >= 50% of native speed",
            "wasm_vs_native",
            self.wasm_vs_native,
            0.5,
        );
        at_least(
            "default-policy body scan (module) >= 300 MB/s",
            "wasm_mb_s",
            self.wasm_mb_s,
            300.0,
        );
        at_least(
            "SSE (module, 1 KiB chunks) >= 1,000,000 frames/s",
            "sse_frames_per_s",
            self.sse_frames_per_s,
            1e6,
        );
        at_least(
            ">= 10x the per-pattern regex baseline",
            "baseline_ratio",
            self.baseline_ratio,
            10.0,
        );
        let mut at_most = |name: &str, key: &str, value: f64, max: f64| {
            t.push(Target {
                name: name.into(),
                key: key.into(),
                target: format!("<= {max}"),
                value,
                pass: value <= max,
            });
        };
        at_most(
            "overhead above pass-through <= 100 us at p99",
            "overhead_us_p99",
            self.overhead_us_p99,
            100.0,
        );
        at_most(
            "<= 16 KiB per open stream beyond the hold-back window",
            "bytes_per_stream_beyond_window",
            self.bytes_per_stream_beyond_window,
            16384.0,
        );
        at_most(
            "module <= 400 KiB",
            "module_bytes",
            self.module_bytes as f64,
            409_600.0,
        );
        at_most(
            "linear in response length (ns/byte spread)",
            "length_linearity",
            self.length_linearity,
            1.5,
        );
        at_most(
            "near-flat in the number of literals (10k vs 10 terms)",
            "literal_flatness",
            self.literal_flatness,
            1.5,
        );
        self.targets = t;
    }

    /// The human rendering: one section per question, then the targets.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(
            w,
            "Rheostat benchmarks (default policy; median of {} runs, >= {:.0} ms each; seed {})",
            self.runs, self.min_run_ms, self.seed
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "Buffered JSON body ({} KiB body, {} KiB of answer text, {} planted PII/secrets)",
            self.body_bytes / 1024,
            self.content_bytes / 1024,
            self.planted_items
        );
        row(w, "native engine", format!("{:.1} MB/s", self.native_mb_s));
        row(
            w,
            "module under the host",
            format!("{:.1} MB/s", self.wasm_mb_s),
        );
        row(w, "module / native", format!("{:.2}", self.wasm_vs_native));
        row(
            w,
            "same exchange through pass-through module",
            format!("{:.1} MB/s", self.passthrough_body_mb_s),
        );
        row(
            w,
            "findings (native / module)",
            format!("{} / {}", self.native_findings, self.wasm_findings),
        );
        row(
            w,
            "per-pattern regex baseline (native)",
            format!("{:.1} MB/s", self.baseline_mb_s),
        );
        row(
            w,
            format!(
                "native engine / baseline ({} regexes)",
                self.baseline_patterns
            ),
            format!("{:.1}x", self.baseline_ratio),
        );
        let _ = writeln!(w);
        let _ = writeln!(w, "SSE streams (one token per frame)");
        let _ = writeln!(
            w,
            "  {:<10} {:>7} {:>8} {:>14} {:>10} {:>14} {:>10}",
            "provider", "chunk", "frames", "native fr/s", "MB/s", "module fr/s", "MB/s"
        );
        for f in &self.sse {
            let _ = writeln!(
                w,
                "  {:<10} {:>7} {:>8} {:>14.0} {:>10.1} {:>14.0} {:>10.1}",
                f.provider,
                f.chunk_bytes,
                f.frames,
                f.native_frames_per_s,
                f.native_mb_s,
                f.wasm_frames_per_s,
                f.wasm_mb_s
            );
        }
        let _ = writeln!(w);
        let e = &self.exchange;
        let _ = writeln!(w, "Per exchange ({} B request, {}-frame streamed answer, one frame per callback; {} samples)", e.request_bytes, e.response_frames, e.samples);
        let _ = writeln!(w, "  {:<44} {:>12} {:>12}", "", "p50", "p99");
        let _ = writeln!(
            w,
            "  {:<44} {:>9.1} us {:>9.1} us",
            "rheostat_filter.wasm", e.filter_us_p50, e.filter_us_p99
        );
        let _ = writeln!(
            w,
            "  {:<44} {:>9.1} us {:>9.1} us",
            "rheostat_passthrough.wasm", e.passthrough_us_p50, e.passthrough_us_p99
        );
        let _ = writeln!(
            w,
            "  {:<44} {:>9.1} us {:>9.1} us",
            "overhead", self.overhead_us_p50, self.overhead_us_p99
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "Time to first token (hold-back window, frames pushed one at a time)"
        );
        row(
            w,
            "frames before the first text shows (OpenAI)",
            format!("{} (module: {})", self.ttft_frames, self.ttft_wasm_frames),
        );
        row(
            w,
            "frames before the first text shows (Anthropic)",
            self.ttft_anthropic_frames,
        );
        row(w, "text held back", format!("{} B", self.ttft_text_bytes));
        row(
            w,
            "delay at 30 tokens/s (4 B/token)",
            format!("{:.0} ms", self.ttft_ms_at_30_tps),
        );
        row(
            w,
            "delay at 100 tokens/s (4 B/token)",
            format!("{:.0} ms", self.ttft_ms_at_100_tps),
        );
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "Memory ({} concurrent open streams in one VM)",
            self.streams
        );
        row(
            w,
            "per stream, response headers only",
            format!("{:.0} B", self.bytes_per_idle_stream),
        );
        row(
            w,
            "per stream, hold-back window full",
            format!("{:.0} B", self.bytes_per_stream),
        );
        row(
            w,
            "  of which held frames + text (engine)",
            format!("{} B", self.holdback_bytes),
        );
        row(
            w,
            "  beyond the hold-back window",
            format!("{:.0} B", self.bytes_per_stream_beyond_window),
        );
        row(
            w,
            "linear memory before / with the streams",
            format!(
                "{} / {} KiB",
                self.linear_memory_base_bytes / 1024,
                self.linear_memory_bytes / 1024
            ),
        );
        let _ = writeln!(w);
        let _ = writeln!(w, "Scaling (native)");
        let _ = writeln!(
            w,
            "  {:<12} {:>12} {:>12} {:>12} {:>12}",
            "length", "body ns/B", "MB/s", "SSE ns/B", "MB/s"
        );
        let n = self.length_scaling.len().max(self.sse_length_scaling.len());
        for i in 0..n {
            let b = self.length_scaling.get(i);
            let sse = self.sse_length_scaling.get(i);
            let size = b.or(sse).map_or(0, |p| p.bytes);
            let _ = writeln!(
                w,
                "  {:<12} {:>12} {:>12} {:>12} {:>12}",
                human_bytes(size),
                b.map_or("-".into(), |p| format!("{:.2}", p.ns_per_byte)),
                b.map_or("-".into(), |p| format!("{:.1}", p.mb_s)),
                sse.map_or("-".into(), |p| format!("{:.2}", p.ns_per_byte)),
                sse.map_or("-".into(), |p| format!("{:.1}", p.mb_s)),
            );
        }
        let _ = writeln!(
            w,
            "  ns/byte spread from 10 KiB up: body {:.2}, SSE {:.2} (1.0 = linear)",
            self.length_linearity, self.sse_length_linearity
        );
        let _ = writeln!(
            w,
            "  {:<12} {:>12} {:>12} {:>12}",
            "terms", "compile ms", "ns/B", "MB/s"
        );
        for p in &self.literal_scaling {
            let _ = writeln!(
                w,
                "  {:<12} {:>12.1} {:>12.2} {:>12.1}",
                p.terms, p.compile_ms, p.ns_per_byte, p.mb_s
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(w, "What bounds the scan (native; each part timed alone)");
        row(
            w,
            format!("literal pass ({} patterns)", self.literal_patterns),
            format!("{:.1} MB/s", self.literal_pass_mb_s),
        );
        row(
            w,
            "  of it, the automaton on normalised text",
            format!("{:.1} MB/s", self.automaton_mb_s),
        );
        row(
            w,
            "hold-back scanning, one token per push",
            format!("{:.0} fr/s", self.holdback_frames_per_s),
        );
        row(
            w,
            "  bytes read per byte of text",
            format!("{:.2}", self.holdback_reads_per_byte),
        );
        row(
            w,
            "  share of a native OpenAI frame (1 KiB)",
            format!(
                "{:.0}%",
                100.0 * self.sse_native_frames_per_s / self.holdback_frames_per_s.max(1e-9)
            ),
        );
        let _ = writeln!(w);
        let _ = writeln!(w, "Module size");
        row(
            w,
            "rheostat_filter.wasm",
            format!("{} B ({} KiB)", self.module_bytes, self.module_bytes / 1024),
        );
        row(
            w,
            "rheostat_passthrough.wasm",
            format!(
                "{} B ({} KiB)",
                self.passthrough_module_bytes,
                self.passthrough_module_bytes / 1024
            ),
        );
        let _ = writeln!(w);
        let _ = writeln!(w, "Targets");
        for t in &self.targets {
            let _ = writeln!(
                w,
                "  [{}] {:<58} {} = {} (target {})",
                if t.pass { "pass" } else { "FAIL" },
                t.name,
                t.key,
                short(t.value),
                t.target
            );
        }
        let passed = self.targets.iter().filter(|t| t.pass).count();
        let _ = writeln!(
            w,
            "  {passed} of {} targets met; measured in {:.0} s",
            self.targets.len(),
            self.elapsed_s
        );
        s
    }
}

/// One labelled figure of the table.
fn row(w: &mut String, label: impl std::fmt::Display, value: impl std::fmt::Display) {
    let _ = writeln!(w, "  {label:<44} {value:>12}");
}

fn short(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}
