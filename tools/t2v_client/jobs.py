"""A job as a user reads and writes it: terminal statuses, progress lines, request bodies, summaries.

Pure helpers, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from t2v_client.errors import ExitCode

TERMINAL_OK: Final = "SUCCEEDED"
TERMINAL_BAD: Final = frozenset({"FAILED", "CANCELED", "TIMED_OUT"})


def exit_code_for_status(status: str) -> ExitCode:
    """The exit code of a job that reached `status` (only terminal ones are meaningful)."""
    if status == TERMINAL_OK:
        return ExitCode.OK
    if status in TERMINAL_BAD:
        return ExitCode.JOB_FAILED
    return ExitCode.WAIT_TIMEOUT


@dataclass(frozen=True)
class ProgressFacts:
    """What a job view says about its progress: phase, fraction done and seconds left (None: unknown)."""

    phase: str | None
    fraction: float | None
    seconds_left: float | None
    queue_position: int | None = None  # waiting for capacity: the caller's jobs ahead of this one
    starts_in: float | None = None  # waiting for capacity: seconds until its expected start


def progress_facts(job: dict[str, Any], now: datetime | None = None) -> ProgressFacts:
    """Read the view's `progress` block (an API without one: all None)."""
    progress = job.get("progress")
    block: dict[str, Any] = progress if isinstance(progress, dict) else {}
    phase = str(block["phase"]) if block.get("phase") else None
    fraction = block.get("fraction")
    fraction = min(1.0, max(0.0, float(fraction))) if isinstance(fraction, int | float) else None
    now = now or datetime.now(UTC)
    left = _seconds_until(block.get("expected_finish_at"), now)
    capacity = block.get("capacity")
    place: dict[str, Any] = capacity if isinstance(capacity, dict) else {}
    position = place.get("position")
    return ProgressFacts(
        phase,
        fraction,
        left,
        queue_position=position if isinstance(position, int) else None,
        starts_in=_seconds_until(place.get("expected_start_at"), now),
    )


def _seconds_until(when: Any, now: datetime) -> float | None:
    if not isinstance(when, str) or not when:
        return None
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def format_progress(
    status: str,
    elapsed: float,
    polls: int | None,
    job_id: str = "",
    facts: ProgressFacts | None = None,
) -> str:
    """`[  12s] RUNNING     polls=3 running 40% eta 18s job-...`: what `--wait` prints when not on a terminal."""
    parts = [f"[{int(elapsed):>4}s]", f"{status:<11}", f"polls={polls or 0}"]
    if facts is not None:
        if facts.phase:
            parts.append(facts.phase)
        if facts.queue_position is not None:
            parts.append(f"{facts.queue_position} ahead")
        if facts.starts_in is not None:
            parts.append(f"starts in {facts.starts_in:.0f}s")
        if facts.fraction is not None:
            parts.append(f"{facts.fraction:.0%}")
        if facts.seconds_left is not None:
            parts.append(f"eta {facts.seconds_left:.0f}s")
    if job_id:
        parts.append(job_id)
    return " ".join(parts)


def request_body(
    prompt: str | None,
    *,
    size: str | None = None,
    duration: int | None = None,
    audio: bool | None = None,
    watermark: bool | None = None,
    seed: int | None = None,
    model: str | None = None,
    resolution: str | None = None,
    media: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The POST /videos body (DashScope's shape: model, prompt, media, parameters); options left out
    take the API's defaults, and a text-to-video body without a model is as it always was."""
    body: dict[str, Any] = {} if model is None else {"model": model}
    if prompt is not None:
        body["prompt"] = prompt
    if media:
        body["media"] = media
    optional = {"size": size, "resolution": resolution, "duration": duration}
    optional |= {"audio": audio, "watermark": watermark, "seed": seed}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def summary_line(job: dict[str, Any], *, path: Path | None, elapsed: float) -> str:
    """One line about a finished video: size, duration, bytes, sha256, elapsed."""
    request = job.get("request") or {}
    video = job.get("video") or {}
    parts = [
        f"{job.get('job_id')} {job.get('status')}",
        f"size={request.get('size') or request.get('resolution') or '?'}",
        f"duration={request.get('duration', '?')}s",
        f"bytes={video.get('bytes', '?')}",
        f"sha256={video.get('sha256', '?')}",
        f"elapsed={elapsed:.1f}s",
    ]
    if path is not None:
        parts.append(f"file={path}")
    return " ".join(parts)
