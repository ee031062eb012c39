"""Shared fixtures (helpers live in helpers.py), and the ``shared_data`` marker.

A test needs ../shared when it, a fixture it uses, or a function of its test module it calls names
``shared_path``/``shared_fixture`` or a path under the shared folder (``SHARED``, ``DATA``, or a
module constant such as a clip folder). Such tests are marked ``shared_data`` at collection, so
``pytest -m "not shared_data"`` is the run a checkout without the data can pass. Without the
folder, marked tests skip with a reason that names the test (``@pytest.mark.shared_data(PATH)``
also names a file the test needs); a test that reads shared data without the mark fails
(helpers.shared_path checks), so the mark cannot silently go missing.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

import helpers
from helpers import color_frames, write_clip

TESTS = Path(__file__).resolve().parent
SHARED_ROOTS = {helpers.SHARED, helpers.DEFAULT_SHARED}
SHARED_HELPERS = (helpers.shared_path, helpers.shared_fixture)


def _is_shared(value: object) -> bool:
    if any(value is helper for helper in SHARED_HELPERS):
        return True
    if isinstance(value, os.PathLike):
        path = Path(value)
        return any(path == root or root in path.parents for root in SHARED_ROOTS)
    return False


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # nested functions, lambdas, comprehensions
            yield from _global_names(constant)


def reads_shared_data(item: pytest.Item) -> bool:
    """Whether ``item`` names the shared data: in its parameters, its code, its fixtures' code, or
    the code of the test-suite functions those call (followed transitively)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(_is_shared(value) for value in callspec.params.values()):
        return True
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    pending = [getattr(item, "function", None)]
    if fixtureinfo is not None:
        pending += [definition.func for definitions in fixtureinfo.name2fixturedefs.values() for definition in definitions]
    seen: set[types.CodeType] = set()
    while pending:
        function = pending.pop()
        code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
        if code is None or code in seen:
            continue
        seen.add(code)
        names = inspect.unwrap(function).__globals__
        for name in _global_names(code):
            value = names.get(name)
            if _is_shared(value):
                return True
            if inspect.isfunction(value) and TESTS in Path(value.__code__.co_filename).parents:
                pending.append(value)
    return False


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("shared_data") is None and reads_shared_data(item):
            item.add_marker(pytest.mark.shared_data)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    helpers.current_test = (item.nodeid, item.get_closest_marker("shared_data") is not None)
    try:
        return (yield)
    finally:
        helpers.current_test = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A skip for missing shared data names the test it skipped."""
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        path, line, message = report.longrepr
        if helpers.MISSING_SHARED in message and item.nodeid not in message:
            report.longrepr = (path, line, f"{item.nodeid} {message.removeprefix('Skipped: ')}")
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a marked test without the shared folder, or without a path its mark names
    (``@pytest.mark.shared_data(PATH, ...)``), before any of its fixtures runs."""
    markers = list(item.iter_markers("shared_data"))
    if not markers:
        return
    for path in [Path(arg) for marker in markers for arg in marker.args] or [helpers.SHARED]:
        if not path.exists():
            helpers.skip_for_missing(path)


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "clip.mp4", count: int = 8, width: int = 96, height: int = 64, **kwargs: object) -> Path:
        return write_clip(tmp_path / name, color_frames(count, width, height), **kwargs)  # type: ignore[arg-type]
    return make


@pytest.fixture
def reference_png(tmp_path: Path) -> Path:
    """The first colour frame of the synthetic clip, as a painted keyframe would be."""
    path = tmp_path / "reference.png"
    cv2.imwrite(str(path), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2BGR))
    return path


