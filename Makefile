# Rheostat — every target is documented in README.md ("Makefile targets").
SHELL := bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM_DIR := target/$(WASM_TARGET)/release
FILTER_WASM := $(WASM_DIR)/rheostat_filter.wasm
RHEOSTAT := target/release/rheostat

.PHONY: all build wasm toolchain test demo bench fuzz lint clean edge edge-tools edge-test edge-serve edge-bench oci

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
	$(MAKE) edge-test
	# The binary cargo test just built: `cargo run -p rheostat-host` would
	# resolve features without the workspace's dev-dependencies and rebuild
	# wasmtime from scratch.
	target/debug/rheostat test examples/tests

demo: build
	@echo "== rheostat check examples/policies/default.json"
	$(RHEOSTAT) check examples/policies/default.json
	@for f in examples/traffic/*.jsonl; do \
	  echo "== rheostat replay --summary (2 workers, random chunking) $$f"; \
	  $(RHEOSTAT) replay --policy examples/policies/default.json --workers 2 --chunking random --seed 1 --summary $$f; \
	done
	$(RHEOSTAT) drill

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
FUZZ_TARGETS := policy sse codec_request codec_response stream_differential normalize json_schema endpoints

fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	cd fuzz
	for t in $(FUZZ_TARGETS); do
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"
	  mkdir -p target/corpus/$$t
	  cargo +nightly fuzz run $$t target/corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS)
	done

# The edge build (README.md "Edge workers"): edge/ through wasm-bindgen into
# edge/worker/pkg/, tested in Miniflare (workerd from npm).
# The glue generator must be the exact version of the wasm-bindgen crate in
# Cargo.lock; it is installed once into .tools/ (a few minutes).
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/[^0-9.]/, ""); print}' Cargo.lock)
WASM_BINDGEN := .tools/bin/wasm-bindgen
EDGE_PKG := edge/worker/pkg
EDGE_WASM := $(EDGE_PKG)/rheostat_edge_bg.wasm
EDGE_NODE_MODULES := edge/worker/node_modules/.package-lock.json
export WRANGLER_SEND_METRICS := false

edge-tools:
	if ! $(WASM_BINDGEN) --version 2>/dev/null | grep -qx "wasm-bindgen $(WASM_BINDGEN_VERSION)"; then
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root .tools
	fi

edge: toolchain edge-tools
	$(CARGO) build --profile edge --target wasm32-unknown-unknown -p rheostat-edge
	$(WASM_BINDGEN) --target web --out-dir $(EDGE_PKG) --remove-name-section --remove-producers-section \
	  target/wasm32-unknown-unknown/edge/rheostat_edge.wasm
	@echo "built $(EDGE_WASM) ($$(stat -c %s $(EDGE_WASM)) bytes, $$(gzip -9c $(EDGE_WASM) | wc -c) gzipped)"

$(EDGE_NODE_MODULES): edge/worker/package.json edge/worker/package-lock.json
	cd edge/worker && npm ci --no-audit --no-fund

edge-test: edge $(EDGE_NODE_MODULES)
	cd edge/worker && node --test test/

# Serves the guarded worker on 127.0.0.1:8787 in front of UPSTREAM
# (POLICY defaults to examples/policies/default.json).
UPSTREAM ?=
POLICY ?= examples/policies/default.json
edge-serve: edge $(EDGE_NODE_MODULES)
	test -n "$(UPSTREAM)" || { echo "usage: make edge-serve UPSTREAM=http://127.0.0.1:PORT [POLICY=file.json]"; exit 2; }
	node edge/worker/serve.mjs --upstream "$(UPSTREAM)" --policy "$(POLICY)"

# Cold start and per-request overhead against a pass-through worker.
edge-bench: edge $(EDGE_NODE_MODULES)
	node edge/worker/bench.mjs

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude rheostat-probe --exclude rheostat-passthrough -- -D warnings

clean:
	$(CARGO) clean
