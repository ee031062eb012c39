"""Ray: one place to join or start a cluster, and chunks of one film encoded in parallel on it.

Every chunk depends only on its own frames and a few warm-up frames before it (see
:class:`vidcolor.run.chunks.ChunkPlan`), so the chunks of a long film can be colorized on different
workers and joined packet for packet, giving exactly the frames of one sequential pass. Segments
land in the run's work folder (shared storage when the cluster spans machines) and the journal is
written by the driver as they complete, so an interrupted distributed run resumes like a local one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .pipeline import FrameColorizer
    from .results import FrameResult, RunSummary
    from .shots import ShotKeyframes
    from ..io.reader import VideoInfo
    from ..io.writer import OutputSpec


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to ``address`` when given, else a local cluster started here
    (and stopped on exit). A session already open in this process is reused as is."""
    try:
        import ray  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise InputError("--executor ray needs Ray: install it with `pip install 'vidcolor[ray]'` "
                         "(or `pip install ray`)") from exc
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address is None:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"cannot reach the Ray cluster at {address!r} ({exc}): check --address "
                             "(e.g. ray://head:10001 or auto) or leave it out to start a local cluster") from exc
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _encode_chunk(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer, piece: tuple[int, int | None], folder: str,
                  extension: str, kept_keyframes: ShotKeyframes | None = None
                  ) -> tuple[list[tuple[int, int, str, bool]], list[FrameResult], int]:
    """On a worker: encode one piece (a chunk, or the last one, which runs to the end of the
    stream and may become several segments) into the work ``folder``; the finished segments, the
    per-frame results and the count of frames decoded go back to the driver. ``kept_keyframes``:
    the scan's, carrying the frames chosen for this piece's shots."""
    from .chunks import encode_chunks  # noqa: PLC0415
    from .pipeline import FrameColorizer, read_lightness, read_lightness_range  # noqa: PLC0415
    from .results import RunSummary  # noqa: PLC0415
    from ..io.reader import decoded_frame_count  # noqa: PLC0415
    from .resume import staged_name  # noqa: PLC0415

    decoded_before = decoded_frame_count()

    # every setting of the driver's pass, with this worker's own decoders: a chunk must colour as the
    # sequential pass does (the anchoring), and reuse the shots' frames chosen during the scan
    local = FrameColorizer(frames.colorizer, frames.schedule, frames.work, frames.plan, auto=frames.auto,
                           frame_at=lambda index: read_lightness(info, index), detail=frames.detail,
                           kept_keyframes=frames.kept_keyframes if kept_keyframes is None else kept_keyframes, anchor=frames.anchor,
                           frames_from=lambda start, stop: read_lightness_range(info, start, stop))
    summary = RunSummary(info.path, spec.path, 0, 0.0, frames.work, frames.colorizer.name)
    segments: list[tuple[int, int, str, bool]] = []
    encode_chunks(info, spec, local, piece[0], piece[1], lambda start: Path(folder) / staged_name(start, extension),
                  lambda *done: segments.append(done), summary)
    return segments, summary.results, decoded_frame_count() - decoded_before


def ray_chunks(address: str | None = None, num_cpus: int | None = None) -> Callable[..., None]:
    """A chunk distributor for :func:`vidcolor.run.pipeline.colorize_video` running on Ray."""

    def distribute(info: VideoInfo, spec: OutputSpec, frames: FrameColorizer, pieces: Sequence[tuple[int, int | None]],
                   folder: str, extension: str, on_segment: Callable[[int, int, str, bool], None],
                   summary: RunSummary, on_frame: Callable[[FrameResult], None] | None) -> None:
        with ray_session(address, num_cpus) as ray:
            remote = ray.remote(num_cpus=1, max_retries=0)(_encode_chunk)
            # sent once to the object store, not once per chunk (a model's weights can be large)
            info_ref, spec_ref, frames_ref = ray.put(info), ray.put(spec), ray.put(frames)
            kept = frames.kept_keyframes  # each piece takes its shots' chosen frames along, warm-up included
            waiting = [remote.remote(info_ref, spec_ref, frames_ref, piece, folder, extension,
                                     None if kept is None else kept.carrying(frames.chunk_bounds(piece[0], sys.maxsize)[0], piece[1]))
                       for piece in pieces]
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                for ref in ready:
                    segments, results, decoded = ray.get(ref)  # a failed chunk raises here: the finished ones stay recorded
                    summary.decoded_frames += decoded
                    summary.frames += len(results)
                    summary.results += results  # before the segments, whose records keep their frames' results
                    for segment in segments:
                        on_segment(*segment)
                    for item in results:
                        if on_frame is not None:
                            on_frame(item)
            summary.results.sort(key=lambda item: item.index)

    return distribute
