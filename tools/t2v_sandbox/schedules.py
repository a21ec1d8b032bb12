"""Scheduled EventBridge rules, fired locally: moto stores a `rate(...)` rule but never fires it.

The sandbox starts a `Scheduler` after deploying: each enabled rate rule fires its targets every
period times the sandbox's time scale, with the event EventBridge sends ("Scheduled Event" from
`aws.events`). Lambda targets are invoked asynchronously, as EventBridge invokes them.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

LOG = logging.getLogger("t2v_sandbox.schedules")
_RATE: Final = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}


def period_seconds(expression: str) -> float | None:
    """Seconds between two firings of `rate(N unit)`; None for what the sandbox cannot fire (cron)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2).removesuffix("s")
    return float(count * _UNIT_SECONDS[unit])


@dataclass
class ScheduledRule:
    name: str
    arn: str
    period: float  # seconds, already scaled
    targets: list[dict[str, Any]]
    next_at: float = 0.0


class Scheduler:
    """Fires the account's enabled rate rules in a background thread until `stop()`."""

    def __init__(self, client: Callable[[str], Any], *, time_scale: float, account: str, region: str) -> None:
        self._client = client
        self._scale = time_scale
        self._account = account
        self._region = region
        self._rules: list[ScheduledRule] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def start(self) -> Scheduler:
        self._rules = self._scheduled_rules()
        if self._rules:
            self._thread = threading.Thread(target=self._run, name="sandbox-schedules", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def rules(self) -> list[ScheduledRule]:
        return list(self._rules)

    def _scheduled_rules(self) -> list[ScheduledRule]:
        events = self._client("events")
        found: list[ScheduledRule] = []
        for bus in events.list_event_buses().get("EventBuses", []):
            for rule in events.list_rules(EventBusName=bus["Name"]).get("Rules", []):
                expression = rule.get("ScheduleExpression")
                if not expression or rule.get("State", "ENABLED") != "ENABLED":
                    continue
                period = period_seconds(expression)
                if period is None:
                    LOG.warning("schedule %s of rule %s is not fired locally", expression, rule["Name"])
                    continue
                targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])["Targets"]
                scaled = max(0.5, period * self._scale)
                found.append(
                    ScheduledRule(rule["Name"], rule["Arn"], scaled, targets, time.monotonic() + scaled)
                )
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for rule in self._rules:
                if now >= rule.next_at:
                    rule.next_at = now + rule.period
                    self.fire(rule)

    def fire(self, rule: ScheduledRule) -> None:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self._account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [rule.arn],
            "detail": {},
        }
        for target in rule.targets:
            payload = json.loads(target["Input"]) if "Input" in target else event
            if target["Arn"].split(":")[2] != "lambda":
                LOG.warning("schedule target %s is not a Lambda function: not fired locally", target["Arn"])
                continue
            try:
                self._client("lambda").invoke(
                    FunctionName=target["Arn"], InvocationType="Event", Payload=json.dumps(payload)
                )
            except Exception:
                LOG.exception("schedule %s could not invoke %s", rule.name, target["Arn"])
                continue
            self.fired += 1
