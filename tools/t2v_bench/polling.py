"""Benchmarks 1 and 2 of issue 7: poll lag and queries per job; the account's query rate.

A discrete-event simulation in virtual time. Jobs have a queue time and a run time drawn around
their tier's typical generation time (30-300 s); three pollers watch them:

- `ours`: the real schedule (`t2v.schedule`: first_wait / next_wait / book_query with the slot
  ledger and the shared active count), exactly as the status function calls it, including the
  whole-second Wait states, the sub-second alignment pause and a random dispatch latency;
- `sdk`: the official DashScope SDK's `wait()` cadence (query at once, then 1, 1, 2, 2, 2, 4, 4,
  4, 5, 5, ... s);
- `fixed15`: a query every 15 s (the provider's advice).

A job is delivered when a query sees it finished; its lag is that moment minus the provider's
finish. Queries land in the second they land in, so per-second counts are what the provider sees.
"""

from __future__ import annotations

# ruff: noqa: S311 - seeded simulations, no cryptography
import argparse
import heapq
import json
import math
import random
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from t2v.schedule import (
    GenerationTier,
    Observation,
    Policy,
    book_query,
    claim_now,
    first_wait,
    next_wait,
    phase_of,
    slot_check,
)

from t2v_bench.ledger import MemoryPollStats

# (size, duration, audio, typical run seconds): eight tiers spanning 30-300 s of generation.
TIERS: tuple[tuple[str, int, bool, float], ...] = (
    ("640*360", 5, False, 30.0),
    ("640*360", 10, True, 45.0),
    ("1024*576", 5, False, 60.0),
    ("1280*720", 5, True, 90.0),
    ("1280*720", 10, False, 120.0),
    ("1920*1080", 5, False, 180.0),
    ("1920*1080", 8, False, 240.0),
    ("1920*1080", 8, True, 300.0),
)
DEADLINE_SECONDS = 7200.0
FINALIZE_SECONDS = 0.0  # the download is the same for every poller; this benchmark isolates polling


@dataclass
class SimJob:
    index: int
    job_id: str
    tier: GenerationTier
    typical: float
    submit: float
    queue: float
    run: float
    queries: int = 0
    delivered_at: float | None = None

    @property
    def finish(self) -> float:
        return self.submit + self.queue + self.run


def make_jobs(n: int, *, sigma: float, arrivals: float, rng: random.Random) -> list[SimJob]:
    """`n` jobs arriving uniformly over `arrivals` seconds, tiers round-robin, run-time noise `sigma`
    (lognormal), queue time lognormal around 3 s."""
    jobs = []
    for i in range(n):
        size, duration, audio, typical = TIERS[i % len(TIERS)]
        jobs.append(
            SimJob(
                index=i,
                job_id=f"sim-{i:06d}",
                tier=GenerationTier.of(size, duration, audio),
                typical=typical,
                submit=rng.uniform(0, arrivals),
                queue=3.0 * rng.lognormvariate(0, 0.5),
                run=typical * rng.lognormvariate(0, sigma),
            )
        )
    return jobs


class Poller(Protocol):
    name: str

    def first(self, job: SimJob, now: float) -> float: ...
    def after(self, job: SimJob, now: float) -> float | None: ...
    def finished(self, job: SimJob, now: float) -> None: ...


@dataclass
class SdkPoller:
    """dashscope.client.base_api `wait()`: query, then sleep 1 s, doubling every third step up to 5 s."""

    name: str = "sdk"
    waits: dict[int, tuple[int, float]] = field(default_factory=dict)

    def first(self, job: SimJob, now: float) -> float:
        self.waits[job.index] = (0, 1.0)
        return now

    def after(self, job: SimJob, now: float) -> float | None:
        step, wait = self.waits[job.index]
        step += 1
        if wait < 5 and step % 3 == 0:
            wait = min(wait * 2, 5.0)
        self.waits[job.index] = (step, wait)
        return now + wait

    def finished(self, job: SimJob, now: float) -> None:
        self.waits.pop(job.index, None)


@dataclass
class FixedPoller:
    interval: float = 15.0
    name: str = "fixed15"

    def first(self, job: SimJob, now: float) -> float:
        return now + self.interval

    def after(self, job: SimJob, now: float) -> float | None:
        return now + self.interval

    def finished(self, job: SimJob, now: float) -> None:
        return None


@dataclass
class OurPoller:
    """The status function's decisions, made by the real schedule code."""

    rng: random.Random
    policy: Policy = field(default_factory=Policy)
    stats: MemoryPollStats = field(default_factory=MemoryPollStats)
    latency: tuple[float, float] = (0.05, 0.45)
    name: str = "ours"
    learn: bool = True
    unbooked_turns: int = 0
    state: dict[int, dict[str, Any]] = field(default_factory=dict)
    hinted: set[int] = field(default_factory=set)  # jobs whose push came before a query showed the finish

    def _land(self, job: SimJob, now: float, wait: float, *, hinted: bool = False) -> float:
        booking = book_query(
            self.stats,
            wait,
            now=now,
            deadline=job.submit + DEADLINE_SECONDS,
            active_jobs=self.stats.active_jobs(),
            policy=self.policy,
            hinted=hinted,
            phase=phase_of(job.job_id),
        )
        self.state[job.index]["slot"] = booking.slot
        self.state[job.index]["due"] = now + booking.pause + booking.wait_seconds
        return now + booking.pause + booking.wait_seconds + self.rng.uniform(*self.latency)

    def first(self, job: SimJob, now: float) -> float:
        self.stats.active += 1
        self.state[job.index] = {"observed": "SUBMITTED", "queued": None}
        obs = Observation(
            now=now, submitted_at=now, deadline=now + DEADLINE_SECONDS, active_jobs=self.stats.active
        )
        wait = first_wait(obs, self.stats.history(job.tier), self.policy, phase=phase_of(job.job_id))
        return self._land(job, now, wait)

    def pause_before_query(self, job: SimJob, now: float) -> float | None:
        """What the status function checks first: None means book again without querying."""
        pause = slot_check(self.state[job.index].get("slot"), now)
        return pause if pause is not None else claim_now(self.stats, now, self.policy)

    def rebook(self, job: SimJob, now: float, *, hinted: bool = False) -> float:
        self.unbooked_turns += 1
        return self._land(job, now, self.policy.min_wait, hinted=hinted)

    def after(self, job: SimJob, now: float) -> float | None:
        st = self.state[job.index]
        started = job.submit + job.queue
        if now >= started:
            st["observed"], st["queued"] = "RUNNING", job.queue
        else:
            st["observed"] = "PENDING"
        obs = Observation(
            now=now,
            submitted_at=job.submit,
            deadline=job.submit + DEADLINE_SECONDS,
            state=st["observed"],
            queued_seconds=st["queued"],
            active_jobs=self.stats.active_jobs(),
            hinted=job.index in self.hinted,
        )
        self.hinted.discard(job.index)
        wait = next_wait(obs, self.stats.history(job.tier), self.policy)
        return self._land(job, now, wait, hinted=obs.hinted)

    def finished(self, job: SimJob, now: float) -> None:
        self.stats.active -= 1
        self.state.pop(job.index, None)
        if self.learn:
            self.stats.record_timing(job.tier, queue=job.queue, run=job.run, limit=self.policy.history_limit)


def simulate(jobs: list[SimJob], poller: Poller) -> Counter[int]:
    """Run every job to delivery; returns queries per (integer) second."""
    per_second: Counter[int] = Counter()
    # (time, kind, index): kind 0 submits the job (the submit function's first booking), 1 is a turn.
    events: list[tuple[float, int, int]] = [(job.submit, 0, job.index) for job in jobs]
    heapq.heapify(events)
    by_index = {job.index: job for job in jobs}
    while events:
        now, kind, index = heapq.heappop(events)
        job = by_index[index]
        if kind == 0:
            heapq.heappush(events, (poller.first(job, now), 1, index))
            continue
        if isinstance(poller, OurPoller):
            pause = poller.pause_before_query(job, now)
            if pause is None:  # no slot, or too late for it: book again without querying
                heapq.heappush(events, (poller.rebook(job, now), 1, index))
                continue
            now += pause
        job.queries += 1
        per_second[math.floor(now)] += 1
        if now >= job.finish:
            job.delivered_at = now + FINALIZE_SECONDS
            poller.finished(job, now)
            continue
        nxt = poller.after(job, now)
        if nxt is not None:
            heapq.heappush(events, (nxt, 1, index))
    return per_second


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(jobs: list[SimJob], after: float = -math.inf) -> dict[str, float]:
    """Jobs submitted from `after` on (the ones before only teach the schedule)."""
    measured = [j for j in jobs if j.submit >= after and j.delivered_at is not None]
    lags = [j.delivered_at - j.finish for j in measured if j.delivered_at is not None]
    queries = [float(j.queries) for j in measured]
    return {
        "jobs": len(measured),
        "lag_median": statistics.median(lags),
        "lag_p90": _pct(lags, 0.9),
        "queries_mean": statistics.fmean(queries),
        "queries_median": statistics.median(queries),
        "queries_p90": _pct(queries, 0.9),
    }


# ---------------------------------------------------------------------------------------------
# Benchmark 1: lag and queries per job


def lag_benchmark(*, jobs: int, sigmas: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Steady traffic (about 20 jobs running at once), learning from the first 20% (not counted)."""
    results: dict[str, Any] = {"jobs": jobs, "sigmas": list(sigmas), "rows": [], "by_tier": []}
    for sigma in sigmas:
        arrivals = jobs * 6.0  # one job every 6 s: ~20-25 running, far below the budget
        for poller_factory in (
            lambda: OurPoller(rng=random.Random(seed)),
            SdkPoller,
            FixedPoller,
        ):
            sim_jobs = make_jobs(jobs, sigma=sigma, arrivals=arrivals, rng=random.Random(seed))
            poller = poller_factory()
            simulate(sim_jobs, poller)
            warmup = sorted(j.submit for j in sim_jobs)[jobs // 5]
            row = {"poller": poller.name, "sigma": sigma, **summarize(sim_jobs, warmup)}
            results["rows"].append(row)
            for typical in sorted({t[3] for t in TIERS}):
                subset = [j for j in sim_jobs if j.typical == typical]
                results["by_tier"].append(
                    {"poller": poller.name, "sigma": sigma, "typical": typical, **summarize(subset, warmup)}
                )
    return results


# ---------------------------------------------------------------------------------------------
# Benchmark 2: the account's query rate


def rate_benchmark(*, counts: tuple[int, ...], seed: int, sigma: float = 0.1) -> dict[str, Any]:
    """`n` jobs submitted within 10 s (a batch file), each poller; queries per one-second window."""
    policy = Policy()
    results: dict[str, Any] = {"budget": policy.budget_qps, "rows": [], "series": {}}
    for n in counts:
        for poller_factory in (
            lambda: OurPoller(rng=random.Random(seed), policy=policy),
            SdkPoller,
            FixedPoller,
        ):
            sim_jobs = make_jobs(n, sigma=sigma, arrivals=10.0, rng=random.Random(seed))
            poller = poller_factory()
            per_second = simulate(sim_jobs, poller)
            counts_sorted = sorted(per_second.values())
            last = max(j.delivered_at or 0.0 for j in sim_jobs)
            row = {
                "poller": poller.name,
                "concurrent": n,
                "peak_per_second": counts_sorted[-1],
                "seconds_over_budget": sum(1 for c in per_second.values() if c > policy.budget_qps),
                "seconds_over_limit_20": sum(1 for c in per_second.values() if c > 20),
                "total_queries": sum(counts_sorted),
                "drain_seconds": round(last, 1),
                **{k: v for k, v in summarize(sim_jobs).items() if k != "jobs"},
            }
            if isinstance(poller, OurPoller):
                row["unbooked_turns"] = poller.unbooked_turns
            results["rows"].append(row)
            horizon = math.ceil(last) + 1
            results["series"][f"{poller.name}/{n}"] = [per_second.get(s, 0) for s in range(horizon)]
    return results


# ---------------------------------------------------------------------------------------------
# Output


def _table(rows: list[dict[str, Any]], columns: list[str]) -> Iterator[str]:
    yield "| " + " | ".join(columns) + " |"
    yield "|" + "---|" * len(columns)
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col, "")
            cells.append(
                f"{value:.2g}"
                if col == "sigma"
                else f"{value:.1f}"
                if isinstance(value, float)
                else str(value)
            )
        yield "| " + " | ".join(cells) + " |"


def plot_lag(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"ours": "o", "sdk": "s", "fixed15": "^"}
    for row in results["rows"]:
        ax.scatter(row["queries_mean"], row["lag_median"], marker=markers[row["poller"]], s=60)
        ax.annotate(f"{row['poller']} σ={row['sigma']}", (row["queries_mean"], row["lag_median"]), fontsize=7)
    ax.axhline(3, color="grey", linestyle=":", linewidth=1)
    ax.axvline(6, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("queries per job (mean)")
    ax.set_ylabel("median lag, provider SUCCEEDED → seen (s)")
    ax.set_title("Lag against queries per job (goal: lower-left of the dotted lines)")
    ax.set_xscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rate(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in results["series"] if k.startswith("ours/")]
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.6 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        n = key.split("/")[1]
        ax.axhline(results["budget"], color="red", linewidth=2.5, alpha=0.35, label="budget 16/s")
        for name, style in (("fixed15", ":"), ("sdk", "--"), ("ours", "-")):
            series = results["series"].get(f"{name}/{n}", [])
            ax.plot(
                range(len(series)),
                series,
                style,
                linewidth=0.9,
                label=name,
                zorder=3 if name == "ours" else 2,
            )
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("queries / s")
        ax.set_title(f"{n} jobs submitted together")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the batch arrived")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in the lag benchmark")
    parser.add_argument("--sigmas", default="0.05,0.1,0.2", help="run-time noise levels (lognormal sigma)")
    parser.add_argument("--concurrent", default="1000,10000", help="batch sizes for the rate benchmark")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sigmas = tuple(float(s) for s in args.sigmas.split(","))
    lag = lag_benchmark(jobs=args.jobs, sigmas=sigmas, seed=args.seed)
    print("## 1. Delivery lag and queries per job (simulation, steady traffic)")
    print(
        "\n".join(
            _table(
                lag["rows"],
                ["poller", "sigma", "jobs", "lag_median", "lag_p90", "queries_mean", "queries_p90"],
            )
        )
    )
    print()
    print(f"By generation time (sigma = {sigmas[len(sigmas) // 2]}):")
    mid = [r for r in lag["by_tier"] if r["sigma"] == sigmas[len(sigmas) // 2]]
    print("\n".join(_table(mid, ["poller", "typical", "lag_median", "lag_p90", "queries_mean"])))
    counts = tuple(int(c) for c in args.concurrent.split(","))
    rate = rate_benchmark(counts=counts, seed=args.seed)
    print()
    print("## 2. Account query rate (simulation, jobs submitted together)")
    cols = [
        "poller",
        "concurrent",
        "peak_per_second",
        "seconds_over_budget",
        "seconds_over_limit_20",
        "total_queries",
        "drain_seconds",
        "lag_median",
        "queries_mean",
    ]
    print("\n".join(_table(rate["rows"], cols)))
    (args.out / "polling-lag.json").write_text(json.dumps(lag, indent=1))
    (args.out / "polling-rate.json").write_text(
        json.dumps({k: v for k, v in rate.items() if k != "series"}, indent=1)
    )
    if not args.no_plots:
        plot_lag(lag, args.out / "lag-vs-queries.png")
        plot_rate(rate, args.out / "query-rate.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
