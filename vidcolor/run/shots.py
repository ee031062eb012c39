"""No-reference mode's shots: the frame of each shot the automatic model colours
(:func:`automatic_keyframe_of`), the reference it makes of it (:func:`automatic_reference`), and
scene detection's one decoding pass that finds the cuts and keeps those frames on the way
(:func:`scan_shots`, :class:`ShotKeyframes`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..color import lab_with_luma, lightness_to_gray, luma_to_lightness
from ..colorizers.base import Colorizer
from ..io.reader import Frame, VideoInfo
from ..references import Reference
from .sizes import working_lightness


#: A no-reference shot's keyframe is its middle frame for shots up to this long, and beyond that
#: the middle rounded to a grid of at most this many frames across the shot, so that
#: :class:`ShotKeyframes` can keep every candidate while scene detection decodes the film.
KEYFRAME_GRID = 128


def _grid_step(length: int) -> int:
    step = 1
    while length > KEYFRAME_GRID * step:
        step *= 2
    return step


def automatic_keyframe_of(start: int, end: int) -> int:
    """The frame of the shot ``start``..``end`` (inclusive) that the automatic model colours: the
    middle one, rounded to the shot's keyframe grid (exact for shots of up to KEYFRAME_GRID frames,
    within 1/256 of the shot's length beyond)."""
    step = _grid_step(end - start + 1)
    return start + ((start + end) // 2 - start + step // 2) // step * step


class ShotKeyframes:
    """No-reference keyframes kept during scene detection's decoding pass.

    No-reference mode colours each shot from its middle frame, which the colour pass needs before
    the shot's first frame: fetched on demand, that costs a seek and up to a GOP of decoding per
    shot (about 1.3-1.5 passes of a film in all). Scene detection already decodes every frame, so
    this keeps, for the shot being scanned, the frames on its keyframe grid (at most
    2 x KEYFRAME_GRID working-size frames in memory), and once the shot ends, its keyframe alone,
    spilled to a temporary folder so memory stays flat however many shots a film has. Feed it as
    :func:`vidcolor.schedule.scenes.detect_cuts`'s ``on_decoded``, then call :meth:`finish`.

    A frame it did not keep (a cut reported late, a schedule with other shots) is simply absent:
    :class:`FrameColorizer` then decodes it as before, so the output never depends on it.
    """

    def __init__(self, info: VideoInfo, work: tuple[int, int]) -> None:
        import tempfile  # noqa: PLC0415

        self.info, self.work = info, work
        self._start, self._step, self._count = 0, 1, 0
        self._grid: dict[int, np.ndarray] = {}
        self._folder: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(prefix="vidcolor-keyframes-")
        self._kept: dict[int, str] = {}

    def __call__(self, frame: Frame, cuts: Sequence[int]) -> None:
        """Observe the next decoded frame and the cuts reported with it."""
        self._cut(cuts)
        offset = frame.index - self._start
        self._count = frame.index + 1
        step = _grid_step(offset + 1)
        if step != self._step:
            self._grid = {i: v for i, v in self._grid.items() if (i - self._start) % step == 0}
            self._step = step
        if offset % step == 0:
            self._grid[frame.index] = working_lightness(luma_to_lightness(frame.luma, self.info.luma_format), self.work)

    def finish(self, cuts: Sequence[int] = ()) -> ShotKeyframes:
        """Close the last shot once the scan has ended (``cuts``: the scan's final cut list)."""
        self._cut([c for c in cuts if c > self._start])
        if self._count > self._start:
            self._keep(automatic_keyframe_of(self._start, self._count - 1))
        self._grid = {}
        return self

    def get(self, index: int, work: tuple[int, int]) -> np.ndarray | None:
        """Frame ``index``'s working lightness at ``work``, if it was kept at that size."""
        path = self._kept.get(index)
        return np.load(path) if path is not None and work == self.work else None

    def __len__(self) -> int:
        return len(self._kept)

    def _cut(self, cuts: Sequence[int]) -> None:
        for cut in sorted(cuts):
            if cut <= self._start:
                continue
            self._keep(automatic_keyframe_of(self._start, cut - 1))
            # frames past a cut reported late start the next shot's grid (step 1 holds them all)
            self._grid = {i: v for i, v in self._grid.items() if i >= cut}
            self._start, self._step = cut, 1

    def _keep(self, index: int) -> None:
        lightness = self._grid.get(index)
        if lightness is not None and self._folder is not None:
            path = os.path.join(self._folder.name, f"{index:09d}.npy")
            np.save(path, lightness)
            self._kept[index] = path

    def __getstate__(self) -> dict[str, object]:
        # another process (a Ray worker) cannot see this folder: it decodes keyframes itself
        return {**self.__dict__, "_folder": None, "_kept": {}, "_grid": {}}


def scan_shots(info: VideoInfo, work: tuple[int, int] | None, *, on_frame: Callable[[int], None] | None = None,
               threshold: float | None = None, min_length: int | None = None) -> tuple[list[int], ShotKeyframes | None]:
    """Scene cuts of ``info`` in one decoding pass (``threshold``, ``min_length``: as
    :func:`vidcolor.schedule.scenes.detect_cuts`, None: its defaults), and, for no-reference mode
    (``work``: the working size), every shot's automatic keyframe kept on the way (:class:`ShotKeyframes`)."""
    from ..schedule.scenes import detect_cuts  # noqa: PLC0415 - PySceneDetect only when detecting

    kept = ShotKeyframes(info, work) if work is not None else None
    limits = {k: v for k, v in (("threshold", threshold), ("min_length", min_length)) if v is not None}
    cuts = detect_cuts(info.path, info=info, on_frame=on_frame, on_decoded=kept, **limits)
    return cuts, kept.finish(cuts) if kept is not None else None


def automatic_reference(auto: Colorizer, lightness: np.ndarray, key: str) -> Reference:
    """A reference made by colorizing ``lightness`` (working-size Lab L) with the automatic model
    ``auto``: the keyframe of a shot that has no reference (no-reference mode)."""
    auto.reset()
    predicted = auto.step(lightness, None)
    rgb = lab_with_luma(lightness_to_gray(lightness), predicted.ab)
    return Reference.from_array(np.clip(rgb, 0.0, 1.0).astype(np.float32), key=key)
