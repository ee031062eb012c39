"""The ``vidcolor`` command line: parses options, runs the library, shows progress.

Exit codes: 0 success; 1 unexpected internal error (set ``VIDCOLOR_DEBUG=1`` for the traceback);
2 bad input, usage or environment (the message names the file, option or missing package and the
fix); 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .. import __version__
from ..errors import VidcolorError
from .batch import batch, cuts_progress, resolve_given, scenes, setting_options, show_done
from .refs import refs

logger = logging.getLogger("vidcolor")

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class VidcolorGroup(click.Group):
    """Maps library errors to one-line messages and meaningful exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VidcolorError as exc:
            click.echo(f"vidcolor: error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("vidcolor: interrupted; nothing was written under the output name", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except ModuleNotFoundError as exc:  # an installation missing a dependency, not a vidcolor bug
            if os.environ.get("VIDCOLOR_DEBUG"):
                raise
            click.echo(f"vidcolor: error: this needs the Python package {exc.name!r}, which is not installed "
                       f"here ({sys.executable}): reinstall with `pip install --force-reinstall vidcolor`, or "
                       f"`pip install {exc.name}`", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except OSError as exc:  # the system refused a file: say which, and what usually fixes it
            if os.environ.get("VIDCOLOR_DEBUG"):
                raise
            where = f" {exc.filename!r}" if exc.filename else ""
            click.echo(f"vidcolor: error:{where}: {exc.strerror or exc}: check that the path exists, is "
                       "readable (inputs) or writable (outputs), and that the disk has free space", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except MemoryError:
            click.echo("vidcolor: error: out of memory: choose a smaller working size (--size) or fewer "
                       "--threads", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except Exception as exc:
            if os.environ.get("VIDCOLOR_DEBUG"):
                raise
            click.echo(f"vidcolor: internal error: {type(exc).__name__}: {exc} (set VIDCOLOR_DEBUG=1 for details)", err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=VidcolorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidcolor")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def main(verbose: bool) -> None:
    """Colorize black-and-white video from colour reference images."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vidcolor: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def run() -> None:
    """The ``vidcolor`` program: :func:`main`, then a quick exit.

    With torch loaded, Python's interpreter teardown takes about half a second after the work is
    done (0.47–0.53 s measured on a 2-core machine), paid again by every file of a script that
    runs vidcolor per file. By then every output is closed and renamed, so once the streams and
    log handlers are flushed the process leaves with ``os._exit``. Not after a Ray run, whose
    cluster is shut down by an exit handler.
    """
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if "ray" in sys.modules:
        sys.exit(code)  # type: ignore[arg-type]
    if isinstance(code, str):  # what sys.exit would print
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


def _progress(total: int | None, quiet: bool, desc: str) -> tuple[tqdm, Callable[[Any], None], Callable[[int], None]]:
    """A bar over the whole output, its ``advance`` (``on_frame``) and ``resumed`` (``on_resume``).

    It counts one step per frame coloured, so Ray chunks finishing in any order add up, and a
    resumed run starts it at the frames the earlier run made: a restorer sees how much of the film is
    done, and the speed and time left count this run's frames alone."""
    bar = tqdm(total=total, unit="frame", desc=desc, dynamic_ncols=True, disable=quiet, leave=False)

    def advance(_result: Any) -> None:
        bar.update(1)

    return bar, advance, lambda frames: show_done(bar, frames)


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", "output_path", required=True, metavar="OUTPUT",
              help="Output file (.mp4/.mkv/.mov), folder, or pattern such as out/%06d.png.")
@click.option("--ref", "refs", multiple=True, metavar="[FRAME=]IMAGE",
              help="Reference image for the whole clip, or FRAME=IMAGE to pin a keyframe (repeatable; "
                   "each applies from its frame on).")
@click.option("--preset", "preset_path", default=None, metavar="PRESET.toml",
              help="Keyframe preset: shots, their references and settings (see presets/README.md). "
                   "Options given here win over its settings.")
@setting_options
@click.option("--stats", "write_stats", is_flag=True,
              help="Write per-frame stats (confidence, warp error, flags) to OUTPUT.stats.jsonl for `vidcolor report`.")
@click.option("--report", "report_path", default=None, metavar="REPORT.html",
              help="After the run, write the HTML colour report (shots, plots, worst frames, keyframe suggestions; "
                   "implies --stats). Suggested frames go to keyframes/ beside it as gray PNGs to paint.")
@click.option("--resume", is_flag=True,
              help="Encode chunk by chunk beside the output, and continue an interrupted run (even after kill -9).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: colorize the chunks of this film in parallel on a Ray cluster (implies --resume).")
@click.option("--address", default=None, metavar="ADDR", help="Ray cluster to join. [default: start a local one]")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None, help="CPUs of the local Ray cluster. [default: all]")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def colorize(input_path: str, output_path: str, refs: Sequence[str], preset_path: str | None, write_stats: bool,
             report_path: str | None, resume: bool, executor: str, address: str | None, num_cpus: int | None,
             overwrite: bool, quiet: bool, **given: Any) -> None:
    """Colorize INPUT (a video, a folder of frames, or a %06d pattern) into OUTPUT."""
    from ..io.reader import probe
    from ..references import load_reference
    from ..run.prepare import colorize_file
    from ..schedule.keyframes import Keyframe, parse_ref_option

    if report_path is not None and not report_path.lower().endswith((".html", ".htm")):
        raise click.BadParameter(f"{report_path!r} should end in .html", param_hint="--report")
    if preset_path is not None and refs:
        raise click.UsageError("give either --preset or --ref: a preset lists its own references")
    if address is not None and executor != "ray":
        raise click.BadParameter("--address joins a Ray cluster: add --executor ray", param_hint="--address")
    info = probe(input_path)
    preset = None
    if preset_path is not None:
        from ..schedule.presets import load_preset

        preset = load_preset(preset_path, fps=info.fps, frame_count=info.frame_count)
    settings = resolve_given(given, preset)
    spec = settings.output_spec(output_path)
    keyframes = []
    for value in refs:
        frame, image = parse_ref_option(value)
        if not image.strip():
            raise click.BadParameter(f"{value!r} names no image: give IMAGE or FRAME=IMAGE, e.g. "
                                     f"{frame or 0}=keyframe.png", param_hint="--ref")
        if frame is None and len(refs) > 1:
            raise click.BadParameter(f"{value!r}: with several references, pin each to a frame as FRAME=IMAGE",
                                     param_hint="--ref")
        keyframes.append(Keyframe(frame or 0, load_reference(image)))
    distribute = None
    if executor == "ray":
        from ..run.distributed import ray_chunks

        distribute = ray_chunks(address, num_cpus)
    cuts_bar, on_scan = cuts_progress(info.frame_count, quiet or not settings.scene_detection(bool(preset or keyframes)))
    bar, advance, resumed = _progress(info.frame_count, quiet, os.path.basename(input_path))
    with logging_redirect_tqdm(loggers=[logger]), cuts_bar, bar:
        run = colorize_file(input_path, spec, settings, info=info, preset=preset, keyframes=keyframes,
                            overwrite=overwrite, resume=resume, distribute=distribute, on_scan=on_scan,
                            on_frame=advance, on_resume=resumed)
    summary = run.summary
    if write_stats or report_path:
        from ..report.measure import run_metadata, run_stats_path, write_run_stats

        options = {"preset": preset_path, "size": settings.size,
                   "temporal check": "on" if settings.temporal is not None else "off",
                   "reference detail": "on" if settings.detail else "off",
                   "flow": settings.flow, "chunk length": settings.chunk_length, "device": settings.device,
                   "encoder preset": spec.encoder_preset if spec.codec.encoder in ("libx264", "libx265") else None}
        given = {k: v for k, v in options.items() if v is not None}
        metadata = run_metadata(summary, run.schedule, run.colorizer, given)
        write_run_stats(run_stats_path(spec.path), ({"frame": r.index, "timecode": r.timecode, "confidence": r.confidence,
                                                     **r.stats} for r in summary.results), run=metadata)
    if not quiet:
        resumed = f" ({summary.resumed_frames} resumed from the earlier run)" if summary.resumed_frames else ""
        click.echo(f"wrote {spec.path}: {summary.output_frames} frames{resumed} in {summary.seconds:.1f} s "
                   f"({summary.fps:.1f} fps, model {summary.model}, working size {summary.working_size[0]}x{summary.working_size[1]}"
                   f"{', temporal check' if settings.temporal is not None else ''})")
    if report_path:
        from ..report.html import write_html_report

        def taken(message: str) -> None:
            click.echo(f"warning: {message}; {report_path} is written without keyframe images", err=True)

        result = write_html_report(spec.path, input_path, report_path, preset_path=preset_path, on_taken=taken)
        if not quiet:
            found = ", ".join(str(s["frame"]) for s in result["suggestions"]) or "none"
            click.echo(f"wrote {report_path}: {len(result['shots'])} shot(s), suggested keyframes: {found}")


@main.command()
@click.option("-o", "--output-dir", default="demo-output", show_default=True, help="Folder for the demo files.")
@click.option("--model", default=None, metavar="NAME", help="Colorizer to demonstrate. [default: default]")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def demo(output_dir: str, model: str | None, quiet: bool) -> None:
    """Build a demo clip from a photo scikit-image ships, gray it, and colorize it back."""
    from ..colorizers import build_colorizer, default_model, set_torch_threads
    from ..demo import clip_psnr, make_demo_clip
    from ..run.pipeline import colorize_video
    from ..references import load_reference
    from ..schedule.keyframes import ReferenceSchedule
    from ..temporal import TemporalSettings
    from ..io.writer import resolve_output
    from ..run.settings import model_encoder_preset

    model = model or default_model()
    clip = make_demo_clip(output_dir)
    result_path = os.path.join(output_dir, "demo-colorized.mp4")
    spec = resolve_output(result_path, encoder_preset=model_encoder_preset(model))  # as `colorize` would encode it
    set_torch_threads(None, model)
    colorizer = build_colorizer(model, temporal=TemporalSettings())
    bar, advance, _ = _progress(clip.frames, quiet, "demo")
    with logging_redirect_tqdm(loggers=[logger]), bar:
        summary = colorize_video(clip.gray_video, spec, ReferenceSchedule.single(load_reference(clip.reference)),
                                 colorizer, overwrite=True, on_frame=advance)
    gray_psnr = clip_psnr(clip.gray_video, clip.color_video)
    ours_psnr = clip_psnr(result_path, clip.color_video)
    click.echo(f"demo: colorized {summary.frames} frames with model {summary.model!r} at {summary.fps:.1f} fps")
    click.echo(f"  input (gray):   {clip.gray_video}")
    click.echo(f"  reference:      {clip.reference}")
    click.echo(f"  result:         {os.path.abspath(result_path)}")
    click.echo(f"  colour original {clip.color_video}")
    click.echo(f"  PSNR vs original: gray input {gray_psnr:.2f} dB, colorized {ours_psnr:.2f} dB")


@main.group()
def models() -> None:
    """List models and import third-party weights (never downloaded: you give the files)."""


@models.command("list")
def models_list() -> None:
    """Show every model, whether its weights are installed, and where they live."""
    from ..colorizers import MODELS
    from ..weights import list_models

    rows = list_models()
    width = max(len(r.name) for r in rows)
    for row in rows:
        state = "installed" if row.installed else "not installed"
        click.echo(f"{row.name:<{width}}  {state:<13}  {row.location}")
        click.echo(f"{'':<{width}}  files: {', '.join(row.files)}; licence: {row.licence}; source: {row.source}")
    click.echo("colorizers (--model): " + ", ".join(f"{name} ({entry.summary})" for name, entry in MODELS.items()))


@models.command("import")
@click.argument("name", metavar="NAME")
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
def models_import(name: str, paths: Sequence[str]) -> None:
    """Install NAME's weights from a release zip, a folder or the files themselves; each file's
    keys, shapes (and hash, where the release names it) are checked before anything is replaced."""
    from ..weights import import_weights

    for item in import_weights(name, paths):
        click.echo(f"installed {item.filename} ({item.size / 1e6:.1f} MB, sha256 {item.sha256[:12]}...) from "
                   f"{item.source} -> {item.path}")


@main.command()
@click.argument("output_path", metavar="OUTPUT", type=click.Path(path_type=str))
@click.option("--source", "source_path", required=True, metavar="INPUT", help="The gray input OUTPUT was made from.")
@click.option("--ground-truth", "truth_path", default=None, metavar="GT", help="The true colour video, for PSNR/SSIM.")
@click.option("--stats", "stats_path", default=None, metavar="FILE",
              help="Per-frame stats of the run. [default: OUTPUT.stats.jsonl when it exists]")
@click.option("--preset", "preset_path", default=None, metavar="PRESET.toml",
              help="The preset OUTPUT was colorized with: its shots become the report's shots.")
@click.option("--detect-scenes/--no-detect-scenes", default=None,
              help="Without a preset, split the report into shots at PySceneDetect's cuts. [default: on with -o]")
@click.option("--json", "json_path", default=None, metavar="FILE", help="Write the report as JSON.")
@click.option("--csv", "csv_path", default=None, metavar="FILE", help="Write the per-frame table as CSV.")
@click.option("-o", "--html", "html_path", default=None, metavar="REPORT.html",
              help="Write a self-contained HTML page: shots, plots, worst frames and keyframe suggestions.")
@click.option("--keyframe-images/--no-keyframe-images", default=True, show_default=True,
              help="With -o, write each suggested frame as a gray PNG keyframes/<film>_fNNNNNN.png beside the "
                   "page, to paint. An existing one is kept only if it is this film's frame (maybe painted); "
                   "another film's image there stops the report with an error (without images, the page marks it).")
def report(output_path: str, source_path: str, truth_path: str | None, stats_path: str | None, preset_path: str | None,
           detect_scenes: bool | None, json_path: str | None, csv_path: str | None, html_path: str | None,
           keyframe_images: bool) -> None:
    """Measure a colorized OUTPUT: warp error, CDC, colourfulness (PSNR/SSIM with ground truth),
    per shot, with the frames where a new reference would help most."""
    from ..report.measure import write_csv, write_json
    from ..report.html import measure_with_shots, render_html

    detect = detect_scenes if detect_scenes is not None else (None if html_path else False)
    result, plan = measure_with_shots(output_path, source_path, truth_path, preset_path=preset_path,
                                      run_stats=stats_path, detect=detect)
    if json_path:
        write_json(result, json_path)
    if csv_path:
        write_csv(result, csv_path)
    if html_path:
        render_html(result, html_path, source_path=source_path, colorized_path=output_path, ground_truth_path=truth_path,
                    plan=plan, suggestions=result["suggestions"], write_keyframes=keyframe_images)
    summary = result["summary"]
    parts = [f"{summary['frames']} frames", f"warp error {summary['warp_error']:.5f}", f"CDC {summary['cdc']:.4f}",
             f"colourfulness {summary['colorfulness']:.1f}", f"flagged {summary['flagged_frames']}"]
    if "psnr" in summary:
        ratio = summary.get("warp_ratio")
        parts += [f"PSNR {summary['psnr']:.2f} dB", f"SSIM {summary['ssim']:.4f}",
                  f"warp ratio {ratio:.3f}" if ratio is not None else "warp ratio n/a"]
    click.echo(f"{output_path}: " + ", ".join(parts))
    if len(result["shots"]) > 1:
        click.echo(f"  {len(result['shots'])} shots ({plan.origin})")
    for item in result["suggestions"]:
        click.echo(f"  suggested keyframe {item['rank']}: frame {item['frame']} ({item['timecode']}): {item['ref_option']}")
    if html_path:
        click.echo(f"  wrote {html_path}")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: Sequence[str]) -> None:
    """Train the default model on the CPU (options: vidcolor train --help)."""
    from ..training.default import main as train_main

    train_main(list(args), prog="vidcolor train")


main.add_command(scenes)
main.add_command(batch)
main.add_command(refs)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
