"""`pip install t2v-pipeline` without [sandbox]: the sandbox commands name the extra, the rest work."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter in which the sandbox extra's modules cannot be imported (None in sys.modules).
WITHOUT_EXTRA = """
import sys
sys.modules.update(dict.fromkeys(["yaml", "moto", "samtranslator", "av"]))
from t2v_sandbox.cli import main
main(sys.argv[1:])
"""


def t2v(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, *argv], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize(
    "argv", [("sandbox", "up"), ("soak", "--jobs", "1"), ("demo", "--prompt", "a cat"), ("sandbox",)]
)
def test_sandbox_commands_without_the_extra_say_which_extra_to_install(argv: tuple[str, ...]) -> None:
    done = t2v(*argv)
    assert done.returncode == 2, done.stderr
    assert "pip install 't2v-pipeline[sandbox]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_api_commands_need_no_extra() -> None:
    done = t2v("--help")
    assert done.returncode == 0
    for command in ("submit", "status", "list", "cancel", "download", "teardown", "sandbox"):
        assert command in done.stdout
