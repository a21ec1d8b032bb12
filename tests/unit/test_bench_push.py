"""The push simulation behind `make bench-push` runs, and shows push's promises at small scale."""

from __future__ import annotations

import pytest
from t2v_bench.push import burst_benchmark, steady_benchmark

pytestmark = pytest.mark.unit


def test_steady_traffic_with_push_looks_about_once_per_job_and_delivers_in_a_second() -> None:
    rows = {row["mode"]: row for row in steady_benchmark(jobs=240, sigmas=(0.1,), seed=3)}
    push, faulty, polling = rows["push"], rows["push, 10% dropped, 5% duplicated"], rows["polling only"]
    assert push["lag_median"] <= 1.5 and push["queries_mean"] <= 1.25  # 1.0-1.1 at 2,000 jobs
    assert polling["queries_mean"] > 2 * push["queries_mean"]
    # A lost push costs lag, never a job; and no second goes over the budget.
    assert faulty["undelivered"] == 0 and faulty["lag_p90"] <= polling["lag_p90"] * 1.2
    assert all(row["seconds_over_budget"] == 0 for row in rows.values())


def test_a_burst_never_exceeds_the_budget_and_every_job_is_delivered() -> None:
    rows = burst_benchmark(counts=(300,), seed=3)
    assert {row["mode"] for row in rows} == {"polling only", "push", "push, 10% dropped, 5% duplicated"}
    assert all(row["seconds_over_budget"] == 0 and row["undelivered"] == 0 for row in rows)
    by_mode = {row["mode"]: row for row in rows}
    assert by_mode["push"]["lag_median"] < by_mode["polling only"]["lag_median"]
