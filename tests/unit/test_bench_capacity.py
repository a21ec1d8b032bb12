"""Issue 20's capacity simulation at a small scale: the invariants, not the timing figures."""

from __future__ import annotations

import pytest
from t2v_bench.capacity import Scenario, simulate


@pytest.mark.parametrize("mode", ["refuse", "queue"])
@pytest.mark.parametrize("push", [True, False])
def test_a_burst_never_exceeds_the_providers_cap_and_no_job_fails_for_capacity(mode: str, push: bool) -> None:
    # Given 300 jobs of one owner at once and 4 of another, a provider capped at 10, a ceiling of 20
    row, _ = simulate(Scenario(jobs=300, b_jobs=4, provider_cap=10, ceiling=20, mode=mode, push=push))
    # Then every job is delivered, none failed for capacity, and the provider never went over its cap
    assert row["delivered"] == 300
    assert row["failed_for_capacity"] == 0
    assert not row["provider_above_cap"]
    assert row["seconds_over_budget"] == 0
    if mode == "refuse":
        assert row["max_in_flight"] <= 10
    else:
        assert row["max_running"] <= 10
