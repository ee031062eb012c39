"""The automatic model and the per-pixel fallback through the real pipeline, with settings the CLI
does not expose (a temperature, fallback thresholds): for tuning them on the training clips.

    .venv/bin/python bench/autocolor.py --case none --methods autocolor@0.38,autocolor@0.25,cheng2015,eccv16
    .venv/bin/python bench/autocolor.py --case left-half --methods plain,fallback,fallback:low=0.1:high=0.5

Clips: by default the ten added training clips (MANIFEST.md "Training additions"); ``--clips``
as ``bench/quality.py`` names them. Per clip: the gray input as ``bench/quality.py`` writes it
(BT.601 luma, lossless H.264 4:2:0), then :func:`vidcolor.run.pipeline.colorize_video` (what
``vidcolor colorize`` runs) with the ``default`` model and the temporal check on, output H.264
crf 18 preset medium as the CLI writes it, decoded and scored with :mod:`vidcolor.report.metrics`
against the truth. The ``gray`` row is the gray input encoded the same way.

Cases: ``none`` (no reference, run as the CLI runs it: scene detection, each shot's reference the
frame the automatic model is surest of among its candidates; each method is an automatic model, ``NAME@T`` sets its
temperature, ``autocolor@T@A`` its prior correction too, ``autocolor@T@A@FILE`` another weight
file (``-`` for the shipped one), ``autocolor@T@A@FILE@K`` a cast removal and ``autocolor@T@A@FILE@K@G``
a chroma gain; ``autocolor:KEY=VALUE:...`` starts from the keyframe decoding no-reference mode
uses and changes ``T``, ``a`` (prior correction), ``g`` (gain), ``k`` (cast removal), ``file``, or adds
a logit prior the shipped colorizer does not have (``n``: a Gaussian of that σ around gray; ``tb``/``ta``:
a tilt of ``tb`` nats per 10 units of b/a against it), so decodings are measured before they are
built; a ``+fallback`` suffix also turns on ``--fallback autocolor`` (the plain decoding
fills what the propagated keyframe does not cover); scored frames 0..N-1); ``left-half`` (frame 0's
left half as the reference; methods ``plain`` or ``fallback[:key=value...]`` with FallbackColorizer's
settings and ``auto=NAME@T``;
scored 1..N-1; ``R-colf`` is the right half's colourfulness over the truth's) and ``first``
(frame 0 whole, same methods).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _clips import REPO, decode_rgb, encode_as_output, find_clips, load_truth, write_gray_video

sys.path.insert(0, str(REPO))

from vidcolor.colorizers import build_colorizer, get_colorizer  # noqa: E402
from vidcolor.colorizers.base import Colorizer  # noqa: E402
from vidcolor.colorizers.fallback import FallbackColorizer  # noqa: E402
from vidcolor.correspondence.flow import make_flow  # noqa: E402
from vidcolor.io.reader import probe  # noqa: E402
from vidcolor.io.writer import resolve_output  # noqa: E402
from vidcolor.references import Reference  # noqa: E402
from vidcolor.report import metrics  # noqa: E402
from vidcolor.run.pipeline import colorize_video  # noqa: E402
from vidcolor.run.prepare import build_colorizers, build_schedule  # noqa: E402
from vidcolor.run.settings import RunSettings  # noqa: E402
from vidcolor.schedule import Keyframe, ReferenceSchedule  # noqa: E402
from vidcolor.temporal import TemporalCheck, TemporalSettings  # noqa: E402


def keyframe_decoding(spec: str) -> Colorizer:
    """``autocolor:KEY=VALUE:...`` (see the module docstring): the no-reference keyframe decoding with
    settings changed, and logit priors added to its adjustment (subtracted from the logits)."""
    import torch  # noqa: PLC0415

    from vidcolor.models.eccv16 import ab_bins  # noqa: PLC0415

    pairs = dict(pair.split("=", 1) for pair in spec.split(":")[1:] if pair)
    unknown = set(pairs) - {"T", "a", "g", "k", "file", "n", "tb", "ta"}
    if unknown:
        raise SystemExit(f"method {spec!r}: unknown keys {', '.join(sorted(unknown))}")
    named = {"T": "vibrancy", "a": "prior_correction", "g": "chroma_gain", "k": "cast_removal"}
    options: dict[str, object] = {named[k]: float(v) for k, v in pairs.items() if k in named}
    if "file" in pairs:
        options["weights"] = pairs["file"]
    colorizer = get_colorizer("autocolor", keyframe=True, **options)
    centres = torch.from_numpy(ab_bins()).float()
    prior = torch.zeros(centres.shape[0])
    if float(pairs.get("n", 0)):
        prior += (centres ** 2).sum(dim=1) / (2 * float(pairs["n"]) ** 2)
    prior += float(pairs.get("tb", 0)) * centres[:, 1] / 10 + float(pairs.get("ta", 0)) * centres[:, 0] / 10
    if prior.abs().sum() > 0:
        adjustment = colorizer.adjustment  # type: ignore[attr-defined]
        colorizer.adjustment = prior if adjustment is None else adjustment + prior  # type: ignore[attr-defined]
    return colorizer


def automatic(spec: str) -> Colorizer:
    """``NAME``, ``NAME@T`` (T: the annealed-mean temperature, for autocolor and eccv16),
    ``autocolor@T@A`` (A: its prior correction), ``autocolor@T@A@FILE`` (another weight file,
    e.g. the previous commit's, so old and new weights run on the same clips in one run; ``-``:
    the shipped one), ``autocolor@T@A@FILE@K`` (K: the cast removal) or ``autocolor@T@A@FILE@K@G``
    (G: the chroma gain)."""
    if spec.startswith("autocolor:"):
        return keyframe_decoding(spec)
    name, *values = spec.split("@")
    options: dict[str, object] = dict(zip(("vibrancy", "prior_correction"), map(float, values[:2])))
    if len(values) > 2 and values[2] != "-":
        options["weights"] = values[2]
    if len(values) > 3:
        options["cast_removal"] = float(values[3])
    if len(values) > 4:
        options["chroma_gain"] = float(values[4])
    return get_colorizer(name, **options)


def exemplar(spec: str) -> Colorizer:
    """``plain`` (default + temporal check) or ``fallback[:key=value...]`` (inside the check)."""
    kind, *pairs = spec.split(":")
    if kind == "plain":
        return build_colorizer("default", temporal=TemporalSettings())
    if kind != "fallback":
        raise SystemExit(f"method {spec!r}: give plain or fallback[:key=value...]")
    options = dict(pair.split("=", 1) for pair in pairs)
    auto = automatic(options.pop("auto", "autocolor"))
    inner = FallbackColorizer(get_colorizer("default"), auto, **{k: v if k == "signal" else int(v) if k == "every" else float(v) for k, v in options.items()})
    return TemporalCheck(inner, make_flow("auto"), TemporalSettings())


def run_as_the_cli(gray_video: Path, output: Path, auto: Colorizer, fallback: str = "none") -> None:
    """No-reference mode as ``vidcolor colorize`` runs it (:func:`vidcolor.run.prepare.colorize_file`
    with the default settings, ``fallback`` as ``--fallback``): the scene-detection pass, the automatic
    model on each shot's surest candidate frame, the anchor and detail settings; only the automatic model is
    ``auto`` instead of one by name. An empty schedule without that pass colours frame 0 instead
    (dog: 26.28 vs the CLI's 29.45 dB)."""
    settings = RunSettings(fallback=fallback)
    info = probe(str(gray_video))
    colorizer, _ = build_colorizers(settings, has_references=False)
    schedule, kept = build_schedule(info, settings, keep_at=settings.work_size(info.width, info.height, colorizer),
                                    auto=auto)
    colorize_video(str(gray_video), resolve_output(str(output), codec="h264", crf=18), schedule, colorizer,
                   short_side=settings.short_side, size=settings.fixed_size, info=info, plan=settings.plan, auto=auto,
                   detail=settings.reference_detail(), kept_keyframes=kept, anchor=settings.anchor, overwrite=True)


def run(gray_video: Path, output: Path, case: str, method: str, truth0: np.ndarray) -> tuple[list[np.ndarray], float]:
    if case == "none":
        started = time.perf_counter()
        spec, _, suffix = method.partition("+")
        if suffix not in ("", "fallback"):
            raise SystemExit(f"method {method!r}: the only suffix is +fallback")
        run_as_the_cli(gray_video, output, automatic(spec), "autocolor" if suffix else "none")
        return decode_rgb(output), time.perf_counter() - started
    image = truth0[:, : truth0.shape[1] // 2] if case == "left-half" else truth0
    schedule = ReferenceSchedule([Keyframe(0, Reference.from_array(np.ascontiguousarray(image), key=f"bench:{case}"))])
    colorizer = exemplar(method)
    started = time.perf_counter()
    colorize_video(str(gray_video), resolve_output(str(output), codec="h264", crf=18), schedule, colorizer, overwrite=True)
    return decode_rgb(output), time.perf_counter() - started


def score(outputs: list[np.ndarray], truth: list[np.ndarray], scored: range) -> dict[str, float]:
    half = truth[0].shape[1] // 2
    out, tru = [outputs[i] for i in scored], [truth[i] for i in scored]
    return {"psnr": float(np.mean([metrics.psnr(o, t) for o, t in zip(out, tru)])),
            "colf_sum": float(np.sum([metrics.colorfulness(o) for o in out])),
            "truth_colf_sum": float(np.sum([metrics.colorfulness(t) for t in tru])),
            "colf": float(np.mean([metrics.colorfulness(o) for o in out]) / np.mean([metrics.colorfulness(t) for t in tru])),
            "rcolf": float(np.mean([metrics.colorfulness(o[:, half:]) for o in out])
                           / max(np.mean([metrics.colorfulness(t[:, half:]) for t in tru]), 1e-6))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", help="comma-separated clips (default: the ten added training clips)")
    parser.add_argument("--case", choices=("none", "left-half", "first"), default="none")
    parser.add_argument("--methods", required=True, help="comma-separated methods (see the module docstring)")
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames of each clip")
    parser.add_argument("--json", dest="json_path", help="also write the records here")
    args = parser.parse_args(argv)
    sources = find_clips(set(args.clips.split(",")) if args.clips else None, added=True)
    if not args.clips:
        sources = [s for s in sources if s.group == "added"]
    methods = args.methods.split(",")
    print(f"# bench/autocolor.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    records: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="vidcolor-autocolor-") as tmp:
        for source in sources:
            folder = Path(tmp) / source.name.replace("/", "-")
            folder.mkdir(parents=True)
            truth = load_truth(source.folder, args.frames)
            write_gray_video(truth, folder / "gray.mp4")
            encode_as_output(folder / "gray.mp4", folder / "gray-out.mp4", 18)
            scored = range(0 if args.case == "none" else 1, len(truth))
            row = {"clip": source.name, "group": source.group, "gray": score(decode_rgb(folder / "gray-out.mp4"), truth, scored)}
            for method in methods:
                outputs, seconds = run(folder / "gray.mp4", folder / "out.mp4", args.case, method, truth[0])
                row[method] = {**score(outputs, truth, scored), "sec_per_frame": seconds / len(truth)}
            records.append(row)
            print(f"{source.name:<34}" + " ".join(f"{m}={row[m]['psnr']:.2f}" for m in ["gray", *methods]),  # type: ignore[index]
                  file=sys.stderr, flush=True)
    # colf-all: the colourfulness of every scored frame over the truth's (a ratio of sums: a cast on a
    # near-gray clip, far above its tiny truth, cannot hide a muted colourful clip as in colf-r's mean of ratios)
    print(f"\n{'method':<44} {'PSNR':>7} {'-gray':>6} {'worst-gray':>10} {'colf-r':>7} {'colf-all':>8} {'R-colf':>7} {'s/frame':>8}")
    for method in ["gray", *methods]:
        values = [r[method] for r in records]
        diffs = [v["psnr"] - r["gray"]["psnr"] for v, r in zip(values, records)]  # type: ignore[index]
        print(f"{method:<44} {np.mean([v['psnr'] for v in values]):7.2f} {np.mean(diffs):+6.2f} {min(diffs):+10.2f} "
              f"{np.mean([v['colf'] for v in values]):7.3f} "
              f"{sum(v['colf_sum'] for v in values) / max(sum(v['truth_colf_sum'] for v in values), 1e-6):8.3f} "
              f"{np.mean([v['rcolf'] for v in values]):7.3f} "
              f"{np.mean([v.get('sec_per_frame', 0.0) for v in values]):8.3f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
