"""Push completion's domain: the callback's checks and the hand-over between a push and a parked wait."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from t2v.capacity import MAX_PUSH_WAKES
from t2v.contract import ParkRequest, ParkResult
from t2v.jobs import CONTESTED, HintRecorded, Parked
from t2v.push import (
    MAX_BODY_BYTES,
    PushDeps,
    PushError,
    PushOutcome,
    PushTooLargeError,
    PushUnauthorizedError,
    park_wait,
    parse_push,
    receive_push,
    token_matches,
)

from tests.conftest import lambda_context

# Imported at collection: building its X-Ray recorder opens a socket, which unit tests refuse.
park_app = importlib.import_module("functions.park.app")
TOKEN = "s3cret-token-of-the-eventbridge-target"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def documented_event(task_id: str = "task-1", event_id: str = "evt-1", status: str = "SUCCEEDED") -> bytes:
    """The shape of the documented sample, its malformed `time` included."""
    return json.dumps(
        {
            "datacontenttype": "application/json;charset=utf-8",
            "aliyunaccountid": "1000000000000000",
            "aliyunpublishtime": "2023-01-25T11:07:26.339Z",
            "data": {
                "task_id": task_id,
                "task_status": status,
                "request_id": "req-1",
                "start_time": "2023-01-25 19:07:10",
                "end_time": "2023-01-25 19:07:26",
                "region": "cn-beijing",
                "api_key_id": "12345",
                "user_api_unique_key": "apikey:v1:aigc:video-generation:video-synthesis:model",
                "contain_result": False,
            },
            "aliyunoriginalaccountid": "1000000000000000",
            "source": "acs.dashscope",
            "type": "dashscope:System:AsyncTaskFinish",
            "aliyunpublishaddr": "10.0.0.1",
            "specversion": "1.0",
            "aliyuneventbusname": "default",
            "id": event_id,
            "time": "2023-1-25T19:07:26.339+08:00",
            "aliyunregionid": "cn-beijing",
        }
    ).encode()


@dataclass
class FakeJob:
    status: str = "RUNNING"
    hint_at: datetime | None = None
    checked_at: datetime | None = None
    token: str | None = None
    events: set[str] = field(default_factory=set)


@dataclass
class FakeRepo:
    """In memory, with the same hand-over semantics as JobsRepository.record_hint / park."""

    owners: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    writes: int = 0

    def owner_of_task(self, task_id: str) -> str | None:
        return self.owners.get(task_id)

    def record_hint(self, job_id: str, *, event_id: str, now: datetime) -> HintRecorded:
        self.writes += 1
        job = self.jobs[job_id]
        if len(job.events) >= MAX_PUSH_WAKES:
            return HintRecorded(duplicate=False, finished=False, token=None, spent=True)
        if event_id in job.events:
            return HintRecorded(duplicate=True, finished=False, token=None)
        job.events.add(event_id)
        job.hint_at = now
        return HintRecorded(
            duplicate=False, finished=job.status in {"SUCCEEDED", "FAILED", "CANCELED"}, token=job.token
        )

    def park(self, job_id: str, *, token: str, now: datetime) -> Parked | None:
        self.writes += 1
        job = self.jobs.get(job_id)
        if job is None:
            return None
        job.token = token
        pending = job.hint_at is not None and (job.checked_at is None or job.hint_at >= job.checked_at)
        return Parked(hint_pending=pending, finished=job.status in {"SUCCEEDED", "FAILED", "CANCELED"})


@dataclass
class FakeWaker:
    """Tokens stay open until woken once; a second wake of the same token finds it closed."""

    open: set[str] = field(default_factory=set)
    woken: list[str] = field(default_factory=list)

    def wake(self, token: str) -> bool:
        if token not in self.open:
            return False
        self.open.discard(token)
        self.woken.append(token)
        return True


def deps(repo: FakeRepo, waker: FakeWaker, now: datetime = T0) -> PushDeps:
    return PushDeps(tasks=repo, push=repo, waker=waker, token=lambda: TOKEN, clock=lambda: now)


@pytest.fixture
def repo() -> FakeRepo:
    return FakeRepo(owners={"task-1": "job-1", "task-x": CONTESTED}, jobs={"job-1": FakeJob()})


# ------------------------------------------------------------------ authentication and parsing


@pytest.mark.parametrize("given", [None, "", "wrong", TOKEN[:-1], TOKEN + "x"])
def test_missing_or_wrong_token_is_401_and_nothing_else(repo: FakeRepo, given: str | None) -> None:
    with pytest.raises(PushUnauthorizedError) as raised:
        receive_push(given, documented_event(), deps(repo, FakeWaker()))
    assert raised.value.http_status == 401
    assert repo.writes == 0  # nothing recorded, nothing looked up that a stranger could learn from


def test_no_configured_token_accepts_nothing() -> None:
    assert not token_matches("", "")
    assert not token_matches(None, "")
    assert not token_matches("anything", "")
    assert token_matches(TOKEN, TOKEN)


def test_the_documented_event_parses_despite_its_malformed_time() -> None:
    event = parse_push(documented_event())
    assert (event.task_id, event.task_status, event.event_id) == ("task-1", "SUCCEEDED", "evt-1")
    assert (event.source, event.type) == ("acs.dashscope", "dashscope:System:AsyncTaskFinish")


def test_data_as_a_json_string_and_bare_data_parse_too() -> None:
    as_string = json.dumps({"id": "e", "data": json.dumps({"task_id": "t", "task_status": "FAILED"})})
    assert parse_push(as_string.encode()).task_id == "t"
    bare = parse_push(json.dumps({"task_id": "t2", "status": "CANCELED"}).encode())
    assert (bare.task_id, bare.task_status, bare.event_id) == ("t2", "CANCELED", "t2:CANCELED")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"id": "e", "data": 5}).encode(), "data"),
        (json.dumps({"id": "e", "data": "{oops"}).encode(), "data"),
        (json.dumps({"id": "e", "data": {"task_status": "SUCCEEDED"}}).encode(), "data.task_id"),
        (json.dumps({"id": "e", "data": {"task_id": 17}}).encode(), "data.task_id"),
        (json.dumps({"id": "e", "data": {"task_id": "a#b"}}).encode(), "data.task_id"),
    ],
)
def test_bad_events_name_the_field(body: bytes, names: str) -> None:
    with pytest.raises(PushError) as raised:
        parse_push(body)
    assert str(raised.value).startswith(f"{names}:")
    assert raised.value.http_status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 20_000 + b"]" * 20_000,  # was a RecursionError (502) through plain json.loads
        json.dumps({"id": "e", "data": "[" * 20_000 + "]" * 20_000}).encode(),
        b'{"id": "e", "data": {"task_id": "t", "n": NaN}}',
    ],
)
def test_hostile_json_is_refused_as_bad_input_not_a_crash(body: bytes) -> None:
    with pytest.raises(PushError) as raised:
        parse_push(body)
    assert raised.value.http_status == 400
    assert str(raised.value).split(":")[0] in {"body", "data"}


def test_bodies_are_bounded() -> None:
    with pytest.raises(PushTooLargeError) as raised:
        parse_push(b" " * (MAX_BODY_BYTES + 1))
    assert raised.value.http_status == 413


# ------------------------------------------------------------------ the hand-over


def test_a_push_wakes_the_parked_wait(repo: FakeRepo) -> None:
    # Given a wait parked with token A
    waker = FakeWaker(open={"A"})
    park = park_wait(ParkRequest(job_id="job-1", token="A"), deps(repo, waker))
    assert park == ParkResult(job_id="job-1", parked=True) and waker.woken == []
    # When its task's push arrives, Then that wait is woken
    outcome, _ = receive_push(TOKEN, documented_event(), deps(repo, waker, T0 + timedelta(seconds=5)))
    assert outcome == PushOutcome.WOKEN
    assert waker.woken == ["A"]


def test_a_push_before_the_wait_is_parked_makes_parking_return_at_once(repo: FakeRepo) -> None:
    waker = FakeWaker(open={"B"})
    outcome, _ = receive_push(TOKEN, documented_event(), deps(repo, waker))
    assert outcome == PushOutcome.RECORDED
    result = park_wait(ParkRequest(job_id="job-1", token="B"), deps(repo, waker, T0 + timedelta(seconds=1)))
    assert result.parked is False
    assert waker.woken == ["B"]


def test_a_hint_the_last_status_turn_already_saw_does_not_wake_the_next_wait(repo: FakeRepo) -> None:
    waker = FakeWaker(open={"C"})
    receive_push(TOKEN, documented_event(), deps(repo, waker))
    repo.jobs["job-1"].checked_at = T0 + timedelta(seconds=1)  # a status turn began after the push
    result = park_wait(ParkRequest(job_id="job-1", token="C"), deps(repo, waker, T0 + timedelta(seconds=2)))
    assert result.parked is True
    assert waker.woken == []


def test_duplicates_late_pushes_and_closed_tokens_are_not_errors(repo: FakeRepo) -> None:
    waker = FakeWaker(open={"A"})
    park_wait(ParkRequest(job_id="job-1", token="A"), deps(repo, waker))
    assert receive_push(TOKEN, documented_event(), deps(repo, waker))[0] == PushOutcome.WOKEN
    # The same event again (EventBridge retried): dropped, nothing woken twice.
    assert receive_push(TOKEN, documented_event(), deps(repo, waker))[0] == PushOutcome.DUPLICATE
    # Another event id for the task while the woken wait's token is still the parked one: closed.
    late = documented_event(event_id="evt-2")
    assert receive_push(TOKEN, late, deps(repo, waker))[0] == PushOutcome.CLOSED
    assert waker.woken == ["A"]


def test_pushes_for_finished_jobs_and_unknown_tasks_are_ignored(repo: FakeRepo) -> None:
    waker = FakeWaker(open={"A"})
    repo.jobs["job-1"].status = "SUCCEEDED"
    repo.jobs["job-1"].token = "A"
    assert receive_push(TOKEN, documented_event(), deps(repo, waker))[0] == PushOutcome.FINISHED
    assert receive_push(TOKEN, documented_event("task-of-another-app"), deps(repo, waker))[0] == (
        PushOutcome.UNKNOWN_TASK
    )
    assert receive_push(TOKEN, documented_event("task-x"), deps(repo, waker))[0] == PushOutcome.UNKNOWN_TASK
    assert waker.woken == []


def test_parking_a_finished_or_missing_job_wakes_at_once(repo: FakeRepo) -> None:
    waker = FakeWaker(open={"A", "B"})
    repo.jobs["job-1"].status = "CANCELED"
    assert park_wait(ParkRequest(job_id="job-1", token="A"), deps(repo, waker)).parked is False
    assert park_wait(ParkRequest(job_id="nope", token="B"), deps(repo, waker)).parked is False
    assert waker.woken == ["A", "B"]


def test_the_park_function_returns_its_result_as_json(
    repo: FakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    waker = FakeWaker(open={"A"})
    monkeypatch.setattr(park_app, "push_deps", lambda: deps(repo, waker))

    result = park_app.lambda_handler({"job_id": "job-1", "token": "A"}, lambda_context("park"))

    assert result == {"job_id": "job-1", "parked": True}
    assert ParkResult.model_validate(result).parked and waker.woken == []


def test_park_request_is_validated() -> None:
    with pytest.raises(ValueError, match="token"):
        ParkRequest.model_validate({"job_id": "j", "token": ""})
    with pytest.raises(ValueError, match="extra"):
        ParkRequest.model_validate({"job_id": "j", "token": "t", "other": 1})
    assert "t0ken" not in repr(ParkRequest(job_id="j", token="t0ken"))


def test_a_flood_of_pushes_with_distinct_ids_wakes_a_job_a_bounded_number_of_times(repo: FakeRepo) -> None:
    # Given a parked wait, When pushes arrive for its task with ids and status texts that all differ
    waker = FakeWaker(open={"A"})
    park_wait(ParkRequest(job_id="job-1", token="A"), deps(repo, waker))
    outcomes = []
    for i in range(50):
        body = json.dumps(
            {"id": f"evt-{i}", "data": {"task_id": "task-1", "task_status": "SUCCEEDED" + " " * i}}
        )
        outcomes.append(receive_push(TOKEN, body.encode(), deps(repo, waker))[0])
    # Then only the first MAX_PUSH_WAKES count; the rest wake nothing and store nothing
    assert PushOutcome.SPENT not in outcomes[:MAX_PUSH_WAKES]
    assert set(outcomes[MAX_PUSH_WAKES:]) == {PushOutcome.SPENT}
    assert len(repo.jobs["job-1"].events) == MAX_PUSH_WAKES
