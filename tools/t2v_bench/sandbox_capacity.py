"""Issue 20, measured: provider capacity in the sandbox at real time, one file's flood and a second caller.

One `.jsonl` of `--jobs` requests lands in the input bucket (its jobs belong to the sandbox's
default identity) while the emulated account is capped at `--cap` tasks (`--over-cap refuse`:
creates past the cap answer HTTP 429 `Throttling`; `queue`: accepted and held PENDING). The
governor is not told the cap (its ceiling stays the template's `ProviderMaxTasksInFlight`, above
it): it must learn it. Once the file's jobs are queued (WAITING), a second identity sends one job
through the signed API. Checked, each PASS or FAIL:

- every job SUCCEEDED (the file's and the second caller's);
- the emulator never had more than the cap in flight (refuse) or running (queue): its own
  highest, from `GET /admin/capacity`;
- no job ended for capacity (`Throttling`, `Throttling.RateQuota`, `LimitRequests`, `CapacityWaitTimeout`);
- the second caller's job finished before the file's last 10 % (round-robin between owners);
- no capacity lease or queue place left once every job ended.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any, Final

from t2v.times import parse_ts
from t2v_client import ApiClient, Target

from t2v_bench.common import RESULTS_DIR, write_json
from t2v_bench.sandbox_rate import TERMINAL, real_time_sandbox, scan_jobs, upload_batch, wait_all_ended

# t2v_sandbox.soak.CAPACITY_ENDINGS: what a job ended for capacity would carry.
CAPACITY_ENDINGS: Final = frozenset(
    {"Throttling", "Throttling.RateQuota", "LimitRequests", "CapacityWaitTimeout"}
)
SECOND_CALLER: Final = "alice"
SECOND_PROMPT: Final = "the second caller's one job: a kite over a beach"


def emulator_capacity(sb: Any) -> dict[str, Any]:
    """The emulator's own account of its cap and the highest it had, read as a user would."""
    url = f"{sb.emulator.root_url}/admin/capacity"
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - the loopback emulator
        found: dict[str, Any] = json.loads(answer.read())
    return found


def wait_queued(sb: Any, jobs: int, timeout: float) -> tuple[int, int]:
    """Until half of the file's jobs wait in our queue (or `timeout`): (jobs seen, WAITING)."""
    deadline = time.monotonic() + timeout
    seen = waiting = 0
    while time.monotonic() < deadline:
        records = scan_jobs(sb)
        seen, waiting = len(records), sum(1 for r in records if r["status"] == "WAITING")
        if waiting >= jobs // 2:
            break
        time.sleep(1.0)
    return seen, waiting


def _at(record: dict[str, Any], status: str) -> float | None:
    for entry in record.get("history") or []:
        if entry["status"] == status:
            return parse_ts(str(entry["at"])).timestamp()
    return None


def run(
    *, jobs: int, cap: int, mode: str, pending: float, running: float, timeout: float, push: bool
) -> dict[str, Any]:
    bench = real_time_sandbox(
        pending=pending,
        running=running,
        push=push,
        prefix="t2v-bench-capacity-",
        emulator_max_running_tasks=cap,
        emulator_over_cap=mode,
    )
    with bench as sb:
        ceiling = int(sb.stack.parameters["ProviderMaxTasksInFlight"])
        started = time.time()
        upload_batch(sb, jobs, key="prompts/capacity.jsonl")
        seen, waiting = wait_queued(sb, jobs, timeout=min(timeout, 300.0))
        target = Target(str(sb.endpoints["api_url"]), sb.config.region, sb.credentials_as(SECOND_CALLER))
        sent = time.time()
        with ApiClient(target) as client:
            second_id = str(
                client.submit({"prompt": SECOND_PROMPT, "size": "640*360", "duration": 5})["job_id"]
            )
        records = wait_all_ended(sb, jobs + 1, timeout)
        wall = time.time() - started
        capacity = emulator_capacity(sb)
        tasks = {t["task_id"]: t for t in sb.emulator.tasks()}
        item = (
            sb.session.resource("dynamodb", endpoint_url=sb.moto_url)
            .Table(sb.outputs["JobsTableName"])
            .get_item(Key={"pk": "capacity#account"}, ConsistentRead=True)
            .get("Item")
            or {}
        )
    return summarize(
        records=records,
        second_id=second_id,
        jobs=jobs,
        cap=cap,
        mode=mode,
        ceiling=ceiling,
        pending=pending,
        running=running,
        push=push,
        wall=wall,
        sent_after=sent - started,
        queued_when_sent={"jobs": seen, "waiting": waiting},
        capacity=capacity,
        creates=len(tasks),
        leaked=len(item.get("leases") or {}) + sum(int(n) for n in dict(item.get("queued") or {}).values()),
    )


def summarize(
    *, records: list[dict[str, Any]], second_id: str, jobs: int, cap: int, mode: str, **facts: Any
) -> dict[str, Any]:
    """The figures and the verdict from the job records and the emulator's capacity answer."""
    second = next((r for r in records if r["pk"] == second_id), None)
    file_jobs = [r for r in records if r["pk"] != second_id]
    ended_for_capacity = [
        r
        for r in records
        if r["status"] in {"FAILED", "TIMED_OUT"} and r.get("error_code") in CAPACITY_ENDINGS
    ]
    finishes = sorted(parse_ts(str(r["finished_at"])).timestamp() for r in file_jobs if r.get("finished_at"))
    second_end = (
        parse_ts(str(second["finished_at"])).timestamp() if second and second.get("finished_at") else None
    )
    before = sum(1 for t in finishes if second_end is not None and t < second_end)
    capacity = facts["capacity"]
    peak = capacity["max_running"] if mode == "queue" else capacity["max_in_flight"]
    waited = [r for r in file_jobs if _at(r, "WAITING") is not None]
    second_wait = None
    if second is not None and (accepted := _at(second, "ACCEPTED")) is not None:
        admitted = _at(second, "SUBMITTED")
        second_wait = None if admitted is None else round(admitted - accepted, 1)
    generation = facts["pending"] + facts["running"]
    first = min(
        (parse_ts(str(r["created_at"])).timestamp() for r in file_jobs if r.get("created_at")), default=0
    )
    checks = {
        "every job SUCCEEDED": sum(1 for r in records if r["status"] == "SUCCEEDED") == jobs + 1,
        f"at most {cap} {'running' if mode == 'queue' else 'in flight'} at the emulator": peak <= cap,
        "0 failures for capacity": not ended_for_capacity,
        "second caller before the file's last 10 %": second_end is not None
        and before < math.ceil(0.9 * jobs),
        "no lease or queue place left": facts["leaked"] == 0,
    }
    return {
        "jobs": jobs,
        "provider_cap": cap,
        "over_cap": mode,
        "governor_ceiling": facts["ceiling"],
        "pending_seconds": facts["pending"],
        "running_seconds": facts["running"],
        "push": facts["push"],
        "wall_seconds": round(facts["wall"], 1),
        "makespan_seconds": round(finishes[-1] - first, 1) if finishes and first else None,
        "ideal_makespan_seconds": round((jobs + 1) * generation / cap, 1),
        "succeeded": sum(1 for r in records if r["status"] == "SUCCEEDED"),
        "not_finished": jobs + 1 - sum(1 for r in records if r["status"] in TERMINAL),
        "statuses": {
            s: sum(1 for r in records if r["status"] == s) for s in sorted({r["status"] for r in records})
        },
        "failed_for_capacity": len(ended_for_capacity),
        "file_jobs_that_waited": len(waited),
        "capacity_turns_max": max((int(r.get("capacity_turns") or 0) for r in records), default=0),
        "provider_creates": facts["creates"],
        "provider_capacity_refusals": capacity["capacity_refusals"],
        "provider_max_in_flight": capacity["max_in_flight"],
        "provider_max_running": capacity["max_running"],
        "second_sent_after_seconds": round(facts["sent_after"], 1),
        "queued_when_second_sent": facts["queued_when_sent"],
        "second_status": second["status"] if second else None,
        "second_accepted_to_submitted_seconds": second_wait,
        "file_jobs_finished_before_second": before,
        "file_share_finished_before_second": round(before / jobs, 3) if jobs else None,
        "file_wait_median_seconds": _median_wait(waited),
        "leaked_leases": facts["leaked"],
        "checks": checks,
        "pass": all(checks.values()),
    }


def _median_wait(waited: list[dict[str, Any]]) -> float | None:
    waits = []
    for record in waited:
        queued, admitted = _at(record, "WAITING"), _at(record, "SUBMITTED")
        if queued is not None and admitted is not None:
            waits.append(admitted - queued)
    return round(statistics.median(waits), 1) if waits else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument(
        "--cap", type=int, default=8, help="the emulated account's cap (--emulator-max-running-tasks)"
    )
    parser.add_argument("--over-cap", choices=("refuse", "queue"), default="refuse")
    parser.add_argument("--pending", type=float, default=2.0)
    parser.add_argument("--running", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--push", choices=("on", "off"), default="on")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    result = run(
        jobs=args.jobs,
        cap=args.cap,
        mode=args.over_cap,
        pending=args.pending,
        running=args.running,
        timeout=args.timeout,
        push=args.push == "on",
    )
    path = write_json(f"sandbox-capacity-{args.jobs}x{args.cap}-{args.over_cap}", result, args.out)
    r = result
    print(
        f"{r['jobs']} file jobs + 1 from {SECOND_CALLER}, emulator cap {r['provider_cap']} ({r['over_cap']}), "
        f"governor ceiling {r['governor_ceiling']}: {r['succeeded']} SUCCEEDED {r['statuses']}, "
        f"wall {r['wall_seconds']} s, makespan {r['makespan_seconds']} s (ideal {r['ideal_makespan_seconds']} s)"
    )
    print(
        f"emulator highest in flight {r['provider_max_in_flight']}, running {r['provider_max_running']}, "
        f"{r['provider_capacity_refusals']} creates refused of {r['provider_creates']} tasks; "
        f"second caller sent after {r['second_sent_after_seconds']} s "
        f"({r['queued_when_second_sent']['waiting']} waiting), admitted in "
        f"{r['second_accepted_to_submitted_seconds']} s, finished after "
        f"{r['file_jobs_finished_before_second']} of the file's {r['jobs']} jobs"
    )
    for name, ok in r["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"written to {path}")
    return 0 if r["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
