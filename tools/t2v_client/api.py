"""Signed JSON calls to the video API (`ApiClient`): what each answer means, and the download."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from t2v_client.errors import CliError, ExitCode, error_line, exit_code_for_http
from t2v_client.jobs import TERMINAL_BAD, TERMINAL_OK
from t2v_client.models import Catalog, ModelsError, parse_catalog
from t2v_client.target import Target


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

    def list(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
        order: str | None = None,
        batch: str | None = None,
    ) -> Any:
        query = {"status": status, "limit": limit, "cursor": cursor, "since": since, "until": until}
        return self.ok("GET", "/videos", query={**query, "q": q, "order": order, "batch": batch})

    # --- batches (docs/batches.md)
    def submit_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("POST", "/batches", json_body=body)
        return result

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"/batches/{batch_id}")
        return result

    def list_batches(self, *, limit: int | None = None, cursor: str | None = None) -> Any:
        return self.ok("GET", "/batches", query={"limit": limit, "cursor": cursor})

    def models(self) -> Catalog:
        """The model families the API serves (GET /models); CliError when it cannot say."""
        try:
            body = self.ok("GET", "/models")
        except CliError as exc:
            raise CliError(f"cannot list the models (GET /v1/models): {exc}", exc.code) from None
        try:
            return parse_catalog(body)
        except ModelsError as exc:
            raise CliError(f"cannot list the models: {exc}") from None

    def usage(self) -> dict[str, Any]:
        """The caller's day of billed seconds and the account's (GET /usage)."""
        result: dict[str, Any] = self.ok("GET", "/usage")
        return result

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

    def copy_to(self, url: str, out: BinaryIO) -> int:
        """Stream a presigned URL's bytes into `out` (standard output); the bytes written."""
        size = 0
        try:
            with self._http.stream("GET", url, timeout=300.0) as response:
                if response.status_code != 200:
                    raise CliError(f"download failed: HTTP {response.status_code} from the presigned URL")
                for chunk in _chunks(response):
                    out.write(chunk)
                    size += len(chunk)
        except httpx.TransportError as exc:
            raise CliError(f"download failed: {exc}", ExitCode.UNREACHABLE) from None
        out.flush()
        return size


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    yield from response.iter_bytes(chunk_size=1024 * 1024)
