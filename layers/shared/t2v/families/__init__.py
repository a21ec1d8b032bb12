"""The model families, listed in one place. Parsing a request dispatches on its `model` (optional:
text-to-video when absent). Adding a family is one module here and its emulator rules.

Pure domain, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from t2v.errors import UnknownTierError
from t2v.families import it2v, kf2v, t2v, v6_it2v
from t2v.families.base import Family, ResolutionRequest
from t2v.request import (
    DEFAULT_MODEL,
    FieldError,
    InvalidRequestError,
    RequestBase,
    VideoRequest,
    bounded,
    shown,
)
from t2v.schedule import GenerationTier

FAMILIES: Final[tuple[Family, ...]] = (t2v.FAMILY, it2v.FAMILY, kf2v.FAMILY, v6_it2v.FAMILY)
REGISTRY: Final[dict[str, Family]] = {f.model: f for f in FAMILIES}
SUPPORTED_MODELS: Final = frozenset(REGISTRY)


class UnknownModelError(InvalidRequestError):
    """A `model` no family of the registry serves."""

    def __init__(self, model: object) -> None:
        text = model if isinstance(model, str) else repr(model)
        super().__init__(
            [FieldError("model", f"model {shown(text)} is not supported; use one of: {', '.join(REGISTRY)}")]
        )


def family_of(model: object) -> Family:
    """The family serving `model` (None: text-to-video), or UnknownModelError."""
    if model is None:
        return REGISTRY[DEFAULT_MODEL]
    if isinstance(model, str) and model in REGISTRY:
        return REGISTRY[model]
    raise UnknownModelError(model)


def family_of_request(request: RequestBase) -> Family:
    return family_of(getattr(request, "model", None))


def field_errors(errors: Iterable[Mapping[str, Any]], family: Family) -> list[FieldError]:
    """pydantic's errors for a request of `family` as the contract's field errors: each names its
    field and rule; a field of another family says what to use instead."""
    found: list[FieldError] = []
    for err in errors:
        # An unknown field's name is the caller's text: quote a bounded piece of it.
        loc = bounded(".".join(str(part) for part in err["loc"]), 100) or "request"
        message = bounded(str(err["msg"]).removeprefix("Value error, "), 300)
        for prefix in ("duration", "media"):
            if message.startswith(f"{prefix}: "):
                loc, message = prefix, message.removeprefix(f"{prefix}: ")
        if err["type"] == "extra_forbidden":
            hint = family.hints.get(str(err["loc"][0])) if err["loc"] else None
            if hint:
                message = f"not a field of {family.model}: {hint}"
            else:
                message = f"unknown field of {family.model}; allowed: " + ", ".join(
                    family.request.model_fields
                )
        elif err["type"] == "missing" and family.family != "t2v":
            message = f"{family.model} requires {loc}"
        found.append(FieldError(loc, message))
    return found


def parse_request(data: Any, defaults: Mapping[str, Any] | None = None) -> RequestBase:
    """Validate raw input (a dict from JSON) into its family's request, or raise InvalidRequestError.

    `defaults` (the deployment's) apply only where the family has the field: a default size never
    lands on an image family's request."""
    if not isinstance(data, dict):
        raise InvalidRequestError([FieldError("request", "must be a JSON object")])
    given = dict(defaults or {})
    family = family_of(data.get("model", given.get("model")))
    fields = family.request.model_fields
    merged = {**{k: v for k, v in given.items() if k in fields}, **data}
    try:
        return family.request.model_validate(merged)
    except ValidationError as exc:
        raise InvalidRequestError(field_errors(exc.errors(include_url=False), family)) from None


def tier_of(request: Mapping[str, Any]) -> GenerationTier:
    """The schedule's tier of a stored request (a job record's `request`), by its family. Text-to-video
    keeps today's keys (`720P/5s/silent`); an image family's are its own (`it2v/720P/5s/silent`).
    A model or size no family knows raises UnknownTierError."""
    model = request.get("model")
    if model is not None and model not in REGISTRY:
        raise UnknownTierError(str(model), what="model")
    family = family_of(model)
    if family.family == "t2v":
        return GenerationTier.of_text_request(request)
    resolution = str(request.get("resolution", "720P"))
    return GenerationTier.of_resolution(
        family.timings, resolution, int(request.get("duration", 5)), bool(request.get("audio"))
    )


def describe_models() -> dict[str, Any]:
    """`GET /v1/models`: every family, its fields, images and image limits, from this registry."""
    return {"models": [f.describe(default=f.model == DEFAULT_MODEL) for f in FAMILIES]}


def _tag(value: Any) -> str | None:
    if isinstance(value, dict):
        model = value.get("model", DEFAULT_MODEL)
        return model if isinstance(model, str) else None
    if isinstance(value, RequestBase):
        return str(getattr(value, "model", DEFAULT_MODEL))
    return None


# The API's body: the union of the families, picked by `model` (the OpenAPI document shows it).
AnyRequest = Annotated[
    Annotated[VideoRequest, Tag(t2v.MODEL)]
    | Annotated[it2v.ImageToVideoRequest, Tag(it2v.MODEL)]
    | Annotated[kf2v.KeyframesRequest, Tag(kf2v.MODEL)]
    | Annotated[v6_it2v.V6ImageToVideoRequest, Tag(v6_it2v.MODEL)],
    Discriminator(_tag, custom_error_type="unknown_model", custom_error_message="model is not supported"),
]
ANY_REQUEST: Final[TypeAdapter[RequestBase]] = TypeAdapter(AnyRequest)

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "SUPPORTED_MODELS",
    "AnyRequest",
    "Family",
    "ResolutionRequest",
    "UnknownModelError",
    "describe_models",
    "family_of",
    "family_of_request",
    "field_errors",
    "parse_request",
    "tier_of",
]
