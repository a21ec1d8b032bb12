"""Provider capacity: how many provider tasks may be in flight, who gets the next free place, and the
time limits a job waiting for one must keep. Pure domain, no I/O (the leases live in DynamoDB:
`t2v.adapters.capacity_leases`).

- **Leases.** A job holds a capacity *lease* from when it is admitted until its provider task ends
  (succeeded, failed, canceled, timed out, unknown) or its create is refused; the query ledger's
  one-second *slots* (`t2v.schedule`) are another thing.
- **The working cap.** The stack's parameter is the ceiling; the working cap learns the provider's
  real one. A create refused with a throttling answer lowers it to what was actually in flight when
  the refusal came (not a halving, which wastes capacity); every `cap` accepted creates in a row
  raise it by one (one step per round of the cap, as TCP's congestion avoidance), never past the
  ceiling. A raise the provider refuses at once (it found the real cap again) doubles the rounds
  before the next try (`probes`), so a provider steady at its cap refuses one create in many rounds
  rather than one per round; a raise that holds, or a cap that shrank, starts the count again. A task
  held PENDING at the provider far past its tier's usual queue time (a low quantile of the learned
  times, which the holding itself cannot inflate) lowers the cap by one.
- **Fair share.** Free capacity goes round-robin between the owners with queued jobs, FIFO within an
  owner: one caller's thousands of lines cannot starve another caller's single request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from t2v.errors import PipelineError

# Throttling answers to a create that mean "no capacity now" (HTTP 429); the quota and billing codes
# (`Throttling.AllocationQuota`, ...) stay terminal (`t2v.errors.classify_http_error`).
CAPACITY_CODES: Final = frozenset({"Throttling", "Throttling.RateQuota", "LimitRequests"})

# statemachine/pipeline.asl.json's TimeoutSeconds (a test holds them equal).
STATE_MACHINE_TIMEOUT_SECONDS: Final = 86400
# Step Functions' own limit on a standard execution's history.
HISTORY_LIMIT: Final = 25_000
# History events of one turn through each loop (state entered/exited, task scheduled/started/ended):
# a capacity wait is Submit + its Choice + ParkForCapacity; a poll turn with push on is ParkForPush,
# CheckStatus and RouteByState (README: about 14,000 for 1,000 polls).
EVENTS_PER_CAPACITY_TURN: Final = 13
EVENTS_PER_POLL_TURN: Final = 14
# Pushes one job may have recorded (each distinct event id at most once); past it a push wakes
# nothing and stores nothing, so a flood of pushes with distinct ids can neither run a job's turns
# past the history limit nor grow its item towards DynamoDB's 400 KB (polling still finds the end).
# A job sees one task-finished push per task, a few more when EventBridge repeats one with a new id.
MAX_PUSH_WAKES: Final = 8
# The learned cap's backoff: a raise refused at once waits twice as long next time, up to 2**5 rounds
# (at a provider cap of 50, one probing refusal per 1,600 creates, 0.06 %).
MAX_PROBES: Final = 5
# What a job's end needs after its deadline: the last look, finalize's retries (download, announce).
FINISH_SLACK_SECONDS: Final = 3600
# Events outside both loops (Stagger, the first Submit, Finalize or RecordOutcome, their retries).
FIXED_EVENTS: Final = 200


class CapacityLimitsError(PipelineError):
    """Time limits that do not agree (a deploy that would let a job outlive its workflow)."""

    code = "CapacityLimits"


@dataclass(frozen=True)
class WorkingCap:
    """The governor's learned cap on provider tasks in flight (`ceiling`: the stack's parameter)."""

    ceiling: int
    cap: int
    streak: int = 0  # creates accepted since the cap last moved
    probes: int = 0  # raises refused in a row: the next raise waits 2**probes rounds of the cap
    raised: bool = False  # the last move was a raise not yet held for a round (a refusal undoes it)
    doubt: bool = False  # a lone refusal below the cap, not yet confirmed by a second one

    @classmethod
    def start(cls, ceiling: int) -> WorkingCap:
        if ceiling < 1:
            raise ValueError("the capacity ceiling must be at least 1")
        return cls(ceiling=ceiling, cap=ceiling)

    def refused(self, in_flight: int) -> WorkingCap:
        """A create refused for capacity while `in_flight` other tasks held leases: that many fit.

        Refused at the cap (or one below it, the step a raise took), or a second time before any
        create was accepted: the cap goes down to what was in flight. A lone refusal well below the
        cap, right after creates at higher levels went through, is doubted (a rate limit's or a
        passing blip's, not the cap's): one step down, and the next refusal decides. Without the
        doubt, random refusals at low load would ratchet the cap down to what little was in flight.
        A refusal at the frontier that undoes a raise doubles the rounds before the next try."""
        frontier = in_flight >= self.cap - 1
        probes = min(self.probes + 1, MAX_PROBES) if self.raised and frontier else self.probes
        if frontier or self.doubt:
            cap, doubt = max(1, min(self.cap, in_flight)), False
        else:
            cap, doubt = max(1, self.cap - 1), True
        return replace(self, cap=cap, streak=0, probes=probes, raised=False, doubt=doubt)

    def accepted(self) -> WorkingCap:
        """A create accepted: after `rounds_to_raise` creates in a row, try one more; a raise that
        held for a whole round of the new cap makes the next try come sooner."""
        streak = self.streak + 1
        if streak >= self.rounds_to_raise and self.cap < self.ceiling:
            return replace(self, cap=self.cap + 1, streak=0, raised=True, doubt=False)
        if self.raised and streak >= self.cap:
            return replace(self, streak=streak, probes=max(0, self.probes - 1), raised=False, doubt=False)
        return replace(self, streak=min(streak, self.rounds_to_raise), doubt=False)

    @property
    def rounds_to_raise(self) -> int:
        """Creates accepted in a row before the cap goes up by one: 2**probes rounds of the cap."""
        return int(self.cap * 2**self.probes)

    def held_too_long(self) -> WorkingCap:
        """A task sat PENDING at the provider far past its tier's queue time: the provider queues ours."""
        return replace(self, cap=max(1, self.cap - 1), streak=0, raised=False, doubt=False)

    def with_ceiling(self, ceiling: int) -> WorkingCap:
        """The parameter changed (a stack update): the cap stays learned, but never above it."""
        return replace(self, ceiling=ceiling, cap=max(1, min(self.cap, ceiling)))


def held_too_long(pending_seconds: float, learned_queue_seconds: float, *, floor: float = 60.0) -> bool:
    """Whether a task PENDING this long is held in the provider's own queue, not merely scheduled."""
    return pending_seconds > max(floor, 4 * learned_queue_seconds)


def usual_queue_seconds(queue_times: Sequence[float], *, prior: float) -> float:
    """The provider's queue time for a task it is not holding: the fifth of the learned times that
    came soonest, never above the tier's prior. The learned times alone would be inflated by the very
    holding they are meant to reveal: with a cap too high, every task waits a generation in the
    provider's queue, no task looks held any more and the cap climbs back to the ceiling."""
    ordered = sorted(queue_times)
    return min(prior, ordered[(len(ordered) - 1) // 5]) if ordered else prior


def next_owner(queued: Mapping[str, int], last: str | None) -> str | None:
    """The owner whose turn it is: the first after `last` (in a fixed order) with a queued job."""
    waiting = sorted(owner for owner, count in queued.items() if count > 0)
    if not waiting:
        return None
    if last is not None:
        for owner in waiting:
            if owner > last:
                return owner
    return waiting[0]


@dataclass(frozen=True)
class QueuePlace:
    """Where one queued job stands: its owner's jobs ahead of it, and the queue and leases around it."""

    position: int
    owner: str
    queued: Mapping[str, int]
    cap: int
    held: int


def seconds_to_start(
    *, position: int, owner: str, queued: Mapping[str, int], cap: int, held: int, generation_seconds: float
) -> float:
    """About how long until a queued job gets its lease: the jobs admitted before it (its owner's
    `position` ahead of it, and as many turns of every other owner with queued jobs, round-robin), in
    rounds of `cap` that each take about one generation, less what is free now."""
    others = sum(min(count, position + 1) for name, count in queued.items() if name != owner and count > 0)
    ahead = position + others
    free = max(0, cap - held)
    if ahead < free:
        return 0.0
    return ((ahead - free) // max(1, cap) + 1) * generation_seconds


def queue_key(queued_at_iso: str, job_id: str) -> str:
    """FIFO order within an owner: when the job first queued, then its id (ties). A job refused by the
    provider goes back with its first key, so to the front of its owner's queue."""
    return f"{queued_at_iso}#{job_id}"


@dataclass(frozen=True)
class TimeLimits:
    """The bounds a job's life must keep, from the stack's parameters."""

    max_queue_seconds: int  # the longest wait in our queue
    capacity_heartbeat_seconds: int  # a parked capacity wait looks again after this, woken or not
    max_capacity_turns: int  # wakes and heartbeats while queued (refusals send a job back)
    deadline_seconds: int  # counted from the lease, not from acceptance
    max_polls: int
    state_machine_timeout_seconds: int
    sweep_lookback_seconds: int

    def problems(self) -> list[str]:
        """What does not agree; empty when every bound holds."""
        found: list[str] = []
        life = self.max_queue_seconds + self.deadline_seconds + FINISH_SLACK_SECONDS
        if life > self.state_machine_timeout_seconds:
            found.append(
                f"MaxQueueSeconds {self.max_queue_seconds} + DeadlineSeconds {self.deadline_seconds} + "
                f"{FINISH_SLACK_SECONDS} s to finish is {life} s, over the state machine's "
                f"TimeoutSeconds {self.state_machine_timeout_seconds}"
            )
        if self.sweep_lookback_seconds < self.state_machine_timeout_seconds:
            found.append(
                f"the sweeper's look-back ({self.sweep_lookback_seconds} s) is shorter than a workflow's "
                f"longest life ({self.state_machine_timeout_seconds} s)"
            )
        heartbeats = -(-self.max_queue_seconds // max(1, self.capacity_heartbeat_seconds))
        if heartbeats > self.max_capacity_turns:
            found.append(
                f"{heartbeats} heartbeats of {self.capacity_heartbeat_seconds} s fill MaxQueueSeconds, "
                f"more than the {self.max_capacity_turns} capacity turns allowed"
            )
        events = self.history_events()
        if events > HISTORY_LIMIT:
            found.append(f"a job may write {events} history events, over the limit of {HISTORY_LIMIT}")
        return found

    def history_events(self) -> int:
        """The most history events one execution can write (parks and wakes included)."""
        return (
            FIXED_EVENTS
            + self.max_capacity_turns * EVENTS_PER_CAPACITY_TURN
            + (self.max_polls + MAX_PUSH_WAKES) * EVENTS_PER_POLL_TURN  # a woken turn is a poll turn
        )

    def most_polls(self) -> int:
        """The largest MaxPolls whose turns, with every wake and capacity turn, fit the history."""
        room = HISTORY_LIMIT - FIXED_EVENTS - self.max_capacity_turns * EVENTS_PER_CAPACITY_TURN
        return room // EVENTS_PER_POLL_TURN - MAX_PUSH_WAKES

    def check(self) -> None:
        if found := self.problems():
            raise CapacityLimitsError("; ".join(found))
