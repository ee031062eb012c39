"""Temporal-consistency and quality report of a colorized video, computed from files.

:func:`build_report` reads the colorized output, the gray source it was made from and, when
available, the true colours, all frame by frame (constant memory apart from 768 histogram values
per frame), and returns a JSON-ready dict::

    {"summary": {"frames", "warp_error", "cdc", "colorfulness", "flagged_frames", "flow",
                 + with ground truth: "psnr", "ssim", "warp_ratio", "ground_truth_warp_error"},
     "frames": [{"frame", "timecode", "warp_error", "occluded", "confidence", "flagged", "colorfulness",
                 + with ground truth: "psnr", "ssim", "ground_truth_warp_error"}, ...],
     "shots": [{"shot", "start", "end", "frames", "timecode", "warp_error", "cdc", "colorfulness",
                "flagged_frames", "confidence", + with ground truth: "psnr", "ssim",
                "ground_truth_warp_error", "warp_ratio"}, ...],
     + when the run's stats file starts with run metadata: "run": {...}}

Flow and occlusion come from the gray *source* (see :mod:`vidcolor.report.metrics`), so the output's and
the ground truth's warp errors are measured on identical motion. A frame's ``warp_error`` and
``occluded`` describe the pair (previous frame, this frame); the first frame has ``null``.
``confidence`` and ``flagged`` come from the colorizing run when it left a per-frame stats file
beside the output (:func:`write_run_stats`); otherwise ``confidence`` is ``null`` and a frame is
flagged when its warp error exceeds :data:`FLAG_FACTOR` times the clip's median.

Shots (``shot_starts``: the preset's shots or scene cuts) get their own rows; a shot's warp error
averages only the pairs inside it, since the pair across a cut compares unrelated pictures. The
clip-level ``summary`` is unchanged by shots (every pair counts, as before).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from . import metrics
from ..color import luma_to_gray
from ..errors import InputError, VideoOpenError
from ..correspondence.flow import DISFlow, FlowEstimator, FlowPair, forward_backward, visible_mask
from ..io.reader import VideoReader, is_image_sequence, probe, sequence_files
from ..schedule.timecodes import timecode
from ..references import read_rgb

#: Per-frame columns of the CSV (``psnr`` only when ground truth is given).
FRAME_COLUMNS = ("frame", "timecode", "warp_error", "occluded", "confidence", "flagged")
#: Without run stats, a frame is flagged when its warp error exceeds this many times the median.
FLAG_FACTOR = 3.0
#: Flow is estimated with the short side at most this (then scaled up): warp error needs only
#: coarse motion, and full-HD RAFT on a CPU would dominate the report's run time.
FLOW_SHORT_SIDE = 480


def run_stats_path(output_path: str | os.PathLike[str]) -> Path:
    """Where the colorizing run leaves per-frame stats for the report: ``OUTPUT.stats.jsonl``."""
    return Path(os.fspath(output_path) + ".stats.jsonl")


def write_run_stats(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                    run: Mapping[str, Any] | None = None) -> None:
    """Write per-frame stats (``frame`` plus ``ColorizedFrame.stats``) as JSON lines, atomically.

    ``run`` (see :func:`run_metadata`) becomes a first line ``{"run": {...}}``: model, settings,
    speed and keyframes, so the report can say how the output was made.
    """
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    with open(partial, "w", encoding="utf-8") as handle:
        if run is not None:
            handle.write(json.dumps({"run": json_safe(dict(run))}, allow_nan=False) + "\n")
        for row in rows:
            handle.write(json.dumps(json_safe(dict(row)), allow_nan=False) + "\n")
    os.replace(partial, target)


def read_run_stats(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """Per-frame stats written by :func:`write_run_stats`, keyed by frame index."""
    stats: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "run" in row and "frame" not in row:
                    continue  # the run metadata line (read_run_metadata)
                stats[int(row["frame"])] = row
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"run stats {os.fspath(path)!r} line {number} is not a frame record ({exc}): delete the file or re-run") from exc
    return stats


def read_run_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``run`` line of a stats file written by :func:`write_run_stats`, or None without one."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return None
            run = row.get("run") if isinstance(row, dict) else None
            return dict(run) if isinstance(run, dict) else None
    return None


def run_metadata(summary: Any, schedule: Any = None, colorizer: Any = None,
                 settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the report's summary shows about a run: from a :class:`~vidcolor.run.pipeline.RunSummary`,
    its :class:`~vidcolor.schedule.keyframes.ReferenceSchedule` and colorizer (``describe()``), plus any
    further ``settings`` (e.g. CLI options). Plain JSON-ready data."""
    from .. import __version__  # noqa: PLC0415 - the package imports this module's neighbours

    run: dict[str, Any] = {
        "vidcolor": __version__,
        "input": os.fspath(summary.input),
        "output": os.fspath(summary.output),
        "model": summary.model,
        "frames": summary.frames,
        "seconds": summary.seconds,
        "fps": summary.fps,
        "working_size": list(summary.working_size),
    }
    if getattr(summary, "resumed_frames", 0):  # ``frames`` are those coloured in this run, ``fps`` its speed
        run["resumed_frames"] = summary.resumed_frames
    if colorizer is not None:
        run["colorizer"] = colorizer.describe()
    if schedule is not None:
        run["keyframes"] = [{"frame": k.frame, "reference": k.reference.key,
                             **({"end_frame": k.end_frame} if k.end_frame is not None else {}),
                             **({"end_reference": k.end_reference.key} if k.end_reference is not None else {})}
                            for k in schedule.keyframes]
        run["cuts"] = sorted(schedule.cuts)
    if settings:
        run["settings"] = dict(settings)
    return json_safe(run)


def build_report(
    output_path: str | os.PathLike[str],
    source_path: str | os.PathLike[str],
    ground_truth_path: str | os.PathLike[str] | None = None,
    *,
    flow: FlowEstimator | None = None,
    run_stats: str | os.PathLike[str] | None = None,
    shot_starts: Iterable[int] = (),
) -> dict[str, Any]:
    """Measure ``output_path`` against its gray source (and ground truth): the report dict.

    :param flow: estimator for the source motion (default OpenCV DIS: deterministic, weight free,
        so reports are comparable between machines).
    :param run_stats: per-frame stats file of the colorizing run; default :func:`run_stats_path`
        of the output when that file exists.
    :param shot_starts: first frames of shots (frame 0 is always one); each shot gets a row in
        ``shots``. Empty: the clip is one shot.
    """
    flow = flow or DISFlow()
    stats_file = Path(run_stats) if run_stats is not None else run_stats_path(output_path)
    stats = read_run_stats(stats_file) if stats_file.is_file() else {}
    run_info = read_run_metadata(stats_file) if stats_file.is_file() else None
    if run_stats is not None and not stats_file.is_file():
        raise InputError(f"run stats {os.fspath(run_stats)!r} do not exist: check the path")

    source_info = probe(source_path)
    rows: list[dict[str, Any]] = []
    histograms: list[np.ndarray] = []
    colorfulness: list[float] = []
    pair_errors: list[float] = []
    truth_errors: list[float] = []
    psnrs: list[float] = []
    ssims: list[float] = []
    previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None  # gray, output, truth

    truth_frames = rgb_frames(ground_truth_path) if ground_truth_path is not None else None
    outputs = rgb_frames(output_path)
    count = 0
    with VideoReader(source_info) as source, _closing(outputs), _closing(truth_frames):
        sources: Iterator[Any] = iter(source)
        while True:
            src = next(sources, None)
            out = next(outputs, None)
            truth = next(truth_frames, None) if truth_frames is not None else None
            if src is None or out is None or (truth_frames is not None and truth is None):
                _check_lengths(count, src, out, truth, truth_frames is not None, output_path, source_path, ground_truth_path)
                break
            gray = luma_to_gray(src.luma.astype(np.float32), source_info.luma_format).astype(np.float32)
            _check_size(out, gray.shape, "output", output_path, source_path)
            if truth is not None:
                _check_size(truth, gray.shape, "ground truth", ground_truth_path, source_path)
            row: dict[str, Any] = {"frame": src.index, "timecode": timecode(src.time), "warp_error": None, "occluded": None}
            if previous is not None:
                motion = _motion(flow, previous[0], gray)
                error = metrics.pair_warp_error(previous[1], out, motion)
                pair_errors.append(error)
                row["warp_error"] = error
                row["occluded"] = motion.occluded_fraction
                if truth is not None and previous[2] is not None:
                    truth_errors.append(metrics.pair_warp_error(previous[2], truth, motion))
                    row["ground_truth_warp_error"] = truth_errors[-1]
            run = stats.get(src.index, {})
            row["confidence"] = run.get("confidence")
            row["flagged"] = bool(run["flagged"]) if "flagged" in run else None
            if truth is not None:
                row["psnr"] = metrics.psnr(out, truth)
                psnrs.append(row["psnr"])
                row["ssim"] = metrics.ssim(out, truth)
                ssims.append(row["ssim"])
                row.setdefault("ground_truth_warp_error", None)
            histograms.append(metrics.color_histogram(out))
            colorfulness.append(metrics.colorfulness(out))
            row["colorfulness"] = colorfulness[-1]
            rows.append(row)
            previous = (gray, out, truth)
            count += 1
    if count == 0:
        raise InputError(f"output {os.fspath(output_path)!r} has no frames to report on")

    median = float(np.median(pair_errors)) if pair_errors else 0.0
    for row in rows:
        if row["flagged"] is None:
            row["flagged"] = bool(row["warp_error"] is not None and median > 0 and row["warp_error"] > FLAG_FACTOR * median)
    summary: dict[str, Any] = {
        "frames": count,
        "warp_error": float(np.mean(pair_errors)) if pair_errors else 0.0,
        "cdc": metrics.cdc_from_histograms(histograms),
        "colorfulness": float(np.mean(colorfulness)),
        "flagged_frames": sum(1 for r in rows if r["flagged"]),
        "flow": getattr(flow, "name", type(flow).__name__),
    }
    if truth_frames is not None:
        truth_mean = float(np.mean(truth_errors)) if truth_errors else 0.0
        summary["psnr"] = float(np.mean(psnrs))
        summary["ssim"] = float(np.mean(ssims))
        summary["ground_truth_warp_error"] = truth_mean
        summary["warp_ratio"] = summary["warp_error"] / truth_mean if truth_mean > 0 else None
    result: dict[str, Any] = {"summary": summary, "frames": rows,
                              "shots": _shot_rows(rows, histograms, shot_starts, truth_frames is not None)}
    if run_info is not None:
        result["run"] = run_info
    return result


def _shot_rows(rows: list[dict[str, Any]], histograms: list[np.ndarray], shot_starts: Iterable[int],
               with_truth: bool) -> list[dict[str, Any]]:
    """One row per shot: the clip's metrics restricted to its frames (and to pairs inside it)."""
    count = len(rows)
    starts = sorted({0, *(int(s) for s in shot_starts if 0 < int(s) < count)})
    shots = []
    for number, (start, stop) in enumerate(zip(starts, [*starts[1:], count]), 1):
        inside = rows[start:stop]
        pairs = [r["warp_error"] for r in inside[1:] if r["warp_error"] is not None]
        confidences = [r["confidence"] for r in inside if r["confidence"] is not None]
        shot: dict[str, Any] = {
            "shot": number,
            "start": inside[0]["frame"],
            "end": inside[-1]["frame"],
            "frames": len(inside),
            "timecode": inside[0]["timecode"],
            "warp_error": float(np.mean(pairs)) if pairs else None,
            "cdc": metrics.cdc_from_histograms(histograms[start:stop]),
            "colorfulness": float(np.mean([r["colorfulness"] for r in inside])),
            "flagged_frames": sum(1 for r in inside if r["flagged"]),
            "confidence": float(np.mean(confidences)) if confidences else None,
        }
        if with_truth:
            truth_pairs = [r["ground_truth_warp_error"] for r in inside[1:] if r.get("ground_truth_warp_error") is not None]
            truth_mean = float(np.mean(truth_pairs)) if truth_pairs else None
            shot["psnr"] = float(np.mean([r["psnr"] for r in inside]))
            shot["ssim"] = float(np.mean([r["ssim"] for r in inside]))
            shot["ground_truth_warp_error"] = truth_mean
            shot["warp_ratio"] = (shot["warp_error"] / truth_mean
                                  if truth_mean and shot["warp_error"] is not None else None)
        shots.append(shot)
    return shots


def write_json(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the report as strict JSON (non-finite numbers become ``null``)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(json_safe(report), handle, indent=2, allow_nan=False)
        handle.write("\n")


def write_csv(report: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the per-frame rows: ``frame, timecode, warp_error, occluded, confidence, flagged[, psnr]``."""
    frames = report["frames"]
    columns = list(FRAME_COLUMNS) + (["psnr"] if frames and "psnr" in frames[0] else [])
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in frames:
            writer.writerow([_csv_cell(row.get(c)) for c in columns])


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON takes it: numpy scalars as Python ones, NaN and infinities as None,
    tuples as lists (the stats file and both reports write it)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return json_safe(value.item())
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _motion(flow: FlowEstimator, previous: np.ndarray, current: np.ndarray) -> FlowPair:
    """Source motion previous→current at a capped size, scaled back to full resolution."""
    h, w = previous.shape
    scale = min(1.0, FLOW_SHORT_SIDE / min(h, w))
    if scale >= 1.0:
        return forward_backward(flow, previous, current)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = forward_backward(
        flow,
        cv2.resize(previous, size, interpolation=cv2.INTER_AREA),
        cv2.resize(current, size, interpolation=cv2.INTER_AREA),
    )
    factors = np.array([w / size[0], h / size[1]], np.float32)
    forward = cv2.resize(small.forward, (w, h), interpolation=cv2.INTER_LINEAR) * factors
    backward = cv2.resize(small.backward, (w, h), interpolation=cv2.INTER_LINEAR) * factors
    return FlowPair(forward, backward, visible_mask(forward, backward))


@contextmanager
def _closing(frames: Iterator[np.ndarray] | None) -> Iterator[None]:
    """Close a frame generator (and so its file) even when the report stops early."""
    try:
        yield
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def _check_size(rgb: np.ndarray, shape: tuple[int, ...], what: str, path: Any, source_path: Any) -> None:
    if rgb.shape[:2] != shape:
        raise InputError(
            f"{what} {os.fspath(path)!r} is {rgb.shape[1]}x{rgb.shape[0]} but the source {os.fspath(source_path)!r} is "
            f"{shape[1]}x{shape[0]}: report on the output made from that source"
        )


def _check_lengths(count: int, src: Any, out: Any, truth: Any, with_truth: bool, output_path: Any,
                   source_path: Any, truth_path: Any) -> None:
    """All inputs must end together; name the one that is shorter."""
    ended = [name for name, item in (("source", src), ("output", out)) if item is None]
    if with_truth and truth is None:
        ended.append("ground truth")
    if len(ended) == (3 if with_truth else 2):
        return
    paths = {"source": source_path, "output": output_path, "ground truth": truth_path}
    shorter = ", ".join(f"{name} {os.fspath(paths[name])!r}" for name in ended)
    raise InputError(f"{shorter} ended after {count} frames while the other input(s) continue: report on matching videos")


def rgb_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """RGB frames (uint8, or uint16 for deeper sources) of a video or image sequence, in order."""
    text = os.fspath(path)
    if is_image_sequence(text):
        files = sequence_files(text)
        if not files:
            raise InputError(f"image sequence {text!r} has no frames")
        for file in files:
            image = read_rgb(file)
            if image is None:
                raise VideoOpenError(f"frame {file!r} cannot be read as an image: replace or remove it")
            yield image
        return
    if not os.path.isfile(text):
        raise InputError(f"{text!r} does not exist: check the path")
    try:
        container = av.open(text)
    except av.FFmpegError as exc:
        raise VideoOpenError(f"{text!r} is not a video FFmpeg can read ({exc}): check the file") from exc
    with container:
        if not container.streams.video:
            raise VideoOpenError(f"{text!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            deep = frame.format.components[0].bits > 8
            yield frame.to_ndarray(format="rgb48le" if deep else "rgb24")
