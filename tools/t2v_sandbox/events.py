"""`t2v events`: follow a sandbox's SNS messages and EventBridge events live.

It subscribes a queue of its own to the outcome topic and points a rule matching every event on
the stack's bus at the same queue, prints one line per message (or JSON lines), and removes the
queue, the subscription and the rule when it stops. Only events put after it started are seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from t2v_client import DEFAULT_ENDPOINTS, CliError, ExitCode, Place, sandbox_place

ALL_EVENTS = {"source": [{"prefix": ""}]}  # EventBridge needs a pattern; this one matches every event


def register(subparsers: Any) -> None:
    events = subparsers.add_parser("events", help="follow the sandbox's SNS messages and EventBridge events")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument(
        "--for",
        dest="seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long (default: until Ctrl-C)",
    )
    events.add_argument(
        "--endpoints", type=Path, default=DEFAULT_ENDPOINTS, help="the sandbox's endpoints file"
    )
    events.set_defaults(func=run_events)


@dataclass(frozen=True)
class Seen:
    kind: str  # "sns" | "event"
    body: dict[str, Any]
    received_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "received_at": self.received_at.isoformat(), **self.body}

    def line(self) -> str:
        stamp = self.received_at.strftime("%H:%M:%S")
        if self.kind == "sns":
            message = self.body.get("message") or {}
            attributes = self.body.get("attributes") or {}
            status = attributes.get("status") or (
                message.get("status") if isinstance(message, dict) else None
            )
            job = message.get("job_id") if isinstance(message, dict) else None
            extra = ""
            if isinstance(message, dict) and message.get("error"):
                error = message["error"]
                extra = f" error={error.get('code') if isinstance(error, dict) else error}"
            return f"{stamp} sns    {self.body.get('subject') or '-'}  status={status} job={job}{extra}"
        detail = self.body.get("detail") or {}
        job = detail.get("job_id") if isinstance(detail, dict) else None
        status = detail.get("status") if isinstance(detail, dict) else None
        return (
            f"{stamp} event  {self.body.get('detail-type')}  source={self.body.get('source')}"
            f" id={self.body.get('id')}"
            + (f" job={job}" if job else "")
            + (f" status={status}" if status else "")
        )


def parse_message(raw_body: str, now: datetime) -> Seen:
    """An SQS message body: an SNS envelope (Type Notification) or an EventBridge event."""
    body = json.loads(raw_body)
    if isinstance(body, dict) and body.get("Type") == "Notification":
        try:
            message: Any = json.loads(body.get("Message") or "null")
        except json.JSONDecodeError:
            message = body.get("Message")
        attributes = {k: v.get("Value") for k, v in (body.get("MessageAttributes") or {}).items()}
        return Seen(
            "sns", {"subject": body.get("Subject"), "attributes": attributes, "message": message}, now
        )
    return Seen("event", body if isinstance(body, dict) else {"body": body}, now)


class Tap:
    """A queue subscribed to the topic and the bus; `close()` removes all three."""

    def __init__(self, place: Place) -> None:
        self.place = place
        name = f"t2v-events-{uuid.uuid4().hex[:8]}"
        self.rule = name
        self.sqs = place.client("sqs")
        self.queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.subscription_arn: str | None = None
        try:
            queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            if place.topic_arn:
                self.subscription_arn = place.client("sns").subscribe(
                    TopicArn=place.topic_arn, Protocol="sqs", Endpoint=queue_arn
                )["SubscriptionArn"]
            events = place.client("events")
            events.put_rule(Name=name, EventBusName=place.event_bus, EventPattern=json.dumps(ALL_EVENTS))
            events.put_targets(
                Rule=name, EventBusName=place.event_bus, Targets=[{"Id": "tap", "Arn": queue_arn}]
            )
        except BaseException:
            self.close()
            raise

    def receive(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Iterator[Seen]:
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for raw in got.get("Messages", []):
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=raw["ReceiptHandle"])
            yield parse_message(raw["Body"], clock())

    def close(self) -> None:
        events = self.place.client("events")
        cleanups: tuple[Callable[[], object], ...] = (
            lambda: events.remove_targets(Rule=self.rule, EventBusName=self.place.event_bus, Ids=["tap"]),
            lambda: events.delete_rule(Name=self.rule, EventBusName=self.place.event_bus),
            lambda: (
                self.subscription_arn
                and self.place.client("sns").unsubscribe(SubscriptionArn=self.subscription_arn)
            ),
            lambda: self.sqs.delete_queue(QueueUrl=self.queue_url),
        )
        for cleanup in cleanups:
            try:
                cleanup()
            except (BotoCoreError, ClientError):  # best effort: the sandbox may already be gone
                continue


def follow(tap: Tap, out: TextIO, *, as_json: bool, seconds: float | None) -> int:
    deadline = None if seconds is None else time.monotonic() + seconds
    count = 0
    while deadline is None or time.monotonic() < deadline:
        for seen in tap.receive():
            print(
                json.dumps(seen.as_json(), ensure_ascii=False) if as_json else seen.line(),
                file=out,
                flush=True,
            )
            count += 1
    return count


def run_events(args: argparse.Namespace) -> int:
    try:
        place = sandbox_place(args.endpoints)
        tap = Tap(place)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return int(exc.code)
    except (BotoCoreError, ClientError) as exc:
        return _gone(exc)
    print(
        f"following topic {place.topic_arn} and bus {place.event_bus!r} (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    try:
        follow(tap, sys.stdout, as_json=args.json, seconds=args.seconds)
    except KeyboardInterrupt:
        pass
    except (BotoCoreError, ClientError) as exc:
        # The sandbox stopped under us: its queue, rule and subscription went with it.
        return _gone(exc)
    tap.close()
    return 0


def _gone(exc: Exception) -> int:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(
        f"error: the sandbox stopped answering ({first[:160]}); start it with `t2v sandbox up`",
        file=sys.stderr,
        flush=True,
    )
    return int(ExitCode.UNREACHABLE)
