"""What the API shows a user of a job beyond its record: where it came from, how far it has come,
and links that work when followed. Pure: no I/O (the tier timings are passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from t2v.jobs import JobStatus
from t2v.progress import Phase, ProgressInput, job_progress
from t2v.schedule import TierHistory
from t2v.times import iso, parse_ts

LINKS_DOC: Final = (
    '{"self": "/<stage>/videos/<job_id>"}: where the job can be read, a path on the API\'s host '
    "(with the stage, so following it works)."
)


class OriginView(BaseModel):
    """Where the request came from; only the fields of its door are set."""

    door: str = Field(description="s3, eventbridge or api (the job's `source`).")
    bucket: str | None = Field(default=None, description="s3: the prompt file's bucket.")
    key: str | None = Field(default=None, description="s3: the prompt file's key.")
    version: str | None = Field(default=None, description="s3: the file's version id (or ETag).")
    line: int | None = Field(default=None, description="s3: the line of a .jsonl file (1-based).")
    event_id: str | None = Field(default=None, description="eventbridge: the event's id.")
    event_source: str | None = Field(default=None, description="eventbridge: the event's source.")
    event_time: str | None = Field(default=None, description="eventbridge: the event's time.")
    request_id: str | None = Field(default=None, description="api: API Gateway's request id.")
    caller: str | None = Field(default=None, description="api: the caller (IAM ARN, API key id or IP).")


class ProgressView(BaseModel):
    phase: Phase = Field(description="queued, running, downloading or done.")
    expected_finish_at: str | None = Field(
        default=None,
        description="When the video should be ready (UTC), from the tier's recent generation times and "
        "the provider's own task times; for an ended job, when it ended. Null when unknown (e.g. a "
        "job past every prediction).",
    )
    fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the expected time elapsed: below 1 until the job ends, 1 once SUCCEEDED, "
        "null when unknown (downloading, or ended without a video).",
    )


def origin_view(source: str | None, origin: Mapping[str, Any] | None) -> OriginView:
    found = dict(origin or {})
    line = found.get("line")
    return OriginView(
        door=str(source or "unknown"),
        bucket=_text(found.get("bucket")),
        key=_text(found.get("key")),
        version=_text(found.get("version")),
        line=int(line) if isinstance(line, int | float) and not isinstance(line, bool) else None,
        event_id=_text(found.get("event_id")),
        event_source=_text(found.get("source")),
        event_time=_text(found.get("time")),
        request_id=_text(found.get("request_id")),
        caller=_text(found.get("caller")),
    )


def progress_view(
    *,
    status: JobStatus,
    created_at: str | None,
    submitted_at: str | None,
    finished_at: str | None,
    queued_seconds: float | None,
    history: TierHistory,
    now: datetime,
) -> ProgressView:
    estimate = job_progress(
        ProgressInput(
            status=status,
            created_at=parse_ts(created_at) if created_at else None,
            submitted_at=parse_ts(submitted_at) if submitted_at else None,
            finished_at=parse_ts(finished_at) if finished_at else None,
            queued_seconds=queued_seconds,
        ),
        history,
        now,
    )
    return ProgressView(
        phase=estimate.phase,
        expected_finish_at=iso(estimate.expected_finish) if estimate.expected_finish else None,
        fraction=estimate.fraction,
    )


def links(job_id: str, base_path: str = "") -> dict[str, str]:
    """`base_path`: what precedes the API's own routes in the URL the caller used, e.g. `/v1`."""
    return {"self": f"{base_path.rstrip('/')}/videos/{job_id}"}


def base_path(request_path: str | None, resource_path: str | None, stage: str | None) -> str:
    """The prefix before the route: API Gateway's requestContext.path (`/v1/videos`, or a custom
    domain's base path) less the event's path (`/videos`); the stage when they do not line up."""
    if request_path and resource_path and request_path.endswith(resource_path):
        return request_path[: len(request_path) - len(resource_path)].rstrip("/")
    return f"/{stage}" if stage else ""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
