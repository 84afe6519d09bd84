# The two commands from README.md: `make run` (demo on a fresh machine) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint services bench proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/modelport quickstart

services:
	./scripts/services.sh

test: $(STAMP) services
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n auto -q

bench: $(STAMP)
	$(BIN)/python bench/serve_bench.py

# the gRPC modules, generated from our .proto and committed (a test checks they are current)
proto: $(STAMP)
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
		--grpc_python_out=. modelport/serving/grpc/inference.proto

clean:
	rm -rf $(VENV) .modelport .pytest_cache .mypy_cache
