"""Finalize: copy the finished video into S3, write its metadata, mark SUCCEEDED and announce it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from t2v.config import FinalizeSettings
from t2v.contract import Announced, Succeeded
from t2v.families import tier_of
from t2v.jobs import JobRecord, JobStatus
from t2v.schedule import Policy, queue_and_run
from t2v.times import iso, iso_or_none, utcnow
from t2v.usecases.announce import AnnounceDeps, announce_once
from t2v.usecases.ports import PollStatsLike, job_or_fail


class VideoStoreLike(Protocol):
    def upload_video(self, chunks: Iterable[bytes], *, bucket: str, key: str, part_size: int) -> Any: ...
    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None: ...


class DownloaderLike(Protocol):
    def stream(self, url: str) -> Any: ...


@dataclass
class FinalizeDeps:
    announce: AnnounceDeps
    store: VideoStoreLike
    downloader: DownloaderLike
    settings: FinalizeSettings
    stats: PollStatsLike | None = None  # where finished tasks teach the poll schedule their times
    clock: Callable[[], datetime] = utcnow


def finalize_job(job_id: str, succeeded: Succeeded, deps: FinalizeDeps) -> Announced:
    """Copy the finished video into S3, write its metadata, mark SUCCEEDED and announce it once."""
    repo = deps.announce.repo
    job = job_or_fail(repo, job_id)
    if job.status == JobStatus.SUCCEEDED:
        return announce_once(job, deps.announce)
    if job.status.is_terminal:  # e.g. canceled while we were polling: its outcome was announced already
        return Announced(job_id=job_id, status=job.status, notified=job.notified, task_id=job.task_id)
    started = deps.clock()
    repo.transition(job_id, JobStatus.DOWNLOADING, now=started)
    key = f"{deps.settings.output_prefix}{job_id}.mp4"
    with deps.downloader.stream(succeeded.video_url) as chunks:
        stored = deps.store.upload_video(
            chunks, bucket=deps.settings.output_bucket, key=key, part_size=deps.settings.part_size_bytes
        )
    finished = deps.clock()
    metadata_key = f"{deps.settings.output_prefix}{job_id}.json"
    metadata = {
        "job_id": job_id,
        "request": job.request,
        "source": job.source,
        "task_id": job.task_id,
        "request_ids": job.request_ids,
        "usage": succeeded.usage,
        "provider_times": succeeded.provider_times.model_dump(),
        "timings": {
            "accepted_at": iso_or_none(job.created_at),
            "submitted_at": iso_or_none(job.submitted_at),
            "download_started_at": iso(started),
            "stored_at": iso(finished),
            "download_seconds": round((finished - started).total_seconds(), 3),
        },
        "polls": job.polls,
        "video": {"bucket": stored.bucket, "key": stored.key, "bytes": stored.size, "sha256": stored.sha256},
    }
    deps.store.put_json(bucket=deps.settings.output_bucket, key=metadata_key, data=metadata)
    stored_job = repo.transition(
        job_id,
        JobStatus.SUCCEEDED,
        now=finished,
        fields={
            "s3_bucket": stored.bucket,
            "s3_key": stored.key,
            "metadata_key": metadata_key,
            "sha256": stored.sha256,
            "bytes": stored.size,
            "usage": succeeded.usage,
        },
    ).job
    outcome = announce_once(stored_job, deps.announce)
    _learn_timing(job, succeeded, deps)  # after the announcement: learning never delays a user
    return outcome


def _learn_timing(job: JobRecord, succeeded: Succeeded, deps: FinalizeDeps) -> None:
    queue, run = queue_and_run(succeeded.provider_times.model_dump())
    if deps.stats is None or queue is None or run is None:
        return
    tier = tier_of(job.request)
    deps.stats.record_timing(tier, queue=queue, run=run, limit=Policy().history_limit)
