"""Keyframe reference presets: one TOML file per film, listing its shots and their references.

A colorist prepares a reference per shot; the preset says where each shot starts (a frame number
or a timecode) and which painted image colours it, plus the settings the film is run with. The
same file drives ``vidcolor colorize --preset``, ``vidcolor batch`` and the VapourSynth filter,
so all three colour the film identically. The format is documented in ``presets/README.md``::

    version = 1
    model = "classic"

    [[shot]]
    start = 0
    reference = "refs/shot001.png"

    [[shot]]
    start = "00:00:03:12"              # HH:MM:SS:FF (or HH:MM:SS.mmm), resolved with the clip's fps
    reference = "refs/shot002-in.png"
    end_reference = "refs/shot002-out.png"   # a two-keyframe shot

Everything that can be checked without the clip (unknown keys, types, missing images, overlaps
between frame-number shots) is checked by :func:`load_preset`; timecodes and the clip's length
are checked by :meth:`Preset.resolve` / :meth:`Preset.schedule`. Every error names the preset
file, the line and shot, and the fix. Paths are relative to the preset file.

A shot without ``reference`` is a cut: the recurrence resets there and the previous shot's
(start) reference carries on, for a cut the colorist does not want to paint separately.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import cv2

from ..errors import InputError, OutputError, ReferenceImageError
from ..io.durable import write_text_or_fail
from ..references import Reference, load_reference
from .keyframes import Keyframe, ReferenceSchedule
from .timecodes import Timecode, is_timecode

if TYPE_CHECKING:
    from ..temporal import TemporalSettings

FORMAT_VERSION = 1
#: Top-level on/off settings (each also a field of :class:`Preset` and of
#: :class:`vidcolor.run.settings.RunSettings`), with what ``true`` does, for messages.
FLAG_KEYS = {"detail": "carry the references' fine colour detail"}
TOP_KEYS = ("version", "model", "size", *FLAG_KEYS, "codec", "crf", "encoder_preset", "timecode_fps", "scenes",
            "temporal", "shot", "anchor", "fallback")
SHOT_KEYS = ("start", "end", "reference", "end_reference", "name")
SCENE_KEYS = ("detect", "threshold", "min_length")
DEFAULT_SCENE_THRESHOLD = 27.0
DEFAULT_SCENE_MIN_LENGTH = 15


class PresetError(InputError):
    """A preset file that cannot be used; the message names the file, line, shot and fix."""


Position = int | Timecode


@dataclass(frozen=True)
class Shot:
    """One ``[[shot]]`` of a preset: where it starts (and ends) and its reference image(s).

    ``reference`` None marks a cut that keeps the previous shot's reference. After
    :meth:`Preset.resolve`, ``start`` and ``end`` are frame numbers.
    """

    start: Position
    reference: Path | None
    end_reference: Path | None = None
    end: Position | None = None
    name: str = ""
    index: int = 0
    line: int | None = None

    @property
    def label(self) -> str:
        """How error messages name the shot: ``line 12, shot 3 ("opening")``."""
        where = f"line {self.line}, " if self.line is not None else ""
        named = f' ("{self.name}")' if self.name else ""
        return f"{where}shot {self.index}{named}"


@dataclass(frozen=True)
class SceneSettings:
    """Scene detection while colorizing with the preset (cuts reset the recurrence)."""

    detect: bool = False
    threshold: float = DEFAULT_SCENE_THRESHOLD
    min_length: int = DEFAULT_SCENE_MIN_LENGTH


@dataclass(frozen=True)
class Preset:
    """A loaded, validated preset. Settings left out of the file are None (the caller's default)."""

    path: Path
    shots: tuple[Shot, ...]
    model: str | None = None
    size: str | None = None
    codec: str | None = None
    crf: int | None = None
    encoder_preset: str | None = None
    timecode_fps: Fraction | None = None
    scenes: SceneSettings = SceneSettings()
    temporal: Mapping[str, float | bool] = field(default_factory=lambda: MappingProxyType({}))
    detail: bool | None = None
    #: ``auto`` or ``pinned``: where each shot's colouring starts (:mod:`vidcolor.run.anchor`).
    anchor: str | None = None
    #: the automatic model that colours what the references do not show, or ``none``.
    fallback: str | None = None

    def resolve(self, fps: Fraction | float | None, frame_count: int | None = None) -> tuple[Shot, ...]:
        """Shots sorted by start with frame-number positions, checked against the clip.

        ``fps`` converts timecodes (the preset's ``timecode_fps`` wins when set); ``frame_count``
        (None when unknown) catches shots starting or ending beyond the clip.
        """
        rate = self.timecode_fps if self.timecode_fps is not None else _as_fraction(fps)
        resolved: list[Shot] = []
        for shot in self.shots:
            start = self._frame(shot, "start", shot.start, rate)
            end = None if shot.end is None else self._frame(shot, "end", shot.end, rate)
            if end is not None and end < start:
                raise self.error(shot, f"ends at frame {end}, before its start (frame {start})",
                                 "give an end at or after the start")
            if frame_count is not None:
                for key, written, value in (("start", shot.start, start), ("end", shot.end, end)):
                    if value is not None and value >= frame_count:
                        shown = f"{written.text!r} (frame {value})" if isinstance(written, Timecode) else f"frame {value}"
                        raise self.error(
                            shot, f"{key} {shown} is beyond the clip, which has {frame_count} frames "
                            f"(0..{frame_count - 1}{_span(frame_count, rate)})",
                            f"use a {key} inside the clip, or check that the preset belongs to this clip")
            resolved.append(dataclasses.replace(shot, start=start, end=end))
        resolved.sort(key=lambda s: s.start)  # type: ignore[arg-type, return-value]
        for first, second in zip(resolved, resolved[1:]):
            if first.start == second.start:
                raise self.error(second, f"starts at frame {second.start}, the same frame as {first.label}",
                                 "give each shot its own start, or delete one of them")
            if first.end is not None and first.end >= second.start:  # type: ignore[operator]
                raise self.error(first, f"ends at frame {first.end}, overlapping {second.label} which starts at frame "
                                 f"{second.start}", f"end it at frame {second.start - 1} at the latest")  # type: ignore[operator]
        return tuple(resolved)

    def schedule(self, frame_count: int | None, fps: Fraction | float | None,
                 cuts: Iterable[int] = ()) -> ReferenceSchedule:
        """The :class:`ReferenceSchedule` of the preset on a clip (references loaded once each).

        Every shot start with a reference is a keyframe; a shot without one is a cut keeping the
        previous reference; ``cuts`` (e.g. from scene detection) add further resets. A
        two-keyframe shot gets an explicit ``end_frame``: its own ``end``, else the frame before
        the next shot, else the clip's last frame.
        """
        shots = self.resolve(fps, frame_count)
        if not any(s.reference is not None for s in shots):
            raise self.error(None, "no shot has a reference image", "give at least one [[shot]] a reference = \"image.png\"")
        cache: dict[Path, Reference] = {}
        keyframes: list[Keyframe] = []
        extra_cuts = set(cuts)
        for position, shot in enumerate(shots):
            assert isinstance(shot.start, int)
            if shot.reference is None:
                extra_cuts.add(shot.start)
                continue
            end = shot.end
            if shot.end_reference is not None and end is None:
                if position + 1 < len(shots):
                    end = shots[position + 1].start - 1  # type: ignore[operator]
                elif frame_count is not None:
                    end = frame_count - 1
                else:
                    raise self.error(shot, "has an end_reference but the clip's frame count is unknown, so its last "
                                     "frame is too", "give the shot an end = FRAME (its last frame)")
            keyframes.append(Keyframe(
                shot.start,
                self._load(shot, "reference", shot.reference, cache),
                self._load(shot, "end_reference", shot.end_reference, cache) if shot.end_reference else None,
                end,  # type: ignore[arg-type]
            ))
        return ReferenceSchedule(keyframes, extra_cuts, frame_count=frame_count)

    def temporal_settings(self) -> TemporalSettings | None:
        """The temporal check for this preset: on by default with the ``[temporal]`` table's values
        over the defaults; None when the table says ``enabled = false``."""
        from ..temporal import TemporalSettings  # noqa: PLC0415

        if not self.temporal.get("enabled", True):
            return None
        return TemporalSettings(**{k: float(v) for k, v in self.temporal.items() if k != "enabled"})

    def error(self, shot: Shot | None, problem: str, fix: str) -> PresetError:
        """A :class:`PresetError` naming this preset (and the shot, when given)."""
        where = f", {shot.label}" if shot is not None else ""
        return PresetError(f"preset {str(self.path)!r}{where}: {problem}: {fix}")

    def _frame(self, shot: Shot, key: str, value: Position, rate: Fraction | None) -> int:
        if isinstance(value, int):
            return value
        if rate is None:
            raise self.error(shot, f"{key} {value.text!r} is a timecode but the clip's frame rate is unknown",
                             "use a frame number, or set timecode_fps = \"24000/1001\" (the film's rate) at the top")
        try:
            return value.frame(rate)
        except ValueError as exc:
            raise self.error(shot, f"{key} {value.text!r}: {exc}", "fix the timecode") from None

    def _load(self, shot: Shot, key: str, path: Path, cache: dict[Path, Reference]) -> Reference:
        if path not in cache:
            try:
                cache[path] = load_reference(path)
            except ReferenceImageError as exc:
                raise self.error(shot, f"{key} {str(path)!r} cannot be used ({exc})",
                                 "replace it with a PNG, TIFF or JPEG image") from None
        return cache[path]


def load_preset(path: str | os.PathLike[str], *, fps: Fraction | float | None = None,
                frame_count: int | None = None) -> Preset:
    """Read and validate a preset file. With ``fps`` (and ``frame_count``), also check its shots
    against that clip now rather than when the schedule is built."""
    path = Path(path)
    if not path.is_file():
        raise PresetError(f"preset {str(path)!r} does not exist: check the path given to --preset")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:  # an image or another binary file given as the preset
        raise PresetError(f"preset {str(path)!r} is not a TOML text file (byte {exc.start} is not UTF-8 text): give the "
                          "preset's .toml file (vidcolor scenes FILM -o FILM.toml writes one); a painted reference "
                          "image goes to --ref, or to a shot's reference = \"image.png\" in the preset") from None
    except OSError as exc:
        raise PresetError(f"preset {str(path)!r} cannot be read ({exc.strerror or exc}): make it readable") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"preset {str(path)!r} is not valid TOML ({exc}): fix the syntax there "
                          "(strings in quotes, one key = value per line, [[shot]] before each shot)") from None
    preset = _Parser(path, text).parse(data)
    if fps is not None or preset.timecode_fps is not None or all(
            isinstance(s.start, int) and not isinstance(s.end, Timecode) for s in preset.shots):
        preset.resolve(fps, frame_count)
    return preset


class _Parser:
    """Turns the decoded TOML into a :class:`Preset`, finding line numbers for messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.base = path.resolve().parent

    def fail(self, line: int | None, where: str, problem: str, fix: str) -> PresetError:
        at = f", line {line}" if line is not None else ""
        return PresetError(f"preset {str(self.path)!r}{at}{where}: {problem}: {fix}")

    # -- line numbers (tomllib keeps none) ---------------------------------------------------
    def header_line(self, header: str, occurrence: int = 0) -> int | None:
        """Line of the ``occurrence``-th ``[header]`` / ``[[header]]`` line."""
        seen = 0
        for number, line in enumerate(self.lines, start=1):
            if re.sub(r"\s+", "", line.split("#", 1)[0]) == header:
                if seen == occurrence:
                    return number
                seen += 1
        return None

    def key_line(self, key: str, start: int | None) -> int | None:
        """Line of ``key = ...`` in the table whose header is line ``start`` (None: the top level)."""
        pattern = re.compile(r"""^\s*["']?""" + re.escape(key) + r"""["']?\s*=""")
        for number in range((start or 0) + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if re.match(r"^\s*\[", line):
                return None
            if pattern.match(line):
                return number
        return None

    # -- parsing ------------------------------------------------------------------------------
    def parse(self, data: dict[str, object]) -> Preset:
        self.unknown(data, TOP_KEYS, None, "", "top level")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise self.fail(self.key_line("version", None), "", f"version {version!r} is not a preset version this "
                            f"vidcolor reads", f"write version = {FORMAT_VERSION}, or upgrade vidcolor")
        model = self.model(data.get("model"))
        size = self.size(data.get("size"))
        codec, crf, encoder_preset = self.encoding(data)
        timecode_fps = self.timecode_fps(data.get("timecode_fps"))
        scenes = self.scenes(data.get("scenes", {}))
        temporal = self.temporal(data.get("temporal", {}))
        shots = self.shots(data.get("shot"))
        flags = {key: self.flag(data.get(key), key, does) for key, does in FLAG_KEYS.items()}
        return Preset(self.path, shots, model, size, codec, crf, encoder_preset, timecode_fps, scenes, temporal, **flags,
                      anchor=self.anchor(data.get("anchor")), fallback=self.fallback(data.get("fallback")))

    def fallback(self, value: object) -> str | None:
        from ..colorizers import AUTOMATIC_MODELS  # noqa: PLC0415

        if value is not None and value != "none" and value not in AUTOMATIC_MODELS:
            raise self.fail(self.key_line("fallback", None), "", f"fallback {value!r} is not an automatic model",
                            f"write fallback = \"{AUTOMATIC_MODELS[0]}\" (or another of {', '.join(AUTOMATIC_MODELS)}) "
                            'to colour what the references do not show, or fallback = "none"')
        return value  # type: ignore[return-value]

    def anchor(self, value: object) -> str | None:
        from ..run.anchor import ANCHORS  # noqa: PLC0415

        if value is not None and value not in ANCHORS:
            raise self.fail(self.key_line("anchor", None), "", f"anchor {value!r} is not a way to anchor shots",
                            'write anchor = "auto" (colour each shot from the frame its reference shows) or '
                            'anchor = "pinned" (from the frame it is pinned to)')
        return value  # type: ignore[return-value]

    def flag(self, value: object, key: str, does: str) -> bool | None:
        if value is not None and not isinstance(value, bool):
            raise self.fail(self.key_line(key, None), "", f"{key} {value!r} is not true or false",
                            f"write {key} = true to {does}, or leave it out")
        return value

    def unknown(self, table: Mapping[str, object], known: tuple[str, ...], start: int | None, where: str,
                what: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(self.key_line(key, start) or start, where, f"unknown key {key!r} at the {what}",
                                f"{hint}known keys are {', '.join(known)}")

    def model(self, value: object) -> str | None:
        if value is None:
            return None
        from ..colorizers import MODELS  # noqa: PLC0415 - the registry is light; keeps import order simple

        if not isinstance(value, str) or value not in MODELS:
            raise self.fail(self.key_line("model", None), "", f"model {value!r} is not a vidcolor model",
                            f"choose one of {', '.join(MODELS)}")
        return value

    def size(self, value: object) -> str | None:
        if value is None:
            return None
        from ..run.sizes import parse_size  # noqa: PLC0415

        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str):
            raise self.fail(self.key_line("size", None), "", f"size {value!r} is not a size",
                            "write size = 360 (short side in pixels) or size = \"640x480\"")
        try:
            parse_size(text)
        except ValueError as exc:
            raise self.fail(self.key_line("size", None), "", str(exc), "write size = 360 or size = \"640x480\"") from None
        return text

    def encoding(self, data: Mapping[str, object]) -> tuple[str | None, int | None, str | None]:
        from ..io.writer import CODECS, ENCODER_PRESETS  # noqa: PLC0415

        codec, crf, preset = data.get("codec"), data.get("crf"), data.get("encoder_preset")
        if codec is not None and codec not in CODECS:
            raise self.fail(self.key_line("codec", None), "", f"codec {codec!r} is not one vidcolor writes",
                            f"choose one of {', '.join(CODECS)}")
        if crf is not None and (not isinstance(crf, int) or isinstance(crf, bool) or not 0 <= crf <= 51):
            raise self.fail(self.key_line("crf", None), "", f"crf {crf!r} is not an integer from 0 to 51",
                            "write e.g. crf = 18 (lower is better quality)")
        if preset is not None and preset not in ENCODER_PRESETS:
            raise self.fail(self.key_line("encoder_preset", None), "", f"encoder_preset {preset!r} is not an x264/x265 preset",
                            f"choose one of {', '.join(ENCODER_PRESETS)}")
        return codec, crf, preset  # type: ignore[return-value]

    def timecode_fps(self, value: object) -> Fraction | None:
        if value is None:
            return None
        try:
            rate = _as_fraction(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, ZeroDivisionError):
            rate = None
        if rate is None or rate <= 0 or isinstance(value, bool):
            raise self.fail(self.key_line("timecode_fps", None), "", f"timecode_fps {value!r} is not a frame rate",
                            "write e.g. timecode_fps = 24 or timecode_fps = \"24000/1001\"")
        return rate

    def scenes(self, value: object) -> SceneSettings:
        line = self.header_line("[scenes]")
        if not isinstance(value, dict):
            raise self.fail(self.key_line("scenes", None), "", "scenes must be a table", "write a [scenes] section")
        self.unknown(value, SCENE_KEYS, line, "", "[scenes] table")
        detect = value.get("detect", False)
        threshold = value.get("threshold", DEFAULT_SCENE_THRESHOLD)
        min_length = value.get("min_length", DEFAULT_SCENE_MIN_LENGTH)
        if not isinstance(detect, bool):
            raise self.fail(self.key_line("detect", line), "", f"[scenes] detect {detect!r} is not true or false",
                            "write detect = true or detect = false")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 256:
            raise self.fail(self.key_line("threshold", line), "", f"[scenes] threshold {threshold!r} is out of range",
                            f"give a number between 0 and 255 (mean luma change at a cut; default {DEFAULT_SCENE_THRESHOLD})")
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
            raise self.fail(self.key_line("min_length", line), "", f"[scenes] min_length {min_length!r} is not a frame count",
                            f"give the shortest shot in frames, at least 1 (default {DEFAULT_SCENE_MIN_LENGTH})")
        return SceneSettings(detect, float(threshold), min_length)

    def temporal(self, value: object) -> Mapping[str, float | bool]:
        from ..temporal import TemporalSettings  # noqa: PLC0415 - the known keys are its fields

        line = self.header_line("[temporal]")
        if not isinstance(value, dict):
            raise self.fail(self.key_line("temporal", None), "", "temporal must be a table", "write a [temporal] section")
        known = ("enabled", *(f.name for f in dataclasses.fields(TemporalSettings)))
        self.unknown(value, known, line, "", "[temporal] table")
        for key, item in value.items():
            if key == "enabled":
                if not isinstance(item, bool):
                    raise self.fail(self.key_line(key, line), "", f"[temporal] enabled {item!r} is not true or false",
                                    "write enabled = true or enabled = false")
            elif isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item) or item < 0:
                raise self.fail(self.key_line(key, line), "", f"[temporal] {key} {item!r} is not a non-negative number",
                                f"write e.g. {key} = {getattr(TemporalSettings(), key) or 1.0}")
        return MappingProxyType({k: (v if isinstance(v, bool) else float(v)) for k, v in value.items()})

    def shots(self, value: object) -> tuple[Shot, ...]:
        if value is None:
            raise self.fail(None, "", "there is no [[shot]]", "add one [[shot]] with start = 0 and reference = \"image.png\"")
        if not isinstance(value, list):
            raise self.fail(self.key_line("shot", None), "", "shot must be a list of tables",
                            "write each shot as a [[shot]] section")
        return tuple(self.shot(i, item) for i, item in enumerate(value))

    def shot(self, position: int, item: object) -> Shot:
        line = self.header_line("[[shot]]", position)
        index = position + 1
        name = item.get("name", "") if isinstance(item, dict) else ""
        where = f", shot {index}" + (f' ("{name}")' if isinstance(name, str) and name else "")
        if not isinstance(item, dict):
            raise self.fail(line, where, "a shot must be a table", "write it as a [[shot]] section")
        self.unknown(item, SHOT_KEYS, line, where, "shot")
        if not isinstance(name, str):
            raise self.fail(self.key_line("name", line), where, f"name {name!r} is not a string", "write name = \"opening\"")
        if "start" not in item:
            raise self.fail(line, where, "the shot has no start", "add start = FRAME or start = \"HH:MM:SS:FF\"")
        start = self.position(item["start"], "start", line, where)
        end = self.position(item["end"], "end", line, where) if "end" in item else None
        reference = self.image(item.get("reference"), "reference", line, where)
        end_reference = self.image(item.get("end_reference"), "end_reference", line, where)
        if end_reference is not None and reference is None:
            raise self.fail(self.key_line("end_reference", line), where, "an end_reference needs a reference for the "
                            "shot's start", "add reference = \"image.png\" (the shot's first frame, painted)")
        return Shot(start, reference, end_reference, end, name, index, line)

    def position(self, value: object, key: str, line: int | None, where: str) -> Position:
        at = self.key_line(key, line) or line
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(at, where, f"{key} {value!r} is neither a frame number nor a timecode",
                            f"write {key} = 120 or {key} = \"00:00:05:00\"")
        if isinstance(value, int):
            if value < 0:
                raise self.fail(at, where, f"{key} {value} is negative", "frame numbers start at 0")
            return value
        text = value.strip()
        if text.isdigit():
            return int(text)
        if not is_timecode(text):
            raise self.fail(at, where, f"{key} {value!r} is not a timecode",
                            "write HH:MM:SS:FF (frames), HH:MM:SS.mmm (seconds) or a frame number")
        return Timecode(text)

    def image(self, value: object, key: str, line: int | None, where: str) -> Path | None:
        if value is None:
            return None
        at = self.key_line(key, line) or line
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, where, f"{key} {value!r} is not a file name", f"write {key} = \"refs/shot.png\"")
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = self.base / path
        path = Path(os.path.normpath(path))
        if not path.is_file():
            raise self.fail(at, where, f"{key} image {str(path)!r} does not exist",
                            "paint it and save it there, or fix the path (relative paths start at the preset's folder)")
        if not cv2.haveImageReader(str(path)):
            raise self.fail(at, where, f"{key} {str(path)!r} is not an image vidcolor can read",
                            "save the reference as PNG, TIFF or JPEG")
        return path


def _as_fraction(value: Fraction | float | int | str | None) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        return Fraction(value).limit_denominator(1001)
    return Fraction(value)


def _span(frame_count: int, rate: Fraction | None) -> str:
    if rate is None or rate <= 0:
        return ""
    from .timecodes import timecode  # noqa: PLC0415

    return f", {timecode(0.0)}..{timecode(float((frame_count - 1) / rate))}"


# -- writing presets (`vidcolor scenes`, `vidcolor refs suggest`) ---------------------------------


@dataclass(frozen=True)
class ShotLines:
    """One ``[[shot]]`` of a written preset: its start frame and reference, each with a note after it."""

    name: str
    start: int
    reference: str
    start_note: str
    reference_note: str
    comments: tuple[str, ...] = ()


def check_new_preset(path: str | os.PathLike[str], *, overwrite: bool, option: str) -> Path:
    """Refuse, before any work, a preset that does not end in .toml or that would replace a file
    (it may hold the colorist's edits) without ``--overwrite``; ``option`` names the flag to fix."""
    preset = Path(path)
    if preset.suffix.lower() != ".toml":
        raise OutputError(f"preset {str(preset)!r} should end in .toml: give e.g. {option} film.toml")
    if preset.exists() and not overwrite:
        raise OutputError(f"preset {str(preset)!r} already exists (it may hold your edits): pass --overwrite to replace "
                          "it, or choose another name")
    return preset


def preset_reference(image: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """``image`` as a preset in ``folder`` names it: relative when possible (presets move with their
    references), symbolic links kept as given."""
    absolute = os.path.abspath(image)
    try:
        return Path(os.path.relpath(absolute, os.path.abspath(folder))).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(absolute).as_posix()


def write_preset_file(path: str | os.PathLike[str], header: Sequence[str], shots: Sequence[ShotLines],
                      settings: Sequence[str] = ()) -> Path:
    """Write a preset atomically: the comment ``header``, the format version, ``settings`` lines,
    then one ``[[shot]]`` per shot."""
    lines = [*header, "", f"version = {FORMAT_VERSION}", *settings, ""]
    for shot in shots:
        lines += ["[[shot]]", f"name = {json.dumps(shot.name)}", f"start = {shot.start:<10d}# {shot.start_note}",
                  f"reference = {json.dumps(shot.reference)}    # {shot.reference_note}", *shot.comments, ""]
    write_text_or_fail(path, "\n".join(lines), "preset", "choose another location")
    return Path(path)
