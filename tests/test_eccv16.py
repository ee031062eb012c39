"""ECCV16 automatic colorizer: bins, soft-encoding, rebalancing, annealed mean, weight import, shipped model."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_fixture, shared_path
from vidcolor import weights
from vidcolor.color import rgb_to_gray_lightness, rgb_to_lab
from vidcolor.colorizers.eccv16 import Eccv16Colorizer, load_official, shipped_weights_path
from vidcolor.errors import InputError, WeightsMismatchError
from vidcolor.models import eccv16 as E
from vidcolor.training.eccv16 import auc_cmf, make_batch, photo_paths, rebalanced_loss, TrainConfig


def _manifest() -> list[tuple[str, tuple[int, ...]]]:
    data = json.loads(shared_fixture("eccv16/manifest.json").read_text(encoding="utf-8"))
    return [(k, tuple(s)) for k, s in data["keys"]]


# ------------------------------------------------------------------------------------------------ bins


def test_bins_are_313_grid_points_in_release_order() -> None:
    bins = E.ab_bins()
    assert bins.shape == (313, 2) and E.Q == 313
    assert len({tuple(b) for b in bins.tolist()}) == 313
    assert np.all(bins % 10 == 0)
    order = np.lexsort((bins[:, 1], bins[:, 0]))
    assert np.array_equal(order, np.arange(313)), "a-major then b, as the release's model_out stores them"
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100 and bins[:, 1].min() == -110 and bins[:, 1].max() == 100


def test_bins_cover_the_srgb_gamut_and_stay_close_to_it() -> None:
    v = np.linspace(0.0, 1.0, 33, dtype=np.float32)
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    ab = rgb_to_lab(rgb).reshape(-1, 3)[:, 1:]
    d = np.sqrt(((ab[:, None, :] - E.ab_bins()[None]) ** 2).sum(-1))
    # every sRGB colour falls into some bin's 10x10 cell ...
    assert d.min(axis=1).max() <= 5 * np.sqrt(2) + 1e-3
    # ... and every bin is a colour sRGB reaches or nearly reaches (the authors' empirical gamut)
    assert d.min(axis=0).max() < 15.0
    # the strict rule "a bin cell holds an sRGB colour" alone gives fewer bins than 313
    touched = np.unique(np.round(ab / 10.0), axis=0)
    assert 240 < len(touched) < 313


# ------------------------------------------------------------------------------------------------ encoding


def test_soft_encoding_sums_to_one_and_peaks_at_the_true_bin() -> None:
    centres = torch.from_numpy(E.ab_bins())
    rng = np.random.default_rng(0)
    ab = torch.from_numpy(rng.uniform(-60, 60, size=(7, 9, 2)).astype(np.float32))
    z = E.soft_encode(ab, centres)
    assert z.shape == (7, 9, 313)
    torch.testing.assert_close(z.sum(-1), torch.ones(7, 9))
    assert int((z > 0).sum(-1).max()) == E.SOFT_NEIGHBOURS == 5
    assert torch.equal(z.argmax(-1), E.nearest_bin(ab, centres))
    exact = E.soft_encode(centres[100:101], centres)[0]
    assert int(exact.argmax()) == 100 and exact[100] > 0.5


def test_annealed_mean_mode_at_zero_mean_at_one() -> None:
    centres = torch.from_numpy(E.ab_bins())
    logits = torch.randn(2, 313, 5, 6, generator=torch.Generator().manual_seed(1)) * 3
    mode = centres[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(E.annealed_mean(logits, centres, 0.0), mode)
    torch.testing.assert_close(E.annealed_mean(logits, centres, 1e-3), mode, atol=1e-3, rtol=0)
    mean = torch.einsum("bqhw,qc->bchw", torch.softmax(logits, 1), centres)
    torch.testing.assert_close(E.annealed_mean(logits, centres, 1.0), mean)
    # the release's own head (softmax → model_out → x110) is exactly the T = 1 mean
    net = E.Eccv16Net(E.SMALL)
    torch.testing.assert_close(net.model_out(torch.softmax(logits, 1)) * E.AB_NORM, mean, atol=1e-4, rtol=1e-5)
    # lower temperature: more saturated on average
    chroma = [E.annealed_mean(logits, centres, t).norm(dim=1).mean() for t in (1.0, 0.38, 0.1)]
    assert chroma[0] < chroma[1] < chroma[2]


def test_rebalancing_weights_are_one_on_expectation_and_favour_rare_colours() -> None:
    rng = np.random.default_rng(2)
    counts = rng.pareto(1.5, size=313) * 100
    prior = E.smooth_prior(counts)
    assert prior.shape == (313,) and abs(prior.sum() - 1.0) < 1e-9 and prior.min() > 0
    w = E.rebalance_weights(prior, 0.5)
    assert abs(float((prior * w).sum()) - 1.0) < 1e-5
    assert w[np.argmin(prior)] > 1.0 > w[np.argmax(prior)]
    assert np.all(np.diff(w[np.argsort(prior)]) <= 1e-6), "weights fall as the prior rises"
    np.testing.assert_allclose(E.rebalance_weights(prior, 1.0), 1.0, rtol=1e-6)


def test_loss_and_auc() -> None:
    centres = torch.from_numpy(E.ab_bins())
    ab = torch.full((1, 4, 4, 2), 20.0)
    target = E.soft_encode(ab, centres).permute(0, 3, 1, 2)
    best = torch.log(target + 1e-9)  # predicting the soft target itself is optimal
    assert rebalanced_loss(best, ab, centres, None) < rebalanced_loss(best + 0.5 * torch.randn(best.shape), ab, centres, None)
    assert rebalanced_loss(best, ab, centres, None) < rebalanced_loss(torch.zeros_like(best), ab, centres, None)
    truth = np.zeros((8, 8, 2), np.float32)
    assert auc_cmf(truth, truth) == pytest.approx(1.0)
    assert auc_cmf(truth + 75 / np.sqrt(2), truth) == pytest.approx(0.5, abs=0.01)
    assert auc_cmf(truth + 200, truth) == 0.0


# ------------------------------------------------------------------------------------------------ official weights


def test_network_matches_the_release_manifest_exactly() -> None:
    assert E.expected_tensors(E.OFFICIAL) == _manifest()
    spec = weights.get_model("eccv16").files[0]
    assert spec.filename == "colorization_release_v2-9b330a0b.pth" and spec.sha256_prefix == "9b330a0b"
    assert spec.expected is not None and list(spec.expected()) == _manifest()


@pytest.fixture(scope="module")
def synthetic_state() -> dict[str, torch.Tensor]:
    """Deterministic weights with the manifest's keys and shapes; model_out holds the centres / 110."""
    state = weights.synthetic_state_dict(_manifest(), seed=16)
    state["model_out.weight"] = torch.from_numpy(E.ab_bins().T.copy()).reshape(2, 313, 1, 1) / E.AB_NORM
    return state


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv(weights.HOME_ENV, str(path))
    return path


def _save_named_by_hash(state: dict[str, torch.Tensor], folder: Path, stem: str) -> Path:
    """Save ``state`` under ``<stem>-<first 8 hex of its SHA-256>.pth``, as releases are named."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    prefix = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    return tmp.rename(folder / f"{stem}-{prefix}.pth")


@pytest.fixture
def test_spec() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        weights.unregister_model(name)


def test_synthetic_release_imports_strict_and_colorizes(home: Path, tmp_path: Path, synthetic_state: dict[str, torch.Tensor],
                                                       test_spec: list[str]) -> None:
    path = _save_named_by_hash(synthetic_state, tmp_path / "release", "colorization_synthetic")
    weights.register_model(weights.eccv16_spec("eccv16-synthetic", path.name))  # same factory as the real entry
    test_spec.append("eccv16-synthetic")
    assert weights.get_model("eccv16-synthetic").files[0].sha256_prefix == path.name.rsplit("-", 1)[1][:8]
    [done] = weights.import_weights("eccv16-synthetic", path)
    assert done.sha256.startswith(weights.get_model("eccv16-synthetic").files[0].sha256_prefix)
    net = load_official(model="eccv16-synthetic")
    torch.testing.assert_close(net.bin_centres(), torch.from_numpy(E.ab_bins()), atol=1e-4, rtol=0)
    colorizer = Eccv16Colorizer.from_network(net, "synthetic")
    lightness = np.tile(np.linspace(5, 95, 96, dtype=np.float32), (60, 1))
    frame = colorizer.step(lightness, None)
    assert frame.ab.shape == (60, 96, 2) and frame.confidence.shape == (60, 96)
    assert np.isfinite(frame.ab).all() and 0.0 <= frame.confidence.min() <= frame.confidence.max() <= 1.0
    assert np.abs(frame.ab).max() <= 120


def test_file_with_a_missing_key_is_refused(home: Path, tmp_path: Path, synthetic_state: dict[str, torch.Tensor],
                                            test_spec: list[str]) -> None:
    broken = {k: v for k, v in synthetic_state.items() if k != "model8.6.bias"}
    path = _save_named_by_hash(broken, tmp_path / "release", "colorization_broken")
    weights.register_model(weights.eccv16_spec("eccv16-broken", path.name))
    test_spec.append("eccv16-broken")
    with pytest.raises(WeightsMismatchError, match=r"missing keys: model8\.6\.bias"):
        weights.import_weights("eccv16-broken", path)
    assert not weights.installed_files("eccv16-broken")[path.name]


def test_file_with_the_wrong_hash_is_refused(home: Path, tmp_path: Path, synthetic_state: dict[str, torch.Tensor]) -> None:
    source = _save_named_by_hash(synthetic_state, tmp_path / "release", "x")
    fake = source.with_name(weights.ECCV16_RELEASE)  # right name, right keys, but not the authors' bytes
    shutil.copyfile(source, fake)
    with pytest.raises(WeightsMismatchError, match="starts with 9b330a0b"):
        weights.import_weights("eccv16", fake)
    assert not weights.installed_files("eccv16")[weights.ECCV16_RELEASE]
    assert not list(weights.model_dir("eccv16").glob("*.tmp"))


# ------------------------------------------------------------------------------------------------ colorizer, shipped model


def test_colorizer_settings_are_validated_and_described() -> None:
    net = E.Eccv16Net(E.SMALL)
    with pytest.raises(InputError, match="vibrancy"):
        Eccv16Colorizer.from_network(net, "x", vibrancy=1.5)
    with pytest.raises(InputError, match="fit"):
        Eccv16Colorizer.from_network(net, "x", fit="stretch")
    square = Eccv16Colorizer.from_network(net, "x", fit="square", net_short_side=64)
    aspect = Eccv16Colorizer.from_network(net, "x", net_short_side=64)
    lightness = np.random.default_rng(3).uniform(0, 100, size=(50, 130)).astype(np.float32)
    for colorizer in (square, aspect):
        out = colorizer.step(lightness, None)
        assert out.ab.shape == (50, 130, 2) and out.confidence.shape == (50, 130)
    assert aspect.describe() == {"model": "eccv16", "weights": "x", "vibrancy": 0.38, "chroma_gain": 1.0, "net_short_side": 64,
                                 "fit": "aspect", "upsample": "bilinear"}


def test_chroma_gain_scales_the_decoded_chroma_and_is_read_from_the_weights(tmp_path: Path) -> None:
    from vidcolor.training.eccv16 import inference_payload

    torch.manual_seed(0)
    net = E.Eccv16Net(E.SMALL)
    lightness = np.random.default_rng(4).uniform(0, 100, size=(64, 96)).astype(np.float32)
    plain = Eccv16Colorizer.from_network(net, "x", net_short_side=64).step(lightness, None).ab
    doubled = Eccv16Colorizer.from_network(net, "x", net_short_side=64, chroma_gain=2.0).step(lightness, None).ab
    assert np.abs(plain).max() > 0.1
    np.testing.assert_allclose(doubled, 2.0 * plain, rtol=1e-5, atol=1e-4)
    torch.save(inference_payload(net, {"chroma_gain": 2.0}), tmp_path / "w.pt")
    stored = Eccv16Colorizer(weights=tmp_path / "w.pt", net_short_side=64)
    assert stored.chroma_gain == 2.0
    np.testing.assert_allclose(stored.step(lightness, None).ab, doubled, rtol=1e-5, atol=1e-4)
    assert Eccv16Colorizer(weights=tmp_path / "w.pt", net_short_side=64, chroma_gain=1.0).chroma_gain == 1.0
    with pytest.raises(InputError, match="chroma_gain"):
        Eccv16Colorizer.from_network(net, "x", chroma_gain=5.0)


def test_benchmark_photos_are_never_trained_on() -> None:
    root = shared_path("photos")
    paths = photo_paths(root.parent)
    assert paths and not any("bsds500/test" in p.as_posix() for p in paths)
    batch = make_batch([np.full((150, 200, 3), 128, np.uint8)], TrainConfig(batch_size=2, crop=64), 0)
    assert batch.lightness.shape == (2, 1, 64, 64) and batch.ab.shape == (2, 16, 16, 2)


def test_shipped_small_model_beats_gray_on_held_out_photos() -> None:
    folder = shared_path("photos/bsds500/test")
    assert shipped_weights_path().is_file(), f"the shipped weights {shipped_weights_path()} are missing from the package"
    colorizer = Eccv16Colorizer(weights="shipped")
    ours, gray = [], []
    for path in sorted(folder.glob("*.jpg"))[::10]:  # 20 photos spread over the 200
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        truth = rgb_to_lab(rgb)[..., 1:]
        ab = colorizer.step(rgb_to_gray_lightness(rgb), None).ab
        ours.append(auc_cmf(ab, truth))
        gray.append(auc_cmf(np.zeros_like(truth), truth))
    assert np.mean(ours) > np.mean(gray)


def test_validation_reports_the_photos_own_chroma_for_the_calibrated_gain() -> None:
    from vidcolor.color import rgb_to_lab
    from vidcolor.training.eccv16 import validate

    torch.manual_seed(0)
    net = E.Eccv16Net(E.SMALL)
    yy, xx = np.mgrid[0:64, 0:96]
    photos = [np.dstack([xx * 2, yy * 3, 255 - xx * 2]).astype(np.uint8), np.full((64, 96, 3), (200, 60, 40), np.uint8)]
    result = validate(net, photos)
    expected = np.mean([np.hypot(*np.moveaxis(rgb_to_lab(p.astype(np.float32) / 255)[..., 1:], -1, 0)).mean() for p in photos])
    assert result["true_chroma"] > 20.0
    assert result["true_chroma"] == pytest.approx(expected, rel=1e-5)
    assert validate(net, [np.full((64, 96, 3), 128, np.uint8)])["true_chroma"] == pytest.approx(0.0, abs=0.05)
