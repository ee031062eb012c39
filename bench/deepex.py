"""DeepEx per-frame CPU cost and peak memory: vidcolor's implementation against an official-style loop.

    .venv/bin/python bench/deepex.py                          # everything below, 2 threads
    .venv/bin/python bench/deepex.py --cases ours:216x384,official:216x384 --frames 3

Each case runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its own:

- ``ours:HxW``: :class:`~vidcolor.colorizers.deepex.DeepExColorizer` at working size HxW (reference
  features prepared once, chunked argmax correlation, VGG stopped at relu5_2);
- ``official:HxW``: the official script's loop re-stated with the same modules: all 16 VGG convs
  on every frame, WarpNet's reference branches recomputed every frame, the full N x N similarity
  matrix and a real softmax at T = 1e-10 (the reference VGG features are cached, as there);
- ``4k``: a 3840x2160 frame brought to a 1920x1080 working size, colorized, its chroma guided-
  upsampled back to 3840x2160 and converted to RGB, i.e. the pipeline's per-frame work at 4K.

With ``--repeat``, the case list runs several times interleaved and each case keeps its fastest
run, which tames the noise of a shared machine. Weights follow the parity fixture's rule (speed does not depend on their values). Frames are DAVIS
``dog`` from ../shared when present. Times are the median over ``--frames`` frames after one
warm-up frame (oneDNN builds its kernels for a new shape on first use); "CPU" is user+system time
of all threads. For scale, the fixture README (section 8) measured the official code at 3.08 s per
frame at 216x384 and 17.2 s at 432x768 (2 threads, peak RSS 1.8 GB and 7.2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLIP = REPO.parent / "shared" / "data" / "clips" / "davis" / "dog" / "JPEGImages"
DEFAULT_CASES = "official:216x384,ours:216x384,ours:432x768,ours:1080x1920,4k"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frames(count: int, width: int, height: int) -> tuple[list, object]:
    """Lightness of ``count`` real frames at width x height, and the reference (frame 20)."""
    import cv2
    import numpy as np

    from vidcolor.color import rgb_to_lab
    from vidcolor.references import Reference

    files = sorted(CLIP.glob("*.jpg")) if CLIP.is_dir() else []
    if files:
        images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0 for p in files[: count]]
        reference = Reference.from_array(cv2.cvtColor(cv2.imread(str(files[20])), cv2.COLOR_BGR2RGB), key="bench-ref")
    else:
        yy, xx = np.mgrid[0:480, 0:854].astype(np.float32)
        images = [np.clip(np.dstack([xx / 854 + i * 0.01, yy / 480, 1 - xx / 854]), 0, 1).astype(np.float32) for i in range(count)]
        reference = Reference.from_array(images[0], key="bench-ref")
    interp = cv2.INTER_AREA if width <= images[0].shape[1] else cv2.INTER_CUBIC
    return [rgb_to_lab(cv2.resize(im, (width, height), interpolation=interp))[..., 0].copy() for im in images], reference


def _state_dicts() -> dict:
    from vidcolor.models.deepex import expected_tensors
    from vidcolor.weights import DEEPEX_SYNTHETIC_SEEDS, synthetic_state_dict

    return {name: synthetic_state_dict(expected_tensors(name), seed) for name, seed in DEEPEX_SYNTHETIC_SEEDS.items()}


def worker(case: str, frames: int, threads: int) -> dict:
    """Run one case in this process and return its measurements."""
    import torch

    torch.set_num_threads(threads)
    kind, _, size = case.partition(":")
    height, width = (1080, 1920) if kind == "4k" else (int(v) for v in size.split("x"))
    count = 2 if kind == "4k" else frames + 1
    lightness, reference = _frames(count, width, height)
    states = _state_dicts()
    result: dict = {"case": case, "threads": threads}
    if kind == "ours":
        from vidcolor.colorizers.deepex import DeepExColorizer

        colorizer = DeepExColorizer(state_dicts=states)
        del states
        result["rss_model_mb"] = _rss_mb()
        wall = time.perf_counter()
        colorizer.prepare_reference(reference, height, width)  # type: ignore[arg-type]
        result["reference_s"] = time.perf_counter() - wall
        parts: list[tuple[float, float]] = []

        def step(light: object) -> None:
            stats = colorizer.step(light, reference).stats  # type: ignore[arg-type]
            parts.append((stats["seconds_correspondence"], stats["seconds_colorization"]))

    elif kind == "official":
        step, rss_model = _official_loop(states, reference, height, width)
        del states
        result["rss_model_mb"] = rss_model
    elif kind == "4k":
        return _four_k(states, lightness, reference, result)
    else:
        raise SystemExit(f"unknown case {case!r}")
    walls, cpus = [], []
    for i, light in enumerate(lightness):
        wall, cpu = time.perf_counter(), _cpu()
        step(light)
        if i:  # frame 0 is the warm-up
            walls.append(time.perf_counter() - wall)
            cpus.append(_cpu() - cpu)
    result.update(wall_s=statistics.median(walls), cpu_s=statistics.median(cpus), frames=len(walls), peak_rss_mb=_peak_mb())
    if kind == "ours":
        result["correspondence_s"] = statistics.median(p[0] for p in parts[1:])
        result["colorization_s"] = statistics.median(p[1] for p in parts[1:])
    return result


def _official_loop(states: dict, reference: object, height: int, width: int):
    """The official per-frame computation, re-stated with our modules (for comparison only)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from vidcolor.models import deepex as dx

    net = dx.DeepExNet.from_state_dicts(states["vggnet"], states["nonlocal_net"], states["colornet"])
    rss_model = _rss_mb()

    def vgg_all(rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        mean = torch.tensor(dx.VGG_MEAN_BGR).view(1, 3, 1, 1)
        x = (rgb.flip(1) - mean) * 255.0
        out, block = {}, "1"
        for name, _, _ in dx._VGG_CONVS:  # all 16 convs, as the official forward
            if name[4] != block:
                x = F.max_pool2d(x, 2, 2)
                block = name[4]
            x = F.relu(getattr(net.vggnet, name)(x))
            if name in dx.VGG_TAPS:
                out[dx.VGG_TAPS[name]] = x
        return out

    lab = reference.lab_at(width, height) - np.array([50, 0, 0], np.float32)  # type: ignore[attr-defined]
    ref_lab = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1)))[None]
    ref_rgb = torch.from_numpy(np.ascontiguousarray(reference.rgb_at(width, height).transpose(2, 0, 1)))[None]  # type: ignore[attr-defined]
    with torch.inference_mode():
        ref_vgg = vgg_all(ref_rgb)  # cached once, as in the official script
    previous: list[torch.Tensor | None] = [None]

    @torch.inference_mode()
    def step(light: np.ndarray) -> None:
        l_c = torch.from_numpy(light - np.float32(50))[None, None]
        warp = net.nonlocal_net
        theta = dx._center_normalize(warp.theta(warp.embed(vgg_all(dx.gray_vgg_input(l_c)))))[0]
        phi = dx._center_normalize(warp.phi(warp.embed(ref_vgg)))[0]  # recomputed every frame
        f = theta.t() @ phi  # the full N x N matrix
        similarity = f.max(dim=-1).values
        weights = torch.softmax(f / dx.OFFICIAL_TEMPERATURE, dim=-1)
        pooled = F.avg_pool2d(ref_lab, 4)
        warped = (weights @ pooled[0].flatten(1).t()).t().reshape(3, height // 4, width // 4)
        corr = dx.Correspondence(warped, similarity.reshape(height // 4, width // 4), None)
        ab = net.colorize(l_c, corr, previous[0])
        previous[0] = torch.cat([l_c, ab], dim=1)

    return step, rss_model


def _four_k(states: dict, lightness: list, reference: object, result: dict) -> dict:
    """A 3840x2160 frame through the pipeline's per-frame work at a 1080p working size."""
    import cv2
    import numpy as np

    from vidcolor.color import guided_upsample, lab_to_rgb
    from vidcolor.colorizers.deepex import DeepExColorizer

    colorizer = DeepExColorizer(state_dicts=states)
    del states
    result["rss_model_mb"] = _rss_mb()
    colorizer.prepare_reference(reference, 1080, 1920)  # type: ignore[arg-type]
    walls = []
    for light in lightness:
        full = cv2.resize(light, (3840, 2160), interpolation=cv2.INTER_CUBIC)  # the 4K source's lightness
        wall = time.perf_counter()
        work = cv2.resize(full, (1920, 1080), interpolation=cv2.INTER_AREA)
        out = colorizer.step(work, reference)  # type: ignore[arg-type]
        ab = guided_upsample(out.ab, full)
        rgb = lab_to_rgb(np.dstack([full, ab]))
        walls.append(time.perf_counter() - wall)
        assert rgb.shape == (2160, 3840, 3)
    result.update(wall_s=walls[-1], first_wall_s=walls[0], frames=1, peak_rss_mb=_peak_mb(), output="3840x2160 RGB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated (default {DEFAULT_CASES})")
    parser.add_argument("--frames", type=int, default=3, help="timed frames per case after the warm-up (1 at 1080p)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="run the case list this many times, interleaved; keep each case's fastest run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.frames, args.threads)))
        return
    print(f"# load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; torch threads {args.threads}")
    best: dict[str, dict] = {}
    for case in args.cases.split(",") * max(1, args.repeat):
        frames = 1 if case.endswith("1080x1920") else args.frames
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", case, "--frames", str(frames), "--threads", str(args.threads)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            print(f"# {case} failed:\n{proc.stderr[-2000:]}")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if case not in best or row["wall_s"] < best[case]["wall_s"]:
            best[case] = row
        print(
            f"{row['case']:<18} wall {row['wall_s']:7.2f} s/frame  CPU {row.get('cpu_s', float('nan')):7.2f} s/frame  "
            f"peak RSS {row['peak_rss_mb']:7.0f} MB (model loaded: {row['rss_model_mb']:.0f} MB)"
            + (f"  reference {row['reference_s']:.2f} s once" if "reference_s" in row else "")
            + (f"  (VGG+WarpNet+correlation {row['correspondence_s']:.2f} s, ColorVidNet {row['colorization_s']:.2f} s)" if "correspondence_s" in row else "")
            + (f"  first frame {row['first_wall_s']:.1f} s" if "first_wall_s" in row else ""),
            flush=True,
        )
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    rows = list(best.values())
    by_case = best
    print("\n| case | wall s/frame | CPU s/frame | peak RSS MB |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['wall_s']:.2f} | {r.get('cpu_s', float('nan')):.2f} | {r['peak_rss_mb']:.0f} |")
    for size in ("216x384", "432x768"):
        ours, official = by_case.get(f"ours:{size}"), by_case.get(f"official:{size}")
        if ours and official:
            print(
                f"\nofficial-style / ours at {size}: wall x{official['wall_s'] / ours['wall_s']:.2f}, "
                f"CPU x{official['cpu_s'] / ours['cpu_s']:.2f}, peak RSS x{official['peak_rss_mb'] / ours['peak_rss_mb']:.2f}"
            )


if __name__ == "__main__":
    main()
