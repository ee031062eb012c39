"""The ``fast`` model against ``default`` (speed: whole command and per frame) and against gray/classic/default (quality), in one run.

    .venv/bin/python bench/fast.py                         # everything, 1 thread
    .venv/bin/python bench/fast.py --max-frames 20 --speed-frames 8
    .venv/bin/python bench/fast.py --sections command --json fast.json   # issue 24's ">= 3x faster" only

**Whole command** (issue 24: ``--model fast`` at least 3x faster than ``default``, whole command on
a 480p clip). ``vidcolor colorize --model default`` and then ``--model fast`` run on the same gray
854x480 H.264 clip (a synthetic pan with film grain, ``--command-frames`` long, or
``--command-source``), reference = its first view in colour, the CLI's defaults otherwise, so each
model encodes at its own x264 preset (``default`` medium, ``fast`` superfast); ``fast`` runs again
with each preset of ``--fast-encoder-presets`` given (default ``medium``: the model's share alone).
The speed-up is default's seconds over each row's, for the whole command (start-up included) and
for the run after start-up (the CLI's own count). A plain PyAV transcode of the clip at each preset
used is the floor: default's time over it is the most any model could gain at that preset.

**Speed.** Real DAVIS `dog` frames upscaled to 1920x1080 are the input. Per frame, as the
pipeline does for a 1080p 4:2:0 output: luma → full-resolution lightness → working size (area
filter) → ``step()`` → luma-guided Cb/Cr planes (:func:`vidcolor.run.pipeline.chroma_for_frame`). Both models run interleaved frame by frame (so a change in the
machine's load hits both alike); the median over frames after a warm-up frame is reported for
``step()`` alone and for the whole per-frame path. Settings: (a) each model's
``default_short_side``; (b) the same working size ``--size`` as shipped (both cap their network
at their native short side and upsample); (c) the same working size with the caps lifted, so both
networks really run at ``--size``.

**Quality.** The protocol and code of ``bench/_inprocess.py``: gray input (BT.601 luma), reference =
true colours of frame 0, frames 1..N-1 scored at full resolution, working short side ``--size``;
rows gray, classic, default, fast (``--temporal`` adds fast inside the temporal check; the
default model card has classic's and default's temporal rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _inprocess import COLUMNS, GRAY_LUMA, GrayColorizer, colorize, find_clips, load_clip, print_table, score  # noqa: E402
from vidcolor.color import luma_to_gray_level, luma_to_lightness  # noqa: E402
from vidcolor.colorizers.base import Colorizer  # noqa: E402
from vidcolor.io.writer import ENCODER_PRESETS  # noqa: E402
from vidcolor.run.pipeline import chroma_for_frame, working_size  # noqa: E402
from vidcolor.references import Reference  # noqa: E402

SPEED_CLIP = REPO.parent / "shared" / "data" / "clips" / "davis" / "dog" / "JPEGImages"


def frames_1080p(count: int) -> list[np.ndarray]:
    """``count`` real frames at 1920x1080 (uint8 RGB), or a moving gradient when ../shared is absent."""
    files = sorted(SPEED_CLIP.glob("*.jpg"))[:count] if SPEED_CLIP.is_dir() else []
    if files:
        return [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (1920, 1080), interpolation=cv2.INTER_CUBIC) for p in files]
    print(f"# {SPEED_CLIP} not found: timing synthetic frames")
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    return [np.clip(np.dstack([xx / 8 + 4 * i, yy / 4, 255 - xx / 8]), 0, 255).astype(np.uint8) for i in range(count)]


def time_pair(models: dict[str, Colorizer], frames: list[np.ndarray], sizes: dict[str, int]) -> dict[str, tuple[float, float, tuple[int, int]]]:
    """Interleaved per-frame timing: name → (median step s, median whole-frame s, working size)."""
    reference = Reference.from_array(frames[0], key="bench-fast:speed")
    lumas = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    steps: dict[str, list[float]] = {name: [] for name in models}
    totals: dict[str, list[float]] = {name: [] for name in models}
    dims = {name: working_size(1920, 1080, sizes[name]) for name in models}
    for model in models.values():
        model.reset()
    for index, luma in enumerate(lumas):
        for name, model in models.items():
            start = time.perf_counter()  # the pipeline's per-frame work for a 4:2:0 1080p output
            full = luma_to_lightness(luma, GRAY_LUMA)
            small = cv2.resize(full, dims[name], interpolation=cv2.INTER_AREA)
            begin_step = time.perf_counter()
            result = model.step(small, reference)
            end_step = time.perf_counter()
            chroma_for_frame(full, luma_to_gray_level(luma, GRAY_LUMA), result.ab, (960, 540), GRAY_LUMA)
            end = time.perf_counter()
            if index > 0:  # frame 0: reference embedding/memory, allocations
                steps[name].append(end_step - begin_step)
                totals[name].append(end - start)
    return {name: (statistics.median(steps[name]), statistics.median(totals[name]), dims[name]) for name in models}


def command_speed(frames: int, source: str | None, repeats: int, crf: int,
                  fast_presets: list[str]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The whole ``vidcolor colorize`` command on one 480p clip: ``default`` and ``fast`` as a user
    runs them (no ``--encoder-preset``: each model's own x264 preset), ``fast`` again with each of
    ``fast_presets`` given, and a plain PyAV transcode at every preset used (the floor), interleaved
    ``repeats`` times so all see the same machine load; the median of each. Returns (default, fast,
    the transcode at default's preset), and the further rows."""
    from memory import frame_size, make_source
    from throughput import colorize, plain_transcode
    from vidcolor.run.settings import model_encoder_preset

    own = {model: model_encoder_preset(model) for model in ("default", "fast")}
    runs: dict[tuple[str, str | None], list[tuple[int, float, float]]] = {
        (model, None): [] for model in own} | {("fast", preset): [] for preset in fast_presets}
    floors: dict[str, list[float]] = {preset: [] for preset in dict.fromkeys([*own.values(), *fast_presets])}
    print(f"\n## the whole command on a 480p clip ({'synthetic pan' if source is None else source}; x264 crf {crf}, "
          f"each model's own preset ({', '.join(f'{m} {p}' for m, p in own.items())}) unless given; median of {repeats})")
    with tempfile.TemporaryDirectory(prefix="vidcolor-fast-") as tmp:
        reference = os.path.join(tmp, "reference.png")
        if source is None:
            width, height = frame_size(480)
            source = os.path.join(tmp, f"gray-{width}x{height}.mp4")
            make_source(Path(source), frames, 3.0, Path(reference))
        else:
            import av

            with av.open(source) as container:
                cv2.imwrite(reference, next(container.decode(video=0)).to_ndarray(format="bgr24"))
        for _ in range(repeats):
            for (model, preset), times in runs.items():
                output = os.path.join(tmp, f"{model}-{preset or 'own'}.mp4")
                times.append(colorize(source, reference, output, model, preset, crf))
            for preset, times in floors.items():
                times.append(plain_transcode(source, os.path.join(tmp, f"plain-{preset}.mp4"), preset, crf)[1])
    rows = []
    for (model, preset), times in runs.items():
        count = times[0][0]
        whole, run = statistics.median(r[1] for r in times), statistics.median(r[2] for r in times)
        rows.append({"model": model, "encoder_preset": preset or own[model], "preset_given": preset is not None,
                     "frames": count, "command_seconds": whole, "run_seconds": run, "command_fps": count / whole,
                     "run_fps": count / run})
    base = rows[0]
    print(f"{'model':<8} {'x264 preset':<18} {'frames':>7} {'command s':>10} {'fps':>7} {'run s':>8} {'fps':>7} "
          f"{'speed-up command':>17} {'run':>6}")
    for row in rows:
        row["speedup_command"] = base["command_seconds"] / row["command_seconds"]  # type: ignore[operator]
        row["speedup_run"] = base["run_seconds"] / row["run_seconds"]  # type: ignore[operator]
        label = f"{row['encoder_preset']}{' (given)' if row['preset_given'] else ' (own)'}"
        print(f"{row['model']:<8} {label:<18} {row['frames']:>7} {row['command_seconds']:>10.2f} {row['command_fps']:>7.2f} "
              f"{row['run_seconds']:>8.2f} {row['run_fps']:>7.2f} {row['speedup_command']:>16.2f}x {row['speedup_run']:>5.2f}x")
    print(f"# load average (1, 5, 15 min) at the end {[round(x, 2) for x in os.getloadavg()]} on {os.cpu_count()} CPUs")
    fast = rows[1]
    print(f"fast vs default, as a user runs them: {fast['speedup_command']:.2f}x faster, whole command; "
          f"{fast['speedup_run']:.2f}x after start-up (target >= 3x: whole command "
          f"{'met' if fast['speedup_command'] >= 3 else 'NOT met'})")  # type: ignore[operator]
    plain_rows = []
    for preset, times in floors.items():
        floor = statistics.median(times)
        print(f"# floor at x264 {preset}: a plain PyAV decode + encode of the clip takes {floor:.2f} s "
              f"(default's command over it: {base['command_seconds'] / floor:.2f}x)")  # type: ignore[operator]
        plain_rows.append({"model": "plain transcode", "encoder_preset": preset, "frames": base["frames"],
                           "command_seconds": floor, "speedup_command": base["command_seconds"] / floor})  # type: ignore[operator]
    return [rows[0], rows[1], plain_rows[0]], rows[2:] + plain_rows[1:]


def speed(frame_count: int, size: int) -> list[dict[str, object]]:
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.colorizers.fast import FastColorizer

    frames = frames_1080p(frame_count)
    print(f"\n## speed at 1080p input ({len(frames) - 1} timed frames after a warm-up, median; ms)")
    print(f"{'setting':<34} {'model':<8} {'working':>9} {'net runs':>9} {'step':>8} {'frame':>8} {'step ratio':>11} {'frame ratio':>12}")
    rows: list[dict[str, object]] = []
    settings = [
        ("each model's default_short_side", {}, {"default": DefaultColorizer.default_short_side, "fast": FastColorizer.default_short_side}),
        (f"same working size {size} (shipped caps)", {}, {"default": size, "fast": size}),
        (f"same working size {size} (no caps)", {"native_short_side": size}, {"default": size, "fast": size}),
    ]
    for label, options, sizes in settings:
        models: dict[str, Colorizer] = {"default": DefaultColorizer(**options), "fast": FastColorizer(**options)}  # type: ignore[arg-type]
        timed = time_pair(models, frames, sizes)
        base_step, base_frame = timed["default"][0], timed["default"][1]
        for name, (step_s, frame_s, dims) in timed.items():
            native = min(getattr(models[name], "native_short_side"), sizes[name])
            print(f"{label:<34} {name:<8} {dims[0]:>4}x{dims[1]:<4} {native:>9} {step_s * 1e3:8.1f} {frame_s * 1e3:8.1f} "
                  f"{base_step / step_s:10.2f}x {base_frame / frame_s:11.2f}x")
            rows.append({"setting": label, "model": name, "working": list(dims), "step_ms": step_s * 1e3,
                         "frame_ms": frame_s * 1e3, "step_ratio": base_step / step_s, "frame_ratio": base_frame / frame_s})
    print("# step = Colorizer.step() at the working size; frame = the pipeline's whole per-frame work for a 1080p 4:2:0\n"
          "# output: luma → lightness, working size, step, luma-guided Cb/Cr planes (the same for every model); ratio = default / fast")
    return rows


def quality(size: int, max_frames: int | None, clips_arg: str | None, temporal: bool) -> None:
    from vidcolor.colorizers import get_colorizer
    from vidcolor.colorizers.fast import FastColorizer
    from vidcolor.correspondence.flow import make_flow
    from vidcolor.temporal import TemporalCheck, TemporalSettings

    def factory(name: str) -> Colorizer:
        return FastColorizer() if name == "fast" else get_colorizer(name)  # "fast" may not be registered yet

    labels = ["gray", "classic", "default", "fast"]
    methods: list[tuple[str, object]] = [("gray", GrayColorizer)]
    for name in labels[1:]:
        methods.append((name, lambda n=name: factory(n)))
        if temporal and name == "fast":
            methods.append((f"{name}+temporal", lambda n=name: TemporalCheck(factory(n), make_flow("auto"), TemporalSettings())))
    clips = find_clips(set(clips_arg.split(",")) if clips_arg else None)
    if not clips:
        print("no clips found: the shared data set is missing", file=sys.stderr)
        return
    totals: dict[str, list[dict[str, float]]] = {}
    per_clip: dict[str, dict[str, float]] = {}
    for name, folder in clips:
        clip = load_clip(name, folder, max_frames)
        rows: dict[str, dict[str, float]] = {}
        for label, make in methods:
            outputs, seconds, *_ = colorize(clip, make(), size)  # type: ignore[operator]
            rows[label] = score(clip, outputs, clip.frames[1:], seconds)
        print_table(f"{name} ({len(clip.frames)} frames, scored 1..{len(clip.frames) - 1}, working short side {size})", rows)
        per_clip[name] = {label: row["psnr"] for label, row in rows.items()}
        for label, row in rows.items():
            totals.setdefault(label, []).append(row)
    means = {label: {c: float(np.mean([r[c] for r in rs])) for c in COLUMNS} for label, rs in totals.items()}
    print_table(f"mean over {len(clips)} clips", means)
    print("\n## fast against classic (PSNR dB)")
    for name, psnrs in per_clip.items():
        print(f"{name:<24} fast {psnrs['fast']:6.2f}  classic {psnrs['classic']:6.2f}  Δ {psnrs['fast'] - psnrs['classic']:+6.2f}"
              f"  (gray {psnrs['gray']:6.2f}, default {psnrs['default']:6.2f})")
    delta = means["fast"]["psnr"] - means["classic"]["psnr"]
    verdict = "beats" if delta > 0 else "misses"
    print(f"mean: fast {means['fast']['psnr']:.2f} vs classic {means['classic']['psnr']:.2f}: fast {verdict} classic by {abs(delta):.2f} dB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="working short side for quality and the same-size speed rows (default 256)")
    parser.add_argument("--speed-frames", type=int, default=13, help="1080p frames timed per setting (first is a warm-up)")
    parser.add_argument("--max-frames", type=int, default=None, help="use the first N frames of each quality clip")
    parser.add_argument("--clips", help="comma-separated clip names (default: all)")
    parser.add_argument("--temporal", action="store_true", help="also score fast inside the temporal check")
    parser.add_argument("--sections", default="command,step,quality",
                        help="comma-separated: command (whole CLI on 480p), step (per-frame at 1080p), quality")
    parser.add_argument("--skip-quality", action="store_true", help="leave out the quality section")
    parser.add_argument("--command-frames", type=int, default=200, help="frames of the synthetic 480p clip (default 200)")
    parser.add_argument("--command-source", default=None, help="a 480p video for the command section instead")
    parser.add_argument("--command-repeats", type=int, default=1, help="runs per model in the command section (median)")
    parser.add_argument("--crf", type=int, default=18, help="output crf in the command section (default 18, the CLI's)")
    parser.add_argument("--fast-encoder-presets", default="medium",
                        help="comma-separated x264 presets also given to fast in the command section (default medium; "
                             "'' for none)")
    parser.add_argument("--json", dest="json_path", help="also write the command and step sections' numbers as JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sections = {t.strip() for t in args.sections.split(",") if t.strip()} - ({"quality"} if args.skip_quality else set())
    if unknown := sections - {"command", "step", "quality"}:
        parser.error(f"--sections {','.join(sorted(unknown))}: choose from command, step, quality")
    print(f"# threads {args.threads}, working size {args.size}")
    report: dict[str, object] = {"command": "bench/fast.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if "command" in sections:
        presets = [p.strip() for p in args.fast_encoder_presets.split(",") if p.strip()]
        if unknown := [p for p in presets if p not in ENCODER_PRESETS]:
            parser.error(f"--fast-encoder-presets {','.join(unknown)}: choose from {', '.join(ENCODER_PRESETS)}")
        report["whole_command"], report["whole_command_more"] = command_speed(
            args.command_frames, args.command_source, args.command_repeats, args.crf, presets)
    if "step" in sections:
        report["step"] = speed(args.speed_frames, args.size)
    if "quality" in sections:
        quality(args.size, args.max_frames, args.clips, args.temporal)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
