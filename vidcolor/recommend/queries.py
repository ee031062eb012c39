"""Queries: an image, or the shots of a video, each as the lightness of a few of its frames."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..color import luma_to_lightness, rgb_to_gray_lightness, to_unit_rgb
from ..errors import InputError, ReferenceImageError
from ..references import read_rgb
from .library import LIBRARY_EXTENSIONS

if TYPE_CHECKING:
    from ..io.reader import VideoInfo

logger = logging.getLogger(__name__)

#: Frames per shot a video is queried with (spread evenly; the scores are averaged over them).
DEFAULT_FRAMES_PER_SHOT = 3


@dataclass(frozen=True)
class ShotQuery:
    """One shot of the input: frames ``start``..``end`` (inclusive), queried with ``frames``
    (their lightness in ``lightness``, same order)."""

    index: int
    start: int
    end: int
    frames: tuple[int, ...]
    lightness: tuple[np.ndarray, ...] = field(repr=False)


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """A single still image (queried as one shot) rather than a video or a frame folder."""
    return Path(path).is_file() and Path(path).suffix.lower() in LIBRARY_EXTENSIONS


def image_query(path: str | os.PathLike[str]) -> ShotQuery:
    """A still image as a one-shot query, converted to the lightness a black-and-white frame shows."""
    rgb = read_rgb(path)
    if rgb is None:
        raise ReferenceImageError(f"query image {os.fspath(path)!r} cannot be read as an image: use a PNG, TIFF or JPEG file")
    return ShotQuery(1, 0, 0, (0,), (rgb_to_gray_lightness(to_unit_rgb(rgb)),))


def shot_bounds(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                on_frame: Callable[[int], None] | None = None) -> tuple[list[tuple[int, int]], VideoInfo]:
    """(start, end) of every shot of a video, from a preset's shot starts or from scene detection.

    Returns the bounds and the :class:`vidcolor.io.reader.VideoInfo` of the input.
    """
    from ..io.reader import count_frames, probe  # noqa: PLC0415

    info = probe(input_path)
    frame_count = info.frame_count or count_frames(info)
    if frame_count < 1:
        raise InputError(f"input {os.fspath(input_path)!r} has no decodable frame: nothing to recommend references for")
    if shots_preset is not None:
        from ..schedule.presets import load_preset  # noqa: PLC0415

        preset = load_preset(shots_preset, fps=info.fps, frame_count=frame_count)
        shots = preset.resolve(info.fps, frame_count)
        starts = [int(s.start) for s in shots]  # type: ignore[arg-type]
        ends = [int(s.end) if s.end is not None else (starts[i + 1] - 1 if i + 1 < len(starts) else frame_count - 1)  # type: ignore[arg-type]
                for i, s in enumerate(shots)]
        if starts and starts[0] > 0:  # frames before the first shot take its reference
            starts[0] = 0
        return list(zip(starts, ends)), info
    from ..schedule.scenes import detect_cuts, shots_from_cuts  # noqa: PLC0415

    cuts = detect_cuts(input_path, info=info, on_frame=on_frame)
    return [(s.start, s.end) for s in shots_from_cuts(cuts, frame_count)], info


def query_frames(start: int, end: int, count: int) -> tuple[int, ...]:
    """``count`` frames spread evenly inside ``start..end`` (one: the middle; three: the quartiles)."""
    return tuple(sorted({start + (end - start) * k // (count + 1) for k in range(1, count + 1)}))


def video_queries(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                  frames_per_shot: int = DEFAULT_FRAMES_PER_SHOT,
                  on_frame: Callable[[int], None] | None = None) -> list[ShotQuery]:
    """One query per shot, from ``frames_per_shot`` frames spread over it (as lightness).

    A shot that pans or changes is better described by several frames than by one; with 1, the
    middle frame is used. When a container overstates its frame count, frames beyond its real end
    are dropped, and a shot left with none is queried with its last decoded frame.
    """
    from ..io.reader import VideoReader  # noqa: PLC0415

    if frames_per_shot < 1:
        raise InputError(f"frames per shot {frames_per_shot}: query each shot with at least 1 frame")
    bounds, info = shot_bounds(input_path, shots_preset=shots_preset, on_frame=on_frame)
    wanted = [query_frames(start, end, frames_per_shot) for start, end in bounds]
    found: dict[int, dict[int, np.ndarray]] = {n: {} for n in range(len(bounds))}
    fallback: dict[int, tuple[int, np.ndarray]] = {}
    last_wanted = wanted[-1][-1]
    shot = 0
    with VideoReader(info, start=bounds[0][0]) as reader:
        for frame in reader:
            while shot < len(bounds) and frame.index > bounds[shot][1]:
                shot += 1
            if shot >= len(bounds):
                break
            if frame.index < bounds[shot][0]:
                continue
            lightness = luma_to_lightness(frame.luma, info.luma_format)
            fallback[shot] = (frame.index, lightness)
            if frame.index in wanted[shot]:
                found[shot][frame.index] = lightness
            if shot == len(bounds) - 1 and frame.index >= last_wanted:
                break
    queries = []
    for n, (start, end) in enumerate(bounds):
        frames = found[n]
        if not frames and n in fallback:
            frames = dict([fallback[n]])
        if not frames:
            logger.warning("shot %d (frames %d-%d) has no decodable frame: skipped", n + 1, start, end)
            continue
        order = sorted(frames)
        queries.append(ShotQuery(n + 1, start, end, tuple(order), tuple(frames[i] for i in order)))
    if not queries:
        raise InputError(f"input {os.fspath(input_path)!r}: no frame of any shot could be decoded")
    return queries


def input_queries(input_path: str | os.PathLike[str], *, shots_preset: str | os.PathLike[str] | None = None,
                  frames_per_shot: int = DEFAULT_FRAMES_PER_SHOT,
                  on_frame: Callable[[int], None] | None = None) -> list[ShotQuery]:
    """Queries for an image (one shot) or a video / frame folder (one per shot)."""
    text = os.fspath(input_path)
    if not os.path.exists(text) and "%" not in text:
        raise InputError(f"input {text!r} does not exist: give a black-and-white video, frame folder or image")
    if is_image_file(text):
        if shots_preset is not None:
            raise InputError(f"--shots needs a video, but {text!r} is a single image: drop --shots")
        return [image_query(text)]
    return video_queries(text, shots_preset=shots_preset, frames_per_shot=frames_per_shot, on_frame=on_frame)
