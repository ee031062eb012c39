"""Across shots, does anything the automatic model knows tell when its colour hurts? A screen, no pipeline.

No-reference mode colours each shot from the frame autocolor is surest of (within a shot, a frame's
confidence tracks its error). Whether colour beats gray differs from shot to shot (city and
car-shadow lose 3-6 dB). A shot-level chroma scale could help only if some shot-level statistic
separates the shots where colour hurts from those where it helps, so this measures, for each
shot's chosen keyframe (:func:`vidcolor.run.shots.most_confident_frame` over
:func:`~vidcolor.run.shots.automatic_candidates`, the keyframe decoding, working size 160 lines):

- ``diff``: its ab RMSE minus gray's (> 0: colour hurts), and ``s*``: the chroma scale that would
  have been best (least squares);
- statistics the run has for free: mean confidence (``conf``), mean chroma, hue concentration
  ``R`` (|mean ab| / mean |ab|: 1 = one cast), the decoder's probability mass within 20 of gray
  (``neutral``), the RMS difference to vidcolor's small eccv16 (``eccv16``), and for clips the
  spread of the candidates' confidences (``spread``);

then per statistic the AUC of "colour hurts" and, leave one out, a scale fitted linearly to ``s*``
from it against one constant scale. Items: the ten added training clips (one shot each, the first
``--frames``) and ``--photos`` of the validation photos (the first of ``bsds500/val``, never trained
on; a photo is a one-frame shot)::

    .venv/bin/python bench/autocolor_shots.py --frames 30 --photos 40
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from _clips import CLIPS, REPO, find_clips, load_truth
from automatic import load_photos

sys.path.insert(0, str(REPO))

from vidcolor.color import rgb_to_gray_lightness, rgb_to_lab, shrink_area  # noqa: E402
from vidcolor.colorizers import get_colorizer  # noqa: E402
from vidcolor.colorizers.autocolor import AutocolorColorizer  # noqa: E402
from vidcolor.colorizers.base import lightness_at_network_size, pad_to_multiple, scaled_to_short_side  # noqa: E402
from vidcolor.models.autocolor import INPUT_MULTIPLE  # noqa: E402
from vidcolor.run.shots import automatic_candidates, automatic_keyframe_of, most_confident_frame  # noqa: E402

PHOTOS = CLIPS.parent / "photos" / "bsds500" / "val"
STATISTICS = ("conf", "chroma", "R", "neutral", "eccv16", "spread")
WORKING_SHORT_SIDE = 160
#: autocolor.md's video validation clips (third session).
VALIDATION = ("cockatoo", "bag", "abseiling_k400", "basketball")


def working(rgb: np.ndarray) -> np.ndarray:
    """RGB float at the bench's working size (short side 160, even sides)."""
    h, w = rgb.shape[:2]
    scale = WORKING_SHORT_SIDE / min(h, w)
    return shrink_area(rgb.astype(np.float32) / (255 if rgb.dtype == np.uint8 else 1),
                       (round(w * scale / 2) * 2, round(h * scale / 2) * 2))


@torch.inference_mode()
def neutral_mass(auto: AutocolorColorizer, lightness: np.ndarray) -> float:
    """Mean probability, under the keyframe decoding's adjusted distribution, of bins within 20 of gray."""
    small, _ = lightness_at_network_size(lightness, "autocolor",
                                         lambda h, w: scaled_to_short_side(h, w, auto.net_short_side))
    logits = auto.net(torch.from_numpy(np.ascontiguousarray(pad_to_multiple(small, INPUT_MULTIPLE)))[None, None])
    if auto.adjustment is not None:
        logits = logits - auto.adjustment.view(1, -1, 1, 1)
    centres = auto.net.centres
    return float(logits.softmax(1)[0, torch.hypot(centres[:, 0], centres[:, 1]) < 20].sum(0).mean())


def measure(auto: AutocolorColorizer, eccv16, name: str, frames: list[np.ndarray]) -> dict[str, float | str]:
    """The statistics of the keyframe no-reference mode would choose among ``frames`` (one shot)."""
    lightness = {i: rgb_to_gray_lightness(frames[i]) for i in automatic_candidates(0, len(frames) - 1)}
    confidences = [float(auto.step(lightness[i], None).confidence.mean()) for i in lightness]
    frame, chosen, ab = most_confident_frame(auto, lightness.items(), automatic_keyframe_of(0, len(frames) - 1))
    ab = ab.astype(np.float64)
    truth = rgb_to_lab(frames[frame])[..., 1:].astype(np.float64)
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    eccv16.reset()
    other = eccv16.step(chosen, None).ab
    return {"name": name, "frame": frame,
            "diff": float(np.sqrt(np.mean((ab - truth) ** 2)) - np.sqrt(np.mean(truth ** 2))),
            "s*": float(np.sum(ab * truth) / max(np.sum(ab * ab), 1e-9)),
            "conf": max(confidences), "chroma": float(chroma.mean()),
            "R": float(np.hypot(*ab.reshape(-1, 2).mean(0)) / max(chroma.mean(), 1e-9)),
            "neutral": neutral_mass(auto, chosen), "eccv16": float(np.sqrt(np.mean((ab - other) ** 2))),
            "spread": max(confidences) - min(confidences) if len(confidences) > 1 else float("nan"),
            "gray": float(np.sqrt(np.mean(truth ** 2))), "_pt": float(np.mean(ab * truth)),
            "_pp": float(np.mean(ab * ab))}


def rmse_at(item: dict, scale: float) -> float:
    """The keyframe's ab RMSE with its chroma scaled by ``scale``."""
    return float(np.sqrt(max(item["gray"] ** 2 - 2 * scale * item["_pt"] + scale ** 2 * item["_pp"], 0.0)))


def auc(values: list[float], hurts: list[bool]) -> float:
    """P(a shot where colour hurts has the higher value than one where it helps)."""
    hurt = [v for v, h in zip(values, hurts) if h]
    helped = [v for v, h in zip(values, hurts) if not h]
    return float(np.mean([(a > b) + 0.5 * (a == b) for a in hurt for b in helped])) if hurt and helped else float("nan")


def fitted_scales(fit: list[dict], judged: list[dict], statistic: str | None) -> np.ndarray:
    """The chroma scales of ``judged`` from a linear fit of ``s*`` on ``fit`` (ridge 1 on the statistic
    standardised over ``fit``; None: a constant), clipped to [0, 1.5]."""
    def column(items: list[dict]) -> np.ndarray:
        return np.array([[it[statistic]] if statistic else [] for it in items], np.float64).reshape(len(items), -1)

    x, judged_x = column(fit), column(judged)
    if statistic:
        mean, spread = x.mean(0), max(float(x.std()), 1e-9)
        x, judged_x = (x - mean) / spread, (judged_x - mean) / spread
    design = np.c_[x, np.ones(len(fit))]
    ridge = np.diag([1.0] * x.shape[1] + [0.0])
    weights = np.linalg.solve(design.T @ design + ridge, design.T @ np.array([it["s*"] for it in fit]))
    return np.clip(np.c_[judged_x, np.ones(len(judged))] @ weights, 0.0, 1.5)


def fitted_change(fit: list[dict], judged: list[dict], statistic: str | None) -> float:
    """Mean change of ab RMSE against scale 1 on ``judged`` with :func:`fitted_scales`."""
    scales = fitted_scales(fit, judged, statistic)
    return float(np.mean([rmse_at(it, float(s)) - rmse_at(it, 1.0) for it, s in zip(judged, scales)]))


def leave_one_out(items: list[dict], statistic: str | None) -> float:
    """:func:`fitted_change` of each item with the scale fitted on the others, averaged."""
    return float(np.mean([fitted_change(items[:i] + items[i + 1:], [item], statistic) for i, item in enumerate(items)]))


def report(label: str, items: list[dict]) -> None:
    hurts = [it["diff"] > 0 for it in items]
    usable = [s for s in STATISTICS if not any(np.isnan(it[s]) for it in items)]
    print(f"{label}: {len(items)} shots, colour hurts on {sum(hurts)}")
    print("  AUC(hurts)  " + "  ".join(f"{s} {auc([it[s] for it in items], hurts):.2f}" for s in usable))
    print(f"  leave-one-out RMSE change vs scale 1: constant {leave_one_out(items, None):+.3f}  "
          + "  ".join(f"{s} {leave_one_out(items, s):+.3f}" for s in usable))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="the first N frames of each clip form its shot")
    parser.add_argument("--photos", type=int, default=40, help="validation photos (0: none)")
    parser.add_argument("--json", dest="json_path", help="also write the items here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    auto, eccv16 = AutocolorColorizer(keyframe=True), get_colorizer("eccv16")
    clips = [measure(auto, eccv16, c.name, [working(f) for f in load_truth(c.folder, args.frames)])
             for c in find_clips(added=True) if c.group == "added"]
    photos = [measure(auto, eccv16, "bsds500/val/" + name, [working(rgb)])
              for name, rgb in load_photos(PHOTOS, args.photos, 0)] if args.photos else []
    print(f"{'shot':34} {'diff':>6} {'s*':>5} " + " ".join(f"{s:>7}" for s in STATISTICS))
    for it in clips + photos:
        print(f"{it['name'][:34]:34} {it['diff']:+6.2f} {it['s*']:5.2f} " + " ".join(f"{it[s]:7.3f}" for s in STATISTICS))
    report("clips", clips)
    judged = [it for it in clips if it["name"].split("/")[-1] in VALIDATION]
    fit = [it for it in clips if it not in judged]
    print(f"  fitted on the {len(fit)} other clips, on the {len(judged)} validation clips: RMSE change vs scale 1: "
          + "  ".join(f"{s or 'constant'} {fitted_change(fit, judged, s):+.3f}" for s in (None, *STATISTICS)))
    names = ", ".join(it["name"].split("/")[-1] for it in judged)
    best = " ".join(f"{it['s*']:.2f}" for it in judged)
    print(f"  their scales ({names}; s* {best}): "
          + "  ".join(f"{s or 'constant'} " + " ".join(f"{v:.2f}" for v in fitted_scales(fit, judged, s))
                      for s in (None, *STATISTICS)))
    if photos:
        report("photos", photos)
        report("clips and photos", clips + photos)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(clips + photos, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
