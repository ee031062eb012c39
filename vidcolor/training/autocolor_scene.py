"""Can the frozen trunk tell a near-neutral scene from a colourful one? A scene-level chroma prior, fitted and judged.

The ``autocolor`` decoder paints one confident cast over near-neutral scenes (a hazy skyline, a
white bird), so a per-shot chroma level predicted from the scene would let the colorizer mute
those and keep colourful ones. This fits that prior and reports whether it separates them, before
anything is wired into colouring:

* per cached training item (unmirrored, ``vidcolor.training.autocolor``'s feature cache): the
  stride-32 features' spatial mean (the decoder's global context, 320 values), the shipped
  decoder's mean distribution over the 313 bins (log, after its prior correction) and its mean
  chroma; the target is the log of the truth's mean chroma (stride 4);
* ridge regression on standardised features, scored by leave-one-group-out (each training clip a
  group, the photos in five folds), then fitted on everything but the video validation clips and
  asked about those: the gain it would apply (predicted chroma over the decoder's) per clip.

    python -m vidcolor.training.autocolor_scene --data ../shared/data --cache runs/autocolor-cache
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from ..models.eccv16 import annealed_mean
from .autocolor import TrainConfig, load_or_encode, training_sources

#: The video validation clips (autocolor.md, third session): two near-neutral, two colourful.
VAL_CLIPS = ("imageio/cockatoo", "pysot/bag", "tiny_ucf101/abseiling_k400", "tiny_ucf101/basketball")
PHOTO_FOLDS = 5


def group_of(name: str) -> str:
    """A clip's folder (clips/<source>/<clip>) or a photo collection (photos/<collection>)."""
    parts = name.split("/")
    return "/".join(parts[:3]) if parts[0] == "clips" else "/".join(parts[:2])


@torch.no_grad()
def scene_table(data_root: str, cache_dir: str) -> dict[str, np.ndarray]:
    """Per unmirrored cached item: names, pooled stride-32 features, the decoder's log mean bin
    distribution, its mean chroma and the truth's (the shipped decoder and decoding)."""
    from ..colorizers.autocolor import load_autocolor

    config = TrainConfig(data_root=data_root, cache_dir=cache_dir)
    cache = load_or_encode(training_sources(config)[0], config, f"train-{config.size}", print)
    net, meta = load_autocolor()
    adjustment = float(meta.get("prior_correction", 0.0)) * torch.tensor(meta["log_rebalance_weights"]).view(1, -1, 1, 1)
    items = np.array([i for i, n in enumerate(cache.names) if not n.endswith("#flip")])
    pooled, bins, predicted, true = [], [], [], []
    for start in range(0, len(items), 32):
        features, light, ab = cache.batch(items[start: start + 32])
        logits = net.decoder(features, light) - adjustment
        pooled.append(features[32].mean(dim=(2, 3)).numpy())
        bins.append(torch.log(torch.softmax(logits, 1).mean(dim=(2, 3)) + 1e-6).numpy())
        predicted.append(annealed_mean(logits, net.centres, 1.0).norm(dim=1).mean(dim=(1, 2)).numpy())
        true.append(ab.norm(dim=-1).mean(dim=(1, 2)).numpy())
    return {"names": np.array([cache.names[i] for i in items]), "pooled": np.concatenate(pooled),
            "bins": np.concatenate(bins), "predicted": np.concatenate(predicted), "true": np.concatenate(true)}


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, weights, bias) of ridge regression on standardised ``x``."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return mean, scale, weights, float(y.mean())


def predict_ridge(model: tuple[np.ndarray, np.ndarray, np.ndarray, float], x: np.ndarray) -> np.ndarray:
    """:func:`fit_ridge`'s prediction for ``x``, standardised with the fit's own mean and scale (never the test items')."""
    mean, scale, weights, bias = model
    return ((x - mean) / scale) @ weights + bias


def judge(table: dict[str, np.ndarray], features: str, lam: float, val_clips: Sequence[str] = VAL_CLIPS) -> dict[str, object]:
    """Leave-one-group-out correlation on the training items, and per validation clip the predicted
    and true mean chroma and the gain the prior would apply (predicted over the decoder's)."""
    x = {"pooled": table["pooled"], "bins": table["bins"],
         "pooled+bins": np.hstack([table["pooled"], table["bins"]])}[features].astype(np.float64)
    y = np.log(table["true"].astype(np.float64))
    groups = np.array([group_of(n) for n in table["names"]])
    held = np.isin(groups, [f"clips/{c}" for c in val_clips])
    photos = np.flatnonzero(np.char.startswith(groups, "photos/"))
    folds = groups.copy()
    folds[photos] = [f"photos-fold{i % PHOTO_FOLDS}" for i in range(len(photos))]
    out_of_group = np.zeros_like(y)
    for fold in set(folds[~held]):
        test = ~held & (folds == fold)
        out_of_group[test] = predict_ridge(fit_ridge(x[~held & ~test], y[~held & ~test], lam), x[test])
    on_val = predict_ridge(fit_ridge(x[~held], y[~held], lam), x[held])
    clips = {}
    for clip in val_clips:
        members = groups[held] == f"clips/{clip}"
        predicted = np.exp(on_val[members])
        clips[clip] = {"predicted": float(predicted.mean()), "true": float(table["true"][held][members].mean()),
                       "gain": float(np.mean(predicted / table["predicted"][held][members]))}
    return {"features": features, "lambda": lam, "cv_r": float(np.corrcoef(out_of_group[~held], y[~held])[0, 1]),
            "clips": clips}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidcolor.training.autocolor_scene", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=TrainConfig.data_root, help="shared data folder holding photos/ and clips/")
    parser.add_argument("--cache", default=TrainConfig.cache_dir, help="the autocolor training's feature cache")
    parser.add_argument("--lambdas", default="30,300,3000", help="comma-separated ridge strengths")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = scene_table(args.data, args.cache)
    for features in ("pooled", "bins", "pooled+bins"):
        for lam in (float(v) for v in args.lambdas.split(",")):
            result = judge(table, features, lam)
            print(f"{features:<12} λ={lam:<6g} leave-group-out r={result['cv_r']:.3f}  " + "  ".join(
                f"{clip.split('/')[-1]}: {c['predicted']:.1f} (truth {c['true']:.1f}, gain {c['gain']:.2f})"
                for clip, c in result["clips"].items()))  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
