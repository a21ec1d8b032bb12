"""Benchmark 2, measured: many concurrent jobs through the sandbox, the query rate the emulator saw.

One JSONL prompt file of `--jobs` requests lands in the input bucket (a batch, the way a user
floods the pipeline); the real template, state machine and handlers run them at real time
(time scale 1) against the emulator. Afterwards the emulator's own request log gives the queries
per one-second window, and the job records give the delivery lag (the provider's finish to the
job's SUCCEEDED record, which is written just before the SNS publish).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from t2v.schedule import Policy
from t2v.times import parse_ts

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}


def real_time_sandbox(*, pending: float, running: float, push: bool, prefix: str, **config: Any) -> Any:
    """A UserSandbox (not started) of the real template at real time (time scale 1) against the
    emulator; `config`: more SandboxConfig fields (parameter_overrides merged over the bench's)."""
    # Imported by name: the sandbox is a tool, not part of the strictly typed product code.
    sandbox: Any = importlib.import_module("t2v_sandbox.sandbox")
    user_sandbox: Any = importlib.import_module("t2v_sandbox.user_sandbox")
    overrides = {
        "GenerationTimeScale": f"{(pending + running) / 20:.4g}",  # 20 s: the default 360P 5 s run
        **config.pop("parameter_overrides", {}),
    }
    return user_sandbox.UserSandbox(
        sandbox.SandboxConfig(
            template=Path("template.yaml"),
            parameter_overrides=overrides,
            time_scale=1.0,
            emulator_pending_seconds=pending,
            emulator_running_seconds=running,
            work_dir=Path(tempfile.mkdtemp(prefix=prefix)),
            max_workers_per_function=8,
            write_endpoints=False,
            push=push,
            **config,
        )
    )


def upload_batch(sb: Any, jobs: int, *, key: str = "prompts/bench.jsonl") -> None:
    """One `.jsonl` of `jobs` small requests into the input bucket: a batch, through the S3 door."""
    lines = [
        json.dumps({"prompt": f"bench job {i}: a paper boat on a pond", "size": "640*360"})
        for i in range(jobs)
    ]
    sb.client("s3").put_object(Bucket=sb.physical_id("OutputBucket"), Key=key, Body="\n".join(lines).encode())


def scan_jobs(sb: Any) -> list[dict[str, Any]]:
    """Every job record (the soak's scan: the records, not the stats items)."""
    soak: Any = importlib.import_module("t2v_sandbox.soak")
    records: list[dict[str, Any]] = soak.scan_jobs(sb)
    return records


def wait_all_ended(sb: Any, jobs: int, timeout: float) -> list[dict[str, Any]]:
    """The job records once `jobs` of them exist and all have ended, or as they are at `timeout`."""
    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = scan_jobs(sb)
        if len(records) >= jobs and all(r["status"] in TERMINAL for r in records):
            break
        time.sleep(2.0)
    return records


def run(
    *, jobs: int, budget: int, pending: float, running: float, timeout: float, push: bool = False
) -> dict[str, Any]:
    bench = real_time_sandbox(
        pending=pending,
        running=running,
        push=push,
        prefix="t2v-bench-rate-",
        parameter_overrides={"PollBudgetPerSecond": str(budget)},
    )
    with bench as sb:
        started = time.time()
        upload_batch(sb, jobs)
        records = wait_all_ended(sb, jobs, timeout)
        wall = time.time() - started
        log = sb.emulator.requests()
        tasks = {t["task_id"]: t for t in sb.emulator.tasks()}
    queries = [r for r in log if r["endpoint"] == "query"]
    per_second = Counter(math.floor(r["time"]) for r in queries)
    throttled = sum(1 for r in queries if r.get("status") == 429)
    lags = []
    detect = []  # provider finish -> the status turn whose query saw it (`last_polled_at`)
    polls = []
    first: tuple[float, float] | None = None  # (created, lag) of the job the schedule knew nothing for
    for rec in records:
        task = tasks.get(str(rec.get("task_id")))
        if rec["status"] != "SUCCEEDED" or task is None:
            continue
        created = parse_ts(task["created_at"]).timestamp()
        lag = parse_ts(str(rec["finished_at"])).timestamp() - (created + pending + running)
        lags.append(lag)
        if rec.get("last_polled_at"):
            detect.append(parse_ts(str(rec["last_polled_at"])).timestamp() - (created + pending + running))
        polls.append(int(rec.get("polls") or 0))
        if first is None or created < first[0]:
            first = (created, lag)
    return {
        "jobs": jobs,
        "budget": budget,
        "pending_seconds": pending,
        "running_seconds": running,
        "succeeded": sum(1 for r in records if r["status"] == "SUCCEEDED"),
        "not_finished": jobs - sum(1 for r in records if r["status"] in TERMINAL),
        "wall_seconds": round(wall, 1),
        "queries": len(queries),
        "peak_per_second": max(per_second.values(), default=0),
        "seconds_over_budget": sum(1 for c in per_second.values() if c > budget),
        "throttled_429": throttled,
        "push": push,
        "status_turns_per_job_mean": round(statistics.fmean(polls), 2) if polls else None,
        "provider_queries_per_job": round(len(queries) / jobs, 2),
        "first_job_lag": round(first[1], 2) if first else None,
        "lag_median": round(statistics.median(lags), 2) if lags else None,
        "lag_p90": round(sorted(lags)[int(0.9 * (len(lags) - 1))], 2) if lags else None,
        # Without the download and upload (which wait for the emulator's encoder under load).
        "detect_lag_median": round(statistics.median(detect), 2) if detect else None,
        "detect_lag_p90": round(sorted(detect)[int(0.9 * (len(detect) - 1))], 2) if detect else None,
        "series": [
            per_second.get(s, 0) for s in range(min(per_second, default=0), max(per_second, default=0) + 1)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--budget", type=int, default=4, help="PollBudgetPerSecond (low, so that it binds)")
    parser.add_argument("--pending", type=float, default=2.0)
    parser.add_argument("--running", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    parser.add_argument(
        "--push",
        choices=("on", "off"),
        default=None,
        help="PushCompletion (issue 13); given, the result file says which (-push, -push-off)",
    )
    args = parser.parse_args(argv)
    assert args.budget <= Policy().budget_qps * 2
    result = run(
        jobs=args.jobs,
        budget=args.budget,
        pending=args.pending,
        running=args.running,
        timeout=args.timeout,
        push=args.push == "on",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = {"on": "-push", "off": "-push-off", None: ""}[args.push]
    (args.out / f"sandbox-rate-{args.jobs}x{args.budget}{suffix}.json").write_text(
        json.dumps(result, indent=1)
    )
    print(
        "| push | jobs | budget/s | succeeded | wall s | queries | peak/s | seconds over budget | 429s "
        "| queries/job | lag median s | lag p90 s | first job's lag s | seen median s | seen p90 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    r = result
    print(
        f"| {args.push} | {r['jobs']} | {r['budget']} | {r['succeeded']} | {r['wall_seconds']} | {r['queries']} "
        f"| {r['peak_per_second']} | {r['seconds_over_budget']} | {r['throttled_429']} "
        f"| {r['provider_queries_per_job']} | {r['lag_median']} | {r['lag_p90']} | {r['first_job_lag']} "
        f"| {r['detect_lag_median']} | {r['detect_lag_p90']} |"
    )
    return 0 if r["seconds_over_budget"] == 0 and r["not_finished"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
