"""``vidcolor scenes`` and ``vidcolor batch``, plus the ``--preset`` handling of ``colorize``.

Registered on the main group in :mod:`vidcolor.cli` (``main.add_command(scenes)``), whose error
handling turns library errors into one-line messages and exit code 2. ``batch`` exits with
:data:`EXIT_FILES_FAILED` when it finished but some files failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

if TYPE_CHECKING:
    from ..run.batch import Job
    from ..schedule.presets import Preset
    from ..io.reader import VideoInfo
    from ..schedule.keyframes import ReferenceSchedule

logger = logging.getLogger("vidcolor")

#: ``vidcolor batch`` ran to the end but at least one file failed (named in the summary).
EXIT_FILES_FAILED = 3
ENCODER_PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
CODECS = ["h264", "hevc", "ffv1", "prores", "png", "tiff"]


def schedule_from_preset(preset: str | Preset, info: VideoInfo, *, detect: bool | None = None,
                         quiet: bool = False) -> tuple[ReferenceSchedule, Preset]:
    """``colorize --preset``: load (given a path) and check the preset against the clip, run scene
    detection when the preset (or ``detect``, from ``--detect-scenes/--no-detect-scenes``) asks for it."""
    from ..run.batch import preset_schedule
    from ..schedule.presets import load_preset

    if isinstance(preset, str):
        preset = load_preset(preset, fps=info.fps, frame_count=info.frame_count)
    wants = detect if detect is not None else preset.scenes.detect
    bar = tqdm(total=info.frame_count, unit="frame", desc="finding cuts", dynamic_ncols=True,
               disable=quiet or not wants, leave=False)
    with logging_redirect_tqdm(loggers=[logger]), bar:
        schedule = preset_schedule(preset, info, detect=detect, on_frame=lambda _: bar.update(1))
    return schedule, preset


def refuse_overlaps(jobs: Sequence[Job]) -> None:
    """Before any file runs (and any model loads), refuse a batch where an output would land on,
    hold or sit inside an input (e.g. ``-o`` inside a frame folder). Each job checks its existing
    output again itself, knowing from the journal whether the batch wrote it."""
    from ..io.writer import CODECS, OutputSpec, check_not_input

    video_extensions = {codec.extension for codec in CODECS.values() if not codec.image_sequence}
    for job in jobs:
        if job.problem is None:
            video = os.path.splitext(job.output)[1].lower() in video_extensions
            check_not_input(OutputSpec(job.output, CODECS["h264" if video else "png"]), job.input)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", "preset_path", required=True, metavar="PRESET.toml",
              help="Preset skeleton to write (one [[shot]] per detected shot).")
@click.option("--keyframes", "keyframes_dir", default=None, metavar="DIR",
              help="Folder for the gray keyframe PNGs, one per shot. [default: keyframes/ beside the preset]")
@click.option("--threshold", type=click.FloatRange(0, 255, min_open=True, max_open=True), default=27.0, show_default=True,
              help="Mean luma change (0-255) between two frames that counts as a cut; lower finds more cuts.")
@click.option("--min-length", type=click.IntRange(min=1), default=15, show_default=True,
              help="Shortest shot in frames (shorter flashes are merged).")
@click.option("--overwrite", is_flag=True, help="Replace an existing preset (painted keyframe images are never replaced).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def scenes(input_path: str, preset_path: str, keyframes_dir: str | None, threshold: float, min_length: int,
           overwrite: bool, quiet: bool) -> None:
    """Find the shots of INPUT (PySceneDetect) and write a preset skeleton plus one gray
    keyframe PNG per shot, to paint in colour and save under the same name."""
    from ..io.reader import probe
    from ..schedule.timecodes import timecode
    from ..schedule.scenes import write_scene_preset

    keyframes_dir = keyframes_dir or os.path.join(os.path.dirname(os.path.abspath(preset_path)), "keyframes")
    info = probe(input_path)
    bar = tqdm(total=info.frame_count, unit="frame", desc="finding cuts", dynamic_ncols=True, disable=quiet, leave=False)
    with logging_redirect_tqdm(loggers=[logger]), bar:
        result = write_scene_preset(input_path, preset_path, keyframes_dir, threshold=threshold, min_length=min_length,
                                    overwrite=overwrite, on_frame=lambda _: bar.update(1))
    if quiet:
        return
    fps = float(result.fps) if result.fps > 0 else 24.0
    click.echo(f"wrote {result.preset}: {len(result.shots)} shot(s)")
    for number, shot in enumerate(result.shots, 1):
        state = "kept (exists)" if shot.kept_existing else "gray, to paint"
        click.echo(f"  shot {number:3d}  frames {shot.start:6d}-{shot.end:<6d} {timecode(shot.start / fps)}  "
                   f"keyframe {shot.image} [{state}]")


@click.command()
@click.argument("in_dir", metavar="IN_DIR", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--output-dir", "out_dir", required=True, metavar="OUT_DIR",
              help="Folder for the colorized films and the batch journal (vidcolor-batch.json).")
@click.option("--preset", default=None, metavar="PRESET.toml",
              help="Preset for films without their own (a film's own is FILM.toml beside it).")
@click.option("--ref", default=None, metavar="IMAGE", help="Reference for films with no preset at all.")
@click.option("--model", default=None, metavar="NAME", help="Colorizer, over the presets' choice. [default: default]")
@click.option("--auto-model", default=None, metavar="NAME",
              help="Automatic model for films with no preset and no --ref (no-reference mode). [default: eccv16, else cheng2015]")
@click.option("--size", default=None, metavar="N|WxH", help="Working resolution, over the presets' choice.")
@click.option("--codec", type=click.Choice(CODECS), default=None,
              help="Encoder, over the presets'. [default: h264 for videos, png for frame folders]")
@click.option("--crf", type=click.IntRange(0, 51), default=None, help="Quality for h264/hevc (lower is better).")
@click.option("--encoder-preset", type=click.Choice(ENCODER_PRESETS), default=None, help="x264/x265 speed preset.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for learned models.")
@click.option("--detect-scenes/--no-detect-scenes", default=None,
              help="Reset at cuts PySceneDetect finds. [default: as each preset says; off with --ref]")
@click.option("--temporal/--no-temporal", default=None,
              help="Optical-flow temporal check. [default: as each preset says; on]")
@click.option("--flow", type=click.Choice(["auto", "dis", "raft-small", "raft-large"]), default="auto", show_default=True,
              help="Optical flow for the temporal check.")
@click.option("--detail/--no-detail", default=None,
              help="Carry the references' colour detail finer than the working size onto the full-size output. "
                   "[default: as each preset says; off]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run files here one by one, or spread them over a Ray cluster.")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to join (e.g. ray://head:10001 or auto). [default: start a local one]")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray cluster (one file per CPU). [default: all]")
@click.option("--retry-failed", is_flag=True, help="Try again files that failed before with the same inputs.")
@click.option("--overwrite", is_flag=True, help="Replace outputs this batch did not write itself.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no table (failures are still reported).")
def batch(in_dir: str, out_dir: str, preset: str | None, ref: str | None, model: str | None, auto_model: str | None,
          size: str | None,
          codec: str | None, crf: int | None, encoder_preset: str | None, device: str, detect_scenes: bool | None,
          temporal: bool | None, flow: str, detail: bool | None, executor: str, address: str | None, num_cpus: int | None, retry_failed: bool, overwrite: bool,
          quiet: bool) -> None:
    """Colorize every video and frame folder in IN_DIR into OUT_DIR; resumable.

    Rerunning continues where a stopped run left off: finished files are skipped, an interrupted
    one resumes. One failing file never stops the others; the exit code is 3 when any failed.
    """
    from ..run.batch import BatchOptions, Journal, colorize_job, format_table, plan_batch, run_batch, summary_rows
    from ..colorizers import default_model
    from ..colorizers import MODELS
    from ..run.sizes import parse_size

    if model is not None and model not in MODELS:
        raise click.BadParameter(f"unknown model {model!r}: choose one of {', '.join(MODELS)}", param_hint="--model")
    try:
        parse_size(size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    if address is not None and executor != "ray":
        raise click.BadParameter("--address joins a Ray cluster: add --executor ray", param_hint="--address")
    options = BatchOptions(preset=preset, ref=ref, model=model, auto_model=auto_model, default_model=default_model(),
                           size=size, codec=codec,
                           crf=crf, encoder_preset=encoder_preset, device=device, detect_scenes=detect_scenes,
                           temporal=temporal, flow=flow, detail=detail, overwrite=overwrite)
    jobs = plan_batch(in_dir, out_dir, options)
    if not jobs:
        raise click.UsageError(f"no video files or frame folders in {in_dir!r}: nothing to colorize")
    refuse_overlaps(jobs)
    files = tqdm(total=len(jobs), unit="file", desc="batch", dynamic_ncols=True, disable=quiet, position=0)
    frames = tqdm(unit="frame", dynamic_ncols=True, disable=quiet or executor != "local", leave=False, position=1)
    state: dict[str, Any] = {"last": -1}

    def on_start_video(info: VideoInfo) -> None:
        frames.reset(total=info.frame_count)
        state["last"] = -1

    def on_frame(result: Any) -> None:
        frames.update(result.index - state["last"])
        state["last"] = result.index

    def run_here(job: Any) -> object:
        frames.set_description(job.name)
        return colorize_job(job, on_start=on_start_video, on_frame=on_frame)

    def on_result(result: Any) -> None:
        files.update(1)
        if not result.ok and not result.earlier:
            files.write(f"vidcolor: {result.job.name} failed: {result.message}")
        elif result.ok and not result.earlier and not quiet:
            files.write(f"done {result.job.name} -> {result.job.output} ({result.frames} frames, {result.seconds:.1f} s)")

    with logging_redirect_tqdm(loggers=[logger]), files, frames, Journal(out_dir) as journal:
        results = run_batch(jobs, run_here if executor == "local" else colorize_job, journal=journal, executor=executor,
                            address=address, num_cpus=num_cpus, retry_failed=retry_failed, on_result=on_result)
    failed = [r for r in results if not r.ok]
    if not quiet:
        click.echo(format_table(summary_rows(results)))
    done_now = sum(1 for r in results if r.ok and not r.earlier)
    done_before = sum(1 for r in results if r.ok and r.earlier)
    if failed:
        names = ", ".join(r.job.name for r in failed)
        click.echo(f"vidcolor: {len(failed)} of {len(results)} file(s) failed: {names} "
                   f"(journal {os.path.join(out_dir, 'vidcolor-batch.json')}; fix them and run the batch again"
                   f"{', with --retry-failed if their inputs did not change' if any(r.earlier for r in failed) else ''})",
                   err=True)
        raise click.exceptions.Exit(EXIT_FILES_FAILED)
    if not quiet:
        click.echo(f"batch complete: {done_now} colorized now, {done_before} already done")
