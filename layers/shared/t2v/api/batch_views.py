"""What the API answers about batches (docs/batches.md): the batch view, a page of batches, the
request that opens one, and the links to its results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2v.batches import BatchRecord, error_of, results_of
from t2v.times import iso, iso_or_none


class BatchRequest(BaseModel):
    """`POST /batches`: a .jsonl the caller put in its own folder of the stack's bucket."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(
        min_length=1,
        max_length=1024,
        description="The object's key: a .jsonl under the caller's own folder (inputs/<account>/<user or role>/)",
    )
    version: str | None = Field(
        default=None, max_length=1024, description="An S3 version id (default: the latest)"
    )
    notify_lines: bool | None = Field(
        default=None, description="Announce each line's end too (default: the stack's BatchLineNotifications)"
    )


class BatchView(BaseModel):
    batch_id: str
    status: str
    owner: str | None
    source: str
    file: dict[str, Any]
    lines: dict[str, int]
    counts: dict[str, int] = Field(description="Lines per status: the ended ones, `active` and `not_started`")
    progress: float = Field(description="Share of the lines that ended (1 once the batch ended)")
    video_seconds: int = Field(description="Seconds of video its valid lines ask for")
    reserved_seconds: int
    released_seconds: int
    budget_day: str | None
    expected_seconds: float | None = Field(description="Expected time of all its lines at the learned cap")
    expected_finish_at: str | None
    notify_lines: bool
    cancellable: bool
    created_at: str
    updated_at: str | None
    finished_at: str | None
    error: dict[str, Any] | None
    results: dict[str, Any] | None
    links: dict[str, str]


class BatchPage(BaseModel):
    items: list[BatchView]
    next_cursor: str | None = Field(default=None, description="Opaque; pass as `cursor` for the next page.")


class BatchResults(BaseModel):
    batch_id: str
    status: str
    results_url: str
    summary_url: str
    summary: dict[str, Any]


def batch_links(batch_id: str, base_path: str = "") -> dict[str, str]:
    base = base_path.rstrip("/")
    return {
        "self": f"{base}/batches/{batch_id}",
        "jobs": f"{base}/videos?batch={batch_id}",
        "results": f"{base}/batches/{batch_id}/results",
    }


def batch_view(batch: BatchRecord, *, now: datetime, base_path: str = "") -> BatchView:
    active = len(batch.active)
    counts = {**batch.counts, "active": active, "not_started": max(0, batch.total - batch.ended - active)}
    finish = None
    if batch.expected_seconds is not None and batch.started_at is not None and not batch.status.is_terminal:
        finish = batch.started_at + timedelta(seconds=batch.expected_seconds)
        finish = max(finish, now)
    return BatchView(
        batch_id=batch.batch_id,
        status=batch.status.value,
        owner=batch.owner,
        source=batch.source,
        file={k: batch.file.get(k) for k in ("bucket", "key", "version")},
        lines={"total": batch.total, "valid": batch.valid, "refused": batch.refused},
        counts=counts,
        progress=batch.progress(),
        video_seconds=batch.video_seconds,
        reserved_seconds=batch.reserved_seconds,
        released_seconds=batch.released_seconds,
        budget_day=batch.budget_day,
        expected_seconds=batch.expected_seconds,
        expected_finish_at=iso_or_none(finish),
        notify_lines=batch.notify_lines,
        cancellable=batch.cancellable,
        created_at=iso(batch.created_at),
        updated_at=iso_or_none(batch.updated_at),
        finished_at=iso_or_none(batch.finished_at),
        error=error_of(batch),
        results=results_of(batch),
        links=batch_links(batch.batch_id, base_path),
    )
