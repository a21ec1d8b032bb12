"""The download guard (SSRF): which URLs, addresses, redirects and bodies finalize refuses.

No network: DNS is a fake resolver and HTTP an httpx.MockTransport that records what was asked,
so each test can say both what was refused and that nothing reached a forbidden address.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator

import httpx
import pytest
from t2v.adapters.download import MAX_REDIRECTS, VideoDownloader
from t2v.media import DownloadError, DownloadRejectedError, HostAllowlist, is_public_address

MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 1000
PUBLIC = "47.95.1.1"


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.9.10",
        "169.254.169.254",  # the instance metadata service
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd00:ec2::254",  # the IPv6 metadata service
        "fe80::1",
        "::ffff:127.0.0.1",  # IPv4-mapped IPv6
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "[::1]",
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


class Recorder:
    """A fake video host: answers by path, remembers every request it was sent."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get(request.url.path)
        return handler(request) if handler else httpx.Response(404)


def downloader(
    routes: dict[str, Callable[[httpx.Request], httpx.Response]],
    dns: dict[str, list[str]] | None = None,
    *,
    allow: tuple[str, ...] = ("media.pixverseai.cn", "*.aliyuncs.com"),
    max_bytes: int = 4096,
) -> tuple[VideoDownloader, Recorder, list[str]]:
    recorder = Recorder(routes)
    asked: list[str] = []
    answers = {"media.pixverseai.cn": [PUBLIC], **(dns or {})}

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers.get(host, [PUBLIC])

    client = httpx.Client(transport=httpx.MockTransport(recorder), follow_redirects=False)
    guard = VideoDownloader(HostAllowlist(list(allow)), max_bytes=max_bytes, client=client, resolver=resolver)
    return guard, recorder, asked


def fetch(guard: VideoDownloader, url: str) -> bytes:
    with guard.stream(url) as chunks:
        return b"".join(chunks)


def body(data: bytes, status: int = 200, **headers: str) -> httpx.Response:
    """A streamed answer, as a real server gives (MockTransport pre-reads `content=bytes`)."""
    return httpx.Response(status, content=iter([data]), headers={"Content-Length": str(len(data)), **headers})


def ok(_: httpx.Request) -> httpx.Response:
    return body(MP4)


def redirect_to(location: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(302, headers={"Location": location})


def test_connects_to_the_checked_address_and_keeps_the_name_for_tls() -> None:
    guard, host, asked = downloader({"/a.mp4": ok})

    assert fetch(guard, "https://media.pixverseai.cn/a.mp4") == MP4

    [request] = host.requests
    assert request.url.host == PUBLIC  # pinned: a second DNS answer cannot redirect the connection
    assert request.headers["host"] == "media.pixverseai.cn"
    assert request.extensions["sni_hostname"] == "media.pixverseai.cn"
    assert request.headers["accept-encoding"] == "identity"
    assert asked == ["media.pixverseai.cn"]


@pytest.mark.parametrize(
    "answer",
    [
        ["10.0.0.7"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fd00::1"],
        ["::ffff:10.0.0.1"],
        [PUBLIC, "10.0.0.7"],
        [],
    ],
)
def test_a_host_name_resolving_to_a_private_address_is_refused_before_connecting(answer: list[str]) -> None:
    guard, host, _ = downloader({"/a.mp4": ok}, {"evil.oss.aliyuncs.com": answer})

    with pytest.raises(DownloadRejectedError, match="non-public address"):
        fetch(guard, "https://evil.oss.aliyuncs.com/a.mp4")
    assert host.requests == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://media.pixverseai.cn/a.mp4", "https"),
        ("https://evil.example.com/a.mp4", "allowlist"),
        ("https://169.254.169.254/latest/meta-data/", "IP address"),
        ("https://[::1]/a.mp4", "IP address"),
        ("https://[::ffff:127.0.0.1]/a.mp4", "IP address"),
        ("https://10.0.0.1/a.mp4", "IP address"),
        ("https://media.pixverseai.cn\\@evil.com/a.mp4", "credentials"),  # httpx reads evil.com as the host
        ("https://user:pw@media.pixverseai.cn/a.mp4", "credentials"),
        ("file:///etc/passwd", "https URL"),
        ("/relative/a.mp4", "absolute"),
        ("https://media.pixverseai.cn:99999/a.mp4", "port"),
    ],
)
def test_refused_urls_reach_no_host(url: str, reason: str) -> None:
    guard, host, _ = downloader({"/a.mp4": ok})

    with pytest.raises(DownloadRejectedError, match=reason):
        fetch(guard, url)
    assert host.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "http://media.pixverseai.cn/b.mp4",  # downgrade to plain http
        "https://evil.example.com/b.mp4",  # another host
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://private.oss.aliyuncs.com/b.mp4",  # allowlisted name, private address
        "http://[::1]:8080/",
        "//evil.example.com/b.mp4",  # scheme-relative
    ],
)
def test_redirects_are_checked_like_the_first_url(location: str) -> None:
    guard, host, _ = downloader(
        {"/a.mp4": redirect_to(location), "/b.mp4": ok}, {"private.oss.aliyuncs.com": ["192.168.0.9"]}
    )

    with pytest.raises(DownloadRejectedError):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")
    assert [r.url.path for r in host.requests] == ["/a.mp4"]


def test_a_redirect_chain_is_followed_up_to_the_limit_and_no_further() -> None:
    def chain(length: int) -> dict[str, Callable[[httpx.Request], httpx.Response]]:
        routes = {f"/{i}": redirect_to(f"https://media.pixverseai.cn/{i + 1}") for i in range(length)}
        routes[f"/{length}"] = ok
        return routes

    guard, _, _ = downloader(chain(MAX_REDIRECTS))
    assert fetch(guard, "https://media.pixverseai.cn/0") == MP4

    guard, host, _ = downloader(chain(MAX_REDIRECTS + 1))
    with pytest.raises(DownloadRejectedError, match="redirects"):
        fetch(guard, "https://media.pixverseai.cn/0")
    assert len(host.requests) == MAX_REDIRECTS + 1


def test_a_chain_that_ends_on_a_private_address_is_refused_at_that_hop() -> None:
    routes = {
        "/0": redirect_to("https://cdn.oss.aliyuncs.com/1"),
        "/1": redirect_to("https://internal.oss.aliyuncs.com/2"),
        "/2": ok,
    }
    guard, host, asked = downloader(routes, {"internal.oss.aliyuncs.com": ["10.1.2.3"]})

    with pytest.raises(DownloadRejectedError, match=r"internal\.oss\.aliyuncs\.com"):
        fetch(guard, "https://media.pixverseai.cn/0")
    assert [r.url.path for r in host.requests] == ["/0", "/1"]
    assert asked == ["media.pixverseai.cn", "cdn.oss.aliyuncs.com", "internal.oss.aliyuncs.com"]


def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    guard, _, _ = downloader({"/a.mp4": lambda _: body(MP4 * 10)}, max_bytes=4096)
    with pytest.raises(DownloadRejectedError, match="over the cap"):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")


def test_a_body_without_length_is_cut_at_the_cap() -> None:
    def endless(_: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield MP4
            while True:
                yield b"\x00" * 1024

        return httpx.Response(200, content=body())

    guard, _, _ = downloader({"/a.mp4": endless}, max_bytes=64 * 1024)
    with pytest.raises(DownloadRejectedError, match="exceeds the cap"):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")


def test_a_body_longer_than_its_declared_length_is_still_cut_at_the_cap() -> None:
    # The cap counts bytes received, not what Content-Length promises.
    def liar(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([MP4, b"\x00" * 200_000]), headers={"Content-Length": "100"})

    guard, _, _ = downloader({"/a.mp4": liar}, max_bytes=64 * 1024)
    with pytest.raises(DownloadRejectedError, match="exceeds the cap"):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")


def test_a_compressed_body_is_refused_rather_than_inflated() -> None:
    bomb = gzip.compress(MP4 + b"\x00" * 10_000_000)

    def gzipped(_: httpx.Request) -> httpx.Response:
        return body(bomb, **{"Content-Encoding": "gzip"})

    guard, _, _ = downloader({"/a.mp4": gzipped}, max_bytes=1024 * 1024)
    with pytest.raises(DownloadRejectedError, match="gzip"):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")


@pytest.mark.parametrize("status", [204, 206, 304, 403, 404])
def test_anything_but_200_is_refused(status: int) -> None:
    guard, _, _ = downloader({"/a.mp4": lambda _: body(b"", status)})
    with pytest.raises(DownloadRejectedError, match=str(status)):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")


def test_an_unparsable_redirect_is_never_followed() -> None:
    guard, host, _ = downloader({"/a.mp4": redirect_to("https://exa mple.com:bad/"), "/b.mp4": ok})
    with pytest.raises((DownloadRejectedError, DownloadError)):
        fetch(guard, "https://media.pixverseai.cn/a.mp4")
    assert len(host.requests) == 1


V6 = "2606:4700:4700::1111"
V4_SECOND = "8.8.8.8"


def unreachable(*hosts: str) -> Callable[[httpx.Request], httpx.Response]:
    """A video host whose listed addresses refuse connections (no route, as from a Lambda without IPv6)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host in hosts:
            raise httpx.ConnectError("no route to host", request=request)
        return body(MP4)

    return answer


def test_ipv4_addresses_are_dialled_before_ipv6() -> None:
    # Given a host that resolves to IPv6 first (string order) and a network with no IPv6 route
    guard, host, _ = downloader({"/a.mp4": unreachable(V6)}, {"cdn.oss.aliyuncs.com": [V6, PUBLIC]})

    # When the video is fetched, Then it comes over IPv4, and the IPv6 address was never dialled
    assert fetch(guard, "https://cdn.oss.aliyuncs.com/a.mp4") == MP4
    assert [r.url.host for r in host.requests] == [PUBLIC]


def test_every_checked_address_is_tried_until_one_connects() -> None:
    guard, host, _ = downloader(
        {"/a.mp4": unreachable(PUBLIC, V4_SECOND)}, {"cdn.oss.aliyuncs.com": [PUBLIC, V6, V4_SECOND]}
    )

    assert fetch(guard, "https://cdn.oss.aliyuncs.com/a.mp4") == MP4
    assert [r.url.host for r in host.requests] == [PUBLIC, V4_SECOND, V6]
    assert {r.headers["host"] for r in host.requests} == {"cdn.oss.aliyuncs.com"}
    assert {r.extensions["sni_hostname"] for r in host.requests} == {"cdn.oss.aliyuncs.com"}


def test_when_no_address_connects_the_download_fails_retryably() -> None:
    guard, host, _ = downloader({"/a.mp4": unreachable(PUBLIC, V6)}, {"cdn.oss.aliyuncs.com": [V6, PUBLIC]})

    with pytest.raises(DownloadError, match="ConnectError"):
        fetch(guard, "https://cdn.oss.aliyuncs.com/a.mp4")
    assert len(host.requests) == 2


def test_an_address_that_answered_is_not_retried_on_another() -> None:
    # A read failure after connecting is not a routing problem: no second address gets the request.
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    guard, host, _ = downloader({"/a.mp4": broken}, {"cdn.oss.aliyuncs.com": [PUBLIC, V4_SECOND]})
    with pytest.raises(DownloadError, match="ReadTimeout"):
        fetch(guard, "https://cdn.oss.aliyuncs.com/a.mp4")
    assert len(host.requests) == 1
