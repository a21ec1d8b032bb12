"""The capacity governor at work: a job queues for a lease, and every ending frees one and admits the
next (the rules are `t2v.capacity`, the store `t2v.adapters.capacity_leases`).

Who frees a lease: the status step when the provider task ends (before the download), `end_job` for
every other ending (failed, canceled, timed out, refused), and the sweeper for a holder that ended or
vanished without it. A release happens once (a conditional write), so any of them may try. Whoever
frees a lease admits the next queued jobs and wakes their parked capacity waits; a wake that is lost
(the admitted job was between two waits) costs nothing, as its next park sees the lease (t2v.push).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from t2v.capacity import WorkingCap
from t2v.jobs import JobStatus
from t2v.times import utcnow


class CapacityStore(Protocol):
    """The leases, the queue and the learned cap (`t2v.adapters.capacity_leases.CapacityLeases`)."""

    def position(self, job_id: str, owner: str | None, key: str) -> int: ...
    def enqueue(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool: ...
    def dequeue(self, job_id: str, *, owner: str | None) -> bool: ...
    def admit(self, *, now: datetime, deadline_seconds: int) -> list[str]: ...
    def release(self, job_id: str) -> bool: ...
    def refused(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool: ...
    def accepted(self) -> WorkingCap: ...
    def held_too_long(self) -> WorkingCap: ...
    def reclaim(self, holders: dict[str, str | None]) -> list[str]: ...
    def wait_token(self, job_id: str) -> str | None: ...
    def lease_holders(self) -> list[str]: ...


class Waker(Protocol):
    def wake(self, token: str) -> bool: ...


@dataclass
class Governor:
    """Leases for provider tasks, and the wakes that follow a freed one."""

    leases: CapacityStore
    waker: Waker
    deadline_seconds: int  # a job's deadline, counted from its lease
    clock: Callable[[], datetime] = utcnow

    def admit(self, *, skip: str | None = None) -> list[str]:
        """Give free capacity to queued jobs and wake their waits (`skip`: the caller's own job, which
        is awake already); the ids admitted."""
        admitted = self.leases.admit(now=self.clock(), deadline_seconds=self.deadline_seconds)
        for job_id in admitted:
            if job_id != skip and (token := self.leases.wait_token(job_id)):
                self.waker.wake(token)  # False: that wait ended already; its next park sees the lease
        return admitted

    def free(self, job_id: str, *, owner: str | None, queued: bool) -> bool:
        """The job is done with capacity (its task ended, or the job did): give back its lease, or take
        it out of the queue (`queued`: it may be there), then admit the next. False when it held
        neither (freed before)."""
        freed = self.leases.release(job_id)
        if not freed and queued:
            freed = self.leases.dequeue(job_id, owner=owner)
        if freed:
            self.admit()
        return freed

    def reclaim(self, status_of: Callable[[str], str | None]) -> list[str]:
        """The sweeper's part: the leases of holders that ended or vanished come back (a crash between
        a job's end and its release never shrinks capacity for good); a holder still WAITING (admitted,
        but the admitter died between the lease and the wake) is woken again, so a lost wake costs one
        sweep, not a heartbeat; then the queue moves on."""
        holders = {job_id: status_of(job_id) for job_id in self.leases.lease_holders()}
        reclaimed = self.leases.reclaim(holders)
        for job_id, status in holders.items():
            if status == JobStatus.WAITING and (token := self.leases.wait_token(job_id)):
                self.waker.wake(token)  # False: it woke already (the submit turn is under way)
        self.admit()  # also after a stalled admission: the queue never waits on luck
        return reclaimed
