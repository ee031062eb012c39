"""From resolved settings to a run: the models (:func:`build_colorizers`), the reference schedule
with its scene cuts (:func:`build_schedule`), and a whole file colorized with them
(:func:`colorize_file`, what ``vidcolor colorize`` and each ``vidcolor batch`` job run).

The VapourSynth filter builds its schedule from its own inputs (clips, frame properties) and
shares :func:`build_colorizers` and the settings, so every front end makes the same frames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..colorizers.base import Colorizer
from ..io.reader import VideoInfo, probe
from ..io.writer import OutputSpec, check_encodable, check_output
from ..schedule.keyframes import Keyframe, ReferenceSchedule
from .chunks import ChunkDistributor
from .pipeline import colorize_video
from .results import FrameResult, RunSummary
from .settings import RunSettings
from .shots import ShotKeyframes, scan_shots

if TYPE_CHECKING:
    from ..schedule.presets import Preset

logger = logging.getLogger(__name__)


def build_colorizers(settings: RunSettings, has_references: bool) -> tuple[Colorizer, Colorizer | None]:
    """The run's colorizer (with the temporal check when on) and, for a run without references,
    no-reference mode's automatic model (None otherwise). Sets torch's thread count first: it
    changes how float sums are split, so it is part of what makes the front ends' frames equal."""
    from ..colorizers import build_colorizer, no_reference_colorizer, set_torch_threads  # noqa: PLC0415

    set_torch_threads(settings.threads, settings.model)
    fallback = None if settings.fallback == "none" else settings.fallback
    colorizer = build_colorizer(settings.model, device=settings.device, temporal=settings.temporal, flow=settings.flow,
                                fallback=fallback)
    auto = no_reference_colorizer(colorizer, has_references, settings.auto_model, device=settings.device)
    return colorizer, auto


def build_schedule(info: VideoInfo, settings: RunSettings, *, preset: Preset | None = None,
                   keyframes: Sequence[Keyframe] = (), keep_at: tuple[int, int] | None = None,
                   on_frame: Callable[[int], None] | None = None, auto: Colorizer | None = None
                   ) -> tuple[ReferenceSchedule, ShotKeyframes | None]:
    """The reference schedule of a run on ``info``: the preset's shots, else ``keyframes``, plus the
    cuts PySceneDetect finds when :meth:`RunSettings.scene_detection` says so (``on_frame`` sees
    that pass). ``keep_at`` (no-reference mode's working size) keeps each shot's automatic keyframe
    candidates on the way, or with ``auto`` the one it chooses (:func:`scan_shots`), sparing a second decode."""
    if preset is not None:
        preset.resolve(info.fps, info.frame_count)  # the shots are checked before the cuts are looked for
        has_references = True  # a preset without any reference is refused when scheduled
    else:
        has_references = bool(keyframes)
    cuts: list[int] = []
    kept = None
    if settings.scene_detection(has_references):
        cuts, kept = scan_shots(info, keep_at, on_frame=on_frame, threshold=settings.scene_threshold,
                                min_length=settings.scene_min_length, auto=auto)
    if preset is not None:
        schedule = preset.schedule(info.frame_count, info.fps, cuts)
    else:
        schedule = ReferenceSchedule(keyframes, cuts, frame_count=info.frame_count)
    schedule.validate(info.frame_count, info.path)
    return schedule, kept


@dataclass(frozen=True)
class FileRun:
    """What :func:`colorize_file` did: the pipeline's summary, the schedule and the colorizer."""

    summary: RunSummary
    schedule: ReferenceSchedule
    colorizer: Colorizer


def colorize_file(input_path: str, spec: OutputSpec, settings: RunSettings, *, info: VideoInfo | None = None,
                  preset: Preset | None = None, keyframes: Sequence[Keyframe] = (), overwrite: bool = False,
                  resume: bool = False, restart_on_change: bool = False, signature: Mapping[str, object] | None = None,
                  distribute: ChunkDistributor | None = None, on_scan: Callable[[int], None] | None = None,
                  on_start: Callable[[VideoInfo], None] | None = None,
                  on_frame: Callable[[FrameResult], None] | None = None,
                  on_resume: Callable[[int], None] | None = None) -> FileRun:
    """Colorize ``input_path`` into ``spec`` with ``settings``, from ``preset``'s shots or
    ``keyframes`` (neither: no-reference mode). The output is checked before the models load.

    ``resume``, ``restart_on_change``, ``distribute``, ``on_start``, ``on_frame``, ``on_resume``: as
    :func:`vidcolor.run.pipeline.colorize_video`; ``signature``: its ``settings`` (what else must
    match for a resumed run); ``on_scan``: progress of the scene-detection pass.
    """
    info = info or probe(input_path)
    check_output(spec, input_path, overwrite=overwrite)
    check_encodable(spec, info)
    has_references = preset is not None or bool(keyframes)
    colorizer: Colorizer | None = None
    auto: Colorizer | None = None
    if not has_references:  # no-reference mode keeps each shot's keyframe at the model's working size
        colorizer, auto = build_colorizers(settings, has_references)
    keep_at = None
    if colorizer is not None and auto is not None:
        keep_at = settings.work_size(info.width, info.height, colorizer)
    # with references the schedule (reference images, cuts) is checked before the models load
    schedule, kept = build_schedule(info, settings, preset=preset, keyframes=keyframes, keep_at=keep_at,
                                    on_frame=on_scan, auto=auto)
    if colorizer is None:
        colorizer, auto = build_colorizers(settings, has_references)
    if auto is not None:
        logger.info("no reference: the %s model colours each of %d shot(s) from its most confident frame", auto.name,
                    len(schedule.cuts - {0}) + 1)
    if settings.detail and not schedule.keyframes:
        logger.warning("--detail carries a reference's fine colour, and this run has no reference: it changes nothing")
    summary = colorize_video(input_path, spec, schedule, colorizer, short_side=settings.short_side,
                             size=settings.fixed_size, overwrite=overwrite, on_start=on_start, on_frame=on_frame,
                             info=info, plan=settings.plan, resume=resume, settings=signature, auto=auto,
                             distribute=distribute, detail=settings.reference_detail(),
                             restart_on_change=restart_on_change, kept_keyframes=kept, anchor=settings.anchor,
                             on_resume=on_resume)
    return FileRun(summary, schedule, colorizer)


__all__ = ["FileRun", "build_colorizers", "build_schedule", "colorize_file"]
