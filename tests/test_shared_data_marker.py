"""The ``shared_data`` marker and the shared-data skips (conftest.py, helpers.py), on a small suite
run by a real pytest in a child process with a shared folder of our own (``VIDCOLOR_SHARED``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SUITE = '''
import pytest
from helpers import SHARED, shared_path

CLIP = SHARED / "data" / "clip"


def _frames():
    return shared_path("clip")


@pytest.fixture
def photo():
    return shared_path("photo.png")


def test_calls_shared_path():
    assert shared_path("clip").is_dir()


def test_names_a_module_constant():
    assert CLIP.is_dir()


def test_uses_a_fixture(photo):
    assert photo.is_file()


def test_calls_a_module_function():
    assert _frames().is_dir()


def test_needs_a_missing_file():
    shared_path("not-there.png")


def test_plain():
    assert 1 + 1 == 2


def test_hides_its_use_of_the_data():
    import helpers
    getattr(helpers, "shared_" + "path")("clip")
'''


def run_suite(tmp_path: Path, *args: str, shared: Path) -> str:
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    for name in ("conftest.py", "helpers.py"):
        shutil.copy(TESTS / name, suite / name)
    (suite / "test_sample.py").write_text(SUITE)
    (suite / "pytest.ini").write_text("[pytest]\nmarkers =\n    shared_data: needs ../shared\n")
    env = {**os.environ, "VIDCOLOR_SHARED": str(shared)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
                            cwd=suite, env=env, capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    root = tmp_path / "shared"
    (root / "data" / "clip").mkdir(parents=True)
    (root / "data" / "photo.png").write_bytes(b"png")
    return root


def test_tests_that_name_the_shared_data_are_marked(tmp_path: Path, shared: Path) -> None:
    listed = run_suite(tmp_path, "--co", "-m", "not shared_data", shared=shared)
    unmarked = {line.split("::")[1] for line in listed.splitlines() if "::" in line}
    # the last one hides its use: shared_path catches it when it runs (next test)
    assert unmarked == {"test_plain", "test_hides_its_use_of_the_data"}, listed


def test_skips_name_the_test_and_the_file_at_the_test_line(tmp_path: Path, shared: Path) -> None:
    output = run_suite(tmp_path, shared=shared)
    assert "5 passed" in output and "1 skipped" in output and "1 failed" in output, output
    skip = next(line for line in output.splitlines() if line.startswith("SKIPPED"))
    source = SUITE.splitlines()
    line = source.index("def test_needs_a_missing_file():") + 1
    assert skip.startswith(f"SKIPPED [1] test_sample.py:{line}: test_sample.py::test_needs_a_missing_file needs"), skip
    assert str(shared / "data" / "not-there.png") in skip and "helpers.py" not in skip
    assert "test_hides_its_use_of_the_data reads" in output and "is not marked shared_data" in output, output


def test_without_the_shared_folder_marked_tests_skip_and_the_rest_runs(tmp_path: Path) -> None:
    missing = tmp_path / "no-shared"
    output = run_suite(tmp_path, shared=missing)
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 5, output
    assert all(f"needs the shared test data {missing}," in line for line in skips), skips
    assert {line.split("::")[1].split()[0] for line in skips} == {
        "test_calls_shared_path", "test_names_a_module_constant", "test_uses_a_fixture", "test_calls_a_module_function",
        "test_needs_a_missing_file"}
    newcomer = run_suite(tmp_path, "-m", "not shared_data", "-k", "not hides", shared=missing)
    assert "1 passed" in newcomer and "skipped" not in newcomer, newcomer
