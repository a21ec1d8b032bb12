"""DynamoDB in moto is not safe under concurrent requests: two conditional updates of one item
can both pass their condition (seen here: a budget capped at 6 charges let 7 through), and a scan
beside a write can fail with "dictionary changed size during iteration". Real DynamoDB applies
each conditional write atomically, and the pipeline's exactly-once promises rest on that, so the
sandbox and the integration tests' moto server serialize DynamoDB requests.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Make every DynamoDB request to this process's moto atomic (idempotent)."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _lock:
        if _installed:
            return
        from moto.dynamodb.responses import DynamoHandler

        original = DynamoHandler.call_action

        def call_action(self: Any) -> Any:
            with _lock:
                return original(self)

        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        _installed = True
