"""The new-video form, built from what `GET /v1/models` says of each model: its inputs, and the
request its posted fields make. Pure, no I/O.

Each model's fields become inputs by their type (a select for choices, a checkbox for a boolean, a
number for an integer) and its media slots become image inputs (`image` for the first frame,
`last_frame` for the last). An API without `GET /v1/models` (before model families) gets today's
text-to-video form, from the local request contract (`LEGACY`), and no `model` in its requests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from t2v.request import DURATIONS, SIZES
from t2v_client.models import Catalog, FieldSpec, ImageLimits, MediaSpec, ModelFamily

# The posted name, the page's id and the label of the image input for each media slot.
IMAGE_INPUTS: Final = {
    "image_url": ("image", "image", "First frame (image)"),
    "first_frame": ("image", "image", "First frame (image)"),
    "last_frame": ("last_frame", "last-frame", "Last frame (image)"),
}
_WHOLE: Final = re.compile(r"-?\d{1,12}")
# An image already uploaded (or named by URL) that a re-shown form keeps: the API judges whose it is.
KEPT_SCHEMES: Final = ("s3://", "https://")


def _legacy() -> ModelFamily:
    """Text to video as the local contract has it: for an API that does not list its models."""
    fields = {
        "prompt": FieldSpec("prompt", "string", required=True, max_length=2048),
        "size": FieldSpec("size", "string", choices=tuple(SIZES), default="1280*720"),
        "duration": FieldSpec("duration", "integer", choices=(5, 8, 10), default=5),
        "seed": FieldSpec("seed", "integer", min=0, max=2147483647),
        "audio": FieldSpec("audio", "boolean", default=False),
        "watermark": FieldSpec("watermark", "boolean", default=False),
    }
    return ModelFamily("", "t2v", True, fields, (), ImageLimits())


LEGACY: Final = _legacy()


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    durations: str = ""  # the durations this size or resolution allows, where the local rule knows them


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str  # select | checkbox | number | text
    label: str
    options: tuple[Option, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class ImageInput:
    name: str  # the posted name
    id: str
    label: str
    required: bool
    media_type: str  # the request's media type: image_url, first_frame or last_frame


@dataclass(frozen=True)
class FormFamily:
    family: ModelFamily
    fields: tuple[FormField, ...]
    images: tuple[ImageInput, ...]

    @property
    def value(self) -> str:
        return self.family.model

    @property
    def label(self) -> str:
        if not self.family.model:
            return "text to video"
        return f"{self.family.short} ({self.family.family})"

    @property
    def formats(self) -> str:
        return ",".join(self.family.image_limits.formats or ("jpeg", "png", "webp"))

    @property
    def accept(self) -> str:
        return ",".join(f"image/{f}" for f in self.formats.split(","))


def _durations(value: Any) -> str:
    """The durations a size (or a resolution tier) allows, as the local rule has them; '' if unknown."""
    spec = SIZES.get(str(value))
    tier = spec.tier if spec is not None else str(value)
    allowed = DURATIONS.get(tier)  # type: ignore[call-overload]
    return ",".join(str(d) for d in allowed) if allowed else ""


def _option(name: str, value: Any) -> Option:
    text = str(value)
    if name == "size" and text in SIZES:
        spec = SIZES[text]
        return Option(text, f"{text.replace('*', '×')}  {spec.tier} {spec.aspect}", _durations(text))
    return Option(text, text, _durations(text) if name == "resolution" else "")


def _field(spec: FieldSpec) -> FormField:
    label = spec.name.capitalize()
    if spec.name == "duration":
        label = "Duration (seconds, billed per second)"
    if spec.choices:
        return FormField(spec.name, "select", label, tuple(_option(spec.name, c) for c in spec.choices))
    if spec.type == "boolean":
        return FormField(spec.name, "checkbox", spec.name)
    if spec.type == "integer":
        bounds = f"{'' if spec.min is None else spec.min}–{'' if spec.max is None else spec.max}"
        return FormField(spec.name, "number", f"{label} (optional, {bounds})" if not spec.required else label)
    return FormField(spec.name, "text", label)


def _image(media: MediaSpec) -> ImageInput:
    name, element_id, label = IMAGE_INPUTS.get(media.type, (media.type, media.type, media.type))
    return ImageInput(name, element_id, label, media.required, media.type)


def form_family(family: ModelFamily) -> FormFamily:
    # Selects first, then numbers, then checkboxes: the order the form always had.
    order = {"select": 0, "number": 1, "text": 1, "checkbox": 2}
    fields = sorted((_field(spec) for spec in family.parameters), key=lambda f: order[f.kind])
    return FormFamily(family, tuple(fields), tuple(_image(m) for m in family.media))


def form_families(catalog: Catalog | None) -> tuple[FormFamily, ...]:
    models = catalog.models if catalog is not None and catalog.models else (LEGACY,)
    return tuple(form_family(family) for family in models)


def pick(families: tuple[FormFamily, ...], model: str | None) -> FormFamily:
    """The family a form names (full or short name); else the default one."""
    for candidate in families:
        if model and model in {candidate.value, candidate.family.short}:
            return candidate
    named = [f for f in families if model and f.family.family == model]
    if named:
        return next((f for f in named if f.family.default), named[0])
    return next((f for f in families if f.family.default), families[0])


def default_form(family: FormFamily) -> dict[str, str]:
    """The blank form of a model: each field at the API's default."""
    form = {"model": family.value, "prompt": ""}
    for spec in family.family.parameters:
        if spec.type == "boolean":
            form[spec.name] = "on" if spec.default is True else ""
        else:
            form[spec.name] = "" if spec.default is None else str(spec.default)
    return form


def request_from_form(
    form: Mapping[str, str], family: ModelFamily = LEGACY
) -> tuple[dict[str, Any], dict[str, str]]:
    """The POST /videos body from the form's text fields; errors here are only about form syntax.

    Everything else (choices, the duration rule, the prompt's limits) is the API's to judge, so the
    page shows the server's own field errors. Images are added by the caller (they are uploaded)."""
    body: dict[str, Any] = {"model": family.model} if family.model else {}
    prompt = form.get("prompt", "")
    if prompt or family.prompt_required:
        body["prompt"] = prompt
    errors: dict[str, str] = {}
    for spec in family.parameters:
        text = form.get(spec.name, "")
        if spec.type == "boolean":
            body[spec.name] = text == "on"
        elif spec.type == "integer":
            if not text.strip():
                continue
            if not _WHOLE.fullmatch(text.strip()):
                errors[spec.name] = f"{spec.name} must be a whole number"
                continue
            body[spec.name] = int(text.strip())
        elif text:
            body[spec.name] = text
    return body, errors


def form_from_request(req: Mapping[str, Any], family: ModelFamily = LEGACY) -> dict[str, str]:
    """The form's fields from a job's request (re-run); its images are kept by their URLs."""
    form = {k: v for k, v in default_form(form_family(family)).items() if k != "model"}
    if req.get("model"):
        form["model"] = str(req["model"])
    for item in req.get("media") or []:
        if isinstance(item, dict) and str(item.get("url", "")).startswith(KEPT_SCHEMES):
            name = IMAGE_INPUTS.get(str(item.get("type")), ("", "", ""))[0]
            if name:
                form.setdefault(f"kept_{name}", str(item["url"]))
    for name, value in req.items():
        if name in {"model", "media"} or value is None or isinstance(value, list | dict):
            continue
        if isinstance(value, bool):
            form[name] = "on" if value else ""
        else:
            form[name] = str(value)
    return form
