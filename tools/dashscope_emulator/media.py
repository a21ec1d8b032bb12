"""Real MP4s for finished tasks: H.264 at 24 fps, AAC when asked, rendered without numpy or fonts.

Frames are flat yuv420p planes built from bytes: a background colour derived from the seed, the
prompt drawn with a built-in 5x7 bitmap font (ASCII; any other character is drawn as a box),
a block sweeping across the middle band (so frames differ), and the "AI生成" watermark at the
bottom right when asked. Encoding uses libx264 `ultrafast`, which keeps a 1080P 8 s clip to a
couple of seconds.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import av

FPS: Final = 24
SAMPLE_RATE: Final = 44_100

# 5x7 glyphs, one int per row, most significant of 5 bits = leftmost pixel.
_FONT: Final[dict[str, tuple[int, ...]]] = {
    " ": (0, 0, 0, 0, 0, 0, 0),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    "!": (0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "'": (0x04, 0x04, 0x08, 0, 0, 0, 0),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "/": (0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10),
}
_BOX: Final = (0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F)
# 7x7 hand-drawn approximations of the two Han characters of the watermark.
_HAN: Final[dict[str, tuple[int, ...]]] = {
    "生": (0x28, 0x3E, 0x48, 0x3E, 0x08, 0x08, 0x7F),
    "成": (0x0A, 0x7F, 0x44, 0x75, 0x56, 0x54, 0x4B),
}
WATERMARK: Final = "AI生成"


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """What to render. `size` is the delivered size (after the 1808*1808 x 8 s quirk)."""

    prompt: str
    size: str
    duration: int
    audio: bool
    watermark: bool
    seed: int
    # Image families: the input images as files (first frame, then the last frame for kf2v).
    images: tuple[bytes, ...] = ()

    @property
    def width(self) -> int:
        return int(self.size.split("*")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("*")[1])


def _glyph(char: str) -> tuple[int, tuple[int, ...]]:
    """(width in pixels, rows) of a character."""
    if char in _HAN:
        return 7, _HAN[char]
    return 5, _FONT.get(char.upper(), _BOX)


class _Plane:
    """A luma plane as a bytearray with the encoder's stride."""

    def __init__(self, width: int, height: int, stride: int, fill: int) -> None:
        self.width, self.height, self.stride = width, height, stride
        self.data = bytearray(bytes([fill]) * (stride * height))

    def rect(self, x: int, y: int, w: int, h: int, value: int) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        if x1 <= x0:
            return
        run = bytes([value]) * (x1 - x0)
        for row in range(max(0, y), min(self.height, y + h)):
            start = row * self.stride + x0
            self.data[start : start + len(run)] = run

    def text(self, x: int, y: int, text: str, scale: int, value: int) -> int:
        """Draw `text` at (x, y); returns the x after the last glyph."""
        for char in text:
            width, rows = _glyph(char)
            for r, bits in enumerate(rows):
                for c in range(width):
                    if bits >> (width - 1 - c) & 1:
                        self.rect(x + c * scale, y + r * scale, scale, scale, value)
            x += (width + 1) * scale
        return x


def _text_width(text: str, scale: int) -> int:
    return sum((_glyph(ch)[0] + 1) * scale for ch in text)


def _wrap(prompt: str, per_line: int, max_lines: int) -> list[str]:
    flat = " ".join(prompt.split())
    return [flat[i : i + per_line] for i in range(0, len(flat), per_line)][:max_lines]


def _base_plane(spec: VideoSpec, stride: int, background: int) -> _Plane:
    plane = _Plane(spec.width, spec.height, stride, background)
    scale = max(1, min(spec.width, spec.height) // 180)
    margin = 4 * scale
    per_line = max(1, (spec.width - 2 * margin) // (6 * scale))
    max_lines = max(1, (spec.height * 2 // 5) // (9 * scale))
    for i, line in enumerate(_wrap(spec.prompt, per_line, max_lines)):
        plane.text(margin, margin + i * 9 * scale, line, scale, 235)
    if spec.watermark:
        mark_scale = scale * 2
        x = spec.width - margin - _text_width(WATERMARK, mark_scale)
        y = spec.height - margin - 8 * mark_scale
        plane.rect(x - mark_scale, y - mark_scale, spec.width - x, 9 * mark_scale, 16)
        plane.text(x, y, WATERMARK, mark_scale, 250)
    return plane


def _tone(duration: int, seed: int) -> array[float]:
    """A quiet two-note jingle, mono float32 samples."""
    freqs = (220.0 + seed % 200, 330.0 + seed % 150)
    total = duration * SAMPLE_RATE
    half = SAMPLE_RATE // 2
    samples = array("f", bytes(4 * total))
    for n in range(total):
        freq = freqs[(n // half) % 2]
        samples[n] = 0.2 * math.sin(2 * math.pi * freq * n / SAMPLE_RATE)
    return samples


def _encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, spec: VideoSpec) -> None:
    samples = _tone(spec.duration, spec.seed)
    chunk = 1024
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        frame = av.AudioFrame(format="flt", layout="mono", samples=len(part))
        frame.planes[0].update(part.tobytes())
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _rows(plane: av.video.plane.VideoPlane, width: int, height: int) -> list[bytes]:
    data, stride = bytes(plane), plane.line_size
    return [data[r * stride : r * stride + width] for r in range(height)]


def _picture(data: bytes, width: int, height: int) -> list[list[bytes]]:
    """An input image scaled to the clip's size: its Y, U and V rows (yuv420p)."""
    from dashscope_emulator.images import frame_of

    frame = frame_of(data, width, height)
    half_w, half_h = (width + 1) // 2, (height + 1) // 2
    return [
        _rows(frame.planes[0], width, height),
        _rows(frame.planes[1], half_w, half_h),
        _rows(frame.planes[2], half_w, half_h),
    ]


def _image_frames(spec: VideoSpec, template: av.VideoFrame) -> Iterator[av.VideoFrame]:
    """it2v: every frame is the image (a block sweeps the middle band after the first); kf2v: a wipe
    from the first image (frame 0) to the last (the final frame), left to right."""
    first = _picture(spec.images[0], spec.width, spec.height)
    last = _picture(spec.images[-1], spec.width, spec.height) if len(spec.images) > 1 else None
    strides = [plane.line_size for plane in template.planes]
    frames = spec.duration * FPS
    band_y, band_h = spec.height * 9 // 20, spec.height // 10
    block_w = max(16, spec.width // 12)
    scale = max(1, min(spec.width, spec.height) // 180)
    for i in range(frames):
        planes = []
        for index, rows in enumerate(first):
            if last is not None:
                cut = len(rows[0]) * i // max(1, frames - 1)
                rows = [b[:cut] + a[cut:] for a, b in zip(rows, last[index], strict=True)]  # noqa: PLW2901
            planes.append(bytearray(b"".join(r.ljust(strides[index], b"\0") for r in rows)))
        luma = _Plane(spec.width, spec.height, strides[0], 0)
        luma.data = planes[0]
        if last is None and i > 0:
            luma.rect((spec.width - block_w) * i // max(1, frames - 1), band_y, block_w, band_h, 200)
        if spec.watermark:
            x = spec.width - 4 * scale - _text_width(WATERMARK, scale * 2)
            luma.text(x, spec.height - 4 * scale - 16 * scale, WATERMARK, scale * 2, 250)
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        for plane, data in zip(frame.planes, planes, strict=True):
            plane.update(bytes(data))
        frame.pts = i
        frame.time_base = Fraction(1, FPS)
        yield frame


def _text_frames(spec: VideoSpec, template: av.VideoFrame) -> Iterator[av.VideoFrame]:
    """Text to video: the prompt on a seeded background, a block sweeping the middle band."""
    digest = hashlib.sha256(f"{spec.seed}:{spec.prompt}".encode()).digest()
    background, chroma_u, chroma_v = 40 + digest[0] % 60, 90 + digest[1] % 76, 90 + digest[2] % 76
    y_plane, u_plane, v_plane = template.planes
    base = _base_plane(spec, y_plane.line_size, background)
    u_bytes, v_bytes = bytes([chroma_u]) * u_plane.buffer_size, bytes([chroma_v]) * v_plane.buffer_size
    frames = spec.duration * FPS
    band_y, band_h = spec.height * 9 // 20, spec.height // 10
    block_w = max(16, spec.width // 12)
    for i in range(frames):
        plane = _Plane(spec.width, spec.height, base.stride, 0)
        plane.data = bytearray(base.data)
        plane.rect((spec.width - block_w) * i // max(1, frames - 1), band_y, block_w, band_h, 200)
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        frame.planes[0].update(bytes(plane.data))
        frame.planes[1].update(u_bytes)
        frame.planes[2].update(v_bytes)
        frame.pts = i
        frame.time_base = Fraction(1, FPS)
        yield frame


def render_mp4(spec: VideoSpec, path: Path) -> None:
    """Encode the clip described by `spec` to `path` (written atomically): from its images when it
    has any (image families; a finer quality so the images' colours survive), else from its prompt."""
    frames, crf = (_image_frames, "23") if spec.images else (_text_frames, "30")
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.codec_context.gop_size = FPS * 2
        stream.codec_context.options = {"preset": "ultrafast", "crf": crf}
        # Every stream must exist before the first packet is muxed.
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if spec.audio else None
        for frame in frames(spec, av.VideoFrame(spec.width, spec.height, "yuv420p")):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio is not None:
            _encode_audio(container, audio, spec)
    tmp.replace(path)


class MediaStore:
    """Encodes clips in a small worker pool and keeps them in a directory."""

    def __init__(
        self, directory: Path | None = None, workers: int = 2, renderer: Callable[..., None] = render_mp4
    ) -> None:
        self._owned = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="dashscope-emulator-")) if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-encode")
        self._jobs: dict[str, Future[Path]] = {}
        self._lock = threading.Lock()
        self._render = renderer

    def path_for(self, task_id: str) -> Path:
        return self.directory / f"{task_id}.mp4"

    def submit(self, task_id: str, spec: VideoSpec) -> Future[Path]:
        with self._lock:
            job = self._jobs.get(task_id)
            if job is None:
                job = self._pool.submit(self._run, task_id, spec)
                self._jobs[task_id] = job
            return job

    def _run(self, task_id: str, spec: VideoSpec) -> Path:
        path = self.path_for(task_id)
        self._render(spec, path)
        return path

    def discard(self, task_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(task_id, None)
        if job is not None:
            job.cancel()

    def wait(self, task_id: str, timeout: float | None = None) -> Path | None:
        with self._lock:
            job = self._jobs.get(task_id)
        if job is None:
            return None
        return job.result(timeout=timeout)

    def clear(self) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for job in jobs.values():
            job.cancel()

    def close(self) -> None:
        self.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)
