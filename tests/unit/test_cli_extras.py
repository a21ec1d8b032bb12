"""`pip install t2v-pipeline` without [sandbox] or [console]: those commands name their extra, the rest
work."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh interpreter in which the sandbox extra's modules cannot be imported (None in sys.modules).
WITHOUT_EXTRA = """
import sys
sys.modules.update(dict.fromkeys(["yaml", "moto", "samtranslator", "av", "flask", "werkzeug", "rich"]))
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
    for command in ("submit", "status", "list", "cancel", "download", "teardown", "events", "sandbox"):
        assert command in done.stdout


def test_the_console_without_its_extra_says_which_extra_to_install() -> None:
    done = t2v("console", "--port", "0")
    assert done.returncode == 2, done.stderr
    assert "pip install 't2v-pipeline[console]'" in done.stderr
    assert "Traceback" not in done.stderr


EMULATOR_WITHOUT_EXTRA = """
import sys
sys.modules.update(dict.fromkeys(["av", "t2v"]))  # no encoder; and the emulator needs no pipeline code
from dashscope_emulator.cli import main
main(sys.argv[1:])
"""


def dashscope_emulator(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", EMULATOR_WITHOUT_EXTRA, *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_emulator_without_the_extra_says_which_extra_to_install() -> None:
    done = dashscope_emulator("--port", "0")
    assert done.returncode == 2, done.stderr
    assert "this command runs the DashScope emulator" in done.stderr
    assert "pip install 't2v-pipeline[sandbox]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_emulators_help_needs_no_extra() -> None:
    done = dashscope_emulator("--help")
    assert done.returncode == 0, done.stderr
    assert "--pending-seconds" in done.stdout


def test_progress_on_a_terminal_without_rich_prints_plain_lines() -> None:
    script = """
import io, sys
sys.modules["rich"] = None
from t2v_sandbox.commands_user import Progress
class Tty(io.StringIO):
    def isatty(self): return True
out = Tty()
progress = Progress(out)
progress({"job_id": "j1", "status": "RUNNING", "polls": 1}, 1.0)
progress.done()
print(repr(out.getvalue()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "RUNNING" in done.stdout
