"""The emulated account's cap, over real HTTP: refused past N in refuse mode, held PENDING past N in
queue mode, every task of the account counted, and the highest numbers reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from dashscope_emulator.server import Emulator

from tests.integration.test_emulator import CREATE, HEADERS, body, create, make_emulator, wait_done

__all__ = ["make_emulator"]  # the fixture, shared with test_emulator.py


def client_of(emu: Emulator, key: str = "sk-test") -> httpx.Client:
    return httpx.Client(
        base_url=emu.base_url, headers={**HEADERS, "Authorization": f"Bearer {key}"}, timeout=10
    )


@pytest.fixture
def capped(make_emulator: Callable[..., Emulator]) -> Iterator[Callable[..., tuple[Emulator, httpx.Client]]]:
    clients: list[httpx.Client] = []

    def make(cap: int, mode: str, **config: Any) -> tuple[Emulator, httpx.Client]:
        emu = make_emulator(max_running_tasks=cap, over_cap=mode, **config)
        clients.append(client_of(emu))
        return emu, clients[-1]

    yield make
    for c in clients:
        c.close()


def test_refuse_mode_answers_429_throttling_past_the_cap_and_accepts_again_once_one_ends(capped: Any) -> None:
    emu, client = capped(2, "refuse", pending_seconds=0.3, running_seconds=0.4)
    first, second = create(client), create(client)

    refused = client.post(CREATE, json=body())

    assert refused.status_code == 429
    assert refused.json()["code"] == "Throttling" and refused.json()["request_id"]
    # Another client's key on the same account is refused too: every task of the account counts
    with client_of(emu, "sk-another") as other:
        assert other.post(CREATE, json=body()).status_code == 429
    # A cancel while PENDING frees a place at once
    assert client.post(f"/tasks/{first}/cancel").status_code == 200
    third = create(client)
    wait_done(client, second)
    wait_done(client, third)
    create(client)
    stats = httpx.get(f"{emu.root_url}/admin/capacity").json()
    assert stats["capacity_refusals"] == 2 and stats["max_in_flight"] == 2
    assert emu.create_count() == 4


def test_queue_mode_runs_at_most_n_and_starts_the_rest_first_created_first(capped: Any) -> None:
    # Runs long enough that a loaded machine's slow creates cannot see the first tasks end already
    emu, client = capped(2, "queue", pending_seconds=0.1, running_seconds=2.0)
    ids = [create(client) for _ in range(5)]

    time.sleep(0.3)
    statuses = [client.get(f"/tasks/{t}").json()["output"]["task_status"] for t in ids]
    assert statuses == ["RUNNING", "RUNNING", "PENDING", "PENDING", "PENDING"]
    done = [wait_done(client, t)["output"] for t in ids]
    assert [d["task_status"] for d in done] == ["SUCCEEDED"] * 5
    starts = [d["scheduled_time"] for d in done]
    assert starts == sorted(starts)  # FIFO
    stats = httpx.get(f"{emu.root_url}/admin/capacity").json()
    assert stats["max_running"] == 2 and stats["max_in_flight"] == 5 and stats["capacity_refusals"] == 0


def test_queue_mode_a_waiting_task_canceled_gives_its_turn_to_the_next(capped: Any) -> None:
    emu, client = capped(1, "queue", pending_seconds=0.05, running_seconds=2.0)
    running, waiting, after = create(client), create(client), create(client)
    assert client.post(f"/tasks/{waiting}/cancel").status_code == 200

    wait_done(client, running)
    time.sleep(0.1)
    assert client.get(f"/tasks/{after}").json()["output"]["task_status"] == "RUNNING"
    assert wait_done(client, after)["output"]["task_status"] == "SUCCEEDED"
    assert httpx.get(f"{emu.root_url}/admin/capacity").json()["max_running"] == 1


def test_concurrent_creates_never_pass_the_cap(capped: Any) -> None:
    emu, _ = capped(3, "refuse", pending_seconds=2.0, running_seconds=2.0)
    answers: list[int] = []

    def burst() -> None:
        with client_of(emu) as c:
            for _ in range(4):
                answers.append(c.post(CREATE, json=body()).status_code)

    threads = [threading.Thread(target=burst) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(200) == 3 and answers.count(429) == 21
    assert httpx.get(f"{emu.root_url}/admin/capacity").json()["max_in_flight"] == 3


def test_the_cap_is_set_at_runtime_and_bad_values_name_the_field(make_emulator: Any) -> None:
    emu = make_emulator()
    admin = f"{emu.root_url}/admin/capacity"
    assert httpx.get(admin).json()["max_running_tasks"] is None
    bad = httpx.post(admin, json={"max_running_tasks": 0})
    assert bad.status_code == 400 and "max_running_tasks" in bad.json()["message"]
    bad = httpx.post(admin, json={"max_running_tasks": 2, "over_cap": "drop"})
    assert bad.status_code == 400 and "over_cap" in bad.json()["message"]

    answer = httpx.post(admin, json={"max_running_tasks": 1, "over_cap": "refuse"}).json()

    assert answer["max_running_tasks"] == 1 and answer["over_cap"] == "refuse"
    with client_of(emu) as client:
        create(client)
        assert client.post(CREATE, json=body()).status_code == 429
    assert httpx.post(admin, json={"max_running_tasks": None}).json()["max_running_tasks"] is None
