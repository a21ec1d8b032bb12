"""The pipeline's use cases: submit, poll, finalize, record an outcome.

Adapters are passed in (see `Deps`); this module does no I/O of its own, so the same code runs
in Lambda, against moto + the emulator, and against in-memory fakes in unit tests.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from t2v.adapters.jobs_repo import Job, iso
from t2v.config import FinalizeSettings, ProviderSettings
from t2v.errors import (
    AmbiguousCreateError,
    IncompleteListError,
    PipelineError,
    ProviderAuthError,
    ProviderThrottledError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.jobs import PROVIDER_TO_JOB, JobStatus
from t2v.request import VideoRequest, output_size, parse_request
from t2v.schedule import (
    DISPATCH_LATENCY,
    MemoryPollStats,
    Observation,
    Policy,
    PollState,
    TierHistory,
    book_query,
    claim_now,
    estimate_latency,
    first_wait,
    next_wait,
    phase_of,
    queue_and_run,
    slot_check,
    tier_key,
    tier_of,
)

# A create claim older than this is presumed abandoned (its Lambda crashed or lost the answer):
# longer than the submit function's timeout, so a live create is never taken for a dead one.
CLAIM_STALE_SECONDS = 60
THROTTLE_FACTOR = 2.0
MAX_BACKOFF_SECONDS = 300


class CreateInProgressError(PipelineError):
    """Another invocation is creating this job's task right now; retry shortly."""

    code = "CreateInProgress"
    retryable = True


class NotificationInProgressError(PipelineError):
    """Another invocation holds a live claim on announcing this job's outcome; retry shortly."""

    code = "NotificationInProgress"
    retryable = True


class JobAlreadyFinishedError(PipelineError):
    """The job already reached a terminal status; nothing to submit."""

    code = "JobAlreadyFinished"


class ProviderClient(Protocol):
    def create_task(self, request: VideoRequest) -> Any: ...
    def get_task(self, task_id: str) -> Any: ...
    def cancel_task(self, task_id: str) -> Any: ...
    def iter_tasks(
        self, *, start_time: datetime, end_time: datetime, model_name: str | None = None
    ) -> Iterable[Any]: ...


class Repo(Protocol):
    def get(self, job_id: str) -> Job | None: ...
    def owner_of_task(self, task_id: str) -> str | None: ...
    def create_if_absent(
        self,
        job_id: str,
        *,
        request: dict[str, Any],
        source: str,
        origin: dict[str, Any],
        now: datetime,
        deadline_at: datetime,
        execution: str | None = None,
        owner: str | None = None,
    ) -> tuple[Job, bool]: ...
    def claim_create(self, job_id: str, *, now: datetime, stale_before: datetime) -> bool: ...
    def release_claim(self, job_id: str) -> None: ...
    def unbound_creates(self, *, since: datetime) -> list[Job]: ...
    def contest_task(self, task_id: str, *, job_id: str, now: datetime) -> None: ...
    def record_task(self, job_id: str, *, task_id: str, request_id: str | None, now: datetime) -> bool: ...
    def release_task(self, job_id: str, *, task_id: str, now: datetime) -> bool: ...
    def transition(
        self,
        job_id: str,
        new: JobStatus,
        *,
        now: datetime,
        fields: dict[str, Any] | None = None,
        expect: dict[str, str | None] | None = None,
    ) -> bool: ...
    def update_fields(self, job_id: str, fields: dict[str, Any], *, now: datetime) -> None: ...
    def claim_notification(
        self, job_id: str, *, token: str, now: datetime, stale_before: datetime
    ) -> bool: ...
    def mark_notified(self, job_id: str, *, now: datetime, message_id: str | None = None) -> bool: ...
    def charge_budget(self, job_id: str, *, day: str, seconds: int, cap: int, now: datetime) -> bool: ...


class PollStatsLike(Protocol):
    def active_jobs(self) -> int: ...
    def history(self, tier: str) -> TierHistory: ...
    def record_timing(self, tier: str, *, queue: float, run: float, limit: int) -> None: ...
    def take(self, second: int, limit: int) -> bool: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class ProviderDeps:
    repo: Repo
    client: Callable[[], ProviderClient]
    settings: ProviderSettings
    clock: Callable[[], datetime] = utcnow
    claim_stale_seconds: int = CLAIM_STALE_SECONDS
    clock_skew_seconds: float = 1.0  # the provider's clock against ours (pipeline.CLOCK_SKEW_SECONDS)
    rng: random.Random = field(default_factory=random.Random)
    stats: PollStatsLike = field(default_factory=MemoryPollStats)
    sleep: Callable[[float], None] = time.sleep
    # Reads the provider key again, past its cache (the provider refused the cached one).
    refresh_key: Callable[[], None] = lambda: None


# ---------------------------------------------------------------------------------------------
# submit


def submit_job(event: dict[str, Any], deps: ProviderDeps) -> dict[str, Any]:
    """Validate the request and create the provider task exactly once for this job."""
    job_id = str(event["job_id"])
    request = parse_request(event.get("request"), defaults={"model": deps.settings.model_name})
    now = deps.clock()
    job, _ = deps.repo.create_if_absent(
        job_id,
        request=request.model_dump(exclude_none=True),
        source=str(event.get("source") or "unknown"),
        origin=dict(event.get("origin") or {}),
        now=now,
        deadline_at=now + timedelta(seconds=deps.settings.deadline_seconds),
        execution=event.get("execution"),
    )
    if job.task_id:
        return _submitted(job, deps)
    if job.status.is_terminal:
        raise JobAlreadyFinishedError(f"job {job_id} already ended {job.status}")
    if deps.settings.daily_budget_seconds:
        deps.repo.charge_budget(
            job_id,
            day=now.strftime("%Y-%m-%d"),
            seconds=request.billed_seconds,
            cap=deps.settings.daily_budget_seconds,
            now=now,
        )
    stale_before = now - timedelta(seconds=deps.claim_stale_seconds)
    if not deps.repo.claim_create(job_id, now=now, stale_before=stale_before):
        if job.get("create_ambiguous_at") and _reconcile(job, request, deps) == Reconciled.ADOPTED:
            return _submitted(_reload(job_id, deps), deps)
        current = _reload(job_id, deps)
        if current.task_id:
            return _submitted(current, deps)
        if job.get("create_ambiguous_at"):
            raise AmbiguousCreateError("create outcome still unknown; waiting before any new create")
        raise CreateInProgressError(f"job {job_id}: another invocation is creating the task")
    if job.create_claimed_at:
        # A previous claim went stale: its create may have reached the provider. Never create twice.
        job = _close_dead_create(job, now, deps)
        found = _reconcile(job, request, deps)
        if found == Reconciled.ADOPTED:
            return _submitted(_reload(job_id, deps), deps)
        if found == Reconciled.UNDECIDED:
            raise AmbiguousCreateError("an unclaimed provider task may be ours; waiting until it can be told")
    return _create(job, request, deps)


def _close_dead_create(job: Job, now: datetime, deps: ProviderDeps) -> Job:
    """The invocation that sent the last create is dead (its claim went stale): whatever task that
    create made exists by now, so its window ends here rather than CREATE_MAX_SECONDS after sending."""
    sent, answered = job.get("create_sent_at"), job.get("create_ambiguous_at")
    if not sent or (answered and parse_ts(str(answered)) >= parse_ts(str(sent))):
        return job
    deps.repo.update_fields(job.job_id, {"create_ambiguous_at": iso(now)}, now=now)
    return _reload(job.job_id, deps)


def _create(job: Job, request: VideoRequest, deps: ProviderDeps) -> dict[str, Any]:
    client = deps.client()
    # When the create was sent bounds which provider tasks it can have made (see _reconcile).
    deps.repo.update_fields(job.job_id, {"create_sent_at": iso(deps.clock())}, now=deps.clock())
    try:
        created = client.create_task(request)
    except AmbiguousCreateError as exc:
        deps.repo.update_fields(
            job.job_id,
            {"create_ambiguous_at": iso(deps.clock()), "last_error": str(exc)},
            now=deps.clock(),
        )
        if _reconcile(_reload(job.job_id, deps), request, deps) == Reconciled.ADOPTED:
            return _submitted(_reload(job.job_id, deps), deps)
        raise
    except TerminalProviderError as exc:
        deps.repo.update_fields(job.job_id, _error_fields(exc), now=deps.clock())
        deps.repo.release_claim(job.job_id)  # refused: no task exists, none can be ours
        raise
    except RetryableProviderError:
        deps.repo.release_claim(job.job_id)  # refused or never sent: a new create is safe
        raise
    if not deps.repo.record_task(
        job.job_id, task_id=created.task_id, request_id=created.request_id, now=deps.clock()
    ):
        current = _reload(job.job_id, deps)
        if current.task_id != created.task_id:
            # Canceled (or bound to another task) while the create was in flight: a task nobody will
            # ever poll must not run on, billed and unseen.
            _cancel_orphan(client, created.task_id)
            if current.status.is_terminal or not current.task_id:
                raise JobAlreadyFinishedError(f"job {job.job_id} ended {current.status} while its task was created")
        return _submitted(current, deps)
    return _submitted(_reload(job.job_id, deps), deps)


def _cancel_orphan(client: ProviderClient, task_id: str) -> None:
    """Cancel a task no job will track; the provider cancels only PENDING tasks, so this is best effort."""
    try:
        client.cancel_task(task_id)
    except PipelineError:
        pass  # already past PENDING (or the provider is unreachable): nothing more can be done here


class Reconciled(StrEnum):
    ADOPTED = "ADOPTED"  # our lost create's task is found and now bound to the job
    UNDECIDED = "UNDECIDED"  # unclaimed tasks are still running: one may be ours, it cannot be told yet
    ABSENT = "ABSENT"  # no task can be ours: a new create is safe


_UNFINISHED = frozenset({"PENDING", "RUNNING", "SUSPENDED"})
# The provider makes the task once it has the whole request, which the client's connect and write
# timeouts (5 s + 10 s, dashscope.DEFAULT_TIMEOUT) bound; the read that follows creates nothing.
CREATE_MAX_SECONDS = 16
# Margin for the provider's clock against ours (both NTP-synchronised) when comparing its task
# creation time with our stamps.
CLOCK_SKEW_SECONDS = 1


def _create_window(job: Job, skew: float = CLOCK_SKEW_SECONDS) -> tuple[float, float] | None:
    """Epoch seconds between which the job's last create can have made a task (None: never sent)."""
    sent = job.get("create_sent_at")
    if not sent:
        return None
    start = parse_ts(str(sent)).timestamp()
    ambiguous = job.get("create_ambiguous_at")
    end = start + CREATE_MAX_SECONDS  # unknown (the invocation died): as long as a create can reach it
    if ambiguous and parse_ts(str(ambiguous)).timestamp() >= start:  # else: an earlier create's answer
        end = min(end, parse_ts(str(ambiguous)).timestamp())
    return start - skew, end + skew


def _created_at(listed: Any) -> float | None:
    raw = getattr(listed, "raw", None) or {}
    value = raw.get("gmt_create")
    return value / 1000 if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reconcile(job: Job, request: VideoRequest, deps: ProviderDeps) -> Reconciled:
    """Look for the task a lost create made (list-tasks) and bind it to the job, never another job's.

    Only the create's window (`_create_window`, which holds the clock margin) is listed: a task made
    outside it cannot be ours, however busy the account. A scan that cannot read the whole window is
    UNDECIDED (try again later), never ABSENT: what it did not see may be ours.

    A task is ours on proof: our ownership record, or the provider's `orig_prompt` (a query shows it
    once the task SUCCEEDED) together with the request's parameters (its usage). Without proof (a task
    still running, or FAILED), a task nobody owns is adopted only when it is the single one the provider
    created while our create was in flight and no other job has an unanswered create whose window holds
    it; such an adoption is checked again when the task shows its request (`_foreign`). Otherwise the
    running ones are waited for until they show their prompt, never guessed, and finished ones are
    marked contested so that no job adopts them later either (a duplicate task beats a wrong one).
    """
    window = _create_window(job, deps.clock_skew_seconds)
    if window is None:
        return Reconciled.ABSENT  # no create of ours was ever sent: no task can be ours
    client = deps.client()
    # (task id, status, request id, created at): no proof either way
    maybe: list[tuple[str, str, str | None, float | None]] = []
    try:
        for listed in client.iter_tasks(
            start_time=datetime.fromtimestamp(window[0], UTC),
            end_time=datetime.fromtimestamp(window[1], UTC),
            model_name=request.model,
        ):
            task_id = str(listed.task_id)
            owner = deps.repo.owner_of_task(task_id)
            if owner == job.job_id:  # a crash came between the two writes of record_task
                if _bind(job, task_id, None, deps):
                    return Reconciled.ADOPTED
                continue
            if owner is not None:
                continue
            created = _created_at(listed)
            if created is not None and not window[0] <= created <= window[1]:
                continue  # made while no create of ours was in flight
            info = client.get_task(task_id)
            if info.orig_prompt is not None:
                if not _foreign(info, request) and _bind(job, task_id, info.request_id, deps):
                    return Reconciled.ADOPTED
            else:
                maybe.append((task_id, str(info.status), info.request_id, created))
    except IncompleteListError:
        return Reconciled.UNDECIDED
    return _decide(job, maybe, deps)


def _foreign(info: Any, request: VideoRequest) -> bool:
    """Whether a task that shows its request (SUCCEEDED) was made from another request than ours:
    another prompt, or a video of another size, length or sound (the provider's usage)."""
    if info.orig_prompt is not None and info.orig_prompt != request.prompt:
        return True
    usage = info.usage
    if usage is None:
        return False
    seen = {"size": usage.size, "duration": usage.duration, "audio": usage.audio}
    want = {
        "size": output_size(request.size, request.duration),
        "duration": request.duration,
        "audio": bool(request.audio),
    }
    return any(seen[k] is not None and seen[k] != want[k] for k in want)


def _decide(
    job: Job, maybe: list[tuple[str, str, str | None, float | None]], deps: ProviderDeps
) -> Reconciled:
    """What to do with the unowned tasks of our window that show no prompt."""
    if len(maybe) == 1:
        task_id, status, request_id, created = maybe[0]
        rivals, others = _rivals(job, created, deps)
        if rivals == Rivals.NONE and _bind(job, task_id, request_id, deps, unproven=True):
            return Reconciled.ADOPTED
        if rivals == Rivals.OPEN:  # a rival's create is live or its invocation died unnoticed yet
            return Reconciled.UNDECIDED
        if rivals == Rivals.CLOSED and status not in _UNFINISHED and created is not None:
            # One finished task that shows no prompt, several settled creates that may have made
            # it. The provider makes a task the moment it has the request, so its maker is the
            # create sent last before it appeared: every claimant works this out alike, the maker
            # adopts it and the others create (their creates never arrived). Without this, the
            # maker would create a second billed task.
            if _likeliest_maker([job, *others], created) == job.job_id:
                bound = _bind(job, task_id, request_id, deps, unproven=True)
                return Reconciled.ADOPTED if bound else Reconciled.ABSENT
            return Reconciled.ABSENT
    if any(m[1] in _UNFINISHED for m in maybe):
        return Reconciled.UNDECIDED
    for task_id, *_ in maybe:
        # Finished without proof and claimable by others too: nobody may adopt it later, when the
        # other claimants have moved on and one job looks like the only one left.
        deps.repo.contest_task(task_id, job_id=job.job_id, now=deps.clock())
    return Reconciled.ABSENT


def _likeliest_maker(claimants: list[Job], created: float) -> str:
    """The job whose create was sent last before `created` (ties: the smaller job id)."""

    def sent(candidate: Job) -> float:
        value = candidate.get("create_sent_at")
        return parse_ts(str(value)).timestamp() if value else float("-inf")

    before = [c for c in claimants if sent(c) <= created] or claimants
    return max(before, key=lambda c: (sent(c), [-ord(ch) for ch in c.job_id])).job_id


class Rivals(StrEnum):
    NONE = "NONE"  # no other job's unanswered create can have made the task
    OPEN = "OPEN"  # one can, and its create is still live or its death not yet noticed: wait
    CLOSED = "CLOSED"  # one can, and its window is settled: the task cannot be told apart


def _rivals(job: Job, created: float | None, deps: ProviderDeps) -> tuple[Rivals, list[Job]]:
    """Other jobs whose unanswered create may have made a task created at `created`."""
    if created is None:
        return Rivals.CLOSED, []
    found, others = Rivals.NONE, []
    for other in deps.repo.unbound_creates(since=deps.clock() - timedelta(days=1)):
        window = _create_window(other, deps.clock_skew_seconds)
        if other.job_id == job.job_id or not window or not window[0] <= created <= window[1]:
            continue
        sent, answered = other.get("create_sent_at"), other.get("create_ambiguous_at")
        if not answered or parse_ts(str(answered)) < parse_ts(str(sent)):
            return Rivals.OPEN, []
        found = Rivals.CLOSED
        others.append(other)
    return found, others


def _bind(
    job: Job, task_id: str, request_id: str | None, deps: ProviderDeps, *, unproven: bool = False
) -> bool:
    """Bind a task found by listing. `unproven`: nothing showed it was made from our request yet, so
    its request is checked once the provider shows it, before its video is delivered."""
    if deps.repo.record_task(job.job_id, task_id=task_id, request_id=request_id, now=deps.clock()):
        deps.repo.update_fields(
            job.job_id, {"reconciled": True, "adopted_unproven": unproven}, now=deps.clock()
        )
        return True
    return False


def _reload(job_id: str, deps: ProviderDeps) -> Job:
    job = deps.repo.get(job_id)
    if job is None:
        raise PipelineError(f"job {job_id} vanished")
    return job


def _submitted(job: Job, deps: ProviderDeps) -> dict[str, Any]:
    """The first poll's state: when the provider accepted the task and when to look first."""
    now = deps.clock().timestamp()
    tier = tier_of(job.request)
    submitted = job.get("submitted_at")
    submitted_at = parse_ts(str(submitted)).timestamp() if submitted else now
    deadline_at = job.get("deadline_at")
    deadline = parse_ts(str(deadline_at)).timestamp() if deadline_at else now + deps.settings.deadline_seconds
    policy = deps.settings.poll_policy()
    obs = Observation(
        now=now, submitted_at=submitted_at, deadline=deadline, active_jobs=deps.stats.active_jobs()
    )
    wait = first_wait(obs, deps.stats.history(tier), policy, phase=phase_of(job.job_id))
    return {
        "job_id": job.job_id,
        "task_id": job.task_id,
        "deadline_at": deadline_at,
        "polls": int(job.get("polls", 0)),
        "errors": 0,
        "state": "SUBMITTED",
        "tier": tier,
        "submitted_at": round(submitted_at, 3),
        **_book(wait, deadline=deadline, deps=deps),
    }


def _book(
    wait: float, *, deadline: float, deps: ProviderDeps, latency: float = DISPATCH_LATENCY
) -> dict[str, Any]:
    """Book the next query's slot; `slot: None` tells the next turn it holds none and must not query."""
    now = deps.clock().timestamp()  # now, not at entry: the work since then shifts the landing
    booking = book_query(
        deps.stats,
        wait,
        now=now,
        deadline=deadline,
        active_jobs=deps.stats.active_jobs(),
        policy=deps.settings.poll_policy(),
        latency=latency,
    )
    deps.sleep(booking.pause)  # under a second: lines the query up with the start of its slot
    return {
        "wait_seconds": booking.wait_seconds,
        "slot": booking.slot,
        "latency": round(latency, 3),
        "returned_at": round(now + booking.pause, 3),
    }


def _error_fields(exc: Exception) -> dict[str, Any]:
    return {
        "error_code": getattr(exc, "provider_code", None) or getattr(exc, "code", type(exc).__name__),
        "error_message": getattr(exc, "provider_message", None) or str(exc),
        "error_request_id": getattr(exc, "request_id", None),
    }


# ---------------------------------------------------------------------------------------------
# status


def poll_job(event: dict[str, Any], deps: ProviderDeps) -> dict[str, Any]:
    """One provider query (when a slot is booked): map the provider state and book the next query."""
    job_id, task_id = str(event["job_id"]), str(event["task_id"])
    polls = int(event.get("polls", 0)) + 1
    errors = int(event.get("errors", 0))
    now = deps.clock()
    deadline = parse_ts(str(event["deadline_at"]))
    base: dict[str, Any] = {
        "job_id": job_id,
        "task_id": task_id,
        "deadline_at": event["deadline_at"],
        "polls": polls,
        "tier": str(event.get("tier") or tier_key("", 5, False)),
        "submitted_at": float(event.get("submitted_at") or now.timestamp()),
    }
    if event.get("queued_seconds") is not None:
        base["queued_seconds"] = float(event["queued_seconds"])
    base["latency"] = estimate_latency(
        _float_or_none(event.get("latency")),
        returned_at=_float_or_none(event.get("returned_at")),
        waited=_float_or_none(event.get("wait_seconds")),
        now=now.timestamp(),
    )
    if now >= deadline or polls > deps.settings.max_polls:
        reason = "deadline" if now >= deadline else f"{deps.settings.max_polls} polls"
        return _last_look(task_id, base, errors=errors, reason=reason, deps=deps, now=now, deadline=deadline)
    if "slot" in event:  # events from before the ledger existed carry no slot and just query
        policy = deps.settings.poll_policy()
        pause = slot_check(event["slot"], now.timestamp())
        if pause is None:  # off its booking: the current second may still have room
            pause = claim_now(deps.stats, deps.clock().timestamp(), policy)
        if pause is None:
            # Every query needs a booked second: book a later one rather than risk a full one.
            deps.repo.update_fields(job_id, {"polls": polls}, now=now)
            return {
                **base,
                "errors": errors,
                "state": "WAITING",
                **_book(policy.min_wait, deadline=deadline.timestamp(), latency=base["latency"], deps=deps),
            }
        deps.sleep(pause)  # under a second: the booked second has not begun yet
    try:
        info = _query(task_id, deps)
    except (RetryableProviderError, ProviderAuthError) as exc:
        # No news is not a failure: keep polling until the deadline, more slowly after a 429. A key the
        # provider refuses even when read afresh is no reason to abandon the paid task either.
        interval = deps.settings.poll_interval_seconds
        factor = THROTTLE_FACTOR if isinstance(exc, ProviderThrottledError) else 1.0
        wait = min(MAX_BACKOFF_SECONDS, interval * factor * (1.5 ** min(errors, 6)))
        wait = wait * (1 + deps.rng.random() * 0.2)
        deps.repo.update_fields(job_id, {"polls": polls, "last_error": str(exc)}, now=now)
        return {
            **base,
            "errors": errors + 1,
            "state": "WAITING",
            **_book(wait, deadline=deadline.timestamp(), latency=base["latency"], deps=deps),
        }
    deps.repo.update_fields(job_id, {"polls": polls, "last_polled_at": iso(now)}, now=now)
    if info.request_id:
        base["request_id"] = info.request_id
    return {**base, "errors": 0, **_map_task(info, base, deps=deps, now=now, deadline=deadline)}


def _query(task_id: str, deps: ProviderDeps) -> Any:
    """One task query; a refused key (401/403: rotated within its cache) is read afresh and tried once more."""
    try:
        return deps.client().get_task(task_id)
    except ProviderAuthError:
        deps.refresh_key()
        return deps.client().get_task(task_id)


def _last_look(
    task_id: str,
    base: dict[str, Any],
    *,
    errors: int,
    reason: str,
    deps: ProviderDeps,
    now: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    """Out of time: ask the provider once more, and give up only if the task has not finished."""
    timed_out = {
        **base,
        "errors": errors,
        "state": "TIMED_OUT",
        "code": "Timeout",
        "message": f"no result before the {reason} limit",
        "wait_seconds": 0,
    }
    try:
        info = _query(task_id, deps)
    except (RetryableProviderError, ProviderAuthError):
        return timed_out
    deps.repo.update_fields(str(base["job_id"]), {"polls": base["polls"], "last_polled_at": iso(now)}, now=now)
    if str(info.status) in PROVIDER_TO_JOB:
        return timed_out
    return {**base, "errors": 0, **_map_task(info, base, deps=deps, now=now, deadline=deadline)}


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _map_task(
    info: Any, base: dict[str, Any], *, deps: ProviderDeps, now: datetime, deadline: datetime
) -> dict[str, Any]:
    status = str(info.status)
    job_id = str(base["job_id"])
    if status in PROVIDER_TO_JOB:
        deps.repo.transition(job_id, PROVIDER_TO_JOB[status], now=now)
        state: PollState = "RUNNING" if status == "RUNNING" else "PENDING"
        queued, _ = queue_and_run(_times(info))
        queued = queued if queued is not None else base.get("queued_seconds")
        obs = Observation(
            now=now.timestamp(),
            submitted_at=float(base["submitted_at"]),
            deadline=deadline.timestamp(),
            state=state,
            queued_seconds=queued,
            active_jobs=deps.stats.active_jobs(),
        )
        wait = next_wait(obs, deps.stats.history(str(base["tier"])), deps.settings.poll_policy())
        return {
            "state": status if status != "SUSPENDED" else "PENDING",
            **({"queued_seconds": round(queued, 3)} if queued is not None else {}),
            **_book(wait, deadline=deadline.timestamp(), latency=base["latency"], deps=deps),
        }
    if status == "SUCCEEDED":
        resubmitted = _release_if_foreign(info, job_id, deps)
        if resubmitted is not None:
            return resubmitted
        if not info.video_url:
            return {
                "state": "FAILED",
                "code": "NoVideo",
                "message": "the provider reported SUCCEEDED without a video_url",
                "wait_seconds": 0,
            }
        return {
            "state": "SUCCEEDED",
            "video_url": info.video_url,
            "usage": _usage(info),
            "provider_times": _times(info),
            "wait_seconds": 0,
        }
    if status == "FAILED":
        return {
            "state": "FAILED",
            "code": info.code or "TaskFailed",
            "message": info.message or "the provider reported the task FAILED",
            "wait_seconds": 0,
        }
    if status == "CANCELED":
        return {
            "state": "CANCELED",
            "code": "Canceled",
            "message": "the task was canceled",
            "wait_seconds": 0,
        }
    return {
        "state": "UNKNOWN",
        "code": "TaskUnknown",
        "message": "the provider no longer knows the task (expired or never existed)",
        "wait_seconds": 0,
    }


def _release_if_foreign(info: Any, job_id: str, deps: ProviderDeps) -> dict[str, Any] | None:
    """A task adopted without proof shows its request now: if it is not ours (another client on the
    account made it), release it and create the job's own task. None: deliver this task."""
    job = _reload(job_id, deps)
    if not job.get("adopted_unproven") or job.task_id != str(info.task_id):
        return None
    request = parse_request(job.request, defaults={"model": deps.settings.model_name})
    if not _foreign(info, request):
        deps.repo.update_fields(job_id, {"adopted_unproven": False}, now=deps.clock())
        return None
    deps.repo.release_task(job_id, task_id=str(info.task_id), now=deps.clock())
    event = {"job_id": job_id, "request": job.request, "source": job.get("source"), "origin": job.get("origin")}
    return submit_job(event, deps)


def _usage(info: Any) -> dict[str, Any]:
    usage = info.usage
    if usage is None:
        return {}
    if hasattr(usage, "model_dump"):
        return dict(usage.model_dump(exclude_none=True))
    return dict(usage)


def _times(info: Any) -> dict[str, Any]:
    return {k: getattr(info, k, None) for k in ("submit_time", "scheduled_time", "end_time")}


# ---------------------------------------------------------------------------------------------
# finalize and outcomes


class VideoStoreLike(Protocol):
    def upload_video(self, chunks: Iterable[bytes], *, bucket: str, key: str, part_size: int) -> Any: ...
    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None: ...


class DownloaderLike(Protocol):
    def stream(self, url: str) -> Any: ...


class NotifierLike(Protocol):
    def publish(self, message: dict[str, Any]) -> str: ...
    def put_event(self, message: dict[str, Any]) -> None: ...


# A live announcer publishes within a second; a claim this old belongs to an invocation that died.
NOTIFY_CLAIM_STALE_SECONDS = 10


@dataclass
class FinalizeDeps:
    repo: Repo
    store: VideoStoreLike
    downloader: DownloaderLike
    notifier: NotifierLike
    settings: FinalizeSettings
    clock: Callable[[], datetime] = utcnow
    stats: PollStatsLike | None = None  # where finished tasks teach the poll schedule their times
    sleep: Callable[[float], None] = time.sleep
    notify_claim_stale_seconds: float = NOTIFY_CLAIM_STALE_SECONDS


def finalize_job(event: dict[str, Any], deps: FinalizeDeps) -> dict[str, Any]:
    """Copy the finished video into S3, write its metadata, mark SUCCEEDED and announce it once."""
    job_id = str(event["job_id"])
    poll = dict(event.get("poll") or {})
    job = _job_or_fail(job_id, deps.repo)
    if job.status == JobStatus.SUCCEEDED:
        return _announce_once(job, deps)
    if job.status.is_terminal:  # e.g. canceled while we were polling: its outcome was announced already
        return {"job_id": job_id, "status": job.status.value, "notified": job.notified}
    started = deps.clock()
    deps.repo.transition(job_id, JobStatus.DOWNLOADING, now=started)
    key = f"{deps.settings.output_prefix}{job_id}.mp4"
    with deps.downloader.stream(str(poll["video_url"])) as chunks:
        stored = deps.store.upload_video(
            chunks, bucket=deps.settings.output_bucket, key=key, part_size=deps.settings.part_size_bytes
        )
    finished = deps.clock()
    metadata_key = f"{deps.settings.output_prefix}{job_id}.json"
    metadata = {
        "job_id": job_id,
        "request": job.request,
        "source": job.get("source"),
        "task_id": job.task_id,
        "request_ids": job.get("request_ids", []),
        "usage": poll.get("usage", {}),
        "provider_times": poll.get("provider_times", {}),
        "timings": {
            "accepted_at": job.get("created_at"),
            "submitted_at": job.get("submitted_at"),
            "download_started_at": iso(started),
            "stored_at": iso(finished),
            "download_seconds": round((finished - started).total_seconds(), 3),
        },
        "polls": job.get("polls"),
        "video": {"bucket": stored.bucket, "key": stored.key, "bytes": stored.size, "sha256": stored.sha256},
    }
    deps.store.put_json(bucket=deps.settings.output_bucket, key=metadata_key, data=metadata)
    deps.repo.transition(
        job_id,
        JobStatus.SUCCEEDED,
        now=finished,
        fields={
            "s3_bucket": stored.bucket,
            "s3_key": stored.key,
            "metadata_key": metadata_key,
            "sha256": stored.sha256,
            "bytes": stored.size,
            "usage": poll.get("usage", {}),
        },
    )
    outcome = _announce_once(_job_or_fail(job_id, deps.repo), deps)
    _learn_timing(job, poll, deps)  # after the announcement: learning never delays a user
    return outcome


def _learn_timing(job: Job, poll: dict[str, Any], deps: FinalizeDeps) -> None:
    queue, run = queue_and_run(dict(poll.get("provider_times") or {}))
    if deps.stats is None or queue is None or run is None:
        return
    deps.stats.record_timing(tier_of(job.request), queue=queue, run=run, limit=Policy().history_limit)


OUTCOME_STATUS = {
    "FAILED": JobStatus.FAILED,
    "CANCELED": JobStatus.CANCELED,
    "UNKNOWN": JobStatus.FAILED,
    "TIMED_OUT": JobStatus.TIMED_OUT,
}


def record_outcome(event: dict[str, Any], deps: FinalizeDeps) -> dict[str, Any]:
    """The failure path: record the terminal status and its reason, and announce it once.

    Takes either `poll` (a provider outcome: FAILED, CANCELED, UNKNOWN, TIMED_OUT) or `error`
    (a Step Functions Catch: {"Error", "Cause"}).
    """
    job_id = str(event["job_id"])
    now = deps.clock()
    status, code, message = _outcome_of(event)
    job = deps.repo.get(job_id)
    if job is None:  # failed before the job was recorded (e.g. an invalid request)
        raw = event.get("request")
        job, _ = deps.repo.create_if_absent(
            job_id,
            request=raw if isinstance(raw, dict) else {"raw": str(raw)[:4096]},
            source=str(event.get("source") or "unknown"),
            origin=dict(event.get("origin") or {}),
            now=now,
            deadline_at=now,
        )
    # Keep the provider's own code and message when submit already recorded them.
    keep_recorded = status == JobStatus.FAILED and job.get("error_code")
    fields: dict[str, Any] = {} if keep_recorded else {"error_code": code, "error_message": message}
    deps.repo.transition(job_id, status, now=now, fields=fields)
    return _announce_once(_job_or_fail(job_id, deps.repo), deps)


def _outcome_of(event: dict[str, Any]) -> tuple[JobStatus, str, str]:
    if event.get("error"):
        error = dict(event["error"])
        name = str(error.get("Error") or "States.Runtime")
        cause = error.get("Cause") or ""
        message = _cause_message(cause)
        if name == "States.Timeout":
            return JobStatus.TIMED_OUT, "Timeout", "the workflow exceeded its overall deadline"
        return JobStatus.FAILED, _code_for(name), message or name
    poll = dict(event.get("poll") or {})
    state = str(poll.get("state") or "FAILED")
    return (
        OUTCOME_STATUS.get(state, JobStatus.FAILED),
        str(poll.get("code") or state),
        str(poll.get("message") or state),
    )


def _code_for(error_name: str) -> str:
    """The stable code of one of our exception classes, from the name Step Functions reports."""
    from t2v.request import InvalidRequestError

    pending: list[type[Exception]] = [PipelineError, InvalidRequestError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == error_name:
            return str(getattr(cls, "code", error_name))
        pending.extend(cls.__subclasses__())
    return error_name


def _cause_message(cause: Any) -> str:
    import json

    if isinstance(cause, str) and cause.startswith("{"):
        try:
            return str(json.loads(cause).get("errorMessage") or cause)
        except json.JSONDecodeError:
            return cause
    return str(cause)


def _job_or_fail(job_id: str, repo: Repo) -> Job:
    job = repo.get(job_id)
    if job is None:
        raise PipelineError(f"job {job_id} not found")
    return job


def outcome_message(job: Job) -> dict[str, Any]:
    """What subscribers receive. A failure carries its reason and never a video location."""
    message: dict[str, Any] = {
        "job_id": job.job_id,
        # The same for every copy of this outcome: what a subscriber deduplicates on.
        "notification_id": f"{job.job_id}/{job.status.value}",
        "status": job.status.value,
        "source": job.get("source"),
        "task_id": job.task_id,
        "request": job.request,
        "created_at": job.get("created_at"),
        "finished_at": job.get("finished_at"),
        "polls": job.get("polls"),
    }
    if job.status == JobStatus.SUCCEEDED:
        bucket, key = job.get("s3_bucket"), job.get("s3_key")
        message["video"] = {
            "bucket": bucket,
            "key": key,
            "uri": f"s3://{bucket}/{key}",
            "metadata_key": job.get("metadata_key"),
            "sha256": job.get("sha256"),
            "bytes": job.get("bytes"),
        }
        message["usage"] = job.get("usage")
    else:
        message["error"] = {
            "code": job.get("error_code"),
            "message": job.get("error_message"),
            "request_id": job.get("error_request_id"),
        }
    return message


def announce_job(job_id: str, deps: FinalizeDeps) -> dict[str, Any]:
    """Announce a terminal job's outcome unless that was done (the sweeper's repair of a lost announcement)."""
    return _announce_once(_job_or_fail(job_id, deps.repo), deps)


def _announce_once(job: Job, deps: FinalizeDeps) -> dict[str, Any]:
    if not (job.notified and job.get("event_sent_at")):
        _publish_once(job, deps)
    return {"job_id": job.job_id, "status": job.status.value, "notified": True, "task_id": job.task_id}


def _publish_once(job: Job, deps: FinalizeDeps) -> None:
    """Claim, publish, mark: concurrent announcers (a trigger delivered twice, a cancel racing the
    workflow) never both publish, and a retry publishes again only when the claimer died unmarked.

    SNS standard topics cannot deduplicate, so the one remaining window (a crash after SNS accepted
    the message and before the mark) gives a second copy; every copy carries the same deterministic
    `notification_id` (body and message attribute) for subscribers to drop it. The EventBridge event
    follows the SNS mark under the same claim, with its own mark.
    """
    token = uuid.uuid4().hex
    stale = timedelta(seconds=deps.notify_claim_stale_seconds)
    give_up = deps.clock() + stale + timedelta(seconds=2)
    while True:
        now = deps.clock()
        if deps.repo.claim_notification(job.job_id, token=token, now=now, stale_before=now - stale):
            current = _job_or_fail(job.job_id, deps.repo)
            message = outcome_message(current)
            if not current.notified:
                message_id = deps.notifier.publish(message)
                deps.repo.mark_notified(job.job_id, now=deps.clock(), message_id=message_id)
            deps.notifier.put_event(message)
            deps.repo.update_fields(job.job_id, {"event_sent_at": iso(deps.clock())}, now=deps.clock())
            return
        current = _job_or_fail(job.job_id, deps.repo)
        if current.notified and current.get("event_sent_at"):
            return  # the other announcer finished
        if now >= give_up:
            raise NotificationInProgressError(f"job {job.job_id}: another invocation is announcing it")
        deps.sleep(0.2)
