"""The emulator's image families over HTTP: it fetches the images from the URLs it is given, renders
from them, and answers InvalidParameter.DataInspection for an image it cannot fetch or decode."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import httpx
import pytest
from dashscope_emulator.server import Emulator

from tests.images import png
from tests.integration.test_emulator import CREATE, HEADERS, wait_done

FILES = {"/red.png": png(64, 36, (220, 30, 30)), "/text.png": b"hello, not a picture"}


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = FILES.get(self.path)
        self.send_response(200 if data else 404)
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def files() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def it2v(url: str) -> dict[str, Any]:
    return {
        "model": "pixverse/pixverse-v5.6-it2v",
        "input": {"prompt": "waves", "media": [{"type": "image_url", "url": url}]},
        "parameters": {"resolution": "360P", "duration": 5},
    }


def test_an_it2v_task_renders_from_the_fetched_image(emulator: Emulator, files: str) -> None:
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=10) as client:
        answer = client.post(CREATE, json=it2v(f"{files}/red.png"))
        assert answer.status_code == 200, answer.text
        done = wait_done(client, answer.json()["output"]["task_id"])

        assert done["output"]["task_status"] == "SUCCEEDED"
        assert done["usage"]["size"] == "640*360"
        video = httpx.get(done["output"]["video_url"], timeout=10).content
    with av.open(io.BytesIO(video)) as container:
        first = next(container.decode(video=0)).to_rgb()
    plane = bytes(first.planes[0])
    at = first.height // 4 * first.planes[0].line_size + first.width // 4 * 3
    assert abs(plane[at] - 220) < 40 and plane[at + 2] < 80


@pytest.mark.parametrize("path", ["/missing.png", "/text.png"])
def test_an_image_it_cannot_fetch_or_read_is_data_inspection(
    emulator: Emulator, files: str, path: str
) -> None:
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=20) as client:
        answer = client.post(CREATE, json=it2v(f"{files}{path}"))

    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidParameter.DataInspection"


def test_an_unreachable_host_is_data_inspection(emulator: Emulator) -> None:
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=20) as client:
        answer = client.post(CREATE, json=it2v("http://127.0.0.1:9/nothing-listens.png"))

    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidParameter.DataInspection")
