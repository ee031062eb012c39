"""Colour maths: luma stays luma, chroma means what the reference meant."""

from __future__ import annotations

import cv2
import numpy as np

from vidcolor.color import (LumaFormat, chroma_of, chroma_planes, guided_upsample, lab_with_luma, luma_to_gray_level,
                            luma_to_lightness, rgb_codes, rgb_to_gray, rgb_to_lab, shrink_area)


def test_limited_range_luma_maps_black_and_white():
    fmt8 = LumaFormat(8, False, "bt709")
    assert luma_to_lightness(np.array([16, 235], np.uint8), fmt8).tolist() == [0.0, 100.0]
    fmt10 = LumaFormat(10, False, "bt709")
    assert luma_to_lightness(np.array([64, 940], np.uint16), fmt10).tolist() == [0.0, 100.0]
    full = LumaFormat(8, True, "bt601")
    assert luma_to_gray_level(np.array([0, 255], np.uint8), full).tolist() == [0.0, 1.0]


def test_neutral_chroma_gives_mid_code_values():
    gray = np.linspace(0.05, 0.95, 20, dtype=np.float32).reshape(4, 5)
    cb, cr = chroma_planes(gray, np.zeros((4, 5, 2), np.float32), LumaFormat(10, False, "bt709"))
    assert np.abs(cb.astype(int) - 512).max() <= 1 and np.abs(cr.astype(int) - 512).max() <= 1


def test_reference_colour_comes_back_at_its_own_luma():
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0.05, 0.95, size=(32, 32, 3)).astype(np.float32)
    lab = rgb_to_lab(rgb)
    gray = rgb_to_gray(rgb)
    exact = lab_with_luma(gray, lab[..., 1:])
    assert np.abs(exact - rgb).mean() < 0.002
    assert np.abs(rgb_codes(gray, lab[..., 1:], 8).astype(float) / 255 - rgb).mean() < 0.004
    cb, cr = chroma_of(gray, lab[..., 1:])
    assert np.abs(cb - (rgb[..., 2] - gray) / 1.772).mean() < 0.002
    assert np.abs(cr - (rgb[..., 0] - gray) / 1.402).mean() < 0.002
    # Plain Lab with the gray's lightness would miss badly on saturated colours: the solve matters.
    naive_l = lab.copy()
    naive_l[..., 0] = 116 * np.cbrt(np.where(gray <= 0.04045, gray / 12.92, ((gray + 0.055) / 1.055) ** 2.4)) - 16
    assert np.abs(exact - rgb).mean() < 0.25 * np.abs(np.clip(naive_l, 0, None) - lab).mean() / 100


def test_guided_upsampling_snaps_colour_to_luma_edges():
    height, width = 64, 64
    lightness = np.full((height, width), 30.0, np.float32)
    lightness[:, 37:] = 80.0  # the picture's edge, off the 8x coarse grid
    ideal = np.where(np.arange(width) >= 37, 60.0, 0.0)[None, :].repeat(height, 0)
    ab_small = np.zeros((8, 8, 2), np.float32)
    ab_small[..., 0] = cv2.resize(ideal.astype(np.float32), (8, 8), interpolation=cv2.INTER_AREA)
    up = guided_upsample(ab_small, lightness)
    bilinear = cv2.resize(ab_small, (width, height), interpolation=cv2.INTER_LINEAR)
    assert up.shape == (height, width, 2)
    jump = up[:, 37, 0] - up[:, 36, 0]  # the colour step sits exactly on the luma edge
    assert jump.mean() > 4 * (bilinear[:, 37, 0] - bilinear[:, 36, 0]).mean()
    assert jump.mean() > 3 * np.abs(np.diff(up[:, 20:36, 0], axis=1)).max()


def test_guided_upsampling_keeps_chroma_that_follows_the_luma():
    """A tint that rises with brightness (a sepia-like wash, a lit surface) comes back at full
    resolution from the coarse chroma, where bilinear upsampling blurs it."""
    rng = np.random.default_rng(3)
    lightness = cv2.resize(rng.uniform(20, 80, (24, 24)).astype(np.float32), (192, 192), interpolation=cv2.INTER_CUBIC)
    lightness = np.clip(lightness, 0, 100)
    truth = np.stack([0.5 * lightness - 20.0, 10.0 - 0.3 * lightness], axis=2).astype(np.float32)
    ab_small = cv2.resize(truth, (32, 32), interpolation=cv2.INTER_AREA)
    up = guided_upsample(ab_small, lightness)
    bilinear = cv2.resize(ab_small, (192, 192), interpolation=cv2.INTER_LINEAR)
    assert up.shape == truth.shape and up.dtype == np.float32
    assert np.abs(up - truth).mean() < 0.4 * np.abs(bilinear - truth).mean()
    single = guided_upsample(np.ascontiguousarray(ab_small[..., 0]), lightness)  # one (H, W) plane works alike
    assert single.shape == lightness.shape and np.allclose(single, up[..., 0], atol=1e-4)
    same = guided_upsample(truth, lightness)  # nothing to upsample: returned as it is
    assert np.allclose(same, truth)


def test_area_shrink_matches_opencv_area_resize():
    """The halving fast path is an implementation detail: it must average like INTER_AREA."""
    rng = np.random.default_rng(5)
    image = cv2.GaussianBlur(rng.uniform(0, 100, (1080, 1920)).astype(np.float32), (0, 0), 1.5)
    for size in ((284, 160), (455, 256), (1920, 1080), (640, 360)):
        fast, exact = shrink_area(image, size), cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        naive = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)  # what skipping the box average costs
        assert fast.shape == exact.shape
        assert np.abs(fast - exact).mean() < 0.1 * max(np.abs(naive - exact).mean(), 1e-3)
    odd = image[:1079, :1919]  # odd sizes skip the halving and stay exact
    assert np.array_equal(shrink_area(odd, (284, 160)), cv2.resize(odd, (284, 160), interpolation=cv2.INTER_AREA))
