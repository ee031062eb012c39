"""Chroma rendering: the working-size chroma brought to the output size under the full-size
luma's guidance (plus the references' fine detail), made into output frames, on a worker thread
that overlaps the next frame's prediction (:class:`Overlap`)."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np

from ..color import LumaFormat, chroma_planes, guided_upsample, luma_to_gray_level, luma_to_lightness, rgb_codes, shrink_area
from ..correspondence.detail import ReferenceDetail
from ..io.reader import Frame, VideoInfo
from ..io.writer import OutputFrame, OutputSpec, convert_luma
from ..references import Reference
from ..schedule.timecodes import timecode
from .results import FrameResult, RunSummary

if TYPE_CHECKING:
    from .pipeline import FrameColorizer


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


def render_frame(frame: Frame, frames: FrameColorizer, info: VideoInfo, spec: OutputSpec, pix_fmt: str,
            out_format: LumaFormat, summary: RunSummary, on_frame: Callable[[FrameResult], None] | None,
            overlap: Overlap | None = None) -> list[OutputFrame]:
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


class Overlap:
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

    def __enter__(self) -> Overlap:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)
