"""What a model family is: the request it accepts, the images it takes, the limits on them, and how
it describes itself to `GET /v1/models`. Pure domain, no I/O.

Limits the provider's DashScope pages do not confirm are data here, marked `unconfirmed`, so
that correcting one is a one-line change (see ../shared/dashscope-families.md and the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Self, cast

from pydantic import Field, field_validator, model_validator

from t2v.request import DURATIONS, MAX_PROMPT_CHARS, MAX_SEED, RequestBase, Tier, shown

FamilyName = Literal["t2v", "it2v", "kf2v"]
RESOLUTIONS: Final[tuple[Tier, ...]] = ("360P", "540P", "720P", "1080P")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an input image may be. Every number is data, easy to correct."""

    formats: tuple[str, ...] = ("jpeg", "png", "webp")
    max_bytes: int = 20 * 1024 * 1024
    min_side: int | None = None  # the PixVerse pages name no minimum
    max_side: int = 10_000
    max_pixels: int = 10_000 * 10_000
    # Which of the above DashScope's own pages do not confirm (PixVerse's upload API, via resellers).
    unconfirmed: tuple[str, ...] = ("max_bytes", "min_side", "max_side", "max_pixels")

    def describe(self) -> dict[str, Any]:
        return {
            "formats": list(self.formats),
            "max_bytes": self.max_bytes,
            "min_side": self.min_side,
            "max_side": self.max_side,
            "max_pixels": self.max_pixels,
            "unconfirmed": list(self.unconfirmed),
        }


# PixVerse's own upload limits as resellers quote them: not confirmed for DashScope.
PIXVERSE_IMAGE_LIMITS: Final = ImageLimits()


@dataclass(frozen=True, slots=True)
class MediaSlot:
    type: Literal["image_url", "first_frame", "last_frame"]
    required: bool = True

    def describe(self) -> dict[str, Any]:
        return {"type": self.type, "required": self.required}


@dataclass(frozen=True, slots=True)
class Family:
    """One model family: its full model name, its request model, its images and its limits."""

    model: str
    family: FamilyName
    request: type[RequestBase]
    fields: Mapping[str, Mapping[str, Any]]
    media: tuple[MediaSlot, ...] = ()
    image_limits: ImageLimits | None = None
    # A field of another family named here is refused with this advice (e.g. size on it2v).
    hints: Mapping[str, str] = field(default_factory=dict)
    # The schedule learns timings under this key (the family's name unless the model needs its own).
    timing_key: str = ""

    @property
    def timings(self) -> str:
        return self.timing_key or self.family

    def describe(self, *, default: bool) -> dict[str, Any]:
        """This family as `GET /v1/models` lists it."""
        return {
            "model": self.model,
            "family": self.family,
            "default": default,
            "fields": {name: dict(spec) for name, spec in self.fields.items()},
            "media": [slot.describe() for slot in self.media],
            "image_limits": self.image_limits.describe() if self.image_limits else None,
        }


def image_family(
    model: str,
    family: FamilyName,
    request: type[RequestBase],
    *,
    media: tuple[MediaSlot, ...],
    prompt_required: bool,
    timing_key: str = "",
) -> Family:
    """An image family's entry: its fields as GET /v1/models lists them, its images and their limits."""
    return Family(
        model=model,
        family=family,
        request=request,
        fields={
            "model": {**model_field(model), "required": True},
            "prompt": prompt_field(required=prompt_required),
            "media": media_field(),
            "resolution": resolution_field(),
            "duration": duration_field(),
            "audio": flag_field(),
            "watermark": flag_field(),
            "seed": seed_field(),
        },
        media=media,
        image_limits=PIXVERSE_IMAGE_LIMITS,
        hints={"size": "use resolution (360P, 540P, 720P or 1080P)"},
        timing_key=timing_key,
    )


def prompt_field(*, required: bool) -> dict[str, Any]:
    return {"type": "string", "required": required, "max_length": MAX_PROMPT_CHARS}


def duration_field() -> dict[str, Any]:
    choices = sorted({d for allowed in DURATIONS.values() for d in allowed})
    return {"type": "integer", "required": False, "choices": choices, "default": 5}


def flag_field() -> dict[str, Any]:
    return {"type": "boolean", "required": False, "default": False}


def seed_field() -> dict[str, Any]:
    return {"type": "integer", "required": False, "min": 0, "max": MAX_SEED}


def resolution_field() -> dict[str, Any]:
    return {"type": "string", "required": False, "choices": list(RESOLUTIONS), "default": "720P"}


def model_field(model: str) -> dict[str, Any]:
    return {"type": "string", "required": False, "choices": [model], "default": model}


def media_field() -> dict[str, Any]:
    return {"type": "media", "required": True}


class ResolutionRequest(RequestBase):
    """The rules image families share: a `resolution` tier instead of a size, durations by tier,
    and images in the provider's `media` list. Subclasses declare the fields and `MEDIA` roles."""

    MEDIA: ClassVar[tuple[str, ...]] = ()

    resolution: str = Field(default="720P", description="360P, 540P, 720P or 1080P.")
    duration: int = Field(default=5, description="Seconds: 5, 8 or 10 (1080P: 5 or 8). Billed per second.")
    audio: bool = Field(default=False, description="Generate background music / sound effects.")
    watermark: bool = Field(default=False, description='Add the "AI生成" watermark at the bottom right.')
    seed: int | None = Field(default=None, description="Random seed in [0, 2147483647].")

    @field_validator("resolution", check_fields=False)
    @classmethod
    def _resolution_rule(cls, value: str) -> str:
        if value not in RESOLUTIONS:
            raise ValueError(f"resolution {shown(value)} is not one of {', '.join(RESOLUTIONS)}")
        return value

    @model_validator(mode="after")
    def _duration_and_media_rules(self) -> Self:
        allowed = DURATIONS[self.resolution_tier]
        duration = int(getattr(self, "duration", 5))
        if duration not in allowed:
            choices = ", ".join(str(d) for d in allowed)
            raise ValueError(
                f"duration: {duration} s is not allowed for {self.resolution_tier}; allowed: {choices}"
            )
        roles = [item.type for item in self.images]
        want = list(self.MEDIA)
        if sorted(roles) != sorted(want):
            model = getattr(self, "model", "")
            missing = [r for r in want if r not in roles]
            extra = [r for r in roles if r not in want or roles.count(r) > want.count(r)]
            parts = []
            if missing:
                parts.append("missing " + " and ".join(f"a {r} image" for r in missing))
            if extra:
                parts.append("unexpected " + ", ".join(sorted(set(extra))))
            expected = " and ".join(f'one {{"type": "{r}", "url": ...}}' for r in want)
            raise ValueError(f"media: {'; '.join(parts)}; {model} takes {expected}")
        return self

    @property
    def resolution_tier(self) -> Tier:
        return cast("Tier", getattr(self, "resolution", "720P"))

    def expected_usage(self) -> dict[str, Any]:
        # The output size follows the image's aspect: unknown until the provider has it.
        return {
            "size": None,
            "duration": getattr(self, "duration", None),
            "audio": bool(getattr(self, "audio", False)),
        }

    def to_provider_body(self, urls: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The create-task body; `urls` replaces an image's url (an s3:// object's presigned GET URL)."""
        resolved = urls or {}
        data = self.model_dump(exclude_none=True)
        parameters: dict[str, Any] = {
            "resolution": data["resolution"],
            "duration": data["duration"],
            "watermark": data["watermark"],
        }
        if data.get("audio"):
            parameters["audio"] = True
        if "seed" in data:
            parameters["seed"] = data["seed"]
        media = [{"type": m.type, "url": resolved.get(m.url, m.url)} for m in self.images]
        body_input: dict[str, Any] = {"media": media}
        if data.get("prompt") is not None:
            body_input = {"prompt": data["prompt"], **body_input}
        return {"model": data["model"], "input": body_input, "parameters": parameters}
