"""DashScope client for PixVerse text-to-video (synchronous, on httpx).

The adapter at the edge: it speaks HTTP and turns every answer into a typed record of
`t2v.provider` or a typed error from `t2v.errors`. It never retries by itself, least of all a
create (every create is billed and the API has no idempotency key); retries belong to the caller,
guided by the error class.

Regions: `DEFAULT_BASE_URL` is Beijing, `INTL_BASE_URL` is Singapore. Key, model and endpoint
must belong to the same region.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Final, NoReturn, Self
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from t2v.errors import (
    AmbiguousCreateError,
    IncompleteListError,
    ProviderError,
    RetryableProviderError,
    classify_http_error,
)
from t2v.jobs import TaskStatus
from t2v.provider import CanceledTask, CreatedTask, TaskInfo, TaskPage
from t2v.request import RequestBase

DEFAULT_BASE_URL: Final = "https://dashscope.aliyuncs.com/api/v1"
"""Beijing (cn-beijing) endpoint."""
INTL_BASE_URL: Final = "https://dashscope-intl.aliyuncs.com/api/v1"
"""Singapore (ap-southeast-1) endpoint; needs a key issued in that region."""

CREATE_PATH: Final = "/services/aigc/video-generation/video-synthesis"
USER_AGENT: Final = "t2v-pipeline/0.1.0 (dashscope-client; httpx)"
DEFAULT_TIMEOUT: Final = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=5.0)
# Both regions run on UTC+8; aware datetimes are converted to it for the list-tasks window.
PROVIDER_TZ: Final = timezone(timedelta(hours=8), "UTC+08:00")
LIST_TIME_FORMAT: Final = "%Y%m%d%H%M%S"
# The largest page of list-tasks the provider serves (its default is 10): fewer calls per window.
LIST_PAGE_SIZE: Final = 100
# Pages one scan reads at most (10,000 tasks, about 25 s at 250 ms a call, inside submit's timeout).
LIST_MAX_PAGES: Final = 100
# Longest provider text we copy into an exception; an HTML error page is not worth more.
_MAX_ERROR_TEXT: Final = 300

# Failures where httpx never handed the request to the server: retrying a create is safe.
_NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def format_list_time(value: datetime, *, round_up: bool = False) -> str:
    """`YYYYMMDDhhmmss` in provider time; naive datetimes are taken as provider time already.

    The format has whole seconds: `round_up` moves a fractional end of a window to the next second,
    so that the window never loses the tasks of its last second.
    """
    if value.tzinfo is not None:
        value = value.astimezone(PROVIDER_TZ)
    if round_up and value.microsecond:
        value = value.replace(microsecond=0) + timedelta(seconds=1)
    return value.strftime(LIST_TIME_FORMAT)


class DashScopeClient:
    """Synchronous DashScope task client. Owns its httpx.Client unless one is passed in."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        workspace: str | None = None,
        timeout: httpx.Timeout | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ValueError("api_key must not be empty")
        # SecretStr keeps the key out of repr/str, and so out of logs and tracebacks.
        self._api_key = SecretStr(api_key)
        self._base_url = base_url.rstrip("/")
        self._workspace = workspace
        self._owns_client = http_client is None
        # A passed-in client keeps its own timeouts unless the caller gives some explicitly.
        self._http = http_client or httpx.Client(timeout=timeout or DEFAULT_TIMEOUT)
        self._timeout = timeout or self._http.timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, workspace={self._workspace!r}, "
            "api_key='**********')"
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        """Close the httpx.Client if this client created it; a passed-in one belongs to the caller."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public calls -------------------------------------------------------------------------

    def create_task(self, request: RequestBase, urls: Mapping[str, str] | None = None) -> CreatedTask:
        """Submit one generation task. Never retried here: a retry could pay for two videos.

        Raises `AmbiguousCreateError` when the request may have reached the provider without an
        answer coming back: reconcile through `list_tasks` before creating again. `urls` gives the
        provider's URL of each image the request names (an S3 object's presigned GET).
        """
        return self._create(request.to_provider_body(urls))

    def get_task(self, task_id: str) -> TaskInfo:
        response = self._send("GET", f"/tasks/{_path_segment(task_id)}")
        body = self._success_body(response)
        output = body.get("output")
        if not isinstance(output, Mapping) or not output.get("task_id"):
            _raise_malformed(response, body, "task query answer has no output.task_id")
        merged: dict[str, Any] = {**output, "request_id": _request_id(response, body), "raw": body}
        if "usage" in body:
            merged["usage"] = body["usage"]
        try:
            return TaskInfo.model_validate(merged)
        except ValidationError as exc:
            raise RetryableProviderError(
                f"task query answer is malformed: {exc.error_count()} field error(s)",
                http_status=response.status_code,
                request_id=merged["request_id"],
            ) from None

    def cancel_task(self, task_id: str) -> CanceledTask:
        """Cancel a PENDING task; the answer carries the provider's request_id."""
        response = self._send("POST", f"/tasks/{_path_segment(task_id)}/cancel")
        body = self._success_body(response)
        return CanceledTask(task_id=task_id, request_id=_request_id(response, body))

    def list_tasks(
        self,
        *,
        start_time: datetime,
        end_time: datetime,
        model_name: str | None = None,
        status: str | None = None,
        page_no: int = 1,
        page_size: int = 10,
    ) -> TaskPage:
        """One page of the account's tasks submitted in [start_time, end_time]."""
        params: dict[str, str | int] = {
            "start_time": format_list_time(start_time),
            "end_time": format_list_time(end_time, round_up=True),
            "page_no": page_no,
            "page_size": page_size,
        }
        if model_name is not None:
            params["model_name"] = model_name
        if status is not None:
            params["status"] = status
        response = self._send("GET", "/tasks", params=params)
        body = self._success_body(response)
        return _parse_page(response, body, page_no=page_no, page_size=page_size)

    def iter_tasks(
        self,
        *,
        start_time: datetime,
        end_time: datetime,
        model_name: str | None = None,
        status: str | None = None,
        page_size: int = LIST_PAGE_SIZE,
        max_pages: int = LIST_MAX_PAGES,
    ) -> Iterator[TaskInfo]:
        """Every task of the window, page after page.

        Raises `IncompleteListError` when `max_pages` pages still leave tasks unread: a caller that
        looks for a task must never take a truncated scan for a complete one.
        """
        for page_no in range(1, max_pages + 1):
            page = self.list_tasks(
                start_time=start_time,
                end_time=end_time,
                model_name=model_name,
                status=status,
                page_no=page_no,
                page_size=page_size,
            )
            yield from page.tasks
            if not page.has_next:
                return
        raise IncompleteListError(
            f"list-tasks still had tasks after {max_pages} pages of {page_size}: the scan is incomplete"
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _create(self, body: Mapping[str, Any]) -> CreatedTask:
        """POST a raw create body. Private: callers go through RequestBase's validation."""
        try:
            response = self._http.request(
                "POST",
                self._url(CREATE_PATH),
                json=dict(body),
                headers=self._headers({"X-DashScope-Async": "enable"}),
                timeout=self._timeout,
            )
        except _NOT_SENT_ERRORS as exc:
            raise RetryableProviderError(self._network_text("POST", CREATE_PATH, exc)) from None
        except httpx.HTTPError as exc:
            raise AmbiguousCreateError(
                self._network_text("POST", CREATE_PATH, exc)
                + "; the task may exist, reconcile via list_tasks"
            ) from None
        if not response.is_success:
            raise self._http_error(response)
        data = _json_object(response)
        request_id = _request_id(response, data or {})
        if data is None:
            raise AmbiguousCreateError(
                f"create answered HTTP {response.status_code} with an unparseable body; "
                "the task may exist, reconcile via list_tasks",
                http_status=response.status_code,
                request_id=request_id,
            )
        output = data.get("output")
        if not isinstance(output, Mapping):
            output = {}
        task_id = output.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            if data.get("code"):
                raise self._http_error(response)
            raise AmbiguousCreateError(
                f"create answered HTTP {response.status_code} without output.task_id; "
                "the task may exist, reconcile via list_tasks",
                http_status=response.status_code,
                request_id=request_id,
            )
        return CreatedTask(
            task_id=task_id,
            task_status=str(output.get("task_status") or TaskStatus.PENDING),
            request_id=request_id,
        )

    def _send(
        self, method: str, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> httpx.Response:
        """Send a read or cancel call; every network failure is retryable (no side effect to double)."""
        try:
            return self._http.request(
                method,
                self._url(path),
                params=dict(params) if params else None,
                headers=self._headers(),
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise RetryableProviderError(self._network_text(method, path, exc)) from None

    def _success_body(self, response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise self._http_error(response)
        data = _json_object(response)
        if data is None:
            raise RetryableProviderError(
                f"HTTP {response.status_code} answer is not a JSON object",
                http_status=response.status_code,
                request_id=_request_id(response, {}),
            )
        return data

    def _http_error(self, response: httpx.Response) -> ProviderError:
        """Map one error answer through the single classification rule of `t2v.errors`."""
        data = _json_object(response) or {}
        code = data.get("code")
        message = data.get("message")
        if not isinstance(message, str) or not message:
            message = self._scrub(response.text.strip()[:_MAX_ERROR_TEXT]) or response.reason_phrase
        return classify_http_error(
            response.status_code,
            code if isinstance(code, str) and code else None,
            self._scrub(message),
            _request_id(response, data),
        )

    def _network_text(self, method: str, path: str, exc: httpx.HTTPError) -> str:
        # Only the class and httpx's own text: never the request object, which carries the key.
        return self._scrub(f"{method} {path}: {type(exc).__name__}: {exc}")

    def _scrub(self, text: str) -> str:
        # Belt and braces: a proxy that echoes the request must not leak the key into an error.
        secret = self._api_key.get_secret_value()
        return text.replace(secret, "**********") if secret in text else text

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self._workspace:
            headers["X-DashScope-WorkSpace"] = self._workspace
        if extra:
            headers.update(extra)
        return headers


def _path_segment(task_id: str) -> str:
    if not task_id:
        raise ValueError("task_id must not be empty")
    return quote(task_id, safe="")


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _request_id(response: httpx.Response, body: Mapping[str, Any]) -> str | None:
    value = body.get("request_id") or response.headers.get("x-request-id")
    return str(value) if value else None


def _raise_malformed(response: httpx.Response, body: Mapping[str, Any], why: str) -> NoReturn:
    code = body.get("code")
    if isinstance(code, str) and code:
        message = body.get("message")
        raise classify_http_error(
            response.status_code,
            code,
            message if isinstance(message, str) else why,
            _request_id(response, body),
        )
    raise RetryableProviderError(
        why, http_status=response.status_code, request_id=_request_id(response, body)
    )


def _parse_page(response: httpx.Response, body: dict[str, Any], *, page_no: int, page_size: int) -> TaskPage:
    """Parse `GET /tasks`: flat `{tasks|data, total, page_no, page_size}`, or wrapped in `output`."""
    output = body.get("output")
    flat: dict[str, Any] = {**output, **body} if isinstance(output, Mapping) else dict(body)
    items = flat.get("tasks")
    if items is None:
        items = flat.get("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        _raise_malformed(response, body, "task list answer has no tasks array")
    try:
        tasks = tuple(
            TaskInfo.model_validate({**item, "raw": item})
            for item in items
            if isinstance(item, Mapping) and item.get("task_id")
        )
        return TaskPage(
            tasks=tasks,
            page_no=_int_or(flat.get("page_no"), page_no),
            page_size=_int_or(flat.get("page_size"), page_size),
            total=_int_or(flat.get("total"), None),
            total_page=_int_or(flat.get("total_page"), None),
            request_id=_request_id(response, body),
        )
    except ValidationError as exc:
        raise RetryableProviderError(
            f"task list answer is malformed: {exc.error_count()} field error(s)",
            http_status=response.status_code,
            request_id=_request_id(response, body),
        ) from None


def _int_or[T](value: Any, default: T) -> int | T:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default
