"""The README as tests read it: its sections, its bash blocks and the simple commands in them."""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from functools import cache

from t2v_sandbox.cli import build_parser

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Command:
    line: str
    argv: list[str]


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)


def commands(text: str) -> list[Command]:
    """Every simple command of the text's bash blocks: continuations joined, comments and heredoc
    bodies dropped, lists (`&&`, `;`) split."""
    found: list[Command] = []
    for block in bash_blocks(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        joined = re.sub(r"<<'EOF'\n.*?\nEOF\n", "\n", joined, flags=re.DOTALL)
        for line in logical_lines(joined):
            for part in re.split(r"\s(?:&&|;)\s", line):
                argv = shlex.split(part, comments=True)
                if argv:
                    found.append(Command(line.strip(), argv))
    return found


def logical_lines(block: str) -> list[str]:
    """The block's lines, a quote left open on one line continued on the next (JSON in quotes)."""
    lines: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:
            continue
        lines.append(pending)
        pending = ""
    assert not pending, f"an unclosed quote in the README: {pending}"
    return lines


@cache
def t2v_parser() -> argparse.ArgumentParser:
    return build_parser()


def t2v_commands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in t2v_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)
