"""The REST API as a user sees it: where it is, how requests are signed, what each answer means.

Pure helpers (exit codes, progress lines, request bodies) have no I/O; `ApiClient` does the HTTP.
The API is found in the sandbox's `.sandbox/endpoints.json` or in a deployed stack's outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TERMINAL_OK: Final = "SUCCEEDED"
TERMINAL_BAD: Final = frozenset({"FAILED", "CANCELED", "TIMED_OUT"})
DEFAULT_ENDPOINTS: Final = Path(".sandbox/endpoints.json")


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # anything else: not found, conflict, a server error
    INVALID = 2  # HTTP 400, or a bad argument
    JOB_FAILED = 3  # the job ended FAILED, CANCELED or TIMED_OUT
    WAIT_TIMEOUT = 4  # gave up waiting (--timeout)
    UNREACHABLE = 5  # no endpoints file, connection refused


class CliError(Exception):
    """One line for stderr and the exit code it stands for."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for_http(status: int) -> ExitCode:
    if status < 400:
        return ExitCode.OK
    if status == 400:
        return ExitCode.INVALID
    return ExitCode.ERROR


def exit_code_for_status(status: str) -> ExitCode:
    """The exit code of a job that reached `status` (only terminal ones are meaningful)."""
    if status == TERMINAL_OK:
        return ExitCode.OK
    if status in TERMINAL_BAD:
        return ExitCode.JOB_FAILED
    return ExitCode.WAIT_TIMEOUT


def error_line(status: int, body: Any) -> str:
    """One clear line from an API error body `{"error": {"code", "message", "fields"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        message = body.get("message") if isinstance(body, dict) else None
        return f"HTTP {status}: {message or str(body)[:200] or 'no details'}"
    line = f"{error.get('code') or 'Error'}: {error.get('message') or 'no message'}"
    fields = error.get("fields") or []
    named = [f"{f.get('field')} ({f.get('message')})" for f in fields if isinstance(f, dict)]
    if named and not all(str(f.get("message")) in line for f in fields if isinstance(f, dict)):
        line += " [" + "; ".join(named) + "]"
    return f"HTTP {status} {line}"


@dataclass(frozen=True)
class ProgressFacts:
    """What a job view says about its progress: phase, fraction done and seconds left (None: unknown)."""

    phase: str | None
    fraction: float | None
    seconds_left: float | None


def progress_facts(job: dict[str, Any], now: datetime | None = None) -> ProgressFacts:
    """Read the view's `progress` block (an API without one: all None)."""
    block = job.get("progress") if isinstance(job.get("progress"), dict) else {}
    phase = str(block["phase"]) if block.get("phase") else None
    fraction = block.get("fraction")
    fraction = min(1.0, max(0.0, float(fraction))) if isinstance(fraction, int | float) else None
    left = None
    expected = block.get("expected_finish_at")
    if isinstance(expected, str) and expected:
        try:
            finish = datetime.fromisoformat(expected.replace("Z", "+00:00"))
        except ValueError:
            finish = None
        if finish is not None:
            finish = finish if finish.tzinfo else finish.replace(tzinfo=UTC)
            left = max(0.0, (finish - (now or datetime.now(UTC))).total_seconds())
    return ProgressFacts(phase, fraction, left)


def format_progress(
    status: str,
    elapsed: float,
    polls: int | None,
    job_id: str = "",
    facts: ProgressFacts | None = None,
) -> str:
    """`[  12s] RUNNING     polls=3 running 40% eta 18s job-...`: what `--wait` prints when not on a terminal."""
    parts = [f"[{int(elapsed):>4}s]", f"{status:<11}", f"polls={polls or 0}"]
    if facts is not None:
        if facts.phase:
            parts.append(facts.phase)
        if facts.fraction is not None:
            parts.append(f"{facts.fraction:.0%}")
        if facts.seconds_left is not None:
            parts.append(f"eta {facts.seconds_left:.0f}s")
    if job_id:
        parts.append(job_id)
    return " ".join(parts)


def request_body(
    prompt: str,
    *,
    size: str | None = None,
    duration: int | None = None,
    audio: bool | None = None,
    watermark: bool | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The POST /videos body; options left out take the API's defaults."""
    body: dict[str, Any] = {"prompt": prompt}
    optional = {"size": size, "duration": duration, "audio": audio, "watermark": watermark, "seed": seed}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def summary_line(job: dict[str, Any], *, path: Path | None, elapsed: float) -> str:
    """One line about a finished video: size, duration, bytes, sha256, elapsed."""
    request = job.get("request") or {}
    video = job.get("video") or {}
    parts = [
        f"{job.get('job_id')} {job.get('status')}",
        f"size={request.get('size', '?')}",
        f"duration={request.get('duration', '?')}s",
        f"bytes={video.get('bytes', '?')}",
        f"sha256={video.get('sha256', '?')}",
        f"elapsed={elapsed:.1f}s",
    ]
    if path is not None:
        parts.append(f"file={path}")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# where the API is


@dataclass(frozen=True)
class Target:
    api_url: str  # e.g. http://127.0.0.1:PORT/Prod or https://ID.execute-api.REGION.amazonaws.com/Prod
    region: str
    credentials: Credentials | None  # None: unsigned (API key mode or no auth)
    api_key: str | None = None


def sandbox_target(endpoints_file: Path = DEFAULT_ENDPOINTS) -> Target:
    try:
        endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"no sandbox endpoints at {endpoints_file}: start one with `t2v sandbox up` (or pass --stack NAME)",
            ExitCode.UNREACHABLE,
        ) from None
    except ValueError as exc:
        raise CliError(f"{endpoints_file} is not valid JSON: {exc}", ExitCode.UNREACHABLE) from None
    api_url = endpoints.get("api_url")
    if not api_url:
        raise CliError(
            f"the sandbox in {endpoints_file} has no REST API (template.yaml declares none yet)",
            ExitCode.UNREACHABLE,
        )
    creds = endpoints.get("credentials") or {}
    return Target(
        api_url=str(api_url).rstrip("/"),
        region=str(endpoints.get("region") or "us-east-1"),
        credentials=Credentials(creds.get("aws_access_key_id"), creds.get("aws_secret_access_key")),
        api_key=os.environ.get("T2V_API_KEY"),
    )


def api_url_from_outputs(outputs: dict[str, str]) -> str | None:
    """The API's base URL among stack outputs: a key naming an API URL, else any execute-api URL."""
    for key in ("ApiUrl", "ApiEndpoint", "ApiBaseUrl", "RestApiUrl"):
        if outputs.get(key):
            return outputs[key].rstrip("/")
    for value in outputs.values():
        if isinstance(value, str) and ".execute-api." in value and value.startswith("https://"):
            return value.rstrip("/")
    return None


# ---------------------------------------------------------------------------------------------
# HTTP


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


class ApiClient:
    """Signed JSON calls to the video API; network failures become CliError(UNREACHABLE)."""

    def __init__(self, target: Target, *, timeout: float = 30.0, transport: Any = None) -> None:
        self.target = target
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def signed_headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        if self.target.api_key:
            headers = {**headers, "x-api-key": self.target.api_key}
        if self.target.credentials is None:
            return headers
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self.target.credentials, "execute-api", self.target.region).add_auth(request)
        return dict(request.headers.items())

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        url = self.target.api_url + path
        clean = {k: v for k, v in (query or {}).items() if v is not None}
        if clean:
            url += "?" + urlencode(clean)
        body = b"" if json_body is None else json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        base = {"Accept": "application/json", **(headers or {})}
        if json_body is not None:
            base["Content-Type"] = "application/json"
        try:
            response = self._http.request(
                method, url, content=body, headers=self.signed_headers(method, url, body, base)
            )
        except httpx.TransportError as exc:
            raise CliError(
                f"cannot reach the API at {self.target.api_url}: {exc}", ExitCode.UNREACHABLE
            ) from None
        try:
            parsed: Any = response.json() if response.content else None
        except ValueError:
            parsed = {"message": response.text[:200]}
        return ApiResponse(response.status_code, parsed, dict(response.headers))

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """The body of a 2xx answer; any other answer becomes a CliError with its one line."""
        response = self.call(method, path, **kwargs)
        if response.status >= 300:
            raise CliError(error_line(response.status, response.body), exit_code_for_http(response.status))
        return response.body

    # --- the API's operations
    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: dict[str, Any] = self.ok("POST", "/videos", json_body=body, headers=headers)
        return result

    def get(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"/videos/{job_id}")
        return result

    def list(self, *, status: str | None = None, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.ok("GET", "/videos", query={"status": status, "limit": limit, "cursor": cursor})

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("DELETE", f"/videos/{job_id}")
        return result

    def wait(
        self,
        job_id: str,
        *,
        timeout: float,
        interval: float,
        on_progress: Callable[[dict[str, Any], float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll GET /videos/{id} until the job ends; CliError(WAIT_TIMEOUT) after `timeout` seconds."""
        started = clock()
        while True:
            job = self.get(job_id)
            elapsed = clock() - started
            if on_progress is not None:
                on_progress(job, elapsed)
            if job.get("status") in TERMINAL_BAD | {TERMINAL_OK}:
                return job
            if elapsed >= timeout:
                raise CliError(
                    f"gave up waiting for {job_id} after {elapsed:.1f} s (still {job.get('status')}); "
                    f"`t2v status {job_id}` shows it later",
                    ExitCode.WAIT_TIMEOUT,
                )
            sleep(min(interval, max(0.0, timeout - elapsed)) or interval)

    def download(self, url: str, path: Path, *, sha256: str | None = None) -> tuple[int, str]:
        """Stream the presigned URL to `path` (atomically); returns (bytes, sha256)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, self._http.stream("GET", url, timeout=300.0) as response:
                if response.status_code != 200:
                    raise CliError(f"download failed: HTTP {response.status_code} from the presigned URL")
                for chunk in _chunks(response):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if sha256 and digest.hexdigest() != sha256:
                raise CliError(f"download corrupt: sha256 {digest.hexdigest()} != {sha256}")
            tmp.chmod(0o644)  # mkstemp makes it 0600; a saved video is an ordinary file
            tmp.replace(path)
        except httpx.TransportError as exc:
            raise CliError(f"download failed: {exc}", ExitCode.UNREACHABLE) from None
        finally:
            tmp.unlink(missing_ok=True)
        return size, digest.hexdigest()


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    yield from response.iter_bytes(chunk_size=1024 * 1024)
