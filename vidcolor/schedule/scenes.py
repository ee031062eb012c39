"""Shot boundaries with PySceneDetect, and preset skeletons for the colorist to paint.

Detection uses PySceneDetect's ``ContentDetector`` (luma only: the input is black and white),
fed with frames from vidcolor's own reader, so image sequences, rotation, high bit depths and
damaged packets behave exactly as when colorizing, and frame numbers mean the same thing.

:func:`write_scene_preset` turns the shots into a preset skeleton plus one gray PNG keyframe per
shot. The colorist paints each PNG in any editor, saves it under the same name, and the preset
then colours the film shot by shot. Existing keyframe images are never overwritten, so running
it again cannot destroy painted work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..color import luma_to_gray_level
from ..errors import InputError, OutputError
from .presets import (DEFAULT_SCENE_MIN_LENGTH, DEFAULT_SCENE_THRESHOLD, ShotLines, check_new_preset, preset_reference,
                      write_preset_file)
from ..io.durable import write_png_or_fail
from ..io.reader import Frame, VideoInfo, VideoReader, probe
from .timecodes import scenedetect_module, timecode

#: Frames are shrunk to about this width before detection, as PySceneDetect's own auto-downscale does.
DETECTION_WIDTH = 256
#: A shot's keyframe is the sharpest frame among its first quarter, at most this many frames in.
KEYFRAME_WINDOW = 48


@dataclass(frozen=True)
class SceneShot:
    """One detected shot: frames ``start``..``end`` (inclusive) and the frame chosen as its keyframe."""

    start: int
    end: int
    keyframe: int
    image: Path | None = None
    kept_existing: bool = False


@dataclass(frozen=True)
class ScenePreset:
    """What :func:`write_scene_preset` wrote."""

    preset: Path
    shots: tuple[SceneShot, ...]
    fps: Fraction


class CutDetector:
    """PySceneDetect's ``ContentDetector`` on luma, fed frame by frame, over both of its APIs.

    0.6 (what vidcolor installs) counts frames as ``int``; 0.7 (which requires opencv-python, so
    it is only present when installed by hand with ``--no-deps``) passes ``FrameTimecode``s in
    and out. The detection itself is the same code in both; callers see frame numbers only.
    """

    def __init__(self, threshold: float, min_length: int, fps: Fraction) -> None:
        module = scenedetect_module("scene detection (no-reference mode, --report, --detect-scenes, `vidcolor scenes`) needs")
        self._detector = module.ContentDetector(threshold=threshold, min_scene_len=min_length, luma_only=True)
        version = tuple(int(part) for part in module.__version__.split(".")[:2] if part.isdigit())
        self._timecode = None if version < (0, 7) else module.FrameTimecode
        self._fps = fps
        self._last = 0

    def _position(self, index: int) -> object:
        return index if self._timecode is None else self._timecode(index, fps=self._fps)

    @staticmethod
    def _frames(cuts: list[object]) -> list[int]:
        return [int(getattr(cut, "frame_num", cut)) for cut in cuts]

    def process(self, index: int, image: np.ndarray) -> list[int]:
        """Cuts found once frame ``index`` (BGR, 8-bit) is seen; frames must come in order."""
        self._last = index
        return self._frames(self._detector.process_frame(self._position(index), image))

    def finish(self) -> list[int]:
        """Cuts still held back (a merged flash) after the last frame."""
        return self._frames(self._detector.post_process(self._position(self._last)))


def _small_gray(luma: np.ndarray, info: VideoInfo) -> np.ndarray:
    gray = np.clip(luma_to_gray_level(luma, info.luma_format) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    factor = max(1, int(round(gray.shape[1] / DETECTION_WIDTH)))
    if factor > 1:
        gray = cv2.resize(gray, (gray.shape[1] // factor, gray.shape[0] // factor), interpolation=cv2.INTER_AREA)
    return gray


def _scan(info: VideoInfo, threshold: float, min_length: int, on_frame: Callable[[int], None] | None,
          on_decoded: Callable[[Frame, list[int]], None] | None = None) -> tuple[list[int], list[float], int]:
    """One decoding pass: cuts, a sharpness score per frame, and the number of frames decoded.

    ``on_decoded(frame, cuts)`` sees every decoded frame with the cuts reported once it was seen
    (PySceneDetect may report a cut a few frames late), so a caller can keep frames it will need
    without decoding them again."""
    if not 0 < threshold < 256:
        raise InputError(f"scene threshold {threshold} is out of range: give a mean luma change between 0 and 255 (default 27)")
    if min_length < 1:
        raise InputError(f"minimum shot length {min_length} must be at least 1 frame")
    detector = CutDetector(threshold, min_length, info.fps if info.fps > 0 else Fraction(24))
    cuts: list[int] = []
    sharpness: list[float] = []
    with VideoReader(info) as reader:
        for frame in reader:
            small = _small_gray(frame.luma, info)
            sharpness.append(float(cv2.Laplacian(small, cv2.CV_32F).var()))
            found = detector.process(frame.index, cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
            cuts += found
            if on_decoded is not None:
                on_decoded(frame, found)
            if on_frame is not None:
                on_frame(frame.index)
    cuts += detector.finish()
    count = len(sharpness)
    return sorted({c for c in cuts if 0 < c < count}), sharpness, count


def detect_cuts(path: str | os.PathLike[str], *, threshold: float = DEFAULT_SCENE_THRESHOLD,
                min_length: int = DEFAULT_SCENE_MIN_LENGTH, info: VideoInfo | None = None,
                on_frame: Callable[[int], None] | None = None,
                on_decoded: Callable[[Frame, list[int]], None] | None = None) -> list[int]:
    """First frames of every shot after the first (frame numbers as vidcolor's reader counts them).

    ``threshold`` is the mean luma change (0..255) between frames that counts as a cut;
    ``min_length`` the shortest shot in frames (PySceneDetect merges flashes shorter than that).
    ``on_decoded`` sees each decoded frame and the cuts reported with it (see :func:`_scan`).
    """
    info = info or probe(path)
    cuts, _, _ = _scan(info, threshold, min_length, on_frame, on_decoded)
    return cuts


def shots_from_cuts(cuts: list[int], frame_count: int, sharpness: list[float] | None = None) -> list[SceneShot]:
    """Shots between cuts, each with its keyframe: the sharpest frame early in the shot (past a
    possible dissolve), or its first frame when no sharpness is given."""
    bounds = [0, *[c for c in sorted(set(cuts)) if 0 < c < frame_count], frame_count]
    shots = []
    for start, stop in zip(bounds, bounds[1:]):
        length = stop - start
        keyframe = start
        if sharpness is not None and length > 1:
            first = start + min(2, length // 8)
            last = start + max(1, min(length // 4, KEYFRAME_WINDOW))
            window = sharpness[first:last]
            if window:
                keyframe = first + int(np.argmax(window))
        shots.append(SceneShot(start, stop - 1, keyframe))
    return shots


def write_scene_preset(input_path: str | os.PathLike[str], preset_path: str | os.PathLike[str],
                       keyframes_dir: str | os.PathLike[str], *, threshold: float = DEFAULT_SCENE_THRESHOLD,
                       min_length: int = DEFAULT_SCENE_MIN_LENGTH, overwrite: bool = False,
                       on_frame: Callable[[int], None] | None = None) -> ScenePreset:
    """Detect shots, write one gray keyframe PNG per shot into ``keyframes_dir`` and a preset
    skeleton pointing at them. Existing PNGs (possibly painted already) are kept as they are."""
    input_text = os.fspath(input_path)
    preset = Path(preset_path)
    folder = Path(keyframes_dir)
    check_new_preset(preset, overwrite=overwrite, option="-o")
    info = probe(input_text)
    cuts, sharpness, count = _scan(info, threshold, min_length, on_frame)
    if count == 0:
        raise InputError(f"input {input_text!r} has no decodable frame: nothing to detect shots in")
    shots = shots_from_cuts(cuts, count, sharpness)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"keyframe folder {str(folder)!r} cannot be created ({exc.strerror}): choose another folder") from exc
    stem = film_stem(input_text)
    wanted = {shot.keyframe: folder / f"{stem}_shot{n:03d}_f{shot.keyframe:06d}.png" for n, shot in enumerate(shots, 1)}
    written: dict[int, bool] = {}
    with VideoReader(info) as reader:
        for frame in reader:
            target = wanted.get(frame.index)
            if target is None:
                if frame.index > max(wanted):
                    break
                continue
            if target.exists():
                written[frame.index] = True
                continue
            gray = np.clip(luma_to_gray_level(frame.luma, info.luma_format) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            # three equal channels: editors open it in RGB mode, ready to paint in colour
            write_png_or_fail(target, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
            written[frame.index] = False
    shots = [SceneShot(s.start, s.end, s.keyframe, wanted[s.keyframe], written.get(s.keyframe, False)) for s in shots]
    missing = [s for s in shots if s.image is not None and not s.image.exists()]
    if missing:
        raise InputError(f"input {input_text!r}: frame {missing[0].keyframe} could not be decoded again for its keyframe "
                         "image: the file may be damaged")
    _write_skeleton(input_text, preset, shots, info, threshold, count)
    return ScenePreset(preset, tuple(shots), info.fps)


def film_stem(input_path: str | os.PathLike[str]) -> str:
    """The film's name in keyframe image names (``<stem>_shot001_f000000.png``), so keyframes of
    several films can share one folder: a file's stem, a frame folder's name, and for a pattern
    (``scans/%06d.tif``) its folder's name, since every pattern of one numbering looks alike."""
    text = os.fspath(input_path)
    item = Path(os.path.abspath(text.rstrip("/\\") or text))
    if "%" in item.name:
        item = item.parent
    stem = item.name if os.path.isdir(item) else item.stem
    return stem.replace("%", "") or "film"


def _write_skeleton(input_text: str, preset: Path, shots: list[SceneShot], info: VideoInfo, threshold: float,
                    count: int) -> None:
    base = preset.resolve().parent
    fps = info.fps if info.fps > 0 else Fraction(24)
    header = [
        f"# vidcolor preset for {os.path.basename(input_text.rstrip('/'))}, written by `vidcolor scenes`:",
        f"# {len(shots)} shot(s) in {count} frames at {float(fps):g} fps (PySceneDetect content detector, "
        f"threshold {threshold:g}).",
        "# Paint each keyframe image in colour in any editor and save it under the same name; then run",
        f"#   vidcolor colorize {input_text} -o OUTPUT --preset {preset}",
        "# Shot starts may also be timecodes (\"HH:MM:SS:FF\" or \"HH:MM:SS.mmm\"); add end_reference = \"...\"",
        "# for a shot coloured from both ends. The format is described in presets/README.md.",
    ]
    lines = []
    for number, shot in enumerate(shots, 1):
        assert shot.image is not None
        note = "kept: it existed already" if shot.kept_existing else "gray: paint me"
        lines.append(ShotLines(f"shot {number:03d}", shot.start, preset_reference(shot.image.resolve(), base),
                               f"{timecode(shot.start / fps)}, last frame {shot.end} ({timecode(shot.end / fps)})",
                               f"frame {shot.keyframe}, {note}"))
    write_preset_file(preset, header, lines, settings=("# model = \"default\"", "# size = 360"))


