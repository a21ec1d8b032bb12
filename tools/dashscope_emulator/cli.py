"""`dashscope-emulator`: run the emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from dashscope_emulator.faults import FaultPlan

# The server's video encoder (av) comes with the [sandbox] extra: imported in main, so that a plain
# `pip install t2v-pipeline` gets a message naming the extra instead of a traceback.
PURPOSE = "runs the DashScope emulator"


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dashscope-emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--pending-seconds", type=float, default=1.0)
    p.add_argument("--running-seconds", type=float, default=3.0)
    p.add_argument("--task-ttl-seconds", type=float, default=86_400.0)
    p.add_argument(
        "--api-key", action="append", dest="api_keys", help="accepted key (repeatable); default any sk-"
    )
    p.add_argument("--query-rps-limit", type=int, default=20)
    p.add_argument("--public-url", default=None, help="base of video_url (default: the server's own URL)")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--faults", type=Path, default=None, help="JSON fault plan file")
    p.add_argument("--media-dir", type=Path, default=None)
    p.add_argument("--push-url", default=None, help="POST every task-finished event here (default: no push)")
    p.add_argument("--push-token", default="", help="sent in x-eventbridge-signature-token with each push")
    p.add_argument(
        "--max-running-tasks",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="the account's cap on tasks PENDING or RUNNING (default: none)",
    )
    p.add_argument(
        "--over-cap",
        choices=("refuse", "queue"),
        default="refuse",
        help="past the cap: refuse creates with 429 Throttling (default), or accept and hold them PENDING",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        from dashscope_emulator.server import Emulator, EmulatorConfig
    except ModuleNotFoundError as exc:
        # The same message as `t2v`'s commands (t2v_sandbox.cli holds the map of extras; stdlib only).
        from t2v_sandbox.cli import missing_extra

        message = missing_extra(exc, purpose=PURPOSE)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    plan = None
    if args.faults is not None:
        raw = json.loads(args.faults.read_text(encoding="utf-8"))
        raw.setdefault("seed", args.fault_seed)
        plan = FaultPlan.model_validate(raw)
    config = EmulatorConfig(
        pending_seconds=args.pending_seconds,
        running_seconds=args.running_seconds,
        task_ttl_seconds=args.task_ttl_seconds,
        api_keys=tuple(args.api_keys) if args.api_keys else None,
        query_rps_limit=args.query_rps_limit,
        public_url=args.public_url,
        seed=args.fault_seed,
        faults=plan,
        media_dir=args.media_dir,
        push_url=args.push_url,
        push_token=args.push_token,
        max_running_tasks=args.max_running_tasks,
        over_cap=args.over_cap,
    )
    emu = Emulator(config).start(host=args.host, port=args.port)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"DashScope emulator listening; base URL {emu.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
        print("DashScope emulator stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
