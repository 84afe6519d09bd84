# The two commands from README.md: `make run` (demo on a fresh machine) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
# One stamp per install: `run` needs only the package and its base dependencies (a minute),
# `test` the whole dev tool chain; neither undoes the other.
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)

.PHONY: run test fuzz lint services bench docs proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/modelport quickstart

services:
	./scripts/services.sh

# coverage floor: the in-process figure when it was set (83.5 %, 2026-12-01); raise it, never lower it
COVERAGE_FLOOR := 83

test: $(DEV_STAMP) services
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n auto -q --cov=modelport --cov-report=term:skip-covered \
		--cov-fail-under=$(COVERAGE_FLOOR)

# schemathesis against the OpenAPI document, with and without a key, at length (the suite
# runs the same test with 5 examples per operation); FUZZ_EXAMPLES sets how many
FUZZ_EXAMPLES ?= 100
fuzz: $(DEV_STAMP)
	MODELPORT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/api/test_fuzz.py -n 2 -q -rA \
		--timeout 1800 -p no:cacheprovider

docs: $(RUN_STAMP)
	$(BIN)/python -m modelport.cli.reference > docs/cli.md

bench: $(DEV_STAMP)
	$(BIN)/python bench/serve_bench.py

# the gRPC modules, generated from our .proto and committed (a test checks they are current)
proto: $(DEV_STAMP)
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		--grpc_python_out=. modelport/serving/grpc/inference.proto

clean:
	rm -rf $(VENV) .modelport .pytest_cache .mypy_cache
