"""No-reference mode's shots: the frames of each shot the automatic model colours
(:func:`automatic_candidates`, around the middle one :func:`automatic_keyframe_of`), the reference
made of the middle one unless others are clearly surer, then the surer one nearest the middle
(:func:`most_confident_reference`), and scene detection's one
decoding pass that finds the cuts and keeps those frames on the way (:func:`scan_shots`,
:class:`ShotKeyframes`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

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


#: How many frames of a shot, evenly spaced, the automatic model colours in no-reference mode (with
#: the middle one); the middle one, or one clearly surer, becomes the shot's reference (:func:`most_confident_reference`).
KEYFRAME_CANDIDATES = 16
#: Candidates within this mean confidence of the surest count as equally sure, and of those the one
#: nearest the shot's middle frame is chosen: so the middle stays unless another beats it by more.
#: A near-tie must not hang on float noise (1e-7 between 1 and 2 torch threads) or on small decode
#: differences (+-0.2 L of random noise on every pixel moves it by up to 1.3e-3), while a shot's
#: candidates spread 0.015-0.097 and the chosen frames beat the middle by 0.0023-0.035 on the bench
#: and validation clips (autocolor.md, seventh and eighth sessions).
CONFIDENCE_MARGIN = 1e-3


def _on_grid(start: int, end: int, frame: int) -> int:
    """``frame`` rounded to the shot's keyframe grid (the frames :class:`ShotKeyframes` can keep)."""
    step = _grid_step(end - start + 1)
    return min(start + (frame - start + step // 2) // step * step, start + (end - start) // step * step)


def automatic_keyframe_of(start: int, end: int) -> int:
    """The middle frame of the shot ``start``..``end`` (inclusive), rounded to the shot's keyframe
    grid (exact for shots of up to KEYFRAME_GRID frames, within 1/256 of the shot's length beyond)."""
    return _on_grid(start, end, (start + end) // 2)


def automatic_candidates(start: int, end: int) -> list[int]:
    """The frames of the shot ``start``..``end`` the automatic model colours, in order: the middle
    one and KEYFRAME_CANDIDATES evenly spaced ones (every frame of a shorter shot), on the grid."""
    length = end - start + 1
    spaced = (start + int((i + 0.5) * length / KEYFRAME_CANDIDATES) for i in range(KEYFRAME_CANDIDATES))
    return sorted({automatic_keyframe_of(start, end), *(_on_grid(start, end, f) for f in spaced)})


class ShotKeyframes:
    """No-reference keyframes kept during scene detection's decoding pass.

    No-reference mode colours each shot from one of its candidate frames, which the colour pass
    needs before the shot's first frame: fetched on demand, that costs a seek and up to a GOP of
    decoding per frame. Scene detection already decodes every frame, so this keeps, for the shot
    being scanned, the frames on its keyframe grid (at most 2 x KEYFRAME_GRID working-size frames
    in memory), and once the shot ends, its candidates alone (:func:`automatic_candidates`),
    spilled to a temporary folder so memory stays flat however many shots a film has. Feed it as
    :func:`vidcolor.schedule.scenes.detect_cuts`'s ``on_decoded``, then call :meth:`finish`.

    A frame it did not keep (a cut reported late, a schedule with other shots) is simply absent:
    :class:`FrameColorizer` then decodes it as before, so the output never depends on it.

    Given the automatic model ``auto``, it also chooses each shot's frame as soon as the shot ends
    (:func:`most_confident_frame`, as :class:`FrameColorizer` would) and keeps that frame alone, so the
    temporary folder holds one frame per shot, not every candidate (:meth:`chosen`).
    """

    def __init__(self, info: VideoInfo, work: tuple[int, int], auto: Colorizer | None = None) -> None:
        import tempfile  # noqa: PLC0415

        self.info, self.work, self.auto = info, work, auto
        self._chosen: dict[int, tuple[int, int]] = {}  # shot start -> (shot end, chosen frame)
        self._start, self._step, self._count = 0, 1, 0
        self._grid: dict[int, np.ndarray] = {}
        self._folder: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(prefix="vidcolor-keyframes-")
        self._kept: dict[int, str] = {}
        self._carried: dict[int, np.ndarray] = {}  # frames held in memory by a copy sent elsewhere (:meth:`carrying`)

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
            self._close(self._start, self._count - 1)
        self._grid = {}
        return self

    def get(self, index: int, work: tuple[int, int]) -> np.ndarray | None:
        """Frame ``index``'s working lightness at ``work``, if it was kept at that size."""
        if work != self.work:
            return None
        path = self._kept.get(index)
        return np.load(path) if path is not None else self._carried.get(index)

    def chosen(self, start: int, end: int | None, work: tuple[int, int]) -> int | None:
        """The frame chosen during the scan for the shot ``start``..``end`` at ``work``, if any.

        ``end`` None (a film whose container does not say how many frames it has) matches the scan's
        last shot, which the scan followed to the film's real end."""
        shot = self._chosen.get(start)
        if shot is None or work != self.work:
            return None
        return shot[1] if shot[0] == (end if end is not None else self._count - 1) else None

    def carrying(self, first: int, stop: int | None) -> ShotKeyframes:
        """A copy for another process (a Ray worker) colouring frames ``first``..``stop - 1``: the
        frames chosen for the shots those frames lie in travel with it in memory, since that process
        cannot read this one's temporary folder and would otherwise decode them again."""
        copy = ShotKeyframes.__new__(ShotKeyframes)
        copy.__dict__.update(self.__getstate__())
        last = stop - 1 if stop is not None else self._count
        copy._carried = {frame: lightness for start, (end, frame) in self._chosen.items() if start <= last and end >= first
                         and (lightness := self.get(frame, self.work)) is not None}
        return copy

    def __len__(self) -> int:
        return len(self._kept)

    def _cut(self, cuts: Sequence[int]) -> None:
        for cut in sorted(cuts):
            if cut <= self._start:
                continue
            self._close(self._start, cut - 1)
            # frames past a cut reported late start the next shot's grid (step 1 holds them all)
            self._grid = {i: v for i, v in self._grid.items() if i >= cut}
            self._start, self._step = cut, 1

    def _close(self, start: int, end: int) -> None:
        candidates = automatic_candidates(start, end)
        if self.auto is not None and all(c in self._grid for c in candidates):
            frame = most_confident_frame(self.auto, [(c, self._grid[c]) for c in candidates],
                                         automatic_keyframe_of(start, end))[0]
            self._chosen[start] = (end, frame)
            candidates = [frame]
        self._keep(candidates)

    def _keep(self, indices: Sequence[int]) -> None:
        for index in indices:
            lightness = self._grid.get(index)
            if lightness is not None and self._folder is not None:
                path = os.path.join(self._folder.name, f"{index:09d}.npy")
                np.save(path, lightness)
                self._kept[index] = path

    def __getstate__(self) -> dict[str, object]:
        # another process (a Ray worker) cannot see this folder: it decodes the keyframes it is not
        # carrying (:meth:`carrying`) itself
        return {**self.__dict__, "_folder": None, "_kept": {}, "_grid": {}, "auto": None}


def scan_shots(info: VideoInfo, work: tuple[int, int] | None, *, on_frame: Callable[[int], None] | None = None,
               threshold: float | None = None, min_length: int | None = None, auto: Colorizer | None = None
               ) -> tuple[list[int], ShotKeyframes | None]:
    """Scene cuts of ``info`` in one decoding pass (``threshold``, ``min_length``: as
    :func:`vidcolor.schedule.scenes.detect_cuts`, None: its defaults), and, for no-reference mode
    (``work``: the working size), every shot's automatic keyframe candidates kept on the way, or with
    the automatic model ``auto`` the one it chooses (:class:`ShotKeyframes`)."""
    from ..schedule.scenes import detect_cuts  # noqa: PLC0415 - PySceneDetect only when detecting

    kept = ShotKeyframes(info, work, auto) if work is not None else None
    limits = {k: v for k, v in (("threshold", threshold), ("min_length", min_length)) if v is not None}
    cuts = detect_cuts(info.path, info=info, on_frame=on_frame, on_decoded=kept, **limits)
    return cuts, kept.finish(cuts) if kept is not None else None


def automatic_reference(auto: Colorizer, lightness: np.ndarray, key: str) -> Reference:
    """A reference made by colorizing ``lightness`` (working-size Lab L) with the automatic model
    ``auto``: the keyframe of a shot that has no reference (no-reference mode)."""
    auto.reset()
    return _reference_of(lightness, auto.step(lightness, None).ab, key)


def _reference_of(lightness: np.ndarray, ab: np.ndarray, key: str) -> Reference:
    rgb = lab_with_luma(lightness_to_gray(lightness), ab)
    return Reference.from_array(np.clip(rgb, 0.0, 1.0).astype(np.float32), key=key)


def most_confident_frame(auto: Colorizer, candidates: Iterable[tuple[int, np.ndarray]], middle: int | None = None
                         ) -> tuple[int, np.ndarray, np.ndarray]:
    """(frame, lightness, ab) of the candidate (frame, working-size Lab L) that ``auto`` colours with
    the highest mean confidence (the earliest of equals), but with the shot's ``middle`` frame given,
    every candidate within CONFIDENCE_MARGIN of the surest counts as equally sure and the one nearest
    ``middle`` is chosen (the earlier of two as near): a near-tie between any two candidates, not only
    with the middle, cannot flip the choice with the thread count or the decoder.
    See :func:`most_confident_reference`."""
    scored: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    for frame, lightness in candidates:
        auto.reset()
        predicted = auto.step(lightness, None)
        scored.append((float(np.mean(predicted.confidence)), frame, lightness, predicted.ab))
    if not scored:
        raise ValueError("most_confident_frame needs at least one candidate frame")
    surest = max(confidence for confidence, *_ in scored)
    if middle is None:
        best = min((s for s in scored if s[0] == surest), key=lambda s: s[1])
    else:
        sure = (s for s in scored if s[0] >= surest - CONFIDENCE_MARGIN)
        best = min(sure, key=lambda s: (abs(s[1] - middle), s[1]))
    return best[1], best[2], best[3]


def most_confident_reference(auto: Colorizer, candidates: Iterable[tuple[int, np.ndarray]], key: str,
                             middle: int | None = None) -> tuple[int, Reference]:
    """(frame, reference) of the candidate (frame, working-size Lab L) that ``auto`` colours with the
    highest mean confidence, or, of those within CONFIDENCE_MARGIN of it, the one nearest the shot's
    ``middle`` frame (:func:`most_confident_frame`); ``key`` + ``:frame`` keys the reference.

    The automatic model's errors on a shot are mostly the same in every frame (a shot-wide cast), so
    averaging frames cancels nothing, but its confidence tells its frames apart: on the validation
    clips, a frame's mean confidence and its ab error correlate at -0.91 to -0.96 on three of four
    clips (-0.24 on the fourth); see autocolor.md, fifth session."""
    frame, lightness, ab = most_confident_frame(auto, candidates, middle)
    return frame, _reference_of(lightness, ab, f"{key}:{frame}")
