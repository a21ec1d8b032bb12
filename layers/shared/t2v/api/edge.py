"""The REST API's edge: one method per route, from an HTTP call to what it answers.

The use cases (`t2v.usecases.videos`) answer with job records; the views are built here from them,
with the read side's ports: the tier timings (progress) and the store (video URLs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from t2v.api.views import (
    Accepted,
    JobPage,
    JobView,
    Presigner,
    QueuePlaces,
    TierTimings,
    UsageView,
    ViewContext,
    job_view,
    links,
    usage_view,
    video_view,
)
from t2v.jobs import JobRecord, JobStatus
from t2v.request import RequestBase
from t2v.usecases.videos import (
    ApiDeps,
    Caller,
    accept_video,
    caller_from,
    caller_usage,
    cancel_video,
    get_video,
    list_videos,
)


@dataclass(frozen=True)
class ReadSide:
    """What the views need besides the records."""

    # Presigning is the view's: a URL signed for this answer; the job records only where the video is.
    store: Presigner
    timings: TierTimings  # the views' expected finish
    queue: QueuePlaces | None = None  # a WAITING job's place in the capacity queue (read by id only)


@dataclass(frozen=True)
class VideosApi:
    """One HTTP call's way in: the caller's IAM principal, and the base path its links carry."""

    deps: ApiDeps
    reads: ReadSide
    principal: str | None
    base_path: str = ""

    def accept(
        self, request: RequestBase, *, idempotency_key: str | None, origin: dict[str, Any]
    ) -> Accepted:
        job = accept_video(
            request, idempotency_key=idempotency_key, origin=origin, caller=self._caller(), deps=self.deps
        )
        return Accepted(job_id=job.job_id, links=links(job.job_id, self.base_path))

    def read(self, job_id: str) -> JobView:
        job = get_video(job_id, self._caller(), self.deps)
        ctx = self._context()
        return self._view(job, replace(ctx, queue=self.reads.queue))

    def recent(self, *, status: JobStatus | None, limit: int, cursor: str | None) -> JobPage:
        page = list_videos(status=status, limit=limit, cursor=cursor, caller=self._caller(), deps=self.deps)
        ctx = self._context()
        return JobPage(items=[self._view(job, ctx) for job in page.jobs], next_cursor=page.next_cursor)

    def cancel(self, job_id: str) -> JobView:
        # A canceled job has no video: no URL is signed for it.
        return job_view(cancel_video(job_id, self._caller(), self.deps), self._context())

    def usage(self) -> UsageView:
        caller = self._caller()
        return usage_view(caller_usage(caller, self.deps), caller.principal)

    def _caller(self) -> Caller:
        return caller_from(self.principal, self.deps.settings)

    def _context(self) -> ViewContext:
        return ViewContext(now=self.deps.clock(), timings=self.reads.timings, base_path=self.base_path)

    def _view(self, job: JobRecord, ctx: ViewContext) -> JobView:
        return job_view(job, ctx, video_view(job, self.reads.store, self.deps.settings.presign_seconds))
