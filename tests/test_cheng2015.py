"""The cheng2015 automatic model: descriptors, cluster routing, joint bilateral refinement, and the
shipped weights against gray and sepia on real BSDS500 test photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.color import gray_to_lightness, rgb_codes, rgb_to_gray, rgb_to_lab
from vidcolor.report.metrics import colorfulness
from vidcolor.models.cheng2015 import (
    DESCRIPTOR_SIZE,
    GLOBAL_SIZE,
    PATCH,
    Cheng2015,
    Cheng2015Config,
    RefineSettings,
    daisy_features,
    default_weights_path,
    global_descriptor,
    joint_bilateral,
    load_cheng2015,
    nearest_cluster,
    pixel_descriptors,
)
from vidcolor.training.cheng2015 import raw_accuracy_auc, score

#: Photos of the benchmark folder the shipped model is checked on (fixed, sorted by name).
BENCH_PHOTOS = 8


def _scene(height: int = 48, width: int = 64) -> np.ndarray:
    """Lightness with a gradient, a bright disc and some texture: every descriptor part responds."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = 20 + 40 * xx / width + 10 * np.sin(yy / 3.0)
    image[(yy - height / 2) ** 2 + (xx - width / 3) ** 2 < 100] = 85
    return image.astype(np.float32)


def test_descriptors_have_the_papers_parts_and_are_deterministic() -> None:
    lightness = _scene()
    first = pixel_descriptors(lightness)
    assert first.shape == (48, 64, DESCRIPTOR_SIZE) and first.dtype == np.float32
    assert DESCRIPTOR_SIZE == 49 + 32 + 3
    np.testing.assert_array_equal(first, pixel_descriptors(lightness.copy()))
    # The patch's centre is the pixel itself (lightness / 100 - 0.5).
    centre = (PATCH * PATCH) // 2
    np.testing.assert_allclose(first[..., centre], lightness / 100 - 0.5, atol=1e-6)
    # The patch holds the neighbours: one row up is PATCH entries earlier.
    np.testing.assert_allclose(first[10, 20, centre - PATCH], lightness[9, 20] / 100 - 0.5, atol=1e-6)
    # DAISY is 4 locations x 8 orientations, zero on a flat image, positive on texture.
    assert daisy_features(np.full((40, 40), 50, np.float32)).max() == pytest.approx(0.0, abs=1e-6)
    assert daisy_features(lightness).shape == (48, 64, 32) and daisy_features(lightness).max() > 0
    assert global_descriptor(lightness).shape == (GLOBAL_SIZE,)


def test_router_picks_the_nearest_centre() -> None:
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    assert nearest_cluster(np.array([9.0, 1.0]), centres) == 1
    assert nearest_cluster(np.array([1.0, 6.0]), centres) == 2
    assert nearest_cluster(np.array([-3.0, -3.0]), centres) == 0
    # The model standardises the global descriptor before routing.
    model = Cheng2015(Cheng2015Config(clusters=3, hidden=8))
    dark, bright = _scene() * 0.3, np.clip(_scene() * 1.2, 0, 100)
    with torch.no_grad():
        model.global_mean.copy_(torch.from_numpy(global_descriptor(_scene())))
        model.global_std.fill_(0.5)
        for index, image in enumerate((dark, _scene(), bright)):
            model.centres[index] = (torch.from_numpy(global_descriptor(image)) - model.global_mean) / model.global_std
    assert [model.route(image) for image in (bright, dark, _scene())] == [2, 0, 1]


def test_joint_bilateral_keeps_chroma_on_its_side_of_a_luma_edge() -> None:
    height, width = 40, 80
    lightness = np.full((height, width), 25.0, np.float32)
    lightness[:, width // 2:] = 75.0
    ab = np.zeros((height, width, 2), np.float32)
    ab[:, : width // 2, 0], ab[:, width // 2:, 0] = 40.0, -40.0
    ab += np.random.default_rng(0).normal(0, 6, ab.shape).astype(np.float32)
    settings = RefineSettings()
    refined = joint_bilateral(ab, lightness, settings)
    blurred = cv2.GaussianBlur(ab, (settings.diameter, settings.diameter), settings.sigma_space)
    near = slice(width // 2 - 3, width // 2 + 3)
    truth = np.where(np.arange(width)[near] < width // 2, 40.0, -40.0)
    bleed_jbf = np.abs(refined[:, near, 0] - truth).mean()
    bleed_blur = np.abs(blurred[:, near, 0] - truth).mean()
    assert bleed_jbf < 0.25 * bleed_blur, (bleed_jbf, bleed_blur)
    # ... and it does smooth the noise inside flat regions.
    assert refined[:, 5:25, 0].std() < 0.5 * ab[:, 5:25, 0].std()


def test_raw_accuracy_auc() -> None:
    truth = np.zeros((10, 10, 2), np.float32)
    assert raw_accuracy_auc(truth, truth) == pytest.approx(1.0)
    off = truth.copy()
    off[..., 0] = 75.0
    assert raw_accuracy_auc(off, truth) == pytest.approx(0.5, abs=0.01)
    assert raw_accuracy_auc(truth + 200, truth) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def shipped() -> Cheng2015:
    path = default_weights_path()
    if not path.is_file():
        pytest.fail(f"the shipped cheng2015 weights are missing at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    assert all(isinstance(t, torch.Tensor) for t in payload["state_dict"].values())
    assert path.stat().st_size < 20_000_000
    model, meta = load_cheng2015(path)
    assert "bsds500/test" in str(meta["data"])  # named as excluded
    return model


def test_shipped_model_beats_gray_and_sepia_on_bsds500_test(shipped: Cheng2015) -> None:
    from vidcolor.colorizers.cheng2015 import Cheng2015Colorizer

    torch.set_num_threads(1)
    folder = shared_path("photos/bsds500/test")
    colorizer = Cheng2015Colorizer()
    # CSS sepia(1) of the gray picture (as bench/automatic.py): a warm tint, stronger in light tones.
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    auc = {"gray": [], "cheng2015": []}
    cf = {"sepia": [], "cheng2015": []}
    for path in sorted(folder.glob("*.jpg"))[:BENCH_PHOTOS]:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        rgb = cv2.resize(rgb, (rgb.shape[1] * 256 // min(rgb.shape[:2]), rgb.shape[0] * 256 // min(rgb.shape[:2])),
                         interpolation=cv2.INTER_AREA)
        gray = rgb_to_gray(rgb)
        frame = colorizer.step(gray_to_lightness(gray), None)
        assert frame.ab.shape == rgb.shape[:2] + (2,) and frame.confidence.shape == rgb.shape[:2]
        assert 0.0 <= frame.confidence.min() and frame.confidence.max() <= 1.0
        auc["gray"].append(score(rgb, np.zeros_like(frame.ab))["auc"])
        auc["cheng2015"].append(score(rgb, frame.ab)["auc"])
        sepia_ab = rgb_to_lab(np.clip(np.repeat(gray[..., None], 3, axis=-1) @ sepia.T, 0, 1).astype(np.float32))[..., 1:]
        cf["sepia"].append(colorfulness(rgb_codes(gray, sepia_ab, 8)))
        cf["cheng2015"].append(colorfulness(rgb_codes(gray, frame.ab, 8)))
    assert np.mean(auc["cheng2015"]) > np.mean(auc["gray"]), auc
    assert np.mean(cf["cheng2015"]) > np.mean(cf["sepia"]), cf


def test_colorizer_ignores_the_reference_and_describes_itself(shipped: Cheng2015) -> None:
    from vidcolor.colorizers.cheng2015 import Cheng2015Colorizer
    from vidcolor.references import Reference

    colorizer = Cheng2015Colorizer(stride=2)
    lightness = cv2.resize(_scene(), (96, 72))
    reference = Reference("red", np.tile(np.array([1.0, 0.0, 0.0], np.float32), (20, 20, 1)))
    plain = colorizer.step(lightness, None)
    with_ref = colorizer.step(lightness, reference)
    np.testing.assert_array_equal(plain.ab, with_ref.ab)
    assert plain.ab.dtype == np.float32 and plain.ab.shape == (72, 96, 2)
    assert colorizer.describe() == {"model": "cheng2015", "stride": 2, "refine": True, "vibrancy": 1.0, "weights": "shipped"}
    np.testing.assert_allclose(Cheng2015Colorizer(stride=2, vibrancy=0.5).step(lightness, None).ab, 0.5 * plain.ab, atol=1e-5)
    with pytest.raises(ValueError, match="vibrancy"):
        Cheng2015Colorizer(vibrancy=-1)
    # A frame larger than the trained scale is colorized near 256 px and upsampled.
    big = colorizer.step(cv2.resize(lightness, (640, 480)), None)
    assert big.ab.shape == (480, 640, 2)
