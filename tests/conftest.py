"""Shared fixtures. Tiers are marked by folder: tests/unit, tests/functional, tests/integration, tests/e2e."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# A loaded 2-core CI machine must not turn slow data generation into failures.
settings.register_profile(
    "project", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150
)
settings.load_profile("project")

ROOT = Path(__file__).resolve().parents[1]

# Powertools reads these when a handler module is imported; in Lambda the template sets them.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TextToVideoTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "t2v-tests")
EVENTS = ROOT / "events"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if tier in {"unit", "functional", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, tier))


def lambda_context(function_name: str, *, memory_mb: int = 256, request_id: str = "req-1") -> Any:
    """What a handler may read of its Lambda context, for calling handlers in-process."""
    return SimpleNamespace(
        function_name=function_name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        aws_request_id=request_id,
        get_remaining_time_in_millis=lambda: 30_000,
    )


def load_event(name: str) -> dict[str, Any]:
    """The one events corpus (events/*.json) serves `sam local invoke -e`, the docs and the tests."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A real DashScope emulator on a free loopback port, fast timers, fresh for each test."""
    from dashscope_emulator.server import Emulator, EmulatorConfig

    emu = Emulator(EmulatorConfig(pending_seconds=0.2, running_seconds=0.5))
    emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        emu.stop()
