"""Cold start (docs/benchmarks.md, section 4): importing the handlers must not pull in boto3.

boto3 imports s3transfer and much of botocore; the adapters import it when they build their first
client (`t2v.adapters.boto3_module`). A new adapter importing boto3 at module level fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every function the project ships: a new one is checked (and needs its NOT_LOADED entry) at once.
HANDLERS = tuple(sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py")))
# A fresh interpreter (this one has boto3 loaded already) imports each handler file in turn.
PROBE = """
import importlib.util, json, sys
seen = {}
for name in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location(f"app_{name}", f"functions/{name}/app.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    seen[name] = sorted(m for m in sys.modules if m == "boto3" or m.startswith("boto3."))
print(json.dumps(seen))
"""


def test_importing_the_handlers_does_not_import_boto3() -> None:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "layers" / "shared")}

    done = subprocess.run(
        [sys.executable, "-c", PROBE, *HANDLERS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(done.stdout) == {name: [] for name in HANDLERS}


TRACED = """
import json, sys
sys.path[0:0] = [sys.argv[1], sys.argv[2]]
import app
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & {"httpx", "sqlite3", "aws_xray_sdk"})))
"""


def test_intake_traced_as_in_lambda_patches_botocore_only() -> None:
    # Given intake imported with the environment Lambda gives it (tracing on, as `Tracing: Active`)
    from t2v_bench.coldstart import template_env

    env = {"PATH": os.environ.get("PATH", ""), **template_env("intake")}
    done = subprocess.run(
        [sys.executable, "-c", TRACED, str(ROOT / "functions" / "intake"), str(ROOT / "layers" / "shared")],
        cwd=ROOT / "functions" / "intake",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # Then X-Ray is loaded, but patch_all's extra modules (httpx, sqlite3) are not: intake calls neither
    assert json.loads(done.stdout) == ["aws_xray_sdk"]


LOADED = """
import json, sys
sys.path[0:0] = [sys.argv[1], sys.argv[2]]
import app
print(json.dumps(sorted(sys.modules)))
"""
# What a handler must not load: other doors' and steps' modules (wiring imports them only in the
# builder that needs them), and what patch_all would add (sqlite3; httpx where no DashScope or
# video download happens).
NOT_LOADED = {
    "submit": {
        "sqlite3",
        "t2v.intake",
        "t2v.push",
        "t2v.usecases.finalize",
        "t2v.usecases.announce",
        "t2v.api",
    },
    "status": {
        "sqlite3",
        "t2v.intake",
        "t2v.push",
        "t2v.usecases.finalize",
        "t2v.usecases.submit",
        "t2v.api",
    },
    "finalize": {"sqlite3", "t2v.intake", "t2v.push", "t2v.usecases.submit", "t2v.usecases.poll", "t2v.api"},
    "intake": {
        "sqlite3",
        "httpx",
        "t2v.dashscope",
        "t2v.push",
        "t2v.usecases.finalize",
        "t2v.usecases.poll",
        "t2v.api",
    },
    "api": {"sqlite3", "t2v.intake", "t2v.push", "t2v.usecases.finalize", "t2v.usecases.submit"},
    "park": {"sqlite3", "httpx", "t2v.intake", "t2v.usecases", "t2v.api", "t2v.dashscope"},
    "callback": {"sqlite3", "httpx", "t2v.intake", "t2v.usecases", "t2v.api", "t2v.dashscope"},
    "sweeper": {"sqlite3", "t2v.intake", "t2v.push", "t2v.usecases.finalize", "t2v.api"},
    "batch": {
        "sqlite3",
        "httpx",
        "t2v.dashscope",
        "t2v.intake",
        "t2v.push",
        "t2v.usecases.finalize",
        "t2v.usecases.submit",
        "t2v.usecases.poll",
        "t2v.api",
    },
}


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_traced_as_in_lambda_loads_only_its_own_modules(handler: str) -> None:
    # Given the handler imported with the environment Lambda gives it (tracing on)
    from t2v_bench.coldstart import template_env

    env = {"PATH": os.environ.get("PATH", ""), **template_env(handler)}
    done = subprocess.run(
        [sys.executable, "-c", LOADED, str(ROOT / "functions" / handler), str(ROOT / "layers" / "shared")],
        cwd=ROOT / "functions" / handler,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    # Then X-Ray is loaded, and nothing that belongs to another function is
    loaded = set(json.loads(done.stdout))
    assert "aws_xray_sdk" in loaded
    assert loaded & NOT_LOADED[handler] == set()
