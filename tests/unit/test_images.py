"""Input images: where a request may name them and whose they are; what their first bytes say;
the checks every image passes before any paid call, each refusal naming the image and the rule."""

from __future__ import annotations

import json

import pytest
from t2v.families import parse_request
from t2v.families.base import ImageLimits
from t2v.images import (
    ImageHead,
    ImageHeadRead,
    ImagePlace,
    ImageRefusedError,
    ImageUnreadableError,
    check_image,
    check_places,
    inspect_images,
    read_head,
)
from t2v.request import InvalidRequestError

from tests.images import jpeg_head, png, webp_head

PLACE = ImagePlace("t2v-bucket", "inputs/")
ALICE = "arn:aws:iam::123456789012:user/alice"
IT2V = "pixverse/pixverse-v5.6-it2v"
LIMITS = ImageLimits()


def it2v(url: str):  # type: ignore[no-untyped-def]
    return parse_request({"model": IT2V, "media": [{"type": "image_url", "url": url}]})


def test_a_callers_folder_follows_its_arn() -> None:
    assert PLACE.folder_of(ALICE) == "inputs/123456789012/user/alice/"
    assert PLACE.folder_of("arn:aws:sts::123456789012:assumed-role/Ops/me") == (
        "inputs/123456789012/assumed-role/Ops/me/"
    )


def test_a_caller_may_name_its_own_images_and_https_ones() -> None:
    check_places(
        it2v("s3://t2v-bucket/inputs/123456789012/user/alice/cat.png"), PLACE, PLACE.folder_of(ALICE)
    )
    check_places(it2v("https://images.example.com/cat.png"), PLACE, PLACE.folder_of(ALICE))


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("s3://other-bucket/inputs/123456789012/user/alice/cat.png", "stack's bucket"),
        ("s3://t2v-bucket/prompts/cat.png", "input-images prefix"),
        ("s3://t2v-bucket/inputs/123456789012/user/bob/cat.png", "your own folder"),
        ("s3://t2v-bucket/inputs/123456789012/user/alice/../bob/cat.png", "input-images prefix"),
    ],
)
def test_a_caller_is_refused_an_image_elsewhere_naming_the_field(url: str, rule: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        check_places(it2v(url), PLACE, PLACE.folder_of(ALICE))

    assert [e.field for e in raised.value.errors] == ["media.0.url"]
    assert rule in raised.value.errors[0].message


def test_prompt_files_and_admins_may_name_any_key_under_the_prefix() -> None:
    check_places(it2v("s3://t2v-bucket/inputs/123456789012/user/bob/cat.png"), PLACE, None)
    with pytest.raises(InvalidRequestError):
        check_places(it2v("s3://t2v-bucket/videos/x.png"), PLACE, None)


def test_without_a_bucket_no_s3_image_is_taken() -> None:
    with pytest.raises(InvalidRequestError, match="no s3:// images"):
        check_places(it2v("s3://t2v-bucket/inputs/a.png"), None)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(3, 2), ImageHead("png", 3, 2)),
        (jpeg_head(640, 480), ImageHead("jpeg", 640, 480)),
        (webp_head(1000, 700), ImageHead("webp", 1000, 700)),
        (b"hello, I am text in a .png", None),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"GIF89a\x01\x00\x01\x00", None),
    ],
)
def test_the_format_and_size_come_from_the_bytes(data: bytes, expected: ImageHead | None) -> None:
    assert read_head(data) == expected


@pytest.mark.parametrize(
    ("head", "size", "rule"),
    [
        (b"just text", 9, "is not a JPEG, PNG, WEBP image"),
        (png(10, 10), 21 * 1024 * 1024, "over the limit"),
        (webp_head(10_001, 10), 100, "at most 10000 px"),
    ],
)
def test_each_check_names_the_image_and_the_rule(head: bytes, size: int, rule: str) -> None:
    with pytest.raises(ImageRefusedError) as raised:
        check_image("media.0.url", "s3://b/inputs/x.png", head, size, LIMITS)

    (error,) = raised.value.errors
    assert error.field == "media.0.url"
    assert "s3://b/inputs/x.png" in error.message and rule in error.message


def test_too_many_pixels_is_refused_when_the_limit_is_below_the_sides_product() -> None:
    # The default (10,000 px a side, 10^8 pixels) makes the pixel rule follow from the side rule;
    # a corrected limit (data) bites on its own.
    with pytest.raises(ImageRefusedError, match="9000000 pixels; at most 4000000"):
        check_image("media.0.url", "a.jpg", jpeg_head(3000, 3000), 100, ImageLimits(max_pixels=4_000_000))


def test_limits_are_data() -> None:
    tight = ImageLimits(min_side=360, max_side=2000, max_pixels=2000 * 2000)
    with pytest.raises(ImageRefusedError, match="at least 360"):
        check_image("f", "n", png(100, 400), 10, tight)


class _Source:
    def __init__(self, heads: dict[str, ImageHeadRead | Exception]) -> None:
        self.heads = heads

    def head(self, url: str) -> ImageHeadRead:
        found = self.heads[url]
        if isinstance(found, Exception):
            raise found
        return found

    def presign(self, url: str, seconds: int) -> str:
        return f"{url}?signed={seconds}"


def test_an_unreadable_image_is_refused_naming_it() -> None:
    url = "s3://t2v-bucket/inputs/gone.png"
    source = _Source({url: ImageUnreadableError("cannot be read from the bucket (NoSuchKey)")})

    with pytest.raises(ImageRefusedError) as raised:
        inspect_images(it2v(url), source, LIMITS)

    assert raised.value.errors[0].field == "media.0.url"
    assert "NoSuchKey" in raised.value.errors[0].message and url in raised.value.errors[0].message


def test_a_prompt_file_line_may_name_any_image_under_the_prefix_and_no_other() -> None:
    from t2v.intake import parse_prompt_file

    good = json.dumps(
        {"model": IT2V, "media": [{"type": "image_url", "url": "s3://t2v-bucket/inputs/anyone/a.png"}]}
    )
    bad = good.replace("inputs/anyone", "videos")
    items = parse_prompt_file(
        "prompts/batch.jsonl", f"{good}\n{bad}\n".encode(), {"size": "640*360"}, place=PLACE
    )

    assert items[0].request is not None and items[0].error is None
    assert items[1].request is None
    assert "line 2" in (items[1].error or "") and "media.0.url" in (items[1].error or "")
