"""``vidcolor scenes`` and ``vidcolor batch``, and the run-setting options ``colorize`` shares with ``batch``.

Registered on the main group in :mod:`vidcolor.cli` (``main.add_command(scenes)``), whose error
handling turns library errors into one-line messages and exit code 2. ``batch`` exits with
:data:`EXIT_FILES_FAILED` when it finished but some files failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

if TYPE_CHECKING:
    from ..io.reader import VideoInfo
    from ..run.batch import Job
    from ..run.settings import RunSettings
    from ..schedule.keyframes import ReferenceSchedule
    from ..schedule.presets import Preset

logger = logging.getLogger("vidcolor")

#: ``vidcolor batch`` ran to the end but at least one file failed (named in the summary).
EXIT_FILES_FAILED = 3
ENCODER_PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
CODECS = ["h264", "hevc", "ffv1", "prores", "png", "tiff"]
FLOWS = ["auto", "dis", "raft-small", "raft-large"]
ANCHORS = ["auto", "pinned"]

#: The options of :class:`vidcolor.run.settings.RunSettings`, the same for ``colorize`` and ``batch``.
#: None when not given: the preset's value, else the default, applies (:func:`resolve_given`).
SETTING_OPTIONS = (
    click.option("--model", default=None, metavar="NAME",
                 help="Colorizer: default, classic, fast, deepex (exemplar); eccv16, cheng2015 (automatic, no "
                      "reference); `vidcolor models list` names them all. [default: the preset's, else default]"),
    click.option("--auto-model", default=None, metavar="NAME",
                 help="Without any reference, this automatic model colours up to 17 frames of each shot (16 evenly spaced and the middle one), the middle one becomes the shot's reference unless another is clearly surer, and --model "
                      "carries it through the shot. [default: the best installed automatic model]"),
    click.option("--fallback", default=None, metavar="NAME|none",
                 help="Where the references do not show the scene (a new object, what a cropped keyframe leaves "
                      "out), blend in this automatic model's colour, pixel by pixel. [default: the preset's, else "
                      "none]"),
    click.option("--size", default=None, metavar="N|WxH",
                 help="Working resolution for chroma prediction: short side N, or WxH. Aspect is kept; luma stays full "
                      "size. [default: the preset's, else the model's]"),
    click.option("--temporal/--no-temporal", default=None,
                 help="Optical-flow temporal check while colorizing (steadier colour, per-frame flags). "
                      "[default: on, with the preset's [temporal] values]"),
    click.option("--flow", type=click.Choice(FLOWS), default=None,
                 help="Optical flow for the temporal check: auto takes installed RAFT weights, else OpenCV DIS. "
                      "[default: auto]"),
    click.option("--detail/--no-detail", default=None,
                 help="Carry the references' colour detail finer than the working size (printed text, patterns, "
                      "thin painted lines) onto the full-size output by optical flow; costs a little speed. "
                      "[default: the preset's, else off]"),
    click.option("--detect-scenes/--no-detect-scenes", default=None,
                 help="Reset the colorizer at cuts PySceneDetect finds. [default: the preset's; without a preset, "
                      "on only when there is no reference]"),
    click.option("--codec", type=click.Choice(CODECS), default=None,
                 help="Encoder. [default: the preset's, else from the output's extension (batch: h264 for videos, "
                      "png for frame folders)]"),
    click.option("--crf", type=click.IntRange(0, 51), default=None,
                 help="Quality for h264/hevc (lower is better). [default: the preset's, else the encoder's]"),
    click.option("--encoder-preset", type=click.Choice(ENCODER_PRESETS), default=None,
                 help="x264/x265 speed preset. [default: the preset's, else medium; superfast for --model fast]"),
    click.option("--device", default=None, help="Torch device for learned models (cpu, cuda, cuda:1). [default: cpu]"),
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="Torch CPU threads for the model. [default: 1 (decoding, encoding and chroma use the other "
                      "cores); all cores for deepex]"),
    click.option("--chunk-length", type=click.IntRange(0), default=None,
                 help="Frames per chunk: the recurrence restarts (with warm-up) every so many frames of a shot; "
                      "the unit of --resume. Use the same value as in VapourSynth for identical frames. 0: whole "
                      "shots. [default: 240]"),
    click.option("--anchor", type=click.Choice(ANCHORS), default=None,
                 help="auto: colour each keyframe's shot outward from the frame its reference really shows (found "
                      "among the shot's first 64 frames), so the frames next to it come out best; --ref FRAME=IMAGE "
                      "still says where the shot starts. pinned: from the frame the reference is pinned to. "
                      "[default: the preset's, else pinned]"),
)


def setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add :data:`SETTING_OPTIONS` to a command (they reach it as keyword arguments)."""
    for option in reversed(SETTING_OPTIONS):
        command = option(command)
    return command


def resolve_given(given: Mapping[str, Any], preset: Preset | None = None) -> RunSettings:
    """The run's settings from the options given (and ``preset``); a bad value is a usage error
    naming its option."""
    from ..run.settings import SettingError, resolve_settings

    try:
        return resolve_settings(given, preset)
    except SettingError as exc:
        raise click.BadParameter(str(exc), param_hint="--" + exc.setting.replace("_", "-")) from None


def cuts_progress(total: int | None, quiet: bool) -> tuple[tqdm, Callable[[int], None]]:
    """The "finding cuts" bar of a scene-detection pass, and the callback advancing it."""
    bar = tqdm(total=total, unit="frame", desc="finding cuts", dynamic_ncols=True, disable=quiet, leave=False)
    return bar, lambda _: bar.update(1)


def show_done(bar: tqdm, frames: int) -> None:
    """Start ``bar`` at the ``frames`` an earlier run made (a resume), so that it shows how much of
    the film is done while its speed and time left count only the frames this run colours."""
    bar.n = bar.last_print_n = bar.initial = frames
    bar.refresh()


def schedule_from_preset(preset: str | Preset, info: VideoInfo, *, detect: bool | None = None,
                         quiet: bool = False) -> tuple[ReferenceSchedule, Preset]:
    """A preset's schedule on a clip (loaded, given a path), with scene detection when the preset
    (or ``detect``, from ``--detect-scenes/--no-detect-scenes``) asks for it; a progress bar shows it."""
    from ..run.prepare import build_schedule
    from ..schedule.presets import load_preset

    if isinstance(preset, str):
        preset = load_preset(preset, fps=info.fps, frame_count=info.frame_count)
    settings = resolve_given({"detect_scenes": detect}, preset)
    bar, advance = cuts_progress(info.frame_count, quiet or not settings.scene_detection(True))
    with logging_redirect_tqdm(loggers=[logger]), bar:
        schedule, _ = build_schedule(info, settings, preset=preset, on_frame=advance)
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
@setting_options
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run files here one by one, or spread them over a Ray cluster.")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to join (e.g. ray://head:10001 or auto). [default: start a local one]")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray cluster (one file per CPU). [default: all]")
@click.option("--retry-failed", is_flag=True, help="Try again files that failed before with the same inputs.")
@click.option("--overwrite", is_flag=True, help="Replace outputs this batch did not write itself.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no table (failures are still reported).")
def batch(in_dir: str, out_dir: str, preset: str | None, ref: str | None, executor: str, address: str | None,
          num_cpus: int | None, retry_failed: bool, overwrite: bool, quiet: bool, **given: Any) -> None:
    """Colorize every video and frame folder in IN_DIR into OUT_DIR; resumable.

    Options given here win over each film's preset, whose settings win over the defaults.
    Rerunning continues where a stopped run left off: finished files are skipped, an interrupted
    one resumes. One failing file never stops the others; the exit code is 3 when any failed.
    """
    from ..run.batch import BatchOptions, Journal, colorize_job, format_table, plan_batch, run_batch, summary_rows

    resolve_given(given)  # a bad option is refused now, not once per film
    if address is not None and executor != "ray":
        raise click.BadParameter("--address joins a Ray cluster: add --executor ray", param_hint="--address")
    options = BatchOptions(preset=preset, ref=ref, overwrite=overwrite, **given)
    jobs = plan_batch(in_dir, out_dir, options)
    if not jobs:
        raise click.UsageError(f"no video files or frame folders in {in_dir!r}: nothing to colorize")
    refuse_overlaps(jobs)
    files = tqdm(total=len(jobs), unit="file", desc="batch", dynamic_ncols=True, disable=quiet, position=0)
    frames = tqdm(unit="frame", dynamic_ncols=True, disable=quiet or executor != "local", leave=False, position=1)

    def on_start_video(info: VideoInfo) -> None:
        frames.reset(total=info.frame_count)
        frames.initial = 0  # the last film's resumed frames are not this one's

    def run_here(job: Any) -> object:
        frames.set_description(job.name)
        return colorize_job(job, on_start=on_start_video, on_frame=lambda _: frames.update(1),
                            on_resume=lambda done: show_done(frames, done))

    def on_result(result: Any) -> None:
        files.update(1)
        if not result.ok and not result.earlier:
            files.write(f"vidcolor: {result.job.name} failed: {result.message}")
        elif result.ok and not result.earlier and not quiet:
            resumed = f", {result.resumed} resumed from the earlier run" if result.resumed else ""
            files.write(f"done {result.job.name} -> {result.job.output} ({result.frames} frames{resumed}, {result.seconds:.1f} s)")

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
