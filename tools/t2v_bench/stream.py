"""Benchmark 3, finalize streaming: a provider video into S3 with bounded memory.

Three ways to move an MP4-like body (generated on the fly by a local HTTP server) into S3, each
run in a fresh process that measures its own peak RSS growth (ru_maxrss after minus before, the
baseline taken after imports, client set-up and a 64 KiB warm-up through the same path) and
its throughput:

- `real`: what `finalize_job` runs - `VideoDownloader.stream` (allowlist, redirect checks, size
  cap) into `VideoStore.upload_video` (ftyp check, sha256, multipart with the configured part
  size, abort on failure);
- `naive`: read the whole body into memory, then one `put_object`;
- `plain`: httpx `iter_bytes` into the same multipart upload with the same part size, no checks
  (the throughput reference).

S3 is moto's server in its own process, plus an S3-compatible sink that discards the bytes (so
the client's own speed shows without moto's cost). Goals: growth <= 64 MiB at every size, `real`
>= 0.8x `plain`.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from t2v_bench.common import RESULTS_DIR, median, pyplot, table, write_json

MiB = 1024 * 1024
SIZES = {"10MiB": 10 * MiB, "200MiB": 200 * MiB, "1GiB": 1024 * MiB}
MODES = ("naive", "plain", "real")
SINKS = ("moto", "sink")
GOAL_GROWTH_MIB = 64.0
GOAL_RATIO = 0.8
BUCKET = "bench-videos"
_WARMUP = 64 * 1024


# --- the measured process ---------------------------------------------------------------------
def _s3(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        config=Config(s3={"addressing_style": "path"}),
    )


def _part_size() -> int:
    from t2v.config import FinalizeSettings

    return int(FinalizeSettings.model_fields["part_size_bytes"].default)


def _real(s3: Any, url: str, origin: str, key: str) -> int:
    """Exactly the download + upload of `finalize_job` (t2v.usecases.finalize), with its settings' defaults."""
    from t2v.adapters.download import VideoDownloader
    from t2v.adapters.storage import VideoStore
    from t2v.config import FinalizeSettings
    from t2v.media import HostAllowlist

    cap = int(FinalizeSettings.model_fields["max_video_bytes"].default)
    downloader = VideoDownloader(HostAllowlist([origin]), max_bytes=cap)
    with downloader.stream(url) as chunks:
        stored = VideoStore(client=s3).upload_video(chunks, bucket=BUCKET, key=key, part_size=_part_size())
    return stored.size


def _naive(s3: Any, url: str, origin: str, key: str) -> int:
    import httpx

    body = httpx.get(url, timeout=120).raise_for_status().content
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="video/mp4")
    return len(body)


def _plain(s3: Any, url: str, origin: str, key: str) -> int:
    import httpx

    part_size = _part_size()
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="video/mp4")["UploadId"]
    parts: list[dict[str, Any]] = []
    size = 0

    def send(body: bytes) -> None:
        n = len(parts) + 1
        etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=n, Body=body)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})

    with httpx.stream("GET", url, timeout=120) as response:
        pending: list[bytes] = []
        held = 0
        for chunk in response.iter_bytes(MiB):
            pending.append(chunk)
            held += len(chunk)
            size += len(chunk)
            if held >= part_size:
                send(b"".join(pending))
                pending, held = [], 0
        if pending or not parts:
            send(b"".join(pending))
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    return size


_RUNNERS = {"real": _real, "naive": _naive, "plain": _plain}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(mode: str, media: str, endpoint: str, size: int, key: str) -> dict[str, Any]:
    run = _RUNNERS[mode]
    s3 = _s3(endpoint)
    run(s3, f"{media}/{_WARMUP}.mp4", media, f"{key}.warmup")  # imports, models, connections
    before, cpu = _rss_mib(), _cpu_seconds()
    started = time.perf_counter()
    moved = run(s3, f"{media}/{size}.mp4", media, key)
    elapsed = time.perf_counter() - started
    after, cpu = _rss_mib(), _cpu_seconds() - cpu
    if moved != size:
        raise RuntimeError(f"{mode}: moved {moved} bytes, expected {size}")
    return {
        "mode": mode,
        "bytes": size,
        "seconds": elapsed,
        "mib_per_s": size / MiB / elapsed,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "growth_mib": after - before,
        # CPU seconds per GiB in this process: steadier than throughput on a shared machine.
        "cpu_s_per_gib": cpu / (size / 1024**3),
    }


# --- the orchestrator -------------------------------------------------------------------------
def _measure(mode: str, media: str, endpoint: str, size: int, key: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "t2v_bench.stream", "worker", mode, media, endpoint, str(size), key],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _check_stored(s3: Any, key: str, size: int) -> None:
    head = s3.head_object(Bucket=BUCKET, Key=key)
    if int(head["ContentLength"]) != size:
        raise RuntimeError(f"{key}: {head['ContentLength']} bytes in S3, expected {size}")
    s3.delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
    s3.delete_object(Bucket=BUCKET, Key=f"{key}.warmup")


def _servers(sinks: Sequence[str]) -> Iterator[dict[str, Any]]:
    from contextlib import ExitStack

    from t2v_bench.servers import ServerProcess

    with ExitStack() as stack:
        procs = {kind: stack.enter_context(ServerProcess(kind)) for kind in ("media", *sinks)}
        yield {kind: proc.url for kind, proc in procs.items()}


def run(
    sizes: dict[str, int] = SIZES,
    repeat: int = 3,
    sinks: Sequence[str] = SINKS,
    out_dir: Path = RESULTS_DIR,
    name: str = "stream",
) -> dict[str, Any]:
    samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for urls in _servers(sinks):
        moto = _s3(urls["moto"]) if "moto" in urls else None
        if moto is not None:
            moto.create_bucket(Bucket=BUCKET)
        for label, size in sizes.items():
            for attempt in range(repeat):
                for sink in sinks:
                    for mode in MODES:  # interleaved, so load from elsewhere spreads over all three
                        key = f"videos/{label}-{mode}-{attempt}.mp4"
                        one = _measure(mode, urls["media"], urls[sink], size, key)
                        if sink == "moto" and moto is not None:
                            _check_stored(moto, key, size)
                        samples.setdefault((label, sink, mode), []).append(one)
                        print(
                            f"  {label:>7} {sink:>4} {mode:>5}: {one['mib_per_s']:7.1f} MiB/s, "
                            f"+{one['growth_mib']:7.1f} MiB, {one['cpu_s_per_gib']:5.2f} CPU s/GiB",
                            file=sys.stderr,
                            flush=True,
                        )
    results = []
    for (label, sink, mode), got in samples.items():
        results.append(
            {
                "size": label,
                "bytes": sizes[label],
                "sink": sink,
                "mode": mode,
                "mib_per_s": round(median([g["mib_per_s"] for g in got]), 1),
                "growth_mib": round(max(g["growth_mib"] for g in got), 1),
                "cpu_s_per_gib": round(median([g["cpu_s_per_gib"] for g in got]), 2),
                "runs": got,
            }
        )
    data = {
        "benchmark": "stream",
        "goals": {"growth_mib": GOAL_GROWTH_MIB, "ratio_to_plain": GOAL_RATIO},
        "part_size_mib": _part_size() / MiB,
        "repeat": repeat,
        "results": results,
    }
    write_json(name, data, out_dir)
    _plot(data, out_dir / f"{name}.png")
    print(report(data))
    return data


def _by(data: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["size"], r["sink"], r["mode"]): r for r in data["results"]}


def verdicts(data: dict[str, Any]) -> list[tuple[str, str, float, float, bool]]:
    """Per size and sink: real's growth, real/plain throughput ratio, and whether both goals hold."""
    by = _by(data)
    out = []
    for size, sink, mode in by:
        if mode != "real":
            continue
        real, plain = by[(size, sink, "real")], by[(size, sink, "plain")]
        ratio = real["mib_per_s"] / plain["mib_per_s"]
        ok = real["growth_mib"] <= GOAL_GROWTH_MIB and ratio >= GOAL_RATIO
        out.append((size, sink, real["growth_mib"], ratio, ok))
    return out


def report(data: dict[str, Any]) -> str:
    by = _by(data)
    sizes = list(dict.fromkeys(r["size"] for r in data["results"]))
    sinks = list(dict.fromkeys(r["sink"] for r in data["results"]))
    rows = []
    ok = {(s, k): (g, r, v) for s, k, g, r, v in verdicts(data)}
    for size in sizes:
        for sink in sinks:
            cells: list[Any] = [size, "moto S3" if sink == "moto" else "discard sink"]
            for mode in MODES:
                r = by[(size, sink, mode)]
                cells.append(f"{r['mib_per_s']:.0f} MiB/s, +{r['growth_mib']:.0f} MiB")
            _, ratio, good = ok[(size, sink)]
            cpu = by[(size, sink, "real")]["cpu_s_per_gib"] / by[(size, sink, "plain")]["cpu_s_per_gib"]
            cells += [f"{ratio:.2f}", f"{cpu:.2f}", "yes" if good else "NO"]
            rows.append(cells)
    headers = [
        "size",
        "S3",
        "naive (read all, put)",
        "plain stream (reference)",
        "real finalize path",
        "real/plain",
        "CPU real/plain",
        f"goals (≤{GOAL_GROWTH_MIB:.0f} MiB, ≥{GOAL_RATIO}x)",
    ]
    title = (
        f"Finalize streaming: median throughput and worst peak-RSS growth of {data['repeat']} fresh processes, "
        f"part size {data['part_size_mib']:.0f} MiB"
    )
    return title + "\n" + table(headers, rows)


def _plot(data: dict[str, Any], path: Path) -> None:
    plt = pyplot()
    by = _by(data)
    sizes = list(dict.fromkeys(r["size"] for r in data["results"]))
    sinks = list(dict.fromkeys(r["sink"] for r in data["results"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / (len(MODES) * len(sinks))
    for i, (sink, mode) in enumerate((s, m) for s in sinks for m in MODES):
        xs = [x + (i - (len(MODES) * len(sinks) - 1) / 2) * width for x in range(len(sizes))]
        label = f"{mode} ({'moto' if sink == 'moto' else 'sink'})"
        axes[0].bar(xs, [by[(s, sink, mode)]["growth_mib"] for s in sizes], width, label=label)
        axes[1].bar(xs, [by[(s, sink, mode)]["mib_per_s"] for s in sizes], width, label=label)
    axes[0].axhline(GOAL_GROWTH_MIB, color="red", linestyle="--", label="goal 64 MiB")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("peak RSS growth, MiB (log)")
    axes[1].set_ylabel("throughput, MiB/s (median)")
    for ax in axes:
        ax.set_xticks(list(range(len(sizes))), sizes)
    axes[0].legend(fontsize=7)
    axes[0].set_title("Memory")
    axes[1].set_title("Throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _size(text: str) -> tuple[str, int]:
    units = {"KiB": 1024, "MiB": MiB, "GiB": 1024 * MiB}
    for unit, factor in units.items():
        if text.endswith(unit):
            return text, int(float(text.removesuffix(unit)) * factor)
    return text, int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        mode, media, endpoint, size, key = args[1:6]
        print(json.dumps(worker(mode, media, endpoint, int(size), key)))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on `kill` too
    parser = argparse.ArgumentParser(prog="t2v_bench.stream", description=__doc__)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), help="e.g. 10MiB 200MiB 1GiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sinks", nargs="*", default=list(SINKS), choices=SINKS)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    opts = parser.parse_args(args)
    sizes = dict(_size(s) for s in opts.sizes)
    data = run(sizes, opts.repeat, opts.sinks, opts.out)
    return 0 if all(v[-1] for v in verdicts(data)) or not opts.strict else 1


if __name__ == "__main__":
    sys.exit(main())
