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

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ("submit", "status", "finalize", "intake", "api")
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
