"""Configuration: pydantic models read once at cold start from the environment.

A missing or malformed variable fails fast with an error naming it; nothing deeper in the
code reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from t2v.capacity import STATE_MACHINE_TIMEOUT_SECONDS, TimeLimits
from t2v.errors import PipelineError
from t2v.families import SUPPORTED_MODELS
from t2v.images import ImagePlace
from t2v.request import DEFAULT_MODEL
from t2v.schedule import Policy

# The cap for PixVerse is not published (some DashScope video models document 2): a team's batch is
# governed from 10 on, and the governor learns lower from the provider's first refusal (README).
DEFAULT_MAX_TASKS_IN_FLIGHT: Final = 10
# Creates the provider may refuse for capacity before a job stops waiting (each one queues it again).
MAX_REFUSED_CREATES: Final = 100


class ConfigError(PipelineError):
    code = "ConfigError"


class _EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        values = {k: v for k, v in values.items() if v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']).upper()}: {str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigError(f"invalid environment: {problems}") from None


class JobsSettings(_EnvModel):
    jobs_table: str
    deadline_seconds: int = Field(
        default=7200, ge=60, le=23 * 3600, description="a job's life from its capacity lease on"
    )
    # Provider capacity (t2v.capacity): every function that may end a job frees its lease.
    provider_max_tasks_in_flight: int = Field(
        default=DEFAULT_MAX_TASKS_IN_FLIGHT, ge=1, le=1000, description="the governor's ceiling"
    )
    max_queue_seconds: int = Field(
        default=43200, ge=60, le=23 * 3600, description="longest wait in our queue"
    )
    capacity_heartbeat_seconds: int = Field(
        default=600, ge=1, le=3600, description="a parked capacity wait looks again after this, woken or not"
    )
    # Input images (issue 23): the stack's bucket and the folder requests may name images under.
    input_images_bucket: str | None = Field(
        default=None, description="the stack's bucket; unset: no s3:// images"
    )
    input_images_prefix: str = Field(default="inputs/", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}/$")
    image_url_seconds: int = Field(
        default=3600,
        ge=300,
        le=12 * 3600,
        description="lifetime of an image's presigned GET handed to the provider",
    )

    @property
    def image_place(self) -> ImagePlace | None:
        if not self.input_images_bucket:
            return None
        return ImagePlace(self.input_images_bucket, self.input_images_prefix)

    @property
    def max_capacity_turns(self) -> int:
        """Capacity waits a job may take: every heartbeat of its longest queue time, as many again
        for wakes that found the lease taken, and refusals by the provider."""
        return 2 * -(-self.max_queue_seconds // self.capacity_heartbeat_seconds) + MAX_REFUSED_CREATES

    def deadline_from(self, now: datetime) -> datetime:
        """When a job accepted at `now` times out."""
        return now + timedelta(seconds=self.deadline_seconds)


class DashScopeSettings(JobsSettings):
    """What talking to DashScope and guarding its creates needs (submit, status and the API)."""

    dashscope_secret_id: str = Field(description="Secrets Manager secret holding the DashScope API key")
    dashscope_base_url: str = "https://dashscope.aliyuncs.com/api/v1"
    dashscope_workspace: str | None = None
    # A create claim younger than this may have a create on its way to the provider. Longer than the
    # submit function's timeout in production; a time-scaled sandbox scales it down.
    create_claim_stale_seconds: int = Field(default=60, ge=1, le=3600)


class ExpectationSettings(JobsSettings):
    """What both the poll schedule and the API's progress and budget checks read."""

    generation_time_scale: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="multiplies the default generation times until jobs teach real ones",
    )
    daily_budget_seconds: int = Field(default=0, ge=0, description="the account's day; 0 means no cap")
    caller_daily_budget_seconds: int = Field(
        default=0, ge=0, description="each owner's day, admins included; 0 means no per-caller cap"
    )

    @property
    def budgets_on(self) -> bool:
        return bool(self.daily_budget_seconds or self.caller_daily_budget_seconds)


class ProviderSettings(DashScopeSettings, ExpectationSettings):
    model_name: str = DEFAULT_MODEL
    poll_interval_seconds: int = Field(
        default=3, ge=1, le=3600, description="spacing of queries around a task's expected finish"
    )
    poll_budget_qps: float = Field(
        default=16.0, gt=0, le=20, description="the account-wide query rate all jobs share (limit: 20/s)"
    )
    max_polls: int = Field(default=1000, ge=1, le=1536)  # the template's MaxValue: TimeLimits.most_polls()
    # Margin for the provider's clock against ours when matching its task times with our stamps.
    provider_clock_skew_seconds: float = Field(default=1.0, ge=0.0, le=60.0)
    # How long a job's `create_sent_at` may take to show in the jobs table's by_created index, which
    # `unbound_creates` queries (a GSI lags its table, usually well under a second): reconcile never
    # adopts without proof a task younger than this, which may be a rival's the index does not show.
    index_lag_seconds: float = Field(default=2.0, ge=0.0, le=60.0)
    # Task-finished pushes wake parked waits; polling becomes the safety net (issue 13).
    push_completion: bool = False

    @field_validator("model_name")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in SUPPORTED_MODELS:
            raise ValueError(f"unsupported model {value!r}")
        return value

    @model_validator(mode="after")
    def _time_limits_agree(self) -> Self:
        """The queue, the deadline and the polls fit the workflow's timeout and history (t2v.capacity)."""
        if problems := self.time_limits().problems():
            raise ValueError("; ".join(problems))
        return self

    def time_limits(self) -> TimeLimits:
        return TimeLimits(
            max_queue_seconds=self.max_queue_seconds,
            capacity_heartbeat_seconds=self.capacity_heartbeat_seconds,
            max_capacity_turns=self.max_capacity_turns,
            deadline_seconds=self.deadline_seconds,
            max_polls=self.max_polls,
            state_machine_timeout_seconds=STATE_MACHINE_TIMEOUT_SECONDS,
            sweep_lookback_seconds=STATE_MACHINE_TIMEOUT_SECONDS,  # the sweeper checks its own
        )

    def poll_policy(self) -> Policy:
        return Policy(
            budget_qps=self.poll_budget_qps,
            dense_seconds=float(self.poll_interval_seconds),
            default_scale=self.generation_time_scale,
            push=self.push_completion,
        )


class PushSettings(JobsSettings):
    """The callback and park functions: where the callback token lives and the state machine's ARN
    prefix (wakes go to task tokens, which name no resource)."""

    callback_secret_id: str | None = Field(
        default=None, description="Secrets Manager secret holding the push token (callback only)"
    )


class AnnounceSettings(JobsSettings):
    """What ending a job and announcing its outcome needs: the SNS topic and the EventBridge bus."""

    topic_arn: str
    event_bus_name: str = "default"
    # Ending a job gives its charge back when t2v.billing's table says the provider did not bill it.
    refunds_enabled: bool = True
    event_source: str = "t2v.pipeline"
    outcome_prompts: Literal["Included", "Omitted"] = Field(
        default="Included", description="Omitted: outcome messages leave the prompt out (a shared topic)"
    )


class FinalizeSettings(AnnounceSettings):
    """Finalize stores the video (within the download guard's limits) before it announces."""

    output_bucket: str
    output_prefix: str = "videos/"
    video_host_allowlist: str = "media.pixverseai.cn,*.aliyuncs.com"
    max_video_bytes: int = Field(default=2 * 1024**3, ge=1)
    part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)

    @property
    def allowlist(self) -> list[str]:
        return [h.strip() for h in self.video_host_allowlist.split(",") if h.strip()]


class IntakeSettings(AnnounceSettings):
    state_machine_arn: str
    output_prefix: str = "videos/"  # only to refuse an input prefix that overlaps it
    input_prefix: str = "prompts/"
    default_size: str = "1280*720"
    default_duration: int = 5
    # The IAM identity that owns prompt-file and EventBridge jobs (who may read and cancel them).
    job_owner: str | None = None

    @field_validator("output_prefix")
    @classmethod
    def _outputs_outside_inputs(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty (outputs would land beside the prompt files)")
        return value

    @model_validator(mode="after")
    def _no_recursive_triggers(self) -> Self:
        if self.output_prefix.startswith(self.input_prefix) or self.input_prefix.startswith(
            self.output_prefix
        ):
            raise ValueError("OUTPUT_PREFIX and INPUT_PREFIX must not overlap (recursive triggers)")
        for name, other in (("INPUT_PREFIX", self.input_prefix), ("OUTPUT_PREFIX", self.output_prefix)):
            images = self.input_images_prefix
            if images.startswith(other) or other.startswith(images):
                raise ValueError(
                    f"INPUT_IMAGES_PREFIX and {name} must not overlap (an image would start a job or look like an output)"
                )
        return self


class BatchSettings(AnnounceSettings, ExpectationSettings):
    """Batches (t2v.usecases.batches): the doors that open them (intake, the API) and the batch function."""

    batch_state_machine_arn: str | None = None
    output_bucket: str | None = None  # where a batch's lines file and results are written
    results_prefix: str = Field(default="results/", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}/$")
    input_prefix: str = "prompts/"
    default_size: str = "1280*720"
    default_duration: int = 5
    job_owner: str | None = None  # owner of batches uploaded under the input prefix (PromptJobOwner)
    batch_line_notifications: bool = False  # announce each line's end too (the batch announces once anyway)
    # How many lines of one batch are in flight at once: the batch Map's children times their lines
    # (statemachine/batch.asl.json: 10 x 10). A batch's expected time uses the smaller of this and the
    # provider's learned cap.
    batch_lines_in_flight: int = Field(default=100, ge=1, le=10_000)
    # At most the longest batch the batch state machine outlives (its TimeoutSeconds: 15 days).
    max_batch_seconds: int = Field(default=14 * 86400, ge=60, le=14 * 86400)


_STATE_MACHINE_ARN: Final = re.compile(
    r"^arn:(?P<partition>[\w-]+):states:(?P<region>[\w-]+):(?P<account>\d{12}):stateMachine:(?P<name>[\w-]{1,80})$"
)


class ApiSettings(AnnounceSettings, DashScopeSettings, ExpectationSettings):
    """The API's environment. An AnnounceSettings too: canceling ends the job and announces it."""

    state_machine_arn: str
    presign_seconds: int = Field(default=900, ge=60, le=3600)
    # The query budget the poll schedule shares: a read of one job looks at the provider only in a
    # second that leaves it spare (t2v.usecases.look).
    poll_budget_qps: float = Field(
        default=16.0, gt=0, le=20, description="the account-wide query rate all jobs share (limit: 20/s)"
    )
    admin_principals: str = Field(
        default="",
        description="Comma-separated IAM ARNs whose callers see, read and cancel every job (the admin right)",
    )

    def look_policy(self) -> Policy:
        return Policy(budget_qps=self.poll_budget_qps, default_scale=self.generation_time_scale)

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admin_principals.split(",") if a.strip())

    @field_validator("state_machine_arn")
    @classmethod
    def _is_state_machine_arn(cls, value: str) -> str:
        if not _STATE_MACHINE_ARN.match(value):
            raise ValueError("must be arn:<partition>:states:<region>:<account>:stateMachine:<name>")
        return value


class SweeperSettings(AnnounceSettings, DashScopeSettings):
    """The sweeper ends jobs nothing will finish (canceling their PENDING tasks), announces the
    unannounced, and starts recorded jobs that never started."""

    state_machine_arn: str
    # Longer than a healthy job goes untouched before its execution exists (the API starts it at once).
    sweep_grace_seconds: float = Field(default=300, ge=0, le=86400)
    # Longer than the longest deadline (23 h) plus the state machine's own retries.
    sweep_lookback_hours: int = Field(default=26, ge=1, le=24 * 14)

    @model_validator(mode="after")
    def _sees_every_live_job(self) -> Self:
        if self.sweep_lookback_hours * 3600 < STATE_MACHINE_TIMEOUT_SECONDS:
            raise ValueError(
                f"sweep_lookback_hours: {self.sweep_lookback_hours} h is shorter than a workflow's longest "
                f"life ({STATE_MACHINE_TIMEOUT_SECONDS} s): a job could outlive the sweeper's view"
            )
        return self
