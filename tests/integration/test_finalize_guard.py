"""finalize against hostile video hosts (real local HTTP servers) and moto S3: SSRF and bad bodies.

Each case runs what the state machine runs: finalize, and on its error the Catch into
record_outcome. What a user sees is asserted: the job ends FAILED with the code and reason,
nothing (not even a partial object) lands in S3, no multipart upload is left open, and the one
notification carries the error and no video.
"""

from __future__ import annotations

import gzip
import importlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from t2v import wiring
from t2v.adapters.jobs_repo import JobsRepository

from tests.conftest import lambda_context
from tests.hostile_hosts import MP4_HEAD, Host, Route, close_delimited, lying_length, redirect, send

finalize_app = importlib.import_module("functions.finalize.app")

CTX = lambda_context("finalize", memory_mb=512, request_id="req-guard")
CAP = 64 * 1024


@pytest.fixture(scope="module")
def hosts() -> Iterator[SimpleNamespace]:
    other = Host({"/ok.mp4": lambda h: send(h, 200, MP4_HEAD + b"\x00" * 1000)})
    routes: dict[str, Route] = {
        "/ok.mp4": lambda h: send(h, 200, MP4_HEAD + b"\x00" * 1000),
        "/to-other-port": redirect(lambda: f"{other.origin}/ok.mp4"),
        "/to-metadata": redirect(lambda: "http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        "/to-metadata-https": redirect(lambda: "https://169.254.169.254/latest/meta-data/"),
        "/to-ipv6-loopback": redirect(lambda: f"https://[::1]:{other.port}/ok.mp4"),
        "/to-mapped": redirect(lambda: f"https://[::ffff:127.0.0.1]:{other.port}/ok.mp4"),
        "/to-private": redirect(lambda: "https://10.0.0.5/ok.mp4"),
        "/to-localhost-name": redirect(lambda: f"https://localhost:{other.port}/ok.mp4"),
        "/to-evil": redirect(lambda: "https://media.pixverseai.cn.evil.example/ok.mp4"),
        "/big": lambda h: send(h, 200, MP4_HEAD + b"\x00" * (CAP * 2)),
        "/big-no-length": close_delimited(MP4_HEAD + b"\x00" * (CAP * 4)),
        "/long-lie": lying_length(CAP // 2, MP4_HEAD + b"\x00" * 100),  # promises more than it sends
        "/html": lambda h: send(h, 200, b"<html><body>Access denied</body></html>", Content_Type="text/html"),
        "/empty": lambda h: send(h, 200, b""),
        "/gzip": lambda h: send(
            h, 200, gzip.compress(MP4_HEAD + b"\x00" * (CAP * 64)), Content_Encoding="gzip"
        ),
        "/forbidden": lambda h: send(h, 403, b"AccessDenied"),
    }
    for i in range(7):  # /chain/0 -> ... -> /chain/6 -> ok: six redirects, one too many
        routes[f"/chain/{i}"] = redirect(lambda i=i: f"{main.origin}/chain/{i + 1}" if i < 6 else "/ok.mp4")
    routes["/short-chain"] = redirect(lambda: f"{main.origin}/chain/3")  # four redirects: allowed
    main = Host(routes)
    try:
        yield SimpleNamespace(main=main, other=other)
    finally:
        main.close()
        other.close()


@pytest.fixture
def env(stack: Any, hosts: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    # The main host is an explicit origin (as the sandbox allows its emulator); "localhost" is a
    # host-name entry, so it must resolve to public addresses, which it never does.
    monkeypatch.setenv(
        "VIDEO_HOST_ALLOWLIST", f"media.pixverseai.cn,*.aliyuncs.com,localhost,{hosts.main.origin}"
    )
    monkeypatch.setenv("MAX_VIDEO_BYTES", str(CAP))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    wiring.finalize_deps.cache_clear()
    hosts.main.paths.clear()
    hosts.other.paths.clear()
    yield SimpleNamespace(stack=stack, hosts=hosts)
    wiring.finalize_deps.cache_clear()


def run_finalize(env: SimpleNamespace, url: str) -> tuple[str, dict[str, Any]]:
    """Record a job, then finalize it as the state machine does: on error, Catch -> RecordFailure."""
    job_id = f"job-guard-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    JobsRepository(env.stack.table).create_if_absent(
        job_id,
        request={"prompt": "a guarded download", "size": "640*360", "duration": 5},
        source="test",
        origin={},
        now=now,
        deadline_at=now + timedelta(hours=1),
    )
    outcome = {"kind": "succeeded", "video_url": url, "usage": {"duration": 5}}
    try:
        return job_id, finalize_app.lambda_handler({"job_id": job_id, "outcome": outcome}, CTX)
    except Exception as exc:
        cause = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
        event = {"job_id": job_id, "error": {"Error": type(exc).__name__, "Cause": cause}}
        return job_id, finalize_app.lambda_handler(event, CTX)


def assert_failed_and_nothing_stored(env: SimpleNamespace, job_id: str, code: str, reason: str) -> None:
    job = env.stack.job(job_id)
    assert job is not None
    assert (job["status"], job["error_code"]) == ("FAILED", code), job
    assert reason in job["error_message"], job["error_message"]
    s3 = boto3.client("s3")
    assert s3.list_objects_v2(Bucket=env.stack.bucket).get("KeyCount", 0) == 0
    assert not s3.list_multipart_uploads(Bucket=env.stack.bucket).get("Uploads")
    [note] = env.stack.notifications()
    assert note["attributes"]["status"] == "FAILED"
    assert note["message"]["error"]["code"] == code
    assert "video" not in note["message"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-other-port", "https"),  # another origin on the same machine
        ("/to-metadata", "https"),
        ("/to-metadata-https", "IP address"),
        ("/to-ipv6-loopback", "IP address"),
        ("/to-mapped", "IP address"),
        ("/to-private", "IP address"),
        ("/to-localhost-name", "non-public address"),  # allowlisted name, loopback address
        ("/to-evil", "not in the allowlist"),
        ("/chain/0", "more than 5 redirects"),
        ("/big", "over the cap"),
        ("/big-no-length", "exceeds the cap"),
        ("/gzip", "gzip"),
        ("/html", "not an MP4"),
        ("/empty", "empty"),
        ("/forbidden", "HTTP 403"),
    ],
)
def test_refused_download_fails_the_job_and_stores_nothing(
    env: SimpleNamespace, path: str, reason: str
) -> None:
    job_id, result = run_finalize(env, f"{env.hosts.main.origin}{path}")

    assert result["status"] == "FAILED"
    assert_failed_and_nothing_stored(env, job_id, "DownloadRejected", reason)
    assert env.hosts.other.paths == []  # no redirect reached the second host


def test_host_name_resolving_to_loopback_is_refused_before_any_request(env: SimpleNamespace) -> None:
    job_id, _ = run_finalize(env, f"https://localhost:{env.hosts.main.port}/ok.mp4")

    assert_failed_and_nothing_stored(env, job_id, "DownloadRejected", "non-public address")
    assert env.hosts.main.paths == []


def test_a_body_shorter_than_its_length_is_a_retryable_failure_leaving_nothing(env: SimpleNamespace) -> None:
    job_id, _ = run_finalize(env, f"{env.hosts.main.origin}/long-lie")

    assert_failed_and_nothing_stored(env, job_id, "DownloadFailed", "RemoteProtocolError")


def test_redirects_within_the_limit_on_an_allowed_origin_are_followed(env: SimpleNamespace) -> None:
    job_id, result = run_finalize(env, f"{env.hosts.main.origin}/short-chain")

    assert result["status"] == "SUCCEEDED"
    stored = boto3.client("s3").get_object(Bucket=env.stack.bucket, Key=f"videos/{job_id}.mp4")["Body"].read()
    assert stored == MP4_HEAD + b"\x00" * 1000
