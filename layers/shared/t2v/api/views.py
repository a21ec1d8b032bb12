"""What the REST API answers: response models, built from job records."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, Field

from t2v.jobs import JobRecord, JobStatus
from t2v.times import iso, iso_or_none

LINKS_DOC: Final = '{"self": "/videos/<job_id>"}: where the job can be read.'


def links(job_id: str) -> dict[str, str]:
    return {"self": f"/videos/{job_id}"}


class Accepted(BaseModel):
    job_id: str
    status: str = Field(
        default=JobStatus.ACCEPTED.value, description="Always ACCEPTED: the request was taken."
    )
    links: dict[str, str] = Field(description=LINKS_DOC)


class HistoryEntry(BaseModel):
    status: JobStatus
    at: str


class JobErrorView(BaseModel):
    code: str | None = None
    message: str | None = None
    request_id: str | None = None


class VideoView(BaseModel):
    uri: str = Field(description="s3://bucket/key of the MP4.")
    url: str = Field(description="Presigned HTTPS GET URL, valid for `expires_in` seconds.")
    expires_in: int
    bytes: int | None = None
    sha256: str | None = None


class JobView(BaseModel):
    job_id: str
    status: JobStatus
    source: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryEntry] = Field(default_factory=list)
    task_id: str | None = Field(default=None, description="The DashScope task id, once created.")
    request_ids: list[str] = Field(default_factory=list, description="DashScope request ids, for support.")
    error: JobErrorView | None = None
    usage: dict[str, Any] | None = None
    polls: int = 0
    created_at: str | None = None
    updated_at: str | None = None
    submitted_at: str | None = None
    finished_at: str | None = None
    deadline_at: str | None = None
    video: VideoView | None = Field(default=None, description="Only for SUCCEEDED jobs.")
    links: dict[str, str] = Field(description=LINKS_DOC)


class FieldErrorView(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable; for provider errors, the provider's code.")
    message: str
    fields: list[FieldErrorView] | None = Field(default=None, description="For 400: each field and its rule.")
    request_id: str | None = Field(default=None, description="The provider's request id, for support.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class JobPage(BaseModel):
    items: list[JobView]
    next_cursor: str | None = Field(default=None, description="Opaque; pass as `cursor` for the next page.")


def job_view(job: JobRecord, video: VideoView | None = None) -> JobView:
    error = None
    if job.error_code or job.error_message:
        error = JobErrorView(code=job.error_code, message=job.error_message, request_id=job.error_request_id)
    return JobView(
        job_id=job.job_id,
        status=job.status,
        source=job.source,
        request=job.request,
        history=[HistoryEntry(status=h.status, at=iso(h.at)) for h in job.history],
        task_id=job.task_id,
        request_ids=job.request_ids,
        error=error,
        usage=job.usage,
        polls=job.polls,
        created_at=iso_or_none(job.created_at),
        updated_at=iso_or_none(job.updated_at),
        submitted_at=iso_or_none(job.submitted_at),
        finished_at=iso_or_none(job.finished_at),
        deadline_at=iso_or_none(job.deadline_at),
        video=video,
        links=links(job.job_id),
    )
