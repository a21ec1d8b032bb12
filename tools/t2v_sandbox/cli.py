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
from collections.abc import Callable, Sequence

# What `pip install 't2v-pipeline[sandbox]'` adds (pyproject.toml), by the module each one imports as.
SANDBOX_EXTRA: dict[str, str] = {
    "moto": "moto[server]",
    "samtranslator": "aws-sam-translator",
    "yaml": "pyyaml",
    "av": "av",
}
# The commands of modules that cannot be imported without the extra (their parsers name it instead).
SANDBOX_COMMANDS: dict[str, tuple[str, ...]] = {
    "t2v_sandbox.commands_sandbox": ("sandbox",),
    "t2v_sandbox.demo": ("demo",),
    "t2v_sandbox.soak": ("soak",),
}
COMMAND_MODULES: tuple[str, ...] = (
    "t2v_sandbox.commands_sandbox",
    "t2v_sandbox.commands_user",  # submit, status, list, cancel, download
    "t2v_sandbox.demo",
    "t2v_sandbox.soak",  # the fault soak
    "t2v_sandbox.teardown",  # delete a deployed stack, its versioned bucket emptied first
    # Further commands: add their modules here.
)


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The message for a command that needs the sandbox extra, or None for any other missing module."""
    top = (exc.name or "").split(".")[0]
    if top not in SANDBOX_EXTRA:
        return None
    return (
        f"this command runs the local sandbox, which needs the [sandbox] extra ({SANDBOX_EXTRA[top]} is "
        "not installed): pip install 't2v-pipeline[sandbox]' (or run `make venv` in the repository)"
    )


def _needs_extra(message: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2v", description="Text-to-video pipeline tools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            message = missing_extra(exc)
            if message is not None:
                for command in SANDBOX_COMMANDS.get(name, ()):
                    stub = subparsers.add_parser(command, help="(needs the [sandbox] extra)", add_help=False)
                    stub.set_defaults(func=_needs_extra(message), needs_extra=True)
                continue
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "needs_extra", False):  # a stub takes any arguments, to refuse them
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    # moto's HTTP server logs every request at INFO; keep the console for what matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        code = args.func(args)
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
