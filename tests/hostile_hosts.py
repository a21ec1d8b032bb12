"""Hostile video hosts for the SSRF tests: local HTTP servers whose answers are plain functions of the path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"

Route = Callable[[BaseHTTPRequestHandler], None]


class Host:
    """A local HTTP server whose answers are plain functions of the request path."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.paths: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                host.paths.append(self.path)
                route = host.routes.get(self.path.split("?")[0])
                if route is None:
                    send(self, 404, b"no such video")
                else:
                    route(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        handler.send_header(key.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: Callable[[], str]) -> Route:
    return lambda h: send(h, 302, b"", Location=location())


def close_delimited(body: bytes) -> Route:
    """No Content-Length: the body ends when the connection closes (as HTTP/1.0 servers send it)."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        for start in range(0, len(body), 16 * 1024):
            h.wfile.write(body[start : start + 16 * 1024])

    return route


def lying_length(declared: int, actual: bytes) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(declared))
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        h.wfile.write(actual)

    return route
