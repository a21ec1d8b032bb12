"""Safe streaming download of a provider video: allowlisted hosts only, also after redirects."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urljoin

import httpx

from t2v.media import DownloadError, DownloadRejectedError, HostAllowlist, is_public_address

MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=10.0, pool=10.0)

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DownloadError(f"cannot resolve video host {host}: {exc.strerror}") from None
    return sorted({str(info[4][0]) for info in infos})


class VideoDownloader:
    def __init__(
        self,
        allowlist: HostAllowlist,
        *,
        max_bytes: int,
        client: httpx.Client | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._allowlist = allowlist
        self._max_bytes = max_bytes
        self._client = client
        self._resolver = resolver

    def _check(self, url: str) -> None:
        origin = self._allowlist.check(url)
        if self._allowlist.is_explicit(origin):
            return
        addresses = self._resolver(origin.host, origin.port)
        bad = [a for a in addresses if not is_public_address(a)]
        if bad or not addresses:
            raise DownloadRejectedError(f"video host {origin.host} resolves to a non-public address")

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        """Yield an iterator over the body's chunks; every hop of a redirect is checked first."""
        client = self._client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        try:
            current = url
            for _ in range(MAX_REDIRECTS + 1):
                self._check(current)
                try:
                    with client.stream("GET", current) as response:
                        if response.is_redirect:
                            current = urljoin(current, response.headers.get("location", ""))
                            continue
                        self._check_response(response)
                        yield self._chunks(response)
                        return
                except httpx.HTTPError as exc:
                    raise DownloadError(f"video download failed: {type(exc).__name__}") from None
            raise DownloadRejectedError(f"more than {MAX_REDIRECTS} redirects")
        finally:
            if self._client is None:
                client.close()

    def _check_response(self, response: httpx.Response) -> None:
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise DownloadError(f"video host answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise DownloadRejectedError(f"video host answered HTTP {response.status_code}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self._max_bytes:
            raise DownloadRejectedError(f"video is {int(length)} bytes, over the cap of {self._max_bytes}")

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        total = 0
        # As the network delivers them (~64 KiB): a fixed chunk size would make httpx copy every
        # byte three times to re-cut them, a third of the CPU of a copy into S3.
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self._max_bytes:
                raise DownloadRejectedError(f"video exceeds the cap of {self._max_bytes} bytes")
            yield chunk
