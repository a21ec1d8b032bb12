"""Issue 24, arithmetic (not measured on AWS): what 100,000 lines cost through batches against the
chain they replaced, priced at AWS list prices (`prices.py`) per 1,000 lines.

Batch (`statemachine/batch.asl.json`): one execution per file: ReadFile, Accepted, Lines (a
Distributed Map: one STANDARD child execution per 10 lines), Collect, Collected, Done. AWS bills one
transition per child execution the Distributed Map starts, plus each child's own states as
Standard transitions ("Transitions in Distributed Map state",
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html, read 2026-12): per
child RecordLines and RunLines; per line RunLine (the inline Map's iterations are not billed
themselves), LineEnded when a line's workflow failed. Each line then runs the video workflow.

Chain (before batches): intake read a `.jsonl` (at most 1,000 lines) 250 lines per invocation,
invoking itself for the rest; each line one video execution (its Stagger Wait included) and its own
SNS + EventBridge announcement.

The per-line video workflow is the same in both (7 transitions: Stagger, Submit, WaitForVideo,
CheckStatus, RouteByState, Finalize, Done: the cost benchmark's measured median with the adaptive
schedule, docs/benchmarks.md benchmark 5) and is priced in both totals.

`python -m t2v_bench.batch_cost [--lines 100000]` prints the table and writes batch-cost.json.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from t2v_bench import prices
from t2v_bench.common import RESULTS_DIR, ROOT, table, write_json

BATCH_ASL: Final = ROOT / "statemachine" / "batch.asl.json"
CHAIN_FILE_LINES: Final = 1000  # the chain's cap per .jsonl (MAX_JSONL_LINES)
CHAIN_LINES_PER_INVOCATION: Final = 250  # the chain's intake: lines per (self-)invocation


def lines_per_child(asl: Path = BATCH_ASL) -> int:
    """ItemBatcher.MaxItemsPerBatch of the batch workflow's Distributed Map."""
    definition = json.loads(asl.read_text())
    return int(definition["States"]["Lines"]["ItemBatcher"]["MaxItemsPerBatch"])


LINES_PER_CHILD: Final = lines_per_child()


@dataclass(frozen=True)
class Assumptions:
    """Everything the arithmetic assumes; each figure says where it comes from."""

    # The video workflow per line (docs/benchmarks.md, benchmark 5: measured median, adaptive schedule).
    video_transitions: int = 7
    # Its Lambda calls (submit, status, finalize) at cost.REALISTIC_MS, at the template's MemorySize.
    video_lambda: tuple[tuple[int, int], ...] = ((600, 256), (350, 256), (2500, 512))
    # Its DynamoDB write units after the job's creation (benchmark 5: 45 per job with push off, less
    # the creating write of a ~2 KB record projected into the GSI: 4) and its S3 PUTs (video + metadata).
    video_wru: int = 41
    video_s3_puts: int = 4
    job_record_wru: int = 4  # a ~2 KB job record, written twice (the table and the by_created GSI)
    # Batch function (MemorySize 1024): durations assumed, not measured.
    batch_memory_mb: int = 1024
    read_ms_base: float = 1000.0
    read_ms_per_line: float = 0.05
    lines_ms: float = 300.0  # one RecordLines call (its 10 lines' records)
    collect_ms_base: float = 1000.0
    collect_ms_per_line: float = 0.05
    collects: int = 1  # the Map returns once every line's .sync ended: the first look is done
    # DynamoDB per batch line: job record (4), active-set add (1), settle (1); per child: the batch's
    # counters (1); per batch: the record READING, RUNNING, ended, the budget reservation (4).
    batch_line_wru: int = 6
    batch_child_wru: int = 1
    batch_wru: int = 4
    batch_line_rru: int = 1  # Collect reads every line's job once (strongly consistent, <= 4 KB)
    # S3 per batch: GET the file, PUT the lines file, the ItemReader's GET of it (one request
    # assumed; AWS may read a large object in several ranged GETs), PUT results and summary.
    batch_s3_gets: int = 2
    batch_s3_puts: int = 3
    # Chain: intake (256 MB) per invocation, assumed 25 ms a line (a job record and a StartExecution)
    # and a GET of the file per invocation.
    intake_memory_mb: int = 256
    intake_ms_per_line: float = 25.0
    failed_share: float = 0.0  # lines whose video workflow failed (a batch's LineEnded)


def batch_transitions(
    *,
    lines: int,
    valid: int,
    caught: int = 0,
    collects: int = 1,
    reads: int = 1,
    records: int | None = None,
    per_child: int = LINES_PER_CHILD,
) -> dict[str, int]:
    """The batch workflow's billed transitions by arithmetic from batch.asl.json (video workflows not
    included). `lines`: non-blank lines (the Map's items); `valid`: lines started (RunLine);
    `caught`: lines whose workflow failed (LineEnded); `collects`: Collect looks (WaitForLines
    between them); `reads`/`records`: ReadFile/RecordLines attempts (retries are billed).

    Parent: ReadFile, Accepted, Lines, Collect + Collected per look, WaitForLines between looks,
    Done. Each child: its start (billed by the Distributed Map), RecordLines, RunLines; RunLine per
    valid line; LineEnded per caught line.
    """
    children = math.ceil(lines / per_child)
    records = children if records is None else records
    parent = reads + 1 + 1 + 2 * collects + max(0, collects - 1) + 1
    child = children + records + children + valid + caught
    return {"children": children, "parent": parent, "children_total": child, "total": parent + child}


def _gb_s(ms: float, memory_mb: int) -> float:
    return math.ceil(ms) / 1000 * memory_mb / 1024


def video_quantities(lines: int, a: Assumptions) -> dict[str, float]:
    """The per-line video workflow, the same in both paths."""
    return {
        "transitions": a.video_transitions * lines,
        "lambda_requests": len(a.video_lambda) * lines,
        "lambda_gb_s": sum(_gb_s(ms, mb) for ms, mb in a.video_lambda) * lines,
        "ddb_wru": a.video_wru * lines,
        "ddb_rru": 0.0,
        "s3_puts": a.video_s3_puts * lines,
        "s3_gets": 0.0,
        "sns": 0.0,
        "events": 0.0,
    }


def batch_quantities(lines: int, a: Assumptions) -> dict[str, float]:
    """One batch of `lines` (at most MAX_BATCH_LINES: 100,000): orchestration only."""
    failed = round(lines * a.failed_share)
    t = batch_transitions(lines=lines, valid=lines, caught=failed, collects=a.collects)
    children = t["children"]
    read = _gb_s(a.read_ms_base + a.read_ms_per_line * lines, a.batch_memory_mb)
    collect = _gb_s(a.collect_ms_base + a.collect_ms_per_line * lines, a.batch_memory_mb) * a.collects
    return {
        "transitions": t["total"],
        "lambda_requests": 1 + children + a.collects,
        "lambda_gb_s": read + children * _gb_s(a.lines_ms, a.batch_memory_mb) + collect,
        "ddb_wru": a.batch_line_wru * lines + a.batch_child_wru * children + a.batch_wru,
        "ddb_rru": a.batch_line_rru * lines * a.collects,
        "s3_puts": a.batch_s3_puts,
        "s3_gets": a.batch_s3_gets,
        "sns": 1,
        "events": 1,
    }


def chain_quantities(lines: int, a: Assumptions) -> dict[str, float]:
    """`lines` through the chain: files of at most 1,000 lines, 250 per intake invocation."""
    files = math.ceil(lines / CHAIN_FILE_LINES)
    invocations = sum(
        math.ceil(min(CHAIN_FILE_LINES, lines - f * CHAIN_FILE_LINES) / CHAIN_LINES_PER_INVOCATION)
        for f in range(files)
    )
    return {
        "transitions": 0,  # each line's video execution (Stagger included) is the video workflow
        "lambda_requests": invocations,
        "lambda_gb_s": _gb_s(a.intake_ms_per_line * CHAIN_LINES_PER_INVOCATION, a.intake_memory_mb)
        * invocations,
        "ddb_wru": a.job_record_wru * lines,
        "ddb_rru": 0.0,
        "s3_puts": 0.0,
        "s3_gets": invocations,  # each invocation reads the file again
        "sns": lines,
        "events": lines,
    }


UNIT_PRICES: Final = {
    "transitions": ("Step Functions state transitions", prices.SFN_TRANSITION),
    "lambda_requests": ("Lambda requests", prices.LAMBDA_REQUEST),
    "lambda_gb_s": ("Lambda GB-s (arm64)", prices.LAMBDA_GB_SECOND["arm64"]),
    "ddb_wru": ("DynamoDB write request units", prices.DDB_WRU),
    "ddb_rru": ("DynamoDB read request units", prices.DDB_RRU),
    "s3_puts": ("S3 PUT-class requests", prices.S3_PUT_CLASS),
    "s3_gets": ("S3 GET-class requests", prices.S3_GET_CLASS),
    "sns": ("SNS publishes", prices.SNS_PUBLISH),
    "events": ("EventBridge events", prices.EVENTBRIDGE_EVENT),
}


def _plus(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
    return {k: x[k] + y[k] for k in x}


def usd(quantities: dict[str, float]) -> float:
    return sum(quantities[k] * UNIT_PRICES[k][1] for k in UNIT_PRICES)


def compare(lines: int = 100_000, a: Assumptions | None = None) -> dict[str, Any]:
    """Per 1,000 lines, by component: batch vs chain, each with the video workflow included."""
    a = a or Assumptions()
    per = 1000 / lines
    video = video_quantities(lines, a)
    batch_only, chain_only = batch_quantities(lines, a), chain_quantities(lines, a)
    batch, chain = _plus(batch_only, video), _plus(chain_only, video)
    rows = [
        {
            "component": name,
            "batch_per_1000": batch[k] * per,
            "chain_per_1000": chain[k] * per,
            "batch_usd_per_1000": batch[k] * unit * per,
            "chain_usd_per_1000": chain[k] * unit * per,
        }
        for k, (name, unit) in UNIT_PRICES.items()
    ]
    return {
        "lines": lines,
        "kind": "arithmetic, not measured on AWS",
        "prices": prices.PRICE_DATE,
        "assumptions": asdict(a),
        "batch_workflow_transitions": batch_transitions(
            lines=lines, valid=lines, caught=round(lines * a.failed_share), collects=a.collects
        ),
        "rows": rows,
        "orchestration_only_usd_per_1000": {"batch": usd(batch_only) * per, "chain": usd(chain_only) * per},
        "total_usd_per_1000": {"batch": usd(batch) * per, "chain": usd(chain) * per},
        "transitions_per_1000": {"batch": batch["transitions"] * per, "chain": chain["transitions"] * per},
        "invocations_per_1000": {
            "batch": batch["lambda_requests"] * per,
            "chain": chain["lambda_requests"] * per,
        },
    }


def _qty(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def render(result: dict[str, Any]) -> str:
    rows = [
        (
            r["component"],
            _qty(r["batch_per_1000"]),
            _qty(r["chain_per_1000"]),
            f"{r['batch_usd_per_1000']:.4f}",
            f"{r['chain_usd_per_1000']:.4f}",
        )
        for r in result["rows"]
    ]
    only, total = result["orchestration_only_usd_per_1000"], result["total_usd_per_1000"]
    rows.append(
        (
            "of which orchestration (without the video workflow)",
            "",
            "",
            f"{only['batch']:.4f}",
            f"{only['chain']:.4f}",
        )
    )
    rows.append(("**total**", "", "", f"**{total['batch']:.4f}**", f"**{total['chain']:.4f}**"))
    return table(
        ("component (per 1,000 lines)", "batch", "chain", "batch USD", "chain USD"),
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--failed-share", type=float, default=0.0, help="lines whose workflow failed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    result = compare(args.lines, Assumptions(failed_share=args.failed_share))
    path = write_json("batch-cost", result, args.out)
    print(f"{args.lines:,} lines, arithmetic at list prices ({result['prices']}), not measured on AWS")
    print(render(result))
    t = result["batch_workflow_transitions"]
    print(
        f"batch workflow: {t['total']:,} transitions (parent {t['parent']}, {t['children']:,} children "
        f"{t['children_total']:,}) = {t['total'] / args.lines:.3f} per line, on top of the video workflow's"
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
