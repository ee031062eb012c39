"""``bench/closed_loop.py``, the in-process judge of v2d's semantic blend whose numbers the model card
cites, measures what it says: its ``v1`` variant is v1's output, the shipped head really blends, and the
cases are ``bench/quality.py``'s."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

from helpers import REPO, shared_path
from test_autocolor import bench_module


def test_closed_loop_v1_variant_is_the_network_without_the_semantic_match(tmp_path: Path) -> None:
    shared_path("clips/davis/blackswan")
    bench = bench_module("closed_loop")
    quality = sys.modules["quality"]  # the module the bench imported its cases from
    assert Path(quality.__file__) == REPO / "bench" / "quality.py"
    assert (bench.CASES["mirrored"], bench.CASES["left-half"]) == (quality.mirrored, quality.left_half)

    report_path = tmp_path / "closed.json"
    assert bench.main(["--clips", "blackswan", "--frames", "4", "--cases", "mirrored",
                       "--variants", "head,v1,w1,oracle", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text(encoding="utf-8"))["variants"]
    mse = {name: report[name]["mirrored"]["clips"]["blackswan"]["mse_per_frame"] for name in report}
    assert all(len(errors) == 3 and all(math.isfinite(e) and e > 0 for e in errors) for errors in mse.values())
    # The head's weight is neither 0 nor 1 everywhere: its output differs from both ends.
    assert mse["head"] != pytest.approx(mse["v1"], rel=1e-4)
    assert mse["head"] != pytest.approx(mse["w1"], rel=1e-4)
    assert report["head"]["mirrored"]["mean_mse"] == pytest.approx(sum(mse["head"]) / 3)

    # Weight 0 is exactly the network with the semantic match switched off (v1's path through step).
    colorizer = bench.DefaultColorizer()
    colorizer.model.cfg = dataclasses.replace(colorizer.model.cfg, semantic=False)
    truth = bench.load_truth(bench.find_clips({"blackswan"})[0].folder, 4)
    without = bench.run_case(colorizer, bench.Variant("head"), truth, "mirrored", "blackswan")
    assert without["mse_per_frame"] == pytest.approx(mse["v1"], abs=1e-9)
