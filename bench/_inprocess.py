"""The previous in-process quality protocol: quick A/B runs of colorizers and their options.

Not the real pipeline: it calls the colorizers directly at 8-bit RGB, with no encode and no 4:2:0
(``bench/quality.py`` measures the real ``vidcolor colorize``; quote its numbers). Kept because it
takes model options (``default:weights=FILE``) the CLI does not, and ``bench/fast.py`` builds on it.

For every clip in ``../shared/data/clips/davis/*`` and ``vid4/*``: make the gray input (BT.601
luma of the true colours), colorize it with the true colours of frame 0 as the reference, and
score frames 1..N-1 against the truth. Rows: the gray input itself, ``classic``, every other
registered model that can be built here, each with and without the temporal check.

    .venv/bin/python bench/_inprocess.py                      # all clips, short side 256
    .venv/bin/python bench/_inprocess.py --clips blackswan,dog --max-frames 30
    .venv/bin/python bench/_inprocess.py --models "default;default:native_short_side=160"   # with options
    .venv/bin/python bench/_inprocess.py --no-reference       # automatic models, no reference at all
    .venv/bin/python bench/_inprocess.py --detail             # plus rows with the reference's fine chroma added
    .venv/bin/python bench/_inprocess.py --keyframe last      # reference = the last frame: the shot nears its keyframe
    .venv/bin/python bench/_inprocess.py --keyframe both      # first and last frame: a shot between two keyframes

``--no-reference`` scores what ``vidcolor colorize INPUT -o OUT`` does without any reference: for
each automatic model A, ``A per frame`` (A colours every frame on its own, with and without the
temporal check) against ``no-ref: <exemplar> <- A`` (A colours the clip's middle frame only, which
becomes the reference the exemplar model follows with the temporal check: vidcolor's no-reference
mode, through the pipeline's own :func:`~vidcolor.run.pipeline.automatic_reference`).

Columns: PSNR/SSIM (higher is better), warp error ×1000 and its ratio to the ground truth's own
(lower is better, 1.0 = as stable as the real colours), the chroma-only warp error in Lab units²
(colour flicker alone; the RGB warp error also holds the source's luma changes, common to every
row), CDC ×1000 (lower is better),
colourfulness (closer to the truth's is better), seconds per frame of colorizing, and how many
frames the temporal check flagged (in the mean table: the total).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vidcolor.report import metrics  # noqa: E402
from vidcolor.color import LumaFormat, guided_upsample, luma_to_gray_level, luma_to_lightness, rgb_codes, shrink_area  # noqa: E402
from vidcolor.colorizers.base import ColorizedFrame, Colorizer  # noqa: E402
from vidcolor.correspondence.detail import ReferenceDetail  # noqa: E402
from vidcolor.correspondence.flow import DISFlow, FlowPair, make_flow  # noqa: E402
from vidcolor.run.pipeline import automatic_reference, blend_predictions, working_size  # noqa: E402
from vidcolor.references import Reference  # noqa: E402
from vidcolor.temporal import TemporalCheck, TemporalSettings  # noqa: E402

CLIPS = REPO.parent / "shared" / "data" / "clips"
GRAY_LUMA = LumaFormat(bit_depth=8, full_range=True, matrix="bt601")
COLUMNS = ("psnr", "ssim", "warp_error", "warp_ratio", "ab_warp", "cdc", "colorfulness", "sec_per_frame")


class NoReferenceMode(Colorizer):
    """vidcolor's no-reference mode on one shot: the automatic model colours the shot's middle
    frame (``keyframe``, working-size lightness, set per clip; as the pipeline's
    ``FrameColorizer.automatic_keyframe``), which becomes the reference ``inner`` follows (the
    given reference is ignored)."""

    def __init__(self, inner: Colorizer, auto: Colorizer) -> None:
        self.inner, self.auto = inner, auto
        self.name = f"{inner.name}<-{auto.name}"
        self.keyframe: np.ndarray | None = None
        self.reference: Reference | None = None

    def reset(self) -> None:
        self.inner.reset()
        self.reference = None

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        if self.reference is None:
            keyframe = self.keyframe if self.keyframe is not None else lightness
            self.reference = automatic_reference(self.auto, keyframe, key=f"bench-auto:{self.auto.name}")
        return self.inner.step(lightness, self.reference)


class GrayColorizer(Colorizer):
    """The gray input as output (ab = 0): the floor every colorizer must beat."""

    name = "gray"

    def reset(self) -> None:
        pass

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        h, w = lightness.shape
        return ColorizedFrame(np.zeros((h, w, 2), np.float32), np.zeros((h, w), np.float32))


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]  # RGB uint8, the ground truth
    lightness: list[np.ndarray] = field(default_factory=list)  # full-res Lab L of the gray input
    grays: list[np.ndarray] = field(default_factory=list)  # uint8 luma (the gray input)
    motion: list[FlowPair] = field(default_factory=list)  # source motion over the scored frames
    #: The frames whose true colours are the references: (0,) (the shot moves away from its
    #: keyframe), the last (it nears its keyframe) or both (a shot between two keyframes, whose
    #: predictions the pipeline blends: :func:`~vidcolor.run.pipeline.blend_predictions`).
    keyframes: tuple[int, ...] = (0,)

    @property
    def scored(self) -> list[int]:
        """Every frame but the keyframes, in order."""
        return [i for i in range(len(self.frames)) if i not in self.keyframes]


def find_clips(names: set[str] | None) -> list[tuple[str, Path]]:
    found = []
    for folder in sorted((CLIPS / "davis").glob("*/JPEGImages")):
        found.append((f"davis/{folder.parent.name}", folder))
    for folder in sorted((CLIPS / "vid4").glob("*")):
        if folder.is_dir():
            found.append((f"vid4/{folder.name}", folder))
    if names:
        found = [(n, p) for n, p in found if n.split("/")[-1] in names or n in names]
    return found


def load_clip(name: str, folder: Path, max_frames: int | None, keyframe: str = "first") -> Clip:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    if max_frames:
        files = files[:max_frames]
    frames = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in files]
    clip = Clip(name, frames)
    for rgb in frames:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # BT.601 full-range luma
        clip.grays.append(gray)
        clip.lightness.append(luma_to_lightness(gray, GRAY_LUMA))
    last = len(frames) - 1
    clip.keyframes = {"first": (0,), "last": (last,), "both": (0, last)}[keyframe]
    clip.motion = metrics.source_motion([clip.grays[i] for i in clip.scored], DISFlow())
    return clip


def colorize(clip: Clip, colorizer: Colorizer, short_side: int,
             detail: ReferenceDetail | None = None) -> tuple[list[np.ndarray], float, list[dict], list[np.ndarray], float]:
    """Run the colorizer over the whole clip as the pipeline does (working-size lightness in,
    chroma upsampled guided by full-resolution lightness, RGB whose luma is the input's); return
    the outputs of every frame but the keyframes (:attr:`Clip.scored`), seconds per frame
    (colorizer and upsampling), their stats, and with ``detail`` the same outputs with the
    reference's detail added (else an empty list) and the seconds per frame that adding it took.
    With two keyframes, a second colorizer (:meth:`~Colorizer.fork`) follows the end one and the
    two predictions are blended by position and confidence, as the pipeline blends a shot's."""
    height, width = clip.frames[0].shape[:2]
    w, h = working_size(width, height, short_side)
    references = [Reference.from_array(clip.frames[k], key=f"bench:{clip.name}:{k}") for k in clip.keyframes]
    colorizer.reset()
    colorizers = [colorizer] + [colorizer.fork() for _ in references[1:]]
    last = len(clip.lightness) - 1
    outputs, stats, detailed = [], [], []
    detail_seconds = 0.0
    start = time.perf_counter()
    for index, lightness in enumerate(clip.lightness):
        small = shrink_area(lightness, (w, h))  # as the pipeline shrinks frames
        results = [c.step(small, r) for c, r in zip(colorizers, references)]
        position = index / last if len(results) == 2 else 0.0
        result = blend_predictions(*results, position) if len(results) == 2 else results[0]
        sources = [(references[0], 1.0 - position), (references[1], position)] if len(results) == 2 else [(references[0], 1.0)]
        if index not in clip.keyframes:  # a reference itself is colorized (in its place in the shot), not scored
            ab = guided_upsample(result.ab, lightness)
            gray = luma_to_gray_level(clip.grays[index], GRAY_LUMA)
            outputs.append(rgb_codes(gray, ab, 8, GRAY_LUMA.matrix))
            stats.append(result.stats)
            if detail is not None:
                detail_start = time.perf_counter()
                detailed.append(rgb_codes(gray, detail.add(ab, small, sources), 8, GRAY_LUMA.matrix))
                detail_seconds += time.perf_counter() - detail_start
    elapsed = (time.perf_counter() - start - detail_seconds) / len(clip.lightness)
    return outputs, elapsed, stats, detailed, detail_seconds / len(clip.lightness)


def score(clip: Clip, outputs: list[np.ndarray], truth: list[np.ndarray], seconds: float) -> dict[str, float]:
    return {
        "psnr": float(np.mean([metrics.psnr(o, t) for o, t in zip(outputs, truth)])),
        "ssim": float(np.mean([metrics.ssim(o, t) for o, t in zip(outputs, truth)])),
        "warp_error": metrics.warp_error(outputs, clip.motion),
        "warp_ratio": metrics.warp_ratio(outputs, truth, clip.motion),
        "ab_warp": metrics.chroma_warp_error(outputs, clip.motion),
        "cdc": metrics.cdc(outputs),
        "colorfulness": float(np.mean([metrics.colorfulness(o) for o in outputs])),
        "sec_per_frame": seconds,
    }


def build_methods(names: list[str], flow_method: str, settings: TemporalSettings) -> list[tuple[str, object]]:
    """(row label, factory) pairs; models that cannot be built here are reported and skipped."""
    from vidcolor.colorizers import MODELS, get_colorizer

    from automatic import parse_model

    methods: list[tuple[str, object]] = [("gray", GrayColorizer)]
    for spec in names or list(MODELS):
        name, options = parse_model(spec)
        try:
            get_colorizer(name, **options)
        except Exception as exc:  # missing weights or an unfinished model: skip, say why
            print(f"# skipping model {spec!r}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        methods.append((spec, lambda n=name, o=options: get_colorizer(n, **o)))
        methods.append((f"{spec}+temporal",
                        lambda n=name, o=options: TemporalCheck(get_colorizer(n, **o), make_flow(flow_method), settings)))
    return methods


def build_no_reference_methods(names: list[str], exemplar: str, flow_method: str,
                               settings: TemporalSettings) -> list[tuple[str, object]]:
    """Rows of ``--no-reference``: each automatic model per frame, then as the keyframe source of
    the no-reference mode."""
    from vidcolor.colorizers import AUTOMATIC_MODELS, get_colorizer

    def checked(colorizer: Colorizer) -> Colorizer:
        return TemporalCheck(colorizer, make_flow(flow_method), settings)

    methods: list[tuple[str, object]] = [("gray", GrayColorizer)]
    for name in names or list(AUTOMATIC_MODELS):
        methods.append((f"{name} per frame", lambda n=name: get_colorizer(n)))
        methods.append((f"{name} per frame+temporal", lambda n=name: checked(get_colorizer(n))))
        methods.append((f"no-ref: {exemplar}<-{name}",
                        lambda n=name: NoReferenceMode(checked(get_colorizer(exemplar)), get_colorizer(n))))
    return methods


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    width = max(22, *(len(label) for label in rows))
    print(f"\n## {title}")
    print(f"{'method':<{width}} {'PSNR':>7} {'SSIM':>6} {'warp×1e3':>9} {'ratio':>6} {'ab-warp':>8} {'CDC×1e3':>8} {'colourf.':>8} "
          f"{'s/frame':>8} {'flagged':>7}")
    for label, r in rows.items():
        flagged = f"{r['flagged']:7.0f}" if "flagged" in r else f"{'':>7}"
        print(
            f"{label:<{width}} {r['psnr']:7.2f} {r['ssim']:6.4f} {r['warp_error'] * 1e3:9.3f} {r['warp_ratio']:6.3f} {r['ab_warp']:8.4f} "
            f"{r['cdc'] * 1e3:8.3f} {r['colorfulness']:8.2f} {r['sec_per_frame']:8.3f} {flagged}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", help="comma-separated clip names (default: all)")
    parser.add_argument("--max-frames", type=int, default=None, help="use the first N frames of each clip")
    parser.add_argument("--size", type=int, default=256, help="working short side in pixels (default 256)")
    parser.add_argument("--models", help="comma-separated registry names (default: every buildable one); with options, "
                                         "separate by ';': 'default;default:native_short_side=160,weights=FILE'")
    parser.add_argument("--flow", default="auto", choices=("auto", "dis", "raft-small", "raft-large"),
                        help="flow of the temporal check (metrics always use DIS on the gray source)")
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenCV threads (default 2)")
    parser.add_argument("--no-reference", action="store_true",
                        help="no reference at all: --models names automatic models (default: all), compared per frame "
                             "and as keyframes of the no-reference mode")
    parser.add_argument("--detail", action="store_true",
                        help="also score every row with the reference's fine chroma added (vidcolor.correspondence.detail), "
                             "as '<row>+detail', from the same run")
    parser.add_argument("--keyframe", choices=("first", "last", "both"), default="first",
                        help="which frame's true colours are the reference (default: first); both: the first and "
                             "the last, blended as in a shot between two keyframes")
    parser.add_argument("--exemplar", default="default", help="with --no-reference: the model that propagates the keyframe")
    for f in TemporalSettings.__dataclass_fields__.values():
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=float, default=f.default, help=f"temporal check {f.name}")
    args = parser.parse_args(argv)
    if args.no_reference and args.keyframe == "both":
        parser.error("--no-reference has no keyframes to blend: drop --keyframe both")

    cv2.setNumThreads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    settings = TemporalSettings(**{name: getattr(args, name) for name in TemporalSettings.__dataclass_fields__})
    clips = find_clips(set(args.clips.split(",")) if args.clips else None)
    if not clips:
        print(f"no clips found under {CLIPS}: the shared data set is missing", file=sys.stderr)
        return 1
    names = args.models.split(";" if ";" in (args.models or "") else ",") if args.models else []
    if args.no_reference:
        methods = build_no_reference_methods(names, args.exemplar, args.flow, settings)
    else:
        methods = build_methods(names, args.flow, settings)
    print(f"# size {args.size}, keyframe {args.keyframe}, temporal {settings}, flow {args.flow}")
    totals: dict[str, list[dict[str, float]]] = {}
    for name, folder in clips:
        clip = load_clip(name, folder, args.max_frames, args.keyframe)
        truth = [clip.frames[i] for i in clip.scored]
        rows: dict[str, dict[str, float]] = {}
        gt = {
            "psnr": float("inf"), "ssim": 1.0, "warp_error": metrics.warp_error(truth, clip.motion), "warp_ratio": 1.0,
            "ab_warp": metrics.chroma_warp_error(truth, clip.motion), "cdc": metrics.cdc(truth), "colorfulness": float(np.mean([metrics.colorfulness(t) for t in truth])),
            "sec_per_frame": 0.0,
        }
        rows["ground truth"] = gt
        height, width = clip.frames[0].shape[:2]
        middle = cv2.resize(clip.lightness[len(clip.lightness) // 2], working_size(width, height, args.size),
                            interpolation=cv2.INTER_AREA)
        for label, factory in methods:
            colorizer = factory()  # type: ignore[operator]
            if isinstance(colorizer, NoReferenceMode):
                colorizer.keyframe = middle
            detail = ReferenceDetail() if args.detail and label != "gray" and not args.no_reference else None
            outputs, seconds, stats, detailed, detail_seconds = colorize(clip, colorizer, args.size, detail)
            rows[label] = score(clip, outputs, truth, seconds)
            if stats and "flagged" in stats[0]:
                rows[label]["flagged"] = float(np.sum([s["flagged"] for s in stats]))
            if detailed:
                rows[f"{label}+detail"] = score(clip, detailed, truth, seconds + detail_seconds)
        print_table(f"{name} ({len(clip.frames)} frames, scored {clip.scored[0]}..{clip.scored[-1]})", rows)
        for label, row in rows.items():
            totals.setdefault(label, []).append(row)
    means = {label: {c: float(np.mean([r[c] for r in rs])) for c in COLUMNS} for label, rs in totals.items()}
    for label, rs in totals.items():
        if all("flagged" in r for r in rs):
            means[label]["flagged"] = float(np.sum([r["flagged"] for r in rs]))
    print_table(f"mean over {len(clips)} clips", means)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
