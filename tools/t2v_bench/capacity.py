"""Issue 20's simulation: 20,000 jobs against a provider whose cap the governor is not told.

A discrete-event simulation in virtual time, in the style of `t2v_bench.polling` and `t2v_bench.push`:

- the capacity governor is the real one: `t2v.usecases.capacity.Governor` (admit on free, wakes) over
  an in-memory store with the same port as `t2v.adapters.capacity_leases` (`MemoryCapacityLeases`:
  the learned cap is `t2v.capacity.WorkingCap`, the turn `t2v.capacity.next_owner`, FIFO by
  `t2v.capacity.queue_key`); the submit function's capacity decisions (`_wait_for_capacity`,
  `_refused_for_capacity`: park, heartbeat, the queue's time limit, a refused job looking again within
  `REFUSED_LOOK_AGAIN_SECONDS`) are replayed as the use case makes them;
- polling is the real schedule (`t2v_bench.polling.OurPoller`: `t2v.schedule` with the slot ledger),
  with push on (a task-finished push wakes the parked poll, as `t2v_bench.push`) or off; a poll that
  sees a task PENDING past `t2v.capacity.held_too_long` lowers the cap once per job, as `_held_signal`;
- the provider has a cap the governor does not know. `refuse`: past it in flight (PENDING or RUNNING)
  a create gets 429 `Throttling`. `queue`: every create is accepted, at most `cap` run, the rest are
  held PENDING, first created first.

Provider queries are the status queries (creates are counted apart); the account's budget is 20/s.
"""

from __future__ import annotations

# ruff: noqa: S311 - seeded simulations, no cryptography
import argparse
import heapq
import math
import random
import statistics
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from t2v.capacity import WorkingCap, held_too_long, next_owner, queue_key, usual_queue_seconds
from t2v.config import MAX_REFUSED_CREATES
from t2v.schedule import DEFAULT_QUEUE_SECONDS, GenerationTier, Policy, claim_now, slot_check
from t2v.times import iso
from t2v.usecases.capacity import Governor
from t2v.usecases.submit import REFUSED_LOOK_AGAIN_SECONDS

from t2v_bench.common import RESULTS_DIR, pyplot, table, write_json
from t2v_bench.polling import TIERS, OurPoller, SimJob
from t2v_bench.push import PUSH_LATENCY

if TYPE_CHECKING:
    from collections.abc import Mapping

    from t2v.usecases.capacity import CapacityStore

EPOCH: Final = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT_QPS: Final = 20  # the account's query budget (the schedule books 80 % of it)
PROVIDER_CAP: Final = 50
CEILING: Final = 100  # the governor's ceiling (ProviderMaxTasksInFlight; its default, 10, is below 50)
HEARTBEAT_SECONDS: Final = 600  # CapacityHeartbeatSeconds' default
DEADLINE_SECONDS: Final = 7200
# The longest MaxQueueSeconds the time limits allow with the default deadline (24 h - 2 h - 1 h):
# the default (12 h) is shorter than the ideal makespan of this burst, so it would time jobs out.
MAX_QUEUE_SECONDS: Final = 86400 - DEADLINE_SECONDS - 3600
DEFAULT_MAX_QUEUE_SECONDS: Final = 43200
CREATE_LATENCY: Final = (0.2, 0.6)  # the submit function's create call (assumed)
WAKE_LATENCY: Final = (0.05, 0.45)  # SendTaskSuccess to the next submit turn (as the poll dispatch)
PROVIDER_START: Final = (3.0, 0.5)  # the provider's own scheduling: lognormal, median 3 s (as polling)
SIGMA: Final = 0.1  # run-time noise around the tier's typical time
SAMPLE_SECONDS: Final = 60.0

# Event kinds, in the order they run at one instant.
ARRIVE, END, PUSH, CREATE, CAPACITY, POLL, SAMPLE = range(7)


class MemoryCapacityLeases:
    """The capacity store in memory: the port of `t2v.adapters.capacity_leases.CapacityLeases`, with
    its rules (`WorkingCap`, `next_owner`, FIFO by queue key, a refusal back at its owner's front)."""

    def __init__(self, *, ceiling: int) -> None:
        self.working = WorkingCap.start(ceiling)
        self.leases: dict[str, datetime] = {}
        self.lines: dict[str, list[tuple[str, str]]] = {}  # owner -> heap of (queue key, job id)
        self.queued: dict[str, int] = {}
        self.queue_owner: dict[str, str] = {}  # job id -> owner, while queued
        self.last_owner: str | None = None
        self.tokens: dict[str, str] = {}
        self.ended: set[str] = set()

    @property
    def held(self) -> int:
        return len(self.leases)

    def position(self, job_id: str, owner: str | None, key: str) -> int:
        return sum(1 for k, j in self.lines.get(owner or "-", []) if k < key and j in self.queue_owner)

    def enqueue(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool:
        if job_id in self.queue_owner or job_id in self.leases or job_id in self.ended:
            return False
        self._push(job_id, owner or "-", key)
        return True

    def _push(self, job_id: str, owner: str, key: str) -> None:
        heapq.heappush(self.lines.setdefault(owner, []), (key, job_id))
        self.queued[owner] = self.queued.get(owner, 0) + 1
        self.queue_owner[job_id] = owner

    def dequeue(self, job_id: str, *, owner: str | None) -> bool:
        who = self.queue_owner.get(job_id)
        if who is None or who != (owner or "-"):
            return False
        del self.queue_owner[job_id]  # its heap entry is skipped when it comes up
        self.queued[who] -= 1
        return True

    def admit(self, *, now: datetime, deadline_seconds: int) -> list[str]:
        admitted: list[str] = []
        while self.working.cap - self.held > 0:
            owner = next_owner(self.queued, self.last_owner)
            if owner is None:
                break
            line = self.lines[owner]
            while line and self.queue_owner.get(line[0][1]) != owner:
                heapq.heappop(line)  # taken out of the queue before its turn
            _, job_id = heapq.heappop(line)
            del self.queue_owner[job_id]
            self.queued[owner] -= 1
            self.leases[job_id] = now
            self.last_owner = owner
            admitted.append(job_id)
        return admitted

    def release(self, job_id: str) -> bool:
        return self.leases.pop(job_id, None) is not None

    def refused(self, job_id: str, *, owner: str | None, key: str, now: datetime) -> bool:
        if job_id not in self.leases:
            return False
        self.working = self.working.refused(in_flight=self.held - 1)
        del self.leases[job_id]
        self._push(job_id, owner or "-", key)
        return True

    def accepted(self) -> WorkingCap:
        self.working = self.working.accepted()
        return self.working

    def held_too_long(self) -> WorkingCap:
        self.working = self.working.held_too_long()
        return self.working

    def reclaim(self, holders: dict[str, str | None]) -> list[str]:
        return [j for j, status in holders.items() if status is None and self.release(j)]

    def wait_token(self, job_id: str) -> str | None:
        return self.tokens.get(job_id)

    def lease_holders(self) -> list[str]:
        return sorted(self.leases)


if TYPE_CHECKING:
    # mypy checks the fake against the port: a method the port gains or changes fails here.
    _IS_THE_PORT: CapacityStore = MemoryCapacityLeases(ceiling=1)


@dataclass
class CapJob(SimJob):
    """A job's life: accepted at `arrival`; `submit` is when the provider accepted its create."""

    owner: str = "A"
    arrival: float = 0.0
    key: str = ""
    started: float | None = None  # RUNNING at the provider
    leased: float | None = None  # the first lease
    turns: int = 0
    creates: int = 0
    refusals: int = 0
    held_signalled: bool = False
    timed_out: bool = False


@dataclass(frozen=True)
class Scenario:
    jobs: int = 20_000
    b_jobs: int = 10
    provider_cap: int = PROVIDER_CAP
    ceiling: int = CEILING
    mode: str = "refuse"  # or "queue"
    push: bool = True
    max_queue_seconds: int = MAX_QUEUE_SECONDS
    seed: int = 20

    @property
    def label(self) -> str:
        return f"{self.mode}, push {'on' if self.push else 'off'}"


def make_jobs(scenario: Scenario, rng: random.Random) -> list[CapJob]:
    """Owner A's jobs at t=0 (one burst), owner B's spread evenly over the expected run; tiers drawn
    from the eight of `t2v_bench.polling` (typical 30-300 s), run time lognormal around them."""
    count_a = scenario.jobs - scenario.b_jobs
    runs = []
    for _ in range(scenario.jobs):
        size, duration, audio, typical = rng.choice(TIERS)
        runs.append(
            (GenerationTier.of(size, duration, audio), typical, typical * rng.lognormvariate(0, SIGMA))
        )
    span = 0.9 * sum(r for _, _, r in runs) / scenario.provider_cap
    jobs = []
    for i, (tier, typical, run) in enumerate(runs):
        is_b = i >= count_a
        arrival = span * (i - count_a + 0.5) / scenario.b_jobs if is_b else 0.0
        job_id = f"sim-{i:06d}"
        jobs.append(
            CapJob(
                index=i,
                job_id=job_id,
                tier=tier,
                typical=typical,
                submit=math.inf,
                queue=PROVIDER_START[0] * rng.lognormvariate(0, PROVIDER_START[1]),
                run=run,
                owner="B" if is_b else "A",
                arrival=arrival,
                key=queue_key(iso(EPOCH + timedelta(seconds=arrival)), job_id),
            )
        )
    return jobs


@dataclass
class Provider:
    """The account at the provider: its cap, and what it does past it."""

    cap: int
    mode: str
    in_flight: set[int] = field(default_factory=set)
    running: int = 0
    held: deque[CapJob] = field(default_factory=deque)
    max_in_flight: int = 0
    max_running: int = 0

    def create(self, job: CapJob, now: float) -> float | None:
        """The create's answer: when its task ends (None: refused with 429 Throttling)."""
        if self.mode == "refuse" and len(self.in_flight) >= self.cap:
            return None
        self.in_flight.add(job.index)
        self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
        job.submit = now
        if self.running < self.cap:
            return self._start(job, now + job.queue)
        job.queue = math.inf  # held in the provider's own queue: RUNNING once a task ends
        self.held.append(job)
        return None

    def _start(self, job: CapJob, at: float) -> float:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        job.started = at
        job.queue = at - job.submit
        return at + job.run

    def end(self, job: CapJob, now: float) -> tuple[CapJob, float] | None:
        """A task ended: the next held one starts (its end returned)."""
        self.in_flight.discard(job.index)
        self.running -= 1
        if self.held:
            nxt = self.held.popleft()
            return nxt, self._start(nxt, now)
        return None


@dataclass
class Sim:
    scenario: Scenario
    jobs: list[CapJob]
    rng: random.Random
    poller: OurPoller
    provider: Provider
    store: MemoryCapacityLeases
    governor: Governor = field(init=False)
    now: float = 0.0
    events: list[tuple[float, int, int, int]] = field(default_factory=list)
    cap_version: dict[int, int] = field(default_factory=dict)
    poll_version: dict[int, int] = field(default_factory=dict)
    seen_push: set[int] = field(default_factory=set)
    per_second: Counter[int] = field(default_factory=Counter)
    creates_per_second: Counter[int] = field(default_factory=Counter)
    samples: list[dict[str, float]] = field(default_factory=list)
    capacity_turns: int = 0
    min_cap: int = 10**9

    def __post_init__(self) -> None:
        self.governor = Governor(
            leases=self.store, waker=self, deadline_seconds=DEADLINE_SECONDS, clock=self._clock
        )
        self.by_id = {job.job_id: job for job in self.jobs}

    def _clock(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def _at(self, when: float, kind: int, index: int, version: int = 0) -> None:
        heapq.heappush(self.events, (when, kind, index, version))

    # -- the Waker port: a freed lease wakes the parked capacity wait of each job it admitted ------

    def wake(self, token: str) -> bool:
        index, version = (int(part) for part in token.split(":"))
        if self.cap_version.get(index) != version:
            return False
        self.cap_version[index] = version + 1
        self.store.tokens.pop(self.jobs[index].job_id, None)
        self._at(self.now + self.rng.uniform(*WAKE_LATENCY), CAPACITY, index, version + 1)
        return True

    def _park(self, job: CapJob, wait: float) -> None:
        version = self.cap_version.get(job.index, 0) + 1
        self.cap_version[job.index] = version
        self.store.tokens[job.job_id] = f"{job.index}:{version}"
        self._at(self.now + wait, CAPACITY, job.index, version)

    # -- the submit function --------------------------------------------------------------------

    def capacity_turn(self, job: CapJob) -> None:
        """`submit_job` for a job without a task: create when it holds a lease, else
        `_wait_for_capacity` (queue once, admit, park or give up at the queue's limit)."""
        self.capacity_turns += 1
        self.store.tokens.pop(job.job_id, None)
        if job.job_id not in self.store.leases:
            if job.job_id not in self.store.queue_owner:
                self.store.enqueue(job.job_id, owner=job.owner, key=job.key, now=self._clock())
            self.governor.admit(skip=job.job_id)
        if job.job_id in self.store.leases:
            job.leased = self.now if job.leased is None else job.leased
            self._at(self.now + self.rng.uniform(*CREATE_LATENCY), CREATE, job.index)
            return
        job.turns += 1
        waited = self.now - job.arrival
        limit = self.scenario.max_queue_seconds
        if waited >= limit or job.turns > _max_turns(limit):
            self.governor.free(job.job_id, owner=job.owner, queued=True)
            job.timed_out = True
            return
        self._park(job, min(HEARTBEAT_SECONDS, max(1, int(limit - waited))))

    def create(self, job: CapJob) -> None:
        job.creates += 1
        self.creates_per_second[math.floor(self.now)] += 1
        end = self.provider.create(job, self.now)
        if end is None and job.index not in self.provider.in_flight:
            # `_refused_for_capacity`: back to the front of its owner's line, the cap lowered.
            job.refusals += 1
            self.store.refused(job.job_id, owner=job.owner, key=job.key, now=self._clock())
            job.turns += 1
            self._park(job, min(HEARTBEAT_SECONDS, REFUSED_LOOK_AGAIN_SECONDS))
            return
        self.store.accepted()
        if end is not None:
            self._at(end, END, job.index)
        self.poll_version[job.index] = 0
        self._at(self.poller.first(job, self.now), POLL, job.index, 0)

    # -- the provider and the status function ---------------------------------------------------

    def task_end(self, job: CapJob) -> None:
        nxt = self.provider.end(job, self.now)
        if nxt is not None:
            self._at(nxt[1], END, nxt[0].index)
        if self.scenario.push:
            self._at(self.now + self.rng.uniform(*PUSH_LATENCY), PUSH, job.index)

    def push(self, job: CapJob) -> None:
        if job.delivered_at is not None or job.index in self.seen_push:
            return
        self.seen_push.add(job.index)
        self.poll_version[job.index] += 1
        self._at(
            self.now + self.rng.uniform(*self.poller.latency), POLL, job.index, self.poll_version[job.index]
        )

    def poll(self, job: CapJob) -> None:
        """`poll_job`: query on a booked (or the current) second, the held signal on PENDING, the
        lease freed when the task has ended, else the next booking (as `t2v_bench.push`)."""
        poller, now = self.poller, self.now
        state = poller.state[job.index]
        slot, due = state.get("slot"), state.get("due")
        woken = self.scenario.push and due is not None and due - now > 1.0
        if woken and slot is not None and slot > now + 1:
            poller.stats.release(slot)  # the booked second goes back to the ledger
            slot = None
        pause = slot_check(slot, now)
        if pause is None:
            pause = claim_now(poller.stats, now, poller.policy)
        if pause is None:
            self._at(poller.rebook(job, now, hinted=woken), POLL, job.index, self.poll_version[job.index])
            return
        now += pause
        job.queries += 1
        self.per_second[math.floor(now)] += 1
        if now >= job.finish:
            job.delivered_at = now
            poller.finished(job, now)
            self.now = now
            self.governor.free(job.job_id, owner=job.owner, queued=False)
            self._held_signal(job, job.queue)  # the provider's times show how long it was held
            return
        if woken:
            poller.hinted.add(job.index)
        if now < job.submit + job.queue:
            self._held_signal(job, now - job.submit)
        nxt = poller.after(job, now)
        if nxt is not None:
            self._at(nxt, POLL, job.index, self.poll_version[job.index])

    def _held_signal(self, job: CapJob, pending: float) -> None:
        history = self.poller.stats.history(job.tier)
        if job.held_signalled or not history.queue:
            return
        if held_too_long(pending, usual_queue_seconds(history.queue, prior=DEFAULT_QUEUE_SECONDS)):
            job.held_signalled = True
            self.store.held_too_long()

    def sample(self) -> None:
        self.samples.append(
            {
                "t": self.now,
                "cap": self.store.working.cap,
                "leases": self.store.held,
                "in_flight": len(self.provider.in_flight),
                "running": self.provider.running,
                "queued": sum(self.store.queued.values()),
            }
        )
        if self.store.queue_owner or self.store.leases:
            self._at(self.now + SAMPLE_SECONDS, SAMPLE, -1)

    def run(self) -> None:
        for job in self.jobs:
            self._at(job.arrival, ARRIVE, job.index)
        self._at(0.0, SAMPLE, -1)
        handlers = {END: self.task_end, PUSH: self.push, CREATE: self.create}
        while self.events:
            self.now, kind, index, version = heapq.heappop(self.events)
            self.min_cap = min(self.min_cap, self.store.working.cap)
            if kind == SAMPLE:
                self.sample()
                continue
            job = self.jobs[index]
            if kind == ARRIVE:
                self.capacity_turn(job)
            elif kind == CAPACITY:
                if self.cap_version.get(index) == version and not job.timed_out:
                    self.capacity_turn(job)
            elif kind == POLL:
                if self.poll_version.get(index) == version and job.delivered_at is None:
                    self.poll(job)
            else:
                handlers[kind](job)


def _max_turns(max_queue_seconds: int) -> int:
    """`JobsSettings.max_capacity_turns` for this queue limit and the default heartbeat."""
    return 2 * -(-max_queue_seconds // HEARTBEAT_SECONDS) + MAX_REFUSED_CREATES


def _leased(job: CapJob) -> float:
    return math.inf if job.leased is None else job.leased


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else math.nan


def simulate(scenario: Scenario) -> tuple[dict[str, Any], Sim]:
    rng = random.Random(scenario.seed)
    jobs = make_jobs(scenario, rng)
    policy = replace(Policy(), push=scenario.push)
    poller = OurPoller(rng=random.Random(scenario.seed + 1), policy=policy)
    sim = Sim(
        scenario=scenario,
        jobs=jobs,
        rng=random.Random(scenario.seed + 2),
        poller=poller,
        provider=Provider(cap=scenario.provider_cap, mode=scenario.mode),
        store=MemoryCapacityLeases(ceiling=scenario.ceiling),
    )
    sim.run()
    return summarize(sim), sim


def summarize(sim: Sim) -> dict[str, Any]:
    jobs, scenario = sim.jobs, sim.scenario
    delivered = [j for j in jobs if j.delivered_at is not None]
    creates = sum(j.creates for j in jobs)
    refused = sum(j.refusals for j in jobs)
    runs = [j.run for j in jobs]
    ideal = sum(runs) / scenario.provider_cap
    makespan = max((j.delivered_at or 0.0) for j in jobs)
    b_waits = [(j.started or math.inf) - j.arrival for j in jobs if j.owner == "B"]
    queries = sum(sim.per_second.values())
    over_cap = (
        sim.provider.max_in_flight if scenario.mode == "refuse" else sim.provider.max_running
    ) > scenario.provider_cap
    return {
        "mode": scenario.mode,
        "push": "on" if scenario.push else "off",
        "jobs": len(jobs),
        "ceiling": scenario.ceiling,
        "provider_cap": scenario.provider_cap,
        "delivered": len(delivered),
        "failed_for_capacity": sum(1 for j in jobs if j.timed_out or j.delivered_at is None),
        "max_in_flight": sim.provider.max_in_flight,
        "max_running": sim.provider.max_running,
        "provider_above_cap": over_cap,
        "peak_queries_per_second": max(sim.per_second.values(), default=0),
        "seconds_over_budget": sum(1 for c in sim.per_second.values() if c > ACCOUNT_QPS),
        "makespan_s": round(makespan, 1),
        "ideal_s": round(ideal, 1),
        "makespan_ratio": f"{makespan / ideal:.3f}",
        "median_generation_s": round(statistics.median(runs), 1),
        "b_wait_p95_s": round(_pct(b_waits, 0.95), 1),
        "b_wait_max_s": round(max(b_waits), 1),
        "creates": creates,
        "refused": refused,
        "refused_share": f"{refused / max(1, creates):.4f}",
        "queries_per_job": f"{queries / len(jobs):.3f}",
        "held_signals": sum(1 for j in jobs if j.held_signalled),
        "final_cap": sim.store.working.cap,
        "min_cap": sim.min_cap,
        "capacity_turns": sim.capacity_turns,
        "queue_wait_max_s": round(max(_leased(j) - j.arrival for j in jobs), 1),
        "would_time_out_at_default_queue_limit": sum(
            1 for j in jobs if _leased(j) - j.arrival >= DEFAULT_MAX_QUEUE_SECONDS
        ),
    }


GOALS: Final[tuple[tuple[str, str], ...]] = (
    ("no_capacity_failures", "0 jobs failed for capacity"),
    ("never_above_cap", "provider never above its cap"),
    ("within_query_budget", "0 s over 20 queries/s"),
    ("makespan", "makespan <= 1.05x ideal"),
    ("b_wait", "B's p95 wait <= median generation"),
    ("refusals", "refused creates <= 2 %"),
    ("queries_per_job", "push on: <= 1.1 queries/job"),
)


def goals(row: Mapping[str, Any]) -> dict[str, bool | None]:
    return {
        "no_capacity_failures": row["failed_for_capacity"] == 0,
        "never_above_cap": not row["provider_above_cap"],
        "within_query_budget": row["seconds_over_budget"] == 0,
        "makespan": float(row["makespan_ratio"]) <= 1.05,
        "b_wait": row["b_wait_p95_s"] <= row["median_generation_s"],
        "refusals": float(row["refused_share"]) <= 0.02,
        "queries_per_job": float(row["queries_per_job"]) <= 1.1 if row["push"] == "on" else None,
    }


def _verdict(value: bool | None) -> str:
    return "-" if value is None else "PASS" if value else "FAIL"


def plot(runs: list[tuple[dict[str, Any], Sim]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.4 * len(runs)), squeeze=False)
    for ax, (row, sim) in zip(axes[:, 0], runs, strict=True):
        t = [s["t"] / 3600 for s in sim.samples]
        ax.plot(t, [s["cap"] for s in sim.samples], label="working cap", linewidth=1)
        ax.plot(t, [s["in_flight"] for s in sim.samples], label="in flight at the provider", linewidth=1)
        ax.plot(t, [s["running"] for s in sim.samples], ":", label="running", linewidth=1)
        ax.axhline(row["provider_cap"], color="red", alpha=0.35, linewidth=2, label="provider's cap")
        ax.set_ylim(0, row["ceiling"] * 1.05)
        ax.set_ylabel("tasks")
        ax.set_title(f"{row['mode']}, push {row['push']}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("hours since the burst")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLUMNS: Final = (
    "mode",
    "push",
    "failed_for_capacity",
    "max_in_flight",
    "max_running",
    "seconds_over_budget",
    "makespan_ratio",
    "b_wait_p95_s",
    "median_generation_s",
    "refused_share",
    "queries_per_job",
    "final_cap",
    "min_cap",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs in all (owner B's among them)")
    parser.add_argument("--b-jobs", type=int, default=10, help="owner B's jobs, spread over the run")
    parser.add_argument("--provider-cap", type=int, default=PROVIDER_CAP)
    parser.add_argument("--ceiling", type=int, default=CEILING, help="the governor's ceiling")
    parser.add_argument("--modes", default="refuse,queue")
    parser.add_argument("--push", default="on,off")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    runs = []
    for mode in args.modes.split(","):
        for push in args.push.split(","):
            scenario = Scenario(
                jobs=args.jobs,
                b_jobs=args.b_jobs,
                provider_cap=args.provider_cap,
                ceiling=args.ceiling,
                mode=mode,
                push=push == "on",
                seed=args.seed,
            )
            runs.append(simulate(scenario))
    rows = [row for row, _ in runs]
    print(
        f"## Capacity: {args.jobs:,} jobs against an unknown cap of {args.provider_cap} (ceiling {args.ceiling})"
    )
    print(table(COLUMNS, [[row[c] for c in COLUMNS] for row in rows]))
    print()
    verdicts = [goals(row) for row in rows]
    print(
        table(
            ["goal", *(f"{r['mode']}/push {r['push']}" for r in rows)],
            [[text, *(_verdict(v[key]) for v in verdicts)] for key, text in GOALS],
        )
    )
    for row, verdict in zip(rows, verdicts, strict=True):
        row["goals"] = verdict
    write_json("capacity-sim", {"rows": rows}, args.out)
    if not args.no_plots:
        plot(runs, args.out / "capacity-sim.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
