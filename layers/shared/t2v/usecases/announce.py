"""Announce: end a job with an outcome and tell subscribers once (SNS, then EventBridge)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from t2v.adapters.jobs_repo import Job
from t2v.contract import Announced, Ended
from t2v.errors import NotificationInProgressError
from t2v.jobs import JobStatus
from t2v.times import iso, utcnow
from t2v.usecases.ports import NotifierLike, Repo, job_or_fail

# A live announcer publishes within a second; a claim this old belongs to an invocation that died.
NOTIFY_CLAIM_STALE_SECONDS = 10


@dataclass
class AnnounceDeps:
    repo: Repo
    notifier: NotifierLike
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    notify_claim_stale_seconds: float = NOTIFY_CLAIM_STALE_SECONDS


@dataclass(frozen=True)
class FirstRecord:
    """How to record a job that ends before it was recorded (e.g. its request was invalid)."""

    request: Any = None
    source: str = "unknown"
    origin: dict[str, Any] = field(default_factory=dict)


def end_job(
    job_id: str, outcome: Ended, deps: AnnounceDeps, *, first: FirstRecord | None = None
) -> Announced:
    """Record the job's terminal status and its reason, and announce it once."""
    now = deps.clock()
    job = deps.repo.get(job_id)
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
        )
    # Keep the provider's own code and message when submit already recorded them.
    keep_recorded = outcome.status == JobStatus.FAILED and job.get("error_code")
    fields: dict[str, Any] = (
        {} if keep_recorded else {"error_code": outcome.code, "error_message": outcome.message}
    )
    deps.repo.transition(job_id, outcome.status, now=now, fields=fields)
    return announce_once(job_or_fail(deps.repo, job_id), deps)


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


def announce_once(job: Job, deps: AnnounceDeps) -> Announced:
    """Announce the job's (terminal) status unless that was done already."""
    if not (job.notified and job.get("event_sent_at")):
        _publish_once(job, deps)
    return Announced(job_id=job.job_id, status=job.status, notified=True, task_id=job.task_id)


def _publish_once(job: Job, deps: AnnounceDeps) -> None:
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
            current = job_or_fail(deps.repo, job.job_id)
            message = outcome_message(current)
            if not current.notified:
                message_id = deps.notifier.publish(message)
                deps.repo.mark_notified(job.job_id, now=deps.clock(), message_id=message_id)
            deps.notifier.put_event(message)
            deps.repo.update_fields(job.job_id, {"event_sent_at": iso(deps.clock())}, now=deps.clock())
            return
        current = job_or_fail(deps.repo, job.job_id)
        if current.notified and current.get("event_sent_at"):
            return  # the other announcer finished
        if now >= give_up:
            raise NotificationInProgressError(f"job {job.job_id}: another invocation is announcing it")
        deps.sleep(0.2)
