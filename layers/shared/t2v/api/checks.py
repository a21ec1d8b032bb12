"""Checks on HTTP input the request model does not make: media type, body encoding, the caller's
base path, and the resolver's validation errors turned into the contract's field errors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from t2v.errors import PipelineError
from t2v.families import REGISTRY, UnknownModelError, family_of, field_errors
from t2v.jsontext import loads
from t2v.request import FieldError, InvalidRequestError

MAX_IDEMPOTENCY_KEY_CHARS: Final = 255


class UnsupportedMediaTypeError(PipelineError):
    """A request body that is not JSON (form data, multipart, XML...): answered 415, naming the header."""

    code = "UnsupportedMediaType"

    def __init__(self, content_type: str) -> None:
        self.errors = [FieldError("Content-Type", f"must be application/json, got {content_type[:100]!r}")]
        super().__init__(
            f"Content-Type: the request body must be JSON (application/json), got {content_type[:100]!r}"
        )


def check_body(
    headers: Mapping[str, Any] | None, body: str | None, *, is_base64: bool = False, method: str = "POST"
) -> None:
    """Refuse a body that is not a JSON object before any parser for its media type runs.

    No Content-Type, `application/json` (any parameters) and `+json` types are JSON; any other is
    UnsupportedMediaTypeError. A base64 body (bytes that were not UTF-8) is InvalidRequestError, and
    so is a POST body that is JSON but no object (the resolver would take the first item of an array).
    """
    if not body:
        return
    content_type = next((str(v) for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(content_type)
    text = body
    if is_base64:
        try:
            text = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequestError([FieldError("body", "must be UTF-8 JSON text")]) from None
    if method == "POST" and text.lstrip(" \t\r\n")[:1] != "{":
        try:
            loads(text)
        except json.JSONDecodeError:
            return  # the resolver reports where the JSON breaks
        raise InvalidRequestError([NOT_AN_OBJECT])


NOT_AN_OBJECT: Final = FieldError("request", "must be a JSON object")
# What the resolver reports at ("body",) for a body that is absent or no object.
_NOT_AN_OBJECT_TYPES: Final = frozenset({"missing", "model_type", "model_attributes_type", "dict_type"})


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidRequestError:
    """The resolver's validation errors as the contract's field errors.

    The resolver's body model is the union of the model families (t2v.families.AnyRequest), picked
    by `model`, so its validation is the one the request gets; its errors are phrased here exactly as
    `parse_request` phrases them (the family's tag in each error's location is dropped).
    """
    fields = [
        FieldError(str(e["loc"][-1]), str(e.get("msg", e["type"])).removeprefix("Value error, "))
        for e in errors
        if e["loc"][:1] != ("body",)
    ]
    body = [e for e in errors if e["loc"][:1] == ("body",)]
    broken = next((e for e in body if e["type"] == "json_invalid"), None)
    if broken is not None:
        fields.append(
            FieldError("body", f"not valid JSON: {(broken.get('ctx') or {}).get('error', broken['msg'])}")
        )
    elif any(tuple(e["loc"]) == ("body",) and e["type"] in _NOT_AN_OBJECT_TYPES for e in body):
        fields.append(NOT_AN_OBJECT)
    elif unknown := next((e for e in body if e["type"] == "unknown_model"), None):
        given = unknown.get("input")
        fields.extend(UnknownModelError(given.get("model") if isinstance(given, dict) else None).errors)
    else:
        by_family: dict[str, list[Mapping[str, Any]]] = {}
        for e in body:
            tagged = len(e["loc"]) > 1 and e["loc"][1] in REGISTRY
            model = str(e["loc"][1]) if tagged else next(iter(REGISTRY))
            by_family.setdefault(model, []).append({**e, "loc": tuple(e["loc"][2 if tagged else 1 :])})
        for model, found in by_family.items():
            fields.extend(field_errors(found, family_of(model)))
    return InvalidRequestError(fields)


def base_path(request_path: str | None, resource_path: str | None, stage: str | None) -> str:
    """The prefix before the routes in the URL the caller used: API Gateway's requestContext.path
    (`/v1/videos`, or a custom domain's base path) less the event's path (`/videos`); the stage
    when they do not line up."""
    if request_path and resource_path and request_path.endswith(resource_path):
        return request_path[: len(request_path) - len(resource_path)].rstrip("/")
    return f"/{stage}" if stage else ""
