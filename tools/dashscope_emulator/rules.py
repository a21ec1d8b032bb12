"""The provider's request rules, as the emulator enforces them: its own copy of the DashScope
contract (pixverse/pixverse-v5.6-t2v), written from the API reference and not imported from the
project, so that one mistake in `t2v.request` cannot make the emulator agree with it.
tests/unit/test_emulator_rules.py checks that the two copies say the same.
"""

from __future__ import annotations

import math
from typing import Final

MODELS: Final = frozenset({"pixverse/pixverse-v5.6-t2v"})
# Image families: the roles of the images each takes in input.media, in order, and whether the
# prompt is required (the first-frame model's is optional, per a reseller's page).
IMAGE_MODELS: Final[dict[str, tuple[str, ...]]] = {
    "pixverse/pixverse-v5.6-it2v": ("image_url",),
    "pixverse/pixverse-v5.6-kf2v": ("first_frame", "last_frame"),
    "pixverse/pixverse-v6-it2v": ("image_url",),
}
PROMPT_OPTIONAL: Final = frozenset({"pixverse/pixverse-v5.6-it2v", "pixverse/pixverse-v6-it2v"})
RESOLUTIONS: Final = ("360P", "540P", "720P", "1080P")
IMAGE_MAX_BYTES: Final = 20 * 1024 * 1024  # PixVerse's own upload limit (unconfirmed for DashScope)
PROMPT_MAX_CHARS: Final = 2048  # longer prompts are silently truncated by the service
SEED_MAX: Final = 2_147_483_647

# width*height -> resolution tier, rows as in the reference (16:9, 4:3, 1:1, 3:4, 9:16).
SIZE_TIERS: Final[dict[str, str]] = {
    **dict.fromkeys(("640*360", "640*480", "640*640", "480*640", "360*640"), "360P"),
    **dict.fromkeys(("1024*576", "1024*768", "1024*1024", "768*1024", "576*1024"), "540P"),
    **dict.fromkeys(("1280*720", "1280*960", "1280*1280", "960*1280", "720*1280"), "720P"),
    **dict.fromkeys(("1920*1080", "1920*1440", "1808*1808", "1440*1920", "1080*1920"), "1080P"),
}
# Seconds each tier allows: 5, 8 or 10, but only 5 or 8 for 1080P.
TIER_DURATIONS: Final[dict[str, tuple[int, ...]]] = {
    "360P": (5, 8, 10),
    "540P": (5, 8, 10),
    "720P": (5, 8, 10),
    "1080P": (5, 8),
}


def delivered_size(size: str, duration: int) -> str:
    """The provider's quirk: 1808*1808 for 8 s comes out as 1440*1440."""
    return "1440*1440" if (size, duration) == ("1808*1808", 8) else size


def image_output_size(resolution: str, width: int, height: int) -> str:
    """The size an image family delivers: of the resolution's five sizes (16:9 ... 9:16), the one
    whose aspect is closest to the first image's (the provider keeps the picture's shape)."""
    aspect = math.log(width / height)
    sizes = [size for size, tier in SIZE_TIERS.items() if tier == resolution]
    return min(sizes, key=lambda s: abs(math.log(int(s.split("*")[0]) / int(s.split("*")[1])) - aspect))
