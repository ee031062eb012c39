"""Automatic colorization of BSDS500 test photos: gray, sepia, mean-colour oracle, cheng2015, ...

Every photo is made gray (BT.601 luma), colorized at the model's working size (short side 256,
like a video frame), its chroma upsampled guided by the full-resolution luma and re-attached to
the input luma exactly as vidcolor writes video (:func:`vidcolor.color.rgb_codes`). Scores, per
photo then averaged:

* PSNR (dB) of the RGB output against the original;
* raw-accuracy AuC (Zhang et al. 2016): area under the share of pixels whose Lab ab error is ≤ t,
  t = 0..150, normalised to [0, 1];
* Hasler–Süsstrunk colourfulness of the output (the truth's mean is printed too).

Rows: ``gray`` (ab = 0), ``sepia`` (CSS ``sepia(1)`` of the gray picture, on the input luma),
``mean-colour oracle`` (each photo's own mean ab: cheats, an upper reference for a single global
colour), and every model passed with ``--models`` (any registered name, built with
:func:`vidcolor.colorizers.get_colorizer`, reference ``None``).

    .venv/bin/python bench/cheng2015_photos.py --models cheng2015
    .venv/bin/python bench/cheng2015_photos.py --models cheng2015,eccv16 --limit 20

To plug into another bench: ``measure_method(method, photos)`` takes any
``method(lightness_work, truth_rgb_full) -> ab_work`` (see :func:`colorizer_method`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidcolor.color import gray_to_lightness, guided_upsample, lightness_to_gray, rgb_codes, rgb_to_gray, rgb_to_lab  # noqa: E402
from vidcolor.colorizers.base import Colorizer  # noqa: E402
from vidcolor.report.metrics import colorfulness, psnr  # noqa: E402
from vidcolor.run.pipeline import working_size  # noqa: E402
from vidcolor.training.cheng2015 import raw_accuracy_auc  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "photos" / "bsds500" / "test"
#: A method maps (lightness at working size, truth RGB at full size) to ab at working size.
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def load_photos(folder: Path = PHOTOS, limit: int = 0) -> list[tuple[str, np.ndarray]]:
    """(name, float32 RGB in [0, 1]) of every photo in ``folder``, sorted by name."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if limit:
        paths = paths[:limit]
    photos = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            photos.append((path.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0))
    return photos


def gray_method(lightness: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """ab = 0: the gray input itself."""
    return np.zeros(lightness.shape + (2,), np.float32)


#: CSS ``sepia(1)`` matrix (the same tint bench/automatic.py uses).
SEPIA_MATRIX = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)


def sepia_method(lightness: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The chroma of CSS ``sepia(1)`` applied to the gray picture, shown at the input's luma."""
    gray = lightness_to_gray(lightness)
    toned = np.clip(np.repeat(gray[..., None], 3, axis=-1) @ SEPIA_MATRIX.T, 0.0, 1.0)
    return rgb_to_lab(toned.astype(np.float32))[..., 1:]


def mean_colour_oracle(lightness: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The photo's own mean ab everywhere (uses the answer: an oracle, not a method)."""
    mean = rgb_to_lab(truth)[..., 1:].reshape(-1, 2).mean(axis=0)
    return np.broadcast_to(mean, lightness.shape + (2,)).astype(np.float32)


def colorizer_method(colorizer: Colorizer) -> Method:
    """A registered colorizer as a photo method: a one-frame shot with no reference."""

    def method(lightness: np.ndarray, truth: np.ndarray) -> np.ndarray:
        colorizer.reset()
        return colorizer.step(lightness, None).ab

    return method


def score_photo(truth: np.ndarray, ab_work: np.ndarray) -> dict[str, float]:
    """PSNR, AuC and colourfulness of a working-size ab prediction shown on the photo's luma."""
    gray = rgb_to_gray(truth)
    lightness = gray_to_lightness(gray)
    ab = guided_upsample(np.ascontiguousarray(ab_work, dtype=np.float32), lightness)
    out = rgb_codes(gray, ab, 8, "bt601")
    truth_u8 = np.rint(truth * 255.0).astype(np.uint8)
    out_ab = rgb_to_lab(out.astype(np.float32) / 255.0)[..., 1:]
    truth_ab = rgb_to_lab(truth_u8.astype(np.float32) / 255.0)[..., 1:]
    return {"psnr": psnr(out, truth_u8), "auc": raw_accuracy_auc(out_ab, truth_ab), "colorfulness": colorfulness(out)}


def measure_method(method: Method, photos: Sequence[tuple[str, np.ndarray]], short_side: int = 256) -> dict[str, float]:
    """Mean scores of ``method`` over ``photos`` (and seconds per photo)."""
    rows: list[dict[str, float]] = []
    seconds = 0.0
    for _, truth in photos:
        height, width = truth.shape[:2]
        w, h = working_size(width, height, short_side)
        lightness = cv2.resize(gray_to_lightness(rgb_to_gray(truth)), (w, h), interpolation=cv2.INTER_AREA)
        started = time.perf_counter()
        ab = method(lightness, truth)
        seconds += time.perf_counter() - started
        rows.append(score_photo(truth, ab))
    means = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    means["sec_per_photo"] = seconds / len(photos)
    return means


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cheng2015", help="comma-separated registered model names ('' for none)")
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = load_photos(args.photos, args.limit)
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")
    methods: dict[str, Method] = {"gray": gray_method, "sepia": sepia_method, "mean-colour oracle": mean_colour_oracle}
    for name in filter(None, (n.strip() for n in args.models.split(","))):
        if name == "cheng2015":  # constructible before the lead registers it
            from vidcolor.colorizers.cheng2015 import Cheng2015Colorizer

            methods[name] = colorizer_method(Cheng2015Colorizer())
        else:
            from vidcolor.colorizers import get_colorizer

            methods[name] = colorizer_method(get_colorizer(name))
    truth_cf = float(np.mean([colorfulness(np.rint(t * 255).astype(np.uint8)) for _, t in photos]))
    print(f"{len(photos)} photos from {args.photos}; truth colourfulness {truth_cf:.2f}")
    print(f"{'method':<20} {'PSNR dB':>8} {'AuC':>7} {'colourf.':>9} {'s/photo':>8}")
    for name, method in methods.items():
        m = measure_method(method, photos)
        print(f"{name:<20} {m['psnr']:8.2f} {m['auc']:7.4f} {m['colorfulness']:9.2f} {m['sec_per_photo']:8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
