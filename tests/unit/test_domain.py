"""Pure domain pieces: the job lifecycle, the download allowlist, prompt files, configuration."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from t2v.config import (
    ApiSettings,
    BatchSettings,
    ConfigError,
    FinalizeSettings,
    IntakeSettings,
    ProviderSettings,
    PushSettings,
    SweeperSettings,
)
from t2v.errors import (
    ProviderAuthError,
    ProviderQuotaError,
    ProviderThrottledError,
    RetryableProviderError,
    TerminalProviderError,
    classify_http_error,
)
from t2v.intake import parse_prompt_file
from t2v.jobs import TERMINAL, JobStatus, can_move, derive_job_id
from t2v.media import DownloadRejectedError, HostAllowlist, is_public_address, looks_like_mp4
from t2v_sandbox.template import load_template

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {"size": "1280*720", "duration": 5}


def test_lifecycle_moves_forward_and_ends_once() -> None:
    assert can_move(JobStatus.ACCEPTED, JobStatus.SUBMITTED)
    assert can_move(JobStatus.RUNNING, JobStatus.DOWNLOADING)
    assert not can_move(JobStatus.RUNNING, JobStatus.PENDING)
    for end in TERMINAL:
        assert not any(can_move(end, other) for other in JobStatus)
        assert can_move(JobStatus.ACCEPTED, end) or end == JobStatus.SUCCEEDED
    assert not can_move(JobStatus.ACCEPTED, JobStatus.SUCCEEDED)


def test_job_ids_are_deterministic_execution_names() -> None:
    a = derive_job_id("s3", "bucket", "prompts/a.jsonl", "v1", "3")
    assert a == derive_job_id("s3", "bucket", "prompts/a.jsonl", "v1", "3")
    assert a != derive_job_id("s3", "bucket", "prompts/a.jsonl", "v1", "4")
    assert len(a) <= 80 and a.replace("-", "").isalnum()


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "InvalidParameter", TerminalProviderError),
        (400, "DataInspectionFailed", TerminalProviderError),
        (400, "Arrearage", ProviderQuotaError),
        (401, "InvalidApiKey", ProviderAuthError),
        (403, "AccessDenied.Unpurchased", ProviderAuthError),
        (404, "ModelNotFound", TerminalProviderError),
        (408, "RequestTimeOut", RetryableProviderError),
        (429, "Throttling", ProviderThrottledError),
        (429, "Throttling.RateQuota", ProviderThrottledError),
        (429, "Throttling.AllocationQuota", ProviderQuotaError),
        (429, "PrepaidBillOverdue", ProviderQuotaError),
        (500, "InternalError.Algo", RetryableProviderError),
        (503, "ModelUnavailable", RetryableProviderError),
    ],
)
def test_error_table(status: int, code: str, cls: type) -> None:
    err = classify_http_error(status, code, "m", "rid-1")
    assert type(err) is cls
    assert err.retryable == issubclass(cls, RetryableProviderError)
    assert "rid-1" in str(err) and code in str(err)


ALLOW = HostAllowlist(["media.pixverseai.cn", "*.aliyuncs.com", "http://127.0.0.1:8765"])


@pytest.mark.parametrize(
    "url",
    [
        "https://media.pixverseai.cn/a.mp4",
        "https://dashscope-result.oss-cn-beijing.aliyuncs.com/x.mp4",
        "http://127.0.0.1:8765/media/t.mp4",
    ],
)
def test_allowlisted_urls(url: str) -> None:
    ALLOW.check(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://media.pixverseai.cn/a.mp4",  # plain http
        "https://aliyuncs.com/x.mp4",  # the bare domain is not a subdomain
        "https://evil.com/media.pixverseai.cn",
        "https://media.pixverseai.cn.evil.com/a.mp4",
        "https://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:9999/media/t.mp4",  # other port than the explicit origin
        "https://user:pw@media.pixverseai.cn/a.mp4",
        "file:///etc/passwd",
        "ftp://media.pixverseai.cn/a.mp4",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(DownloadRejectedError):
        ALLOW.check(url)


def test_private_addresses_are_not_public() -> None:
    assert not any(
        map(is_public_address, ["10.0.0.1", "127.0.0.1", "169.254.169.254", "::1", "fd00::1", "0.0.0.0"])
    )
    assert is_public_address("47.95.1.1")


def test_mp4_sniffing() -> None:
    assert looks_like_mp4(b"\x00\x00\x00\x20ftypisom")
    assert not looks_like_mp4(b"<html><body>")
    assert not looks_like_mp4(b"")


def test_prompt_files_txt_json_jsonl() -> None:
    [txt] = parse_prompt_file("prompts/a.txt", "一只小猫在月光下奔跑\n".encode(), DEFAULTS)
    assert txt.request is not None and txt.request.prompt == "一只小猫在月光下奔跑"
    [js] = parse_prompt_file(
        "prompts/a.json", json.dumps({"prompt": "p", "size": "640*360"}).encode(), DEFAULTS
    )
    assert js.request is not None and js.request.size == "640*360"
    lines = (
        b'{"prompt": "a"}\n\n{"prompt": "b", "duration": 7}\nnot json\n{"prompt": "c", "size": "1920*1080"}\n'
    )
    items = parse_prompt_file("prompts/batch.jsonl", lines, DEFAULTS)
    assert [i.line for i in items] == [1, 3, 4, 5]
    assert [i.request is not None for i in items] == [True, False, False, True]
    assert "prompts/batch.jsonl line 3" in (items[1].error or "") and "duration" in (items[1].error or "")
    assert "line 4" in (items[2].error or "") and "invalid JSON" in (items[2].error or "")


@pytest.mark.parametrize(
    ("key", "data", "needle"),
    [
        ("prompts/a.txt", b"\xff\xfe\x00bad", "not UTF-8"),
        ("prompts/a.json", b"{nope", "invalid JSON"),
        ("prompts/a.json", b'["a list"]', "JSON object"),
        ("prompts/a.txt", b"   ", "prompt"),
        ("prompts/a.csv", b"prompt", "unsupported file type"),
        ("prompts/a.jsonl", b"\n\n", "no requests"),
        ("prompts/a.txt", b"x" * (1024 * 1024 + 1), "cap"),
    ],
)
def test_bad_prompt_files_name_the_problem(key: str, data: bytes, needle: str) -> None:
    [item] = parse_prompt_file(key, data, DEFAULTS)
    assert item.request is None
    assert key in (item.error or "") and needle in (item.error or "")


@given(st.binary(max_size=512), st.sampled_from(["p.txt", "p.json", "p.jsonl", "p.bin"]))
def test_any_bytes_give_requests_or_clear_errors(data: bytes, key: str) -> None:
    for item in parse_prompt_file(key, data, DEFAULTS):
        assert (item.request is None) == bool(item.error)
        if item.error:
            assert key in item.error


def test_configuration_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="JOBS_TABLE"):
        ProviderSettings.from_env({"DASHSCOPE_SECRET_ID": "s"})
    with pytest.raises(ConfigError, match="POLL_INTERVAL_SECONDS"):
        ProviderSettings.from_env(
            {"JOBS_TABLE": "t", "DASHSCOPE_SECRET_ID": "s", "POLL_INTERVAL_SECONDS": "0"}
        )
    settings = FinalizeSettings.from_env({"JOBS_TABLE": "t", "OUTPUT_BUCKET": "b", "TOPIC_ARN": "arn"})
    assert settings.allowlist == ["media.pixverseai.cn", "*.aliyuncs.com"]


# The settings each function reads its environment with (t2v.wiring).
FUNCTION_SETTINGS = {
    "SubmitFunction": ProviderSettings,
    "StatusFunction": ProviderSettings,
    "FinalizeFunction": FinalizeSettings,
    "IntakeFunction": IntakeSettings,
    "ApiFunction": ApiSettings,
    "ParkFunction": PushSettings,
    "CallbackFunction": PushSettings,
    "SweeperFunction": SweeperSettings,
    "BatchFunction": BatchSettings,
}


def test_every_functions_environment_holds_what_its_settings_require() -> None:
    template = load_template(ROOT / "template.yaml")
    common = set(template["Globals"]["Function"]["Environment"]["Variables"])
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == set(FUNCTION_SETTINGS)
    for name, settings in FUNCTION_SETTINGS.items():
        env = common | set(functions[name].get("Environment", {}).get("Variables", {}))
        required = {field.upper() for field, info in settings.model_fields.items() if info.is_required()}
        assert required <= env, f"{name} lacks {sorted(required - env)} ({settings.__name__})"


def test_outputs_never_land_under_the_input_prefix() -> None:
    env = {"JOBS_TABLE": "t", "OUTPUT_BUCKET": "b", "TOPIC_ARN": "a", "STATE_MACHINE_ARN": "s"}
    with pytest.raises(ConfigError, match="overlap"):
        IntakeSettings.from_env({**env, "INPUT_PREFIX": "prompts/", "OUTPUT_PREFIX": "prompts/out/"})
    assert IntakeSettings.from_env(env).output_prefix == "videos/"


@pytest.mark.parametrize("images", ["prompts/", "videos/", "bad prefix", ""])
def test_the_input_images_prefix_is_a_folder_of_its_own(images: str) -> None:
    env = {"JOBS_TABLE": "t", "OUTPUT_BUCKET": "b", "TOPIC_ARN": "a", "STATE_MACHINE_ARN": "s"}
    if not images:  # unset: the default, inputs/
        assert IntakeSettings.from_env(env).input_images_prefix == "inputs/"
        return
    with pytest.raises(ConfigError, match="INPUT_IMAGES_PREFIX"):
        IntakeSettings.from_env({**env, "INPUT_IMAGES_PREFIX": images})


def test_layer_requirements_match_the_project_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    layer = (ROOT / "layers" / "shared" / "requirements.txt").read_text(encoding="utf-8").split()
    assert sorted(project) == sorted(layer)
    assert all("==" in pin for pin in layer)
