"""The emulator's task-finished pushes over real HTTP: the documented event, the token header,
EventBridge-like retries, and every push fault."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from dashscope_emulator.push import TOKEN_HEADER, WRONG_TOKEN
from dashscope_emulator.server import Emulator, EmulatorConfig

from tests.integration.test_emulator import HEADERS, body, make_emulator  # noqa: F401 - a fixture

TOKEN = "push-token-for-tests"


@dataclass
class Received:
    at: float
    token: str | None
    event: dict[str, Any]


@dataclass
class Receiver:
    """A callback endpoint: records every push; answers `statuses` in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    pushes: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/dashscope"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.pushes.append(
                        Received(time.time(), self.headers.get(TOKEN_HEADER), json.loads(data))
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.pushes) >= count:
                    return list(self.pushes)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} pushes, got {len(self.pushes)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    assert r.server is not None
    r.server.shutdown()


@pytest.fixture
def pushing(receiver: Receiver) -> Iterator[Callable[..., tuple[Emulator, httpx.Client]]]:
    started: list[tuple[Emulator, httpx.Client]] = []

    def make(faults: list[dict[str, Any]] | None = None, **config: Any) -> tuple[Emulator, httpx.Client]:
        emu = Emulator(
            EmulatorConfig(
                **{
                    "pending_seconds": 0.2,
                    "running_seconds": 0.4,
                    "push_url": receiver.url,
                    "push_token": TOKEN,
                    "push_retry_delays": (0.3, 0.3),
                    **config,
                }
            )
        )
        emu.start(host="127.0.0.1", port=0)
        if faults:
            emu.set_faults({"seed": 3, "rules": faults})
        client = httpx.Client(base_url=emu.base_url, headers=HEADERS, timeout=10)
        started.append((emu, client))
        return emu, client

    yield make
    for emu, client in started:
        client.close()
        emu.stop()


def create(client: httpx.Client, prompt: str = "a cat") -> str:
    response = client.post("/services/aigc/video-generation/video-synthesis", json=body(prompt))
    assert response.status_code == 200, response.text
    return str(response.json()["output"]["task_id"])


def wait_logged(emu: Emulator, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The emulator logs a delivery once its answer is back, just after the receiver saw it."""
    end = time.monotonic() + timeout
    while len(logged := emu.pushes()) < count and time.monotonic() < end:
        time.sleep(0.05)
    return logged


def status_at(client: httpx.Client, task_id: str) -> str:
    return str(client.get(f"/tasks/{task_id}").json()["output"]["task_status"])


def test_a_finished_task_pushes_the_documented_event_with_the_token(pushing: Any, receiver: Receiver) -> None:
    emu, client = pushing()
    task_id = create(client)
    push = receiver.wait(1)[0]
    assert push.token == TOKEN
    event = push.event
    assert event["source"] == "acs.dashscope"
    assert event["type"] == "dashscope:System:AsyncTaskFinish"
    assert event["specversion"] == "1.0"
    assert {
        "id",
        "time",
        "datacontenttype",
        "aliyunaccountid",
        "aliyunpublishtime",
        "aliyuneventbusname",
        "aliyunregionid",
        "aliyunoriginalaccountid",
    } <= set(event)
    data = event["data"]
    assert (data["task_id"], data["task_status"], data["contain_result"]) == (task_id, "SUCCEEDED", False)
    assert "video_url" not in json.dumps(event)  # the event never carries the result
    assert len(data["end_time"]) == 19 and data["end_time"][10] == " "  # provider-local, no zone
    # Pushed at the finish: a query now shows the final status.
    assert status_at(client, task_id) == "SUCCEEDED"
    assert [p["http_status"] for p in wait_logged(emu, 1)] == [200]


def test_failed_and_canceled_tasks_push_too(pushing: Any, receiver: Receiver) -> None:
    _, client = pushing([{"kind": "task_failed", "prompt_contains": "doomed"}], pending_seconds=1.0)
    failed = create(client, "doomed prompt")
    canceled = create(client, "cancel me")
    assert client.post(f"/tasks/{canceled}/cancel").status_code == 200
    pushes = {p.event["data"]["task_id"]: p.event["data"]["task_status"] for p in receiver.wait(2)}
    assert pushes == {failed: "FAILED", canceled: "CANCELED"}
    time.sleep(1.0)  # the canceled task's natural end passes: no second push for it
    assert len(receiver.pushes) == 2


def test_failed_deliveries_are_retried_like_eventbridge(pushing: Any, receiver: Receiver) -> None:
    receiver.statuses = [503, 500]
    emu, client = pushing()
    create(client)
    pushes = receiver.wait(3)
    assert len({p.event["id"] for p in pushes}) == 1  # the same event each time
    logged = wait_logged(emu, 3)
    assert [p["http_status"] for p in logged] == [503, 500, 200]
    assert [p["attempt"] for p in logged] == [0, 1, 2]


def test_fault_dropped_and_wrong_token(pushing: Any, receiver: Receiver) -> None:
    receiver.statuses = [401, 401, 401]
    emu, client = pushing(
        [
            {"kind": "push_dropped", "prompt_contains": "drop"},
            {"kind": "push_wrong_token", "prompt_contains": "forge"},
        ]
    )
    create(client, "drop me")
    create(client, "forge me")
    pushes = receiver.wait(3)
    time.sleep(0.5)
    assert len(receiver.pushes) == 3  # the dropped one never came; the wrong-token one tried 3 times
    assert {p.token for p in pushes} == {WRONG_TOKEN}
    assert [p["fault"] for p in emu.pushes()].count("push_dropped") == 1


def test_fault_duplicated_delayed_and_early(pushing: Any, receiver: Receiver) -> None:
    emu, client = pushing(
        [
            {"kind": "push_duplicated", "prompt_contains": "dup", "latency_seconds": 0.3},
            {"kind": "push_delayed", "prompt_contains": "late", "latency_seconds": 1.0},
            {"kind": "push_early", "prompt_contains": "early", "latency_seconds": 0.3},
        ]
    )
    dup, late, early = create(client, "dup"), create(client, "late"), create(client, "early")
    created = time.time()
    pushes = receiver.wait(4)
    by_task: dict[str, list[Received]] = {}
    for p in pushes:
        by_task.setdefault(p.event["data"]["task_id"], []).append(p)
    assert len(by_task[dup]) == 2 and len({p.event["id"] for p in by_task[dup]}) == 1
    finish = emu.task(late).finished_at  # type: ignore[union-attr]
    assert by_task[late][0].at >= finish + 0.9
    assert by_task[early][0].at < emu.task(early).finished_at  # type: ignore[union-attr]
    assert created < by_task[early][0].at


def test_fault_reordered_push_follows_the_next_one(pushing: Any, receiver: Receiver) -> None:
    _, client = pushing([{"kind": "push_reordered", "prompt_contains": "first"}])
    first = create(client, "first")
    time.sleep(0.2)
    second = create(client, "second")
    order = [p.event["data"]["task_id"] for p in receiver.wait(2)]
    assert order == [second, first]


def test_push_can_be_switched_on_over_the_admin_api(
    make_emulator: Any,  # noqa: F811 - the fixture imported above
    receiver: Receiver,
) -> None:
    emu = make_emulator()
    httpx.post(f"{emu.root_url}/admin/push", json={"url": receiver.url, "token": TOKEN}).raise_for_status()
    with httpx.Client(base_url=emu.base_url, headers=HEADERS, timeout=10) as client:
        create(client)
    assert receiver.wait(1)[0].token == TOKEN
    wait_logged(emu, 1)
    logged = httpx.get(f"{emu.root_url}/admin/pushes").json()["pushes"]
    assert [p["http_status"] for p in logged] == [200]
