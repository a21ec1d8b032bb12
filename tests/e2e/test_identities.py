"""More than one caller in the sandbox, end to end: each identity's key pair is its own IAM user at
the API front, so the API's tenancy holds between them (a caller sees only its own jobs, an admin
every job), and the capacity governor's fair share runs between real owners (round-robin: one
caller's queue cannot hold back another caller's single job).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from t2v_client import ApiClient, Target
from t2v_sandbox.user_sandbox import UserSandbox, config_for, wait_until

from tests.e2e.test_e2e import TEMPLATE, table
from tests.e2e.test_push import ended

CEILING = 1  # one provider task at a time: the order of admission is plain to see
QUEUED = 5  # the default identity's jobs queued before bob's one
SMALL = {"size": "640*360", "duration": 5}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserSandbox]:
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp("identities-sandbox"),
        overrides={"ProviderMaxTasksInFlight": str(CEILING), "CapacityHeartbeatSeconds": "600"},
        pending_seconds=0.3,
        running_seconds=0.7,
        write_endpoints=False,
    )
    with UserSandbox(config) as sandbox:
        yield sandbox


def api(sb: UserSandbox, name: str) -> ApiClient:
    return ApiClient(Target(str(sb.endpoints["api_url"]), sb.config.region, sb.credentials_as(name)))


def submit(sb: UserSandbox, name: str, prompt: str) -> str:
    with api(sb, name) as client:
        return str(client.submit({"prompt": prompt, **SMALL})["job_id"])


def listed(sb: UserSandbox, name: str) -> set[str]:
    with api(sb, name) as client:
        return {str(job["job_id"]) for job in client.list(limit=100)["items"]}


def test_the_endpoints_list_every_identity_with_its_own_user(sb: UserSandbox) -> None:
    found = sb.endpoints["identities"]
    assert {"default", "alice", "bob", "admin"} <= set(found)
    assert len({entry["user_arn"] for entry in found.values()}) == len(found)
    assert found["default"]["aws_access_key_id"] == sb.endpoints["credentials"]["aws_access_key_id"]
    assert sb.stack is not None and sb.stack.parameters["AdminPrincipals"] == [found["admin"]["user_arn"]]


def test_a_job_is_its_callers_alone_and_an_admins(sb: UserSandbox) -> None:
    job_id = submit(sb, "alice", f"alice's own lantern {uuid.uuid4().hex[:6]}")
    record = ended(sb, job_id, timeout=60)
    assert record["status"] == "SUCCEEDED"
    assert record["owner"] == "arn:aws:iam::123456789012:user/alice"

    for other in ("bob", "default"):
        with api(sb, other) as client:
            assert client.call("GET", f"/videos/{job_id}").status == 404
            assert client.call("DELETE", f"/videos/{job_id}").status == 404
        assert job_id not in listed(sb, other)
    assert job_id in listed(sb, "alice")
    with api(sb, "admin") as client:
        assert client.call("GET", f"/videos/{job_id}").status == 200
    assert job_id in listed(sb, "admin")


def _lease_at(sb: UserSandbox, job_id: str) -> Any:
    return table(sb).get_item(Key={"pk": job_id})["Item"]["lease_at"]


def test_a_second_callers_one_job_is_admitted_before_the_firsts_queue_drains(sb: UserSandbox) -> None:
    # Given the default identity's jobs queued behind a ceiling of one,
    tag = uuid.uuid4().hex[:6]
    first = [submit(sb, "default", f"a long queue {tag} {n}") for n in range(QUEUED)]

    def waiting() -> bool:
        items = [table(sb).get_item(Key={"pk": j}).get("Item") or {} for j in first]
        return sum(1 for i in items if i.get("status") == "WAITING") >= QUEUED - 2

    wait_until(waiting, timeout=30, what="the first caller's jobs waiting for capacity")
    # when bob sends one job,
    second = submit(sb, "bob", f"bob's one job {tag}")
    records = {j: ended(sb, j, timeout=90) for j in [*first, second]}

    # then it is admitted at the next free lease (round-robin), not after the whole queue.
    assert {r["status"] for r in records.values()} == {"SUCCEEDED"}
    assert records[second]["owner"] == "arn:aws:iam::123456789012:user/bob"
    bob_lease = _lease_at(sb, second)
    ahead = [j for j in first if _lease_at(sb, j) < bob_lease]
    assert len(ahead) <= 2, f"{len(ahead)} of the first caller's {QUEUED} jobs were admitted before bob's"
    last_first = max(str(records[j]["finished_at"]) for j in first)
    assert str(records[second]["finished_at"]) < last_first
    capacity: dict[str, Any] = table(sb).get_item(Key={"pk": "capacity#account"})["Item"]
    assert int(capacity["held"]) == 0 and capacity["leases"] == {}
