"""How many times a long film is decoded: no-reference mode and a Ray batch, counted in frames.

(a) A clip of ``--frames`` frames and ``--shots`` shots runs through ``vidcolor colorize`` without
``--ref`` (the real command, in this process): PySceneDetect finds the shots in one pass, which
also lets the automatic model colour each shot's 16 evenly spaced frames and its middle one and
keeps the one it is surest of (:class:`vidcolor.run.shots.ShotKeyframes`), the shot's reference; then
the exemplar model colours the whole clip. Scene detection and colorizing are counted apart.
Before frame-exact seeking every shot's keyframe was found by decoding from
frame 0: quadratic in the film's length; with seeking alone, about 1.34 colour passes at a
250-frame GOP.

(b) The same film as a batch with ``--executor ray`` and a reference: a resumable chunked run on a
Ray worker (another process; the job returns that process's count).

Decoded frames are :func:`vidcolor.io.reader.decoded_frame_count` (every frame the reader's
decoders output, probes included). Usage::

    python bench/decode_passes.py [--frames 10000] [--shots 40] [--gop 250] [--size 192x108] [--no-ray]

The fastest models still exercise the real code path: ``classic`` (exemplar) and ``cheng2015``
(automatic), at a working size of 64 pixels.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from vidcolor.io.reader import VideoReader, count_frames, decoded_frame_count, probe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seek import make_clip  # noqa: E402 - the bench folder is not a package

MODEL, AUTO_MODEL, SIZE = "classic", "cheng2015", "64"


def no_reference_run(path: str, output: str) -> dict[str, Any]:
    """``vidcolor colorize PATH -o OUTPUT`` without a reference, the real command run in this
    process; scene detection's share is counted by wrapping :func:`vidcolor.schedule.scenes.detect_cuts`."""
    import vidcolor.schedule.scenes
    from vidcolor.cli import main as vidcolor_main

    detection = [0, 0.0]
    detect_cuts = vidcolor.schedule.scenes.detect_cuts

    @functools.wraps(detect_cuts)
    def counted(*args: Any, **kwargs: Any) -> list[int]:
        before, started = decoded_frame_count(), time.perf_counter()
        cuts = detect_cuts(*args, **kwargs)
        detection[:] = [decoded_frame_count() - before, time.perf_counter() - started]
        counted.cuts = cuts  # type: ignore[attr-defined]
        return cuts

    vidcolor.schedule.scenes.detect_cuts = counted
    try:
        before, started = decoded_frame_count(), time.perf_counter()
        vidcolor_main(["colorize", path, "-o", output, "--model", MODEL, "--auto-model", AUTO_MODEL, "--size", SIZE,
                       "--codec", "ffv1", "-q"], standalone_mode=False)
        total, seconds = decoded_frame_count() - before, time.perf_counter() - started
    finally:
        vidcolor.schedule.scenes.detect_cuts = detect_cuts
    frames = count_frames(probe(output))
    return {"shots": len(counted.cuts) + 1, "frames": frames, "detection": tuple(detection),  # type: ignore[attr-defined]
            "colorize": (total - detection[0], seconds - detection[1])}


def counted_job(job: Any, *, counts: str) -> dict[str, object]:
    """The batch job of ``vidcolor batch`` (:func:`vidcolor.run.batch.colorize_job`), which also
    writes the frames its worker process decoded to the file ``counts`` (the batch keeps only
    the frame count of a job's result)."""
    from vidcolor.run.batch import colorize_job
    from vidcolor.io.reader import decoded_frame_count as worker_count

    before = worker_count()
    result = colorize_job(job)
    Path(counts).write_text(json.dumps({"decoded": worker_count() - before, "pid": os.getpid(), **result}))
    return result


def ray_batch_run(path: str, folder: str) -> dict[str, Any]:
    """``vidcolor batch IN OUT --ref R --executor ray`` on one film, through :func:`vidcolor.run.batch.run_batch`."""
    from vidcolor.run.batch import BatchOptions, plan_batch, run_batch

    films, out = os.path.join(folder, "films"), os.path.join(folder, "out")
    os.makedirs(films)
    os.link(path, os.path.join(films, "film.mp4"))
    reference = os.path.join(folder, "ref.png")
    with VideoReader(probe(path)) as reader:
        gray = next(iter(reader)).luma
    cv2.imwrite(reference, cv2.applyColorMap(gray, cv2.COLORMAP_AUTUMN))
    options = BatchOptions(ref=reference, model=MODEL, size=SIZE, codec="ffv1")
    os.makedirs(out)
    jobs = plan_batch(films, out, options)
    counts = os.path.join(folder, "decoded.json")
    started = time.perf_counter()
    results = run_batch(jobs, functools.partial(counted_job, counts=counts), executor="ray", num_cpus=1)
    assert [r.status for r in results] == ["done"], [r.message for r in results]
    return {"seconds": time.perf_counter() - started, **json.loads(Path(counts).read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--shots", type=int, default=40)
    parser.add_argument("--gop", type=int, default=250, help="x264 keyint (scenecut also starts a GOP at every cut)")
    parser.add_argument("--size", default="192x108")
    parser.add_argument("--no-ray", action="store_true", help="skip (b)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "film.mp4")
        started = time.perf_counter()
        make_clip(path, args.frames, width, height, args.gop, shots=args.shots)
        print(f"clip: {args.frames} frames, {args.shots} shots, {width}x{height}, H.264 GOP {args.gop} + scenecut, "
              f"3 B-frames (encoded in {time.perf_counter() - started:.0f} s); models {MODEL} + {AUTO_MODEL}, size {SIZE}")
        run = no_reference_run(path, os.path.join(folder, "out.mkv"))
        (detected, detect_s), (colorized, colorize_s) = run["detection"], run["colorize"]
        frames = run["frames"]
        print(f"(a) no-reference mode: {run['shots']} shots found, {frames} frames colorized")
        print(f"    scene detection: {detected} frames decoded = {detected / frames:.3f} passes ({detect_s:.0f} s)")
        print(f"    colorize:        {colorized} frames decoded = {colorized / frames:.3f} passes ({colorize_s:.0f} s)")
        print(f"    total:           {detected + colorized} frames decoded = {(detected + colorized) / frames:.3f} passes")
        if args.no_ray:
            return
        try:
            import ray  # noqa: F401
        except ImportError:
            print("(b) skipped: ray is not installed")
            return
        batch = ray_batch_run(path, os.path.join(folder, "batch"))
        print(f"(b) Ray batch (--executor ray, --ref, resumable chunks): {batch['frames']} frames colorized on worker "
              f"pid {batch['pid']} in {batch['seconds']:.0f} s; {batch['decoded']} frames decoded = "
              f"{batch['decoded'] / batch['frames']:.3f} passes")


if __name__ == "__main__":
    main()
