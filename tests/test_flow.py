"""Flow estimators, the warp/visibility convention, and weight lookup with its DIS fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidcolor.errors import InputError, WeightsMismatchError
from vidcolor.correspondence.flow import (
    RAFT_WEIGHT_FILES,
    DISFlow,
    RAFTFlow,
    compose,
    find_raft_weights,
    global_shift,
    forward_backward,
    make_flow,
    visible_mask,
    warp,
)

torch.set_num_threads(1)


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random gray texture in [0, 1]: enough structure for any flow method."""
    rng = np.random.default_rng(seed)
    noise = rng.random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min())


def shifted_pair(dx: int, height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``dst`` is ``src`` moved right by ``dx`` pixels: src[y, x] == dst[y, x + dx]."""
    big = texture(height, width + 2 * abs(dx) + 8, seed=3)
    start = abs(dx) + 4
    src = big[:, start : start + width]
    dst = big[:, start - dx : start - dx + width]
    return np.ascontiguousarray(src), np.ascontiguousarray(dst)


@pytest.fixture(autouse=True)
def isolated_weight_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No RAFT weights anywhere unless a test puts them there; returns raft-small's cache folder."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setenv("VIDCOLOR_HOME", str(tmp_path / "home"))
    from vidcolor.weights import model_dir

    return model_dir("raft-small")


def test_warp_pulls_dst_onto_src_grid() -> None:
    image = np.arange(40, dtype=np.float32).reshape(5, 8)
    flow = np.zeros((5, 8, 2), np.float32)
    flow[..., 0] = 2.0
    out = warp(image, flow)
    assert np.array_equal(out[:, :6], image[:, 2:])


def test_dis_follows_the_flow_convention() -> None:
    src, dst = shifted_pair(5)
    flow = DISFlow()(src, dst)
    interior = flow[16:-16, 16:-16]
    assert np.median(interior[..., 0]) == pytest.approx(5.0, abs=0.3)
    assert np.median(interior[..., 1]) == pytest.approx(0.0, abs=0.3)
    assert np.abs(warp(dst, flow) - src)[16:-16, 16:-16].mean() < 0.02


def test_visible_mask_marks_pixels_that_leave_the_frame() -> None:
    forward = np.zeros((10, 20, 2), np.float32)
    forward[..., 0] = 4.0
    backward = -forward
    visible = visible_mask(forward, backward)
    assert visible[:, :15].all()
    assert not visible[:, 17:].any()


def test_visible_mask_rejects_inconsistent_flow() -> None:
    forward = np.zeros((10, 10, 2), np.float32)
    backward = np.zeros((10, 10, 2), np.float32)
    backward[2:5, 2:5, 0] = 3.0  # the way back disagrees here: occluded
    visible = visible_mask(forward, backward)
    assert not visible[2:5, 2:5].any()
    assert visible.sum() == 100 - 9


@pytest.mark.parametrize("estimator", [DISFlow(), RAFTFlow("raft-small", device="cpu", num_flow_updates=2)],
                         ids=["dis", "raft-small-random"])
def test_forward_backward_same_path_for_every_estimator(estimator: object) -> None:
    src, dst = shifted_pair(3, height=75, width=100)  # not a multiple of 8: RAFT pads
    pair = forward_backward(estimator, src, dst)  # type: ignore[arg-type]
    assert pair.forward.shape == (75, 100, 2) and pair.forward.dtype == np.float32
    assert pair.backward.shape == (75, 100, 2)
    assert pair.visible.shape == (75, 100) and pair.visible.dtype == bool
    assert 0.0 <= pair.occluded_fraction <= 1.0
    assert np.isfinite(pair.forward).all()


def test_raft_batched_pair_matches_separate_calls() -> None:
    torch.manual_seed(0)
    raft = RAFTFlow("raft-small", device="cpu", num_flow_updates=3)
    src, dst = shifted_pair(2, height=64, width=80)
    forward, backward = raft.pair(src, dst, both=True)
    assert backward is not None
    assert np.allclose(forward, raft(src, dst), atol=1e-3)
    assert np.allclose(backward, raft(dst, src), atol=1e-3)


def test_raft_rejects_mismatched_frames() -> None:
    raft = RAFTFlow("raft-small", device="cpu", num_flow_updates=1)
    with pytest.raises(InputError, match="one shape"):
        raft(np.zeros((64, 64), np.float32), np.zeros((64, 72), np.float32))


def test_missing_raft_weights_fall_back_to_dis_with_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vidcolor.correspondence.flow"):
        estimator = make_flow("raft-small", device="cpu")
    assert isinstance(estimator, DISFlow)
    notice = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert notice and "falling back to OpenCV DIS" in notice[0].getMessage()
    assert "vidcolor models import raft-small" in notice[0].getMessage()
    assert RAFT_WEIGHT_FILES["raft-small"] in notice[0].getMessage()


def test_auto_without_weights_is_dis_with_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vidcolor.correspondence.flow"):
        estimator = make_flow("auto", device="cpu")
    assert isinstance(estimator, DISFlow)
    assert any("no RAFT weights installed" in r.getMessage() for r in caplog.records)


def test_installed_weights_are_found_and_loaded(isolated_weight_dirs: Path) -> None:
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(1)
    isolated_weight_dirs.mkdir(parents=True, exist_ok=True)
    model = raft_small(weights=None)
    path = isolated_weight_dirs / RAFT_WEIGHT_FILES["raft-small"]
    torch.save(model.state_dict(), path)
    assert find_raft_weights("raft-small") == path
    assert find_raft_weights("raft-large") is None
    for method in ("raft-small", "auto"):
        estimator = make_flow(method, device="cpu")
        assert isinstance(estimator, RAFTFlow) and estimator.name == "raft-small"
        loaded = estimator.model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_torch_hub_cache_is_searched(tmp_path: Path) -> None:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    from torchvision.models.optical_flow import raft_small

    torch.save(raft_small(weights=None).state_dict(), hub / RAFT_WEIGHT_FILES["raft-small"])
    assert find_raft_weights("raft-small") == hub / RAFT_WEIGHT_FILES["raft-small"]


def test_wrong_weights_are_a_clear_error(isolated_weight_dirs: Path) -> None:
    from torchvision.models.optical_flow import raft_large

    isolated_weight_dirs.mkdir(parents=True, exist_ok=True)
    path = isolated_weight_dirs / RAFT_WEIGHT_FILES["raft-small"]
    torch.save(raft_large(weights=None).state_dict(), path)  # large weights under the small name
    with pytest.raises(WeightsMismatchError, match="raft-small"):
        make_flow("raft-small", device="cpu")
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsMismatchError, match="not a torch weight file"):
        make_flow("raft-small", device="cpu")


def test_unknown_method_and_device_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown flow method"):
        make_flow("farneback")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            make_flow("auto", device="cuda")


def test_compose_chains_two_flows() -> None:
    """a→b then b→c: each pixel takes the second flow where the first one lands, not where it starts."""
    height, width = 20, 40
    first = np.zeros((height, width, 2), np.float32)
    first[..., 0] = 3.0  # everything moves 3 px right
    second = np.zeros((height, width, 2), np.float32)
    second[..., 1] = np.arange(width, dtype=np.float32)[None, :] * 0.1  # downward motion growing with x
    chained = compose(first, second)
    assert np.allclose(chained[..., 0], 3.0)
    x = np.arange(width - 3, dtype=np.float32)
    assert np.allclose(chained[:, : width - 3, 1], (x + 3.0) * 0.1, atol=1e-5)


def test_global_shift_finds_a_pan_and_declines_unrelated_frames() -> None:
    """The flow estimator's start for a far reference: one translation for the whole frame, in the
    flow's convention (src pixel x is found at x + shift in dst), or None when none fits."""
    ground = texture(140, 240)
    src = ground[10:130, 20:220]
    panned = ground[15:135, 8:208]  # the view moved: src's content is 12 px right and 5 px up in it
    dx, dy = global_shift(src, panned)
    assert abs(dx - 12) < 1.0 and abs(dy + 5) < 1.0  # a start for a flow estimator, not a measurement
    assert global_shift(src, texture(120, 200, seed=5)) is None
