"""Checks on downloaded bytes and URLs (pure domain, no I/O)."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from t2v.errors import PipelineError


class DownloadRejectedError(PipelineError):
    """The video URL or its bytes are not acceptable (host, scheme, size, format). Never retried."""

    code = "DownloadRejected"


class DownloadError(PipelineError):
    """A transient failure while downloading or storing the video. Retried with backoff."""

    code = "DownloadFailed"
    retryable = True


def looks_like_mp4(head: bytes) -> bool:
    """An ISO-BMFF file starts with a box whose type at offset 4 is `ftyp`."""
    return len(head) >= 8 and head[4:8] == b"ftyp"


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


def _origin(url: str) -> Origin:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DownloadRejectedError(f"video URL must be an absolute http(s) URL, got scheme {parts.scheme!r}")
    if parts.username or parts.password:
        raise DownloadRejectedError("video URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DownloadRejectedError("video URL has an invalid port") from None
    return Origin(parts.scheme, parts.hostname.lower().rstrip("."), port)


class HostAllowlist:
    """Where videos may be downloaded from.

    Entries are host names (`media.pixverseai.cn`), wildcards (`*.aliyuncs.com`, which does not match
    the bare `aliyuncs.com`), both https only and public addresses only; or explicit origins
    (`http://127.0.0.1:8765`), which allow exactly that scheme, host and port, private or not: the
    local sandbox's emulator needs one, production never does.
    """

    def __init__(self, entries: list[str]) -> None:
        self._hosts: list[str] = []
        self._origins: set[Origin] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            if "://" in entry:
                self._origins.add(_origin(entry))
            else:
                self._hosts.append(entry)

    def __repr__(self) -> str:
        return f"HostAllowlist(hosts={self._hosts!r}, origins={sorted(map(str, self._origins))!r})"

    def check(self, url: str) -> Origin:
        """Raise DownloadRejectedError unless `url` may be fetched. Returns its origin.

        `requires_public_ip` of the result tells the caller to check resolved addresses.
        """
        origin = _origin(url)
        if origin in self._origins:
            return origin
        if origin.scheme != "https":
            raise DownloadRejectedError(f"video URL must use https, got {origin.scheme}://{origin.host}")
        if _is_ip_literal(origin.host):
            raise DownloadRejectedError(
                f"video host {origin.host} is an IP address, not an allowed host name"
            )
        if not any(fnmatch.fnmatchcase(origin.host, pattern) for pattern in self._hosts):
            raise DownloadRejectedError(f"video host {origin.host} is not in the allowlist")
        return origin

    def is_explicit(self, origin: Origin) -> bool:
        return origin in self._origins


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_public_address(address: str) -> bool:
    """True only for a globally routable unicast address.

    An IPv6 address that embeds an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4, Teredo, NAT64
    `64:ff9b::/96`) is judged by the embedded address too, so `::ffff:127.0.0.1` is not public;
    shared (100.64/10), benchmarking and documentation ranges are not public either.
    """
    ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(is_public_address(str(v4)) for v4 in embedded if v4 is not None)
    return True


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
