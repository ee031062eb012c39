"""The standalone pipeline: reader → reference schedule → colorizer → luma-guided chroma → writer.

Decoding and encoding run in their own threads (see :mod:`vidcolor.io.reader` and
:mod:`vidcolor.io.writer`), so the colorizer, the decoder and the encoder overlap. Progress is
reported through an ``on_frame`` callback: this module knows nothing of click, tqdm or
VapourSynth.

This module holds the recurrence (:class:`FrameColorizer`, shared with the VapourSynth filter) and
:func:`colorize_video`; the steps around them have their own modules: :mod:`.sizes` (working
size), :mod:`.chunks` (chunk plan, chunked encoding), :mod:`.shots` (no-reference keyframes),
:mod:`.render` (chroma at the output size), :mod:`.signature` (what a resumed run must match) and
:mod:`.results` (what a run reports). Their public names are re-exported here for existing callers.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ..colorizers.base import ColorizedFrame, Colorizer
from ..correspondence.detail import ReferenceDetail
from ..errors import InputError, OutputError
from ..io.reader import VideoInfo, VideoReader, decoded_frame_count, probe
from ..io.writer import OutputSpec, VideoWriter, check_encodable, check_output
from ..color import luma_to_lightness
from ..references import Reference
from ..schedule.keyframes import Keyframe, ReferenceSchedule
from .anchor import ANCHOR_SEARCH, DEFAULT_ANCHOR, find_moment
from .chunks import ChunkDistributor, ChunkPlan, OnSegment, colorize_in_chunks, encode_chunks, plan_chunks
from .render import Overlap, chroma_for_frame, render_frame, upsample_chroma
from .results import FrameResult, RunSummary
from .resume import Journal
from .shots import (KEYFRAME_GRID, ShotKeyframes, automatic_candidates, automatic_keyframe_of, automatic_reference,
                    most_confident_reference, scan_shots)
from .signature import resume_signature
from .sizes import parse_size, working_lightness, working_size, working_size_for
from .tone import ToneGate

logger = logging.getLogger(__name__)

__all__ = [  # the re-exported names keep ``from vidcolor.run.pipeline import ...`` working
    "KEYFRAME_GRID", "ChunkDistributor", "ChunkPlan", "FrameColorizer", "FrameResult", "OnSegment", "RunSummary",
    "ShotKeyframes", "automatic_candidates", "automatic_keyframe_of", "automatic_reference", "blend_predictions",
    "chroma_for_frame", "colorize_video", "encode_chunks", "most_confident_reference", "parse_size", "plan_chunks",
    "read_lightness", "resume_signature", "scan_shots",
    "upsample_chroma", "working_lightness", "working_size", "working_size_for",
]


class FrameColorizer:
    """Frame → chroma at the working resolution, with shot resets and chunk warm-ups.

    The single place that decides the recurrence, shared by the CLI pipeline and the VapourSynth
    filter, so both produce the same pixels.

    No-reference mode: when the schedule has no reference and an automatic colorizer ``auto`` is
    given, a few frames of each segment (between resets: clip start, scene cuts) around its middle
    one (:meth:`automatic_candidates`) are colorized by ``auto``, and the one it is surest of
    becomes that segment's reference, which the exemplar colorizer follows. The automatic model's
    frame-to-frame flicker thus never reaches the output. ``frame_at(index)`` (full-resolution
    lightness of any frame) fetches those frames, so every pass (the stream, a resumed chunk, a
    VapourSynth request) builds the same reference.

    ``detail`` (optional) adds the references' colour finer than the working size when the chroma
    is brought to the output size (:meth:`upsample`).

    ``anchor="auto"`` colours each keyframe's shot outward from its moment (:meth:`moment`, see
    :mod:`.anchor`): frames from the moment on follow the recurrence forward as usual (the moment
    is where it starts and where chunks are counted from), and the frames from the pinned frame to
    the moment are coloured backward, moment first, by a forked colorizer. That backward run reads
    those frames once more through ``frames_from(start, stop)`` (full-resolution lightness of frames
    ``start..stop-1`` in order) and keeps their working-size chroma until they are asked for; it
    depends on nothing else, so a stream, a resumed chunk and a VapourSynth request give the same
    frames. A shot with an end reference keeps its two-keyframe blend and its pinned start.
    """

    def __init__(self, colorizer: Colorizer, schedule: ReferenceSchedule, work: tuple[int, int],
                 plan: ChunkPlan = ChunkPlan(), *, auto: Colorizer | None = None,
                 frame_at: Callable[[int], np.ndarray] | None = None, detail: ReferenceDetail | None = None,
                 kept_keyframes: ShotKeyframes | None = None, anchor: str = DEFAULT_ANCHOR,
                 frames_from: Callable[[int, int], Iterator[np.ndarray]] | None = None) -> None:
        self.colorizer = colorizer
        self.anchor = anchor
        self.frames_from = frames_from
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
        self._back: Colorizer | None = None  # colours a shot backward from its moment
        self._moments: dict[int, int] = {}  # keyframe frame -> its moment
        self._window: tuple[int, list[np.ndarray]] | None = None  # the searched frames of the last shot
        self._backward: tuple[int, dict[int, ColorizedFrame]] | None = None  # one shot's backward chroma
        #: the frames the last pass chose on (:meth:`_start_lightness`): its shot's start, and a
        #: two-keyframe shot's last frame
        self._start_frames: dict[int, np.ndarray] = {}
        self._tone = ToneGate()  # whether a shot's user reference shows its scene, to tone its frames (.tone)

    def start_pass(self) -> None:
        """Begin a fresh pass over the input (a chunk re-coloured from its warm-up): the next frame
        restarts the recurrence whatever frame came last."""
        self._last_index = None

    def shot_start(self, index: int) -> int:
        """Where ``index``'s recurrence starts: the keyframe that governs it (0 when it precedes the
        first keyframe), or that keyframe's moment for frames at or after it (see :meth:`moment`)."""
        position = bisect.bisect_right(self._keyframes, index) - 1
        if position < 0:
            return 0
        pinned = self._keyframes[position]
        moment = self.moment(pinned)
        return moment if index >= moment else pinned

    def moment(self, pinned: int) -> int:
        """The moment of the keyframe pinned at frame ``pinned``: the frame its reference shows,
        found among the first :data:`~.anchor.ANCHOR_SEARCH` frames of its segment (up to its first
        cut) with ``anchor="auto"``; the pinned frame itself otherwise."""
        known = self._moments.get(pinned)
        if known is not None:
            return known
        keyframe = self.schedule.keyframe_at(pinned)
        moment = pinned
        if self._anchored(keyframe):
            assert keyframe is not None and self.frames_from is not None
            end = self.schedule.shot_at(pinned).end
            stop = pinned + ANCHOR_SEARCH if end is None else min(pinned + ANCHOR_SEARCH, end + 1)
            window = [self.working_lightness(full) for full in self.frames_from(pinned, stop)]
            moment = pinned + find_moment(keyframe.reference, window)
            self._window = (pinned, window[:moment - pinned + 1]) if moment > pinned else None
        self._moments[pinned] = moment
        return moment

    def _anchored(self, keyframe: Keyframe | None) -> bool:
        return (self.anchor == "auto" and self.frames_from is not None and keyframe is not None
                and keyframe.reference is not None and keyframe.end_reference is None)

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
        pinned = self.schedule.keyframe_at(index)
        if pinned is not None and index >= pinned.frame and index < self.moment(pinned.frame):
            end = min(end, self.moment(pinned.frame))  # the backward frames end where the forward ones start
        return begin, chunk, end

    def working_lightness(self, full_lightness: np.ndarray) -> np.ndarray:
        return working_lightness(full_lightness, self.work)

    def predict(self, index: int, full_lightness: np.ndarray, *, cut: bool = False) -> ColorizedFrame:
        """Colorize frame ``index``; frames must come in order (a jump restarts the recurrence).

        In a two-keyframe shot a second copy of the colorizer follows the end reference, and the
        two predictions are blended by position in the shot, each weighted by its confidence.
        """
        keyframe = self.schedule.keyframe_at(index)
        if keyframe is not None and keyframe.frame <= index < self.moment(keyframe.frame):
            self._last_index = index
            return self._backward_prediction(keyframe, index)
        small = self.working_lightness(full_lightness)
        reference = keyframe.reference if keyframe is not None else None
        if reference is None and self.auto is not None:
            reference = self.auto_reference(index, small)
        end_reference = keyframe.end_reference if keyframe is not None else None
        position = self.schedule.blend_position(index) if end_reference is not None else None
        shot = self.shot_start(index)
        contiguous = self._last_index is not None and index == self._last_index + 1
        restart = index == shot or cut or index in self.schedule.cuts or not contiguous
        warm = not restart and index == self.chunk_start(index)
        # each reference chooses what it keeps (placed or stretched) on the frame it shows: the
        # start one where the recurrence starts, the end one on the shot's last frame
        streams = [(self.colorizer, reference, shot)]
        if position is not None:
            assert keyframe is not None
            last = self.schedule.shot_end(keyframe)
            streams.append((self._end_colorizer(), end_reference, shot if last is None else last))
        elif self._end is not None:
            self._end.reset()
        results = []
        for colorizer, ref, chooses_on in streams:
            if restart or warm:
                colorizer.reset()
                if ref is not None:
                    colorizer.begin_reference(ref, self.work,
                                              lambda frame=chooses_on: self._start_lightness(frame, index, small))
            # frames meet a user's reference near its tone where it shows their scene (.tone); an
            # automatic one is a frame of the film
            toned = ref is not None and keyframe is not None and (ref is keyframe.reference or ref is end_reference)
            if warm:
                for past in self._history:
                    colorizer.step(self._toned(past, ref, chooses_on, index, small) if toned else past, ref)
            results.append(colorizer.step(self._toned(small, ref, chooses_on, index, small) if toned else small, ref))
        if restart:
            self._history.clear()
        if self._history.maxlen:
            self._history.append(small)
        self._last_index = index
        if position is None:
            return results[0]
        return blend_predictions(results[0], results[1], position)

    def _toned(self, lightness: np.ndarray, reference: Reference, start: int, index: int, small: np.ndarray) -> np.ndarray:
        """``lightness`` as the colorizer meets a user's ``reference`` (:class:`.tone.ToneGate`), the
        gate decided on frame ``start`` (read only when the tone would act)."""
        return self._tone.matched(lightness, reference, start, lambda: self._start_lightness(start, index, small), small)

    def _start_lightness(self, start: int, index: int, small: np.ndarray) -> np.ndarray | None:
        """Working-size lightness of frame ``start``, where a sequential pass starts the recurrence
        that frame ``index`` (lightness ``small``) follows, or a two-keyframe shot's last frame:
        colorizers choose on it what they keep per reference (:meth:`Colorizer.begin_reference`),
        so that a pass starting at a chunk's warm-up, a VapourSynth request or a resumed run
        chooses as the sequential pass. Kept for the next passes (the two last asked for);
        decoded (``frame_at``) only when it is not the frame being coloured."""
        if start == index:
            lightness = small
        elif start in self._start_frames:
            return self._start_frames[start]
        elif self.frame_at is not None:
            lightness = self.working_lightness(self.frame_at(start))
        else:
            return None
        self._start_frames = {**{k: v for k, v in self._start_frames.items() if k != start}, start: lightness}
        while len(self._start_frames) > 2:
            del self._start_frames[next(iter(self._start_frames))]
        return lightness

    def upsample(self, index: int, ab: np.ndarray, guide: np.ndarray) -> np.ndarray:
        """Frame ``index``'s working chroma ``ab`` at ``guide``'s size (see :func:`upsample_chroma`).

        Thread-safe (it reads the schedule only), so output planes can be made on another thread.
        """
        sources = self.schedule.references_at(index) if self.detail is not None else []
        return upsample_chroma(ab, guide, self.detail, sources)

    def auto_reference(self, index: int, small: np.ndarray | None = None) -> Reference:
        """The automatic reference of the segment holding ``index``: the one of its
        :meth:`automatic_candidates` the automatic model colours most confidently (``small`` is
        ``index``'s working-resolution lightness, if known)."""
        assert self.auto is not None
        start = self.schedule.shot_at(index).start
        cached = self._auto_references.get(start)
        if cached is not None:
            self._auto_references.move_to_end(start)
            return cached

        def lightness_of(keyframe: int) -> np.ndarray:
            kept = self.kept_keyframes.get(keyframe, self.work) if self.kept_keyframes is not None else None
            if index == keyframe and small is not None:
                return small
            if kept is not None:  # kept by scene detection's pass: no second decode
                return kept
            if self.frame_at is not None:
                return self.working_lightness(self.frame_at(keyframe))
            raise RuntimeError(f"frame {index}: the automatic reference needs frame {keyframe} of its shot; "
                               "pass frame_at to FrameColorizer")

        span = self.schedule.shot_at(index)
        chosen = self.kept_keyframes.chosen(start, span.end, self.work) if self.kept_keyframes is not None else None
        if chosen is not None:  # chosen by scene detection's pass, as the loop below would
            reference = automatic_reference(self.auto, lightness_of(chosen), key=f"auto:{self.auto.name}:{start}:{chosen}")
        else:
            candidates = ((keyframe, lightness_of(keyframe)) for keyframe in self.automatic_candidates(index))
            _, reference = most_confident_reference(self.auto, candidates, key=f"auto:{self.auto.name}:{start}",
                                                    middle=self.automatic_keyframe(index))
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

    def automatic_candidates(self, index: int) -> list[int]:
        """The frames the automatic model colours for the shot holding ``index``, of which the middle
        one, or one clearly surer, becomes the reference (:func:`most_confident_reference`): the shot's
        :func:`automatic_candidates` when :meth:`automatic_keyframe` can be its middle, else that frame alone."""
        span = self.schedule.shot_at(index)
        if span.end is None or self.frame_at is None:
            return [self.automatic_keyframe(index)]
        return automatic_candidates(span.start, span.end)

    def _backward_prediction(self, keyframe: Keyframe, index: int) -> ColorizedFrame:
        """Frame ``index`` (between the pinned frame and the moment) coloured backward from the
        moment; the whole run is made at its first request and kept for that shot only."""
        pinned = keyframe.frame
        if self._backward is None or self._backward[0] != pinned:
            self._backward = None  # free the last shot's chroma first
            moment = self.moment(pinned)
            if self._window is not None and self._window[0] == pinned:
                window = self._window[1]
            else:
                assert self.frames_from is not None
                window = [self.working_lightness(full) for full in self.frames_from(pinned, moment + 1)]
            self._window = None
            if self._back is None:
                self._back = self.colorizer.fork()
            self._back.reset()
            self._back.begin_reference(keyframe.reference, self.work, lambda: window[-1])  # the moment's
            results: dict[int, ColorizedFrame] = {}
            for offset in range(len(window) - 1, -1, -1):
                lightness = self._tone.matched(window[offset], keyframe.reference, moment, lambda: window[-1], window[-1])
                result = self._back.step(lightness, keyframe.reference)
                if pinned + offset < moment:
                    results[pinned + offset] = result
            self._backward = (pinned, results)
        return self._backward[1][index]

    def _end_colorizer(self) -> Colorizer:
        if self._end is None:
            self._end = self.colorizer.fork()
        return self._end


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
    on_resume: Callable[[int], None] | None = None,
    info: VideoInfo | None = None,
    plan: ChunkPlan = ChunkPlan(),
    resume: bool = False,
    settings: Mapping[str, object] | None = None,
    auto: Colorizer | None = None,
    distribute: ChunkDistributor | None = None,
    detail: ReferenceDetail | None = None,
    restart_on_change: bool = False,
    kept_keyframes: ShotKeyframes | None = None,
    anchor: str = DEFAULT_ANCHOR,
) -> RunSummary:
    """Colorize ``input_path`` into ``spec``; every input problem is raised before anything is written.

    With ``resume``, the output is encoded chunk by chunk into a work folder beside it, and a rerun
    continues from the last completed chunk (see :mod:`vidcolor.run.resume`). ``settings`` lists any
    further options that change the frames (:func:`resume_signature` finds the rest). Work left by
    a run with another signature is refused with a message naming what changed, or, with
    ``restart_on_change``, deleted with a warning; it is never mixed in. ``on_resume`` hears, before
    any frame is coloured, how many frames of the output the earlier run made (0 if none), which
    ``on_frame`` will not see (a progress bar starts there).
    ``auto`` (an automatic colorizer) turns on no-reference mode for a schedule without references
    (see :class:`FrameColorizer`). ``distribute`` (e.g. :func:`vidcolor.run.distributed.ray_chunks`)
    encodes the chunks elsewhere in parallel; it implies ``resume``. ``detail`` adds the
    references' fine colour at the output size (:mod:`vidcolor.correspondence.detail`). ``kept_keyframes``
    (from :func:`scan_shots`) spares no-reference mode a second decode of each shot's keyframe.
    ``anchor`` (``auto`` or ``pinned``): whether each keyframe's shot is coloured outward from the
    frame its reference shows (:mod:`.anchor`); ``auto`` decodes up to
    :data:`~.anchor.ANCHOR_SEARCH` frames of each keyframe's shot a second time.
    """
    info = info or probe(input_path)
    resume = resume or distribute is not None
    if resume and spec.is_sequence:
        raise OutputError(f"output {spec.path!r}: --resume needs a video file output (.mkv, .mp4, .mov), not an image sequence")
    check_output(spec, input_path, overwrite=overwrite)
    check_encodable(spec, info)
    schedule.validate(info.frame_count, input_path)
    # a still of an anamorphic film's shown picture is brought to the geometry its frames are stored in
    schedule = schedule.as_stored((info.width, info.height), info.sample_aspect)
    work = working_size_for(info, colorizer, short_side, size)
    if auto is None and not schedule.keyframes and colorizer.needs_reference:
        raise InputError(f"{input_path!r}: no reference and no automatic model: pass a reference (--ref IMAGE) "
                         "or an automatic model for no-reference mode")
    frames = FrameColorizer(colorizer, schedule, work, plan, auto=auto, frame_at=lambda index: read_lightness(info, index),
                            detail=detail, kept_keyframes=kept_keyframes if auto is not None else None,
                            anchor=anchor, frames_from=lambda start, stop: read_lightness_range(info, start, stop))
    summary = RunSummary(input_path, spec.path, 0, 0.0, work, colorizer.name)
    if on_start is not None:
        on_start(info)
    started, decoded_before = time.perf_counter(), decoded_frame_count()
    if resume:
        signature = resume_signature(info, spec, frames, settings)
        journal = Journal.open(spec.path, signature, restart=restart_on_change)
        colorize_in_chunks(info, spec, frames, journal, summary, on_frame, distribute, on_resume)
        summary.seconds = time.perf_counter() - started
        summary.decoded_frames += decoded_frame_count() - decoded_before
        return summary
    with VideoReader(info) as reader, VideoWriter(spec, info, overwrite=overwrite) as writer, Overlap() as overlap:
        for frame in reader:
            for output in render_frame(frame, frames, info, spec, writer.pix_fmt, writer.luma_format, summary, on_frame, overlap):
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


def read_lightness_range(info: VideoInfo, start: int, stop: int) -> Iterator[np.ndarray]:
    """Full-resolution lightness of frames ``start``..``stop - 1`` (fewer where the film ends), in
    one seek and one decoding run: a keyframe's moment search and backward run."""
    with VideoReader(info, start=start) as reader:
        for frame in reader:
            if frame.index >= stop:
                break
            yield luma_to_lightness(frame.luma, info.luma_format)
