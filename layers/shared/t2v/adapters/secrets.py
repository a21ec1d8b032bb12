"""Secrets Manager adapter: the DashScope API key, cached per container, never logged.

Powertools Parameters' SecretsProvider fetches and caches the secret (max_age); this adapter adds
the key's two accepted formats and a typed error. Powertools' module imports boto3, so it is
imported when the key is first needed, not when a handler is imported.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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
        max_age_seconds: int = CACHE_SECONDS,
        fields: tuple[str, ...] = ("api_key", "DASHSCOPE_API_KEY"),
        what: str = "API key",
    ) -> None:
        self._secret_id = secret_id
        self._client = client
        self._max_age = max_age_seconds
        self._fields = fields
        self._what = what
        self._provider: Any = None

    def __repr__(self) -> str:
        return f"ApiKeyProvider(secret_id={self._secret_id!r})"

    def get(self, *, fresh: bool = False) -> str:
        """The key, from the cache unless it is older than its max age or `fresh` asks to read it again
        (the provider refused the cached key: it may have been rotated)."""
        from aws_lambda_powertools.utilities.parameters import GetParameterError, SecretsProvider

        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client)
        try:
            raw = self._provider.get(self._secret_id, max_age=self._max_age, force_fetch=fresh)
        except GetParameterError as exc:
            raise SecretError(f"secret {self._secret_id} could not be read: {exc}") from None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return _extract_key(text, self._secret_id, self._fields, self._what)


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
