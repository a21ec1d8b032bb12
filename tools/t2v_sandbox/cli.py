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

# The extras of pyproject.toml, by the module each one's packages import as.
EXTRAS: dict[str, tuple[str, str]] = {
    "moto": ("sandbox", "moto[server]"),
    "samtranslator": ("sandbox", "aws-sam-translator"),
    "yaml": ("sandbox", "pyyaml"),
    "av": ("sandbox", "av"),
    "flask": ("console", "flask"),
    "werkzeug": ("console", "flask"),
}
# What each extra runs, for the message that names it.
EXTRA_PURPOSE: dict[str, str] = {
    "sandbox": "runs the local sandbox",
    "console": "serves the web console",
}
# The commands of modules that cannot be imported without an extra (their parsers name it instead).
EXTRA_COMMANDS: dict[str, tuple[str, ...]] = {
    "t2v_sandbox.commands_sandbox": ("sandbox",),
    "t2v_sandbox.demo": ("demo",),
    "t2v_sandbox.soak": ("soak",),
    "t2v_console.command": ("console",),
}
COMMAND_MODULES: tuple[str, ...] = (
    "t2v_sandbox.commands_sandbox",
    "t2v_sandbox.commands_user",  # submit, status, list, cancel, download
    "t2v_sandbox.commands_batch",  # batch submit|status|list|cancel|results
    "t2v_sandbox.demo",
    "t2v_sandbox.soak",  # the fault soak
    "t2v_sandbox.teardown",  # delete a deployed stack, its versioned bucket emptied first
    "t2v_sandbox.events",  # follow a sandbox's SNS messages and EventBridge events
    "t2v_console.command",  # the web console
    # Further commands: add their modules here.
)


def _extra_of(exc: ModuleNotFoundError) -> tuple[str, str] | None:
    """(extra, package) that brings the missing module, or None when no extra does."""
    return EXTRAS.get((exc.name or "").split(".")[0])


def missing_extra(exc: ModuleNotFoundError, *, purpose: str | None = None) -> str | None:
    """The message for a command that needs an extra, or None for any other missing module.

    `purpose`: what the command does, when the extra's own wording does not say it (the emulator's).
    """
    found = _extra_of(exc)
    if found is None:
        return None
    extra, package = found
    return (
        f"this command {purpose or EXTRA_PURPOSE[extra]}, which needs the [{extra}] extra ({package} is "
        f"not installed): pip install 't2v-pipeline[{extra}]' (or run `make venv` in the repository)"
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
            found, message = _extra_of(exc), missing_extra(exc)
            if found is not None and message is not None:
                for command in EXTRA_COMMANDS.get(name, ()):
                    stub = subparsers.add_parser(
                        command, help=f"(needs the [{found[0]}] extra)", add_help=False
                    )
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
