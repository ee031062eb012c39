"""Throughput of ``vidcolor colorize`` against a plain PyAV transcode of the same 1080p clip.

Both run in this process's machine state, one after the other, so the ratio is meaningful on a
noisy machine even when the absolute fps are not. Usage::

    python bench/throughput.py [--model default] [--encoder-preset medium] [--frames 96] [--source FILE] [--detail]

The source defaults to a 1080p clip built from the demo photo (camera pan/zoom), grayscale, with
film grain (``--grain``) so it costs the encoder what real footage does.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import av
import numpy as np

from vidcolor.demo import camera_path


def make_source(path: str, frames: int, grain: float = 0.0) -> str:
    """A gray 1080p pan over the demo photo; ``grain`` adds film grain (Gaussian, in 8-bit code
    values, new every frame): scanned film is grainy, and grain is what makes real footage costly
    to encode (a clean pan encodes several times faster than the footage the targets were set on)."""
    from skimage import data

    views = camera_path(data.coffee(), frames, 1920, 1080)
    rng = np.random.default_rng(0)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"crf": "16", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for view in views:
            frame = av.VideoFrame.from_ndarray(view, format="rgb24").reformat(format="yuv420p")
            if grain > 0:
                luma = np.frombuffer(frame.planes[0], dtype=np.uint8).reshape(-1, frame.planes[0].line_size)
                noisy = luma.astype(np.float32) + rng.normal(0.0, grain, luma.shape).astype(np.float32)
                frame.planes[0].update(np.clip(noisy, 0, 255).astype(np.uint8).tobytes())
            for plane in frame.planes[1:]:
                np.frombuffer(plane, dtype=np.uint8)[:] = 128
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def plain_transcode(source: str, output: str, preset: str, crf: int) -> tuple[int, float]:
    """Decode and re-encode with the same encoder settings vidcolor uses: the floor."""
    started = time.perf_counter()
    count = 0
    with av.open(source) as src, av.open(output, "w") as dst:
        in_stream = src.streams.video[0]
        in_stream.thread_type = "AUTO"
        stream = dst.add_stream("libx264", rate=in_stream.average_rate, options={"preset": preset, "crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = in_stream.width, in_stream.height, "yuv420p"
        for frame in src.decode(in_stream):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                dst.mux(packet)
            count += 1
        for packet in stream.encode():
            dst.mux(packet)
    return count, time.perf_counter() - started


def colorize(source: str, reference: str, output: str, model: str, preset: str, crf: int,
             extra: tuple[str, ...] = ()) -> tuple[int, float, float]:
    """Run the real command; returns (frames, wall seconds including start-up, the run's own seconds
    from its summary line: decode to the renamed output, without interpreter start-up and model loading)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidcolor", "colorize", source, "-o", output, "--ref", reference,
                           "--model", model, "--encoder-preset", preset, "--crf", str(crf), "--overwrite", *extra],
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    elapsed = time.perf_counter() - started
    match = re.search(r"(\d+) frames in ([\d.]+) s", done.stdout)
    with av.open(output) as container:
        count = sum(1 for _ in container.demux(container.streams.video[0]) if _.size)
    return count, elapsed, float(match.group(2)) if match else elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="classic")
    parser.add_argument("--encoder-preset", default="medium")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--source", default=None, help="a 1080p input; default: synthetic pan over the demo photo")
    parser.add_argument("--grain", type=float, default=3.0,
                        help="film grain of the synthetic source, in 8-bit code values (3 brings this machine's plain "
                             "transcode to the 6 fps medium / 13 fps veryfast of real footage; 0 = clean)")
    parser.add_argument("--detail", action="store_true", help="run vidcolor with --detail (the references' fine colour)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or make_source(os.path.join(tmp, "source-1080p.mp4"), args.frames, args.grain)
        reference = os.path.join(tmp, "reference.png")
        with av.open(source) as container:
            first = next(container.decode(video=0))
        import cv2
        from skimage import data

        cv2.imwrite(reference, cv2.cvtColor(camera_path(data.coffee(), 2, 1920, 1080)[0], cv2.COLOR_RGB2BGR)
                    if args.source is None else first.to_ndarray(format="bgr24"))
        n_plain, t_plain = plain_transcode(source, os.path.join(tmp, "plain.mp4"), args.encoder_preset, args.crf)
        extra = ("--detail",) if args.detail else ()
        n_ours, t_ours, t_run = colorize(source, reference, os.path.join(tmp, "ours.mp4"), args.model, args.encoder_preset,
                                         args.crf, extra)
    grain = f", grain {args.grain:g}" if args.source is None else ""
    print(f"1080p, x264 preset {args.encoder_preset}, crf {args.crf}, {n_plain} frames{grain}")
    print(f"{'run':<44}{'frames':>8}{'seconds':>10}{'fps':>8}")
    print(f"{'plain PyAV transcode':<44}{n_plain:>8}{t_plain:>10.2f}{n_plain / t_plain:>8.2f}")
    print(f"{'vidcolor colorize --model ' + args.model + ' '.join(('',) + extra) + ' (command)':<44}{n_ours:>8}{t_ours:>10.2f}{n_ours / t_ours:>8.2f}")
    print(f"{'  of which the run itself (after start-up)':<44}{n_ours:>8}{t_run:>10.2f}{n_ours / t_run:>8.2f}")
    print(f"time ratio vidcolor / plain transcode: {t_ours / t_plain:.2f}x whole command, {t_run / t_plain:.2f}x without "
          f"start-up ({t_ours - t_run:.1f} s, paid once per file) (target <= 2.0x)")


if __name__ == "__main__":
    main()
