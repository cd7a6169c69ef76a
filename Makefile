# Rapport: `make run` starts the whole service with a demo practice; `make test` runs every test tier.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest
XDIST ?= 2

.PHONY: install run test test-quick test-integration test-e2e lint typecheck \
        bench-signals bench-submit bench-alerts bench-reconcile bench-report bench-seed bench-audit bench-faults bench-room clean

install:
	@infra/bootstrap.sh run

run:
	@infra/bootstrap.sh run
	@.venv/bin/rapport run

test:
	@infra/bootstrap.sh test
	@infra/run-tests.sh all

test-quick:
	@infra/bootstrap.sh test
	@infra/run-tests.sh quick

test-integration:
	@infra/bootstrap.sh test
	@infra/run-tests.sh integration

test-e2e:
	@infra/bootstrap.sh test
	@infra/run-tests.sh e2e

lint:
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy

typecheck:
	@.venv/bin/mypy

bench-signals:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_signals.py

bench-submit:
	@infra/bootstrap.sh bench
	@$(PY) tests/benchmarks/bench_submit.py

bench-alerts:
	@infra/bootstrap.sh bench
	@$(PY) tests/benchmarks/bench_alerts.py

bench-reconcile:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_reconcile.py

bench-report:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_report.py

bench-seed:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_seed.py

bench-audit:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_audit.py

bench-faults:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_faults.py

bench-room:
	@infra/bootstrap.sh test
	@$(PY) tests/benchmarks/bench_room.py

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache .hypothesis
