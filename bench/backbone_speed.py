"""Per-frame cost of the pretrained Lite0 trunk and of the semantic match, against the default model.

    .venv/bin/python bench/backbone_speed.py                     # 160x288 and 224x400, 1 thread
    .venv/bin/python bench/backbone_speed.py --sizes 224x400 --threads 2
    .venv/bin/python bench/backbone_speed.py --weights old.pt,new.pt    # also time these default weights

Real 16:9 frames (DAVIS `dog` when ../shared is present, see bench/model_speed.py). Every figure
is the median over frames after a warm-up frame, in one process, so the ratio to the ``default``
model's ``Colorizer.step`` (timed in the same run, at its own working size) is like for like:

* trunk to stride 16 and to stride 32 (``EfficientNetLite`` on the frame's lightness);
* semantic match: the frame's trunk to stride 16 plus the attention over a reference encoded once
  (a 256x384 frame of the same clip, as in issue 24), and the attention alone;
* the attention's largest block: frame positions per block x reference positions x 4 bytes, twice
  (similarities and softmax);
* with ``--weights``, the ``default`` model's step with each weight file at its working size, in
  the same run, with frame 0 and with frame 0 mirrored and cropped as the reference (a v2a-c file
  runs the trunk and the semantic attention on every frame; a v2d file only where the reference is
  another picture than the frame's scene).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from model_speed import load_frames, time_model  # noqa: E402

from vidcolor.color import rgb_to_lab  # noqa: E402
from vidcolor.models.efficientnet_lite import shared_backbone  # noqa: E402
from vidcolor.correspondence.semantic import SemanticMatcher, attend, centred_keys  # noqa: E402
from vidcolor.color import luma_lightness  # noqa: E402
from vidcolor.references import Reference  # noqa: E402


def median_ms(run: Callable[[int], object], count: int) -> tuple[float, float]:
    """Median and fastest ms of ``run(i)`` over frames 1..count-1, after frame 0 as a warm-up.

    The fastest is the figure least disturbed by other processes on a shared machine.
    """
    run(0)
    times = []
    for i in range(1, count):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="160x288,224x400", help="comma-separated HxW working sizes")
    parser.add_argument("--reference", default="256x384", help="HxW of the reference")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads (default 1)")
    parser.add_argument("--weights", default="", help="comma-separated default-model weight files to time as well")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    backbone = shared_backbone()
    matcher = SemanticMatcher(backbone)
    frames = load_frames(args.frames)

    from vidcolor.colorizers import get_colorizer

    default_s, (dw, dh) = time_model("default", frames, type(get_colorizer("default")).default_short_side)
    default_ms = default_s * 1e3
    print(f"# threads={args.threads}, {len(frames)} frames, median ms after a warm-up frame")
    print(f"# baseline: default model step at {dw}x{dh}: {default_ms:.1f} ms")
    small = [luma_lightness(cv2.resize(f, (dw, dh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255) for f in frames]
    h0, w0 = frames[0].shape[:2]
    # another picture: frame 0 mirrored and cropped 10 % (same_scene 0), where a v2d file runs its trunk
    other = np.ascontiguousarray(frames[0][:, ::-1][h0 // 20: h0 - h0 // 20, w0 // 20: w0 - w0 // 20])
    for weights in filter(None, args.weights.split(",")):
        for case, picture in (("frame 0", frames[0]), ("mirrored", other)):
            colorizer = get_colorizer("default", weights=weights)
            reference = Reference.from_array(picture, key=f"speed:{case}")
            ms, fastest = median_ms(lambda i: colorizer.step(small[i], reference), len(small))
            print(f"# default step with {weights} (semantic={colorizer.model.cfg.semantic}), reference {case}, at {dw}x{dh}: "
                  f"{ms:.1f} ms (fastest {fastest:.1f}), {ms / default_ms:.2f}x the shipped")

    rh, rw = (int(v) for v in args.reference.split("x"))
    ref_rgb = cv2.resize(frames[-1], (rw, rh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    with torch.inference_mode():
        memory = matcher.encode_reference(torch.from_numpy(luma_lightness(ref_rgb))[None, None],
                                          torch.from_numpy(rgb_to_lab(ref_rgb)[..., 1:]).permute(2, 0, 1)[None])

    print(f"{'size':>8} {'stage':<34} {'ms':>7} {'fastest':>8} {'x default':>10}")
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        lights = [torch.from_numpy(luma_lightness(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                                                  .astype(np.float32) / 255))[None, None] for f in frames]
        rows: list[tuple[str, tuple[float, float]]] = []
        with torch.inference_mode():
            rows.append(("trunk to stride 16", median_ms(lambda i: backbone(lights[i], (16,)), len(lights))))
            rows.append(("trunk to stride 32", median_ms(lambda i: backbone(lights[i], (32,)), len(lights))))
            rows.append((f"semantic match vs {rh}x{rw} reference", median_ms(lambda i: matcher.match(lights[i], memory), len(lights))))
            features = [matcher.features(light)[0] for light in lights]

            def attention_only(i: int) -> None:
                query, keys = centred_keys([f[0] for f in features[i]], memory.features, matcher.config.centre)
                attend(query, keys, memory.ab, matcher.config.temperature, matcher.config.chunk)

            rows.append(("  of which attention", median_ms(attention_only, len(lights))))
        for stage, (ms, fastest) in rows:
            print(f"{size:>8} {stage:<34} {ms:7.1f} {fastest:8.1f} {ms / default_ms:10.2f}")
        positions = features[0][0].shape[-1]
        block = min(positions, matcher.config.chunk) * memory.ab.shape[1] * 4 * 2
        print(f"{size:>8} attention: {positions} x {memory.ab.shape[1]} positions, largest block {block / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
