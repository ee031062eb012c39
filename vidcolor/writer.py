"""Encoder side: PyAV writer with untouched luma, stream copy of audio/subtitles, atomic output.

The output is written to a hidden temporary file (or folder, for image sequences) beside the final
name and renamed into place only when complete, so an interrupted or failed run never leaves a
half file under the name the user asked for. Audio and subtitle streams are remuxed packet for
packet, interleaved with the video by time.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .color import LumaFormat
from .errors import InputError, OutputError
from .reader import VideoInfo, is_image_sequence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodecSpec:
    """How vidcolor encodes with one ``--codec`` choice."""

    name: str
    encoder: str
    #: pixel format per supported bit depth; the smallest depth >= the source's is used
    pix_fmts: tuple[tuple[int, str], ...]
    lossless: bool = False
    rgb: bool = False
    image_sequence: bool = False
    extension: str = ".mkv"


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("h264", "libx264", ((8, "yuv420p"), (10, "yuv420p10le")), extension=".mp4"),
    "hevc": CodecSpec("hevc", "libx265", ((8, "yuv420p"), (10, "yuv420p10le"), (12, "yuv420p12le")), extension=".mp4"),
    "ffv1": CodecSpec("ffv1", "ffv1", ((8, "yuv444p"), (10, "yuv444p10le"), (12, "yuv444p12le"), (16, "yuv444p16le")),
                      lossless=True, extension=".mkv"),
    "prores": CodecSpec("prores", "prores_ks", ((10, "yuv422p10le"),), extension=".mov"),
    "png": CodecSpec("png", "png", ((8, "rgb24"), (16, "rgb48be")), lossless=True, rgb=True, image_sequence=True, extension=".png"),
    "tiff": CodecSpec("tiff", "tiff", ((8, "rgb24"), (16, "rgb48le")), lossless=True, rgb=True, image_sequence=True, extension=".tif"),
}

_CODEC_BY_EXTENSION = {
    ".mp4": "h264", ".m4v": "h264", ".mkv": "h264", ".mov": "h264", ".avi": "ffv1", ".nut": "ffv1",
    ".png": "png", ".tif": "tiff", ".tiff": "tiff",
}
ENCODER_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class OutputSpec:
    """A validated output target."""

    path: str
    codec: CodecSpec
    crf: int | None = None
    encoder_preset: str = "medium"

    @property
    def is_sequence(self) -> bool:
        return self.codec.image_sequence

    @property
    def sequence_folder(self) -> str:
        """Where an image sequence's frames go (``out/`` or the folder of ``out/%06d.png``)."""
        if "%" in os.path.basename(self.path):
            return os.path.dirname(self.path) or "."
        return self.path

    @property
    def sequence_pattern(self) -> str:
        if "%" in os.path.basename(self.path):
            return os.path.basename(self.path)
        return f"%06d{self.codec.extension}"


def resolve_output(
    path: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int | None = None,
    encoder_preset: str = "medium",
) -> OutputSpec:
    """Choose the codec from ``--codec`` or the output's extension; validate the choice."""
    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if codec is None:
        if is_image_sequence(text) or suffix == "":
            codec = _CODEC_BY_EXTENSION.get(suffix, "png")
        elif suffix in _CODEC_BY_EXTENSION:
            codec = _CODEC_BY_EXTENSION[suffix]
        else:
            raise OutputError(
                f"output {text!r}: cannot tell the codec from the extension {suffix!r}; "
                f"use .mp4, .mkv, .mov, a folder or %06d.png pattern, or pass --codec ({', '.join(CODECS)})"
            )
    if codec not in CODECS:
        raise OutputError(f"unknown codec {codec!r}: choose one of {', '.join(CODECS)}")
    spec = CODECS[codec]
    if spec.image_sequence and suffix in (".mp4", ".mkv", ".mov", ".m4v", ".avi"):
        raise OutputError(f"output {text!r}: --codec {codec} writes an image sequence; give a folder or a pattern such as out/%06d{spec.extension}")
    if not spec.image_sequence and (suffix == "" or "%" in os.path.basename(text)):
        raise OutputError(f"output {text!r}: --codec {codec} writes a video file; give a file name such as out{spec.extension}")
    if encoder_preset not in ENCODER_PRESETS:
        raise OutputError(f"unknown encoder preset {encoder_preset!r}: choose one of {', '.join(ENCODER_PRESETS)}")
    if crf is not None and not 0 <= crf <= 51:
        raise OutputError(f"--crf must be between 0 and 51, got {crf}")
    return OutputSpec(text, spec, crf, encoder_preset)


def check_output(spec: OutputSpec, input_path: str, *, overwrite: bool) -> None:
    """Refuse writing over the input, over an existing output (without ``overwrite``), or into
    a folder that cannot be written, before any work starts."""
    target = spec.sequence_folder if spec.is_sequence else spec.path
    if _same_path(target, input_path) or (not spec.is_sequence and _same_path(spec.path, input_path)):
        raise OutputError(f"output {spec.path!r} is the input: choose another output name (vidcolor never writes over its input)")
    if spec.is_sequence and os.path.isdir(input_path) and _same_path(spec.sequence_folder, input_path):
        raise OutputError(f"output folder {target!r} is the input folder: choose another folder")
    exists = os.path.isdir(target) and any(os.scandir(target)) if spec.is_sequence else os.path.exists(target)
    if exists and not overwrite:
        raise OutputError(f"output {target!r} already exists: pass --overwrite to replace it, or choose another name")
    parent = os.path.dirname(os.path.abspath(target))
    probe_dir = parent
    while not os.path.exists(probe_dir):
        probe_dir = os.path.dirname(probe_dir)
    if not os.path.isdir(probe_dir):
        raise OutputError(f"output folder {parent!r} cannot be created: {probe_dir!r} is a file")
    try:
        os.makedirs(parent, exist_ok=True)
        probe_file = os.path.join(parent, f".vidcolor-write-test-{uuid.uuid4().hex}")
        with open(probe_file, "wb"):
            pass
        os.remove(probe_file)
    except OSError as exc:
        raise OutputError(f"output folder {parent!r} is not writable ({exc.strerror}): choose another output location") from exc


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_encodable(spec: OutputSpec, info: VideoInfo) -> None:
    """Catch sizes a codec cannot take before decoding starts (e.g. odd sizes in 4:2:0)."""
    fmt = av.VideoFormat(_pix_fmt(spec, info.luma_format))
    if spec.codec.rgb:
        return
    subsampled = fmt.name.startswith(("yuv420", "yuv422"))
    if subsampled and (info.width % 2 or (fmt.name.startswith("yuv420") and info.height % 2)):
        raise InputError(
            f"input {info.path!r} is {info.width}x{info.height}, an odd size that {spec.codec.name} in {fmt.name} "
            "(chroma subsampled) cannot encode: use --codec ffv1 (4:4:4), an image sequence, or crop/pad the source to even dimensions"
        )


def _pix_fmt(spec: OutputSpec, luma_format: LumaFormat) -> str:
    for depth, pix_fmt in spec.codec.pix_fmts:
        if depth >= luma_format.bit_depth:
            return pix_fmt
    return spec.codec.pix_fmts[-1][1]


def output_luma_format(spec: OutputSpec, source: LumaFormat) -> LumaFormat:
    """Bit depth, range and matrix of the written luma: the source's whenever the codec allows."""
    fmt = av.VideoFormat(_pix_fmt(spec, source))
    bits = fmt.components[0].bits
    return LumaFormat(bits if bits > 8 else 8, source.full_range, source.matrix)


def convert_luma(luma: np.ndarray, source: LumaFormat, target: LumaFormat) -> np.ndarray:
    """Identity when depths match (bit-exact luma); otherwise rescale code values."""
    if source.bit_depth == target.bit_depth:
        return luma
    dtype = np.uint8 if target.bit_depth <= 8 else np.uint16
    if source.full_range:
        scaled = np.rint(luma.astype(np.float64) * (target.max_code / source.max_code))
    elif target.bit_depth > source.bit_depth:
        return (luma.astype(np.uint32) << (target.bit_depth - source.bit_depth)).astype(dtype)
    else:
        scaled = np.rint(luma.astype(np.float64) / (1 << (source.bit_depth - target.bit_depth)))
    return np.clip(scaled, 0, target.max_code).astype(dtype)


@dataclass(frozen=True)
class OutputFrame:
    """What the writer needs for one frame: timestamp and planes (YUV) or an RGB image."""

    index: int
    pts: int
    planes: tuple[np.ndarray, ...] | None = None
    rgb: np.ndarray | None = None


class VideoWriter:
    """Encodes frames in a background thread; ``close()`` finalises and renames into place.

    Use as a context manager: leaving by an exception (including ``KeyboardInterrupt``) removes the
    temporary output and leaves any existing file under the final name untouched.
    """

    def __init__(self, spec: OutputSpec, info: VideoInfo, *, copy_streams: bool = True, overwrite: bool = False) -> None:
        self.spec = spec
        self.info = info
        self.overwrite = overwrite
        self.copy_streams = copy_streams and not spec.is_sequence and not info.is_sequence
        self.pix_fmt = _pix_fmt(spec, info.luma_format)
        self.luma_format = output_luma_format(spec, info.luma_format)
        target = spec.sequence_folder if spec.is_sequence else spec.path
        folder, name = os.path.split(os.path.abspath(target))
        token = uuid.uuid4().hex[:8]
        if spec.is_sequence:
            self.temp_path = os.path.join(folder, f".{name}.vidcolor-partial-{token}")
        else:
            stem, ext = os.path.splitext(name)
            self.temp_path = os.path.join(folder, f".{stem}.vidcolor-partial-{token}{ext}")
        self.final_path = os.path.abspath(target)
        self._queue: queue.Queue[OutputFrame | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidcolor-writer", daemon=True)
        self._started = False
        self.frames_written = 0
        self.packets_copied = 0

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- public API ---------------------------------------------------------------------------
    def write(self, frame: OutputFrame) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Flush, finish the file and rename it into place."""
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.put(None)
        self._thread.join()
        self._raise_if_failed()
        if self.spec.is_sequence:
            if os.path.isdir(self.final_path):
                shutil.rmtree(self.final_path)
            os.replace(self.temp_path, self.final_path)
        else:
            os.replace(self.temp_path, self.final_path)

    def abort(self) -> None:
        """Stop encoding and delete the temporary output."""
        if self._started and self._thread.is_alive():
            self._error = self._error or _Aborted()
            while self._thread.is_alive():
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                try:
                    self._queue.put_nowait(None)
                except queue.Full:
                    pass
                self._thread.join(timeout=0.1)
        if os.path.isdir(self.temp_path):
            shutil.rmtree(self.temp_path, ignore_errors=True)
        elif os.path.exists(self.temp_path):
            os.remove(self.temp_path)

    # -- encoder thread -----------------------------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None and not isinstance(self._error, _Aborted):
            raise self._error

    def _run(self) -> None:
        try:
            if self.spec.is_sequence:
                self._run_sequence()
            else:
                self._run_container()
        except BaseException as exc:
            self._error = exc
            while True:  # unblock the producer
                try:
                    if self._queue.get(timeout=0.2) is None:
                        break
                except queue.Empty:
                    if isinstance(self._error, _Aborted):
                        break

    def _frames(self) -> Iterator[OutputFrame]:
        while True:
            item = self._queue.get()
            if item is None or isinstance(self._error, _Aborted):
                return
            yield item

    def _run_sequence(self) -> None:
        os.makedirs(self.temp_path, exist_ok=True)
        pattern = os.path.join(self.temp_path, self.spec.sequence_pattern)
        with av.open(pattern, "w", format="image2") as output:
            stream = output.add_stream(self.spec.codec.encoder, rate=24)
            stream.width, stream.height = self.info.width, self.info.height
            stream.pix_fmt = self.pix_fmt
            for item in self._frames():
                assert item.rgb is not None
                fmt = "rgb24" if item.rgb.dtype == np.uint8 else "rgb48le"
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(item.rgb), format=fmt)
                if frame.format.name != self.pix_fmt:
                    frame = frame.reformat(format=self.pix_fmt)
                frame.pts = self.frames_written
                for packet in stream.encode(frame):
                    output.mux(packet)
                self.frames_written += 1
            for packet in stream.encode():
                output.mux(packet)

    def _run_container(self) -> None:
        info = self.info
        options: dict[str, str] = {}
        codec = self.spec.codec
        if codec.encoder in ("libx264", "libx265"):
            options["preset"] = self.spec.encoder_preset
            options["crf"] = str(self.spec.crf if self.spec.crf is not None else (18 if codec.encoder == "libx264" else 20))
            if codec.encoder == "libx265":
                options["x265-params"] = "log-level=error"
        elif codec.encoder == "ffv1":
            options.update({"level": "3", "slicecrc": "1", "g": "1"})
        elif codec.encoder == "prores_ks":
            options["profile"] = "3"
        copier: _StreamCopier | None = None
        try:
            with av.open(self.temp_path, "w") as output:
                stream = output.add_stream(codec.encoder, rate=info.fps, options=options)
                stream.width, stream.height = info.width, info.height
                stream.pix_fmt = self.pix_fmt
                stream.time_base = info.time_base
                stream.codec_context.time_base = info.time_base
                ctx = stream.codec_context
                ctx.color_range = 2 if self.luma_format.full_range else 1
                ctx.colorspace = {"bt709": 1, "bt470bg": 5, "smpte170m": 6, "bt2020": 9}.get(self.luma_format.matrix, 1)
                if self.copy_streams:
                    copier = _StreamCopier(output, info.path, os.path.basename(self.spec.path))
                for item in self._frames():
                    frame = self._yuv_frame(item)
                    for packet in stream.encode(frame):
                        if copier is not None:
                            copier.mux_until(_packet_time(packet, stream))
                        output.mux(packet)
                    self.frames_written += 1
                for packet in stream.encode():
                    if copier is not None:
                        copier.mux_until(_packet_time(packet, stream))
                    output.mux(packet)
                if copier is not None:
                    copier.mux_until(float("inf"))
                    self.packets_copied = copier.count
        finally:
            if copier is not None:
                copier.close()

    def _yuv_frame(self, item: OutputFrame) -> av.VideoFrame:
        assert item.planes is not None
        frame = av.VideoFrame(self.info.width, self.info.height, self.pix_fmt)
        for plane, data in zip(frame.planes, item.planes, strict=True):
            dtype = np.uint8 if data.dtype == np.uint8 else np.dtype("<u2")
            row = plane.line_size // np.dtype(dtype).itemsize
            view = np.frombuffer(plane, dtype=dtype).reshape(plane.height, row)
            view[:, : plane.width] = data
        frame.pts = item.pts
        frame.time_base = self.info.time_base
        frame.color_range = 2 if self.luma_format.full_range else 1
        return frame



class _StreamCopier:
    """Copies audio/subtitle packets from the input, interleaved with the video by time."""

    def __init__(self, output: av.container.OutputContainer, source_path: str, target_name: str) -> None:
        self.output = output
        self.source = av.open(source_path)
        self.copies: dict[int, av.stream.Stream] = {}
        self.count = 0
        for in_stream in self.source.streams:
            if in_stream.type not in ("audio", "subtitle"):
                continue
            try:
                self.copies[in_stream.index] = output.add_stream_from_template(in_stream)
            except (ValueError, av.FFmpegError) as exc:
                logger.warning("%s: %s stream %d (%s) cannot be copied into %s and is left out (%s)",
                               source_path, in_stream.type, in_stream.index, in_stream.codec_context.name,
                               target_name, exc)
        self._pending = self._packets()
        self._next = None

    def _packets(self) -> Iterator[tuple[float, av.Packet]]:
        if not self.copies:
            return
        streams = [self.source.streams[i] for i in self.copies]
        for packet in self.source.demux(streams):
            if packet.dts is None and packet.pts is None:
                continue  # demuxer flush packet
            stamp = packet.dts if packet.dts is not None else packet.pts
            time = float(stamp * packet.time_base) if packet.time_base else 0.0
            packet.stream = self.copies[packet.stream.index]
            yield time, packet

    def mux_until(self, until: float) -> None:
        """Mux every copied packet stamped at or before ``until`` seconds."""
        if self._next is None:
            self._next = next(self._pending, None)
        while self._next is not None and self._next[0] <= until:
            self.output.mux(self._next[1])
            self.count += 1
            self._next = next(self._pending, None)

    def close(self) -> None:
        self.source.close()


def assemble_segments(spec: OutputSpec, info: VideoInfo, segments: list[str]) -> str:
    """Join encoded segment files packet for packet (no re-encoding) into ``spec.path``, with the
    input's audio/subtitles copied; written to a temporary file and renamed into place."""
    folder, name = os.path.split(os.path.abspath(spec.path))
    stem, ext = os.path.splitext(name)
    temp = os.path.join(folder, f".{stem}.vidcolor-partial-{uuid.uuid4().hex[:8]}{ext}")
    try:
        with av.open(temp, "w") as output:
            with av.open(segments[0]) as first:
                stream = output.add_stream_from_template(first.streams.video[0])
            copier = _StreamCopier(output, info.path, name) if not info.is_sequence else None
            try:
                for segment in segments:
                    with av.open(segment) as container:
                        for packet in container.demux(container.streams.video[0]):
                            if packet.dts is None and packet.pts is None:
                                continue
                            if copier is not None:
                                copier.mux_until(_packet_time(packet, container.streams.video[0]))
                            packet.stream = stream
                            output.mux(packet)
                if copier is not None:
                    copier.mux_until(float("inf"))
            finally:
                if copier is not None:
                    copier.close()
        os.replace(temp, os.path.abspath(spec.path))
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return spec.path


def _packet_time(packet: av.Packet, stream: av.stream.Stream) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None:
        return 0.0
    base = packet.time_base or stream.time_base or Fraction(1, 1)
    return float(stamp * base)


class _Aborted(Exception):
    pass
