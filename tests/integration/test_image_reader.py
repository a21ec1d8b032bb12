"""The image adapter against a real S3 endpoint (moto over HTTP): the head of an object by a ranged
GET (never the whole object), its whole size from Content-Range, a missing key as unreadable, and
the presigned GET the provider fetches; https images through the download guard."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import httpx
import pytest
from t2v.adapters.images import ImageReader
from t2v.images import HEAD_BYTES, ImageUnreadableError, read_head
from t2v.media import DownloadRejectedError

from tests.images import png


@pytest.fixture
def bucket(moto_server: str) -> str:
    name = f"images-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_the_head_of_an_object_is_a_ranged_get_with_its_whole_size(bucket: str) -> None:
    big = png(40, 30) + bytes(3 * HEAD_BYTES)
    boto3.client("s3").put_object(Bucket=bucket, Key="inputs/me/big.png", Body=big)

    read = ImageReader(max_bytes=20 * 1024 * 1024).head(f"s3://{bucket}/inputs/me/big.png")

    assert len(read.data) == HEAD_BYTES  # never the whole object
    assert read.size == len(big)
    assert read_head(read.data) is not None and read_head(read.data).width == 40  # type: ignore[union-attr]


def test_a_missing_key_is_unreadable_naming_why(bucket: str) -> None:
    with pytest.raises(ImageUnreadableError, match="NoSuchKey"):
        ImageReader(max_bytes=1024).head(f"s3://{bucket}/inputs/me/gone.png")


def test_the_presigned_get_serves_the_object(bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key="inputs/me/a.png", Body=png(4, 4))

    url = ImageReader(max_bytes=1024).presign(f"s3://{bucket}/inputs/me/a.png", 3600)

    assert "Expires=" in url or "X-Amz-Expires=3600" in url
    assert httpx.get(url).content == png(4, 4)


class _Guard:
    """The download guard's interface: chunks of an allowed URL, a refusal for any other."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    @contextmanager
    def stream(self, url: str) -> Iterator[Iterator[bytes]]:
        if "private" in url:
            raise DownloadRejectedError("video host private.example resolves to a non-public address")
        yield iter(self.chunks)


def test_an_https_image_is_read_through_the_guard_up_to_its_head() -> None:
    reader = ImageReader(max_bytes=1024, downloader=_Guard([png(8, 8), bytes(2 * HEAD_BYTES)]))  # type: ignore[arg-type]

    read = reader.head("https://images.example.com/a.png")

    assert len(read.data) == HEAD_BYTES and read.size is None
    with pytest.raises(ImageUnreadableError, match=r"image host private\.example resolves to a non-public"):
        reader.head("https://private.example/a.png")
