"""The console's pages and rules without a network: a fake API behind httpx's MockTransport."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from t2v_client import ApiClient, Place, Target
from t2v_console.app import create_app, field_errors, request_from_form
from t2v_console.backend import ConsoleBackend, UploadError, upload_key
from t2v_sandbox.events import parse_message

TARGET = Target("http://api.test/v1", "us-east-1", Credentials("AKIDEXAMPLE", "secret-never-shown"))


class FakeApi:
    """Answers the video API's routes from a dict of jobs; records what it was asked."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.usage: dict[str, Any] | None = {"left_seconds": None, "renews_at": "2026-02-04T00:00:00.000Z"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
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
        place, client_factory=lambda target: ApiClient(target, transport=httpx.MockTransport(api))
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
