"""Local servers for the streaming benchmark, each run in its own process (its memory is not measured).

- `media`: serves `/<bytes>.mp4`, an MP4-like body generated on the fly (a valid `ftyp` box, then
  filler), so no big file is ever written or committed.
- `moto`: moto's S3 in server mode.
- `sink`: an S3-compatible endpoint that answers the multipart and PutObject calls and discards
  the bytes: the client's throughput without moto's own cost (moto keeps every byte in memory).

`python -m t2v_bench.servers KIND` prints `PORT <n>` once listening, then serves until killed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

# A real ISO-BMFF start: a 24-byte `ftyp` box (major brand isom, compatible isom/iso2).
FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
_BLOCK = 1024 * 1024
_SIZE_PATH = re.compile(r"^/(\d+)\.mp4$")


def mp4_like(size: int) -> bytes:
    """The exact bytes the media server sends for `size` (used by tests to check what landed)."""
    filler = bytes(range(256)) * (max(size, 0) // 256 + 1)
    return (FTYP + filler)[:size]


class _MediaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _filler: ClassVar[bytes] = bytes(range(256)) * (_BLOCK // 256)

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        m = _SIZE_PATH.match(urlsplit(self.path).path)
        if not m:
            self.send_error(404)
            return
        size = int(m[1])
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not body:
            return
        head = (FTYP + self._filler)[: min(size, _BLOCK)]
        self.wfile.write(head)
        sent = len(head)
        view = memoryview(self._filler)
        while sent < size:
            # Continue the 0..255 pattern where the first block left off (FTYP shifted it).
            offset = (sent - len(FTYP)) % 256
            n = min(_BLOCK - 256, size - sent)
            self.wfile.write(view[offset : offset + n])
            sent += n


class _SinkHandler(BaseHTTPRequestHandler):
    """Just enough of S3 for create/upload-part/complete/abort multipart and PutObject."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _drain(self) -> int:
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left:
            got = self.rfile.read(min(left, _BLOCK))
            if not got:
                break
            left -= len(got)
        return length

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return bucket, key, parse_qs(parts.query, keep_blank_values=True)

    def do_HEAD(self) -> None:
        self._reply(200)

    def do_PUT(self) -> None:
        self._drain()
        self._reply(200, headers={"ETag": f'"{uuid.uuid4().hex}"'})

    def do_POST(self) -> None:
        self._drain()
        bucket, key, query = self._target()
        if "uploads" in query:
            body = (
                f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f"<UploadId>{uuid.uuid4().hex}</UploadId></InitiateMultipartUploadResult>"
            )
        else:
            body = (
                f"<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f'<ETag>"{uuid.uuid4().hex}-1"</ETag></CompleteMultipartUploadResult>'
            )
        self._reply(200, body.encode(), {"Content-Type": "application/xml"})

    def do_DELETE(self) -> None:
        self._reply(204)


def serve(kind: str, host: str = "127.0.0.1") -> None:
    if kind == "moto":
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        server.start()
        print(f"PORT {server.get_host_and_port()[1]}", flush=True)
        threading.Event().wait()  # serve until killed
        return
    handler = {"media": _MediaHandler, "sink": _SinkHandler}[kind]
    httpd = ThreadingHTTPServer((host, 0), handler)
    httpd.daemon_threads = True
    print(f"PORT {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


class ServerProcess:
    """`with ServerProcess("media") as media: media.url` - a server in a child process."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "t2v_bench.servers", self.kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.process.kill()
            raise RuntimeError(f"the {self.kind} server did not start")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stdout:
                self.process.stdout.close()


if __name__ == "__main__":
    serve(sys.argv[1])
