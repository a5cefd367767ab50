# Rheostat — every target is documented in README.md ("Makefile targets").
SHELL := bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM_DIR := target/$(WASM_TARGET)/release
FILTER_WASM := $(WASM_DIR)/rheostat_filter.wasm
RHEOSTAT := target/release/rheostat

.PHONY: all build wasm toolchain test demo bench fuzz lint clean

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

demo: build
	@echo "== rheostat check examples/policies/default.json"
	$(RHEOSTAT) check examples/policies/default.json
	@for f in examples/traffic/*.jsonl; do \
	  echo "== rheostat replay --summary (2 workers, random chunking) $$f"; \
	  $(RHEOSTAT) replay --policy examples/policies/default.json --workers 2 --chunking random --seed 1 --summary $$f; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --exclude rheostat-probe --exclude rheostat-passthrough -- -D warnings

clean:
	$(CARGO) clean
