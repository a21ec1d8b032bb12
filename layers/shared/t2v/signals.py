"""What the stack tells its operator: the custom metrics the alarms in template.yaml watch.

No I/O here: `Signals` is the port (`t2v.adapters.metrics.EmfSignals` writes CloudWatch embedded
metric format lines to the function's log; the tests use an in-memory fake), and the `Metered*`
classes wrap the ports the use cases already take, so no use case changes to be measured. Every
metric carries one dimension, `service` (POWERTOOLS_SERVICE_NAME); `JobsEnded` adds `status` (the
four terminal statuses): low cardinality, as CloudWatch bills each combination as a metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from t2v.capacity import CAPACITY_CODES
from t2v.errors import BudgetExceededError, ProviderAuthError, ProviderThrottledError

if TYPE_CHECKING:
    from t2v.billing import Caps, DayUsage
    from t2v.jobs import JobRecord
    from t2v.provider import CanceledTask, CreatedTask, TaskInfo
    from t2v.request import RequestBase
    from t2v.usecases.ports import BudgetStore, NotifierLike, ProviderClient


class Signal(StrEnum):
    """Metric names (namespace: the template's MetricsNamespace parameter)."""

    PROVIDER_AUTH_FAILURES = "ProviderAuthFailures"  # DashScope refused the key (401/403)
    CREATE_REFUSALS = "CreateRefusals"  # DashScope refused a create for capacity (429 of CAPACITY_CODES)
    CALLBACK_TOKEN_REFUSALS = "CallbackTokenRefusals"  # noqa: S105 - a metric name: pushes refused for their token (401)
    BUDGET_USED_PERCENT = "BudgetUsedPercent"  # the account's day budget, after each charge
    SWEEPER_REPAIRS = "SweeperRepairs"  # jobs started, ended, announced, leases reclaimed by the sweeper
    UNRECORDED_ENDINGS = "UnrecordedEndings"  # jobs whose execution ended without recording an outcome
    OVERDUE_JOBS = "OverdueJobs"  # jobs past their deadline that are not terminal (each sweep counts)
    JOBS_ENDED = "JobsEnded"  # outcomes announced, by `status`


class Signals(Protocol):
    def count(self, signal: Signal, value: float = 1, *, status: str | None = None) -> None: ...
    def percent(self, signal: Signal, value: float) -> None: ...


class NoSignals:
    """Measures nothing (the use-case tests' default)."""

    def count(self, signal: Signal, value: float = 1, *, status: str | None = None) -> None:
        return None

    def percent(self, signal: Signal, value: float) -> None:
        return None


class MeteredProvider:
    """A provider client that counts the refusals an operator must hear of: the key refused, and
    creates refused for capacity. It changes no answer: every error is raised on as it came."""

    def __init__(self, inner: ProviderClient, signals: Signals) -> None:
        self._inner, self._signals = inner, signals

    def create_task(self, request: RequestBase, urls: Mapping[str, str] | None = None) -> CreatedTask:
        try:
            return self._inner.create_task(request, urls)
        except ProviderThrottledError as exc:
            if exc.provider_code in CAPACITY_CODES:
                self._signals.count(Signal.CREATE_REFUSALS)
            raise
        except ProviderAuthError:
            self._signals.count(Signal.PROVIDER_AUTH_FAILURES)
            raise

    def get_task(self, task_id: str) -> TaskInfo:
        return self._guarded(lambda: self._inner.get_task(task_id))

    def cancel_task(self, task_id: str) -> CanceledTask:
        return self._guarded(lambda: self._inner.cancel_task(task_id))

    def iter_tasks(
        self, *, start_time: datetime, end_time: datetime, model_name: str | None = None
    ) -> Iterable[TaskInfo]:
        def pages() -> Iterator[TaskInfo]:
            try:
                yield from self._inner.iter_tasks(
                    start_time=start_time, end_time=end_time, model_name=model_name
                )
            except ProviderAuthError:
                self._signals.count(Signal.PROVIDER_AUTH_FAILURES)
                raise

        return pages()

    def _guarded[T](self, call: Callable[[], T]) -> T:
        try:
            result = call()
        except ProviderAuthError:
            self._signals.count(Signal.PROVIDER_AUTH_FAILURES)
            raise
        return result


class MeteredBudget:
    """The budget ledger, telling how full the account's day is after each charge (or refusal)."""

    def __init__(self, inner: BudgetStore, signals: Signals) -> None:
        self._inner, self._signals = inner, signals

    def charge_budget(self, job: JobRecord, *, day: str, seconds: int, caps: Caps, now: datetime) -> bool:
        try:
            charged = self._inner.charge_budget(job, day=day, seconds=seconds, caps=caps, now=now)
        except BudgetExceededError:
            self._measure(day, caps.account)
            raise
        if not job.budget_day:  # a job charged before changed nothing
            self._measure(day, caps.account)
        return charged

    def _measure(self, day: str, cap: int) -> None:
        if cap:  # no account cap: nothing to fill
            self._signals.percent(
                Signal.BUDGET_USED_PERCENT, budget_percent(self._inner.budget_used(day), cap)
            )

    def refund(self, job: JobRecord, *, now: datetime) -> bool:
        return self._inner.refund(job, now=now)

    def budget_used(self, day: str) -> int:
        return self._inner.budget_used(day)

    def day_usage(self, day: str, owner: str) -> DayUsage:
        return self._inner.day_usage(day, owner)


def budget_percent(used: int, cap: int) -> float:
    """How much of the day's cap is spent, in percent (100 at most: a day never passes its cap)."""
    return round(min(100.0, 100.0 * max(used, 0) / cap), 1)


class MeteredNotifier:
    """The notifier, counting each outcome announced on SNS by its terminal status (the dashboard's
    jobs per status). A redelivered announcement (README, Outcomes) is counted again: rare, and said."""

    def __init__(self, inner: NotifierLike, signals: Signals) -> None:
        self._inner, self._signals = inner, signals

    def publish(self, message: dict[str, Any]) -> str:
        message_id = self._inner.publish(message)
        self._signals.count(Signal.JOBS_ENDED, status=str(message.get("status")))
        return message_id

    def put_event(self, message: dict[str, Any]) -> None:
        self._inner.put_event(message)
