"""The ``fast`` model against ``default`` (speed at 1080p) and against gray/classic/default (quality), in one run.

    .venv/bin/python bench/fast.py                         # everything, 1 thread
    .venv/bin/python bench/fast.py --max-frames 20 --speed-frames 8

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
import statistics
import sys
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


def speed(frame_count: int, size: int) -> None:
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.colorizers.fast import FastColorizer

    frames = frames_1080p(frame_count)
    print(f"\n## speed at 1080p input ({len(frames) - 1} timed frames after a warm-up, median; ms)")
    print(f"{'setting':<34} {'model':<8} {'working':>9} {'net runs':>9} {'step':>8} {'frame':>8} {'step ratio':>11} {'frame ratio':>12}")
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
    print("# step = Colorizer.step() at the working size; frame = the pipeline's whole per-frame work for a 1080p 4:2:0\n"
          "# output: luma → lightness, working size, step, luma-guided Cb/Cr planes (the same for every model); ratio = default / fast")


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
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(f"# threads {args.threads}, working size {args.size}")
    speed(args.speed_frames, args.size)
    if not args.skip_quality:
        quality(args.size, args.max_frames, args.clips, args.temporal)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
