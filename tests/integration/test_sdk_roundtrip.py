"""The official `dashscope` SDK, unchanged, cannot tell the emulator from the real service."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import httpx
import pytest
from dashscope_emulator.server import Emulator

MODEL = "pixverse/pixverse-v5.6-t2v"
KEY = "sk-test"


@pytest.fixture
def sdk(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    import dashscope

    monkeypatch.setattr(dashscope, "base_http_api_url", emulator.base_url)
    monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL", raising=False)
    return dashscope


def test_call_waits_to_succeeded(sdk: Any, emulator: Emulator) -> None:
    rsp = sdk.VideoSynthesis.call(
        api_key=KEY,
        model=MODEL,
        prompt="一只小猫在月光下奔跑",
        size="640*360",
        duration=5,
        audio=True,
        watermark=True,
        seed=12345,
    )
    assert rsp.status_code == HTTPStatus.OK, rsp
    assert rsp.output.task_status == "SUCCEEDED"
    assert rsp.output.video_url.startswith(emulator.root_url + "/media/")
    assert rsp.output.orig_prompt == "一只小猫在月光下奔跑"
    assert rsp.usage.duration == 5
    assert rsp.usage.video_count == 1
    assert rsp.usage["SR"] == "360"
    (task,) = emulator.tasks()
    assert task["parameters"] == {
        "size": "640*360",
        "duration": 5,
        "audio": True,
        "watermark": True,
        "seed": 12345,
    }
    video = httpx.get(rsp.output.video_url, timeout=30)
    assert video.status_code == 200
    assert video.content[4:8] == b"ftyp"
    creates = [r for r in emulator.requests() if r["endpoint"] == "create"]
    assert len(creates) == 1


def test_async_call_fetch_cancel(sdk: Any, emulator: Emulator) -> None:
    created = sdk.VideoSynthesis.async_call(
        api_key=KEY, model=MODEL, prompt="a cat", size="640*360", duration=5
    )
    assert created.status_code == HTTPStatus.OK
    assert created.output.task_status == "PENDING"
    fetched = sdk.VideoSynthesis.fetch(task=created, api_key=KEY)
    assert fetched.status_code == HTTPStatus.OK
    assert fetched.output.task_id == created.output.task_id
    assert fetched.output.task_status == "PENDING"
    canceled = sdk.VideoSynthesis.cancel(task=created, api_key=KEY)
    assert canceled.status_code == HTTPStatus.OK
    final = sdk.VideoSynthesis.wait(task=created, api_key=KEY)
    assert final.output.task_status == "CANCELED"
    again = sdk.VideoSynthesis.cancel(task=created, api_key=KEY)
    assert again.status_code == HTTPStatus.BAD_REQUEST
    assert again.code == "UnsupportedOperation"


def test_errors_reach_the_sdk(sdk: Any) -> None:
    bad = sdk.VideoSynthesis.async_call(api_key=KEY, model=MODEL, prompt="x", size="640*360", duration=10 + 1)
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert bad.code == "InvalidParameter"
    assert "duration" in bad.message
    unauthorized = sdk.VideoSynthesis.fetch(task="whatever", api_key="wrong")
    assert unauthorized.status_code == HTTPStatus.UNAUTHORIZED
    assert unauthorized.code == "InvalidApiKey"
    unknown = sdk.VideoSynthesis.fetch(task="whatever", api_key=KEY)
    assert unknown.output.task_status == "UNKNOWN"


def test_list(sdk: Any) -> None:
    first = sdk.VideoSynthesis.async_call(api_key=KEY, model=MODEL, prompt="one", size="640*360", duration=5)
    second = sdk.VideoSynthesis.async_call(api_key=KEY, model=MODEL, prompt="two", size="640*360", duration=5)
    listed = sdk.VideoSynthesis.list(api_key=KEY, model_name=MODEL, page_no=1, page_size=10)
    assert listed.status_code == HTTPStatus.OK
    assert listed.request_id
    assert listed.output["total"] == 2
    assert [t["task_id"] for t in listed.output["data"]] == [second.output.task_id, first.output.task_id]
    assert listed.output["data"][0]["status"] == "PENDING"
    pending = sdk.VideoSynthesis.list(api_key=KEY, status="SUCCEEDED")
    assert pending.output["total"] == 0
