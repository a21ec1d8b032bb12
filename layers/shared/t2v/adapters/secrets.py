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
    """Reads the key from a secret holding either the bare key or JSON {"api_key": "..."}."""

    def __init__(
        self,
        secret_id: str,
        *,
        client: SecretsManagerClient | None = None,
        max_age_seconds: int = CACHE_SECONDS,
    ) -> None:
        self._secret_id = secret_id
        self._client = client
        self._max_age = max_age_seconds
        self._provider: Any = None

    def __repr__(self) -> str:
        return f"ApiKeyProvider(secret_id={self._secret_id!r})"

    def get(self) -> str:
        from aws_lambda_powertools.utilities.parameters import GetParameterError, SecretsProvider

        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=self._client)
        try:
            raw = self._provider.get(self._secret_id, max_age=self._max_age)
        except GetParameterError as exc:
            raise SecretError(f"secret {self._secret_id} could not be read: {exc}") from None
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return _extract_key(text, self._secret_id)


def _extract_key(raw: str, secret_id: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise SecretError(f"secret {secret_id} is not valid JSON") from None
        text = str(data.get("api_key") or data.get("DASHSCOPE_API_KEY") or "").strip()
    if not text:
        raise SecretError(f'secret {secret_id} holds no API key (expected the key or {{"api_key": ...}})')
    return text
