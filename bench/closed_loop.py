"""v2d's semantic blend judged on the colorizer's output (closed loop), in process: variants of the blend weight or
of the semantic chroma it blends, scored without the CLI, the encode or the temporal check.

    .venv/bin/python bench/closed_loop.py                                  # 5 training clips, frames 1-29
    .venv/bin/python bench/closed_loop.py --variants head,v1,w0.25,w0.5,ts2,oracle,gf2e0.003
    .venv/bin/python bench/closed_loop.py --clips blackswan --frames 6 --cases mirrored --json c.json
    .venv/bin/python bench/closed_loop.py --variants head --weights v2d=old.pt,v2e=new.pt   # two weight files, one run

Why: the error of the blend at 1/2 resolution (where the head is trained) does not rank variants as
``bench/quality.py`` does; the output, after the refinement and the recurrence, does, and this runs in
seconds per clip instead of minutes.

Per clip (``bench/_clips.py``; the training clips by default, never tune on the held-out pair) and case
(``mirrored`` or ``left-half`` of frame 0, built by ``bench/quality.py``'s own functions, or ``first``,
frame 0 itself, where the semantic match mostly does not run): the real
:class:`~vidcolor.colorizers.default.DefaultColorizer` with the shipped weights colours frames 1..N-1 one
after another at its default working size (160 lines; the truth resized with INTER_AREA, its BT.601
luma as the input). Printed per variant: the output's chroma MSE (squared ab distance, ab units,
whole frame) per clip and the mean over clips, and for each case the right half's chroma ratio (mean
|ab| of the output over the truth's; the half ``left-half`` does not show).

Variants (``--variants``, comma-separated), each a patch of this process's model that is undone
after it (shipped behaviour is not changed):

- ``head``: the shipped blend.
- ``v1``: blend weight 0, i.e. v1's result alone.
- ``w<x>``: a constant weight ``x`` in [0, 1] (still times ``1 - scene``, as the head's).
- ``ts<x>``: the head with the semantic softmax temperature times ``x``.
- ``oracle``: the truth chooses per pixel at 1/2 between v1's result and the semantic chroma (a
  ceiling for any blend weight, not a method).
- ``csls<k>``: the head, with each reference cell's semantic similarity lowered by its mean over its
  ``k`` most similar frame cells (CSLS, a hub penalty: cells that match everything count less).
- ``gf<r>e<eps>``: the head blending the semantic chroma guided-filtered (He et al.) on the frame's
  1/2 lightness with radius ``r`` (1/2 pixels) and regulariser ``eps``.

Joined by ``+`` they combine: ``oracle+gf2e0.01`` is the filtered candidate's ceiling, ``ts2+w0.5`` a
constant weight on a softer match.

Each variant also prints its 1/2-stage errors (frames 1..N-1): the chroma MSE at 1/2 resolution of
v1's result, the semantic chroma, this variant's blend of them and the per-pixel better of the two,
against the truth's ab at 1/2, weighted by ``1 - scene`` (where the blend may act; for ``left-half``
the content the reference does not show) and pooled over a clip's frames (nan where the match never
ran; the mean is over the other clips). The two rank variants
differently: that is why the output is scored.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from _clips import REPO, TUNING, find_clips, load_truth
from quality import _finite, left_half, mirrored

sys.path.insert(0, str(REPO))

from vidcolor.color import luma_lightness, rgb_to_lab  # noqa: E402
from vidcolor.colorizers.base import pad_to_multiple  # noqa: E402
from vidcolor.colorizers.default import DefaultColorizer  # noqa: E402
from vidcolor.correspondence.semantic import multiscale_cosine  # noqa: E402
from vidcolor.models import vcnet  # noqa: E402
from vidcolor.models.vcnet import AB_SCALE, SIZE_MULTIPLE, VCNet  # noqa: E402
from vidcolor.references import Reference  # noqa: E402
from vidcolor.run.sizes import working_size  # noqa: E402

#: As bench/quality.py's cases of the same names; ``first`` (frame 0 itself) is the mark to aim at.
CASES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"first": lambda rgb: rgb, "mirrored": mirrored, "left-half": left_half}
DEFAULT_VARIANTS = "head,v1,w0.25,w0.5,oracle"
#: The 1/2-stage sources: v1's result, the semantic chroma, the variant's blend of them, the better of the two per pixel.
HALF_SOURCES = ("v1", "semantic", "blend", "oracle")


def box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, edges replicated."""
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)


def guided_filter(p: torch.Tensor, guide: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter: ``p`` made locally linear in ``guide`` (edges follow the lightness)."""
    mean_i, mean_p = box(guide, radius), box(p, radius)
    a = (box(guide * p, radius) - mean_i * mean_p) / (box(guide * guide, radius) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return box(a, radius) * guide + box(b, radius)


class Variant:
    """One named change of the model's semantic blend, installed on a model and undone afterwards.
    ``truth_ab2`` is set by the loop before each step (the oracle reads it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.truth_ab2: torch.Tensor | None = None
        self.valid2 = (0, 0)  # the unpadded frame's size at 1/2
        self.scene: torch.Tensor | None = None  # the step's scene map, as VCNet.step scales the blend
        #: 1/2-stage squared ab errors summed over the frames (and the weights' sum), by source
        self.half = dict.fromkeys(HALF_SOURCES, 0.0) | {"weight": 0.0}
        self.weight: float | None = None
        self.temperature = 1.0
        self.filter: tuple[int, float] | None = None
        self.hub_neighbours = 0
        self.oracle = False
        for part in name.split("+"):
            if part == "oracle":
                self.oracle = True
            elif part == "v1":
                self.weight = 0.0
            elif m := re.fullmatch(r"w([0-9.]+)", part):
                self.weight = float(m[1])
            elif m := re.fullmatch(r"ts([0-9.]+)", part):
                self.temperature = float(m[1])
            elif m := re.fullmatch(r"csls(\d+)", part):
                self.hub_neighbours = int(m[1])
            elif m := re.fullmatch(r"gf(\d+)e([0-9.e-]+)", part):
                self.filter = (int(m[1]), float(m[2]))
            elif part != "head":
                raise SystemExit(f"unknown variant {part!r}: use head, v1, w<x>, ts<x>, oracle, csls<k> or gf<r>e<eps>, joined by +")
        if self.weight is not None and not 0.0 <= self.weight <= 1.0:
            raise SystemExit(f"variant {name!r}: the weight must be in [0, 1]")

    def _logit(self, inputs: tuple[torch.Tensor, ...], logit: torch.Tensor) -> torch.Tensor:
        """The head's output replaced (the blend is sigmoid(logit), so +-inf gives exactly 1 or 0),
        and the 1/2-stage errors of this step recorded."""
        x, truth = inputs[0], self.truth_ab2
        assert truth is not None
        v1, semantic = x[:, 0:2], x[:, 2:4]
        v1_error, semantic_error = ((v1 - truth) ** 2).sum(1, keepdim=True), ((semantic - truth) ** 2).sum(1, keepdim=True)
        if self.oracle:
            logit = torch.where(semantic_error < v1_error, math.inf, -math.inf).to(logit)
        elif self.weight is not None:
            w = self.weight
            logit = torch.full_like(logit, math.inf if w == 1 else -math.inf if w == 0 else math.log(w / (1 - w)))
        free = torch.ones_like(v1_error) if self.scene is None else 1.0 - self.scene.clamp(0.0, 1.0)
        if free.dim() == 1:
            free = free.view(-1, 1, 1, 1).expand_as(v1_error)
        elif free.shape[-2:] != v1_error.shape[-2:]:
            free = F.avg_pool2d(free, 2)
        blend = torch.sigmoid(logit) * free
        errors = {"v1": v1_error, "semantic": semantic_error, "blend": ((v1 + blend * (semantic - v1) - truth) ** 2).sum(1, keepdim=True),
                  "oracle": torch.minimum(v1_error, semantic_error)}
        weight = free[..., : self.valid2[0], : self.valid2[1]] * AB_SCALE**2  # ab units, where the blend may act
        for source, error in errors.items():
            self.half[source] += float((error[..., : self.valid2[0], : self.valid2[1]] * weight).sum())
        self.half["weight"] += float(free[..., : self.valid2[0], : self.valid2[1]].sum())
        return logit

    def install(self, model: VCNet) -> Callable[[], None]:
        hook = model.semantic_blend.register_forward_hook(lambda _m, inputs, logit: self._logit(inputs, logit))
        shipped_step = model.step

        def step(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.scene = kwargs.get("scene")
            return shipped_step(*args, **kwargs)

        model.step = step  # type: ignore[method-assign]
        if self.hub_neighbours:
            k = self.hub_neighbours

            def penalised(*args, **kwargs):  # type: ignore[no-untyped-def]
                cosine = multiscale_cosine(*args, **kwargs)  # (B, N frame cells, M reference cells)
                return cosine - cosine.topk(min(k, cosine.shape[1]), dim=1).values.mean(1, keepdim=True)

            vcnet.multiscale_cosine = penalised  # what VCNet.attend_semantic calls
        temperature = model.log_semantic_temperature.data.clone()
        model.log_semantic_temperature.data += math.log(self.temperature)
        if self.filter is not None:
            radius, eps = self.filter
            shipped = model.attend_semantic

            def filtered(frame, memory, grid, frame_l_norm=None):  # type: ignore[no-untyped-def]
                patch, *rest = shipped(frame, memory, grid, frame_l_norm)
                return (guided_filter(patch, F.avg_pool2d(frame_l_norm, 2), radius, eps), *rest)

            model.attend_semantic = filtered  # type: ignore[method-assign]

        def undo() -> None:
            hook.remove()
            model.log_semantic_temperature.data.copy_(temperature)
            model.__dict__.pop("attend_semantic", None)
            model.__dict__.pop("step", None)
            vcnet.multiscale_cosine = multiscale_cosine
        return undo


def run_case(colorizer: DefaultColorizer, variant: Variant, truth: list[np.ndarray], case: str, clip: str) -> dict[str, object]:
    """Frames 1..N-1 coloured from ``case``'s reference of frame 0: chroma MSE per frame and the
    right half's chroma over the truth's."""
    height0, width0 = truth[0].shape[:2]
    width, height = working_size(width0, height0, colorizer.default_short_side)
    reference = Reference.from_array(CASES[case](truth[0]), f"{clip}-{case}")  # the colorizer caches by key
    colorizer.reset()
    variant.valid2 = (height // 2, width // 2)
    variant.half = dict.fromkeys(variant.half, 0.0)
    errors, chroma, true_chroma = [], 0.0, 0.0
    for rgb8 in truth[1:]:
        rgb = cv2.resize(rgb8, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        true_ab = rgb_to_lab(rgb)[..., 1:]
        padded = np.ascontiguousarray(pad_to_multiple(true_ab, SIZE_MULTIPLE))
        variant.truth_ab2 = F.avg_pool2d(torch.from_numpy(padded).permute(2, 0, 1)[None] / AB_SCALE, 2)
        out = colorizer.step(luma_lightness(rgb), reference)
        errors.append(float(((out.ab - true_ab) ** 2).sum(-1).mean()))
        right = slice(width // 2, None)
        chroma += float(np.linalg.norm(out.ab[:, right], axis=-1).mean())
        true_chroma += float(np.linalg.norm(true_ab[:, right], axis=-1).mean())
    ran = variant.half["weight"] > 0  # else the semantic match never ran (the reference showed every frame's scene)
    half = {source: variant.half[source] / variant.half["weight"] if ran else math.nan for source in HALF_SOURCES}
    return {"mse": float(np.mean(errors)), "mse_per_frame": errors, "right_chroma_ratio": chroma / max(true_chroma, 1e-6),
            "half_stage": half}


def _weight_files(spec: str) -> dict[str, str | None]:
    """``name=path,...`` as {name: path}; empty: the shipped weights under no name."""
    if not spec:
        return {"": None}
    pairs = [item.split("=", 1) for item in spec.split(",")]
    if any(len(pair) != 2 or not pair[0] or not Path(pair[1]).is_file() for pair in pairs):
        raise SystemExit(f"--weights takes name=path pairs of existing files, comma-separated, not {spec!r}")
    return dict((name, path) for name, path in pairs)


def _report(label: str, case: str, per_clip: dict[str, dict[str, object]]) -> dict[str, object]:
    """Print one variant's and case's rows (output MSE per clip, 1/2-stage errors) and return its summary."""
    mean = float(np.mean([r["mse"] for r in per_clip.values()]))
    ratio = float(np.mean([r["right_chroma_ratio"] for r in per_clip.values()]))
    row = " ".join(f"{name} {r['mse']:.1f}" for name, r in per_clip.items())
    ran = [r["half_stage"] for r in per_clip.values() if not math.isnan(r["half_stage"]["v1"])]
    half = {source: float(np.mean([h[source] for h in ran])) if ran else math.nan for source in HALF_SOURCES}
    print(f"{label:12s} {case:9s} chroma MSE {row} | mean {mean:.2f} | right-half chroma ratio {ratio:.3f}", flush=True)
    clip_halves = " ".join(f"{name} " + "/".join(f"{r['half_stage'][s]:.0f}" for s in HALF_SOURCES) for name, r in per_clip.items())
    print(f"{'':12s} {case:9s} 1/2 stage {'/'.join(HALF_SOURCES)}: {clip_halves} | mean "
          + " / ".join(f"{half[s]:.1f}" for s in HALF_SOURCES), flush=True)
    return {"clips": per_clip, "mean_mse": mean, "mean_right_chroma_ratio": ratio, "mean_half_stage": half}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default=",".join(n.split("/")[-1] for n in TUNING),
                        help="comma-separated clip names (default: the five training clips)")
    parser.add_argument("--frames", type=int, default=30, help="frames 0..N-1 read; 1..N-1 scored (default 30)")
    parser.add_argument("--cases", default="mirrored,left-half", help="mirrored, left-half and/or first (default mirrored,left-half)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--weights", default="",
                        help="comma-separated name=path of VCNet weight files, each run with every variant "
                             "(default: the shipped default.pt); rows are labelled name:variant")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = args.cases.split(",")
    if unknown := set(cases) - set(CASES):
        raise SystemExit(f"unknown case(s) {', '.join(sorted(unknown))}: use {', '.join(CASES)}")
    if args.frames < 2:
        raise SystemExit("--frames must be at least 2 (frame 0 is the reference)")
    weights = _weight_files(args.weights)
    clips = find_clips(set(args.clips.split(",")))
    truths = {clip.short: load_truth(clip.folder, args.frames) for clip in clips}
    results: dict[str, dict[str, dict[str, object]]] = {}
    for weights_name, path in weights.items():
        colorizer = DefaultColorizer(weights=path)
        for variant in [Variant(name) for name in args.variants.split(",")]:
            label = f"{weights_name}:{variant.name}" if weights_name else variant.name
            undo = variant.install(colorizer.model)
            try:
                per_case = {case: {name: run_case(colorizer, variant, truth, case, name) for name, truth in truths.items()}
                            for case in cases}
            finally:
                undo()
            results[label] = {}
            for case, per_clip in per_case.items():
                results[label][case] = _report(label, case, per_clip)
    if args.json:
        text = json.dumps(_finite({"frames": args.frames, "variants": results}), indent=1)
        Path(args.json).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
