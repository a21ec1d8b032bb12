"""Where the API is: the sandbox's `.sandbox/endpoints.json` or a deployed stack's outputs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from botocore.credentials import Credentials, ReadOnlyCredentials

from t2v_client.errors import CliError, ExitCode

DEFAULT_ENDPOINTS: Final = Path(".sandbox/endpoints.json")


@dataclass(frozen=True)
class Target:
    api_url: str  # e.g. http://127.0.0.1:PORT/Prod or https://ID.execute-api.REGION.amazonaws.com/Prod
    region: str
    credentials: Credentials | ReadOnlyCredentials | None  # None: unsigned (API key mode or no auth)
    api_key: str | None = None


def sandbox_target(endpoints_file: Path = DEFAULT_ENDPOINTS) -> Target:
    try:
        endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"no sandbox endpoints at {endpoints_file}: start one with `t2v sandbox up` (or pass --stack NAME)",
            ExitCode.UNREACHABLE,
        ) from None
    except ValueError as exc:
        raise CliError(f"{endpoints_file} is not valid JSON: {exc}", ExitCode.UNREACHABLE) from None
    api_url = endpoints.get("api_url")
    if not api_url:
        raise CliError(
            f"the sandbox in {endpoints_file} has no REST API (template.yaml declares none yet)",
            ExitCode.UNREACHABLE,
        )
    creds = endpoints.get("credentials") or {}
    return Target(
        api_url=str(api_url).rstrip("/"),
        region=str(endpoints.get("region") or "us-east-1"),
        credentials=Credentials(str(creds.get("aws_access_key_id")), str(creds.get("aws_secret_access_key"))),
        api_key=os.environ.get("T2V_API_KEY"),
    )


def api_url_from_outputs(outputs: dict[str, str]) -> str | None:
    """The API's base URL among stack outputs: a key naming an API URL, else any execute-api URL."""
    for key in ("ApiUrl", "ApiEndpoint", "ApiBaseUrl", "RestApiUrl"):
        if outputs.get(key):
            return outputs[key].rstrip("/")
    for value in outputs.values():
        if isinstance(value, str) and ".execute-api." in value and value.startswith("https://"):
            return value.rstrip("/")
    return None
