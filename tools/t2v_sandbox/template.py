"""Load a SAM template (short-form tags), package its local dirs into moto S3, translate it to CloudFormation."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".aws-sam", ".git"}


class TemplateError(Exception):
    """The template cannot be deployed in the sandbox; the message names the construct."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            # `!GetAtt A.B.C` splits at the first dot only, as CloudFormation does.
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a template file (YAML or JSON) with CloudFormation tags."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - safe loader subclass
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path}: not a CloudFormation/SAM template (no Resources)")
    return data


def zip_dir(directory: Path) -> bytes:
    """Deterministic zip of a source dir (sorted entries, fixed timestamps) so equal code hashes equal."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(directory.rglob("*")):
            rel = file.relative_to(directory)
            if file.is_dir() or any(part in _SKIP_DIRS for part in rel.parts) or file.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(rel.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, file.read_bytes(), zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@dataclass
class PackagedArtifact:
    """One local dir uploaded as a zip; the runner maps the zip's hash back to the live source dir."""

    source_dir: Path
    key: str
    sha256: str


@dataclass
class Packager:
    """Zips local CodeUri/ContentUri dirs and uploads them with `upload(key, data)`."""

    base_dir: Path
    bucket: str
    upload: Any
    artifacts: list[PackagedArtifact] = field(default_factory=list)

    def package(self, logical_id: str, uri: Any) -> Any:
        if not isinstance(uri, str) or uri.startswith("s3://"):
            return uri
        directory = (self.base_dir / uri).resolve()
        if not directory.is_dir():
            raise TemplateError(f"{logical_id}: local code dir {uri!r} not found at {directory}")
        data = zip_dir(directory)
        digest = hashlib.sha256(data).hexdigest()
        key = f"{logical_id}/{digest}.zip"
        self.upload(key, data)
        self.artifacts.append(PackagedArtifact(directory, key, digest))
        return f"s3://{self.bucket}/{key}"


def _inline_definition(logical_id: str, props: dict[str, Any], base_dir: Path) -> None:
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str) or uri.startswith("s3://"):
        return
    path = (base_dir / uri).resolve()
    if not path.is_file():
        raise TemplateError(f"{logical_id}: DefinitionUri {uri!r} not found at {path}")
    text = path.read_text(encoding="utf-8")
    props["Definition"] = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    del props["DefinitionUri"]


def prepare_sam(template: dict[str, Any], base_dir: Path, packager: Packager) -> dict[str, Any]:
    """Replace local paths with S3 URIs and inline state machine definitions (what `sam package` does)."""
    result = copy.deepcopy(template)
    for logical_id, res in result.get("Resources", {}).items():
        props = res.setdefault("Properties", {})
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function" and "InlineCode" not in props:
            code_uri = props.get("CodeUri", result.get("Globals", {}).get("Function", {}).get("CodeUri"))
            props["CodeUri"] = packager.package(logical_id, code_uri)
        elif kind == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = packager.package(logical_id, props.get("ContentUri"))
        elif kind == "AWS::Serverless::StateMachine":
            _inline_definition(logical_id, props, base_dir)
    return result


def translate(template: dict[str, Any], parameter_values: dict[str, Any], region: str) -> dict[str, Any]:
    """SAM → CloudFormation with aws-sam-translator (the same code CloudFormation's transform runs)."""
    if "Transform" not in template:
        return copy.deepcopy(template)
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    try:
        # The translator reads only the region from its session (for pseudo parameters and ARNs).
        session = boto3.Session(region_name=region)
        translated: dict[str, Any] = Translator(None, Parser(), boto_session=session).translate(
            copy.deepcopy(template), parameter_values=dict(parameter_values), get_managed_policy_map=dict
        )
        return translated
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"SAM translation failed: {causes}") from exc
