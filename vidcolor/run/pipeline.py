"""The standalone pipeline: reader → reference schedule → colorizer → luma-guided chroma → writer.

Decoding and encoding run in their own threads (see :mod:`vidcolor.io.reader` and
:mod:`vidcolor.io.writer`), so the colorizer, the decoder and the encoder overlap. Progress is
reported through an ``on_frame`` callback: this module knows nothing of click, tqdm or
VapourSynth.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import logging
import os
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np

from ..color import (LumaFormat, chroma_planes, guided_upsample, lab_with_luma, lightness_to_gray, luma_to_gray_level,
                    luma_to_lightness, rgb_codes, shrink_area)
from ..colorizers.base import ColorizedFrame, Colorizer
from ..correspondence.detail import ReferenceDetail
from ..errors import InputError, OutputError
from ..io.reader import Frame, VideoInfo, VideoReader, count_frames, decoded_frame_count, probe
from ..schedule.timecodes import timecode
from .resume import Journal, RunSignature, input_identity, run_signature
from ..references import Reference
from ..schedule.keyframes import ReferenceSchedule
from ..io.writer import (OutputFrame, OutputSpec, VideoWriter, assemble_segments, check_encodable, check_output,
                     convert_luma)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline reports after each frame (progress, per-frame statistics)."""

    index: int
    time: float
    timecode: str
    confidence: float
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class RunSummary:
    """The outcome of :func:`colorize_video`."""

    input: str
    output: str
    frames: int
    seconds: float
    working_size: tuple[int, int]
    model: str
    results: list[FrameResult] = field(default_factory=list)
    #: Frames decoded for this run, by Ray workers too: one pass of the input is the goal, and
    #: positioned reads (chunk warm-ups, no-reference keyframes) show here when they cost more.
    decoded_frames: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def working_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the given short side, aspect kept (no cropping), even numbers."""
    if short_side is None or short_side >= min(width, height):
        scale = 1.0
    else:
        scale = short_side / min(width, height)
    w = max(2, int(round(width * scale / 2)) * 2)
    h = max(2, int(round(height * scale / 2)) * 2)
    return w, h


def parse_size(text: str | None) -> tuple[int | None, tuple[int, int] | None]:
    """``--size``: ``N`` (short side in pixels) or ``WxH``; None keeps the model's default."""
    if text is None:
        return None, None
    value = text.lower().strip()
    if "x" in value:
        w, _, h = value.partition("x")
        if not (w.isdigit() and h.isdigit()) or int(w) < 16 or int(h) < 16:
            raise ValueError(f"--size must be N or WxH with both at least 16, got {text!r}")
        return None, (int(w), int(h))
    if not value.isdigit() or int(value) < 16:
        raise ValueError(f"--size must be a short side in pixels (at least 16) or WxH, got {text!r}")
    return int(value), None


@dataclass(frozen=True)
class ChunkPlan:
    """Where the recurrence restarts inside long shots, so any frame can be recomputed alone.

    A shot (from one keyframe to the next) is cut into chunks of ``length`` frames counted from its
    keyframe. At a chunk start the colorizer restarts and first replays the previous ``warmup``
    frames (discarding their output), so colour carries across the boundary without a pop. Every
    frame then depends only on frames from ``warmup`` before its chunk: the VapourSynth filter can
    serve random requests, and an interrupted run can resume at a chunk, both giving exactly what
    one sequential pass gives. ``length=0`` makes a shot one chunk.
    """

    length: int = 240
    warmup: int = 8


class FrameColorizer:
    """Frame → chroma at the working resolution, with shot resets and chunk warm-ups.

    The single place that decides the recurrence, shared by the CLI pipeline and the VapourSynth
    filter, so both produce the same pixels.

    No-reference mode: when the schedule has no reference and an automatic colorizer ``auto`` is
    given, one frame of each segment (between resets: clip start, scene cuts), its middle one
    (:meth:`automatic_keyframe`), is colorized by ``auto`` and becomes that segment's reference,
    which the exemplar colorizer follows. The automatic model thus sees one frame per shot, so its
    frame-to-frame flicker never reaches the output. ``frame_at(index)`` (full-resolution
    lightness of any frame) fetches that keyframe, so every pass (the stream, a resumed chunk, a
    VapourSynth request) builds the same reference.

    ``detail`` (optional) adds the references' colour finer than the working size when the chroma
    is brought to the output size (:meth:`upsample`).
    """

    def __init__(self, colorizer: Colorizer, schedule: ReferenceSchedule, work: tuple[int, int],
                 plan: ChunkPlan = ChunkPlan(), *, auto: Colorizer | None = None,
                 frame_at: Callable[[int], np.ndarray] | None = None, detail: ReferenceDetail | None = None,
                 kept_keyframes: ShotKeyframes | None = None) -> None:
        self.colorizer = colorizer
        self.kept_keyframes = kept_keyframes
        self.detail = detail
        self.schedule = schedule
        self.work = work
        self.plan = plan
        self.auto = auto
        self.frame_at = frame_at
        self._auto_references: OrderedDict[int, Reference] = OrderedDict()
        self._history: deque[np.ndarray] = deque(maxlen=max(plan.warmup, 0))
        self._last_index: int | None = None
        self._keyframes = [k.frame for k in schedule.keyframes]
        self._end: Colorizer | None = None  # follows a two-keyframe shot's end reference

    def start_pass(self) -> None:
        """Begin a fresh pass over the input (a chunk re-coloured from its warm-up): the next frame
        restarts the recurrence whatever frame came last."""
        self._last_index = None

    def shot_start(self, index: int) -> int:
        """The keyframe that governs ``index`` (0 when it precedes the first keyframe)."""
        position = bisect.bisect_right(self._keyframes, index) - 1
        return self._keyframes[position] if position >= 0 else 0

    def chunk_start(self, index: int) -> int:
        start = self.shot_start(index)
        if self.plan.length <= 0:
            return start
        return start + (index - start) // self.plan.length * self.plan.length

    def chunk_bounds(self, index: int, frame_count: int) -> tuple[int, int, int]:
        """(first frame to feed, first frame of the chunk, one past its last frame) for ``index``."""
        chunk = self.chunk_start(index)
        shot = self.shot_start(index)
        begin = chunk if chunk == shot else max(shot, chunk - self.plan.warmup)
        end = frame_count
        if self.plan.length > 0:
            end = min(end, chunk + self.plan.length)
        later = [k for k in self._keyframes if k > index]
        if later:
            end = min(end, later[0])
        return begin, chunk, end

    def working_lightness(self, full_lightness: np.ndarray) -> np.ndarray:
        return working_lightness(full_lightness, self.work)

    def predict(self, index: int, full_lightness: np.ndarray, *, cut: bool = False) -> ColorizedFrame:
        """Colorize frame ``index``; frames must come in order (a jump restarts the recurrence).

        In a two-keyframe shot a second copy of the colorizer follows the end reference, and the
        two predictions are blended by position in the shot, each weighted by its confidence.
        """
        small = self.working_lightness(full_lightness)
        keyframe = self.schedule.keyframe_at(index)
        reference = keyframe.reference if keyframe is not None else None
        if reference is None and self.auto is not None:
            reference = self.auto_reference(index, small)
        end_reference = keyframe.end_reference if keyframe is not None else None
        position = self.schedule.blend_position(index) if end_reference is not None else None
        shot = self.shot_start(index)
        contiguous = self._last_index is not None and index == self._last_index + 1
        restart = index == shot or cut or index in self.schedule.cuts or not contiguous
        warm = not restart and index == self.chunk_start(index)
        streams = [(self.colorizer, reference)]
        if position is not None:
            streams.append((self._end_colorizer(), end_reference))
        elif self._end is not None:
            self._end.reset()
        results = []
        for colorizer, ref in streams:
            if restart or warm:
                colorizer.reset()
            if warm:
                for past in self._history:
                    colorizer.step(past, ref)
            results.append(colorizer.step(small, ref))
        if restart:
            self._history.clear()
        if self._history.maxlen:
            self._history.append(small)
        self._last_index = index
        if position is None:
            return results[0]
        return blend_predictions(results[0], results[1], position)

    def upsample(self, index: int, ab: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """Frame ``index``'s working chroma ``ab`` at ``guide``'s size (see :func:`upsample_chroma`).

        Thread-safe (it reads the schedule only), so output planes can be made on another thread.
        """
        sources = self.schedule.references_at(index) if self.detail is not None else []
        return upsample_chroma(ab, guide, self.detail, sources)

    def auto_reference(self, index: int, small: np.ndarray | None = None) -> Reference:
        """The automatic reference of the segment holding ``index``: its :meth:`automatic_keyframe`
        colorized by the automatic model (``small`` is ``index``'s working-resolution lightness,
        if known)."""
        assert self.auto is not None
        start = self.schedule.shot_at(index).start
        cached = self._auto_references.get(start)
        if cached is not None:
            self._auto_references.move_to_end(start)
            return cached
        keyframe = self.automatic_keyframe(index)
        kept = self.kept_keyframes.get(keyframe, self.work) if self.kept_keyframes is not None else None
        if index == keyframe and small is not None:
            lightness = small
        elif kept is not None:  # kept by scene detection's pass: no second decode
            lightness = kept
        elif self.frame_at is not None:
            lightness = self.working_lightness(self.frame_at(keyframe))
        else:
            raise RuntimeError(f"frame {index}: the automatic reference needs frame {keyframe} of its shot; "
                               "pass frame_at to FrameColorizer")
        reference = automatic_reference(self.auto, lightness, key=f"auto:{self.auto.name}:{start}:{keyframe}")
        self._auto_references[start] = reference
        while len(self._auto_references) > 8:
            self._auto_references.popitem(last=False)
        return reference

    def automatic_keyframe(self, index: int) -> int:
        """The frame the automatic model colours for the shot holding ``index``: the shot's middle
        frame (:func:`automatic_keyframe_of`) when its end is known and frames can be fetched, else
        its first.

        The exemplar model matches the reference to every frame of the shot, so the middle frame,
        nearest in content to all of them, serves best, and a shot that opens on a fade or a
        dissolve does not take its colours from it (measured: the default model card, "Inference constants")."""
        span = self.schedule.shot_at(index)
        if span.end is None or self.frame_at is None:
            return span.start
        return automatic_keyframe_of(span.start, span.end)

    def _end_colorizer(self) -> Colorizer:
        if self._end is None:
            self._end = self.colorizer.fork()
        return self._end


def working_lightness(full_lightness: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """Full-resolution lightness brought to the working size ``work`` (width, height) the models see."""
    small = full_lightness
    if (full_lightness.shape[1], full_lightness.shape[0]) != work:
        small = shrink_area(full_lightness, work)
    return np.ascontiguousarray(small, dtype=np.float32)


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


def scan_shots(info: VideoInfo, work: tuple[int, int] | None, *,
               on_frame: Callable[[int], None] | None = None) -> tuple[list[int], ShotKeyframes | None]:
    """Scene cuts of ``info`` in one decoding pass, and, for no-reference mode (``work``: the
    working size), every shot's automatic keyframe kept on the way (:class:`ShotKeyframes`)."""
    from ..schedule.scenes import detect_cuts  # noqa: PLC0415 - PySceneDetect only when detecting

    kept = ShotKeyframes(info, work) if work is not None else None
    cuts = detect_cuts(info.path, info=info, on_frame=on_frame, on_decoded=kept)
    return cuts, kept.finish(cuts) if kept is not None else None


def working_size_for(info: VideoInfo, colorizer: Colorizer, short_side: int | None = None,
                     size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The working size a run of ``colorizer`` on ``info`` uses: ``size``, else the short side
    given or the model's own default."""
    return size or working_size(info.width, info.height, short_side or colorizer.default_short_side)


def automatic_reference(auto: Colorizer, lightness: np.ndarray, key: str) -> Reference:
    """A reference made by colorizing ``lightness`` (working-size Lab L) with the automatic model
    ``auto``: the keyframe of a shot that has no reference (no-reference mode)."""
    auto.reset()
    predicted = auto.step(lightness, None)
    rgb = lab_with_luma(lightness_to_gray(lightness), predicted.ab)
    return Reference.from_array(np.clip(rgb, 0.0, 1.0).astype(np.float32), key=key)


def blend_predictions(start: ColorizedFrame, end: ColorizedFrame, position: float) -> ColorizedFrame:
    """Blend the predictions from a shot's start and end references at ``position`` (0..1).

    Each side's weight is its distance weight times its confidence, so where one reference has no
    match the other one's colour is used; where neither is confident the blend is by position.
    """
    eps = 1e-3
    w_start = (1.0 - position) * (start.confidence.astype(np.float32) + eps)
    w_end = position * (end.confidence.astype(np.float32) + eps)
    total = w_start + w_end
    ab = (start.ab * w_start[..., None] + end.ab * w_end[..., None]) / total[..., None]
    confidence = ((1.0 - position) * start.confidence + position * end.confidence).astype(np.float32)
    stats = {key: (1.0 - position) * float(value) + position * float(end.stats[key])
             for key, value in start.stats.items() if key in end.stats}
    stats["blend_position"] = float(position)
    return ColorizedFrame(ab.astype(np.float32), confidence, stats)


def upsample_chroma(ab: np.ndarray, guide: np.ndarray, detail: ReferenceDetail | None = None,
                    sources: Sequence[tuple[Reference, float]] = ()) -> np.ndarray:
    """Working-resolution chroma ``ab`` at the size of ``guide`` (the frame's lightness there),
    snapped to its edges, plus the references' finer detail when ``detail`` is given (see
    :mod:`vidcolor.correspondence.detail`; ``sources`` from :meth:`ReferenceSchedule.references_at`)."""
    if detail is None or not sources:
        return guided_upsample(ab, guide)
    small = shrink_area(np.ascontiguousarray(guide, dtype=np.float32), (ab.shape[1], ab.shape[0]))  # shared by both steps
    return detail.add(guided_upsample(ab, guide, small_guide=small), small, sources)


def chroma_for_frame(full_lightness: np.ndarray, full_gray: np.ndarray, ab: np.ndarray, chroma_size: tuple[int, int],
                     luma_format: LumaFormat,
                     upsample: Callable[[np.ndarray, np.ndarray], np.ndarray] = guided_upsample) -> tuple[np.ndarray, np.ndarray]:
    """Cb, Cr planes of ``chroma_size`` (width, height) for working-resolution chroma ``ab``,
    brought to that size by ``upsample(ab, lightness there)`` (e.g. :meth:`FrameColorizer.upsample`
    of the frame)."""
    height, width = full_lightness.shape
    chroma_w, chroma_h = chroma_size
    guide, gray = full_lightness, full_gray
    if (chroma_w, chroma_h) != (width, height):
        guide = cv2.resize(full_lightness, (chroma_w, chroma_h), interpolation=cv2.INTER_AREA)
        gray = cv2.resize(full_gray, (chroma_w, chroma_h), interpolation=cv2.INTER_AREA)
    return chroma_planes(gray, upsample(ab, guide), luma_format)


def colorize_video(
    input_path: str,
    spec: OutputSpec,
    schedule: ReferenceSchedule,
    colorizer: Colorizer,
    *,
    short_side: int | None = None,
    size: tuple[int, int] | None = None,
    overwrite: bool = False,
    on_start: Callable[[VideoInfo], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    info: VideoInfo | None = None,
    plan: ChunkPlan = ChunkPlan(),
    resume: bool = False,
    settings: Mapping[str, object] | None = None,
    auto: Colorizer | None = None,
    distribute: ChunkDistributor | None = None,
    detail: ReferenceDetail | None = None,
    restart_on_change: bool = False,
    kept_keyframes: ShotKeyframes | None = None,
) -> RunSummary:
    """Colorize ``input_path`` into ``spec``; every input problem is raised before anything is written.

    With ``resume``, the output is encoded chunk by chunk into a work folder beside it, and a rerun
    continues from the last completed chunk (see :mod:`vidcolor.run.resume`). ``settings`` lists any
    further options that change the frames (:func:`resume_signature` finds the rest). Work left by
    a run with another signature is refused with a message naming what changed, or, with
    ``restart_on_change``, deleted with a warning; it is never mixed in.
    ``auto`` (an automatic colorizer) turns on no-reference mode for a schedule without references
    (see :class:`FrameColorizer`). ``distribute`` (e.g. :func:`vidcolor.run.distributed.ray_chunks`)
    encodes the chunks elsewhere in parallel; it implies ``resume``. ``detail`` adds the
    references' fine colour at the output size (:mod:`vidcolor.correspondence.detail`). ``kept_keyframes``
    (from :func:`scan_shots`) spares no-reference mode a second decode of each shot's keyframe.
    """
    info = info or probe(input_path)
    resume = resume or distribute is not None
    if resume and spec.is_sequence:
        raise OutputError(f"output {spec.path!r}: --resume needs a video file output (.mkv, .mp4, .mov), not an image sequence")
    check_output(spec, input_path, overwrite=overwrite)
    check_encodable(spec, info)
    schedule.validate(info.frame_count, input_path)
    work = working_size_for(info, colorizer, short_side, size)
    if auto is None and not schedule.keyframes and colorizer.needs_reference:
        raise InputError(f"{input_path!r}: no reference and no automatic model: pass a reference (--ref IMAGE) "
                         "or an automatic model for no-reference mode")
    frames = FrameColorizer(colorizer, schedule, work, plan, auto=auto, frame_at=lambda index: read_lightness(info, index),
                            detail=detail, kept_keyframes=kept_keyframes if auto is not None else None)
    summary = RunSummary(input_path, spec.path, 0, 0.0, work, colorizer.name)
    if on_start is not None:
        on_start(info)
    started, decoded_before = time.perf_counter(), decoded_frame_count()
    if resume:
        signature = resume_signature(info, spec, frames, settings)
        journal = Journal.open(spec.path, signature, restart=restart_on_change)
        _colorize_in_chunks(info, spec, frames, journal, summary, on_frame, distribute)
        summary.seconds = time.perf_counter() - started
        summary.decoded_frames += decoded_frame_count() - decoded_before
        return summary
    with VideoReader(info) as reader, VideoWriter(spec, info, overwrite=overwrite) as writer, _Overlap() as overlap:
        for frame in reader:
            for output in _render(frame, frames, info, spec, writer.pix_fmt, writer.luma_format, summary, on_frame, overlap):
                writer.write(output)
        for output in overlap.drain():
            writer.write(output)
    summary.seconds = time.perf_counter() - started
    summary.decoded_frames += decoded_frame_count() - decoded_before
    if info.frame_count is not None and summary.frames != info.frame_count and not info.is_sequence:
        logger.info("%s: container announced %d frames, %d decoded", input_path, info.frame_count, summary.frames)
    return summary


def read_lightness(info: VideoInfo, index: int) -> np.ndarray:
    """Full-resolution lightness of frame ``index`` alone (seeks; for passes that start mid-shot)."""
    with VideoReader(info, start=index) as reader:
        for frame in reader:
            return luma_to_lightness(frame.luma, info.luma_format)
    raise InputError(f"{info.path!r}: frame {index} cannot be decoded")


def resume_signature(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer,
                     settings: Mapping[str, object] | None = None) -> RunSignature:
    """Everything that changes a resumable run's frames: vidcolor's version, the models and the
    SHA-256 of every weight file they loaded, the device and dtype, the working size, the encoder,
    the chunk plan, the schedule (reference pictures by content), the detail settings, ``settings``
    (e.g. a batch job's preset) and the input's identity (every frame file of a sequence)."""
    from .. import __version__  # noqa: PLC0415 - the package imports this module

    schedule, detail = frames.schedule, frames.detail
    models = [model for model in (frames.colorizer, frames.auto) if model is not None]
    return run_signature(
        vidcolor=__version__, input=input_identity(info.path, info.sequence_files),
        model=frames.colorizer.describe(), auto=frames.auto.describe() if frames.auto is not None else None,
        weights=_weight_digests(models), runtime=_runtime(models), work=list(frames.work),
        output={"codec": spec.codec.name, "crf": spec.crf, "encoder_preset": spec.encoder_preset,
                "extension": os.path.splitext(spec.path)[1].lower()},
        plan=[frames.plan.length, frames.plan.warmup], cuts=sorted(schedule.cuts),
        keyframes=[(k.frame, k.reference.fingerprint, k.end_reference.fingerprint if k.end_reference else None, k.end_frame)
                   for k in schedule.keyframes],
        detail=dataclasses.asdict(detail.settings) if detail is not None else None, settings=dict(settings or {}))


def _weight_files(model: object) -> tuple[str, ...]:
    """Weight files behind ``model`` as recorded when it was built (see
    :func:`vidcolor.weights.recording_loads`); a wrapper built by hand falls back to its inner model."""
    from ..weights import weight_files_of  # noqa: PLC0415

    files = weight_files_of(model)
    inner = getattr(model, "inner", None)
    return files if files or inner is None else _weight_files(inner)


def _weight_digests(models: Sequence[Colorizer]) -> dict[str, str]:
    from ..weights import weights_digest  # noqa: PLC0415

    digests: dict[str, str] = {}
    named: dict[str, str] = {}  # file name -> path: two files of one name are told apart by path
    for model in models:
        for path in _weight_files(model):
            name = os.path.basename(path)
            key = name if named.setdefault(name, path) == path else path
            digests[key] = weights_digest(path)
    return dict(sorted(digests.items()))


def _runtime(models: Sequence[Colorizer]) -> dict[str, object]:
    """Device and floating-point type: the same weights give other frames on another device."""
    devices = []
    for model in models:
        holder: object | None = model
        while holder is not None and getattr(holder, "device", None) is None:
            holder = getattr(holder, "inner", None)
        devices.append(str(getattr(holder, "device", "cpu")))
    torch = sys.modules.get("torch")  # not imported by a weight-free run: torch's default then
    return {"devices": devices, "dtype": str(torch.get_default_dtype()) if torch is not None else "torch.float32"}


def plan_chunks(frames: FrameColorizer, total: int, first: int = 0) -> list[tuple[int, int]]:
    """Every chunk from frame ``first`` (a chunk start) to ``total`` as (first frame, one past the last)."""
    chunks: list[tuple[int, int]] = []
    position = first
    while position < total:
        _, start, end = frames.chunk_bounds(position, total)
        chunks.append((start, end))
        position = end
    return chunks


#: Called as each segment is finished: (first frame, one past the last, file name, the input ended here).
OnSegment = Callable[[int, int, str, bool], None]


def encode_chunks(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer, first: int, stop: int | None,
                  segment_for: Callable[[int], Path], on_segment: OnSegment, summary: RunSummary,
                  on_frame: Callable[[FrameResult], None] | None = None) -> None:
    """Encode the consecutive chunks from the one starting at ``first`` up to frame ``stop``
    (exclusive; None: to the end of the stream), one segment file each, reading the input once from
    the first chunk's warm-up.

    Chunks start where :meth:`FrameColorizer.chunk_start` says, found as frames arrive, and the
    last one ends where decoding ends: the container's frame count, which may be an estimate, is
    never trusted to say where the film ends."""
    begin, _, _ = frames.chunk_bounds(first, sys.maxsize)
    frames.start_pass()
    writer: VideoWriter | None = None
    current = first
    written = 0
    ended = True
    try:
        with VideoReader(info, start=begin) as reader:
            for frame in reader:
                if stop is not None and frame.index >= stop:
                    ended = False
                    break
                if frame.index >= first and frames.chunk_start(frame.index) == frame.index:
                    if writer is not None:
                        _finish_segment(writer, info, current, frame.index, written, on_segment, last=False)
                    current, written = frame.index, 0
                    writer = VideoWriter(replace(spec, path=str(segment_for(frame.index))), info, copy_streams=False,
                                         overwrite=True)
                if writer is None:  # warm-up frames before the first chunk: predict only
                    frames.predict(frame.index, luma_to_lightness(frame.luma, info.luma_format))
                    continue
                for output in _render(frame, frames, info, spec, writer.pix_fmt, writer.luma_format, summary, on_frame):
                    writer.write(output)
                written += 1
        if writer is not None:
            _finish_segment(writer, info, current, current + written, written, on_segment, last=ended)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def _finish_segment(writer: VideoWriter, info: VideoInfo, start: int, end: int, written: int, on_segment: OnSegment, *,
                    last: bool) -> None:
    writer.close()
    if written != end - start:
        raise InputError(f"{info.path!r}: frames {start}-{end - 1} came out of order ({written} decoded): the "
                         "input's timestamps are broken; remux or re-encode it (e.g. with ffmpeg) and run again")
    on_segment(start, end, os.path.basename(writer.spec.path), last)


def _colorize_in_chunks(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer, journal: Journal,
                        summary: RunSummary, on_frame: Callable[[FrameResult], None] | None,
                        distribute: ChunkDistributor | None = None) -> None:
    extension = os.path.splitext(spec.path)[1]
    missing = journal.missing()
    if missing and distribute is not None:
        # the count only spreads the work (each piece still ends where decoding ends); packets, not
        # the header, so that no worker is sent past the end, where a read decodes the whole film
        estimate = journal.frame_count or count_frames(info)
        pieces: list[tuple[int, int | None]] = []
        for first, stop in missing:
            planned: list[tuple[int, int | None]] = list(plan_chunks(frames, stop if stop is not None else estimate, first))
            if stop is None:
                planned[-1:] = [(planned[-1][0] if planned else first, None)]
            pieces += planned
        distribute(info, spec, frames, pieces, str(journal.folder), extension, journal.record, summary, on_frame)
        missing = journal.missing()
    for first, stop in missing:
        encode_chunks(info, spec, frames, first, stop, lambda start: journal.segment_path(start, extension),
                      journal.record, summary, on_frame)
    assemble_segments(spec, info, [str(path) for path in journal.segments(spec.path)])
    journal.discard()


#: Encodes the given pieces (first frame, stop or None) somewhere else (e.g. on a Ray cluster) into
#: segment files named by :func:`vidcolor.run.resume.staged_name` in the work folder, calling
#: ``on_segment`` in this process as segments complete.
ChunkDistributor = Callable[[VideoInfo, OutputSpec, "FrameColorizer", Sequence[tuple[int, int | None]], str, str,
                             OnSegment, RunSummary, Callable[[FrameResult], None] | None], None]


def _render(frame: Frame, frames: FrameColorizer, info: VideoInfo, spec: OutputSpec, pix_fmt: str,
            out_format: LumaFormat, summary: RunSummary, on_frame: Callable[[FrameResult], None] | None,
            overlap: _Overlap | None = None) -> list[OutputFrame]:
    """Predict ``frame`` (in order, on this thread) and have its full-resolution planes made on the
    overlap thread; returns the frames finished so far, in order, to write now."""
    full_l = luma_to_lightness(frame.luma, info.luma_format)
    result = frames.predict(frame.index, full_l)
    item = FrameResult(frame.index, frame.time, timecode(frame.time), float(result.confidence.mean()), dict(result.stats))
    summary.frames += 1
    summary.results.append(item)
    if on_frame is not None:
        on_frame(item)
    if overlap is None:
        return [_planes(frame, full_l, result.ab, frames, info, spec, pix_fmt, out_format)]
    return overlap.push(_planes, frame, full_l, result.ab, frames, info, spec, pix_fmt, out_format)


def _planes(frame: Frame, full_l: np.ndarray, ab: np.ndarray, frames: FrameColorizer, info: VideoInfo,
            spec: OutputSpec, pix_fmt: str, out_format: LumaFormat) -> OutputFrame:
    """The output frame: the input's luma with the chroma ``ab`` upsampled under its guidance."""
    full_gray = luma_to_gray_level(frame.luma, info.luma_format)
    upsample = functools.partial(frames.upsample, frame.index)
    if spec.codec.rgb:
        ab_full = upsample(ab, full_l)
        rgb = rgb_codes(full_gray, ab_full, info.luma_format.bit_depth, info.luma_format.matrix)
        return OutputFrame(frame.index, frame.pts, rgb=rgb)
    fmt = av.VideoFormat(pix_fmt)
    chroma_size = (fmt.chroma_width(info.width), fmt.chroma_height(info.height))
    cb, cr = chroma_for_frame(full_l, full_gray, ab, chroma_size, out_format, upsample)
    luma = convert_luma(frame.luma, info.luma_format, out_format)
    return OutputFrame(frame.index, frame.pts, planes=(luma, cb, cr))


class _Overlap:
    """Runs the full-resolution chroma work of frame n on a worker thread while the colorizer
    predicts frame n+1 (OpenCV and torch release the GIL), keeping output order."""

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidcolor-chroma")
        self.pending: deque[Future[OutputFrame]] = deque()

    def push(self, function: Callable[..., OutputFrame], *args: object) -> list[OutputFrame]:
        self.pending.append(self.pool.submit(function, *args))
        done = []
        while len(self.pending) >= self.depth:
            done.append(self.pending.popleft().result())
        return done

    def drain(self) -> list[OutputFrame]:
        done = [future.result() for future in self.pending]
        self.pending.clear()
        return done

    def __enter__(self) -> _Overlap:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)
