"""`pixverse/pixverse-v5.6-it2v`: one image becomes the video's first frame.

The provider's sample always sends a prompt; a third-party page says it is optional (unconfirmed):
held as `PROMPT_REQUIRED`, one line to correct.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field

from t2v.families.base import MediaSlot, ResolutionRequest, image_family
from t2v.request import MediaItem, Prompt

MODEL: Final = "pixverse/pixverse-v5.6-it2v"
PROMPT_REQUIRED: Final = False


class ImageToVideoRequest(ResolutionRequest):
    """One first-frame-to-video request."""

    MEDIA = ("image_url",)

    model: str = Field(description="DashScope model name.")
    media: list[MediaItem] = Field(description='One {"type": "image_url", "url": ...}: the first frame.')
    prompt: Prompt | None = Field(
        default=None, description="What happens from the image on; 1-2048 characters."
    )


FAMILY: Final = image_family(
    MODEL, "it2v", ImageToVideoRequest, media=(MediaSlot("image_url"),), prompt_required=PROMPT_REQUIRED
)
