"""The face case of issue 24: a photo of one person as the reference for a gray photo of another.

    .venv/bin/python bench/faces.py                                   # the shipped default weights
    .venv/bin/python bench/faces.py --weights v1=old.pt,v2d=new.pt    # several weight files, same run
    .venv/bin/python bench/faces.py --json faces.json --sheet faces.png

Six pairs of CelebA-HQ photos from ``../shared/data/photos/stargan_v2_faces_animals`` (MANIFEST.md):
a ``ref_*`` photo with a blue or green background or shirt lends its colours to the gray ``src_*``
photo of another person (the ``src_*`` photos were kept out of the default model's v2 training with
``--exclude-photos``). Each target runs through the real pipeline (``colorize_video``, a one-frame
lossless gray clip, the default model in the temporal check, as the CLI builds it) and is scored on
the decoded output, 256x256:

* ``skin``: share of the face (a central ellipse, centre (128, 138), half-axes 52x70) with Lab a*
  and b* both positive (skin-toned), the issue's wording;
* ``bluish``: share of the face with b* < -2;
* ``cool``: the largest connected region (share of the picture) painted cool (a* or b* < -5)
  where the truth is not (a* and b* >= -2): the reference's background or clothes copied onto
  something else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from vidcolor.color import rgb_to_lab  # noqa: E402

#: (reference, target) photo stems under ``photos/stargan_v2_faces_animals/celeba_hq_``.
PAIRS = (("ref_female_081680", "src_female_039913"), ("ref_female_081680", "src_female_172559"),
         ("ref_male_156498", "src_male_196930"), ("ref_male_156498", "src_male_016387"),
         ("ref_male_038919", "src_male_005735"), ("ref_male_036367", "src_female_091623"))
FACES = "photos/stargan_v2_faces_animals/celeba_hq_"
SIZE = 256
_yy, _xx = np.mgrid[0:SIZE, 0:SIZE]
#: The face: a central ellipse of the aligned CelebA-HQ crop.
FACE = ((_xx - 128) / 52) ** 2 + ((_yy - 138) / 70) ** 2 <= 1


def face_scores(output_rgb: np.ndarray, truth_rgb: np.ndarray) -> dict[str, float]:
    """skin, bluish and largest cool region (see the module docstring) of one 256x256 output."""
    lab = rgb_to_lab(output_rgb.astype(np.float32) / 255.0)
    truth = rgb_to_lab(truth_rgb.astype(np.float32) / 255.0)
    skin = ((lab[..., 1] > 0) & (lab[..., 2] > 0))[FACE].mean()
    bluish = (lab[..., 2] < -2)[FACE].mean()
    cool = ((lab[..., 2] < -5) | (lab[..., 1] < -5)) & ~((truth[..., 2] < -2) | (truth[..., 1] < -2))
    count, _, stats, _ = cv2.connectedComponentsWithStats(cool.astype(np.uint8), connectivity=8)
    largest = stats[1:, cv2.CC_STAT_AREA].max() / cool.size if count > 1 else 0.0
    return {"skin": float(skin), "bluish": float(bluish), "cool": float(largest)}


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read {path}: is ../shared/data present (see --data)?")
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def colorize_pair(reference: Path, truth_rgb: np.ndarray, weights: str | None, folder: Path) -> np.ndarray:
    """The target's gray as a one-frame lossless clip through ``colorize_video``; the decoded RGB."""
    sys.path.insert(0, str(BENCH.parent / "tests"))
    from helpers import write_clip
    from vidcolor.colorizers import build_colorizer
    from vidcolor.io.writer import resolve_output
    from vidcolor.references import load_reference
    from vidcolor.run.pipeline import colorize_video
    from vidcolor.schedule import Keyframe, ReferenceSchedule
    from vidcolor.temporal import TemporalSettings

    clip = write_clip(folder / "in.mkv", [truth_rgb], codec="ffv1", pix_fmt="yuv444p", gray=True)
    options = {"weights": weights} if weights else {}
    colorizer = build_colorizer("default", temporal=TemporalSettings(), **options)
    output = folder / "out.mkv"
    colorize_video(str(clip), resolve_output(str(output), codec="ffv1"),
                   ReferenceSchedule([Keyframe(0, load_reference(str(reference)))]), colorizer)
    with av.open(str(output)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(BENCH.parent.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--weights", default="shipped",
                        help="comma-separated LABEL=FILE default-model weights ('shipped' = the installed default.pt)")
    parser.add_argument("--json", default=None, help="write every score here")
    parser.add_argument("--sheet", default=None, help="write a contact sheet (reference, output per label, truth) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for item in args.weights.split(","):
        label, _, path = item.partition("=")
        runs.append((label, path or None))
    data = Path(args.data)
    results: dict[str, dict[str, dict[str, float]]] = {}
    columns = []
    for ref, src in PAIRS:
        truth = read_rgb(data / f"{FACES}{src}.jpg")
        column = [read_rgb(data / f"{FACES}{ref}.jpg")]
        for label, weights in runs:
            with tempfile.TemporaryDirectory() as tmp:
                out = colorize_pair(data / f"{FACES}{ref}.jpg", truth, weights, Path(tmp))
            results.setdefault(label, {})[f"{ref}->{src}"] = face_scores(out, truth)
            shown = out.copy()
            cv2.ellipse(shown, (128, 138), (52, 70), 0, 0, 360, (255, 255, 255), 1)
            column.append(shown)
        columns.append(np.vstack(column + [truth]))
    labels = [label for label, _ in runs]
    print(f"{'reference -> target':<40} " + " ".join(f"{'skin ' + l:>12} {'bluish ' + l:>12} {'cool ' + l:>12}" for l in labels))
    for pair in results[labels[0]]:
        print(f"{pair:<40} " + " ".join(f"{results[l][pair]['skin']:12.2f} {results[l][pair]['bluish']:12.3f} "
                                        f"{results[l][pair]['cool']:12.3f}" for l in labels))
    for label in labels:
        rows = results[label].values()
        print(f"# {label}: skin min {min(r['skin'] for r in rows):.2f} mean {np.mean([r['skin'] for r in rows]):.2f}; "
              f"bluish max {max(r['bluish'] for r in rows):.3f}; largest cool region max {max(r['cool'] for r in rows):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.sheet:
        cv2.imwrite(args.sheet, cv2.cvtColor(np.hstack(columns), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
