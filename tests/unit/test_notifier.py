"""The outcome announcer's EventBridge side: a PutEvents answer that refused an entry is not "sent"."""

from __future__ import annotations

from typing import Any

import pytest
from t2v.adapters.notifier import FAILED_DETAIL_TYPE, Notifier
from t2v.errors import EventPublishError

MESSAGE = {"job_id": "job-1", "status": "FAILED", "source": "api", "notification_id": "job-1/FAILED"}


class FakeEventBus:
    """EventBridge's PutEvents as the API answers it: HTTP 200, failures counted per entry."""

    def __init__(self, failures: list[dict[str, str]]) -> None:
        self.failures = failures  # one answer per call: {} accepts, {"ErrorCode": ...} refuses
        self.accepted: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failure = self.failures.pop(0) if self.failures else {}
        if failure:
            return {"FailedEntryCount": 1, "Entries": [failure]}
        self.accepted.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e{len(self.accepted)}"}]}


def notifier(bus: FakeEventBus) -> Notifier:
    return Notifier(
        topic_arn="arn:aws:sns:us-east-1:1:t", event_bus_name="b", event_source="t2v.pipeline", events=bus
    )


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalFailure"])
def test_a_refused_entry_raises_a_retryable_error_naming_the_code(code: str) -> None:
    bus = FakeEventBus([{"ErrorCode": code, "ErrorMessage": "try again"}])

    with pytest.raises(EventPublishError, match=code) as raised:
        notifier(bus).put_event(MESSAGE)

    assert raised.value.retryable
    assert bus.accepted == []


def test_the_retry_after_a_refusal_delivers_the_event_once() -> None:
    bus = FakeEventBus([{"ErrorCode": "ThrottlingException"}])
    announcer = notifier(bus)
    with pytest.raises(EventPublishError):
        announcer.put_event(MESSAGE)

    announcer.put_event(MESSAGE)

    [event] = bus.accepted
    assert event["DetailType"] == FAILED_DETAIL_TYPE and event["Source"] == "t2v.pipeline"
