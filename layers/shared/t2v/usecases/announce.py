"""Announce: end a job with an outcome and tell subscribers once (SNS, then EventBridge)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from t2v.billing import billing_outcome, refundable
from t2v.contract import Announced, Ended
from t2v.errors import NotificationInProgressError
from t2v.jobs import JobRecord, JobStatus, listed_as
from t2v.times import iso, iso_or_none, utcnow
from t2v.usecases.capacity import Governor
from t2v.usecases.ports import AnnouncementStore, JobStore, NotifierLike, RefundStore

# A live announcer publishes within a second; a claim this old belongs to an invocation that died.
NOTIFY_CLAIM_STALE_SECONDS = 10


@dataclass
class AnnounceDeps:
    repo: JobStore
    announcements: AnnouncementStore
    notifier: NotifierLike
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    notify_claim_stale_seconds: float = NOTIFY_CLAIM_STALE_SECONDS
    capacity: Governor | None = None  # frees the ended job's lease or queue place (None: no governor)
    include_prompt: bool = True  # OutcomePrompts: Omitted leaves the prompts out of the messages
    refunds: RefundStore | None = None  # gives an unbilled job's charge back (None: refunds off)


@dataclass(frozen=True)
class FirstRecord:
    """How to record a job that ends before it was recorded (e.g. its request was invalid)."""

    request: Any = None
    source: str = "unknown"
    origin: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None  # who sees it: a refused prompt-file line is its file's owner's job


class Ending(NamedTuple):
    """What `end_job` did: the job as it stands after it, and what subscribers were told."""

    job: JobRecord
    announced: Announced  # notified False: nothing announced (a conditional end that did not happen)


def end_job(
    job_id: str,
    outcome: Ended,
    deps: AnnounceDeps,
    *,
    first: FirstRecord | None = None,
    seen: JobRecord | None = None,
    expect: dict[str, str | None] | None = None,
) -> Ending:
    """Record the job's terminal status and its reason, and announce it once.

    A job that ended already keeps its end, which is announced (the announcement its ender may not
    have made). `seen`: the job as the caller just read it, so it is not read again. `expect` makes the
    end conditional (`JobsRepository.transition`): when the job changed since the caller read it, or
    ended otherwise, nothing is written or announced and the caller reads it again; the same end
    recorded before (a write whose answer was lost, a concurrent caller) is announced.
    """
    now = deps.clock()
    job = seen if seen is not None else deps.repo.get(job_id)
    if job is None:  # failed before the job was recorded (e.g. an invalid request)
        first = first or FirstRecord()
        raw = first.request
        job, _ = deps.repo.create_if_absent(
            job_id,
            request=raw if isinstance(raw, dict) else {"raw": str(raw)[:4096]},
            source=first.source,
            origin=dict(first.origin),
            now=now,
            deadline_at=now,
            owner=first.owner,
        )
    # Keep the provider's own code and message when submit already recorded them.
    keep_recorded = outcome.status == JobStatus.FAILED and job.error_code
    fields: dict[str, Any] = (
        {} if keep_recorded else {"error_code": outcome.code, "error_message": outcome.message}
    )
    # Recorded with the end, so whoever settles the job later (a retry, the sweeper) reads the same.
    fields["billing_outcome"] = billing_outcome(job, outcome.status, outcome.task_status).value
    fields.update(listed_as(job.owner, outcome.status))  # GSI by_owner_status lists it from now on
    written = deps.repo.transition(job_id, outcome.status, now=now, fields=fields, expect=expect).job
    if expect is not None and written.status != outcome.status:
        return Ending(written, _announcement(written, notified=False))
    if deps.capacity is not None and written.status.is_terminal:
        deps.capacity.free(job_id, owner=written.owner, queued=written.queue_owner is not None)
    announced = _announce(written, deps)
    return Ending(announced, _announcement(announced, notified=True))


# What `OutcomePrompts: Omitted` leaves out of a message's request: the words a tenant wrote.
PROMPT_FIELDS = ("prompt", "negative_prompt")


def outcome_message(job: JobRecord, *, include_prompt: bool = True) -> dict[str, Any]:
    """What subscribers receive. A failure carries its reason and never a video location. `owner`
    (also an SNS message attribute) lets a subscriber of a shared topic or bus filter to one tenant."""
    request = job.request
    if not include_prompt and isinstance(request, dict):
        request = {k: v for k, v in request.items() if k not in PROMPT_FIELDS}
    message: dict[str, Any] = {
        "job_id": job.job_id,
        # The same for every copy of this outcome: what a subscriber deduplicates on.
        "notification_id": f"{job.job_id}/{job.status.value}",
        "status": job.status.value,
        "source": job.source,
        "owner": job.owner,
        "task_id": job.task_id,
        "request": request,
        "created_at": iso_or_none(job.created_at),
        "finished_at": iso_or_none(job.finished_at),
        "polls": job.polls,
    }
    if job.status == JobStatus.SUCCEEDED:
        message["video"] = {
            "bucket": job.s3_bucket,
            "key": job.s3_key,
            "uri": f"s3://{job.s3_bucket}/{job.s3_key}",
            "metadata_key": job.metadata_key,
            "sha256": job.sha256,
            "bytes": job.bytes,
        }
        message["usage"] = job.usage
    else:
        message["error"] = {
            "code": job.error_code,
            "message": job.error_message,
            "request_id": job.error_request_id,
        }
    return message


def announce_once(job: JobRecord, deps: AnnounceDeps) -> Announced:
    """Announce the job's (terminal) status unless that was done already."""
    return _announcement(_announce(job, deps), notified=True)


def _announcement(job: JobRecord, *, notified: bool) -> Announced:
    return Announced(job_id=job.job_id, status=job.status, notified=notified, task_id=job.task_id)


def _announce(job: JobRecord, deps: AnnounceDeps) -> JobRecord:
    """Settle the job's budget, then announce it unless that was done already; the job as it stands
    afterwards. Refunded before announced: an announced job was refunded, and a crash in between is
    healed by whoever announces it (a retry, the sweeper)."""
    _refund(job, deps)
    if job.notified and job.event_sent_at:
        return job
    if job.quiet:  # a batch line: its batch announces once for all its lines (t2v.usecases.batches)
        return _settle_quietly(job, deps)
    return _publish_once(job, deps)


def _settle_quietly(job: JobRecord, deps: AnnounceDeps) -> JobRecord:
    """Mark a quiet line as settled without publishing, so nobody (a retry, the sweeper) announces it."""
    now = deps.clock()
    deps.announcements.mark_notified(job.job_id, now=now, message_id="quiet")
    return deps.repo.update_fields(job.job_id, {"event_sent_at": iso(now)}, now=now)


def _refund(job: JobRecord, deps: AnnounceDeps) -> None:
    """Give the ended job's charge back when the provider did not bill its outcome (t2v.billing);
    the ledger's transaction makes a second call (a duplicate, a retry) a no-op."""
    if deps.refunds is not None and job.status.is_terminal and refundable(job):
        deps.refunds.refund(job, now=deps.clock())


def _publish_once(job: JobRecord, deps: AnnounceDeps) -> JobRecord:
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
        claim = deps.announcements.claim_notification(
            job.job_id, token=token, now=now, stale_before=now - stale
        )
        current = claim.job
        if claim.done:
            message = outcome_message(current, include_prompt=deps.include_prompt)
            if not current.notified:
                message_id = deps.notifier.publish(message)
                deps.announcements.mark_notified(job.job_id, now=deps.clock(), message_id=message_id)
            deps.notifier.put_event(message)
            return deps.repo.update_fields(job.job_id, {"event_sent_at": iso(deps.clock())}, now=deps.clock())
        if current.notified and current.event_sent_at:
            return current  # the other announcer finished
        if now >= give_up:
            raise NotificationInProgressError(f"job {job.job_id}: another invocation is announcing it")
        deps.sleep(0.2)
