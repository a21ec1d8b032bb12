"""The console's pages and rules without a network: a fake API behind httpx's MockTransport."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from t2v_client import ApiClient, Place, Target, sandbox_place
from t2v_console.app import create_app, field_errors, form_from_request, request_from_form
from t2v_console.backend import (
    ConsoleBackend,
    UploadError,
    cancellable,
    cost_line,
    idempotency_key,
    upload_key,
)
from t2v_sandbox.events import parse_message

TARGET = Target("http://api.test/v1", "us-east-1", Credentials("AKIDEXAMPLE", "secret-never-shown"))


class FakeApi:
    """Answers the video API's routes from a dict of jobs; records what it was asked."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.running: set[str] = set()  # jobs whose provider task runs: a cancel is refused
        self.down = False  # every call fails as a refused connection would
        self.usage: dict[str, Any] | None = {"left_seconds": None, "renews_at": "2026-02-04T00:00:00.000Z"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "s3.test":
            return httpx.Response(200, content=b"\0\0\0\x18ftypmp42 video bytes")
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        self.requests.append(request)
        assert "authorization" in request.headers  # signed here, in the console's process
        path = request.url.path.removeprefix("/v1")
        if request.method == "POST" and path == "/videos":
            if body.get("duration") == 10 and body.get("size") == "1920*1080":
                fields = [{"field": "duration", "message": "10 s is not allowed for 1080P size 1920*1080"}]
                return httpx.Response(
                    400, json={"error": {"code": "InvalidRequest", "message": "bad", "fields": fields}}
                )
            self.jobs["job-new"] = {"job_id": "job-new", "status": "ACCEPTED", "request": body}
            return httpx.Response(202, json={"job_id": "job-new", "status": "ACCEPTED"})
        if request.method == "GET" and path == "/usage":
            if self.usage is None:
                return httpx.Response(500, json={"error": {"code": "InternalError", "message": "x"}})
            return httpx.Response(200, json=self.usage)
        if request.method == "GET" and path == "/videos":
            return httpx.Response(200, json={"items": [self._listed(j) for j in self.jobs.values()]})
        job_id = path.rsplit("/", 1)[-1]
        if job_id not in self.jobs:
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": f"no job {job_id}"}})
        if request.method == "DELETE" and job_id in self.running:
            refused = {"code": "NotCancelable", "message": "the provider task is already RUNNING"}
            return httpx.Response(409, json={"error": refused})
        if request.method == "DELETE":
            self.jobs[job_id]["status"] = "CANCELED"
        return httpx.Response(200, json=self.jobs[job_id])

    @staticmethod
    def _listed(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k != "video"}  # the list carries no presigned URL


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def client(api: FakeApi) -> Any:
    place = Place(target=TARGET, session=None, endpoint_url=None, sandbox=True)
    backend = ConsoleBackend(
        place,
        client_factory=lambda target: ApiClient(target, transport=httpx.MockTransport(api)),
        video_transport=httpx.MockTransport(api),
    )
    app = create_app(backend)
    app.config["ALLOWED_HOSTS"] = frozenset({"localhost"})
    return app.test_client()


def token(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_gallery_shows_jobs_with_their_video_and_origin(client: Any, api: FakeApi) -> None:
    api.jobs["job-1"] = {
        "job_id": "job-1",
        "status": "SUCCEEDED",
        "source": "s3",
        "origin": {"bucket": "b", "key": "prompts/a.jsonl", "version": "v1", "line": 3},
        "request": {"prompt": "a <b>fox</b>", "size": "640*360", "duration": 5},
        "video": {"uri": "s3://b/k", "url": "http://s3.test/k.mp4?sig", "expires_in": 900},
    }
    page = client.get("/").get_data(as_text=True)
    assert "file prompts/a.jsonl:3" in page
    assert "http://s3.test/k.mp4?sig" in page  # fetched once per job, then cached
    assert "a &lt;b&gt;fox&lt;/b&gt;" in page  # prompts are text, never markup
    client.get("/fragments/gallery")
    assert [c for c in api.calls if c[:2] == ("GET", "/v1/videos/job-1")] == [
        ("GET", "/v1/videos/job-1", None)
    ]
    assert "secret-never-shown" not in page


def test_submit_redirects_to_the_job_and_shows_the_servers_field_errors(client: Any, api: FakeApi) -> None:
    form = client.get("/new").get_data(as_text=True)
    assert form.count('<option value="') >= 20 + 3  # the 20 sizes, the 3 durations
    fields = {"csrf": token(form), "prompt": "a fox", "size": "640*360", "duration": "5", "seed": "7"}
    answer = client.post("/new", data=fields)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/jobs/job-new")
    assert api.calls[-1][2] == {
        "prompt": "a fox",
        "size": "640*360",
        "duration": 5,
        "seed": 7,
        "audio": False,
        "watermark": False,
    }

    refused = client.post("/new", data={**fields, "size": "1920*1080", "duration": "10"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="error-duration">10 s is not allowed for 1080P' in page
    assert 'value="1920*1080" data-durations="5,8" selected' in page  # what was chosen stays chosen


def test_the_form_checks_only_number_syntax_itself() -> None:
    body, errors = request_from_form(
        {"prompt": "p", "size": "640*360", "duration": "five", "seed": "", "audio": "on", "watermark": ""}
    )
    assert errors == {"duration": "duration must be a whole number"}
    assert body == {"prompt": "p", "size": "640*360", "audio": True, "watermark": False}
    assert field_errors(
        {"error": {"fields": [{"field": "body.seed", "message": "a"}, {"field": "seed", "message": "b"}]}}
    ) == {"seed": "a; b"}


def test_posts_without_the_token_and_other_hosts_are_refused(client: Any) -> None:
    assert client.post("/new", data={"prompt": "x"}).status_code == 403
    assert client.post("/jobs/job-1/cancel").status_code == 403
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 421
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_cancel_and_the_live_fragment(client: Any, api: FakeApi) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    api.jobs["job-2"] = {
        "job_id": "job-2",
        "status": "PENDING",
        "request": {"prompt": "p"},
        "history": [{"status": "ACCEPTED", "at": "2026-11-30T10:00:00Z"}],
        "progress": {"phase": "queued", "fraction": 0.25, "expected_finish_at": soon},
    }
    live = client.get("/fragments/jobs/job-2").get_data(as_text=True)
    assert 'value="0.25"' in live
    assert "25 %" in live
    assert re.search(r"about (29|30) s left", live)
    assert 'id="cancel"' in live
    answer = client.post("/jobs/job-2/cancel", data={"csrf": token(live)})
    assert answer.status_code == 303
    assert api.jobs["job-2"]["status"] == "CANCELED"
    assert client.get("/jobs/no-such-job").status_code == 404
    assert client.get("/jobs/bad id!").status_code == 404


def test_upload_keys_are_safe_and_only_prompt_files() -> None:
    assert upload_key("prompts/", "../../etc/My Prompts.jsonl") == "prompts/My-Prompts.jsonl"
    assert upload_key("prompts/", "C:\\Users\\a\\x.TXT") == "prompts/x.TXT"
    with pytest.raises(UploadError, match="must end in"):
        upload_key("prompts/", "video.mp4")
    with pytest.raises(UploadError, match="must end in"):
        upload_key("prompts/", "")


def test_events_lines_for_sns_messages_and_eventbridge_events() -> None:
    now = datetime(2026, 11, 30, 10, 0, 5, tzinfo=UTC)
    sns = {
        "Type": "Notification",
        "Subject": "Video FAILED",
        "Message": json.dumps(
            {"job_id": "job-1", "status": "FAILED", "error": {"code": "InternalError.Algo"}}
        ),
        "MessageAttributes": {"status": {"Type": "String", "Value": "FAILED"}},
    }
    seen = parse_message(json.dumps(sns), now)
    assert seen.line() == "10:00:05 sns    Video FAILED  status=FAILED job=job-1 error=InternalError.Algo"
    event = {
        "id": "e-1",
        "source": "t2v.pipeline",
        "detail-type": "Video Generation Succeeded",
        "detail": {"job_id": "job-2", "status": "SUCCEEDED"},
    }
    seen = parse_message(json.dumps(event), now)
    assert seen.line() == (
        "10:00:05 event  Video Generation Succeeded  source=t2v.pipeline id=e-1 job=job-2 status=SUCCEEDED"
    )
    assert seen.as_json()["kind"] == "event"


def test_moto_state_failure_lines_are_shortened_and_kept_for_debug_only() -> None:
    import logging

    from t2v_sandbox.patches import quiet_state_failures

    cause = "x" * 5000
    record = logging.LogRecord(
        "moto.stepfunctions",
        logging.ERROR,
        __file__,
        1,
        "%s at '%s'",
        (f"Exception=FailureEventException, Error=JobDidNotSucceed, Details={cause}", "State"),
        None,
    )
    keep = quiet_state_failures(record)
    assert keep is logging.getLogger("t2v_sandbox").isEnabledFor(logging.DEBUG)
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith("state failure JobDidNotSucceed")
    assert len(record.getMessage()) < 200
    other = logging.LogRecord("m", logging.ERROR, __file__, 1, "Exception=KeyError, Details=['a']", (), None)
    assert quiet_state_failures(other) is True
    assert other.levelno == logging.ERROR


def test_the_header_shows_the_callers_budget_left_and_nothing_when_the_api_cannot_say(
    client: Any, api: FakeApi
) -> None:
    api.usage = {"left_seconds": 35, "renews_at": "2026-02-04T00:00:00.000Z"}
    page = client.get("/", headers={"Host": "localhost"}).get_data(as_text=True)
    assert re.search(r'id="budget"[^>]*>budget: 35 s left today \(renews 00:00 UTC\)<', page)

    api.usage = {"left_seconds": None, "renews_at": "2026-02-04T00:00:00.000Z"}
    assert "budget: no cap today" in client.get("/", headers={"Host": "localhost"}).get_data(as_text=True)

    api.usage = None  # the API failed: the page still renders, without the line
    answer = client.get("/", headers={"Host": "localhost"})
    assert answer.status_code == 200 and 'id="budget"' not in answer.get_data(as_text=True)


# --- issue 22: a console that survives real use


def test_cancel_is_offered_only_when_it_can_work_and_its_answers_are_styled_by_kind(
    client: Any, api: FakeApi
) -> None:
    # The API's own word wins; without it, a status before the provider runs the task
    assert cancellable({"status": "RUNNING", "cancellable": True}) is True
    assert cancellable({"status": "PENDING", "cancellable": False}) is False
    assert cancellable({"status": "SUBMITTED", "progress": {"phase": "queued"}}) is True
    assert cancellable({"status": "SUBMITTED", "progress": {"phase": "running"}}) is False
    assert cancellable({"status": "RUNNING"}) is False

    api.jobs["job-3"] = {"job_id": "job-3", "status": "SUBMITTED", "progress": {"phase": "queued"}}
    api.running.add("job-3")  # with push on, the record says SUBMITTED while the provider runs it
    live = client.get("/fragments/jobs/job-3").get_data(as_text=True)
    assert 'id="cancel"' in live
    refused = client.post("/jobs/job-3/cancel", data={"csrf": token(live)})
    page = client.get(refused.headers["Location"]).get_data(as_text=True)
    assert re.search(r'class="notice notice-error" id="notice"[^>]*>HTTP 409 NotCancelable', page)
    assert 'id="cancel"' not in page  # and it is not offered again

    api.jobs["job-4"] = {"job_id": "job-4", "status": "PENDING"}
    done = client.post("/jobs/job-4/cancel", data={"csrf": token(live)})
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert 'class="notice notice-ok" id="notice" data-kind="ok">cancel requested<' in page


def test_the_gallery_passes_its_filters_to_the_api_and_pages_by_cursor(client: Any, api: FakeApi) -> None:
    api.jobs["old"] = {"job_id": "old", "status": "FAILED", "created_at": "2026-01-01T10:00:00Z"}
    api.jobs["new"] = {"job_id": "new", "status": "FAILED", "created_at": "2026-03-01T10:00:00Z"}
    page = client.get("/?q=a+fox&order=oldest&since=2026-02-01&until=2026-03-31&limit=5&status=failed")
    query = dict(api.requests[0].url.params)
    assert query == {
        "status": "FAILED",
        "limit": "5",
        "q": "a fox",
        "order": "oldest",
        "since": "2026-02-01T00:00:00Z",
        "until": "2026-04-01T00:00:00Z",
    }
    text = page.get_data(as_text=True)
    # This API ignores the dates: the console keeps to them itself
    assert 'data-job="new"' in text and 'data-job="old"' not in text
    assert 'id="load-more"' in text and "hidden>Load more" in text  # no next page
    more = client.get("/fragments/gallery?cursor=abc&q=a+fox").get_data(as_text=True)
    assert dict(api.requests[-1].url.params)["cursor"] == "abc"
    assert "No videos" not in more  # a later page says nothing when empty


def test_an_unreachable_api_fails_fast_says_reconnecting_and_keeps_the_typed_form(
    client: Any, api: FakeApi
) -> None:
    form = client.get("/new").get_data(as_text=True)
    api.down = True
    answer = client.get("/")
    assert answer.status_code == 503
    page = answer.get_data(as_text=True)
    assert "Reconnecting to the API…" in page and "data-reload-when-back" in page
    assert 'id="budget"' not in page  # no second call once the first could not reach it
    assert client.get("/fragments/gallery").status_code == 503
    assert client.get("/fragments/health").status_code == 503

    fields = {"csrf": token(form), "nonce": "n-1", "prompt": "kept <b>", "size": "640*480", "seed": "9"}
    kept = client.post("/new", data={**fields, "duration": "8", "audio": "on"})
    assert kept.status_code == 503
    text = kept.get_data(as_text=True)
    assert "cannot reach the API" in text and ">kept &lt;b&gt;</textarea>" in text
    assert 'value="640*480" data-durations="5,8,10" selected' in text and 'value="9"' in text
    assert 'name="nonce" value="n-1"' in text

    # Sent again once the API is back: the same key, so a request that did get through is not doubled
    api.down = False
    assert client.get("/fragments/health").status_code == 200
    client.post("/new", data={**fields, "duration": "8", "audio": "on"})
    client.post("/new", data={**fields, "duration": "8", "audio": "on"})
    keys = [r.headers["idempotency-key"] for r in api.requests if r.method == "POST"]
    assert len(keys) == 2 and keys[0] == keys[1]
    client.post("/new", data={**fields, "prompt": "changed", "duration": "8"})
    assert api.requests[-1].headers["idempotency-key"] != keys[0]
    assert idempotency_key("n", {"a": 1}) != idempotency_key("m", {"a": 1})


def test_the_job_page_rerun_download_cost_and_json_booleans(client: Any, api: FakeApi) -> None:
    request = {
        "prompt": "a kite",
        "size": "960*1280",
        "duration": 8,
        "seed": 3,
        "audio": True,
        "watermark": False,
    }
    api.jobs["job-5"] = {
        "job_id": "job-5",
        "status": "SUCCEEDED",
        "request": request,
        "usage": {"duration": 8},
        "video": {"uri": "s3://b/k", "url": "http://s3.test/k.mp4?sig", "expires_in": 900, "bytes": 26},
    }
    page = client.get("/jobs/job-5").get_data(as_text=True)
    assert "<th>audio</th><td>true</td>" in page and "<th>watermark</th><td>false</td>" in page
    assert "8 s billed" in page and 'id="budget-left">no cap<' in page
    assert 'data-copy="job-5"' in page and 'data-copy="a kite"' in page

    download = client.get("/jobs/job-5/download")
    assert download.status_code == 200
    assert download.headers["Content-Disposition"] == 'attachment; filename="job-5.mp4"'
    assert download.data[4:8] == b"ftyp"

    form = client.get("/new?from=job-5").get_data(as_text=True)
    assert ">a kite</textarea>" in form and 'value="960*1280"' in form and 'value="3"' in form
    assert form_from_request(request) == {
        "prompt": "a kite",
        "size": "960*1280",
        "duration": "8",
        "seed": "3",
        "audio": "on",
        "watermark": "",
    }
    assert cost_line({"request": {"duration": 5}}) == "5 s (as requested; billed per second)"
    assert cost_line({"billed_seconds": 0}) == "0 s billed"


def test_unknown_jobs_get_a_styled_404_and_the_console_has_a_favicon(client: Any) -> None:
    answer = client.get("/jobs/no-such-job")
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert "<h1>Not found</h1>" in page and "no job no-such-job" in page and "console.css" in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"


def test_the_console_follows_a_restarted_sandbox_to_its_new_address(tmp_path: Path) -> None:
    from tests.unit.test_identities import endpoints_file

    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.host) + ":" + str(request.url.port))
        if request.url.port == 1111:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"items": []})

    path = endpoints_file(tmp_path, api_url="http://127.0.0.1:1111/v1")
    backend = ConsoleBackend(
        sandbox_place(path),
        client_factory=lambda target: ApiClient(target, transport=httpx.MockTransport(api)),
        endpoints_file=path,
    )
    bob = backend.acting_as("bob")
    endpoints = json.loads(path.read_text())
    path.write_text(json.dumps({**endpoints, "api_url": "http://127.0.0.1:2222/v1"}))
    # The next call reaches the new address, for every identity
    assert backend.list_jobs(status=None).status == 200
    assert bob.place.target.api_url == "http://127.0.0.1:2222/v1"
    assert bob.identity == "bob"
    assert seen == ["127.0.0.1:2222"]
