"""The REST API handler with in-memory fakes: routing, validation, error mapping, OpenAPI staleness."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from t2v.api.edge import ReadSide
from t2v.config import ApiSettings, ConfigError
from t2v.errors import ProviderAuthError, RetryableProviderError
from t2v.jobs import JobRecord, derive_job_id
from t2v.schedule import GenerationTier, TierHistory
from t2v.times import iso
from t2v.usecases.announce import AnnounceDeps
from t2v.usecases.videos import ApiDeps, Caller, scoped_key

from tests.conftest import ROOT, lambda_context, load_event
from tests.fakes import (
    FakeExecutions,
    FakeJobs,
    FakeNotifier,
    FakeProvider,
    FakeRepos,
    FakeStore,
    MemoryPollStats,
)

app_module = importlib.import_module("functions.api.app")

NOW = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
ENV = {
    "JOBS_TABLE": "jobs",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:VideoStateMachine",
    "OUTPUT_BUCKET": "videos-bucket",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:outcomes",
    "DASHSCOPE_SECRET_ID": "t2v/key",
    "INPUT_IMAGES_BUCKET": "videos-bucket",
}
CTX = lambda_context("api", request_id="req-unit")


@dataclass
class World:
    repos: FakeRepos
    executions: FakeExecutions
    provider: FakeProvider
    notifier: FakeNotifier
    deps: ApiDeps
    reads: ReadSide

    @property
    def repo(self) -> FakeJobs:
        return self.repos.jobs


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    settings = ApiSettings.from_env(ENV)
    repos, executions, provider, notifier = FakeRepos(), FakeExecutions(), FakeProvider(), FakeNotifier()
    outcomes = AnnounceDeps(
        repo=repos.jobs, announcements=repos.announcements, notifier=notifier, clock=lambda: NOW
    )
    deps = ApiDeps(
        repo=repos.jobs,
        budget=repos.budget,
        keys=repos.keys,
        executions=executions,
        provider=lambda: provider,
        outcomes=outcomes,
        settings=settings,
        clock=lambda: NOW,
    )
    reads = ReadSide(store=FakeStore(), timings=MemoryPollStats())
    monkeypatch.setattr(app_module, "_deps", lambda: deps)
    monkeypatch.setattr(app_module, "_reads", lambda: reads)
    return World(repos, executions, provider, notifier, deps, reads)


# -- helpers -----------------------------------------------------------------------------------


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app_module.lambda_handler(event, CTX)
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return response["statusCode"], headers, json.loads(response["body"]) if response["body"] else {}


def post(
    body: Any, *, key: str | None = None, raw: str | None = None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    event = load_event("api_post_videos.json")
    event["body"] = raw if raw is not None else json.dumps(body)
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Idempotency-Key", None)
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    return call(event)


def request(
    method: str, path: str, query: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    event = load_event("api_get_video.json")
    event.update(
        httpMethod=method,
        path=path,
        pathParameters=None,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()},
    )
    return call(event)


def seed_job(repo: FakeJobs, job_id: str, status: str = "ACCEPTED", minutes: int = 0, **fields: Any) -> None:
    repo.create_if_absent(
        job_id,
        request={"prompt": "p"},
        source="s3",
        origin={},
        now=NOW + timedelta(minutes=minutes),
        deadline_at=NOW + timedelta(hours=2),
        owner=CALLER,
    )
    repo.items[job_id].update(status=status, **fields)


GOOD = {"prompt": "一只小猫在月光下奔跑", "size": "640*360", "duration": 5}
CALLER = "arn:aws:iam::123456789012:user/video-client"  # the event corpus's caller


# -- POST /videos ------------------------------------------------------------------------------


def test_post_records_the_job_and_starts_one_execution(world: World) -> None:
    status, headers, body = post(GOOD, key="k-1")

    job_id = derive_job_id("api", scoped_key(Caller(CALLER), "k-1"))
    assert status == 202
    # Links carry the stage (the corpus event came through /Prod), so following them works
    assert body == {"job_id": job_id, "status": "ACCEPTED", "links": {"self": f"/v1/videos/{job_id}"}}
    assert headers["Location"] == f"/v1/videos/{job_id}"
    assert world.repo.items[job_id]["status"] == "ACCEPTED"
    assert world.repo.items[job_id]["source"] == "api"
    payload = world.executions.started[job_id]
    assert payload["request"] == {
        **GOOD,
        "audio": False,
        "watermark": False,
        "model": "pixverse/pixverse-v5.6-t2v",
    }
    assert payload["origin"] == {
        "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "caller": "arn:aws:iam::123456789012:user/video-client",
    }
    assert (payload["source"], payload["start_delay_seconds"]) == ("api", 0)


def test_retry_with_the_same_key_returns_the_same_job_and_starts_nothing_new(world: World) -> None:
    first = post(GOOD, key="same")
    second = post(GOOD, key="same")

    assert first == second
    assert len(world.executions.started) == 1


def test_same_key_with_another_body_is_a_conflict(world: World) -> None:
    post(GOOD, key="k")
    status, _, body = post({**GOOD, "prompt": "another video"}, key="k")

    assert status == 409
    assert body["error"]["code"] == "IdempotencyKeyReused"
    assert "different request body" in body["error"]["message"]
    assert len(world.executions.started) == 1


def test_without_a_key_every_post_is_a_new_job(world: World) -> None:
    assert post(GOOD)[2]["job_id"] != post(GOOD)[2]["job_id"]
    assert len(world.executions.started) == 2


@pytest.mark.parametrize(
    ("body", "raw", "field"),
    [
        ({**GOOD, "size": "1000*1000"}, None, "size"),
        ({**GOOD, "size": "1920*1080", "duration": 10}, None, "duration"),
        ({**GOOD, "duration": 7}, None, "duration"),
        ({**GOOD, "duration": "five"}, None, "duration"),
        ({**GOOD, "seed": -1}, None, "seed"),
        ({**GOOD, "seed": 2_147_483_648}, None, "seed"),
        ({**GOOD, "seed": True}, None, "seed"),
        ({**GOOD, "prompt": "x" * 2049}, None, "prompt"),
        ({**GOOD, "prompt": ""}, None, "prompt"),
        ({**GOOD, "prompt": "   "}, None, "prompt"),
        ({"size": "640*360"}, None, "prompt"),
        ({**GOOD, "audio": "yes"}, None, "audio"),
        ({**GOOD, "resolution": "720P"}, None, "resolution"),
        (None, "{not json", "body"),
        (None, "", "request"),
        ([GOOD], None, "request"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(
    world: World, body: Any, raw: str | None, field: str
) -> None:
    status, _, answer = post(body, raw=raw)

    assert status == 400
    assert answer["error"]["code"] == "InvalidRequest"
    assert field in [f["field"] for f in answer["error"]["fields"]]
    assert all(f["message"] for f in answer["error"]["fields"])
    assert world.executions.started == {}


def test_a_2049_character_prompt_is_refused_with_the_limit(world: World) -> None:
    _, _, answer = post({**GOOD, "prompt": "长" * 2049})
    assert "at most 2048" in answer["error"]["fields"][0]["message"]


def test_an_empty_idempotency_key_is_400(world: World) -> None:
    status, _, body = post(GOOD, key="")
    assert status == 400
    assert body["error"]["fields"][0]["field"].lower() == "idempotency-key"


def test_a_non_json_content_type_is_415(world: World) -> None:
    event = load_event("api_post_videos.json")
    event["headers"]["Content-Type"] = "text/plain"
    event["multiValueHeaders"]["Content-Type"] = ["text/plain"]
    status, _, body = call(event)
    assert (status, body["error"]["code"]) == (415, "UnsupportedMediaType")


# -- routing and GET ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("PUT", "/videos"), ("PATCH", "/videos/job-1")]
)
def test_unknown_routes_are_404_json(world: World, method: str, path: str) -> None:
    status, _, body = request(method, path)
    assert status == 404
    assert body["error"]["code"] == "NotFound"
    assert path in body["error"]["message"]


@pytest.mark.parametrize("job_id", ["job-unknown", "idem%23k"])
def test_get_unknown_job_is_404(world: World, job_id: str) -> None:
    world.repos.keys.remember_idempotency_key("k", "job-x", now=NOW)
    status, _, body = request("GET", f"/videos/{job_id}")
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_get_succeeded_job_has_its_s3_location_and_a_presigned_url(world: World) -> None:
    seed_job(
        world.repo,
        "job-ok",
        "SUCCEEDED",
        s3_bucket="videos-bucket",
        s3_key="videos/job-ok.mp4",
        bytes=1234,
        sha256="ab" * 32,
        task_id="t-1",
        usage={"duration": 5},
    )

    status, _, body = request("GET", "/videos/job-ok")

    assert status == 200
    assert body["status"] == "SUCCEEDED"
    assert body["task_id"] == "t-1"
    assert body["usage"] == {"duration": 5}
    assert body["video"]["uri"] == "s3://videos-bucket/videos/job-ok.mp4"
    assert body["video"]["url"].startswith("https://videos-bucket.s3.example/videos/job-ok.mp4")
    assert body["video"]["expires_in"] == 900


def test_get_failed_job_carries_the_error_and_no_video(world: World) -> None:
    seed_job(
        world.repo,
        "job-bad",
        "FAILED",
        error_code="DataInspectionFailed",
        error_message="unsafe",
        error_request_id="rq-9",
    )
    _, _, body = request("GET", "/videos/job-bad")
    assert body["error"] == {"code": "DataInspectionFailed", "message": "unsafe", "request_id": "rq-9"}
    assert body["video"] is None


# -- GET /videos -------------------------------------------------------------------------------


def test_list_filters_by_status_and_pages_with_an_opaque_cursor(world: World) -> None:
    for n in range(7):
        seed_job(world.repo, f"job-{n}", "SUCCEEDED" if n % 2 else "FAILED", minutes=n)

    seen: list[str] = []
    query: dict[str, str] = {"status": "SUCCEEDED", "limit": "2"}
    for _ in range(10):
        status, _, page = request("GET", "/videos", query)
        assert status == 200
        assert len(page["items"]) <= 2
        seen += [item["job_id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        query = {**query, "cursor": page["next_cursor"]}

    assert seen == ["job-5", "job-3", "job-1"]  # newest first, only SUCCEEDED, each once


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": ""}, "cursor"),  # the repository would read it as no cursor
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-02-03", "until": "2026-02-02T23:00:00Z"}, "until"),  # before since
        ({"q": " "}, "q"),
        ({"q": "a b c d e f"}, "q"),  # over five words
        ({"q": "x" * 201}, "q"),
        ({"order": "random"}, "order"),
    ],
)
def test_list_rejects_bad_queries(world: World, query: dict[str, str], field: str) -> None:
    status, _, body = request("GET", "/videos", query)
    assert status == 400
    assert [f["field"] for f in body["error"]["fields"]] == [field]


def listing(query: dict[str, str]) -> list[str]:
    """Every job id a listing returns, following next_cursor to its end."""
    seen: list[str] = []
    for _ in range(50):
        status, _, page = request("GET", "/videos", query)
        assert status == 200, page
        seen += [item["job_id"] for item in page["items"]]
        if not page["next_cursor"]:
            return seen
        query = {**query, "cursor": page["next_cursor"]}
    raise AssertionError("the listing never ended")


def test_list_by_date_range_in_either_order(world: World) -> None:
    for n in range(6):  # one job every 10 minutes from 10:00
        seed_job(world.repo, f"job-{n}", minutes=10 * n)
    day = {"since": "2026-02-03T10:10:00Z", "until": "2026-02-03T10:40:00Z", "limit": "2"}
    assert listing(day) == ["job-3", "job-2", "job-1"]  # until is exclusive
    assert listing({**day, "order": "oldest"}) == ["job-1", "job-2", "job-3"]
    assert listing({"since": "2026-02-03T11:10:00+01:00"}) == ["job-5", "job-4", "job-3", "job-2", "job-1"]
    assert listing({"until": "2026-02-03"}) == []  # a date is its 00:00 UTC
    assert listing({"since": "2026-02-03"})[-1] == "job-0"


def test_search_by_prompt_words_any_case_says_what_it_examined(world: World) -> None:
    prompts = ["A red fox in the snow", "a cat", "RED FOX running", "一只小猫在月光下奔跑", "fox"]
    for n, prompt in enumerate(prompts):
        seed_job(world.repo, f"job-{n}", minutes=n)
        world.repo.items[f"job-{n}"].update(request={"prompt": prompt}, prompt_lc=prompt.lower())
    status, _, page = request("GET", "/videos", {"q": "Red fox"})
    assert status == 200
    assert [i["job_id"] for i in page["items"]] == ["job-2", "job-0"]
    assert page["search"] == {
        "examined": 5,
        "bound": 1000,
        "complete": True,
        "note": "examined 5 jobs: all in the range",
    }
    assert [i["job_id"] for i in request("GET", "/videos", {"q": "小猫"})[2]["items"]] == ["job-3"]
    assert request("GET", "/videos")[2]["search"] is None  # nothing filtered: nothing to say


def test_a_sparse_search_stops_at_its_bound_and_reads_on_by_cursor(world: World) -> None:
    # Given 1,200 jobs of which only the oldest two match
    for n in range(1200):
        seed_job(world.repo, f"job-{n:04}", "FAILED" if n < 2 else "SUCCEEDED", minutes=n)
    status, _, page = request("GET", "/videos", {"status": "FAILED", "limit": "5"})
    # Then the first request examines its bound, finds none, and says so
    assert (status, page["items"]) == (200, [])
    assert page["search"]["examined"] == 1000 and page["search"]["complete"] is False
    assert "the bound of one request (1000)" in page["search"]["note"]
    # and the cursor searches on to the rest
    query = {"status": "FAILED", "limit": "5", "cursor": page["next_cursor"]}
    status, _, page = request("GET", "/videos", query)
    assert [i["job_id"] for i in page["items"]] == ["job-0001", "job-0000"]
    assert page["search"]["complete"] is True and page["next_cursor"] is None


def test_a_filtered_page_that_fills_up_reads_on_right_after_its_last_job(world: World) -> None:
    for n in range(30):
        seed_job(world.repo, f"job-{n:02}", "FAILED" if n % 3 == 0 else "SUCCEEDED", minutes=n)
    assert listing({"status": "FAILED", "limit": "4"}) == [f"job-{n:02}" for n in range(27, -1, -3)]


# -- DELETE /videos/{id} ------------------------------------------------------------------------


def test_cancel_accepted_job_stops_the_execution_and_announces_once(world: World) -> None:
    seed_job(world.repo, "job-a")

    status, _, body = request("DELETE", "/videos/job-a")
    again = request("DELETE", "/videos/job-a")

    assert (status, body["status"]) == (200, "CANCELED")
    assert body["error"]["code"] == "Canceled"
    assert world.executions.stopped == ["job-a"]
    assert [m["status"] for m in world.notifier.messages] == ["CANCELED"]
    assert world.provider.canceled == []
    assert again[0] == 409
    assert again[2]["error"]["code"] == "NotCancelable"


def test_cancel_whose_write_answer_was_lost_is_still_a_cancel_announced_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 300-job soak's finding: DynamoDB applied the CANCELED write, its answer was lost, and the
    SDK's retry failed the condition. The API answered 409 "already ended CANCELED" to the user who had
    just canceled the job, and nothing announced it until the sweeper came."""
    seed_job(world.repo, "job-l")
    transition = world.repo.transition

    def lost_answer(job_id: str, new: Any, **kwargs: Any) -> Any:
        transition(job_id, new, **kwargs)  # the first attempt applies
        return transition(job_id, new, **kwargs)  # the retry's answer: condition failed

    monkeypatch.setattr(world.repo, "transition", lost_answer)

    status, _, body = request("DELETE", "/videos/job-l")

    assert (status, body["status"]) == (200, "CANCELED")
    assert [m["status"] for m in world.notifier.messages] == ["CANCELED"]
    assert world.executions.stopped == ["job-l"]


def test_cancel_reads_the_job_once_and_answers_with_the_job_it_ended(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_job(world.repo, "job-o", "PENDING", task_id="t-o")
    world.provider.add_task("t-o", "PENDING")
    reads: list[str] = []
    get = world.repo.get
    monkeypatch.setattr(world.repo, "get", lambda job_id: reads.append(job_id) or get(job_id))

    status, _, body = request("DELETE", "/videos/job-o")

    # The answer is the job as the cancel's writes left it (ended, then announced), with no read after them
    assert reads == ["job-o"]
    assert (status, body["status"], body["error"]["code"]) == (200, "CANCELED", "Canceled")
    assert body == request("GET", "/videos/job-o")[2]
    assert [m["status"] for m in world.notifier.messages] == ["CANCELED"]


def test_cancel_pending_task_cancels_it_at_the_provider(world: World) -> None:
    seed_job(world.repo, "job-p", "PENDING", task_id="t-p")
    world.provider.add_task("t-p", "PENDING")

    status, _, body = request("DELETE", "/videos/job-p")

    assert (status, body["status"]) == (200, "CANCELED")
    assert world.provider.canceled == ["t-p"]


def test_cancel_running_task_is_409_and_changes_nothing(world: World) -> None:
    seed_job(world.repo, "job-r", "RUNNING", task_id="t-r")
    world.provider.add_task("t-r", "RUNNING")

    status, _, body = request("DELETE", "/videos/job-r")

    assert status == 409
    assert body["error"]["code"] == "NotCancelable"
    assert "RUNNING" in body["error"]["message"]
    assert world.repo.items["job-r"]["status"] == "RUNNING"
    assert world.executions.stopped == []
    assert world.notifier.messages == []


def test_cancel_after_an_earlier_provider_cancel_still_finishes_the_job(world: World) -> None:
    seed_job(world.repo, "job-c", "PENDING", task_id="t-c")
    world.provider.add_task("t-c", "CANCELED")  # canceled before, but the job was never updated
    assert request("DELETE", "/videos/job-c")[2]["status"] == "CANCELED"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            ProviderAuthError(
                "Invalid API-key provided.", http_status=401, provider_code="InvalidApiKey", request_id="rq-1"
            ),
            502,
            "InvalidApiKey",
        ),
        (RetryableProviderError("GET: ConnectError"), 503, "ProviderRetryable"),
    ],
)
def test_provider_errors_on_cancel(world: World, error: Exception, status: int, code: str) -> None:
    seed_job(world.repo, "job-e", "PENDING", task_id="t-e")
    world.provider.fail = error

    answer = request("DELETE", "/videos/job-e")

    assert (answer[0], answer[2]["error"]["code"]) == (status, code)
    assert world.repo.items["job-e"]["status"] == "PENDING"


def test_cancel_while_the_task_is_being_created_asks_to_retry(world: World) -> None:
    seed_job(world.repo, "job-x", create_claimed_at=iso(NOW - timedelta(seconds=5)))
    status, _, body = request("DELETE", "/videos/job-x")
    assert (status, body["error"]["code"]) == (409, "CreateInProgress")


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"])
def test_cancel_terminal_job_is_409(world: World, status: str) -> None:
    seed_job(world.repo, "job-t", status)
    answer = request("DELETE", "/videos/job-t")
    assert (answer[0], answer[2]["error"]["code"]) == (409, "NotCancelable")


def test_unexpected_errors_are_500_json_without_details(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(job_id: str) -> JobRecord:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(world.repo, "get", boom)
    status, _, body = request("GET", "/videos/job-1")
    assert (status, body) == (500, {"error": {"code": "InternalError", "message": "internal error"}})


# -- configuration and OpenAPI -------------------------------------------------------------------


def test_settings_name_the_missing_variable() -> None:
    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN"):
        ApiSettings.from_env({k: v for k, v in ENV.items() if k != "STATE_MACHINE_ARN"})
    with pytest.raises(ConfigError, match="STATE_MACHINE_ARN"):
        ApiSettings.from_env({**ENV, "STATE_MACHINE_ARN": "arn:aws:sns:us-east-1:123456789012:x"})


def test_committed_openapi_document_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_openapi", ROOT / "tools" / "gen_openapi.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)

    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")

    assert gen.render() == committed, "docs/openapi.json is stale: run .venv/bin/python tools/gen_openapi.py"
    document = json.loads(committed)
    assert set(document["paths"]) == {
        "/videos",
        "/videos/{job_id}",
        "/usage",
        "/models",
        "/batches",
        "/batches/{batch_id}",
        "/batches/{batch_id}/results",
    }
    assert "422" not in json.dumps(document["paths"])


def test_events_corpus_matches_the_routes() -> None:
    assert load_event("api_post_videos.json")["resource"] == "/videos"
    assert Path(ROOT / "events" / "api_get_video.json").exists()


# -- the user's view: origin, progress, links, strictness, the daily budget ---------------------


def test_a_job_shows_its_origin_file_and_line(world: World) -> None:
    seed_job(world.repo, "job-file", "SUBMITTED")
    world.repo.items["job-file"]["origin"] = {
        "bucket": "b",
        "key": "prompts/a.jsonl",
        "version": "v-1",
        "line": 3,
    }

    _, _, body = request("GET", "/videos/job-file")

    assert body["origin"] == {
        "door": "s3",
        "bucket": "b",
        "key": "prompts/a.jsonl",
        "version": "v-1",
        "line": 3,
        "event_id": None,
        "event_source": None,
        "event_time": None,
        "request_id": None,
        "caller": None,
    }
    assert body["links"] == {"self": "/v1/videos/job-file"}


def test_an_api_job_shows_its_caller(world: World) -> None:
    status, _, accepted = post(GOOD)
    assert status == 202
    _, _, body = request("GET", f"/videos/{accepted['job_id']}")
    assert body["origin"]["door"] == "api"
    assert body["origin"]["request_id"]
    assert body["origin"]["caller"]


def test_progress_comes_from_the_tiers_timings_and_the_providers_queue_time(world: World) -> None:
    # Given a 360P 5 s job submitted 10 s ago, whose task the provider says queued 4 s
    ten_ago = iso(NOW - timedelta(seconds=10))
    seed_job(world.repo, "job-run", "RUNNING", created_at=ten_ago, submitted_at=ten_ago, queued_seconds=4.0)
    world.repo.items["job-run"]["request"] = {"prompt": "p", "size": "640*360", "duration": 5}
    world.reads.timings.histories[GenerationTier.of("640*360", 5, False)] = TierHistory(
        queue=(1.0,), run=(16.0,)
    )

    _, _, body = request("GET", "/videos/job-run")

    # Then it should be done 4 + 16 s after submission: 10 s from now, half way
    assert body["progress"] == {
        "phase": "running",
        "expected_finish_at": iso(NOW + timedelta(seconds=10)),
        "fraction": 0.5,
        "capacity": None,
    }


def test_progress_of_ended_jobs_and_unknowns_stay_null(world: World) -> None:
    seed_job(world.repo, "job-done", "SUCCEEDED", finished_at=iso(NOW))
    seed_job(world.repo, "job-failed", "FAILED", finished_at=iso(NOW))
    seed_job(world.repo, "job-dl", "DOWNLOADING")
    assert request("GET", "/videos/job-done")[2]["progress"] == {
        "phase": "done",
        "expected_finish_at": iso(NOW),
        "fraction": 1.0,
        "capacity": None,
    }
    assert request("GET", "/videos/job-failed")[2]["progress"]["fraction"] is None
    assert request("GET", "/videos/job-dl")[2]["progress"] == {
        "phase": "downloading",
        "expected_finish_at": None,
        "fraction": None,
        "capacity": None,
    }


def test_the_list_carries_each_succeeded_jobs_video(world: World) -> None:
    seed_job(world.repo, "job-ok", "SUCCEEDED", s3_bucket="b", s3_key="videos/job-ok.mp4")
    seed_job(world.repo, "job-bad", "FAILED", minutes=1)
    _, _, page = request("GET", "/videos")
    videos = {item["job_id"]: item["video"] for item in page["items"]}
    assert videos["job-bad"] is None
    assert videos["job-ok"]["url"].startswith("https://b.s3.example/videos/job-ok.mp4")
    assert all(item["links"]["self"].startswith("/v1/videos/") for item in page["items"])


def test_a_string_duration_is_400_naming_the_field(world: World) -> None:
    status, _, body = post({**GOOD, "duration": "5"})
    assert status == 400
    assert body["error"]["fields"] == [
        {"field": "duration", "message": "duration must be a JSON integer number of seconds: 5, 8 or 10"}
    ]
    assert world.executions.started == {}


def test_a_request_over_the_days_remaining_budget_is_refused_at_the_door(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 12 s daily budget of which 4 s are left
    monkeypatch.setattr(
        world.deps, "settings", world.deps.settings.model_copy(update={"daily_budget_seconds": 12})
    )
    world.repos.table.budget[f"budget#{NOW:%Y-%m-%d}"] = 8

    # When a 5 s video is asked for
    status, headers, body = post(GOOD)

    # Then it is refused with 429, naming duration, until the budget renews at midnight UTC
    assert status == 429
    assert body["error"]["code"] == "BudgetExceeded"
    assert body["error"]["fields"][0]["field"] == "duration"
    assert "5 billed seconds do not fit the 4 s left" in body["error"]["fields"][0]["message"]
    midnight = datetime.combine(NOW.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert headers["Retry-After"] == str(int((midnight - NOW).total_seconds()))
    assert world.executions.started == {}
    assert not [k for k in world.repo.items if k.startswith("job-")]

    # And so is a longer one; with room again it is accepted, and its retry is never refused later
    status, _, _ = post({**GOOD, "duration": 8}, key="k-fits")
    assert status == 429
    world.repos.table.budget[f"budget#{NOW:%Y-%m-%d}"] = 0
    assert post(GOOD, key="k-retry")[0] == 202
    world.repos.table.budget[f"budget#{NOW:%Y-%m-%d}"] = 12
    assert post(GOOD, key="k-retry")[0] == 202


# -- per-caller budgets: the door's refusal names the budget, GET /usage, a cancel's refund ------


def with_budgets(world: World, monkeypatch: pytest.MonkeyPatch, *, account: int, caller: int) -> str:
    update = {"daily_budget_seconds": account, "caller_daily_budget_seconds": caller}
    monkeypatch.setattr(world.deps, "settings", world.deps.settings.model_copy(update=update))
    return f"{NOW:%Y-%m-%d}"


def test_the_door_names_the_callers_budget_or_the_accounts_with_what_is_left_and_when_it_renews(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = with_budgets(world, monkeypatch, account=100, caller=12)
    counters = world.repos.table.budget
    counters[f"budget#{day}#{CALLER}"] = 8

    status, headers, body = post(GOOD)
    assert status == 429
    message = body["error"]["fields"][0]["message"]
    assert "the 4 s left of your daily budget (CallerDailyBudgetSeconds 12)" in message
    assert "renews at 2026-02-04T00:00:00.000Z" in message
    assert headers["Retry-After"] == str(14 * 3600)

    # Another caller's spending does not count against this one; the account's does
    counters[f"budget#{day}#{CALLER}"] = 0
    counters[f"budget#{day}"] = 97
    status, _, body = post(GOOD)
    assert status == 429
    assert (
        "the 3 s left of the account's daily budget (DailyBudgetSeconds 100)"
        in body["error"]["fields"][0]["message"]
    )


def test_usage_shows_the_callers_day_and_the_accounts(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the caller charged 15 s today and got 5 back; everyone together charged 40 s
    day = with_budgets(world, monkeypatch, account=100, caller=20)
    world.repos.table.budget.update({f"budget#{day}#{CALLER}": 10, f"budget#{day}": 35})
    world.repos.table.refunded.update({f"budget#{day}#{CALLER}": 5, f"budget#{day}": 5})

    event = load_event("api_get_usage.json")
    status, _, body = call(event)

    assert status == 200
    assert {k: body[k] for k in ("day", "spent_seconds", "refunded_seconds", "left_seconds")} == {
        "day": day,
        "spent_seconds": 15,
        "refunded_seconds": 5,
        "left_seconds": 10,
    }
    assert (body["caller_budget_seconds"], body["account_budget_seconds"]) == (20, 100)
    assert body["renews_at"] == "2026-02-04T00:00:00.000Z"
    assert body["account"] == {
        "spent_seconds": 40,
        "refunded_seconds": 5,
        "left_seconds": 65,
        "budget_seconds": 100,
    }
    assert body["you"]["left_seconds"] == 10 and body["caller"] == CALLER


def test_usage_without_caps_shows_no_limit(world: World) -> None:
    status, _, body = call(load_event("api_get_usage.json"))
    assert status == 200
    assert (body["left_seconds"], body["account"]["left_seconds"], body["spent_seconds"]) == (None, None, 0)


def test_canceling_a_pending_task_gives_its_charge_back_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a charged job whose task is PENDING, and refunds on
    day = with_budgets(world, monkeypatch, account=100, caller=20)
    monkeypatch.setattr(world.deps.outcomes, "refunds", world.repos.budget)
    seed_job(
        world.repo, "job-p", "PENDING", task_id="t-p", budget_day=day, billed_seconds=5, budget_owner=CALLER
    )
    world.repos.table.budget.update({f"budget#{day}#{CALLER}": 5, f"budget#{day}": 5})
    world.provider.add_task("t-p", "PENDING")

    # When it is canceled, and the cancel is sent again
    assert request("DELETE", "/videos/job-p")[0] == 200
    assert request("DELETE", "/videos/job-p")[0] == 409

    # Then both counters are whole again, refunded once
    assert world.repos.table.budget == {f"budget#{day}#{CALLER}": 0, f"budget#{day}": 0}
    assert world.repos.table.refunded == {f"budget#{day}#{CALLER}": 5, f"budget#{day}": 5}
    assert world.repo.items["job-p"]["billing_outcome"] == "canceled_pending"


# -- model families (issue 23) -----------------------------------------------------------------


def test_get_models_lists_the_registry(world: World) -> None:
    status, _, body = request("GET", "/models")

    assert status == 200
    assert [m["model"] for m in body["models"]] == [
        "pixverse/pixverse-v5.6-t2v",
        "pixverse/pixverse-v5.6-it2v",
        "pixverse/pixverse-v5.6-kf2v",
        "pixverse/pixverse-v6-it2v",
    ]
    assert "choices" not in body["models"][1]["fields"]["media"]  # an optional key is absent, not null


def test_post_an_it2v_request_starts_it_in_the_providers_shape(world: World) -> None:
    it2v = {
        "model": "pixverse/pixverse-v5.6-it2v",
        "prompt": "waves",
        "media": [{"type": "image_url", "url": "https://example.com/a.png"}],
        "resolution": "540P",
    }
    status, _, body = post(it2v)

    assert status == 202
    started = world.executions.started[body["job_id"]]["request"]
    assert started["media"] == it2v["media"]
    assert (started["model"], started["resolution"]) == (it2v["model"], "540P")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "model": "pixverse/pixverse-v5.6-it2v",
                "media": [{"type": "image_url", "url": "https://a.example/b.png"}],
                "size": "1280*720",
            },
            "size",
        ),
        (
            {
                "model": "pixverse/pixverse-v5.6-kf2v",
                "prompt": "p",
                "media": [{"type": "first_frame", "url": "https://a.example/b.png"}],
            },
            "media",
        ),
        ({"model": "nope", "prompt": "p"}, "model"),
    ],
)
def test_post_refuses_a_family_rule_naming_the_field(world: World, body: dict[str, Any], field: str) -> None:
    status, _, answer = post(body)

    assert status == 400
    assert [f["field"] for f in answer["error"]["fields"]] == [field]
    assert world.executions.started == {}


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("inputs/123456789012/user/video-client/cat.png", True),
        ("inputs/123456789012/user/someone-else/cat.png", False),
        ("prompts/cat.png", False),
    ],
)
def test_a_caller_names_only_images_in_its_own_folder(world: World, key: str, accepted: bool) -> None:
    status, _, answer = post(
        {
            "model": "pixverse/pixverse-v5.6-it2v",
            "media": [{"type": "image_url", "url": f"s3://videos-bucket/{key}"}],
        }
    )

    assert (status == 202) is accepted
    if not accepted:
        assert [f["field"] for f in answer["error"]["fields"]] == ["media.0.url"]
        assert world.executions.started == {}


def test_a_job_view_shows_its_images_with_a_url_to_show_them(world: World) -> None:
    url = "s3://videos-bucket/inputs/123456789012/user/video-client/cat.png"
    status, _, body = post(
        {"model": "pixverse/pixverse-v5.6-it2v", "media": [{"type": "image_url", "url": url}]}
    )
    assert status == 202

    status, _, view = request("GET", f"/videos/{body['job_id']}")

    assert status == 200
    (image,) = view["images"]
    assert (image["type"], image["uri"]) == ("image_url", url)
    assert image["url"].startswith("https://") and image["expires_in"] == 900


def test_the_same_key_with_other_images_is_a_conflict(world: World) -> None:
    folder = "s3://videos-bucket/inputs/123456789012/user/video-client/"
    first = {
        "model": "pixverse/pixverse-v5.6-it2v",
        "media": [{"type": "image_url", "url": folder + "a.png"}],
    }
    second = {
        "model": "pixverse/pixverse-v5.6-it2v",
        "media": [{"type": "image_url", "url": folder + "b.png"}],
    }

    assert post(first, key="img-key")[0] == 202
    assert post(first, key="img-key")[0] == 202
    assert post(second, key="img-key")[0] == 409
