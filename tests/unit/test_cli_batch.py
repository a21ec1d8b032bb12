"""`t2v batch` and `t2v list --batch`: arguments, the file's checks and upload into the caller's folder,
the batch view as lines and a table, --wait's progress, cancel and results; a fake API (docs/batches.md)
behind httpx's MockTransport and a fake S3, no network."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from t2v_client import ApiClient, CliError, ExitCode, Target
from t2v_client.batches import (
    BatchFileError,
    BatchProgress,
    batch_body,
    batch_key,
    batch_table,
    check_batch_file,
    status_lines,
    upload_batch_file,
)
from t2v_sandbox import cli, commands_batch
from t2v_sandbox.commands_batch import batch_results, cancel_batch, ended_code, follow_batch
from t2v_sandbox.commands_user import list_query

from tests.unit.test_cli_models import TARGET, FakeS3
from tests.unit.test_cli_models import place as fake_place
from tests.unit.test_console import FakeApi

FOLDER = "inputs/123456789012/user/alice/"  # the API's rule for alice (t2v.images.ImagePlace.folder_of)
BID = "batch-" + "a" * 32
RESULTS = b'{"line": 1, "job_id": "job-1", "status": "SUCCEEDED", "error": null}\n'


def view(batch_id: str = BID, status: str = "RUNNING", **over: Any) -> dict[str, Any]:
    """A batch view as docs/batches.md has it."""
    found: dict[str, Any] = {
        "batch_id": batch_id,
        "status": status,
        "owner": "arn:aws:iam::123456789012:user/alice",
        "source": "api",
        "file": {"bucket": "bkt", "key": f"{FOLDER}0123456789abcdef-fox.jsonl", "version": "v1"},
        "lines": {"total": 2000, "valid": 1980, "refused": 20},
        "counts": {
            "SUCCEEDED": 10,
            "FAILED": 21,
            "CANCELED": 0,
            "TIMED_OUT": 0,
            "active": 8,
            "not_started": 1961,
        },
        "progress": 0.0155,
        "video_seconds": 9900,
        "reserved_seconds": 9900,
        "budget_day": "2026-12-07",
        "expected_seconds": 1234,
        "expected_finish_at": "2026-12-07T10:20:34Z",
        "notify_lines": False,
        "cancellable": status in {"READING", "RUNNING"},
        "created_at": "2026-12-07T10:00:00Z",
        "updated_at": "2026-12-07T10:00:10Z",
        "finished_at": None,
        "error": None,
        "results": None,
        "links": {"jobs": f"/v1/videos?batch={batch_id}", "results": f"/v1/batches/{batch_id}/results"},
    }
    if status in {"COMPLETED", "CANCELED", "REFUSED"}:
        found["finished_at"] = "2026-12-07T10:30:00Z"
        found["results"] = {
            "bucket": "bkt",
            "key": f"results/{batch_id}.jsonl",
            "summary_key": f"results/{batch_id}.summary.json",
        }
    return found | over


class BatchApi(FakeApi):
    """The console's fake video API, plus the batch routes of docs/batches.md."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: dict[str, dict[str, Any]] = {}
        self.script: list[dict[str, Any]] = []  # views GET /batches/{id} gives in turn (--wait)
        self.results = RESULTS

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "s3.test" and path.startswith("/results/"):
            return httpx.Response(200, content=self.results)
        if not path.startswith("/batches"):
            return super().__call__(request)
        body = json.loads(request.content) if request.content else None
        self.calls.append((request.method, request.url.path, body))
        self.requests.append(request)
        assert "authorization" in request.headers
        parts = path.strip("/").split("/")
        if request.method == "POST" and parts == ["batches"]:
            key = str(body.get("key"))
            if not key.startswith(FOLDER):
                field = {"field": "key", "message": "must be in your own folder " + FOLDER}
                error = {"code": "InvalidRequest", "message": "key: not in your folder", "fields": [field]}
                return httpx.Response(400, json={"error": error})
            made = view(BID, "READING", file={"bucket": "bkt", "key": key, "version": body.get("version")})
            self.batches[BID] = made
            return httpx.Response(202, json=made)
        if request.method == "GET" and parts == ["batches"]:
            items = sorted(self.batches.values(), key=lambda b: str(b["created_at"]), reverse=True)
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        return self._one(request.method, parts)

    def _one(self, method: str, parts: list[str]) -> httpx.Response:
        batch_id = parts[1]
        if batch_id not in self.batches:
            return httpx.Response(
                404, json={"error": {"code": "NotFound", "message": f"no batch {batch_id}"}}
            )
        batch = self.batches[batch_id]
        ended = batch["status"] in {"COMPLETED", "CANCELED", "REFUSED"}
        if len(parts) == 3 and parts[2] == "results":
            if not ended:
                error = {"code": "BatchRunning", "message": f"batch {batch_id} is {batch['status']}"}
                return httpx.Response(409, json={"error": error})
            url = f"http://s3.test/results/{batch_id}.jsonl?sig"
            return httpx.Response(
                200,
                json={
                    "batch_id": batch_id,
                    "status": batch["status"],
                    "results_url": url,
                    "summary_url": url,
                },
            )
        if method == "DELETE":
            if ended:
                error = {"code": "BatchEnded", "message": f"batch {batch_id} already ended {batch['status']}"}
                return httpx.Response(409, json={"error": error})
            batch.update(status="CANCELING", cancellable=False)
            return httpx.Response(200, json=batch)
        if self.script:
            self.batches[batch_id] = batch = self.script.pop(0)
        return httpx.Response(200, json=batch)


class S3WithVersions(FakeS3):
    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        super().put_object(**kwargs)
        return {"VersionId": f"v{len(self.puts)}"}


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


def client_for(api: BatchApi) -> ApiClient:
    return ApiClient(TARGET, transport=httpx.MockTransport(api))


@pytest.fixture
def api() -> BatchApi:
    return BatchApi()


@pytest.fixture
def wired(api: BatchApi, monkeypatch: pytest.MonkeyPatch) -> S3WithVersions:
    """The commands reach the fake API (any target) and upload into a fake S3 as alice."""
    s3 = S3WithVersions()
    monkeypatch.setattr(commands_batch, "resolve_place", lambda *a, **k: fake_place(s3, "bkt"))
    monkeypatch.setattr(commands_batch, "resolve_target", lambda args: TARGET)
    real = ApiClient

    def factory(target: Target, **kwargs: Any) -> ApiClient:
        return real(target, transport=httpx.MockTransport(api))

    monkeypatch.setattr(commands_batch, "ApiClient", factory)
    return s3


# --- arguments


def test_every_batch_subcommand_parses_its_options() -> None:
    submit = parse("batch", "submit", "a.jsonl", "--notify-lines", "--wait", "--as", "bob", "--timeout", "60")
    assert (submit.file, submit.notify_lines, submit.wait, submit.identity, submit.timeout) == (
        Path("a.jsonl"),
        True,
        True,
        "bob",
        60.0,
    )
    assert submit.func.__name__ == "run_submit" and submit.func.__module__ == "t2v_sandbox.commands_batch"
    plain = parse("batch", "submit", "a.jsonl", "--stack", "prod")
    assert (plain.notify_lines, plain.wait, plain.timeout, plain.stack) == (False, False, None, "prod")
    assert parse("batch", "status", BID, "--json").json is True
    assert parse("batch", "list", "--limit", "5").limit == 5
    assert parse("batch", "cancel", BID).func.__name__ == "run_cancel"
    results = parse("batch", "results", BID, "-o", "out/r.jsonl")
    assert (results.batch_id, results.output, results.func.__name__) == (
        BID,
        Path("out/r.jsonl"),
        "run_results",
    )
    assert parse("batch", "results", BID).output is None


@pytest.mark.parametrize(
    "argv",
    [["batch"], ["batch", "submit"], ["batch", "status"], ["batch", "results"], ["batch", "frobnicate"]],
)
def test_missing_or_unknown_batch_arguments_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2


def test_list_batch_passes_batch_to_the_videos_query(api: BatchApi) -> None:
    args = parse("list", "--batch", BID, "--limit", "5")
    assert list_query(args)["batch"] == BID
    client_for(api).list(**list_query(args))
    assert dict(api.requests[-1].url.params) == {"batch": BID, "limit": "5"}
    assert list_query(parse("list"))["batch"] is None


# --- the file: checked before anything is sent, then into the caller's own folder


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("prompts.txt", b'{"prompt": "a"}\n', "prompts.txt: a batch file must end in .jsonl"),
        ("p.jsonl", b"\xff\xfe", "p.jsonl: not UTF-8 text"),
        ("p.jsonl", b"\n  \n", "p.jsonl: no lines"),
    ],
)
def test_a_file_the_batch_would_refuse_exits_2_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, rule: str
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BatchFileError, match=rule.split(": ", 1)[1]):
        check_batch_file(name, data)
    # no endpoints file: a call would exit 5, the check exits 2 first
    args = parse("batch", "submit", str(tmp_path / name), "--endpoints", str(tmp_path / "none.json"))
    assert args.func(args) == ExitCode.INVALID
    err = capsys.readouterr().err
    assert err.startswith("error: ") and rule in err and err.count("\n") == 1


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("batch", "submit", str(tmp_path / "gone.jsonl"), "--endpoints", str(tmp_path / "none"))
    assert args.func(args) == ExitCode.INVALID
    assert capsys.readouterr().err == f"error: {tmp_path / 'gone.jsonl'}: No such file or directory\n"


def test_the_file_goes_into_the_callers_own_folder_named_by_its_content() -> None:
    s3 = S3WithVersions()
    data = b'{"prompt": "a fox"}\n{"prompt": "a cat"}\n'
    uploaded = upload_batch_file(fake_place(s3, "bkt"), "../My Prompts.jsonl", data)
    assert uploaded.bucket == "bkt" and uploaded.version == "v1"
    assert uploaded.key.startswith(FOLDER) and uploaded.key.endswith("-My-Prompts.jsonl")
    assert uploaded.key == batch_key(FOLDER, "My Prompts.jsonl", data)
    assert s3.objects == {f"bkt/{uploaded.key}": data}
    assert batch_key(FOLDER, "x.jsonl", b"1") != batch_key(FOLDER, "x.jsonl", b"2")  # never overwritten
    assert batch_body(uploaded, notify_lines=True) == {
        "key": uploaded.key,
        "notify_lines": True,
        "version": "v1",
    }


def test_submit_uploads_posts_and_prints_the_batch_id(
    tmp_path: Path, api: BatchApi, wired: S3WithVersions, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fox.jsonl").write_text('{"prompt": "a fox"}\n')
    args = parse("batch", "submit", str(tmp_path / "fox.jsonl"))
    assert args.func(args) == 0
    assert capsys.readouterr().out == f"{BID}\n"
    (key,) = (k.removeprefix("bkt/") for k in wired.objects)
    assert api.calls == [("POST", "/v1/batches", {"key": key, "notify_lines": False, "version": "v1"})]


def test_submit_wait_follows_to_the_end_and_exits_by_how_it_ended(
    tmp_path: Path, api: BatchApi, wired: S3WithVersions, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fox.jsonl").write_text('{"prompt": "a fox"}\n')
    api.script = [view(status="RUNNING"), view(status="RUNNING", progress=0.5), view(status="COMPLETED")]
    argv = (
        "batch",
        "submit",
        str(tmp_path / "fox.jsonl"),
        "--wait",
        "--notify-lines",
        "--poll-interval",
        "0.001",
    )
    args = parse(*argv)
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out == f"{BID}\n"
    assert [line.split("] ", 1)[1].split(" ended")[0] for line in err.splitlines()[:3]] == [
        "RUNNING     2% 31/2000",
        "RUNNING    50% 31/2000",
        "COMPLETED 100% 31/2000",
    ]
    assert err.splitlines()[-1].startswith(f"{BID} COMPLETED: SUCCEEDED 10 · FAILED 21")
    assert err.splitlines()[-1].endswith(f"; results: t2v batch results {BID} -o FILE")
    assert api.calls[0][2]["notify_lines"] is True

    refused = view(status="REFUSED", error={"code": "BatchRefused", "message": "over the day's budget"})
    api.script = [refused]
    assert args.func(args) == ExitCode.JOB_FAILED
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: batch {BID} ended REFUSED: BatchRefused: over the day's budget"
    )
    api.script = [view(status="CANCELED")]
    assert args.func(args) == ExitCode.JOB_FAILED
    assert capsys.readouterr().err.splitlines()[-1] == f"error: batch {BID} ended CANCELED"


def test_a_400_from_the_api_is_one_line_naming_the_field_and_exits_2(
    api: BatchApi, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CliError) as info:
        client_for(api).submit_batch({"key": "prompts/x.jsonl", "notify_lines": False})
    assert info.value.code == ExitCode.INVALID
    assert (
        str(info.value)
        == "HTTP 400 InvalidRequest: key: not in your folder [key (must be in your own folder "
        + FOLDER
        + ")]"
    )


# --- reading a batch


NOW = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def test_status_lines_show_counts_percent_expected_finish_and_results() -> None:
    assert status_lines(view(), NOW) == [
        f"batch     {BID}",
        "status    RUNNING (cancellable)",
        f"file      s3://bkt/{FOLDER}0123456789abcdef-fox.jsonl (version v1)",
        "owner     arn:aws:iam::123456789012:user/alice (via api)",
        "lines     2000 (1980 valid, 20 refused)",
        "jobs      SUCCEEDED 10 · FAILED 21 · CANCELED 0 · TIMED_OUT 0 · active 8 · not started 1961",
        "progress  2% (31 of 2000 ended)",
        "expected  2026-12-07T10:20:34Z (in about 1234 s)",
        "video     9900 s (reserved 9900 s of the day 2026-12-07)",
        "created   2026-12-07T10:00:00Z",
        "finished  -",
    ]
    ended = status_lines(view(status="COMPLETED"), NOW)
    assert "progress  100% (31 of 2000 ended)" in ended
    assert not any(line.startswith("expected") for line in ended)
    assert ended[-1] == f"results   s3://bkt/results/{BID}.jsonl (`t2v batch results {BID} -o FILE`)"
    refused = status_lines(view(status="REFUSED", error={"code": "BatchRefused", "message": "no"}), NOW)
    assert refused[-1] == "error     BatchRefused: no"
    reading = status_lines({"batch_id": BID, "status": "READING"}, NOW)
    assert "progress  - (0 of ? ended)" in reading and "expected  no estimate yet" in reading


def test_the_list_is_a_table_with_a_header_whose_columns_line_up() -> None:
    long_key = f"{FOLDER}0123456789abcdef-a-very-long-name-of-a-prompt-file.jsonl"
    items = [
        view(),
        view("batch-2", "READING", lines={}, counts={}, progress=None, file={"bucket": "b", "key": long_key}),
    ]
    header, first, second = batch_table(items)
    assert header.split() == ["BATCH", "STATUS", "LINES", "DONE", "CREATED", "FILE"]
    assert first.split() == [
        BID,
        "RUNNING",
        "2000",
        "31",
        "2026-12-07T10:00:00Z",
        "…" + items[0]["file"]["key"][-39:],
    ]
    assert second.split()[:4] == ["batch-2", "READING", "-", "0"]
    assert second.split()[-1] == "…" + long_key[-39:]
    assert first.index("2000") == header.index("LINES") and second.index("0 ") == header.index("DONE")


def test_list_prints_the_table_and_says_when_there_are_none(
    api: BatchApi, wired: S3WithVersions, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("batch", "list")
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["BATCH", "STATUS", "LINES", "DONE", "CREATED", "FILE"]
    assert err == "no batches yet: `t2v batch submit FILE.jsonl`\n"
    api.batches[BID] = view()
    args = parse("batch", "list", "--limit", "500")
    assert args.func(args) == ExitCode.INVALID
    args = parse("batch", "status", BID)
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[1] == "status    RUNNING (cancellable)"
    args = parse("batch", "status", "../videos")
    assert args.func(args) == ExitCode.INVALID
    assert "ID: '../videos' is no batch id" in capsys.readouterr().err


def test_wait_progress_is_one_line_per_change_and_never_goes_back() -> None:
    progress = BatchProgress()
    reads = [
        view(status="READING", progress=None, counts={}, lines={}, expected_finish_at=None),
        view(progress=0.0155),
        view(progress=0.0155),  # nothing changed: no line
        view(progress=0.01, counts={"SUCCEEDED": 5, "active": 8}),  # a lagging read
        view(progress=0.5, counts={"SUCCEEDED": 990, "FAILED": 10, "active": 8}),
        view(status="COMPLETED", counts={"SUCCEEDED": 1980, "FAILED": 20}),
    ]
    lines = [progress.line(v, n * 5.0, NOW) for n, v in enumerate(reads)]
    assert lines == [
        "[    0s] READING      - 0/? ended, 0 active",
        "[    5s] RUNNING     2% 31/2000 ended, 8 active eta 1234s",
        None,
        None,
        "[   20s] RUNNING    50% 1000/2000 ended, 8 active eta 1234s",
        "[   25s] COMPLETED 100% 2000/2000 ended, 0 active",
    ]


def test_follow_gives_up_after_its_timeout_with_exit_4(api: BatchApi) -> None:
    api.batches[BID] = view()
    ticks = iter(range(100))
    err = io.StringIO()
    with pytest.raises(CliError) as info:
        follow_batch(
            client_for(api), BID, timeout=3, interval=1, started=0, err=err,
            clock=lambda: float(next(ticks)), sleep=lambda _: None,
        )  # fmt: skip
    assert info.value.code == ExitCode.WAIT_TIMEOUT
    assert f"`t2v batch status {BID}`" in str(info.value)
    assert len(err.getvalue().splitlines()) == 1  # the same view each time: one line


def test_ended_code_is_0_only_for_completed() -> None:
    err = io.StringIO()
    assert ended_code(view(status="COMPLETED"), err) == 0
    assert ended_code(view(status="CANCELED"), err) == 3
    assert ended_code(view(status="REFUSED"), err) == 3


# --- cancel and results


def test_cancel_is_ok_also_when_it_was_canceled_before(api: BatchApi) -> None:
    api.batches[BID] = view()
    client = client_for(api)
    assert cancel_batch(client, BID) == f"{BID} CANCELING"
    api.batches[BID] = view(status="CANCELED")
    assert cancel_batch(client, BID) == f"{BID} CANCELED (it was canceled before; nothing to do)"
    api.batches[BID] = view(status="COMPLETED")
    with pytest.raises(CliError, match="already ended COMPLETED") as info:
        cancel_batch(client, BID)
    assert info.value.code == ExitCode.ERROR
    with pytest.raises(CliError, match="no batch batch-x"):
        cancel_batch(client, "batch-x")


def test_results_of_a_running_batch_are_one_line_and_exit_1(
    api: BatchApi, wired: S3WithVersions, capsys: pytest.CaptureFixture[str]
) -> None:
    api.batches[BID] = view()
    with pytest.raises(CliError) as info:
        batch_results(client_for(api), BID)
    assert info.value.code == ExitCode.ERROR
    args = parse("batch", "results", BID)
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: batch {BID} has not ended yet: its results come once it ends")


def test_results_are_saved_to_a_file_or_written_to_stdout(
    tmp_path: Path,
    api: BatchApi,
    wired: S3WithVersions,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.batches[BID] = view(status="COMPLETED")
    out = tmp_path / "r" / "results.jsonl"
    args = parse("batch", "results", BID, "-o", str(out))
    assert args.func(args) == 0
    assert out.read_bytes() == RESULTS
    assert capsys.readouterr().err == f"{BID} COMPLETED: results {len(RESULTS)} bytes to {out}\n"

    class Stdout(io.StringIO):
        buffer = io.BytesIO()

    monkeypatch.setattr(commands_batch.sys, "stdout", Stdout())
    args = parse("batch", "results", BID)
    assert args.func(args) == 0
    assert Stdout.buffer.getvalue() == RESULTS
    assert capsys.readouterr().err == f"{BID} COMPLETED: results {len(RESULTS)} bytes to stdout\n"
