"""`t2v submit|status|list|cancel|download`: the video API from a shell.

The sandbox (`.sandbox/endpoints.json`) by default, as one of its identities with `--as NAME`
(or `T2V_IDENTITY`); a deployed stack with `--stack NAME`, as its `--profile` (or `AWS_PROFILE`).
Errors are one line on stderr; exit codes are `t2v_client.ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from t2v_client import (
    DEFAULT_ENDPOINTS,
    ApiClient,
    CliError,
    ExitCode,
    Place,
    ProgressFacts,
    Target,
    check_place_options,
    error_line,
    exit_code_for_http,
    exit_code_for_status,
    format_progress,
    progress_facts,
    request_body,
    resolve_place,
    sandbox_target,
    summary_line,
)
from t2v_client.images import image_source
from t2v_client.models import ModelsError, catalog_lines, checked_family, media_list
from t2v_client.options import add_caller_options
from t2v_client.uploads import UploadError, check_prompt_file, upload_key, upload_prompt_file

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

DEFAULT_TIMEOUT = 900.0
# The API's progress phases in the order a job goes through them (t2v.progress.Phase).
PHASE_ORDER: Final = {
    name: rank
    for rank, name in enumerate(("waiting_for_capacity", "queued", "running", "downloading", "done"))
}
NOTE_EVERY_SECONDS = 10.0


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "1", "on"}:
        return True
    if lowered in {"false", "no", "0", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the API is")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (default: the local sandbox)")
    where.add_argument(
        "--region",
        help="region of --stack (default: samconfig.toml's here, else AWS_REGION or the profile's)",
    )
    where.add_argument(
        "--endpoints", type=Path, default=DEFAULT_ENDPOINTS, help="the sandbox's endpoints file"
    )
    add_caller_options(where)


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="seconds (default 900)")
    parser.add_argument("--poll-interval", type=_positive, default=2.0, help="seconds between reads")


def register(subparsers: Any) -> None:
    submit = subparsers.add_parser(
        "submit",
        help="request a video; prints its job id",
        description="Text to video by default; --model picks another family (`t2v models` lists them "
        "with their fields), --image and --last-frame give it pictures (a local file is uploaded to your "
        "folder of the stack's input prefix; an https:// or s3:// URL is passed as it is).",
    )
    submit.add_argument("prompt", nargs="?", help="the prompt (optional where the model says so)")
    submit.add_argument("--model", metavar="NAME", help="full name, the part after '/', or a family (it2v)")
    submit.add_argument("--image", metavar="PATH|URL", help="the first frame (image-to-video families)")
    submit.add_argument(
        "--last-frame", metavar="PATH|URL", help="the last frame (first-and-last-frame families)"
    )
    submit.add_argument("--resolution", help="image families: e.g. 720P (`t2v models` lists the choices)")
    submit.add_argument("--size", help="width*height, e.g. 1280*720")
    submit.add_argument("--duration", type=int, help="seconds: 5, 8 or 10")
    submit.add_argument("--audio", type=_bool, metavar="BOOL")
    submit.add_argument("--watermark", type=_bool, metavar="BOOL")
    submit.add_argument("--seed", type=int)
    submit.add_argument("--idempotency-key", help="retrying with the same key never creates a second video")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end (progress on stderr)")
    submit.add_argument("--output", type=Path, metavar="FILE", help="with --wait: save the MP4 here")
    _add_wait_options(submit)
    _add_target_options(submit)
    submit.set_defaults(func=run_submit)

    models = subparsers.add_parser("models", help="the model families the API serves, with their fields")
    models.add_argument("--json", action="store_true", help="the raw answer of GET /v1/models")
    _add_target_options(models)
    models.set_defaults(func=run_models)

    status = subparsers.add_parser("status", help="show a job (JSON)")
    status.add_argument("job_id", metavar="ID")
    _add_target_options(status)
    status.set_defaults(func=run_status)

    _register_list(subparsers)

    upload = subparsers.add_parser(
        "upload",
        help="put prompt files (.jsonl, .json, .txt) into the stack's prompt prefix: a .jsonl runs as a batch, a .txt or .json as one job",
    )
    upload.add_argument("files", type=Path, nargs="+", metavar="FILE")
    _add_target_options(upload)
    upload.set_defaults(func=run_upload)

    cancel = subparsers.add_parser("cancel", help="cancel a job (only while its task is PENDING)")
    cancel.add_argument("job_id", metavar="ID")
    _add_target_options(cancel)
    cancel.set_defaults(func=run_cancel)

    usage = subparsers.add_parser("usage", help="your day of billed video seconds: spent, refunded, left")
    usage.add_argument("--json", action="store_true", help="the raw answer as JSON")
    _add_target_options(usage)
    usage.set_defaults(func=run_usage)

    download = subparsers.add_parser("download", help="save a SUCCEEDED job's MP4")
    download.add_argument("job_id", metavar="ID")
    download.add_argument("file", type=Path, metavar="FILE")
    _add_target_options(download)
    download.set_defaults(func=run_download)


# ---------------------------------------------------------------------------------------------
# plumbing shared by the commands


def _register_list(subparsers: Any) -> None:
    listing = subparsers.add_parser("list", help="recent jobs, newest first")
    listing.add_argument("--status", type=str.upper, help="only jobs in this status, e.g. SUCCEEDED")
    listing.add_argument("--limit", type=int, default=20, help="1-100 (default 20)")
    listing.add_argument("--cursor", help="next_cursor of a previous page")
    listing.add_argument("--since", metavar="WHEN", help="created at or after (ISO 8601, e.g. 2026-12-01)")
    listing.add_argument("--until", metavar="WHEN", help="created before (ISO 8601)")
    listing.add_argument(
        "--search", metavar="WORDS", help="prompt contains every word (bounded; see the API)"
    )
    listing.add_argument("--oldest", action="store_true", help="oldest first")
    listing.add_argument(
        "--batch", metavar="ID", help="only this batch's jobs, in line order (`t2v batch list`)"
    )
    listing.add_argument("--json", action="store_true", help="the raw page as JSON")
    _add_target_options(listing)
    listing.set_defaults(func=run_list)


def resolve_target(args: argparse.Namespace) -> Target:
    stack, identity, profile = (getattr(args, name, None) for name in ("stack", "identity", "profile"))
    check_place_options(stack, identity=identity, profile=profile)
    if stack:
        from t2v_client import stack_place

        return stack_place(stack, getattr(args, "region", None), profile).target
    return sandbox_target(getattr(args, "endpoints", DEFAULT_ENDPOINTS), identity)


def guarded(body: Callable[[], int], err: TextIO | None = None) -> int:
    """Run a command; a CliError (or Ctrl-C) becomes one line on stderr and its exit code."""
    err = err or sys.stderr
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per HTTP call is noise here
    try:
        return body()
    except CliError as exc:
        print(f"error: {exc}", file=err, flush=True)
        return int(exc.code)
    except KeyboardInterrupt:
        print("error: interrupted", file=err, flush=True)
        return 130


def _has_rich() -> bool:
    try:
        import rich  # noqa: F401 - only whether the [console] extra is there
    except ImportError:
        return False
    return True


class Progress:
    """Live progress on stderr: a rich progress bar on a terminal, one plain line per change otherwise
    (and on a terminal without the [console] extra, which brings rich)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() and _has_rich()
        self._last_key: object = None
        self._printed_at = 0.0
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._shown = 0.0
        self._phase: str | None = None
        self._phase_rank = -1

    def __call__(self, job: dict[str, Any], elapsed: float) -> None:
        facts = self._forward(progress_facts(job))
        status = str(job.get("status"))
        if self.tty:
            self._draw(job, status, facts)
            return
        # A log, not a terminal: a line when the status or phase changes, and a heartbeat.
        key = (status, facts.phase, facts.queue_position)
        if key != self._last_key or elapsed - self._printed_at >= NOTE_EVERY_SECONDS:
            line = format_progress(status, elapsed, job.get("polls"), str(job.get("job_id", "")), facts)
            print(line, file=self.stream, flush=True)
            self._printed_at = elapsed
        self._last_key = key

    def _forward(self, facts: ProgressFacts) -> ProgressFacts:
        """Never backwards: a revised estimate may lower the API's fraction, and a read of a lagging
        record may show an earlier phase; what was shown once stays the floor."""
        rank = PHASE_ORDER.get(facts.phase or "", -1)
        if rank < self._phase_rank:
            facts = replace(facts, phase=self._phase)
        else:
            self._phase_rank, self._phase = rank, facts.phase
        if facts.fraction is not None:
            self._shown = max(facts.fraction, self._shown)
            facts = replace(facts, fraction=self._shown)
        return facts

    def _draw(self, job: dict[str, Any], status: str, facts: ProgressFacts) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[percent]}"),
                TextColumn("{task.fields[eta]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(str(job.get("job_id", "")), total=None, percent="", eta="")
        assert self._task is not None
        done = status in {"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}
        fraction = 1.0 if status == "SUCCEEDED" else facts.fraction
        self._bar.update(
            self._task,
            description=f"{status:<11} {facts.phase or '' if not done else ''}".rstrip(),
            total=None if fraction is None else 1.0,
            completed=fraction or 0.0,
            percent="" if fraction is None else f"{fraction:>4.0%}",
            eta=_eta(facts, done),
        )

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def follow(
    client: ApiClient,
    job_id: str,
    *,
    timeout: float,
    interval: float,
    output: Path | None,
    started: float,
    err: TextIO | None = None,
) -> tuple[int, dict[str, Any]]:
    """Wait for the job, report it, download its video; (exit code, final job view)."""
    err = err or sys.stderr
    progress = Progress(err)
    try:
        job = client.wait(job_id, timeout=timeout, interval=interval, on_progress=progress)
    finally:
        progress.done()
    status = str(job.get("status"))
    code = exit_code_for_status(status)
    if code != ExitCode.OK:
        error = job.get("error") or {}
        print(
            f"error: job {job_id} ended {status}: {error.get('code') or '-'}: {error.get('message') or '-'}",
            file=err,
            flush=True,
        )
        return int(code), job
    path = None
    if output is not None:
        save_video(client, job, output)
        path = output
    print(summary_line(job, path=path, elapsed=time.monotonic() - started), file=err, flush=True)
    return int(ExitCode.OK), job


def save_video(client: ApiClient, job: dict[str, Any], path: Path) -> tuple[int, str]:
    video = job.get("video") or {}
    url = video.get("url") or video.get("download_url") or job.get("download_url")
    if job.get("status") != "SUCCEEDED" or not url:
        raise CliError(f"job {job.get('job_id')} has no video to download (status {job.get('status')})")
    return client.download(str(url), path, sha256=video.get("sha256"))


# ---------------------------------------------------------------------------------------------
# commands


def run_submit(args: argparse.Namespace) -> int:
    if args.output is not None and not args.wait:
        print("error: --output needs --wait (or use `t2v download ID FILE` later)", file=sys.stderr)
        return int(ExitCode.INVALID)
    if args.prompt is None and all(getattr(args, name) is None for name in FAMILY_OPTIONS):
        print("error: a prompt is required (text to video)", file=sys.stderr)
        return int(ExitCode.INVALID)

    def body() -> int:
        started = time.monotonic()
        with ApiClient(resolve_target(args)) as client:
            accepted = client.submit(submit_body(args, client), idempotency_key=args.idempotency_key)
            job_id = str(accepted["job_id"])
            print(job_id, flush=True)
            if not args.wait:
                return int(ExitCode.OK)
            code, _ = follow(
                client,
                job_id,
                timeout=args.timeout,
                interval=args.poll_interval,
                output=args.output,
                started=started,
            )
            return code

    return guarded(body)


FAMILY_OPTIONS = ("model", "image", "last_frame", "resolution")
PARAMETER_OPTIONS = ("size", "resolution", "duration", "audio", "watermark", "seed")


def submit_body(
    args: argparse.Namespace,
    client: ApiClient,
    place_for: Callable[[argparse.Namespace], Place] | None = None,
) -> dict[str, Any]:
    """The POST body: as it always was for text to video; for a --model (or images), checked against
    what GET /v1/models says of that model, its local images uploaded first."""
    given = {name: getattr(args, name) for name in PARAMETER_OPTIONS if getattr(args, name) is not None}
    if all(getattr(args, name) is None for name in FAMILY_OPTIONS):
        if args.prompt is None:
            raise CliError("a prompt is required (text to video)", ExitCode.INVALID)
        return request_body(args.prompt, **given)
    catalog = client.models()
    try:
        family = checked_family(
            catalog,
            args.model,
            given,
            has_prompt=args.prompt is not None,
            first=args.image,
            last=args.last_frame,
        )
        needs_upload = _needs_upload(args.image, args.last_frame)
        place = (place_for or _upload_place)(args) if needs_upload else None
        limits = family.image_limits
        first = image_source(place, args.image, limits, "image")[0] if args.image else None
        last = image_source(place, args.last_frame, limits, "last_frame")[0] if args.last_frame else None
        media = media_list(family, first, last)
    except ModelsError as exc:
        raise CliError(str(exc), ExitCode.INVALID) from None
    return request_body(args.prompt, model=family.model, media=media, **given)


def _needs_upload(*given: str | None) -> bool:
    return any(g and not g.startswith(("https://", "s3://", "http://")) for g in given)


def _upload_place(args: argparse.Namespace) -> Place:
    """Where local images go: the stack (or sandbox) the API belongs to, as the same caller."""
    return resolve_place(
        args.stack,
        getattr(args, "region", None),
        getattr(args, "endpoints", DEFAULT_ENDPOINTS),
        identity=getattr(args, "identity", None),
        profile=getattr(args, "profile", None),
    )


def run_models(args: argparse.Namespace) -> int:
    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            if args.json:
                print(json.dumps(client.ok("GET", "/models"), indent=2, ensure_ascii=False))
                return int(ExitCode.OK)
            catalog = client.models()
        for line in catalog_lines(catalog):
            print(line)
        return int(ExitCode.OK)

    return guarded(body)


def run_status(args: argparse.Namespace) -> int:
    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            print(json.dumps(client.get(args.job_id), indent=2, ensure_ascii=False))
        return int(ExitCode.OK)

    return guarded(body)


LIST_HEADER: Final = ("JOB", "STATUS", "CREATED", "SIZE", "ORIGIN", "PROMPT")


def origin_text(job: dict[str, Any]) -> str:
    """Where a job came from, short: `api`, `eventbridge`, or a prompt file's `key:line`."""
    found = job.get("origin")
    origin: dict[str, Any] = found if isinstance(found, dict) else {}
    door = str(origin.get("door") or job.get("source") or "-")
    if door != "s3" or not origin.get("key"):
        return door
    key = str(origin["key"])
    key = key if len(key) <= 32 else "…" + key[-31:]
    return f"{key}:{origin['line']}" if origin.get("line") else key


def list_table(items: list[dict[str, Any]]) -> list[str]:
    """A header, then one line per job: id, status, created, size, origin, prompt (shortened)."""
    rows = [LIST_HEADER]
    for job in items:
        found = job.get("request")
        request: dict[str, Any] = found if isinstance(found, dict) else {}
        prompt = str(request.get("prompt", "")).replace("\n", " ")
        rows.append(
            (
                str(job.get("job_id", "?")),
                str(job.get("status", "?")),
                str(job.get("created_at") or "-"),
                str(request.get("size") or "-"),
                origin_text(job),
                prompt if len(prompt) <= 40 else prompt[:39] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_HEADER) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


def list_query(args: argparse.Namespace) -> dict[str, Any]:
    """`t2v list`'s options as GET /videos's query parameters."""
    return {
        "status": args.status,
        "limit": args.limit,
        "cursor": args.cursor,
        "since": args.since,
        "until": args.until,
        "q": args.search,
        "order": "oldest" if args.oldest else None,
        "batch": args.batch,
    }


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        print(f"error: --limit must be 1-100, got {args.limit}", file=sys.stderr)
        return int(ExitCode.INVALID)

    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            page = client.list(**list_query(args))
        if args.json:
            print(json.dumps(page, indent=2, ensure_ascii=False))
            return int(ExitCode.OK)
        items = page.get("items") or []
        for line in list_table(items):
            print(line)
        if not items:
            print("no jobs match", file=sys.stderr)
        if page.get("search"):  # a search reads a bounded window: say what it covered
            print(str(page["search"].get("note") or ""), file=sys.stderr)
        if page.get("next_cursor"):
            print(f"more: t2v list --cursor {page['next_cursor']} (with the same options)", file=sys.stderr)
        return int(ExitCode.OK)

    return guarded(body)


def cancel_job(client: ApiClient, job_id: str) -> str:
    """DELETE the job; the line to print. A job canceled before is no error: what was asked holds."""
    answer = client.call("DELETE", f"/videos/{job_id}")
    if answer.status == 409 and client.get(job_id).get("status") == "CANCELED":
        return f"{job_id} CANCELED (it was canceled before; nothing to do)"
    if answer.status >= 300:
        raise CliError(error_line(answer.status, answer.body), exit_code_for_http(answer.status))
    return f"{answer.body.get('job_id', job_id)} {answer.body.get('status')}"


def run_cancel(args: argparse.Namespace) -> int:
    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            print(cancel_job(client, args.job_id))
        return int(ExitCode.OK)

    return guarded(body)


def run_upload(args: argparse.Namespace) -> int:
    def body() -> int:
        files = [(path, _read_prompt_file(path)) for path in args.files]  # every file checked first
        place = resolve_place(
            args.stack, args.region, args.endpoints, identity=args.identity, profile=args.profile
        )
        for path, data in files:
            try:
                uploaded = upload_prompt_file(place, path.name, data)
            except UploadError as exc:
                raise CliError(str(exc), ExitCode.INVALID) from None
            version = f" (version {uploaded.version_id})" if uploaded.version_id else ""
            print(f"uploaded s3://{place.bucket}/{uploaded.key}{version}", flush=True)
        print(watch_hint(place, [p.name for p, _ in files], stack=args.stack), file=sys.stderr, flush=True)
        return int(ExitCode.OK)

    return guarded(body)


def _read_prompt_file(path: Path) -> bytes:
    try:
        upload_key("", path.name)  # the suffix intake reads
        data = path.read_bytes()
        check_prompt_file(path.name, data)
    except UploadError as exc:
        raise CliError(str(exc), ExitCode.INVALID) from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", ExitCode.INVALID) from None
    return data


def watch_hint(place: Place, names: list[str], *, stack: str | None = None) -> str:
    """Whose the uploaded files' jobs are (PromptJobOwner) and how to watch them."""
    owner = place.parameters.get("PromptJobOwner") or None
    who = f"PromptJobOwner ({owner})" if owner else "PromptJobOwner (unset: the account root, admins only)"
    named = next((i.name for i in place.identities.values() if owner and i.user_arn == owner), None)
    as_owner = f" --as {named}" if named else ""
    where = f" --stack {stack}" if stack else ""
    batches = [n for n in names if n.lower().endswith(".jsonl")]
    singles = [n for n in names if n not in batches]
    said = []
    if singles:
        said.append(
            f"intake starts one job for each of {', '.join(singles)} within seconds; they are {who}'s jobs: "
            f"watch them with `t2v list{where}{as_owner}` (a refused one shows FAILED with the reason) "
            "or `t2v events`"
        )
    if batches:
        said.append(
            f"each of {', '.join(batches)} runs as a batch of {who}: watch it with "
            f"`t2v batch list{where}{as_owner}` (its refused lines are in its results, "
            f"`t2v batch results ID{where}{as_owner}`)"
        )
    return "; ".join(said)


def run_usage(args: argparse.Namespace) -> int:
    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            usage = client.usage()
        if args.json:
            print(json.dumps(usage, indent=2, ensure_ascii=False))
        else:
            for line in usage_lines(usage):
                print(line)
        return int(ExitCode.OK)

    return guarded(body)


def usage_lines(usage: dict[str, Any]) -> list[str]:
    """GET /usage as a few lines: yours, the account's, and when both renew."""

    def left(value: Any) -> str:
        return "no cap" if value is None else f"{value} s left"

    def budget(seconds: Any) -> str:
        return f"of {seconds} s" if seconds else "(no cap)"

    lines = [f"day {usage.get('day')} (renews {usage.get('renews_at')})"]
    for name, part in (("you", usage.get("you") or {}), ("account", usage.get("account") or {})):
        lines.append(
            f"{name:<8} {left(part.get('left_seconds'))} {budget(part.get('budget_seconds'))}: "
            f"spent {part.get('spent_seconds', 0)} s, refunded {part.get('refunded_seconds', 0)} s"
        )
    lines.append(f"you may request {left(usage.get('left_seconds'))} today")
    return lines


def run_download(args: argparse.Namespace) -> int:
    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            job = client.get(args.job_id)
            if job.get("status") in {"FAILED", "CANCELED", "TIMED_OUT"}:
                raise CliError(f"job {args.job_id} ended {job.get('status')}: no video", ExitCode.JOB_FAILED)
            size, digest = save_video(client, job, args.file)
        print(f"{args.file} {size} bytes sha256={digest}")
        return int(ExitCode.OK)

    return guarded(body)


def _eta(facts: ProgressFacts, done: bool) -> str:
    """The bar's last column: the finish once known, or the place in the capacity queue."""
    if done:
        return ""
    if facts.queue_position is not None:
        start = "" if facts.starts_in is None else f", starts in {facts.starts_in:.0f}s"
        return f"{facts.queue_position} ahead{start}"
    return "" if facts.seconds_left is None else f"eta {facts.seconds_left:.0f}s"
