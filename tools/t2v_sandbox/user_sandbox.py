"""A sandbox as a user drives it: the real template, a subscriber on the outcome topic, job look-ups.

Shared by `t2v demo` and the end-to-end tests.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from t2v_sandbox.sandbox import Sandbox, SandboxConfig

FAST_TIME_SCALE: Final = 0.05


def real_dashscope() -> bool:
    return bool(os.environ.get("DASHSCOPE_API_KEY"))


def config_for(
    template: Path,
    *,
    work_dir: Path = Path(".sandbox"),
    overrides: dict[str, str] | None = None,
    pending_seconds: float = 1.0,
    running_seconds: float = 2.0,
    write_endpoints: bool = True,
) -> SandboxConfig:
    """Fast timers against the emulator; real-world timers when DASHSCOPE_API_KEY is set."""
    params = dict(overrides or {})
    if real_dashscope():
        time_scale = 1.0  # the template's own schedule: adaptive, within the account's query budget
    else:
        time_scale = FAST_TIME_SCALE
        params.setdefault("PollIntervalSeconds", "1")
        params.setdefault("PollBudgetPerSecond", "20")
        # Waits run `time_scale` times faster than the emulator's clock: seed the schedule with
        # the emulator's generation time in scaled seconds (30 s is the default 720P 5 s run).
        params.setdefault(
            "GenerationTimeScale", f"{(pending_seconds + running_seconds) / time_scale / 30:.4g}"
        )
    return SandboxConfig(
        template=template,
        parameter_overrides=params,
        time_scale=time_scale,
        emulator_pending_seconds=pending_seconds,
        emulator_running_seconds=running_seconds,
        work_dir=work_dir,
        write_endpoints=write_endpoints,
    )


class UserSandbox(Sandbox):
    """The sandbox, with its DashScope emulator in reach (faults, timers, the tasks it was asked for)."""

    @property
    def emulator(self) -> Any:
        """The DashScope emulator (None with the real DashScope)."""
        return self._emulator


def _queue(sandbox: Sandbox, name: str) -> tuple[str, str]:
    sqs = sandbox.client("sqs")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return queue_url, attributes["QueueArn"]


def _drain(sandbox: Sandbox, queue_url: str) -> list[Any]:
    """Every message body queued so far (parsed JSON), deleted from the queue once read."""
    sqs = sandbox.client("sqs")
    bodies: list[Any] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return bodies
        for raw in messages:
            bodies.append(json.loads(raw["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=raw["ReceiptHandle"])


@dataclass
class _QueueReader:
    """An SQS queue the sandbox's user reads what the stack sends (see `_drain`)."""

    sandbox: Sandbox
    queue_url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Subscriber(_QueueReader):
    """An SQS queue subscribed to the outcome topic: every SNS message the stack publishes."""

    @classmethod
    def attach(cls, sandbox: Sandbox, topic_arn: str, name: str = "t2v-user-outcomes") -> Subscriber:
        queue_url, queue_arn = _queue(sandbox, name)
        sandbox.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return cls(sandbox, queue_url)

    def drain(self) -> list[dict[str, Any]]:
        """Read everything queued so far into `received`; returns all messages received."""
        for envelope in _drain(self.sandbox, self.queue_url):
            self.received.append(
                {
                    "message": json.loads(envelope["Message"]),
                    "subject": envelope.get("Subject"),
                    "attributes": {
                        k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()
                    },
                }
            )
        return self.received

    def for_job(self, job_id: str) -> list[dict[str, Any]]:
        return [m for m in self.drain() if m["message"].get("job_id") == job_id]

    def wait_for_job(self, job_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        return wait_until(lambda: self.for_job(job_id), timeout=timeout, what=f"a notification for {job_id}")


COMPLETION_DETAIL_TYPES: Final = ("Video Generation Succeeded", "Video Generation Failed")


@dataclass
class EventTap(_QueueReader):
    """An SQS queue behind a rule on the stack's bus: every completion event the stack puts there."""

    @classmethod
    def attach(
        cls,
        sandbox: Sandbox,
        *,
        name: str = "t2v-user-events",
        source: str = "t2v.pipeline",
        detail_types: tuple[str, ...] = COMPLETION_DETAIL_TYPES,
    ) -> EventTap:
        queue_url, queue_arn = _queue(sandbox, name)
        bus = str(sandbox.stack.parameters.get("EventBusName", "default")) if sandbox.stack else "default"
        events = sandbox.client("events")
        pattern = {"source": [source], "detail-type": list(detail_types)}
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
        return cls(sandbox, queue_url)

    def drain(self) -> list[dict[str, Any]]:
        """Read every event queued so far into `received`; returns all events received."""
        self.received.extend(_drain(self.sandbox, self.queue_url))
        return self.received

    def by_job(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for event in self.drain():
            found.setdefault(str(event["detail"].get("job_id")), []).append(event)
        return found


REQUESTED_DETAIL_TYPE: Final = "Video Generation Requested"
DEFAULT_REQUEST_SOURCE: Final = "t2v.requests"  # template.yaml's RequestEventSource default


def put_video_request(sandbox: Sandbox, detail: Any, *, source: str | None = None) -> dict[str, Any]:
    """`Video Generation Requested` on the stack's bus, from the source the stack accepts unless
    another is given; returns PutEvents' answer (its entry's EventId names the job)."""
    params = sandbox.stack.parameters if sandbox.stack else {}
    answer: dict[str, Any] = sandbox.client("events").put_events(
        Entries=[
            {
                "Source": source or str(params.get("RequestEventSource", DEFAULT_REQUEST_SOURCE)),
                "DetailType": REQUESTED_DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "EventBusName": str(params.get("EventBusName", "default")),
            }
        ]
    )
    return answer


def topic_arn(sandbox: Sandbox) -> str:
    arn = sandbox.outputs.get("OutcomeTopicArn")
    return str(arn) if arn else str(sandbox.physical_id("OutcomeTopic"))


def wait_until[T](probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Bounded polling: the probe's first truthy value, or AssertionError naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(interval)
