"""The provider's answers as typed records: what the `ProviderClient` port returns.

Plain pydantic, no HTTP: the use cases and their fakes import these without loading httpx, which
only the DashScope adapter (`t2v.dashscope`) needs to fetch them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from t2v.jobs import TaskStatus

# UNKNOWN is final: the provider answers it for expired (>24 h) or unknown ids, and it never changes.
FINAL_STATUSES: Final = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN}
)


def _to_text(value: Any) -> Any:
    # Providers drift between numbers and strings (SR "720" vs 720, epoch times); keep text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


_Text = Annotated[str | None, BeforeValidator(_to_text)]


class TaskUsage(BaseModel):
    """Billing facts of a finished task. Unknown keys are kept; missing keys are None."""

    model_config = ConfigDict(frozen=True, extra="allow", validate_by_name=True, validate_by_alias=True)

    duration: int | float | None = None
    size: _Text = None
    fps: int | float | None = None
    video_count: int | None = None
    audio: bool | None = None
    sr: _Text = Field(default=None, validation_alias=AliasChoices("SR", "sr"))


class CreatedTask(BaseModel):
    """What a successful create returns."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    task_status: str
    request_id: str | None = None


class CanceledTask(BaseModel):
    """What a successful cancel returns: the provider's request id, for support."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    request_id: str | None = None


class TaskInfo(BaseModel):
    """One task snapshot, from `get_task` or one entry of `list_tasks`."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    task_id: str
    # Unknown statuses are kept verbatim so a new provider status is visible, not coerced.
    status: str = Field(default=TaskStatus.UNKNOWN, validation_alias=AliasChoices("task_status", "status"))
    request_id: _Text = None
    submit_time: _Text = None
    scheduled_time: _Text = None
    end_time: _Text = None
    orig_prompt: str | None = None
    video_url: str | None = None
    code: _Text = None
    message: str | None = None
    model_name: str | None = None
    usage: TaskUsage | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @field_validator("usage", mode="before")
    @classmethod
    def _tolerant_usage(cls, value: Any) -> Any:
        # A malformed usage block must not hide the task's status; `raw` still holds it.
        if not isinstance(value, Mapping):
            return None
        try:
            return TaskUsage.model_validate(dict(value))
        except ValidationError:
            return None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == TaskStatus.SUCCEEDED


class TaskPage(BaseModel):
    """One page of `GET /tasks`."""

    model_config = ConfigDict(frozen=True)

    tasks: tuple[TaskInfo, ...] = ()
    page_no: int = 1
    page_size: int = 10
    total: int | None = None
    total_page: int | None = None
    request_id: str | None = None

    @property
    def has_next(self) -> bool:
        if not self.tasks:
            return False
        if self.total_page is not None:
            return self.page_no < self.total_page
        if self.total is not None:
            return self.page_no * self.page_size < self.total
        return len(self.tasks) >= self.page_size
