"""The capacity governor's rules (t2v.capacity): the learned cap, fair turns, the time limits."""

from __future__ import annotations

import statistics

import pytest
from t2v.capacity import (
    HISTORY_LIMIT,
    CapacityLimitsError,
    TimeLimits,
    WorkingCap,
    held_too_long,
    next_owner,
    queue_key,
    usual_queue_seconds,
)


def test_a_refusal_lowers_the_cap_to_what_was_in_flight_not_by_half() -> None:
    cap = WorkingCap.start(100).refused(in_flight=49).refused(in_flight=49)
    assert cap.cap == 49  # halving would give 50, then 25 on the next refusal
    assert cap.refused(in_flight=49).cap == 49
    assert WorkingCap(ceiling=4, cap=1).refused(in_flight=0).cap == 1  # never below one


def test_a_lone_refusal_well_below_the_cap_is_doubted_until_a_second_confirms_it() -> None:
    # Given creates going through at 16 in flight, one refusal comes while only 3 are in flight
    cap = WorkingCap(ceiling=24, cap=16).refused(in_flight=3)
    assert (cap.cap, cap.doubt) == (15, True)  # one step, not down to 3
    # When a create is accepted next, the doubt is gone: it was a blip
    assert not cap.accepted().doubt
    # When a second refusal comes first, the cap goes down to what was in flight
    assert cap.refused(in_flight=3).cap == 3


def test_random_refusals_at_low_load_do_not_ratchet_the_cap_down() -> None:
    # Given a provider that refuses 3 % of creates at random (a rate limit, injected faults), far
    # below its real cap, and a load that keeps only a few tasks in flight
    import random

    rng = random.Random(7)
    cap = WorkingCap(ceiling=24, cap=24)
    for _ in range(2_000):
        in_flight = rng.randint(0, 5)
        cap = cap.refused(in_flight=in_flight) if rng.random() < 0.03 else cap.accepted()
    assert cap.cap >= 12  # lowering to what was in flight on every refusal ends near 2


def test_the_cap_rises_one_step_per_round_of_accepted_creates_up_to_the_ceiling() -> None:
    cap = WorkingCap(ceiling=6, cap=4)
    for _ in range(3):
        cap = cap.accepted()
    assert cap.cap == 4
    cap = cap.accepted()
    assert (cap.cap, cap.streak) == (5, 0)
    for _ in range(50):
        cap = cap.accepted()
    assert cap.cap == 6  # the parameter is the ceiling


def test_a_refusal_resets_the_climb() -> None:
    cap = WorkingCap(ceiling=10, cap=5, streak=4).refused(in_flight=5)
    assert cap.streak == 0
    assert cap.accepted().cap == 5


def test_a_lower_ceiling_caps_a_learned_value() -> None:
    assert WorkingCap(ceiling=50, cap=40).with_ceiling(10).cap == 10
    assert WorkingCap(ceiling=50, cap=8).with_ceiling(10).cap == 8


def test_held_too_long_means_far_past_the_learned_queue_time() -> None:
    assert not held_too_long(30, 10)
    assert held_too_long(61, 10)
    assert not held_too_long(150, 40)
    assert held_too_long(161, 40)


def test_turns_go_round_robin_between_owners_with_queued_jobs() -> None:
    queued = {"arn:a": 19_990, "arn:b": 1, "arn:c": 0}
    order = []
    last = None
    for _ in range(4):
        last = next_owner(queued, last)
        order.append(last)
    assert order == ["arn:a", "arn:b", "arn:a", "arn:b"]  # c has nothing queued
    assert next_owner({}, None) is None
    assert next_owner({"arn:a": 0}, "arn:a") is None


def test_fifo_within_an_owner_by_first_queue_time_then_id() -> None:
    keys = [queue_key("2026-12-05T10:00:00.000Z", "job-b"), queue_key("2026-12-05T09:59:59.999Z", "job-z")]
    assert sorted(keys)[0].endswith("job-z")


DEFAULTS = TimeLimits(
    max_queue_seconds=6 * 3600,
    capacity_heartbeat_seconds=300,
    max_capacity_turns=400,
    deadline_seconds=7200,
    max_polls=1000,
    state_machine_timeout_seconds=86400,
    sweep_lookback_seconds=26 * 3600,
)


def test_the_default_limits_agree() -> None:
    assert DEFAULTS.problems() == []
    assert DEFAULTS.history_events() < HISTORY_LIMIT


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"max_queue_seconds": 22 * 3600}, "TimeoutSeconds"),
        ({"sweep_lookback_seconds": 3600}, "look-back"),
        ({"capacity_heartbeat_seconds": 30}, "capacity turns"),
        ({"max_polls": 2000}, "history events"),
    ],
)
def test_limits_that_disagree_are_named(change: dict[str, int], names: str) -> None:
    limits = TimeLimits(**{**vars(DEFAULTS), **change})
    with pytest.raises(CapacityLimitsError, match=names):
        limits.check()


def test_a_raise_refused_at_once_doubles_the_rounds_before_the_next_try() -> None:
    # Given a cap learned at the provider's (50), a raise to 51 that the provider refuses at once
    cap = WorkingCap(ceiling=100, cap=50)
    refusals = 0
    accepted = 0
    for _ in range(20_000):
        if cap.cap > 50:  # the provider refuses the create past its cap of 50
            cap = cap.refused(in_flight=50)
            refusals += 1
        else:
            cap = cap.accepted()
            accepted += 1
    # Then the probes back off: rounds of 50, 100, 200, 400, 800, then 1,600 creates between refusals
    assert cap.probes == 5
    assert refusals <= 5 + 20_000 // 1_600
    assert refusals / (refusals + accepted) < 0.002  # was one per round (2 %) before the backoff


def test_a_raise_that_holds_for_a_round_makes_probing_cheap_again() -> None:
    cap = WorkingCap(ceiling=100, cap=50, probes=3)
    for _ in range(50 * 8):
        cap = cap.accepted()
    assert (cap.cap, cap.raised, cap.probes) == (51, True, 3)
    for _ in range(51):  # a whole round at 51 with no refusal: the provider's cap has grown
        cap = cap.accepted()
    assert (cap.cap, cap.raised, cap.probes) == (51, False, 2)


def test_the_refusals_of_one_burst_count_as_one_failed_raise() -> None:
    cap = WorkingCap(ceiling=100, cap=51, raised=True)
    for in_flight in range(50, 40, -1):  # a burst of creates past the provider's cap, all refused
        cap = cap.refused(in_flight=in_flight)
    assert (cap.cap, cap.probes) == (41, 1)


def test_a_burst_far_past_a_cap_that_shrank_is_no_failed_raise() -> None:
    cap = WorkingCap(ceiling=100, cap=100, raised=True).refused(in_flight=60).refused(in_flight=59)
    assert (cap.cap, cap.probes) == (59, 0)


def test_the_usual_queue_time_is_not_inflated_by_the_holding_it_reveals() -> None:
    # Given a cap too high: a few tasks start at once, most are held in the provider's queue
    times = [2.0] * 10 + [300.0] * 40
    assert statistics.median(times) == 300.0  # the median would call 300 s usual: nothing looks held
    assert usual_queue_seconds(times, prior=3.0) == 2.0
    assert held_too_long(301, usual_queue_seconds(times, prior=3.0))
    # And when every task waits (the cap far too high for long), the tier's prior bounds it
    assert usual_queue_seconds([100.0] * 50, prior=3.0) == 3.0
    assert usual_queue_seconds([], prior=3.0) == 3.0
