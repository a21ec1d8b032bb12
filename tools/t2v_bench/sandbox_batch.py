"""Issue 24, measured: one `.jsonl` batch through the sandbox (the real template, both state machines,
the handlers) against the DashScope emulator, capped.

A file of `--lines` requests, `--bad` of them refused lines spread through it (invalid JSON, a bad
size, a missing prompt, in turn), lands under `prompts/`. The emulated account is capped at `--cap`
tasks in flight (creates past it answer HTTP 429); the governor's ceiling `ProviderMaxTasksInFlight`
is `--ceiling` (above the cap), so it must learn the cap. Timers run at the sandbox's fast time scale
(`config_for`, as the e2e tier does). Checked, each PASS or FAIL:

- every good line SUCCEEDED (its results line, and its job record);
- every bad line is in `results/<batch>.jsonl` as FAILED with its error;
- the results hold exactly one line per non-blank input line, in line order;
- exactly one batch announcement on SNS and no per-line one (an SQS queue subscribed to the topic);
- the emulator's own highest in flight (`GET /admin/capacity`) is at most the cap.

Reported: the wall time from the upload to the batch's end (its record ended); Lambda invocations per
line, counted by wrapping the sandbox's LambdaRunner.invoke (every invocation of every function, the
batch function's by action); state transitions per line: the video executions' billed transitions
counted from their histories (cost.count_history), plus the batch workflow's own, which is
ARITHMETIC from the ASL and the counts seen (moto runs a Distributed Map's children as threads, not
executions with histories of their own).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from t2v_bench.batch_cost import batch_transitions
from t2v_bench.common import RESULTS_DIR, ROOT, write_json
from t2v_bench.cost import count_history, history, recording
from t2v_bench.sandbox_capacity import emulator_capacity

ENDED: Final = frozenset({"COMPLETED", "CANCELED", "REFUSED"})
BAD_KINDS: Final = ("invalid JSON", "bad size", "missing prompt")
SMALL: Final = {"size": "640*360", "duration": 5}


def batch_file(lines: int, bad: int, tag: str) -> tuple[list[str], dict[int, str]]:
    """The file's lines and {1-based line number: kind} of the refused ones, spread evenly."""
    text = [
        json.dumps({"prompt": f"batch bench {tag} line {n}: a paper boat", **SMALL})
        for n in range(1, lines + 1)
    ]
    bad_lines: dict[int, str] = {}
    for i in range(bad):
        number = 1 + (2 * i + 1) * lines // (2 * bad)  # the middle of each of `bad` equal stretches
        kind = BAD_KINDS[i % len(BAD_KINDS)]
        text[number - 1] = {
            "invalid JSON": "{not json",
            "bad size": json.dumps({"prompt": f"batch bench {tag} bad size", "size": "999*999"}),
            "missing prompt": json.dumps({"size": "640*360"}),
        }[kind]
        bad_lines[number] = kind
    return text, bad_lines


def run(
    *, lines: int, bad: int, cap: int, ceiling: int, pending: float, running: float, timeout: float
) -> dict[str, Any]:
    from t2v_sandbox.user_sandbox import Subscriber, UserSandbox, config_for, topic_arn

    for name in ("werkzeug", "t2v_sandbox", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    tag = f"{int(time.time()) % 100000}"
    text, bad_lines = batch_file(lines, bad, tag)
    with tempfile.TemporaryDirectory(prefix="t2v-bench-batch-") as tmp:
        config = config_for(
            ROOT / "template.yaml",
            work_dir=Path(tmp),
            overrides={"PollIntervalSeconds": "1", "ProviderMaxTasksInFlight": str(ceiling)},
            pending_seconds=pending,
            running_seconds=running,
            write_endpoints=False,
        )
        config.emulator_max_running_tasks = cap
        config.emulator_over_cap = "refuse"
        with UserSandbox(config) as started_sandbox, recording(started_sandbox) as recorder:
            sb: Any = started_sandbox
            outcomes = Subscriber.attach(sb, topic_arn(sb), name="t2v-bench-batch-outcomes")
            functions = {str(sb.physical_id(f)): f for f in _functions(sb)}
            actions: Counter[str] = Counter()
            counted = sb.runner.invoke

            def invoke(fn: Any, event: Any) -> tuple[str, bool]:
                if recorder.active and functions.get(fn.function_name) == "BatchFunction":
                    action = event.get("action") if isinstance(event, dict) else None
                    actions[str(action)] += 1
                result: tuple[str, bool] = counted(fn, event)
                return result

            sb.runner.invoke = invoke
            table = sb.session.resource("dynamodb", endpoint_url=sb.moto_url).Table(
                sb.outputs["JobsTableName"]
            )
            bucket = sb.outputs["OutputBucketName"]
            key = f"prompts/batch-bench-{tag}.jsonl"
            recorder.active = True
            started = time.time()
            sb.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(text).encode())
            item = _wait_ended(table, key, started + timeout)
            wall = time.time() - started
            time.sleep(1.0)  # the announcement and the last handler logs land just after
            recorder.active = False
            announcements = _wait_announced(outcomes, item.get("batch_id"), timeout=20.0)
            messages = [m["message"] for m in outcomes.drain()]
            results = _results(sb, item)
            capacity = emulator_capacity(sb)
            sfn = sb.client("stepfunctions")
            video = str(sb.physical_id("VideoStateMachine")).replace(":stateMachine:", ":execution:")
            executions = _video_histories(
                sfn,
                video,
                [str(r["job_id"]) for r in results if r.get("job_id") and r["line"] not in bad_lines],
            )
            batch_machine = str(sb.physical_id("BatchStateMachine")).replace(":stateMachine:", ":execution:")
            parent = _parent_history(sfn, f"{batch_machine}:{item.get('batch_id')}")
            records = {
                r["line"]: table.get_item(Key={"pk": r["job_id"]}).get("Item") or {}
                for r in results
                if r.get("job_id")
            }
    invocations = Counter(functions.get(name, name) for name, _, _ in recorder.invocations)
    requests = Counter(f"{s}:{a}" for s, a, _ in recorder.requests)
    return summarize(
        lines=lines,
        text=text,
        bad_lines=bad_lines,
        cap=cap,
        ceiling=ceiling,
        pending=pending,
        running=running,
        wall=wall,
        item=item,
        results=results,
        records=records,
        announcements=announcements,
        messages=messages,
        capacity=capacity,
        executions=executions,
        parent=parent,
        invocations=invocations,
        actions=actions,
        requests=requests,
    )


def _functions(sb: Any) -> list[str]:
    names = []
    for logical in (
        "IntakeFunction",
        "BatchFunction",
        "SubmitFunction",
        "StatusFunction",
        "FinalizeFunction",
        "ApiFunction",
        "ParkFunction",
        "CallbackFunction",
        "SweeperFunction",
    ):
        try:
            sb.physical_id(logical)
        except KeyError:
            continue
        names.append(logical)
    return names


def _wait_ended(table: Any, key: str, deadline: float) -> dict[str, Any]:
    """The batch's record once ended (or as it is at the deadline)."""
    found: dict[str, Any] = {}
    while time.time() < deadline:
        items = table.scan(
            FilterExpression="begins_with(pk, :b) AND #f.#k = :key",
            ExpressionAttributeNames={"#f": "file", "#k": "key"},
            ExpressionAttributeValues={":b": "batch#", ":key": key},
        )["Items"]
        if items:
            found = dict(items[0])
            found = table.get_item(Key={"pk": found["pk"]}, ConsistentRead=True).get("Item") or found
            if found.get("status") in ENDED:
                return found
        time.sleep(2.0)
    return found


def _wait_announced(outcomes: Any, batch_id: Any, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            m["message"]
            for m in outcomes.drain()
            if m["message"].get("batch_id") == batch_id and "job_id" not in m["message"]
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _results(sb: Any, item: dict[str, Any]) -> list[dict[str, Any]]:
    if not item.get("results_key"):
        return []
    body = sb.client("s3").get_object(Bucket=item["results_bucket"], Key=item["results_key"])["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _video_histories(sfn: Any, prefix: str, job_ids: list[str]) -> list[dict[str, Any]]:
    """Each started line's video execution, counted (a refused line's job has none)."""
    counted = []
    for job_id in job_ids:
        try:
            counted.append(count_history(history(sfn, f"{prefix}:{job_id}")))
        except sfn.exceptions.ExecutionDoesNotExist:
            counted.append({"transitions": 0, "by_state": {}, "status": "NoExecution"})
    return counted


def _parent_history(sfn: Any, arn: str) -> dict[str, Any] | None:
    """The batch execution's own history as moto keeps it (its children's states are not in it)."""
    try:
        return count_history(history(sfn, arn))
    except Exception:  # noqa: BLE001 - a cross-check only; moto may keep none
        return None


def summarize(
    *, lines: int, text: list[str], bad_lines: dict[int, str], cap: int, **f: Any
) -> dict[str, Any]:
    results: list[dict[str, Any]] = f["results"]
    item: dict[str, Any] = f["item"]
    numbers = [n for n, line in enumerate(text, start=1) if line.strip()]
    by_line = {r["line"]: r for r in results}
    good = [n for n in numbers if n not in bad_lines]
    good_ok = all(
        by_line.get(n, {}).get("status") == "SUCCEEDED"
        and (f["records"].get(n) or {}).get("status") == "SUCCEEDED"
        for n in good
    )
    bad_ok = all(
        by_line.get(n, {}).get("status") == "FAILED" and (by_line.get(n, {}).get("error") or {}).get("code")
        for n in bad_lines
    )
    line_messages = [m for m in f["messages"] if m.get("job_id")]
    peak = int(f["capacity"].get("max_in_flight") or 0)
    checks = {
        f"every good line SUCCEEDED ({len(good)})": bool(results) and good_ok,
        f"every bad line FAILED in the results with its error ({len(bad_lines)})": bool(results) and bad_ok,
        "exactly one results line per non-blank input line, in order": [r["line"] for r in results]
        == numbers,
        "exactly one batch announcement on SNS": len(f["announcements"]) == 1,
        "no per-line announcement": not line_messages,
        f"emulator's highest in flight <= cap {cap}": peak <= cap,
    }
    executions: list[dict[str, Any]] = f["executions"]
    video_transitions = sum(e["transitions"] for e in executions)
    caught = sum(1 for e in executions if e["status"] != "ExecutionSucceeded")
    actions: Counter[str] = f["actions"]
    arithmetic = batch_transitions(
        lines=len(numbers),
        valid=len(executions),
        caught=caught,
        collects=max(1, actions.get("collect", 1)),
        reads=max(1, actions.get("read", 1)),
        records=actions.get("lines") or None,
    )
    invocations: Counter[str] = f["invocations"]
    total_invocations = sum(invocations.values())
    n = len(numbers)
    return {
        "lines": lines,
        "non_blank_lines": n,
        "bad_lines": {str(k): v for k, v in bad_lines.items()},
        "provider_cap": cap,
        "over_cap": "refuse",
        "governor_ceiling": f["ceiling"],
        "pending_seconds": f["pending"],
        "running_seconds": f["running"],
        "batch_id": item.get("batch_id"),
        "batch_status": item.get("status"),
        "wall_seconds": round(f["wall"], 1),
        "results_statuses": dict(Counter(r["status"] for r in results)),
        "announcements": len(f["announcements"]),
        "line_announcements": len(line_messages),
        "provider_max_in_flight": peak,
        "provider_capacity_refusals": f["capacity"].get("capacity_refusals"),
        "lambda_invocations": dict(invocations),
        "batch_function_by_action": dict(actions),
        "lambda_invocations_total": total_invocations,
        "lambda_invocations_per_line": round(total_invocations / n, 3) if n else None,
        "lambda_invocations_counted_by": "a wrapper around the sandbox's LambdaRunner.invoke (every function)",
        "video_executions": len(executions),
        "video_transitions_total": video_transitions,
        "video_transitions_per_execution": round(video_transitions / len(executions), 2)
        if executions
        else None,
        "video_transitions_by_state": dict(sum((Counter(e["by_state"]) for e in executions), Counter())),
        "batch_transitions_arithmetic": arithmetic,
        "batch_transitions_note": "arithmetic from batch.asl.json and the counts seen: moto runs "
        "Distributed Map children as threads, with no histories",
        "batch_parent_history_moto": f["parent"],
        "transitions_per_line": round((video_transitions + arithmetic["total"]) / n, 2) if n else None,
        "aws_requests": dict(f["requests"]),
        "checks": checks,
        "pass": all(checks.values()),
    }


def default_timeout(lines: int) -> float:
    """Seconds to wait for the batch: scales with the lines (a loaded 2-core box ran 200 lines at 0.25 a second)."""
    return 900.0 + 6.0 * lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--bad", type=int, default=20)
    parser.add_argument("--cap", type=int, default=8, help="the emulated account's cap (refuse mode)")
    parser.add_argument("--ceiling", type=int, default=16, help="ProviderMaxTasksInFlight (above the cap)")
    parser.add_argument("--pending", type=float, default=0.5)
    parser.add_argument("--running", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=None, help="default: 900 + 6 s a line")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if not 0 <= args.bad < args.lines or args.ceiling <= args.cap:
        parser.error("need 0 <= --bad < --lines and --ceiling > --cap")
    result = run(
        lines=args.lines,
        bad=args.bad,
        cap=args.cap,
        ceiling=args.ceiling,
        pending=args.pending,
        running=args.running,
        timeout=args.timeout or default_timeout(args.lines),
    )
    path = write_json(f"sandbox-batch-{args.lines}x{args.cap}", result, args.out)
    r = result
    a = r["batch_transitions_arithmetic"]
    print(
        f"{r['lines']} lines ({len(r['bad_lines'])} refused), emulator cap {r['provider_cap']} (refuse), "
        f"governor ceiling {r['governor_ceiling']}: batch {r['batch_status']}, results {r['results_statuses']}"
    )
    print(f"wall time, upload to the batch's end: {r['wall_seconds']} s")
    print(
        f"Lambda invocations: {r['lambda_invocations_total']} = {r['lambda_invocations_per_line']} per line "
        f"({r['lambda_invocations']}; batch function {r['batch_function_by_action']}; "
        f"counted by {r['lambda_invocations_counted_by']})"
    )
    print(
        f"state transitions: video {r['video_transitions_total']} from {r['video_executions']} histories "
        f"({r['video_transitions_per_execution']} each) + batch workflow {a['total']} by arithmetic "
        f"(parent {a['parent']}, {a['children']} children {a['children_total']}) = "
        f"{r['transitions_per_line']} per line"
    )
    print(
        f"emulator highest in flight {r['provider_max_in_flight']} (cap {r['provider_cap']}), "
        f"{r['provider_capacity_refusals']} creates refused; announcements {r['announcements']} batch, "
        f"{r['line_announcements']} per line"
    )
    for name, ok in r["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    print(f"written to {path}")
    return 0 if r["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
