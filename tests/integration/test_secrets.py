"""The DashScope key from Secrets Manager (moto over HTTP): both formats, the cache, typed errors."""

from __future__ import annotations

import uuid

import boto3
import pytest
from t2v.adapters.secrets import ApiKeyProvider, SecretError

pytestmark = pytest.mark.integration


@pytest.fixture
def secret(moto_server: str) -> str:
    name = f"t2v/key-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString="sk-first")
    return name


@pytest.mark.parametrize(
    "stored", ["sk-first", "  sk-first\n", '{"api_key": "sk-first"}', '{"DASHSCOPE_API_KEY": "sk-first"}']
)
def test_the_key_is_read_in_either_format(secret: str, stored: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=stored)
    assert ApiKeyProvider(secret).get() == "sk-first"


def test_the_key_is_cached_until_max_age_then_a_rotation_is_seen(secret: str) -> None:
    # Given a provider that read the key once
    cached, fresh = ApiKeyProvider(secret), ApiKeyProvider(secret, max_age_seconds=0)
    assert cached.get() == fresh.get() == "sk-first"
    # When the secret is rotated
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString="sk-second")
    # Then the cached provider keeps the key it has, one whose cache expired reads the new one
    assert cached.get() == "sk-first"
    assert fresh.get() == "sk-second"


def test_a_missing_secret_is_a_typed_error_naming_it(moto_server: str) -> None:
    with pytest.raises(SecretError, match=r"secret t2v/absent could not be read"):
        ApiKeyProvider("t2v/absent").get()


def test_json_without_a_key_names_the_expected_format(secret: str) -> None:
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString='{"other": "x"}')
    with pytest.raises(
        SecretError, match=r'holds no API key \(expected the value or \{"api_key": \.\.\.\}\)'
    ):
        ApiKeyProvider(secret).get()
    assert "x" not in repr(ApiKeyProvider(secret))
