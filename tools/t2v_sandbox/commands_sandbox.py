"""`t2v sandbox up`: run template.yaml locally until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from t2v_sandbox.template import TemplateError


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected Key=Value, got {text!r}")
    return key, value


def register(subparsers: Any) -> None:
    sandbox = subparsers.add_parser(
        "sandbox", help="run the template on this machine (moto + DashScope emulator)"
    )
    actions = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="deploy and serve until Ctrl-C; writes .sandbox/endpoints.json")
    up.add_argument("--template", type=Path, default=Path("template.yaml"))
    up.add_argument("--time-scale", type=float, default=1.0, help="multiply Wait/Retry sleeps (e.g. 0.05)")
    up.add_argument("--param", action="append", type=_key_value, default=[], metavar="KEY=VALUE")
    up.add_argument("--work-dir", type=Path, default=Path(".sandbox"))
    up.add_argument("--stack-name", default="t2v-sandbox")
    up.add_argument("--moto-port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--api-port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--no-emulator", action="store_true", help="do not start the DashScope emulator")
    up.add_argument("--emulator-pending-seconds", type=float, default=2.0)
    up.add_argument("--emulator-running-seconds", type=float, default=5.0)
    up.add_argument(
        "--emulator-max-running-tasks",
        type=int,
        default=None,
        metavar="N",
        help="the emulated account's cap on tasks PENDING or RUNNING (default: none)",
    )
    up.add_argument(
        "--emulator-over-cap",
        choices=("refuse", "queue"),
        default="refuse",
        help="past the cap: refuse creates with 429 Throttling (default), or hold them PENDING",
    )
    up.add_argument(
        "--no-push",
        action="store_true",
        help="deploy with PushCompletion=Disabled: the emulator pushes nothing, polling alone finds finishes",
    )
    up.set_defaults(func=run_up)


# Everything lives in this process's memory (moto): a restart is a new, empty stack on new ports.
STARTS_EMPTY = (
    "this sandbox starts empty: jobs, videos and uploads live in memory and are gone when it stops "
    "(a running `t2v console` follows it to its new ports)"
)


def run_up(args: argparse.Namespace) -> int:
    from t2v_sandbox.patches import MotoVersionError
    from t2v_sandbox.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        template=args.template,
        parameter_overrides=dict(args.param),
        time_scale=args.time_scale,
        emulator=not args.no_emulator,
        emulator_pending_seconds=args.emulator_pending_seconds,
        emulator_running_seconds=args.emulator_running_seconds,
        emulator_max_running_tasks=args.emulator_max_running_tasks,
        emulator_over_cap=args.emulator_over_cap,
        work_dir=args.work_dir,
        stack_name=args.stack_name,
        moto_port=args.moto_port,
        api_port=args.api_port,
        push=not args.no_push,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(config) as sandbox:
            print(json.dumps(sandbox.endpoints, indent=2), flush=True)
            print(
                f"sandbox up; endpoints in {sandbox.work_dir / 'endpoints.json'}; Ctrl-C stops it", flush=True
            )
            print(STARTS_EMPTY, flush=True)
            stop.wait()
            print("stopping sandbox", flush=True)
    except (TemplateError, MotoVersionError) as exc:
        print(f"error: {exc}", flush=True)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
