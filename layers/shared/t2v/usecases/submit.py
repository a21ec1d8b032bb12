"""Submit: validate the request and create the provider task exactly once for the job."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from t2v.billing import Caps
from t2v.capacity import CAPACITY_CODES, queue_key
from t2v.contract import CapacityWait, Ended, SubmitInput, SubmitResult
from t2v.errors import (
    AmbiguousCreateError,
    CreateInProgressError,
    JobAlreadyFinishedError,
    PipelineError,
    ProviderThrottledError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.families import family_of_request, parse_request
from t2v.images import inspect_images
from t2v.jobs import JobRecord, JobStatus
from t2v.request import RequestBase
from t2v.times import iso
from t2v.usecases.booking import first_turn
from t2v.usecases.ports import ProviderClient, ProviderDeps, job_or_fail
from t2v.usecases.reconcile import Reconciled, reconcile

REFUSED_LOOK_AGAIN_SECONDS = 60


def submit_job(event: SubmitInput, deps: ProviderDeps) -> SubmitResult:
    """Claim the job's create, create the task once, and book the first poll; or, with no provider
    capacity free for it, queue the job and tell the workflow to wait (`CapacityWait`).

    The door that started the execution recorded the job already; submit records it only when it
    is invoked on its own (then it is the door).
    """
    job_id = event.job_id
    request = parse_request(event.request, defaults={"model": deps.settings.model_name})
    now = deps.clock()
    job = deps.repo.get(job_id) or _record(event, request, deps, now)
    if job.task_id:
        return first_turn(job, deps)
    if job.status.is_terminal:
        raise JobAlreadyFinishedError(f"job {job_id} already ended {job.status}")
    _check_images(request, deps)
    _charge(job, request, deps, now)
    if deps.capacity is not None and job.lease_at is None:
        waiting = _wait_for_capacity(job, deps, now)
        if waiting is not None:
            return waiting
    stale_before = now - timedelta(seconds=deps.settings.create_claim_stale_seconds)
    claim = deps.repo.claim_create(job_id, now=now, stale_before=stale_before, batch_id=job.batch_id)
    if not claim.done:
        current = claim.job
        if current.task_id:
            return first_turn(current, deps)
        if current.create_ambiguous_at is None:
            raise CreateInProgressError(f"job {job_id}: another invocation is creating the task")
        if (adopted := reconcile(current, request, deps).adopted) is not None:
            return first_turn(adopted, deps)
        raise AmbiguousCreateError("create outcome still unknown; waiting before any new create")
    if job.create_claimed_at:
        # A previous claim went stale: its create may have reached the provider. Never create twice.
        claimed = _close_dead_create(claim.job, now, deps)
        found = reconcile(claimed, request, deps)
        if found.adopted is not None:
            return first_turn(found.adopted, deps)
        if found.verdict == Reconciled.UNDECIDED:
            raise AmbiguousCreateError("an unclaimed provider task may be ours; waiting until it can be told")
    return _create(claim.job, request, deps)


def _record(event: SubmitInput, request: RequestBase, deps: ProviderDeps, now: datetime) -> JobRecord:
    job, _ = deps.repo.create_if_absent(
        event.job_id,
        request=request.model_dump(exclude_none=True),
        source=event.source,
        origin=dict(event.origin),
        now=now,
        deadline_at=deps.settings.deadline_from(now),
        execution=event.execution,
    )
    return job


def _charge(job: JobRecord, request: RequestBase, deps: ProviderDeps, now: datetime) -> None:
    """The account's day and its owner's pay for the job's seconds once, before it queues or creates.

    A job with no owner (submit invoked on its own) counts for the account only."""
    settings = deps.settings
    if settings.budgets_on:
        caps = Caps(
            account=settings.daily_budget_seconds,
            caller=settings.caller_daily_budget_seconds,
            owner=job.owner,
        )
        deps.budget.charge_budget(
            job, day=now.strftime("%Y-%m-%d"), seconds=request.billed_seconds, caps=caps, now=now
        )


def _close_dead_create(job: JobRecord, now: datetime, deps: ProviderDeps) -> JobRecord:
    """The invocation that sent the last create is dead (its claim went stale): whatever task that
    create made exists by now, so its window ends here rather than CREATE_MAX_SECONDS after sending."""
    sent, answered = job.create_sent_at, job.create_ambiguous_at
    if sent is None or (answered is not None and answered >= sent):
        return job
    return deps.repo.update_fields(job.job_id, {"create_ambiguous_at": iso(now)}, now=now)


def _wait_for_capacity(job: JobRecord, deps: ProviderDeps, now: datetime) -> CapacityWait | None:
    """Queue the job (once) and try to admit; None when it holds a lease now and may create its task.

    A job that waited past MaxQueueSeconds (or its capacity turns) stops waiting: TIMED_OUT, never
    FAILED, as nothing went wrong but the provider's being full for that long."""
    governor = deps.capacity
    assert governor is not None
    key = job.queue_key or queue_key(iso(job.queued_at or now), job.job_id)
    if job.queue_owner is None:
        governor.leases.enqueue(job.job_id, owner=job.owner, key=key, now=now)  # False: queued before
    governor.admit(skip=job.job_id)
    current = job_or_fail(deps.repo, job.job_id)
    if current.lease_at is not None:
        return None  # admitted at once: the job never waited, so it never shows WAITING
    if current.status.is_terminal:
        raise JobAlreadyFinishedError(f"job {job.job_id} ended {current.status} while queued")
    if current.status == JobStatus.ACCEPTED:
        deps.repo.transition(job.job_id, JobStatus.WAITING, now=now)
    turns = current.capacity_turns + 1
    waited = (now - (current.queued_at or now)).total_seconds()
    settings = deps.settings
    if waited >= settings.max_queue_seconds or turns > settings.max_capacity_turns:
        governor.free(current.job_id, owner=current.owner, queued=True)
        limit = (
            f"{settings.max_queue_seconds} s"
            if waited >= settings.max_queue_seconds
            else f"{turns - 1} turns"
        )
        gave_up = Ended(
            status=JobStatus.TIMED_OUT,
            code="CapacityWaitTimeout",
            message=f"no provider capacity came free within the queue's limit ({limit})",
        )
        return CapacityWait(
            job_id=job.job_id, decision="TIMED_OUT", wait_seconds=1, turns=turns, outcome=gave_up
        )
    deps.repo.update_fields(job.job_id, {"capacity_turns": turns}, now=now)
    # No place in line here: counting it reads the owner's queue, too dear for every heartbeat of
    # thousands of waiting jobs (the API's view counts it when a user asks).
    wait = min(settings.capacity_heartbeat_seconds, max(1, int(settings.max_queue_seconds - waited)))
    return CapacityWait(job_id=job.job_id, wait_seconds=wait, turns=turns)


def _refused_for_capacity(job: JobRecord, exc: ProviderThrottledError, deps: ProviderDeps) -> CapacityWait:
    """The provider refused the create for capacity: back to the front of the owner's queue, the
    working cap lowered to what else was in flight; no task exists, so the claim goes too."""
    governor = deps.capacity
    assert governor is not None
    now = deps.clock()
    key = job.queue_key or queue_key(iso(job.queued_at or now), job.job_id)
    deps.repo.update_fields(job.job_id, {"last_error": f"refused for capacity: {exc}"}, now=now)
    deps.repo.release_claim(job.job_id)
    governor.leases.refused(job.job_id, owner=job.owner, key=key, now=now)
    if job.status == JobStatus.ACCEPTED:  # admitted at once before: it waits now
        deps.repo.transition(job.job_id, JobStatus.WAITING, now=now)
    turns = job.capacity_turns + 1
    deps.repo.update_fields(job.job_id, {"capacity_turns": turns}, now=now)
    # Its lease went back with nothing admitted: when nothing else is in flight, no freed lease will wake
    # it, so it looks again within a minute (one probe per refused job, not per queued one).
    wait = min(deps.settings.capacity_heartbeat_seconds, REFUSED_LOOK_AGAIN_SECONDS)
    return CapacityWait(job_id=job.job_id, wait_seconds=wait, turns=turns)


def _create(job: JobRecord, request: RequestBase, deps: ProviderDeps) -> SubmitResult:
    client = deps.client()
    # When the create was sent bounds which provider tasks it can have made (see reconcile).
    deps.repo.update_fields(job.job_id, {"create_sent_at": iso(deps.clock())}, now=deps.clock())
    try:
        created = client.create_task(request, _image_urls(request, deps))
    except AmbiguousCreateError as exc:
        lost = deps.repo.update_fields(
            job.job_id,
            {"create_ambiguous_at": iso(deps.clock()), "last_error": str(exc)},
            now=deps.clock(),
        )
        if (adopted := reconcile(lost, request, deps).adopted) is not None:
            return first_turn(adopted, deps)
        raise
    except TerminalProviderError as exc:
        deps.repo.update_fields(
            job.job_id,
            {
                "error_code": exc.provider_code or exc.code,
                "error_message": exc.provider_message or str(exc),
                "error_request_id": exc.request_id,
            },
            now=deps.clock(),
        )
        deps.repo.release_claim(job.job_id)  # refused: no task exists, none can be ours
        raise
    except ProviderThrottledError as exc:
        if deps.capacity is not None and exc.provider_code in CAPACITY_CODES:
            return _refused_for_capacity(job, exc, deps)
        deps.repo.release_claim(job.job_id)  # refused: a new create is safe
        raise
    except RetryableProviderError:
        deps.repo.release_claim(job.job_id)  # refused or never sent: a new create is safe
        raise
    if deps.capacity is not None:
        deps.capacity.leases.accepted()
    bound = deps.tasks.record_task(
        job.job_id, task_id=created.task_id, request_id=created.request_id, now=deps.clock()
    )
    current = bound.job
    if bound.done:
        return first_turn(current, deps)
    if current.task_id != created.task_id:
        # Canceled (or bound to another task) while the create was in flight: a task nobody will
        # ever poll must not run on, billed and unseen.
        cancel_orphan(client, created.task_id)
        if current.status.is_terminal or not current.task_id:
            raise JobAlreadyFinishedError(
                f"job {job.job_id} ended {current.status} while its task was created"
            )
    return first_turn(current, deps)


def _check_images(request: RequestBase, deps: ProviderDeps) -> None:
    """Before any paid call (and again after a capacity wait: an image may have gone meanwhile)."""
    if request.images and deps.images is not None:
        inspect_images(request, deps.images, family_of_request(request).image_limits)


def _image_urls(request: RequestBase, deps: ProviderDeps) -> dict[str, str]:
    """Each image's URL for the provider, made now (after any capacity wait): an S3 object's
    presigned GET lasting `image_url_seconds` (README: and never past the signing role's session)."""
    if deps.images is None:
        return {}
    seconds = deps.settings.image_url_seconds
    return {item.url: deps.images.presign(item.url, seconds) for item in request.images}


def cancel_orphan(client: ProviderClient, task_id: str) -> None:
    """Cancel a task no job will track; the provider cancels only PENDING tasks, so this is best
    effort (past PENDING, or the provider unreachable: nothing more can be done about it here)."""
    with contextlib.suppress(PipelineError):
        client.cancel_task(task_id)
