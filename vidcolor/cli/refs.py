"""``vidcolor refs suggest``: rank a library of colour images as references for each shot.

Registered on the main group in :mod:`vidcolor.cli.main` (``main.add_command(refs)``), whose
error handling turns library errors into one-line messages and exit code 2. The ranking itself
is :mod:`vidcolor.recommend` (He et al. 2018's retrieval); this module only shows it.
"""

from __future__ import annotations

import logging

import click
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

logger = logging.getLogger("vidcolor")


@click.group()
def refs() -> None:
    """Find reference images for a film in a library of colour pictures."""


@refs.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("--library", "library_dir", required=True, metavar="DIR",
              help="Folder of colour reference images (subfolders included).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Suggestions per shot.")
@click.option("--shots", "shots_preset", default=None, metavar="PRESET.toml",
              help="Take the shots from this preset's shot starts. [default: detect cuts with PySceneDetect]")
@click.option("--frames", "frames_per_shot", type=click.IntRange(min=1), default=3, show_default=True,
              help="Frames per shot to query with, spread over the shot (scores are averaged).")
@click.option("--write-preset", "preset_out", default=None, metavar="OUT.toml",
              help="Write a keyframe preset that uses each shot's top suggestion.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --write-preset file.")
@click.option("--backbone", type=click.Choice(["auto", "lite0", "vgg19", "vcnet"]), default="auto", show_default=True,
              help="Feature network: lite0 (ImageNet EfficientNet-Lite0, installed with vidcolor), vgg19 (needs "
                   "`vidcolor models import deepex PATH`) or vcnet (the default model's encoder); auto takes vgg19 when "
                   "installed, else lite0.")
@click.option("--cache", "cache_path", default=None, metavar="FILE.npz",
              help="Feature cache file. [default: under the vidcolor cache folder, one per library and backbone]")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no library summary line.")
def suggest(input_path: str, library_dir: str, top: int, shots_preset: str | None, frames_per_shot: int, preset_out: str | None,
            overwrite: bool, backbone: str, cache_path: str | None, quiet: bool) -> None:
    """Rank the images of --library as colour references for each shot of INPUT (a video, a
    frame folder or one image): global feature similarity, then local feature and
    luminance-histogram matching on the black-and-white version of each image."""
    from ..recommend import FeatureLibrary, best_backbone, input_queries
    from ..recommend import suggest as rank_shots
    from ..recommend import write_preset
    from ..schedule.presets import check_new_preset

    if preset_out is not None:  # refused before any work
        check_new_preset(preset_out, overwrite=overwrite, option="--write-preset")
    network = best_backbone(name=None if backbone == "auto" else backbone)
    library = FeatureLibrary(library_dir, network, cache_path=cache_path)
    with logging_redirect_tqdm(loggers=[logger]):
        bar = tqdm(unit="image", desc="library features", dynamic_ncols=True, disable=quiet, leave=False)
        with bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
            stats = library.refresh(on_image=progress)
        cut_bar = tqdm(unit="frame", desc="finding cuts", dynamic_ncols=True, disable=quiet or shots_preset is not None, leave=False)
        with cut_bar:
            queries = input_queries(input_path, shots_preset=shots_preset, frames_per_shot=frames_per_shot,
                                    on_frame=lambda _: cut_bar.update(1))
    results = rank_shots(library, queries, top=top)
    if not quiet:
        extra = f", {stats.gray} grayscale skipped" if stats.gray else ""
        extra += f", {len(stats.unreadable)} unreadable" if stats.unreadable else ""
        click.echo(f"library {library_dir}: {stats.images} images ({stats.computed} featurized, {stats.reused} from cache"
                   f"{extra}, {stats.seconds:.1f} s); backbone {network.name}; score = semantic + 0.25 x luminance")
    for result in results:
        shot = result.shot
        queried = f"query frame{'s' if len(shot.frames) > 1 else ''} {', '.join(map(str, shot.frames))}"
        click.echo(f"shot {shot.index}: frames {shot.start}-{shot.end} ({queried})")
        click.echo(f"  {'rank':>4}  {'score':>6}  {'semantic':>8}  {'lumin.':>6}  {'global':>6}  image")
        for s in result.suggestions:
            click.echo(f"  {s.rank:>4}  {s.score:6.3f}  {s.semantic:8.3f}  {s.luminance:6.3f}  {s.global_score:6.3f}  {s.path}")
    if preset_out is not None:
        written = write_preset(preset_out, results, input_path=input_path, overwrite=overwrite)
        click.echo(f"wrote {written}: {len(results)} shot(s), each with its top suggestion")
