"""`pixverse/pixverse-v6-it2v`: the newer first-frame model, on the same endpoint and in the same
shape as v5.6 (../shared/dashscope-families.md). Resellers list 1-15 s for v6; DashScope does not
confirm it, so this entry keeps v5.6's confirmed durations until it does (one line: `DURATIONS`).
It learns its own timings (`v6-it2v/720P/5s/silent`): a newer model need not be as fast.
"""

from __future__ import annotations

from typing import Final

from t2v.families.base import MediaSlot, image_family
from t2v.families.it2v import PROMPT_REQUIRED, ImageToVideoRequest

MODEL: Final = "pixverse/pixverse-v6-it2v"


class V6ImageToVideoRequest(ImageToVideoRequest):
    """One first-frame-to-video request for v6: v5.6's contract under another model name."""


FAMILY: Final = image_family(
    MODEL,
    "it2v",
    V6ImageToVideoRequest,
    media=(MediaSlot("image_url"),),
    prompt_required=PROMPT_REQUIRED,
    timing_key="v6-it2v",
)
