"""The adaptive poll schedule's promises: within budget, within the deadline, bounded history."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from t2v.families import tier_of
from t2v.schedule import (
    SLOT_MARGIN,
    GenerationTier,
    Observation,
    Policy,
    TierHistory,
    budget_gap,
    claim_now,
    default_history,
    desired_wait,
    estimate_latency,
    first_wait,
    next_wait,
    phase_of,
    plan_wait,
    predicted_finishes,
    quantile,
    queue_and_run,
    reserve_slot,
    slot_check,
)

from tests.fakes import MemoryPollStats

pytestmark = pytest.mark.unit

POLICY = Policy()
seconds = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
histories = st.builds(
    TierHistory,
    queue=st.lists(st.floats(0, 600, allow_nan=False), max_size=40).map(tuple),
    run=st.lists(st.floats(1, 900, allow_nan=False), max_size=40).map(tuple),
)

T720 = GenerationTier(resolution="720P", seconds=5, audio=False)


@st.composite
def observations(draw: st.DrawFn) -> Observation:
    submitted = draw(st.floats(1e9, 2e9, allow_nan=False))
    elapsed = draw(seconds)
    state = draw(st.sampled_from(["SUBMITTED", "PENDING", "RUNNING"]))
    return Observation(
        now=submitted + elapsed,
        submitted_at=submitted,
        deadline=submitted + draw(st.floats(60, 86400, allow_nan=False)),
        state=state,
        queued_seconds=draw(st.none() | st.floats(0, 600, allow_nan=False)) if state == "RUNNING" else None,
        active_jobs=draw(st.integers(0, 20000)),
    )


@given(obs=observations(), history=histories)
def test_the_wait_never_passes_the_deadline_and_never_outruns_the_budget(
    obs: Observation, history: TierHistory
) -> None:
    wait = next_wait(obs, history, POLICY)
    remaining = obs.deadline - obs.now
    if remaining <= 0:
        assert wait == 0
        return
    assert 0 < wait <= remaining + 1e-9
    if wait < remaining:  # only the deadline may cut a wait below the budget's spacing
        assert wait >= budget_gap(obs.active_jobs, POLICY) - 1e-9
        assert wait >= POLICY.min_wait


@given(obs=observations(), history=histories, phase=st.floats(0, 1, exclude_max=True))
def test_the_first_wait_is_spread_but_still_within_the_deadline(
    obs: Observation, history: TierHistory, phase: float
) -> None:
    wait = first_wait(obs, history, POLICY, phase=phase)
    remaining = max(obs.deadline - obs.now, 0.0)
    own = min(max(desired_wait(obs, history, POLICY), POLICY.min_wait), POLICY.max_wait)
    assert wait <= remaining + 1e-9
    # the spread adds at most one budget gap to the schedule's own wish
    assert min(own, remaining) - 1e-9 <= wait <= own + budget_gap(obs.active_jobs, POLICY) + 1e-9


@given(
    history=histories,
    samples=st.lists(st.tuples(st.floats(-5, 600), st.floats(-5, 900)), max_size=100),
    limit=st.integers(1, 64),
)
def test_the_history_keeps_at_most_its_limit_newest_last(
    history: TierHistory, samples: list[tuple[float, float]], limit: int
) -> None:
    for queue, run in samples:
        history = history.add(queue=queue, run=run, limit=limit)
        assert len(history.queue) <= limit and len(history.run) <= limit
        assert history.run[-1] == max(0.0, run)
        assert min(history.queue) >= 0 and min(history.run) >= 0


@settings(max_examples=50)
@given(
    wanted=st.lists(st.integers(0, 40), min_size=1, max_size=600),
    budget=st.sampled_from([1.0, 4.0, 16.0, 20.0]),
)
def test_the_slot_ledger_never_admits_more_than_the_budget_in_any_second(
    wanted: list[int], budget: float
) -> None:
    # Given many jobs asking for slots, most of them for the same few seconds
    policy = Policy(budget_qps=budget)
    ledger = MemoryPollStats()
    booked = [reserve_slot(ledger, float(second), policy=policy) for second in wanted]
    # Then no second holds more than the budget, and every booking is at or after its wish
    assert max(ledger.slots.values()) <= math.floor(budget)
    assert all(slot is None or slot >= want for slot, want in zip(booked, wanted, strict=True))
    assert sum(slot is not None for slot in booked) == sum(ledger.slots.values())


def test_a_full_stretch_of_seconds_books_nothing() -> None:
    ledger = MemoryPollStats()
    policy = Policy(budget_qps=1)
    for second in range(100, 100 + 7 + 2**12 + 1):
        assert ledger.take(second, 1)
    # the probes reach 7 + 2**12 seconds out with 20 probes: all full
    assert reserve_slot(ledger, 100.0, policy=policy, max_probes=20) is None
    # one more probe strides past the full stretch
    assert reserve_slot(ledger, 100.0, policy=policy, max_probes=21) == 100 + 7 + 2**13


@given(
    slot=st.integers(10, 10**6),
    lead=st.floats(1.0, 600, allow_nan=False),
    latency=st.floats(0.0, 0.5, allow_nan=False),
)
def test_the_planned_wait_lands_the_query_inside_its_slot(slot: int, lead: float, latency: float) -> None:
    # Given a booking `lead` seconds ahead and a dispatch latency anywhere from 0 to 0.5 s
    now = slot - lead
    pause, wait = plan_wait(slot, now)
    # Then the pause is under a second, the wait whole, and the query lands inside the slot
    assert 0 <= pause < 1 and isinstance(wait, int) and wait >= 0
    landing = now + pause + wait + latency
    assert slot <= landing < slot + 1 - SLOT_MARGIN
    assert slot_check(slot, landing) == 0.0  # so the status function then queries at once


def test_the_first_poll_comes_near_the_expected_finish_not_at_once() -> None:
    # Given a tier that reliably takes about 100 s
    history = TierHistory(queue=(2.0,) * 10, run=tuple(95.0 + i for i in range(10)))
    obs = Observation(now=1000.0, submitted_at=1000.0, deadline=9000.0)
    # Then the first query waits until just before the early finishers
    wait = next_wait(obs, history, POLICY)
    assert 90 <= wait <= 100


def test_around_the_expected_finish_polls_are_dense_then_back_off_when_late() -> None:
    history = TierHistory(queue=(0.0,), run=tuple(float(r) for r in range(95, 106)))
    start = 1000.0
    running = {"submitted_at": start, "deadline": start + 7200, "state": "RUNNING", "queued_seconds": 0.0}
    near = next_wait(Observation(now=start + 99, **running), history, POLICY)  # type: ignore[arg-type]
    late = next_wait(Observation(now=start + 200, **running), history, POLICY)  # type: ignore[arg-type]
    later = next_wait(Observation(now=start + 1000, **running), history, POLICY)  # type: ignore[arg-type]
    assert near == POLICY.dense_seconds
    assert near < late < later <= POLICY.max_wait


def test_an_uncertain_tier_widens_the_spacing_instead_of_adding_queries() -> None:
    history = TierHistory(queue=(0.0,), run=tuple(float(r) for r in range(50, 500, 10)))
    obs = Observation(now=1200.0, submitted_at=1000.0, deadline=9000.0, state="RUNNING", queued_seconds=0.0)
    finishes = predicted_finishes(obs, history)
    spread = quantile(finishes, POLICY.tail_quantile) - quantile(finishes, POLICY.first_quantile)
    assert desired_wait(obs, history, POLICY) == pytest.approx(spread / POLICY.max_dense_polls)
    assert spread / POLICY.max_dense_polls > POLICY.dense_seconds


def test_many_active_jobs_stretch_every_wait_to_share_the_budget() -> None:
    history = default_history(T720)
    obs = Observation(now=1100.0, submitted_at=1000.0, deadline=99000.0, active_jobs=1000)
    assert next_wait(obs, history, POLICY) >= 1000 / 16


def test_a_task_still_queued_is_expected_no_sooner_than_a_full_run_from_now() -> None:
    history = TierHistory(queue=(1.0,), run=(60.0,))
    obs = Observation(now=1300.0, submitted_at=1000.0, deadline=99000.0, state="PENDING")
    assert predicted_finishes(obs, history) == [1360.0]


def test_tiers_and_defaults() -> None:
    assert GenerationTier.of("1920*1080", 8, True).key == "1080P/8s/audio"
    assert GenerationTier.of("640*360", 5, False).key == "360P/5s/silent"
    assert tier_of({"prompt": "p"}) == T720
    slow, quick = (
        default_history(GenerationTier.of("1920*1080", 8, True)),
        default_history(GenerationTier.of("640*360", 5, False)),
    )
    assert min(slow.run) > max(quick.run)
    assert default_history(T720, scale=0.1).run[2] == pytest.approx(3.0)
    assert 0 <= phase_of("job-1") < 1 and phase_of("job-1") != phase_of("job-2")


def test_provider_times_give_queue_and_run_seconds() -> None:
    times = {
        "submit_time": "2026-03-20 10:34:41.630",
        "scheduled_time": "2026-03-20 10:34:43.630",
        "end_time": "2026-03-20 10:35:12.130",
    }
    assert queue_and_run(times) == (pytest.approx(2.0), pytest.approx(28.5))
    assert queue_and_run({"submit_time": "garbage"}) == (None, None)
    assert queue_and_run({}) == (None, None)


@pytest.mark.parametrize(
    "kwargs",
    [{"budget_qps": 0}, {"first_quantile": 0.9, "tail_quantile": 0.5}, {"history_limit": 0}],
)
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        Policy(**kwargs)  # type: ignore[arg-type]


def test_a_turn_queries_only_inside_its_booked_second() -> None:
    assert slot_check(100, 99.7) == pytest.approx(0.3)  # early: pause until the second begins
    assert slot_check(100, 100.5) == 0.0
    assert slot_check(100, 100.0 + 1 - SLOT_MARGIN) is None  # too late to arrive inside it
    assert slot_check(100, 95.0) is None  # far too early (a time-scaled sandbox)
    assert slot_check(None, 100.0) is None  # never booked


def test_a_turn_off_its_booking_takes_the_current_second_only_if_it_has_room() -> None:
    ledger, policy = MemoryPollStats(), Policy(budget_qps=2)
    assert claim_now(ledger, 100.3, policy) == 0.0
    assert claim_now(ledger, 100.5, policy) == 0.0
    assert claim_now(ledger, 100.6, policy) is None  # second 100 is full
    assert claim_now(ledger, 100.9, policy) == pytest.approx(0.1)  # too little left: the next one
    assert ledger.slots == {100: 2, 101: 1}


def test_the_latency_estimate_follows_what_the_execution_observes() -> None:
    # Given turns that start 0.85 s after the Wait state should have ended
    estimate = estimate_latency(None, returned_at=None, waited=None, now=0.0)
    assert estimate == 0.25
    for turn in range(6):
        start = 100.0 * turn
        estimate = estimate_latency(estimate, returned_at=start, waited=10, now=start + 10.85)
    # Then the plan converges on it, and a landing planned with it stays inside the slot
    assert estimate == pytest.approx(0.85, abs=0.02)
    pause, wait = plan_wait(200, 150.3, estimate)
    assert slot_check(200, 150.3 + pause + wait + 0.85) == 0.0
    # Nonsense (a time-scaled sandbox, clock skew) is ignored
    assert estimate_latency(0.4, returned_at=100.0, waited=10, now=103.0) == 0.4
