"""The emulator's fault plan model and its deterministic injector (no network)."""

from __future__ import annotations

import pytest
from dashscope_emulator.faults import FaultInjector, FaultPlan, FaultRule
from dashscope_emulator.tasks import parse_list_time, wire_time


def test_rule_defaults_and_validation() -> None:
    assert FaultRule(kind="task_failed").endpoint == "task"
    assert FaultRule(kind="task_failed").code == "InternalError.Algo"
    assert FaultRule(kind="drop_after_accept", endpoint="any").endpoint == "create"
    assert FaultRule(kind="reset_mid_download").endpoint == "media"
    assert FaultRule(endpoint="query", kind="error", code="ModelUnavailable").error_status == 503
    assert FaultRule(endpoint="query", kind="error").error_status == 500
    assert FaultRule(endpoint="query", kind="error", code="Throttling").error_status == 429
    with pytest.raises(ValueError, match="needs an endpoint"):
        FaultRule(kind="error")
    with pytest.raises(ValueError, match="only applies"):
        FaultRule(kind="drop_after_accept", endpoint="query")
    with pytest.raises(ValueError):
        FaultRule(endpoint="query", kind="error", rate=1.5)


def test_plan_round_trips_through_json() -> None:
    plan = FaultPlan(seed=9, rules=(FaultRule(endpoint="create", kind="error", times=2),))
    assert FaultPlan.model_validate_json(plan.model_dump_json()) == plan


def test_times_and_prompt_filter() -> None:
    injector = FaultInjector(
        FaultPlan(rules=(FaultRule(endpoint="create", kind="error", times=2, prompt_contains="bad"),))
    )
    assert injector.pick("create", "good")[1] is None
    assert injector.pick("create", "bad one")[1] is not None
    assert injector.pick("query", "bad one")[1] is None
    assert injector.pick("create", "bad two")[1] is not None
    assert injector.pick("create", "bad three")[1] is None
    assert injector.fired() == [2]


def test_latency_accumulates_and_first_other_rule_decides() -> None:
    injector = FaultInjector(
        FaultPlan(
            rules=(
                FaultRule(endpoint="any", kind="latency", latency_seconds=0.1),
                FaultRule(endpoint="query", kind="latency", latency_seconds=0.2),
                FaultRule(endpoint="query", kind="error", code="InternalError"),
                FaultRule(endpoint="query", kind="timeout"),
            )
        )
    )
    latency, rule = injector.pick("query")
    assert latency == pytest.approx(0.3)
    assert rule is not None
    assert rule.kind == "error"
    assert injector.pick("task") == (0.0, None)


def test_rates_replay_under_the_same_seed() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan(seed=seed, rules=(FaultRule(endpoint="query", kind="error", rate=0.5),))
        injector = FaultInjector(plan)
        return [injector.pick("query")[1] is not None for _ in range(64)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert 16 < sum(run(1)) < 48


def test_wire_times_are_beijing_time() -> None:
    epoch = parse_list_time("20260320103441")
    assert wire_time(epoch + 0.63) == "2026-03-20 10:34:41.630"
    with pytest.raises(ValueError):
        parse_list_time("2026-03-20")
