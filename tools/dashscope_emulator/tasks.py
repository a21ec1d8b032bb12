"""Emulated tasks: state computed lazily from timestamps, and their wire representations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

from dashscope_emulator.rules import SIZE_TIERS, delivered_size

# DashScope (Beijing region) prints times in China Standard Time.
BEIJING: Final = timezone(timedelta(hours=8), "CST")
Status = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"]
Outcome = Literal["succeeded", "failed", "no_video"]


def wire_time(epoch: float) -> str:
    """'YYYY-MM-DD HH:mm:ss.SSS' in Beijing time, as the query endpoint prints it."""
    moment = datetime.fromtimestamp(epoch, tz=BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_list_time(text: str) -> float:
    """'YYYYMMDDhhmmss' (Beijing time) to epoch seconds; ValueError when malformed."""
    if len(text) != 14 or not text.isdigit():
        raise ValueError(text)
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class Task:
    task_id: str
    request_id: str
    api_key: str
    model: str
    prompt: str
    render_prompt: str
    truncated: bool
    size: str
    duration: int
    audio: bool
    watermark: bool
    seed: int
    created: float
    pending_seconds: float
    running_seconds: float
    ttl_seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome = "succeeded"
    fail_code: str | None = None
    fail_message: str | None = None
    canceled_at: float | None = None
    video_url_override: str | None = None
    # Over the account's cap in queue mode: when a running place came free for it (capacity.py).
    start_override: float | None = None
    # The fetched input images of an image family's task (first frame, then last), as files.
    images: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def scheduled_at(self) -> float:
        if self.start_override is not None:
            return self.start_override
        return self.created + self.pending_seconds

    @property
    def finished_at(self) -> float:
        return self.scheduled_at + self.running_seconds  # a task held past the cap runs its full time

    @property
    def api_key_id(self) -> str:
        return hashlib.sha256(self.api_key.encode()).hexdigest()[:8]

    @property
    def delivered_size(self) -> str:
        return delivered_size(self.size, self.duration)

    @property
    def has_video(self) -> bool:
        return self.outcome == "succeeded" and self.canceled_at is None

    def status(self, now: float) -> Status:
        """The status a query sees at `now` (UNKNOWN once the task id has expired)."""
        if now >= self.created + self.ttl_seconds:
            return "UNKNOWN"
        return self.lifecycle_status(now)

    def lifecycle_status(self, now: float) -> Status:
        if self.canceled_at is not None:
            return "CANCELED"
        if now < self.scheduled_at:
            return "PENDING"
        if now < self.finished_at:
            return "RUNNING"
        return "FAILED" if self.outcome == "failed" else "SUCCEEDED"

    def end_time(self, status: Status) -> float | None:
        if status == "CANCELED":
            return self.canceled_at
        if status in {"SUCCEEDED", "FAILED"}:
            return self.finished_at
        return None

    def query_body(self, now: float, request_id: str, video_url: str) -> dict[str, Any]:
        """The body of GET /tasks/{id}."""
        status = self.status(now)
        output: dict[str, Any] = {"task_id": self.task_id, "task_status": status}
        if status == "UNKNOWN":
            return {"request_id": request_id, "output": output}
        output["submit_time"] = wire_time(self.created)
        if status in {"RUNNING", "SUCCEEDED", "FAILED"}:
            output["scheduled_time"] = wire_time(self.scheduled_at)
        end = self.end_time(status)
        if end is not None:
            output["end_time"] = wire_time(end)
        body: dict[str, Any] = {"request_id": request_id, "output": output}
        if status == "FAILED":
            output["code"] = self.fail_code
            output["message"] = self.fail_message
        elif status == "SUCCEEDED":
            output["orig_prompt"] = self.prompt
            if self.outcome == "succeeded":
                output["video_url"] = self.video_url_override or video_url
            body["usage"] = self.usage()
        return body

    def usage(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "size": self.delivered_size,
            "fps": 24,
            "video_count": 1,
            "audio": self.audio,
            "SR": SIZE_TIERS[self.size].removesuffix("P") if self.size in SIZE_TIERS else None,
        }

    def list_item(self, now: float) -> dict[str, Any]:
        """One entry of GET /tasks (the list endpoint), with millisecond epoch times."""
        status = self.lifecycle_status(now)
        item: dict[str, Any] = {
            "api_key_id": self.api_key_id,
            "caller_parent_id": "1000000000000000",
            "caller_uid": "1000000000000000",
            "gmt_create": int(self.created * 1000),
            "model_name": self.model,
            "region": "cn-beijing",
            "request_id": self.request_id,
            "status": status,
            "task_id": self.task_id,
            "user_api_unique_key": f"apikey:v1:aigc:video-generation:video-synthesis:{self.model}",
        }
        if status in {"RUNNING", "SUCCEEDED", "FAILED"}:
            item["start_time"] = int(self.scheduled_at * 1000)
        end = self.end_time(status)
        if end is not None:
            item["end_time"] = int(end * 1000)
        return item

    def admin_view(self, now: float) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "api_key_id": self.api_key_id,  # which client made it
            "request_id": self.request_id,
            "prompt": self.prompt,
            "prompt_chars": len(self.prompt),
            "truncated": self.truncated,
            "model": self.model,
            "parameters": self.parameters,
            "status": self.status(now),
            "outcome": self.outcome,
            "created_at": iso_utc(self.created),
            "submit_time": wire_time(self.created),
            "canceled": self.canceled_at is not None,
        }
