"""The sandbox patches moto's private names, so it refuses any moto but the one they were written for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from t2v_sandbox import patches
from t2v_sandbox.cli import main
from t2v_sandbox.sandbox import Sandbox, SandboxConfig

from tests.conftest import ROOT

OTHER_MOTO = "5.2.6"


@pytest.fixture
def other_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "installed_moto_version", lambda: OTHER_MOTO)


def test_the_version_the_patches_assume_is_the_pin_in_pyproject() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    pins = [m.group(1) for pin in extras["sandbox"] if (m := re.fullmatch(r"moto\[server\]==(\S+)", pin))]
    assert pins == [patches.MOTO_VERSION]


def test_the_installed_moto_is_the_one_the_patches_assume() -> None:
    assert patches.installed_moto_version() == patches.MOTO_VERSION
    patches.check_moto_version()


def test_another_moto_is_refused_before_any_patch(other_moto: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a process where nothing is patched yet, and patches that record being applied
    applied: list[str] = []
    monkeypatch.setattr(patches._State, "installed", False)
    for name in ("_patch_lambda", "_patch_s3_notifications", "_patch_events", "_patch_stepfunctions_time"):
        monkeypatch.setattr(patches, name, lambda name=name: applied.append(name))
    monkeypatch.setattr(patches.moto_atomic, "install", lambda: applied.append("moto_atomic"))
    monkeypatch.setattr(patches.patches_map, "install", lambda: applied.append("patches_map"))

    # When the sandbox installs its patches with moto 5.2.6 installed
    with pytest.raises(patches.MotoVersionError) as refused:
        patches.install()

    # Then it refuses, naming both versions, and patched nothing
    assert refused.value.installed == OTHER_MOTO
    assert f"moto {OTHER_MOTO} is installed" in str(refused.value)
    assert f"moto {patches.MOTO_VERSION}" in str(refused.value)
    assert applied == []
    assert patches._State.installed is False


def test_no_moto_at_all_is_left_to_the_import_that_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patches, "installed_moto_version", lambda: None)
    patches.check_moto_version()


def test_a_sandbox_refuses_another_moto_before_starting_anything(other_moto: None, tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxConfig(work_dir=tmp_path))
    with pytest.raises(patches.MotoVersionError, match=OTHER_MOTO):
        sandbox.start()
    assert Sandbox._active is None
    assert sandbox.moto_url == ""


def test_sandbox_up_prints_the_refusal_not_a_traceback(
    other_moto: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sandbox", "up", "--work-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert f"error: the sandbox patches moto's internals as of moto {patches.MOTO_VERSION}" in out
    assert f"moto {OTHER_MOTO} is installed" in out
    assert "Traceback" not in out + err
