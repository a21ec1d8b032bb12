"""The schedule with push on: polling only where a lost push would cost too much."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from t2v.schedule import (
    Observation,
    Policy,
    TierHistory,
    book_query,
    fallback_wait,
    hinted_offsets,
    next_wait,
    predicted_finishes,
    quantile,
    woken_early,
)

from tests.fakes import MemoryPollStats

pytestmark = pytest.mark.unit

PUSH = Policy(push=True)
HISTORY = TierHistory(queue=(3.0,) * 8, run=tuple(100.0 + i for i in range(8)))


def running(now: float, *, hinted: bool = False) -> Observation:
    return Observation(
        now=now, submitted_at=0.0, deadline=7200.0, state="RUNNING", queued_seconds=3.0, hinted=hinted
    )


def test_push_off_is_exactly_the_polling_schedule() -> None:
    for now in (0.0, 50.0, 100.0, 104.0, 110.0, 300.0):
        obs = running(now)
        assert next_wait(obs, HISTORY, Policy()) == next_wait(obs, HISTORY, replace(PUSH, push=False))


def test_push_on_looks_once_at_the_late_quantile_then_backs_off_doubling() -> None:
    tail = quantile(predicted_finishes(running(0.0), HISTORY), PUSH.tail_quantile)
    # From the start, the single safety-net look lands at the late quantile (no dense polling).
    assert next_wait(running(0.0), HISTORY, PUSH) == pytest.approx(tail)
    # Past it, each look waits as long again as the task has overrun (plus a poll interval).
    assert fallback_wait(running(tail + 10), HISTORY, PUSH) == pytest.approx(PUSH.dense_seconds + 10)
    assert fallback_wait(running(tail + 40), HISTORY, PUSH) == pytest.approx(PUSH.dense_seconds + 40)


def test_a_push_seen_before_the_query_shows_the_finish_gets_a_look_soon() -> None:
    assert next_wait(running(50.0, hinted=True), HISTORY, PUSH) == PUSH.dense_seconds


@given(now=st.floats(0, 5000, allow_nan=False), active=st.integers(1, 50_000))
@settings(max_examples=200)
def test_push_waits_stay_within_budget_and_deadline(now: float, active: int) -> None:
    obs = Observation(now=now, submitted_at=0.0, deadline=7200.0, active_jobs=active)
    wait = next_wait(obs, HISTORY, PUSH)
    assert 0 <= wait <= max(7200.0 - now, 0.0)
    if now + active / PUSH.budget_qps < 7200.0:
        assert wait >= min(active / PUSH.budget_qps, 7200.0 - now) - 1e-9


def test_safety_net_looks_leave_room_for_looks_a_push_asked_for() -> None:
    stats = MemoryPollStats()
    booked = [
        book_query(stats, 5.0, now=0.0, deadline=7200.0, active_jobs=1, policy=PUSH).slot for _ in range(8)
    ]
    assert booked == [5] * 8  # half of the 16 slots of second 5
    assert book_query(stats, 5.0, now=0.0, deadline=7200.0, active_jobs=1, policy=PUSH).slot == 6
    hinted = [
        book_query(stats, 5.0, now=0.0, deadline=7200.0, active_jobs=1, policy=PUSH, hinted=True).slot
        for _ in range(8)
    ]
    assert hinted == [5] * 8  # a hinted look may fill the rest
    assert stats.slots[5] == 16
    stats.release(5)
    assert stats.slots[5] == 15
    stats.release(99)  # nothing booked there: no negative count
    assert 99 not in stats.slots or stats.slots[99] == 0


def test_hinted_probes_cover_one_budget_gap_shifted_by_the_job() -> None:
    offsets = hinted_offsets(625.0, 20, phase=0.0)
    assert offsets[:8] == list(range(8))
    assert max(offsets) == 8 + 625 and len(offsets) == 20 and offsets == sorted(set(offsets))
    assert hinted_offsets(625.0, 20, phase=0.5) != offsets
    assert max(hinted_offsets(1.0, 20)) <= 8 + 16  # a small gap still spreads a little


def test_woken_early_tells_a_push_from_a_timeout() -> None:
    assert woken_early(100.0, 30, now=110.0)  # 20 s before the wait was over
    assert not woken_early(100.0, 30, now=129.5)  # the timeout, give or take dispatch
    assert not woken_early(None, 30, now=110.0)
    assert not woken_early(100.0, None, now=110.0)


def test_fallback_share_is_validated() -> None:
    with pytest.raises(ValueError, match="fallback_share"):
        Policy(fallback_share=0)
    assert Policy(push=True, budget_qps=1).booking_limit() == 1
