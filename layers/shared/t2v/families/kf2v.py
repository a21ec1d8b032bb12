"""`pixverse/pixverse-v5.6-kf2v`: the video moves from a first image to a last one.

The provider marks it legacy ("upgrade to v6"); the prompt is required.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from t2v.families.base import MediaSlot, ResolutionRequest, image_family
from t2v.request import MediaItem, Prompt

MODEL: Final = "pixverse/pixverse-v5.6-kf2v"


class KeyframesRequest(ResolutionRequest):
    """One first-and-last-frame-to-video request."""

    MEDIA = ("first_frame", "last_frame")

    model: str = Field(description="DashScope model name.")
    media: list[MediaItem] = Field(
        description='{"type": "first_frame", "url": ...} and {"type": "last_frame", "url": ...}'
    )
    prompt: Prompt = Field(description="How the first image becomes the last; 1-2048 characters.")


FAMILY: Final = image_family(
    MODEL,
    "kf2v",
    KeyframesRequest,
    media=(MediaSlot("first_frame"), MediaSlot("last_frame")),
    prompt_required=True,
)
