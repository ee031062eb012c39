"""Cost of positioned reads (``VideoReader(start=N)``) against one full sequential decode.

Builds a 2,400-frame 640x360 H.264 clip (x264's usual GOP of 250, 3 B-frames), decodes it whole
as the baseline, then reads single frames near its end. Both run in this process one after the
other, so the ratio holds on a noisy machine; costs are the process's CPU time (all its decoding
threads; wall time, which other processes' load inflates, is printed too), best of several runs,
and frames decoded. The frames a positioned read returns are checked against the sequential decode. Usage::

    python bench/seek.py [--frames 2400] [--gop 250] [--size 640x360]

Target (issue 22): a read near the end costs at most 5 % of the full decode.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import av
import numpy as np

from vidcolor.io.reader import VideoReader, decoded_frame_count, probe


def synthetic_frames(count: int, width: int, height: int, shots: int = 1):
    """Gray frames with motion, made on the fly (memory stays flat): a textured background
    panning under moving discs; each of ``shots`` shots has its own texture and brightness, so
    a scene detector and an encoder's scenecut see real cuts."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    per_shot = -(-count // shots)
    for shot in range(shots):
        rng = np.random.default_rng(shot)
        texture = rng.uniform(0, 255, (height // 8 + 1, width // 8 + 1)).astype(np.float32)
        texture = np.repeat(np.repeat(texture, 8, axis=0), 8, axis=1)[:height, :width]
        level = rng.uniform(40, 200)
        centres = rng.uniform(0, 1, (3, 2))
        for i in range(min(per_shot, count - shot * per_shot)):
            image = 0.5 * np.roll(texture, i * (1 + shot % 3), axis=1) + 0.5 * level
            for k, (cx, cy) in enumerate(centres):
                x = (cx * width + i * (k + 1)) % width
                y = (cy * height + i * 0.5 * (k + 1)) % height
                image[(xx - x) ** 2 + (yy - y) ** 2 < (height * 0.1 * (k + 1)) ** 2] = 255 - 60 * k
            yield np.clip(image, 0, 255).astype(np.uint8)


def make_clip(path: str, count: int, width: int, height: int, gop: int, shots: int = 1) -> str:
    """Encode ``synthetic_frames`` with libx264 (B-frames, GOP ``gop``, scenecut on)."""
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=24, options={
            "preset": "veryfast", "crf": "23", "g": str(gop), "bf": "3",
            "x264-params": f"keyint={gop}:bframes=3:log-level=error"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for gray in synthetic_frames(count, width, height, shots):
            frame = av.VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2400)
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "clip.mp4")
        started = time.perf_counter()
        make_clip(path, args.frames, width, height, args.gop)
        print(f"clip: {args.frames} frames {width}x{height}, H.264 GOP {args.gop}, 3 B-frames "
              f"({os.path.getsize(path) / 1e6:.1f} MB, encoded in {time.perf_counter() - started:.1f} s)")
        info = probe(path)
        starts = [args.frames - 1, args.frames - 5, args.frames - 60, args.frames - args.gop // 2]
        kept: dict[int, np.ndarray] = {}
        full = wall_full = float("inf")
        for _ in range(2):  # the best of two: the machine is shared
            before, started, wall = decoded_frame_count(), time.process_time(), time.perf_counter()
            with VideoReader(info) as reader:
                count = 0
                for frame in reader:
                    count += 1
                    if frame.index in starts:
                        kept[frame.index] = frame.luma
            full = min(full, time.process_time() - started)
            wall_full = min(wall_full, time.perf_counter() - wall)
            full_decoded = decoded_frame_count() - before
        print(f"full sequential decode: {count} frames, {full:.2f} s CPU, {wall_full:.2f} s wall ({full_decoded} decoded)")

        def positioned(start: int, *, cold: bool) -> tuple[float, float, int]:
            """Best of three reads of frame ``start``; ``cold`` changes the file's mtime first, so
            each read also builds the packet index (once per file and process)."""
            best = best_wall = float("inf")
            for _ in range(3):
                if cold:
                    stat = os.stat(path)
                    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
                before, started, wall = decoded_frame_count(), time.process_time(), time.perf_counter()
                with VideoReader(info, start=start) as reader:
                    frame = next(iter(reader))
                best = min(best, time.process_time() - started)
                best_wall = min(best_wall, time.perf_counter() - wall)
                decoded = decoded_frame_count() - before
                assert frame.index == start and np.array_equal(frame.luma, kept[start]), f"frame {start} differs"
            return best, best_wall, decoded

        worst = worst_frames = 0.0
        for label, start, cold in [("incl. the packet index", starts[0], True)] + [("", s, False) for s in starts]:
            seconds, wall, decoded = positioned(start, cold=cold)
            worst, worst_frames = max(worst, seconds / full), max(worst_frames, decoded / full_decoded)
            print(f"read frame {start:5d}: {seconds * 1000:6.1f} ms CPU = {100 * seconds / full:5.2f} % of the full decode "
                  f"(wall {100 * wall / wall_full:5.2f} %), {decoded:3d} frames decoded = "
                  f"{100 * decoded / full_decoded:4.2f} % {label}")
        print(f"worst positioned read: {100 * worst:.2f} % of the full decode's CPU time, {100 * worst_frames:.2f} % of "
              f"its frames (target <= 5 %); frames identical")
        assert worst <= 0.05, "positioned reads cost more than 5 % of a full decode"

if __name__ == "__main__":
    main()
