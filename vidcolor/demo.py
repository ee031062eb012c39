"""The embedded demo: a colour photo shipped by scikit-image, filmed by a synthetic camera.

The camera pans and zooms across the photo, so the clip has real motion; the gray version is the
input, its first colour frame is the reference, and the colorized result can be compared with the
colour original frame by frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import cv2
import numpy as np


@dataclass(frozen=True)
class DemoClip:
    gray_video: str
    color_video: str
    reference: str
    frames: int


def camera_path(image: np.ndarray, frames: int, width: int, height: int) -> list[np.ndarray]:
    """Crops of ``image`` along a smooth pan + zoom, resized to ``width x height``."""
    ih, iw = image.shape[:2]
    views = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        zoom = 1.0 + 0.35 * np.sin(np.pi * t)  # in and back out
        crop_w = iw / (1.25 * zoom)
        crop_h = crop_w * height / width
        crop_h = min(crop_h, ih / 1.05)
        crop_w = crop_h * width / height
        cx = crop_w / 2 + (iw - crop_w) * (0.15 + 0.7 * t)
        cy = crop_h / 2 + (ih - crop_h) * (0.5 + 0.3 * np.sin(2 * np.pi * t) / 2)
        matrix = np.array([[width / crop_w, 0, -(cx - crop_w / 2) * width / crop_w],
                           [0, height / crop_h, -(cy - crop_h / 2) * height / crop_h]], dtype=np.float64)
        views.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT))
    return views


def make_demo_clip(folder: str, *, frames: int = 48, width: int = 640, height: int = 360, fps: int = 24) -> DemoClip:
    """Write ``demo-color.mp4``, ``demo-gray.mp4`` and ``demo-reference.png`` into ``folder``."""
    from skimage import data  # the photo ships inside the scikit-image wheel: no download

    os.makedirs(folder, exist_ok=True)
    photo = data.coffee() if hasattr(data, "coffee") else data.astronaut()
    views = camera_path(photo, frames, width, height)
    color_path = os.path.join(folder, "demo-color.mp4")
    gray_path = os.path.join(folder, "demo-gray.mp4")
    reference_path = os.path.join(folder, "demo-reference.png")
    for path, gray in ((color_path, False), (gray_path, True)):
        with av.open(path, "w") as container:
            stream = container.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "fast"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for view in views:
                frame = av.VideoFrame.from_ndarray(view, format="rgb24").reformat(format="yuv420p")
                if gray:
                    for plane in frame.planes[1:]:
                        np.frombuffer(plane, dtype=np.uint8)[:] = 128
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    cv2.imwrite(reference_path, cv2.cvtColor(views[0], cv2.COLOR_RGB2BGR))
    return DemoClip(gray_path, color_path, reference_path, frames)


def clip_psnr(video: str, original: str) -> float:
    """Mean RGB PSNR (dB) of ``video`` against ``original``, frame by frame."""
    from .report.metrics import psnr

    scores = []
    with av.open(video) as a, av.open(original) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=False):
            scores.append(psnr(fa.to_ndarray(format="rgb24"), fb.to_ndarray(format="rgb24")))
    return float(np.mean(scores))
