"""The colorize progress bar counts the output's frames: after a resume it starts with the earlier
run's frames done, and every frame coloured adds one, in whatever order chunks finish.

Every run here is a process of its own, started seconds apart (the interrupted one runs this file
as a script), so all load the same vidcolor: in a work tree edited while the tests run, an
in-process run (vidcolor imported when the session began) and a fresh process can differ, and a
resumed run then refuses the earlier run's chunks (test_resume's killed-run test had this)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vidcolor.colorizers import get_colorizer
from vidcolor.io.writer import resolve_output
from vidcolor.references import load_reference
from vidcolor.run.chunks import ChunkPlan
from vidcolor.run.pipeline import colorize_video
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import color_frames, write_clip

#: The exit status of an interrupted run, as a shell reports Ctrl-C.
INTERRUPTED = 130


def bar_counts(stderr: str, name: str) -> list[tuple[int, int]]:
    """Every (done, total) the progress bar named ``name`` showed, in order, repeats dropped."""
    shown = [(int(done), int(total)) for done, total in re.findall(rf"{re.escape(name)}:\s*\d+%\|[^|]*\|\s*(\d+)/(\d+)", stderr)]
    return [count for i, count in enumerate(shown) if i == 0 or count != shown[i - 1]]


def stop_after(frames: int) -> Callable[[object], None]:
    """An ``on_frame`` that stops the run like Ctrl-C once its first ``frames`` frames are coloured."""
    def stop(result: object) -> None:
        if getattr(result, "index") + 1 == frames:
            raise KeyboardInterrupt

    return stop


def interrupt_colorize(source: Path, output: Path, reference: Path, frames: int) -> None:
    """A real resumable run (chunks of 4, as the CLI below) stopped after ``frames`` frames."""
    schedule = ReferenceSchedule([Keyframe(0, load_reference(str(reference)))])
    colorize_video(str(source), resolve_output(str(output), codec="ffv1"), schedule, get_colorizer("classic"),
                   plan=ChunkPlan(length=4), resume=True, on_frame=stop_after(frames))


def interrupt_batch(folder: Path, out: Path, reference: Path, frames: int) -> None:
    """A real batch (the options of the CLI's batch below) stopped after ``frames`` frames of its film."""
    from vidcolor.run.batch import BatchOptions, Journal, colorize_job, plan_batch, run_batch

    options = BatchOptions(ref=str(reference), model="classic", temporal=False, chunk_length=4, codec="ffv1")
    with Journal(str(out)) as log:
        run_batch(plan_batch(str(folder), str(out), options),
                  lambda job: colorize_job(job, on_frame=stop_after(frames)), journal=log)


RUNS: dict[str, Callable[[Path, Path, Path, int], None]] = {"colorize": interrupt_colorize, "batch": interrupt_batch}


def interrupted(run: str, source: Path, output: Path, reference: Path, frames: int) -> None:
    """``RUNS[run]`` in a process of its own (this file as a script); fails unless the interrupt stopped it."""
    process = subprocess.run([sys.executable, __file__, run, str(source), str(output), str(reference), str(frames)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == INTERRUPTED, f"exit {process.returncode}: {process.stderr[-2000:]}"


def colorize_in_cli(source: Path, output: Path, reference: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``vidcolor colorize`` as a user runs it, its bar drawn at every update (tqdm's own settings,
    TQDM_MININTERVAL and TQDM_MINITERS) so that the test sees each state."""
    command = [sys.executable, "-m", "vidcolor", "colorize", str(source), "-o", str(output), "--ref", str(reference),
               "--model", "classic", "--no-temporal", "--codec", "ffv1", "--chunk-length", "4", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"})


def test_a_resumed_run_shows_the_whole_film_with_the_earlier_frames_done(tmp_path: Path, reference_png: Path) -> None:
    """A 10-frame film interrupted after chunk 0 (4 frames) and resumed with the CLI: the bar reads
    4/10 before this run colours a frame, then 5/10 ... 10/10, one frame at a time (it read 0/10
    and jumped to 5/10 on the first frame, so its speed and time left counted 5 frames at once)."""
    source = write_clip(tmp_path / "in.mp4", color_frames(10, 96, 64), gray=True)
    output = tmp_path / "out.mkv"
    interrupted("colorize", source, output, reference_png, frames=6)
    result = colorize_in_cli(source, output, reference_png, "--resume")
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}: 10 frames (4 resumed from the earlier run)" in result.stdout, result.stdout
    counts = bar_counts(result.stderr, "in.mp4")
    assert counts[0] == (0, 10), counts  # drawn when the run starts, before the journal is read
    assert counts[1:] == [(done, 10) for done in range(4, 11)], counts


def test_ray_chunks_add_up_to_the_whole_film_in_any_order(tmp_path: Path, reference_png: Path) -> None:
    """With --executor ray the driver hears each chunk's frames when the chunk ends, chunks in any
    order: the bar still goes up one frame at a time to 10/10 (by frame-index deltas it went back
    when an earlier chunk finished after a later one)."""
    pytest.importorskip("ray", reason="Ray is in the test extras: pip install -e '.[test]'")
    source = write_clip(tmp_path / "in.mp4", color_frames(10, 96, 64), gray=True)
    result = colorize_in_cli(source, tmp_path / "out.mkv", reference_png, "--executor", "ray", "--num-cpus", "2")
    assert result.returncode == 0, result.stderr
    counts = bar_counts(result.stderr, "in.mp4")
    assert counts == [(done, 10) for done in range(11)], counts


def test_batch_shows_a_resumed_film_with_its_earlier_frames_done(tmp_path: Path, reference_png: Path) -> None:
    """``vidcolor batch`` resuming a film whose first chunk (4 of 10 frames) an interrupted batch
    made: its frame bar reads 4/10 before this run colours a frame, then one frame at a time."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "reel1.mp4", color_frames(10, 96, 64), gray=True)
    out = tmp_path / "out"
    interrupted("batch", folder, out, reference_png, frames=6)  # chunk 0 (frames 0-3) finished
    command = [sys.executable, "-m", "vidcolor", "batch", str(folder), "-o", str(out), "--ref", str(reference_png),
               "--model", "classic", "--no-temporal", "--chunk-length", "4", "--codec", "ffv1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"})
    assert result.returncode == 0, result.stderr
    assert "(10 frames, 4 resumed from the earlier run," in result.stdout + result.stderr, result.stdout
    counts = bar_counts(result.stderr, "reel1.mp4")
    assert counts[-7:] == [(done, 10) for done in range(4, 11)] and (5, 10) not in counts[:-6], counts


if __name__ == "__main__":
    name, first, second, reference_arg, frames_arg = sys.argv[1:]
    try:
        RUNS[name](Path(first), Path(second), Path(reference_arg), int(frames_arg))
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    sys.exit("the run ended before the interrupt")
