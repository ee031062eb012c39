"""Streaming frame reader: PyAV decoding in a background thread, luma only, constant memory.

Reads any container/codec FFmpeg reads, plus image sequences (a folder of frames, or a printf
pattern such as ``scan/%06d.tif``). Only luma is kept, at its native bit depth and code values,
so the output's luma can be the input's exactly. Frame timestamps are kept (variable frame rate
stays variable), rotation metadata is applied, and corrupt packets are skipped and counted.
"""

from __future__ import annotations

import logging

import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .color import LumaFormat
from .errors import InputError, VideoOpenError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dpx", ".bmp", ".exr", ".webp"})
#: Frames decoded ahead of the colorizer; bounded so memory stays flat whatever the length.
QUEUE_LENGTH = 4
#: Consecutive undecodable packets after which the input is declared broken.
MAX_CONSECUTIVE_DECODE_FAILURES = 50
DEFAULT_SEQUENCE_FPS = Fraction(24)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its position, timestamp and luma plane (display orientation)."""

    index: int
    pts: int
    time: float
    luma: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about an input before colorizing it."""

    path: str
    width: int
    height: int
    frame_count: int | None
    fps: Fraction
    time_base: Fraction
    luma_format: LumaFormat
    rotation: int = 0
    sequence_files: tuple[str, ...] = ()
    stream_index: int = 0
    other_streams: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_sequence(self) -> bool:
        return bool(self.sequence_files)


def is_image_sequence(path: str | os.PathLike[str]) -> bool:
    """A folder of images or a printf pattern (``%06d``) names an image sequence."""
    text = os.fspath(path)
    return os.path.isdir(text) or bool(re.search(r"%0?\d*d", os.path.basename(text)))


def sequence_files(path: str | os.PathLike[str]) -> list[str]:
    """The frames of an image sequence in order (natural sort; pattern numbers ascending)."""
    text = os.fspath(path)
    if os.path.isdir(text):
        names = [n for n in os.listdir(text) if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        return [os.path.join(text, n) for n in sorted(names, key=_natural_key)]
    folder, pattern = os.path.split(text)
    folder = folder or "."
    match = re.search(r"%(0?)(\d*)d", pattern)
    assert match is not None
    width = match.group(2)
    digits = rf"\d{{{width}}}" if match.group(1) and width else r"\d+"
    regex = re.compile("^" + re.escape(pattern[: match.start()]) + f"({digits})" + re.escape(pattern[match.end() :]) + "$")
    if not os.path.isdir(folder):
        return []
    numbered = [(int(m.group(1)), n) for n in os.listdir(folder) if (m := regex.match(n))]
    return [os.path.join(folder, n) for _, n in sorted(numbered)]


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def probe(path: str | os.PathLike[str], *, sequence_fps: Fraction = DEFAULT_SEQUENCE_FPS) -> VideoInfo:
    """Open ``path``, decode its first frame, and describe it; raise a clear error if unusable."""
    text = os.fspath(path)
    if is_image_sequence(text):
        files = sequence_files(text)
        if not files:
            raise InputError(f"image sequence {text!r} has no frames: expected image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        first = _decode_image(files[0])
        luma, luma_format = _luma_of(first)
        return VideoInfo(
            path=text,
            width=luma.shape[1],
            height=luma.shape[0],
            frame_count=len(files),
            fps=sequence_fps,
            time_base=1 / sequence_fps,
            luma_format=luma_format,
            sequence_files=tuple(files),
        )
    _check_file(text)
    with _open_container(text) as container:
        stream = container.streams.video[0]
        first = next(_decode_stream(container, stream, text), None)
        if first is None:
            raise VideoOpenError(f"{text!r} has a video stream but no frame could be decoded: the file is damaged or truncated")
        luma, luma_format = _luma_of(first)
        rotation = _rotation_of(first)
        luma = _rotate(luma, rotation)
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        count = stream.frames or None
        if count is None and stream.duration and stream.time_base:
            count = int(round(float(stream.duration * stream.time_base * fps)))
        others = tuple(f"{s.type}:{s.codec_context.name if s.codec_context else '?'}" for s in container.streams if s.type != "video")
        return VideoInfo(
            path=text,
            width=luma.shape[1],
            height=luma.shape[0],
            frame_count=count,
            fps=Fraction(fps),
            time_base=Fraction(stream.time_base),
            luma_format=luma_format,
            rotation=rotation,
            stream_index=stream.index,
            other_streams=others,
        )


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"input {path!r} does not exist: check the path")
    if os.path.isdir(path):
        raise InputError(f"input {path!r} is a folder without images: give a video file or a folder of frames")
    if os.path.getsize(path) == 0:
        raise VideoOpenError(f"input {path!r} is an empty (zero-byte) file: re-copy or re-export it")


def _open_container(path: str) -> av.container.InputContainer:
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise VideoOpenError(
            f"input {path!r} is not a video FFmpeg can read ({exc.strerror or exc}): "
            "it may be truncated, damaged or not a video at all"
        ) from exc
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
        container.close()
        raise VideoOpenError(f"input {path!r} has no video stream (it holds {kinds}): give a video file")
    return container


def _decode_stream(container: av.container.InputContainer, stream: av.VideoStream, path: str) -> Iterator[av.VideoFrame]:
    """Decode one stream, skipping corrupt packets (counted and logged) instead of dying."""
    stream.thread_type = "AUTO"
    failures = consecutive = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                failures += 1
                consecutive += 1
                if consecutive > MAX_CONSECUTIVE_DECODE_FAILURES:
                    raise VideoOpenError(
                        f"input {path!r}: {consecutive} packets in a row could not be decoded; the file is too damaged to read"
                    ) from None
                continue
            consecutive = 0
            yield from frames
    except av.InvalidDataError as exc:  # demuxer-level damage, e.g. a truncated file
        failures += 1
        logger.warning("%s: stopped reading at damaged data (%s)", path, exc)
    if failures:
        logger.warning("%s: skipped %d corrupt packet(s)", path, failures)


def _decode_image(path: str) -> av.VideoFrame:
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                return frame
    except av.FFmpegError as exc:
        raise VideoOpenError(f"frame {path!r} of the image sequence cannot be read ({exc.strerror or exc}): replace or remove it") from exc
    raise VideoOpenError(f"frame {path!r} of the image sequence holds no image: replace or remove it")


_YUV_PREFIXES = ("yuv", "yuvj", "nv", "gray", "p01", "p21", "y2", "yuva")


def _luma_of(frame: av.VideoFrame) -> tuple[np.ndarray, LumaFormat]:
    """The luma plane as code values plus how to read them; RGB sources get BT.601 luma."""
    name = frame.format.name
    bits = frame.format.components[0].bits
    full = name.startswith(("yuvj", "gray")) or frame.color_range == 2
    matrix = _matrix_of(frame)
    if name.startswith(_YUV_PREFIXES) and not name.endswith("be") and not name.startswith("gbr"):
        dtype = np.uint8 if bits <= 8 else np.dtype("<u2")
        plane = frame.planes[0]
        row = plane.line_size // np.dtype(dtype).itemsize
        luma = np.frombuffer(plane, dtype=dtype).reshape(plane.height, row)[:, : plane.width]
        return luma.copy(), LumaFormat(bits if bits > 8 else 8, full, matrix)
    # RGB, palette, big-endian or exotic formats: compute full-range luma from RGB.
    if bits <= 8:
        rgb = frame.to_ndarray(format="rgb24").astype(np.float32)
        luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
        return luma, LumaFormat(8, True, "bt601")
    rgb = frame.to_ndarray(format="rgb48le").astype(np.float32)
    luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint16)
    return luma, LumaFormat(16, True, "bt601")


def _matrix_of(frame: av.VideoFrame) -> str:
    # FFmpeg AVColorSpace: 1 bt709, 5 bt470bg, 6 smpte170m, 9 bt2020nc; 2 = unspecified.
    known = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 10: "bt2020"}
    if frame.colorspace in known:
        return known[frame.colorspace]
    return "bt709" if frame.height >= 720 else "smpte170m"


def _rotation_of(frame: av.VideoFrame) -> int:
    try:
        angle = int(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    return int(round(angle / 90.0)) * 90 % 360


def _rotate(luma: np.ndarray, rotation: int) -> np.ndarray:
    """Apply display rotation (counter-clockwise degrees, FFmpeg's display matrix convention)."""
    if rotation == 0:
        return luma
    return np.ascontiguousarray(np.rot90(luma, k=rotation // 90))


def count_frames(info: VideoInfo) -> int:
    """Frames in the input, by demuxing packets (no decoding) when the container does not say."""
    if info.is_sequence:
        return len(info.sequence_files)
    with _open_container(info.path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


class VideoReader:
    """Iterates :class:`Frame` objects decoded in a background thread through a small queue.

    Use as a context manager so the thread stops and the file closes even on errors::

        with VideoReader(info) as reader:
            for frame in reader:
                ...
    """

    def __init__(self, info: VideoInfo, *, start: int = 0) -> None:
        self.info = info
        self.start = start
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_LENGTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidcolor-reader", daemon=True)
        self._started = False

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Frame)
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self._frames():
                if not self._put(frame):
                    return
            self._put(_END)
        except BaseException as exc:  # forwarded to the consumer's thread
            self._put(exc)

    def _frames(self) -> Iterator[Frame]:
        info = self.info
        if info.is_sequence:
            for index, path in enumerate(info.sequence_files):
                if index < self.start:
                    continue
                luma, _ = _luma_of(_decode_image(path))
                if luma.shape != (info.height, info.width):
                    raise InputError(
                        f"frame {path!r} is {luma.shape[1]}x{luma.shape[0]} but the sequence started at "
                        f"{info.width}x{info.height}: all frames of a sequence must have one size"
                    )
                yield Frame(index, index, float(index * info.time_base), luma)
            return
        with _open_container(info.path) as container:
            stream = container.streams.video[0]
            index = 0
            last_pts: int | None = None
            for av_frame in _decode_stream(container, stream, info.path):
                pts = av_frame.pts if av_frame.pts is not None else (last_pts + 1 if last_pts is not None else 0)
                last_pts = pts
                if index >= self.start:
                    luma, _ = _luma_of(av_frame)
                    luma = _rotate(luma, info.rotation)
                    yield Frame(index, pts, float(pts * info.time_base), luma)
                index += 1


_END = object()


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm`` for a timestamp, as editors show it."""
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


