"""Safe streaming download of a provider video: allowlisted hosts only, also after redirects.

Every hop is parsed once, by httpx, and that parse is what is checked and what is fetched (no
parser differential). For an allowlisted host name the resolved addresses must all be public, and
the connection goes to an address that was checked (Host header and TLS SNI keep the name, so the
certificate is verified against it): a DNS answer that changes between check and connect cannot
steer the request to a private address. Each checked address is dialled in turn, IPv4 first, until
one connects. Bodies are read raw with `Accept-Encoding: identity`, so
the size cap counts the bytes on the wire and a compressed body cannot expand in memory.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

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
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # getaddrinfo's order, once each


def dialling_order(addresses: list[str]) -> list[str]:
    """IPv4 before IPv6, each family in the resolver's order: a Lambda outside a dual-stack VPC has
    no IPv6 route, so an IPv6 address first would fail every attempt there."""
    return sorted(addresses, key=lambda a: ipaddress.ip_address(a.split("%", 1)[0]).version)


@dataclass(frozen=True, slots=True)
class Hop:
    """One request to make: the URL to connect to, and the headers/extensions that keep the name."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _parse(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise DownloadRejectedError("video URL is not a valid URL") from None
    if not parsed.is_absolute_url:
        raise DownloadRejectedError("video URL must be an absolute https URL")
    return parsed


def _follow(current: httpx.URL, location: str) -> httpx.URL:
    try:
        return _parse(current.join(location))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise DownloadRejectedError("video host redirected to an invalid URL") from None


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

    def _hops(self, url: httpx.URL) -> list[Hop]:
        """Check one URL and say where to connect, each checked address in dialling order; raises
        DownloadRejectedError when it is not allowed."""
        origin = self._allowlist.check(str(url))
        headers = {"Accept-Encoding": "identity"}
        if self._allowlist.is_explicit(origin):
            return [Hop(url, headers)]
        addresses = self._resolver(origin.host, origin.port)
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise DownloadRejectedError(f"video host {origin.host} resolves to a non-public address")
        host_header = origin.host if url.port is None else f"{origin.host}:{url.port}"
        return [
            Hop(url.copy_with(host=address), {**headers, "Host": host_header}, {"sni_hostname": origin.host})
            for address in dialling_order(addresses)
        ]

    @staticmethod
    def _connect(client: httpx.Client, hops: list[Hop], stack: ExitStack) -> httpx.Response:
        """The first hop that connects answers; only a failed connect moves on to the next address
        (once a host answered, trying another could fetch the body twice)."""

        def open_(hop: Hop) -> httpx.Response:
            return stack.enter_context(
                client.stream("GET", hop.url, headers=hop.headers, extensions=hop.extensions)
            )

        for hop in hops[:-1]:
            try:
                return open_(hop)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue
        return open_(hops[-1])

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        """Yield an iterator over the body's chunks; every hop of a redirect is checked first."""
        client = self._client or httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        try:
            current = _parse(url)
            for _ in range(MAX_REDIRECTS + 1):
                hops = self._hops(current)
                try:
                    with ExitStack() as stack:
                        response = self._connect(client, hops, stack)
                        if response.is_redirect and response.headers.get("location"):
                            current = _follow(current, response.headers["location"])
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
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"", "identity"}:
            raise DownloadRejectedError(f"video host sent a {encoding}-encoded body; expected the raw MP4")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self._max_bytes:
            raise DownloadRejectedError(f"video is {int(length)} bytes, over the cap of {self._max_bytes}")

    def _chunks(self, response: httpx.Response) -> Iterator[bytes]:
        total = 0
        # Raw (compressed answers are refused), and as the network delivers them (~64 KiB): a fixed
        # chunk size would make httpx copy every byte again to re-cut them.
        for chunk in response.iter_raw():
            total += len(chunk)
            if total > self._max_bytes:
                raise DownloadRejectedError(f"video exceeds the cap of {self._max_bytes} bytes")
            yield chunk
