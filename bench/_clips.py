"""The shared ground-truth clips for benches: which clips, their true frames, the gray input a
black-and-white film would be, and decoding what the pipeline wrote.

The clips are JPEG frame folders of true colours under ``../shared/data/clips`` (MANIFEST.md
there). Seven have been used to tune vidcolor's models and constants; two of those, ``dog`` and
``horsejump-high``, were held out of every model's training and are reported apart. The ten
clips added later for training (240 lines high) can join with ``added=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: As the tests find it (tests/helpers.py): ``$VIDCOLOR_SHARED``, else ../shared beside the repository.
CLIPS = Path(os.environ.get("VIDCOLOR_SHARED") or REPO.parent / "shared") / "data" / "clips"

#: Clips the models and constants were tuned on (training clips and bench sweeps).
TUNING = ("davis/blackswan", "davis/bmx-trees", "davis/car-shadow", "vid4/calendar", "vid4/city")
#: Clips no model was trained on (the model cards' held-out pair); constants were swept on all seven.
HELD_OUT = ("davis/dog", "davis/horsejump-high")
#: Folders of the clips added for training (MANIFEST.md, "Training additions").
ADDED_SOURCES = ("imageio", "tiny_ucf101", "mmaction2", "cotracker", "sam2", "aot_youtubevos", "pysot")

#: BT.601 luma weights: the gray a black-and-white camera or telecine would record.
BT601 = np.array([0.299, 0.587, 0.114], np.float64)


@dataclass(frozen=True)
class ClipSource:
    name: str  # e.g. "davis/dog"
    group: str  # "tuning", "held out" or "added"
    folder: Path  # the folder of JPEG frames

    @property
    def short(self) -> str:
        return self.name.split("/")[-1]


def _frame_folder(name: str) -> Path:
    folder = CLIPS / name
    return folder / "JPEGImages" if (folder / "JPEGImages").is_dir() else folder


def find_clips(selection: set[str] | None = None, added: bool = False) -> list[ClipSource]:
    """The tuning clips, then the held-out ones, then (with ``added``) the added ones; with a
    ``selection`` (short names such as ``dog`` or full ones such as ``davis/dog``, any group) only
    those. A named clip that is not found is an error, so a typo never shrinks a run silently."""
    found = [ClipSource(n, "tuning", _frame_folder(n)) for n in TUNING]
    found += [ClipSource(n, "held out", _frame_folder(n)) for n in HELD_OUT]
    found += [ClipSource(f"{source}/{folder.name}", "added", folder)
              for source in ADDED_SOURCES for folder in sorted((CLIPS / source).glob("*")) if folder.is_dir()]
    found = [c for c in found if c.folder.is_dir()]
    if not selection:
        return [c for c in found if added or c.group != "added"]
    unknown = selection - {c.name for c in found} - {c.short for c in found}
    if unknown:
        raise SystemExit(f"unknown clip(s) {', '.join(sorted(unknown))} under {CLIPS}: "
                         f"choose from {', '.join(c.short for c in found)}")
    return [c for c in found if c.name in selection or c.short in selection]


def load_truth(folder: Path, frames: int | None = None) -> list[np.ndarray]:
    """The true colours (RGB uint8) of the first ``frames`` frames, cropped to even width and
    height by dropping the last column/row when odd (4:2:0 needs even sizes)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:frames]
    if not files:
        raise SystemExit(f"no frames in {folder}")
    out = []
    for path in files:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        out.append(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]))
    return out


def write_gray_video(truth: list[np.ndarray], path: Path, crf: int = 0, fps: int = 25) -> None:
    """The gray film: BT.601 luma of the truth as H.264 4:2:0 (yuv420p, limited range, tagged
    BT.601 / smpte170m, neutral chroma). ``crf`` 0 is lossless (x264 qp 0), so the bench measures
    the colorizing and the output encode, not a lossy input."""
    h, w = truth[0].shape[:2]
    options = {"qp": "0"} if crf == 0 else {"crf": str(crf)}
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast", **options})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.colorspace = 6  # smpte170m (BT.601)
        stream.codec_context.color_range = 1  # limited ("tv")
        chroma = np.full((h // 2, w), 128, np.uint8)  # U and V planes, packed as from_ndarray expects
        for rgb in truth:
            luma = np.rint(16.0 + 219.0 / 255.0 * (rgb.astype(np.float64) @ BT601)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")
            frame.colorspace, frame.color_range = 6, 1
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def encode_as_output(source: Path, path: Path, crf: int, preset: str = "medium") -> None:
    """``source`` re-encoded as ``vidcolor colorize`` encodes an H.264 output (libx264 at ``crf``
    and ``preset``, yuv420p, the source's matrix and range): the gray row then bears the same
    encode loss as the colorized rows."""
    with av.open(str(source)) as src, av.open(str(path), "w") as dst:
        in_stream = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=in_stream.average_rate, options={"preset": preset, "crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = in_stream.width, in_stream.height, "yuv420p"
        stream.codec_context.colorspace = in_stream.codec_context.colorspace
        stream.codec_context.color_range = in_stream.codec_context.color_range
        for frame in src.decode(in_stream):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


def decode_rgb(path: Path) -> list[np.ndarray]:
    """Every frame of a video as RGB uint8, converted with the matrix and range the stream is
    tagged with (PyAV honours them), as ``vidcolor report`` decodes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
