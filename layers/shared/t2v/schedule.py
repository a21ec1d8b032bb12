"""The adaptive poll schedule: when to ask the provider next. Pure domain, no I/O.

Three ideas, each a small function:

1. **Expect the finish.** Each tier (resolution, duration, audio) has a bounded history of recent
   queue and run times (seeded with defaults until real jobs finish). From it and what the last
   query saw, `predicted_finishes` gives a sample of when this task should end.
2. **Poll where the finish is likely.** `next_wait` skips the time the task is surely still
   running, polls densely between the early and late quantiles of the prediction, then backs off
   in proportion to how far the task has overrun.
3. **Share the account's query budget.** No job polls more often than `active_jobs / budget`
   seconds, so the account's average rate stays under the budget; `reserve_slot` then books a
   one-second slot in a shared ledger that holds at most `budget` queries per second, so no
   single second goes over it either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from t2v.errors import UnknownTierError
from t2v.request import SIZES, Tier, VideoRequest

# Seeds for a tier's history until real jobs have finished: run seconds of a 5 s, silent video
# (the provider's reference shows 720P 5 s done about 30 s after submission and 10 s after 64 s).
DEFAULT_RUN_SECONDS: Final[dict[Tier, float]] = {"360P": 20.0, "540P": 25.0, "720P": 30.0, "1080P": 45.0}
DEFAULT_QUEUE_SECONDS: Final = 3.0
AUDIO_FACTOR: Final = 1.15
SEED_SPREAD: Final = (0.85, 0.95, 1.0, 1.05, 1.2)  # a deliberately wide prior; real samples replace it
# Seconds from the status function's return to its next provider query (Step Functions' Wait
# transitions, the Lambda invoke, the HTTP request): assumed 0.25 s, tolerated from 0 to 0.5 s.
DISPATCH_LATENCY: Final = 0.25
MAX_LATENCY: Final = 5.0

# A look a push asked for that found no free second in its probes tries again this soon.
HINTED_RETRY_SECONDS: Final = 30.0
# A query must start this long before its slot ends to reach the provider inside it.
SLOT_MARGIN: Final = 0.2
# Where in its second a query should land at the expected latency: [0.25, 0.55), so that latency
# off by up to 0.25 s either way stays within [0, 1 - SLOT_MARGIN).
ZONE: Final = (0.25, 0.55)

PollState = Literal["SUBMITTED", "PENDING", "RUNNING"]
_DEFAULT_SIZE: Final[str] = VideoRequest.model_fields["size"].default
_DEFAULT_DURATION: Final[int] = VideoRequest.model_fields["duration"].default


class GenerationTier(BaseModel):
    """The history bucket of a request: generation time depends on the model family, resolution,
    duration and audio only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resolution: Tier
    seconds: int = Field(ge=1)
    audio: bool
    family: str = Field(
        default="t2v", description="the model family (t2v.families); t2v keys stay unprefixed"
    )

    @model_serializer(mode="wrap")
    def _text_tiers_unchanged(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A text-to-video tier goes out as before the registry (turns in flight, stored records).
        data: dict[str, Any] = handler(self)
        if data.get("family") == "t2v":
            data.pop("family")
        return data

    @classmethod
    def of(cls, size: str, duration: int, audio: bool) -> GenerationTier:
        """The tier of a size of the contract; any other size raises `UnknownTierError`, naming it."""
        spec = SIZES.get(size)
        if spec is None:
            raise UnknownTierError(size)
        return cls(resolution=spec.tier, seconds=int(duration), audio=bool(audio))

    @classmethod
    def of_resolution(cls, family: str, resolution: str, duration: int, audio: bool) -> GenerationTier:
        """The tier of an image family's request; a resolution no tier has raises UnknownTierError."""
        if resolution not in DEFAULT_RUN_SECONDS:
            raise UnknownTierError(resolution, what="resolution")
        return cls(resolution=resolution, seconds=int(duration), audio=bool(audio), family=family)

    @classmethod
    def of_text_request(cls, request: Mapping[str, Any]) -> GenerationTier:
        """The tier of a stored text-to-video request. A field it lacks takes the contract's
        default: a refused request's record keeps only a digest, and is shown as 720P."""
        return cls.of(
            str(request.get("size", _DEFAULT_SIZE)),
            int(request.get("duration", _DEFAULT_DURATION)),
            bool(request.get("audio")),
        )

    @property
    def key(self) -> str:
        """Where the tier's history is kept, e.g. `720P/5s/silent`."""
        key = f"{self.resolution}/{self.seconds}s/{'audio' if self.audio else 'silent'}"
        return key if self.family == "t2v" else f"{self.family}/{key}"


@dataclass(frozen=True)
class Policy:
    budget_qps: float = 16.0  # 80% of the account's 20 queries/s
    dense_seconds: float = 3.0  # spacing of polls around the expected finish
    first_quantile: float = 0.2  # the first poll: when this share of similar tasks had finished
    tail_quantile: float = 0.95  # past this, the task is late: back off
    max_dense_polls: int = 8  # a very uncertain prediction widens the spacing instead of adding polls
    backoff_ratio: float = 0.5  # in the tail, wait this share of the time overrun so far
    min_wait: float = 1.0
    max_wait: float = 120.0
    history_limit: int = 32
    default_scale: float = 1.0  # multiplies the seeded defaults (the sandbox's emulator is quicker)
    # Task-finished pushes wake the workflow: polling is only the safety net for a lost push, so it
    # looks once just past the late quantile of the prediction and then backs off (see `fallback_wait`).
    push: bool = False
    push_max_wait: float = 900.0  # a safety-net look may wait longer than `max_wait`
    # With push on, safety-net looks may fill only this share of any second's slots: the rest stays
    # free for the looks pushes ask for, which are (almost) sure to find a finished task.
    fallback_share: float = 0.5

    def __post_init__(self) -> None:
        if self.budget_qps <= 0 or self.dense_seconds <= 0 or self.min_wait <= 0:
            raise ValueError("budget_qps, dense_seconds and min_wait must be positive")
        if not 0 <= self.first_quantile < self.tail_quantile <= 1:
            raise ValueError("need 0 <= first_quantile < tail_quantile <= 1")
        if not 0 < self.fallback_share <= 1:
            raise ValueError("fallback_share must be in (0, 1]")
        if self.history_limit < 1 or self.max_dense_polls < 1:
            raise ValueError("history_limit and max_dense_polls must be at least 1")

    @property
    def slot_limit(self) -> int:
        """Queries the ledger admits in any one second."""
        return max(1, math.floor(self.budget_qps))

    def booking_limit(self, *, hinted: bool = False) -> int:
        """The fill of a second up to which a look may book it: the whole budget, except for the
        safety-net looks of push mode, which leave room for looks a push asked for."""
        if not self.push or hinted:
            return self.slot_limit
        return max(1, math.floor(self.slot_limit * self.fallback_share))


@dataclass(frozen=True)
class TierHistory:
    """Recent queue and run seconds of one tier, newest last, at most `limit` of each."""

    queue: tuple[float, ...] = field(default_factory=tuple)
    run: tuple[float, ...] = field(default_factory=tuple)

    def add(self, *, queue: float, run: float, limit: int) -> TierHistory:
        return TierHistory(
            queue=(*self.queue, max(0.0, queue))[-limit:],
            run=(*self.run, max(0.0, run))[-limit:],
        )


def default_history(tier: GenerationTier, scale: float = 1.0) -> TierHistory:
    """The prior for a tier nobody has used yet."""
    base = DEFAULT_RUN_SECONDS[tier.resolution]
    run = base * (tier.seconds / 5) * (AUDIO_FACTOR if tier.audio else 1.0) * scale
    return TierHistory(
        queue=tuple(DEFAULT_QUEUE_SECONDS * scale * f for f in SEED_SPREAD),
        run=tuple(run * f for f in SEED_SPREAD),
    )


@dataclass(frozen=True)
class Observation:
    """What is known at `now` (epoch seconds) about one task that has not finished yet."""

    now: float
    submitted_at: float  # our clock when the provider accepted the task
    deadline: float
    state: PollState = "SUBMITTED"
    queued_seconds: float | None = None  # provider scheduled_time - submit_time, once RUNNING
    active_jobs: int = 1
    hinted: bool = False  # a push said the task finished, yet this look did not show it finished


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of an ascending sequence."""
    if not sorted_values:
        raise ValueError("no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def predicted_finishes(obs: Observation, history: TierHistory) -> list[float]:
    """A sample of the task's finish time (epoch seconds), ascending."""
    runs = history.run or (60.0,)
    if obs.state == "RUNNING" and obs.queued_seconds is not None:
        start = obs.submitted_at + obs.queued_seconds
        return sorted(start + r for r in runs)
    queues = history.queue or (0.0,)
    # Still queued when last seen: it starts no earlier than now.
    earliest_start = obs.now if obs.state == "PENDING" else obs.submitted_at
    return sorted(max(earliest_start, obs.submitted_at + q) + r for q in queues for r in runs)


def desired_wait(obs: Observation, history: TierHistory, policy: Policy) -> float:
    """Seconds until the next query this task alone would want, before any budget applies."""
    finishes = predicted_finishes(obs, history)
    first = quantile(finishes, policy.first_quantile)
    tail = quantile(finishes, policy.tail_quantile)
    if obs.now < first - policy.min_wait:
        return first - obs.now  # surely still running: sleep through it
    if obs.now < tail:
        return max(policy.dense_seconds, (tail - first) / policy.max_dense_polls)
    overrun = obs.now - tail
    return policy.dense_seconds + policy.backoff_ratio * overrun


def fallback_wait(obs: Observation, history: TierHistory, policy: Policy) -> float:
    """With push on: seconds until the next look that only a lost push makes necessary.

    Almost every task finishes before the late (`tail_quantile`) quantile of its prediction, and its
    push wakes the workflow then; so the safety net looks once at that quantile, then waits as long
    again as the task has overrun it (looks about twice as far apart each time). A push the provider
    sent before a query shows the task finished (`hinted`) is worth a second look a poll interval on.
    """
    if obs.hinted:
        return policy.dense_seconds
    tail = quantile(predicted_finishes(obs, history), policy.tail_quantile)
    if obs.now < tail - policy.min_wait:
        return tail - obs.now
    return policy.dense_seconds + max(0.0, obs.now - tail)


def budget_gap(active_jobs: int, policy: Policy) -> float:
    """The shortest interval between one job's queries that keeps the account under budget."""
    return max(1, active_jobs) / policy.budget_qps


def _own_wait(obs: Observation, history: TierHistory, policy: Policy) -> float:
    if policy.push:
        return min(max(fallback_wait(obs, history, policy), policy.min_wait), policy.push_max_wait)
    return min(max(desired_wait(obs, history, policy), policy.min_wait), policy.max_wait)


def next_wait(obs: Observation, history: TierHistory, policy: Policy) -> float:
    """Seconds to wait before the next query: adaptive, within budget, never past the deadline."""
    remaining = obs.deadline - obs.now
    if remaining <= 0:
        return 0.0
    wait = max(
        _own_wait(obs, history, policy), budget_gap(obs.active_jobs, policy)
    )  # budget outranks max_wait
    return min(wait, remaining)


def first_wait(obs: Observation, history: TierHistory, policy: Policy, *, phase: float) -> float:
    """The wait before a new task's first query. Jobs started together (a batch file) would all
    pick the same second: `phase` spreads their first queries evenly over one budget gap, after
    which each keeps its own place in the rotation."""
    remaining = max(obs.deadline - obs.now, 0.0)
    spread = budget_gap(obs.active_jobs, policy) * (phase % 1.0)
    return min(_own_wait(obs, history, policy) + spread, remaining)


# ---------------------------------------------------------------------------------------------
# The shared ledger of one-second query slots


class SlotLedger(Protocol):
    def take(self, second: int, limit: int) -> bool:
        """Count one query in `second` if fewer than `limit` are counted there; True if counted."""
        ...


def probe_offsets(max_probes: int) -> list[int]:
    """Seconds after the wished one to try: the next few one by one, then ever wider strides, so
    a crowd of jobs wanting the same moment finds room further out instead of giving up."""
    return [i if i < 8 else 7 + 2 ** (i - 7) for i in range(max_probes)]


def hinted_offsets(gap: float, max_probes: int = 20, phase: float = 0.0) -> list[int]:
    """Probes for a look a push asked for: the next seconds one by one, then evenly over one budget
    gap, shifted by the job's `phase`. When finishes arrive faster than the budget, the looks queue
    up over that gap, as polling would spread them, instead of landing far out where the widening
    strides reach."""
    near = list(range(8))
    spread = max_probes - len(near)
    span = max(gap, 2.0 * len(near))
    far = {len(near) + round(span * (k - phase % 1.0) / spread) for k in range(1, spread + 1)}
    return near + sorted(far - set(near))


def reserve_slot(
    ledger: SlotLedger,
    earliest: float,
    *,
    policy: Policy,
    max_probes: int = 20,
    hinted_gap: float | None = None,
    phase: float = 0.0,
) -> int | None:
    """Book the first free one-second slot at or after `earliest` among `probe_offsets` (or, for a
    look a push asked for, `hinted_offsets` over `hinted_gap`). None when all were full: then the
    caller must not query, and tries again later."""
    first = math.ceil(earliest)
    hinted = hinted_gap is not None
    offsets = (
        hinted_offsets(hinted_gap, max_probes, phase) if hinted_gap is not None else probe_offsets(max_probes)
    )
    for offset in offsets:
        if ledger.take(first + offset, policy.booking_limit(hinted=hinted)):
            return first + offset
    return None


def plan_wait(slot: int, now: float, latency: float = DISPATCH_LATENCY) -> tuple[float, int]:
    """(pause, wait): pause `pause` seconds now, then a Wait state of `wait` whole seconds, so the
    query lands early in `slot`: with the expected latency at 0.25-0.55 s into it, so latency off
    by a quarter second either way still leaves `SLOT_MARGIN` for the request itself.

    Step Functions waits in whole seconds (and truncates timestamps to seconds), so the fraction
    of a second a query lands at is set by when this invocation returns, not by the Wait state.
    """
    frac = (now + latency) % 1.0
    if frac < ZONE[0]:
        pause = ZONE[0] - frac
    elif frac >= ZONE[1]:
        pause = 1 + ZONE[0] - frac
    else:
        pause = 0.0
    wait = slot - math.floor(now + pause + latency)
    return pause, max(0, wait)


@dataclass(frozen=True)
class Booking:
    """The outcome of planning the next query."""

    pause: float  # sleep this long before returning (under a second)
    wait_seconds: int  # then the Wait state's whole seconds
    slot: int | None  # the booked second; None: nothing booked, so the next turn must not query


def book_query(
    ledger: SlotLedger,
    wait: float,
    *,
    now: float,
    deadline: float,
    active_jobs: int,
    policy: Policy,
    latency: float = DISPATCH_LATENCY,
    hinted: bool = False,
    phase: float = 0.0,
) -> Booking:
    """Turn a desired wait into a booked one-second slot and the way to land in it (`hinted`: a
    look a push asked for, which may fill a second the safety-net looks must leave free)."""
    earliest = now + wait
    if earliest >= deadline:  # the next turn finds the deadline passed and never queries
        return Booking(0.0, max(1, math.ceil(deadline - now)), None)
    gap = budget_gap(active_jobs, policy)
    slot = reserve_slot(ledger, earliest, policy=policy, hinted_gap=gap if hinted else None, phase=phase)
    if slot is None:
        # A hinted look tries again within the span its probes covered; the rest wait one gap.
        retry = HINTED_RETRY_SECONDS if hinted else gap
        return Booking(0.0, max(1, math.ceil(min(max(policy.min_wait, retry), deadline - now))), None)
    pause, wait_seconds = plan_wait(slot, now, latency)
    return Booking(pause, wait_seconds, slot)


def estimate_latency(
    previous: float | None, *, returned_at: float | None, waited: float | None, now: float
) -> float:
    """The dispatch latency to plan with: a moving average of what this execution observed from
    its last return (plus the Wait state's seconds) to this turn's start."""
    estimate = DISPATCH_LATENCY if previous is None else previous
    if returned_at is None or waited is None:
        return estimate
    observed = now - returned_at - waited
    if not 0.0 <= observed <= MAX_LATENCY:  # clock skew or a time-scaled sandbox: not evidence
        return estimate
    return 0.5 * estimate + 0.5 * observed


def slot_check(slot: int | None, now: float) -> float | None:
    """Whether a turn may query on its booking: the seconds to pause first (0.0 inside its slot, up
    to a second when early), or None when it holds no slot, is more than a second early, or came
    too late to be sure its query reaches the provider within the slot (the last `SLOT_MARGIN` of
    a second is left to the request's own travel time)."""
    if slot is None or now >= slot + 1 - SLOT_MARGIN or slot - now > 1.0:
        return None
    return max(0.0, slot - now)


def woken_early(returned_at: float | None, wait_seconds: float | None, now: float) -> bool:
    """Whether a turn came more than a second before the wait its last turn set (`wait_seconds`
    after it returned at `returned_at`) was over: a push woke it."""
    if returned_at is None or wait_seconds is None:
        return False
    return returned_at + wait_seconds - now > 1.0


def claim_now(ledger: SlotLedger, now: float, policy: Policy) -> float | None:
    """A turn off its booking tries the second it is in (or the next, when too little of this one
    is left): the pause before querying, or None when that second is full too."""
    second = math.floor(now)
    if now - second >= 1 - SLOT_MARGIN:
        second += 1
    if ledger.take(second, policy.slot_limit):
        return max(0.0, second - now)
    return None


def phase_of(job_id: str) -> float:
    """A stable number in [0, 1) per job that spreads jobs started together over the window."""
    h = 2166136261
    for byte in job_id.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h / 2**32


# ---------------------------------------------------------------------------------------------
# Provider times


def provider_seconds(value: str | None) -> float | None:
    """A provider timestamp ("2026-03-20 10:34:41.630") as seconds on the provider's own clock.

    Only differences between two such values are used, so the provider's time zone cancels out.
    """
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace(" ", "T")).replace(tzinfo=None).timestamp()
    except ValueError:
        return None


def queue_and_run(times: dict[str, str | None]) -> tuple[float | None, float | None]:
    """(queue seconds, run seconds) from a task's submit/scheduled/end times."""
    submit = provider_seconds(times.get("submit_time"))
    scheduled = provider_seconds(times.get("scheduled_time"))
    end = provider_seconds(times.get("end_time"))
    queue = scheduled - submit if submit is not None and scheduled is not None else None
    run = end - scheduled if end is not None and scheduled is not None else None
    return (
        queue if queue is not None and queue >= 0 else None,
        run if run is not None and run >= 0 else None,
    )
