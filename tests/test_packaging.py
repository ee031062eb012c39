"""A plain ``pip install`` of vidcolor's wheel runs every feature the README documents (issue 22, item 8).

The wheel is built from a copy of the work tree (a ``build/`` folder left in the tree could otherwise
ship modules deleted since), then installed with plain pip into a new virtual environment: pip
resolves the declared dependencies against the package index, as it does for a user. No
``--system-site-packages``, nothing mocked. The installed ``vidcolor`` program then runs
no-reference mode with ``--report``, ``vidcolor scenes``, and (after ``pip install "vidcolor[vs]"``)
``vspipe`` on the filter, in a folder outside the repository, with fresh user folders.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from packaging.requirements import Requirement

from vidcolor.schedule.timecodes import SCENEDETECT_REQUIREMENT

from helpers import REPO, color_frames, write_clip

CUT = 18
FRAMES = 36
WIDTH, HEIGHT = 128, 96
#: Never shipped: training state stays in the repository (issue 23).
TRAINING_STATE = "vidcolor/models/weights/default.train-state.pt"
#: Folders that are not part of the source a wheel is built from.
NOT_SOURCE = (".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "demo-output", "out")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vidcolor's wheel, built without network access by the setuptools this environment has."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(root / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"pip wheel failed:\n{built.stdout}\n{built.stderr}"
    assert "warning" not in built.stderr.lower(), f"building the wheel warns:\n{built.stderr}"
    (path,) = (root / "dist").glob("vidcolor-*.whl")
    return path


def source_files(root: Path, folder: str, pattern: str) -> set[str]:
    """Files of the work tree under ``root / folder``, named as the wheel names them (from ``root``)."""
    return {p.relative_to(root).as_posix() for p in (root / folder).rglob(pattern)
            if p.is_file() and "__pycache__" not in p.parts}


def test_wheel_carries_every_module_and_the_weights_but_no_training_state(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert (REPO / TRAINING_STATE).is_file(), "the repository should keep the training state"
    training_states = source_files(REPO, "vidcolor/models/weights", "*.train-state.pt")
    assert TRAINING_STATE in training_states
    assert training_states & names == set(), "resumable training state belongs in the repository, not the wheel"
    modules = source_files(REPO, "vidcolor", "*.py") | source_files(REPO / "plugins", "vsvidcolor", "*.py")
    assert modules - names == set(), "modules missing from the wheel"
    weights = source_files(REPO, "vidcolor/models/weights", "*") - training_states
    assert weights and weights - names == set(), "shipped weights or model cards missing from the wheel"
    assert "vidcolor/py.typed" in names
    templates = source_files(REPO, "vidcolor/report", "*.j2")
    assert templates and templates - names == set(), "the HTML report's template missing from the wheel"


def test_wheel_requires_scene_detection_without_a_second_opencv(wheel: Path) -> None:
    """PySceneDetect is a plain dependency; nothing pulls in an OpenCV build whose ``cv2`` files
    would overwrite the contrib build's (and take ``cv2.ximgproc`` away)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    requirements = metadata.get_all("Requires-Dist") or []
    names = {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower() for r in requirements}
    assert {"scenedetect", "opencv-contrib-python-headless", "torch", "av"} <= names
    assert names.isdisjoint({"opencv-python", "opencv-python-headless", "opencv-contrib-python"})
    (scenedetect,) = [Requirement(r) for r in requirements if r.lower().startswith("scenedetect")]
    assert "0.7" not in scenedetect.specifier, "scenedetect 0.7 requires opencv-python"
    # the version vidcolor's "PySceneDetect is missing" message tells users to install
    assert scenedetect.specifier == Requirement(SCENEDETECT_REQUIREMENT).specifier
    assert any(r.startswith("vapoursynth") and 'extra == "vs"' in r for r in requirements)


def two_shot_clip(path: Path) -> Path:
    """A black-and-white clip of two shots, cut at frame CUT: bright moving shapes, then dark inverted ones."""
    first = color_frames(CUT, WIDTH, HEIGHT, seed=0)
    second = [(255 - f) // 3 for f in color_frames(FRAMES - CUT, WIDTH, HEIGHT, seed=5)]
    return write_clip(path, first + second, gray=True)


def yuv_planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv444p") for frame in container.decode(video=0)]


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Iterator[Path]:
    """A new virtual environment of this Python, removed afterwards (it holds PyTorch: GBs)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    yield env
    shutil.rmtree(env, ignore_errors=True)


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have worked, as a user sees it."""
    text = f"$ {' '.join(map(str, result.args))}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, text
    assert "internal error" not in text, text
    return text


@pytest.mark.slow
def test_plain_pip_install_runs_every_documented_feature(wheel: Path, fresh_venv: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bin_dir = fresh_venv / "bin"
    python = bin_dir / "python"
    # a user's shell with the environment activated: its bin first, nothing of this test run's Python
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    shell = {**base, "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', '')}", "VIRTUAL_ENV": str(fresh_venv)}
    # a new user's folders: no imported weights, no VapourSynth configuration
    user = tmp_path / "home"
    shell_user = {**shell, **{k: str(user / k.lower()) for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}}
    work = tmp_path / "work"
    work.mkdir()
    two_shot_clip(work / "clip.mp4")

    started = time.monotonic()
    succeeded(run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], shell, work, timeout=1800))
    install_seconds = time.monotonic() - started
    installed = succeeded(run([str(python), "-c", "import vidcolor, scenedetect, cv2; print(vidcolor.__file__, "
                                                  "scenedetect.__version__, hasattr(cv2, 'ximgproc'))"], shell_user, work))
    assert str(fresh_venv) in installed and "True" in installed, installed

    # no-reference mode with the HTML report: PySceneDetect finds the cut, each shot gets its own colours
    colorized = succeeded(run(["vidcolor", "colorize", "clip.mp4", "-o", "out.mp4", "--report", "report.html"],
                              shell_user, work))
    assert re.search(r"report\.html: 2 shot", colorized), colorized
    gray, color = yuv_planes(work / "clip.mp4"), yuv_planes(work / "out.mp4")
    assert len(color) == FRAMES and color[0].shape == (3, HEIGHT, WIDTH)
    luma_change = np.mean([np.abs(c[0].astype(int) - g[0].astype(int)).mean() for c, g in zip(color, gray)])
    chroma = np.mean([np.abs(c[1:].astype(int) - 128).mean() for c in color])
    assert luma_change < 3, f"luma changed by {luma_change:.2f} on average"
    assert chroma > 2, f"no colour: mean chroma distance from gray {chroma:.2f}"
    page = (work / "report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and len(page) > 10_000

    # `vidcolor scenes`: a preset skeleton with one gray keyframe per shot
    succeeded(run(["vidcolor", "scenes", "clip.mp4", "-o", "shots.toml"], shell_user, work))
    preset = (work / "shots.toml").read_text(encoding="utf-8")
    assert re.findall(r"^start = (\d+)", preset, re.M) == ["0", str(CUT)], preset
    references = re.findall(r'^reference = "([^"]+)"', preset, re.M)
    assert len(references) == 2 and all((work / r).is_file() for r in references), preset

    # the VapourSynth extra: vspipe, run from the activated environment, configures itself
    started = time.monotonic()
    succeeded(run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[vs]"], shell, work, timeout=1800))
    vs_seconds = time.monotonic() - started
    (work / "colorize.vpy").write_text(
        "import vapoursynth as vs\nimport vsvidcolor\n"
        "clip = vs.core.bs.VideoSource('clip.mp4')\nvsvidcolor.colorize(clip).set_output()\n", encoding="utf-8")
    succeeded(run(["vspipe", "-c", "y4m", "colorize.vpy", "out.y4m"], shell_user, work))
    y4m = (work / "out.y4m").read_bytes()
    assert y4m.startswith(b"YUV4MPEG2") and y4m.count(b"FRAME\n") == FRAMES

    # an environment that lost PySceneDetect: a message naming it and the fix, exit code 2
    succeeded(run([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", "scenedetect"], shell, work))
    missing = run(["vidcolor", "scenes", "clip.mp4", "-o", "again.toml"], shell_user, work)
    message = missing.stdout + missing.stderr
    assert missing.returncode == 2 and "internal error" not in message, message
    assert "PySceneDetect" in message and "pip install" in message, message
    with capsys.disabled():  # the install time, in CI's log
        print(f"\n[packaging] plain pip install of the wheel into a fresh venv: {install_seconds:.0f} s; "
              f"the [vs] extra: {vs_seconds:.0f} s")
