"""The emulator's image families: validation as DashScope does it, and clips rendered from the
images (it2v's first frame is the image; kf2v goes from the first image to the last)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest
from dashscope_emulator.images import decode
from dashscope_emulator.media import VideoSpec, render_mp4
from dashscope_emulator.validation import ApiError, parse_create

from tests.images import png

IT2V = "pixverse/pixverse-v5.6-it2v"
KF2V = "pixverse/pixverse-v5.6-kf2v"
RED, BLUE = (220, 30, 30), (30, 30, 220)


def body(model: str, media: list[dict[str, str]], **params: Any) -> dict[str, Any]:
    return {
        "model": model,
        "input": {"prompt": "p", "media": media},
        "parameters": {"resolution": "360P", "duration": 5, **params},
    }


def test_an_it2v_create_is_parsed_with_its_image_and_resolution() -> None:
    req = parse_create(body(IT2V, [{"type": "image_url", "url": "http://127.0.0.1:1/a.png"}]))

    assert (req.resolution, req.duration, req.media) == (
        "360P",
        5,
        (("image_url", "http://127.0.0.1:1/a.png"),),
    )


@pytest.mark.parametrize(
    ("create", "code"),
    [
        (body(KF2V, [{"type": "first_frame", "url": "https://a/b.png"}]), "InvalidParameter"),
        (body(IT2V, []), "InvalidParameter"),
        (body(IT2V, [{"type": "image_url", "url": "https://a/b.png"}], resolution="4K"), "InvalidParameter"),
        (
            body(IT2V, [{"type": "image_url", "url": "https://a/b.png"}], resolution="1080P", duration=10),
            "InvalidParameter",
        ),
        (body(IT2V, [{"type": "image_url", "url": "ftp://a/b.png"}]), "InvalidParameter.DataInspection"),
    ],
)
def test_the_emulator_refuses_what_dashscope_refuses(create: dict[str, Any], code: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_create(create)

    assert (raised.value.status, raised.value.code) == (400, code)


def test_text_is_no_image_for_the_emulator_either() -> None:
    with pytest.raises(ApiError) as raised:
        decode(b"I am text in a .png")

    assert raised.value.code == "InvalidParameter.DataInspection"


def _centre(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    with av.open(str(path)) as container:
        frames = [f.to_rgb() for f in container.decode(video=0)]

    def colour(frame: av.VideoFrame) -> tuple[int, ...]:
        data, stride = bytes(frame.planes[0]), frame.planes[0].line_size
        y, x = frame.height // 4, frame.width // 4  # away from the sweeping block and the watermark
        at = y * stride + x * 3
        return tuple(data[at : at + 3])

    return colour(frames[0]), colour(frames[-1])


def close(seen: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, want, strict=True))


def test_it2v_starts_on_the_image_and_kf2v_ends_on_the_last(tmp_path: Path) -> None:
    it2v = tmp_path / "it2v.mp4"
    render_mp4(VideoSpec("p", "640*360", 5, False, True, 1, images=(png(64, 36, RED),)), it2v)
    kf2v = tmp_path / "kf2v.mp4"
    render_mp4(
        VideoSpec("p", "640*360", 5, False, False, 1, images=(png(64, 36, RED), png(64, 36, BLUE))), kf2v
    )

    first, _ = _centre(it2v)
    assert close(first, RED)
    first, last = _centre(kf2v)
    assert close(first, RED) and close(last, BLUE)
