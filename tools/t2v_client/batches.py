"""Batches as a user reads and sends them (docs/batches.md): a `.jsonl` prompt file in the caller's
own folder, `POST /v1/batches`, and the batch view read back as lines, a table and progress.

Shared by `t2v batch` and the `t2v console`. The file goes where the API takes a caller's batch
from: its own folder of the stack's input prefix (`inputs/<account>/<resource>/`, the rule
`t2v.images.ImagePlace.folder_of` derives from the caller's ARN, as for images), named by its
content (`<sha256 prefix>-<name>.jsonl`) so that no name overwrites another file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from t2v_client.errors import CliError, ExitCode
from t2v_client.images import own_folder
from t2v_client.place import Place

BATCH_SUFFIX: Final = ".jsonl"
ENDED: Final = frozenset({"COMPLETED", "CANCELED", "REFUSED"})
STATUSES: Final = ("READING", "RUNNING", "CANCELING", "COMPLETED", "CANCELED", "REFUSED")
# The batch view's counts, in the order they are shown; the first four are ended lines.
JOB_ENDINGS: Final = ("SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT")
COUNT_NAMES: Final = (*JOB_ENDINGS, "active", "not_started")
# What a batch id may hold (it becomes part of a path): letters, digits and . _ : -
BATCH_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


class BatchFileError(ValueError):
    """A batch file that will not be uploaded; names the file and the rule."""


@dataclass(frozen=True)
class UploadedBatch:
    bucket: str
    key: str
    version: str | None


def check_batch_id(batch_id: str) -> str:
    if not BATCH_ID.match(batch_id):
        raise CliError(
            f"ID: {batch_id[:60]!r} is no batch id (letters, digits and . _ : -, e.g. batch-…)",
            ExitCode.INVALID,
        )
    return batch_id


def check_batch_file(filename: str, data: bytes) -> None:
    """What is refused before anything is sent: another suffix, text that is not UTF-8, no line at all.

    Each line's request is the API's to judge (a refused line shows FAILED with its reason)."""
    if not filename.lower().endswith(BATCH_SUFFIX):
        raise BatchFileError(f"{filename or '(no name)'}: a batch file must end in {BATCH_SUFFIX}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchFileError(f"{filename}: not UTF-8 text") from None
    if not text.strip():
        raise BatchFileError(f"{filename}: no lines (a batch file holds one JSON request per line)")


def batch_key(folder: str, filename: str, data: bytes) -> str:
    """`<folder><sha256[:16]>-<safe base name>.jsonl`."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base[: -len(BATCH_SUFFIX)] if base.lower().endswith(BATCH_SUFFIX) else base
    safe = _SAFE_NAME.sub("-", stem).strip("-.")[:60] or "batch"
    return f"{folder}{hashlib.sha256(data).hexdigest()[:16]}-{safe}{BATCH_SUFFIX}"


def upload_batch_file(place: Place, filename: str, data: bytes) -> UploadedBatch:
    """Check the file and put it into the caller's own folder; its bucket, key and version."""
    check_batch_file(filename, data)
    bucket = place.bucket
    if bucket is None:
        raise BatchFileError("this stack has no OutputBucketName output to upload batch files to")
    key = batch_key(own_folder(place), filename, data)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = place.client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/x-ndjson"
        )
    except (BotoCoreError, ClientError) as exc:
        raise CliError(
            f"{filename}: not uploaded to s3://{bucket}/{key}: {exc}", ExitCode.UNREACHABLE
        ) from None
    return UploadedBatch(bucket, key, answer.get("VersionId"))


def batch_body(uploaded: UploadedBatch, *, notify_lines: bool) -> dict[str, Any]:
    """POST /v1/batches: the key, the version just uploaded (so the batch is these bytes), notify_lines."""
    body: dict[str, Any] = {"key": uploaded.key, "notify_lines": notify_lines}
    if uploaded.version:
        body["version"] = uploaded.version
    return body


# --- reading a batch view


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def counts(view: dict[str, Any]) -> dict[str, int]:
    found = _dict(view.get("counts"))
    return {name: _int(found.get(name)) for name in COUNT_NAMES}


def done_count(view: dict[str, Any]) -> int:
    """Lines whose job has ended (refused lines count: their job is FAILED)."""
    found = counts(view)
    return sum(found[name] for name in JOB_ENDINGS)


def total_lines(view: dict[str, Any]) -> int | None:
    total = _dict(view.get("lines")).get("total")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def fraction(view: dict[str, Any]) -> float | None:
    """The API's `progress` (0..1); an ended batch is whole; None while unknown (READING)."""
    if view.get("status") == "COMPLETED":
        return 1.0
    value = view.get("progress")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(1.0, max(0.0, float(value)))
    return None


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def seconds_until(stamp: Any, now: datetime | None = None) -> int | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0, round((when - (now or datetime.now(UTC))).total_seconds()))


def file_text(view: dict[str, Any]) -> str:
    file = _dict(view.get("file"))
    if not file.get("key"):
        return "-"
    where = f"s3://{file.get('bucket') or '?'}/{file['key']}"
    return where + (f" (version {file['version']})" if file.get("version") else "")


def short_key(view: dict[str, Any], width: int = 40) -> str:
    key = str(_dict(view.get("file")).get("key") or "-")
    return key if len(key) <= width else "…" + key[-(width - 1) :]


def results_text(view: dict[str, Any]) -> str | None:
    results = _dict(view.get("results"))
    if not results.get("key"):
        return None
    return f"s3://{results.get('bucket') or '?'}/{results['key']}"


def counts_text(view: dict[str, Any]) -> str:
    found = counts(view)
    return " · ".join(
        f"{name if name.isupper() else name.replace('_', ' ')} {found[name]}" for name in COUNT_NAMES
    )


def status_lines(view: dict[str, Any], now: datetime | None = None) -> list[str]:
    """`t2v batch status`: the batch view as a few `name  value` lines."""
    batch_id = str(view.get("batch_id") or "?")
    status = str(view.get("status") or "?")
    lines_ = _dict(view.get("lines"))
    total = total_lines(view)
    rows = [
        ("batch", batch_id),
        ("status", status + (" (cancellable)" if view.get("cancellable") else "")),
        ("file", file_text(view)),
        ("owner", f"{view.get('owner') or '-'} (via {view.get('source') or '-'})"),
        (
            "lines",
            "-"
            if total is None
            else f"{total} ({_int(lines_.get('valid'))} valid, {_int(lines_.get('refused'))} refused)",
        ),
        ("jobs", counts_text(view)),
        (
            "progress",
            f"{percent(fraction(view))} ({done_count(view)} of {total if total is not None else '?'} ended)",
        ),
    ]
    if status not in ENDED:
        left = seconds_until(view.get("expected_finish_at"), now)
        expected = (
            "no estimate yet" if left is None else f"{view.get('expected_finish_at')} (in about {left} s)"
        )
        rows.append(("expected", expected))
    rows.append(
        (
            "video",
            f"{_int(view.get('video_seconds'))} s (reserved {_int(view.get('reserved_seconds'))} s "
            f"of the day {view.get('budget_day') or '-'})",
        )
    )
    rows.append(("created", str(view.get("created_at") or "-")))
    rows.append(("finished", str(view.get("finished_at") or "-")))
    results = results_text(view)
    if results:
        rows.append(("results", f"{results} (`t2v batch results {batch_id} -o FILE`)"))
    error = _dict(view.get("error"))
    if error:
        rows.append(("error", f"{error.get('code') or 'Error'}: {error.get('message') or '-'}"))
    return [f"{name:<9} {value}" for name, value in rows]


LIST_HEADER: Final = ("BATCH", "STATUS", "LINES", "DONE", "CREATED", "FILE")


def batch_table(items: list[dict[str, Any]]) -> list[str]:
    """`t2v batch list`: a header, then one line per batch (DONE: how many of its lines have ended)."""
    rows = [LIST_HEADER]
    for view in items:
        total = total_lines(view)
        rows.append(
            (
                str(view.get("batch_id") or "?"),
                str(view.get("status") or "?"),
                "-" if total is None else str(total),
                str(done_count(view)),
                str(view.get("created_at") or "-"),
                short_key(view),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_HEADER) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


class BatchProgress:
    """`--wait`'s lines: one per change of status, ended lines or percent; never backwards (a lagging
    read may show fewer ended lines or a lower fraction than one shown before)."""

    def __init__(self) -> None:
        self._done = 0
        self._fraction: float | None = None
        self._last: tuple[str, int, str] | None = None

    def line(self, view: dict[str, Any], elapsed: float, now: datetime | None = None) -> str | None:
        """The line to print for this read, or None when nothing changed."""
        status = str(view.get("status") or "?")
        self._done = max(self._done, done_count(view))
        found = fraction(view)
        if found is not None:
            self._fraction = max(found, self._fraction or 0.0)
        shown = percent(self._fraction)
        key = (status, self._done, shown)
        if key == self._last:
            return None
        self._last = key
        total = total_lines(view)
        active = counts(view)["active"]
        left = None if status in ENDED else seconds_until(view.get("expected_finish_at"), now)
        eta = "" if left is None else f" eta {left}s"
        of = "?" if total is None else str(total)
        return f"[{elapsed:>5.0f}s] {status:<9} {shown:>4} {self._done}/{of} ended, {active} active{eta}"


def ended_line(view: dict[str, Any]) -> str:
    """The last line of `--wait`: how the batch ended and where its results are."""
    batch_id = str(view.get("batch_id") or "?")
    line = f"{batch_id} {view.get('status')}: {counts_text(view)}"
    if results_text(view):
        line += f"; results: t2v batch results {batch_id} -o FILE"
    return line


def batch_facts(view: dict[str, Any]) -> dict[str, Any]:
    """What a page shows of a batch view, read once (the console's templates)."""
    found = fraction(view)
    return {
        "fraction": found,
        "percent": percent(found),
        "done": done_count(view),
        "total": total_lines(view),
        "counts": counts(view),
        "ended": view.get("status") in ENDED,
        "file": file_text(view),
        "short_key": short_key(view),
        "results": results_text(view),
    }
