"""Peak memory of ``vidcolor colorize`` at two clip lengths: does it stay flat as the film gets longer?

    .venv/bin/python bench/memory.py                                   # default model, 100 vs 400 frames, 480p
    .venv/bin/python bench/memory.py --models default,fast,classic --lengths 100,400 --json mem.json
    .venv/bin/python bench/memory.py --vidcolor-args "--stats"         # any further CLI options
    .venv/bin/python bench/memory.py --reference mirrored --height 1080  # another picture as reference, 1080p

The input is a synthetic 854x480 gray H.264 clip (``--height`` sets another 16:9 size; a pan to and
fro over the scikit-image coffee photo, with film grain), written frame by frame. The reference
(``--reference``) is the first view in colour (``first``: a same-shot keyframe), or that view
mirrored and cropped as in ``bench/quality.py``'s ``mirrored`` case (``mirrored``: another picture of
the scene, no pixel alignment: the default model's semantic branch runs on every frame). Each
command runs as a child process; its peak resident set size is the kernel's own count for that
child (``os.wait4``'s ``ru_maxrss``), and the bench also samples the child's RSS every 0.2 s to
show when the peak came (the share of the run elapsed at the peak). The shortest length is the
baseline: the table gives each longer run's peak over it, and the growth in MB per 100 frames.
Issue 24's target is a peak flat with length; the verdict line calls it flat when the longest
run's peak is within ``--tolerance`` (default 10 %) of the shortest run's.

A child started from Python (vfork, then exec) carries the starting process's peak into its
``ru_maxrss``, so the bench's own peak RSS (``bench_rss_mb`` in the JSON; 153 MB at 144p) is a
floor under every measured peak (printed under the table): a row near it measures the bench, not vidcolor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np

from quality import mirrored

REPO = Path(__file__).resolve().parents[1]
REFERENCES = ("first", "mirrored")


def frame_size(height: int) -> tuple[int, int]:
    """The 16:9 frame of ``height`` lines, width rounded to even (480 gives 854x480, 1080 gives 1920x1080)."""
    return 2 * round(height * 8 / 9), height


def pan_view(photo: np.ndarray, index: int, width: int, height: int) -> np.ndarray:
    """Frame ``index`` of a pan that goes across the photo and back (period 200 frames), any length."""
    ph, pw = photo.shape[:2]
    phase = (index % 200) / 100.0
    t = phase if phase <= 1.0 else 2.0 - phase
    x = int(round(t * (pw - width)))
    y = int(round((0.5 + 0.5 * np.sin(index / 31.0)) * (ph - height)))
    return np.ascontiguousarray(photo[y:y + height, x:x + width])


def make_source(path: Path, frames: int, grain: float, reference: Path, size: tuple[int, int] = frame_size(480),
                case: str = "first") -> None:
    """The gray clip (yuv420p, neutral chroma) and the reference PNG: its first view in colour, as ``case`` gives it."""
    from skimage import data

    width, height = size
    coffee = data.coffee()
    scale = 1.6 * max(width / coffee.shape[1], height / coffee.shape[0])
    photo = cv2.resize(coffee, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "16", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        chroma = np.full((height // 2, width), 128, np.uint8)
        for index in range(frames):
            view = pan_view(photo, index, width, height)
            if index == 0:
                keyframe = mirrored(view) if case == "mirrored" else view
                cv2.imwrite(str(reference), cv2.cvtColor(keyframe, cv2.COLOR_RGB2BGR))
            luma = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY).astype(np.float32)
            luma += rng.normal(0.0, grain, luma.shape).astype(np.float32)
            plane = np.clip(16.0 + luma * (219.0 / 255.0), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.vstack([plane, chroma]), format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def resident_mb(pid: int | str, field: str = "VmRSS") -> float | None:
    """A process's resident set size in MB from Linux /proc (``VmRSS`` now, ``VmHWM`` its peak), or
    None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_measured(command: list[str], cwd: Path) -> dict[str, float]:
    """Run ``command``; its peak RSS (kernel count, MB), wall seconds, and when the sampled peak came."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    samples: list[tuple[float, float]] = []
    with open(cwd / "stderr.txt", "w", encoding="utf-8") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        finished = threading.Event()

        def sample() -> None:
            while not finished.wait(0.2):
                rss = resident_mb(child.pid)
                if rss is not None:
                    samples.append((time.perf_counter() - started, rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        finished.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)}\nexited {child.returncode}:\n{(cwd / 'stderr.txt').read_text()[-2000:]}")
    peak_at = max(samples, key=lambda s: s[1])[0] / wall if samples else float("nan")
    return {"peak_mb": usage.ru_maxrss / 1024.0, "wall_seconds": wall, "sampled_peak_at": peak_at,
            "samples": len(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default", help="comma-separated CLI models (default: default)")
    parser.add_argument("--lengths", default="100,400", help="comma-separated clip lengths in frames (default 100,400)")
    parser.add_argument("--reference", choices=REFERENCES, default="first",
                        help="first: the first view (same shot); mirrored: it flipped and cropped 10 %% (another picture)")
    parser.add_argument("--height", type=int, default=480, help="frame height; 16:9 width (default 480: 854x480)")
    parser.add_argument("--grain", type=float, default=3.0, help="film grain, 8-bit code values (default 3)")
    parser.add_argument("--tolerance", type=float, default=0.10, help="'flat': longest peak within this share of the shortest's")
    parser.add_argument("--vidcolor-args", default="", help="further options for vidcolor colorize, one string")
    parser.add_argument("--json", dest="json_path", help="also write the measurements as JSON here")
    args = parser.parse_args(argv)
    lengths = sorted({int(n) for n in args.lengths.split(",") if n.strip()})
    if len(lengths) < 2 or lengths[0] < 2:
        parser.error("--lengths: give at least two lengths of 2 frames or more")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    extra = shlex.split(args.vidcolor_args)
    if args.height < 64 or args.height % 2:
        parser.error(f"--height: give an even number of lines, 64 or more (got {args.height}): H.264 4:2:0 needs even sizes")
    size = frame_size(args.height)
    command_line = "bench/memory.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"# {command_line}\n# synthetic {size[0]}x{size[1]} gray H.264, grain {args.grain:g}, reference {args.reference}; "
          "output H.264 at the CLI's defaults")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidcolor-memory-") as tmp:
        folder = Path(tmp)
        for length in lengths:
            make_source(folder / f"gray-{length}.mp4", length, args.grain, folder / "reference.png", size, args.reference)
        for model in models:
            for length in lengths:
                command = [sys.executable, "-m", "vidcolor", "colorize", str(folder / f"gray-{length}.mp4"),
                           "-o", str(folder / f"out-{model}-{length}.mp4"), "--ref", str(folder / "reference.png"),
                           "--model", model, "--quiet", "--overwrite", *extra]
                row = {"model": model, "frames": length, **run_measured(command, folder)}
                rows.append(row)
                print(f"{model} {length} frames: peak {row['peak_mb']:.0f} MB, wall {row['wall_seconds']:.0f} s",
                      file=sys.stderr, flush=True)

    print(f"\n{'model':<10} {'frames':>7} {'peak MB':>9} {'vs ' + str(lengths[0]):>8} {'MB/100 fr':>10} "
          f"{'peak at':>8} {'wall s':>8}")
    verdicts = {}
    for model in models:
        chosen = [r for r in rows if r["model"] == model]
        base = chosen[0]
        for row in chosen:
            row["ratio"] = row["peak_mb"] / base["peak_mb"]
            extra_frames = row["frames"] - base["frames"]
            row["mb_per_100_frames"] = (row["peak_mb"] - base["peak_mb"]) * 100.0 / extra_frames if extra_frames else 0.0
            print(f"{model:<10} {row['frames']:>7} {row['peak_mb']:>9.0f} {row['ratio']:>7.3f}x {row['mb_per_100_frames']:>+10.1f} "
                  f"{row['sampled_peak_at']:>7.0%} {row['wall_seconds']:>8.1f}")
        verdicts[model] = bool(chosen[-1]["ratio"] <= 1.0 + args.tolerance)
        print(f"{model}: peak at {chosen[-1]['frames']} frames is {chosen[-1]['ratio']:.3f}x the peak at {base['frames']}: "
              f"{'flat' if verdicts[model] else 'NOT flat'} (within {args.tolerance:.0%})")
    # the peak of the bench's own memory (VmHWM), not its ru_maxrss: that also carries the peak of
    # whatever started the bench (pytest after a thousand tests), which its children never see
    bench_rss_mb = resident_mb("self", "VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("# peak: the child's ru_maxrss (os.wait4); peak at: share of the run's wall time when the sampled RSS peaked")
    print(f"# the bench's own peak RSS {bench_rss_mb:.0f} MB is a floor under every peak (vfork/exec counts it in the child's)")
    print(f"# load average (1, 5, 15 min) at the end {[round(x, 2) for x in os.getloadavg()]} on {os.cpu_count()} CPUs")
    if args.json_path:
        report = {"command": command_line, "size": list(size), "reference": args.reference, "extra": extra,
                  "tolerance": args.tolerance, "bench_rss_mb": bench_rss_mb, "rows": rows, "flat": verdicts}
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
