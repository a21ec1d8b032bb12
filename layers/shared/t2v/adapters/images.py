"""Input images at the edge: the head of an image (a ranged GET of an S3 object, or the first bytes
of an https image through the download guard) and the presigned GET handed to the provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from t2v.adapters.download import VideoDownloader
from t2v.images import HEAD_BYTES, ImageHeadRead, ImageUnreadableError, s3_image
from t2v.media import DownloadError, DownloadRejectedError, HostAllowlist

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Any public https host (the guard still refuses private addresses, IP literals and plain http).
ANY_PUBLIC_HOST = HostAllowlist(["*"])


class ImageReader:
    """Reads heads and signs GETs; the S3 client is built lazily (no side effect at import)."""

    def __init__(
        self, *, client: S3Client | None = None, max_bytes: int, downloader: VideoDownloader | None = None
    ) -> None:
        self._client = client
        self._max_bytes = max_bytes
        self._downloader = downloader or VideoDownloader(ANY_PUBLIC_HOST, max_bytes=max_bytes)

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = boto3.client("s3")
        return self._client

    def head(self, url: str) -> ImageHeadRead:
        image = s3_image(url)
        if image is None:
            return self._https_head(url)
        try:
            answer: Any = self.client.get_object(
                Bucket=image.bucket, Key=image.key, Range=f"bytes=0-{HEAD_BYTES - 1}"
            )
            data = answer["Body"].read(HEAD_BYTES)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code == "InvalidRange":  # an empty object
                return ImageHeadRead(b"", 0)
            raise ImageUnreadableError(f"cannot be read from the bucket ({code})") from None
        except BotoCoreError as exc:
            raise ImageUnreadableError(f"cannot be read from the bucket ({type(exc).__name__})") from None
        total = str(answer.get("ContentRange") or "").rpartition("/")[2]
        size = int(total) if total.isdigit() else answer.get("ContentLength")
        return ImageHeadRead(data, size)

    def _https_head(self, url: str) -> ImageHeadRead:
        data = bytearray()
        try:
            with self._downloader.stream(url) as chunks:
                for chunk in chunks:
                    data.extend(chunk)
                    if len(data) >= HEAD_BYTES:
                        break  # the head is enough; the rest is never read
        except (DownloadRejectedError, DownloadError) as exc:
            raise ImageUnreadableError(str(exc).replace("video", "image")) from None
        return ImageHeadRead(bytes(data[:HEAD_BYTES]), None)

    def presign(self, url: str, seconds: int) -> str:
        """The provider's URL for an image: an S3 object's presigned GET; an https image as it is."""
        image = s3_image(url)
        if image is None:
            return url
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": image.bucket, "Key": image.key}, ExpiresIn=seconds
        )
