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
# The SAM CLI, pinned, in a venv of its own too. `sam build` needs python3.13 on PATH (the functions'
# python3.13 build and the layer's Makefile), so it runs with the interpreter's dir first on PATH.
SAM_VENV := .venv-sam
SAM_VERSION := 1.170.0
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_VERSION)
SAM := PATH="$(dir $(PYTHON313)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
PROMPT ?= 一只小猫在月光下奔跑
PYTEST_ARGS ?=
JOBS ?= 200

.PHONY: help venv checkov-venv sam-venv build deploy browser screenshots checks lint typecheck fmt test test-unit test-integration test-e2e templates demo sandbox soak bench clean \
	bench-build bench-stream bench-coldstart bench-cost bench-polling bench-rate bench-push bench-push-rate \
	bench-capacity bench-capacity-sandbox bench-batch bench-batch-cost

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml layers/shared/requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found on PATH or under pyenv ($(PYENV_ROOT)/versions/3.13*)"; exit 1; }
	@echo "bootstrapping $(VENV) with $(PYTHON313)"
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install everything (pinned)

# $(call tool-venv,DIR,REQUIREMENT): a venv of its own for one pinned tool; the target is its stamp.
define tool-venv
	@test -n "$(PYTHON313)" || { echo "error: python3.13 not found on PATH or under pyenv ($(PYENV_ROOT)/versions/3.13*)"; exit 1; }
	@echo "bootstrapping $(1) with $(PYTHON313)"
	@test -x $(1)/bin/python || $(PYTHON313) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --disable-pip-version-check '$(2)'
	@touch $@
endef

$(CHECKOV_STAMP):
	$(call tool-venv,$(CHECKOV_VENV),checkov==$(CHECKOV_VERSION))

checkov-venv: $(CHECKOV_STAMP) ## create .venv-checkov (checkov, pinned, apart from the project's pins)

# The console's browser tests drive Debian's chromium through Playwright (its own browser download
# cannot work offline). CI runs as root; elsewhere sudo is asked for. A no-op when it is there.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser: ## Debian's chromium for the console's browser tests (apt-get, only when missing)
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

$(SAM_STAMP):
	$(call tool-venv,$(SAM_VENV),aws-sam-cli==$(SAM_VERSION))

sam-venv: $(SAM_STAMP) ## create .venv-sam (the SAM CLI, pinned)

build: sam-venv ## sam validate --lint, then sam build into .aws-sam/build (what `sam deploy` ships)
	$(SAM) validate --lint
	$(SAM) build

DEPLOY_ARGS ?=
deploy: build ## sam deploy with samconfig.toml (its stack and region; DEPLOY_ARGS="--parameter-overrides ...")
	$(SAM) deploy $(DEPLOY_ARGS)

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
	@# statelint predates ItemReader's InputType (JSON Lines, 2025): it checks the batch machine without it.
	$(PY) -c 'import json,sys; d=json.load(open(sys.argv[1])); d["States"]["Lines"]["ItemReader"].pop("ReaderConfig"); json.dump(d, open(sys.argv[2], "w"))' \
		statemachine/batch.asl.json $(VENV)/.asl/batch.asl.json
	$(VENV)/bin/statelint $(VENV)/.asl/*.asl.json
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

# What `make test` runs before the tests, three at a time: the venvs install side by side, then the
# linters, the template checks and sam build (each target's output kept together).
checks: lint templates build browser ## venvs, linters, template checks, sam build (what `make test` runs first)

test: ## the checks (three at a time), then every default test tier (unit, integration, e2e) with coverage
	@$(MAKE) --no-print-directory -j3 --output-sync=target checks
	$(VENV)/bin/coverage erase
	@# Unit, functional and integration tests on both cores; the e2e tier (sandboxes, a browser,
	@# timing-sensitive waits) alone, after them. One coverage report over both runs.
	$(VENV)/bin/pytest -m "not slow" -p no:randomly -n 2 --cov --cov-report= \
		tests/unit tests/functional tests/integration $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m "not slow" -p no:randomly --cov --cov-append --cov-report= tests/e2e $(PYTEST_ARGS)
	$(VENV)/bin/coverage report

test-unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: venv
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

screenshots: venv browser ## the README's console pictures (docs/console-*.png), taken by its browser tests
	T2V_SCREENSHOT_DIR=docs $(VENV)/bin/pytest tests/e2e/test_console.py -p no:randomly -q

sandbox: venv ## start the sandbox in the foreground (Ctrl-C stops it)
	$(VENV)/bin/t2v sandbox up

demo: venv ## the main job: one prompt through the whole pipeline to an MP4 under out/
	$(VENV)/bin/t2v demo --prompt "$(PROMPT)" --out out

# Benchmarks (issue 7): each prints a table and writes JSON + PNG under docs/benchmarks/.
# Not tests: they take minutes and their figures depend on the machine's load.
BENCH := $(VENV)/.bench
BENCH_ARGS ?=

# Cold start (benchmark 4) measures what `sam build` makes: the template's own build (the layer's
# Makefile included) for this machine's architecture, and the reference, dashscope, installed and
# compiled the same way; both imported by a bare interpreter.
# DASHSCOPE_VERSION: the dev pin in pyproject.toml.
HOST_ARCH := $(shell uname -m | sed -e 's/aarch64/arm64/')
DASHSCOPE_VERSION := 2.0.2

$(BENCH)/python/bin/python: $(STAMP)
	$(PY) -m venv --without-pip $(BENCH)/python

$(BENCH)/dashscope/.installed: $(STAMP)
	rm -rf $(BENCH)/dashscope
	$(PYTHON313) -m pip install --quiet --disable-pip-version-check --no-compile --target $(BENCH)/dashscope/python 'dashscope==$(DASHSCOPE_VERSION)'
	$(PYTHON313) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BENCH)/dashscope/python
	@touch $@

bench-build: sam-venv $(BENCH)/python/bin/python $(BENCH)/dashscope/.installed ## sam build for this machine into .venv/.bench/build, + the reference
	T2V_LAYER_ARCH=$(HOST_ARCH) $(SAM) build --build-dir $(BENCH)/build --cache-dir $(BENCH)/cache

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

bench-capacity: venv ## issue 20: 20,000 jobs against an unknown provider cap of 50, refuse/queue x push on/off (simulation, ~1 min)
	$(PY) -m t2v_bench.capacity $(BENCH_ARGS)

CAPACITY_JOBS ?= 300
bench-capacity-sandbox: venv ## issue 20: 300 jobs from one .jsonl + a second caller's, emulator capped at 8, refuse then queue (~15 min)
	$(PY) -m t2v_bench.sandbox_capacity --jobs $(CAPACITY_JOBS) --cap 8 --over-cap refuse $(BENCH_ARGS)
	$(PY) -m t2v_bench.sandbox_capacity --jobs $(CAPACITY_JOBS) --cap 8 --over-cap queue $(BENCH_ARGS)

BATCH_LINES ?= 2000
BATCH_BAD ?= 20
bench-batch: venv ## issue 24: one .jsonl batch of 2,000 lines (20 refused) through the sandbox, emulator capped at 8, ceiling 16 (long: run on a quiet machine)
	$(PY) -m t2v_bench.sandbox_batch --lines $(BATCH_LINES) --bad $(BATCH_BAD) --cap 8 --ceiling 16 $(BENCH_ARGS)

bench-batch-cost: venv ## issue 24: batches vs the intake chain for 100,000 lines, per 1,000 lines at list prices (arithmetic, instant)
	$(PY) -m t2v_bench.batch_cost $(BENCH_ARGS)

bench-stream: venv ## 3. finalize streaming: 10 MiB, 200 MiB, 1 GiB into S3 (moto and a discard sink)
	$(PY) -m t2v_bench.stream $(BENCH_ARGS)

bench-coldstart: bench-build ## 4. cold start: every handler of the sam build artifact vs `import dashscope`
	$(PY) -m t2v_bench.coldstart --bench-dir $(BENCH) $(BENCH_ARGS)

bench-cost: venv ## 5. orchestration cost per job: 20 jobs through the sandbox, priced per 1,000 videos
	$(PY) -m t2v_bench.cost $(BENCH_ARGS)

soak: venv ## fault soak: JOBS jobs through the three doors under injected faults, then a verdict
	$(VENV)/bin/t2v soak --jobs $(JOBS)

clean:
	rm -rf .sandbox out .coverage .mypy_cache .ruff_cache .pytest_cache .aws-sam
