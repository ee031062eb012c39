"""The temporal-consistency report as one self-contained HTML page, for the colorist.

:func:`render_html` turns the dict of :func:`vidcolor.report.measure.build_report` into a page that opens
offline (plots and frames are embedded as ``data:`` images, no scripts, no network requests):
a summary of the run, a per-shot table with the three worst shots marked, plots over time, the
worst frames side by side (gray input | colorized | ground truth) and **keyframe suggestions**,
the frames where a new reference would help most, each with the ``--ref FRAME=IMAGE`` line to
paste (and the gray frame written beside the report, ready to paint).

Every number shown carries its exact JSON value in a ``data-value`` attribute (and the page embeds
the whole report as JSON), so the page and the JSON report cannot disagree.

How trouble is scored (per frame, 0 = fine; 1 unit each): warp error above the typical frame's
(with ground truth: above the truth's own warp error for the same motion) by one typical frame's
error; a frame the temporal check flagged; confidence :data:`CONFIDENCE_UNIT` below the clip's
median; with ground truth, PSNR :data:`PSNR_UNIT_DB` dB below the clip's median. Pairs across a
shot boundary compare unrelated pictures and score 0. Suggestions are stretches where the score's
running median over :data:`SMOOTH_WINDOW` frames (sustained trouble, not a one- or two-frame
glitch a reference would not fix) stays at or above :data:`SUGGEST_THRESHOLD`: one per
stretch, at the frame where it begins (a new reference colours from its frame on), ranked by the
stretch's total score; a shot that starts without a reference of its own is always suggested, and
ranked first, when the run's keyframes are known (from the preset or the run's stats).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..color import luma_to_gray_level
from ..errors import InputError, OutputError
from ..io.durable import write_png_or_fail, write_text_or_fail
from ..io.reader import VideoReader, probe

#: Trouble units: confidence this far below the clip's median counts one unit.
CONFIDENCE_UNIT = 0.2
#: Trouble units: PSNR this many dB below the clip's median (ground truth only) counts one unit.
PSNR_UNIT_DB = 3.0
#: Frames of the running median taken of the trouble score before stretches are found.
SMOOTH_WINDOW = 5
#: A stretch is where the averaged trouble stays at or above this.
SUGGEST_THRESHOLD = 0.5
#: A stretch beginning this few frames after its shot's start is the shot's own reference's fault.
SHOT_START_SLACK = 2
#: Why a shot start without its own reference is suggested.
UNCOVERED = "the shot starts without a reference of its own (colours carry over from the shot before)"
#: At most this many suggestions are listed.
MAX_SUGGESTIONS = 8
#: An existing keyframe image correlating less than this with the frame's gray is another picture.
MIN_KEYFRAME_LIKENESS = 0.5
#: Worst frames shown side by side.
WORST_FRAMES = 4
#: Longer clips get no per-frame table and no per-frame rows in the embedded JSON (the page would
#: grow by about 1 kB a frame; the JSON/CSV report has them).
MAX_FRAME_ROWS = 3000
#: Embedded frames are scaled to at most this width (keeps the page small).
THUMB_WIDTH = 320


@dataclass(frozen=True)
class ShotPlan:
    """Where the report's shots start and what is known about their references.

    ``keyframes`` is the set of frames the run had a reference for (None: unknown, e.g. a run
    without stats metadata and no preset); ``labels`` names shots by their first frame.
    """

    starts: tuple[int, ...] = (0,)
    origin: str = "one shot"
    labels: Mapping[int, str] = field(default_factory=dict)
    keyframes: frozenset[int] | None = None
    preset: str | None = None


def plan_shots(source_path: str | os.PathLike[str], preset_path: str | os.PathLike[str] | None = None, *,
               detect: bool | None = None, run: Mapping[str, Any] | None = None,
               scene_min_length: int | None = None) -> ShotPlan:
    """The report's shots: the preset's schedule (as ``colorize --preset`` builds it) when a preset
    is given, else PySceneDetect's cuts (``detect`` False: one shot; ``scene_min_length`` frames
    at least, default as ``vidcolor scenes``). ``run`` metadata from the stats file tells which
    frames had a reference."""
    info = probe(source_path)
    known = _run_keyframes(run)
    if preset_path is not None:
        from ..run.batch import preset_schedule  # noqa: PLC0415 - heavy-ish; only with a preset
        from ..schedule.presets import load_preset  # noqa: PLC0415

        preset = load_preset(preset_path, fps=info.fps, frame_count=info.frame_count)
        schedule = preset_schedule(preset, info, detect=detect)
        shots = preset.resolve(info.fps, info.frame_count)
        starts = sorted({0, *(int(s.start) for s in shots), *schedule.cuts})  # type: ignore[call-overload]
        labels: dict[int, str] = {}
        for shot in shots:
            what = shot.reference.name if shot.reference is not None else "no reference of its own"
            labels[int(shot.start)] = f"{shot.name}: {what}" if shot.name else what  # type: ignore[call-overload]
        keyframes = frozenset(k.frame for k in schedule.keyframes)
        if schedule.keyframes and schedule.keyframes[0].frame > 0:
            keyframes |= {0}  # frames before the first keyframe use its reference
        return ShotPlan(tuple(starts), "preset", labels, keyframes if known is None else known, os.fspath(preset_path))
    cuts: list[int] = []
    origin = "one shot"
    if detect is not False:
        try:
            from ..schedule.scenes import detect_cuts  # noqa: PLC0415

            extra = {"min_length": scene_min_length} if scene_min_length is not None else {}
            cuts = detect_cuts(source_path, info=info, **extra)
            origin = "scene cuts (PySceneDetect)"
        except InputError:
            if detect:
                raise
    labels = {}
    if run is not None:
        for keyframe in run.get("keyframes", []):
            labels[int(keyframe["frame"])] = Path(str(keyframe.get("reference", ""))).name
    return ShotPlan(tuple(sorted({0, *cuts})), origin, labels, known)


def _run_keyframes(run: Mapping[str, Any] | None) -> frozenset[int] | None:
    if not run or "keyframes" not in run:
        return None
    frames = {int(k["frame"]) for k in run["keyframes"]}
    # no keyframes: a no-reference run (automatic references per shot), nothing "uncovered"
    return frozenset(frames | {0}) if frames else None


# -- analysis ---------------------------------------------------------------------------------

def trouble_scores(report: Mapping[str, Any]) -> list[float]:
    """Per-frame trouble in units (see the module docstring); 0 means nothing to fix."""
    frames = report["frames"]
    starts = {s["start"] for s in report.get("shots", [])} or {frames[0]["frame"]}
    inside = [f for f in frames if f["warp_error"] is not None and f["frame"] not in starts]
    truth = [f.get("ground_truth_warp_error") for f in inside]
    with_truth = bool(inside) and all(t is not None for t in truth)
    base = float(np.median(truth if with_truth else [f["warp_error"] for f in inside])) if inside else 0.0
    confidences = [f["confidence"] for f in frames if f["confidence"] is not None]
    median_conf = float(np.median(confidences)) if confidences else None
    psnrs = [f["psnr"] for f in frames if f.get("psnr") is not None and math.isfinite(f["psnr"])]
    median_psnr = float(np.median(psnrs)) if psnrs else None
    scores = []
    for f in frames:
        score = 0.0
        if f["warp_error"] is not None and f["frame"] not in starts and base > 0:
            expected = f["ground_truth_warp_error"] if with_truth else base
            score += max(0.0, (f["warp_error"] - expected) / base)
        if f["flagged"]:
            score += 1.0
        if median_conf is not None and f["confidence"] is not None:
            score += max(0.0, median_conf - f["confidence"]) / CONFIDENCE_UNIT
        if median_psnr is not None and f.get("psnr") is not None and math.isfinite(f["psnr"]):
            score += max(0.0, median_psnr - f["psnr"]) / PSNR_UNIT_DB
        scores.append(score)
    return scores


def _shot_spans(report: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """(shot number, first row, row after last) for every shot of the report."""
    frames = report["frames"]
    position = {f["frame"]: i for i, f in enumerate(frames)}
    shots = report.get("shots") or [{"shot": 1, "start": frames[0]["frame"], "end": frames[-1]["frame"]}]
    return [(s["shot"], position[s["start"]], position[s["end"]] + 1) for s in shots]


def smoothed_scores(report: Mapping[str, Any], scores: Sequence[float] | None = None) -> list[float]:
    """Running median of the trouble over a centred :data:`SMOOTH_WINDOW`-frame window within each
    shot: a stretch must last about half the window to count."""
    raw = list(scores if scores is not None else trouble_scores(report))
    out = [0.0] * len(raw)
    half = SMOOTH_WINDOW // 2
    for _, first, stop in _shot_spans(report):
        for i in range(first, stop):
            window = raw[max(first, i - half): min(stop, i + half + 1)]
            out[i] = float(np.median(window))
    return out


def rank_shots(report: Mapping[str, Any], scores: Sequence[float] | None = None) -> list[int]:
    """Shot numbers, worst first: by mean trouble, then warp error."""
    raw = list(scores if scores is not None else trouble_scores(report))
    by_shot = {number: float(np.mean(raw[first:stop])) for number, first, stop in _shot_spans(report)}
    warp = {s["shot"]: s["warp_error"] or 0.0 for s in report.get("shots", [])}
    return sorted(by_shot, key=lambda n: (-by_shot[n], -warp.get(n, 0.0), n))


def suggest_keyframes(report: Mapping[str, Any], keyframes: Iterable[int] | None = None, *,
                      keyframe_dir: str = "keyframes", film: str = "film",
                      limit: int = MAX_SUGGESTIONS) -> list[dict[str, Any]]:
    """Frames where a new reference would help most, best first (see the module docstring).

    ``keyframes``: the frames the run had references for (None when unknown). Each suggestion
    holds ``frame``, ``timecode``, ``shot``, ``score``, ``stretch`` ([first, last] frame),
    ``reason``, ``image`` (where the gray frame goes, relative to the report) and ``ref_option``.
    ``film`` (:func:`~vidcolor.schedule.scenes.film_stem` of the source) starts the image names, as
    ``vidcolor scenes`` names its keyframes, so reports of several films can share one folder.
    """
    frames = report["frames"]
    raw = trouble_scores(report)
    smooth = smoothed_scores(report, raw)
    known = set(keyframes) if keyframes is not None else None
    candidates: dict[int, dict[str, Any]] = {}

    def add(row: int, first: int, last: int, score: float, shot: int, reason: str) -> None:
        frame = frames[row]["frame"]
        entry = candidates.get(frame)
        if entry is not None:
            entry["score"] += score
            if reason not in entry["reason"]:
                entry["reason"] += "; " + reason
            entry["stretch"] = [min(entry["stretch"][0], frames[first]["frame"]), max(entry["stretch"][1], frames[last]["frame"])]
            return
        candidates[frame] = {"frame": frame, "timecode": frames[row]["timecode"], "shot": shot, "score": score,
                             "stretch": [frames[first]["frame"], frames[last]["frame"]], "reason": reason}

    for number, first, stop in _shot_spans(report):
        i = first
        while i < stop:
            if smooth[i] < SUGGEST_THRESHOLD:
                i += 1
                continue
            j = i
            while j + 1 < stop and smooth[j + 1] >= SUGGEST_THRESHOLD:
                j += 1
            row = first if i - first <= SHOT_START_SLACK else i
            total = float(sum(smooth[i: j + 1]))
            flagged = sum(1 for f in frames[i: j + 1] if f["flagged"])
            what = f"trouble {max(smooth[i: j + 1]):.2f} at worst over frames {frames[i]['frame']}-{frames[j]['frame']}"
            what += f" ({j - i + 1} frames{f', {flagged} flagged' if flagged else ''})"
            if row == first:
                has_ref = known is None or frames[first]["frame"] in known
                what += "; from the shot's start: " + ("its reference fits poorly, repaint it" if has_ref else UNCOVERED)
            add(row, i, j, total, number, what)
            i = j + 1
        if known is not None and frames[first]["frame"] not in known:
            # A shot without its own reference: colours carry over from the previous shot.
            total = float(sum(raw[first:stop])) + 1.0
            add(first, first, stop - 1, total, number, UNCOVERED)
            candidates[frames[first]["frame"]]["uncovered"] = True

    ranked = sorted(candidates.values(), key=lambda c: (not c.pop("uncovered", False), -c["score"], c["frame"]))[:limit]
    for rank, entry in enumerate(ranked, 1):
        entry["rank"] = rank
        entry["image"] = f"{keyframe_dir}/{film}_f{entry['frame']:06d}.png"
        entry["ref_option"] = f"--ref {entry['frame']}={entry['image']}"
    return ranked


def worst_frames(report: Mapping[str, Any], scores: Sequence[float] | None = None,
                 count: int = WORST_FRAMES) -> list[int]:
    """Row positions of the worst frames (trouble, then warp error), at least 3 frames apart: first
    the worst frame of each of the three worst shots, then the worst of the rest."""
    frames = report["frames"]
    raw = list(scores if scores is not None else trouble_scores(report))
    order = sorted(range(len(frames)), key=lambda i: (-raw[i], -(frames[i]["warp_error"] or 0.0), i))
    spans = {number: (first, stop) for number, first, stop in _shot_spans(report)}
    leaders = []
    for number in rank_shots(report, raw)[:3]:
        first, stop = spans[number]
        leaders.append(next(i for i in order if first <= i < stop))
    chosen: list[int] = []
    for i in [*leaders, *order]:
        if all(abs(i - c) >= 3 for c in chosen):
            chosen.append(i)
        if len(chosen) == count:
            break
    return chosen


# -- frames and plots -------------------------------------------------------------------------

def _gray_frames(source_path: str | os.PathLike[str], wanted: set[int]) -> dict[int, np.ndarray]:
    """8-bit gray source frames at the wanted frame numbers (as ``vidcolor scenes`` writes them)."""
    info = probe(source_path)
    found: dict[int, np.ndarray] = {}
    if not wanted:
        return found
    with VideoReader(info) as reader:
        for frame in reader:
            if frame.index in wanted:
                found[frame.index] = np.clip(luma_to_gray_level(frame.luma, info.luma_format) * 255.0 + 0.5,
                                             0, 255).astype(np.uint8)
            if frame.index >= max(wanted):
                break
    return found


def _rgb_at(path: str | os.PathLike[str], positions: set[int]) -> dict[int, np.ndarray]:
    """8-bit RGB frames of a video or image sequence at the wanted positions (0-based, in order)."""
    from .metrics import to_u8_rgb  # noqa: PLC0415
    from .measure import rgb_frames  # noqa: PLC0415 - the report's own reader, so frames line up

    found: dict[int, np.ndarray] = {}
    if not positions:
        return found
    frames: Iterator[np.ndarray] = rgb_frames(path)
    try:
        for position, rgb in enumerate(frames):
            if position in positions:
                found[position] = to_u8_rgb(rgb)
            if position >= max(positions):
                break
    finally:
        frames.close()  # type: ignore[attr-defined]
    return found


def _data_uri(rgb_or_gray: np.ndarray, fmt: str = "jpeg", width: int | None = THUMB_WIDTH) -> str:
    image = rgb_or_gray
    if width is not None and image.shape[1] > width:
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 88]) if fmt == "jpeg" else (".png", [])
    ok, data = cv2.imencode(ext, image, params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise OutputError("an image for the HTML report could not be encoded")
    mime = "image/jpeg" if fmt == "jpeg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data.tobytes()).decode('ascii')}"


def _plots(report: Mapping[str, Any], raw: Sequence[float], smooth: Sequence[float],
           suggestions: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The plots over time as PNG data URIs: warp error, confidence and flags, PSNR, trouble."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - Agg, no display
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    frames = report["frames"]
    x = np.array([f["frame"] for f in frames])
    starts = [s["start"] for s in report.get("shots", [])][1:]
    flagged = x[[bool(f["flagged"]) for f in frames]]
    picks = [s["frame"] for s in suggestions]

    def nan(values: Iterable[Any]) -> np.ndarray:
        return np.array([np.nan if v is None or not math.isfinite(v) else v for v in values], dtype=np.float64)

    def figure(title: str, ylabel: str) -> tuple[Figure, Any]:
        fig = Figure(figsize=(10, 2.3), dpi=96, layout="constrained")
        axes = fig.add_subplot()
        axes.set_title(title, fontsize=10, loc="left")
        axes.set_ylabel(ylabel, fontsize=9)
        axes.set_xlim(x[0] - 0.5, x[-1] + 0.5)
        axes.grid(alpha=0.25)
        axes.tick_params(labelsize=8)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        for start in starts:
            axes.axvline(start - 0.5, color="0.35", linestyle="--", linewidth=1)
        for frame in flagged:
            axes.axvspan(frame - 0.5, frame + 0.5, color="tab:red", alpha=0.18, linewidth=0)
        return fig, axes

    def encode(fig: Figure) -> str:
        buffer = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buffer)
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    starts_set = {s["start"] for s in report.get("shots", [])}
    plots = []
    fig, axes = figure("Warp error per frame (pair previous→this; cuts left out; red: flagged frames)", "warp error")
    warp = nan(None if f["frame"] in starts_set else f["warp_error"] for f in frames)
    axes.plot(x, warp, color="tab:blue", linewidth=1.4, marker=".", label="colorized")
    if any(f.get("ground_truth_warp_error") is not None for f in frames):
        truth = nan(None if f["frame"] in starts_set else f.get("ground_truth_warp_error") for f in frames)
        axes.plot(x, truth, color="0.4", linewidth=1, linestyle=":", label="ground truth (same motion)")
    axes.legend(fontsize=8, loc="upper right")
    plots.append({"id": "plot-warp", "title": "Warp error", "src": encode(fig)})

    fig, axes = figure("Confidence of the colorizer (red: frames the temporal check flagged)", "confidence")
    confidence = nan(f["confidence"] for f in frames)
    if np.isfinite(confidence).any():
        axes.plot(x, confidence, color="tab:green", linewidth=1.4, marker=".")
        axes.set_ylim(-0.02, 1.02)
    else:
        axes.text(0.5, 0.5, "no confidence recorded: colorize with --stats", ha="center", va="center",
                  transform=axes.transAxes, fontsize=10, color="0.3")
    plots.append({"id": "plot-confidence", "title": "Confidence and flags", "src": encode(fig)})

    if any("psnr" in f for f in frames):
        fig, axes = figure("PSNR against the ground truth", "PSNR (dB)")
        axes.plot(x, nan(f.get("psnr") for f in frames), color="tab:purple", linewidth=1.4, marker=".")
        plots.append({"id": "plot-psnr", "title": "PSNR", "src": encode(fig)})

    fig, axes = figure(f"Trouble score (dots: per frame; line: running median of {SMOOTH_WINDOW}) and suggested keyframes (green)", "trouble")
    axes.plot(x, raw, color="tab:orange", linestyle="none", marker=".", alpha=0.7)
    axes.plot(x, smooth, color="tab:orange", linewidth=1.6)
    axes.axhline(SUGGEST_THRESHOLD, color="tab:orange", linestyle=":", linewidth=1)
    for frame in picks:
        axes.axvline(frame, color="tab:green", linewidth=2, alpha=0.8)
    plots.append({"id": "plot-trouble", "title": "Trouble and suggestions", "src": encode(fig)})
    return plots


# -- rendering --------------------------------------------------------------------------------

#: The page's Jinja2 template, a file of this package (autoescaped HTML, no scripts but the JSON copy).
TEMPLATE_NAME = "template.html.j2"


def _template() -> str:
    return resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return format(value, spec)


def _cell(key: str, value: Any, spec: str) -> Any:
    from markupsafe import Markup, escape  # noqa: PLC0415 - ships with Jinja2

    exact = json.dumps(value, allow_nan=False)
    return Markup(f'<td data-key="{escape(key)}" data-value="{escape(exact)}">{escape(_fmt(value, spec))}</td>')


def render_html(
    report: Mapping[str, Any],
    output_path: str | os.PathLike[str],
    *,
    source_path: str | os.PathLike[str],
    colorized_path: str | os.PathLike[str],
    ground_truth_path: str | os.PathLike[str] | None = None,
    plan: ShotPlan | None = None,
    suggestions: Sequence[Mapping[str, Any]] | None = None,
    write_keyframes: bool = True,
    title: str | None = None,
) -> Path:
    """Write the report as one self-contained HTML file at ``output_path``; returns its path.

    ``report`` is :func:`~vidcolor.report.measure.build_report`'s dict (with ``shots`` as ``plan`` gave
    them); frames for the strips are read again from ``source_path``, ``colorized_path`` and
    ``ground_truth_path``. ``suggestions`` default to :func:`suggest_keyframes`; with
    ``write_keyframes`` each suggested gray frame is written as a PNG under ``keyframes/`` beside
    the page (never over an existing file, which may already be painted). An existing file that is
    not this frame (another size or picture: another film's) is refused with
    :class:`KeyframeImageConflict` before anything is written; without ``write_keyframes`` nothing
    would be written, so the page is written and marks that suggestion's image name as taken instead.
    """
    from jinja2 import Environment, StrictUndefined  # noqa: PLC0415 - optional dependency of the HTML report

    from .measure import json_safe  # noqa: PLC0415

    target = Path(output_path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"HTML report {os.fspath(target)!r} should end in .html: give e.g. -o report.html")
    plan = plan or ShotPlan()
    data: dict[str, Any] = json_safe(dict(report))
    if suggestions is None:
        suggestions = suggest_keyframes(data, plan.keyframes, film=_film_stem(source_path))
    data["suggestions"] = json_safe([dict(s) for s in suggestions])
    frames = data["frames"]
    raw = trouble_scores(data)
    smooth = smoothed_scores(data, raw)
    ranking = rank_shots(data, raw)
    spans = {number: (first, stop) for number, first, stop in _shot_spans(data)}
    shots = []
    for shot in data.get("shots", []):
        first, stop = spans[shot["shot"]]
        shots.append({**shot, "trouble": float(np.mean(raw[first:stop])), "rank": ranking.index(shot["shot"]) + 1,
                      "label": plan.labels.get(shot["start"], "")})
    worst_shots = sorted(shots, key=lambda s: s["rank"])[:3]
    shot_of = {f["frame"]: number for number, (first, stop) in spans.items() for f in frames[first:stop]}

    worst_rows = worst_frames(data, raw)
    wanted = {frames[i]["frame"] for i in worst_rows} | {s["frame"] for s in data["suggestions"]}
    position_of = {f["frame"]: i for i, f in enumerate(frames)}
    grays = _gray_frames(source_path, wanted)
    outputs = _rgb_at(colorized_path, {position_of[f] for f in wanted})
    truths = _rgb_at(ground_truth_path, {position_of[f] for f in wanted}) if ground_truth_path is not None else {}
    worst = []
    for i in worst_rows:
        f = frames[i]
        if f["frame"] not in grays or i not in outputs:
            continue
        worst.append({"frame": f["frame"], "timecode": f["timecode"], "shot": shot_of.get(f["frame"]), "trouble": raw[i],
                      "warp_error": f["warp_error"], "psnr": f.get("psnr"), "gray": _data_uri(grays[f["frame"]]),
                      "output": _data_uri(outputs[i]), "truth": _data_uri(truths[i]) if i in truths else None})

    taken = {s["frame"]: problem for s in data["suggestions"] if s["frame"] in grays
             if (problem := _existing_keyframe_problem(target.parent / s["image"], grays[s["frame"]])) is not None}
    if write_keyframes and taken:
        frame, problem = next(iter(taken.items()))
        image = target.parent / next(s["image"] for s in data["suggestions"] if s["frame"] == frame)
        raise KeyframeImageConflict(f"keyframe image {os.fspath(image)!r} exists but is not frame {frame} of "
                                    f"{os.fspath(source_path)!r} ({problem}; another film's?): move it away, or write "
                                    "the report into another folder")
    images_written = False
    rows = []
    for s in data["suggestions"]:
        gray = grays.get(s["frame"])
        if write_keyframes and gray is not None:
            _write_keyframe(target.parent / s["image"], gray)
            images_written = True
        rows.append({**s, "thumb": _data_uri(gray, width=160) if gray is not None else None,
                     "taken": taken.get(s["frame"])})

    run = data.get("run") or {}
    summary = data["summary"]
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.globals.update(cell=_cell, fmt=_fmt)
    page = env.from_string(_template()).render(
        title=title or f"Colour report: {_clip_name(colorized_path)}",
        created=None,
        source=os.fspath(source_path), output=os.fspath(colorized_path),
        ground_truth=os.fspath(ground_truth_path) if ground_truth_path is not None else None,
        model=_model_text(run), settings=_settings_text(run), speed=_speed_text(run, summary),
        plan=plan, summary=summary, shots=shots, worst_shots=worst_shots, suggestions=rows,
        images_written=images_written, plots=_plots(data, raw, smooth, data["suggestions"]), worst=worst,
        frames=frames, trouble=raw, with_truth="psnr" in summary,
        confidence_unit=CONFIDENCE_UNIT, psnr_unit=PSNR_UNIT_DB, window=SMOOTH_WINDOW, threshold=SUGGEST_THRESHOLD,
        frame_rows=len(frames) <= MAX_FRAME_ROWS,
        report_json=_script_json(data if len(frames) <= MAX_FRAME_ROWS else
                                 {**{k: v for k, v in data.items() if k != "frames"}, "frames_omitted": len(frames)}),
    )
    write_text_or_fail(target, page, "HTML report", "choose another path")
    return target


def _script_json(data: Any) -> Any:
    """JSON to embed in a ``<script>`` element verbatim (no HTML escaping applies there), with
    ``<``, ``>`` and ``&`` as JSON escapes so no text can end the element."""
    from markupsafe import Markup  # noqa: PLC0415

    text = json.dumps(data, allow_nan=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _clip_name(path: str | os.PathLike[str]) -> str:
    """``film.mkv`` for a file, ``out`` for a folder or ``out/%06d.png`` pattern."""
    item = Path(os.fspath(path).rstrip("/\\"))
    return item.parent.name or os.fspath(path) if "%" in item.name else item.name


def _film_stem(source_path: str | os.PathLike[str]) -> str:
    from ..schedule.scenes import film_stem  # noqa: PLC0415 - scenes loads PySceneDetect's helpers

    return film_stem(source_path)


class KeyframeImageConflict(OutputError):
    """A suggested keyframe image's name is taken by a picture that is not that frame."""


def _existing_keyframe_problem(path: Path, gray: np.ndarray) -> str | None:
    """Why an existing keyframe image is not ``gray``'s frame (an earlier report of another film
    into this folder), or None: the page would tell the user to colour this film from it. A painted
    copy of the frame keeps its size and its picture's light and shade, so it passes."""
    if not path.exists():
        return None
    image = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        problem = "it cannot be read as an image"
    elif image.shape != gray.shape:
        problem = f"it is {image.shape[1]}x{image.shape[0]}, the frame {gray.shape[1]}x{gray.shape[0]}"
    else:
        likeness = _picture_likeness(image, gray)
        problem = None if likeness >= MIN_KEYFRAME_LIKENESS else f"its picture is not the frame's (correlation {likeness:.2f})"
    return problem


def _picture_likeness(image: np.ndarray, gray: np.ndarray) -> float:
    """Correlation of two same-size gray pictures; 1.0 when the frame is flat (nothing to compare)."""
    a = image.astype(np.float64).ravel()
    b = gray.astype(np.float64).ravel()
    if b.std() < 1.0:
        return 1.0
    if a.std() < 1.0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _write_keyframe(path: Path, gray: np.ndarray) -> None:
    """The gray frame as an RGB PNG to paint; an existing file (maybe painted) is kept."""
    if path.exists():
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"keyframe folder {os.fspath(path.parent)!r} cannot be created ({exc.strerror})") from exc
    write_png_or_fail(path, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def _model_text(run: Mapping[str, Any]) -> str:
    if not run:
        return "unknown (colorize with --stats to record it)"
    colorizer = run.get("colorizer") or {}
    inner = colorizer.get("inner") if isinstance(colorizer, Mapping) else None
    name = run.get("model") or colorizer.get("model", "unknown")
    return f"{name}" + (f" (vidcolor {run['vidcolor']})" if run.get("vidcolor") else "") + (
        f", {inner.get('model')}" if isinstance(inner, Mapping) and inner.get("model") not in (None, name) else "")


def _settings_text(run: Mapping[str, Any]) -> str:
    if not run:
        return "unknown"
    parts = []
    if run.get("working_size"):
        parts.append("working size {}x{}".format(*run["working_size"]))
    colorizer = run.get("colorizer") or {}
    if isinstance(colorizer, Mapping) and "temporal" in colorizer:
        parts.append(f"temporal check on (flow {colorizer.get('flow', '?')})")
    if run.get("keyframes") is not None:
        parts.append(f"{len(run['keyframes'])} reference keyframe(s) at frame(s) "
                     + ", ".join(str(k["frame"]) for k in run["keyframes"]))
    for key, value in (run.get("settings") or {}).items():
        parts.append(f"{key} {value}")
    return "; ".join(parts) or "defaults"


def _speed_text(run: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    if run.get("seconds"):
        resumed = f" (and {run['resumed_frames']} resumed from an earlier run)" if run.get("resumed_frames") else ""
        return f"{run['frames']} frames in {run['seconds']:.1f} s ({run['fps']:.2f} fps){resumed}"
    return "unknown (the run's stats carry no timing)"


def measure_with_shots(
    colorized_path: str | os.PathLike[str],
    source_path: str | os.PathLike[str],
    ground_truth_path: str | os.PathLike[str] | None = None,
    *,
    preset_path: str | os.PathLike[str] | None = None,
    run_stats: str | os.PathLike[str] | None = None,
    detect: bool | None = None,
    scene_min_length: int | None = None,
) -> tuple[dict[str, Any], ShotPlan]:
    """:func:`~vidcolor.report.measure.build_report` over the shots of :func:`plan_shots`, with
    ``suggestions`` added: the dict to write as JSON and to render, and the plan behind it."""
    from .measure import build_report, read_run_metadata, run_stats_path  # noqa: PLC0415

    stats_file = Path(run_stats) if run_stats is not None else run_stats_path(colorized_path)
    run = read_run_metadata(stats_file) if stats_file.is_file() else None
    plan = plan_shots(source_path, preset_path, detect=detect, run=run, scene_min_length=scene_min_length)
    result = build_report(colorized_path, source_path, ground_truth_path, run_stats=run_stats, shot_starts=plan.starts)
    result["suggestions"] = suggest_keyframes(result, plan.keyframes, film=_film_stem(source_path))
    return result, plan


def write_html_report(
    colorized_path: str | os.PathLike[str],
    source_path: str | os.PathLike[str],
    html_path: str | os.PathLike[str],
    *,
    ground_truth_path: str | os.PathLike[str] | None = None,
    preset_path: str | os.PathLike[str] | None = None,
    run_stats: str | os.PathLike[str] | None = None,
    detect: bool | None = None,
    write_keyframes: bool = True,
    on_taken: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure, plan shots, suggest keyframes and write the HTML page in one call (what
    ``vidcolor colorize --report`` does after the run). Returns the report dict with
    ``suggestions``; :func:`vidcolor.report.measure.write_json` of it holds the page's numbers.
    With ``on_taken``, a :class:`KeyframeImageConflict` goes to it and the page is written without
    keyframe images, so a finished colorization does not end in an error over a suggestion."""
    result, plan = measure_with_shots(colorized_path, source_path, ground_truth_path, preset_path=preset_path,
                                      run_stats=run_stats, detect=detect)

    def render(images: bool) -> None:
        render_html(result, html_path, source_path=source_path, colorized_path=colorized_path,
                    ground_truth_path=ground_truth_path, plan=plan, suggestions=result["suggestions"],
                    write_keyframes=images)

    try:
        render(write_keyframes)
    except KeyframeImageConflict as exc:
        if on_taken is None:
            raise
        on_taken(str(exc))
        render(False)
    return result


__all__ = [
    "ShotPlan", "plan_shots", "trouble_scores", "smoothed_scores", "rank_shots", "suggest_keyframes", "worst_frames",
    "render_html", "write_html_report", "KeyframeImageConflict"
]
