"""The `t2v` command: argparse sub-commands, each registered by its own module.

To add a command (submit, status, list, cancel, download, demo), write a module with
`register(subparsers) -> None` that adds its parser and sets `func=<callable(args) -> int>`,
then list the module in COMMAND_MODULES. A module that cannot be imported yet is skipped.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "t2v_sandbox.commands_sandbox",
    "t2v_sandbox.commands_user",  # submit, status, list, cancel, download
    "t2v_sandbox.demo",
    "t2v_sandbox.soak",  # the fault soak
    "t2v_sandbox.teardown",  # delete a deployed stack, its versioned bucket emptied first
    # Further commands: add their modules here.
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2v", description="Text-to-video pipeline tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    # moto's HTTP server logs every request at INFO; keep the console for what matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
