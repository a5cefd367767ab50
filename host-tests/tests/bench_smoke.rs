//! `rheostat bench` end to end with tiny inputs: every key of the `--json`
//! object is there and sane. Timing is never asserted here (the machine is
//! shared and debug builds are slow); `make bench` is where speed is judged.

use rheostat_host::bench::{run, BenchConfig};
use rheostat_host::module_path;
use serde_json::Value;

/// The headline keys README.md promises, plus the others documented there.
const NUMBER_KEYS: &[&str] = &[
    "native_mb_s",
    "wasm_mb_s",
    "wasm_vs_native",
    "sse_frames_per_s",
    "module_bytes",
    "baseline_ratio",
    "passthrough_module_bytes",
    "body_bytes",
    "content_bytes",
    "planted_items",
    "native_findings",
    "wasm_findings",
    "passthrough_body_mb_s",
    "sse_mb_s",
    "sse_native_frames_per_s",
    "ttft_frames",
    "ttft_text_bytes",
    "ttft_ms_at_30_tps",
    "ttft_ms_at_100_tps",
    "ttft_wasm_frames",
    "ttft_anthropic_frames",
    "streams",
    "holdback_bytes",
    "linear_memory_base_bytes",
    "linear_memory_bytes",
    "length_linearity",
    "sse_length_linearity",
    "literal_flatness",
    "baseline_mb_s",
    "baseline_patterns",
    "baseline_matches",
    "literal_patterns",
    "literal_pass_mb_s",
    "automaton_mb_s",
    "holdback_frames_per_s",
    "holdback_reads_per_byte",
    "runs",
    "elapsed_s",
];

#[test]
fn a_tiny_bench_run_reports_every_key_with_sane_values() {
    let config = BenchConfig::smoke(
        module_path("rheostat_filter"),
        module_path("rheostat_passthrough"),
    );
    let report = run(&config, &mut |_| {}).expect("the bench runs");
    let json: Value = serde_json::to_value(&report).unwrap();

    for key in NUMBER_KEYS {
        let v = json
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{key} missing or not a number: {json}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    // Differences of two timings: finite, any sign on a busy machine.
    for key in ["overhead_us_p50", "overhead_us_p99"] {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(v.is_finite(), "{key} = {v}");
    }
    // Per-stream memory is a slope of linear-memory growth; a few streams
    // fit in the memory the allocator freed after compiling the policy, so
    // a tiny run may see no growth at all (0), never a negative cost.
    for key in [
        "bytes_per_stream",
        "bytes_per_idle_stream",
        "bytes_per_stream_beyond_window",
    ] {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
    }
    let exchange = &json["exchange"];
    for key in [
        "filter_us_p50",
        "filter_us_p99",
        "passthrough_us_p50",
        "passthrough_us_p99",
    ] {
        assert!(
            exchange[key].as_f64().is_some_and(|v| v > 0.0),
            "exchange.{key}: {exchange}"
        );
    }
    assert!(exchange["filter_us_p99"].as_f64() >= exchange["filter_us_p50"].as_f64());

    // The engine and the module found the same planted PII in the same body.
    assert_eq!(json["native_findings"], json["wasm_findings"]);
    assert_eq!(json["wasm_outcome"], "redacted");

    let sse = json["sse"].as_array().unwrap();
    assert_eq!(
        sse.len(),
        2 * config.sse_chunks.len(),
        "openai and anthropic at each chunk size"
    );
    for f in sse {
        for key in [
            "native_frames_per_s",
            "native_mb_s",
            "wasm_frames_per_s",
            "wasm_mb_s",
        ] {
            assert!(f[key].as_f64().is_some_and(|v| v > 0.0), "sse {key}: {f}");
        }
    }
    assert_eq!(
        json["length_scaling"].as_array().unwrap().len(),
        config.length_sizes.len()
    );
    assert_eq!(
        json["sse_length_scaling"].as_array().unwrap().len(),
        config.length_sizes.len()
    );
    assert_eq!(
        json["literal_scaling"].as_array().unwrap().len(),
        config.literal_counts.len()
    );
    for p in json["length_scaling"]
        .as_array()
        .unwrap()
        .iter()
        .chain(json["literal_scaling"].as_array().unwrap())
    {
        assert!(p["ns_per_byte"].as_f64().is_some_and(|v| v > 0.0), "{p}");
    }
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 9);
    assert!(targets
        .iter()
        .all(|t| t["pass"].is_boolean() && t["value"].is_number()));
    // Hold-back windows overlap: with the default step, every byte of a
    // stream's text is read by more than one window.
    assert!(json["holdback_reads_per_byte"].as_f64() > Some(1.0));
    // The module holds back text: the first token cannot show before the window fills.
    assert!(json["ttft_frames"].as_u64() > Some(0));
    assert!(report.table().contains("Targets"));
}
