"""The emulated cap's rules without a server: the queue-mode schedule and the peak counters."""

from __future__ import annotations

from dashscope_emulator import capacity
from dashscope_emulator.tasks import Task


def task(n: int, created: float, *, pending: float = 1.0, running: float = 10.0) -> Task:
    return Task(
        task_id=f"t{n}",
        request_id="r",
        api_key="sk-a" if n % 2 else "sk-b",
        model="m",
        prompt="p",
        render_prompt="p",
        truncated=False,
        size="640*360",
        duration=5,
        audio=False,
        watermark=False,
        seed=n,
        created=created,
        pending_seconds=pending,
        running_seconds=running,
        ttl_seconds=86_400,
    )


def test_queue_mode_holds_the_rest_pending_and_each_runs_its_full_time() -> None:
    tasks = [task(n, created=n * 0.1) for n in range(5)]

    capacity.schedule(tasks, cap=2)

    assert [t.scheduled_at for t in tasks] == [1.0, 1.1, 11.0, 11.1, 21.0]
    assert all(round(t.finished_at - t.scheduled_at, 6) == 10.0 for t in tasks)
    assert [t.lifecycle_status(5.0) for t in tasks] == ["RUNNING", "RUNNING", "PENDING", "PENDING", "PENDING"]
    peak = capacity.stats(tasks, now=100.0)
    assert (peak.max_running, peak.max_in_flight) == (2, 5)


def test_a_task_canceled_while_held_never_takes_a_place() -> None:
    tasks = [task(n, created=0.0 + n * 0.1) for n in range(3)]
    capacity.schedule(tasks, cap=1)
    tasks[1].canceled_at = 2.0

    capacity.schedule(tasks, cap=1)

    assert tasks[2].scheduled_at == 11.0  # the canceled one's turn went to the next
    assert capacity.stats(tasks, now=100.0).max_running == 1


def test_in_flight_counts_every_key_and_not_tasks_dated_later() -> None:
    tasks = [task(1, 0.0), task(2, 0.0), task(3, 50.0)]
    assert capacity.in_flight(tasks, now=5.0) == 2  # both keys; the third does not exist yet
    assert capacity.in_flight(tasks, now=20.0) == 0
    assert capacity.unschedule(tasks) == []
