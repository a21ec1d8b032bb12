"""The text-to-video request, exactly as the DashScope PixVerse v5.6 contract allows it.

Pure domain: no I/O. Every validation error names the field and the rule it broke.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

DEFAULT_MODEL: Final = "pixverse/pixverse-v5.6-t2v"
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


class RequestBase(BaseModel):
    """What every model family's request shares: the rules of prompt, duration, watermark, seed and
    model. Each family (t2v.families) adds its own fields and says what it sends the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    if TYPE_CHECKING:  # every family declares them (in its own field order, which its records keep)
        model: str
        prompt: str | None

    @field_validator("prompt", check_fields=False)
    @classmethod
    def _prompt_rule(cls, value: str | None) -> str | None:
        if value is None:
            return value
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

    @field_validator("duration", mode="before", check_fields=False)
    @classmethod
    def _duration_is_integer(cls, value: Any) -> Any:
        # Strict, as the booleans are: a JSON integer, never a string ("5") or a fraction (5.5).
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 5.0 is the JSON number 5
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("duration must be a JSON integer number of seconds: 5, 8 or 10")
        return value

    @field_validator("audio", "watermark", mode="before", check_fields=False)
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("must be a JSON boolean (true or false)")
        return value

    @field_validator("seed", mode="before", check_fields=False)
    @classmethod
    def _seed_rule(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED}]")
        if not 0 <= value <= MAX_SEED:
            raise ValueError(f"seed {value} is outside [0, {MAX_SEED}]")
        return value

    @property
    def billed_seconds(self) -> int:
        return int(getattr(self, "duration", 0))

    @property
    def images(self) -> tuple[MediaItem, ...]:
        """The images the request names (none for text-to-video)."""
        return tuple(getattr(self, "media", ()) or ())

    def expected_usage(self) -> dict[str, Any]:
        """What the provider's usage of a task made from this request shows (size, duration, audio);
        None where it cannot be told in advance."""
        raise NotImplementedError

    def to_provider_body(self, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The JSON body of DashScope's create-task call; `urls` replaces each image's url."""
        raise NotImplementedError


MediaType = Literal["image_url", "first_frame", "last_frame"]
MAX_URL_CHARS: Final = 2048


class MediaItem(BaseModel):
    """One image, in the provider's own shape: its role and where it is (`https://...`, or
    `s3://<the stack's bucket>/<key under the input-images prefix>`, checked at the door)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MediaType = Field(description="image_url (it2v), first_frame or last_frame (kf2v)")
    url: str = Field(description="https://... or s3://<bucket>/<key under the input-images prefix>")

    @field_validator("url")
    @classmethod
    def _url_rule(cls, value: str) -> str:
        if len(value) > MAX_URL_CHARS:
            raise ValueError(f"url has {len(value)} characters; at most {MAX_URL_CHARS}")
        if (
            value.startswith("https://")
            and len(value) > len("https://")
            and not any(c.isspace() for c in value)
        ):
            return value
        if value.startswith("s3://"):
            bucket, _, key = value.removeprefix("s3://").partition("/")
            if bucket and key and not key.endswith("/"):
                return value
            raise ValueError(f"url {shown(value)}: an s3:// url names a bucket and an object key")
        raise ValueError(f"url {shown(value)} must be https://... or s3://<bucket>/<key>")


class VideoRequest(RequestBase):
    """One text-to-video request (`pixverse/pixverse-v5.6-t2v`). Unknown fields are rejected so
    typos never pass silently."""

    prompt: Prompt = Field(description="What the video shows; Chinese or English, 1-2048 characters.")
    size: str = Field(default="1280*720", description="width*height, one of the 20 sizes of the contract.")
    duration: int = Field(default=5, description="Seconds: 5, 8 or 10 (1080P: 5 or 8). Billed per second.")
    audio: bool = Field(default=False, description="Generate background music / sound effects.")
    watermark: bool = Field(default=False, description='Add the "AI生成" watermark at the bottom right.')
    seed: int | None = Field(default=None, description="Random seed in [0, 2147483647].")
    model: str = Field(default=DEFAULT_MODEL, description="DashScope model name.")

    @field_validator("size")
    @classmethod
    def _size_rule(cls, value: str) -> str:
        if value not in SIZES:
            raise ValueError(f"size {shown(value)} is not one of the 20 supported sizes: {', '.join(SIZES)}")
        return value

    @field_validator("model")
    @classmethod
    def _model_rule(cls, value: str) -> str:
        if value != DEFAULT_MODEL:
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

    def expected_usage(self) -> dict[str, Any]:
        return {"size": self.output_size, "duration": self.duration, "audio": bool(self.audio)}

    def to_provider_body(self, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
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
