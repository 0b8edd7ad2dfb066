# Two set-up commands (see README): `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-tuning proto clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/shipyard demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# The suite's tests mostly wait on servers and subprocesses: two workers keep two cores busy (0: one process).
TEST_WORKERS ?= 2

test: $(VENV)/.installed-dev .venv-mlflow/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --durations=40

# The official MLflow client for the compatibility tests, in an environment of its own (it pins pyarrow).
.venv-mlflow/.installed: tests/mlflow_compat/requirements.txt
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet --upgrade pip
	.venv-mlflow/bin/pip install --quiet -r tests/mlflow_compat/requirements.txt
	touch $@

# Peers (MLflow) live in their own environment so they never touch the main one.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet --upgrade pip
	.venv-bench/bin/pip install --quiet -e '.[bench]'
	touch $@

bench: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/tracking.py

bench-tuning: .venv-bench/.installed
	.venv-bench/bin/python benchmarks/tuning.py

# The OIP v2 gRPC service's descriptors, from its .proto (tests/serving/test_grpc_messages.py checks they match).
proto: $(VENV)/.installed-dev
	$(BIN)/python -m grpc_tools.protoc -Ishipyard/serving/proto \
		--descriptor_set_out=shipyard/serving/proto/grpc_predict_v2.pb shipyard/serving/proto/grpc_predict_v2.proto

clean:
	rm -rf $(VENV) .venv-bench .venv-mlflow .pytest_cache .ruff_cache
