"""Which provider tasks a job's unanswered create can have made: the window reconciliation trusts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from t2v.jobs import JobRecord
from t2v.times import iso
from t2v.usecases.reconcile import CREATE_MAX_SECONDS, create_window

CLOCK_SKEW_SECONDS = 1.0

SENT = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def window(**fields: object) -> tuple[float, float] | None:
    return create_window(
        JobRecord.model_validate({"pk": "job-w", "status": "ACCEPTED", **fields}), CLOCK_SKEW_SECONDS
    )


def test_no_create_sent_means_no_task_can_be_ours() -> None:
    assert window() is None


def test_a_lost_answer_closes_the_window_when_it_came() -> None:
    lost = SENT + timedelta(seconds=0.3)
    assert window(create_sent_at=iso(SENT), create_ambiguous_at=iso(lost)) == (
        SENT.timestamp() - CLOCK_SKEW_SECONDS,
        lost.timestamp() + CLOCK_SKEW_SECONDS,
    )


def test_a_create_whose_invocation_died_stays_open_as_long_as_a_create_can_reach_the_provider() -> None:
    expected_end = SENT.timestamp() + CREATE_MAX_SECONDS + CLOCK_SKEW_SECONDS
    assert window(create_sent_at=iso(SENT)) == (SENT.timestamp() - CLOCK_SKEW_SECONDS, expected_end)
    # A lost answer from an earlier create says nothing about this one.
    earlier = iso(SENT - timedelta(seconds=30))
    assert window(create_sent_at=iso(SENT), create_ambiguous_at=earlier) == (
        SENT.timestamp() - CLOCK_SKEW_SECONDS,
        expected_end,
    )
