"""The REST API's use cases: accept a video request, look jobs up, list them, cancel one.

Adapters are passed in (`ApiDeps`); the use cases do no I/O of their own, so the same code runs
in Lambda, against moto + the DashScope emulator, and against in-memory fakes in unit tests.
The handler (functions/api/app.py) only parses, calls one function here and maps typed errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from pydantic import BaseModel, Field, field_validator

from t2v.adapters.jobs_repo import InvalidCursorError, Job, JobsRepository, decode_cursor
from t2v.config import FinalizeSettings
from t2v.contract import ExecutionInput
from t2v.dashscope import DEFAULT_BASE_URL
from t2v.errors import CreateInProgressError, PipelineError, TerminalProviderError
from t2v.jobs import JobStatus, derive_job_id
from t2v.jsontext import loads
from t2v.request import FieldError, InvalidRequestError, VideoRequest, parse_request
from t2v.times import parse_ts, utcnow
from t2v.usecases.announce import AnnounceDeps, announce_once
from t2v.usecases.ports import ProviderClient, Repo, job_or_fail

SOURCE: Final = "api"
MAX_IDEMPOTENCY_KEY_CHARS: Final = 255
# The provider's answer when a task has left PENDING (DashScope: "please confirm ... PENDING status").
PROVIDER_REFUSED_CANCEL: Final = frozenset({"UnsupportedOperation"})
MAX_LIST_ROUNDS: Final = 10
# A cancel re-reads the job when it changed between the check and the write; a create runs once per job.
MAX_CANCEL_ROUNDS: Final = 3
_STATE_MACHINE_ARN: Final = re.compile(
    r"^arn:(?P<partition>[\w-]+):states:(?P<region>[\w-]+):(?P<account>\d{12}):stateMachine:(?P<name>[\w-]{1,80})$"
)


# ---------------------------------------------------------------------------------------------
# configuration


class ApiSettings(FinalizeSettings):
    """The API's environment. A FinalizeSettings too: canceling records and announces the outcome."""

    state_machine_arn: str
    dashscope_secret_id: str = Field(description="Secrets Manager secret holding the DashScope API key")
    dashscope_base_url: str = DEFAULT_BASE_URL
    dashscope_workspace: str | None = None
    deadline_seconds: int = Field(default=7200, ge=60, le=23 * 3600)
    presign_seconds: int = Field(default=900, ge=60, le=3600)
    # The same as submit's: a younger create claim means a create may be on its way to the provider.
    create_claim_stale_seconds: int = Field(default=60, ge=1, le=3600)
    admin_principals: str = Field(
        default="",
        description="Comma-separated IAM ARNs whose callers see, read and cancel every job (the admin right)",
    )

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admin_principals.split(",") if a.strip())

    @field_validator("state_machine_arn")
    @classmethod
    def _is_state_machine_arn(cls, value: str) -> str:
        if not _STATE_MACHINE_ARN.match(value):
            raise ValueError("must be arn:<partition>:states:<region>:<account>:stateMachine:<name>")
        return value


# ---------------------------------------------------------------------------------------------
# errors (the handler maps each to one HTTP status)


class JobNotFoundError(PipelineError):
    code = "NotFound"


class NotCancelableError(PipelineError):
    """The job already ended, or the provider task has left PENDING."""

    code = "NotCancelable"


class ForbiddenError(PipelineError):
    """The request carries no caller identity (the API is meant to run behind IAM authorization)."""

    code = "Forbidden"


class IdempotencyConflictError(PipelineError):
    """The Idempotency-Key was used before with a different request body."""

    code = "IdempotencyKeyReused"


# ---------------------------------------------------------------------------------------------
# views: what the API answers


LINKS_DOC: Final = '{"self": "/videos/<job_id>"}: where the job can be read.'


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


def invalid_request(errors: Sequence[Mapping[str, Any]], raw_body: str | None) -> InvalidRequestError:
    """The HTTP layer's validation errors as the domain's field errors.

    Body errors are derived again by `parse_request`, so they read exactly like the contract's rules.
    """
    fields = [
        FieldError(str(e["loc"][-1]), str(e.get("msg", e["type"])).removeprefix("Value error, "))
        for e in errors
        if e["loc"][:1] != ("body",)
    ]
    if len(fields) < len(errors):
        fields.extend(_body_errors(raw_body))
    return InvalidRequestError(fields)


def _body_errors(raw_body: str | None) -> list[FieldError]:
    try:
        data = loads(raw_body) if raw_body else None
    except json.JSONDecodeError as exc:
        return [FieldError("body", f"not valid JSON: {exc}")]
    try:
        parse_request(data)
    except InvalidRequestError as exc:
        return exc.errors
    return [FieldError("body", "does not match the request schema")]


class UnsupportedMediaTypeError(PipelineError):
    """A request body that is not JSON (form data, multipart, XML...): answered 415, naming the header."""

    code = "UnsupportedMediaType"

    def __init__(self, content_type: str) -> None:
        self.errors = [FieldError("Content-Type", f"must be application/json, got {content_type[:100]!r}")]
        super().__init__(
            f"Content-Type: the request body must be JSON (application/json), got {content_type[:100]!r}"
        )


def check_body(headers: Mapping[str, Any] | None, body: str | None, *, is_base64: bool = False) -> None:
    """Refuse a body that is not JSON text before any parser for its media type runs.

    No Content-Type, `application/json` (any parameters) and `+json` types are JSON; any other is
    UnsupportedMediaTypeError. A base64 body (bytes that were not UTF-8) is InvalidRequestError.
    """
    if not body:
        return
    content_type = next((str(v) for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(content_type)
    if is_base64:
        try:
            base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequestError([FieldError("body", "must be UTF-8 JSON text")]) from None


def _links(job_id: str) -> dict[str, str]:
    return {"self": f"/videos/{job_id}"}


def job_view(job: Job, video: VideoView | None = None) -> JobView:
    error = None
    if job.get("error_code") or job.get("error_message"):
        error = JobErrorView(
            code=job.get("error_code"),
            message=job.get("error_message"),
            request_id=job.get("error_request_id"),
        )
    return JobView(
        job_id=job.job_id,
        status=job.status,
        source=job.get("source"),
        request=job.request,
        history=[HistoryEntry.model_validate(h) for h in job.get("history") or []],
        task_id=job.task_id,
        request_ids=[str(r) for r in job.get("request_ids") or []],
        error=error,
        usage=job.get("usage"),
        polls=int(job.get("polls") or 0),
        created_at=job.get("created_at"),
        updated_at=job.get("updated_at"),
        submitted_at=job.get("submitted_at"),
        finished_at=job.get("finished_at"),
        deadline_at=job.get("deadline_at"),
        video=video,
        links=_links(job.job_id),
    )


# ---------------------------------------------------------------------------------------------
# callers


@dataclass(frozen=True)
class Caller:
    """Who calls: the IAM identity API Gateway verified (its user or role ARN). A job belongs to the
    caller that created it; only an admin (`ApiSettings.admin_principals`) sees every job."""

    principal: str
    admin: bool = False

    def owns(self, job: Job) -> bool:
        return self.admin or job.get("owner") == self.principal


def caller_from(principal: str | None, settings: ApiSettings) -> Caller:
    if not principal:
        raise ForbiddenError("the request carries no IAM identity; call the API with SigV4-signed requests")
    return Caller(principal, admin=principal in settings.admins)


def scoped_key(caller: Caller, idempotency_key: str) -> str:
    """An Idempotency-Key is the caller's own: the same key from two callers names two requests."""
    return hashlib.sha256(f"{caller.principal}\x1f{idempotency_key}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# dependencies


class ApiRepo(Repo, Protocol):
    def list_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> tuple[list[Job], str | None]: ...
    def remember_idempotency_key(self, key: str, job_id: str, *, now: datetime) -> str: ...


class Executions(Protocol):
    """One execution per job, named by the job id (t2v.adapters.workflow.Workflow)."""

    def start(self, job_id: str, payload: dict[str, Any]) -> bool: ...
    def stop(self, job_id: str, *, cause: str) -> bool: ...


class Presigner(Protocol):
    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str: ...


@dataclass
class ApiDeps:
    repo: ApiRepo
    executions: Executions
    store: Presigner
    provider: Callable[[], ProviderClient]
    outcomes: AnnounceDeps
    settings: ApiSettings
    clock: Callable[[], datetime] = utcnow


# ---------------------------------------------------------------------------------------------
# use cases


def accept_video(
    request: VideoRequest,
    *,
    idempotency_key: str | None,
    origin: dict[str, Any],
    caller: Caller,
    deps: ApiDeps,
) -> Accepted:
    """Record the job (so GET works at once) and start its execution, at most once per caller's key.

    Written, then started: a crash (or a 29 s gateway timeout) in between leaves an ACCEPTED job with
    no execution, which a retry with the same key or the sweeper (t2v.sweeper) starts.
    """
    now = deps.clock()
    if idempotency_key is not None:
        key = scoped_key(caller, idempotency_key)
        job_id = deps.repo.remember_idempotency_key(key, derive_job_id(SOURCE, key), now=now)
    else:
        job_id = derive_job_id(SOURCE, uuid.uuid4().hex)
    body = request.model_dump(exclude_none=True)
    job, created = deps.repo.create_if_absent(
        job_id,
        request=body,
        source=SOURCE,
        origin=origin,
        now=now,
        deadline_at=now + timedelta(seconds=deps.settings.deadline_seconds),
        owner=caller.principal,
    )
    if not created and job.request != body:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used with a different request body; "
            "send the same body to retry, or use a new key for a new video"
        )
    if job.status == JobStatus.ACCEPTED:
        # Also on a retry: heals a first attempt that recorded the job but died before starting it.
        execution = ExecutionInput(
            job_id=job_id, request=job.request, source=SOURCE, origin=job.get("origin") or origin
        )
        deps.executions.start(job_id, execution.model_dump(mode="json"))
    return Accepted(job_id=job_id, links=_links(job_id))


def get_video(job_id: str, caller: Caller, deps: ApiDeps) -> JobView:
    job = _job(job_id, caller, deps)
    video = None
    bucket, key = job.get("s3_bucket"), job.get("s3_key")
    if job.status == JobStatus.SUCCEEDED and bucket and key:
        expires = deps.settings.presign_seconds
        video = VideoView(
            uri=f"s3://{bucket}/{key}",
            url=deps.store.presign(bucket=bucket, key=key, expires_in=expires),
            expires_in=expires,
            bytes=job.get("bytes"),
            sha256=job.get("sha256"),
        )
    return job_view(job, video)


def list_videos(
    *, status: JobStatus | None, limit: int, cursor: str | None, caller: Caller, deps: ApiDeps
) -> JobPage:
    """The caller's jobs (every job for an admin), most recent first. A status filter can leave
    DynamoDB pages short, so read on to fill `limit`."""
    if cursor is not None:
        _check_cursor(cursor, caller)
    items: list[Job] = []
    for _ in range(MAX_LIST_ROUNDS):
        # Never read more than is still missing: the cursor then points right after the last item.
        try:
            jobs, cursor = deps.repo.list_jobs(
                status=status.value if status else None,
                limit=limit - len(items),
                cursor=cursor,
                owner=None if caller.admin else caller.principal,
            )
        except InvalidCursorError as exc:  # well-formed, yet DynamoDB refused it as a start key
            raise InvalidRequestError([FieldError("cursor", str(exc))]) from None
        items.extend(jobs)
        if cursor is None or len(items) >= limit:
            break
    return JobPage(items=[job_view(j) for j in items], next_cursor=cursor)


def cancel_video(job_id: str, caller: Caller, deps: ApiDeps) -> JobView:
    """Cancel a job: at the provider while its task is PENDING, then record CANCELED once.

    CANCELED is written on condition that the job is still as checked (the same task or none, the same
    create claim or none): a create that began meanwhile makes the write fail, and the job is read again
    and acted on as it is now (its task canceled at the provider while PENDING; 409 once RUNNING, or
    while its create is in flight). CANCELED is recorded and announced before the execution is
    stopped: a crash in between leaves a finished job, whose execution then ends by itself.
    """
    for _ in range(MAX_CANCEL_ROUNDS):
        job = _job(job_id, caller, deps)
        if job.status.is_terminal:
            raise NotCancelableError(f"job {job_id} already ended {job.status.value}")
        if job.task_id:
            _cancel_task(job.task_id, deps)
        elif _create_unresolved(job, deps.clock(), deps.settings.create_claim_stale_seconds):
            # Canceling now would orphan the task being created (billed, never tracked).
            raise CreateInProgressError(
                f"job {job_id}: the provider task is being created; retry in a few seconds"
            )
        canceled = deps.repo.transition(
            job_id,
            JobStatus.CANCELED,
            now=deps.clock(),
            fields={"error_code": "Canceled", "error_message": "canceled by the user"},
            expect={"task_id": job.task_id, "create_claimed_at": job.create_claimed_at},
        )
        if canceled:
            break
    else:
        raise CreateInProgressError(
            f"job {job_id} kept changing while being canceled; retry in a few seconds"
        )
    announce_once(job_or_fail(deps.repo, job_id), deps.outcomes)
    deps.executions.stop(job_id, cause="canceled by the user")
    return job_view(_job(job_id, caller, deps))


def _cancel_task(task_id: str, deps: ApiDeps) -> None:
    client = deps.provider()
    try:
        client.cancel_task(task_id)
    except TerminalProviderError as exc:
        if exc.provider_code not in PROVIDER_REFUSED_CANCEL:
            raise
        # Refused: fine if an earlier cancel went through, otherwise the task is past PENDING.
        status = str(client.get_task(task_id).status)
        if status != "CANCELED":
            raise NotCancelableError(
                f"the provider task is already {status}; only PENDING tasks can be canceled"
            ) from None


def _create_unresolved(job: Job, now: datetime, stale_seconds: int) -> bool:
    """A create is in flight (a live claim), or a dead one was sent and may have made a task that
    reconciliation has not found yet."""
    claimed = job.create_claimed_at
    if not claimed:
        return False
    live = now - parse_ts(str(claimed)) < timedelta(seconds=stale_seconds)
    return live or bool(job.get("create_sent_at"))


def _job(job_id: str, caller: Caller, deps: ApiDeps) -> Job:
    # Only job items: the table also holds task#, budget# and idem# records. Another caller's job is
    # answered like a missing one: its existence is not the caller's to learn.
    job = None if "#" in job_id else deps.repo.get(job_id)
    if job is None or job.get("kind") != "job" or not caller.owns(job):
        raise JobNotFoundError(f"no job {job_id}")
    return job


def _check_cursor(cursor: str, caller: Caller) -> None:
    try:
        decode_cursor(cursor, owner=None if caller.admin else caller.principal)
    except InvalidCursorError as exc:
        raise InvalidRequestError([FieldError("cursor", str(exc))]) from None


# ---------------------------------------------------------------------------------------------
# wiring


def build_api_deps() -> ApiDeps:
    """Everything the API needs, from the environment; clients are built lazily."""
    from t2v.adapters.storage import VideoStore
    from t2v.adapters.workflow import Workflow
    from t2v.wiring import build_announce_deps, provider_client_factory

    settings = ApiSettings.from_env()
    repo = JobsRepository(settings.jobs_table)
    store = VideoStore()
    provider = provider_client_factory(
        settings.dashscope_secret_id,
        base_url=settings.dashscope_base_url,
        workspace=settings.dashscope_workspace,
    )
    outcomes = build_announce_deps(settings, repo=repo)
    return ApiDeps(
        repo=repo,
        executions=Workflow(settings.state_machine_arn),
        store=store,
        provider=provider,
        outcomes=outcomes,
        settings=settings,
    )
