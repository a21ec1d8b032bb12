"""DashScopeClient over real HTTP against the DashScope emulator (tools/dashscope_emulator)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from t2v.dashscope import DashScopeClient
from t2v.errors import (
    AmbiguousCreateError,
    ProviderAuthError,
    ProviderThrottledError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.jobs import TaskStatus
from t2v.provider import TaskInfo
from t2v.request import DEFAULT_MODEL, VideoRequest

KEY = "sk-integration-0123456789"
REQUEST = VideoRequest(prompt="一只小猫在月光下奔跑", size="640*360", duration=5, seed=7)


@pytest.fixture
def client(emulator: Any) -> Iterator[DashScopeClient]:
    with DashScopeClient(KEY, base_url=emulator.base_url) as c:
        yield c


def window() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"start_time": now - timedelta(minutes=5), "end_time": now + timedelta(minutes=5)}


def wait_final(client: DashScopeClient, task_id: str, deadline_s: float = 15.0) -> TaskInfo:
    deadline = time.monotonic() + deadline_s
    while True:
        task = client.get_task(task_id)
        if task.is_final or time.monotonic() > deadline:
            return task
        time.sleep(0.1)  # about 10 queries/s: under the emulator's 20/s account limit


def test_create_then_get_until_succeeded_with_usage(client: DashScopeClient, emulator: Any) -> None:
    created = client.create_task(REQUEST)
    assert created.task_status == TaskStatus.PENDING
    assert created.request_id

    task = wait_final(client, created.task_id)

    assert task.status == TaskStatus.SUCCEEDED
    assert task.request_id
    assert task.orig_prompt == REQUEST.prompt
    assert task.submit_time
    assert task.scheduled_time
    assert task.end_time
    assert str(task.video_url).endswith(f"/media/{created.task_id}.mp4")
    assert task.usage is not None
    assert (task.usage.duration, task.usage.size, task.usage.fps) == (5, "640*360", 24)
    assert (task.usage.video_count, task.usage.audio, task.usage.sr) == (1, False, "360")
    assert emulator.create_count() == 1


def test_wrong_key_is_an_auth_error(emulator: Any) -> None:
    with DashScopeClient("not-a-dashscope-key", base_url=emulator.base_url) as bad:
        with pytest.raises(ProviderAuthError) as info:
            bad.create_task(REQUEST)
        with pytest.raises(ProviderAuthError):
            bad.list_tasks(**window())
    assert info.value.http_status == 401
    assert info.value.provider_code == "InvalidApiKey"
    assert info.value.request_id
    assert "not-a-dashscope-key" not in str(info.value)
    assert emulator.create_count() == 0


def test_invalid_parameter_from_the_provider_is_terminal(client: DashScopeClient, emulator: Any) -> None:
    # VideoRequest rejects this size first; the private raw path shows the provider's own answer.
    body = {
        "model": DEFAULT_MODEL,
        "input": {"prompt": "x"},
        "parameters": {"size": "999*999", "duration": 5},
    }
    with pytest.raises(TerminalProviderError) as info:
        client._create(body)
    assert type(info.value) is TerminalProviderError
    assert (info.value.http_status, info.value.provider_code) == (400, "InvalidParameter")
    assert info.value.request_id
    assert emulator.create_count() == 0


def test_cancel_while_pending(emulator: Any) -> None:
    emulator.config.pending_seconds = 30.0  # keep the task PENDING for the whole test
    with DashScopeClient(KEY, base_url=emulator.base_url) as client:
        created = client.create_task(REQUEST)
        canceled = client.cancel_task(created.task_id)
        task = client.get_task(created.task_id)
        with pytest.raises(TerminalProviderError) as info:
            client.cancel_task(created.task_id)  # only PENDING tasks can be canceled

    assert canceled.task_id == created.task_id
    assert canceled.request_id
    assert task.status == TaskStatus.CANCELED
    assert task.is_final
    assert task.video_url is None
    assert info.value.http_status == 400


def test_unknown_task_id_is_final_unknown(client: DashScopeClient) -> None:
    task = client.get_task("00000000-0000-0000-0000-000000000000")
    assert task.status == TaskStatus.UNKNOWN
    assert task.is_final


def test_list_tasks_finds_the_created_task(client: DashScopeClient) -> None:
    created = client.create_task(REQUEST)

    page = client.list_tasks(**window(), model_name=DEFAULT_MODEL)
    walked = list(client.iter_tasks(**window(), page_size=1))

    assert created.task_id in [t.task_id for t in page.tasks]
    assert page.total == 1
    assert page.request_id
    (listed,) = page.tasks
    assert listed.model_name == DEFAULT_MODEL
    assert listed.status in {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED}
    assert [t.task_id for t in walked] == [created.task_id]


def test_list_tasks_walks_pages(client: DashScopeClient) -> None:
    ids = {client.create_task(REQUEST).task_id for _ in range(5)}

    found = [t.task_id for t in client.iter_tasks(**window(), page_size=2)]

    assert sorted(found) == sorted(ids)


def test_list_tasks_window_excludes_other_times(client: DashScopeClient) -> None:
    client.create_task(REQUEST)
    past = datetime.now(UTC) - timedelta(hours=3)
    page = client.list_tasks(start_time=past - timedelta(hours=1), end_time=past)
    assert page.tasks == ()


@pytest.mark.parametrize(
    ("endpoint", "code", "expected"),
    [
        ("create", "InternalError", RetryableProviderError),
        ("create", "ModelUnavailable", RetryableProviderError),
        ("create", "Throttling", ProviderThrottledError),
        ("query", "InternalError", RetryableProviderError),
        ("query", "ModelUnavailable", RetryableProviderError),
        ("query", "Throttling", ProviderThrottledError),
        ("list", "ModelUnavailable", RetryableProviderError),
        ("cancel", "Throttling", ProviderThrottledError),
    ],
)
def test_injected_provider_errors_are_retryable(
    client: DashScopeClient, emulator: Any, endpoint: str, code: str, expected: type[Exception]
) -> None:
    emulator.set_faults({"rules": [{"endpoint": endpoint, "kind": "error", "code": code, "times": 1}]})
    with pytest.raises(RetryableProviderError) as info:
        {
            "create": lambda: client.create_task(REQUEST),
            "query": lambda: client.get_task("t-any"),
            "list": lambda: client.list_tasks(**window()),
            "cancel": lambda: client.cancel_task("t-any"),
        }[endpoint]()

    assert type(info.value) is expected
    assert not isinstance(info.value, AmbiguousCreateError)
    assert info.value.provider_code == code
    assert info.value.request_id
    assert emulator.create_count() == 0


def test_faults_can_be_set_over_http(client: DashScopeClient, emulator: Any) -> None:
    plan = {"rules": [{"endpoint": "create", "kind": "error", "code": "InternalError", "times": 1}]}
    httpx.post(f"{emulator.root_url}/admin/faults", json=plan).raise_for_status()

    with pytest.raises(RetryableProviderError):
        client.create_task(REQUEST)
    assert client.create_task(REQUEST).task_id  # `times: 1` spent; the next create goes through


def test_drop_after_accept_is_ambiguous_and_reconciled_through_list(
    client: DashScopeClient, emulator: Any
) -> None:
    # Given a provider that creates the task but never answers
    emulator.set_faults({"rules": [{"kind": "drop_after_accept", "times": 1}]})

    # When the pipeline creates
    with pytest.raises(AmbiguousCreateError) as info:
        client.create_task(REQUEST)

    # Then it must not create blindly again: the task exists and list_tasks shows it
    assert info.value.retryable
    assert emulator.create_count() == 1
    visible = list(client.iter_tasks(**window(), model_name=DEFAULT_MODEL))
    assert [t.task_id for t in visible] == [t["task_id"] for t in emulator.tasks()]


def test_create_timeout_before_acceptance_is_ambiguous_but_leaves_no_task(emulator: Any) -> None:
    # Given a provider that holds the create longer than our read timeout, without creating
    emulator.set_faults(
        {"rules": [{"endpoint": "create", "kind": "timeout", "hold_seconds": 2.0, "times": 1}]}
    )
    fast = httpx.Timeout(5.0, read=0.5)
    with DashScopeClient(KEY, base_url=emulator.base_url, timeout=fast) as client:
        with pytest.raises(AmbiguousCreateError):
            client.create_task(REQUEST)
        # Then reconciliation finds nothing, so one new create is the right move
        assert list(client.iter_tasks(**window())) == []
    assert emulator.create_count() == 0


def test_query_timeout_is_plainly_retryable(emulator: Any) -> None:
    emulator.set_faults(
        {"rules": [{"endpoint": "query", "kind": "timeout", "hold_seconds": 2.0, "times": 1}]}
    )
    with DashScopeClient(KEY, base_url=emulator.base_url, timeout=httpx.Timeout(5.0, read=0.5)) as client:
        with pytest.raises(RetryableProviderError) as info:
            client.get_task("t-any")
        assert type(info.value) is RetryableProviderError
        assert "ReadTimeout" in str(info.value)


def test_connection_refused_on_create_is_safe_to_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now: the request surely never reached a server.
    with (
        DashScopeClient(KEY, base_url=f"http://127.0.0.1:{port}/api/v1") as client,
        pytest.raises(RetryableProviderError) as info,
    ):
        client.create_task(REQUEST)
    assert type(info.value) is RetryableProviderError
    assert "ConnectError" in str(info.value)
    assert KEY not in str(info.value)


def test_failed_data_inspection_task_raises_task_failed(client: DashScopeClient, emulator: Any) -> None:
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
    created = client.create_task(VideoRequest(prompt="a forbidden scene", size="640*360"))

    task = wait_final(client, created.task_id)

    assert task.status == TaskStatus.FAILED
    assert (task.code, task.message) == (
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    )
    assert task.video_url is None


def test_succeeded_without_video_url_is_reported_as_it_came(client: DashScopeClient, emulator: Any) -> None:
    emulator.set_faults({"rules": [{"kind": "no_video_url", "times": 1}]})
    created = client.create_task(REQUEST)

    task = wait_final(client, created.task_id)

    assert task.status == TaskStatus.SUCCEEDED
    assert task.video_url is None
