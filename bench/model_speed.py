"""Per-frame colorizing time of the ``default`` model against ``classic``, on real frames.

    .venv/bin/python bench/model_speed.py                 # default working sizes, 1 thread
    .venv/bin/python bench/model_speed.py --sizes 192,256 --threads 2

For each working short side (16:9 frames, from DAVIS `dog` when ../shared is present) it times
``Colorizer.step`` alone (median over frames, after a warm-up frame), and once the luma-guided
chroma upsampling to 1080p that the pipeline adds per frame. The issue's budget: about 60 ms per
frame for the model at its default size, so that a 1080p encode stays within 2x a plain transcode.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidcolor.color import guided_upsample  # noqa: E402
from vidcolor.references import Reference  # noqa: E402
from vidcolor.color import luma_lightness  # noqa: E402

CLIP = REPO.parent / "shared" / "data" / "clips" / "davis" / "dog" / "JPEGImages"


def load_frames(count: int) -> list[np.ndarray]:
    """Real 16:9 frames (DAVIS dog), or a moving gradient when the shared data is absent."""
    files = sorted(CLIP.glob("*.jpg"))[:count] if CLIP.is_dir() else []
    if files:
        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
    print(f"# {CLIP} not found: timing synthetic frames")
    yy, xx = np.mgrid[0:480, 0:854].astype(np.float32)
    return [np.clip(np.dstack([xx / 4 + i, yy / 2, 255 - xx / 4]), 0, 255).astype(np.uint8) for i in range(count)]


def time_model(name: str, frames: list[np.ndarray], short_side: int) -> tuple[float, tuple[int, int]]:
    from vidcolor.colorizers import get_colorizer

    colorizer = get_colorizer(name)
    height, width = frames[0].shape[:2]
    w = round(width * short_side / height)
    small = [cv2.resize(f, (w, short_side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0 for f in frames]
    lightness = [luma_lightness(s) for s in small]
    reference = Reference.from_array(frames[0], key=f"speed:{short_side}")
    colorizer.reset()
    colorizer.step(lightness[0], reference)  # warm-up: reference features, allocations
    times = []
    for light in lightness[1:]:
        start = time.perf_counter()
        colorizer.step(light, reference)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), (w, short_side)


def time_upsample(short_side: int) -> float:
    """Guided chroma upsampling from the working size to 1920x1080 (done once per frame)."""
    w = round(1920 * short_side / 1080)
    ab = np.random.default_rng(0).normal(0, 20, (short_side, w, 2)).astype(np.float32)
    guide = np.random.default_rng(1).uniform(0, 100, (1080, 1920)).astype(np.float32)
    guided_upsample(ab, guide)
    start = time.perf_counter()
    for _ in range(5):
        guided_upsample(ab, guide)
    return (time.perf_counter() - start) / 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="comma-separated working short sides (default: each model's own)")
    parser.add_argument("--models", default="default,classic")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    args = parser.parse_args(argv)

    import torch

    from vidcolor.colorizers import MODELS, get_colorizer

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    frames = load_frames(args.frames)
    print(f"# threads={args.threads}, {len(frames)} frames, median ms per step() after a warm-up frame")
    print(f"{'model':<10} {'working size':>13} {'ms/frame':>9} {'+1080p upsample ms':>19}")
    for name in args.models.split(","):
        if name not in MODELS:
            print(f"# unknown model {name!r}")
            continue
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [type(get_colorizer(name)).default_short_side]
        for short_side in sizes:
            seconds, (w, h) = time_model(name, frames, short_side)
            print(f"{name:<10} {f'{w}x{h}':>13} {seconds * 1e3:9.1f} {time_upsample(short_side) * 1e3:19.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
