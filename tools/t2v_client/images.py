"""Input images into the caller's own folder of the stack's input-images prefix, as `s3://` URLs.

Shared by `t2v submit --image` and the `t2v console`. A key is named by the image's content
(`inputs/<account>/user/<name>/<sha256 prefix>-<name>`), so the same image sent twice is the same
object and the same request (one job, by the API's idempotency), and a name never overwrites
another image. The API lets a caller name only images in its own folder, which it derives from the
caller's ARN (`t2v.images.ImagePlace.folder_of`, used here too: one rule).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from t2v.images import ImagePlace

from t2v_client.errors import CliError, ExitCode
from t2v_client.models import CONTENT_TYPES, EXTENSIONS, ImageLimits, ModelsError, check_image
from t2v_client.place import Place

DEFAULT_IMAGE_PREFIX: Final = "inputs/"
_SAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class UploadedImage:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def own_folder(place: Place) -> str:
    """`inputs/<account>/user/alice/`: the caller's own folder, by the API's own rule (`t2v.images`)."""
    return ImagePlace(place.bucket or "", image_prefix(place)).folder_of(caller_arn(place))


def image_prefix(place: Place) -> str:
    """The stack's input-images prefix (its parameter, else the template's default)."""
    value = place.parameters.get("InputImagesPrefix") or DEFAULT_IMAGE_PREFIX
    return value if value.endswith("/") else value + "/"


def image_key(folder: str, filename: str, data: bytes, kind: str) -> str:
    """`<folder><sha256[:16]>-<safe base name>`, its extension the type the bytes show."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _SAFE_NAME.sub("-", base.rsplit(".", 1)[0] if "." in base else base).strip("-.")[:60] or "image"
    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"{folder}{digest}-{stem}{EXTENSIONS.get(kind, '')}"


def caller_arn(place: Place) -> str:
    """Who the API will see: the sandbox identity's user ARN, or the AWS credentials' ARN."""
    if place.sandbox:
        identity = place.identities.get(place.target.identity or "")
        if identity is None or not identity.user_arn:
            raise CliError(
                f"the sandbox identity {place.target.identity!r} has no user ARN in the endpoints file; "
                "restart the sandbox (`t2v sandbox up`)",
                ExitCode.UNREACHABLE,
            )
        return identity.user_arn
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        arn: str = place.session.client("sts").get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError) as exc:
        raise CliError(
            f"cannot tell who you are (sts get-caller-identity): {exc}", ExitCode.UNREACHABLE
        ) from None
    return arn


def upload_image(place: Place, filename: str, data: bytes, limits: ImageLimits, field: str) -> UploadedImage:
    """Check one image against the family's limits and put it in the caller's folder.

    ModelsError (naming the image) for an image the family cannot take; CliError when S3 refuses."""
    kind = check_image(filename, data, limits, field)
    bucket = place.bucket
    if bucket is None:
        raise ModelsError("this stack has no OutputBucketName output to upload images to", field)
    key = image_key(own_folder(place), filename, data, kind)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        place.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType=CONTENT_TYPES[kind])
    except (BotoCoreError, ClientError) as exc:
        raise CliError(
            f"{filename}: not uploaded to s3://{bucket}/{key}: {exc}", ExitCode.UNREACHABLE
        ) from None
    return UploadedImage(bucket, key)


def image_source(
    place_for_upload: Place | None, given: str, limits: ImageLimits, field: str
) -> tuple[str, UploadedImage | None]:
    """What `--image` names, as the request's URL: https:// and s3:// as they are, a local file uploaded.

    `place_for_upload` is only asked for when a file has to be uploaded."""
    if given.startswith(("https://", "s3://")):
        return given, None
    if given.startswith("http://"):
        raise ModelsError(f"{field}: {given[:60]}: only https:// URLs (or a local file, or s3://)", field)
    path = Path(given)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelsError(f"{field}: cannot read {given}: {exc.strerror or exc}", field) from None
    if place_for_upload is None:
        raise ModelsError(f"{field}: {given}: no stack to upload it to", field)
    uploaded = upload_image(place_for_upload, path.name, data, limits, field)
    return uploaded.url, uploaded
