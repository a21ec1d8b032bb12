"""Reconcile a create whose answer was lost: find the task it made, never another job's.

The provider's create has no idempotency key, so a create that timed out, or whose invocation
died, may or may not have made a (billed) task. Before any second create, the provider's task list
is searched for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from t2v.errors import IncompleteListError
from t2v.jobs import CONTESTED, JobRecord, TaskStatus
from t2v.provider import TaskInfo
from t2v.request import RequestBase
from t2v.usecases.ports import ProviderDeps

# The provider makes the task once it has the whole request, which the client's connect and write
# timeouts (5 s + 10 s, dashscope.DEFAULT_TIMEOUT) bound; the read that follows creates nothing.
CREATE_MAX_SECONDS = 16
_UNFINISHED = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUSPENDED})


class Reconciled(StrEnum):
    ADOPTED = "ADOPTED"  # our lost create's task is found and now bound to the job
    UNDECIDED = "UNDECIDED"  # unclaimed tasks are still running: one may be ours, it cannot be told yet
    ABSENT = "ABSENT"  # no task can be ours: a new create is safe


class Reconciliation(NamedTuple):
    """What reconcile found, and the job as bound to the task it adopted (ADOPTED only)."""

    verdict: Reconciled
    adopted: JobRecord | None = None


class Rivals(StrEnum):
    NONE = "NONE"  # no other job's unanswered create can have made the task
    OPEN = "OPEN"  # one can, and its create is still live or its death not yet noticed: wait
    CLOSED = "CLOSED"  # one can, and its window is settled: the task cannot be told apart


# (task id, status, request id, created at): an unowned task of our window that shows no prompt
_Maybe = tuple[str, str, str | None, float | None]


def create_window(job: JobRecord, skew: float) -> tuple[float, float] | None:
    """Epoch seconds between which the job's last create can have made a task (None: never sent).

    `skew` is the margin for the provider's clock against ours (both NTP-synchronised).
    """
    if job.create_sent_at is None:
        return None
    start = job.create_sent_at.timestamp()
    end = start + CREATE_MAX_SECONDS  # unknown (the invocation died): as long as a create can reach it
    answered = job.create_ambiguous_at
    if answered is not None and answered.timestamp() >= start:  # else: an earlier create's answer
        end = min(end, answered.timestamp())
    return start - skew, end + skew


def _key_id(listed: TaskInfo) -> str | None:
    """The short id of the API key that made a listed task (`api_key_id`), None when not shown."""
    value = listed.raw.get("api_key_id")
    return str(value) if value not in (None, "") else None


def _created_at(listed: TaskInfo) -> float | None:
    value = listed.raw.get("gmt_create")
    return value / 1000 if isinstance(value, int | float) and not isinstance(value, bool) else None


def reconcile(job: JobRecord, request: RequestBase, deps: ProviderDeps) -> Reconciliation:
    """Look for the task a lost create made (list-tasks) and bind it to the job, never another job's.
    An adoption comes with the job as the binding left it (SUBMITTED, with the task).

    Only the create's window (`create_window`, which holds the clock margin) is listed: a task made
    outside it cannot be ours, however busy the account. A scan that cannot read the whole window is
    UNDECIDED (try again later), never ABSENT: what it did not see may be ours.

    The list shows every task of the account and which API key made it (`api_key_id`). The keys that
    made the window's tasks we own are ours; an unowned task made by any other key (another
    application on the account) is never ours and is not even looked at. When the window holds no task
    we own, no key can be told ours and every unowned task stays a candidate.

    A task is ours on proof: our ownership record, or the provider's `orig_prompt` (a query shows it
    once the task SUCCEEDED) together with the request's parameters (its usage, `foreign`). Without
    proof (a task still running, or FAILED), a task nobody owns is adopted only when it is the single
    one the provider created while our create was in flight and no other job has an unanswered create
    whose window holds it; such an adoption is checked again once the task shows its request (poll).
    Otherwise the running ones are waited for until they show their prompt, never guessed, and
    finished ones are marked contested so that no job adopts them later either (a duplicate task
    beats a wrong one).
    """
    window = create_window(job, deps.settings.provider_clock_skew_seconds)
    if window is None:
        return Reconciliation(Reconciled.ABSENT)  # no create of ours was ever sent: no task can be ours
    client = deps.client()
    try:
        listed_tasks = list(
            client.iter_tasks(
                start_time=datetime.fromtimestamp(window[0], UTC),
                end_time=datetime.fromtimestamp(window[1], UTC),
                model_name=request.model,
            )
        )
    except IncompleteListError:
        return Reconciliation(Reconciled.UNDECIDED)
    unowned = _unowned(job, listed_tasks, deps)
    if isinstance(unowned, JobRecord):
        return Reconciliation(Reconciled.ADOPTED, unowned)
    maybe: list[_Maybe] = []
    for listed in unowned:
        created = _created_at(listed)
        if created is not None and not window[0] <= created <= window[1]:
            continue  # made while no create of ours was in flight
        task_id = str(listed.task_id)
        info = client.get_task(task_id)
        if info.orig_prompt is not None:
            if not foreign(info, request) and (bound := bind(job, task_id, info.request_id, deps)):
                return Reconciliation(Reconciled.ADOPTED, bound)
        else:
            maybe.append((task_id, str(info.status), info.request_id, created))
    if any(_too_young(created, deps) for *_, created in maybe):
        # A rival's create sent moments before this task appeared may not show in the index yet:
        # adopting it then would take another job's task (and that job would cancel it as an orphan).
        return Reconciliation(Reconciled.UNDECIDED)
    return _decide(job, maybe, deps)


def _unowned(job: JobRecord, listed_tasks: list[TaskInfo], deps: ProviderDeps) -> list[TaskInfo] | JobRecord:
    """The window's tasks no job owns that our API key may have made (or the job bound to its own task,
    when that was found). The keys of the tasks our jobs own are ours; with none owned, any key may be."""
    unowned: list[TaskInfo] = []
    our_keys: set[str] = set()
    for listed in listed_tasks:
        task_id = str(listed.task_id)
        owner = deps.tasks.owner_of_task(task_id)
        if owner == job.job_id:  # a crash came between the two writes of record_task
            if bound := bind(job, task_id, None, deps):
                return bound
            continue
        if owner is None:
            unowned.append(listed)
        elif owner != CONTESTED and (key := _key_id(listed)) is not None:
            our_keys.add(key)  # a task one of our jobs made: its key is ours
    # A task made with another API key is another application's, never ours.
    return [t for t in unowned if not our_keys or _key_id(t) in our_keys]


def foreign(info: TaskInfo, request: RequestBase) -> bool:
    """Whether a task that shows its request (SUCCEEDED) was made from another request than ours:
    another prompt, or a video of another size, length or sound (the provider's usage)."""
    if info.orig_prompt is not None and info.orig_prompt != (request.prompt or ""):
        return True
    usage = info.usage
    if usage is None:
        return False
    seen = {"size": usage.size, "duration": usage.duration, "audio": usage.audio}
    want = request.expected_usage()  # None where the family cannot tell in advance (an image's aspect)
    return any(seen[k] is not None and want.get(k) is not None and seen[k] != want[k] for k in seen)


def _decide(job: JobRecord, maybe: list[_Maybe], deps: ProviderDeps) -> Reconciliation:
    """What to do with the unowned tasks of our window that show no prompt."""
    if len(maybe) == 1:
        task_id, status, request_id, created = maybe[0]
        rivals, others = _rivals(job, created, deps)
        if rivals == Rivals.NONE and (bound := bind(job, task_id, request_id, deps, unproven=True)):
            return Reconciliation(Reconciled.ADOPTED, bound)
        if rivals == Rivals.OPEN:  # a rival's create is live or its invocation died unnoticed yet
            return Reconciliation(Reconciled.UNDECIDED)
        if rivals == Rivals.CLOSED and status not in _UNFINISHED and created is not None:
            # One finished task that shows no prompt, several settled creates that may have made
            # it. The provider makes a task the moment it has the request, so its maker is the
            # create sent last before it appeared: every claimant works this out alike, the maker
            # adopts it and the others create (their creates never arrived). Without this, the
            # maker would create a second billed task.
            maker = _likeliest_maker([job, *others], created) == job.job_id
            if maker and (bound := bind(job, task_id, request_id, deps, unproven=True)):
                return Reconciliation(Reconciled.ADOPTED, bound)
            return Reconciliation(Reconciled.ABSENT)
    if any(m[1] in _UNFINISHED for m in maybe):
        return Reconciliation(Reconciled.UNDECIDED)
    for task_id, *_ in maybe:
        # Finished without proof and claimable by others too: nobody may adopt it later, when the
        # other claimants have moved on and one job looks like the only one left.
        deps.tasks.contest_task(task_id, job_id=job.job_id, now=deps.clock())
    return Reconciliation(Reconciled.ABSENT)


def _too_young(created: float | None, deps: ProviderDeps) -> bool:
    """Whether a task was made too recently for every rival create to show in the index."""
    lag = deps.settings.index_lag_seconds
    if created is None or lag <= 0:  # no lag (an index that never trails its table): no guard
        return False
    margin = lag + deps.settings.provider_clock_skew_seconds  # the provider's clock may run behind
    return deps.clock().timestamp() - created < margin


def _likeliest_maker(claimants: list[JobRecord], created: float) -> str:
    """The job whose create was sent last before `created` (ties: the smaller job id)."""

    def sent(candidate: JobRecord) -> float:
        return candidate.create_sent_at.timestamp() if candidate.create_sent_at else float("-inf")

    before = [c for c in claimants if sent(c) <= created] or claimants
    return max(before, key=lambda c: (sent(c), [-ord(ch) for ch in c.job_id])).job_id


def _rivals(job: JobRecord, created: float | None, deps: ProviderDeps) -> tuple[Rivals, list[JobRecord]]:
    """Other jobs whose unanswered create may have made a task created at `created`."""
    if created is None:
        return Rivals.CLOSED, []
    found, others = Rivals.NONE, []
    for other in deps.repo.unbound_creates(since=deps.clock() - timedelta(days=1)):
        window = create_window(other, deps.settings.provider_clock_skew_seconds)
        if other.job_id == job.job_id or not window or not window[0] <= created <= window[1]:
            continue
        sent, answered = other.create_sent_at, other.create_ambiguous_at
        if answered is None or sent is None or answered < sent:
            return Rivals.OPEN, []
        found = Rivals.CLOSED
        others.append(other)
    return found, others


def bind(
    job: JobRecord, task_id: str, request_id: str | None, deps: ProviderDeps, *, unproven: bool = False
) -> JobRecord | None:
    """Bind a found task to the job, once: the job as bound, or None when the job or the task is bound
    already.

    `unproven`: nothing showed the task was made from our request yet, so poll checks its request
    once the provider shows it, before its video is delivered (`foreign`).
    """
    if not deps.tasks.record_task(job.job_id, task_id=task_id, request_id=request_id, now=deps.clock()).done:
        return None
    return deps.repo.update_fields(
        job.job_id, {"reconciled": True, "adopted_unproven": unproven}, now=deps.clock()
    )
