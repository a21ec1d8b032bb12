# The single interface of the project. `make test` and `make demo` bootstrap everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON313 ?= $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' 2>/dev/null && command -v python3.13 || ls $(PYENV_ROOT)/versions/3.13*/bin/python3.13 2>/dev/null | tail -n 1)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov's own dependency pins clash with the project's, so it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
PROMPT ?= 一只小猫在月光下奔跑
PYTEST_ARGS ?=
JOBS ?= 200

.PHONY: help venv checkov-venv lint typecheck fmt test test-unit test-integration test-e2e templates demo sandbox soak bench clean \
	bench-env bench-stream bench-coldstart bench-cost bench-polling bench-rate bench-push bench-push-rate

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found on PATH or under pyenv ($(PYENV_ROOT)/versions/3.13*)"; exit 1; }
	@echo "bootstrapping $(VENV) with $(PYTHON313)"
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install everything (pinned)

$(CHECKOV_STAMP):
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found on PATH or under pyenv ($(PYENV_ROOT)/versions/3.13*)"; exit 1; }
	@echo "bootstrapping $(CHECKOV_VENV) with $(PYTHON313)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON313) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	@touch $(CHECKOV_STAMP)

checkov-venv: $(CHECKOV_STAMP) ## create .venv-checkov (checkov, pinned, apart from the project's pins)

lint: venv ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: venv ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

templates: venv checkov-venv ## cfn-lint and checkov on template.yaml, statelint on the state machine
	$(VENV)/bin/cfn-lint template.yaml
	@# statelint checks the machine as deployed: ${AfterSubmit} is the template's one state-name substitution.
	@mkdir -p $(VENV)/.asl
	for next in WaitForVideo ParkForPush; do \
		sed "s/\$${AfterSubmit}/$$next/" statemachine/pipeline.asl.json > $(VENV)/.asl/pipeline-$$next.asl.json; \
	done
	$(VENV)/bin/statelint $(VENV)/.asl/*.asl.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

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

# Benchmarks (issue 7): each prints a table and writes JSON + PNG under docs/benchmarks/.
# Not tests: they take minutes and their figures depend on the machine's load.
BENCH := $(VENV)/.bench
BENCH_ARGS ?=

$(BENCH)/.installed: layers/shared/requirements.txt $(STAMP)
	rm -rf $(BENCH)
	$(PY) -m venv --without-pip $(BENCH)/python
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(BENCH)/layer -r layers/shared/requirements.txt
	@touch $@

bench-env: $(BENCH)/.installed ## a bare interpreter + the layer's pinned requirements (what Lambda imports)

bench: bench-polling bench-rate bench-stream bench-coldstart bench-cost ## run all five benchmarks (about 30 min)

bench-polling: venv ## 1+2. lag and queries per job; account query rate at 1,000 and 10,000 jobs (simulation, ~10 s)
	$(PY) -m t2v_bench.polling $(BENCH_ARGS)

bench-rate: venv ## 2. 120 concurrent jobs through the sandbox at real time: queries/s seen by the emulator (~5 min)
	$(PY) -m t2v_bench.sandbox_rate --jobs 120 --budget 16
	$(PY) -m t2v_bench.sandbox_rate --jobs 120 --budget 4

bench-push: venv ## issue 13: push on vs polling only, simulation (steady; 100 / 1,000 / 10,000 at once; 10% dropped, 5% duplicated)
	$(PY) -m t2v_bench.push $(BENCH_ARGS)

bench-push-rate: venv ## issue 13: 120 jobs from one .jsonl through the sandbox at real time, push on then off (~5 min)
	$(PY) -m t2v_bench.sandbox_rate --jobs 120 --budget 16 --push on
	$(PY) -m t2v_bench.sandbox_rate --jobs 120 --budget 16 --push off

bench-stream: venv ## 3. finalize streaming: 10 MiB, 200 MiB, 1 GiB into S3 (moto and a discard sink)
	$(PY) -m t2v_bench.stream $(BENCH_ARGS)

bench-coldstart: bench-env ## 4. cold start: every handler's import time vs `import dashscope`
	$(PY) -m t2v_bench.coldstart --bench-dir $(BENCH) $(BENCH_ARGS)

bench-cost: venv ## 5. orchestration cost per job: 20 jobs through the sandbox, priced per 1,000 videos
	$(PY) -m t2v_bench.cost $(BENCH_ARGS)

soak: venv ## fault soak: JOBS jobs through the three doors under injected faults, then a verdict
	$(VENV)/bin/t2v soak --jobs $(JOBS)

clean:
	rm -rf .sandbox out .coverage .mypy_cache .ruff_cache .pytest_cache
