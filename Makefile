# Entry points for developers and CI. Every target provisions what it needs first.
SHELL := /bin/bash
PY := .venv/bin/python
export PDM_CHECK_UPDATE := false

.PHONY: bootstrap provision test test-unit lint format demo bench stack-up stack-down stack-status

bootstrap:  ## Python environment (PDM + .venv from pdm.lock)
	@scripts/bootstrap.sh

provision: bootstrap  ## Kafka jars (Maven Central) and PostgreSQL (apt) when missing
	@$(PY) -m devstack provision

test: provision  ## The whole suite against a real Kafka broker and PostgreSQL
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: bootstrap  ## Only tests that need neither Kafka nor PostgreSQL
	@$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: bootstrap  ## ruff (lint + format check) and mypy --strict
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy

format: bootstrap
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

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
