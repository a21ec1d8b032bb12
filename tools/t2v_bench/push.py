"""Issue 13's simulation: task-finished pushes wake the workflow; polling is the safety net.

The same discrete-event simulation as benchmarks 1 and 2 (`t2v_bench.polling`: the same jobs, the
same tiers, the real `t2v.schedule` code with its slot ledger and shared active count), with push:

- each task's push reaches the callback `push_latency` after the provider's finish (EventBridge's
  delivery plus our callback, assumed uniform 0.2-1.0 s), unless dropped; a duplicated push arrives
  again up to 30 s later with the same event id, which the callback drops;
- a push for a job whose wait is parked wakes it: its next turn comes after the usual dispatch
  latency, claims the current second in the ledger (or books the next free one) and queries;
- with push on the schedule only looks where a lost push would cost too much (`fallback_wait`).

`polling` is the same poller with push off: today's behaviour, measured on the same jobs.
"""

from __future__ import annotations

# ruff: noqa: S311 - seeded simulations, no cryptography
import argparse
import heapq
import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from t2v.schedule import Policy, claim_now, slot_check

from t2v_bench.polling import OurPoller, SimJob, _table, make_jobs, simulate, summarize

PUSH_LATENCY = (0.2, 1.0)  # provider finish -> our callback has the push (assumed)
DUPLICATE_DELAY = (0.0, 30.0)  # a duplicate's arrival after the first copy (assumed)


@dataclass(frozen=True)
class PushFaults:
    dropped: float = 0.0  # share of pushes never delivered
    duplicated: float = 0.0  # share delivered twice

    @property
    def label(self) -> str:
        if not self.dropped and not self.duplicated:
            return "push"
        return f"push, {self.dropped:.0%} dropped, {self.duplicated:.0%} duplicated"


def push_arrivals(jobs: list[SimJob], faults: PushFaults, rng: random.Random) -> list[tuple[float, int]]:
    """(arrival time, job index) of every push delivery: none when dropped, two when duplicated."""
    arrivals = []
    for job in jobs:
        if rng.random() < faults.dropped:
            continue
        first = job.finish + rng.uniform(*PUSH_LATENCY)
        arrivals.append((first, job.index))
        if rng.random() < faults.duplicated:
            arrivals.append((first + rng.uniform(*DUPLICATE_DELAY), job.index))
    return arrivals


@dataclass
class _PushSim:
    poller: OurPoller
    rng: random.Random
    events: list[tuple[float, int, int, int]]  # (time, kind, index, version): 0 submit, 1 turn, 2 push
    version: dict[int, int] = field(default_factory=dict)
    seen_push: set[int] = field(default_factory=set)
    per_second: Counter[int] = field(default_factory=Counter)

    def push(self, job: SimJob, now: float) -> None:
        """The callback: a push for a finished job, a duplicate event id or a job not yet started is
        dropped; otherwise it wakes the parked wait (the turn it was waiting for is superseded)."""
        if job.delivered_at is not None or job.index in self.seen_push or job.index not in self.version:
            return
        self.seen_push.add(job.index)
        self.version[job.index] += 1
        wake = now + self.rng.uniform(*self.poller.latency)
        heapq.heappush(self.events, (wake, 1, job.index, self.version[job.index]))

    def turn(self, job: SimJob, now: float) -> None:
        """What the status function does on a turn, woken or not."""
        state = self.poller.state[job.index]
        slot, due = state.get("slot"), state.get("due")
        woken = due is not None and due - now > 1.0  # as `woken_early` tells from the turn's fields
        if woken and slot is not None and slot > now + 1:
            self.poller.stats.release(slot)  # the booked second goes back to the ledger
            slot = None
        pause = slot_check(slot, now)
        if pause is None:
            pause = claim_now(self.poller.stats, now, self.poller.policy)
        if pause is None:
            booked = self.poller.rebook(job, now, hinted=woken)
            heapq.heappush(self.events, (booked, 1, job.index, self.version[job.index]))
            return
        now += pause
        job.queries += 1
        self.per_second[math.floor(now)] += 1
        if now >= job.finish:
            job.delivered_at = now
            self.poller.finished(job, now)
            return
        if woken:
            self.poller.hinted.add(job.index)
        nxt = self.poller.after(job, now)
        if nxt is not None:
            heapq.heappush(self.events, (nxt, 1, job.index, self.version[job.index]))


def simulate_push(
    jobs: list[SimJob], poller: OurPoller, faults: PushFaults, rng: random.Random
) -> Counter[int]:
    """Run every job to delivery with pushes; returns queries per (integer) second."""
    events = [(job.submit, 0, job.index, 0) for job in jobs]
    events += [(at, 2, index, 0) for at, index in push_arrivals(jobs, faults, rng)]
    heapq.heapify(events)
    sim = _PushSim(poller, rng, events)
    by_index = {job.index: job for job in jobs}
    while events:
        now, kind, index, ver = heapq.heappop(events)
        job = by_index[index]
        if kind == 0:
            sim.version[index] = 0
            heapq.heappush(events, (poller.first(job, now), 1, index, 0))
        elif kind == 2:
            sim.push(job, now)
        elif ver == sim.version[index] and job.delivered_at is None:
            sim.turn(job, now)
    return sim.per_second


def _run(
    jobs: list[SimJob], mode: str, faults: PushFaults, seed: int, policy: Policy
) -> tuple[list[SimJob], Counter[int], str]:
    if mode == "polling":
        poller = OurPoller(rng=random.Random(seed), policy=policy)
        poller.name = "polling only"
        return jobs, simulate(jobs, poller), poller.name
    push = OurPoller(rng=random.Random(seed), policy=replace(policy, push=True), name="push")
    return jobs, simulate_push(jobs, push, faults, random.Random(seed + 1)), faults.label


MODES: tuple[tuple[str, PushFaults], ...] = (
    ("polling", PushFaults()),
    ("push", PushFaults()),
    ("push", PushFaults(dropped=0.10, duplicated=0.05)),
)


def _row(
    jobs: list[SimJob], per_second: Counter[int], name: str, budget: float, after: float
) -> dict[str, Any]:
    undelivered = sum(1 for j in jobs if j.delivered_at is None)
    return {
        "mode": name,
        **summarize(jobs, after),
        "peak_per_second": max(per_second.values(), default=0),
        "seconds_over_budget": sum(1 for c in per_second.values() if c > budget),
        "undelivered": undelivered,
        "total_queries": sum(per_second.values()),
    }


def steady_benchmark(*, jobs: int, sigmas: tuple[float, ...], seed: int) -> list[dict[str, Any]]:
    """Benchmark 1's steady workload (one job every 6 s), the first 20 % only teaching the schedule."""
    rows = []
    policy = Policy()
    for sigma in sigmas:
        for mode, faults in MODES:
            sim_jobs = make_jobs(jobs, sigma=sigma, arrivals=jobs * 6.0, rng=random.Random(seed))
            _, per_second, name = _run(sim_jobs, mode, faults, seed, policy)
            warmup = sorted(j.submit for j in sim_jobs)[jobs // 5]
            rows.append({"sigma": sigma, **_row(sim_jobs, per_second, name, policy.budget_qps, warmup)})
    return rows


def burst_benchmark(*, counts: tuple[int, ...], seed: int, sigma: float = 0.1) -> list[dict[str, Any]]:
    """`n` jobs submitted within 10 s (a batch file), as benchmark 2."""
    rows = []
    policy = Policy()
    for n in counts:
        for mode, faults in MODES:
            sim_jobs = make_jobs(n, sigma=sigma, arrivals=10.0, rng=random.Random(seed))
            _, per_second, name = _run(sim_jobs, mode, faults, seed, policy)
            last = max((j.delivered_at or 0.0) for j in sim_jobs)
            rows.append(
                {
                    "concurrent": n,
                    **_row(sim_jobs, per_second, name, policy.budget_qps, -math.inf),
                    "drain_seconds": round(last, 1),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in the steady workload")
    parser.add_argument("--sigmas", default="0.05,0.1,0.2")
    parser.add_argument("--concurrent", default="100,1000,10000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)
    sigmas = tuple(float(s) for s in args.sigmas.split(","))
    steady = steady_benchmark(jobs=args.jobs, sigmas=sigmas, seed=args.seed)
    cols = [
        "mode",
        "lag_median",
        "lag_p90",
        "queries_mean",
        "queries_p90",
        "peak_per_second",
        "seconds_over_budget",
        "undelivered",
    ]
    print("## Push: steady workload (benchmark 1's jobs)")
    print("\n".join(_table(steady, ["sigma", *cols])))
    burst = burst_benchmark(counts=tuple(int(c) for c in args.concurrent.split(",")), seed=args.seed)
    print()
    print("## Push: jobs submitted together (sigma 0.1)")
    print("\n".join(_table(burst, ["concurrent", *cols, "drain_seconds"])))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "push-sim.json").write_text(json.dumps({"steady": steady, "burst": burst}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
