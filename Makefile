# Firebreak: `make demo` runs the seed incident drill offline; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV ?= .venv
VENV_LINT ?= .venv-lint
FIREBREAK := target/debug/firebreak
SEED_DRILL ?= events/scenarios/seed-connection-pool

.PHONY: help demo test test-rust test-drills lint lint-rust venv bench firebreak

help:
	@echo "make demo    run the seed incident drill offline and print what Firebreak did"
	@echo "make test    every test: lint, unit, adapters, integration (moto), drills, smoke"
	@echo "make lint    cargo fmt --check, clippy -D warnings, template checks"
	@echo "make build   release arm64 Lambda zips (cargo lambda)"
	@echo "make deploy  sam build && sam deploy"
	@echo "make invoke  FN=triage EVENT=events/sns-metric-alarm.json against cargo lambda watch"
	@echo "make bench   query engine and function budgets"
	@echo "make fault   fault injection, many seeds over the drills and a storm (FIREBREAK_FAULT_SEEDS=N)"

firebreak:
	$(CARGO) build -q -p firebreak-cli

demo: firebreak
	$(FIREBREAK) drill $(SEED_DRILL)

venv:
	scripts/venv.sh

lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint: lint-rust lint-infra

test-rust: venv
	$(CARGO) nextest run --workspace --no-fail-fast

test-drills: firebreak
	$(FIREBREAK) runbook lint runbooks
	@set -e; for d in events/scenarios/*/; do \
	  echo "drill $$d"; $(FIREBREAK) drill "$$d" --check > /dev/null; \
	done; echo "all drills passed"
	$(FIREBREAK) drill coverage > /dev/null || { $(FIREBREAK) drill coverage; echo "a shipped runbook has no passing drill" >&2; exit 1; }
	@echo "every shipped runbook has a passing drill"

test: lint test-rust test-drills smoke

bench: bench-insights bench-functions

bench-insights:
	crates/insights/bench.sh
	crates/insights/bench-duckdb.sh

-include mk/infra.mk
-include mk/fault.mk
