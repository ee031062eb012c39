"""Chunks: where the recurrence restarts inside long shots (:class:`ChunkPlan`), and encoding a
run chunk by chunk into segment files, locally or through a distributor, for resumable runs."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..color import luma_to_lightness
from ..errors import InputError
from ..io.reader import VideoInfo, VideoReader, count_frames
from ..io.writer import OutputSpec, VideoWriter, assemble_segments
from .render import render_frame
from .results import FrameResult, RunSummary

if TYPE_CHECKING:
    from .pipeline import FrameColorizer
    from .resume import Journal

logger = logging.getLogger(__name__)


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
                for output in render_frame(frame, frames, info, spec, writer.pix_fmt, writer.luma_format, summary, on_frame):
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


def colorize_in_chunks(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer, journal: Journal,
                        summary: RunSummary, on_frame: Callable[[FrameResult], None] | None,
                        distribute: ChunkDistributor | None = None,
                        on_resume: Callable[[int], None] | None = None) -> None:
    extension = os.path.splitext(spec.path)[1]
    earlier = journal.finished_results()
    summary.resumed_frames = sum(record.frames for record in journal.chunks.values())
    if on_resume is not None:
        on_resume(summary.resumed_frames)
    record = _recording_results(journal, summary)
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
        distribute(info, spec, frames, pieces, str(journal.folder), extension, record, summary, on_frame)
        missing = journal.missing()
    for first, stop in missing:
        encode_chunks(info, spec, frames, first, stop, lambda start: journal.segment_path(start, extension),
                      record, summary, on_frame)
    assemble_segments(spec, info, [str(path) for path in journal.segments(spec.path)])
    journal.discard()
    if earlier:
        summary.results = sorted(earlier + summary.results, key=lambda item: item.index)
    if len(earlier) < summary.resumed_frames:
        logger.warning("%s: %d of the %d frames resumed from the earlier run have no per-frame statistics (their "
                       "chunks' sidecars hold none: an older vidcolor made them, or the sidecars are gone)",
                       spec.path, summary.resumed_frames - len(earlier), summary.resumed_frames)


def _recording_results(journal: Journal, summary: RunSummary) -> OnSegment:
    """:meth:`Journal.record` with each segment's frame results (those ``summary`` gained since the
    last segment), so that a later resumed run still reports the frames of this one."""
    waiting: dict[int, FrameResult] = {}
    seen = len(summary.results)

    def record(start: int, end: int, file: str, last: bool) -> None:
        nonlocal seen
        waiting.update((item.index, item) for item in summary.results[seen:])
        seen = len(summary.results)
        journal.record(start, end, file, last, [waiting.pop(index) for index in range(start, end) if index in waiting])

    return record


#: Encodes the given pieces (first frame, stop or None) somewhere else (e.g. on a Ray cluster) into
#: segment files named by :func:`vidcolor.run.resume.staged_name` in the work folder, calling
#: ``on_segment`` in this process as segments complete.
ChunkDistributor = Callable[[VideoInfo, OutputSpec, "FrameColorizer", Sequence[tuple[int, int | None]], str, str,
                             OnSegment, RunSummary, Callable[[FrameResult], None] | None], None]
