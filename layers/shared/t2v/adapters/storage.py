"""S3 adapter: stream a video into a multipart upload with constant memory; no half objects."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from t2v.media import DownloadError, DownloadRejectedError, looks_like_mp4

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True, slots=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    sha256: str
    etag: str


class VideoStore:
    def __init__(self, *, client: S3Client | None = None) -> None:
        self._client_obj = client

    @property
    def _client(self) -> S3Client:
        if self._client_obj is None:
            self._client_obj = boto3.client("s3")
        return self._client_obj

    def upload_video(self, chunks: Iterable[bytes], *, bucket: str, key: str, part_size: int) -> StoredObject:
        """Multipart upload; memory holds at most one part. Any failure aborts the upload."""
        client: Any = self._client
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType="video/mp4", ServerSideEncryption="AES256"
        )["UploadId"]
        try:
            size, digest, parts = self._send_parts(
                chunks, bucket=bucket, key=key, upload_id=upload_id, part_size=part_size
            )
            done = client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return StoredObject(bucket, key, size, digest, str(done.get("ETag", "")).strip('"'))

    def _send_parts(
        self, chunks: Iterable[bytes], *, bucket: str, key: str, upload_id: str, part_size: int
    ) -> tuple[int, str, list[dict[str, Any]]]:
        client: Any = self._client
        sha = hashlib.sha256()
        buffer = bytearray()
        parts: list[dict[str, Any]] = []
        size = 0
        checked = False

        def flush() -> None:
            number = len(parts) + 1
            try:
                result = client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=bytes(buffer)
                )
            except (BotoCoreError, ClientError) as exc:
                raise DownloadError(f"storing part {number} in S3 failed: {exc}") from None
            parts.append({"PartNumber": number, "ETag": result["ETag"]})
            buffer.clear()

        for chunk in chunks:
            if not chunk:
                continue
            sha.update(chunk)
            size += len(chunk)
            buffer.extend(chunk)
            if not checked and len(buffer) >= 8:
                if not looks_like_mp4(bytes(buffer[:8])):
                    raise DownloadRejectedError("downloaded bytes are not an MP4 (no ftyp box)")
                checked = True
            if len(buffer) >= part_size:
                flush()
        if size == 0:
            raise DownloadRejectedError("downloaded video is empty")
        if not checked:
            raise DownloadRejectedError("downloaded bytes are not an MP4 (too short)")
        if buffer or not parts:
            flush()
        return size, sha.hexdigest(), parts

    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )

    def read_capped(self, *, bucket: str, key: str, version: str | None, cap: int) -> bytes:
        """An object's bytes, or cap + 1 bytes when it is larger (the caller reports the cap)."""
        client: Any = self._client
        extra = {"VersionId": version} if version else {}
        if int(client.head_object(Bucket=bucket, Key=key, **extra)["ContentLength"]) > cap:
            return b"\0" * (cap + 1)
        body: bytes = client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        return body

    def head(self, *, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(self._client.head_object(Bucket=bucket, Key=key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
