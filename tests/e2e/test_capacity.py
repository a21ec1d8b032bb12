"""The capacity governor end to end: the real template and state machine (Submit, AdmittedOrWaiting,
ParkForCapacity and the wakes a freed lease sends), with the governor's ceiling below the number of
jobs sent at once. Every job succeeds, the provider never has more than the ceiling in flight, and
the jobs that waited show it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from t2v_sandbox.user_sandbox import UserSandbox, config_for

from tests.e2e.test_e2e import TEMPLATE, table
from tests.e2e.test_push import ended, start

CEILING = 2
JOBS = 6


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("capacity-sandbox"),
        # A heartbeat far past the test: a job that starts in time was woken by a freed lease.
        overrides={
            "PollIntervalSeconds": "1",
            "ProviderMaxTasksInFlight": str(CEILING),
            "CapacityHeartbeatSeconds": "600",
        },
        pending_seconds=0.5,
        running_seconds=1.0,
        write_endpoints=False,
    )
    with UserSandbox(config) as sandbox:
        yield sandbox


class InFlight:
    """Samples the emulator: the most of our tasks PENDING or RUNNING at once."""

    def __init__(self, sb: UserSandbox, prefix: str) -> None:
        self.sb, self.prefix, self.most = sb, prefix, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tasks = [t for t in self.sb.emulator.tasks() if str(t["prompt"]).startswith(self.prefix)]
            self.most = max(self.most, sum(1 for t in tasks if t["status"] in {"PENDING", "RUNNING"}))
            self._stop.wait(0.05)

    def __enter__(self) -> InFlight:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_jobs_beyond_the_ceiling_wait_their_turn_and_all_succeed(sb: UserSandbox) -> None:
    prefix = f"queued crane {uuid.uuid4().hex[:6]}"
    with InFlight(sb, prefix) as sampled:
        job_ids = [start(sb, f"{prefix} {n}", "640*360") for n in range(JOBS)]
        records = [ended(sb, job_id, timeout=120) for job_id in job_ids]

    assert [r["status"] for r in records] == ["SUCCEEDED"] * JOBS
    assert 1 <= sampled.most <= CEILING
    ours = [t for t in sb.emulator.tasks() if str(t["prompt"]).startswith(prefix)]
    assert len(ours) == JOBS  # one task each: waiting created nothing
    waited = [r for r in records if "WAITING" in [h["status"] for h in r["history"]]]
    assert waited, "with 6 jobs and a ceiling of 2, some must have waited"
    for record in waited:
        statuses = [h["status"] for h in record["history"]]
        assert statuses.index("WAITING") < statuses.index("SUBMITTED")
        assert "queue_owner" not in record and record["lease_at"]
    capacity: dict[str, Any] = table(sb).get_item(Key={"pk": "capacity#account"})["Item"]
    assert int(capacity["held"]) == 0 and capacity["leases"] == {}  # no lease leaked after the run
