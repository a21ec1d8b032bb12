"""The jobs table's repositories, one per record kind, share one boto3 Table per container."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from t2v import adapters, wiring
from t2v.billing import Caps
from t2v.jobs import JobRecord

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


class FakeTable:
    def __init__(self) -> None:
        self.reads: list[str] = []

    def get_item(self, *, Key: dict[str, str], ConsistentRead: bool) -> dict[str, Any]:
        self.reads.append(Key["pk"])
        return {}


class FakeResource:
    def __init__(self) -> None:
        self.tables: list[str] = []
        self.table = FakeTable()

    def Table(self, name: str) -> FakeTable:
        self.tables.append(name)
        return self.table


class FakeBoto3:
    def __init__(self) -> None:
        self.resources: list[FakeResource] = []

    def resource(self, service: str) -> FakeResource:
        assert service == "dynamodb"
        self.resources.append(FakeResource())
        return self.resources[-1]


def test_every_repository_of_the_jobs_table_reads_through_one_resource_and_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the repositories a handler's builder makes, before any client exists
    boto3 = FakeBoto3()
    monkeypatch.setattr(adapters, "boto3_module", lambda: boto3)
    repos = wiring.Repositories.over("jobs")
    assert boto3.resources == []  # nothing is built at import or wiring time

    # When each record kind is read
    assert repos.jobs.get("job-1") is None
    assert repos.tasks.owner_of_task("t-1") is None
    assert repos.budget.budget_used("2026-11-23") == 0
    job = JobRecord.model_validate({"pk": "job-1", "status": "ACCEPTED", "budget_day": "2026-11-23"})
    assert repos.budget.charge_budget(
        job, day="2026-11-23", seconds=5, caps=Caps(10), now=NOW
    )  # charged before

    # Then one resource and one Table served them all, each reading its own record kind
    [resource] = boto3.resources
    assert resource.tables == ["jobs"]
    assert resource.table.reads == ["job-1", "task#t-1", "budget#2026-11-23"]
