"""The EMF adapter: each signal is one embedded-metric-format line on stdout at once, in the
namespace of the environment, with the `service` dimension (and `status` for JobsEnded)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from t2v.adapters.metrics import EmfSignals
from t2v.signals import Signal


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_count_is_written_at_once_with_the_service_dimension(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Ops")
    EmfSignals(service="t2v").count(Signal.CALLBACK_TOKEN_REFUSALS)

    [line] = lines(capsys)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Ops"
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "CallbackTokenRefusals", "Unit": "Count"}]
    assert (line["service"], line["CallbackTokenRefusals"]) == ("t2v", [1.0])


def test_jobs_ended_carries_its_status_and_a_percent_its_unit(capsys: pytest.CaptureFixture[str]) -> None:
    signals = EmfSignals(namespace="Ops", service="t2v")
    signals.count(Signal.JOBS_ENDED, status="TIMED_OUT")
    signals.percent(Signal.BUDGET_USED_PERCENT, 91.5)

    ended, budget = lines(capsys)
    assert ended["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "status"]]
    assert ended["status"] == "TIMED_OUT"
    assert budget["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "BudgetUsedPercent", "Unit": "Percent"}
    ]
    assert budget["BudgetUsedPercent"] == [91.5]
