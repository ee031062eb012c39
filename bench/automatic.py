"""Automatic (no-reference) colorization on held-out photos: PSNR, colourfulness and raw accuracy.

Photos: BSDS500 ``test`` (200 photos, never used for training any vidcolor model). Each photo is
turned into the gray picture a black-and-white film would show (BT.601 luma), colorized without
any reference, recombined keeping that luma (as ``vidcolor colorize`` does), and compared with the
original:

* PSNR (dB) of the RGB result against the original (the paper warns it penalises plausible but
  different colours: reported, not a goal);
* AuC: the ECCV16 paper's raw accuracy, the area under the curve of the share of pixels whose ab
  error (output vs original, Lab units) is within t, for t = 0..150, normalised to 1 (x100 below);
* colourfulness (Hasler & Süsstrunk); the originals' own mean is printed as the target.

Rows: ``gray`` (ab = 0), ``mean colour (oracle)`` (every pixel gets the photo's own mean ab, so it
*knows the answer's average*: an upper reference for a global tint, not a fair competitor),
``sepia`` (CSS ``sepia(1)`` of the gray picture: one fixed warm tint, the colourfulness floor a real
model must beat), and every model
named with ``--models``. A model is either a name in the colorizer registry
(:func:`vidcolor.colorizers.get_colorizer`) with options (``eccv16:vibrancy=0.2,weights=official``),
or a key of :data:`EXTRA_METHODS` (a dict of callables, for models not registered yet).

    .venv/bin/python bench/automatic.py                          # eccv16 (+cheng2015 if registered)
    .venv/bin/python bench/automatic.py --models eccv16,eccv16:vibrancy=1.0 --limit 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidcolor.color import gray_to_lightness, lab_with_luma, rgb_to_gray, rgb_to_lab  # noqa: E402
from vidcolor.report.metrics import colorfulness, psnr  # noqa: E402
from vidcolor.training.eccv16 import auc_cmf  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "photos" / "bsds500" / "test"
#: The CSS Filter Effects ``sepia(1)`` colour matrix (W3C): the common, untuned definition of sepia.
SEPIA_MATRIX = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
#: A method: (lightness (H, W) in [0, 100], true ab (H, W, 2), only for oracles) → ab (H, W, 2).
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _gray(lightness: np.ndarray, truth_ab: np.ndarray) -> np.ndarray:
    return np.zeros((*lightness.shape, 2), np.float32)


def _mean_colour_oracle(lightness: np.ndarray, truth_ab: np.ndarray) -> np.ndarray:
    return np.broadcast_to(truth_ab.reshape(-1, 2).mean(axis=0), truth_ab.shape).astype(np.float32)


def _sepia(lightness: np.ndarray, truth_ab: np.ndarray) -> np.ndarray:
    """The chroma of CSS ``sepia(1)`` applied to the gray picture: one fixed warm hue, stronger in
    the light tones (the output keeps the gray's luma, like every row)."""
    from vidcolor.color import lightness_to_gray

    gray = lightness_to_gray(lightness)
    toned = np.clip(np.repeat(gray[..., None], 3, axis=-1) @ SEPIA_MATRIX.T, 0.0, 1.0)
    return rgb_to_lab(toned.astype(np.float32))[..., 1:]


#: Methods the bench knows besides the registry: name → factory returning a Method. Add a model
#: that is not registered yet here (e.g. EXTRA_METHODS["cheng2015"] = lambda: my_callable).
EXTRA_METHODS: dict[str, Callable[[], Method]] = {}


def parse_model(spec: str) -> tuple[str, dict[str, object]]:
    """``name`` or ``name:key=value,key=value`` → (name, options); numbers are converted."""
    name, _, rest = spec.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = float(value) if any(c in value for c in ".e") else int(value)
        except ValueError:
            options[key] = value
    return name, options


def registry_method(spec: str) -> Method:
    """A registered colorizer (reset before every photo, no reference) as a Method."""
    if spec in EXTRA_METHODS:
        return EXTRA_METHODS[spec]()
    from vidcolor.colorizers import MODELS, get_colorizer

    name, options = parse_model(spec)
    if name in MODELS:
        colorizer = get_colorizer(name, **options)
    elif name == "eccv16":  # not wired into the registry yet: build it directly
        from vidcolor.colorizers.eccv16 import Eccv16Colorizer

        colorizer = Eccv16Colorizer(**options)  # type: ignore[arg-type]
    else:
        raise KeyError(f"unknown model {name!r}: register it in vidcolor.colorizers.MODELS or add it to EXTRA_METHODS")

    def run(lightness: np.ndarray, truth_ab: np.ndarray) -> np.ndarray:
        colorizer.reset()
        return colorizer.step(lightness, None).ab

    return run


def load_photos(folder: Path, limit: int, short_side: int) -> list[tuple[str, np.ndarray]]:
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".png"))
    if limit:
        paths = paths[:limit]
    photos = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if short_side and min(rgb.shape[:2]) > short_side:
            scale = short_side / min(rgb.shape[:2])
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        photos.append((path.name, rgb.astype(np.float32) / 255.0))
    return photos


def evaluate(method: Method, photos: list[tuple[str, np.ndarray]]) -> dict[str, float]:
    """Mean PSNR, AuC and colourfulness of one method over the photos, plus seconds per photo."""
    psnrs, aucs, colourful, seconds = [], [], [], 0.0
    for _, rgb in photos:
        gray = rgb_to_gray(rgb)
        truth_ab = rgb_to_lab(rgb)[..., 1:]
        t0 = time.perf_counter()
        ab = method(gray_to_lightness(gray), truth_ab)
        seconds += time.perf_counter() - t0
        out = lab_with_luma(gray, np.ascontiguousarray(ab, dtype=np.float32))
        psnrs.append(psnr(out, rgb))
        aucs.append(auc_cmf(rgb_to_lab(out)[..., 1:], truth_ab))
        colourful.append(colorfulness(out))
    return {"psnr": float(np.mean(psnrs)), "auc": float(np.mean(aucs)), "colourfulness": float(np.mean(colourful)),
            "sec_per_photo": seconds / max(1, len(photos))}


def default_models() -> list[str]:
    from vidcolor.colorizers import MODELS

    return ["eccv16"] + [m for m in ("cheng2015",) if m in MODELS or m in EXTRA_METHODS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="folder of held-out colour photos")
    parser.add_argument("--models", default=None, help="comma-separated models (name or name:key=value,...); ';' separates "
                        "models when options hold commas. Default: eccv16 and cheng2015 if registered")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    parser.add_argument("--short-side", type=int, default=0, help="shrink photos to this short side first (0 = native)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    photos = load_photos(args.photos, args.limit, args.short_side)
    if not photos:
        print(f"no photos under {args.photos}: the shared data set is missing", file=sys.stderr)
        return 1
    if args.models is None:
        specs = default_models()
    else:
        specs = [s for s in (args.models.split(";") if ";" in args.models else args.models.split(",")) if s]
    rows: dict[str, dict[str, float]] = {}
    truth = float(np.mean([colorfulness(rgb) for _, rgb in photos]))
    for label, method in (("gray", _gray), ("mean colour (oracle)", _mean_colour_oracle), ("sepia", _sepia)):
        rows[label] = evaluate(method, photos)
    for spec in specs:
        try:
            method = registry_method(spec)
        except Exception as exc:  # a model whose weights are missing is skipped, not fatal
            print(f"# skipping {spec!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        rows[spec] = evaluate(method, photos)
    print(f"# {len(photos)} photos from {args.photos}; originals' colourfulness {truth:.1f}")
    print(f"{'method':<34} {'PSNR':>7} {'AuC×100':>8} {'colourf.':>8} {'s/photo':>8}")
    for label, row in rows.items():
        print(f"{label:<34} {row['psnr']:7.2f} {100 * row['auc']:8.2f} {row['colourfulness']:8.2f} {row['sec_per_photo']:8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"photos": len(photos), "truth_colourfulness": truth, "rows": rows}, indent=2) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
