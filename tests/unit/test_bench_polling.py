"""The polling simulation behind `make bench` runs, and shows the schedule's promises at small scale."""

from __future__ import annotations

import pytest
from t2v_bench.polling import lag_benchmark, rate_benchmark

pytestmark = pytest.mark.unit


def test_a_burst_of_jobs_never_exceeds_the_budget_in_any_second() -> None:
    results = rate_benchmark(counts=(300,), seed=3)
    rows = {row["poller"]: row for row in results["rows"]}
    assert rows["ours"]["peak_per_second"] <= results["budget"]
    assert rows["ours"]["seconds_over_budget"] == 0
    # the anchor it is compared with does not hold the budget
    assert rows["sdk"]["peak_per_second"] > results["budget"]
    assert all(row["total_queries"] >= 300 for row in rows.values())  # every job was seen to finish


def test_steady_traffic_needs_far_fewer_queries_than_the_sdk_for_similar_lag() -> None:
    results = lag_benchmark(jobs=240, sigmas=(0.05,), seed=3)
    rows = {row["poller"]: row for row in results["rows"]}
    assert rows["ours"]["queries_mean"] < rows["sdk"]["queries_mean"] / 4
    assert rows["ours"]["lag_median"] < rows["fixed15"]["lag_median"]
    assert rows["ours"]["lag_median"] <= 4.0
