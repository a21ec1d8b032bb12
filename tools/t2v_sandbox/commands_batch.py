"""`t2v batch submit|status|list|cancel|results`: a `.jsonl` prompt file run as one batch (docs/batches.md).

The same targets and callers as the other user commands (the sandbox as `--as NAME`, or `--stack
NAME` as its `--profile`); errors are one line on stderr, exit codes `t2v_client.ExitCode`.
`submit` puts the file into the caller's own folder of the stack's input prefix (as `t2v submit
--image` does an image) and asks the API to run it; `--wait` follows it to its end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from t2v_client import (
    DEFAULT_ENDPOINTS,
    ApiClient,
    CliError,
    ExitCode,
    error_line,
    exit_code_for_http,
    resolve_place,
)
from t2v_client.batches import (
    ENDED,
    BatchFileError,
    BatchProgress,
    batch_body,
    batch_table,
    check_batch_file,
    check_batch_id,
    ended_line,
    status_lines,
    upload_batch_file,
)

from t2v_sandbox.commands_user import _add_target_options, _positive, guarded, resolve_target

DEFAULT_POLL_SECONDS = 5.0


def register(subparsers: Any) -> None:
    batch = subparsers.add_parser(
        "batch",
        help="run a .jsonl prompt file as one batch: submit, status, list, cancel, results",
        description="A batch is a .jsonl file, one request per line, run as one: its progress, its "
        "counts and one results file. See docs/batches.md.",
    )
    commands = batch.add_subparsers(dest="batch_command", metavar="SUBCOMMAND", required=True)

    submit = commands.add_parser(
        "submit",
        help="upload FILE.jsonl to your folder of the stack's bucket and run it; prints the batch id",
    )
    submit.add_argument("file", type=Path, metavar="FILE.jsonl")
    submit.add_argument(
        "--notify-lines", action="store_true", help="announce each line's job as it ends, too"
    )
    submit.add_argument(
        "--wait", action="store_true", help="follow the batch to its end (progress on stderr)"
    )
    submit.add_argument(
        "--timeout",
        type=_positive,
        default=None,
        help="with --wait: give up after these seconds (default: never)",
    )
    submit.add_argument(
        "--poll-interval",
        type=_positive,
        default=DEFAULT_POLL_SECONDS,
        help="seconds between reads (default 5)",
    )
    _add_target_options(submit)
    submit.set_defaults(func=run_submit)

    status = commands.add_parser("status", help="a batch: status, counts, progress, expected finish, results")
    status.add_argument("batch_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="the raw batch view as JSON")
    _add_target_options(status)
    status.set_defaults(func=run_status)

    listing = commands.add_parser("list", help="your batches, newest first")
    listing.add_argument("--limit", type=int, default=20, help="1-100 (default 20)")
    listing.add_argument("--cursor", help="next_cursor of a previous page")
    listing.add_argument("--json", action="store_true", help="the raw page as JSON")
    _add_target_options(listing)
    listing.set_defaults(func=run_list)

    cancel = commands.add_parser(
        "cancel", help="cancel a batch: no further line starts (exit 0 also when it was canceled before)"
    )
    cancel.add_argument("batch_id", metavar="ID")
    _add_target_options(cancel)
    cancel.set_defaults(func=run_cancel)

    results = commands.add_parser(
        "results", help="an ended batch's results JSONL (one line per input line) to FILE or stdout"
    )
    results.add_argument("batch_id", metavar="ID")
    results.add_argument("-o", "--output", type=Path, metavar="FILE", help="save here (default: stdout)")
    _add_target_options(results)
    results.set_defaults(func=run_results)


# ---------------------------------------------------------------------------------------------


def read_batch_file(path: Path) -> bytes:
    """The file's bytes, checked before anything is sent; CliError(INVALID) naming the file and the rule."""
    try:
        data = path.read_bytes()
        check_batch_file(path.name, data)
    except BatchFileError as exc:
        raise CliError(str(exc), ExitCode.INVALID) from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}", ExitCode.INVALID) from None
    return data


def run_submit(args: argparse.Namespace) -> int:
    def body() -> int:
        started = time.monotonic()
        data = read_batch_file(args.file)  # checked before any call
        place = resolve_place(
            args.stack,
            args.region,
            getattr(args, "endpoints", DEFAULT_ENDPOINTS),
            identity=args.identity,
            profile=args.profile,
        )
        try:
            uploaded = upload_batch_file(place, args.file.name, data)
        except BatchFileError as exc:
            raise CliError(str(exc), ExitCode.INVALID) from None
        with ApiClient(place.target) as client:
            view = client.submit_batch(batch_body(uploaded, notify_lines=args.notify_lines))
            batch_id = str(view.get("batch_id"))
            print(batch_id, flush=True)
            if not args.wait:
                return int(ExitCode.OK)
            final = follow_batch(
                client, batch_id, timeout=args.timeout, interval=args.poll_interval, started=started
            )
        return ended_code(final)

    return guarded(body)


def follow_batch(
    client: ApiClient,
    batch_id: str,
    *,
    timeout: float | None,
    interval: float,
    started: float,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Read the batch until it ends, a line on `err` for each change; CliError(WAIT_TIMEOUT) after `timeout`."""
    err = err or sys.stderr
    progress = BatchProgress()
    while True:
        view = client.get_batch(batch_id)
        elapsed = clock() - started
        line = progress.line(view, elapsed)
        if line is not None:
            print(line, file=err, flush=True)
        if view.get("status") in ENDED:
            return view
        if timeout is not None and elapsed >= timeout:
            raise CliError(
                f"gave up waiting for {batch_id} after {elapsed:.0f} s (still {view.get('status')}); "
                f"`t2v batch status {batch_id}` shows it later",
                ExitCode.WAIT_TIMEOUT,
            )
        sleep(interval)


def ended_code(view: dict[str, Any], err: TextIO | None = None) -> int:
    """0 for COMPLETED (whatever its lines did: the results say), 3 for CANCELED or REFUSED."""
    err = err or sys.stderr
    status = str(view.get("status"))
    if status == "COMPLETED":
        print(ended_line(view), file=err, flush=True)
        return int(ExitCode.OK)
    error = view.get("error") if isinstance(view.get("error"), dict) else {}
    reason = f": {error.get('code') or 'Error'}: {error.get('message') or '-'}" if error else ""
    print(f"error: batch {view.get('batch_id')} ended {status}{reason}", file=err, flush=True)
    return int(ExitCode.JOB_FAILED)


def run_status(args: argparse.Namespace) -> int:
    def body() -> int:
        batch_id = check_batch_id(args.batch_id)
        with ApiClient(resolve_target(args)) as client:
            view = client.get_batch(batch_id)
        if args.json:
            print(json.dumps(view, indent=2, ensure_ascii=False))
        else:
            for line in status_lines(view):
                print(line)
        return int(ExitCode.OK)

    return guarded(body)


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        print(f"error: --limit must be 1-100, got {args.limit}", file=sys.stderr)
        return int(ExitCode.INVALID)

    def body() -> int:
        with ApiClient(resolve_target(args)) as client:
            page = client.list_batches(limit=args.limit, cursor=args.cursor)
        if args.json:
            print(json.dumps(page, indent=2, ensure_ascii=False))
            return int(ExitCode.OK)
        items = [item for item in (page.get("items") or []) if isinstance(item, dict)]
        for line in batch_table(items):
            print(line)
        if not items:
            print("no batches yet: `t2v batch submit FILE.jsonl`", file=sys.stderr)
        if page.get("next_cursor"):
            print(f"more: t2v batch list --cursor {page['next_cursor']}", file=sys.stderr)
        return int(ExitCode.OK)

    return guarded(body)


def cancel_batch(client: ApiClient, batch_id: str) -> str:
    """DELETE the batch; the line to print. One canceled before is no error: what was asked holds."""
    answer = client.call("DELETE", f"/batches/{batch_id}")
    if answer.status == 409:
        status = client.get_batch(batch_id).get("status")
        if status in {"CANCELED", "CANCELING"}:
            return f"{batch_id} {status} (it was canceled before; nothing to do)"
    if answer.status >= 300:
        raise CliError(error_line(answer.status, answer.body), exit_code_for_http(answer.status))
    return f"{answer.body.get('batch_id', batch_id)} {answer.body.get('status')}"


def run_cancel(args: argparse.Namespace) -> int:
    def body() -> int:
        batch_id = check_batch_id(args.batch_id)
        with ApiClient(resolve_target(args)) as client:
            print(cancel_batch(client, batch_id))
        return int(ExitCode.OK)

    return guarded(body)


def batch_results(client: ApiClient, batch_id: str) -> dict[str, Any]:
    """GET /v1/batches/{id}/results; a running batch (409) is one line naming its status."""
    answer = client.call("GET", f"/batches/{batch_id}/results")
    if answer.status == 409:
        raise CliError(
            f"batch {batch_id} has not ended yet: its results come once it ends "
            f"(`t2v batch status {batch_id}`) [{error_line(answer.status, answer.body)}]",
            ExitCode.ERROR,
        )
    if answer.status >= 300:
        raise CliError(error_line(answer.status, answer.body), exit_code_for_http(answer.status))
    if not isinstance(answer.body, dict) or not answer.body.get("results_url"):
        raise CliError(f"batch {batch_id}: the API gave no results_url")
    found: dict[str, Any] = answer.body
    return found


def run_results(args: argparse.Namespace) -> int:
    def body() -> int:
        batch_id = check_batch_id(args.batch_id)
        with ApiClient(resolve_target(args)) as client:
            found = batch_results(client, batch_id)
            url = str(found["results_url"])
            if args.output is None:
                size = client.copy_to(url, sys.stdout.buffer)
                where = "stdout"
            else:
                size, _ = client.download(url, args.output)
                where = str(args.output)
        print(
            f"{batch_id} {found.get('status')}: results {size} bytes to {where}", file=sys.stderr, flush=True
        )
        return int(ExitCode.OK)

    return guarded(body)
