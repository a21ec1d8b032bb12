"""The capacity governor's store against DynamoDB (moto, the template's table with `by_queue`):
leases held at most to the working cap, round-robin admission between owners, FIFO within one, a
refusal sending a job back to the front, every release exactly once, and the sweeper's reclaim."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from t2v.adapters.capacity_leases import CapacityLeases
from t2v.adapters.jobs_repo import JobsRepository
from t2v.capacity import queue_key
from t2v.jobs import JobStatus
from t2v.times import iso

from tests.integration.conftest import Stack

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _jobs(stack: Stack, owner: str, count: int, *, start: int = 0) -> list[str]:
    repo = JobsRepository(stack.table)
    ids = []
    for n in range(start, start + count):
        job_id = f"job-{owner.rsplit('/', 1)[-1]}-{n:03d}"
        repo.create_if_absent(
            job_id,
            request={"prompt": "p"},
            source="api",
            origin={},
            now=T0,
            deadline_at=T0 + timedelta(hours=2),
            owner=owner,
        )
        ids.append(job_id)
    return ids


def _queue(leases: CapacityLeases, ids: list[str], owner: str, minute: int = 0) -> None:
    for n, job_id in enumerate(ids):
        at = T0 + timedelta(minutes=minute, seconds=n)
        assert leases.enqueue(job_id, owner=owner, key=queue_key(iso(at), job_id), now=at)


def test_admission_holds_the_cap_and_takes_turns_between_owners(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=3)
    a, b = "arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/b"
    many = _jobs(stack, a, 10)
    one = _jobs(stack, b, 1)
    _queue(leases, many, a)
    _queue(leases, one, b, minute=5)  # b's single job arrives after all of a's
    admitted = leases.admit(now=T0, deadline_seconds=7200)
    assert len(admitted) == 3
    assert one[0] in admitted  # b's turn comes before a's third job
    assert [j for j in admitted if j in many] == many[:2]  # FIFO within a
    state = leases.state()
    assert state.held == 3
    assert state.queued == {a: 8, b: 0}
    assert leases.admit(now=T0, deadline_seconds=7200) == []  # full
    job = stack.job(one[0])
    assert job is not None
    assert job["lease_at"] == iso(T0) and job["deadline_at"] == iso(T0 + timedelta(hours=2))
    assert "queue_owner" not in job
    assert leases.position(many[5], a, stack.job(many[5])["queue_key"]) == 3  # type: ignore[index]


def test_a_release_frees_one_place_once(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=1)
    owner = "arn:aws:iam::123456789012:user/a"
    ids = _jobs(stack, owner, 2)
    _queue(leases, ids, owner)
    assert leases.admit(now=T0, deadline_seconds=60) == [ids[0]]
    assert leases.release(ids[0]) is True
    assert leases.release(ids[0]) is False  # a retried release gives nothing twice
    assert leases.state().held == 0
    assert leases.admit(now=T0, deadline_seconds=60) == [ids[1]]


def test_a_refused_create_goes_back_to_the_front_and_lowers_the_cap(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=4)
    owner = "arn:aws:iam::123456789012:user/a"
    ids = _jobs(stack, owner, 6)
    _queue(leases, ids, owner)
    assert leases.admit(now=T0, deadline_seconds=60) == ids[:4]
    first_key = queue_key(iso(T0 + timedelta(seconds=3)), ids[3])
    assert leases.refused(ids[3], owner=owner, key=first_key, now=T0)
    assert not leases.refused(ids[3], owner=owner, key=first_key, now=T0)  # once
    state = leases.state()
    assert (state.held, state.working.cap) == (3, 3)  # three others were in flight
    assert leases.release(ids[0])
    assert leases.admit(now=T0, deadline_seconds=60) == [ids[3]]  # its old place: before ids[4]


def test_the_cap_climbs_back_while_creates_are_accepted(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=3)
    owner = "arn:aws:iam::123456789012:user/a"
    ids = _jobs(stack, owner, 3)
    _queue(leases, ids, owner)
    leases.admit(now=T0, deadline_seconds=60)
    leases.refused(ids[1], owner=owner, key=queue_key(iso(T0), ids[1]), now=T0)
    assert leases.state().working.cap == 2
    assert leases.accepted().cap == 2
    assert leases.accepted().cap == 3


def test_concurrent_admitters_never_pass_the_cap(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=5)
    owners = [f"arn:aws:iam::123456789012:user/u{n}" for n in range(3)]
    for owner in owners:
        _queue(leases, _jobs(stack, owner, 8), owner)
    with ThreadPoolExecutor(8) as pool:
        granted = [
            j
            for batch in pool.map(lambda _: leases.admit(now=T0, deadline_seconds=60), range(16))
            for j in batch
        ]
    assert len(granted) == len(set(granted)) == 5
    assert leases.state().held == 5


def test_a_canceled_queued_job_leaves_the_queue_once(stack: Stack) -> None:
    leases = CapacityLeases(stack.table, ceiling=1)
    owner = "arn:aws:iam::123456789012:user/a"
    ids = _jobs(stack, owner, 2)
    _queue(leases, ids, owner)
    assert leases.dequeue(ids[0], owner=owner)
    assert not leases.dequeue(ids[0], owner=owner)
    assert leases.state().queued == {owner: 1}
    assert leases.admit(now=T0, deadline_seconds=60) == [ids[1]]


def test_an_ended_job_cannot_queue_and_the_sweeper_reclaims_leases_of_ended_or_vanished_jobs(
    stack: Stack,
) -> None:
    leases = CapacityLeases(stack.table, ceiling=2)
    owner = "arn:aws:iam::123456789012:user/a"
    ids = _jobs(stack, owner, 3)
    repo = JobsRepository(stack.table)
    repo.transition(ids[2], JobStatus.CANCELED, now=T0)
    assert not leases.enqueue(ids[2], owner=owner, key=queue_key(iso(T0), ids[2]), now=T0)
    _queue(leases, ids[:2], owner)
    assert leases.admit(now=T0, deadline_seconds=60) == ids[:2]
    repo.transition(ids[0], JobStatus.FAILED, now=T0)  # its holder crashed after ending it
    holders = {
        job_id: (str(j["status"]) if (j := stack.job(job_id)) else None) for job_id in leases.state().leases
    }
    holders["job-gone"] = None
    assert leases.reclaim(holders) == [ids[0]]
    assert leases.state().held == 1
