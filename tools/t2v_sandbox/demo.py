"""`t2v demo`: one prompt through the whole pipeline, in-process, to an MP4 under out/.

Starts the sandbox on the real template.yaml (the DashScope emulator unless DASHSCOPE_API_KEY is
set), submits through the REST API, follows the job, saves the video, prints the SNS notification
the stack published and a one-line summary, then shuts everything down.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from t2v_client import ApiClient, CliError, ExitCode, Target, request_body

from t2v_sandbox.commands_user import follow, guarded

DEFAULT_PROMPT = "一只小猫在月光下奔跑"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="one prompt end to end in a local sandbox, MP4 under --out")
    demo.add_argument("--prompt", default=DEFAULT_PROMPT)
    demo.add_argument("--out", type=Path, default=Path("out"), help="directory for <job_id>.mp4")
    demo.add_argument("--size", default=None, help="width*height (default: the API's, 1280*720)")
    demo.add_argument("--duration", type=int, default=None, help="5, 8 or 10 seconds")
    demo.add_argument("--template", type=Path, default=Path("template.yaml"))
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the video")
    demo.set_defaults(func=run_demo)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    if not args.prompt.strip():
        _say("error: --prompt must not be empty")
        return int(ExitCode.INVALID)
    if not args.template.is_file():
        _say(f"error: no template at {args.template} (run from the project root or pass --template)")
        return int(ExitCode.INVALID)
    # Keep the console for the demo's own lines: moto and the sandbox log a lot at INFO.
    for name in ("werkzeug", "t2v_sandbox", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return guarded(lambda: _demo(args))


def _demo(args: argparse.Namespace) -> int:
    from t2v_sandbox.deployer import DeployError
    from t2v_sandbox.template import TemplateError
    from t2v_sandbox.user_sandbox import Subscriber, UserSandbox, config_for, real_dashscope, topic_arn

    started = time.monotonic()
    provider = "the real DashScope (DASHSCOPE_API_KEY)" if real_dashscope() else "the DashScope emulator"
    _say(f"starting the sandbox on {args.template} with {provider} ...")
    try:
        sandbox = UserSandbox(config_for(args.template, write_endpoints=False)).start()
    except (DeployError, TemplateError, OSError, RuntimeError) as exc:
        raise CliError(f"the sandbox could not deploy {args.template}: {exc}") from None
    try:
        _say(f"sandbox up in {time.monotonic() - started:.1f} s")
        subscriber = Subscriber.attach(sandbox, topic_arn(sandbox))
        api_url = sandbox.endpoints.get("api_url")
        if not api_url:
            raise CliError(f"{args.template} declares no REST API, so there is nothing to submit to")
        target = Target(str(api_url), sandbox.config.region, sandbox.credentials)
        interval = 5.0 if real_dashscope() else 0.5
        with ApiClient(target) as client:
            accepted = client.submit(request_body(args.prompt, size=args.size, duration=args.duration))
            job_id = str(accepted["job_id"])
            _say(f"submitted {job_id}: {args.prompt}")
            out = args.out / f"{job_id}.mp4"
            code, job = follow(
                client, job_id, timeout=args.timeout, interval=interval, output=out, started=started
            )
        _print_notification(subscriber, job_id, job)
        if code == ExitCode.OK:
            print(out)  # stdout: the one thing a script wants
        return code
    finally:
        sandbox.stop()


def _print_notification(subscriber: Any, job_id: str, job: dict[str, Any]) -> None:
    from t2v_sandbox.user_sandbox import wait_until

    try:
        messages = wait_until(lambda: subscriber.for_job(job_id), timeout=10.0, what="SNS notification")
    except AssertionError:
        _say(f"warning: no SNS notification for {job_id} within 10 s (job {job.get('status')})")
        return
    for message in messages:
        _say("SNS notification: " + json.dumps(message["message"], ensure_ascii=False))
