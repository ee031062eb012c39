"""Training-free semantic correspondence (vidcolor.correspondence.semantic): shapes, bounded chunked attention, and
issue 24's face case -- a photo of one person as the reference for a gray photo of another."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import shared_path
from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.correspondence.semantic import (MatchConfig, SemanticMatcher, attend, centred_keys, multiscale_cosine,
                                              semantic_colors)
from vidcolor.color import luma_lightness


def test_match_shapes_confidence_and_a_flat_colour_copied() -> None:
    """A reference of one colour gives that colour everywhere, whatever the match."""
    rng = np.random.default_rng(0)
    frame = rng.uniform(20, 80, (96, 160)).astype(np.float32)
    ref_l = rng.uniform(20, 80, (128, 96)).astype(np.float32)
    ref_ab = np.broadcast_to(np.array([30.0, -20.0], np.float32), (128, 96, 2))
    ab, confidence = semantic_colors(frame, ref_l, ref_ab)
    assert ab.shape == (12, 20, 2) and confidence.shape == (12, 20)
    assert np.allclose(ab, [30.0, -20.0], atol=1e-3)
    assert np.all(confidence <= 1.0 + 1e-5) and np.all(confidence >= -1.0 - 1e-5)


def test_multiscale_cosine_compares_each_stride_on_its_grid() -> None:
    """On one grid it is the joint-centred cosine of :func:`centred_keys`; a coarser stride's
    similarities are resampled bilinearly onto the fine grids, so a coarse map that repeats a fine
    one's cells 2x2 scores where the fine one does, up to that interpolation."""
    gen = torch.Generator().manual_seed(2)
    frame, reference = torch.randn(1, 8, 4, 6, generator=gen), torch.randn(1, 8, 6, 4, generator=gen)
    query, keys = centred_keys([frame.flatten(2)], [reference.flatten(2)], "joint")
    single = multiscale_cosine([frame], [reference], (4, 6), (6, 4))
    assert single.shape == (1, 24, 24)
    assert torch.allclose(single, torch.bmm(query.transpose(1, 2), keys), atol=1e-5)
    coarse_frame, coarse_reference = torch.randn(1, 8, 2, 3, generator=gen), torch.randn(1, 8, 3, 2, generator=gen)
    both = multiscale_cosine([frame, coarse_frame], [reference, coarse_reference], (4, 6), (6, 4))
    coarse_alone = multiscale_cosine([coarse_frame], [coarse_reference], (2, 3), (3, 2))
    expected = F.interpolate(F.interpolate(coarse_alone.transpose(1, 2).reshape(6, 1, 2, 3), size=(4, 6), mode="bilinear",
                                           align_corners=False).reshape(1, 6, 24).transpose(1, 2).reshape(24, 1, 3, 2),
                             size=(6, 4), mode="bilinear", align_corners=False).reshape(1, 24, 24)
    assert torch.allclose(both, (single + expected) / 2, atol=1e-5)
    assert float(both.abs().max()) <= 1.0 + 1e-5


def test_chunked_attention_equals_the_whole_matrix() -> None:
    gen = torch.Generator().manual_seed(1)
    query = F.normalize(torch.randn(16, 300, generator=gen), dim=0)
    keys = F.normalize(torch.randn(16, 200, generator=gen), dim=0)
    values = torch.randn(2, 200, generator=gen)
    whole, best_whole = attend(query, keys, values, 0.05, chunk=10_000)
    chunked, best_chunked = attend(query, keys, values, 0.05, chunk=7)
    assert torch.allclose(whole, chunked, atol=1e-5) and torch.equal(best_whole, best_chunked)
    sim = query.T @ keys
    assert torch.allclose(whole, values @ torch.softmax(sim / 0.05, dim=1).T, atol=1e-5)


def test_identical_images_match_themselves() -> None:
    """Frame = reference: each position's best match is itself (cosine 1), so the colour is kept."""
    rng = np.random.default_rng(2)
    lightness = cv2.GaussianBlur(rng.uniform(0, 100, (128, 128)).astype(np.float32), (0, 0), 3) * 3 - 100
    lightness = np.clip(lightness, 0, 100)
    ab = np.dstack([np.linspace(-40, 40, 128)[None].repeat(128, 0), np.linspace(40, -40, 128)[:, None].repeat(128, 1)])
    out, confidence = semantic_colors(lightness, lightness, ab.astype(np.float32))
    pooled = cv2.resize(ab.astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA)
    assert np.all(confidence > 0.999)
    assert np.median(np.abs(out - pooled)) < 2.0


def test_a_batch_of_frames_matches_like_single_frames() -> None:
    rng = np.random.default_rng(3)
    matcher = SemanticMatcher()
    frames = torch.from_numpy(rng.uniform(0, 100, (2, 1, 64, 96)).astype(np.float32))
    with torch.inference_mode():
        memory = matcher.encode_reference(torch.from_numpy(rng.uniform(0, 100, (1, 1, 96, 64)).astype(np.float32)),
                                          torch.from_numpy(rng.normal(0, 30, (1, 2, 96, 64)).astype(np.float32)))
        both = matcher.match(frames, memory)
        second = matcher.match(frames[1:], memory)
    assert both.ab.shape == (2, 2, 8, 12) and both.confidence.shape == (2, 1, 8, 12)
    assert torch.allclose(both.ab[1], second.ab[0], atol=1e-4)
    assert torch.allclose(both.confidence[1], second.confidence[0], atol=1e-5)


def test_bad_configuration_and_reference_are_named() -> None:
    with pytest.raises(InputError, match="temperature"):
        SemanticMatcher(config=MatchConfig(temperature=0))
    with pytest.raises(InputError, match="strides"):
        SemanticMatcher(config=MatchConfig(strides=(12,)))
    matcher = SemanticMatcher()
    with pytest.raises(InputError, match="one picture"):
        matcher.encode_reference(torch.zeros(2, 1, 32, 32), torch.zeros(2, 2, 32, 32))


# ---------------------------------------------------------------------------------------------
# The face case (issue 24): CelebA-HQ faces from ../shared/data/photos/stargan_v2_faces_animals.
#
# Pairs, by a rule fixed before any result was seen: the targets are the ten `src` photos in
# sorted order (ten people); the references are the `ref` photos (other people) ranked by the share
# of their pixels outside the face that are cool-coloured (blue/green/cyan clothing or background,
# b* < -3 or a* < -3 with chroma > 6), the k-th target taking the k-th reference. A cool colour is
# what a face must never take, and it is easy to tell from skin.

FACES = "photos/stargan_v2_faces_animals"
_CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sRGB, Lab, and the lightness a gray video of the photo shows."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return rgb, rgb_to_lab(rgb), luma_lightness(rgb)


def _face_box(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """The largest frontal face OpenCV's Haar cascade finds, else the aligned CelebA-HQ position."""
    gray = (rgb.mean(axis=2) * 255).astype(np.uint8)
    found = _CASCADE.detectMultiScale(gray, 1.1, 5, minSize=(60, 60))
    if len(found) == 0:
        h, w = gray.shape
        return 0.2 * w, 0.22 * h, 0.6 * w, 0.6 * h
    return tuple(max(found.tolist(), key=lambda b: b[2] * b[3]))  # type: ignore[return-value]


def _face_skin_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """Cheeks, nose, mouth and forehead: an ellipse inside the detected box, clear of hair."""
    x, y, w, h = box
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - (x + w / 2)) / (0.32 * w)) ** 2 + ((yy - (y + 0.55 * h)) / (0.40 * h)) ** 2 <= 1


def _box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    x, y, w, h = (int(round(v)) for v in box)
    mask = np.zeros(shape, bool)
    mask[max(y, 0):y + h, max(x, 0):x + w] = True
    return mask


def _cool(ab: np.ndarray) -> np.ndarray:
    return ((ab[..., 1] < -3) | (ab[..., 0] < -3)) & (np.hypot(ab[..., 0], ab[..., 1]) > 6)


def _skin_share(ab: np.ndarray, mask: np.ndarray) -> float:
    return float(((ab[..., 0] > 0) & (ab[..., 1] > 0))[mask].mean())


def _largest_region(mask: np.ndarray) -> float:
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / mask.size if count > 1 else 0.0


def _face_pairs(folder: Path) -> list[tuple[Path, Path]]:
    ranked = []
    for path in sorted(folder.glob("celeba_hq_ref_*.jpg")):
        rgb, lab, _ = _load(path)
        x, y, w, h = _face_box(rgb)
        outside = np.ones(rgb.shape[:2], bool)
        outside[int(y - 0.1 * h):int(y + 1.1 * h), int(x):int(x + w)] = False
        ranked.append((-float((_cool(lab[..., 1:]) & outside).mean()), path.name, path))
    references = [path for _, _, path in sorted(ranked)]
    targets = sorted(folder.glob("celeba_hq_src_*.jpg"))
    return list(zip(targets, references, strict=False))


def _luminance_patch_colors(frame_l: np.ndarray, ref_l: np.ndarray, ref_ab: np.ndarray) -> np.ndarray:
    """The baseline: the same attention (stride 8, τ 0.01, centred cosine) over 16x16 lightness patches."""
    def patches(lightness: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        grid = (lightness.shape[0] // 8, lightness.shape[1] // 8)
        return F.unfold(torch.from_numpy(lightness)[None, None] / 100, 16, padding=4, stride=8)[0], grid

    query, grid = patches(frame_l)
    keys, ref_grid = patches(ref_l)
    query, keys = centred_keys([query], [keys], MatchConfig.centre)
    values = F.interpolate(torch.from_numpy(ref_ab).permute(2, 0, 1)[None], size=ref_grid, mode="area")[0]
    ab, _ = attend(query, keys, values.flatten(1), MatchConfig.temperature)
    return ab.view(2, *grid).permute(1, 2, 0).numpy()


def _full_size(ab: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(ab, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


@pytest.mark.shared_data
def test_face_reference_of_another_person_gives_a_skin_toned_face() -> None:
    folder = shared_path(FACES)
    pairs = _face_pairs(folder)
    assert len(pairs) == 10
    matcher = SemanticMatcher()
    passed = {"semantic": 0, "luminance patches": 0}
    skins: dict[str, list[float]] = {"semantic": [], "luminance patches": []}
    cool_faces: list[float] = []
    worst_region = 0.0
    for target, reference in pairs:
        rgb, _, frame_l = _load(target)
        _, ref_lab, ref_l = _load(reference)
        box = _face_box(rgb)
        skin_mask, box_mask = _face_skin_mask(frame_l.shape, box), _box_mask(frame_l.shape, box)
        with torch.inference_mode():
            semantic, _ = semantic_colors(frame_l, ref_l, ref_lab[..., 1:], matcher=matcher)
            baseline = _luminance_patch_colors(frame_l, ref_l, ref_lab[..., 1:])
        truth_cool = _cool(rgb_to_lab(rgb)[..., 1:])
        line = [f"{target.stem[10:]} <- {reference.stem[10:]}:"]
        for name, ab in (("semantic", semantic), ("luminance patches", baseline)):
            ab = _full_size(ab, frame_l.shape)
            skin = _skin_share(ab, skin_mask)
            cool_in_face = float(_cool(ab)[box_mask].mean())
            # where the output takes a cool colour the true photo does not have there
            region = _largest_region(_cool(ab) & ~truth_cool)
            ok = skin >= 0.8 and cool_in_face <= 0.05
            passed[name] += ok
            skins[name].append(skin)
            if name == "semantic":
                worst_region = max(worst_region, region)
                cool_faces.append(cool_in_face)
            line.append(f"{name} skin {skin:.2f} cool-in-face-box {cool_in_face:.3f} "
                        f"largest-wrong-cool-region {region:.3f} {'pass' if ok else 'FAIL'};")
        print(" ".join(line))
    print(f"pairs passing (>= 80 % of the face skin-toned, <= 5 % of the face box cool): {passed}; "
          f"mean skin share {({k: round(float(np.mean(v)), 3) for k, v in skins.items()})}")
    # Measured: every semantic face is skin-toned (share 0.93-1.00, mean 0.988; luminance patches
    # 0.57-1.00, mean 0.856). Passing both checks: semantic 7 of 10, luminance patches 4 of 10. The
    # semantic failures are cool colour at the edges of the face box (jaw, neck: 6-15 % of the box,
    # mean over the pairs 3.4 %), copied from a reference's blue-gray wall or shirt; the largest
    # wrongly cool region is 9.5 % of the picture (a blonde target's hair and neck).
    assert min(skins["semantic"]) >= 0.9
    assert np.mean(skins["semantic"]) >= np.mean(skins["luminance patches"]) + 0.08
    assert passed["semantic"] >= 6 and passed["semantic"] > passed["luminance patches"]
    assert np.mean(cool_faces) <= 0.05
    assert worst_region < 0.15


# ---------------------------------------------------------------------------------------------
# Issue 24's mirrored reference: frame 0 of a DAVIS clip, mirrored and cropped 10 %, as the
# reference for frame 20 (same colours, no pixel alignment). Frame 224x400, reference 256x384.

DAVIS_CLIPS = ("blackswan", "bmx-trees", "car-shadow", "dog", "horsejump-high")


def _at(rgb: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return luma_lightness(small), rgb_to_lab(small)[..., 1:]


@pytest.mark.shared_data
def test_mirrored_reference_keeps_semantic_colours_on_davis() -> None:
    matcher = SemanticMatcher()
    for clip in DAVIS_CLIPS:
        frames = sorted(shared_path(f"clips/davis/{clip}/JPEGImages").glob("*.jpg"))
        first = cv2.cvtColor(cv2.imread(str(frames[0])), cv2.COLOR_BGR2RGB)
        target = cv2.cvtColor(cv2.imread(str(frames[20])), cv2.COLOR_BGR2RGB)
        h, w = first.shape[:2]
        dy, dx = h // 20, w // 20
        mirrored = np.ascontiguousarray(first[dy:h - dy, ::-1][:, dx:w - dx])
        frame_l, truth_ab = _at(target, 224, 400)
        errors = {}
        for name, reference in (("as is", first), ("mirrored", mirrored)):
            ref_l, ref_ab = _at(reference, 256, 384)
            with torch.inference_mode():
                semantic, _ = semantic_colors(frame_l, ref_l, ref_ab, matcher=matcher)
                patches = _luminance_patch_colors(frame_l, ref_l, ref_ab)
            for method, ab in (("semantic", semantic), ("luminance patches", patches)):
                errors[name, method] = float(np.sqrt(((_full_size(ab, frame_l.shape) - truth_ab) ** 2).mean()))
        gray = float(np.sqrt((truth_ab**2).mean()))
        print(f"{clip}: ab RMSE gray {gray:.2f}; " + ", ".join(f"{k[0]}/{k[1]} {v:.2f}" for k, v in errors.items()))
        # Measured: mirrored semantic 2.7-15.0 against luminance patches 3.8-18.5 (gray 8.2-20.5);
        # mirroring costs semantic matching 0-14 % more error.
        assert errors["mirrored", "semantic"] < errors["mirrored", "luminance patches"]
        assert errors["mirrored", "semantic"] < 0.8 * gray
        assert errors["mirrored", "semantic"] < 1.25 * errors["as is", "semantic"]
