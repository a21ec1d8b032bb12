"""`t2v console`: serve the web console on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import threading
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2v_client import DEFAULT_ENDPOINTS, CliError, Place, resolve_place
from t2v_client.options import add_caller_options
from werkzeug.serving import BaseWSGIServer, make_server

from t2v_console.app import create_app
from t2v_console.backend import ConsoleBackend

HOST = "127.0.0.1"  # never another interface: the console acts with the user's credentials
DEFAULT_PORT = 8780


def register(subparsers: Any) -> None:
    console = subparsers.add_parser("console", help="web console on 127.0.0.1: gallery, progress, submit")
    console.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks one"
    )
    console.add_argument("--open", action="store_true", help="open it in the default browser")
    console.add_argument("--stack", metavar="NAME", help="a deployed stack (default: the local sandbox)")
    console.add_argument("--region", help="region of --stack (default: the AWS default chain's)")
    console.add_argument(
        "--endpoints", type=Path, default=DEFAULT_ENDPOINTS, help="the sandbox's endpoints file"
    )
    add_caller_options(console)  # --as NAME (the header's picker switches later), --profile
    console.set_defaults(func=run_console)


@dataclass
class RunningConsole:
    """A console served from a background thread (the command's and the browser tests' way in)."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(place: Place, port: int = 0, endpoints_file: Path | None = None) -> RunningConsole:
    """Serve the console; with the sandbox's `endpoints_file` it follows a restarted sandbox."""
    app = create_app(ConsoleBackend(place, endpoints_file=endpoints_file))
    server = make_server(HOST, port, app, threaded=True)
    bound = server.server_port
    # Answer only to our own address: a page elsewhere cannot reach us through a rebound DNS name.
    app.config["ALLOWED_HOSTS"] = frozenset({f"{HOST}:{bound}", f"localhost:{bound}"})
    thread = threading.Thread(target=server.serve_forever, name="t2v-console", daemon=True)
    thread.start()
    return RunningConsole(server, thread)


def run_console(args: argparse.Namespace) -> int:
    try:
        place = resolve_place(
            args.stack, args.region, args.endpoints, identity=args.identity, profile=args.profile
        )
    except CliError as exc:
        print(f"error: {exc}", flush=True)
        return int(exc.code)
    try:
        running = serve(place, args.port, None if args.stack else args.endpoints)
    except OSError as exc:
        print(f"error: cannot listen on {HOST}:{args.port}: {exc.strerror} (try --port 0)", flush=True)
        return 1
    caller = f" as {place.target.identity}" if place.target.identity else ""
    print(f"t2v console for {place.target.api_url}{caller} at {running.url} (Ctrl-C stops it)", flush=True)
    if not args.stack:
        print(f"it follows {args.endpoints} when the sandbox restarts on new ports", flush=True)
    if args.open:
        webbrowser.open(running.url)
    try:
        running.thread.join()
    except KeyboardInterrupt:
        print("stopping the console", flush=True)
    finally:
        running.stop()
    return 0
