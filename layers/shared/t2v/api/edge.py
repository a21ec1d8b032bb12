"""The REST API's edge: one method per route, from an HTTP call to what it answers.

The use cases (`t2v.usecases.videos`) answer with job records; the views are built here from them,
with the read side's ports: the tier timings (progress) and the store (video URLs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from t2v.api.batch_views import BatchPage, BatchRequest, BatchResults, BatchView, batch_view
from t2v.api.views import (
    Accepted,
    JobPage,
    JobView,
    Presigner,
    QueuePlaces,
    SearchView,
    TierTimings,
    UsageView,
    ViewContext,
    image_views,
    job_view,
    links,
    usage_view,
    video_view,
)
from t2v.errors import ForbiddenError
from t2v.jobs import JobRecord
from t2v.listing import SEARCH_BOUND, JobListing
from t2v.request import RequestBase
from t2v.usecases.batches import (
    BatchDeps,
    batch_jobs,
    cancel_batch,
    list_batches,
    open_api_batch,
    owned_batch,
    results_links,
)
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
    # Built on a batch route's first use (None, or building None: this stack runs no batches).
    batches: Callable[[], BatchDeps | None] | None = None

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

    def recent(self, listing: JobListing, *, limit: int, cursor: str | None) -> JobPage:
        page = list_videos(listing, limit=limit, cursor=cursor, caller=self._caller(), deps=self.deps)
        ctx = self._context()
        search = None
        if page.search is not None:
            search = SearchView(
                examined=page.examined,
                bound=SEARCH_BOUND,
                complete=page.next_cursor is None,
                note=page.search,
            )
        return JobPage(
            items=[self._view(job, ctx) for job in page.jobs], next_cursor=page.next_cursor, search=search
        )

    def cancel(self, job_id: str) -> JobView:
        # A canceled job has no video: no URL is signed for it.
        return job_view(cancel_video(job_id, self._caller(), self.deps), self._context())

    def usage(self) -> UsageView:
        caller = self._caller()
        return usage_view(caller_usage(caller, self.deps), caller.principal)

    # -- batches (docs/batches.md) -------------------------------------------------------------
    def open_batch(self, body: BatchRequest) -> BatchView:
        caller, deps = self._caller(), self._batches()
        place = self.deps.settings.image_place
        notify = body.notify_lines if body.notify_lines is not None else deps.notify_lines
        batch = open_api_batch(
            body.key,
            version=body.version,
            notify_lines=notify,
            principal=caller.principal,
            folder=place.folder_of(caller.principal) if place is not None else None,
            deps=deps,
        )
        return batch_view(batch, now=self.deps.clock(), base_path=self.base_path)

    def list_batches(self, *, limit: int, cursor: str | None) -> BatchPage:
        batches, next_cursor = list_batches(
            self._caller().principal, self._batches(), limit=limit, cursor=cursor
        )
        now = self.deps.clock()
        return BatchPage(
            items=[batch_view(b, now=now, base_path=self.base_path) for b in batches], next_cursor=next_cursor
        )

    def batch(self, batch_id: str) -> BatchView:
        caller = self._caller()
        batch = owned_batch(batch_id, caller.principal, caller.admin, self._batches())
        return batch_view(batch, now=self.deps.clock(), base_path=self.base_path)

    def cancel_batch(self, batch_id: str) -> BatchView:
        caller = self._caller()
        batch = cancel_batch(batch_id, caller.principal, caller.admin, self._batches())
        return batch_view(batch, now=self.deps.clock(), base_path=self.base_path)

    def batch_results(self, batch_id: str) -> BatchResults:
        caller, deps = self._caller(), self._batches()
        batch = owned_batch(batch_id, caller.principal, caller.admin, deps)
        return BatchResults(**results_links(batch, deps, seconds=self.deps.settings.presign_seconds))

    def batch_jobs(self, batch_id: str, *, limit: int, cursor: str | None) -> JobPage:
        caller, deps = self._caller(), self._batches()
        batch = owned_batch(batch_id, caller.principal, caller.admin, deps)
        jobs, next_cursor = batch_jobs(batch, deps, limit=limit, cursor=cursor)
        ctx = self._context()
        return JobPage(items=[self._view(job, ctx) for job in jobs], next_cursor=next_cursor)

    def _batches(self) -> BatchDeps:
        deps = self.batches() if self.batches is not None else None
        if deps is None:
            raise ForbiddenError("batches are not served by this stack (no batch state machine)")
        return deps

    def _caller(self) -> Caller:
        return caller_from(self.principal, self.deps.settings)

    def _context(self) -> ViewContext:
        return ViewContext(now=self.deps.clock(), timings=self.reads.timings, base_path=self.base_path)

    def _view(self, job: JobRecord, ctx: ViewContext) -> JobView:
        settings = self.deps.settings
        images = image_views(job, self.reads.store, settings.image_place, settings.presign_seconds)
        return job_view(job, ctx, video_view(job, self.reads.store, settings.presign_seconds), images)
