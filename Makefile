# Airlock — the two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Build output lives outside the clone, shared by every clone on this machine: a second clone
# (CI right after a session) reuses every compiled dependency as it is; its own crates build anew
# (their artifacts carry the clone's path in their names, so clones never mix libraries; the
# final binaries are the last build's). Set CARGO_TARGET_DIR to build elsewhere.
export CARGO_TARGET_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airlock/target
T := $(CARGO_TARGET_DIR)

AGENT_DIR    := $(T)/airlock-agent
TEST_IMAGE   ?= airlock-test-busybox:1
# The installer tests' image: Debian with python3, pip, venv, npm and cargo (scripts/test-image.sh).
INSTALLER_TEST_IMAGE ?= airlock-test-debian:1
export AIRLOCK_AGENT_DIR := $(AGENT_DIR)
export AIRLOCK_TEST_IMAGE := $(TEST_IMAGE)
export AIRLOCK_INSTALLER_TEST_IMAGE := $(INSTALLER_TEST_IMAGE)

# A compiler cache outside the clone (sccache, installed by scripts/deps.sh), used when present:
# a second clone on the same machine — CI right after a session — reuses compiled dependencies.
# Evaluated per recipe (`=`), so it applies from the step after the one that installed it.
# sccache's keys include every CARGO_* environment variable: set none here (nor CI-only ones),
# or a CI run would miss everything a developer's build cached.
TOOLS_DIR := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/airlock/tools
SCCACHE   := $(TOOLS_DIR)/venv/bin/sccache
export RUSTC_WRAPPER = $(if $(wildcard $(SCCACHE)),$(SCCACHE))
# One build serves lint and tests: the workspace's own crates compile through clippy with warnings
# denied (what `cargo clippy` checks, without a second, check-only build of every dependency).
export RUSTC_WORKSPACE_WRAPPER = $(shell command -v clippy-driver)
export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# Every cargo call of `make test` selects the same packages, targets and features, so no
# dependency is compiled twice with another feature set.
export AIRLOCK_CARGO_SELECTION := --workspace --all-targets --all-features

.PHONY: help setup deps docker test-image app-deps gui-deps agent build run serve test lint bench soak clean app gui-test bundle

help:
	@echo "make run    build everything and start Airlock (the app, or the headless server without a display)"
	@echo "make test   set up what the tests need, lint, and run every test suite"
	@echo "make serve  the headless server only      make bench   benchmarks (release build)"
	@echo "make lint   fmt check + clippy            make setup   system packages, Docker, test image"
	@echo "make bundle the installable app (.deb on Linux, .app and .dmg on macOS)"
	@echo "make soak   32 clients for 10 minutes on a release build (AIRLOCK_SOAK_SECS), with the figures"

setup: deps docker test-image

deps:
	@scripts/deps.sh

docker:
	@scripts/docker-up.sh

test-image: docker
	@scripts/test-image.sh

# What building the app needs; gui-deps adds what its tests need (Xvfb, WebDriver, tauri-driver).
app-deps:
	@scripts/gui-deps.sh --app

gui-deps:
	@scripts/gui-deps.sh

# The static in-container helper for each architecture the toolchain can build (scripts/agent.sh).
agent:
	@scripts/agent.sh

build: agent
	cargo build -p airlock --quiet

# The headless engine on its defaults: approvals from policy, MCP at http://127.0.0.1:7771/mcp.
serve: build docker
	$(T)/debug/airlock serve --approver policy

run: agent docker
	@scripts/run.sh

# The tray app: its system packages, then the engine and the app in one build, and the engine
# placed beside the app as its sidecar (`$(T)/debug/airlock-engine`).
app: agent app-deps
	cargo build --workspace --all-features --bins --quiet
	@scripts/place-sidecar.sh

# The installable app (Tauri's bundler; a .deb on Linux) in $(T)/release/bundle.
bundle: agent app-deps
	@scripts/bundle.sh

# The app's end-to-end tests under a virtual display (Xvfb, openbox, dunst, trayer).
gui-test: setup gui-deps app
	@scripts/gui-test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

# fmt, then one build of everything (linted as it compiles), then every suite: the engine suites,
# the Python SDK suite, the peer clients' suite and the GUI suite (scripts/test.sh).
test: setup gui-deps agent
	@scripts/test.sh

bench: setup
	@scripts/bench.sh

# The soak of `make test` (crates/airlock/tests/soak.rs), longer and on a release build.
soak: setup agent
	AIRLOCK_SOAK_SECS=$${AIRLOCK_SOAK_SECS:-600} cargo test --release -p airlock --test soak -- --nocapture

clean:
	cargo clean
