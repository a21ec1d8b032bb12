"""The REST API handler against moto (real HTTP) and the DashScope emulator.

Events come from the one corpus (events/api_*.json). The state machine is a trivial Pass machine
that moto never runs: these tests check what the API records, starts, stops and announces.
"""

from __future__ import annotations

import base64
import importlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import httpx
import pytest
from t2v.adapters.jobs_repo import JobsRepository
from t2v.adapters.task_owners import TaskOwners
from t2v.dashscope import DashScopeClient
from t2v.jobs import JobStatus, derive_job_id
from t2v.request import VideoRequest
from t2v.usecases.videos import Caller, scoped_key

from tests.conftest import lambda_context, load_event

app_module = importlib.import_module("functions.api.app")

CTX = lambda_context("api", request_id="req-int")
GOOD = {"prompt": "一只小猫在月光下奔跑", "size": "640*360", "duration": 5}
# The caller of the event corpus (requestContext.identity.userArn), and two more.
CLIENT = "arn:aws:iam::123456789012:user/video-client"
OTHER = "arn:aws:iam::123456789012:user/someone-else"
ADMIN = "arn:aws:iam::123456789012:role/video-admin"


@pytest.fixture
def api(stack: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"videos-{uuid.uuid4().hex[:8]}",
        # A long Wait keeps executions RUNNING whether or not moto executes state machines in this process.
        definition=json.dumps(
            {"StartAt": "Go", "States": {"Go": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/state-machine",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    monkeypatch.setenv("ADMIN_PRINCIPALS", f"{ADMIN},arn:aws:iam::123456789012:role/another-admin")
    app_module._deps.cache_clear()
    yield SimpleNamespace(
        stack=stack,
        emu=emulator,
        sfn=sfn,
        machine=machine,
        repo=JobsRepository(stack.table),
        tasks=TaskOwners(stack.table),
    )
    app_module._deps.cache_clear()


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app_module.lambda_handler(event, CTX)
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], headers, json.loads(response["body"])


def as_caller(event: dict[str, Any], caller: str | None) -> dict[str, Any]:
    if caller is not None:
        event["requestContext"]["identity"]["userArn"] = caller
    return event


def post(
    body: Any = None, *, key: str | None = None, raw: str | None = None, caller: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    event = as_caller(load_event("api_post_videos.json"), caller)
    if body is not None or raw is not None:
        event["body"] = raw if raw is not None else json.dumps(body, ensure_ascii=False)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Idempotency-Key")
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    return call(event)


def request(
    method: str, path: str, query: dict[str, str] | None = None, *, caller: str | None = None
) -> tuple[int, dict[str, Any], Any]:
    event = as_caller(load_event("api_get_video.json"), caller)
    event.update(
        httpMethod=method,
        path=path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
    )
    return call(event)


def executions(api: SimpleNamespace) -> list[dict[str, Any]]:
    return list(api.sfn.list_executions(stateMachineArn=api.machine)["executions"])


def wait_for(client: DashScopeClient, task_id: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while client.get_task(task_id).status != status:
        assert time.monotonic() < deadline, f"task never reached {status}"
        time.sleep(0.1)


def job_with_task(
    api: SimpleNamespace, *, status: JobStatus, running: bool
) -> tuple[str, str, DashScopeClient]:
    """A job started through the API whose provider task exists in the emulator and is recorded."""
    api.emu.config.pending_seconds, api.emu.config.running_seconds = (0.0, 60.0) if running else (60.0, 60.0)
    client = DashScopeClient(api.stack.api_key, base_url=api.emu.base_url)
    created = client.create_task(VideoRequest(prompt="a cat under the moon", size="640*360"))
    wait_for(client, created.task_id, "RUNNING" if running else "PENDING")
    job_id = post(GOOD)[2]["job_id"]
    now = datetime.now(UTC)
    assert api.tasks.record_task(job_id, task_id=created.task_id, request_id=created.request_id, now=now).done
    assert api.repo.transition(job_id, status, now=now).done
    return job_id, created.task_id, client


# -- POST ----------------------------------------------------------------------------------------


def test_post_from_the_event_corpus_records_the_job_and_starts_one_execution(api: SimpleNamespace) -> None:
    status, headers, body = call(load_event("api_post_videos.json"))

    # The key is the caller's own: the job id comes from the caller and its key.
    job_id = derive_job_id("api", scoped_key(Caller(CLIENT), "3f1c2d9e-7a4b-4c59-9e2f-0b6a1d5c8e71"))
    assert status == 202
    # The corpus event came through the Prod stage: the links carry it, so following them works
    assert body == {"job_id": job_id, "status": "ACCEPTED", "links": {"self": f"/v1/videos/{job_id}"}}
    assert headers["Location"] == f"/v1/videos/{job_id}"
    record = api.stack.job(job_id)
    assert record["status"] == "ACCEPTED"
    assert record["origin"]["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    [execution] = executions(api)
    assert execution["name"] == job_id
    started = json.loads(api.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["request"]["seed"] == 42
    assert (started["job_id"], started["source"], started["start_delay_seconds"]) == (job_id, "api", 0)
    # GET works at once
    assert request("GET", f"/videos/{job_id}")[2]["status"] == "ACCEPTED"


def test_same_idempotency_key_twice_is_one_job_and_one_execution(api: SimpleNamespace) -> None:
    first = post(GOOD, key="retry-me")
    second = post(GOOD, key="retry-me")
    conflict = post({**GOOD, "prompt": "a different video"}, key="retry-me")

    assert first == second
    assert first[0] == 202
    assert [e["name"] for e in executions(api)] == [first[2]["job_id"]]
    assert (conflict[0], conflict[2]["error"]["code"]) == (409, "IdempotencyKeyReused")


@pytest.mark.parametrize(
    ("body", "raw", "field"),
    [
        ({**GOOD, "size": "1920*1088"}, None, "size"),
        ({**GOOD, "size": "1920*1080", "duration": 10}, None, "duration"),
        ({**GOOD, "seed": 2_147_483_648}, None, "seed"),
        ({**GOOD, "prompt": "a" * 2049}, None, "prompt"),
        ({**GOOD, "prompt": ""}, None, "prompt"),
        ({**GOOD, "negative_prompt": "blur"}, None, "negative_prompt"),
        (None, "prompt=a cat", "body"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    api: SimpleNamespace, body: Any, raw: str | None, field: str
) -> None:
    status, _, answer = post(body, raw=raw)

    assert status == 400
    assert [f["field"] for f in answer["error"]["fields"]] == [field]
    assert executions(api) == []
    assert api.emu.create_count() == 0


# -- GET -----------------------------------------------------------------------------------------


def test_get_unknown_job_is_404(api: SimpleNamespace) -> None:
    status, _, body = request("GET", "/videos/job-00000000000000000000000000000000")
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_get_succeeded_job_gives_the_s3_location_and_a_working_presigned_url(api: SimpleNamespace) -> None:
    # Given a job that finished and its video in the bucket
    now = datetime.now(UTC)
    job_id = "job-succeeded-0001"
    key = f"videos/{job_id}.mp4"
    boto3.client("s3").put_object(Bucket=api.stack.bucket, Key=key, Body=b"\x00\x00\x00\x18ftypmp42video")
    api.repo.create_if_absent(
        job_id, request=GOOD, source="api", origin={}, now=now, deadline_at=now, owner=CLIENT
    )
    api.tasks.record_task(job_id, task_id="task-1", request_id="rq-1", now=now)
    api.repo.transition(job_id, JobStatus.DOWNLOADING, now=now)
    api.repo.transition(
        job_id,
        JobStatus.SUCCEEDED,
        now=now,
        fields={"s3_bucket": api.stack.bucket, "s3_key": key, "bytes": 21},
    )

    status, _, body = request("GET", f"/videos/{job_id}")

    assert status == 200
    assert body["status"] == "SUCCEEDED"
    assert body["task_id"] == "task-1"
    assert [h["status"] for h in body["history"]] == ["ACCEPTED", "SUBMITTED", "DOWNLOADING", "SUCCEEDED"]
    assert body["video"]["uri"] == f"s3://{api.stack.bucket}/{key}"
    assert body["video"]["expires_in"] == 900
    downloaded = httpx.get(body["video"]["url"])
    assert downloaded.status_code == 200
    assert downloaded.content.startswith(b"\x00\x00\x00\x18ftyp")


def test_list_filters_by_status_and_paginates(api: SimpleNamespace) -> None:
    start = datetime.now(UTC)
    for n in range(7):
        at = start + timedelta(seconds=n)
        api.repo.create_if_absent(
            f"job-list-{n}", request=GOOD, source="api", origin={}, now=at, deadline_at=at, owner=CLIENT
        )
        if n % 2:
            api.repo.transition(f"job-list-{n}", JobStatus.FAILED, now=at)

    seen: list[str] = []
    query = {"status": "FAILED", "limit": "2"}
    for _ in range(10):
        status, _, page = request("GET", "/videos", query)
        assert status == 200
        assert len(page["items"]) <= 2
        assert {item["status"] for item in page["items"]} <= {"FAILED"}
        seen += [item["job_id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        query = {**query, "cursor": page["next_cursor"]}

    assert seen == ["job-list-5", "job-list-3", "job-list-1"]
    assert request("GET", "/videos", {"status": "DONE"})[0] == 400
    assert len(request("GET", "/videos", {"limit": "100"})[2]["items"]) == 7


def test_list_by_date_range_words_and_order_on_dynamodb(api: SimpleNamespace) -> None:
    # Given a caller's jobs a minute apart, and another caller's job with the same words
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    prompts = ["A Red Fox in the snow", "a cat", "red fox running", "一只小猫在月光下奔跑", "FOX"]
    for n, prompt in enumerate(prompts):
        at = start + timedelta(minutes=n)
        api.repo.create_if_absent(
            f"job-q-{n}", request={**GOOD, "prompt": prompt}, source="api", origin={}, now=at,
            deadline_at=at, owner=CLIENT,
        )  # fmt: skip
    api.repo.create_if_absent(
        "job-q-other", request={**GOOD, "prompt": "red fox"}, source="api", origin={}, now=start,
        deadline_at=start, owner=OTHER,
    )  # fmt: skip

    def ids(query: dict[str, str], caller: str | None = None) -> list[str]:
        status, _, page = request("GET", "/videos", query, caller=caller)
        assert status == 200, page
        return [item["job_id"] for item in page["items"]]

    # When they list by words, range and order, Then only their own matching jobs come, in that order
    assert ids({"q": "red FOX"}) == ["job-q-2", "job-q-0"]
    assert ids({"q": "fox", "order": "oldest", "limit": "2"}) == ["job-q-0", "job-q-2"]
    assert ids({"q": "小猫"}) == ["job-q-3"]
    window = {"since": "2026-12-01T08:01:00Z", "until": "2026-12-01T08:03:00Z"}
    assert ids(window) == ["job-q-2", "job-q-1"]
    assert ids({**window, "order": "oldest"}) == ["job-q-1", "job-q-2"]
    assert sorted(ids({"q": "red fox", "until": "2026-12-01T08:01:00Z"}, caller=ADMIN)) == [
        "job-q-0",
        "job-q-other",
    ]
    # and a filtered page that fills up reads on right after its last job
    status, _, page = request("GET", "/videos", {"q": "fox", "limit": "1"})
    assert [i["job_id"] for i in page["items"]] == ["job-q-4"]
    assert page["search"]["complete"] is False
    query = {"q": "fox", "limit": "5", "cursor": page["next_cursor"]}
    assert [i["job_id"] for i in request("GET", "/videos", query)[2]["items"]] == ["job-q-2", "job-q-0"]
    # Bad parameters are 400s naming the field
    status, _, body = request("GET", "/videos", {"since": "last week"})
    assert (status, [f["field"] for f in body["error"]["fields"]]) == (400, ["since"])


def test_a_job_recorded_before_prompt_search_is_found_by_its_words_as_written(api: SimpleNamespace) -> None:
    at = datetime.now(UTC)
    api.repo.create_if_absent(
        "job-old", request={**GOOD, "prompt": "an old fox"}, source="api", origin={}, now=at,
        deadline_at=at, owner=CLIENT,
    )  # fmt: skip
    boto3.resource("dynamodb").Table(api.stack.table).update_item(
        Key={"pk": "job-old"}, UpdateExpression="REMOVE prompt_lc"
    )
    assert [i["job_id"] for i in request("GET", "/videos", {"q": "old fox"})[2]["items"]] == ["job-old"]


def test_listing_by_status_uses_the_owner_status_index_once_the_sweeper_backfilled_it(
    api: SimpleNamespace,
) -> None:
    # Given a caller's 30 jobs that ended before jobs kept owner_status: 2 FAILED among 28 SUCCEEDED
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(30):
        at = start + timedelta(minutes=n)
        job_id = f"job-old-{n:02}"
        api.repo.create_if_absent(
            job_id, request=GOOD, source="api", origin={}, now=at, deadline_at=at, owner=CLIENT
        )
        status = JobStatus.FAILED if n in (3, 17) else JobStatus.CANCELED
        assert api.repo.transition(job_id, status, now=at).done  # the old release's end: no owner_status

    def page(query: dict[str, str]) -> dict[str, Any]:
        code, _, body = request("GET", "/videos", query)
        assert code == 200, body
        return body

    # When they list FAILED before the backfill: the filter over by_owner finds both, examining all
    before = page({"status": "FAILED"})
    assert [i["job_id"] for i in before["items"]] == ["job-old-17", "job-old-03"]
    assert before["search"]["examined"] == 30
    # and the sweeper's backfill runs (a few jobs per call here), until it is done
    written = [api.repo.backfill_owner_status(read=12) for _ in range(4)]
    assert sum(written) == 30 and written[-1] == 0
    app_module._deps.cache_clear()  # a new container: reads the backfill's marker afresh
    # Then the same listing reads the index: only the FAILED jobs are examined, in pages by cursor
    first = page({"status": "FAILED", "limit": "1"})
    assert [i["job_id"] for i in first["items"]] == ["job-old-17"]
    assert first["search"]["examined"] == 2  # only FAILED jobs are read, whatever else the caller has
    rest = page({"status": "FAILED", "limit": "5", "cursor": first["next_cursor"]})
    assert [i["job_id"] for i in rest["items"]] == ["job-old-03"] and rest["search"]["complete"] is True
    # and a job ended by this release (a cancel) is in the index from its end
    job_id = post(GOOD)[2]["job_id"]
    assert request("DELETE", f"/videos/{job_id}")[0] == 200
    canceled = page({"status": "CANCELED", "limit": "100"})
    assert canceled["items"][0]["job_id"] == job_id and len(canceled["items"]) == 29
    assert canceled["search"]["examined"] == 29
    # Another caller's index holds none of them
    assert request("GET", "/videos", {"status": "FAILED"}, caller=OTHER)[2]["items"] == []


def forged(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    "key",
    [
        {"pk": "job-x"},  # the table's key without the index's: DynamoDB refuses the start key
        {"a": "b"},
        {"pk": "job-x", "kind": "job", "created_at": "2026-01-01T00:00:00.000Z", "extra": "x"},
        {"pk": "job-x", "kind": "budget", "created_at": "2026-01-01T00:00:00.000Z"},
        {"pk": "", "kind": "job", "created_at": ""},
    ],
)
def test_a_forged_cursor_is_a_400_naming_the_cursor(api: SimpleNamespace, key: dict[str, Any]) -> None:
    api.repo.create_if_absent(
        "job-cursor",
        request=GOOD,
        source="api",
        origin={},
        now=datetime.now(UTC),
        deadline_at=datetime.now(UTC),
    )
    status, _, body = request("GET", "/videos", {"cursor": forged(key)})
    assert status == 400, body
    assert "cursor" in json.dumps(body)


# -- DELETE --------------------------------------------------------------------------------------


def test_cancel_accepted_job_stops_it_and_announces_canceled_once(api: SimpleNamespace) -> None:
    job_id = post(GOOD)[2]["job_id"]

    status, _, body = request("DELETE", f"/videos/{job_id}")
    again = request("DELETE", f"/videos/{job_id}")

    assert (status, body["status"]) == (200, "CANCELED")
    assert api.stack.job(job_id)["status"] == "CANCELED"
    [execution] = executions(api)
    assert execution["status"] == "ABORTED"
    [note] = api.stack.notifications()
    assert note["message"]["status"] == "CANCELED"
    assert note["attributes"]["status"] == "CANCELED"
    assert note["message"]["error"]["code"] == "Canceled"
    assert (again[0], again[2]["error"]["code"]) == (409, "NotCancelable")
    assert api.emu.requests() == []  # no task yet: the provider was not called


def test_cancel_pending_task_cancels_it_at_the_provider(api: SimpleNamespace) -> None:
    job_id, task_id, client = job_with_task(api, status=JobStatus.PENDING, running=False)

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert (status, body["status"]) == (200, "CANCELED")
    assert client.get_task(task_id).status == "CANCELED"
    assert [n["message"]["status"] for n in api.stack.notifications()] == ["CANCELED"]


def test_cancel_running_task_is_409_and_leaves_the_job_running(api: SimpleNamespace) -> None:
    job_id, task_id, client = job_with_task(api, status=JobStatus.RUNNING, running=True)

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert status == 409
    assert body["error"]["code"] == "NotCancelable"
    assert "RUNNING" in body["error"]["message"]
    assert api.stack.job(job_id)["status"] == "RUNNING"
    assert client.get_task(task_id).status == "RUNNING"
    assert [e["status"] for e in executions(api)] == ["RUNNING"]
    assert api.stack.notifications() == []


def test_cancel_terminal_job_is_409(api: SimpleNamespace) -> None:
    job_id = post(GOOD)[2]["job_id"]
    api.repo.transition(job_id, JobStatus.FAILED, now=datetime.now(UTC))

    status, _, body = request("DELETE", f"/videos/{job_id}")

    assert (status, body["error"]["code"]) == (409, "NotCancelable")
    assert "FAILED" in body["error"]["message"]


# -- issue 12: cancels racing a submit, crashes between writes, tenants ---------------------------

submit_app = importlib.import_module("functions.submit.app")
sweeper_app = importlib.import_module("functions.sweeper.app")


class After:
    """A real adapter, with another actor's step run right after the first call of one method: the
    interleaving under test, through the real servers (no internals patched)."""

    def __init__(self, inner: Any, method: str, step: Any) -> None:
        self._inner, self._method, self._step, self.done = inner, method, step, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method or self.done:
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if not self.done:
                self.done = True
                self._step()
            return result

        return wrapped


class Crashes:
    """An adapter whose one method dies (a killed Lambda, a timeout) before doing anything."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner, self._method = inner, method

    def __getattr__(self, name: str) -> Any:
        if name == self._method:

            def crash(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError(f"crashed in {name}")

            return crash
        return getattr(self._inner, name)


@pytest.fixture
def submitting(api: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The API and the submit function against the same stack and emulator."""
    from t2v import wiring

    monkeypatch.setenv("VIDEO_HOST_ALLOWLIST", api.emu.root_url)
    wiring.provider_deps.cache_clear()
    api.emu.config.pending_seconds = 60.0  # tasks stay PENDING: cancelable
    yield api
    wiring.provider_deps.cache_clear()


def submit(job_id: str) -> dict[str, Any]:
    record = JobsRepository(app_module._deps().settings.jobs_table).get(job_id)
    assert record is not None
    event = {"job_id": job_id, "request": record.request, "source": "api", "origin": {}, "execution": job_id}
    return submit_app.lambda_handler(event, CTX)


def provider_tasks(api: SimpleNamespace) -> list[dict[str, Any]]:
    return [t for t in api.emu.tasks() if t["prompt"] == GOOD["prompt"]]


def no_canceled_job_with_a_live_task(api: SimpleNamespace, job_id: str) -> None:
    if api.stack.job(job_id)["status"] == "CANCELED":
        assert all(t["status"] == "CANCELED" for t in provider_tasks(api)), provider_tasks(api)


def test_cancel_that_checked_before_a_create_cancels_the_task_the_create_made(submitting: Any) -> None:
    # Given a DELETE that read the job (no task, no claim), then a whole submit ran before it wrote
    job_id = post(GOOD)[2]["job_id"]
    deps = app_module._deps()
    deps.repo = After(deps.repo, "get", lambda: submit(job_id))

    # When the DELETE goes on
    status, _, body = request("DELETE", f"/videos/{job_id}")

    # Then it acted on what is there now: the PENDING task is canceled at the provider, then the job
    [task] = provider_tasks(submitting)
    assert (status, body["status"], task["status"]) == (200, "CANCELED", "CANCELED")
    no_canceled_job_with_a_live_task(submitting, job_id)
    assert [n["message"]["status"] for n in submitting.stack.notifications()] == ["CANCELED"]


def test_cancel_while_the_create_is_in_flight_is_409_and_the_job_goes_on(submitting: Any) -> None:
    # Given a DELETE that read the job, then a submit that claimed the create and is waiting for it
    import threading

    job_id = post(GOOD)[2]["job_id"]
    submitting.emu.set_faults({"rules": [{"endpoint": "create", "kind": "latency", "latency_seconds": 1.5}]})
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(submit(job_id)))

    def claimed() -> None:
        worker.start()
        deadline = time.monotonic() + 10
        while not (submitting.stack.job(job_id) or {}).get("create_claimed_at"):
            assert time.monotonic() < deadline
            time.sleep(0.02)

    deps = app_module._deps()
    deps.repo = After(deps.repo, "get", claimed)

    # When the DELETE goes on
    status, _, body = request("DELETE", f"/videos/{job_id}")
    worker.join(timeout=30)

    # Then it is refused (retry shortly), and the create's task is the job's, not orphaned
    assert (status, body["error"]["code"]) == (409, "CreateInProgress")
    [task] = provider_tasks(submitting)
    job = submitting.stack.job(job_id)
    assert (job["status"], job["task_id"]) == ("SUBMITTED", task["task_id"])
    assert results and results[0]["task_id"] == task["task_id"]


def test_cancel_before_the_claim_means_no_task_is_ever_created(submitting: Any) -> None:
    job_id = post(GOOD)[2]["job_id"]
    assert request("DELETE", f"/videos/{job_id}")[0] == 200

    with pytest.raises(Exception, match="already ended CANCELED"):
        submit(job_id)

    assert submitting.emu.create_count() == 0


def test_a_create_that_finds_its_job_canceled_cancels_its_new_task(submitting: Any) -> None:
    # Given a submit whose create is on its way when something ends the job regardless of the claim
    from t2v import wiring

    job_id = post(GOOD)[2]["job_id"]
    deps = wiring.provider_deps()
    real = deps.repo
    deps.repo = After(
        real, "update_fields", lambda: real.transition(job_id, JobStatus.CANCELED, now=datetime.now(UTC))
    )

    # When the create answers and submit tries to bind the task
    with pytest.raises(Exception, match="ended CANCELED"):
        submit(job_id)

    # Then the task it made is canceled at the provider instead of running on unseen
    [task] = provider_tasks(submitting)
    assert task["status"] == "CANCELED"
    assert submitting.stack.job(job_id).get("task_id") is None


def test_a_cancel_that_dies_before_stopping_the_execution_leaves_the_job_canceled_and_announced(
    submitting: Any,
) -> None:
    job_id = post(GOOD)[2]["job_id"]
    deps = app_module._deps()
    deps.executions = Crashes(deps.executions, "stop")

    status, _, _ = request("DELETE", f"/videos/{job_id}")

    assert status == 500
    assert submitting.stack.job(job_id)["status"] == "CANCELED"
    assert [n["message"]["status"] for n in submitting.stack.notifications()] == ["CANCELED"]


def sweep(monkeypatch: pytest.MonkeyPatch, api: SimpleNamespace) -> dict[str, Any]:
    from t2v import wiring

    monkeypatch.setenv("SWEEP_GRACE_SECONDS", "0")
    monkeypatch.setenv("STATE_MACHINE_ARN", api.machine)
    wiring.sweep_deps.cache_clear()
    try:
        return dict(sweeper_app.lambda_handler(load_event("sweeper.json"), CTX))
    finally:
        wiring.sweep_deps.cache_clear()


def test_a_job_recorded_but_never_started_is_started_by_the_sweeper(
    submitting: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API call that recorded the job and died before starting it (no Idempotency-Key to retry)
    deps = app_module._deps()
    deps.executions = Crashes(deps.executions, "start")
    assert post(GOOD)[0] == 500
    [job] = submitting.repo.list_jobs(limit=10).jobs
    assert job.status == JobStatus.ACCEPTED and executions(submitting) == []

    # When the sweeper runs
    report = sweep(monkeypatch, submitting)

    # Then the job's execution exists, started with the job's request
    assert report["started"] == [job.job_id]
    [execution] = executions(submitting)
    assert execution["name"] == job.job_id
    started = json.loads(submitting.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["request"] == job.request
    assert sweep(monkeypatch, submitting) == {
        "started": [],
        "ended": [],
        "announced": [],
        "reclaimed": [],
        "overdue": [],
        "indexed": 0,
    }


def test_a_job_whose_execution_ended_is_ended_by_the_sweeper_with_its_notification(
    submitting: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job with a PENDING task whose execution ended without finishing it
    job_id = post(GOOD)[2]["job_id"]
    submit(job_id)
    [execution] = executions(submitting)
    submitting.sfn.stop_execution(executionArn=execution["executionArn"], cause="lost")

    # When the sweeper runs
    report = sweep(monkeypatch, submitting)

    # Then the job ends FAILED with the reason, announced once, and its task no longer runs
    assert report["ended"] == [job_id]
    job = submitting.stack.job(job_id)
    assert (job["status"], job["error_code"]) == ("FAILED", "WorkflowEnded")
    assert [n["message"]["status"] for n in submitting.stack.notifications()] == ["FAILED"]
    assert [t["status"] for t in provider_tasks(submitting)] == ["CANCELED"]


def test_a_finished_job_never_announced_is_announced_by_the_sweeper(
    submitting: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = post(GOOD)[2]["job_id"]
    submitting.repo.transition(job_id, JobStatus.FAILED, now=datetime.now(UTC))  # the announcer died here

    assert sweep(monkeypatch, submitting)["announced"] == [job_id]
    assert sweep(monkeypatch, submitting)["announced"] == []
    assert [n["message"]["status"] for n in submitting.stack.notifications()] == ["FAILED"]


def test_callers_see_read_and_cancel_only_their_own_jobs(api: SimpleNamespace) -> None:
    mine = post(GOOD)[2]["job_id"]
    theirs = post(GOOD, caller=OTHER)[2]["job_id"]

    assert request("GET", f"/videos/{theirs}")[0] == 404
    assert request("DELETE", f"/videos/{theirs}")[0] == 404
    assert [j["job_id"] for j in request("GET", "/videos")[2]["items"]] == [mine]
    assert [j["job_id"] for j in request("GET", "/videos", caller=OTHER)[2]["items"]] == [theirs]
    assert api.stack.job(theirs)["status"] == "ACCEPTED"


def test_an_admin_sees_and_cancels_every_job(api: SimpleNamespace) -> None:
    mine = post(GOOD)[2]["job_id"]
    theirs = post(GOOD, caller=OTHER)[2]["job_id"]

    listed = {j["job_id"] for j in request("GET", "/videos", caller=ADMIN)[2]["items"]}
    assert listed == {mine, theirs}
    assert request("GET", f"/videos/{theirs}", caller=ADMIN)[0] == 200
    assert request("DELETE", f"/videos/{theirs}", caller=ADMIN)[2]["status"] == "CANCELED"


def test_idempotency_keys_belong_to_their_caller(api: SimpleNamespace) -> None:
    first = post(GOOD, key="shared-key")
    other = post({**GOOD, "prompt": "another caller's video"}, key="shared-key", caller=OTHER)

    assert (first[0], other[0]) == (202, 202)
    assert first[2]["job_id"] != other[2]["job_id"]
    assert api.stack.job(other[2]["job_id"])["request"]["prompt"] == "another caller's video"
    assert post(GOOD, key="shared-key") == first


def test_a_request_without_an_iam_identity_is_403(api: SimpleNamespace) -> None:
    event = load_event("api_get_video.json")
    event["requestContext"]["identity"]["userArn"] = None
    status, _, body = call(event)
    assert (status, body["error"]["code"]) == (403, "Forbidden")


def slots_booked(api: SimpleNamespace) -> int:
    """Queries booked in the shared one-second ledger (`slot#<second>` items)."""
    items = boto3.resource("dynamodb").Table(api.stack.table).scan()["Items"]
    return sum(int(i["n"]) for i in items if str(i["pk"]).startswith("slot#"))  # type: ignore[call-overload]


def submitted_job(api: SimpleNamespace) -> tuple[str, str, DashScopeClient]:
    """A job started through the API whose task waits at the provider: SUBMITTED, as push leaves it."""
    api.emu.config.pending_seconds, api.emu.config.running_seconds = 60.0, 60.0
    client = DashScopeClient(api.stack.api_key, base_url=api.emu.base_url)
    created = client.create_task(VideoRequest(prompt="a cat under the moon", size="640*360"))
    job_id = post(GOOD)[2]["job_id"]
    bound = api.tasks.record_task(
        job_id, task_id=created.task_id, request_id=created.request_id, now=datetime.now(UTC)
    )
    assert bound.done and api.repo.get(job_id).status == JobStatus.SUBMITTED
    return job_id, created.task_id, client


def task_reads(api: SimpleNamespace, task_id: str) -> int:
    return sum(1 for r in api.emu.requests() if r["method"] == "GET" and r["task_id"] == task_id)


def test_reading_a_job_shows_pending_and_running_as_the_provider_says(api: SimpleNamespace) -> None:
    # Given a job whose workflow sleeps (push mode) while its task waits at the provider
    job_id, task_id, client = submitted_job(api)
    reads_before = task_reads(api, task_id)
    # When its owner reads it, the API looks at the provider itself
    code, _, view = request("GET", f"/videos/{job_id}")
    assert (code, view["status"], view["cancellable"]) == (200, "PENDING", True)
    assert task_reads(api, task_id) - reads_before == 1
    # and again once the task runs and the few seconds between looks have passed
    task = api.emu.task(task_id)
    task.pending_seconds = 0.0  # the provider starts the task now
    wait_for(client, task_id, "RUNNING")
    boto3.resource("dynamodb").Table(api.stack.table).update_item(
        Key={"pk": job_id},
        UpdateExpression="SET looked_at = :long_ago",
        ExpressionAttributeValues={":long_ago": "2000-01-01T00:00:00.000Z"},
    )
    reads_before = task_reads(api, task_id)
    code, _, view = request("GET", f"/videos/{job_id}")
    # Then RUNNING shows, recorded in the history, and cancel is no longer offered
    assert (view["status"], view["cancellable"]) == ("RUNNING", False)
    assert [h["status"] for h in view["history"]][-2:] == ["PENDING", "RUNNING"]
    assert api.repo.get(job_id).status == JobStatus.RUNNING
    # Each look was one provider query, booked in the shared ledger; no workflow was woken
    assert task_reads(api, task_id) - reads_before == 1
    assert slots_booked(api) == 2
    assert len(executions(api)) == 1  # the POST's own


def test_reads_within_a_few_seconds_look_once_and_the_list_never_looks(api: SimpleNamespace) -> None:
    job_id, task_id, _ = submitted_job(api)
    before = task_reads(api, task_id)
    for _ in range(5):
        assert request("GET", f"/videos/{job_id}")[2]["status"] == "PENDING"
    assert task_reads(api, task_id) - before == 1
    assert slots_booked(api) == 1
    request("GET", "/videos")
    assert task_reads(api, task_id) - before == 1


def test_a_slow_provider_holds_a_read_up_for_seconds_only(api: SimpleNamespace) -> None:
    # Given a job whose task waits at a provider that answers queries after 10 s
    job_id, _, _ = submitted_job(api)
    api.emu.set_faults({"rules": [{"endpoint": "query", "kind": "latency", "latency_seconds": 10.0}]})
    # When its owner reads it
    began = time.monotonic()
    code, _, view = request("GET", f"/videos/{job_id}")
    # Then the read answers within the look's few seconds, showing what the record says
    assert (code, view["status"]) == (200, "SUBMITTED")
    assert time.monotonic() - began < 6.0
    api.emu.set_faults({"rules": []})
