"""`pixverse/pixverse-v5.6-t2v`: text to video, the first family (its request is t2v.request's
`VideoRequest`, unchanged, so records, idempotency keys and learned timings made before the
registry keep working)."""

from __future__ import annotations

from typing import Final

from t2v.families.base import Family, duration_field, flag_field, model_field, prompt_field, seed_field
from t2v.request import DEFAULT_MODEL, SIZES, VideoRequest

MODEL: Final = DEFAULT_MODEL

FAMILY: Final = Family(
    model=MODEL,
    family="t2v",
    request=VideoRequest,
    fields={
        "model": model_field(MODEL),
        "prompt": prompt_field(required=True),
        "size": {"type": "string", "required": False, "choices": list(SIZES), "default": "1280*720"},
        "duration": duration_field(),
        "audio": flag_field(),
        "watermark": flag_field(),
        "seed": seed_field(),
    },
    hints={
        "resolution": "use size (width*height)",
        "media": "text-to-video takes no images; use pixverse/pixverse-v5.6-it2v or -kf2v",
    },
)
