"""The benchmarks run end to end at a tiny size (so they cannot rot), and the streaming upload they
measure keeps its promises: exact bytes and sha256 in S3, multipart, abort on any failure."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from t2v.adapters.storage import VideoStore
from t2v.media import DownloadError, DownloadRejectedError
from t2v_bench import coldstart, stream
from t2v_bench.servers import mp4_like

MiB = 1024 * 1024


def test_stream_benchmark_runs_every_mode_into_moto(tmp_path: Path) -> None:
    data = stream.run({"1MiB": MiB}, repeat=1, sinks=("moto",), out_dir=tmp_path)

    assert {(r["sink"], r["mode"]) for r in data["results"]} == {("moto", mode) for mode in stream.MODES}
    assert all(r["mib_per_s"] > 0 and r["growth_mib"] < stream.GOAL_GROWTH_MIB for r in data["results"])
    assert json.loads((tmp_path / "stream.json").read_text())["benchmark"] == "stream"
    assert (tmp_path / "stream.png").stat().st_size > 0


def test_coldstart_benchmark_times_a_handler_import(tmp_path: Path) -> None:
    data = coldstart.run(1, ["status"], tmp_path, where=coldstart.Env(), reference=False)

    for variant in ("lambda_env", "no_env"):
        result = data["results"][variant]["status"]
        assert result["cumulative_ms"] > 0 and result["top_self_ms"]
    assert (tmp_path / "coldstart.png").stat().st_size > 0


@pytest.fixture
def bucket(moto_server: str) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _uploads(bucket: str) -> list[object]:
    return list(boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_a_video_lands_whole_in_parts_with_its_sha256(bucket: str) -> None:
    body = mp4_like(11 * MiB + 123)
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))

    stored = VideoStore().upload_video(chunks, bucket=bucket, key="v.mp4", part_size=5 * MiB)

    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=bucket, Key="v.mp4")["Body"].read() == body
    assert stored.size == len(body) and stored.sha256 == hashlib.sha256(body).hexdigest()
    assert stored.etag.endswith("-3")  # three parts: 5 MiB, 5 MiB and the rest


def test_bytes_that_are_not_an_mp4_are_rejected_and_the_upload_aborted(bucket: str) -> None:
    with pytest.raises(DownloadRejectedError, match="not an MP4"):
        VideoStore().upload_video(
            iter([b"<html>", b"nope</html>"]), bucket=bucket, key="v.mp4", part_size=5 * MiB
        )
    assert _uploads(bucket) == []


def test_a_download_failing_midway_aborts_the_upload(bucket: str) -> None:
    def broken() -> Iterator[bytes]:
        body = mp4_like(6 * MiB)
        yield body[: 5 * MiB + 1]  # one part goes up
        raise DownloadError("connection reset")

    with pytest.raises(DownloadError):
        VideoStore().upload_video(broken(), bucket=bucket, key="v.mp4", part_size=5 * MiB)
    assert _uploads(bucket) == []
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=bucket)
