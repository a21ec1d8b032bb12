"""The model families as `GET /v1/models` describes them, and what a client checks with them.

Pure, no I/O: the CLI and the console read the API's answer into a `Catalog` (never a list of their
own), resolve the name a user typed, and refuse before any upload what the family cannot take
(a field of another family, a missing image, an image of the wrong type or size).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MEDIA_TYPES: Final = ("first_frame", "last_frame", "image_url")
# The type an image's first bytes show (never its name or a browser's claim).
_MAGIC: Final = (
    ("jpeg", lambda head: head[:3] == b"\xff\xd8\xff"),
    ("png", lambda head: head[:8] == b"\x89PNG\r\n\x1a\n"),
    ("webp", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP"),
    ("gif", lambda head: head[:6] in (b"GIF87a", b"GIF89a")),
)
_FORMAT_ALIASES: Final = {"jpg": "jpeg", "image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
CONTENT_TYPES: Final = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
EXTENSIONS: Final = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "gif": ".gif"}
# Fields that are not parameters a form or an option sets one by one.
NOT_PARAMETERS: Final = frozenset({"model", "prompt", "media"})


class ModelsError(ValueError):
    """A request the catalog shows cannot work; names the field (or the image) and the rule."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # string | integer | boolean | media
    required: bool = False
    choices: tuple[Any, ...] = ()
    default: Any = None
    min: int | None = None
    max: int | None = None
    max_length: int | None = None

    @property
    def is_parameter(self) -> bool:
        return self.name not in NOT_PARAMETERS and self.type != "media"


@dataclass(frozen=True)
class MediaSpec:
    type: str  # first_frame | last_frame | image_url
    required: bool = False


@dataclass(frozen=True)
class ImageLimits:
    formats: tuple[str, ...] = ()  # normalised: jpeg, png, webp
    max_bytes: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # further limits, shown as they are

    def describe(self) -> str:
        parts = [", ".join(f.upper() for f in self.formats) or "any type"]
        if self.max_bytes:
            parts.append(f"at most {human_bytes(self.max_bytes)}")
        unconfirmed = self.extra.get("unconfirmed")
        for key, value in self.extra.items():
            if value is None or key == "unconfirmed" or isinstance(value, list | dict):
                continue
            parts.append(f"{key.replace('_', ' ')} {value}")
        if isinstance(unconfirmed, list) and unconfirmed:
            parts.append(f"not confirmed for DashScope: {', '.join(str(u) for u in unconfirmed)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ModelFamily:
    model: str
    family: str
    default: bool
    fields: Mapping[str, FieldSpec]
    media: tuple[MediaSpec, ...]
    image_limits: ImageLimits

    @property
    def short(self) -> str:
        """`pixverse-v5.6-it2v`: the name after the vendor's `/`."""
        return self.model.rsplit("/", 1)[-1]

    @property
    def parameters(self) -> tuple[FieldSpec, ...]:
        """The fields a form or an option sets (not model, prompt or the images)."""
        return tuple(spec for spec in self.fields.values() if spec.is_parameter)

    @property
    def takes_images(self) -> bool:
        return bool(self.media)

    def media_spec(self, kind: str) -> MediaSpec | None:
        return next((m for m in self.media if m.type == kind), None)

    @property
    def first_image_type(self) -> str | None:
        """The media type the first image goes as: `first_frame` where the family names frames."""
        for kind in ("first_frame", "image_url"):
            if self.media_spec(kind) is not None:
                return kind
        return None

    @property
    def prompt_required(self) -> bool:
        spec = self.fields.get("prompt")
        return spec is None or spec.required


@dataclass(frozen=True)
class Catalog:
    models: tuple[ModelFamily, ...]

    @property
    def default(self) -> ModelFamily | None:
        return next((m for m in self.models if m.default), self.models[0] if self.models else None)

    def names(self) -> list[str]:
        return [m.model for m in self.models]

    def find(self, name: str) -> ModelFamily:
        """The model a user named: its full name, the part after `/`, or a family name that one
        model has (else the family's default); ModelsError naming the known ones."""
        wanted = name.strip()
        for matches in (
            [m for m in self.models if m.model == wanted],
            [m for m in self.models if m.short == wanted],
            [m for m in self.models if m.family == wanted],
        ):
            if len(matches) == 1:
                return matches[0]
            defaults = [m for m in matches if m.default]
            if len(matches) > 1 and len(defaults) == 1:
                return defaults[0]
            if len(matches) > 1:
                raise ModelsError(
                    f"model: {name!r} names several models ({', '.join(m.model for m in matches)}); "
                    "give the full name",
                    "model",
                )
        raise ModelsError(f"model: no model {name!r}; known: {', '.join(self.names())}", "model")


def parse_catalog(body: Any) -> Catalog:
    """`GET /v1/models`'s answer as a Catalog; ModelsError when it is not that shape."""
    entries = body.get("models") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ModelsError("GET /v1/models did not answer with a list of models")
    return Catalog(
        tuple(_family(entry) for entry in entries if isinstance(entry, dict) and entry.get("model"))
    )


def _family(entry: Mapping[str, Any]) -> ModelFamily:
    fields: dict[str, Any] = entry["fields"] if isinstance(entry.get("fields"), dict) else {}
    media: list[Any] = entry["media"] if isinstance(entry.get("media"), list) else []
    limits: dict[str, Any] = entry["image_limits"] if isinstance(entry.get("image_limits"), dict) else {}
    return ModelFamily(
        model=str(entry["model"]),
        family=str(entry.get("family") or ""),
        default=entry.get("default") is True,
        fields={
            str(name): _field(str(name), spec) for name, spec in fields.items() if isinstance(spec, dict)
        },
        media=tuple(
            MediaSpec(str(m.get("type")), m.get("required") is True)
            for m in media
            if isinstance(m, dict) and m.get("type")
        ),
        image_limits=_limits(limits),
    )


def _field(name: str, spec: Mapping[str, Any]) -> FieldSpec:
    def number(key: str) -> int | None:
        value = spec.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    choices = spec.get("choices")
    return FieldSpec(
        name=name,
        type=str(spec.get("type") or "string"),
        required=spec.get("required") is True,
        choices=tuple(choices) if isinstance(choices, list) else (),
        default=spec.get("default"),
        min=number("min"),
        max=number("max"),
        max_length=number("max_length"),
    )


def _limits(limits: Mapping[str, Any]) -> ImageLimits:
    formats: list[Any] = limits["formats"] if isinstance(limits.get("formats"), list) else []
    max_bytes = limits.get("max_bytes")
    return ImageLimits(
        formats=tuple(dict.fromkeys(normal_format(str(f)) for f in formats)),
        max_bytes=max_bytes if isinstance(max_bytes, int) and not isinstance(max_bytes, bool) else None,
        extra={k: v for k, v in limits.items() if k not in {"formats", "max_bytes"}},
    )


def normal_format(name: str) -> str:
    lowered = name.strip().lower()
    return _FORMAT_ALIASES.get(lowered, lowered.removeprefix("image/"))


def sniff(head: bytes) -> str | None:
    """The image type its first bytes show (jpeg, png, webp, gif), or None."""
    return next((name for name, matches in _MAGIC if matches(head)), None)


def human_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MiB"
    if size >= 1024:
        return f"{size / 1024:g} KiB"
    return f"{size} bytes"


def check_image(name: str, data: bytes, limits: ImageLimits, field: str = "media") -> str:
    """The image's type if the family takes it; ModelsError naming the image and the rule."""
    kind = sniff(data[:16])
    allowed = limits.formats or ("jpeg", "png", "webp")
    if not data:
        raise ModelsError(f"{name}: the image is empty", field)
    if kind is None or kind not in allowed:
        shown = kind.upper() if kind else "not an image its bytes show"
        raise ModelsError(
            f"{name}: {shown}; accepted: {', '.join(a.upper() for a in allowed)} (checked by content, not name)",
            field,
        )
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise ModelsError(
            f"{name}: {human_bytes(len(data))} is over the limit of {human_bytes(limits.max_bytes)}", field
        )
    return kind


def check_fields(family: ModelFamily, given: Iterable[str]) -> None:
    """Refuse a parameter the family does not have, naming it and what to use instead."""
    for name in given:
        if name in family.fields:
            continue
        hint = ""
        if name == "size" and "resolution" in family.fields:
            hint = "; use resolution"
        elif name == "resolution" and "size" in family.fields:
            hint = "; use size"
        raise ModelsError(f"{name}: not a field of {family.model}{hint}", name)


def check_choice(family: ModelFamily, name: str, value: Any) -> None:
    spec = family.fields.get(name)
    if spec is None or not spec.choices or value in spec.choices:
        return
    raise ModelsError(
        f"{name}: {value!r} is not one of {', '.join(str(c) for c in spec.choices)} for {family.model}", name
    )


def checked_family(
    catalog: Catalog,
    model: str | None,
    given: Mapping[str, Any],
    *,
    has_prompt: bool,
    first: str | None,
    last: str | None,
) -> ModelFamily:
    """The model a request names, once its parameters, prompt and images are ones it takes: what a
    client can refuse before uploading anything (the API judges the rest)."""
    if model is None:
        takes = [m.model for m in catalog.models if m.takes_images]
        raise ModelsError(f"--image and --last-frame need --model (one of: {', '.join(takes)})", "model")
    family = catalog.find(model)
    check_fields(family, given)
    for name, value in given.items():
        check_choice(family, name, value)
    if not has_prompt and family.prompt_required:
        raise ModelsError(f"prompt: {family.model} needs a prompt", "prompt")
    for name, url in (("image", first), ("last_frame", last)):
        if url and url.startswith("http://"):
            raise ModelsError(f"{name}: {url[:60]}: only https:// URLs (or a local file, or s3://)", name)
    media_list(family, first and "first", last and "last")
    return family


def media_list(family: ModelFamily, first: str | None, last: str | None) -> list[dict[str, str]]:
    """The request's `media` from the first (and last) image URL; ModelsError for what the family
    cannot take or misses."""
    if not family.takes_images:
        if first or last:
            raise ModelsError(f"media: {family.model} takes no images (it is text to video)", "media")
        return []
    media: list[dict[str, str]] = []
    first_type = family.first_image_type
    if first:
        if first_type is None:
            raise ModelsError(f"media: {family.model} takes no first image", "media")
        media.append({"type": first_type, "url": first})
    if last:
        if family.media_spec("last_frame") is None:
            raise ModelsError(f"media: {family.model} takes no last frame", "last_frame")
        media.append({"type": "last_frame", "url": last})
    given = {m["type"] for m in media}
    for spec in family.media:
        if spec.required and spec.type not in given:
            label = "last frame" if spec.type == "last_frame" else "first-frame image"
            raise ModelsError(f"media: {family.model} needs a {label} ({spec.type})", spec.type)
    return media


def field_lines(family: ModelFamily) -> list[str]:
    """`t2v models`: one line per field, its type, choices, default and bounds."""
    lines = []
    for spec in family.fields.values():
        facts = [spec.type, "required" if spec.required else "optional"]
        if spec.choices:
            facts.append("one of " + ", ".join(str(c) for c in spec.choices))
        if spec.min is not None or spec.max is not None:
            facts.append(f"{'' if spec.min is None else spec.min}–{'' if spec.max is None else spec.max}")
        if spec.max_length is not None:
            facts.append(f"up to {spec.max_length} characters")
        if spec.default is not None:
            facts.append(f"default {spec.default}")
        lines.append(f"    {spec.name:<11} {'; '.join(facts)}")
    for media in family.media:
        lines.append(f"    media       {media.type} ({'required' if media.required else 'optional'})")
    if family.media:
        lines.append(f"    images      {family.image_limits.describe()}")
    return lines


def catalog_lines(catalog: Catalog) -> list[str]:
    lines = []
    for family in catalog.models:
        mark = " (default)" if family.default else ""
        lines.append(f"{family.model}  family {family.family}{mark}")
        lines.extend(field_lines(family))
    return lines
