"""What travels between the workflow's states: the execution input, the poll turn and the outcome.

Pure domain, no I/O. A handler parses its event with `model_validate` and dumps its result with
`model_dump(mode="json")`; tests/unit/test_contract.py checks every JsonPath that
statemachine/pipeline.asl.json reads or writes against these models. Times are UTC datetimes
(ISO 8601 in JSON); provider timestamps stay the provider's own text (`ProviderTimes`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from t2v.jobs import JobStatus, TaskStatus
from t2v.schedule import GenerationTier

JobId = Annotated[str, Field(min_length=1, max_length=128)]


class _Contract(BaseModel):
    # Unknown keys are refused: a renamed field in the ASL or a handler fails loudly, not silently.
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecutionInput(_Contract):
    """The input of one execution, named by its job id: what intake and the API start."""

    job_id: JobId
    # As accepted at the door; submit validates it once more against the contract (a request that
    # fails there ends the job FAILED with the field named, like any other failure).
    request: dict[str, Any]
    source: str
    origin: dict[str, Any] = Field(default_factory=dict)
    start_delay_seconds: int = Field(default=0, ge=0, description="the Stagger state's wait")


class SubmitInput(_Contract):
    """What the Submit state sends the submit function."""

    job_id: JobId
    request: Any  # validated by submit itself, so that every error names the field and the rule
    source: str = "unknown"
    origin: dict[str, Any] = Field(default_factory=dict)
    execution: str | None = None


class PollDecision(StrEnum):
    """What the poll loop does next; the ASL's RouteByState branches on it."""

    WAIT = "WAIT"  # look again after `wait_seconds`
    SUCCEEDED = "SUCCEEDED"  # the video is ready: finalize
    FAILED = "FAILED"  # the provider failed the task (or SUCCEEDED without a video)
    CANCELED = "CANCELED"  # the task was canceled at the provider
    UNKNOWN = "UNKNOWN"  # the provider no longer knows the task
    TIMED_OUT = "TIMED_OUT"  # the deadline or the poll bound passed


class ProviderTimes(_Contract):
    """A task's timestamps as the provider wrote them (its own clock and zone, e.g. `2026-03-20 10:34:41.630`)."""

    submit_time: str | None = None
    scheduled_time: str | None = None
    end_time: str | None = None


class Succeeded(_Contract):
    """The provider finished the task with a video."""

    kind: Literal["succeeded"] = "succeeded"
    video_url: str
    usage: dict[str, Any] = Field(default_factory=dict)
    provider_times: ProviderTimes = Field(default_factory=ProviderTimes)


EndStatus = Literal[JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMED_OUT]


class Ended(_Contract):
    """The job ends without a video: its status, a stable code and a message for the user."""

    kind: Literal["ended"] = "ended"
    status: EndStatus
    code: str
    message: str
    task_status: TaskStatus | None = Field(
        default=None, description="the provider's final status of the task, when it reported one"
    )


Outcome = Annotated[Succeeded | Ended, Field(discriminator="kind")]


class PollTurn(_Contract):
    """One turn of the poll loop: what submit and CheckStatus return and CheckStatus receives."""

    job_id: JobId
    task_id: str
    tier: GenerationTier
    submitted_at: AwareDatetime = Field(description="our clock when the provider accepted the task")
    deadline_at: AwareDatetime
    polls: int = Field(default=0, ge=0)
    wakes: int = Field(default=0, ge=0, description="turns woken by a push: they cost no poll")
    errors: int = Field(default=0, ge=0, description="queries in a row that got no answer")
    decision: PollDecision = PollDecision.WAIT
    task_status: TaskStatus | None = Field(default=None, description="the provider's last answer")
    request_id: str | None = None
    queued_seconds: float | None = Field(default=None, ge=0)
    wait_seconds: int = Field(ge=0, description="the WaitForVideo state's seconds")
    slot: int | None = Field(description="the ledger's epoch second booked for the next query; None: none")
    latency: float = Field(ge=0, description="seconds from a return to the next turn's start")
    returned_at: AwareDatetime
    outcome: Outcome | None = Field(default=None, description="set once `decision` is not WAIT")
    park: bool = Field(
        default=False, description="push on: wait in ParkForPush (a push can end it) rather than WaitForVideo"
    )
    held_long: bool = Field(
        default=False, description="the task sat PENDING far past its tier's queue time (told the governor)"
    )


class CapacityWait(_Contract):
    """What submit returns when the job found no free provider capacity: it waits in our queue (job
    status WAITING), parked in ParkForCapacity until an admission wakes it or `wait_seconds` pass."""

    job_id: JobId
    decision: Literal["QUEUED", "TIMED_OUT"] = "QUEUED"  # TIMED_OUT: waited past MaxQueueSeconds
    wait_seconds: int = Field(ge=1, description="the ParkForCapacity state's timeout: the heartbeat")
    turns: int = Field(ge=0, description="capacity waits so far (heartbeats, wakes and refusals)")
    outcome: Ended | None = Field(default=None, description="set when `decision` is TIMED_OUT")
    polls: int = Field(default=0, ge=0, description="none: RecordOutcome reads it as a poll turn's")


SubmitResult = PollTurn | CapacityWait


class ParkPurpose(StrEnum):
    PUSH = "push"  # ParkForPush: a task-finished push wakes it
    CAPACITY = "capacity"  # ParkForCapacity: an admission (a lease granted) wakes it


class ParkRequest(_Contract):
    """What the ParkForPush and ParkForCapacity states send the park function: the job, the wait's
    task token and what the wait is for."""

    job_id: JobId
    token: str = Field(min_length=1, max_length=2048, repr=False)
    purpose: ParkPurpose = ParkPurpose.PUSH


class ParkResult(_Contract):
    """What the park function returns. The ParkForPush state never reads it (a parked task's result is
    the SendTaskSuccess output, and its ResultPath is null): it is for logs and direct invocations."""

    job_id: JobId
    parked: bool = Field(
        description="False: woken at once (a push came first, or the job ended or is missing)"
    )


class OutcomeInput(_Contract):
    """What the Finalize and RecordOutcome states send the finalize function."""

    job_id: JobId
    outcome: Outcome
    polls: int = Field(default=0, ge=0)


class StepError(_Contract):
    """What a Step Functions Catch puts at its ResultPath."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    Error: str = "States.Runtime"
    Cause: str | None = None

    def message(self) -> str:
        """A Lambda error's Cause is its JSON error object; others are plain text."""
        cause = self.Cause or ""
        if cause.startswith("{"):
            try:
                return str(json.loads(cause).get("errorMessage") or cause)
            except (json.JSONDecodeError, AttributeError):
                return cause
        return cause


class CatchInput(_Contract):
    """What the RecordFailure state sends the finalize function: a step failed for good.

    `request`, `source` and `origin` record the job when it failed before it was recorded.
    """

    job_id: JobId
    error: StepError
    request: Any = None
    source: str = "unknown"
    origin: dict[str, Any] = Field(default_factory=dict)


def _finalize_kind(value: Any) -> str:
    return "catch" if isinstance(value, dict) and "error" in value else "outcome"


FinalizeInput = Annotated[
    Annotated[OutcomeInput, Tag("outcome")] | Annotated[CatchInput, Tag("catch")],
    Discriminator(_finalize_kind),
]
FINALIZE_INPUT: TypeAdapter[OutcomeInput | CatchInput] = TypeAdapter(FinalizeInput)


class Announced(_Contract):
    """What the finalize function returns: the job's end status, announced once."""

    job_id: JobId
    status: JobStatus
    task_id: str | None = None
    notified: bool
