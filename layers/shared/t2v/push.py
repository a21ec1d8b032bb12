"""Push completion: DashScope's task-finished events wake a job's parked wait. No I/O of its own.

A push is only a hint. It carries no result, so whatever it says the outcome is read from DashScope
with our own key (the status step, which books its query in the ledger as every query does). A
forged or flooded push can at most make us look early at a task we own.

The hand-over between a push and a parked wait never loses a wake-up. Each side makes one atomic
write to the job that also returns what the other side wrote:
- the callback records the hint (`hint_at`, the event id) and gets back any parked task token;
- the park step stores its task token and gets back any hint recorded since the last status turn
  began (`checked_at`).
DynamoDB orders the two writes. If the hint came first, the park step sees it and wakes its own
wait at once; if the token came first, the callback sees it and wakes that wait.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from t2v.contract import ParkPurpose, ParkRequest, ParkResult
from t2v.errors import PipelineError
from t2v.jobs import CONTESTED
from t2v.jsontext import loads  # strict: a push nested 20,000 deep is refused, not a RecursionError

if TYPE_CHECKING:  # the callback and park load no use case module: annotations only
    from t2v.usecases.ports import PushStore, TaskLookup

TOKEN_HEADER: Final = "x-eventbridge-signature-token"  # noqa: S105 - a header name
EVENT_SOURCE: Final = "acs.dashscope"
EVENT_TYPE: Final = "dashscope:System:AsyncTaskFinish"
# A task-finished event is about 1 KiB; anything far larger is not one.
MAX_BODY_BYTES: Final = 64 * 1024


class PushError(PipelineError):
    """A push the callback refuses; `http_status` is what the sender gets."""

    code = "InvalidPush"
    http_status = 400


class PushUnauthorizedError(PushError):
    code = "Unauthorized"
    http_status = 401


class PushTooLargeError(PushError):
    code = "PayloadTooLarge"
    http_status = 413


class TaskFinished(BaseModel):
    """The parts of a task-finished event we use, read leniently: unknown fields are ignored, the
    envelope's malformed `time` is never read, and `data` may arrive as an object or a JSON string."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=256)
    source: str | None = None
    type: str | None = None
    task_id: str = Field(min_length=1, max_length=128)
    task_status: str | None = Field(default=None, max_length=64)

    @field_validator("task_id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not value.isprintable() or "#" in value:
            raise ValueError("must be a printable task id without '#'")
        return value


def parse_push(body: bytes) -> TaskFinished:
    """A CloudEvents envelope (or its bare `data`, when a target transforms the event) to the hint."""
    if len(body) > MAX_BODY_BYTES:
        raise PushTooLargeError(f"body: {len(body)} bytes is over the limit of {MAX_BODY_BYTES}")
    try:
        envelope = loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PushError("body: not a JSON document") from None
    if not isinstance(envelope, dict):
        raise PushError("body: must be a JSON object (a CloudEvents envelope)")
    data: Any = envelope.get("data", envelope)
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError:
            raise PushError("data: a string that is not JSON") from None
    if not isinstance(data, dict):
        raise PushError("data: must be an object holding task_id")
    task_id = data.get("task_id")
    status = data.get("task_status") or data.get("status")
    # `source` + `id` is unique per event; without an id, the task and its status name the event.
    event_id = envelope.get("id") or f"{task_id}:{status}"
    try:
        return TaskFinished(
            event_id=str(event_id),
            source=_text(envelope.get("source")),
            type=_text(envelope.get("type")),
            task_id=task_id if isinstance(task_id, str) else "",
            task_status=_text(status),
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = "data.task_id" if first["loc"][0] == "task_id" else str(first["loc"][0])
        raise PushError(f"{field}: {str(first['msg']).removeprefix('Value error, ')}") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:256]


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; no token configured means no push is accepted."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# ---------------------------------------------------------------------------------------------
# The hand-over between the callback and the parked wait


class Waker(Protocol):
    def wake(self, token: str) -> bool:
        """Complete the parked wait; False when its token is already closed (woken or timed out)."""
        ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PushDeps:
    tasks: TaskLookup
    push: PushStore
    waker: Waker
    token: Callable[[], str]  # the callback secret, read lazily (only after a request arrives)
    clock: Callable[[], datetime] = utcnow


class PushOutcome(StrEnum):
    WOKEN = "woken"  # a parked wait was woken
    RECORDED = "recorded"  # no wait parked right now: the next park finds the hint
    CLOSED = "closed"  # the parked wait had already ended; the next park finds the hint
    DUPLICATE = "duplicate"  # this event was handled before
    SPENT = "spent"  # the job had its bound of pushes (t2v.capacity.MAX_PUSH_WAKES): ignored
    FINISHED = "finished"  # the job already ended
    UNKNOWN_TASK = "unknown_task"  # not a task of ours (another application on the account)


def receive_push(token: str | None, body: bytes, deps: PushDeps) -> tuple[PushOutcome, TaskFinished]:
    """Authenticate, bound and parse a push, then hand the hint to the job's workflow."""
    if not token_matches(token, deps.token()):
        raise PushUnauthorizedError("Unauthorized")
    event = parse_push(body)
    owner = deps.tasks.owner_of_task(event.task_id)
    if owner is None or owner == CONTESTED:
        return PushOutcome.UNKNOWN_TASK, event
    recorded = deps.push.record_hint(owner, event_id=event.event_id, now=deps.clock())
    if recorded.spent:
        return PushOutcome.SPENT, event
    if recorded.duplicate:
        return PushOutcome.DUPLICATE, event
    if recorded.finished:
        return PushOutcome.FINISHED, event
    if recorded.token is None:
        return PushOutcome.RECORDED, event
    return (PushOutcome.WOKEN if deps.waker.wake(recorded.token) else PushOutcome.CLOSED), event


def park_wait(request: ParkRequest, deps: PushDeps) -> ParkResult:
    """Store the wait's task token on the job; wake it at once when a push already came (or the job
    ended). Otherwise the wait lasts until a push wakes it or its timeout runs the status check.

    A capacity wait (`purpose` capacity) is the same hand-over with the admitter in the push's place:
    it stays parked only while the job is still queued without a lease (`t2v.usecases.capacity`)."""
    parked = deps.push.park(request.job_id, token=request.token, now=deps.clock())
    if request.purpose == ParkPurpose.CAPACITY:
        wake = parked is None or parked.finished or not parked.queued
    else:
        wake = parked is None or parked.hint_pending or parked.finished
    if wake:
        deps.waker.wake(request.token)
        return ParkResult(job_id=request.job_id, parked=False)
    return ParkResult(job_id=request.job_id, parked=True)
