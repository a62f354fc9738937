# Airlock — the two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

AGENT_TARGET := x86_64-unknown-linux-gnu
AGENT_DIR    := target/airlock-agent
AGENT_BIN    := $(AGENT_DIR)/airlock-agent-linux-amd64
TEST_IMAGE   ?= airlock-test-busybox:1
export AIRLOCK_AGENT_DIR := $(CURDIR)/$(AGENT_DIR)
export AIRLOCK_TEST_IMAGE := $(TEST_IMAGE)

.PHONY: help setup deps docker test-image agent build run serve test lint bench clean app gui-test

help:
	@echo "make run    build everything and start Airlock (the app, or the headless server without a display)"
	@echo "make test   set up what the tests need, lint, and run every test suite"
	@echo "make serve  the headless server only      make bench   benchmarks (release build)"
	@echo "make lint   fmt check + clippy            make setup   system packages, Docker, test image"

setup: deps docker test-image

deps:
	@scripts/deps.sh

docker:
	@scripts/docker-up.sh

test-image: docker
	@scripts/test-image.sh

# The static in-container helper, built for the gnu target so the flag stays off build scripts.
agent:
	@RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile agent -p airlock-agent --target $(AGENT_TARGET) --quiet
	@mkdir -p $(AGENT_DIR)
	@cp target/$(AGENT_TARGET)/agent/airlock-agent $(AGENT_BIN)

build: agent
	cargo build -p airlock --quiet

# The headless engine on its defaults: approvals from policy, MCP at http://127.0.0.1:7771/mcp.
serve: build docker
	target/debug/airlock serve --approver policy

run: agent docker
	@scripts/run.sh

# The tray app: its system packages, the engine built and placed as its sidecar, then the app.
SIDECAR := src-tauri/binaries/airlock-engine-$(shell rustc -vV | sed -n 's/^host: //p')
app: agent
	@scripts/gui-deps.sh
	cargo build -p airlock --quiet
	@mkdir -p src-tauri/binaries
	@cp target/debug/airlock $(SIDECAR)
	cargo build -p airlock-app --quiet

# The app's end-to-end tests under a virtual display (Xvfb, openbox, dunst, trayer).
gui-test: setup app
	@scripts/gui-test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

# Lint, the engine suites, the Python SDK suite and the GUI suite (scripts/test.sh runs them all).
test: setup agent app
	@scripts/test.sh

bench: setup
	@scripts/bench.sh

clean:
	cargo clean
