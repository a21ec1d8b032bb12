"""Input images: where a request may name them, whose they are, and what their first bytes say.

Pure domain, no I/O. A request names an image by `https://...` or by
`s3://<the stack's bucket>/<key under the input-images prefix>`; an API caller only inside its own
folder of that prefix (admins excepted), prompt files and events (owned by PromptJobOwner) anywhere
under it. Before any paid call, the pipeline reads the head of each image (a ranged GET) and checks
its type by magic bytes, its size and its pixel dimensions against the family's limits.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from t2v.families.base import ImageLimits
from t2v.request import FieldError, InvalidRequestError, MediaItem, RequestBase, bounded

# Enough of a file's head for its dimensions: PNG and WEBP say them in the first 30 bytes; a JPEG's
# SOF marker follows its APP segments (EXIF thumbnails included), which 256 KiB covers in practice.
HEAD_BYTES: Final = 256 * 1024
_FOLDER_SAFE: Final = re.compile(r"[^A-Za-z0-9._=@+-]")


@dataclass(frozen=True, slots=True)
class ImagePlace:
    """Where images may live in the stack: its bucket and the input-images prefix."""

    bucket: str
    prefix: str

    def folder_of(self, principal: str) -> str:
        """A caller's own folder: `<prefix><account>/<user or role>/...`, one path segment per part of
        the IAM ARN's resource (`user/alice`, `assumed-role/Role/session`), unsafe characters as `_`."""
        parts = principal.split(":", 5)  # arn:<partition>:<service>::<account>:<resource>
        segments = [parts[4], *parts[5].split("/")] if len(parts) == 6 else [principal]
        parts = [p for p in segments if p] or ["_"]
        return self.prefix + "/".join(_FOLDER_SAFE.sub("_", p) for p in parts) + "/"


@dataclass(frozen=True, slots=True)
class S3Image:
    bucket: str
    key: str


def s3_image(url: str) -> S3Image | None:
    if not url.startswith("s3://"):
        return None
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return S3Image(bucket, key)


def check_places(request: RequestBase, place: ImagePlace | None, folder: str | None = None) -> None:
    """Refuse an `s3://` image outside the stack's bucket and input-images prefix, or (with `folder`:
    an API caller who is no admin) outside the caller's own folder. Each refusal names the field."""
    errors = list(_place_errors(request.images, place, folder))
    if errors:
        raise InvalidRequestError(errors)


def _place_errors(
    images: Iterable[MediaItem], place: ImagePlace | None, folder: str | None
) -> Iterable[FieldError]:
    for index, item in enumerate(images):
        image = s3_image(item.url)
        if image is None:
            continue
        field = f"media.{index}.url"
        if place is None:
            yield FieldError(field, "this deployment takes no s3:// images (no input-images bucket set)")
        elif image.bucket != place.bucket:
            yield FieldError(field, f"s3:// images must be in the stack's bucket {place.bucket}")
        elif not image.key.startswith(place.prefix) or ".." in image.key.split("/"):
            yield FieldError(field, f"s3:// images must be under the input-images prefix {place.prefix}")
        elif folder is not None and not image.key.startswith(folder):
            yield FieldError(field, f"you may name only images in your own folder {folder}")


@dataclass(frozen=True, slots=True)
class ImageHeadRead:
    """An image's first bytes and, when known, its whole size in bytes."""

    data: bytes
    size: int | None


class ImageUnreadableError(Exception):
    """An image could not be read (no such key, refused, unreachable): the reason, for the refusal."""


@dataclass(frozen=True, slots=True)
class ImageHead:
    """What an image's first bytes say."""

    format: str  # jpeg, png, webp
    width: int
    height: int


class ImageRefusedError(InvalidRequestError):
    """An image failed a check before any paid call: it names the image and the rule."""

    code = "InvalidImage"


def refuse(field: str, name: str, rule: str) -> ImageRefusedError:
    return ImageRefusedError([FieldError(field, f"image {bounded(name, 200)}: {rule}")])


def read_head(data: bytes) -> ImageHead | None:
    """The format and pixel size from an image's head (magic bytes, never the name); None when the
    bytes are no JPEG, PNG or WEBP, or their header is cut short."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return ImageHead("png", width, height)
    if len(data) >= 30 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    return None


def _webp(data: bytes) -> ImageHead | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHead("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20:21] == b"\x2f":
        bits = int.from_bytes(data[21:25], "little")
        return ImageHead("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHead("webp", width, height)
    return None


_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg(data: bytes) -> ImageHead | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return ImageHead("jpeg", width, height)
        at += 2 + length
    return None


class ImageSource(Protocol):
    def head(self, url: str) -> ImageHeadRead: ...
    def presign(self, url: str, seconds: int) -> str: ...


def inspect_images(request: RequestBase, source: ImageSource, limits: ImageLimits | None) -> None:
    """Every image of `request` read (its head only) and checked, before any paid call; the first
    that fails raises ImageRefusedError naming it (`media.N.url`) and the rule."""
    for index, item in enumerate(request.images):
        field = f"media.{index}.url"
        try:
            read = source.head(item.url)
        except ImageUnreadableError as exc:
            raise refuse(field, item.url, str(exc)) from None
        if limits is not None:
            check_image(field, item.url, read.data, read.size, limits)


def check_image(field: str, name: str, head: bytes, size: int | None, limits: ImageLimits) -> ImageHead:
    """The image's head checked against `limits`, or ImageRefusedError naming the image and the rule."""
    if size is not None and size > limits.max_bytes:
        raise refuse(field, name, f"{size} bytes is over the limit of {limits.max_bytes} bytes")
    found = read_head(head)
    if found is None or found.format not in limits.formats:
        kinds = ", ".join(f.upper() for f in limits.formats)
        raise refuse(field, name, f"is not a {kinds} image (judged by its bytes, not its name)")
    if found.width < 1 or found.height < 1:
        raise refuse(field, name, "its header gives no pixel size")
    if limits.min_side is not None and min(found.width, found.height) < limits.min_side:
        raise refuse(
            field, name, f"{found.width}x{found.height} px: each side must be at least {limits.min_side} px"
        )
    if max(found.width, found.height) > limits.max_side:
        raise refuse(
            field, name, f"{found.width}x{found.height} px: each side must be at most {limits.max_side} px"
        )
    if found.width * found.height > limits.max_pixels:
        raise refuse(
            field,
            name,
            f"{found.width}x{found.height} px is {found.width * found.height} pixels; at most {limits.max_pixels}",
        )
    return found
