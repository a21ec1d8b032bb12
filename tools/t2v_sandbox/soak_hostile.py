"""Hostile prompt files for the soak: what a user may plausibly upload, under the 1 MiB cap or over it.

Oversized `.txt` prompts (300 KB, 600 KB), a `.json` over the cap, `.jsonl` lines with NaN, Infinity
and 1e999, nesting deeper than DynamoDB takes, a 350 KB first line, and a file of many lines, valid
and not. A `.jsonl` is a batch (docs/batches.md): its lines are quiet (never announced on their own;
`t2v_sandbox.soak_batches` judges the batch and its one announcement). The promise checked here is
the one per line: every non-blank line ends as exactly one job; a refused line ends FAILED
`InvalidRequest` with a bounded record; a line of a `.txt` or `.json` file is announced by exactly
one SNS message and one EventBridge completion event. Valid lines are planned jobs like any other
(door `s3-hostile`), judged from the provider's record by the soak's Judge; this module judges the
refused lines and counts lost lines.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from t2v_sandbox.soak_batches import PlannedBatch
from t2v_sandbox.user_sandbox import UserSandbox

DOOR: Final = "s3-hostile"
# A refused record keeps a digest and a prefix: far under DynamoDB's 400 KB and SNS's 256 KB.
MAX_REFUSED_RECORD_BYTES: Final = 8 * 1024


@dataclass
class Line:
    number: int  # 1-based for .jsonl, 0 for a whole-file format
    reason: str | None  # a piece of the expected error message; None: a valid request
    prompt: str | None = None  # of a valid line: the planned job's prompt


@dataclass
class HostileFile:
    name: str
    body: bytes
    lines: list[Line]
    key: str = ""
    version: str = ""
    bucket: str = ""
    job_ids: dict[int, str] = field(default_factory=dict)

    @property
    def is_batch(self) -> bool:
        return self.name.lower().endswith(".jsonl")

    def as_batch(self) -> PlannedBatch:
        """A `.jsonl`'s batch, once uploaded: its lines (a valid one's prompt) are its planned jobs."""
        batch = PlannedBatch(self.name, "hostile", {line.number: line.prompt for line in self.lines})
        batch.place(self.bucket, self.key, self.version)
        return batch


type Row = tuple[str, str | None, str | None]  # (text of the line, expected reason or None, prompt)


def _jsonl(rows: list[Row]) -> tuple[bytes, list[Line]]:
    """(text of the line, expected reason or None, prompt) rows; blank rows are blank lines."""
    lines = [
        Line(n, reason, prompt) for n, (text, reason, prompt) in enumerate(rows, start=1) if text.strip()
    ]
    return "\n".join(text for text, _, _ in rows).encode(), lines


def plan_files(run: str, prompts: list[str], many_lines: int) -> list[HostileFile]:
    """The hostile files; `prompts` are the planned jobs' prompts that valid lines carry (in order)."""
    pending = iter(prompts)

    def valid() -> Row:
        prompt = next(pending)
        return json.dumps({"prompt": prompt, "size": "640*360", "duration": 5}), None, prompt

    files = [
        HostileFile(f"{run}-300k.txt", ("a kite " * 45_000).encode(), [Line(0, "prompt has")]),
        HostileFile(f"{run}-600k.txt", ("一只小猫 " * 46_000).encode(), [Line(0, "prompt has")]),
        HostileFile(f"{run}-over-cap.json", b" " * (1024 * 1024 + 1), [Line(0, "over the 1048576-byte cap")]),
    ]
    numbers: list[Row] = [valid()]
    for constant in ("NaN", "Infinity", "-Infinity", "1e999"):
        numbers += [(f'{{"prompt": "{run} {constant}", "seed": {constant}}}', "invalid JSON", None), valid()]
    deep = '{"prompt": "deep", "extra": ' + "[" * 40 + "]" * 40 + "}"
    huge = json.dumps({"prompt": "x" * 350_000, "size": "640*360"})
    for name, rows in (
        ("numbers", numbers),
        ("deep", [(deep, "nested more than 32 levels", None), valid()]),
        ("huge-first", [(huge, "prompt has 350000 characters", None), valid()]),
        ("many", _many(run, many_lines, valid)),
    ):
        body, lines = _jsonl(rows)
        files.append(HostileFile(f"{run}-{name}.jsonl", body, lines))
    return files


def _many(run: str, count: int, valid: Callable[[], Row]) -> list[Row]:
    refusals = [
        ('{"prompt": ', "invalid JSON"),
        (json.dumps({"prompt": "p", "colour": "red"}), "unknown field"),
        (json.dumps({"prompt": "p", "size": "9" * 5000}), "is not one of the 20 supported sizes"),
        (json.dumps({"prompt": "p", "size": "1920*1080", "duration": 10}), "duration"),
    ]
    # Half of the lines valid: a batch whose first lines are mostly refused is refused as a whole.
    rows: list[Row] = []
    for n in range(count):
        if n % 2 == 0:
            rows.append(valid())
        elif n % 11 == 7:
            rows.append(("   ", None, None))  # blank: no request, no job
        else:
            text, reason = refusals[n % len(refusals)]
            rows.append((text.replace('"p"', json.dumps(f"{run} many {n}")), reason, None))
    return rows


def valid_lines_needed(many_lines: int) -> int:
    return 5 + 1 + 1 + sum(1 for n in range(many_lines) if n % 2 == 0)


def upload(sb: UserSandbox, files: list[HostileFile], bucket: str, prefix: str) -> None:
    from t2v.jobs import derive_job_id

    s3 = sb.client("s3")
    for f in files:
        f.key = f"{prefix}soak/hostile/{f.name}"
        answer = s3.put_object(Bucket=bucket, Key=f.key, Body=f.body)
        f.bucket = bucket
        f.version = str(answer.get("VersionId") or answer["ETag"].strip('"'))
        f.job_ids = {
            line.number: derive_job_id("s3", bucket, f.key, f.version, str(line.number)) for line in f.lines
        }


@dataclass
class HostileVerdict:
    counts: Counter[str]
    problems: list[str]


def judge(
    files: list[HostileFile],
    records: dict[str, dict[str, Any]],
    messages: dict[str, list[dict[str, Any]]],
    events: dict[str, list[dict[str, Any]]],
) -> HostileVerdict:
    """Lost lines (no job, or one that never ended) for every line; the rest for refused lines, whose
    valid neighbours the soak's Judge checks against the provider's record."""
    counts: Counter[str] = Counter()
    problems: list[str] = []

    def bad(key: str, problem: str, where: str) -> None:
        counts[key] += 1
        problems.append(f"{where}: {problem}")

    for f in files:
        for line in f.lines:
            counts["hostile_lines"] += 1
            where = f"{f.name} line {line.number}"
            job_id = f.job_ids[line.number]
            record = records.get(job_id)
            if record is None or record["status"] not in {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}:
                bad("lost_lines", "no job" if record is None else f"job stuck in {record['status']}", where)
                continue
            if line.reason is None:
                continue
            counts["refused_lines"] += 1
            if record["status"] != "FAILED" or record.get("error_code") != "InvalidRequest":
                bad("wrong_status", f"expected FAILED InvalidRequest, got {record['status']}", where)
            elif line.reason not in str(record.get("error_message")):
                bad("wrong_status", f"error {record.get('error_message')!r} lacks {line.reason!r}", where)
            if len(json.dumps(record, default=str)) > MAX_REFUSED_RECORD_BYTES:
                bad("unbounded_records", "the record keeps more than a digest and a prefix", where)
            if f.is_batch:
                continue  # quiet: the batch's judge counts any announcement of the line
            for key, seen in (("notifications", messages), ("events", events)):
                n = len(seen.get(job_id, []))
                if n != 1:
                    bad(f"missing_{key}" if n == 0 else f"duplicate_{key}", f"{n} {key}", where)
    return HostileVerdict(counts, problems)
