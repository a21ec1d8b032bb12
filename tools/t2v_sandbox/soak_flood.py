"""The soak's push flood: while jobs run, the public callback gets a flood of task-finished pushes for
some of their tasks, with the right token (distinct ids, the same id again, no id and varied status
text) and with forged ones. A push is only a hint and each job takes a bounded number of wakes
(`MAX_PUSH_WAKES`): whatever the flood says, every job must end as the provider's record says.

The verdict (`flood_problems`) counts two bad things of a flooded job: it ended TIMED_OUT or FAILED
where the provider's record says otherwise (`ended_by_pushes`), or its record holds more push ids than
the bound (`unbounded_pushes`, the item growing toward DynamoDB's 400 KB).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from t2v.capacity import MAX_PUSH_WAKES
from t2v.push import TOKEN_HEADER

LOG = logging.getLogger("t2v_sandbox.soak")
# The scenarios whose jobs are flooded: a plain success, a task the provider fails (its code must
# survive the flood) and a slow query (the job polls longer, so the flood lands while it waits).
FLOODED_SCENARIOS: Final = frozenset({"plain", "taskfail", "q429"})
DISTINCT: Final = 3 * MAX_PUSH_WAKES  # more distinct ids than a job may take: the bound must hold
DUPLICATES: Final = 3
FORGED: Final = 3
# Status texts a push may carry, told apart by an id built from them when the push has none.
STATUS_TEXTS: Final = ("SUCCEEDED", "succeeded", "FAILED", "FAILED ", "RUNNING", "CANCELED", "UNKNOWN")


def pushes_for(task_id: str, run: str) -> list[tuple[dict[str, Any], bool]]:
    """One task's flood: (CloudEvents body, with the right token?) in the order they are sent."""

    def body(event_id: str | None, status: str) -> dict[str, Any]:
        data = {"task_id": task_id, "task_status": status}
        return {"id": event_id, "source": "acs.dashscope", "data": data} if event_id else {"data": data}

    distinct = [
        body(f"flood-{run}-{task_id}-{n}", STATUS_TEXTS[n % len(STATUS_TEXTS)]) for n in range(DISTINCT)
    ]
    no_id = [body(None, status) for status in STATUS_TEXTS]
    again = [distinct[0]] * DUPLICATES
    forged = [body(f"forged-{run}-{task_id}-{n}", "SUCCEEDED") for n in range(FORGED)]
    return [*((b, True) for b in [*distinct, *no_id, *again]), *((b, False) for b in forged)]


@dataclass
class FloodStats:
    jobs: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # HTTP status (or the error) per push sent

    def as_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "sent": sum(self.answers.values()), "answers": dict(self.answers)}


class PushFlood:
    """A thread that floods the callback for each targeted task as soon as the provider has it."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        tasks: Callable[[], Iterable[dict[str, Any]]],
        targets: dict[str, Callable[[], None]],
        run: str,
    ) -> None:
        self.url, self.token, self.tasks, self.run = url, token, tasks, run
        self.targets = dict(targets)  # prompt -> what to call once its task is flooded (marks the job)
        self.stats = FloodStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="soak-flood", daemon=True)
        self._client = httpx.Client(timeout=30.0)
        self._pool = ThreadPoolExecutor(4, "soak-flood-post")
        self._lock = threading.Lock()

    def start(self) -> PushFlood:
        self._thread.start()
        return self

    def stop(self) -> FloodStats:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._client.close()
        return self.stats

    def _watch(self) -> None:
        while not self._stop.is_set() and self.targets:
            for task in list(self.tasks()):
                mark = self.targets.pop(str(task.get("prompt")), None)
                if mark is not None:
                    mark()
                    self.stats.jobs += 1
                    self._pool.submit(self._flood, str(task["task_id"]))
            self._stop.wait(0.2)

    def _flood(self, task_id: str) -> None:
        for body, right in pushes_for(task_id, self.run):
            headers = {TOKEN_HEADER: self.token if right else f"forged-{self.run}"}
            try:
                answer = str(self._client.post(self.url, json=body, headers=headers).status_code)
            except httpx.HTTPError as exc:
                answer = type(exc).__name__
            with self._lock:
                self.stats.answers[answer] += 1
        LOG.debug("flooded %s", task_id)


def flood_problems(record: dict[str, Any], expected_status: str, expected_code: str | None) -> dict[str, str]:
    """A flooded job's bad counts, by key: ended TIMED_OUT or FAILED where the provider's record says
    otherwise (or FAILED with another code), and more push ids recorded than MAX_PUSH_WAKES."""
    problems: dict[str, str] = {}
    status, code = record.get("status"), record.get("error_code")
    wrong = status != expected_status or (expected_code is not None and code != expected_code)
    if status in {"TIMED_OUT", "FAILED"} and wrong:
        problems["ended_by_pushes"] = (
            f"flooded, ended {status} {code or ''}, the provider says {expected_status}"
        )
    recorded = len(record.get("push_events") or ())
    if recorded > MAX_PUSH_WAKES:
        problems["unbounded_pushes"] = f"flooded, {recorded} push ids recorded (bound {MAX_PUSH_WAKES})"
    return problems
