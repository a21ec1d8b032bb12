"""Task-finished pushes: what Alibaba Cloud EventBridge delivers to an HTTP target when a task ends.

Every task that ends (SUCCEEDED, FAILED, CANCELED) yields one event, a CloudEvents 1.0 envelope with
Alibaba's extension fields and `data` describing the task (no video URL: the receiver queries the
task). It is POSTed as JSON to the configured URL with the HTTP target's token in the header
`x-eventbridge-signature-token`. A delivery that fails (no 2xx, or no answer) is retried like
EventBridge's BACKOFF_RETRY strategy: a few retries 10-20 s apart (`retry_delays`).

Push faults come from the emulator's fault plan (endpoint "push"), one deciding rule per event:
`push_dropped` (never sent), `push_duplicated` (sent again `latency_seconds` later, same event id),
`push_delayed` (sent `latency_seconds` late), `push_reordered` (held back until the next push has
gone out, at most `hold_seconds`), `push_early` (sent `latency_seconds` before a query shows the
task finished) and `push_wrong_token` (every attempt carries a wrong token).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from dashscope_emulator.tasks import BEIJING

if TYPE_CHECKING:
    from dashscope_emulator.faults import FaultInjector, FaultRule
    from dashscope_emulator.tasks import Task

TOKEN_HEADER: Final = "x-eventbridge-signature-token"  # noqa: S105 - a header name
EVENT_SOURCE: Final = "acs.dashscope"
EVENT_TYPE: Final = "dashscope:System:AsyncTaskFinish"
ACCOUNT_ID: Final = "1000000000000000"
WRONG_TOKEN: Final = "not-the-configured-token"  # noqa: S105 - a deliberately wrong token


def event_time(epoch: float) -> str:
    """The documented sample's `time`: month and day not zero-padded (`2023-1-25T…`), Beijing time."""
    moment = datetime.fromtimestamp(epoch, tz=BEIJING)
    return f"{moment.year}-{moment.month}-{moment.day}T{moment.strftime('%H:%M:%S')}.{moment.microsecond // 1000:03d}+08:00"


def provider_local(epoch: float | None) -> str | None:
    """`YYYY-MM-DD HH:mm:ss`, Beijing time, no zone (the event's start_time and end_time)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def task_finished_event(task: Task, status: str, *, published: float) -> dict[str, Any]:
    """The complete event an HTTP target receives for one finished task."""
    listed = task.list_item(published)
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": EVENT_SOURCE,
        "type": EVENT_TYPE,
        "subject": f"acs:dashscope:cn-beijing:{ACCOUNT_ID}:task/{task.task_id}",
        "time": event_time(published),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": ACCOUNT_ID,
        "aliyunpublishtime": event_time(published),
        "aliyuneventbusname": "default",
        "aliyunregionid": "cn-beijing",
        "aliyunoriginalaccountid": ACCOUNT_ID,
        "data": {
            "task_id": task.task_id,
            "task_status": status,
            "request_id": task.request_id,
            "start_time": provider_local(task.scheduled_at if status != "CANCELED" else task.created),
            "end_time": provider_local(task.end_time(status)),  # type: ignore[arg-type]
            "region": "cn-beijing",
            "api_key_id": listed["api_key_id"],
            "user_api_unique_key": listed["user_api_unique_key"],
            "contain_result": False,
        },
    }


@dataclass
class PushRecord:
    """One delivery attempt, as the emulator's push log keeps it."""

    task_id: str
    event_id: str
    status: str
    time: float
    attempt: int
    fault: str | None
    http_status: int | None  # None: no answer (connection refused, reset or timed out)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    task_id: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    token: str = field(compare=False)
    fault: str | None = field(compare=False)
    attempt: int = field(compare=False, default=0)
    held: bool = field(compare=False, default=False)  # a reordered push waiting for the next one


class Pusher:
    """Schedules each task's push at its end and delivers it from a small thread pool."""

    def __init__(
        self,
        faults: FaultInjector,
        *,
        retry_delays: tuple[float, ...] = (10.0, 15.0, 20.0),
        timeout: float = 5.0,
        workers: int = 8,
    ) -> None:
        self._faults = faults
        self.retry_delays = retry_delays
        self.timeout = timeout
        self.url: str | None = None
        self.token: str = ""
        self._lock = threading.Condition()
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._held: list[_Due] = []
        self._by_task: dict[str, list[_Due]] = {}
        self._log: list[PushRecord] = []
        self._stopping = False
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="emulator-push")
        self._thread = threading.Thread(target=self._run, name="emulator-pusher", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ configuration and inspection
    def configure(self, url: str | None, token: str = "") -> None:
        with self._lock:
            self.url, self.token = url, token

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._log]

    def pending(self) -> int:
        with self._lock:
            return len(self._heap) + len(self._held)

    def clear(self) -> None:
        with self._lock:
            self._heap.clear()
            self._held.clear()
            self._by_task.clear()
            self._log.clear()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ scheduling
    def task_ended(self, task: Task, status: str, ended_at: float) -> None:
        """Schedule the push of a task that ends (or ended) at `ended_at` with `status`.

        A canceled task replaces a push scheduled for its natural end."""
        if not self.enabled:
            return
        _, rule = self._faults.pick("push", task.prompt)
        with self._lock:
            for old in self._by_task.pop(task.task_id, []):
                if old in self._heap:
                    self._heap.remove(old)
                    heapq.heapify(self._heap)
            event = task_finished_event(task, status, published=ended_at)
            for due in self._plan(task.task_id, event, ended_at, rule):
                self._by_task.setdefault(task.task_id, []).append(due)
                heapq.heappush(self._heap, due)
            self._lock.notify_all()

    def _plan(
        self, task_id: str, event: dict[str, Any], ended_at: float, rule: FaultRule | None
    ) -> list[_Due]:
        kind = rule.kind if rule is not None else None
        if kind == "push_dropped":
            self._log.append(
                PushRecord(task_id, event["id"], event["data"]["task_status"], ended_at, 0, kind, None)
            )
            return []
        shift = rule.latency_seconds if rule is not None else 0.0
        token = WRONG_TOKEN if kind == "push_wrong_token" else self.token
        at = (
            ended_at + shift
            if kind == "push_delayed"
            else ended_at - shift
            if kind == "push_early"
            else ended_at
        )
        first = _Due(at, next(self._seq), task_id, event, token, kind, held=kind == "push_reordered")
        if kind != "push_duplicated":
            return [first]
        return [first, _Due(at + shift, next(self._seq), task_id, event, token, kind)]

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.time()
                due = self._heap[0] if self._heap else None
                if due is None or due.at > now:
                    self._release_overdue_held(now)
                    # Idle (nothing scheduled, nothing held) until task_ended or stop notifies.
                    idle = None if not self._held else 1.0
                    self._lock.wait(min(0.05, due.at - now) if due is not None else idle)
                    continue
                heapq.heappop(self._heap)
                if due.held:  # a reordered push waits until another push goes out first
                    due.held = False
                    self._held.append(due)
                    continue
                released, self._held = self._held, []
            # The held ones follow, in the same worker, the push that overtook them.
            self._pool.submit(self._deliver_in_order, [due, *released])

    def _release_overdue_held(self, now: float) -> None:
        hold = 30.0
        for held in list(self._held):
            if now - held.at > hold:
                self._held.remove(held)
                self._pool.submit(self._deliver, held)

    # ------------------------------------------------------------------ delivery
    def _deliver_in_order(self, dues: list[_Due]) -> None:
        for due in dues:
            self._deliver(due)

    def _deliver(self, due: _Due) -> None:
        url = self.url
        if url is None:
            return
        body = json.dumps(due.event, ensure_ascii=False).encode()
        request = urllib.request.Request(  # noqa: S310 - the configured callback URL
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json;charset=utf-8", TOKEN_HEADER: due.token},
        )
        status: int | None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        except (OSError, ValueError):
            status = None
        with self._lock:
            self._log.append(
                PushRecord(
                    due.task_id,
                    due.event["id"],
                    due.event["data"]["task_status"],
                    time.time(),
                    due.attempt,
                    due.fault,
                    status,
                )
            )
            if (status is None or not 200 <= status < 300) and due.attempt < len(self.retry_delays):
                retry = _Due(
                    time.time() + self.retry_delays[due.attempt],
                    next(self._seq),
                    due.task_id,
                    due.event,
                    due.token,
                    due.fault,
                    due.attempt + 1,
                )
                heapq.heappush(self._heap, retry)
                self._lock.notify_all()
