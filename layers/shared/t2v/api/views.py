"""What the REST API answers: response models, built from job records.

Beyond the record, a view shows where the request came from, how far the job has come and when it
should be done (`t2v.progress`, from the tier's timings passed in), and links that work when followed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from t2v.capacity import QueuePlace, seconds_to_start
from t2v.families import tier_of
from t2v.jobs import JobRecord, JobStatus
from t2v.progress import Phase, ProgressInput, job_progress
from t2v.schedule import GenerationTier, TierHistory
from t2v.times import iso, iso_or_none

if TYPE_CHECKING:
    from t2v.usecases.videos import Usage

LINKS_DOC: Final = (
    '{"self": "/<stage>/videos/<job_id>"}: where the job can be read, a path on the API\'s host '
    "(with the stage, so following it works)."
)


def links(job_id: str, base_path: str = "") -> dict[str, str]:
    """`base_path`: what precedes the API's routes in the URL the caller used, e.g. `/v1`."""
    return {"self": f"{base_path.rstrip('/')}/videos/{job_id}"}


class TierTimings(Protocol):
    """A tier's recent queue and run times (t2v.adapters.poll_stats.PollStats)."""

    def history(self, tier: GenerationTier) -> TierHistory: ...


class Presigner(Protocol):
    """Presigned GET URLs of stored videos (t2v.adapters.storage.VideoStore)."""

    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str: ...


class QueuePlaces(Protocol):
    """Where a queued job stands (t2v.adapters.capacity_leases.CapacityLeases)."""

    def place(self, job_id: str, owner: str | None, key: str) -> QueuePlace: ...


@dataclass(frozen=True)
class ViewContext:
    """What a job view needs besides the record: the clock, the tier timings, the caller's base path,
    and the capacity queue (a WAITING job's place; None: not shown, e.g. in listings)."""

    now: datetime
    timings: TierTimings
    base_path: str = ""
    queue: QueuePlaces | None = None


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


class CapacityView(BaseModel):
    position: int = Field(
        ge=0, description="How many of the same caller's queued jobs are ahead of this one."
    )
    expected_start_at: str | None = Field(
        default=None,
        description="About when the job gets provider capacity (UTC): the jobs admitted before it, round-"
        "robin between callers, in rounds of the working cap, each about one generation time.",
    )


class ProgressView(BaseModel):
    phase: Phase = Field(
        description="waiting_for_capacity (in our queue, no provider task yet), queued, running, "
        "downloading or done."
    )
    capacity: CapacityView | None = Field(
        default=None,
        description="Only while WAITING, when the job is read by its id: its place in the queue.",
    )
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
        description="Share of the expected time elapsed since the request: below 1 until the job ends, "
        "1 once SUCCEEDED, null when unknown (downloading, or ended without a video). A revised "
        "estimate may lower it.",
    )


def origin_view(source: str | None, origin: Mapping[str, Any]) -> OriginView:
    line = origin.get("line")
    return OriginView(
        door=str(source or "unknown"),
        bucket=_text(origin.get("bucket")),
        key=_text(origin.get("key")),
        version=_text(origin.get("version")),
        line=int(line) if isinstance(line, int | float) and not isinstance(line, bool) else None,
        event_id=_text(origin.get("event_id")),
        event_source=_text(origin.get("source")),
        event_time=_text(origin.get("time")),
        request_id=_text(origin.get("request_id")),
        caller=_text(origin.get("caller")),
    )


def progress_view(job: JobRecord, ctx: ViewContext) -> ProgressView:
    estimate = job_progress(
        ProgressInput(
            status=job.status,
            created_at=job.created_at,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            queued_seconds=job.queued_seconds,
        ),
        ctx.timings.history(tier_of(job.request)),
        ctx.now,
    )
    return ProgressView(
        phase=estimate.phase,
        expected_finish_at=iso_or_none(estimate.expected_finish),
        fraction=estimate.fraction,
        capacity=capacity_view(job, ctx),
    )


def capacity_view(job: JobRecord, ctx: ViewContext) -> CapacityView | None:
    if job.status != JobStatus.WAITING or ctx.queue is None or not job.queue_key:
        return None
    place = ctx.queue.place(job.job_id, job.owner, job.queue_key)
    history = ctx.timings.history(tier_of(job.request))
    generation = statistics.median(history.queue) + statistics.median(history.run) if history.run else None
    if generation is None:
        return CapacityView(position=place.position)
    wait = seconds_to_start(
        position=place.position,
        owner=place.owner,
        queued=place.queued,
        cap=place.cap,
        held=place.held,
        generation_seconds=generation,
    )
    return CapacityView(
        position=place.position, expected_start_at=iso(ctx.now + timedelta(seconds=round(wait)))
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


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
    origin: OriginView = Field(description="Where the request came from: file and line, event, or caller.")
    progress: ProgressView
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


def video_view(job: JobRecord, store: Presigner, expires_in: int) -> VideoView | None:
    """A SUCCEEDED job's video, with a URL presigned for this answer (locally: no call per job)."""
    if job.status != JobStatus.SUCCEEDED or not job.s3_bucket or not job.s3_key:
        return None
    return VideoView(
        uri=f"s3://{job.s3_bucket}/{job.s3_key}",
        url=store.presign(bucket=job.s3_bucket, key=job.s3_key, expires_in=expires_in),
        expires_in=expires_in,
        bytes=job.bytes,
        sha256=job.sha256,
    )


def job_view(job: JobRecord, ctx: ViewContext, video: VideoView | None = None) -> JobView:
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
        origin=origin_view(job.source, job.origin),
        progress=progress_view(job, ctx),
        video=video,
        links=links(job.job_id, ctx.base_path),
    )


class BudgetDayView(BaseModel):
    """One budget's day: what was charged, given back and is left."""

    spent_seconds: int = Field(description="Billed seconds charged today (refunds not taken off).")
    refunded_seconds: int = Field(description="Seconds given back today by jobs the provider did not bill.")
    left_seconds: int | None = Field(description="What a new request may still use today; null: no cap.")
    budget_seconds: int = Field(description="The day's cap (0: none).")


class UsageView(BaseModel):
    """The caller's UTC day of billed video seconds, and the account's (GET /usage)."""

    day: str = Field(description="The UTC day, YYYY-MM-DD.")
    caller: str = Field(description="The caller (IAM ARN) the day is counted for.")
    spent_seconds: int = Field(description="The caller's seconds charged today.")
    refunded_seconds: int = Field(description="The caller's seconds given back today.")
    left_seconds: int | None = Field(
        description="What the caller may still request today: the smaller of its own and the account's room; null: no cap."
    )
    caller_budget_seconds: int = Field(description="CallerDailyBudgetSeconds (0: no per-caller cap).")
    account_budget_seconds: int = Field(description="DailyBudgetSeconds (0: no account cap).")
    renews_at: str = Field(description="When both budgets start afresh (00:00 UTC).")
    you: BudgetDayView
    account: BudgetDayView


def usage_view(usage: Usage, caller: str) -> UsageView:
    mine, everyone = usage.usage.caller, usage.usage.account
    room = [left for left in (usage.caller_left, usage.account_left) if left is not None]
    return UsageView(
        day=usage.day,
        caller=caller,
        spent_seconds=mine.charged,
        refunded_seconds=mine.refunded,
        left_seconds=min(room) if room else None,
        caller_budget_seconds=usage.caller_budget,
        account_budget_seconds=usage.account_budget,
        renews_at=iso(usage.renews_at),
        you=BudgetDayView(
            spent_seconds=mine.charged,
            refunded_seconds=mine.refunded,
            left_seconds=usage.caller_left,
            budget_seconds=usage.caller_budget,
        ),
        account=BudgetDayView(
            spent_seconds=everyone.charged,
            refunded_seconds=everyone.refunded,
            left_seconds=usage.account_left,
            budget_seconds=usage.account_budget,
        ),
    )


class ModelFieldView(BaseModel):
    """One request field of a model family (GET /models); an optional key is absent when it does not apply."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "integer", "boolean", "media"]
    required: bool
    choices: list[Any] | None = None
    default: Any = None
    min: int | None = None
    max: int | None = None
    max_length: int | None = None


class MediaSlotView(BaseModel):
    type: Literal["first_frame", "last_frame", "image_url"]
    required: bool


class ImageLimitsView(BaseModel):
    formats: list[str]
    max_bytes: int
    min_side: int | None
    max_side: int
    max_pixels: int
    unconfirmed: list[str] = Field(description="The limits DashScope's own pages do not confirm.")


class ModelView(BaseModel):
    model: str = Field(description="The provider's full model name, e.g. pixverse/pixverse-v5.6-it2v.")
    family: Literal["t2v", "it2v", "kf2v"]
    default: bool = Field(description="The model a request without `model` gets.")
    fields: dict[str, ModelFieldView]
    media: list[MediaSlotView]
    image_limits: ImageLimitsView | None


class ModelsView(BaseModel):
    """The model families a request may name (GET /models), from the registry (t2v.families)."""

    models: list[ModelView]
