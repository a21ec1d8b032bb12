"""The DashScope emulator over real HTTP: shapes, errors, lifecycle, limits, faults, media."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import httpx
import pytest
from dashscope_emulator.faults import FaultPlan, FaultRule
from dashscope_emulator.server import Emulator, EmulatorConfig

MODEL = "pixverse/pixverse-v5.6-t2v"
CREATE = "/services/aigc/video-generation/video-synthesis"
HEADERS = {"Authorization": "Bearer sk-test", "X-DashScope-Async": "enable"}
WIRE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def body(prompt: str = "一只小猫在月光下奔跑", **parameters: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"size": "640*360", "duration": 5, **parameters}
    return {"model": MODEL, "input": {"prompt": prompt}, "parameters": params}


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=10) as c:
        yield c


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**config: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(**{"pending_seconds": 0.2, "running_seconds": 0.5, **config}))
        emu.start(host="127.0.0.1", port=0)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def create(client: httpx.Client, payload: dict[str, Any] | None = None) -> str:
    response = client.post(CREATE, json=payload or body())
    assert response.status_code == 200, response.text
    return str(response.json()["output"]["task_id"])


def wait_done(client: httpx.Client, task_id: str, deadline: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        data: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        if data["output"]["task_status"] not in {"PENDING", "RUNNING"}:
            return data
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


# ------------------------------------------------------------------ shapes and lifecycle


def test_create_answers_pending_task_with_ids(client: httpx.Client) -> None:
    response = client.post(CREATE, json=body())
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"output", "request_id"}
    assert data["output"]["task_status"] == "PENDING"
    assert UUID.match(data["output"]["task_id"])
    assert UUID.match(data["request_id"])


def test_lifecycle_pending_running_succeeded(client: httpx.Client, emulator: Emulator) -> None:
    task_id = create(client, body(size="1280*720", audio=True))
    first = client.get(f"/tasks/{task_id}").json()
    assert first["output"]["task_status"] == "PENDING"
    assert WIRE_TIME.match(first["output"]["submit_time"])
    assert "scheduled_time" not in first["output"]
    time.sleep(0.3)
    running = client.get(f"/tasks/{task_id}").json()["output"]
    assert running["task_status"] == "RUNNING"
    assert WIRE_TIME.match(running["scheduled_time"])
    assert "end_time" not in running
    done = wait_done(client, task_id)
    out = done["output"]
    assert out["task_status"] == "SUCCEEDED"
    assert set(out) == {
        "task_id",
        "task_status",
        "submit_time",
        "scheduled_time",
        "end_time",
        "orig_prompt",
        "video_url",
    }
    assert out["submit_time"] < out["scheduled_time"] < out["end_time"]
    assert out["orig_prompt"] == "一只小猫在月光下奔跑"
    assert out["video_url"] == f"{emulator.root_url}/media/{task_id}.mp4"
    assert done["usage"] == {
        "duration": 5,
        "size": "1280*720",
        "fps": 24,
        "video_count": 1,
        "audio": True,
        "SR": "720",
    }
    assert UUID.match(done["request_id"])


def test_unknown_task_reads_unknown_with_http_200(client: httpx.Client) -> None:
    response = client.get("/tasks/no-such-task")
    assert response.status_code == 200
    assert response.json()["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


def test_task_expires_to_unknown_after_ttl(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(task_ttl_seconds=0.4)
    with httpx.Client(base_url=emu.base_url, headers=HEADERS) as c:
        task_id = create(c)
        assert c.get(f"/tasks/{task_id}").json()["output"]["task_status"] == "PENDING"
        time.sleep(0.5)
        assert c.get(f"/tasks/{task_id}").json()["output"] == {"task_id": task_id, "task_status": "UNKNOWN"}
        assert c.get("/tasks").json()["total"] == 0


def test_cancel_only_while_pending(client: httpx.Client) -> None:
    task_id = create(client)
    response = client.post(f"/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert set(response.json()) == {"request_id"}
    out = client.get(f"/tasks/{task_id}").json()["output"]
    assert out["task_status"] == "CANCELED"
    assert WIRE_TIME.match(out["end_time"])
    time.sleep(0.8)
    assert client.get(f"/tasks/{task_id}").json()["output"]["task_status"] == "CANCELED"

    running = create(client)
    time.sleep(0.3)
    refused = client.post(f"/tasks/{running}/cancel")
    assert refused.status_code == 400
    assert refused.json()["code"] == "UnsupportedOperation"
    assert "PENDING" in refused.json()["message"]
    assert wait_done(client, running)["output"]["task_status"] == "SUCCEEDED"


def test_list_tasks_shape_filters_and_pages(client: httpx.Client) -> None:
    ids = [create(client, body(f"prompt {i}")) for i in range(3)]
    client.post(f"/tasks/{ids[0]}/cancel")
    data = client.get("/tasks", params={"page_no": 1, "page_size": 2}).json()
    assert set(data) == {"request_id", "total", "data", "total_page", "page_no", "page_size"}
    assert (data["total"], data["total_page"], data["page_no"], data["page_size"]) == (3, 2, 1, 2)
    assert [item["task_id"] for item in data["data"]] == [ids[2], ids[1]]  # newest first
    item = data["data"][0]
    assert item["status"] == "PENDING"
    assert item["model_name"] == MODEL
    assert item["region"] == "cn-beijing"
    assert isinstance(item["gmt_create"], int)
    canceled = client.get("/tasks", params={"status": "CANCELED"}).json()
    assert [i["task_id"] for i in canceled["data"]] == [ids[0]]
    assert client.get("/tasks", params={"model_name": "other"}).json()["total"] == 0
    window = client.get("/tasks", params={"start_time": "20200101000000", "end_time": "20200101120000"})
    assert window.json()["total"] == 0
    bad = client.get("/tasks", params={"start_time": "2020-01-01"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "InvalidParameter"


# ------------------------------------------------------------------ errors


def test_create_without_async_header_is_refused(emulator: Emulator) -> None:
    response = httpx.post(emulator.base_url + CREATE, json=body(), headers={"Authorization": "Bearer sk-x"})
    assert response.status_code == 403
    assert response.json()["code"] == "AccessDenied"
    assert response.json()["message"] == "current user api does not support synchronous calls"
    assert emulator.create_count() == 0


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No API-key provided."),
        ({"Authorization": "Bearer"}, "No API-key provided."),
        ({"Authorization": "Bearer not-a-key"}, "Invalid API-key provided."),
        ({"Authorization": "Basic sk-abc"}, "Invalid API-key provided."),
    ],
)
def test_api_key_errors(emulator: Emulator, headers: dict[str, str], message: str) -> None:
    for method, path in [
        ("POST", CREATE),
        ("GET", "/tasks/x"),
        ("POST", "/tasks/x/cancel"),
        ("GET", "/tasks"),
    ]:
        response = httpx.request(
            method, emulator.base_url + path, json=body(), headers={"X-DashScope-Async": "enable", **headers}
        )
        assert response.status_code == 401, path
        assert response.json()["code"] == "InvalidApiKey"
        assert response.json()["message"] == message
        assert UUID.match(response.json()["request_id"])


def test_configured_api_keys_only(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(api_keys=("sk-good", "custom-key"))
    ok = httpx.get(emu.base_url + "/tasks/x", headers={"Authorization": "Bearer custom-key"})
    assert ok.status_code == 200
    bad = httpx.get(emu.base_url + "/tasks/x", headers={"Authorization": "Bearer sk-other"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("payload", "code", "fragment"),
    [
        ({**body(), "model": "wanx2.1-t2v-plus"}, "InvalidParameter", "Model not exist"),
        (
            {"input": {"prompt": "x"}, "parameters": {"size": "640*360", "duration": 5}},
            "BadRequest.EmptyModel",
            "model",
        ),
        (
            {"model": MODEL, "parameters": {"size": "640*360", "duration": 5}},
            "BadRequest.EmptyInput",
            "input",
        ),
        ({"model": MODEL, "input": {"prompt": "x"}}, "BadRequest.EmptyParameters", "parameters"),
        (body("   "), "InvalidParameter", "prompt"),
        (body(size="1280x720"), "InvalidParameter", "size"),
        (body(size="1920*1920"), "InvalidParameter", "size"),
        (body(duration=7), "InvalidParameter", "duration"),
        (body(size="1920*1080", duration=10), "InvalidParameter", "1080P"),
        (body(size="1808*1808", duration=10), "InvalidParameter", "duration"),
        (body(duration="5"), "InvalidParameter", "duration"),
        (body(seed=-1), "InvalidParameter", "seed"),
        (body(seed=2_147_483_648), "InvalidParameter", "seed"),
        (body(seed="1"), "InvalidParameter", "seed"),
        (body(audio="yes"), "InvalidParameter", "audio"),
    ],
)
def test_invalid_create_requests(
    client: httpx.Client, emulator: Emulator, payload: dict[str, Any], code: str, fragment: str
) -> None:
    response = client.post(CREATE, json=payload)
    assert response.status_code == 400
    data = response.json()
    assert set(data) == {"code", "message", "request_id"}
    assert data["code"] == code
    assert fragment in data["message"]
    assert emulator.create_count() == 0


def test_unknown_keys_accepted_and_long_prompt_truncated(client: httpx.Client, emulator: Emulator) -> None:
    payload = body("长" * 2100, seed=2_147_483_647, prompt_extend=True)
    payload["input"] |= {"extend_prompt": True, "negative_prompt": "blur", "function": "t2v"}
    task_id = create(client, payload)
    (task,) = emulator.tasks()
    assert task["task_id"] == task_id
    assert task["truncated"] is True
    assert task["prompt_chars"] == 2100
    assert task["parameters"]["prompt_extend"] is True
    assert create(client, body("x" * 2048)) != task_id
    assert emulator.tasks()[1]["truncated"] is False


def test_query_rate_limit_per_key(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    with httpx.Client(base_url=emu.base_url, headers=HEADERS) as c:
        answers = [c.get("/tasks/x") for _ in range(21)]
        assert [a.status_code for a in answers[:20]] == [200] * 20
        assert answers[20].status_code == 429
        # The refused answer's own body: a further request may fall into the next second on a loaded machine.
        throttled = answers[20].json()
        assert throttled["code"] == "Throttling"
        assert throttled["message"] == "Requests rate limit exceeded, please try again later."
        other = c.get("/tasks/x", headers={"Authorization": "Bearer sk-other"})
        assert other.status_code == 200
        time.sleep(1.05)
        assert c.get("/tasks/x").status_code == 200


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("code", "status"), [("InternalError", 500), ("ModelUnavailable", 503), ("Throttling", 429)]
)
def test_error_fault_on_create_creates_nothing(
    client: httpx.Client, emulator: Emulator, code: str, status: int
) -> None:
    emulator.set_faults(FaultPlan(rules=(FaultRule(endpoint="create", kind="error", code=code, times=1),)))
    response = client.post(CREATE, json=body())
    assert response.status_code == status
    assert response.json()["code"] == code
    assert emulator.create_count() == 0
    create(client)  # only the first match was injected
    assert emulator.create_count() == 1


def test_error_fault_rate_is_deterministic_under_seed(make_emulator: Callable[..., Emulator]) -> None:
    plan = {
        "seed": 42,
        "rules": [{"endpoint": "query", "kind": "error", "code": "InternalError", "rate": 0.5}],
    }
    runs = []
    for _ in range(2):
        emu = make_emulator()
        emu.set_faults(plan)
        with httpx.Client(base_url=emu.base_url, headers=HEADERS) as c:
            runs.append([c.get("/tasks/x").status_code for _ in range(16)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}


def test_timeout_fault_holds_then_closes(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults(
        {"rules": [{"endpoint": "query", "kind": "timeout", "hold_seconds": 1.0, "times": 1}]}
    )
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/tasks/x", timeout=0.3)
    assert time.monotonic() - started < 1.0
    emulator.set_faults({"rules": [{"endpoint": "list", "kind": "timeout", "hold_seconds": 0.3}]})
    with pytest.raises(httpx.RemoteProtocolError):  # a patient client sees the connection closed
        client.get("/tasks", timeout=5)
    assert client.get("/tasks/x").status_code == 200


def test_latency_fault_adds_delay(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults({"rules": [{"endpoint": "any", "kind": "latency", "latency_seconds": 0.3}]})
    started = time.monotonic()
    assert client.get("/tasks/x").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_after_accept_creates_the_task(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults({"rules": [{"kind": "drop_after_accept", "times": 1}]})
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(CREATE, json=body("dropped"))
    assert emulator.create_count() == 1
    (task,) = emulator.tasks()
    assert task["prompt"] == "dropped"
    (record,) = [r for r in emulator.requests() if r["endpoint"] == "create"]
    assert (record["status"], record["fault"], record["task_id"]) == (
        None,
        "drop_after_accept",
        task["task_id"],
    )


def test_task_failed_fault_for_one_prompt(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults(
        {
            "rules": [
                {
                    "kind": "task_failed",
                    "prompt_contains": "forbidden",
                    "code": "DataInspectionFailed",
                    "message": "Input data may contain inappropriate content.",
                }
            ]
        }
    )
    bad, good = create(client, body("a forbidden scene")), create(client, body("a fine scene"))
    failed = wait_done(client, bad)
    assert failed["output"]["task_status"] == "FAILED"
    assert failed["output"]["code"] == "DataInspectionFailed"
    assert failed["output"]["message"] == "Input data may contain inappropriate content."
    assert "video_url" not in failed["output"]
    assert "usage" not in failed
    assert wait_done(client, good)["output"]["task_status"] == "SUCCEEDED"


def test_no_video_url_fault(client: httpx.Client, emulator: Emulator) -> None:
    emulator.set_faults(FaultPlan(rules=(FaultRule(kind="no_video_url", times=1),)))
    task_id = create(client)
    done = wait_done(client, task_id)
    assert done["output"]["task_status"] == "SUCCEEDED"
    assert "video_url" not in done["output"]
    assert httpx.get(f"{emulator.root_url}/media/{task_id}.mp4").status_code == 404


def test_reset_mid_download(client: httpx.Client, emulator: Emulator) -> None:
    task_id = create(client)
    url = wait_done(client, task_id)["output"]["video_url"]
    emulator.set_faults({"rules": [{"kind": "reset_mid_download", "reset_after_bytes": 1000, "times": 1}]})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(url)
    assert httpx.get(url).status_code == 200


def test_media_error_fault(client: httpx.Client, emulator: Emulator) -> None:
    task_id = create(client)
    url = wait_done(client, task_id)["output"]["video_url"]
    emulator.set_faults(
        {"rules": [{"endpoint": "media", "kind": "error", "code": "InternalError", "times": 1}]}
    )
    assert httpx.get(url).status_code == 500
    assert httpx.get(url).status_code == 200


# ------------------------------------------------------------------ admin


def test_admin_endpoints(client: httpx.Client, emulator: Emulator) -> None:
    admin = httpx.Client(base_url=emulator.root_url)
    create(client)
    create(client)
    client.post(CREATE, json=body(seed=-5))
    log = admin.get("/admin/requests").json()["requests"]
    creates = [r for r in log if r["endpoint"] == "create"]
    assert [r["status"] for r in creates] == [200, 200, 400]
    assert all(r["method"] == "POST" and r["path"] == "/api/v1" + CREATE for r in creates)
    assert emulator.create_count() == 2
    tasks = admin.get("/admin/tasks").json()["tasks"]
    assert {"task_id", "prompt", "parameters", "status", "created_at", "truncated"} <= set(tasks[0])

    plan = {
        "seed": 3,
        "rules": [{"endpoint": "query", "kind": "error", "code": "ModelUnavailable", "times": 1}],
    }
    assert admin.post("/admin/faults", json=plan).status_code == 200
    got = admin.get("/admin/faults").json()
    assert got["seed"] == 3
    assert got["rules"][0]["code"] == "ModelUnavailable"
    assert client.get("/tasks/x").status_code == 503
    assert admin.get("/admin/faults").json()["fired"] == [1]
    bad = admin.post("/admin/faults", json={"rules": [{"kind": "explode", "endpoint": "query"}]})
    assert bad.status_code == 400

    assert admin.post("/admin/reset").json() == {"ok": True}
    assert emulator.requests() == []
    assert emulator.tasks() == []
    assert emulator.create_count() == 0
    assert admin.get("/admin/faults").json()["rules"] == []
    admin.close()


# ------------------------------------------------------------------ media


@pytest.mark.parametrize(
    ("size", "duration", "audio", "expected"),
    [
        ("640*360", 5, True, (640, 360)),
        ("360*640", 8, False, (360, 640)),
        ("1808*1808", 8, True, (1440, 1440)),
    ],
)
def test_video_is_a_real_mp4(
    client: httpx.Client, size: str, duration: int, audio: bool, expected: tuple[int, int]
) -> None:
    task_id = create(client, body("a cat", size=size, duration=duration, audio=audio, watermark=True))
    done = wait_done(client, task_id)
    assert done["usage"]["size"] == "{}*{}".format(*expected)
    response = httpx.get(done["output"]["video_url"], timeout=60)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content)
    with av.open(io.BytesIO(response.content)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert video.average_rate == 24
        assert (video.width, video.height) == expected
        assert video.frames == duration * 24
        assert abs(container.duration / 1_000_000 - duration) <= 1 / 24 + 0.03
        assert (len(container.streams.audio) == 1) is audio
        if audio:
            assert container.streams.audio[0].codec_context.name == "aac"


def test_media_range_requests(client: httpx.Client) -> None:
    url = wait_done(client, create(client))["output"]["video_url"]
    full = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == full[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{len(full)}"
    tail = httpx.get(url, headers={"Range": "bytes=-50"})
    assert tail.content == full[-50:]
    assert httpx.get(url, headers={"Range": f"bytes={len(full)}-"}).status_code == 416
    head = httpx.head(url)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(full)


def test_media_of_unknown_task_is_404(emulator: Emulator) -> None:
    assert httpx.get(f"{emulator.root_url}/media/nope.mp4").status_code == 404


def test_public_url_is_used_for_video_url(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(public_url="https://media.example.test/")
    with httpx.Client(base_url=emu.base_url, headers=HEADERS) as c:
        task_id = create(c)
        assert (
            wait_done(c, task_id)["output"]["video_url"] == f"https://media.example.test/media/{task_id}.mp4"
        )
