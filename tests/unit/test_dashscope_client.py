"""DashScopeClient against httpx.MockTransport: a fake server in-process, no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from t2v.dashscope import (
    CREATE_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    INTL_BASE_URL,
    LIST_PAGE_SIZE,
    USER_AGENT,
    DashScopeClient,
    TaskStatus,
    format_list_time,
)
from t2v.errors import (
    AmbiguousCreateError,
    IncompleteListError,
    ProviderAuthError,
    ProviderError,
    ProviderQuotaError,
    ProviderThrottledError,
    RetryableProviderError,
    TerminalProviderError,
)
from t2v.provider import CanceledTask
from t2v.request import VideoRequest

KEY = "sk-unit-SECRET-0123456789abcdef"
BASE = "https://dashscope.test/api/v1"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **kwargs: Any) -> DashScopeClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return DashScopeClient(KEY, base_url=BASE, http_client=http, **kwargs)


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raising(exc_type: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)  # type: ignore[call-arg]

    return handler


def recorder(responses: list[httpx.Response]) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(queue)

    return handler, seen


CREATED = {"output": {"task_status": "PENDING", "task_id": "t-1"}, "request_id": "req-create"}
SUCCEEDED_BODY = {
    "request_id": "req-get",
    "output": {
        "task_id": "t-1",
        "task_status": "SUCCEEDED",
        "submit_time": "2026-03-20 10:34:41.630",
        "scheduled_time": "2026-03-20 10:34:41.655",
        "end_time": "2026-03-20 10:35:12.725",
        "orig_prompt": "一只小猫在月光下奔跑",
        "video_url": "https://media.pixverseai.cn/xxxx.mp4",
    },
    "usage": {"duration": 5, "size": "1280*720", "fps": 24, "video_count": 1, "audio": False, "SR": "720"},
}
REQUEST = VideoRequest(prompt="一只小猫在月光下奔跑", seed=12345)
WINDOW = {"start_time": datetime(2026, 3, 20, 10, 0, 0), "end_time": datetime(2026, 3, 20, 11, 0, 0)}

# Every call of the client, so each error row is checked on all four endpoints.
CALLS: dict[str, Callable[[DashScopeClient], object]] = {
    "create": lambda c: c.create_task(REQUEST),
    "get": lambda c: c.get_task("t-1"),
    "cancel": lambda c: c.cancel_task("t-1"),
    "list": lambda c: c.list_tasks(**WINDOW),
}


# -- the contract's error table ---------------------------------------------------------------

ERROR_TABLE = [
    (400, "InvalidParameter", TerminalProviderError),
    (400, "DataInspectionFailed", TerminalProviderError),
    (400, "BadRequest.EmptyInput", TerminalProviderError),
    (400, "Arrearage", ProviderQuotaError),
    (401, "InvalidApiKey", ProviderAuthError),
    (403, "AccessDenied", ProviderAuthError),
    (403, "Model.AccessDenied", ProviderAuthError),
    (404, "ModelNotFound", TerminalProviderError),
    (408, "RequestTimeOut", RetryableProviderError),
    (429, "Throttling", ProviderThrottledError),
    (429, "Throttling.RateQuota", ProviderThrottledError),
    (429, "LimitRequests", ProviderThrottledError),
    (429, "Throttling.AllocationQuota", ProviderQuotaError),
    (429, "PrepaidBillOverdue", ProviderQuotaError),
    (429, "PostpaidBillOverdue", ProviderQuotaError),
    (429, "CommodityNotPurchased", ProviderQuotaError),
    (500, "InternalError", RetryableProviderError),
    (500, "InternalError.Algo", RetryableProviderError),
    (500, "SystemError", RetryableProviderError),
    (503, "ModelUnavailable", RetryableProviderError),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("status", "code", "expected"), ERROR_TABLE)
def test_error_answers_follow_the_contract_table(
    call: str, status: int, code: str, expected: type[ProviderError]
) -> None:
    body = {"code": code, "message": f"{code} happened", "request_id": "req-err"}
    with make_client(answer(status, body)) as client, pytest.raises(ProviderError) as info:
        CALLS[call](client)

    err = info.value
    assert type(err) is expected
    assert not isinstance(err, AmbiguousCreateError)  # an explicit answer is never ambiguous
    assert (err.http_status, err.provider_code, err.request_id) == (status, code, "req-err")
    assert err.provider_message == f"{code} happened"
    assert "req-err" in str(err)


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (404, False), (429, True), (500, True), (502, True)]
)
def test_non_json_error_bodies_are_classified_by_status(status: int, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html><body>Bad Gateway from the edge</body></html>")

    with make_client(handler) as client, pytest.raises(ProviderError) as info:
        client.get_task("t-1")

    assert info.value.retryable is retryable
    assert info.value.http_status == status
    assert info.value.provider_code is None
    assert "Bad Gateway from the edge" in info.value.provider_message


def test_empty_error_body_falls_back_to_the_reason_phrase() -> None:
    with make_client(lambda r: httpx.Response(503)) as client, pytest.raises(RetryableProviderError) as info:
        client.get_task("t-1")
    assert info.value.provider_message == "Service Unavailable"


def test_a_long_error_page_is_truncated() -> None:
    with (
        make_client(lambda r: httpx.Response(500, text="x" * 10_000)) as client,
        pytest.raises(RetryableProviderError) as info,
    ):
        client.cancel_task("t-1")
    assert len(info.value.provider_message) <= 300


# -- create: ambiguous versus safe failures ----------------------------------------------------


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_create_failures_before_sending_are_safe_to_retry(exc_type: type[httpx.HTTPError]) -> None:
    with make_client(raising(exc_type)) as client, pytest.raises(RetryableProviderError) as info:
        client.create_task(REQUEST)
    assert type(info.value) is RetryableProviderError
    assert exc_type.__name__ in str(info.value)


@pytest.mark.parametrize(
    "exc_type",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
)
def test_create_failures_after_sending_are_ambiguous(exc_type: type[httpx.HTTPError]) -> None:
    with make_client(raising(exc_type)) as client, pytest.raises(AmbiguousCreateError) as info:
        client.create_task(REQUEST)
    assert "list_tasks" in str(info.value)  # tells the operator how to reconcile
    assert info.value.retryable  # retryable only after reconciliation, per the class doc


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ConnectError])
@pytest.mark.parametrize("call", ["get", "cancel", "list"])
def test_network_failures_of_other_calls_are_plainly_retryable(
    call: str, exc_type: type[httpx.HTTPError]
) -> None:
    with make_client(raising(exc_type)) as client, pytest.raises(RetryableProviderError) as info:
        CALLS[call](client)
    assert type(info.value) is RetryableProviderError


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway says hi</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"request_id": "req-x", "output": {"task_status": "PENDING"}}),
        httpx.Response(200, json={"request_id": "req-x"}),
    ],
    ids=["html", "json-array", "no-task-id", "no-output"],
)
def test_create_2xx_without_a_task_id_is_ambiguous(response: httpx.Response) -> None:
    with make_client(lambda r: response) as client, pytest.raises(AmbiguousCreateError) as info:
        client.create_task(REQUEST)
    assert info.value.http_status == 200


def test_create_2xx_carrying_an_error_code_is_classified() -> None:
    body = {"code": "InvalidParameter", "message": "size is bad", "request_id": "req-y"}
    with make_client(answer(200, body)) as client, pytest.raises(TerminalProviderError) as info:
        client.create_task(REQUEST)
    assert info.value.provider_code == "InvalidParameter"


def test_create_sends_the_contract_request() -> None:
    handler, seen = recorder([httpx.Response(200, json=CREATED)])
    with make_client(handler) as client:
        created = client.create_task(REQUEST)

    assert (created.task_id, created.task_status, created.request_id) == ("t-1", "PENDING", "req-create")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == BASE + CREATE_PATH
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-DashScope-Async"] == "enable"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert "X-DashScope-WorkSpace" not in request.headers
    assert json.loads(request.content) == REQUEST.to_provider_body()


def test_create_is_never_retried_by_the_client() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    with make_client(handler) as client, pytest.raises(AmbiguousCreateError):
        client.create_task(REQUEST)
    assert len(calls) == 1


# -- workspace, headers, construction ----------------------------------------------------------


@pytest.mark.parametrize("call", CALLS)
def test_workspace_header_is_sent_on_every_call(call: str) -> None:
    seen: list[httpx.Request] = []
    bodies = {
        "create": CREATED,
        "get": SUCCEEDED_BODY,
        "cancel": {"request_id": "r"},
        "list": {"request_id": "r", "tasks": []},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=bodies[call])

    with make_client(handler, workspace="ws-123") as client:
        CALLS[call](client)
    assert seen[0].headers["X-DashScope-WorkSpace"] == "ws-123"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert "X-DashScope-Async" not in seen[0].headers or call == "create"


def test_region_constants() -> None:
    assert DEFAULT_BASE_URL == "https://dashscope.aliyuncs.com/api/v1"
    assert INTL_BASE_URL == "https://dashscope-intl.aliyuncs.com/api/v1"


def test_owned_client_has_explicit_timeouts_and_is_closed() -> None:
    client = DashScopeClient(KEY)
    assert client._http.timeout == DEFAULT_TIMEOUT
    assert (DEFAULT_TIMEOUT.connect, DEFAULT_TIMEOUT.read, DEFAULT_TIMEOUT.write, DEFAULT_TIMEOUT.pool) == (
        5.0,
        20.0,
        10.0,
        5.0,
    )
    assert client.base_url == DEFAULT_BASE_URL
    with client:
        pass
    assert client._http.is_closed


def test_passed_in_client_is_left_open_for_its_owner() -> None:
    http = httpx.Client(transport=httpx.MockTransport(answer(200, CREATED)))
    with DashScopeClient(KEY, http_client=http):
        pass
    assert not http.is_closed
    http.close()


def test_explicit_timeout_is_sent_with_each_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SUCCEEDED_BODY)

    with make_client(handler, timeout=httpx.Timeout(1.0, read=2.0)) as client:
        client.get_task("t-1")
    assert seen[0].extensions["timeout"]["read"] == 2.0


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_api_key_is_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="api_key"):
        DashScopeClient(bad)


# -- the key never leaks -----------------------------------------------------------------------


def test_repr_masks_the_key() -> None:
    with DashScopeClient(KEY, workspace="ws-1") as client:
        assert KEY not in repr(client)
        assert KEY not in str(client)
        assert "ws-1" in repr(client)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


@pytest.mark.parametrize(
    "handler",
    [
        raising(httpx.ReadTimeout),
        raising(httpx.ConnectError),
        answer(401, {"code": "InvalidApiKey", "message": f"Invalid API-key provided: {KEY}"}),
        lambda r: httpx.Response(502, text=f"proxy echo: Authorization: Bearer {KEY}"),
        lambda r: httpx.Response(200, text=f"Authorization: Bearer {KEY}"),
    ],
    ids=["read-timeout", "connect-error", "echoing-401", "echoing-502", "echoing-200"],
)
def test_the_key_never_appears_in_errors(handler: Handler) -> None:
    with make_client(handler) as client, pytest.raises(ProviderError) as info:
        client.create_task(REQUEST)

    for exc in _chain(info.value):
        assert KEY not in str(exc)
        assert KEY not in repr(exc)
    assert KEY not in json.dumps(info.value.as_dict())
    # The httpx exception (whose .request carries the Authorization header) is not chained on.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


# -- get_task ---------------------------------------------------------------------------------


def test_get_task_parses_a_succeeded_task() -> None:
    handler, seen = recorder([httpx.Response(200, json=SUCCEEDED_BODY)])
    with make_client(handler) as client:
        task = client.get_task("t-1")

    assert seen[0].method == "GET"
    assert str(seen[0].url) == f"{BASE}/tasks/t-1"
    assert task.task_id == "t-1"
    assert task.status == TaskStatus.SUCCEEDED
    assert task.request_id == "req-get"
    assert task.submit_time == "2026-03-20 10:34:41.630"
    assert task.scheduled_time == "2026-03-20 10:34:41.655"
    assert task.end_time == "2026-03-20 10:35:12.725"
    assert task.orig_prompt == "一只小猫在月光下奔跑"
    assert task.is_final
    assert task.succeeded
    assert task.video_url == "https://media.pixverseai.cn/xxxx.mp4"
    assert task.usage is not None
    assert (task.usage.duration, task.usage.size, task.usage.fps) == (5, "1280*720", 24)
    assert (task.usage.video_count, task.usage.audio, task.usage.sr) == (1, False, "720")
    assert task.raw == SUCCEEDED_BODY


def test_task_id_is_escaped_into_one_path_segment() -> None:
    handler, seen = recorder([httpx.Response(200, json={"request_id": "r"})])
    with make_client(handler) as client:
        client.cancel_task("../a/b")
    assert seen[0].url.raw_path == b"/api/v1/tasks/..%2Fa%2Fb/cancel"


def test_empty_task_id_is_rejected_before_any_request() -> None:
    with make_client(raising(httpx.ConnectError)) as client, pytest.raises(ValueError, match="task_id"):
        client.get_task("")


def test_usage_tolerates_missing_extra_and_oddly_typed_keys() -> None:
    body = {
        "request_id": "r",
        "output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "https://v/x.mp4"},
        "usage": {"duration": 8, "SR": 1080, "new_counter": 3},
    }
    with make_client(answer(200, body)) as client:
        task = client.get_task("t")
    assert task.usage is not None
    assert task.usage.duration == 8
    assert task.usage.sr == "1080"
    assert task.usage.fps is None
    assert task.usage.model_extra == {"new_counter": 3}


def test_garbled_usage_does_not_hide_the_status() -> None:
    body = {
        "output": {"task_id": "t", "task_status": "SUCCEEDED", "video_url": "https://v/x.mp4"},
        "usage": {"duration": "five"},
    }
    with make_client(answer(200, body)) as client:
        task = client.get_task("t")
    assert task.usage is None
    assert task.raw["usage"] == {"duration": "five"}
    assert task.request_id is None


def test_succeeded_without_video_url_keeps_the_url_empty() -> None:
    # The poll use case turns this into a FAILED job (NoVideo); the client reports it as it came.
    body = {"request_id": "r", "output": {"task_id": "t-9", "task_status": "SUCCEEDED"}}
    with make_client(answer(200, body)) as client:
        task = client.get_task("t-9")
    assert (task.succeeded, task.video_url, task.task_id) == (True, None, "t-9")


def test_failed_task_carries_the_provider_code_and_message() -> None:
    body = {
        "request_id": "req-f",
        "output": {
            "task_id": "t-2",
            "task_status": "FAILED",
            "code": "DataInspectionFailed",
            "message": "Input data may contain inappropriate content.",
        },
    }
    with make_client(answer(200, body)) as client:
        task = client.get_task("t-2")
    assert task.is_final
    assert (task.code, task.message) == (
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    )
    assert (task.task_id, task.succeeded, task.video_url) == ("t-2", False, None)


@pytest.mark.parametrize(
    ("status", "final"),
    [
        ("PENDING", False),
        ("RUNNING", False),
        ("SUSPENDED", False),
        ("SUCCEEDED", True),
        ("FAILED", True),
        ("CANCELED", True),
        ("UNKNOWN", True),
        ("SOMETHING_NEW", False),
    ],
)
def test_statuses_are_kept_verbatim_and_final_ones_known(status: str, final: bool) -> None:
    body = {"request_id": "r", "output": {"task_id": "t", "task_status": status}}
    with make_client(answer(200, body)) as client:
        task = client.get_task("t")
    assert task.status == status
    assert task.is_final is final


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"request_id": "r", "output": {"task_status": "RUNNING"}}),
        httpx.Response(200, json={"request_id": "r", "output": {"task_id": "t", "task_status": ["RUNNING"]}}),
    ],
    ids=["html", "no-task-id", "bad-status-type"],
)
def test_malformed_2xx_query_is_retryable(response: httpx.Response) -> None:
    with make_client(lambda r: response) as client, pytest.raises(RetryableProviderError):
        client.get_task("t")


def test_query_2xx_with_error_code_is_classified() -> None:
    body = {"request_id": "r", "code": "InvalidApiKey", "message": "bad key"}
    with make_client(answer(200, body)) as client, pytest.raises(TerminalProviderError) as info:
        client.get_task("t")
    assert info.value.provider_code == "InvalidApiKey"


# -- cancel_task ------------------------------------------------------------------------------


def test_cancel_posts_and_returns_the_request_id() -> None:
    handler, seen = recorder([httpx.Response(200, json={"request_id": "req-cancel"})])
    with make_client(handler) as client:
        assert client.cancel_task("t-1") == CanceledTask(task_id="t-1", request_id="req-cancel")
    assert seen[0].method == "POST"
    assert str(seen[0].url) == f"{BASE}/tasks/t-1/cancel"
    assert seen[0].content == b""


def test_request_id_falls_back_to_the_response_header() -> None:
    with make_client(answer(200, {}, headers={"x-request-id": "hdr-1"})) as client:
        assert client.cancel_task("t-1").request_id == "hdr-1"


# -- list_tasks / iter_tasks ------------------------------------------------------------------


def test_list_tasks_formats_the_query() -> None:
    handler, seen = recorder([httpx.Response(200, json={"request_id": "r", "tasks": []})])
    with make_client(handler) as client:
        client.list_tasks(
            start_time=datetime(2026, 3, 20, 9, 5, 7),
            end_time=datetime(2026, 3, 20, 23, 59, 59),
            model_name="pixverse/pixverse-v5.6-t2v",
            status="SUCCEEDED",
            page_no=2,
            page_size=50,
        )
    request = seen[0]
    assert request.method == "GET"
    assert request.url.path == "/api/v1/tasks"
    assert dict(request.url.params) == {
        "start_time": "20260320090507",
        "end_time": "20260320235959",
        "model_name": "pixverse/pixverse-v5.6-t2v",
        "status": "SUCCEEDED",
        "page_no": "2",
        "page_size": "50",
    }


def test_list_tasks_omits_unset_filters() -> None:
    handler, seen = recorder([httpx.Response(200, json={"tasks": []})])
    with make_client(handler) as client:
        client.list_tasks(**WINDOW)
    assert set(seen[0].url.params) == {"start_time", "end_time", "page_no", "page_size"}


def test_aware_times_are_sent_in_provider_time() -> None:
    # Given 02:00 UTC, the provider (UTC+8) must be asked for 10:00.
    assert format_list_time(datetime(2026, 3, 20, 2, 0, 0, tzinfo=UTC)) == "20260320100000"
    tokyo = timezone(timedelta(hours=9))
    assert format_list_time(datetime(2026, 3, 20, 11, 0, 0, tzinfo=tokyo)) == "20260320100000"
    assert format_list_time(datetime(2026, 3, 20, 10, 0, 0)) == "20260320100000"


def _list_body(ids: list[str], *, page_no: int = 1, total: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "request_id": f"req-page-{page_no}",
        "page_no": page_no,
        "page_size": 10,
        "tasks": [
            {"task_id": i, "task_status": "SUCCEEDED", "submit_time": "2026-03-20 10:34:41.630"} for i in ids
        ],
    }
    if total is not None:
        body["total"] = total
    return body


def test_list_tasks_parses_the_sdk_shape() -> None:
    with make_client(answer(200, _list_body(["a", "b"], total=2))) as client:
        page = client.list_tasks(**WINDOW)
    assert [t.task_id for t in page.tasks] == ["a", "b"]
    assert page.tasks[0].status == "SUCCEEDED"
    assert page.tasks[0].submit_time == "2026-03-20 10:34:41.630"
    assert (page.page_no, page.page_size, page.total, page.request_id) == (1, 10, 2, "req-page-1")
    assert not page.has_next


def test_list_tasks_tolerates_data_key_status_key_and_output_wrapper() -> None:
    body = {
        "request_id": "r",
        "output": {
            "data": [{"task_id": "x", "status": "FAILED", "gmt_create": 1711349734000}, {"no_id": 1}, "junk"],
            "total": "1",
            "total_page": 1,
        },
    }
    with make_client(answer(200, body)) as client:
        page = client.list_tasks(**WINDOW)
    assert [(t.task_id, t.status) for t in page.tasks] == [("x", "FAILED")]
    assert (page.total, page.total_page) == (1, 1)
    assert page.tasks[0].raw["gmt_create"] == 1711349734000


def test_list_tasks_rejects_a_non_list_tasks_field() -> None:
    with (
        make_client(answer(200, {"tasks": {"a": 1}})) as client,
        pytest.raises(RetryableProviderError, match="tasks array"),
    ):
        client.list_tasks(**WINDOW)


def test_iter_tasks_walks_every_page() -> None:
    ids = [f"t{i}" for i in range(25)]
    handler, seen = recorder(
        [
            httpx.Response(200, json=_list_body(ids[0:10], page_no=1, total=25)),
            httpx.Response(200, json=_list_body(ids[10:20], page_no=2, total=25)),
            httpx.Response(200, json=_list_body(ids[20:25], page_no=3, total=25)),
        ]
    )
    with make_client(handler) as client:
        found = [t.task_id for t in client.iter_tasks(**WINDOW)]
    assert found == ids
    assert [r.url.params["page_no"] for r in seen] == ["1", "2", "3"]


def test_iter_tasks_without_total_stops_at_a_short_page() -> None:
    handler, seen = recorder(
        [
            httpx.Response(200, json=_list_body([f"a{i}" for i in range(10)])),
            httpx.Response(200, json=_list_body(["b0"], page_no=2)),
        ]
    )
    with make_client(handler) as client:
        assert len(list(client.iter_tasks(**WINDOW, page_size=10))) == 11
    assert len(seen) == 2


def test_iter_tasks_asks_for_the_largest_page_the_provider_serves() -> None:
    handler, seen = recorder([httpx.Response(200, json=_list_body(["a"]))])
    with make_client(handler) as client:
        list(client.iter_tasks(**WINDOW))
    assert seen[0].url.params["page_size"] == str(LIST_PAGE_SIZE) == "100"


def test_a_scan_that_runs_out_of_pages_is_incomplete_never_complete() -> None:
    # Given a server with more pages than the scan may read
    full_page = _list_body([f"a{i}" for i in range(10)])
    seen: list[str] = []
    with make_client(answer(200, full_page)) as client, pytest.raises(IncompleteListError):
        # When the pages run out, the caller learns the scan is incomplete (not a silent end)
        seen.extend(t.task_id for t in client.iter_tasks(**WINDOW, page_size=10, max_pages=3))
    assert len(seen) == 30


def test_the_end_of_a_list_window_rounds_up_to_the_next_whole_second() -> None:
    handler, seen = recorder([httpx.Response(200, json={"tasks": []})])
    with make_client(handler) as client:
        client.list_tasks(
            start_time=datetime(2026, 3, 20, 10, 0, 0, 900_000), end_time=datetime(2026, 3, 20, 10, 0, 5, 1)
        )
    assert (seen[0].url.params["start_time"], seen[0].url.params["end_time"]) == (
        "20260320100000",
        "20260320100006",
    )
