"""The e2e tier's sandboxes: the real template against the emulator, with fast timers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from t2v_sandbox.user_sandbox import UserSandbox, config_for

from tests.e2e.test_e2e import TEMPLATE


def emulated_sandbox(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    overrides: dict[str, str],
    *,
    push: bool | None = None,
    pending_seconds: float = 0.5,
    running_seconds: float = 1.0,
) -> Iterator[UserSandbox]:
    """A module fixture's body: one sandbox in its own work dir (`push`: None keeps the default)."""
    if os.environ.get("DASHSCOPE_API_KEY"):
        pytest.skip("the e2e tier runs against the emulator only (unset DASHSCOPE_API_KEY)")
    config = config_for(
        TEMPLATE,
        work_dir=tmp_path_factory.mktemp(name),
        overrides=overrides,
        pending_seconds=pending_seconds,
        running_seconds=running_seconds,
        write_endpoints=False,
    )
    if push is not None:
        config.push = push
    with UserSandbox(config) as sandbox:
        yield sandbox
