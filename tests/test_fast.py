"""The ``fast`` model (FastNet, Color2Embed-style): modulation, TPS self-augmentation, shipped weights, real frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.color import lab_to_rgb, rgb_to_lab
from vidcolor.colorizers.fast import FastColorizer, fast_weights_path, load_fastnet
from vidcolor.models.fast import WEIGHTS_FORMAT, build_fastnet
from vidcolor.references import Reference
from vidcolor.color import luma_lightness
from vidcolor.training.default import psnr
from vidcolor.training.fast import tps_warp


@pytest.fixture(scope="module")
def colorizer() -> FastColorizer:
    torch.set_num_threads(1)
    return FastColorizer()


def _scene(width: int = 192, height: int = 128) -> np.ndarray:
    """A real-looking test picture: smooth gradients, a disc and stripes (uint8 RGB)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([xx / width * 180 + 40, yy / height * 150 + 60, 200 - xx / width * 120], -1)
    rgb[(xx - width * 0.35) ** 2 + (yy - height * 0.5) ** 2 < (height * 0.25) ** 2] = (220, 60, 40)
    rgb[(xx.astype(int) // 12) % 2 == 0] *= 0.8
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_folded_modulation_equals_the_batched_form() -> None:
    """Inference bakes style and demodulation into the kernels; training applies them around one
    shared convolution. Both must compute the same function, and it must depend on the embedding."""
    torch.manual_seed(0)
    model = build_fastnet().eval()
    for layer in model.modulated():
        torch.nn.init.normal_(layer.affine.weight, std=0.3)  # a fresh layer ignores z by design
    l_norm = torch.rand(1, 1, 64, 96) * 2 - 1
    z1, z2 = torch.randn(1, model.cfg.embed_dim), torch.randn(1, model.cfg.embed_dim)
    with torch.no_grad():
        folded = model(l_norm, model.modulate(z1, fold=True)).ab
        batched = model(l_norm, model.modulate(z1, fold=False)).ab
        other = model(l_norm, model.modulate(z2, fold=True)).ab
    assert torch.allclose(folded, batched, atol=1e-5)
    assert (folded - other).abs().mean() > 1e-3


def test_different_references_give_different_colours(colorizer: FastColorizer) -> None:
    """The shipped decoder is modulated by the reference: a red-dominated and a blue-dominated
    reference of the same scene must paint the same gray frame differently, towards their hues."""
    scene = _scene()
    lightness = luma_lightness(scene.astype(np.float32) / 255.0)
    warm = scene.copy()
    warm[..., 0], warm[..., 2] = 230, 40
    cool = scene.copy()
    cool[..., 0], cool[..., 2] = 40, 230
    outputs = []
    for key, ref in (("warm", warm), ("cool", cool)):
        colorizer.reset()
        outputs.append(colorizer.step(lightness, Reference.from_array(ref, key=f"test-fast:{key}")).ab)
    warm_ab, cool_ab = outputs
    assert float(np.abs(warm_ab - cool_ab).mean()) > 3.0  # Lab units
    # warm reference → more positive b (yellow/red) than the cool one (blue has negative b)
    assert float(warm_ab[..., 1].mean()) > float(cool_ab[..., 1].mean()) + 3.0


def test_tps_warp_moves_pixels_but_keeps_colour_statistics() -> None:
    rgb = cv2.imread(str(shared_path("photos/kodak24/kodim23.png")), cv2.IMREAD_COLOR)
    rgb = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    warped = tps_warp(rgb, np.random.default_rng(3), points=4, amplitude=0.1)
    assert warped.shape == rgb.shape and warped.dtype == rgb.dtype
    assert float(np.abs(warped - rgb).mean()) > 0.03  # colours moved away from their pixels
    lab, lab_w = rgb_to_lab(rgb), rgb_to_lab(warped)
    for channel in (1, 2):  # a, b
        assert abs(float(lab[..., channel].mean() - lab_w[..., channel].mean())) < 3.0
        assert abs(float(lab_w[..., channel].std() / lab[..., channel].std()) - 1.0) < 0.2
    # the zero warp is the identity
    still = tps_warp(rgb, np.random.default_rng(3), points=4, amplitude=0.0)
    assert float(np.abs(still - rgb).max()) < 1e-3


def test_shipped_weights_load_with_weights_only() -> None:
    path = fast_weights_path()
    assert path.is_file(), "vidcolor/models/weights/fast.pt is missing"
    assert path.stat().st_size <= 20 * 1024 * 1024
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == WEIGHTS_FORMAT
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    model, meta = load_fastnet(path)
    assert "iteration" in meta


def test_fast_beats_gray_on_a_real_davis_frame(colorizer: FastColorizer) -> None:
    """Held-out DAVIS dog, reference = its own first frame: frames 1..6 colorized in sequence
    (the recurrence runs), each scored against the truth at the working size."""
    folder = shared_path("clips/davis/dog/JPEGImages")
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.jpg"))[:7]]
    reference = Reference.from_array(frames[0], key="test-fast:dog:0")
    colorizer.reset()
    gains = []
    for index, rgb in enumerate(frames):
        small = cv2.resize(rgb, (288, 160), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        lightness = luma_lightness(small)
        result = colorizer.step(lightness, reference)
        assert result.ab.shape == (160, 288, 2) and result.confidence.shape == (160, 288)
        if index == 0:
            continue
        colour = psnr(lab_to_rgb(np.concatenate([lightness[..., None], result.ab], -1)), small)
        gray = psnr(lab_to_rgb(np.concatenate([lightness[..., None], np.zeros_like(result.ab)], -1)), small)
        gains.append(colour - gray)
    assert all(math.isfinite(g) for g in gains)
    assert float(np.mean(gains)) > 1.0, f"fast model only {np.mean(gains):+.2f} dB over gray"


def test_no_reference_stays_gray_and_set_previous_is_adopted(colorizer: FastColorizer) -> None:
    lightness = luma_lightness(_scene().astype(np.float32) / 255.0)
    colorizer.reset()
    empty = colorizer.step(lightness, None)
    assert not empty.ab.any() and not empty.confidence.any()
    reference = Reference.from_array(_scene(), key="test-fast:scene")
    colorizer.step(lightness, reference)
    forced = np.full(lightness.shape + (2,), 40.0, np.float32)
    colorizer.set_previous(forced)
    assert colorizer._previous_ab is not None
    assert torch.allclose(colorizer._previous_ab[0, :, :128, :192], torch.full((2, 128, 192), 40.0 / 110.0))
