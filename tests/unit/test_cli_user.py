"""The user commands' pure parts: arguments, exit codes, progress lines, and the client over a fake transport."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from t2v_client import (
    ApiClient,
    CliError,
    ExitCode,
    ProgressFacts,
    Target,
    api_url_from_outputs,
    error_line,
    exit_code_for_http,
    exit_code_for_status,
    format_progress,
    progress_facts,
    request_body,
    sandbox_target,
    summary_line,
)
from t2v_sandbox import cli
from t2v_sandbox.commands_user import Progress, cancel_job, follow, guarded, list_query, list_table

API = "http://127.0.0.1:9/Prod"


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


# --- arguments


def test_submit_parses_every_option() -> None:
    args = parse(
        "submit",
        "一只小猫",
        "--size",
        "640*360",
        "--duration",
        "8",
        "--audio",
        "true",
        "--watermark",
        "no",
        "--seed",
        "7",
        "--idempotency-key",
        "k1",
        "--wait",
        "--output",
        "out/a.mp4",
        "--timeout",
        "60",
        "--stack",
        "prod",
    )
    assert (args.prompt, args.size, args.duration, args.audio, args.watermark, args.seed) == (
        "一只小猫",
        "640*360",
        8,
        True,
        False,
        7,
    )
    assert (args.idempotency_key, args.wait, args.output, args.timeout, args.stack) == (
        "k1",
        True,
        Path("out/a.mp4"),
        60.0,
        "prod",
    )
    assert args.func.__name__ == "run_submit"


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "p", "--audio", "maybe"],
        ["submit", "p", "--duration", "five"],
        ["submit", "p", "--timeout", "0"],
        ["status"],
        ["download", "job-1"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2


def test_submit_without_a_prompt_or_a_model_exits_2_before_any_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The prompt is optional only where a --model says so (it2v); text to video still needs one
    args = parse("submit", "--endpoints", "/nonexistent/endpoints.json")
    assert args.func(args) == 2
    assert capsys.readouterr().err == "error: a prompt is required (text to video)\n"


def test_every_user_command_and_demo_is_registered() -> None:
    assert parse("status", "j").func.__name__ == "run_status"
    assert parse("list", "--status", "succeeded", "--limit", "5").status == "SUCCEEDED"
    assert parse("cancel", "j").func.__name__ == "run_cancel"
    assert parse("download", "j", "f.mp4").file == Path("f.mp4")
    demo = parse("demo", "--prompt", "p", "--out", "out")
    assert (demo.prompt, demo.out, demo.func.__name__) == ("p", Path("out"), "run_demo")
    assert parse("demo").prompt == "一只小猫在月光下奔跑"


def test_output_without_wait_and_out_of_range_limit_are_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("submit", "p", "--output", "x.mp4")
    assert args.func(args) == 2
    args = parse("list", "--limit", "500")
    assert args.func(args) == 2
    assert capsys.readouterr().err.count("error:") == 2


def test_missing_endpoints_file_exits_5_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("status", "job-1", "--endpoints", str(tmp_path / "none.json"))
    assert args.func(args) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "t2v sandbox up" in err


# --- exit codes and lines


@pytest.mark.parametrize(
    ("status", "code"), [(200, 0), (202, 0), (400, 2), (403, 1), (404, 1), (409, 1), (500, 1), (503, 1)]
)
def test_http_status_to_exit_code(status: int, code: int) -> None:
    assert exit_code_for_http(status) == code


@pytest.mark.parametrize(
    ("status", "code"),
    [("SUCCEEDED", 0), ("FAILED", 3), ("CANCELED", 3), ("TIMED_OUT", 3), ("RUNNING", 4)],
)
def test_job_status_to_exit_code(status: str, code: int) -> None:
    assert exit_code_for_status(status) == code


def test_error_line_names_code_message_and_fields() -> None:
    body = {
        "error": {
            "code": "InvalidRequest",
            "message": "size: not one of the sizes",
            "fields": [{"field": "size", "message": "not one of the sizes"}],
        }
    }
    assert error_line(400, body) == "HTTP 400 InvalidRequest: size: not one of the sizes"
    body["error"]["fields"] = [{"field": "seed", "message": "out of range"}]
    assert error_line(400, body).endswith("[seed (out of range)]")
    assert error_line(403, {"message": "Missing Authentication Token"}) == (
        "HTTP 403: Missing Authentication Token"
    )


def test_progress_line_and_summary() -> None:
    assert format_progress("RUNNING", 12.7, 3, "job-1") == "[  12s] RUNNING     polls=3 job-1"
    assert format_progress("PENDING", 0, None) == "[   0s] PENDING     polls=0"
    job = {
        "job_id": "job-1",
        "status": "SUCCEEDED",
        "request": {"size": "640*360", "duration": 5},
        "video": {"bytes": 10, "sha256": "ab"},
    }
    assert summary_line(job, path=Path("out/job-1.mp4"), elapsed=3.21) == (
        "job-1 SUCCEEDED size=640*360 duration=5s bytes=10 sha256=ab elapsed=3.2s file=out/job-1.mp4"
    )


def test_progress_prints_only_changes_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    for elapsed, status, polls in [(0, "PENDING", 1), (1, "PENDING", 1), (2, "RUNNING", 2)]:
        progress({"job_id": "j", "status": status, "polls": polls}, elapsed)
    assert stream.getvalue().splitlines() == [
        "[   0s] PENDING     polls=1 j",
        "[   2s] RUNNING     polls=2 j",
    ]


def test_progress_lines_carry_phase_percent_and_eta_from_the_progress_block() -> None:
    now = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC)
    job = {
        "job_id": "j",
        "status": "RUNNING",
        "polls": 2,
        "progress": {"phase": "running", "fraction": 0.4, "expected_finish_at": "2026-11-30T10:00:18Z"},
    }
    facts = progress_facts(job, now)
    assert facts == ProgressFacts("running", 0.4, 18.0)
    assert (
        format_progress("RUNNING", 12, 2, "j", facts) == "[  12s] RUNNING     polls=2 running 40% eta 18s j"
    )
    unknown = progress_facts({"status": "PENDING", "progress": {"phase": "queued", "fraction": None}}, now)
    assert unknown == ProgressFacts("queued", None, None)  # null stays unknown, never invented

    stream = io.StringIO()
    progress = Progress(stream)
    progress(job, 1)
    progress({**job, "progress": {**job["progress"], "fraction": 0.5}}, 2)  # same phase: no new line
    progress({**job, "status": "DOWNLOADING", "progress": {"phase": "downloading"}}, 3)
    assert [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()] == [
        "RUNNING     polls=2 running 40% eta 0s j",
        "DOWNLOADING polls=2 downloading j",
    ]


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress(stream)
    job = {"job_id": "j", "status": "RUNNING", "progress": {"phase": "running", "fraction": 0.5}}
    progress(job, 1)
    progress({**job, "status": "SUCCEEDED", "progress": {"phase": "done", "fraction": 1.0}}, 2)
    progress.done()
    drawn = stream.getvalue()
    assert "SUCCEEDED" in drawn
    assert "100%" in drawn
    assert "━" in drawn  # rich's bar


def test_request_body_leaves_out_unset_options() -> None:
    assert request_body("p") == {"prompt": "p"}
    assert request_body("p", size="640*360", audio=False, seed=0) == {
        "prompt": "p",
        "size": "640*360",
        "audio": False,
        "seed": 0,
    }


def test_api_url_from_stack_outputs() -> None:
    assert api_url_from_outputs({"ApiUrl": "https://a.execute-api.x.amazonaws.com/Prod/"}) == (
        "https://a.execute-api.x.amazonaws.com/Prod"
    )
    assert api_url_from_outputs({"Other": "https://b.execute-api.x.amazonaws.com/v1"}) == (
        "https://b.execute-api.x.amazonaws.com/v1"
    )
    assert api_url_from_outputs({"Bucket": "b"}) is None


def test_sandbox_target_reads_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "api_url": API + "/",
                "region": "eu-west-1",
                "credentials": {"aws_access_key_id": "a", "aws_secret_access_key": "s"},
            }
        )
    )
    target = sandbox_target(path)
    assert (target.api_url, target.region, target.credentials.access_key) == (API, "eu-west-1", "a")  # type: ignore[union-attr]
    path.write_text(json.dumps({"api_url": None}))
    with pytest.raises(CliError) as info:
        sandbox_target(path)
    assert info.value.code == ExitCode.UNREACHABLE


def test_list_table_has_a_header_size_and_origin_and_shortens_prompts() -> None:
    jobs = [
        {"job_id": "j", "status": "FAILED", "request": {"prompt": "x" * 100}},
        {
            "job_id": "job-2",
            "status": "SUCCEEDED",
            "created_at": "2026-12-07T10:00:00.000Z",
            "request": {"prompt": "a cat", "size": "640*360"},
            "origin": {"door": "s3", "key": "prompts/batch.jsonl", "line": 3},
        },
        {"job_id": "job-3", "status": "RUNNING", "request": {"prompt": "b"}, "origin": {"door": "api"}},
    ]
    header, first, second, third = list_table(jobs)
    assert header.split() == ["JOB", "STATUS", "CREATED", "SIZE", "ORIGIN", "PROMPT"]
    assert first.startswith("j ") and first.endswith("x" * 39 + "…")
    assert second.split() == [
        "job-2",
        "SUCCEEDED",
        "2026-12-07T10:00:00.000Z",
        "640*360",
        "prompts/batch.jsonl:3",
        "a",
        "cat",
    ]
    assert third.split()[3:5] == ["-", "api"]
    # the columns line up under the header
    assert second.index("640*360") == header.index("SIZE") and third.index("api") == header.index("ORIGIN")


def test_list_maps_its_filters_to_the_api_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    from botocore.credentials import Credentials

    client = ApiClient(Target(API, "us-east-1", Credentials("a", "s")), transport=httpx.MockTransport(answer))
    args = parse(
        "list", "--status", "failed", "--since", "2026-12-01", "--until", "2026-12-02T12:00:00Z",
        "--search", "red fox", "--oldest", "--limit", "5",
    )  # fmt: skip
    client.list(**list_query(args))
    assert dict(seen[0].url.params) == {
        "status": "FAILED",
        "limit": "5",
        "since": "2026-12-01",
        "until": "2026-12-02T12:00:00Z",
        "q": "red fox",
        "order": "oldest",
    }


# --- the client over a fake transport (no sockets)


class FakeApi:
    """An in-memory /videos API: each GET advances the job one status."""

    def __init__(self, statuses: list[str], video: bytes = b"\x00\x00\x00\x18ftypmp42") -> None:
        self.statuses = statuses
        self.video = video
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/Prod/videos":
            body = json.loads(request.content)
            if body.get("size") == "1*1":
                error = {"code": "InvalidRequest", "message": "size: bad", "fields": []}
                return httpx.Response(400, json={"error": error})
            return httpx.Response(202, json={"job_id": "job-1", "status": "ACCEPTED", "links": {}})
        if request.method == "GET" and path == "/Prod/videos/job-1":
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            view: dict[str, Any] = {"job_id": "job-1", "status": status, "polls": 1, "request": {}}
            if status == "SUCCEEDED":
                sha = hashlib.sha256(self.video).hexdigest()
                view["video"] = {"url": "http://s3.local/v.mp4?sig", "bytes": len(self.video), "sha256": sha}
            if status == "FAILED":
                view["error"] = {"code": "DataInspectionFailed", "message": "inappropriate"}
            return httpx.Response(200, json=view)
        if path == "/v.mp4":
            return httpx.Response(200, content=self.video)
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": f"no {path}"}})


def client_for(fake: FakeApi) -> ApiClient:
    from botocore.credentials import Credentials

    return ApiClient(Target(API, "us-east-1", Credentials("a", "s")), transport=httpx.MockTransport(fake))


def test_requests_are_sigv4_signed_for_execute_api() -> None:
    fake = FakeApi(["PENDING"])
    client_for(fake).submit({"prompt": "p"}, idempotency_key="k")
    sent = fake.seen[0]
    assert "/execute-api/aws4_request" in sent.headers["authorization"]
    assert "x-amz-date" in sent.headers
    assert sent.headers["idempotency-key"] == "k"


def test_http_400_becomes_exit_2_error() -> None:
    with pytest.raises(CliError) as info:
        client_for(FakeApi(["PENDING"])).submit({"prompt": "p", "size": "1*1"})
    assert info.value.code == ExitCode.INVALID
    assert str(info.value) == "HTTP 400 InvalidRequest: size: bad"


def test_follow_waits_downloads_and_checks_sha(tmp_path: Path) -> None:
    fake = FakeApi(["PENDING", "RUNNING", "SUCCEEDED"])
    err = io.StringIO()
    out = tmp_path / "out" / "job-1.mp4"
    code, _job = follow(
        client_for(fake), "job-1", timeout=10, interval=0.001, output=out, started=0.0, err=err
    )
    assert code == 0
    assert out.read_bytes() == fake.video
    assert "SUCCEEDED" in err.getvalue().splitlines()[-1]
    assert list(out.parent.iterdir()) == [out]  # no partial file left behind


def test_follow_of_a_failed_job_exits_3_with_its_reason(tmp_path: Path) -> None:
    err = io.StringIO()
    code, _ = follow(
        client_for(FakeApi(["FAILED"])), "job-1", timeout=10, interval=0.001, output=None, started=0, err=err
    )
    assert code == 3
    assert (
        err.getvalue().splitlines()[-1]
        == "error: job job-1 ended FAILED: DataInspectionFailed: inappropriate"
    )


def test_wait_gives_up_after_timeout_with_exit_4() -> None:
    ticks = iter(range(100))
    with pytest.raises(CliError) as info:
        client_for(FakeApi(["PENDING"])).wait(
            "job-1", timeout=3, interval=1, clock=lambda: float(next(ticks)), sleep=lambda _: None
        )
    assert info.value.code == ExitCode.WAIT_TIMEOUT


def test_corrupt_download_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    client = client_for(FakeApi(["SUCCEEDED"]))
    with pytest.raises(CliError, match="corrupt"):
        client.download("http://s3.local/v.mp4", tmp_path / "v.mp4", sha256="00")
    assert list(tmp_path.iterdir()) == []


def test_guarded_turns_errors_into_one_line_and_code() -> None:
    err = io.StringIO()

    def fail() -> int:
        raise CliError("cannot reach the API", ExitCode.UNREACHABLE)

    assert guarded(fail, err) == 5
    assert err.getvalue() == "error: cannot reach the API\n"


USAGE = {
    "day": "2026-02-03",
    "spent_seconds": 15,
    "refunded_seconds": 5,
    "left_seconds": 10,
    "caller_budget_seconds": 20,
    "account_budget_seconds": 0,
    "renews_at": "2026-02-04T00:00:00.000Z",
    "you": {"spent_seconds": 15, "refunded_seconds": 5, "left_seconds": 10, "budget_seconds": 20},
    "account": {"spent_seconds": 40, "refunded_seconds": 5, "left_seconds": None, "budget_seconds": 0},
}


def test_usage_is_registered_and_shows_the_callers_day_and_the_accounts() -> None:
    from t2v_sandbox.commands_user import usage_lines

    assert parse("usage", "--json").func.__name__ == "run_usage"
    lines = usage_lines(USAGE)
    assert lines[0] == "day 2026-02-03 (renews 2026-02-04T00:00:00.000Z)"
    assert lines[1] == "you      10 s left of 20 s: spent 15 s, refunded 5 s"
    assert lines[2] == "account  no cap (no cap): spent 40 s, refunded 5 s"
    assert lines[3] == "you may request 10 s left today"


def test_the_client_reads_usage_signed() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=USAGE)

    from botocore.credentials import Credentials

    client = ApiClient(Target(API, "us-east-1", Credentials("a", "s")), transport=httpx.MockTransport(answer))
    assert client.usage()["left_seconds"] == 10
    assert seen[0].url.path == "/Prod/usage" and "authorization" in seen[0].headers


# --- cancel, progress that never goes back, upload, the region


def client_answering(delete: tuple[int, str], status: str) -> ApiClient:
    """A client whose DELETE gets `delete` (status, message) and whose GET shows the job in `status`."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(delete[0], json={"error": {"code": "NotCancelable", "message": delete[1]}})
        return httpx.Response(200, json={"job_id": "job-1", "status": status})

    from botocore.credentials import Credentials

    return ApiClient(Target(API, "us-east-1", Credentials("a", "s")), transport=httpx.MockTransport(answer))


def test_cancelling_an_already_canceled_job_exits_0_with_a_clear_line() -> None:
    client = client_answering((409, "job job-1 already ended CANCELED"), "CANCELED")
    assert cancel_job(client, "job-1") == "job-1 CANCELED (it was canceled before; nothing to do)"


def test_cancelling_a_running_job_is_still_an_error() -> None:
    client = client_answering((409, "the provider task is already RUNNING"), "RUNNING")
    with pytest.raises(CliError, match="already RUNNING") as info:
        cancel_job(client, "job-1")
    assert info.value.code == ExitCode.ERROR


def test_wait_progress_never_goes_backwards() -> None:
    # Given the API revising its estimate when the task starts (93 % queued, then 63 % running)
    # and a lagging read showing an earlier phase
    stream = io.StringIO()
    progress = Progress(stream)
    views = [
        ("SUBMITTED", "queued", 0.93),
        ("RUNNING", "running", 0.63),
        ("PENDING", "queued", 0.70),
        ("RUNNING", "running", 0.97),
    ]
    for n, (status, phase, fraction) in enumerate(views):
        progress({"job_id": "j", "status": status, "progress": {"phase": phase, "fraction": fraction}}, n)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    # Then percent and phase only move forward
    assert lines == [
        "SUBMITTED   polls=0 queued 93% j",
        "RUNNING     polls=0 running 93% j",
        "PENDING     polls=0 running 93% j",
        "RUNNING     polls=0 running 97% j",
    ]


def test_upload_refuses_what_intake_would_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "ok.jsonl").write_text('{"prompt": "a"}\n')
    (tmp_path / "big.txt").write_bytes(b"x" * (1024 * 1024 + 1))
    for name, rule in [("clip.mp4", "must end in .txt, .json, .jsonl"), ("big.txt", "at most 1 MiB")]:
        args = parse(
            "upload", str(tmp_path / "ok.jsonl"), str(tmp_path / name), "--endpoints", str(tmp_path / "none")
        )
        assert args.func(args) == ExitCode.INVALID
        assert rule in capsys.readouterr().err
    args = parse("upload", str(tmp_path / "missing.json"), "--endpoints", str(tmp_path / "none"))
    assert args.func(args) == ExitCode.INVALID


def test_stack_region_follows_samconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from t2v_client.place import samconfig_region

    config = tmp_path / "samconfig.toml"
    config.write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "t2v"\nregion = "eu-west-1"\n'
    )
    assert samconfig_region(config) == "eu-west-1"
    config.write_text(config.read_text() + '[default.deploy.parameters]\nregion = "ap-southeast-1"\n')
    assert samconfig_region(config) == "ap-southeast-1"  # what `sam deploy` itself would use
    assert samconfig_region(tmp_path / "absent.toml") is None
    assert samconfig_region(Path("samconfig.toml")) == "us-east-1"  # the project's own


def test_events_ends_with_one_line_when_the_sandbox_stops_under_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import EndpointConnectionError
    from t2v_sandbox import events

    class GoneTap:
        closed = False

        def __init__(self, place: Any) -> None:
            self.place = place

        def receive(self) -> Any:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:5999/")

        def close(self) -> None:
            GoneTap.closed = True

    place = SimpleNamespace(topic_arn="arn:aws:sns:us-east-1:123456789012:t", event_bus="default")
    monkeypatch.setattr(events, "sandbox_place", lambda _endpoints: place)
    monkeypatch.setattr(events, "Tap", GoneTap)
    code = events.run_events(parse("events"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ExitCode.UNREACHABLE
    assert err[-1].startswith("error: the sandbox stopped answering (Could not connect")
    assert err[-1].endswith("start it with `t2v sandbox up`")
    assert "Traceback" not in "\n".join(err)
    assert not GoneTap.closed  # its queue and rule went with the sandbox: nothing to clean up
