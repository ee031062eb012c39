"""Numerical parity of vidcolor's DeepEx networks with the official ones, on the parity fixture.

The fixture (``../shared/fixtures/deepex-parity``, or ``$VIDCOLOR_PARITY_FIXTURE``) holds inputs
and the official networks' outputs for synthetic weights defined by a seeded rule; we rebuild the
weights from its manifest with :func:`vidcolor.weights.synthetic_state_dict`, check them against
its checksums, run our networks and compare every saved intermediate with the fixture README's
tolerances (its section 7): float32 as production runs, and float64 as the strict proof.

Runtime: float64 convolutions are slow on CPU, so by default the float64 recurrence runs frames 0
and 1 (frame 1 already exercises the previous-frame feedback; frame 2 repeats the same step and
is covered in float32 by the warp and teacher-forced checks). ``VIDCOLOR_PARITY_FULL=1`` runs all
three frames in float64; ``VIDCOLOR_PARITY_THREADS`` sets torch's thread count (default 1).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES
from vidcolor.errors import WeightsMismatchError
from vidcolor.models import deepex as dx
from vidcolor.weights import synthetic_state_dict

FIXTURE = Path(os.environ.get("VIDCOLOR_PARITY_FIXTURE") or FIXTURES / "deepex-parity")
NETWORKS = ("vggnet", "nonlocal_net", "colornet")
IMAGES = ("ref", "f0", "f1", "f2")
VGG_BLOCKS = {"r12": (0, 64), "r22": (64, 192), "r32": (192, 448), "r42": (448, 960), "r52": (960, 1472)}
WARP_BLOCKS = {"layer2_1": (0, 64), "layer3_1": (64, 128), "layer4_1": (128, 192), "layer5_1": (192, 256), "layer": (256, 512), "proj": (512, 768)}
F64_FRAMES = 3 if os.environ.get("VIDCOLOR_PARITY_FULL") == "1" else 2

pytestmark = pytest.mark.shared_data(FIXTURE / "manifest.json")  # or set VIDCOLOR_PARITY_FIXTURE to its folder


@pytest.fixture(scope="module", autouse=True)
def _threads() -> Iterator[None]:
    """One thread by default: about 50 s on an idle or a busy 2-core box (2 threads win only when idle)."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("VIDCOLOR_PARITY_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((FIXTURE / "manifest.json").read_text())


@pytest.fixture(scope="module")
def state_dicts(manifest: dict) -> dict[str, dict[str, torch.Tensor]]:
    return {net["name"]: synthetic_state_dict([(k, tuple(s)) for k, s in net["tensors"]], int(net["seed"])) for net in manifest["networks"]}


def _inputs(name: str) -> np.ndarray:
    return np.load(FIXTURE / "fixture" / "inputs" / name)


def _expected(mode: str, name: str) -> np.ndarray:
    return np.load(FIXTURE / "fixture" / f"expected_{mode}" / name)


class Report:
    """Collects (label, value, tolerance) and fails with every violation listed at once."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []

    def check(self, label: str, value: float, tol: float) -> None:
        self.rows.append((label, float(value), float(tol)))

    def assert_all(self) -> None:
        for label, value, tol in self.rows:
            print(f"{'ok  ' if value <= tol else 'FAIL'} {label:<55} {value:.3g} (tol {tol:.3g})")
        failed = [f"{label}: {value:.4g} > {tol:.3g}" for label, value, tol in self.rows if not value <= tol]
        assert not failed, "parity failures:\n  " + "\n  ".join(failed)


# --------------------------------------------------------------------------------------------
# Weights and layout
# --------------------------------------------------------------------------------------------


def test_synthetic_weights_match_fixture_checksums(manifest: dict, state_dicts: dict) -> None:
    checksums = json.loads((FIXTURE / "fixture" / "weights_checksums.json").read_text())
    for net in manifest["networks"]:
        name = net["name"]
        state = state_dicts[name]
        whole = hashlib.sha256()
        for (key, sha16, total, first3), (k, v) in zip(checksums[name]["tensors_[key,sha256[:16],sum,first3]"], state.items(), strict=True):
            data = v.numpy().astype("<f4").tobytes()
            whole.update(data)
            assert k == key
            assert hashlib.sha256(data).hexdigest()[:16] == sha16, f"{name}.{key}: tensor differs from the fixture's"
            assert float(v.double().sum()) == pytest.approx(total, rel=1e-9, abs=1e-9)
            assert v.flatten()[:3].tolist() == pytest.approx(first3, rel=0, abs=0)
        assert whole.hexdigest() == checksums[name]["sha256_all_float32_le_in_manifest_order"], name
        assert sum(v.numel() for v in state.values()) == net["n_params"]


@pytest.mark.parametrize("network", NETWORKS)
def test_state_dict_layout_is_the_official_one(manifest: dict, network: str) -> None:
    """Same keys, shapes and order as the official classes, so real checkpoints load strictly."""
    official = next(n for n in manifest["networks"] if n["name"] == network)
    assert dx.expected_tensors(network) == [(k, tuple(s)) for k, s in official["tensors"]]


def test_state_dicts_load_strictly_with_module_prefix(state_dicts: dict) -> None:
    prefixed = {k: {f"module.{key}": v for key, v in sd.items()} for k, sd in state_dicts.items()}
    net = dx.DeepExNet.from_state_dicts(prefixed["vggnet"], prefixed["nonlocal_net"], prefixed["colornet"])
    assert torch.equal(net.colornet.conv10_ab.weight, state_dicts["colornet"]["conv10_ab.weight"])
    broken = dict(state_dicts["colornet"])
    broken.pop("conv10_ab.bias")
    with pytest.raises(WeightsMismatchError, match="conv10_ab.bias"):
        dx.DeepExNet.from_state_dicts(state_dicts["vggnet"], state_dicts["nonlocal_net"], broken)


def test_official_lab_to_rgb_reproduces_the_vgg_reference_input() -> None:
    rgb = dx.official_lab_to_rgb(torch.from_numpy(_inputs("ref_lab.npy")))
    assert float((rgb - torch.from_numpy(_inputs("ref_rgb.npy"))).abs().max()) < 5e-7


# --------------------------------------------------------------------------------------------
# float32
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Our outputs in the fixture's layout (numpy), for one precision."""

    vgg: dict[str, list[np.ndarray]] = field(default_factory=dict)
    warp_chanstats: np.ndarray | None = None
    argmax: list[np.ndarray] = field(default_factory=list)
    sim_q: list[np.ndarray] = field(default_factory=list)
    lab_q: list[np.ndarray] = field(default_factory=list)
    soft_lab_q: list[np.ndarray] = field(default_factory=list)
    color_ab: list[np.ndarray] = field(default_factory=list)
    color_ab_tf: list[np.ndarray] = field(default_factory=list)


def _chanstats(x: torch.Tensor) -> torch.Tensor:
    flat = x[0].flatten(1).double()
    return torch.stack([flat.mean(1), flat.std(1)], 1)


@pytest.fixture(scope="module")
def f32_run(state_dicts: dict) -> Run:
    """VGG on all four images, the warp of 3 frames (T=1e-10 and 0.01), teacher-forced ColorVidNet."""
    net = dx.DeepExNet.from_state_dicts(state_dicts["vggnet"], state_dicts["nonlocal_net"], state_dicts["colornet"])
    frames = torch.from_numpy(_inputs("frames_lab.npy"))
    ref_lab = torch.from_numpy(_inputs("ref_lab.npy"))
    ref_rgb = torch.from_numpy(_inputs("ref_rgb.npy"))
    warp_q = torch.from_numpy(_expected("f32", "warp_lab_q.npy"))
    sim_q = torch.from_numpy(_expected("f32", "warp_sim_q.npy"))
    expected_ab = torch.from_numpy(_expected("f32", "color_ab.npy"))
    run = Run()
    warp = net.nonlocal_net
    captured: dict[str, torch.Tensor] = {}
    hooks = [getattr(warp, n).register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o)) for n in ("layer2_1", "layer3_1", "layer4_1", "layer5_1", "layer", "theta", "phi")]
    stats = []
    with torch.inference_mode():
        images = [ref_rgb] + [dx.gray_vgg_input(frames[i : i + 1, 0:1]) for i in range(3)]
        feats = [net.vggnet(x, taps=tuple(VGG_BLOCKS)) for x in images]
        run.vgg = {tap: [f[tap][0].numpy() for f in feats] for tap in VGG_BLOCKS}
        keys = warp.reference_keys(feats[0])
        side_b = torch.cat([_chanstats(captured[n]) for n in ("layer2_1", "layer3_1", "layer4_1", "layer5_1", "layer", "phi")])
        pooled = torch.nn.functional.avg_pool2d(ref_lab, 4)
        values = pooled[0].flatten(1).t().contiguous()
        for i in range(3):
            queries = warp.frame_keys(feats[i + 1])
            side_a = torch.cat([_chanstats(captured[n]) for n in ("layer2_1", "layer3_1", "layer4_1", "layer5_1", "layer", "theta")])
            stats.append(torch.stack([side_a, side_b]))
            hard = dx.correspond(queries, keys, values, (54, 96))
            soft = dx.correspond(queries, keys, values, (54, 96), temperature=0.01)
            run.argmax.append(hard.index.numpy())
            run.sim_q.append(hard.similarity.numpy())
            run.lab_q.append(hard.warped.numpy())
            run.soft_lab_q.append(soft.warped.numpy())
            l_i = frames[i : i + 1, 0:1]
            # Teacher forcing: the fixture's own warp maps and previous output.
            forced = dx.Correspondence(warp_q[i], sim_q[i, 0], None)
            previous = None if i == 0 else torch.cat([frames[i - 1 : i, 0:1], expected_ab[i - 1 : i]], dim=1)
            run.color_ab_tf.append(net.colorize(l_i, forced, previous)[0].numpy())
            if i == 0:
                run.color_ab.append(net.colorize(l_i, hard, None)[0].numpy())
    for h in hooks:
        h.remove()
    run.warp_chanstats = torch.stack(stats).numpy()
    return run


def test_vgg_features_f32(f32_run: Run) -> None:
    report = Report()
    r52 = _expected("f32", "vgg_r52.npy")
    corner = _expected("f32", "vgg_corner8.npy")
    chanstats = _expected("f32", "vgg_chanstats.npy").astype(np.float64)
    for i, image in enumerate(IMAGES):
        ours = f32_run.vgg["r52"][i]
        report.check(f"vgg_r52[{image}] max|d| / max|expected|", np.abs(ours - r52[i]).max() / np.abs(r52[i]).max(), 1e-5)
        for tap, (s, t) in VGG_BLOCKS.items():
            feat = f32_run.vgg[tap][i].astype(np.float64)
            if tap != "r52":
                e = corner[i, s:t]
                report.check(f"vgg_corner8[{image},{tap}] rel", np.abs(feat[:, :8, :8] - e).max() / max(np.abs(e).max(), 1e-12), 1e-5)
            flat = feat.reshape(feat.shape[0], -1)
            mine = np.stack([flat.mean(1), flat.std(1, ddof=1), flat.max(1)], 1)
            e = chanstats[i, s:t]
            rel = np.abs(mine - e).max(0) / np.maximum(np.abs(e).max(0), 1e-12)
            report.check(f"vgg_chanstats[{image},{tap}] rel (mean,std,max)", rel.max(), 1e-5)
    report.assert_all()


def test_warpnet_internals_f32(f32_run: Run) -> None:
    """Branch-by-branch channel stats, to localise a WarpNet mismatch (not a README criterion)."""
    report = Report()
    expected = _expected("f32", "warp_chanstats.npy").astype(np.float64)
    assert f32_run.warp_chanstats is not None
    for i in range(3):
        for side, label in ((0, "frame"), (1, "reference")):
            for block, (s, t) in WARP_BLOCKS.items():
                e, ours = expected[i, side, s:t], f32_run.warp_chanstats[i, side, s:t]
                report.check(f"warp_chanstats f{i} {label} {block} rel", (np.abs(ours - e).max(0) / np.abs(e).max(0)).max(), 1e-5)
    report.assert_all()


def test_correspondence_f32(f32_run: Run) -> None:
    report = Report()
    margin = _expected("f32", "warp_margin.npy")
    argmax = _expected("f32", "warp_argmax.npy")
    for i in range(3):
        robust = margin[i] >= 2e-5
        report.check(f"warp_argmax f{i} mismatches where margin>=2e-5", int((f32_run.argmax[i] != argmax[i])[robust].sum()), 0)
        report.check(f"warp_sim_q f{i} max|d|", np.abs(f32_run.sim_q[i] - _expected("f32", "warp_sim_q.npy")[i, 0]).max(), 2e-5)
        agree = (f32_run.argmax[i] == argmax[i]).reshape(54, 96)
        report.check(f"warp_lab_q f{i} max|d| where argmax agrees", np.abs(f32_run.lab_q[i] - _expected("f32", "warp_lab_q.npy")[i])[:, agree].max(), 1e-4)
        report.check(f"warp_soft_lab_q (T=0.01) f{i} max|d|", np.abs(f32_run.soft_lab_q[i] - _expected("f32", "warp_soft_lab_q.npy")[i]).max(), 2e-2)
    report.assert_all()


def test_colornet_f32(f32_run: Run) -> None:
    report = Report()
    expected = _expected("f32", "color_ab.npy").astype(np.float64)
    for i in range(3):
        d = np.abs(f32_run.color_ab_tf[i] - expected[i])
        report.check(f"color_ab teacher-forced f{i} max|d|", d.max(), 0.1)
        report.check(f"color_ab teacher-forced f{i} mean|d|", d.mean(), 0.01)
    d = np.abs(f32_run.color_ab[0] - expected[0])
    report.check("color_ab recurrent f0 max|d|", d.max(), 0.1)
    report.check("color_ab recurrent f0 mean|d|", d.mean(), 0.01)
    report.assert_all()


# --------------------------------------------------------------------------------------------
# float64: the strict proof
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def f64_run(state_dicts: dict) -> Run:
    """Our own recurrence in float64 (float32 inputs and weights cast up)."""
    net = dx.DeepExNet.from_state_dicts(state_dicts["vggnet"], state_dicts["nonlocal_net"], state_dicts["colornet"], dtype=torch.float64)
    frames = torch.from_numpy(_inputs("frames_lab.npy")).double()
    run = Run()
    with torch.inference_mode():
        ref = net.reference(torch.from_numpy(_inputs("ref_rgb.npy")).double(), torch.from_numpy(_inputs("ref_lab.npy")).double())
        previous = None
        for i in range(F64_FRAMES):
            l_i = frames[i : i + 1, 0:1]
            queries = net.nonlocal_net.frame_keys(net.vggnet(dx.gray_vgg_input(l_i)))
            hard = dx.correspond(queries, ref.keys, ref.values, ref.shape)
            soft = dx.correspond(queries, ref.keys, ref.values, ref.shape, temperature=0.01)
            ab = net.colorize(l_i, hard, previous)
            previous = torch.cat([l_i, ab], dim=1)
            run.argmax.append(hard.index.numpy())
            run.sim_q.append(hard.similarity.numpy())
            run.lab_q.append(hard.warped.numpy())
            run.soft_lab_q.append(soft.warped.numpy())
            run.color_ab.append(ab[0].numpy())
    return run


def test_recurrence_f64(f64_run: Run) -> None:
    report = Report()
    for i in range(F64_FRAMES):
        report.check(f"warp_argmax f{i} mismatches (f64)", int((f64_run.argmax[i] != _expected("f64", "warp_argmax.npy")[i]).sum()), 0)
        report.check(f"warp_sim_q f{i} max|d| (f64)", np.abs(f64_run.sim_q[i] - _expected("f64", "warp_sim_q.npy")[i, 0]).max(), 1e-6)
        report.check(f"warp_lab_q f{i} max|d| (f64)", np.abs(f64_run.lab_q[i] - _expected("f64", "warp_lab_q.npy")[i]).max(), 1e-5)
        report.check(f"warp_soft_lab_q f{i} max|d| (f64)", np.abs(f64_run.soft_lab_q[i] - _expected("f64", "warp_soft_lab_q.npy")[i]).max(), 1e-5)
        report.check(f"color_ab recurrent f{i} max|d| (f64)", np.abs(f64_run.color_ab[i] - _expected("f64", "color_ab.npy")[i]).max(), 1e-4)
    report.assert_all()
