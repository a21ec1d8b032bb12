"""Prompt files into a stack's prompt prefix, where intake reads them (the S3 door).

Shared by `t2v upload` and the `t2v console`: the same names, the same refusals, before anything is
sent (intake would refuse these too, but only as a FAILED job, after the upload).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from t2v_client.place import Place

PROMPT_SUFFIXES: Final = (".txt", ".json", ".jsonl")  # what intake reads as a prompt file
MAX_PROMPT_FILE_BYTES: Final = 1024 * 1024  # intake refuses larger files; refuse them before the upload
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ValueError):
    """A prompt file that will not be uploaded; names the file and the rule."""


@dataclass(frozen=True)
class Uploaded:
    key: str
    version_id: str | None


def upload_key(prefix: str, filename: str) -> str:
    """`prompts/<safe name>`: the file's base name, reduced to characters safe in an S3 key."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    safe = _SAFE_NAME.sub("-", base).strip("-.")
    if not safe or not safe.lower().endswith(PROMPT_SUFFIXES):
        raise UploadError(f"{filename or '(no name)'}: must end in {', '.join(PROMPT_SUFFIXES)}")
    return prefix + safe


def check_prompt_file(filename: str, data: bytes) -> None:
    """Refuse what intake would refuse as a whole file: over 1 MiB, or not UTF-8."""
    if len(data) > MAX_PROMPT_FILE_BYTES:
        raise UploadError(f"{filename}: {len(data)} bytes; prompt files are at most 1 MiB")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(f"{filename}: not UTF-8 text") from None


def upload_prompt_file(place: Place, filename: str, data: bytes) -> Uploaded:
    """Put one prompt file under the stack's InputPrefix; its key and version."""
    if place.bucket is None:
        raise UploadError("this stack has no OutputBucketName output to upload prompt files to")
    key = upload_key(place.input_prefix, filename)
    check_prompt_file(filename, data)
    answer = place.client("s3").put_object(Bucket=place.bucket, Key=key, Body=data)
    return Uploaded(key=key, version_id=answer.get("VersionId"))
