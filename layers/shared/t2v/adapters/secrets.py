"""Secrets Manager adapter: the DashScope API key, cached per container, never logged."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from t2v.adapters import boto3_module
from t2v.errors import PipelineError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

CACHE_SECONDS = 300


class SecretError(PipelineError):
    code = "SecretError"


class ApiKeyProvider:
    """Reads a secret value (by default the DashScope key) from a secret holding either the bare value
    or a JSON object with one of `fields` (by default {"api_key": "..."})."""

    def __init__(
        self,
        secret_id: str,
        *,
        client: SecretsManagerClient | None = None,
        fields: tuple[str, ...] = ("api_key", "DASHSCOPE_API_KEY"),
        what: str = "API key",
    ) -> None:
        self._secret_id = secret_id
        self._client = client
        self._fields = fields
        self._what = what
        self._value: str | None = None
        self._fetched_at = 0.0

    def __repr__(self) -> str:
        return f"ApiKeyProvider(secret_id={self._secret_id!r})"

    def get(self, *, fresh: bool = False) -> str:
        """The key, from the cache unless it is older than CACHE_SECONDS or `fresh` asks to read it again
        (the provider refused the cached key: it may have been rotated)."""
        if fresh or self._value is None or time.monotonic() - self._fetched_at > CACHE_SECONDS:
            client: Any = self._client or boto3_module().client("secretsmanager")
            raw = str(client.get_secret_value(SecretId=self._secret_id).get("SecretString") or "")
            self._value = _extract_key(raw, self._secret_id, self._fields, self._what)
            self._fetched_at = time.monotonic()
        return self._value


def _extract_key(
    raw: str,
    secret_id: str,
    fields: tuple[str, ...] = ("api_key", "DASHSCOPE_API_KEY"),
    what: str = "API key",
) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise SecretError(f"secret {secret_id} is not valid JSON") from None
        text = next((str(data[f]).strip() for f in fields if data.get(f)), "")
    if not text:
        raise SecretError(
            f'secret {secret_id} holds no {what} (expected the value or {{"{fields[0]}": ...}})'
        )
    return text
