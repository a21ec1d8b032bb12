"""Input images, as the provider treats them: fetched from the URLs given (the sandbox's presigned
S3 URLs included), decoded, and the clip's size chosen from the first one's aspect. Anything that
cannot be fetched or decoded is the provider's `InvalidParameter.DataInspection`."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from dataclasses import dataclass

import av

from dashscope_emulator.rules import IMAGE_MAX_BYTES, image_output_size
from dashscope_emulator.validation import ApiError

FETCH_SECONDS = 10.0
DATA_INSPECTION = "InvalidParameter.DataInspection"


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    width: int
    height: int


def _inspection(message: str) -> ApiError:
    return ApiError(400, DATA_INSPECTION, message)


def fetch(url: str) -> bytes:
    """The image's bytes, at most IMAGE_MAX_BYTES."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_SECONDS) as answer:  # noqa: S310 - http(s) checked by validation
            data: bytes = answer.read(IMAGE_MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _inspection(f"Download the media resource failed: {type(exc).__name__}") from None
    if len(data) > IMAGE_MAX_BYTES:
        raise _inspection("The media resource is too large.")
    return data


def decode(data: bytes) -> av.VideoFrame:
    """The image as one frame (JPEG, PNG or WEBP), or DataInspection."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            name = container.format.name
            if not any(kind in name for kind in ("png", "jpeg", "webp", "mjpeg")):
                raise _inspection(f"The media format is not supported: {name}.")
            return next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise _inspection(f"The media resource could not be decoded: {type(exc).__name__}") from None


def fetch_all(urls: list[str]) -> list[Fetched]:
    found = []
    for url in urls:
        data = fetch(url)
        frame = decode(data)
        found.append(Fetched(data, frame.width, frame.height))
    return found


def output_size(resolution: str, first: Fetched) -> str:
    return image_output_size(resolution, first.width, first.height)


def frame_of(data: bytes, width: int, height: int) -> av.VideoFrame:
    """The image scaled to the clip's size, as a yuv420p frame."""
    return decode(data).reformat(width=width, height=height, format="yuv420p")
