"""The account's cap on tasks in flight, as the provider might hold it (both are plausible; neither is
documented): `refuse` answers a create past N tasks PENDING or RUNNING with HTTP 429 `Throttling`;
`queue` accepts it, runs at most N at once, and holds the rest PENDING, first created first.

Pure functions over the task list (every task of the account counts, whichever key made it); the
server calls them under its lock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dashscope_emulator.tasks import Task

OverCap = Literal["refuse", "queue"]
OVER_CAP_MODES: tuple[OverCap, ...] = ("refuse", "queue")
THROTTLED_MESSAGE = "Requests rate limit exceeded, please try again later."


@dataclass(frozen=True)
class CapacityStats:
    max_in_flight: int  # the most tasks PENDING or RUNNING at once, ever
    max_running: int  # the most RUNNING at once, ever
    in_flight: int
    running: int


def in_flight(tasks: Iterable[Task], now: float) -> int:
    """Tasks PENDING or RUNNING now (tasks dated in the future do not exist yet)."""
    return sum(1 for t in tasks if t.created <= now and t.lifecycle_status(now) in {"PENDING", "RUNNING"})


def schedule(tasks: Iterable[Task], cap: int) -> list[Task]:
    """Queue mode: give each task its start, first created first, when one of `cap` running places is
    free; a task canceled while it waited never runs. Returns the tasks whose end moved."""
    moved: list[Task] = []
    ends: list[float] = []  # when each running place comes free
    for task in sorted(tasks, key=lambda t: (t.created, t.task_id)):
        earliest = task.created + task.pending_seconds
        while ends and ends[0] <= earliest:
            heapq.heappop(ends)
        freed = heapq.heappop(ends) if len(ends) >= cap else None
        start = earliest if freed is None else max(earliest, freed)
        if task.canceled_at is not None and task.canceled_at < start:
            if freed is not None:
                heapq.heappush(ends, freed)  # it never took the place
            continue
        before = task.finished_at
        task.start_override = start
        if task.finished_at != before:
            moved.append(task)
        heapq.heappush(ends, start + task.running_seconds)
    return moved


def unschedule(tasks: Iterable[Task]) -> list[Task]:
    """No cap (or refuse mode) again: every task starts after its own pending time."""
    moved = []
    for task in tasks:
        if task.start_override is not None:
            task.start_override = None
            moved.append(task)
    return moved


def stats(tasks: list[Task], now: float) -> CapacityStats:
    """The highest in flight and running the account ever had, by a sweep over the tasks' intervals."""
    flights: list[tuple[float, int]] = []
    runs: list[tuple[float, int]] = []
    for task in tasks:
        if task.created > now:
            continue
        end = task.canceled_at if task.canceled_at is not None else task.finished_at
        flights += [(task.created, 1), (end, -1)]
        if task.canceled_at is None or task.canceled_at >= task.scheduled_at:
            runs += [(task.scheduled_at, 1), (min(task.finished_at, end), -1)]
    return CapacityStats(
        max_in_flight=_peak(flights, now),
        max_running=_peak(runs, now),
        in_flight=in_flight(tasks, now),
        running=sum(1 for t in tasks if t.created <= now and t.lifecycle_status(now) == "RUNNING"),
    )


def _peak(edges: list[tuple[float, int]], now: float) -> int:
    peak = level = 0
    for _, step in sorted(e for e in edges if e[0] <= now):  # an end sorts before a start at one instant
        level += step
        peak = max(peak, level)
    return peak
