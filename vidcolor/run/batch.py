"""Batch remastering: every film in a folder, resumable, one failure never stopping the rest.

:func:`plan_batch` finds the inputs (video files by extension, folders of frames), picks up a
preset named like each film (``reel1.toml`` beside ``reel1.mov``; ``--preset``/``--ref`` are the
fallback) and names the outputs. :func:`run_batch` runs a ``run_one(job)`` callable per job,
locally or on a Ray cluster, recording every job in a journal in the output folder
(:class:`Journal`, JSON rewritten atomically). A rerun skips finished files whose input, preset,
references and settings are unchanged, reruns an interrupted one (the pipeline resumes it), and
does not retry a file that failed with the same inputs unless asked: the failure would repeat.

:func:`colorize_job` is the ``run_one`` that colorizes a job with :func:`vidcolor.run.pipeline.colorize_video`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..io.durable import DamagedJournal, JournalFile
from ..errors import InputError, OutputError, VidcolorError
from ..schedule.presets import Preset, load_preset
from ..io.reader import IMAGE_EXTENSIONS, VideoInfo, natural_key, sequence_files
from .resume import input_identity
from ..schedule.keyframes import Keyframe, ReferenceSchedule
from .settings import SETTING_NAMES

logger = logging.getLogger(__name__)

JOURNAL_NAME = "vidcolor-batch.json"
LOCK_NAME = ".vidcolor-batch.lock"
JOURNAL_VERSION = 1
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".mxf", ".webm", ".mpg", ".mpeg", ".m2v", ".ts", ".m2ts", ".mts",
    ".wmv", ".flv", ".ogv", ".dv", ".y4m", ".nut", ".3gp", ".vob",
})
DONE, FAILED, IN_PROGRESS = "done", "failed", "in-progress"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True, init=False)
class BatchOptions:
    """What applies to every file of a batch: the fallback ``preset`` or reference ``ref`` for films
    without their own preset, whether outputs this batch did not write may be replaced, and the
    run settings given (keywords named as :class:`vidcolor.run.settings.RunSettings`'s fields), which
    win over each film's preset; a setting not given (None) is the preset's, else vidcolor's default."""

    preset: str | None
    ref: str | None
    overwrite: bool
    #: the settings given, as sorted (name, value) pairs: hashable and picklable for Ray
    given: tuple[tuple[str, Any], ...]

    def __init__(self, preset: str | None = None, ref: str | None = None, *, overwrite: bool = False,
                 **settings: Any) -> None:
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}: the settings are {', '.join(SETTING_NAMES)}")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "ref", ref)
        object.__setattr__(self, "overwrite", overwrite)
        object.__setattr__(self, "given", tuple(sorted((k, v) for k, v in settings.items() if v is not None)))

    @property
    def settings(self) -> dict[str, Any]:
        """The settings given, by name."""
        return dict(self.given)


@dataclass(frozen=True)
class Job:
    """One input of a batch and everything needed to colorize it (picklable, for Ray)."""

    name: str
    input: str
    output: str
    options: BatchOptions
    preset: str | None = None
    ref: str | None = None
    signature: str = ""
    input_size: int = 0
    input_mtime_ns: int = 0
    problem: str | None = None
    overwrite: bool = False


@dataclass(frozen=True)
class JobResult:
    """How a job ended. ``earlier`` marks a job this run skipped, reporting the journal's outcome."""

    job: Job
    status: str
    message: str = ""
    frames: int | None = None
    seconds: float = 0.0
    earlier: bool = False
    #: Of ``frames`` (the output's), those an interrupted earlier run had finished.
    resumed: int = 0

    @property
    def ok(self) -> bool:
        return self.status == DONE


# -- discovery and planning ------------------------------------------------------------------
def is_frame_folder(path: Path) -> bool:
    """A folder holding at least one image file is an image sequence."""
    try:
        with os.scandir(path) as entries:
            return any(e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS and not e.name.startswith(".")
                       for e in entries)
    except OSError:
        return False


def discover_inputs(in_dir: str | os.PathLike[str], *, exclude: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Videos (by extension) and folders of frames directly inside ``in_dir``, in natural order.

    Hidden entries and the folders in ``exclude`` (the output folder) are skipped; other files
    (presets, loose reference images, notes) are ignored.
    """
    folder = Path(in_dir)
    if not folder.is_dir():
        raise InputError(f"input folder {str(folder)!r} does not exist or is not a folder: give the folder holding the films")
    skipped = {os.path.realpath(p) for p in exclude}
    found = []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith(".") or os.path.realpath(entry) in skipped:
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
            found.append(entry)
        elif entry.is_dir() and is_frame_folder(entry):
            found.append(entry)
    return found


def find_preset(input_path: Path, in_dir: Path) -> Path | None:
    """The preset named like the film: ``<stem>.toml`` beside it or in ``in_dir``."""
    stem = input_path.name if input_path.is_dir() else input_path.stem
    for folder in (input_path.parent, in_dir):
        candidate = folder / f"{stem}.toml"
        if candidate.is_file():
            return candidate
    return None


def input_signature(path: Path) -> tuple[int, int]:
    """(size in bytes, newest mtime in ns) of a file, or of all frames of a folder."""
    if path.is_dir():
        size = newest = 0
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    stat = entry.stat()
                    size += stat.st_size
                    newest = max(newest, stat.st_mtime_ns)
        return size, newest
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _file_stamp(path: Path | str | None) -> list[object] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return [os.fspath(path), None]
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _output_name(input_path: Path, codec_name: str, taken: set[str]) -> str:
    from ..io.writer import CODECS  # noqa: PLC0415

    codec = CODECS[codec_name]
    stem = input_path.name if input_path.is_dir() else input_path.stem
    name = stem if codec.image_sequence else stem + codec.extension
    if name in taken:  # reel1.mov and reel1.mp4 side by side
        source = input_path.suffix.lstrip(".") or "frames"
        name = f"{stem}_{source}" if codec.image_sequence else f"{stem}_{source}{codec.extension}"
    taken.add(name)
    return name


def plan_batch(in_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
               options: BatchOptions = BatchOptions()) -> list[Job]:
    """One :class:`Job` per input. A job whose preset is broken carries the error in ``problem``
    (it fails alone when the batch runs); problems that concern the whole batch raise."""
    source, target = Path(in_dir), Path(out_dir)
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise OutputError(f"output folder {str(target)!r} is the input folder: choose another one "
                          "(outputs would be taken for films on the next run)")
    if target.exists() and not target.is_dir():
        raise OutputError(f"output folder {str(target)!r} is a file: choose a folder")
    if options.ref is not None and not Path(options.ref).is_file():
        raise InputError(f"reference image {options.ref!r} does not exist: check the path given to --ref")
    fallback: Preset | None = None
    if options.preset is not None:
        fallback = load_preset(options.preset)  # a bad fallback preset concerns every file: fail now
    inputs = discover_inputs(source, exclude=[target])
    own: dict[Path, tuple[Path | None, Preset | None, str | None]] = {}
    for path in inputs:
        preset_path = find_preset(path, source)
        try:
            own[path] = (preset_path, load_preset(preset_path) if preset_path else None, None)
        except VidcolorError as exc:
            own[path] = (preset_path, None, str(exc))
    # folders of reference or keyframe images look like frame folders: they are not films
    used = [Path(options.ref)] if options.ref else []
    for preset in [fallback, *(p for _, p, _ in own.values())]:
        if preset is not None:
            used += [p for s in preset.shots for p in (s.reference, s.end_reference) if p is not None]
    reference_folders = {os.path.realpath(p.parent) for p in used}
    jobs: list[Job] = []
    taken: set[str] = set()
    for path in inputs:
        if path.is_dir() and os.path.realpath(path) in reference_folders:
            continue
        name = path.name
        preset_path, preset, problem = own[path]
        if preset_path is None and fallback is not None:
            preset, preset_path = fallback, Path(options.preset)  # type: ignore[arg-type]
        ref = options.ref if preset_path is None else None
        codec = options.settings.get("codec") or (preset.codec if preset is not None else None) or (
            "png" if path.is_dir() else "h264")
        output = target / _output_name(path, codec, taken)
        size, mtime = input_signature(path)
        identity = input_identity(str(path), sequence_files(path) if path.is_dir() else ())  # every frame's size, mtime
        references = []
        if preset is not None:
            for shot in preset.shots:
                references += [_file_stamp(shot.reference), _file_stamp(shot.end_reference)]
        # the settings given, but not where they run (device, threads): a rerun on a GPU need not redo a film
        settings = {k: v for k, v in options.given if k not in ("device", "threads")}
        payload = json.dumps([identity, _file_stamp(preset_path), references,
                              _file_stamp(ref), settings, os.path.abspath(output)], sort_keys=True, default=str)
        jobs.append(Job(name, str(path), str(output), options, str(preset_path) if preset_path else None, ref,
                        hashlib.sha256(payload.encode()).hexdigest()[:20], size, mtime, problem))
    return jobs


# -- the journal -----------------------------------------------------------------------------
class Journal:
    """Per-file status of a batch in ``OUT_DIR/vidcolor-batch.json``, rewritten atomically and durably by
    :class:`vidcolor.io.durable.JournalFile`, the journal format of resumable runs too.

    Use as a context manager: it holds a lock so two batches cannot write one folder at once.
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.folder = Path(out_dir)
        self.path = self.folder / JOURNAL_NAME
        self._book = JournalFile(self.path, JOURNAL_VERSION)
        self._lock: Any = None
        try:
            data = self._book.load() or {"files": {}}
            if not isinstance(data.get("files"), dict):
                raise DamagedJournal("unknown layout")
        except DamagedJournal as exc:  # asking loses nothing: every finished output stays where it is
            raise OutputError(f"batch journal {str(self.path)!r} cannot be read ({exc}): delete it to start the batch "
                              "over (finished outputs are then redone), or choose another output folder") from None
        self.files: dict[str, dict[str, Any]] = data["files"]

    def __enter__(self) -> Journal:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.folder / LOCK_NAME, "a+b")  # noqa: SIM115 - held for the batch's lifetime
        except OSError as exc:
            raise OutputError(f"output folder {str(self.folder)!r} cannot be written ({exc.strerror}): "
                              "choose another one") from exc
        try:
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows: no lock
            pass
        except OSError:
            self._lock.close()
            raise OutputError(f"another vidcolor batch is writing into {str(self.folder)!r}: wait for it to finish, "
                              "or choose another output folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def entry(self, job: Job) -> dict[str, Any] | None:
        return self.files.get(job.name)

    def previous(self, job: Job, *, retry_failed: bool = False) -> JobResult | None:
        """The journal's result when ``job`` need not run again, else None."""
        entry = self.entry(job)
        if entry is None or entry.get("signature") != job.signature:
            return None
        status = entry.get("status")
        if status == DONE and _output_exists(job.output):
            return JobResult(job, DONE, entry.get("message", ""), entry.get("frames"), entry.get("seconds", 0.0), earlier=True,
                             resumed=int(entry.get("resumed") or 0))
        if status == FAILED and not retry_failed:
            return JobResult(job, FAILED, entry.get("message", ""), None, entry.get("seconds", 0.0), earlier=True)
        return None

    def record(self, job: Job, status: str, *, message: str = "", frames: int | None = None, seconds: float = 0.0,
               resumed: int = 0) -> None:
        previous = self.files.get(job.name, {})
        self.files[job.name] = {
            "status": status,
            "input": os.path.abspath(job.input),
            "output": os.path.abspath(job.output),
            "preset": os.path.abspath(job.preset) if job.preset else None,
            "reference": os.path.abspath(job.ref) if job.ref else None,
            "input_size": job.input_size,
            "input_mtime_ns": job.input_mtime_ns,
            "signature": job.signature,
            "frames": frames,
            "resumed": resumed,
            "seconds": round(seconds, 3),
            "message": message,
            "attempts": previous.get("attempts", 0) + (1 if status == IN_PROGRESS else 0),
            "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        self.save()

    def save(self) -> None:
        """Rewrite the journal atomically and durably."""
        self._book.save({"files": self.files})


def _output_exists(path: str) -> bool:
    return os.path.isfile(path) or (os.path.isdir(path) and any(os.scandir(path)))


# -- running ---------------------------------------------------------------------------------
def one_line(exc: BaseException) -> str:
    """A failure as one line: vidcolor's own messages as they are, anything else with its type."""
    text = str(exc) if isinstance(exc, VidcolorError) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


def _count_of(value: object, key: str) -> int | None:
    count = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
    return int(count) if isinstance(count, int) else None


#: How a job ended: ok, the output's frames, the failure message, seconds, frames resumed from an earlier run.
Outcome = tuple[bool, int | None, str, float, int]


def _attempt(run_one: Callable[[Job], object], job: Job) -> Outcome:
    """Run one job, turning any exception into a message (also what a Ray worker executes)."""
    started = time.perf_counter()
    if job.problem is not None:
        return False, None, job.problem, 0.0, 0
    try:
        value = run_one(job)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
        logger.debug("%s failed", job.name, exc_info=True)
        return False, None, one_line(exc), time.perf_counter() - started, 0
    return True, _count_of(value, "frames"), "", time.perf_counter() - started, _count_of(value, "resumed") or 0


def run_batch(jobs: Sequence[Job], run_one: Callable[[Job], object], *, journal: Journal | None = None,
              executor: str = "local", address: str | None = None, num_cpus: int | None = None,
              retry_failed: bool = False, on_start: Callable[[Job], None] | None = None,
              on_result: Callable[[JobResult], None] | None = None) -> list[JobResult]:
    """Run ``run_one(job)`` for every job that is not already finished; results in job order.

    A job that raises is recorded as failed with a one-line message and the others go on;
    ``KeyboardInterrupt`` stops the batch, leaving the current job "in-progress" so the next
    run resumes it. ``executor="ray"`` sends jobs to a Ray cluster (``address``; a local one
    with ``num_cpus`` CPUs when None); ``run_one`` must then be importable or picklable.
    """
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    results: dict[int, JobResult] = {}
    pending: list[int] = []
    for index, job in enumerate(jobs):
        earlier = journal.previous(job, retry_failed=retry_failed) if journal is not None else None
        if earlier is not None:
            results[index] = earlier
            if on_result is not None:
                on_result(earlier)
        else:
            pending.append(index)

    def finish(index: int, outcome: Outcome) -> None:
        ok, frames, message, seconds, resumed = outcome
        result = JobResult(jobs[index], DONE if ok else FAILED, message, frames, seconds, resumed=resumed)
        if journal is not None:
            journal.record(jobs[index], result.status, message=message, frames=frames, seconds=seconds, resumed=resumed)
        results[index] = result
        if on_result is not None:
            on_result(result)

    def begin(index: int) -> None:
        if journal is not None:
            journal.record(jobs[index], IN_PROGRESS)
        if on_start is not None:
            on_start(jobs[index])

    if executor == "local":
        for index in pending:
            job = _with_overwrite(jobs[index], journal)  # before begin() records the job in progress
            begin(index)
            finish(index, _attempt(run_one, job))
    elif pending:
        _run_on_ray(jobs, pending, run_one, journal, address, num_cpus, begin, finish)
    return [results[i] for i in range(len(jobs))]


def _with_overwrite(job: Job, journal: Journal | None) -> Job:
    """A job may replace its output when an earlier run of this batch wrote it (its entry is done)."""
    known = journal is not None and (journal.entry(job) or {}).get("status") == DONE
    if known or job.options.overwrite:
        return replace(job, overwrite=True)
    return job


def _run_on_ray(jobs: Sequence[Job], pending: list[int], run_one: Callable[[Job], object], journal: Journal | None,
                address: str | None, num_cpus: int | None, begin: Callable[[int], None],
                finish: Callable[[int, Outcome], None]) -> None:
    from .distributed import ray_session  # noqa: PLC0415

    with ray_session(address, num_cpus) as ray:
        remote = ray.remote(num_cpus=1, max_retries=0)(_attempt)
        refs: dict[Any, int] = {}
        for index in pending:
            job = _with_overwrite(jobs[index], journal)
            begin(index)
            refs[remote.remote(run_one, job)] = index
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a crashed worker fails its file only
                    outcome = (False, None, f"Ray worker failed: {one_line(exc).splitlines()[0]}", 0.0, 0)
                finish(refs[ref], outcome)


# -- the real job: colorize one film ---------------------------------------------------------
def preset_schedule(preset: Preset, info: VideoInfo, *, detect: bool | None = None,
                    on_frame: Callable[[int], None] | None = None) -> ReferenceSchedule:
    """The schedule of ``preset`` on the clip ``info``, with PySceneDetect cuts added when the
    preset's ``[scenes] detect`` (or ``detect``, which overrides it) asks for them
    (:func:`vidcolor.run.prepare.build_schedule`)."""
    from .prepare import build_schedule  # noqa: PLC0415
    from .settings import resolve_settings  # noqa: PLC0415

    settings = resolve_settings({"detect_scenes": detect}, preset)
    return build_schedule(info, settings, preset=preset, on_frame=on_frame)[0]


def colorize_job(job: Job, *, on_start: Callable[[VideoInfo], None] | None = None,
                 on_frame: Callable[[Any], None] | None = None,
                 on_resume: Callable[[int], None] | None = None) -> dict[str, object]:
    """Colorize one batch job (the ``run_one`` of ``vidcolor batch``): its preset or --ref image,
    settings resolved once (given option > preset > default), resuming unless frames go to a folder."""
    from ..io.reader import probe  # noqa: PLC0415
    from ..references import load_reference  # noqa: PLC0415
    from .prepare import colorize_file  # noqa: PLC0415 - keeps planning free of model imports
    from .settings import resolve_settings  # noqa: PLC0415

    info = probe(job.input)
    preset = load_preset(job.preset, fps=info.fps, frame_count=info.frame_count) if job.preset is not None else None
    settings = resolve_settings(job.options.settings, preset)
    spec = settings.output_spec(job.output)
    keyframes = [Keyframe(0, load_reference(job.ref))] if job.ref is not None and preset is None else []
    # resume unless frames go to a folder (rewritten whole); the job's signature covers preset,
    # reference files (a repaint), options and every input frame: a changed one must not resume from
    # old chunks; the batch has decided to redo the film, so such chunks are restarted, not refused
    run = colorize_file(job.input, spec, settings, info=info, preset=preset, keyframes=keyframes,
                        overwrite=job.overwrite, resume=not spec.is_sequence, restart_on_change=True,
                        signature={"batch_job": job.signature}, on_start=on_start, on_frame=on_frame,
                        on_resume=on_resume)
    return {"frames": run.summary.output_frames, "resumed": run.summary.resumed_frames, "seconds": run.summary.seconds,
            "model": run.summary.model}


# -- the summary -----------------------------------------------------------------------------
SUMMARY_HEADER = ("file", "status", "frames", "time", "output / problem")


def summary_rows(results: Sequence[JobResult]) -> list[tuple[str, str, str, str, str]]:
    """One row per job: name, status (``done``, ``done earlier``, ``failed``, ``failed earlier``),
    frames, time, and the output or the one-line failure message."""
    rows = []
    for result in results:
        status = result.status + (" earlier" if result.earlier else "")
        frames = "" if result.frames is None else str(result.frames)
        if result.frames is not None and result.resumed:  # the output's count, of which an earlier run made these
            frames += f" ({result.resumed} resumed)"
        seconds = f"{result.seconds:.1f} s" if result.seconds else ""
        detail = result.job.output if result.ok else result.message
        rows.append((result.job.name, status, frames, seconds, detail))
    return rows


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = SUMMARY_HEADER) -> str:
    """Plain-text table, columns padded, the last column left free to run long."""
    table = [tuple(header), *[tuple(r) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = []
    for number, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(header[-1])]))
    return "\n".join(lines)


__all__ = [
    "BatchOptions", "DONE", "FAILED", "IN_PROGRESS", "Job", "JobResult", "Journal", "colorize_job", "discover_inputs",
    "find_preset", "format_table", "plan_batch", "preset_schedule", "run_batch", "summary_rows",
]
