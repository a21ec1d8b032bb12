"""No production default to a fake: a port's adapter is passed in by the wiring, or nothing runs.

An in-memory stand-in as a default would let a wiring slip pass silently (a `MemoryPollStats` per
container drops the account-wide query budget); fakes live with the tests (`tests/fakes.py`).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from t2v import wiring
from t2v.adapters.poll_stats import PollStats
from t2v.usecases.ports import ProviderDeps

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared" / "t2v"
ENV = {"JOBS_TABLE": "jobs", "DASHSCOPE_SECRET_ID": "secret", "GENERATION_TIME_SCALE": "0.5"}


def test_the_provider_deps_take_the_poll_stats_from_their_caller() -> None:
    stats = next(f for f in dataclasses.fields(ProviderDeps) if f.name == "stats")

    assert stats.default is dataclasses.MISSING
    assert stats.default_factory is dataclasses.MISSING


def test_the_wiring_passes_the_dynamodb_poll_stats(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a submit or status function's environment (no AWS call happens until a first query)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    wiring.provider_deps.cache_clear()
    try:
        deps = wiring.provider_deps()
    finally:
        wiring.provider_deps.cache_clear()

    # Then the shared schedule is kept in the jobs table, seeded at the environment's time scale
    assert isinstance(deps.stats, PollStats)
    assert deps.stats._table_name == "jobs"
    assert deps.stats._default_scale == 0.5


def test_the_layer_defines_no_fake() -> None:
    stand_ins = sorted(
        f"{path.relative_to(LAYER)}:{node.name}"
        for path in LAYER.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.startswith(("Memory", "Fake", "InMemory"))
    )

    assert stand_ins == []
