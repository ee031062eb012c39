"""The library stays pure: no front-end imports anywhere in vidcolor's core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import vidcolor
from helpers import color_frames, write_clip

FRONT_END_MODULES = ("click", "tqdm", "vapoursynth")
#: the command line front end: the package vidcolor/cli/ and the ``python -m vidcolor`` shim
FRONT_ENDS = ("cli", "__main__.py")

RUNTIME_PROBE = """
import importlib, pathlib, sys
import vidcolor
root = pathlib.Path(vidcolor.__file__).parent
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] in ("cli", "__main__"):
        continue
    name = ".".join(("vidcolor",) + parts[:-1] + (() if parts[-1] == "__init__" else (parts[-1],)))
    importlib.import_module(name)
print(",".join(sorted(m for m in ("click", "vapoursynth") if m in sys.modules)))
"""

def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_source_never_imports_a_front_end():
    package = Path(vidcolor.__file__).parent
    offenders = {
        str(path.relative_to(package)): sorted(imported_roots(path) & set(FRONT_END_MODULES))
        for path in package.rglob("*.py")
        if path.relative_to(package).parts[0] not in FRONT_ENDS
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert "run/pipeline.py" in offenders and "colorizers/base.py" in offenders  # the scan saw the core


def test_scan_catches_a_front_end_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import os\nfrom tqdm.auto import tqdm\n")
    assert "tqdm" in imported_roots(sample)


def test_importing_every_core_module_loads_neither_click_nor_vapoursynth():
    # (torch itself imports tqdm, so tqdm is checked on the source above, not at run time)
    result = subprocess.run([sys.executable, "-c", RUNTIME_PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"vidcolor core loaded {result.stdout.strip()}"


COLOURING_PROBE = """
import sys
from vidcolor.cli.main import main
main(sys.argv[1:], standalone_mode=False)
print(",".join(sorted(m for m in sys.modules if m == "vidcolor.training" or m.startswith("vidcolor.training."))))
"""


@pytest.mark.parametrize("model", ["default", "classic", "fast"])
def test_colouring_imports_no_training_module(tmp_path, model):
    # training code (2,500 lines, its data and optimiser set-up) stays out of every colouring run
    frames = color_frames(3, 64, 48)
    clip = write_clip(tmp_path / "in.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out.mkv"
    result = subprocess.run([sys.executable, "-c", COLOURING_PROBE, "colorize", str(clip), "-o", str(out),
                             "--ref", str(tmp_path / "ref.png"), "--model", model, "-q"],
                            capture_output=True, text=True, check=True)
    assert out.is_file()
    assert result.stdout.strip() == "", f"colouring with {model} imported {result.stdout.strip()}"


def test_readme_library_example_imports_and_the_old_names_still_do():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("## Library", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    imports = [line for line in example.splitlines() if line.startswith(("from vidcolor", "import vidcolor"))]
    assert len(imports) >= 4, example
    namespace: dict[str, object] = {}
    exec("\n".join(imports), namespace)  # every name the README's example imports exists
    from vidcolor.io.writer import resolve_output
    from vidcolor.pipeline import colorize_video as old_colorize_video
    from vidcolor.run.pipeline import colorize_video
    from vidcolor.writer import resolve_output as old_resolve_output
    assert old_colorize_video is colorize_video and old_resolve_output is resolve_output
