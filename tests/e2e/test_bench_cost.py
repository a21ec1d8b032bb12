"""The cost benchmark runs end to end on the real template (two short jobs), so it cannot rot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from t2v_bench import cost


def test_cost_benchmark_counts_transitions_and_invocations_per_job(tmp_path: Path) -> None:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the cost benchmark runs against the emulator only")
    settings = cost.Settings(jobs=2, concurrency=2, generation_seconds=20.0, pending_seconds=5.0)

    data = cost.run(settings, out_dir=tmp_path)

    measured = data["measured"]
    assert data["failed_executions"] == 0
    # Stagger, Submit, (Wait, CheckStatus, RouteByState) per poll, Finalize, Done
    polls = measured["polls_per_job"]
    assert polls >= 1 and measured["transitions_per_job"]["median"] >= 4 + 3 * polls  # + any retries
    assert measured["invocations_by_function_per_job"]["SubmitFunction"] == 1
    assert measured["invocations_by_function_per_job"]["FinalizeFunction"] == 1
    assert measured["aws_requests_per_job"]["sns:Publish"] == 1
    assert measured["usd_per_1000"] > 0
    assert json.loads((tmp_path / "cost.json").read_text())["benchmark"] == "cost"
