"""The README's first deploy, run against the sandbox where its steps apply: submit with `--wait`
and save the MP4, upload a prompt file (`t2v upload` once it exists, the README's boto3 and AWS CLI
recipes for the sandbox meanwhile) and see its job in `t2v list`. Setting the owner and admin,
`make deploy` and `t2v teardown` need AWS; the unit tier checks their flags
(tests/unit/test_readme_deploy.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from t2v_sandbox.user_sandbox import UserSandbox, config_for

from tests.e2e.test_e2e import TEMPLATE
from tests.readme import Command, bash_blocks, commands, section, t2v_commands

FIRST_DEPLOY = section("Deploying to AWS").split("### First deploy in five lines", 1)[1].split("\n### ", 1)[0]
SANDBOX_UPLOADS = section("The sandbox and the `t2v` command").split("### Prompt files in the sandbox", 1)[1]
SANDBOX_UPLOADS = SANDBOX_UPLOADS.split("\n### ", 1)[0]
FOR_AWS_ONLY = ("--stack", "--region")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory as a user's shell would be in: the sandbox's `.sandbox/endpoints.json` under it."""
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    root = tmp_path_factory.mktemp("readme-steps")
    config = config_for(TEMPLATE, work_dir=root / ".sandbox", pending_seconds=0.3, running_seconds=0.7)
    with UserSandbox(config):
        yield root


def first_deploy_steps() -> list[Command]:
    return [
        c
        for c in commands(f"```bash\n{bash_blocks(FIRST_DEPLOY)[1]}```")
        if c.argv[0].endswith("/t2v") or c.argv[0] == "echo"
    ]


def on_the_sandbox(argv: list[str]) -> list[str]:
    """A README `t2v` command as the sandbox takes it: without the options that name a stack."""
    args: list[str] = []
    skip = False
    for word in argv[1:]:
        if skip:
            skip = False
        elif word in FOR_AWS_ONLY:
            skip = True
        else:
            args.append(word)
    return args


def t2v(workdir: Path, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "t2v_sandbox.cli", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def jobs_of(workdir: Path, key: str) -> list[dict[str, Any]]:
    listed = t2v(workdir, ["list", "--json", "--limit", "100"])
    assert listed.returncode == 0, listed.stderr
    return [job for job in json.loads(listed.stdout)["items"] if (job.get("origin") or {}).get("key") == key]


def wait_for_jobs(workdir: Path, key: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = jobs_of(workdir, key)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def step(name: str) -> Command:
    return next(c for c in first_deploy_steps() if c.argv[1] == name or c.argv[0] == name)


def test_submit_with_wait_saves_the_video(workdir: Path) -> None:
    # Given the README's submit line, When it runs on the sandbox
    done = t2v(workdir, on_the_sandbox(step("submit").argv))
    # Then it ends 0 with the MP4 where --output says
    assert done.returncode == 0, done.stderr
    output = step("submit").argv[step("submit").argv.index("--output") + 1]
    assert (workdir / output).read_bytes()[4:8] == b"ftyp"


def test_an_uploaded_prompt_file_shows_in_the_list(workdir: Path) -> None:
    echo = step("echo")
    text, target = echo.argv[1], echo.argv[echo.argv.index(">") + 1]
    (workdir / target).write_text(text + "\n", encoding="utf-8")
    before = {job["job_id"] for job in jobs_of(workdir, f"prompts/{target}")}
    if "upload" in t2v_commands():
        uploaded = t2v(workdir, on_the_sandbox(step("upload").argv))
        assert uploaded.returncode == 0, uploaded.stderr
    else:  # the README's boto3 recipe, until `t2v upload` arrives
        (recipe,) = [block for block in bash_blocks(SANDBOX_UPLOADS) if "<<'EOF'" in block]
        script = recipe.replace(".venv/bin/python", sys.executable, 1)
        ran = subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True, text=True, check=False)
        assert ran.returncode == 0, ran.stderr

    (job,) = [
        j for j in wait_for_jobs(workdir, f"prompts/{target}", len(before) + 1) if j["job_id"] not in before
    ]
    assert job["origin"]["door"] == "s3"
    listed = t2v(workdir, on_the_sandbox(step("list").argv))
    assert listed.returncode == 0, listed.stderr
    assert job["job_id"] in listed.stdout


@pytest.mark.skipif(not (shutil.which("aws") and shutil.which("jq")), reason="needs the AWS CLI and jq")
def test_the_aws_cli_recipe_uploads_into_the_sandbox(workdir: Path) -> None:
    (recipe,) = [block for block in bash_blocks(SANDBOX_UPLOADS) if "--endpoint-url" in block]
    (workdir / "storm.txt").write_text("a lighthouse in a storm, again\n", encoding="utf-8")
    before = len(jobs_of(workdir, "prompts/storm.txt"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    ran = subprocess.run(
        ["bash", "-c", recipe], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    # A new version of the same key is a new file: one more job
    assert len(wait_for_jobs(workdir, "prompts/storm.txt", before + 1)) == before + 1
