"""Train the ``cheng2015`` model (Deep Colorization, seed 002) on colour photos, on the CPU.

Steps, as in the paper's Algorithm 1 with the changes listed in :mod:`vidcolor.models.cheng2015`:

1. every training photo is shrunk to the working short side (256), made gray the way a
   black-and-white transfer would (BT.601 luma → lightness) and its true Lab ab is the target;
2. ``--samples`` random pixels per photo give (descriptor, ab) pairs; each photo also gives its
   global descriptor;
3. k-means on the standardised global descriptors forms ``--clusters`` clusters;
4. one regressor learns from all photos (least squares, AdamW weight decay), keeping the epoch
   with the lowest error on held-out pixels; each cluster's regressor starts from it and is
   fine-tuned on its cluster's pixels only, again keeping the best held-out epoch (possibly none);
5. held-out photos (a fixed subset of BSDS500 ``val``) score the all-image regressor against the
   routed cluster regressors (PSNR and raw-accuracy AuC).

BSDS500 ``test`` is never read: it is the benchmark.

    python -m vidcolor.training.cheng2015 --data ../shared/data --out vidcolor/models/weights/cheng2015.pt
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from ..color import rgb_codes, rgb_to_gray, rgb_to_gray_lightness, rgb_to_lab
from ..errors import InputError
from ..models.cheng2015 import (AB_SCALE, DESCRIPTOR_SIZE, Cheng2015, Cheng2015Config, RefineSettings, global_descriptor,
                               nearest_cluster, pixel_descriptors, predict, weights_payload)

PHOTO_EXTENSIONS = {".jpg", ".jpeg", ".png"}
#: Folders under photos/ never used for training (the benchmark).
EXCLUDED = ("bsds500/test",)
#: Held-out validation photos: every 4th of BSDS500 val (sorted by name).
VALIDATION_FOLDER, VALIDATION_EVERY = "bsds500/val", 4
SHORT_SIDE = 256
#: Thresholds (ab units) of the raw-accuracy curve (Zhang et al. 2016, after Cheng et al.'s PSNR).
AUC_THRESHOLDS = np.arange(0, 151, dtype=np.float64)


# -- data -------------------------------------------------------------------------------------
def split_photos(photo_root: Path) -> tuple[list[Path], list[Path]]:
    """(training, validation) photo paths under ``photo_root``; BSDS500 test is in neither."""
    if not photo_root.is_dir():
        raise InputError(f"training photos not found at {str(photo_root)!r}: pass --data pointing at shared/data")
    paths = sorted(p for p in photo_root.rglob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    kept = [p for p in paths if not any(p.relative_to(photo_root).as_posix().startswith(e + "/") for e in EXCLUDED)]
    val_pool = [p for p in kept if p.relative_to(photo_root).as_posix().startswith(VALIDATION_FOLDER + "/")]
    validation = val_pool[::VALIDATION_EVERY]
    held = set(validation)
    return [p for p in kept if p not in held], validation


def read_photo(path: Path, short_side: int = SHORT_SIDE) -> np.ndarray | None:
    """float32 RGB in [0, 1] with the given short side (area filter), or None when unreadable/gray."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    if float(np.percentile(spread, 90)) <= 12:  # a gray photo teaches nothing about colour
        return None
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    return rgb.astype(np.float32) / 255.0


def photo_samples(rgb: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(descriptors (n, D), ab (n, 2), global descriptor) of ``count`` random pixels of a photo."""
    lightness = rgb_to_gray_lightness(rgb)
    ab = rgb_to_lab(rgb)[..., 1:]
    descriptors = pixel_descriptors(lightness)
    flat = descriptors.reshape(-1, DESCRIPTOR_SIZE)
    pick = rng.choice(flat.shape[0], size=min(count, flat.shape[0]), replace=False)
    return flat[pick], ab.reshape(-1, 2)[pick], global_descriptor(lightness)


# -- metrics ----------------------------------------------------------------------------------
def raw_accuracy_auc(ab: np.ndarray, truth_ab: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS) -> float:
    """Area under the curve of the share of pixels whose ab error is ≤ t, t = 0..150, normalised to [0, 1].

    The "raw accuracy" of Zhang et al. (2016): Euclidean error in Lab ab per pixel; the curve is
    integrated by the trapezoid rule and divided by the threshold range.
    """
    if ab.shape != truth_ab.shape or ab.shape[-1] != 2:
        raise InputError(f"raw accuracy needs two (..., 2) ab arrays of one shape, got {ab.shape} and {truth_ab.shape}")
    error = np.sort(np.linalg.norm((ab - truth_ab).reshape(-1, 2).astype(np.float64), axis=-1))
    share = np.searchsorted(error, thresholds, side="right") / error.size
    return float(np.trapezoid(share, thresholds) / (thresholds[-1] - thresholds[0]))


def output_rgb(rgb_truth: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """uint8 RGB a video output would show: the truth's BT.601 luma with the predicted chroma."""
    return rgb_codes(rgb_to_gray(rgb_truth), ab, 8, "bt601")


def score(rgb_truth: np.ndarray, ab: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and raw-accuracy AuC of an ab prediction, measured on the output image."""
    from ..report.metrics import psnr

    out = output_rgb(rgb_truth, ab)
    out_ab = rgb_to_lab(out.astype(np.float32) / 255.0)[..., 1:]
    truth_u8 = np.rint(rgb_truth * 255.0).astype(np.uint8)
    return {"psnr": psnr(out, truth_u8), "auc": raw_accuracy_auc(out_ab, rgb_to_lab(truth_u8.astype(np.float32) / 255.0)[..., 1:])}


# -- training ---------------------------------------------------------------------------------
def fit_regressor(regressor: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, batch: int,
                  weight_decay: float, seed: int, log: Callable[[str], None], label: str,
                  held_out: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """Least squares on normalised descriptors → ab / AB_SCALE (AdamW, cosine decay).

    With ``held_out`` pixels the regressor keeps the epoch (counting the starting weights as epoch
    0) with the lowest held-out error: per-pixel samples of ~400 photos are strongly correlated,
    and longer training memorises photos (held-out error rose while training error fell).
    Returns the kept held-out MSE (or the last training MSE without ``held_out``).
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(regressor.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((x.shape[0] + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)

    def held_out_mse() -> float:
        assert held_out is not None
        regressor.eval()
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(regressor(held_out[0]), held_out[1]))

    best_state = {k: v.clone() for k, v in regressor.state_dict().items()}
    best = held_out_mse() if held_out is not None else float("inf")
    best_epoch = 0
    loss_value = float("nan")
    for epoch in range(epochs):
        regressor.train()
        order = torch.randperm(x.shape[0], generator=generator)
        total, count = 0.0, 0
        for start in range(0, x.shape[0], batch):
            index = order[start:start + batch]
            loss = torch.nn.functional.mse_loss(regressor(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * index.numel()
            count += index.numel()
        loss_value = total / count
        message = f"  {label} epoch {epoch + 1}/{epochs}: train mse {loss_value:.5f} (rms ab {np.sqrt(loss_value) * AB_SCALE:.1f})"
        if held_out is not None:
            current = held_out_mse()
            message += f", held-out mse {current:.5f}"
            if current < best:
                best, best_epoch = current, epoch + 1
                best_state = {k: v.clone() for k, v in regressor.state_dict().items()}
        log(message)
    if held_out is not None:
        regressor.load_state_dict(best_state)
        log(f"  {label}: kept epoch {best_epoch} (held-out mse {best:.5f})")
        loss_value = best
    regressor.eval()
    return loss_value


def kmeans_clusters(globals_std: np.ndarray, k: int, seed: int, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres, labels) of k-means on standardised global descriptors; retries seeds until every
    cluster has at least ``min_size`` images (a tiny cluster would train a regressor on noise)."""
    best: tuple[np.ndarray, np.ndarray] | None = None
    for attempt in range(20):
        centres, labels = kmeans2(globals_std.astype(np.float64), k, seed=seed + attempt, minit="++", iter=50)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() >= min_size:
            return centres.astype(np.float32), labels
        if best is None or sizes.min() > np.bincount(best[1], minlength=k).min():
            best = (centres.astype(np.float32), labels)
    assert best is not None
    return best


def choose_gain(model: Cheng2015, xv: torch.Tensor, yv: torch.Tensor, val_owner: torch.Tensor,
                log: Callable[[str], None], gains: Sequence[float] = (0.6, 0.7, 0.8, 0.9, 1.0),
                fixed: float | None = 1.0) -> dict[str, float]:
    """Held-out per-pixel raw-accuracy AuC of the routed regressors for each chroma gain in ``gains``;
    sets ``model.chroma_gain`` to ``fixed``, or to the AuC-best gain when ``fixed`` is None.

    AuC (and PSNR) reward shrinking uncertain chroma towards gray: the best gain is below 1, but
    its output is duller than a sepia tint. The default keeps the paper's plain least squares
    (gain 1) and records the table so the trade-off is visible.
    """
    with torch.no_grad():
        ab = torch.zeros_like(yv)
        for k in range(model.config.clusters):
            mask = val_owner == k
            if int(mask.sum()):
                ab[mask] = model.regressors[1 + k](xv[mask])
    predicted, truth = ab.numpy() * AB_SCALE, yv.numpy() * AB_SCALE
    scores = {f"{g:.1f}": raw_accuracy_auc(g * predicted, truth) for g in gains}
    scores["gray"] = raw_accuracy_auc(np.zeros_like(truth), truth)
    best = max(gains, key=lambda g: scores[f"{g:.1f}"]) if fixed is None else fixed
    with torch.no_grad():
        model.chroma_gain.fill_(best)
    log(f"held-out pixel AuC by chroma gain: {json.dumps({k: round(v, 4) for k, v in scores.items()})}; using {best}")
    return {k: round(v, 4) for k, v in scores.items()}


def evaluate(model: Cheng2015, photos: Sequence[np.ndarray], refine: RefineSettings | None) -> dict[str, float]:
    """Mean PSNR/AuC on photos: routed cluster regressor and the all-image regressor alone."""
    rows: dict[str, list[float]] = {"psnr": [], "auc": [], "psnr_all_images": [], "auc_all_images": []}
    for rgb in photos:
        lightness = rgb_to_gray_lightness(rgb)
        routed = predict(model, lightness, refine=refine)
        single = predict(model, lightness, refine=refine, use_clusters=False)
        for key, value in score(rgb, routed.ab).items():
            rows[key].append(value)
        for key, value in score(rgb, single.ab).items():
            rows[f"{key}_all_images"].append(value)
    return {key: float(np.mean(values)) for key, values in rows.items()}


def train(data_root: Path, out: Path, *, clusters: int = 3, hidden: int = 64, samples: int = 2000,
          epochs: int = 8, cluster_epochs: int = 6, lr: float = 2e-3, batch: int = 1024, weight_decay: float = 1e-2,
          gain: float | None = 1.0, seed: int = 0, max_photos: int = 0, log: Callable[[str], None] = print) -> dict[str, object]:
    """Train and save the model; returns the meta written into the weight file."""
    torch.manual_seed(seed)
    started = time.monotonic()
    photo_root = data_root / "photos"
    train_paths, val_paths = split_photos(photo_root)
    if max_photos:  # smoke runs: a spread-out subset
        train_paths = train_paths[:: max(1, len(train_paths) // max_photos)][:max_photos]
        val_paths = val_paths[: max(2, max_photos // 10)]
    rng = np.random.default_rng(seed)
    xs, ys, gs, used = [], [], [], []
    for path in train_paths:
        rgb = read_photo(path)
        if rgb is None:
            continue
        x, y, g = photo_samples(rgb, samples, rng)
        xs.append(x.astype(np.float32))
        ys.append(y.astype(np.float32))
        gs.append(g)
        used.append(path.relative_to(photo_root).as_posix())
    val_photos = [p for p in (read_photo(path) for path in val_paths) if p is not None]
    val_samples = [photo_samples(rgb, samples, rng) for rgb in val_photos]
    log(f"data: {len(used)} training photos, {len(val_photos)} validation photos, {samples} pixels each "
        f"({time.monotonic() - started:.0f} s)")

    model = Cheng2015(Cheng2015Config(clusters=clusters, hidden=hidden))
    all_x = np.concatenate(xs)
    mean, std = all_x.mean(axis=0), all_x.std(axis=0) + 1e-3
    globals_raw = np.stack(gs)
    g_mean, g_std = globals_raw.mean(axis=0), globals_raw.std(axis=0) + 1e-3
    globals_std = (globals_raw - g_mean) / g_std
    centres, labels = kmeans_clusters(globals_std, clusters, seed, min_size=max(20, len(used) // (4 * clusters)))
    sizes = np.bincount(labels, minlength=clusters).tolist()
    log(f"clusters: sizes {sizes}")
    with torch.no_grad():
        model.descriptor_mean.copy_(torch.from_numpy(mean))
        model.descriptor_std.copy_(torch.from_numpy(std))
        model.global_mean.copy_(torch.from_numpy(g_mean))
        model.global_std.copy_(torch.from_numpy(g_std))
        model.centres.copy_(torch.from_numpy(centres))

    x_all = (torch.from_numpy(all_x) - model.descriptor_mean) / model.descriptor_std
    y_all = torch.from_numpy(np.concatenate(ys)) / AB_SCALE
    owner = torch.from_numpy(np.repeat(labels, [len(x) for x in xs]))
    del all_x
    xv = (torch.from_numpy(np.concatenate([v[0] for v in val_samples])) - model.descriptor_mean) / model.descriptor_std
    yv = torch.from_numpy(np.concatenate([v[1] for v in val_samples]).astype(np.float32)) / AB_SCALE
    val_labels = [nearest_cluster((torch.from_numpy(v[2]) - model.global_mean) / model.global_std, model.centres)
                  for v in val_samples]
    val_owner = torch.from_numpy(np.repeat(val_labels, [len(v[0]) for v in val_samples]))
    log(f"validation photos per cluster: {np.bincount(val_labels, minlength=clusters).tolist()}")
    losses = {"all_images": fit_regressor(model.regressors[0], x_all, y_all, epochs=epochs, lr=lr, batch=batch,
                                          weight_decay=weight_decay, seed=seed, log=log, label="all images",
                                          held_out=(xv, yv))}
    for k in range(clusters):
        model.regressors[1 + k].load_state_dict(model.regressors[0].state_dict())
        mask, val_mask = owner == k, val_owner == k
        held = (xv[val_mask], yv[val_mask]) if int(val_mask.sum()) else None
        losses[f"cluster_{k}"] = fit_regressor(model.regressors[1 + k], x_all[mask], y_all[mask], epochs=cluster_epochs,
                                               lr=lr / 4, batch=batch, weight_decay=weight_decay, seed=seed + 1 + k,
                                               log=log, label=f"cluster {k}", held_out=held)
    gains = choose_gain(model, xv, yv, val_owner, log, fixed=gain)
    train_seconds = time.monotonic() - started
    log(f"trained in {train_seconds:.0f} s; validating on {len(val_photos)} photos")
    validation = {"refined": evaluate(model, val_photos, RefineSettings()), "unrefined": evaluate(model, val_photos, None)}
    log(json.dumps(validation, indent=1))
    meta: dict[str, object] = {
        "data": f"{len(used)} photos under shared/data/photos (excluding {', '.join(EXCLUDED)} and the validation subset)",
        "validation": f"{len(val_photos)} photos: every {VALIDATION_EVERY}th of {VALIDATION_FOLDER}",
        "cluster_sizes": sizes, "samples_per_photo": samples, "epochs": epochs, "cluster_epochs": cluster_epochs,
        "lr": lr, "batch": batch, "weight_decay": weight_decay, "seed": seed,
        "chroma_gain": round(float(model.chroma_gain), 3), "gain_auc": gains, "train_seconds": round(train_seconds, 1),
        "held_out_mse": {k: round(v, 6) for k, v in losses.items()},
        "validation_metrics": {k: {m: round(v, 4) for m, v in d.items()} for k, d in validation.items()},
        "torch": str(torch.__version__),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(weights_payload(model, meta), tmp)
    tmp.replace(out)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {time.monotonic() - started:.0f} s total")
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidcolor.training.cheng2015", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data",
                        help="the shared data folder (with photos/)")
    parser.add_argument("--out", type=Path, required=True, help="weight file to write (.pt)")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--samples", type=int, default=2000, help="random pixels per training photo")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the all-image regressor")
    parser.add_argument("--cluster-epochs", type=int, default=6, help="fine-tuning epochs per cluster regressor")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay")
    parser.add_argument("--gain", default="1.0", help="chroma gain stored in the weights, or 'auto' for the held-out AuC-best")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-photos", type=int, default=0, help="use only this many training photos (smoke runs)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (other jobs share the machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    train(args.data, args.out, clusters=args.clusters, hidden=args.hidden, samples=args.samples, epochs=args.epochs,
          cluster_epochs=args.cluster_epochs, lr=args.lr, batch=args.batch, weight_decay=args.weight_decay,
          gain=None if args.gain == "auto" else float(args.gain), seed=args.seed,
          max_photos=args.max_photos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
