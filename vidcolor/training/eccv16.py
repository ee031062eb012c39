"""Training the small ECCV16 colorizer (``eccv16`` shipped weights) on the CPU from colour photos.

As in the paper (seed 004): the network predicts a distribution over the 313 ab bins at 1/4
resolution; the target is the soft-encoded true colour (5 nearest bins, Gaussian σ = 5) of the
area-downsampled ab; the loss is the multinomial cross-entropy weighted per pixel by the class-
rebalancing weight of the pixel's nearest bin (λ = ½ mix of the smoothed empirical prior with the
uniform distribution). Optionally the last part of the schedule drops rebalancing (λ = 1), the
paper's "fine-tuned without class rebalancing" variant; a snapshot is kept at the switch so both
can be compared on validation photos.

Data: every colour photo under ``<data>/photos`` except ``bsds500/test`` (the benchmark, never
trained on) and the validation photos (the first ``val_count`` of ``bsds500/val``). The input is
the lightness a black-and-white film would show (:func:`vidcolor.color.rgb_to_gray_lightness`),
the target the true Lab ab, as for every vidcolor model.

Not reproduced from the paper: the VGG initialisation (no pretrained weights offline), the deep
supervision readouts on conv6/conv7 (they would add keys the release does not have), ImageNet.

Determinism: the batch of iteration ``i`` is a pure function of ``(seed, i)``; a checkpoint holds
model, optimizer, iteration and prior, so chunked runs (``--max-minutes``) resume exactly.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..color import rgb_to_gray_lightness, rgb_to_lab
from ..colorizers.base import pad_to_multiple
from ..models.eccv16 import (
    DEFAULT_TEMPERATURE,
    REBALANCE_LAMBDA,
    SIZE_MULTIPLE,
    SMALL,
    SOFT_NEIGHBOURS,
    SOFT_SIGMA,
    Eccv16Config,
    Eccv16Net,
    ab_bins,
    annealed_mean,
    count_parameters,
    nearest_bin,
    rebalance_weights,
    smooth_prior,
    soft_encode,
)
from .common import PHOTO_EXTENSIONS, read_rgb, save_atomic

logger = logging.getLogger(__name__)

#: Format tag of inference weight files and checkpoints.
WEIGHTS_FORMAT = "vidcolor-eccv16-1"
CHECKPOINT_FORMAT = "vidcolor-eccv16-train-1"
#: Photo folders that are never trained on (relative to ``<data>/photos``): the benchmark.
BENCHMARK_DIRS = ("bsds500/test",)


@dataclass
class TrainConfig:
    """Everything that defines a run (stored in every checkpoint)."""

    #: Both folders are relative to the current folder (the repository root in the model card's commands).
    data_root: str = "../shared/data"
    out_dir: str = "runs/eccv16"
    seed: int = 16
    iterations: int = 5000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 150
    #: Final learning rate as a fraction of ``lr`` (cosine decay after warm-up).
    lr_floor: float = 0.03
    threads: int = 1
    max_minutes: float = 0.0
    checkpoint_minutes: float = 3.0
    val_every: int = 500
    #: Validation photos: the first ``val_count`` of bsds500/val (held out of training).
    val_count: int = 40
    val_short_side: int = 256
    lam: float = REBALANCE_LAMBDA
    #: λ after ``switch_at`` x iterations (1.0 = no rebalancing); switch_at >= 1 never switches.
    lam_final: float = 1.0
    switch_at: float = 1.0
    neighbours: int = SOFT_NEIGHBOURS
    sigma: float = SOFT_SIGMA
    #: Photos are held in memory at this short side; crops come from rescales between crop and it.
    photo_short_side: int = 256
    max_photos: int = 0
    widths: list[int] = field(default_factory=lambda: list(SMALL.widths))
    #: Start a new run from inference weights (e.g. a snapshot) at ``start_iteration`` of the
    #: schedule, with a fresh optimizer: branches a run at a given point.
    init_from: str = ""
    start_iteration: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]

    def model_config(self) -> Eccv16Config:
        return Eccv16Config.from_dict({"widths": self.widths})


# ------------------------------------------------------------------------------------------------
# data


@dataclass
class PhotoData:
    """Training and validation photos as uint8 RGB, with their sources."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    train_names: list[str]
    val_names: list[str]


def _resize_short(image: np.ndarray, short: int) -> np.ndarray:
    """Scale to ``short`` on the short side, up (bicubic) as well as down, unlike :func:`vidcolor.color.shrink_short_side`."""
    h, w = image.shape[:2]
    scale = short / min(h, w)
    if abs(scale - 1.0) < 1e-6:
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)


def is_colour_photo(rgb: np.ndarray) -> bool:
    """False for gray or nearly gray photos (the paper filters grayscale images out)."""
    spread = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1)
    return float(np.percentile(spread, 90)) > 12


def photo_paths(data_root: str | os.PathLike[str]) -> list[Path]:
    """Every photo under ``<data>/photos`` except the benchmark folders, sorted."""
    root = Path(data_root) / "photos"
    if not root.is_dir():
        raise FileNotFoundError(f"training photos not found at {str(root)!r}: pass --data pointing at shared/data")
    excluded = [root / d for d in BENCHMARK_DIRS]
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in PHOTO_EXTENSIONS and not any(p.is_relative_to(e) for e in excluded)
    )


def load_photos(config: TrainConfig, log: Callable[[str], None] = print) -> PhotoData:
    """Read the training and validation photos into memory (about 100 MB)."""
    root = Path(config.data_root) / "photos"
    paths = photo_paths(config.data_root)
    val_dir = root / "bsds500" / "val"
    val_paths = sorted(p for p in paths if p.is_relative_to(val_dir))[: config.val_count]
    val_set = set(val_paths)
    train_paths = [p for p in paths if p not in val_set]
    if config.max_photos:
        train_paths = train_paths[: config.max_photos]
    data = PhotoData([], [], [], [])
    for path in train_paths:
        rgb = read_rgb(path)
        if rgb is None or min(rgb.shape[:2]) < config.crop or not is_colour_photo(rgb):
            continue
        data.train.append(_resize_short(rgb, config.photo_short_side))
        data.train_names.append(str(path.relative_to(root)))
    for path in val_paths:
        rgb = read_rgb(path)
        if rgb is not None and is_colour_photo(rgb):
            data.val.append(_resize_short(rgb, config.val_short_side))
            data.val_names.append(str(path.relative_to(root)))
    if not data.train:
        raise FileNotFoundError(f"no usable colour photos under {str(root)!r}")
    log(f"data: {len(data.train)} training photos, {len(data.val)} validation photos (bsds500/val), benchmark {BENCHMARK_DIRS} excluded")
    return data


def empirical_counts(photos: Sequence[np.ndarray], short_side: int = 64) -> np.ndarray:
    """Nearest-bin pixel counts over the photos (shrunk to ``short_side``): the empirical p."""
    centres = torch.from_numpy(ab_bins())
    counts = np.zeros(centres.shape[0], dtype=np.float64)
    for rgb in photos:
        small = _resize_short(rgb, short_side)
        ab = rgb_to_lab(small.astype(np.float32) / 255.0)[..., 1:]
        index = nearest_bin(torch.from_numpy(np.ascontiguousarray(ab)), centres).numpy().ravel()
        counts += np.bincount(index, minlength=centres.shape[0])
    return counts


@dataclass
class Batch:
    lightness: torch.Tensor  # (B, 1, S, S) in [0, 100]
    ab: torch.Tensor  # (B, S/4, S/4, 2) true ab, area-downsampled to the output grid


def make_batch(photos: Sequence[np.ndarray], config: TrainConfig, iteration: int) -> Batch:
    """The batch of ``iteration``: random rescale (short side between crop and full), crop, mirror."""
    rng = np.random.default_rng((config.seed, iteration))
    size, out = config.crop, config.crop // 4
    lights, abs_ = [], []
    for _ in range(config.batch_size):
        photo = photos[int(rng.integers(len(photos)))]
        short = min(photo.shape[:2])
        target_short = int(rng.uniform(size, max(size, short) + 1))
        image = _resize_short(photo, target_short) if target_short != short else photo
        h, w = image.shape[:2]
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crop = image[y : y + size, x : x + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        rgb = np.ascontiguousarray(crop, dtype=np.float32) / 255.0
        lights.append(rgb_to_gray_lightness(rgb))
        ab = rgb_to_lab(rgb)[..., 1:]
        abs_.append(cv2.resize(ab, (out, out), interpolation=cv2.INTER_AREA))
    return Batch(torch.from_numpy(np.stack(lights))[:, None], torch.from_numpy(np.stack(abs_)))


# ------------------------------------------------------------------------------------------------
# loss, metrics


def rebalanced_loss(logits: torch.Tensor, ab: torch.Tensor, centres: torch.Tensor, weights: torch.Tensor | None,
                    neighbours: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA) -> torch.Tensor:
    """Eq. 3: −mean over pixels of v(Z)·Σ_q Z_q log Ẑ_q, with v = weight of the nearest bin (None: 1)."""
    target = soft_encode(ab, centres, neighbours, sigma)  # (B, h, w, Q)
    logp = torch.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1)
    ce = -(target * logp).sum(dim=-1)
    if weights is not None:
        ce = ce * weights[target.argmax(dim=-1)]
    return ce.mean()


def auc_cmf(predicted_ab: np.ndarray, true_ab: np.ndarray, max_threshold: float = 150.0, steps: int = 151) -> float:
    """The paper's raw accuracy: area under the share-of-pixels-within-t curve, t = 0..150, in [0, 1].

    The curve is sampled at ``steps`` evenly spaced thresholds (1 ab unit apart by default) and
    integrated with the trapezoid rule, normalised by the threshold range.
    """
    err = np.sqrt(((np.asarray(predicted_ab, np.float64) - np.asarray(true_ab, np.float64)) ** 2).sum(-1)).ravel()
    err.sort()
    thresholds = np.linspace(0.0, max_threshold, steps)
    share = np.searchsorted(err, thresholds, side="right") / err.size
    return float(np.trapezoid(share, thresholds) / max_threshold)


@torch.inference_mode()
def predict_ab(net: Eccv16Net, lightness: np.ndarray, temperature: float = DEFAULT_TEMPERATURE) -> np.ndarray:
    """Annealed-mean ab (H, W, 2) of a whole image at its own size (padded to a multiple of 8)."""
    h, w = lightness.shape
    x = torch.from_numpy(pad_to_multiple(lightness, SIZE_MULTIPLE).astype(np.float32))[None, None]
    logits = net(x)
    ab = annealed_mean(logits, net.bin_centres(), temperature)
    ab = F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)[0, :, :h, :w]
    return ab.permute(1, 2, 0).numpy()


def validate(net: Eccv16Net, photos: Sequence[np.ndarray], temperature: float = DEFAULT_TEMPERATURE) -> dict[str, float]:
    """AuC (raw accuracy), gray's AuC, mean chroma and colourfulness on the validation photos.

    ``true_chroma / chroma`` is the calibrated chroma gain: the factor that gives the output the
    photos' own mean chroma, undoing the shrinkage toward gray of averaging an uncertain
    distribution (stored as ``meta["chroma_gain"]`` with ``--export --chroma-gain``).
    """
    from ..report.metrics import colorfulness
    from ..color import lab_with_luma, rgb_to_gray

    net.eval()
    aucs, gray_aucs, chroma, true_chroma, colourful = [], [], [], [], []
    for rgb8 in photos:
        rgb = rgb8.astype(np.float32) / 255.0
        ab_true = rgb_to_lab(rgb)[..., 1:]
        ab = predict_ab(net, rgb_to_gray_lightness(rgb), temperature)
        aucs.append(auc_cmf(ab, ab_true))
        gray_aucs.append(auc_cmf(np.zeros_like(ab_true), ab_true))
        chroma.append(float(np.hypot(ab[..., 0], ab[..., 1]).mean()))
        true_chroma.append(float(np.hypot(ab_true[..., 0], ab_true[..., 1]).mean()))
        colourful.append(colorfulness(lab_with_luma(rgb_to_gray(rgb), ab)))
    net.train()
    return {"auc": float(np.mean(aucs)), "gray_auc": float(np.mean(gray_aucs)), "chroma": float(np.mean(chroma)),
            "true_chroma": float(np.mean(true_chroma)), "colourfulness": float(np.mean(colourful))}


# ------------------------------------------------------------------------------------------------
# checkpoints


def inference_payload(net: Eccv16Net, meta: dict[str, object]) -> dict[str, object]:
    """What :func:`vidcolor.colorizers.eccv16.load_small` reads: format tag, widths, tensors, meta."""
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return {"format": WEIGHTS_FORMAT, "config": net.config.to_dict(), "state_dict": state, "meta": meta}


def export_weights(checkpoint: Path, out: Path, meta: dict[str, object] | None = None) -> Path:
    """Write inference weights (no optimizer) from a training checkpoint."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(json.loads(state["config"]))
    net = Eccv16Net(config.model_config())
    net.load_state_dict(state["model"])
    info = {"iteration": int(state["iteration"]), "train_seconds": float(state["elapsed"]), "config": asdict(config)}
    info.update(meta or {})
    save_atomic(inference_payload(net, json.loads(json.dumps(info))), out)
    return out


def blend_weights(first: Path, second: Path, alpha: float, out: Path, meta: dict[str, object] | None = None) -> Path:
    """Write ``alpha·first + (1-alpha)·second`` (two inference files of the same widths).

    Interpolating two siblings fine-tuned from one snapshot, one with and one without class
    rebalancing, trades colourfulness against accuracy continuously (the weight-space analogue of
    choosing λ); batch counters come from ``first``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend alpha must be in [0, 1], got {alpha}")
    a = torch.load(first, map_location="cpu", weights_only=True)
    b = torch.load(second, map_location="cpu", weights_only=True)
    if a.get("format") != WEIGHTS_FORMAT or b.get("format") != WEIGHTS_FORMAT or a["config"] != b["config"]:
        raise ValueError(f"{first} and {second} must both be ECCV16 inference weights of the same widths")
    state = {
        k: (alpha * v.float() + (1 - alpha) * b["state_dict"][k].float()) if v.is_floating_point() else v.clone()
        for k, v in a["state_dict"].items()
    }
    info: dict[str, object] = {"blend": {"first": str(first), "second": str(second), "alpha": alpha},
                               "first_meta": a.get("meta", {}), "second_meta": b.get("meta", {})}
    info.update(meta or {})
    save_atomic({"format": WEIGHTS_FORMAT, "config": a["config"], "state_dict": state, "meta": info}, out)
    return out


def learning_rate(config: TrainConfig, iteration: int) -> float:
    if iteration < config.warmup:
        return config.lr * (iteration + 1) / config.warmup
    progress = (iteration - config.warmup) / max(1, config.iterations - config.warmup)
    return config.lr * (config.lr_floor + (1 - config.lr_floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(config: TrainConfig, log: Callable[[str], None] = print) -> dict[str, object]:
    """Run (or resume) training until ``iterations`` or ``max_minutes``; returns the last validation."""
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    data = load_photos(config, log)
    net = Eccv16Net(config.model_config())
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    start, elapsed, history = 0, 0.0, []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = TrainConfig.from_dict(json.loads(state["config"]))
        if saved.model_config() != config.model_config() or saved.seed != config.seed:
            raise ValueError(f"{ckpt_path} was written by a different run (widths or seed differ): use another --out")
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, elapsed = int(state["iteration"]), float(state["elapsed"])
        prior = state["prior"].numpy().astype(np.float64)
        history = json.loads(state["history"])
        log(f"resumed at iteration {start} ({elapsed / 60:.1f} min trained)")
        if saved.iterations != config.iterations:
            # the schedule was re-planned (e.g. the machine turned out slower than expected): the
            # learning rate follows the new total from here on; recorded in the history
            log(f"schedule re-planned at iteration {start}: {saved.iterations} → {config.iterations} iterations")
            history.append({"iteration": start, "replanned_from": saved.iterations, "replanned_to": config.iterations})
    else:
        if config.init_from:
            payload = torch.load(config.init_from, map_location="cpu", weights_only=True)
            net.load_state_dict(payload["state_dict"])
            start = config.start_iteration
            log(f"branched from {config.init_from} at iteration {start} (fresh optimizer)")
        prior = smooth_prior(empirical_counts(data.train))
        log(f"prior from {len(data.train)} photos: top bin share {prior.max():.3f}, bins with >0.1% mass {(prior > 1e-3).sum()}")
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    centres = torch.from_numpy(ab_bins())
    weights_lam = torch.from_numpy(rebalance_weights(prior, config.lam))
    weights_final = None if config.lam_final >= 1.0 else torch.from_numpy(rebalance_weights(prior, config.lam_final))
    switch_iter = int(config.switch_at * config.iterations)
    log(f"network: {count_parameters(net):,} parameters, widths {config.widths}; rebalance λ={config.lam} "
        f"until iteration {switch_iter}, then λ={config.lam_final}")

    def save(iteration: int) -> None:
        save_atomic({
            "format": CHECKPOINT_FORMAT, "config": json.dumps(asdict(config)), "model": net.state_dict(),
            "optimizer": optimizer.state_dict(), "iteration": iteration, "elapsed": elapsed,
            "prior": torch.from_numpy(prior), "history": json.dumps(history),
        }, ckpt_path)

    net.train()
    chunk_start = time.monotonic()
    last_ckpt = chunk_start
    running = 0.0
    iteration = start
    while iteration < config.iterations:
        if iteration == switch_iter and switch_iter < config.iterations:
            snapshot = out / f"weights-iter{iteration}.pt"
            if not snapshot.exists():
                save_atomic(inference_payload(net, {"iteration": iteration, "note": "snapshot at the rebalancing switch"}), snapshot)
        t0 = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, iteration)
        batch = make_batch(data.train, config, iteration)
        logits = net(batch.lightness)
        w = weights_lam if iteration < switch_iter else weights_final
        loss = rebalanced_loss(logits, batch.ab, centres, w, config.neighbours, config.sigma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        iteration += 1
        elapsed += time.monotonic() - t0
        running = 0.98 * running + 0.02 * float(loss.detach()) if iteration > start + 1 else float(loss.detach())
        if iteration % 50 == 0:
            log(f"it {iteration} loss {running:.4f} lr {learning_rate(config, iteration):.2e} {elapsed / 60:.1f} min")
        if (iteration % config.val_every == 0 or iteration == config.iterations) and data.val:
            t1 = time.monotonic()
            result = validate(net, data.val)
            result["iteration"] = iteration
            history.append(result)
            log(f"val it {iteration}: AuC {result['auc']:.4f} (gray {result['gray_auc']:.4f}) chroma {result['chroma']:.1f} "
                f"(photos {result['true_chroma']:.1f}: calibrated gain {result['true_chroma'] / max(result['chroma'], 1e-6):.2f}) "
                f"colourfulness {result['colourfulness']:.1f} ({time.monotonic() - t1:.0f} s)")
        now = time.monotonic()
        if now - last_ckpt > config.checkpoint_minutes * 60:
            save(iteration)
            last_ckpt = now
        if config.max_minutes and now - chunk_start > config.max_minutes * 60:
            break
    save(iteration)
    save_atomic(inference_payload(net, {"iteration": iteration, "train_seconds": elapsed, "config": asdict(config),
                                         "history": history}), out / "weights.pt")
    log(f"stopped at iteration {iteration}/{config.iterations} after {elapsed / 60:.1f} min of training")
    return {"iteration": iteration, "elapsed": elapsed, "history": history}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the small ECCV16 colorizer on CPU (resumable).")
    parser.add_argument("--data", default=TrainConfig.data_root, help="shared data folder holding photos/")
    parser.add_argument("--out", default=TrainConfig.out_dir, help="run folder (checkpoint.pt, weights.pt)")
    parser.add_argument("--iterations", type=int, default=TrainConfig.iterations)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--crop", type=int, default=TrainConfig.crop)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop this chunk after so many minutes (resume later)")
    parser.add_argument("--lam", type=float, default=TrainConfig.lam, help="rebalancing λ (1 = none)")
    parser.add_argument("--lam-final", type=float, default=TrainConfig.lam_final)
    parser.add_argument("--switch-at", type=float, default=TrainConfig.switch_at, help="fraction of iterations after which λ = lam-final")
    parser.add_argument("--val-every", type=int, default=TrainConfig.val_every)
    parser.add_argument("--max-photos", type=int, default=0)
    parser.add_argument("--widths", default=",".join(map(str, SMALL.widths)), help="8 comma-separated channel widths")
    parser.add_argument("--init-from", default="", help="start from these inference weights (new run only)")
    parser.add_argument("--start-iteration", type=int, default=0, help="schedule position of --init-from")
    parser.add_argument("--blend", metavar="A,B,ALPHA", help="with --export: write ALPHA·A + (1-ALPHA)·B (inference files)")
    parser.add_argument("--vibrancy", type=float, help="with --blend or --export: the default temperature stored in the file's meta")
    parser.add_argument("--chroma-gain", type=float,
                        help="with --blend or --export: the chroma multiplier stored in the file's meta (chosen on validation photos)")
    parser.add_argument("--export", metavar="PATH", help="only write inference weights from OUT/checkpoint.pt to PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = {key: value for key, value in (("vibrancy", args.vibrancy), ("chroma_gain", args.chroma_gain)) if value is not None}
    if args.export and args.blend:
        first, second, alpha = args.blend.split(",")
        blend_weights(Path(first), Path(second), float(alpha), Path(args.export), extra)
        print(f"wrote {args.export}")
        return 0
    if args.export:
        export_weights(Path(args.out) / "checkpoint.pt", Path(args.export), extra)
        print(f"wrote {args.export}")
        return 0
    config = TrainConfig(
        data_root=args.data, out_dir=args.out, iterations=args.iterations, batch_size=args.batch_size, crop=args.crop,
        lr=args.lr, seed=args.seed, threads=args.threads, max_minutes=args.max_minutes, lam=args.lam,
        lam_final=args.lam_final, switch_at=args.switch_at, val_every=args.val_every, max_photos=args.max_photos,
        widths=[int(w) for w in args.widths.split(",")], init_from=args.init_from, start_iteration=args.start_iteration,
    )
    train(config, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
