"""Validation of the create-task body, with the codes and messages of the real service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from dashscope_emulator.rules import (
    IMAGE_MODELS,
    MODELS,
    PROMPT_MAX_CHARS,
    PROMPT_OPTIONAL,
    RESOLUTIONS,
    SEED_MAX,
    SIZE_TIERS,
    TIER_DURATIONS,
)


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class CreateRequest:
    model: str
    prompt: str
    size: str
    duration: int
    audio: bool
    watermark: bool
    seed: int | None
    parameters: dict[str, Any]
    # Image families: (type, url) of each image, in the order given, and the resolution tier; `size`
    # is then chosen from the first image's aspect once the images are fetched.
    media: tuple[tuple[str, str], ...] = ()
    resolution: str | None = None

    @property
    def truncated(self) -> bool:
        return len(self.prompt) > PROMPT_MAX_CHARS

    @property
    def render_prompt(self) -> str:
        return self.prompt[:PROMPT_MAX_CHARS]


_SIZE_LIST: Final = ", ".join(SIZE_TIERS)


def _bad(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def _missing(name: str, code: str) -> ApiError:
    return ApiError(400, code, f'Required parameter "{name}" missing from request.')


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise _missing("model", "BadRequest.EmptyModel")
    if not isinstance(model, str) or (model not in MODELS and model not in IMAGE_MODELS):
        raise _bad("Model not exist.")
    return model


def _prompt(body: dict[str, Any], *, optional: bool = False) -> str:
    inputs = body.get("input")
    if not isinstance(inputs, dict) or not inputs:
        raise _missing("input", "BadRequest.EmptyInput")
    prompt = inputs.get("prompt")
    if prompt is None and optional:
        return ""
    if prompt is None:
        raise _bad("Field required: input.prompt")
    if not isinstance(prompt, str):
        raise _bad("input.prompt must be a string")
    if not prompt.strip():
        raise _bad("input.prompt must not be empty")
    return prompt


def _size_duration(params: dict[str, Any]) -> tuple[str, int]:
    size = params.get("size")
    if size is None:
        raise _bad("Field required: parameters.size")
    if size not in SIZE_TIERS:
        raise _bad(f"The size is not match, parameters.size {size!r} must be one of: {_SIZE_LIST}")
    duration = params.get("duration")
    if duration is None:
        raise _bad("Field required: parameters.duration")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _bad(f"parameters.duration must be an integer number of seconds, got {duration!r}")
    tier = SIZE_TIERS[size]
    allowed = TIER_DURATIONS[tier]
    if duration not in allowed:
        choices = ", ".join(str(d) for d in allowed)
        raise _bad(
            f"The duration is not match, parameters.duration {duration} is not supported "
            f"for {tier} size {size}; allowed: {choices}"
        )
    return size, duration


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise _bad(f"parameters.{name} must be a boolean, got {value!r}")
    return value


def _seed(params: dict[str, Any]) -> int | None:
    seed = params.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _bad(f"parameters.seed must be an integer in [0, {SEED_MAX}], got {seed!r}")
    if not 0 <= seed <= SEED_MAX:
        raise _bad(f"parameters.seed {seed} is out of range [0, {SEED_MAX}]")
    return seed


def _media(model: str, inputs: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    media = inputs.get("media")
    roles = IMAGE_MODELS[model]
    if not isinstance(media, list) or not media:
        raise _bad(f"Field required: input.media ({model} takes {', '.join(roles)})")
    found: list[tuple[str, str]] = []
    for item in media:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("url"), str)
        ):
            raise _bad('input.media items must be {"type": ..., "url": ...}')
        found.append((item["type"], item["url"]))
    if sorted(t for t, _ in found) != sorted(roles):
        raise _bad(
            f"input.media of {model} must hold exactly: {', '.join(roles)}; got {', '.join(t for t, _ in found)}"
        )
    if not all(url.startswith(("http://", "https://")) for _, url in found):
        raise ApiError(400, "InvalidParameter.DataInspection", "The media url must be a http or https url.")
    return tuple(sorted(found, key=lambda f: roles.index(f[0])))


def _resolution_duration(params: dict[str, Any]) -> tuple[str, int]:
    resolution = params.get("resolution")
    if resolution is None:
        raise _bad("Field required: parameters.resolution")
    if resolution not in RESOLUTIONS:
        raise _bad(f"parameters.resolution {resolution!r} must be one of: {', '.join(RESOLUTIONS)}")
    duration = params.get("duration")
    if duration is None:
        raise _bad("Field required: parameters.duration")
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or duration not in TIER_DURATIONS[resolution]
    ):
        choices = ", ".join(str(d) for d in TIER_DURATIONS[resolution])
        raise _bad(
            f"The duration is not match, parameters.duration {duration!r} for {resolution}; allowed: {choices}"
        )
    return resolution, duration


def _parse_image_create(body: dict[str, Any], model: str) -> CreateRequest:
    prompt = _prompt(body, optional=model in PROMPT_OPTIONAL)
    media = _media(model, body["input"])
    params = body.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _missing("parameters", "BadRequest.EmptyParameters")
    resolution, duration = _resolution_duration(params)
    return CreateRequest(
        model=model,
        prompt=prompt,
        size="",  # chosen from the first image once it is fetched
        duration=duration,
        audio=_flag(params, "audio"),
        watermark=_flag(params, "watermark"),
        seed=_seed(params),
        parameters=dict(params),
        media=media,
        resolution=resolution,
    )


def parse_create(body: Any) -> CreateRequest:
    """Validate a create body; raises ApiError. Unknown input/parameters keys are accepted."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    model = _model(body)
    if model in IMAGE_MODELS:
        return _parse_image_create(body, model)
    prompt = _prompt(body)
    params = body.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _missing("parameters", "BadRequest.EmptyParameters")
    size, duration = _size_duration(params)
    return CreateRequest(
        model=model,
        prompt=prompt,
        size=size,
        duration=duration,
        audio=_flag(params, "audio"),
        watermark=_flag(params, "watermark"),
        seed=_seed(params),
        parameters=dict(params),
    )
