"""The outcome announcer's EventBridge side: a PutEvents answer that refused an entry is not "sent"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from t2v.adapters.notifier import FAILED_DETAIL_TYPE, Notifier
from t2v.errors import EventPublishError
from t2v.jobs import JobRecord
from t2v.usecases.announce import outcome_message

ALICE = "arn:aws:iam::123456789012:user/alice"

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


class FakeTopic:
    """SNS Publish: what was published, with its message attributes."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.published.append(kwargs)
        return {"MessageId": f"m{len(self.published)}"}


def job(owner: str | None) -> JobRecord:
    return JobRecord.model_validate(
        {
            "job_id": "job-1",
            "status": "FAILED",
            "request": {"prompt": "my secret campaign", "negative_prompt": "blur", "size": "640*360"},
            "source": "api",
            "owner": owner,
            "created_at": "2026-12-05T10:00:00Z",
            "updated_at": "2026-12-05T10:00:00Z",
        }
    )


def test_outcomes_carry_their_owner_for_a_tenants_filter_policy_and_rule() -> None:
    # Given a job of alice's, When its outcome is announced
    topic, bus = FakeTopic(), FakeEventBus([])
    announcer = Notifier(topic_arn="arn:t", event_bus_name="b", event_source="s", sns=topic, events=bus)  # type: ignore[arg-type]
    message = outcome_message(job(ALICE))
    announcer.publish(message)
    announcer.put_event(message)
    # Then the SNS message attribute and the event's detail both name her (what a filter matches)
    attributes = topic.published[0]["MessageAttributes"]
    assert attributes["owner"] == {"DataType": "String", "StringValue": ALICE}
    assert json.loads(bus.accepted[0]["Detail"])["owner"] == ALICE
    # A job refused before it had an owner still gets a (non-empty) attribute, as SNS requires
    announcer.publish(outcome_message(job(None)))
    assert topic.published[1]["MessageAttributes"]["owner"]["StringValue"] == "none"


def test_outcome_prompts_omitted_leaves_the_words_out_and_the_settings_in() -> None:
    shown = outcome_message(job(ALICE))
    hidden = outcome_message(job(ALICE), include_prompt=False)
    assert shown["request"]["prompt"] == "my secret campaign"
    assert hidden["request"] == {"size": "640*360"}
    assert "my secret" not in json.dumps(hidden)
