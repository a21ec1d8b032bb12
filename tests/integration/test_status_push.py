"""The status function with push on: a woken turn gives its booked second back and looks at once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from t2v import wiring

from tests.integration.test_pipeline import CTX, env, start_event, status_app, submit_app  # noqa: F401

pytestmark = pytest.mark.integration


def booked(table: str, second: int) -> int:
    item = boto3.resource("dynamodb").Table(table).get_item(Key={"pk": f"slot#{second}"}).get("Item")
    return int(item["n"]) if item else 0


def test_a_woken_turn_releases_its_slot_looks_now_and_looks_again_soon(
    env: Any,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUSH_COMPLETION", "true")
    wiring.provider_deps.cache_clear()
    # Given a job whose task runs a while, and whose first (safety-net) look is booked well ahead
    env.emu.config.running_seconds = 10.0
    first = submit_app.lambda_handler(start_event("job-push"), CTX)
    assert first["park"] is True and first["wait_seconds"] >= 5
    slot = first["slot"]
    assert booked(env.stack.table, slot) == 1
    # When a push wakes it at once (long before the wait is over)
    turn = status_app.lambda_handler(first, CTX)
    # Then the booked second goes back, the provider is asked now, and (the task still running)
    # the next look comes a poll interval later, in another parked wait
    assert booked(env.stack.table, slot) == 0
    assert [r["endpoint"] for r in env.emu.requests()].count("query") == 1
    assert turn["decision"] == "WAIT" and turn["task_status"] in {"PENDING", "RUNNING"}
    assert turn["park"] is True and turn["wait_seconds"] <= 3
    assert env.stack.job("job-push")["checked_at"]


def test_push_off_never_parks(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("PUSH_COMPLETION", "false")
    wiring.provider_deps.cache_clear()
    first = submit_app.lambda_handler(start_event("job-poll"), CTX)
    assert first["park"] is False
    turn = status_app.lambda_handler(first, CTX)  # early, as a push would wake it: no release, no hint
    # The booked second is kept (a release would leave 0); the early turn books its next look anew,
    # which may fall in that same second.
    rebooked_same_second = turn["slot"] == first["slot"]
    assert booked(env.stack.table, first["slot"]) == 1 + rebooked_same_second
    assert turn["park"] is False
