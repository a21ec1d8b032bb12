"""The emulator: a real HTTP server speaking DashScope's async video-synthesis API.

emu = Emulator(EmulatorConfig(pending_seconds=0.2, running_seconds=0.5))
emu.start(host="127.0.0.1", port=0)
emu.base_url   # what a DashScope client uses as its base URL
...
emu.stop()
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from dashscope_emulator import capacity, images
from dashscope_emulator.capacity import OVER_CAP_MODES, THROTTLED_MESSAGE, OverCap
from dashscope_emulator.faults import FaultInjector, FaultPlan, FaultRule
from dashscope_emulator.media import MediaStore, VideoSpec
from dashscope_emulator.push import Pusher
from dashscope_emulator.rules import MODELS
from dashscope_emulator.tasks import Task, parse_list_time
from dashscope_emulator.validation import ApiError, parse_create

API: Final = "/api/v1"
CREATE_PATH: Final = f"{API}/services/aigc/video-generation/video-synthesis"
_TASK_PATH: Final = re.compile(rf"^{API}/tasks/([^/]+)$")
_CANCEL_PATH: Final = re.compile(rf"^{API}/tasks/([^/]+)/cancel$")
_MEDIA_PATH: Final = re.compile(r"^/media/([^/]+)\.mp4$")
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")
DAY: Final = 86_400.0
# The largest list page the emulator serves; a larger `page_size` is refused, as a bound the client must
# respect (DashScope's list-tasks documents 10 as its default page size).
MAX_PAGE_SIZE: Final = 100


@dataclass
class EmulatorConfig:
    pending_seconds: float = 1.0
    running_seconds: float = 3.0
    task_ttl_seconds: float = DAY
    api_keys: tuple[str, ...] | None = None  # None: any key starting with "sk-"
    query_rps_limit: int = 20
    public_url: str | None = None  # base of video_url; default: the server's own root URL
    seed: int = 0  # seed of the fault plan when `faults` gives none
    faults: FaultPlan | None = None
    media_dir: Path | None = None  # default: a temporary directory removed on stop()
    encode_workers: int = 2
    media_wait_seconds: float = 120.0
    # The provider's clock against the callers' (seconds added to every time the emulator reads): its
    # task creation times, list windows and task lifetimes all follow the skewed clock.
    clock_offset_seconds: float = 0.0
    # Task-finished pushes (dashscope_emulator.push): off until a URL is set here or by POST /admin/push.
    push_url: str | None = None
    push_token: str = ""
    push_retry_delays: tuple[float, ...] = (10.0, 15.0, 20.0)
    # The account's cap on tasks in flight (dashscope_emulator.capacity); None: no cap.
    max_running_tasks: int | None = None
    over_cap: OverCap = "refuse"


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    time: float
    endpoint: str
    status: int | None = None
    task_id: str | None = None
    request_id: str | None = None
    fault: str | None = None
    code: str | None = None
    prompt: str | None = None  # creates only: lets a test tell which request a create answer belongs to
    api_key_id: str | None = (
        None  # which client called (as the list endpoint names it), once its key is known
    )
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "time": self.time,
            "endpoint": self.endpoint,
            "status": self.status,
            "task_id": self.task_id,
            "request_id": self.request_id,
            "fault": self.fault,
            "code": self.code,
            "prompt": self.prompt,
            "api_key_id": self.api_key_id,
        }


class _Dropped(Exception):  # noqa: N818 - control flow, not an error
    """The connection was deliberately closed without an answer."""


class Emulator:
    """DashScope emulator state plus the HTTP server that exposes it."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._log: list[RequestRecord] = []
        self._created = 0
        self._capacity_refusals = 0
        self._windows: dict[str, deque[float]] = {}
        self._faults = FaultInjector(self.config.faults or FaultPlan(seed=self.config.seed))
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.media = MediaStore(self.config.media_dir, workers=self.config.encode_workers)
        self.pusher = Pusher(self._faults, retry_delays=self.config.push_retry_delays)
        if self.config.push_url:
            self.pusher.configure(self.config.push_url, self.config.push_token)

    # ----------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        handler = type("Handler", (_Handler,), {"emulator": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        server.handle_error = _quiet_error  # type: ignore[method-assign]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dashscope-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.pusher.stop()
        self.media.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host = str(self._server.server_address[0])
        host = "127.0.0.1" if host in {"0.0.0.0", ""} else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + API

    @property
    def public_base(self) -> str:
        return (self.config.public_url or self.root_url).rstrip("/")

    def video_url(self, task_id: str) -> str:
        return f"{self.public_base}/media/{task_id}.mp4"

    def now(self) -> float:
        """The provider's clock: this machine's, shifted by `clock_offset_seconds`."""
        return time.time() + self.config.clock_offset_seconds

    # ----------------------------------------------------------------- inspection
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._log]

    def tasks(self) -> list[dict[str, Any]]:
        now = self.now()
        with self._lock:
            return [t.admin_view(now) for t in self._tasks.values()]

    def task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def create_count(self) -> int:
        with self._lock:
            return self._created

    def faults(self) -> FaultPlan:
        return self._faults.plan

    def fault_counts(self) -> list[int]:
        return self._faults.fired()

    def set_faults(self, plan: FaultPlan | dict[str, Any] | None) -> FaultPlan:
        if plan is None:
            plan = FaultPlan(seed=self.config.seed)
        elif isinstance(plan, dict):
            plan = FaultPlan.model_validate(plan)
        self._faults.replace(plan)
        return plan

    def configure_push(self, url: str | None, token: str = "") -> None:
        """Push every task's end to `url` with `token` in the EventBridge token header (None: off)."""
        self.pusher.configure(url, token)

    def pushes(self) -> list[dict[str, Any]]:
        """Every push delivery attempt so far (and the dropped ones, with attempt 0 and no status)."""
        return self.pusher.log()

    def reset(self) -> None:
        """Forget tasks, the request log, the push log and the fault plan."""
        with self._lock:
            self._tasks.clear()
            self._log.clear()
            self._windows.clear()
            self._created = 0
            self._capacity_refusals = 0
        self.media.clear()
        self.pusher.clear()
        self.set_faults(None)

    def wait_media(self, task_id: str, timeout: float | None = None) -> Path | None:
        return self.media.wait(task_id, timeout)

    # ----------------------------------------------------------------- internals for the handler
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _key_ok(self, key: str) -> bool:
        if self.config.api_keys is not None:
            return key in self.config.api_keys
        return key.startswith("sk-") and len(key) > 3

    def _throttled(self, key: str) -> bool:
        """Sliding one-second window per key; only admitted requests count."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.config.query_rps_limit:
                return True
            window.append(now)
            return False

    def _create_task(self, key: str, req: Any, request_id: str, pictures: tuple[bytes, ...] = ()) -> Task:
        cfg = self.config
        _, outcome_rule = self._faults.pick("task", req.prompt)
        task = Task(
            task_id=str(uuid.uuid4()),
            request_id=request_id,
            api_key=key,
            model=req.model,
            prompt=req.prompt,
            render_prompt=req.render_prompt,
            truncated=req.truncated,
            size=req.size,
            duration=req.duration,
            audio=req.audio,
            watermark=req.watermark,
            seed=req.seed if req.seed is not None else uuid.uuid4().int % 2_147_483_648,
            created=self.now(),
            pending_seconds=cfg.pending_seconds,
            running_seconds=cfg.running_seconds,
            ttl_seconds=cfg.task_ttl_seconds,
            parameters=req.parameters,
            images=pictures,
        )
        if outcome_rule is not None and outcome_rule.kind == "task_failed":
            task.outcome, task.fail_code, task.fail_message = (
                "failed",
                outcome_rule.code,
                outcome_rule.error_message,
            )
        elif outcome_rule is not None and outcome_rule.kind == "no_video_url":
            task.outcome = "no_video"
        elif outcome_rule is not None and outcome_rule.kind == "video_url":
            task.video_url_override = outcome_rule.url
        with self._lock:
            cap, mode = cfg.max_running_tasks, cfg.over_cap
            if (
                cap is not None
                and mode == "refuse"
                and capacity.in_flight(self._tasks.values(), self.now()) >= cap
            ):
                self._capacity_refusals += 1
                raise ApiError(429, "Throttling", THROTTLED_MESSAGE)
            self._tasks[task.task_id] = task
            self._created += 1
            moved = (
                capacity.schedule(self._tasks.values(), cap) if cap is not None and mode == "queue" else []
            )
        self._push_moved([t for t in moved if t is not task])
        self.pusher.task_ended(task, "FAILED" if task.outcome == "failed" else "SUCCEEDED", task.finished_at)
        if task.outcome == "succeeded":
            spec = VideoSpec(
                task.render_prompt,
                task.delivered_size,
                task.duration,
                task.audio,
                task.watermark,
                task.seed,
                images=task.images,
            )
            self.media.submit(task.task_id, spec)
        return task

    def add_tasks(
        self,
        count: int,
        *,
        prompt: str,
        api_key: str = "sk-another-client",
        created: float | None = None,
        spread_seconds: float = 0.0,
        outcome: str = "failed",
        size: str = "640*360",
        duration: int = 5,
    ) -> list[str]:
        """Put `count` tasks of another client on the account at once, without HTTP or media (a busy
        account: a notebook or another stack on the same key). Ended `failed` by default, since their
        videos are never fetched; `created` (provider clock) defaults to now, spread over `spread_seconds`."""
        base = self.now() if created is None else created
        made: list[Task] = []
        for n in range(count):
            made.append(
                Task(
                    task_id=str(uuid.uuid4()),
                    request_id=str(uuid.uuid4()),
                    api_key=api_key,
                    model=next(iter(MODELS)),
                    prompt=prompt,
                    render_prompt=prompt,
                    truncated=False,
                    size=size,
                    duration=duration,
                    audio=False,
                    watermark=False,
                    seed=n,
                    created=base + (spread_seconds * n / count if count else 0.0),
                    pending_seconds=self.config.pending_seconds,
                    running_seconds=self.config.running_seconds,
                    ttl_seconds=self.config.task_ttl_seconds,
                    outcome=outcome,  # type: ignore[arg-type]
                    fail_code="InternalError.Algo" if outcome == "failed" else None,
                    fail_message="Inference failed." if outcome == "failed" else None,
                )
            )
        with self._lock:
            self._tasks.update({t.task_id: t for t in made})
        return [t.task_id for t in made]

    def set_capacity(self, max_running_tasks: int | None, over_cap: str = "refuse") -> dict[str, Any]:
        """Cap the account at runtime (None: no cap); ValueError naming the field on bad input."""
        if max_running_tasks is not None and (
            isinstance(max_running_tasks, bool)
            or not isinstance(max_running_tasks, int)
            or max_running_tasks < 1
        ):
            raise ValueError("max_running_tasks: must be a whole number of at least 1, or null for no cap")
        if over_cap not in OVER_CAP_MODES:
            raise ValueError(f"over_cap: must be one of {', '.join(OVER_CAP_MODES)}")
        with self._lock:
            self.config.max_running_tasks = max_running_tasks
            self.config.over_cap = over_cap
            moved = self._reschedule()
        self._push_moved(moved)
        return self.capacity()

    def capacity(self) -> dict[str, Any]:
        """The cap and the highest numbers the account ever had in flight and running."""
        with self._lock:
            found = capacity.stats(list(self._tasks.values()), self.now())
            return {
                "max_running_tasks": self.config.max_running_tasks,
                "over_cap": self.config.over_cap,
                "max_in_flight": found.max_in_flight,
                "max_running": found.max_running,
                "in_flight": found.in_flight,
                "running": found.running,
                "capacity_refusals": self._capacity_refusals,
            }

    def _reschedule(self) -> list[Task]:
        """Under the lock: the running places handed out again after a create, cancel or new cap."""
        cap = self.config.max_running_tasks
        if cap is not None and self.config.over_cap == "queue":
            return capacity.schedule(self._tasks.values(), cap)
        return capacity.unschedule(self._tasks.values())

    def _push_moved(self, moved: list[Task]) -> None:
        """Tasks whose end moved (they waited for a running place): their pushes follow the new end."""
        now = self.now()
        for task in moved:
            if task.canceled_at is None and task.finished_at > now:
                self.pusher.task_ended(
                    task, "FAILED" if task.outcome == "failed" else "SUCCEEDED", task.finished_at
                )

    def _cancel(self, task_id: str) -> bool:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.status(self.now()) != "PENDING":
                return False
            task.canceled_at = self.now()
            moved = self._reschedule()
        self._push_moved(moved)
        self.pusher.task_ended(task, "CANCELED", task.canceled_at)
        self.media.discard(task_id)
        return True

    def _list(self, query: dict[str, str], request_id: str) -> dict[str, Any]:
        now = self.now()
        start, end = _list_window(query, now)
        page_no = _positive_int(query, "page_no", 1)
        page_size = _positive_int(query, "page_size", 10)
        if page_size > MAX_PAGE_SIZE:
            raise ApiError(
                400, "InvalidParameter", f"page_size must be at most {MAX_PAGE_SIZE}, got {page_size}"
            )
        with self._lock:
            tasks = [t for t in self._tasks.values() if now < t.created + t.ttl_seconds]
        items = [
            t.list_item(now)
            for t in sorted(tasks, key=lambda t: t.created, reverse=True)
            if start <= t.created <= end
            and query.get("model_name") in {None, t.model}
            and query.get("status") in {None, t.lifecycle_status(now)}
        ]
        total = len(items)
        page = items[(page_no - 1) * page_size : page_no * page_size]
        return {
            "request_id": request_id,
            "total": total,
            "data": page,
            "total_page": (total + page_size - 1) // page_size,
            "page_no": page_no,
            "page_size": page_size,
        }

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


def api_key_id(key: str) -> str:
    """The short id the provider shows for an API key (list items' `api_key_id`)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _positive_int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, "InvalidParameter", f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def _list_window(query: dict[str, str], now: float) -> tuple[float, float]:
    try:
        start = parse_list_time(query["start_time"]) if "start_time" in query else None
        end = parse_list_time(query["end_time"]) if "end_time" in query else None
    except ValueError as exc:
        raise ApiError(
            400, "InvalidParameter", f"start_time/end_time must be formatted YYYYMMDDhhmmss, got {exc}"
        ) from None
    if start is None and end is None:
        return now - DAY, now
    if start is None:
        assert end is not None
        return end - DAY, end
    if end is None:
        return start, start + DAY
    if end < start or end - start > DAY:
        raise ApiError(
            400, "InvalidParameter", "end_time must follow start_time and the range may not exceed 24 hours"
        )
    return start, end


def _quiet_error(request: Any, client_address: Any) -> None:
    """Connections the client gave up on are normal here; do not print tracebacks."""


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    server_version = "dashscope-emulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the admin log has it all)."""

    # ------------------------------------------------------------- dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self._body = self._read_body()
        self._query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/admin/"):
            self._admin(method, url.path)
            return
        record = RequestRecord(
            method, url.path, url.query, time.time(), "unknown", request_id=str(uuid.uuid4())
        )
        self._rec = record
        self.emulator._record(record)
        try:
            self._route(method, url.path)
        except ApiError as err:
            self._error(err)
        except _Dropped:
            self.close_connection = True

    def _route(self, method: str, path: str) -> None:
        if method == "POST" and path == CREATE_PATH:
            self._api("create", self._create)
        elif method == "GET" and path.rstrip("/") == f"{API}/tasks":
            self._api("list", self._list)
        elif method == "GET" and (m := _TASK_PATH.match(path)):
            self._api("query", self._query_task, m.group(1))
        elif method == "POST" and (m := _CANCEL_PATH.match(path)):
            self._api("cancel", self._cancel, m.group(1))
        elif method in {"GET", "HEAD"} and (m := _MEDIA_PATH.match(path)):
            self._rec.endpoint = "media"
            self._media(m.group(1), head=method == "HEAD")
        else:
            raise ApiError(404, "InvalidURL", "url error, please check url!")

    def _api(self, endpoint: str, handler: Any, task_id: str | None = None) -> None:
        self._rec.endpoint = endpoint
        self._rec.task_id = task_id
        key = self._api_key()
        self._rec.api_key_id = api_key_id(key)
        if endpoint == "query" and self.emulator._throttled(key):
            raise ApiError(429, "Throttling", "Requests rate limit exceeded, please try again later.")
        if endpoint == "create":
            handler(key)  # faults are drawn after validation, with the prompt known
            return
        task = self.emulator.task(task_id) if task_id else None
        self._inject(endpoint, task.prompt if task else None)
        handler(task_id) if task_id is not None else handler()

    def _api_key(self) -> str:
        auth = self.headers.get("Authorization", "").strip()
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if not auth or (scheme.lower() == "bearer" and not key):
            raise ApiError(401, "InvalidApiKey", "No API-key provided.")
        if scheme.lower() != "bearer" or not self.emulator._key_ok(key):
            raise ApiError(401, "InvalidApiKey", "Invalid API-key provided.")
        return key

    def _inject(self, endpoint: str, prompt: str | None) -> FaultRule | None:
        """Apply latency and error/timeout faults; returns a rule the endpoint must apply itself."""
        latency, rule = self.emulator._faults.pick(endpoint, prompt)
        self.emulator._sleep(latency)
        if rule is None:
            return None
        self._rec.fault = rule.kind
        if rule.kind == "error":
            raise ApiError(rule.error_status, rule.code or "InternalError", rule.error_message)
        if rule.kind == "timeout":
            self.emulator._sleep(rule.hold_seconds)
            self._drop()
        return rule

    # ------------------------------------------------------------- endpoints
    def _create(self, key: str) -> None:
        if self.headers.get("X-DashScope-Async", "").strip().lower() != "enable":
            raise ApiError(403, "AccessDenied", "current user api does not support synchronous calls")
        try:
            body = json.loads(self._body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "InvalidParameter", "The request body is not valid JSON.") from None
        req = parse_create(body)
        pictures: tuple[bytes, ...] = ()
        if req.media:  # the provider fetches the images itself; one it cannot read fails the create
            fetched = images.fetch_all([url for _, url in req.media])
            req = replace(req, size=images.output_size(req.resolution or "720P", fetched[0]))
            pictures = tuple(f.data for f in fetched)
        self._rec.prompt = req.prompt
        rule = self._inject("create", req.prompt)
        task = self.emulator._create_task(key, req, self._rec.request_id or "", pictures)
        self._rec.task_id = task.task_id
        if rule is not None and rule.kind == "drop_after_accept":
            self._drop()
        self._json(200, {"output": {"task_status": "PENDING", "task_id": task.task_id}})

    def _query_task(self, task_id: str) -> None:
        task = self.emulator.task(task_id)
        if task is None:
            self._json(200, {"output": {"task_id": task_id, "task_status": "UNKNOWN"}})
            return
        body = task.query_body(
            self.emulator.now(), self._rec.request_id or "", self.emulator.video_url(task_id)
        )
        body.pop("request_id")
        self._json(200, body)

    def _cancel(self, task_id: str) -> None:
        if not self.emulator._cancel(task_id):
            raise ApiError(
                400,
                "UnsupportedOperation",
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
            )
        self._json(200, {})

    def _list(self) -> None:
        body = self.emulator._list(self._query, self._rec.request_id or "")
        body.pop("request_id")
        self._json(200, body)

    def _media(self, task_id: str, *, head: bool) -> None:
        self._rec.task_id = task_id
        task = self.emulator.task(task_id)
        rule = self._inject("media", task.prompt if task else None)
        now = self.emulator.now()
        if task is None or not task.has_video or now < task.finished_at:
            self._plain(404, b"NoSuchKey: The specified key does not exist.")
            return
        path = self.emulator.wait_media(task_id, timeout=self.emulator.config.media_wait_seconds)
        if path is None:
            self._plain(404, b"NoSuchKey: The specified key does not exist.")
            return
        data = path.read_bytes()
        start, end, status = self._range(len(data))
        chunk = data[start : end + 1]
        self.send_response(status)
        self._rec.status = status
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if head:
            return
        if rule is not None and rule.kind == "reset_mid_download":
            cut = rule.reset_after_bytes if rule.reset_after_bytes is not None else len(chunk) // 2
            self.wfile.write(chunk[: min(cut, max(len(chunk) - 1, 0))])
            self._drop(reset=True)
        self.wfile.write(chunk)

    def _range(self, size: int) -> tuple[int, int, int]:
        header = self.headers.get("Range")
        match = _RANGE.match(header.strip()) if header else None
        if match is None or size == 0 or match.groups() == ("", ""):
            return 0, size - 1, 200
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last)) if last else size - 1
        if start >= size or start > end:
            raise ApiError(416, "InvalidRange", "The requested range is not satisfiable.")
        return start, end, 206

    # ------------------------------------------------------------- admin
    def _admin(self, method: str, path: str) -> None:
        emu = self.emulator
        if method == "GET" and path == "/admin/requests":
            self._json(200, {"requests": emu.requests()}, with_id=False)
        elif method == "GET" and path == "/admin/tasks":
            self._json(200, {"tasks": emu.tasks()}, with_id=False)
        elif method == "GET" and path == "/admin/faults":
            self._json(200, self._faults_body(), with_id=False)
        elif method == "POST" and path == "/admin/faults":
            try:
                emu.set_faults(json.loads(self._body or b"{}"))
            except (ValueError, ValidationError) as exc:
                self._json(400, {"code": "InvalidFaultPlan", "message": str(exc)}, with_id=False)
                return
            self._json(200, self._faults_body(), with_id=False)
        elif method == "GET" and path == "/admin/pushes":
            self._json(200, {"pushes": emu.pushes()}, with_id=False)
        elif method == "POST" and path == "/admin/push":
            config = json.loads(self._body or b"{}")
            emu.configure_push(config.get("url"), str(config.get("token") or ""))
            self._json(200, {"url": config.get("url")}, with_id=False)
        elif path == "/admin/capacity" and method in {"GET", "POST"}:
            self._capacity(method)
        elif method == "POST" and path == "/admin/reset":
            emu.reset()
            self._json(200, {"ok": True}, with_id=False)
        else:
            self._json(404, {"code": "NotFound", "message": f"no admin route {method} {path}"}, with_id=False)

    def _capacity(self, method: str) -> None:
        """GET: the cap and the account's highest in flight and running; POST: set the cap."""
        if method == "GET":
            self._json(200, self.emulator.capacity(), with_id=False)
            return
        try:
            body = json.loads(self._body or b"{}")
            body = body if isinstance(body, dict) else {"over_cap": None}
            answer = self.emulator.set_capacity(
                body.get("max_running_tasks"), str(body.get("over_cap", "refuse"))
            )
        except ValueError as exc:
            self._json(400, {"code": "InvalidCapacity", "message": str(exc)}, with_id=False)
            return
        self._json(200, answer, with_id=False)

    def _faults_body(self) -> dict[str, Any]:
        body = self.emulator.faults().model_dump(mode="json")
        body["fired"] = self.emulator.fault_counts()
        return body

    # ------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, status: int, body: dict[str, Any], *, with_id: bool = True) -> None:
        if with_id:
            body = {**body, "request_id": self._rec.request_id}
            self._rec.status = status
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        if with_id:
            self.send_header("X-Request-Id", str(self._rec.request_id))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, err: ApiError) -> None:
        self._rec.code = err.code
        self._json(err.status, {"code": err.code, "message": err.message})

    def _plain(self, status: int, data: bytes) -> None:
        self._rec.status = status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _drop(self, *, reset: bool = False) -> None:
        """Close the connection without (the rest of) an answer; RST when `reset`."""
        sock = self.connection
        with contextlib.suppress(OSError):
            self.wfile.flush()
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        raise _Dropped
