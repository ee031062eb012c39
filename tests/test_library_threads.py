"""The README's library example runs as the CLI does: same torch threads, same frames.

Torch starts with a thread per core; left there, a library run on a busy 2-core machine took 50 s
against the CLI's 13 s for the same 180 frames, and its frames differed (float sums split
differently). :func:`vidcolor.colorizers.build_colorizer` now applies the CLI's thread policy.
"""

from __future__ import annotations

import subprocess
import sys

import av
import cv2
import numpy as np

from helpers import color_frames, write_clip

#: README's "Library" example on argv's clip and reference, in a process whose torch starts on
#: 2 threads (its default on a 2-core machine, forced so that the test means the same anywhere);
#: then a count given to set_torch_threads, which build_colorizer must keep, and a later call with
#: None, after which the policy decides again. Prints the three counts.
_LIBRARY = """
import sys, torch
torch.set_num_threads(2)
from vidcolor.colorizers import build_colorizer, set_torch_threads
from vidcolor.io.writer import resolve_output
from vidcolor.references import load_reference
from vidcolor.run.pipeline import colorize_video
from vidcolor.schedule import ReferenceSchedule
from vidcolor.temporal import TemporalSettings

colorizer = build_colorizer("default", temporal=TemporalSettings())
colorize_video(sys.argv[1], resolve_output(sys.argv[3], codec="ffv1"), ReferenceSchedule.single(load_reference(sys.argv[2])),
               colorizer)
used = torch.get_num_threads()
set_torch_threads(2, "default")
build_colorizer("default")
chosen = torch.get_num_threads()
set_torch_threads(None, "default")
build_colorizer("default")
print(used, chosen, torch.get_num_threads())
"""


def test_the_library_example_uses_the_cli_threads_and_gives_its_frames(tmp_path):
    source = write_clip(tmp_path / "c.mp4", color_frames(24, 320, 240, seed=2), gray=True)
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 320, 240, seed=2)[0], cv2.COLOR_RGB2BGR))
    cli_out, library_out = tmp_path / "cli.mkv", tmp_path / "library.mkv"
    subprocess.run([sys.executable, "-m", "vidcolor", "colorize", str(source), "-o", str(cli_out), "--ref", str(reference),
                    "--codec", "ffv1", "-q"], check=True, capture_output=True)
    run = subprocess.run([sys.executable, "-c", _LIBRARY, str(source), str(reference), str(library_out)],
                         check=True, capture_output=True, text=True)
    used, chosen, released = run.stdout.split()
    assert used == "1", f"the library run used {used} torch threads, the CLI's policy gives the default model 1"
    assert chosen == "2", "a count given to set_torch_threads (the CLI's --threads) must survive build_colorizer"
    assert released == "1", "after set_torch_threads(None, ...) the policy decides again, not the earlier count"
    with av.open(str(cli_out)) as cli, av.open(str(library_out)) as library:
        pairs = list(zip(cli.decode(video=0), library.decode(video=0), strict=True))
    differing = [i for i, (a, b) in enumerate(pairs) if not np.array_equal(a.to_ndarray(format="yuv444p"), b.to_ndarray(format="yuv444p"))]
    assert len(pairs) == 24 and not differing, f"{len(differing)} of {len(pairs)} frames differ from the CLI's, first {differing[:5]}"
