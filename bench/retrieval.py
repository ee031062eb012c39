"""Which feature backbone lets ``vidcolor refs suggest`` find the right reference (issue 24 item 3).

    .venv/bin/python bench/retrieval.py --backbones vcnet,lite0 [--work DIR]

The library is every colour photo under ``../shared/data/photos`` (about 1,700 distractors) plus
the colour frame 0 of each shared JPEG clip. Queries, black and white as a film shows them:

- ``clip-far``: the clip's last frame, must find its frame 0;
- ``clip-mid``: the clip's middle frame, the same;
- ``clip-mirror``: frame 0 flipped left-right and 5 % cut off each side (bench/quality.py's
  ``mirrored``), the same;
- ``photo-mirror``: 40 photos (Kodak, Urban100) mirrored and cropped the same way, must find the photo.

Ranking is the real one (:func:`vidcolor.recommend.rank`: global preselection, then the local
score). The held-out clips ``dog`` and ``horsejump-high`` are reported on their own lines. Library
features are cached in ``--work`` (one file per backbone), so a second run only ranks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import rgb_to_gray_lightness, shrink_short_side, to_unit_rgb
from vidcolor.recommend import FeatureLibrary, best_backbone, rank
from vidcolor.references import read_rgb

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIDCOLOR_SHARED") or REPO.parent / "shared") / "data"
HELD_OUT = ("dog", "horsejump-high")
SETS = ("clip-far", "clip-mid", "clip-mirror", "photo-mirror")


def clip_folders() -> list[Path]:
    """Folders of JPEG frames under clips/ (DAVIS's JPEGImages counted once, per sequence)."""
    found = []
    for folder in sorted(p for p in (DATA / "clips").rglob("*") if p.is_dir()):
        if (folder / "JPEGImages").is_dir():
            found.append(folder / "JPEGImages")
        elif folder.name not in ("Annotations", "JPEGImages") and any(folder.glob("*.jpg")):
            found.append(folder)
    return found


def clip_name(folder: Path) -> str:
    return folder.parent.name if folder.name == "JPEGImages" else folder.name


def mirrored(rgb: np.ndarray) -> np.ndarray:
    """Flipped left-right, then 5 % off each side (as bench/quality.py)."""
    h, w = rgb.shape[:2]
    dy, dx = round(0.05 * h), round(0.05 * w)
    return np.ascontiguousarray(rgb[:, ::-1][dy:h - dy, dx:w - dx])


def gray(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_gray_lightness(shrink_short_side(to_unit_rgb(rgb), 448))


def build_library(root: Path) -> None:
    """Links to the photos and to each clip's frame 0 (nothing is copied)."""
    if root.exists():
        return
    (root / "clips").mkdir(parents=True)
    for folder in clip_folders():
        os.symlink(sorted(folder.glob("*.jpg"))[0], root / "clips" / f"{clip_name(folder)}.jpg")
    for photo in sorted((DATA / "photos").rglob("*")):
        if photo.suffix.lower() in (".jpg", ".jpeg", ".png") and photo.is_file():
            link = root / "photos" / photo.relative_to(DATA / "photos")
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(photo, link)


def queries() -> list[tuple[str, str, np.ndarray, str]]:
    """(set, name, gray lightness, the library path it must find)."""
    out = []
    for folder in clip_folders():
        frames = sorted(folder.glob("*.jpg"))
        name, target = clip_name(folder), f"clips/{clip_name(folder)}.jpg"
        out.append(("clip-far", name, gray(read_rgb(frames[-1])), target))
        out.append(("clip-mid", name, gray(read_rgb(frames[len(frames) // 2])), target))
        out.append(("clip-mirror", name, gray(mirrored(read_rgb(frames[0]))), target))
    photos = sorted((DATA / "photos/kodak24").glob("*.png"))[:24] + sorted((DATA / "photos/urban100").glob("*.jpg"))[:16]
    for photo in photos:
        out.append(("photo-mirror", photo.name, gray(mirrored(read_rgb(photo))), f"photos/{photo.relative_to(DATA / 'photos').as_posix()}"))
    return out


def measure(name: str, root: Path, work: Path, qs: list[tuple[str, str, np.ndarray, str]]) -> list[dict[str, object]]:
    backbone = best_backbone(name=name)
    library = FeatureLibrary(root, backbone, cache_path=work / f"features-{name}.npz")
    began = time.perf_counter()
    stats = library.refresh()
    print(f"{name}: {stats.images} library images ({stats.computed} featurized) in {time.perf_counter() - began:.0f} s", flush=True)
    glob, usable = library.global_matrix()
    rows = []
    for qset, qname, lightness, target in qs:
        features = backbone.features(lightness)
        ranked = [s.path.relative_to(root).as_posix() for s in rank(library, features, top=10)]
        order = np.argsort(-np.where(usable, glob @ features.global_, -np.inf), kind="stable")[:200]
        by_global = [library.entries[i].relpath for i in order]
        rows.append({"set": qset, "query": qname, "target": target, "top1": ranked[0],
                     "rank": ranked.index(target) + 1 if target in ranked else None,
                     "global_rank": by_global.index(target) + 1 if target in by_global else None})
    return rows


def summary(name: str, rows: list[dict[str, object]]) -> None:
    print(f"== {name}: {sum(r['rank'] == 1 for r in rows)} of {len(rows)} queries find their image first")
    for qset in SETS:
        for part, held in (("train", False), ("held-out", True)):
            chosen = [r for r in rows if r["set"] == qset and (r["query"] in HELD_OUT) == held]
            if chosen:
                mrr = np.mean([1 / r["rank"] if r["rank"] else 0.0 for r in chosen])  # type: ignore[operator]
                print(f"  {qset:12s} {part:8s} n={len(chosen):2d}  top-1 {sum(r['rank'] == 1 for r in chosen):2d}  MRR@10 {mrr:.3f}  "
                      f"global top-1 {sum(r['global_rank'] == 1 for r in chosen):2d}")
    for r in rows:
        if r["rank"] != 1:
            print(f"  missed {r['set']} {r['query']}: rank {r['rank']}, global rank {r['global_rank']}, first {r['top1']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="vcnet,lite0", help="comma-separated: lite0, vcnet, vgg19 (needs the DeepEx import)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the library links and feature caches [a temporary one]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        root = work / "library"
        build_library(root)
        qs = queries()
        for name in args.backbones.split(","):
            summary(name, measure(name, root, work, qs))


if __name__ == "__main__":
    main()
