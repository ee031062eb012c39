"""A shot next to its painted keyframe: two shared clips joined into one film (issue 24, Done-when 2).

    .venv/bin/python bench/two_shot.py                                 # held out: dog then horsejump-high, and reversed
    .venv/bin/python bench/two_shot.py --pair car-shadow,blackswan     # a pair of training clips (--pair repeats)
    .venv/bin/python bench/two_shot.py --models classic,default,fast --per-frame --json two.json
    .venv/bin/python bench/two_shot.py --tree v1=../vidcolor-v1        # also another source tree's models, same run
    .venv/bin/python bench/two_shot.py --anchors auto,pinned --per-frame  # each row with --anchor auto and pinned

The film: shot 1 is the first clip, shot 2 the second (resized to shot 1's size when they differ),
their BT.601 luma written as one lossless H.264 4:2:0 gray video (as ``bench/quality.py`` writes
its inputs). The keyframes are given as a user gives them: shot 1's true frame 0 pinned at frame 0,
and the TRUE colour of shot 2's frame ``--moment`` (25) pinned at shot 2's FIRST frame, as a
painted keyframe usually is (``--ref 0=A.png --ref L=B.png``, or the same as a preset with
``--given preset``; ``--detect-scenes`` adds the CLI's scene detection).

Each model runs as the real command (``vidcolor colorize ... --model M``, the CLI's defaults: temporal
check on, H.264 crf 18, preset medium); the output is decoded with its tags and scored frame by frame
against the truth with :mod:`vidcolor.report.metrics`. Reported per film, in shot 2's own frame numbers:
``start`` = mean PSNR of frames 1-7 (18-24 frames before the keyframe's moment), ``end`` = frames
42-48 (17-23 after it), and ``start - end``; the Done-when asks ``start >= end - 0.5 dB``. The ``gray``
row (the gray input encoded as the outputs are) shows how much of a start/end gap the content itself
makes. A summary gives each row's mean and worst ``start - end`` over the films (by default the
held-out pair both ways round: each held-out clip is shot 2 once). ``--tree LABEL=DIR`` also runs
the CLI from another source tree (e.g. an older commit extracted with ``git archive``), so a new
default model and its predecessor are measured in one run.

``--shown`` tells content from the colorizer: it splits each window's error into the pixels the
keyframe shows (tracked frame by frame to the moment by DIS optical flow on the true frames,
forward-backward consistent at every step, never leaving the frame) and the pixels it does not
(content the keyframe never shows, e.g. a wall a pan leaves behind). A start/end gap that is there
on the unshown pixels only is the content's; one on the shown pixels is the colorizer's.
Everything runs in a temporary folder outside the repository (``--keep DIR`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from _clips import REPO, ClipSource, decode_rgb, encode_as_output, find_clips, load_truth, write_gray_video
from quality import work_folder  # a temporary folder, or --keep outside the repository

sys.path.insert(0, str(REPO))

from vidcolor.correspondence.flow import DISFlow, compose, visible_mask, warp  # noqa: E402
from vidcolor.report import metrics  # noqa: E402
from vidcolor.report.measure import read_run_metadata  # noqa: E402


@dataclass(frozen=True)
class Window:
    """Shot 2's frames ``first``..``last`` (inclusive, counted from shot 2's first frame)."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> Window:
        first, _, last = text.partition("-")
        window = cls(int(first), int(last or first))
        if window.first < 0 or window.last < window.first:
            raise ValueError(f"{text}: give FIRST-LAST with 0 <= FIRST <= LAST")
        return window

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class Runner:
    """One row: a CLI model, run from this repository or from another source ``tree``."""

    model: str
    tree: Path = REPO
    tree_label: str = ""
    anchor: str | None = None  # --anchor of the CLI; None: the CLI's default

    @property
    def label(self) -> str:
        label = f"{self.tree_label}:{self.model}" if self.tree_label else self.model
        return f"{label}@{self.anchor}" if self.anchor else label


@dataclass
class Film:
    """The joined film: true colours, its gray input, and where shot 2 starts."""

    truth: list[np.ndarray]
    shot2_start: int
    gray_video: Path
    keyframe_images: tuple[Path, Path]
    names: tuple[str, str]


def resolve_clip(name: str) -> ClipSource:
    """A shared clip by name (``dog``, ``davis/dog``), or any folder of frames given as a path."""
    if Path(name).is_dir():
        return ClipSource(Path(name).name, "folder", Path(name))
    return find_clips({name})[0]


def build_film(sources: tuple[ClipSource, ClipSource], frames: tuple[int | None, int | None], moment: int,
               folder: Path, input_crf: int) -> Film:
    """Join the two clips' truths (shot 2 at shot 1's size), write the gray film and the two keyframe images."""
    first, second = load_truth(sources[0].folder, frames[0]), load_truth(sources[1].folder, frames[1])
    h, w = first[0].shape[:2]
    if second[0].shape[:2] != (h, w):
        print(f"# {sources[1].name} is {second[0].shape[1]}x{second[0].shape[0]}: resized to shot 1's {w}x{h}")
        second = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in second]
    if moment >= len(second):
        raise SystemExit(f"--moment {moment}: shot 2 ({sources[1].name}) has only {len(second)} frames")
    folder.mkdir(parents=True, exist_ok=True)
    images = (folder / "shot1-frame0.png", folder / f"shot2-frame{moment}.png")
    for image, path in ((first[0], images[0]), (second[moment], images[1])):
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # PNG: lossless
    film = Film(first + second, len(first), folder / "gray.mp4", images, (sources[0].name, sources[1].name))
    write_gray_video(film.truth, film.gray_video, input_crf)
    return film


def keyframe_args(film: Film, given: str, folder: Path) -> list[str]:
    """The CLI arguments that pin the two keyframes, as ``--ref FRAME=IMAGE`` or as a preset."""
    if given == "ref":
        return ["--ref", f"0={film.keyframe_images[0]}", "--ref", f"{film.shot2_start}={film.keyframe_images[1]}"]
    preset = folder / "two-shot.toml"
    preset.write_text("version = 1\n" + "".join(
        f'\n[[shot]]\nstart = {start}\nreference = "{image.name}"\n'
        for start, image in zip((0, film.shot2_start), film.keyframe_images)), encoding="utf-8")
    return ["--preset", str(preset)]


def run_cli(film: Film, runner: Runner, key_args: list[str], output: Path, args: argparse.Namespace) -> dict[str, object]:
    """``vidcolor colorize`` from the runner's source tree; wall time and the run's own seconds."""
    command = [sys.executable, "-m", "vidcolor", "colorize", str(film.gray_video), "-o", str(output),
               "--model", runner.model, "--stats", "--quiet", "--overwrite", *key_args]
    for option, value in (("--size", args.size), ("--crf", args.crf), ("--threads", args.threads)):
        if value is not None:
            command += [option, str(value)]
    if args.detect_scenes:
        command.append("--detect-scenes")
    if runner.anchor:
        command += ["--anchor", runner.anchor]
    command += shlex.split(args.vidcolor_args)
    paths = [str(runner.tree), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=output.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{runner.label}: vidcolor colorize exited {done.returncode}:\n{done.stderr.strip()}")
    run = read_run_metadata(Path(str(output) + ".stats.jsonl")) or {}
    return {"wall_seconds": wall, "seconds": float(run.get("seconds", wall)),
            "working_size": run.get("working_size"),
            "command": " ".join(["vidcolor", *command[3:]]).replace(str(output.parent), "$RUN")}  # no machine path


def window_scores(psnrs: list[float], film: Film, windows: dict[str, Window]) -> dict[str, float]:
    """Mean PSNR of shot 1 (frames 1..), of shot 2 (frames 1..), and of each of shot 2's windows."""
    start = film.shot2_start
    out = {"shot1": float(np.mean(psnrs[1:start])), "shot2": float(np.mean(psnrs[start + 1:]))}
    for name, window in windows.items():
        out[name] = float(np.mean(psnrs[start + window.first:start + window.last + 1]))
    out["start - end"] = out["start"] - out["end"]
    return out


def per_frame_psnr(outputs: list[np.ndarray], truth: list[np.ndarray]) -> list[float]:
    if len(outputs) != len(truth):
        raise SystemExit(f"the output decoded to {len(outputs)} frames, the film has {len(truth)}")
    return [metrics.psnr(o, t) for o, t in zip(outputs, truth)]


#: Short side at which ``--shown`` tracks shot 2's frames to the moment: fine enough for DIS
#: to follow a pan, coarse enough that grain and compression do not break the chain.
TRACK_SHORT_SIDE = 240


def shown_masks(frames: list[np.ndarray], moment: int, indices: list[int]) -> dict[int, np.ndarray]:
    """For each of ``indices`` (frames of one shot, true RGB), the pixels the shot's frame ``moment``
    also shows: followed frame by frame toward the moment (DIS medium on the luma at
    :data:`TRACK_SHORT_SIDE` lines), kept only while forward and backward flows agree at every step."""
    height, width = frames[0].shape[:2]
    scale = min(1.0, TRACK_SHORT_SIDE / min(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    gray = {i: cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
            for i, f in enumerate(frames)}
    dis = DISFlow(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    steps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # frame -> (flow to its neighbour toward the moment, visible)

    def step(index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in steps:
            neighbour = index + (1 if index < moment else -1)
            forward, backward = dis.calc(gray[index], gray[neighbour]), dis.calc(gray[neighbour], gray[index])
            steps[index] = (forward, visible_mask(forward, backward).astype(np.float32))
        return steps[index]

    masks = {}
    for first in indices:
        total = np.zeros((size[1], size[0], 2), np.float32)  # flow from ``first`` to the frame reached
        shown = np.ones((size[1], size[0]), bool)
        index = first
        while index != moment:
            flow, visible = step(index)
            shown &= warp(visible, total) > 0.5
            total = compose(total, flow)
            index += 1 if index < moment else -1
        grid_x, grid_y = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
        reached_x, reached_y = grid_x + total[..., 0], grid_y + total[..., 1]
        shown &= (reached_x >= -0.5) & (reached_x <= size[0] - 0.5) & (reached_y >= -0.5) & (reached_y <= size[1] - 0.5)
        masks[first] = cv2.resize(shown.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    return masks


def pooled_psnr(squared: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """PSNR (RGB in [0, 1]) of the squared errors under ``masks``, pooled over frames; nan if empty."""
    total = sum(float(e[m].sum()) for e, m in zip(squared, masks))
    count = sum(int(m.sum()) for m in masks)
    if count == 0:
        return float("nan")
    return float("inf") if total == 0 else float(10.0 * np.log10(count / total))


def shown_scores(outputs: list[np.ndarray], film: Film, windows: dict[str, Window],
                 masks: dict[int, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per window: the share of pixels the keyframe does not show, and PSNR over shown, unshown and
    all pixels (pooled over the window's frames, so ``all`` differs slightly from the frame mean)."""
    out = {}
    for name, window in windows.items():
        frames = range(window.first, window.last + 1)
        squared = [np.mean((outputs[film.shot2_start + i].astype(np.float64) / 255.0
                            - film.truth[film.shot2_start + i].astype(np.float64) / 255.0) ** 2, axis=2) for i in frames]
        shown = [masks[i] for i in frames]
        out[name] = {"unshown_share": float(1.0 - np.mean([m.mean() for m in shown])),
                     "shown": pooled_psnr(squared, shown),
                     "unshown": pooled_psnr(squared, [~m for m in shown]),
                     "all": pooled_psnr(squared, [np.ones_like(m) for m in shown])}
    out["start - end"] = {key: out["start"][key] - out["end"][key] for key in ("shown", "unshown", "all")}
    return out


def print_shown(rows: dict[str, dict], moment: int) -> None:
    print(f"\n## --shown: PSNR on the pixels shot 2's frame {moment} (the keyframe) shows / does not show "
          "(pooled over each window)")
    first = next(iter(rows.values()))["shown"]
    print(f"unshown pixels: start {first['start']['unshown_share']:.1%}, end {first['end']['unshown_share']:.1%}")
    print(f"{'row':<22} {'start shown':>11} {'end shown':>10} {'s-e shown':>10}   "
          f"{'start unshown':>13} {'end unshown':>11} {'s-e unshown':>11}   {'s-e all':>8}")
    for label, row in rows.items():
        s = row["shown"]
        print(f"{label:<22} {s['start']['shown']:11.2f} {s['end']['shown']:10.2f} {s['start - end']['shown']:+10.2f}   "
              f"{s['start']['unshown']:13.2f} {s['end']['unshown']:11.2f} {s['start - end']['unshown']:+11.2f}   "
              f"{s['start - end']['all']:+8.2f}")


def print_table(rows: dict[str, dict], windows: dict[str, Window], margin: float) -> None:
    print(f"\n{'row':<22} {'shot 1':>7} {'shot 2':>7} {'start ' + str(windows['start']):>10} "
          f"{'end ' + str(windows['end']):>10} {'start-end':>10} {'s/frame':>8}  verdict (start >= end - {margin:g} dB)")
    for label, row in rows.items():
        s = row["scores"]
        verdict = "" if label == "gray" else ("met" if row["met"] else "NOT met")
        per_frame = f"{row['sec_per_frame']:8.3f}" if "sec_per_frame" in row else " " * 8
        print(f"{label:<22} {s['shot1']:7.2f} {s['shot2']:7.2f} {s['start']:10.2f} {s['end']:10.2f} "
              f"{s['start - end']:+10.2f} {per_frame}  {verdict}")


def print_curve(rows: dict[str, dict], film: Film) -> None:
    """Shot 2's PSNR frame by frame, one column per row."""
    print(f"\n## shot 2 frame by frame (PSNR dB)\n{'frame':>5} " + " ".join(f"{label:>14}" for label in rows))
    for i in range(len(film.truth) - film.shot2_start):
        print(f"{i:>5} " + " ".join(f"{row['psnr'][film.shot2_start + i]:14.2f}" for row in rows.values()))


def parse_trees(items: list[str]) -> list[tuple[str, Path]]:
    trees = []
    for item in items:
        label, _, folder = item.partition("=")
        if not folder or not (Path(folder) / "vidcolor" / "__init__.py").is_file():
            raise SystemExit(f"--tree {item}: give LABEL=DIR, DIR a source tree holding vidcolor/__init__.py "
                             "(e.g. `git archive COMMIT | tar -x -C DIR`)")
        trees.append((label, Path(folder).resolve()))
    return trees


def measure_pair(names: list[str], runners: list[Runner], folder: Path, args: argparse.Namespace) -> tuple[Film, dict[str, dict]]:
    """One film (two clips joined), the gray row and every runner's row on it."""
    sources = (resolve_clip(names[0]), resolve_clip(names[1]))
    windows = {"start": args.start, "end": args.end}
    film = build_film(sources, (args.first_frames, args.second_frames), args.moment, folder, args.input_crf)
    length2 = len(film.truth) - film.shot2_start
    if args.end.last >= length2 or args.start.last >= length2:
        raise SystemExit(f"shot 2 ({sources[1].name}) has {length2} frames: windows {args.start} and {args.end} "
                         "need more (give --start/--end inside it)")
    print(f"\n## film: {sources[0].name} ({film.shot2_start} frames) then {sources[1].name} ({length2} frames), "
          f"{film.truth[0].shape[1]}x{film.truth[0].shape[0]}; keyframes: frame 0 = its truth, frame "
          f"{film.shot2_start} = the truth of shot 2's frame {args.moment} (given as {args.given})", flush=True)
    key_args = keyframe_args(film, args.given, folder)
    encode_as_output(film.gray_video, folder / "gray-output.mp4", 18 if args.crf is None else args.crf)
    gray_output = decode_rgb(folder / "gray-output.mp4")
    gray_psnr = per_frame_psnr(gray_output, film.truth)
    rows: dict[str, dict] = {"gray": {"psnr": gray_psnr, "scores": window_scores(gray_psnr, film, windows)}}
    masks: dict[int, np.ndarray] = {}
    if args.shown:
        tracked = [i for w in windows.values() for i in range(w.first, w.last + 1)]
        masks = shown_masks(film.truth[film.shot2_start:], args.moment, tracked)
        rows["gray"]["shown"] = shown_scores(gray_output, film, windows, masks)
    for runner in runners:
        output = folder / f"{runner.label.replace(':', '-').replace('@', '-')}.mp4"
        run = run_cli(film, runner, key_args, output, args)
        outputs = decode_rgb(output)
        psnrs = per_frame_psnr(outputs, film.truth)
        scores = window_scores(psnrs, film, windows)
        rows[runner.label] = {"model": runner.model, "tree": runner.tree_label or "this", "anchor": runner.anchor,
                              "psnr": psnrs, "scores": scores,
                              "met": scores["start - end"] >= -args.margin,
                              "sec_per_frame": float(run["seconds"]) / len(film.truth), **run}
        if args.shown:
            rows[runner.label]["shown"] = shown_scores(outputs, film, windows, masks)
        print(f"{runner.label}: start {scores['start']:.2f}, end {scores['end']:.2f} dB, "
              f"wall {run['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    print_table(rows, windows, args.margin)
    if args.shown:
        print_shown(rows, args.moment)
    if args.per_frame:
        print_curve(rows, film)
    return film, rows


def summarize(results: list[tuple[Film, dict[str, dict]]], margin: float) -> dict[str, dict[str, object]]:
    """Per row, over the films: the mean and the worst start - end, and whether every film met the target."""
    summary: dict[str, dict[str, object]] = {}
    for label in results[0][1]:
        gaps = {" then ".join(film.names): rows[label]["scores"]["start - end"] for film, rows in results}
        worst = min(gaps, key=gaps.get)
        summary[label] = {"mean": float(np.mean(list(gaps.values()))), "worst": gaps[worst], "worst_film": worst}
        if label != "gray":
            summary[label]["met_on_all"] = all(rows[label]["met"] for _, rows in results)
    print(f"\n## start - end over {len(results)} films (target: >= -{margin:g} dB on each)")
    for label, row in summary.items():
        verdict = "" if "met_on_all" not in row else ("met on every film" if row["met_on_all"] else "NOT met")
        print(f"{label:<22} mean {row['mean']:+6.2f}  worst {row['worst']:+6.2f} ({row['worst_film']})  {verdict}")
    if "shown" in results[0][1]["gray"]:
        print(f"\n## start - end on the pixels the keyframe shows (--shown; the same target, -{margin:g} dB)")
        for label in summary:
            gaps = [rows[label]["shown"]["start - end"]["shown"] for _, rows in results]
            summary[label]["shown_mean"], summary[label]["shown_worst"] = float(np.mean(gaps)), float(min(gaps))
            verdict = "" if label == "gray" else ("met on every film" if min(gaps) >= -margin else "NOT met")
            print(f"{label:<22} mean {np.mean(gaps):+6.2f}  worst {min(gaps):+6.2f}  {verdict}")
    return summary


#: The held-out clips joined both ways round (each is shot 2 once).
HELD_OUT_PAIRS = ("dog,horsejump-high", "horsejump-high,dog")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", default=None, metavar="FIRST,SECOND",
                        help="two shared clips (short or full names) or frame folders, joined in this order; repeatable "
                             f"(default: the held-out pair both ways round, {' and '.join(HELD_OUT_PAIRS)})")
    parser.add_argument("--first-frames", type=int, default=None, help="frames of shot 1 (default: all)")
    parser.add_argument("--second-frames", type=int, default=None, help="frames of shot 2 (default: all)")
    parser.add_argument("--moment", type=int, default=25, help="shot 2's frame whose true colour is its keyframe (default 25)")
    parser.add_argument("--start", type=Window.parse, default=Window(1, 7), help="shot 2's start window (default 1-7)")
    parser.add_argument("--end", type=Window.parse, default=Window(42, 48), help="shot 2's end window (default 42-48)")
    parser.add_argument("--margin", type=float, default=0.5, help="the Done-when: start >= end - MARGIN dB (default 0.5)")
    parser.add_argument("--models", default="classic,default", help="comma-separated CLI models (default: classic,default)")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                        help="also run --tree-models from this source tree (repeatable); rows are LABEL:MODEL")
    parser.add_argument("--tree-models", default="default", help="comma-separated models run from each --tree (default: default)")
    parser.add_argument("--given", choices=("ref", "preset"), default="ref",
                        help="the keyframes as --ref FRAME=IMAGE (default) or as a preset's shots")
    parser.add_argument("--detect-scenes", action="store_true", help="also run the CLI with --detect-scenes")
    parser.add_argument("--anchors", default="",
                        help="comma-separated --anchor values (auto, pinned): every row runs once with each, labelled "
                             "MODEL@ANCHOR, so both are measured on the same film in one run (default: the CLI's own)")
    parser.add_argument("--size", default=None, help="--size of the CLI (default: the model's own working size)")
    parser.add_argument("--crf", type=int, default=None, help="output crf (default: the CLI's, 18)")
    parser.add_argument("--input-crf", type=int, default=0, help="crf of the gray H.264 input (default 0: lossless)")
    parser.add_argument("--threads", type=int, default=None, help="--threads of the CLI (default: the CLI's)")
    parser.add_argument("--vidcolor-args", default="",
                        help="further options for vidcolor colorize, one string (e.g. a fallback setting), for every row")
    parser.add_argument("--shown", action="store_true",
                        help="also split each window's PSNR into the pixels the keyframe shows and those it does not "
                             "(tracked to the moment by optical flow on the true frames): content or colorizer?")
    parser.add_argument("--per-frame", action="store_true", help="also print shot 2's PSNR frame by frame")
    parser.add_argument("--json", dest="json_path", help="also write the rows, per-frame PSNR and settings as JSON here")
    parser.add_argument("--keep", help="keep the film and the outputs in this folder (outside the repository)")
    args = parser.parse_args(argv)

    pairs = [[n.strip() for n in pair.split(",") if n.strip()] for pair in args.pair or HELD_OUT_PAIRS]
    if bad := [",".join(p) for p in pairs if len(p) != 2]:
        parser.error(f"--pair {bad[0]}: give two clips, FIRST,SECOND")
    trees = parse_trees(args.tree)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    tree_models = [m.strip() for m in args.tree_models.split(",") if m.strip()]
    anchors = [a.strip() for a in args.anchors.split(",") if a.strip()] or [None]
    if bad := [a for a in anchors if a not in (None, "auto", "pinned")]:
        parser.error(f"--anchors {bad[0]}: give auto, pinned or both (auto,pinned)")
    runners = [Runner(m, anchor=a) for m in models for a in anchors]
    runners += [Runner(m, folder, label, a) for label, folder in trees for m in tree_models for a in anchors]
    cv2.setNumThreads(2)
    command = "bench/two_shot.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command}")

    root, holder = work_folder(args.keep)
    try:
        results = [measure_pair(names, runners, root / f"film{index + 1}", args) for index, names in enumerate(pairs)]
    finally:
        if holder is not None:
            holder.cleanup()
    summary = summarize(results, args.margin)
    if args.json_path:
        report = {"command": command, "settings": {**vars(args), "start": str(args.start), "end": str(args.end)},
                  "films": [{"shots": list(film.names), "shot2_start": film.shot2_start, "frames": len(film.truth),
                             "rows": rows} for film, rows in results], "summary": summary}
        target = Path(args.json_path)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, target)
        print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
