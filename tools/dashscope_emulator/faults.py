"""Fault injection: a small declarative plan, deterministic under a seed.

A `FaultPlan` is an ordered list of `FaultRule`s. For every request (or task outcome) the
injector walks the rules in order: every matching `latency` rule adds its delay, and the first
matching rule of any other kind decides what goes wrong. Each rule has its own random stream
(seeded from the plan seed and the rule's position), so a plan replays identically.

JSON form (what `POST /admin/faults` and `--faults FILE.json` take)::

    {"seed": 7, "rules": [
        {"endpoint": "create", "kind": "error", "code": "InternalError", "times": 1},
        {"endpoint": "query", "kind": "error", "code": "ModelUnavailable", "rate": 0.3},
        {"endpoint": "query", "kind": "timeout", "hold_seconds": 2.0, "times": 1},
        {"endpoint": "any", "kind": "latency", "latency_seconds": 0.2},
        {"kind": "drop_after_accept", "times": 1},
        {"kind": "reset_mid_download", "reset_after_bytes": 4096},
        {"kind": "task_failed", "prompt_contains": "forbidden",
         "code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."},
        {"kind": "no_video_url", "times": 1},
        {"kind": "video_url", "prompt_contains": "ssrf", "url": "http://169.254.169.254/latest/meta-data/"},
        {"kind": "push_dropped", "rate": 0.1},
        {"kind": "push_early", "latency_seconds": 2.0, "rate": 0.05}
    ]}
"""

from __future__ import annotations

import random
import threading
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Endpoint = Literal["create", "query", "cancel", "list", "media", "task", "push", "any"]
Kind = Literal[
    "error",  # answer with HTTP `status` and {"code","message","request_id"}
    "timeout",  # hold the connection `hold_seconds`, then close it without an answer
    "latency",  # add `latency_seconds` before answering (cumulative with other rules)
    "drop_after_accept",  # create only: the task IS created, then the connection closes unanswered
    "reset_mid_download",  # media only: reset the connection after `reset_after_bytes` of the body
    "task_failed",  # task outcome: the task ends FAILED with `code` and `message`
    "no_video_url",  # task outcome: the task ends SUCCEEDED without a video_url
    "video_url",  # task outcome: the task ends SUCCEEDED with `url` as its video_url (SSRF drills)
    # Task-finished pushes (see dashscope_emulator.push), one deciding rule per event:
    "push_dropped",  # never sent
    "push_duplicated",  # sent twice, the copy `latency_seconds` after the first (same event id)
    "push_delayed",  # sent `latency_seconds` late
    "push_reordered",  # held back until the next push has gone out
    "push_early",  # sent `latency_seconds` before a query shows the task finished
    "push_wrong_token",  # every attempt carries a wrong token
]

# Known error codes and the HTTP status the real service gives them.
ERROR_STATUS: Final[dict[str, int]] = {
    "InvalidParameter": 400,
    "DataInspectionFailed": 400,
    "InvalidParameter.DataInspection": 400,
    "Arrearage": 400,
    "InvalidApiKey": 401,
    "AccessDenied": 403,
    "ModelNotFound": 404,
    "RequestTimeOut": 408,
    "Throttling": 429,
    "Throttling.RateQuota": 429,
    "Throttling.AllocationQuota": 429,
    "LimitRequests": 429,
    "InternalError": 500,
    "InternalError.Algo": 500,
    "InternalError.Timeout": 500,
    "SystemError": 500,
    "ModelUnavailable": 503,
}
DEFAULT_MESSAGES: Final[dict[str, str]] = {
    "InternalError": "An internal error has occured, please try again later or contact service support.",
    "ModelUnavailable": "Model is unavailable, please try again later.",
    "Throttling": "Requests rate limit exceeded, please try again later.",
    "Throttling.RateQuota": "Requests rate limit exceeded, please try again later.",
    "DataInspectionFailed": "Input data may contain inappropriate content.",
    "InvalidParameter.DataInspection": "Download the media resource timed out.",
    "RequestTimeOut": "Request timed out, please try again later.",
    "SystemError": "An system error has occured, please try again later.",
}
_DEFAULT_ENDPOINT: Final[dict[str, Endpoint]] = {
    "drop_after_accept": "create",
    "reset_mid_download": "media",
    "task_failed": "task",
    "no_video_url": "task",
    "video_url": "task",
    "push_dropped": "push",
    "push_duplicated": "push",
    "push_delayed": "push",
    "push_reordered": "push",
    "push_early": "push",
    "push_wrong_token": "push",
}
_OUTCOME_KINDS: Final = frozenset({"task_failed", "no_video_url", "video_url"})


class FaultRule(BaseModel):
    """One kind of failure, where it applies and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    endpoint: Endpoint | None = Field(
        default=None, description="Defaults for drop_after_accept/reset_mid_download/task_* kinds."
    )
    rate: float = Field(default=1.0, ge=0.0, le=1.0, description="Probability that a match fires.")
    times: int | None = Field(default=None, ge=0, description="Fire at most this many times.")
    prompt_contains: str | None = Field(default=None, description="Only requests/tasks whose prompt has it.")
    code: str | None = None
    message: str | None = None
    status: int | None = Field(default=None, ge=400, le=599, description="HTTP status of an error.")
    latency_seconds: float = Field(default=0.0, ge=0.0)
    hold_seconds: float = Field(default=30.0, ge=0.0, description="How long a timeout holds.")
    reset_after_bytes: int | None = Field(default=None, ge=0, description="Default: half the body.")
    url: str | None = Field(default=None, description="The video_url a `video_url` rule hands out.")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        default = _DEFAULT_ENDPOINT.get(self.kind)
        if self.kind == "video_url" and not self.url:
            raise ValueError("kind 'video_url' needs a url")
        if default is not None and self.endpoint not in {None, default, "any"}:
            raise ValueError(f"kind {self.kind!r} only applies to endpoint {default!r}")
        if default is not None:
            object.__setattr__(self, "endpoint", default)
        elif self.endpoint is None:
            raise ValueError(f"kind {self.kind!r} needs an endpoint")
        if self.kind in {"task_failed", "error"} and self.code is None:
            object.__setattr__(
                self, "code", "InternalError" if self.kind == "error" else "InternalError.Algo"
            )
        return self

    @property
    def error_status(self) -> int:
        return self.status or ERROR_STATUS.get(self.code or "", 500)

    @property
    def error_message(self) -> str:
        if self.message is not None:
            return self.message
        return DEFAULT_MESSAGES.get(self.code or "", f"Injected fault {self.code}.")

    def applies_to(self, endpoint: str, prompt: str | None) -> bool:
        if self.endpoint != endpoint and not (self.endpoint == "any" and endpoint not in {"task", "push"}):
            return False
        if self.prompt_contains is not None:
            return prompt is not None and self.prompt_contains in prompt
        return True


class FaultPlan(BaseModel):
    """An ordered list of rules plus the seed of their random streams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    rules: tuple[FaultRule, ...] = ()


class FaultInjector:
    """Thread-safe evaluation of a FaultPlan; counts how often each rule fired."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self.replace(plan or FaultPlan())

    def replace(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._rngs = [random.Random(f"{plan.seed}:{i}") for i in range(len(plan.rules))]  # noqa: S311 - test determinism, not crypto
            self._fired = [0] * len(plan.rules)

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def fired(self) -> list[int]:
        with self._lock:
            return list(self._fired)

    def pick(self, endpoint: str, prompt: str | None = None) -> tuple[float, FaultRule | None]:
        """(total added latency, the deciding non-latency rule or None) for one request."""
        latency = 0.0
        decided: FaultRule | None = None
        with self._lock:
            for i, rule in enumerate(self._plan.rules):
                if rule.kind in _OUTCOME_KINDS and endpoint != "task":
                    continue
                if rule.kind == "latency":
                    if self._fire(i, rule, endpoint, prompt):
                        latency += rule.latency_seconds
                elif decided is None and self._fire(i, rule, endpoint, prompt):
                    decided = rule
        return latency, decided

    def _fire(self, i: int, rule: FaultRule, endpoint: str, prompt: str | None) -> bool:
        if not rule.applies_to(endpoint, prompt):
            return False
        if rule.times is not None and self._fired[i] >= rule.times:
            return False
        if rule.rate < 1.0 and self._rngs[i].random() >= rule.rate:
            return False
        self._fired[i] += 1
        return True
