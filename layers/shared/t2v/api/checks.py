"""Checks on HTTP input the request model does not make: media type, body encoding, cursors,
and the resolver's validation errors turned into the contract's field errors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from t2v.adapters.jobs_repo import InvalidCursorError, decode_cursor
from t2v.errors import PipelineError
from t2v.jsontext import loads
from t2v.request import FieldError, InvalidRequestError, parse_request

MAX_IDEMPOTENCY_KEY_CHARS: Final = 255


class UnsupportedMediaTypeError(PipelineError):
    """A request body that is not JSON (form data, multipart, XML...): answered 415, naming the header."""

    code = "UnsupportedMediaType"

    def __init__(self, content_type: str) -> None:
        self.errors = [FieldError("Content-Type", f"must be application/json, got {content_type[:100]!r}")]
        super().__init__(
            f"Content-Type: the request body must be JSON (application/json), got {content_type[:100]!r}"
        )


def check_body(headers: Mapping[str, Any] | None, body: str | None, *, is_base64: bool = False) -> None:
    """Refuse a body that is not JSON text before any parser for its media type runs.

    No Content-Type, `application/json` (any parameters) and `+json` types are JSON; any other is
    UnsupportedMediaTypeError. A base64 body (bytes that were not UTF-8) is InvalidRequestError.
    """
    if not body:
        return
    content_type = next((str(v) for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(content_type)
    if is_base64:
        try:
            base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequestError([FieldError("body", "must be UTF-8 JSON text")]) from None


def invalid_request(errors: Sequence[Mapping[str, Any]], raw_body: str | None) -> InvalidRequestError:
    """The HTTP layer's validation errors as the domain's field errors.

    Body errors are derived again by `parse_request`, so they read exactly like the contract's rules.
    """
    fields = [
        FieldError(str(e["loc"][-1]), str(e.get("msg", e["type"])).removeprefix("Value error, "))
        for e in errors
        if e["loc"][:1] != ("body",)
    ]
    if len(fields) < len(errors):
        fields.extend(_body_errors(raw_body))
    return InvalidRequestError(fields)


def _body_errors(raw_body: str | None) -> list[FieldError]:
    try:
        data = loads(raw_body) if raw_body else None
    except json.JSONDecodeError as exc:
        return [FieldError("body", f"not valid JSON: {exc}")]
    try:
        parse_request(data)
    except InvalidRequestError as exc:
        return exc.errors
    return [FieldError("body", "does not match the request schema")]


def check_cursor(cursor: str, *, owner: str | None = None) -> None:
    """A cursor is what `next_cursor` returned: exactly the shape of a list start key (of `owner`'s
    own listing, or of every job's when None)."""
    try:
        decode_cursor(cursor, owner=owner)
    except InvalidCursorError as exc:
        raise InvalidRequestError([FieldError("cursor", str(exc))]) from None
