# Banditore: every developer and CI command. Each target creates/reuses the project venv.
SHELL := /bin/bash
# The Lambda runtime is Python 3.11 (the CDK stack asserts it): develop and test on the same.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= eu-south-1
# jsii silences its Node end-of-life banner only when told the major version it should ignore.
NODE_MAJOR := $(shell node -p "process.versions.node.split('.')[0]" 2>/dev/null)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := $(NODE_MAJOR)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := $(NODE_MAJOR)

.PHONY: install run demo test lint typecheck unit synth bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Banditore needs $(PYTHON) (the Lambda runtime's Python)."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip==26.2.1"  # pinned: chalice requires pip<26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## The local stack with the sample configuration, serving until Ctrl-C.
run: install
	$(VENV)/bin/banditore run

## One pass end to end on the bundled samples, then a summary of what was posted where.
demo: install
	$(VENV)/bin/banditore demo

## The whole suite: lint, types (strict on chalicelib/), unit, integration, infra and end-to-end tests.
test: install lint typecheck
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy chalicelib app.py

synth: install
	$(PY) infra/app.py

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf cdk.out .bench .pytest_cache .mypy_cache .ruff_cache .chalice/deployments
