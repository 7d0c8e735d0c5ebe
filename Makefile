# Entry points for developers and CI. Every target provisions what it needs first.
SHELL := /bin/bash
PY := .venv/bin/python
export PDM_CHECK_UPDATE := false

.PHONY: bootstrap provision test test-unit lint format contracts demo bench stack-up stack-down stack-status

bootstrap:  ## Python environment (PDM + .venv from pdm.lock)
	@scripts/bootstrap.sh

provision: bootstrap  ## Kafka jars (Maven Central); PostgreSQL, Prometheus, amtool, Chromium + ChromeDriver (apt); axe-core (npm): when missing
	@$(PY) -m devstack provision

# The critical paths (the consumer runner, the outbox and inbox, CJ callbacks, outcomes and monitor,
# LLM answering, submission triggering) and their floor of line coverage over the whole suite.
COVERAGE_FLOOR := 95
CRITICAL_PATHS := $(shell tr '\n' ',' < tests/coverage-critical-paths.txt)

test: provision  ## The whole suite against a real Kafka broker and PostgreSQL, with coverage
	@.venv/bin/lint-imports --no-cache
	@$(PY) -m pytest --cov --cov-report=term --durations=20 $(PYTEST_ARGS)
	@if [ -z "$(PYTEST_ARGS)" ]; then \
		echo "Critical paths (floor $(COVERAGE_FLOOR) % of lines):"; \
		$(PY) -m coverage report --no-skip-covered --include='$(CRITICAL_PATHS)' \
			--fail-under=$(COVERAGE_FLOOR); \
	fi

test-unit: bootstrap  ## Only tests that need neither Kafka nor PostgreSQL
	@$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: bootstrap  ## ruff (lint + format check), mypy --strict and the layer contracts
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy
	@.venv/bin/lint-imports --no-cache

format: bootstrap
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

contracts: bootstrap  ## docs/contracts/: AsyncAPI of every topic, OpenAPI of every HTTP API
	@$(PY) -m contract_docs

demo: provision  ## The main job: the sample CJ batch through the running services
	@$(PY) -m huleedu_cli.demo

bench: provision  ## Benchmarks; figures printed and written to benchmarks/results/
	@$(PY) -m benchmarks

stack-up: provision  ## Kafka, PostgreSQL and the services in the background
	@$(PY) -m devstack up

stack-down:
	@$(PY) -m devstack down

stack-status:
	@$(PY) -m devstack status
