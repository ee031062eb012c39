"""Encoder side: PyAV writer with untouched luma, stream copy of audio/subtitles, atomic output.

The output is written to a hidden temporary file (or folder, for image sequences) beside the final
name and renamed into place only when complete, so an interrupted or failed run never leaves a
half file under the name the user asked for. Audio and subtitle streams are remuxed packet for
packet, interleaved with the video by time.

Nothing vidcolor writes can touch its input: :func:`check_output` refuses an output that is,
holds, sits inside or otherwise overlaps the input (symlinks and relative paths resolved, printf
patterns included). An image-sequence folder is never deleted: vidcolor keeps a small manifest
(:data:`MANIFEST_NAME`) of the frames it wrote there, ``--overwrite`` replaces those frames only,
and files it did not write are left untouched (image files it did not write are refused, so a
folder never mixes two sequences).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .. import __version__
from ..color import CODE_BY_MATRIX, LumaFormat
from ..errors import InputError, OutputError
from .durable import atomic_write_text
from .reader import FIELD_ORDER_CODES, IMAGE_EXTENSIONS, VideoInfo, is_image_sequence, sequence_files

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

    @property
    def uses_preset(self) -> bool:
        """Only x264 and x265 have speed presets (``--encoder-preset``)."""
        return self.encoder in ("libx264", "libx265")


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
#: The codecs each video container takes. FFmpeg refuses the others (an internal error once the model
#: had loaded), except FFV1 in MP4, which it writes but MP4 players do not read. FFV1 in AVI is
#: deliberate: it is .avi's own codec, the classic archive pairing.
_CODECS_BY_CONTAINER = {
    ".mp4": ("h264", "hevc"), ".m4v": ("h264",), ".mkv": ("h264", "hevc", "ffv1", "prores"),
    ".mov": ("h264", "hevc", "prores"), ".avi": ("h264", "ffv1"), ".nut": ("h264", "hevc", "ffv1"),
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
    _check_container(text, suffix, spec)
    if encoder_preset not in ENCODER_PRESETS:
        raise OutputError(f"unknown encoder preset {encoder_preset!r}: choose one of {', '.join(ENCODER_PRESETS)}")
    if crf is not None and not 0 <= crf <= 51:
        raise OutputError(f"--crf must be between 0 and 51, got {crf}")
    if not spec.uses_preset:
        # The preset changes nothing in these bytes: keep the default, so that a model's own preset
        # (superfast for --model fast) does not make an unchanged lossless run look changed on resume.
        encoder_preset = OutputSpec.encoder_preset
    return OutputSpec(text, spec, crf, encoder_preset)


def _check_container(text: str, suffix: str, spec: CodecSpec) -> None:
    """Refuse a codec the output's container does not hold, before any work (other extensions are
    left to FFmpeg: vidcolor does not know them)."""
    fitting = _CODECS_BY_CONTAINER.get(suffix)
    if fitting is None or spec.name in fitting:
        return
    why = "MP4 players do not read FFV1" if spec.name == "ffv1" and suffix == ".mp4" else "FFmpeg cannot write it"
    others = [ext for ext, codecs in _CODECS_BY_CONTAINER.items() if spec.name in codecs and ext != spec.extension]
    choices = f"{', '.join(fitting[:-1])} or {fitting[-1]}" if len(fitting) > 1 else fitting[0]
    raise OutputError(
        f"output {text!r}: {suffix.lstrip('.').upper()} files do not hold --codec {spec.name} ({why}): name the output "
        f"{Path(text).with_suffix(spec.extension).name} (or {', '.join(others)}), or choose --codec {choices} for {suffix}"
    )


#: vidcolor's list of the frames it wrote into an image-sequence folder (hidden, JSON).
MANIFEST_NAME = ".vidcolor-frames.json"
#: Containers that store no timestamp per frame: the header's rate and length are all there is.
_FRAME_COUNTED_CONTAINERS = (".avi",)


def check_output(spec: OutputSpec, input_path: str, *, overwrite: bool) -> None:
    """Refuse, before any work starts: an output that overlaps the input (see
    :func:`check_not_input`), an existing output without ``overwrite``, an image-sequence folder
    holding image files vidcolor did not write, and a folder that cannot be written.

    For an image sequence, ``overwrite`` replaces only the frames vidcolor's manifest lists;
    other files in the folder are kept, so an output folder is never emptied.
    """
    check_not_input(spec, input_path)
    if spec.is_sequence:
        _check_sequence_folder(spec, overwrite=overwrite)
    elif os.path.isdir(spec.path):
        raise OutputError(f"output {spec.path!r} is a folder, and --codec {spec.codec.name} writes a video file: "
                          f"give a file name such as {os.path.join(spec.path, 'colorized' + spec.codec.extension)!r}")
    elif os.path.lexists(spec.path) and not overwrite:
        raise OutputError(f"output {spec.path!r} already exists: pass --overwrite to replace it, or choose another name")
    target = spec.sequence_folder if spec.is_sequence else spec.path
    into_folder = spec.is_sequence and os.path.isdir(target)
    parent = os.path.abspath(target) if into_folder else os.path.dirname(os.path.abspath(target))
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


def check_not_input(spec: OutputSpec, input_path: str) -> None:
    """Refuse an output that is the input, holds it, or lies inside an input folder.

    The input is its file; for a folder of frames, the folder and everything in it; for a printf
    pattern, the frames it names and everything inside their folder (as for a folder input: the
    frames' folder is the input's). Paths are compared after resolving symlinks and ``..``, and
    hard links count as the same file.
    """
    files, folder = _input_places(input_path)
    target = spec.sequence_folder if spec.is_sequence else spec.path
    real = os.path.realpath(target)
    fix = (f"choose an output outside the input, e.g. {_suggest_output(spec, input_path)!r} "
           "(vidcolor never writes over its input)")
    if real in files or (folder is not None and real == folder) or _same_path(target, input_path):
        raise OutputError(f"output {spec.path!r} is the input {input_path!r}: {fix}")
    if folder is not None and _within(real, folder):
        raise OutputError(f"output {spec.path!r} is inside the input folder {input_path!r}: {fix}")
    if folder is None and is_image_sequence(input_path):
        # A pattern's own folder as output folder is "holds the input" below; anything inside it is refused here.
        around = os.path.dirname(input_path) or os.curdir
        if real != os.path.realpath(around) and _within(real, os.path.realpath(around)):
            raise OutputError(f"output {spec.path!r} is inside the input folder {around!r} of {input_path!r}: {fix}")
    if spec.is_sequence:
        held = next((f for f in sorted(files) if _within(f, real)), None)
        if held is not None:
            same = os.path.normpath(spec.path) == os.path.normpath(target)
            named = repr(target) if same else f"{target!r} of {spec.path!r}"
            raise OutputError(f"output folder {named} holds the input {input_path!r} (e.g. {held!r}): {fix}")


def _input_places(input_path: str) -> tuple[set[str], str | None]:
    """Real paths of the input's files, and of its folder when the folder itself is the input."""
    if not is_image_sequence(input_path):
        return {os.path.realpath(input_path)}, None
    files = sequence_files(input_path)
    if not files:
        return set(), os.path.realpath(input_path) if os.path.isdir(input_path) else None
    folder = os.path.dirname(files[0])
    base = os.path.realpath(folder)
    with os.scandir(folder) as entries:  # d_type, no stat per frame: 100,000 frames in a fraction of a second
        links = {entry.name for entry in entries if entry.is_symlink()}
    places = {os.path.realpath(f) if os.path.basename(f) in links else os.path.join(base, os.path.basename(f)) for f in files}
    return places, os.path.realpath(input_path) if os.path.isdir(input_path) else None


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _suggest_output(spec: OutputSpec, input_path: str) -> str:
    """A sibling of the input named ``<input>-color``, shaped like the requested output."""
    source = os.path.normpath(os.path.dirname(input_path) if "%" in os.path.basename(input_path) else input_path)
    stem = os.path.splitext(os.path.basename(source))[0] or "output"
    name = os.path.join(os.path.dirname(source), f"{stem}-color")
    if spec.is_sequence:
        return os.path.join(name, spec.sequence_pattern) if "%" in os.path.basename(spec.path) else name
    return name + (os.path.splitext(spec.path)[1] or spec.codec.extension)


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _check_sequence_folder(spec: OutputSpec, *, overwrite: bool) -> None:
    folder = spec.sequence_folder
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise OutputError(f"output folder {folder!r} is a file: give a folder or a pattern such as "
                          f"{os.path.join(os.path.splitext(folder)[0] + '-frames', spec.sequence_pattern)!r}")
    if not os.path.isdir(folder):
        return
    own, foreign_frames, foreign_other = _sequence_folder_contents(folder, spec.sequence_pattern)
    if foreign_frames:
        raise OutputError(
            f"output folder {folder!r} holds {len(foreign_frames)} image file(s) vidcolor did not write (e.g. "
            f"{foreign_frames[0]!r}): vidcolor never replaces frames it did not write nor mixes two sequences in one "
            "folder; move them away or choose a new folder")
    if overwrite or not (own or foreign_other):
        return
    if own:
        raise OutputError(f"output folder {folder!r} already holds {len(own)} frame(s) vidcolor wrote: pass --overwrite "
                          "to replace them (other files there are kept), or choose another folder")
    raise OutputError(f"output folder {folder!r} already holds {len(foreign_other)} file(s) vidcolor did not write (e.g. "
                      f"{foreign_other[0]!r}): choose a new or empty folder, or pass --overwrite to write the frames "
                      "beside them (files vidcolor did not write are never touched)")


def _sequence_folder_contents(folder: str, pattern: str) -> tuple[list[str], list[str], list[str]]:
    """Names in ``folder``: frames vidcolor's manifest lists, image files it did not write, and
    other files it did not write (vidcolor's own temporary entries are left out)."""
    listed = set(_read_manifest(folder))
    named = {os.path.basename(f) for f in sequence_files(os.path.join(folder, pattern))}
    own: list[str] = []
    frames: list[str] = []
    other: list[str] = []
    for name in sorted(os.listdir(folder)):
        if name == MANIFEST_NAME or "vidcolor-partial-" in name or name.startswith(".vidcolor-write-test-"):
            continue
        if name in listed:
            own.append(name)
        elif name in named or Path(name).suffix.lower() in IMAGE_EXTENSIONS:
            frames.append(name)
        else:
            other.append(name)
    return own, frames, other


def _read_manifest(folder: str) -> list[str]:
    """Frame names vidcolor wrote into ``folder``; none when the manifest is missing or unreadable
    (every file then counts as not written by vidcolor, the safe reading)."""
    try:
        with open(os.path.join(folder, MANIFEST_NAME), encoding="utf-8") as handle:
            names = json.load(handle).get("frames", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str) and os.path.basename(n) == n and n not in ("", ".", "..")]


def _write_manifest(folder: str, pattern: str, names: Iterable[str]) -> None:
    """Atomically (temp file, fsync, rename) record the frames vidcolor wrote into ``folder``."""
    data = {"written_by": "vidcolor", "version": __version__, "pattern": pattern, "frames": sorted(set(names))}
    atomic_write_text(os.path.join(folder, MANIFEST_NAME), json.dumps(data, indent=0))


def input_frame_numbers(info: VideoInfo) -> list[int] | None:
    """The number in each frame file's name of a sequence input (``scan_000100.tif`` -> 100), so an
    image-sequence output keeps them; None when the names do not number every frame uniquely in order."""
    if not info.is_sequence:
        return None
    pattern = os.path.basename(info.path)
    match = re.search(r"%0?\d*d", pattern) if "%" in pattern else None
    numbers = []
    for path in info.sequence_files:
        name = os.path.basename(path)
        if match is not None:
            digits = name[match.start(): len(name) - (len(pattern) - match.end())]
        else:
            runs = re.findall(r"\d+", os.path.splitext(name)[0])
            digits = runs[-1] if runs else ""
        if not digits.isdigit():
            return None
        numbers.append(int(digits))
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        return None
    return numbers


def check_encodable(spec: OutputSpec, info: VideoInfo) -> None:
    """Catch sizes a codec cannot take before decoding starts (odd sizes in 4:2:0 or 4:2:2 for an
    encoder without a 4:4:4 mode; encoders with one get 4:4:4, see :func:`output_pix_fmt`), and
    warn about an interlaced input and an output that cannot record the input's pixel aspect or timecode."""
    if info.interlaced:
        _warn_interlaced(spec, info)
    if info.timecode is not None and (spec.is_sequence or Path(spec.path).suffix.lower() not in _TIMECODE_CONTAINERS):
        _warn_timecode_lost(spec, info)
    elif (info.timecode is not None and Path(spec.path).suffix.lower() in _QUICKTIME_CONTAINERS
          and not quicktime_takes_timecode(info.timecode, info.fps)):
        _warn_timecode_lost(spec, info, reason="as it is (a QuickTime timecode track takes HH:MM:SS:FF, frames below "
                            "the frame rate, ';' only at 29.97 or 59.94 fps)", fix="Write .mkv to keep it as a tag")
    if spec.codec.rgb:
        return
    name = output_pix_fmt(spec, info)
    if _odd_for(name, info.width, info.height):
        raise InputError(
            f"input {info.path!r} is {info.width}x{info.height}, an odd size that {spec.codec.name} in {name} "
            "(chroma subsampled) cannot encode: use --codec ffv1 (4:4:4), an image sequence, or crop/pad the source to even dimensions"
        )
    if info.sample_aspect != 1 and not _records_pixel_aspect(spec):
        _warn_pixel_aspect_lost(spec, info)


#: Which field is shown first, per field order.
_SHOWN_FIRST = {"tt": "top field first", "bt": "top field first", "bb": "bottom field first",
                "tb": "bottom field first", "interlaced": "field order not stated"}
#: The warnings already given, per (kind, input, output): a run checks its output more than once.
_warned: set[tuple[str, str, str]] = set()


def _first_warning(kind: str, spec: OutputSpec, info: VideoInfo) -> bool:
    """Whether warning ``kind`` is new for this input and output (and note that it is given now)."""
    key = (kind, info.path, spec.path)
    if key in _warned:
        return False
    _warned.add(key)
    return True


#: What an interlaced input means and what to do, said alike by the CLI and the VapourSynth filter.
INTERLACE_ADVICE = (
    "vidcolor colours whole frames, so colour smears across the combing of moving edges; deinterlace first (QTGMC "
    "in VapourSynth, or ffmpeg -vf bwdif), or inverse-telecine a telecined film (VIVTC's VFM and VDecimate, or "
    "ffmpeg -vf fieldmatch,decimate), then colorize. A film transfer stored as progressive segmented frames (PsF: "
    "flagged interlaced, no combing) needs nothing.")


def _warn_interlaced(spec: OutputSpec, info: VideoInfo) -> None:
    """Say that interlaced frames are coloured as whole frames, and what to do about it (once per
    input and output: a run checks its output more than once)."""
    if not _first_warning("interlaced", spec, info):
        return
    flagged = (", and the output is flagged interlaced in the same order"
               if info.field_order in FIELD_ORDER_CODES and not spec.is_sequence else "")
    if flagged and spec.codec.encoder == "libx264" and not spec.codec.rgb and not x264_codes_fields(
            output_pix_fmt(spec, info), info):
        flagged = (f", coded as progressive frames (x264 codes the fields of 4:2:0 only at a height that is a "
                   f"multiple of 4, not {info.height}); an .mkv output is still flagged in the same order, where "
                   ".mov/.mp4 players read the frames as progressive")
    logger.warning("%s is interlaced (%s): %s The luma's fields are kept as they are%s", info.path,
                   _SHOWN_FIRST[info.field_order], INTERLACE_ADVICE, flagged)


#: Codecs whose bitstream states the pixel aspect (H.264 and HEVC: their VUI), and containers
#: whose header does for any codec (QuickTime's pasp box). Matroska, AVI and NUT take it from a
#: stream field that PyAV cannot set, and FFV1 and ProRes carry none that FFmpeg reads back.
_ASPECT_IN_BITSTREAM = ("h264", "hevc")
_ASPECT_IN_CONTAINER = (".mov", ".mp4", ".m4v")


def _records_pixel_aspect(spec: OutputSpec) -> bool:
    return spec.codec.name in _ASPECT_IN_BITSTREAM or Path(spec.path).suffix.lower() in _ASPECT_IN_CONTAINER


def _warn_pixel_aspect_lost(spec: OutputSpec, info: VideoInfo) -> None:
    """Name the loss (the pixels are all kept; players show them square) and the ways around it,
    once per input and output (a run checks its output more than once)."""
    if not _first_warning("pixel aspect", spec, info):
        return
    aspect, stored = info.sample_aspect, Fraction(info.width, info.height)
    shown = stored * aspect
    afterwards = (f"; or set it afterwards: mkvpropedit {spec.path} --edit track:v1 --set display-unit=3 "
                  f"--set display-width={shown.numerator} --set display-height={shown.denominator}"
                  if Path(spec.path).suffix.lower() == ".mkv" else "")
    logger.warning(
        "%s has non-square pixels (%d:%d, shown %d:%d), which %s in %s cannot record: players will show %s at "
        "%d:%d, with square pixels (every pixel is kept). --codec h264 or hevc (any container; --crf 0 is lossless "
        "for 8-bit sources) or prores in a .mov file record it%s", info.path, aspect.numerator, aspect.denominator,
        shown.numerator, shown.denominator, spec.codec.name, Path(spec.path).suffix.lower() or "this output",
        spec.path, stored.numerator, stored.denominator, afterwards)


#: Containers that keep a start timecode (:func:`keep_source_tags`): QuickTime's timecode track,
#: a Matroska or NUT tag. AVI has no place for one, and FFmpeg's .m4v muxer writes no track.
_TIMECODE_CONTAINERS = (".mov", ".mp4", ".mkv", ".nut")


_QUICKTIME_CONTAINERS = (".mov", ".mp4", ".m4v")
_TIMECODE_TEXT = re.compile(r"\d+:\d+:\d+([:;.])(\d+)")


def quicktime_takes_timecode(timecode: str, fps: Fraction) -> bool:
    """Whether FFmpeg's mov muxer writes this start timecode as it is: it drops text it cannot parse
    and a drop-frame (';') timecode at a rate other than 29.97/59.94 fps, and carries frames at or
    past the frame rate into the seconds."""
    match = _TIMECODE_TEXT.fullmatch(timecode.strip())
    rate = round(fps) if fps > 0 else 0
    return (match is not None and rate > 0 and int(match.group(2)) < rate
            and (match.group(1) == ":" or rate % 30 == 0))


def _warn_timecode_lost(spec: OutputSpec, info: VideoInfo, reason: str = "",
                        fix: str = "Write .mov, .mp4 or .mkv to keep it") -> None:
    """Name the lost start timecode, why, and what keeps it, once per input and output."""
    if not _first_warning("timecode", spec, info):
        return
    kind = "an image sequence" if spec.is_sequence else f"a {Path(spec.path).suffix.lower() or 'suffixless'} file"
    logger.warning("%s starts at timecode %s, which %s cannot record%s: %s will have none (its frames are all kept). "
                   "%s", info.path, info.timecode, kind, f" {reason}" if reason else "", spec.path, fix)


def output_pix_fmt(spec: OutputSpec, info: VideoInfo) -> str:
    """The pixel format written: the codec's at the source's bit depth; 4:4:4 instead of 4:2:0 or
    4:2:2 when the frame has an odd size (the chroma cannot be subsampled) and the encoder can,
    as FFmpeg itself would encode such a frame."""
    name = _pix_fmt(spec, info.luma_format)
    if not _odd_for(name, info.width, info.height):
        return name
    full = re.sub(r"^yuv4[02]{2}p", "yuv444p", name)
    if full in _encoder_formats(spec.codec.encoder):
        logger.info("%s is %dx%d, an odd size: %s encodes it in %s (4:4:4; some players only play 4:2:0)",
                    info.path, info.width, info.height, spec.codec.name, full)
        return full
    return name


def _odd_for(pix_fmt: str, width: int, height: int) -> bool:
    return pix_fmt.startswith(("yuv420", "yuv422")) and bool(width % 2 or (pix_fmt.startswith("yuv420") and height % 2))


@functools.cache
def _encoder_formats(encoder: str) -> frozenset[str]:
    formats = av.Codec(encoder, "w").video_formats or ()
    return frozenset(f.name for f in formats)


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

    An image sequence is written into a hidden folder: beside the output folder when that does
    not exist yet (renamed into place whole), else inside it; then each frame is renamed into the
    folder, the frames of vidcolor's previous run that this one does not rewrite are removed, and
    the manifest lists the new frames. Files vidcolor did not write are never touched. Frames keep
    the numbers of a sequence input's file names; a video's frames are named by their index from 0,
    the frame numbers vidcolor uses everywhere (``--ref FRAME=``, reports, keyframe images).
    """

    def __init__(self, spec: OutputSpec, info: VideoInfo, *, copy_streams: bool = True, overwrite: bool = False) -> None:
        self.spec = spec
        self.info = info
        self.overwrite = overwrite
        self.copy_streams = copy_streams and not spec.is_sequence and not info.is_sequence
        self.pix_fmt = output_pix_fmt(spec, info)
        self.luma_format = output_luma_format(spec, info.luma_format)
        target = spec.sequence_folder if spec.is_sequence else spec.path
        folder, name = os.path.split(os.path.abspath(target))
        token = uuid.uuid4().hex[:8]
        #: an image sequence into a folder that exists: frames are moved in one by one
        self._into_existing = spec.is_sequence and os.path.isdir(target)
        self._numbers = input_frame_numbers(info) if spec.is_sequence else None
        self.frame_names: list[str] = []
        if self._into_existing:
            self.temp_path = os.path.join(os.path.abspath(target), f".vidcolor-partial-{token}")
        elif spec.is_sequence:
            self.temp_path = os.path.join(folder, f".{name}.vidcolor-partial-{token}")
        else:
            stem, ext = os.path.splitext(name)
            self.temp_path = os.path.join(folder, f".{stem}.vidcolor-partial-{token}{ext}")
        self.final_path = os.path.abspath(target)
        #: AVI stores no per-frame timestamps: its header holds a rate (1/time base) and a length in
        #: time-base units, so frames are counted at the input's average rate from 0 in each file
        #: (a segment of a resumed run too: assemble_segments shifts each by the frames before it)
        self.frame_counted = os.path.splitext(spec.path)[1].lower() in _FRAME_COUNTED_CONTAINERS
        self.time_base = 1 / Fraction(info.fps) if self.frame_counted else info.time_base
        self._queue: queue.Queue[OutputFrame | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidcolor-writer", daemon=True)
        self._started = False
        self.frames_written = 0
        self.packets_copied = 0
        self._colour_codes = (2, 2)  # primaries and transfer each frame states (prores_ks writes the frame's)

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
        if self._into_existing:
            self._install_frames()
        elif self.spec.is_sequence:
            _write_manifest(self.temp_path, self.spec.sequence_pattern, self.frame_names)
            try:
                os.rename(self.temp_path, self.final_path)
            except OSError as exc:  # the folder appeared meanwhile: never replace it whole
                raise OutputError(f"output folder {self.spec.sequence_folder!r} appeared while vidcolor was writing "
                                  f"({exc.strerror}): run again to write into it") from exc
        else:
            os.replace(self.temp_path, self.final_path)

    def _install_frames(self) -> None:
        """Move the new frames into the existing output folder, each by an atomic rename.

        The manifest first lists old and new frames, so a crash half-way still knows every frame
        vidcolor put there; frames of the previous run not rewritten now are removed last.
        """
        folder, pattern = self.final_path, self.spec.sequence_pattern
        previous = set(_read_manifest(folder))
        clash = [n for n in self.frame_names if n not in previous and os.path.lexists(os.path.join(folder, n))]
        if clash or (previous and not self.overwrite and any(os.path.lexists(os.path.join(folder, n)) for n in previous)):
            raise OutputError(f"output folder {self.spec.sequence_folder!r} changed while vidcolor was writing "
                              f"(e.g. {(clash or sorted(previous))[0]!r} appeared): nothing was replaced; check the "
                              "folder and run again")
        _write_manifest(folder, pattern, previous | set(self.frame_names))
        for name in self.frame_names:
            os.replace(os.path.join(self.temp_path, name), os.path.join(folder, name))
        for name in sorted(previous - set(self.frame_names)):
            path = os.path.join(folder, name)
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)
        _write_manifest(folder, pattern, self.frame_names)
        os.rmdir(self.temp_path)

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
        """Each frame is one PNG/TIFF file named by the pattern and the frame's number."""
        os.makedirs(self.temp_path, exist_ok=True)
        codec = av.CodecContext.create(self.spec.codec.encoder, "w")
        codec.width, codec.height, codec.pix_fmt = self.info.width, self.info.height, self.pix_fmt
        codec.time_base = Fraction(1, 24)
        if self.info.sample_aspect != 1:  # a PNG's pHYs chunk, a TIFF's resolution fields
            codec.sample_aspect_ratio = self.info.sample_aspect
        for item in self._frames():
            assert item.rgb is not None
            fmt = "rgb24" if item.rgb.dtype == np.uint8 else "rgb48le"
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(item.rgb), format=fmt)
            if frame.format.name != self.pix_fmt:
                frame = frame.reformat(format=self.pix_fmt)
            frame.pts = self.frames_written
            data = b"".join(bytes(packet) for packet in codec.encode(frame))
            numbers = self._numbers
            number = numbers[item.index] if numbers is not None and item.index < len(numbers) else item.index
            name = self.spec.sequence_pattern % number
            with open(os.path.join(self.temp_path, name), "wb") as handle:
                handle.write(data)
            self.frame_names.append(name)
            self.frames_written += 1

    def _run_container(self) -> None:
        info = self.info
        options: dict[str, str] = {}
        codec = self.spec.codec
        if codec.uses_preset:
            options["preset"] = self.spec.encoder_preset
            options["crf"] = str(self.spec.crf if self.spec.crf is not None else (18 if codec.encoder == "libx264" else 20))
            if codec.encoder == "libx265":
                options["x265-params"] = "log-level=error"
        elif codec.encoder == "ffv1":
            options.update({"level": "3", "slicecrc": "1", "g": "1"})
        elif codec.encoder == "prores_ks":
            options["profile"] = "4" if self.pix_fmt.startswith("yuv444") else "3"  # 4444 or HQ
        if codec.encoder == "libx264" and x264_codes_fields(self.pix_fmt, info):
            # x264 codes the frames as pairs of fields, so the file says interlaced inside as outside
            options["flags"] = "+ildct+ilme"
            options["x264-params"] = "tff=1" if info.field_order in ("tt", "bt") else "bff=1"
        copier: _StreamCopier | None = None
        try:
            with av.open(self.temp_path, "w") as output:
                stream = output.add_stream(codec.encoder, rate=info.fps, options=options)
                stream.width, stream.height = info.width, info.height
                stream.pix_fmt = self.pix_fmt
                stream.time_base = self.time_base
                stream.codec_context.time_base = self.time_base
                ctx = stream.codec_context
                ctx.color_range = 2 if self.luma_format.full_range else 1
                ctx.colorspace = self._matrix_code
                keep_source_tags(stream, info)
                self._colour_codes = (ctx.color_primaries, ctx.color_trc)
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
        frame.pts = self.frames_written if self.frame_counted else item.pts
        frame.time_base = self.time_base
        frame.color_range = 2 if self.luma_format.full_range else 1
        # prores_ks writes the frame's colour tags, not the stream's
        frame.colorspace = self._matrix_code
        frame.color_primaries, frame.color_trc = self._colour_codes  # as keep_source_tags stated them
        return frame

    @property
    def _matrix_code(self) -> int:
        """The matrix the chroma is written with, as FFmpeg's colorspace code."""
        return CODE_BY_MATRIX.get(self.luma_format.matrix, 1)



def x264_codes_fields(pix_fmt: str, info: VideoInfo) -> bool:
    """Whether x264 can code this input's frames as pairs of fields: it needs a stated field order,
    and for 4:2:0 a height that is a multiple of 4 (each field's chroma has whole rows), which
    NTSC D1's 486 lines are not; otherwise the frames are coded progressive and only flagged."""
    return info.field_order in FIELD_ORDER_CODES and (not pix_fmt.startswith("yuv420") or info.height % 4 == 0)


#: Colour codes x265 accepts (primaries, transfer); it refuses to open on any other, where x264
#: and the other encoders take every code FFmpeg knows.
_X265_COLOUR_CODES = (frozenset({1, 2, *range(4, 13)}), frozenset({1, 2, *range(4, 19)}))


def stated_colour_codes(encoder: str, info: VideoInfo) -> tuple[int, int]:
    """The input's primaries and transfer as the encoder may state them: a code the encoder refuses
    (x265 and EBU 3213 primaries, 22) becomes 2, unstated, rather than failing the run."""
    codes = (info.color_primaries, info.color_transfer)
    if encoder not in ("libx265", "hevc"):
        return codes
    kept = tuple(code if code in accepted else 2 for code, accepted in zip(codes, _X265_COLOUR_CODES, strict=True))
    if kept != codes:
        logger.info("%s: colour primaries/transfer %d/%d are left unstated where x265 takes no such code (%d/%d kept)",
                    info.path, *codes, *kept)
    return kept[0], kept[1]


def keep_source_tags(stream: av.VideoStream, info: VideoInfo) -> None:
    """Carry what the input says about showing its frames into the output stream: the pixel
    aspect (an anamorphic 720x576 stays 16:9), the field order, the colour primaries and transfer
    where the input states them, and the start timecode (a QuickTime timecode track in .mov/.mp4,
    a tag in .mkv). The matrix and range follow the written luma (:func:`output_luma_format`)."""
    ctx = stream.codec_context
    if info.sample_aspect != 1:
        ctx.sample_aspect_ratio = info.sample_aspect
    if info.field_order in FIELD_ORDER_CODES:
        ctx.field_order = FIELD_ORDER_CODES[info.field_order]
    primaries, transfer = stated_colour_codes(ctx.name, info)
    if primaries != 2:
        ctx.color_primaries = primaries
    if transfer != 2:
        ctx.color_trc = transfer
    if info.timecode is not None:
        stream.metadata["timecode"] = info.timecode


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
            keep_source_tags(stream, info)  # a segment's tags and container aspect are not copied with its parameters
            if info.timecode is not None:
                stream.codec_context.framerate = info.fps  # QuickTime's timecode track counts frames at it
            copier = _StreamCopier(output, info.path, name) if not info.is_sequence else None
            # an AVI segment reads back from frame 0: shift it to the frames muxed before it
            frame_counted, muxed = ext.lower() in _FRAME_COUNTED_CONTAINERS, 0
            try:
                for segment in segments:
                    with av.open(segment) as container:
                        offset = muxed
                        for packet in container.demux(container.streams.video[0]):
                            if packet.dts is None and packet.pts is None:
                                continue
                            if frame_counted:
                                packet.pts = None if packet.pts is None else packet.pts + offset
                                packet.dts = None if packet.dts is None else packet.dts + offset
                            muxed += 1
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
