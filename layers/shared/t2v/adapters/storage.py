"""S3 adapter: stream a video into a multipart upload with constant memory; no half objects."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from t2v.adapters import boto3_module
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
            self._client_obj = boto3_module().client("s3")
        return self._client_obj

    def upload_video(self, chunks: Iterable[bytes], *, bucket: str, key: str, part_size: int) -> StoredObject:
        """Multipart upload; memory holds one part (twice, briefly, while it is joined). Any failure aborts."""
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
        pending: list[bytes] = []  # the next part's chunks: joined once, not copied chunk by chunk
        held = 0
        parts: list[dict[str, Any]] = []
        size = 0
        head = b""

        def flush(hasher: ThreadPoolExecutor) -> None:
            number = len(parts) + 1
            body = b"".join(pending)
            pending.clear()
            # hashlib releases the GIL: the part is hashed while it is being sent, in order.
            hashed = hasher.submit(sha.update, body)
            try:
                result = client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
            except (BotoCoreError, ClientError) as exc:
                raise DownloadError(f"storing part {number} in S3 failed: {exc}") from None
            finally:
                hashed.result()
            parts.append({"PartNumber": number, "ETag": result["ETag"]})

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="t2v-sha256") as hasher:
            for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if len(head) < 8:
                    head += chunk[: 8 - len(head)]
                    if len(head) == 8 and not looks_like_mp4(head):
                        raise DownloadRejectedError("downloaded bytes are not an MP4 (no ftyp box)")
                pending.append(chunk)
                held += len(chunk)
                if held >= part_size:
                    flush(hasher)
                    held = 0
            if size == 0:
                raise DownloadRejectedError("downloaded video is empty")
            if len(head) < 8:
                raise DownloadRejectedError("downloaded bytes are not an MP4 (too short)")
            if pending or not parts:
                flush(hasher)
        return size, sha.hexdigest(), parts

    def put_json(self, *, bucket: str, key: str, data: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )

    def version_of(
        self, *, bucket: str, key: str, version: str | None = None
    ) -> tuple[str | None, str] | None:
        """(versionId, ETag) of an object, None when there is no such object (or version)."""
        client: Any = self._client
        extra = {"VersionId": version} if version else {}
        try:
            head = client.head_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound", "400"}:
                return None
            raise
        return head.get("VersionId"), str(head.get("ETag", "")).strip('"')

    def put_bytes(self, *, bucket: str, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, ServerSideEncryption="AES256"
        )

    def read_capped(self, *, bucket: str, key: str, version: str | None, cap: int) -> bytes:
        """An object's bytes, or cap + 1 bytes when it is larger (the caller reports the cap)."""
        client: Any = self._client
        extra = {"VersionId": version} if version else {}
        if int(client.head_object(Bucket=bucket, Key=key, **extra)["ContentLength"]) > cap:
            return b"\0" * (cap + 1)
        body: bytes = client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
        return body

    def presign(self, *, bucket: str, key: str, expires_in: int = 900) -> str:
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
