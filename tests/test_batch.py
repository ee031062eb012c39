"""Batch remastering with real encoders and files: isolation of bad files, the journal, resume
after kill -9, preset pick-up, and the Ray executor against the local one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.run.batch import (
    DONE,
    FAILED,
    IN_PROGRESS,
    JOURNAL_NAME,
    BatchOptions,
    Journal,
    colorize_job,
    discover_inputs,
    format_table,
    plan_batch,
    run_batch,
    summary_rows,
)
from vidcolor.cli import VidcolorGroup
from vidcolor.cli.batch import EXIT_FILES_FAILED, batch
from vidcolor.errors import OutputError

from helpers import REPO, color_frames, decoded_video, leftover_partials, shared_path, write_clip

FILMS = ("reel1.mp4", "reel2.mp4", "reel3.mkv", "reel4.mp4")
BATCH_DRIVER = (
    "import sys; from vidcolor.cli import VidcolorGroup; from vidcolor.cli.batch import batch; "
    "VidcolorGroup(commands={'batch': batch})(sys.argv[1:])"
)


def make_films(folder: Path, count: int = 12, names: tuple[str, ...] = FILMS, width: int = 96, height: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        write_clip(folder / name, color_frames(count, width, height, seed=seed))
    return folder


def make_reference(path: Path) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2BGR))
    return path


def corrupt_file(path: Path) -> Path:
    """A file named like a video whose bytes are a truncated, damaged MP4."""
    source = write_clip(path.with_name("tmp-" + path.name), color_frames(10, 96, 64))
    data = source.read_bytes()
    source.unlink()
    path.write_bytes(b"\0" * 64 + data[200:600])
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(VidcolorGroup(commands={"batch": batch}), ["batch", *args])
    return result.exit_code, result.output


def frames_of(path: Path | str) -> list[np.ndarray]:
    return [luma for _, luma in decoded_video(path)]


def journal(out: Path) -> dict[str, dict[str, object]]:
    return json.loads((out / JOURNAL_NAME).read_text())["files"]


@pytest.fixture
def film_dir(tmp_path: Path) -> Path:
    folder = make_films(tmp_path / "in")
    corrupt_file(folder / "damaged.mp4")
    make_reference(tmp_path / "ref.png")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_four_films_and_a_corrupt_one(film_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (str(film_dir), "-o", str(out), "--ref", str(tmp_path / "ref.png"), "--model", "classic", "--size", "64",
            "--encoder-preset", "ultrafast")
    code, text = run(*args)
    assert code == EXIT_FILES_FAILED, text
    assert "damaged.mp4 failed" in text and "1 of 5 file(s) failed: damaged.mp4" in text
    entries = journal(out)
    assert {name: e["status"] for name, e in entries.items()} == {
        "damaged.mp4": FAILED, **{name: DONE for name in FILMS}}
    assert "damaged" in str(entries["damaged.mp4"]["message"]) or "truncated" in str(entries["damaged.mp4"]["message"])
    for name in FILMS:
        output = out / (Path(name).stem + ".mp4")
        assert len(frames_of(output)) == 12
        assert entries[name]["output"] == str(output)
    assert leftover_partials(out) == []
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    # the rerun does nothing more: same outputs, same attempts, the same file named, non-zero
    code, text = run(*args)
    assert code == EXIT_FILES_FAILED and "damaged.mp4" in text
    assert "failed earlier" in text and text.count("done earlier") == 4
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != JOURNAL_NAME} == {
        k: v for k, v in stamps.items() if k != JOURNAL_NAME}
    assert all(e["attempts"] == 1 for e in journal(out).values())
    # --retry-failed tries the damaged file again (and it fails again)
    code, text = run(*args, "--retry-failed")
    assert code == EXIT_FILES_FAILED and journal(out)["damaged.mp4"]["attempts"] == 2


def test_changed_input_or_reference_is_redone(film_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (film_dir / "damaged.mp4").unlink()
    options = BatchOptions(ref=str(tmp_path / "ref.png"), model="classic", size="64", encoder_preset="ultrafast")
    with Journal(out) as log:
        first = run_batch(plan_batch(film_dir, out, options), colorize_job, journal=log)
    assert all(r.ok and not r.earlier for r in first)
    write_clip(film_dir / "reel2.mp4", color_frames(7, 96, 64, seed=9))  # a new cut of reel 2
    with Journal(out) as log:
        second = run_batch(plan_batch(film_dir, out, options), colorize_job, journal=log)
    assert [r.earlier for r in second] == [True, False, True, True]
    assert len(frames_of(out / "reel2.mp4")) == 7
    make_reference(tmp_path / "ref.png")  # same picture, rewritten: a repainted reference
    os.utime(tmp_path / "ref.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    with Journal(out) as log:
        third = run_batch(plan_batch(film_dir, out, options), colorize_job, journal=log)
    assert not any(r.earlier for r in third)


def test_preset_named_like_the_film_is_picked_up(tmp_path: Path) -> None:
    folder = make_films(tmp_path / "in", names=("reel1.mp4", "reel2.mp4", "reel3.mp4"))
    refs = tmp_path / "in" / "refs"
    refs.mkdir()
    red = np.zeros((64, 96, 3), np.uint8)
    red[..., 2] = 200  # BGR: a red reference
    cv2.imwrite(str(refs / "red.png"), red)
    (folder / "reel1.toml").write_text('codec = "ffv1"\n[[shot]]\nstart = 0\nreference = "refs/red.png"\n')
    (folder / "reel3.toml").write_text('[[shot]]\nstart = 0\nrefrence = "refs/red.png"\n')  # broken preset
    options = BatchOptions(ref=str(make_reference(tmp_path / "ref.png")), model="classic", size="64",
                           encoder_preset="ultrafast")
    jobs = plan_batch(folder, tmp_path / "out", options)
    assert [Path(j.preset).name if j.preset else None for j in jobs] == ["reel1.toml", None, "reel3.toml"]
    assert jobs[1].ref == str(tmp_path / "ref.png")
    assert Path(jobs[0].output).suffix == ".mkv"  # the preset's codec names the output
    results = run_batch(jobs, colorize_job)
    assert [r.status for r in results] == [DONE, DONE, FAILED]
    assert "unknown key 'refrence'" in results[2].message and "reel3.toml" in results[2].message
    import av

    with av.open(jobs[0].output) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert (rgb[..., 0] - rgb[..., 2]).mean() > 20  # coloured from the film's own (red) preset


def test_fallback_preset(tmp_path: Path) -> None:
    folder = make_films(tmp_path / "in", names=("a.mp4", "b.mp4"))
    make_reference(tmp_path / "ref.png")
    (tmp_path / "fallback.toml").write_text('[[shot]]\nstart = 0\nreference = "ref.png"\n')
    jobs = plan_batch(folder, tmp_path / "out", BatchOptions(preset=str(tmp_path / "fallback.toml"), model="classic",
                                                                size="48"))
    assert all(j.preset == str(tmp_path / "fallback.toml") for j in jobs)
    assert all(r.ok for r in run_batch(jobs, colorize_job))


def test_discovery(tmp_path: Path) -> None:
    folder = make_films(tmp_path / "in", names=("b10.mp4", "b9.mov"), count=3)
    (folder / "scan").mkdir()
    cv2.imwrite(str(folder / "scan" / "000000.png"), color_frames(1, 96, 64)[0])
    (folder / "empty").mkdir()
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "still.png").write_bytes(b"x")  # a loose image is not a film
    (folder / "out").mkdir()
    cv2.imwrite(str(folder / "out" / "000000.png"), color_frames(1, 96, 64)[0])
    assert [p.name for p in discover_inputs(folder, exclude=[folder / "out"])] == ["b9.mov", "b10.mp4", "scan"]
    options = BatchOptions(ref=str(make_reference(tmp_path / "r.png")), model="classic")
    jobs = plan_batch(folder, folder / "out", options)
    assert [Path(j.output).name for j in jobs] == ["b9.mp4", "b10.mp4", "scan"]  # a frame folder gives PNG frames
    with pytest.raises(OutputError, match="is the input folder"):
        plan_batch(folder, folder)
    scan = [j for j in jobs if j.name == "scan"]
    result = run_batch(scan, colorize_job)[0]
    assert result.ok and result.frames == 1, result.message
    assert len(list((folder / "out" / "scan").glob("*.png"))) == 1


def test_one_failure_never_stops_the_others(tmp_path: Path) -> None:
    folder = make_films(tmp_path / "in", names=("a.mp4", "b.mp4", "c.mp4"), count=4)
    options = BatchOptions(ref=str(make_reference(tmp_path / "r.png")), model="classic", size="48")
    jobs = plan_batch(folder, tmp_path / "out", options)

    def flaky(job: object) -> object:
        if job.name == "b.mp4":  # type: ignore[attr-defined]
            raise RuntimeError("disk on fire\nsecond line")
        return colorize_job(job)  # type: ignore[arg-type]

    with Journal(tmp_path / "out") as log:
        results = run_batch(jobs, flaky, journal=log)
    assert [r.status for r in results] == [DONE, FAILED, DONE]
    assert results[1].message == "RuntimeError: disk on fire second line"
    rows = summary_rows(results)
    assert rows[1][:2] == ("b.mp4", "failed") and rows[0][2] == "4"
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["file", "status", "frames", "time", "output", "/", "problem"]
    assert "RuntimeError: disk on fire" in table.splitlines()[3]

    def interrupted(job: object) -> object:
        raise KeyboardInterrupt

    with Journal(tmp_path / "out2") as log, pytest.raises(KeyboardInterrupt):
        run_batch(jobs, interrupted, journal=log)
    assert journal(tmp_path / "out2")["a.mp4"]["status"] == IN_PROGRESS


def test_journal_is_locked_and_checked(tmp_path: Path) -> None:
    with Journal(tmp_path) as first:
        first.save()
        with pytest.raises(OutputError, match="another vidcolor batch is writing"):
            Journal(tmp_path).__enter__()
    (tmp_path / JOURNAL_NAME).write_text("{ half a journal")
    with pytest.raises(OutputError, match="cannot be read.*delete it"):
        Journal(tmp_path)


def test_kill_9_mid_batch_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    """``kill -9`` mid-film, then the same batch: the films of one uninterrupted batch. Each batch
    is a process of its own, started seconds apart, so all three load the same vidcolor (an
    in-process run imports it when the session begins, and the work tree may change meanwhile)."""
    folder = make_films(tmp_path / "in", count=40, names=("r1.mp4", "r2.mp4", "r3.mp4"), width=144, height=96)
    ref = make_reference(tmp_path / "ref.png")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", BATCH_DRIVER, "batch", str(folder), "--ref", str(ref), "--model", "classic",
               "--size", "96", "--codec", "ffv1", "-q"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = subprocess.run([*command, "-o", str(whole)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    process = subprocess.Popen([*command, "-o", str(broken)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    killed_during = None
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                files = journal(broken)
            except (FileNotFoundError, json.JSONDecodeError):
                files = {}
            if files.get("r2.mp4", {}).get("status") == IN_PROGRESS:
                os.kill(process.pid, signal.SIGKILL)
                killed_during = "r2.mp4"
                break
            time.sleep(0.005)
    finally:
        process.wait(timeout=30)
    assert killed_during == "r2.mp4", "the batch finished before it could be killed mid-film"
    assert journal(broken)["r1.mp4"]["status"] == DONE
    assert not (broken / "r2.mkv").exists() and not (broken / "r3.mkv").exists()  # no half file under the final name

    done = subprocess.run([*command, "-o", str(broken)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {n: e["status"] for n, e in journal(broken).items()} == {n: DONE for n in ("r1.mp4", "r2.mp4", "r3.mp4")}
    assert journal(broken)["r1.mp4"]["attempts"] == 1 and journal(broken)["r2.mp4"]["attempts"] == 2
    for name in ("r1.mkv", "r2.mkv", "r3.mkv"):
        a, b = _rgb_frames(whole / name), _rgb_frames(broken / name)
        assert len(a) == len(b) == 40 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert leftover_partials(broken) == []


def _rgb_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_ray_executor_equals_local(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    folder = make_films(tmp_path / "in", names=("x.mp4", "y.mp4"), count=6)
    corrupt_file(folder / "z.mp4")
    options = BatchOptions(ref=str(make_reference(tmp_path / "ref.png")), model="classic", size="48", codec="ffv1")
    with Journal(tmp_path / "local") as log:
        local = run_batch(plan_batch(folder, tmp_path / "local", options), colorize_job, journal=log)
    with Journal(tmp_path / "ray") as log:
        remote = run_batch(plan_batch(folder, tmp_path / "ray", options), colorize_job, journal=log,
                           executor="ray", num_cpus=2)
    assert [r.status for r in remote] == [r.status for r in local] == [DONE, DONE, FAILED]
    assert remote[2].message == local[2].message
    assert [r.frames for r in remote] == [6, 6, None]
    for name in ("x.mkv", "y.mkv"):
        a, b = _rgb_frames(tmp_path / "local" / name), _rgb_frames(tmp_path / "ray" / name)
        assert len(a) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert journal(tmp_path / "ray")["x.mp4"]["status"] == DONE


@pytest.mark.slow
def test_a_bomb_colorizes_shot_by_shot_with_its_references(tmp_path: Path) -> None:
    film = shared_path("clips/bw/a-bomb_blast_effects_part.mp4")
    references = sorted(shared_path("clips/bw/references").glob("*.png"))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / film.name).symlink_to(film)
    options = BatchOptions(preset=str(REPO / "presets" / "examples" / "a-bomb.toml"), model="classic", size="128",
                           codec="ffv1")
    results = run_batch(plan_batch(folder, tmp_path / "out", options), colorize_job)
    assert results[0].ok and results[0].frames == 360, results[0].message
    frames = _rgb_frames(Path(results[0].job.output))
    from vidcolor.references import load_reference

    colour = np.array([load_reference(p).lab_at(96, 72)[..., 1:].reshape(-1, 2).mean(0) for p in references])
    for shot, index in enumerate((5, 93, 194, 351)):
        lab = cv2.cvtColor(frames[index].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        distance = np.linalg.norm(colour - lab[..., 1:].reshape(-1, 2).mean(0), axis=1)
        assert int(distance.argmin()) == shot, (index, distance)


def test_preset_temporal_table_can_turn_off_the_temporal_check(tmp_path: Path) -> None:
    folder = make_films(tmp_path / "in", names=("t.mp4",), count=5)
    make_reference(folder / "ref.png")
    (folder / "t.toml").write_text('size = 48\ncodec = "ffv1"\n[temporal]\nstrength = 1.0\n'
                                   '[[shot]]\nstart = 0\nreference = "ref.png"\n')
    plain = folder / "plain.toml"
    plain.write_text('size = 48\ncodec = "ffv1"\n[temporal]\nenabled = false\n[[shot]]\nstart = 0\nreference = "ref.png"\n')
    checked = run_batch(plan_batch(folder, tmp_path / "a", BatchOptions(model="classic")), colorize_job)[0]
    assert checked.ok, checked.message
    (folder / "t.toml").unlink()
    options = BatchOptions(preset=str(plain), model="classic")
    unchecked = run_batch(plan_batch(folder, tmp_path / "b", options), colorize_job)[0]
    assert unchecked.ok, unchecked.message
    a, b = _rgb_frames(tmp_path / "a" / "t.mkv"), _rgb_frames(tmp_path / "b" / "t.mkv")
    assert np.array_equal(a[0], b[0])  # the first frame has no previous frame to check against
    assert any(not np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))


def test_preset_detail_and_the_option_over_it(tmp_path: Path) -> None:
    from test_detail import fabric, panned

    scene = fabric(300, 160, seed=5)
    truth = [panned(scene, 1.5 * i, 0.5 * i, 128, 96) for i in range(6)]
    folder = tmp_path / "in"
    folder.mkdir()
    write_clip(folder / "f.mkv", truth, codec="ffv1", pix_fmt="yuv444p", gray=True)
    cv2.imwrite(str(folder / "ref.png"), cv2.cvtColor(truth[0], cv2.COLOR_RGB2BGR))
    (folder / "f.toml").write_text('model = "classic"\nsize = 48\ncodec = "ffv1"\ndetail = true\n'
                                   '[[shot]]\nstart = 0\nreference = "ref.png"\n')
    detailed = run_batch(plan_batch(folder, tmp_path / "a"), colorize_job)[0]
    plain = run_batch(plan_batch(folder, tmp_path / "b", BatchOptions(detail=False)), colorize_job)[0]
    assert detailed.ok and plain.ok, (detailed.message, plain.message)

    def error(frames: list[np.ndarray]) -> float:
        return float(np.mean([(f.astype(float) - t) ** 2 for f, t in zip(frames[1:], truth[1:])]))

    # the preset's detail = true brought the fine colour back; --no-detail (the option) won over it
    assert error(_rgb_frames(tmp_path / "a" / "f.mkv")) < 0.5 * error(_rgb_frames(tmp_path / "b" / "f.mkv"))


def test_frames_swapped_in_a_frame_folder_are_redone(tmp_path: Path) -> None:
    """A frame folder's identity is every frame's size and mtime: two frames swapped (same total
    size, same newest mtime, the old stamp) make the film change, so the batch redoes it."""
    from vidcolor.run.batch import input_signature

    scan = tmp_path / "in" / "scan"
    scan.mkdir(parents=True)
    for number, rgb in enumerate(color_frames(6, 96, 64)):
        cv2.imwrite(str(scan / f"{number:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    options = BatchOptions(ref=str(make_reference(tmp_path / "ref.png")), model="classic", size="48", codec="ffv1")
    with Journal(out) as log:
        first = run_batch(plan_batch(tmp_path / "in", out, options), colorize_job, journal=log)
    assert first[0].ok and first[0].frames == 6, first[0].message
    stamp = input_signature(scan)
    one, four = scan / "000001.png", scan / "000004.png"
    assert one.stat().st_size != four.stat().st_size
    one.rename(scan / "swap.png")
    four.rename(one)
    (scan / "swap.png").rename(four)
    assert input_signature(scan) == stamp  # the folder-wide stamp cannot see it
    with Journal(out) as log:
        second = run_batch(plan_batch(tmp_path / "in", out, options), colorize_job, journal=log)
    assert second[0].ok and not second[0].earlier and second[0].frames == 6
    with Journal(out) as log:
        third = run_batch(plan_batch(tmp_path / "in", out, options), colorize_job, journal=log)
    assert third[0].earlier  # unchanged since: not redone


def test_resumed_film_is_listed_with_all_its_frames(tmp_path: Path) -> None:
    """A film resumed from its finished chunks is listed with the output's frame count (not only
    the frames coloured in this run), saying how many the interrupted run made."""
    folder = make_films(tmp_path / "in", count=12, names=("reel1.mp4",))
    ref = make_reference(tmp_path / "ref.png")
    out = tmp_path / "out"
    common = ["--ref", str(ref), "--model", "classic", "--size", "48", "--chunk-length", "4", "--codec", "ffv1"]
    seen: list[int] = []

    def stop_at_frame_six(result: object) -> None:
        seen.append(result.index)  # type: ignore[attr-defined]
        if len(seen) == 6:
            raise KeyboardInterrupt  # as Ctrl-C would, after the first chunk (frames 0-3) is finished

    options = BatchOptions(ref=str(ref), model="classic", size="48", chunk_length=4, codec="ffv1")
    with Journal(out) as log, pytest.raises(KeyboardInterrupt):
        run_batch(plan_batch(folder, out, options), lambda job: colorize_job(job, on_frame=stop_at_frame_six),
                  journal=log)
    code, text = run(str(folder), "-o", str(out), *common)
    assert code == 0, text
    assert "(12 frames, 4 resumed from the earlier run," in text, text
    rows = [line.split() for line in text.splitlines() if line.startswith("reel1.mp4 ")]  # the table's, not the bar's
    assert rows and rows[-1][1:5] == ["done", "12", "(4", "resumed)"], text
    assert journal(out)["reel1.mp4"]["frames"] == 12 and len(frames_of(out / "reel1.mkv")) == 12
    code, text = run(str(folder), "-o", str(out), *common)
    assert code == 0 and "12 (4 resumed)" in text, text  # listed so when already done, from the batch's journal
