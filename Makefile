# Rheostat — every target is documented in README.md ("Makefile targets").
SHELL := bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM_DIR := target/$(WASM_TARGET)/release
FILTER_WASM := $(WASM_DIR)/rheostat_filter.wasm
RHEOSTAT := target/release/rheostat

.PHONY: all build wasm toolchain test demo bench fuzz lint clean oci

all: build

toolchain:
	rustup target add $(WASM_TARGET) wasm32-unknown-unknown >/dev/null

# The filter plus the modules the host's own tests and benchmarks load.
wasm: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) -p rheostat-filter -p rheostat-probe -p rheostat-passthrough
	@echo "built $(FILTER_WASM) ($$(stat -c %s $(FILTER_WASM)) bytes)"

build: wasm
	$(CARGO) build --release -p rheostat-host --bin rheostat

test: wasm
	$(CARGO) test --workspace --exclude rheostat-probe --exclude rheostat-passthrough
	$(CARGO) run -q -p rheostat-host --bin rheostat -- test examples/tests

demo: build
	@echo "== rheostat check examples/policies/default.json"
	$(RHEOSTAT) check examples/policies/default.json
	@for f in examples/traffic/*.jsonl; do \
	  echo "== rheostat replay --summary (2 workers, random chunking) $$f"; \
	  $(RHEOSTAT) replay --policy examples/policies/default.json --workers 2 --chunking random --seed 1 --summary $$f; \
	done

# The filter as an OCI image layout holding both Wasm image variants, for
# Istio and Envoy Gateway to pull once copied to a registry (README, "Deploying").
oci: build
	$(RHEOSTAT) oci --module $(FILTER_WASM) --out target/oci/rheostat-filter

# Builds first, then measures (about a minute; see README.md "Benchmarks").
bench: build
	$(RHEOSTAT) bench

# Every fuzz target for FUZZ_SECONDS each, one after another, on nightly
# (cargo-fuzz needs -Zsanitizer). New inputs go to fuzz/target/corpus/<t>;
# the committed seeds in fuzz/corpus/<t> are only read, so they stay small.
# A crash lands in fuzz/artifacts/<t>/: once fixed, copy it to
# fuzz/regressions/<t>/ and `make test` replays it for good.
FUZZ_SECONDS ?= 60
# Extra libFuzzer flags. Execution time grows with input size (the stream
# targets run every input three ways), so inputs are capped at 4 KiB; the
# longer seeds are cut while fuzzing and replayed whole by `make test`.
FUZZ_ARGS ?= -max_len=4096
FUZZ_TARGETS := policy sse codec_request codec_response stream_differential normalize json_schema

fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	cd fuzz
	for t in $(FUZZ_TARGETS); do
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"
	  mkdir -p target/corpus/$$t
	  cargo +nightly fuzz run $$t target/corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS)
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude rheostat-probe --exclude rheostat-passthrough -- -D warnings

clean:
	$(CARGO) clean
