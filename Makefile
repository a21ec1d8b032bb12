# The single interface of the project. `make test` and `make demo` bootstrap everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON313 ?= $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' 2>/dev/null && command -v python3.13 || ls $(PYENV_ROOT)/versions/3.13*/bin/python3.13 2>/dev/null | tail -n 1)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROMPT ?= 一只小猫在月光下奔跑
PYTEST_ARGS ?=
JOBS ?= 200

.PHONY: help venv lint typecheck fmt test test-unit test-integration test-e2e templates demo sandbox soak bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found on PATH or under pyenv ($(PYENV_ROOT)/versions/3.13*)"; exit 1; }
	@echo "bootstrapping $(VENV) with $(PYTHON313)"
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install everything (pinned)

lint: venv ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: venv ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

templates: venv ## cfn-lint on template.yaml, statelint on the state machine
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/statelint statemachine/*.asl.json

test: lint templates ## lint, then every default test tier (unit, integration, e2e) with coverage
	$(VENV)/bin/coverage erase
	$(VENV)/bin/coverage run -m pytest -m "not slow" -p no:randomly $(PYTEST_ARGS)
	$(VENV)/bin/coverage report

test-unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

sandbox: venv ## start the sandbox in the foreground (Ctrl-C stops it)
	$(VENV)/bin/t2v sandbox up

demo: venv ## the main job: one prompt through the whole pipeline to an MP4 under out/
	$(VENV)/bin/t2v demo --prompt "$(PROMPT)" --out out

soak: venv ## fault soak: JOBS jobs through the three doors under injected faults, then a verdict
	$(VENV)/bin/t2v soak --jobs $(JOBS)

clean:
	rm -rf .sandbox out .coverage .mypy_cache .ruff_cache .pytest_cache
