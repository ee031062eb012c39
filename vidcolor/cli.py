"""The ``vidcolor`` command line: parses options, runs the library, shows progress.

Exit codes: 0 success; 1 unexpected internal error (set ``VIDCOLOR_DEBUG=1`` for the traceback);
2 bad input or usage (the message names the file or option and the fix); 130 interrupted.
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

from . import __version__
from .errors import VidcolorError

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


def _progress(total: int | None, quiet: bool, desc: str) -> tuple[tqdm, Callable[[Any], None]]:
    bar = tqdm(total=total, unit="frame", desc=desc, dynamic_ncols=True, disable=quiet, leave=False)
    state = {"last": -1}

    def advance(result: Any) -> None:
        # advance by the frame-index delta, right even if frames were skipped
        bar.update(result.index - state["last"])
        state["last"] = result.index

    return bar, advance


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", "output_path", required=True, metavar="OUTPUT",
              help="Output file (.mp4/.mkv/.mov), folder, or pattern such as out/%06d.png.")
@click.option("--ref", "refs", multiple=True, metavar="[FRAME=]IMAGE",
              help="Reference image for the whole clip, or FRAME=IMAGE to pin a keyframe (repeatable; "
                   "each applies from its frame on).")
@click.option("--model", default=None, metavar="NAME", help="Colorizer: default, classic, deepex. [default: default]")
@click.option("--size", default=None, metavar="N|WxH",
              help="Working resolution for chroma prediction: short side N, or WxH. Aspect is kept; luma stays full size.")
@click.option("--codec", type=click.Choice(["h264", "hevc", "ffv1", "prores", "png", "tiff"]), default=None,
              help="Encoder. [default: from the output's extension]")
@click.option("--crf", type=click.IntRange(0, 51), default=None, help="Quality for h264/hevc (lower is better).")
@click.option("--encoder-preset", default="medium", show_default=True,
              type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]),
              help="x264/x265 speed preset.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for learned models (cpu, cuda, cuda:1).")
@click.option("--resume", is_flag=True,
              help="Encode chunk by chunk beside the output, and continue an interrupted run (even after kill -9).")
@click.option("--chunk-length", type=click.IntRange(0), default=240, show_default=True,
              help="Frames per chunk: the recurrence restarts (with warm-up) every so many frames of a shot; "
                   "the unit of --resume. Use the same value as in VapourSynth for identical frames. 0: whole shots.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def colorize(input_path: str, output_path: str, refs: Sequence[str], model: str | None, size: str | None,
             codec: str | None, crf: int | None, encoder_preset: str, device: str, resume: bool, chunk_length: int,
             overwrite: bool, quiet: bool) -> None:
    """Colorize INPUT (a video, a folder of frames, or a %06d pattern) into OUTPUT."""
    from .colorizers import MODELS, get_colorizer
    from .pipeline import ChunkPlan, colorize_video, parse_size
    from .reader import probe
    from .references import load_reference
    from .schedule import Keyframe, ReferenceSchedule, parse_ref_option
    from .writer import resolve_output

    model = model or default_model()
    if model not in MODELS:
        raise click.BadParameter(f"unknown model {model!r}: choose one of {', '.join(MODELS)}", param_hint="--model")
    try:
        short_side, fixed = parse_size(size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    spec = resolve_output(output_path, codec=codec, crf=crf, encoder_preset=encoder_preset)
    info = probe(input_path)
    keyframes = []
    for value in refs:
        frame, image = parse_ref_option(value)
        if frame is None and len(refs) > 1:
            raise click.BadParameter(f"{value!r}: with several references, pin each to a frame as FRAME=IMAGE", param_hint="--ref")
        keyframes.append(Keyframe(frame or 0, load_reference(image)))
    if not keyframes:
        raise click.UsageError("no reference given: pass --ref IMAGE (or --ref FRAME=IMAGE for keyframes)")
    schedule = ReferenceSchedule(keyframes)
    schedule.validate(info.frame_count, input_path)
    colorizer = get_colorizer(model, device=device)
    bar, advance = _progress(info.frame_count, quiet, os.path.basename(input_path))
    with logging_redirect_tqdm(loggers=[logger]), bar:
        summary = colorize_video(input_path, spec, schedule, colorizer, short_side=short_side, size=fixed,
                                 overwrite=overwrite, on_frame=advance, info=info, resume=resume,
                                 plan=ChunkPlan(length=chunk_length))
    if not quiet:
        click.echo(f"wrote {spec.path}: {summary.frames} frames in {summary.seconds:.1f} s "
                   f"({summary.fps:.1f} fps, model {summary.model}, working size {summary.working_size[0]}x{summary.working_size[1]})")


@main.command()
@click.option("-o", "--output-dir", default="demo-output", show_default=True, help="Folder for the demo files.")
@click.option("--model", default=None, metavar="NAME", help="Colorizer to demonstrate. [default: default]")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def demo(output_dir: str, model: str | None, quiet: bool) -> None:
    """Build a demo clip from a photo scikit-image ships, gray it, and colorize it back."""
    from .colorizers import get_colorizer
    from .demo import clip_psnr, make_demo_clip
    from .pipeline import colorize_video
    from .references import load_reference
    from .schedule import ReferenceSchedule
    from .writer import resolve_output

    model = model or default_model()
    clip = make_demo_clip(output_dir)
    result_path = os.path.join(output_dir, "demo-colorized.mp4")
    spec = resolve_output(result_path)
    colorizer = get_colorizer(model)
    bar, advance = _progress(clip.frames, quiet, "demo")
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


def default_model() -> str:
    """The shipped default network when its weights are installed, else the weight-free baseline."""
    from importlib import resources

    try:
        if resources.files("vidcolor.models").joinpath("weights/default.pt").is_file():
            return "default"
    except ModuleNotFoundError:
        pass
    return "classic"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
