"""Test helpers: small real clips made with PyAV encoders, and the ../shared data folder.

Tests that read ../shared are marked ``shared_data`` (conftest.py marks them from the names they
use), so ``pytest -m "not shared_data"`` runs everything a fresh checkout can run.
``VIDCOLOR_SHARED`` points the helpers at another shared folder (a missing one shows which tests
need the data).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NoReturn

import av
import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
SHARED = Path(os.environ.get("VIDCOLOR_SHARED") or DEFAULT_SHARED)
DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures"

#: Set by conftest.py around each test: (node id, marked shared_data).
current_test: tuple[str, bool] | None = None


def shared_path(relative: str) -> Path:
    """A file under ../shared/data, or skip the test naming it and the missing file."""
    __tracebackhide__ = True
    return _shared(DATA / relative)


def shared_fixture(relative: str) -> Path:
    """A file under ../shared/fixtures, or skip the test naming it and the missing file."""
    __tracebackhide__ = True
    return _shared(FIXTURES / relative)


def _shared(path: Path) -> Path:
    __tracebackhide__ = True
    if current_test is not None and not current_test[1]:
        pytest.fail(f"{current_test[0]} reads {path} but is not marked shared_data: add @pytest.mark.shared_data "
                    "(conftest.py marks tests that name shared_path, SHARED or DATA themselves)", pytrace=False)
    if not path.exists():
        skip_for_missing(path)
    return path


MISSING_SHARED = "needs the shared test data"


def skip_for_missing(path: Path) -> NoReturn:
    """Skip the running test, reported at the test itself (not here), naming ``path``; conftest.py
    adds the test's name to the report (a module fixture's skip is shared by several tests)."""
    __tracebackhide__ = True
    raise pytest.skip.Exception(f"{MISSING_SHARED} {path}, which is missing (../shared beside the repository, "
                                "or $VIDCOLOR_SHARED)", _use_item_location=True)


def color_frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Smoothly moving colour shapes on a gradient: content with motion, edges and colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200 + 30, yy / height * 160 + 50, np.full_like(xx, 120)], axis=-1)
    colors = rng.integers(40, 255, size=(3, 3))
    frames = []
    for i in range(count):
        image = base.copy()
        for k, color in enumerate(colors):
            cx = (0.2 + 0.25 * k) * width + i * 1.5 * (k + 1)
            cy = (0.3 + 0.2 * k) * height + i * 0.7
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) * (0.12 + 0.04 * k)) ** 2
            image[mask] = color
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, frames: Sequence[np.ndarray], *, codec: str = "libx264", pix_fmt: str = "yuv420p",
               rate: int = 25, pts: Sequence[int] | None = None, time_base: Fraction | None = None,
               audio: bool = False, gray: bool = False) -> Path:
    """Encode RGB frames with a real PyAV encoder (optionally with an AAC track)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        options = {"crf": "10", "preset": "ultrafast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        audio_stream = container.add_stream("aac", rate=48000) if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            if gray:
                for plane in frame.planes[1:]:
                    dtype = np.uint8 if "10" not in pix_fmt else np.uint16
                    np.frombuffer(plane, dtype=dtype)[:] = 128 if dtype == np.uint8 else 512
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            else:
                frame.pts = i
                frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            samples = int(48000 * len(frames) / rate)
            t = np.arange(samples) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp", layout="mono")
                chunk.sample_rate = 48000
                chunk.pts = start
                for packet in audio_stream.encode(chunk):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


def decoded_video(path: Path | str) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, luma plane) of every frame, read back with PyAV."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            plane = frame.planes[0]
            dtype = np.uint8 if frame.format.components[0].bits <= 8 else np.dtype("<u2")
            row = plane.line_size // np.dtype(dtype).itemsize
            luma = np.frombuffer(plane, dtype=dtype).reshape(plane.height, row)[:, : plane.width].copy()
            out.append((float(frame.time), luma))
    return out


def leftover_partials(folder: Path | str) -> list[str]:
    return [n for n in os.listdir(folder) if "vidcolor-partial" in n]
