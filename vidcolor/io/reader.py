"""Streaming frame reader: PyAV decoding in a background thread, luma only, constant memory.

Reads any container/codec FFmpeg reads, plus image sequences (a folder of frames, or a printf
pattern such as ``scan/%06d.tif``). Only luma is kept, at its native bit depth and code values,
so the output's luma can be the input's exactly. Frame timestamps are kept (variable frame rate
stays variable), rotation metadata is applied, and corrupt packets are skipped and counted.
What the writer needs to show the frames as the input showed them is read too (pixel aspect,
field order, colour primaries and transfer, timecode): see :class:`VideoInfo`.

A read that starts at frame N (``VideoReader(info, start=N)``) seeks: a packet index made by
demuxing only (:func:`packet_index`, cached per file) maps frame numbers to timestamps and knows
the keyframes, so decoding starts at the keyframe shown at or before N and the frames come out
numbered exactly as one sequential pass numbers them. Whenever that cannot be guaranteed (no
timestamps, damaged data, frames that do not come out where the index says) the reader decodes
from the start instead: slower, never a wrong frame.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..color import LumaFormat, matrix_named
from ..errors import InputError, VideoOpenError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dpx", ".bmp", ".exr", ".webp"})
#: Frames decoded ahead of the colorizer; bounded so memory stays flat whatever the length.
QUEUE_LENGTH = 4
#: Consecutive undecodable packets after which the input is declared broken.
MAX_CONSECUTIVE_DECODE_FAILURES = 50
DEFAULT_SEQUENCE_FPS = Fraction(24)
#: Packet indexes kept per process (one per file identity: path, size, mtime).
INDEX_CACHE_SIZE = 8
#: Keyframes tried, each one further back, before a positioned read decodes from the start.
SEEK_ATTEMPTS = 3
#: Codecs whose decoders mark which pictures others refer to: on the way from a keyframe to the
#: target, the pictures nobody refers to are skipped (AVDISCARD_NONREF; half of them with B-frames).
SKIP_UNREFERENCED = frozenset({"h264", "hevc"})

_decoded_lock = threading.Lock()
_decoded_frames = 0


def decoded_frame_count() -> int:
    """Frames this process has decoded through the reader so far (probes, sequential and
    positioned reads, image files): what benches and tests measure a read's cost with."""
    return _decoded_frames


def _count_decoded(count: int = 1) -> None:
    global _decoded_frames
    with _decoded_lock:
        _decoded_frames += count


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
    #: Width over height of one stored pixel, in display orientation (720x576 stored for 16:9: 64/45).
    #: The frames are coloured as stored; the output carries the same aspect, so it shows alike.
    sample_aspect: Fraction = Fraction(1)
    #: ``progressive``, a field order of FFmpeg's (``tt``, ``bb``, ``tb``, ``bt``: the field coded
    #: first, then the one shown first) or ``interlaced`` (frames flagged so, order not stated).
    field_order: str = "progressive"
    #: FFmpeg's colour primaries and transfer codes of the input (2: not stated), kept in the output.
    color_primaries: int = 2
    color_transfer: int = 2
    #: The timecode of the first frame as the container states it (``01:00:00:00``), or None.
    timecode: str | None = None

    @property
    def is_sequence(self) -> bool:
        return bool(self.sequence_files)

    @property
    def interlaced(self) -> bool:
        return self.field_order != "progressive"


def is_image_sequence(path: str | os.PathLike[str]) -> bool:
    """A folder of images or a printf pattern (``%06d``) names an image sequence."""
    text = os.fspath(path)
    return os.path.isdir(text) or bool(re.search(r"%0?\d*d", os.path.basename(text)))


def sequence_files(path: str | os.PathLike[str]) -> list[str]:
    """The frames of an image sequence in order (natural sort; pattern numbers ascending)."""
    text = os.fspath(path)
    if os.path.isdir(text):
        names = [n for n in os.listdir(text) if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        return [os.path.join(text, n) for n in sorted(names, key=natural_key)]
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


def natural_key(name: str) -> list[object]:
    """Sort key putting frame2 before frame10 (digit runs compare as numbers, the rest ignoring case)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def probe(path: str | os.PathLike[str], *, sequence_fps: Fraction = DEFAULT_SEQUENCE_FPS) -> VideoInfo:
    """Open ``path``, decode its first frame, and describe it; raise a clear error if unusable."""
    text = os.fspath(path)
    if is_image_sequence(text):
        files = sequence_files(text)
        if not files:
            raise InputError(f"image sequence {text!r} has no frames: expected image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        first, sample_aspect = _decode_image_and_aspect(files[0])
        luma, luma_format = luma_of(first, files[0])
        return VideoInfo(
            path=text,
            width=luma.shape[1],
            height=luma.shape[0],
            frame_count=len(files),
            fps=sequence_fps,
            time_base=1 / sequence_fps,
            luma_format=luma_format,
            sequence_files=tuple(files),
            sample_aspect=sample_aspect,
        )
    _check_file(text)
    with _open_container(text) as container:
        stream = container.streams.video[0]
        first = next(_decode_stream(container, stream, text), None)
        if first is None:
            raise VideoOpenError(f"{text!r} has a video stream but no frame could be decoded: the file is damaged or truncated")
        luma, luma_format = luma_of(first, text)
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
            sample_aspect=_sample_aspect(stream, rotation),
            field_order=_field_order(stream, first),
            color_primaries=_stated(first.color_primaries, stream.codec_context.color_primaries),
            color_transfer=_stated(first.color_trc, stream.codec_context.color_trc),
            timecode=_timecode_of(container, stream),
        )


#: FFmpeg's AVFieldOrder codes of interlaced video (0 is unknown, 1 progressive).
FIELD_ORDER_CODES = {"tt": 2, "bb": 3, "tb": 4, "bt": 5}


def _field_order(stream: av.VideoStream, first: av.VideoFrame) -> str:
    """The container's or codec's field order, else ``interlaced`` when the first frame is flagged
    interlaced, else ``progressive``."""
    code = stream.codec_context.field_order
    for name, value in FIELD_ORDER_CODES.items():
        if code == value:
            return name
    return "interlaced" if first.interlaced_frame else "progressive"


def _sample_aspect(stream: av.VideoStream, rotation: int) -> Fraction:
    """The stored pixel's width over height (the container's, else the codec's; 1 when neither
    says), turned with the picture when the display matrix turns it a quarter."""
    for value in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if value is not None and value.numerator > 0 and value.denominator > 0:
            aspect = Fraction(value.numerator, value.denominator)
            return 1 / aspect if rotation in (90, 270) else aspect
    return Fraction(1)


def _stated(*codes: int) -> int:
    """The first colour code that is stated (FFmpeg's 2 is "unspecified", 0 reserved)."""
    return next((int(code) for code in codes if code not in (0, 2, None)), 2)


def _timecode_of(container: av.container.InputContainer, stream: av.VideoStream) -> str | None:
    """The start timecode: the video stream's tag, a timecode track's (QuickTime tmcd), or the
    file's (MXF); tags are matched ignoring case (Matroska stores ``TIMECODE``)."""
    places = [stream.metadata, *(s.metadata for s in container.streams if s.type == "data"), container.metadata]
    for tags in places:
        for key, value in tags.items():
            if key.lower() == "timecode" and value:
                return str(value)
    return None


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
            _count_decoded(len(frames))
            yield from frames
    except av.InvalidDataError as exc:  # demuxer-level damage, e.g. a truncated file
        failures += 1
        logger.warning("%s: stopped reading at damaged data (%s)", path, exc)
    if failures:
        logger.warning("%s: skipped %d corrupt packet(s)", path, failures)


def _decode_image(path: str) -> av.VideoFrame:
    return _decode_image_and_aspect(path)[0]


def _decode_image_and_aspect(path: str) -> tuple[av.VideoFrame, Fraction]:
    """One image file's frame and its pixel aspect (a PNG's pHYs, a TIFF's or DPX's resolution
    fields, known once the image is decoded)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                _count_decoded()
                return frame, _sample_aspect(stream, 0)
    except av.FFmpegError as exc:
        raise VideoOpenError(f"frame {path!r} of the image sequence cannot be read ({exc.strerror or exc}): replace or remove it") from exc
    raise VideoOpenError(f"frame {path!r} of the image sequence holds no image: replace or remove it")


#: Planar and semi-planar formats: luma is plane 0, one sample per element (``p010`` and kin keep
#: their samples in the high bits of 16).
_PLANAR_LUMA = re.compile(r"(yuvj?a?\d{3}p|gray|nv(12|21|16|24|42)|p[024]1[026])(\d*)(le|be)?")
_MSB_ALIGNED = re.compile(r"p[024]1[026](le|be)")
_FLOAT_GRAY = re.compile(r"(gray|ya)f(16|32)(le|be)")
#: Packed 4:2:2 YUV read directly: luma is every second sample from ``offset`` (MSB-aligned in 16
#: bits above 8). libswscale's unpacking of y210 into planar 4:4:4 is not deterministic (now and
#: then a row comes out as a constant), so the common packed layouts never go through it.
_PACKED_LUMA = {"yuyv422": 0, "yvyu422": 0, "uyvy422": 1, "y210": 0, "y212": 0, "y216": 0}


def luma_of(frame: av.VideoFrame, path: str | None = None) -> tuple[np.ndarray, LumaFormat]:
    """The luma plane as code values at the source's bit depth, plus how to read them.

    Planar YUV and gray are read as stored, and so is packed 4:2:2 (``yuyv422``, ``uyvy422``,
    ``y210``...); other packed YUV (``xv30``...) is unpacked by libswscale into planar 4:4:4 of the
    same depth and range (which keeps luma code values exactly); float gray becomes 16-bit full range; RGB, palette and Bayer sources get
    BT.601 full-range luma at their own depth. Anything else is refused by name (and ``path``).
    """
    fmt = frame.format
    name = fmt.name
    bits = fmt.components[0].bits
    full = name.startswith(("yuvj", "gray", "ya")) or frame.color_range == 2
    where = f"{path!r}: " if path else ""
    fix = "convert the input first, e.g. ffmpeg -i INPUT -pix_fmt yuv422p10le -c:v ffv1 OUTPUT.mkv"
    try:
        if fmt.is_rgb or fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream or name.startswith("xyz"):
            return _rgb_luma(frame, bits, name)
        if (match := _FLOAT_GRAY.fullmatch(name)) is not None:
            dtype = np.dtype(f"{'>' if match.group(3) == 'be' else '<'}f{int(match.group(2)) // 8}")
            step = 2 if match.group(1) == "ya" else 1  # luma, alpha, luma...
            values = np.nan_to_num(_plane(frame, dtype, step).astype(np.float32))
            return np.rint(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16), LumaFormat(16, True, _matrix_of(frame))
        if bits > 16 or any(c.bits != bits for c in fmt.components if not c.is_alpha):
            raise TypeError(f"{bits}-bit integer luma")
        if (offset := _PACKED_LUMA.get(name.removesuffix("le").removesuffix("be"))) is not None:
            if bits <= 8:
                return _plane(frame, np.dtype(np.uint8), 2, offset).copy(), LumaFormat(8, full, _matrix_of(frame))
            words = _plane(frame, np.dtype(">u2" if name.endswith("be") else "<u2"), 2, offset)
            return (words >> (16 - bits)).astype(np.uint16), LumaFormat(bits, full, _matrix_of(frame))
        if _PLANAR_LUMA.fullmatch(name) is None:  # other packed layouts: unpacked by libswscale, luma codes kept
            range_name = "JPEG" if full else "MPEG"
            frame = frame.reformat(format="yuv444p" if bits <= 8 else f"yuv444p{bits}le",
                                   src_color_range=range_name, dst_color_range=range_name)
            name = frame.format.name
    except (TypeError, ValueError, av.FFmpegError) as exc:
        raise InputError(f"{where}pixel format {name!r} cannot be read ({exc}): {fix}") from exc
    if bits <= 8:
        return _plane(frame, np.dtype(np.uint8)).copy(), LumaFormat(8, full, _matrix_of(frame))
    luma = _plane(frame, np.dtype(">u2" if name.endswith("be") else "<u2"))
    if _MSB_ALIGNED.fullmatch(name):
        luma = luma >> (16 - bits)
    return luma.astype(np.uint16), LumaFormat(bits, full, _matrix_of(frame))


def _plane(frame: av.VideoFrame, dtype: np.dtype, step: int = 1, offset: int = 0) -> np.ndarray:
    """Plane 0 as ``frame.width`` samples a row (``step`` samples apart from ``offset``), without
    row padding."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, offset : offset + frame.width * step : step]


def _rgb_luma(frame: av.VideoFrame, bits: int, name: str) -> tuple[np.ndarray, LumaFormat]:
    """BT.601 luma of an RGB-like frame, full range, at the frame's own depth (16 for float)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if bits <= 8:
        rgb = frame.to_ndarray(format="rgb24").astype(np.float32)
        return np.rint(rgb @ weights).astype(np.uint8), LumaFormat(8, True, "bt601")
    depth = 16 if bits > 16 or "f16" in name or "f32" in name else bits
    rgb = frame.to_ndarray(format="rgb48le").astype(np.float32)
    luma = np.rint((rgb @ weights) * np.float32(((1 << depth) - 1) / 65535.0))
    return luma.astype(np.uint16), LumaFormat(depth, True, "bt601")


def _matrix_of(frame: av.VideoFrame) -> str:
    return matrix_named(frame.colorspace, frame.height)


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
    index = packet_index(info)  # shared with positioned reads: one demux pass per file
    if index.problem is None:
        return index.frame_count
    with _open_container(info.path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


@dataclass(frozen=True)
class PacketIndex:
    """Where the frames of a video stream are, learnt by demuxing alone (no decoding).

    ``pts[n]`` is the timestamp of frame ``n`` (presentation order); ``keyframe_pts`` holds the
    keyframes' timestamps, ascending. ``problem`` says why frame numbers cannot be trusted to the
    index (then positioned reads decode from the start).
    """

    pts: np.ndarray
    keyframe_pts: np.ndarray
    problem: str | None = None

    @property
    def frame_count(self) -> int:
        return int(self.pts.size)


_index_lock = threading.Lock()
_index_cache: OrderedDict[tuple[object, ...], PacketIndex] = OrderedDict()


def _identity(info: VideoInfo) -> tuple[object, ...]:
    stat = os.stat(info.path)
    return (os.path.realpath(info.path), stat.st_size, stat.st_mtime_ns, info.stream_index)


def packet_index(info: VideoInfo) -> PacketIndex:
    """The packet index of ``info``'s video stream, built once per file identity and process."""
    key = _identity(info)
    with _index_lock:
        cached = _index_cache.get(key)
        if cached is not None:
            _index_cache.move_to_end(key)
            return cached
    index = _build_packet_index(info.path)
    _remember_index(key, index)
    return index


def keyframe_numbers(info: VideoInfo) -> tuple[int, ...]:
    """Frame numbers of the keyframes (every frame of a sequence): where a positioned read
    costs a single decoded frame. Empty when the packet index cannot be trusted."""
    if info.is_sequence:
        return tuple(range(len(info.sequence_files)))
    index = packet_index(info)
    if index.problem is not None:
        return ()
    return tuple(int(n) for n in np.searchsorted(index.pts, index.keyframe_pts))


def _remember_index(key: tuple[object, ...], index: PacketIndex) -> None:
    with _index_lock:
        _index_cache[key] = index
        _index_cache.move_to_end(key)
        while len(_index_cache) > INDEX_CACHE_SIZE:
            _index_cache.popitem(last=False)


def _build_packet_index(path: str) -> PacketIndex:
    """Demux every packet once; any sign that decoding might not give one frame per packet at
    the packet's timestamp makes the index advisory only (``problem``)."""
    packet_pts: list[int] = []
    keyframes: list[int] = []
    problem: str | None = None
    try:
        with _open_container(path) as container:
            for packet in container.demux(container.streams.video[0]):
                if not packet.size:
                    continue
                if packet.pts is None:
                    problem = "packets without timestamps"
                elif packet.is_corrupt:
                    problem = "packets the demuxer flags as corrupt"
                elif packet.is_discard:
                    problem = "packets the container discards (edit list)"
                elif not packet_pts and not packet.is_keyframe:
                    problem = "the stream does not start on a keyframe"
                if problem is not None:
                    break
                packet_pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
    except av.FFmpegError as exc:
        problem = f"damaged container data ({exc})"
    pts = np.sort(np.asarray(packet_pts, dtype=np.int64))
    keys = np.asarray(keyframes, dtype=np.int64)
    if problem is None and pts.size:
        if np.unique(pts).size != pts.size:
            problem = "repeated timestamps"
        elif np.any(np.diff(keys) <= 0):
            problem = "keyframes out of display order"
        elif pts[0] < keys[0]:
            problem = "frames shown before the first keyframe (open GOP at the start)"
    return PacketIndex(pts, keys, problem)


def _distrust_index(info: VideoInfo, reason: str) -> None:
    """Decoding met something the index did not foresee: later positioned reads of this file
    decode from the start."""
    logger.info("%s: positioned reads decode from the start from now on (%s)", info.path, reason)
    index = packet_index(info)
    _remember_index(_identity(info), PacketIndex(index.pts, index.keyframe_pts, reason))


class _Seek:
    """How one decode from a keyframe ended."""

    DONE = "done"  # every frame from the target on came out where the index said
    EARLIER = "earlier"  # the target was not reached cleanly: try a keyframe further back


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
                self._queue.get_nowait()  # frees a blocked put, so the thread sees the stop at once
            except queue.Empty:
                pass
            self._thread.join(timeout=0.005)

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
            for index in range(max(self.start, 0), len(info.sequence_files)):  # a seek is a jump to the file
                path = info.sequence_files[index]
                luma, _ = luma_of(_decode_image(path), path)
                if luma.shape != (info.height, info.width):
                    raise InputError(
                        f"frame {path!r} is {luma.shape[1]}x{luma.shape[0]} but the sequence started at "
                        f"{info.width}x{info.height}: all frames of a sequence must have one size"
                    )
                yield Frame(index, index, float(index * info.time_base), luma)
            return
        if self.start <= 0:
            yield from self._sequential(0)
            return
        yield from self._positioned(self.start)

    def _sequential(self, start: int) -> Iterator[Frame]:
        """Decode from the first frame, numbering frames as they come out (the ground truth)."""
        info = self.info
        with _open_container(info.path) as container:
            stream = container.streams.video[0]
            index = 0
            last_pts: int | None = None
            for av_frame in _decode_stream(container, stream, info.path):
                pts = av_frame.pts if av_frame.pts is not None else (last_pts + 1 if last_pts is not None else 0)
                last_pts = pts
                if index >= start:
                    yield self._frame(index, pts, av_frame)
                index += 1

    def _frame(self, index: int, pts: int, av_frame: av.VideoFrame) -> Frame:
        luma, _ = luma_of(av_frame, self.info.path)
        return Frame(index, pts, float(pts * self.info.time_base), _rotate(luma, self.info.rotation))

    def _positioned(self, start: int) -> Iterator[Frame]:
        """Frames from ``start`` on, decoded from the keyframe shown at or before it."""
        info = self.info
        index = packet_index(info)
        if index.problem is not None or start >= index.frame_count:
            logger.debug("%s: frame %d read by decoding from the start (%s)", info.path, start,
                         index.problem or "past the indexed frames")
            yield from self._sequential(start)
            return
        target = int(index.pts[start])
        key = int(np.searchsorted(index.keyframe_pts, target, side="right")) - 1
        with _open_container(info.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for _ in range(SEEK_ATTEMPTS):
                if key < 0:
                    break
                outcome = yield from self._decode_from(container, stream, index, start, int(index.keyframe_pts[key]))
                if outcome == _Seek.DONE:
                    return
                if isinstance(outcome, int):  # frames before ``outcome`` are out: the rest sequentially
                    yield from self._sequential(outcome)
                    return
                key -= 1
        _distrust_index(info, f"frame {start} was not reached by seeking to {SEEK_ATTEMPTS} keyframes")
        yield from self._sequential(start)

    def _decode_from(self, container: av.container.InputContainer, stream: av.VideoStream, index: PacketIndex,
                     start: int, key_pts: int) -> Iterator[Frame]:
        """Seek to the keyframe at ``key_pts`` and yield frames ``start``... as long as each comes
        out with the timestamp the index gives it. A frame is yielded only once the next one has
        come out where expected too (or the stream ended on the last indexed frame), so a stream
        whose frames do not map one to one onto packets (e.g. fields coded as separate packets)
        never yields a misnumbered frame. Returns :attr:`_Seek.DONE`, :attr:`_Seek.EARLIER` (target
        not reached: try a keyframe further back) or the frame number to go on from sequentially."""
        info = self.info
        try:
            container.seek(key_pts, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return start
        held: Frame | None = None  # the last frame that came out as expected, not yielded yet
        landed = False
        skip_before_target = stream.codec_context.name in SKIP_UNREFERENCED
        for packet in container.demux(stream):
            if not landed and packet.size:
                if not packet.is_keyframe or packet.pts is None:
                    continue  # a byte-seeking demuxer: wait for a keyframe
                if packet.pts > key_pts:
                    return _Seek.EARLIER  # the demuxer landed past the keyframe
                landed = True
            if skip_before_target and packet.pts is not None:
                stream.codec_context.skip_frame = "NONREF" if packet.pts < index.pts[start] else "DEFAULT"
            try:
                decoded = packet.decode()
            except av.InvalidDataError:
                _distrust_index(info, "a packet could not be decoded")
                return held.index if held is not None else start
            _count_decoded(len(decoded))
            for av_frame in decoded:
                pts = av_frame.pts
                if held is None and pts is not None and pts < index.pts[start]:
                    continue  # before the target, or a leading picture of the keyframe
                expected = start if held is None else held.index + 1
                if pts is None or expected >= index.frame_count or pts != index.pts[expected] or av_frame.is_corrupt:
                    if held is None:
                        return _Seek.EARLIER
                    _distrust_index(info, f"frame {expected} did not come out where the packet index put it")
                    return held.index
                if held is not None:
                    yield held
                held = self._frame(expected, pts, av_frame)
        if held is not None and held.index == index.frame_count - 1:
            yield held
            return _Seek.DONE
        if held is None:
            return _Seek.EARLIER
        _distrust_index(info, f"the stream ended at frame {held.index + 1} of {index.frame_count} indexed")
        return held.index


_END = object()


