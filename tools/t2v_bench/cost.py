"""Benchmark 5, orchestration cost per job: N jobs through the sandbox (the real template on moto),
priced at AWS list prices per 1,000 videos, the provider's own price excluded.

Each job enters by the REST API (POST /videos) and runs the real state machine against the
DashScope emulator, whose task takes `--generation-seconds` (60 by default) scaled by the
sandbox's time scale, as are the template's Wait states. Measured while the jobs run:

- every execution's history (`get_execution_history`): state transitions as AWS bills Standard
  workflows (each state entered, plus each retry of a Task), Lambda tasks, polls;
- every Lambda invocation (the sandbox's runner, timed) with each function's MemorySize;
- every AWS API request the handlers make (a hook in moto's HTTP front): DynamoDB reads and writes
  by item kind, S3 requests, SNS publishes, EventBridge events, Secrets Manager calls;
- the bytes the handlers log (CloudWatch Logs ingestion).

Re-runnable after a change to the poll schedule: `make bench-cost` (or `python -m
t2v_bench.cost --jobs 20`) writes docs/benchmarks/cost.json and cost.png.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from t2v_bench import prices
from t2v_bench.common import RESULTS_DIR, ROOT, machine, median, pyplot, table, write_json

GOAL_TRANSITIONS = 20
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_FUNCTIONS = (
    "SubmitFunction",
    "StatusFunction",
    "FinalizeFunction",
    "IntakeFunction",
    "ApiFunction",
    "ParkFunction",
    "CallbackFunction",
)
# Lambda's own START/END/REPORT lines, which the sandbox does not write (about 330 bytes together).
_PLATFORM_LOG_BYTES = 330
# Durations closer to AWS than the sandbox's loopback ones: DashScope is across the Pacific from
# us-east-1 (a query ~300 ms), AWS calls take ~10 ms, a 5 s 720p video downloads in ~2 s.
REALISTIC_MS = {"SubmitFunction": 600, "StatusFunction": 350, "FinalizeFunction": 2500, "ApiFunction": 150}


@dataclass
class Recorder:
    """AWS API requests (service, action, item kind) and Lambda invocations, while `active`."""

    active: bool = False
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    invocations: list[tuple[str, float, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_request(self, environ: dict[str, Any]) -> None:
        service, action, kind = classify(environ)
        with self.lock:
            self.requests.append((service, action, kind))

    def note_invocation(self, function: str, ms: float, errored: bool) -> None:
        with self.lock:
            self.invocations.append((function, ms, errored))


def _s3_action(method: str, query: dict[str, list[str]], path: str) -> str:
    has_key = "/" in path.strip("/")
    if method == "PUT":
        return "UploadPart" if "partNumber" in query else ("PutObject" if has_key else "PutBucket")
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "HEAD":
        return "HeadObject"
    return "GetObject" if has_key else "ListObjects"


def classify(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(service, action, DynamoDB item kind) of one request to moto; reads small bodies only."""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = m[1] if m else ("s3" if "X-Amz-Credential" in query else "unsigned")
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    if service == "s3":
        return service, _s3_action(method, query, path), "-"
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = b""
    if 0 < length < 1024 * 1024:
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action = target.rsplit(".", 1)[-1]
    elif service == "lambda":
        action = "Invoke" if path.endswith("/invocations") else method
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or query.get("Action") or [method])[0]
    kind = _item_kind(body) if service == "dynamodb" else "-"
    return service, action, kind


def _item_kind(body: bytes) -> str:
    """`job` for a job record, else the key's prefix (`task`, `idem`, `budget`); `-` when keyless."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return "-"
    key = data.get("Key") or data.get("Item") or {}
    pk = str((key.get("pk") or {}).get("S") or "")
    if not pk:
        return "query" if "KeyConditionExpression" in data else "-"
    return pk.split("#", 1)[0] if "#" in pk else "job"


@contextmanager
def recording(sandbox: Any) -> Iterator[Recorder]:
    """Hook moto's HTTP front and the sandbox's Lambda runner for the duration of the block."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    recorder = Recorder()
    original_call = DomainDispatcherApplication.__call__
    original_invoke = sandbox.runner.invoke

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if recorder.active:
            recorder.note_request(environ)
        return original_call(self, environ, start_response)

    def invoke(fn: Any, event: Any) -> tuple[str, bool]:
        started = time.perf_counter()
        payload, errored = original_invoke(fn, event)
        if recorder.active:
            recorder.note_invocation(fn.function_name, (time.perf_counter() - started) * 1000, errored)
        return payload, errored

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
    sandbox.runner.invoke = invoke
    try:
        yield recorder
    finally:
        DomainDispatcherApplication.__call__ = original_call  # type: ignore[method-assign]
        sandbox.runner.invoke = original_invoke


# --- execution histories -----------------------------------------------------------------------
def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def count_history(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Billed transitions: each state entered, plus every retry (a Task scheduled again in one entry)."""
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    names = Counter(str(e.get("stateEnteredEventDetails", {}).get("name")) for e in entered)
    scheduled = sum(1 for e in events if e["type"] in {"TaskScheduled", "LambdaFunctionScheduled"})
    task_entries = sum(1 for e in entered if e["type"] == "TaskStateEntered")
    retries = max(0, scheduled - task_entries)
    return {
        "transitions": len(entered) + retries,
        "states_entered": len(entered),
        "retries": retries,
        "lambda_tasks": scheduled,
        "polls": names.get("CheckStatus", 0),
        "by_state": dict(names),
        "status": next((e["type"] for e in reversed(events) if e["type"].startswith("Execution")), "?"),
    }


# --- the run -----------------------------------------------------------------------------------
@dataclass
class Settings:
    jobs: int = 20
    concurrency: int = 5
    generation_seconds: float = 60.0
    pending_seconds: float = 10.0
    poll_interval: int | None = None  # None: the template's PollIntervalSeconds default
    time_scale: float | None = None  # None: the sandbox's fast scale (user_sandbox.FAST_TIME_SCALE)
    size: str = "640*360"
    duration: int = 5
    timeout: float = 300.0
    push: bool = False  # PushCompletion: the emulator's pushes wake parked waits (issue 13)


def _wait_done(sfn: Any, arns: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(arns)
    while pending:
        pending = {a for a in pending if sfn.describe_execution(executionArn=a)["status"] == "RUNNING"}
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} executions still running after {timeout} s")
        time.sleep(0.2)


def _log_bytes(log_dir: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_size for p in log_dir.glob("*.log")} if log_dir.is_dir() else {}


def _item_sizes(sandbox: Any, job_ids: list[str]) -> list[int]:
    """Approximate DynamoDB size of each job record (names + values, as JSON)."""
    table_name = sandbox.physical_id("JobsTable")
    table = sandbox.session.resource("dynamodb", endpoint_url=sandbox.moto_url).Table(table_name)
    sizes = []
    for job_id in job_ids:
        item = table.get_item(Key={"pk": job_id}).get("Item") or {}
        sizes.append(len(json.dumps(item, default=str, ensure_ascii=False).encode()))
    return sizes


def measure(settings: Settings, template: Path = ROOT / "template.yaml") -> dict[str, Any]:
    import logging

    from t2v_client import ApiClient, Target, request_body
    from t2v_sandbox.user_sandbox import UserSandbox, config_for

    for name in ("werkzeug", "t2v_sandbox", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from t2v_sandbox.template import load_template
    from t2v_sandbox.user_sandbox import FAST_TIME_SCALE

    scale = settings.time_scale or FAST_TIME_SCALE
    # The template's own poll settings (the sandbox would otherwise poll every second).
    declared = load_template(template).get("Parameters", {})
    overrides = {
        name: str(spec["Default"])
        for name, spec in declared.items()
        if name.startswith("Poll") and "Default" in spec
    }
    if settings.poll_interval is not None:
        overrides["PollIntervalSeconds"] = str(settings.poll_interval)
    with tempfile.TemporaryDirectory(prefix="t2v-bench-cost-") as tmp:
        config = config_for(
            template,
            work_dir=Path(tmp),
            overrides=overrides,
            pending_seconds=settings.pending_seconds * scale,
            running_seconds=(settings.generation_seconds - settings.pending_seconds) * scale,
            write_endpoints=False,
        )
        config.time_scale = scale
        config.push = settings.push
        with UserSandbox(config) as sandbox, recording(sandbox) as recorder:
            parameters = dict(sandbox.stack.parameters) if sandbox.stack else {}
            sfn = sandbox.client("stepfunctions")
            machine_arn = str(sandbox.physical_id("VideoStateMachine"))
            functions = {str(sandbox.physical_id(f)): f for f in _FUNCTIONS if _has(sandbox, f)}
            lam = sandbox.client("lambda")
            memory = {
                f: int(lam.get_function(FunctionName=n)["Configuration"]["MemorySize"])
                for n, f in functions.items()
            }
            session_creds: Any = sandbox.session.get_credentials()
            creds = session_creds.get_frozen_credentials()
            log_dir = sandbox.work_dir / "logs"
            prefix = machine_arn.replace(":stateMachine:", ":execution:")
            with ApiClient(Target(str(sandbox.endpoints["api_url"]), sandbox.config.region, creds)) as api:

                def batch_of(count: int) -> list[str]:
                    ids = []
                    for _ in range(count):
                        prompt = f"bench cost job {uuid.uuid4().hex[:8]}"
                        body = request_body(prompt, size=settings.size, duration=settings.duration)
                        ids.append(str(api.submit(body)["job_id"]))
                    _wait_done(sfn, [f"{prefix}:{j}" for j in ids], settings.timeout)
                    return ids

                # Warm-up, not counted: Lambda keeps containers, so a steady flow of jobs rarely starts
                # one; the sandbox's cold start (a new process) would otherwise swamp the durations.
                batch_of(settings.concurrency)
                time.sleep(0.5)
                logs_before = _log_bytes(log_dir)
                job_ids: list[str] = []
                started = time.monotonic()
                recorder.active = True
                while len(job_ids) < settings.jobs:
                    job_ids += batch_of(min(settings.concurrency, settings.jobs - len(job_ids)))
                # Announcements and the last handler logs land just after the execution ends.
                time.sleep(0.5)
                recorder.active = False
            wall = time.monotonic() - started
            logs_after = _log_bytes(log_dir)
            executions = [count_history(history(sfn, f"{prefix}:{j}")) for j in job_ids]
            item_sizes = _item_sizes(sandbox, job_ids)
    invocations = [(functions.get(name, name), ms, err) for name, ms, err in recorder.invocations]
    log_bytes = {functions.get(k, k): logs_after.get(k, 0) - logs_before.get(k, 0) for k in logs_after}
    return {
        "settings": {**settings.__dict__, "time_scale": scale},
        "machine_during_run": machine(),
        "parameters": parameters,
        "wall_seconds": round(wall, 1),
        "executions": executions,
        "invocations": invocations,
        "memory_mb": memory,
        "requests": [list(r) for r in recorder.requests],
        "log_bytes": log_bytes,
        "job_item_bytes": item_sizes,
    }


def _has(sandbox: Any, logical: str) -> bool:
    try:
        sandbox.physical_id(logical)
    except KeyError:
        return False
    return True


# --- pricing -----------------------------------------------------------------------------------
def price(raw: dict[str, Any], durations: Callable[[str, float], float] | None = None) -> dict[str, Any]:
    """Per-job quantities and the cost per 1,000 videos, by component."""
    jobs = len(raw["executions"])
    per = 1000 / jobs  # scale totals to 1,000 videos
    transitions = [e["transitions"] for e in raw["executions"]]
    req = Counter((s, a) for s, a, _ in raw["requests"])
    kinds = Counter((s, a, k) for s, a, k in raw["requests"] if s == "dynamodb")
    item_kb = math.ceil(median(raw["job_item_bytes"]) / 1024) if raw["job_item_bytes"] else 1
    writes = {"PutItem", "UpdateItem", "DeleteItem"}
    job_writes = sum(n for (_, a, k), n in kinds.items() if a in writes and k == "job")
    other_writes = sum(n for (_, a, k), n in kinds.items() if a in writes and k != "job")
    # A job record carries the GSI keys (kind, created_at): each write is written to the index too.
    wru = job_writes * item_kb * 2 + other_writes
    rru = sum(n for (_, a, _k), n in kinds.items() if a in {"GetItem", "Query", "Scan"}) * max(
        1, math.ceil(item_kb / 4)
    )
    s3_put = sum(
        req[("s3", a)]
        for a in (
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
        )
    )
    s3_get = req[("s3", "GetObject")] + req[("s3", "HeadObject")]
    gb_s = {"arm64": 0.0, "x86_64": 0.0}
    invocations = raw["invocations"]
    for function, ms, _ in invocations:
        billed = math.ceil(durations(function, ms) if durations else ms)
        for arch, _ in gb_s.items():
            gb_s[arch] += billed / 1000 * raw["memory_mb"].get(function, 128) / 1024
    log_bytes = sum(raw["log_bytes"].values()) + _PLATFORM_LOG_BYTES * len(invocations)
    lines = [
        ("Step Functions state transitions", sum(transitions), sum(transitions) * prices.SFN_TRANSITION),
        ("Lambda requests", len(invocations), len(invocations) * prices.LAMBDA_REQUEST),
        ("Lambda GB-s (arm64, as deployed)", gb_s["arm64"], gb_s["arm64"] * prices.LAMBDA_GB_SECOND["arm64"]),
        ("DynamoDB write request units", wru, wru * prices.DDB_WRU),
        ("DynamoDB read request units", rru, rru * prices.DDB_RRU),
        ("S3 PUT-class requests", s3_put, s3_put * prices.S3_PUT_CLASS),
        ("S3 GET-class requests", s3_get, s3_get * prices.S3_GET_CLASS),
        ("SNS publishes", req[("sns", "Publish")], req[("sns", "Publish")] * prices.SNS_PUBLISH),
        (
            "EventBridge events",
            req[("events", "PutEvents")],
            req[("events", "PutEvents")] * prices.EVENTBRIDGE_EVENT,
        ),
        (
            "Secrets Manager calls",
            req[("secretsmanager", "GetSecretValue")],
            req[("secretsmanager", "GetSecretValue")] * prices.SECRETS_CALL,
        ),
        ("API Gateway REST requests (POST)", jobs, jobs * prices.APIGW_REST_REQUEST),
        ("X-Ray traces (1 per job, assumed)", jobs, jobs * prices.XRAY_TRACE),
        ("CloudWatch Logs ingestion, KB", log_bytes / 1024, log_bytes / 1024**3 * prices.LOGS_GB),
    ]
    components = [
        {"component": name, "per_job": qty / jobs, "usd_per_1000": cost * per} for name, qty, cost in lines
    ]
    total = sum(c["usd_per_1000"] for c in components)
    x86 = gb_s["x86_64"] * prices.LAMBDA_GB_SECOND["x86_64"] * per
    by_function = Counter(f for f, _, _ in invocations)
    return {
        "jobs": jobs,
        "transitions_per_job": {
            "median": median(transitions),
            "min": min(transitions),
            "max": max(transitions),
        },
        "polls_per_job": median([e["polls"] for e in raw["executions"]]),
        "lambda_invocations_per_job": len(invocations) / jobs,
        "invocations_by_function_per_job": {f: n / jobs for f, n in by_function.items()},
        "median_ms_by_function": {
            f: round(median([ms for g, ms, _ in invocations if g == f]), 1) for f in by_function
        },
        "components": components,
        "usd_per_1000": total,
        "usd_per_1000_if_x86": total - components[2]["usd_per_1000"] + x86,
        "job_item_kb": item_kb,
        "aws_requests_per_job": {f"{s}:{a}": n / jobs for (s, a), n in sorted(req.items())},
    }


def run(
    settings: Settings, out_dir: Path = RESULTS_DIR, name: str = "cost", raw: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Measure (or take `raw` from an earlier run, to re-price it) and write JSON, PNG and the table."""
    raw = raw or measure(settings)
    measured = price(raw)
    realistic = price(raw, lambda f, ms: max(ms, REALISTIC_MS.get(f, ms)))
    bad = [e for e in raw["executions"] if e["status"] != "ExecutionSucceeded"]
    data = {
        "benchmark": "cost",
        "price_date": prices.PRICE_DATE,
        "goal_transitions": GOAL_TRANSITIONS,
        "failed_executions": len(bad),
        "measured": measured,
        "with_realistic_durations": realistic,
        "realistic_ms": REALISTIC_MS,
        "raw": raw,
    }
    write_json(name, data, out_dir)
    _plot(data, out_dir / f"{name}.png")
    print(report(data))
    return data


def report(data: dict[str, Any]) -> str:
    m, r = data["measured"], data["with_realistic_durations"]
    s = data["raw"]["settings"]
    t = m["transitions_per_job"]
    head = (
        f"Orchestration cost: {m['jobs']} jobs of a {s['generation_seconds']:.0f} s generation, "
        f"PollIntervalSeconds {data['raw']['parameters'].get('PollIntervalSeconds')} "
        f"(time scale {s['time_scale']}); prices {data['price_date']}\n"
        f"state transitions per job: median {t['median']:.0f} (min {t['min']}, max {t['max']}), goal ≤ "
        f"{data['goal_transitions']}: {'met' if t['median'] <= data['goal_transitions'] else 'NOT met'}; polls per job "
        f"{m['polls_per_job']:.0f}; Lambda invocations per job {m['lambda_invocations_per_job']:.2f} "
        f"({', '.join(f'{k.removesuffix("Function").lower()} {v:.2f}' for k, v in m['invocations_by_function_per_job'].items())}); "
        f"failed executions {data['failed_executions']}\n"
    )
    rows = [
        [c["component"], round(c["per_job"], 4), f"{c['usd_per_1000']:.4f}", f"{rc['usd_per_1000']:.4f}"]
        for c, rc in zip(m["components"], r["components"], strict=True)
    ]
    rows.append(["total (arm64)", "", f"{m['usd_per_1000']:.4f}", f"{r['usd_per_1000']:.4f}"])
    rows.append(["total if x86_64", "", f"{m['usd_per_1000_if_x86']:.4f}", f"{r['usd_per_1000_if_x86']:.4f}"])
    headers = [
        "component",
        "per job",
        "USD / 1,000 videos (sandbox durations)",
        "USD / 1,000 (realistic durations)",
    ]
    return head + table(headers, rows)


def _plot(data: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    comps = [c for c in data["measured"]["components"] if c["usd_per_1000"] > 0]
    real = {c["component"]: c["usd_per_1000"] for c in data["with_realistic_durations"]["components"]}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    names = [c["component"] for c in comps]
    ys = range(len(names))
    axes[0].barh([y + 0.2 for y in ys], [c["usd_per_1000"] for c in comps], 0.4, label="sandbox durations")
    axes[0].barh([y - 0.2 for y in ys], [real[n] for n in names], 0.4, label="realistic durations")
    axes[0].set_yticks(list(ys), names, fontsize=7)
    axes[0].set_xlabel("USD per 1,000 videos")
    axes[0].legend(fontsize=7)
    transitions = [e["transitions"] for e in data["raw"]["executions"]]
    axes[1].hist(transitions, bins=range(min(transitions), max(transitions) + 2), align="left")
    axes[1].axvline(data["goal_transitions"], color="red", linestyle="--", label="goal")
    axes[1].set_xlabel("state transitions per job")
    axes[1].set_ylabel("jobs")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="t2v_bench.cost", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=5, help="jobs in flight at once")
    parser.add_argument("--generation-seconds", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=int, default=None, help="override PollIntervalSeconds")
    parser.add_argument("--time-scale", type=float, default=None, help="default: the sandbox's fast scale")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--reprice", type=Path, help="re-price an earlier cost.json (after editing prices.py)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument(
        "--push",
        choices=("on", "off"),
        default="off",
        help="PushCompletion (issue 13); on writes cost-push.*",
    )
    args = parser.parse_args(argv)
    if args.reprice:
        earlier = json.loads(args.reprice.read_text())
        data = run(Settings(), args.reprice.parent, args.reprice.stem, raw=earlier["raw"])
        return 0
    settings = Settings(
        jobs=args.jobs,
        concurrency=args.concurrency,
        generation_seconds=args.generation_seconds,
        pending_seconds=min(10.0, args.generation_seconds / 6),
        poll_interval=args.poll_interval,
        time_scale=args.time_scale,
        push=args.push == "on",
    )
    data = run(settings, args.out, "cost-push" if settings.push else "cost")
    ok = (
        data["measured"]["transitions_per_job"]["median"] <= GOAL_TRANSITIONS
        and not data["failed_executions"]
    )
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
