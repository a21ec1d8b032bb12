"""The text-to-video request, exactly as the DashScope PixVerse v5.6 contract allows it.

Pure domain: no I/O. Every validation error names the field and the rule it broke.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_MODEL: Final = "pixverse/pixverse-v5.6-t2v"
SUPPORTED_MODELS: Final = frozenset({DEFAULT_MODEL})
MAX_PROMPT_CHARS: Final = 2048
MAX_SEED: Final = 2_147_483_647
# What a refusal may quote of a value, and what is kept of a refused request's text.
MAX_SHOWN_CHARS: Final = 40
REFUSED_PREFIX_CHARS: Final = 200


def bounded(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters (the cut marked with an ellipsis)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: str) -> str:
    """A value quoted in an error message: never more than MAX_SHOWN_CHARS of it."""
    return repr(bounded(value, MAX_SHOWN_CHARS))


Tier = Literal["360P", "540P", "720P", "1080P"]


@dataclass(frozen=True, slots=True)
class SizeSpec:
    size: str
    tier: Tier
    aspect: str

    @property
    def width(self) -> int:
        return int(self.size.split("*")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("*")[1])


def _row(tier: Tier, sizes: tuple[str, str, str, str, str]) -> list[SizeSpec]:
    aspects = ("16:9", "4:3", "1:1", "3:4", "9:16")
    return [SizeSpec(size, tier, aspect) for size, aspect in zip(sizes, aspects, strict=True)]


SIZES: Final[dict[str, SizeSpec]] = {
    spec.size: spec
    for spec in [
        *_row("360P", ("640*360", "640*480", "640*640", "480*640", "360*640")),
        *_row("540P", ("1024*576", "1024*768", "1024*1024", "768*1024", "576*1024")),
        *_row("720P", ("1280*720", "1280*960", "1280*1280", "960*1280", "720*1280")),
        *_row("1080P", ("1920*1080", "1920*1440", "1808*1808", "1440*1920", "1080*1920")),
    ]
}
DURATIONS: Final[dict[Tier, tuple[int, ...]]] = {
    "360P": (5, 8, 10),
    "540P": (5, 8, 10),
    "720P": (5, 8, 10),
    "1080P": (5, 8),
}


def output_size(size: str, duration: int) -> str:
    """The resolution the provider actually delivers (1808*1808 for 8 s comes out as 1440*1440)."""
    if size == "1808*1808" and duration == 8:
        return "1440*1440"
    return size


Prompt = Annotated[str, StringConstraints(strip_whitespace=False)]


class VideoRequest(BaseModel):
    """One video to generate. Unknown fields are rejected so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    prompt: Prompt = Field(description="What the video shows; Chinese or English, 1-2048 characters.")
    size: str = Field(default="1280*720", description="width*height, one of the 20 sizes of the contract.")
    duration: int = Field(default=5, description="Seconds: 5, 8 or 10 (1080P: 5 or 8). Billed per second.")
    audio: bool = Field(default=False, description="Generate background music / sound effects.")
    watermark: bool = Field(default=False, description='Add the "AI生成" watermark at the bottom right.')
    seed: int | None = Field(default=None, description="Random seed in [0, 2147483647].")
    model: str = Field(default=DEFAULT_MODEL, description="DashScope model name.")

    @field_validator("prompt")
    @classmethod
    def _prompt_rule(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be empty or whitespace only")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("prompt must be valid Unicode text (it holds an unpaired surrogate)") from None
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(
                f"prompt has {len(value)} characters; the provider allows at most {MAX_PROMPT_CHARS} "
                "(it would silently truncate the rest)"
            )
        return value

    @field_validator("size")
    @classmethod
    def _size_rule(cls, value: str) -> str:
        if value not in SIZES:
            raise ValueError(f"size {shown(value)} is not one of the 20 supported sizes: {', '.join(SIZES)}")
        return value

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_is_integer(cls, value: Any) -> Any:
        # Strict, as the booleans are: a JSON integer, never a string ("5") or a fraction (5.5).
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 5.0 is the JSON number 5
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("duration must be a JSON integer number of seconds: 5, 8 or 10")
        return value

    @field_validator("audio", "watermark", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("must be a JSON boolean (true or false)")
        return value

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_rule(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}]")
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"seed {value} is outside [0, {MAX_SEED}]")
        return value

    @field_validator("model")
    @classmethod
    def _model_rule(cls, value: str) -> str:
        if value not in SUPPORTED_MODELS:
            raise ValueError(f"model {shown(value)} is not supported; use {DEFAULT_MODEL!r}")
        return value

    @model_validator(mode="after")
    def _duration_rule(self) -> VideoRequest:
        tier = SIZES[self.size].tier
        allowed = DURATIONS[tier]
        if self.duration not in allowed:
            choices = ", ".join(str(d) for d in allowed)
            raise ValueError(
                f"duration: {self.duration} s is not allowed for {tier} size {self.size}; allowed: {choices}"
            )
        return self

    @property
    def tier(self) -> Tier:
        return SIZES[self.size].tier

    @property
    def output_size(self) -> str:
        return output_size(self.size, self.duration)

    @property
    def billed_seconds(self) -> int:
        return self.duration

    def to_provider_body(self) -> dict[str, Any]:
        """The JSON body of DashScope's create-task call."""
        parameters: dict[str, Any] = {
            "size": self.size,
            "duration": self.duration,
            "audio": self.audio,
            "watermark": self.watermark,
        }
        if self.seed is not None:
            parameters["seed"] = self.seed
        return {"model": self.model, "input": {"prompt": self.prompt}, "parameters": parameters}


class RefusedRequest(BaseModel):
    """What is kept and announced of a refused request: enough to find it again (its digest, size
    and first characters), never all of it, so no record or message outgrows its store."""

    model_config = ConfigDict(frozen=True)

    sha256: str = Field(description="SHA-256 of the request's text (UTF-8), hex")
    bytes: int = Field(description="Size of the request's text in UTF-8 bytes")
    prefix: str = Field(description=f"The first {REFUSED_PREFIX_CHARS} characters of the request's text")

    @classmethod
    def of(cls, text: str) -> RefusedRequest:
        data = text.encode("utf-8", "surrogatepass")
        # A lone surrogate (an escape in a JSON event) cannot be stored as text: keep it escaped.
        prefix = (
            text[:REFUSED_PREFIX_CHARS].encode("utf-8", "backslashreplace").decode()[:REFUSED_PREFIX_CHARS]
        )
        return cls(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), prefix=prefix)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidRequestError(ValueError):
    """The request broke a rule of the contract. `errors` names each field and its rule."""

    code = "InvalidRequest"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """pydantic's errors for a request as the contract's field errors: each names its field and rule."""
    found: list[FieldError] = []
    for err in errors:
        # An unknown field's name is the caller's text: quote a bounded piece of it.
        loc = bounded(".".join(str(part) for part in err["loc"]), 100) or "request"
        message = bounded(str(err["msg"]).removeprefix("Value error, "), 300)
        if message.startswith("duration: "):
            loc, message = "duration", message.removeprefix("duration: ")
        elif err["type"] == "extra_forbidden":
            message = "unknown field; allowed: " + ", ".join(VideoRequest.model_fields)
        found.append(FieldError(loc, message))
    return found


def parse_request(data: Any, defaults: dict[str, Any] | None = None) -> VideoRequest:
    """Validate raw input (a dict from JSON) into a VideoRequest, or raise InvalidRequestError."""
    if not isinstance(data, dict):
        raise InvalidRequestError([FieldError("request", "must be a JSON object")])
    merged = {**(defaults or {}), **data}
    try:
        return VideoRequest.model_validate(merged)
    except ValidationError as exc:
        raise InvalidRequestError(field_errors(exc.errors(include_url=False))) from None
