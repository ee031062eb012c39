"""The default model's reference-flow candidate fires only when the reference shows the frame's scene
(issue 24): optical flow between two different pictures lands on look-alike lightness and pastes
the reference's colours there."""

from __future__ import annotations

import cv2
import numpy as np

from helpers import shared_path
from vidcolor.color import luma_lightness
from vidcolor.correspondence.flow import DISFlow
from vidcolor.correspondence.tracking import Flow, dis_flow, same_scene, scene_agreement
from vidcolor.references import Reference

FACES = "photos/stargan_v2_faces_animals/celeba_hq_"


def _rgb(relative: str, size: tuple[int, int]) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(shared_path(relative))), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _dog(index: int) -> np.ndarray:
    return _rgb(f"clips/davis/dog/JPEGImages/{index:05d}.jpg", (288, 160))


def _gray(rgb: np.ndarray) -> np.ndarray:
    return np.clip(luma_lightness(rgb.astype(np.float32) / 255.0) * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _scene(frame: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(same_scene, share of agreeing pixels) of the DIS flow from ``frame`` to ``reference``."""
    dis = DISFlow(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    gray, ref_gray = _gray(frame), _gray(cv2.resize(reference, frame.shape[1::-1], interpolation=cv2.INTER_AREA))
    flow = Flow.of(dis_flow(dis, gray, ref_gray), dis_flow(dis, ref_gray, gray))
    return same_scene(flow, gray, ref_gray), float(scene_agreement(flow, gray, ref_gray).mean())


def test_same_scene_tells_the_shot_from_other_pictures() -> None:
    """The next frame of a held-out shot is its scene; the same frame mirrored and cropped, a
    photo of another person for a face, or another clip are not."""
    near, share = _scene(_dog(1), _dog(0))
    assert near == 1.0 and share > 0.5, share
    h, w = 160, 288
    mirrored = np.ascontiguousarray(_dog(0)[:, ::-1][8:h - 8, 14:w - 14])
    assert _scene(_dog(1), mirrored)[0] == 0.0
    face = _rgb(f"{FACES}src_male_196930.jpg", (160, 160))
    assert _scene(face, _rgb(f"{FACES}ref_male_156498.jpg", (160, 160)))[0] == 0.0
    assert _scene(_dog(1), _rgb("clips/davis/blackswan/JPEGImages/00000.jpg", (288, 160)))[0] == 0.0


def test_default_colorizer_drops_the_reference_flow_of_another_picture() -> None:
    """With a photo of another person as the reference, nothing of the output is anchored to the
    reference by optical flow (confidence 0; without the check some is); with the shot's own frame
    0 the check changes nothing at all."""
    from vidcolor.colorizers.default import DefaultColorizer

    face = _rgb(f"{FACES}src_male_196930.jpg", (160, 160))
    other = Reference.from_array(_rgb(f"{FACES}ref_male_156498.jpg", (256, 256)), key="test:other-face")
    lightness = luma_lightness(face.astype(np.float32) / 255.0)
    checked = DefaultColorizer().step(lightness, other)
    unchecked = DefaultColorizer(reference_scene_check=False).step(lightness, other)
    assert checked.stats["reference_scene"] == 0.0 and unchecked.stats["reference_scene"] == 1.0
    assert checked.confidence.max() == 0.0 < unchecked.confidence.max()

    first = Reference.from_array(_dog(0), key="test:dog:0")
    outputs = {}
    for check in (True, False):
        colorizer = DefaultColorizer(reference_scene_check=check)
        results = [colorizer.step(luma_lightness(_dog(i).astype(np.float32) / 255.0), first) for i in range(3)]
        assert all(r.stats["reference_scene"] == 1.0 for r in results)
        outputs[check] = results[-1].ab
    np.testing.assert_array_equal(outputs[True], outputs[False])


def test_placement_keeps_the_aspect_of_a_cropped_reference() -> None:
    """A reference of the frame's aspect is resized to it (None); a half-width crop is fitted to the
    frame's height, centred; a wide strip to its width."""
    from vidcolor.correspondence.tracking import placement

    assert placement((1920, 1080), (288, 160)) is None
    assert placement((1900, 1080), (288, 160)) is None  # within 5 %: a rounding, not a crop
    assert placement((144, 160), (288, 160)) == (72, 0, 216, 160)
    assert placement((960, 1080), (288, 160)) == (73, 0, 215, 160)  # 142 columns at 0.148
    assert placement((1920, 270), (288, 160)) == (0, 60, 288, 100)


def test_default_colorizer_finds_the_part_of_the_frame_a_cropped_reference_shows() -> None:
    """Frame 0's left half as the reference for frame 3 of a held-out shot: placed with its aspect
    kept, optical flow finds it (the shot's scene, about half the frame shown) and anchors the
    left half's colour to it; stretched to the frame, flow follows nothing (confidence near 0)."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.color import rgb_to_lab

    reference = Reference.from_array(np.ascontiguousarray(_dog(0)[:, :144]), key="test:dog:0:left-half")
    frame = _dog(3)
    truth_ab = rgb_to_lab(frame.astype(np.float32) / 255.0)[..., 1:]
    results = {placed: DefaultColorizer(place_references=placed).step(luma_lightness(frame.astype(np.float32) / 255.0), reference)
               for placed in (True, False)}
    placed, stretched = results[True], results[False]
    assert placed.stats["same_scene"] == 1.0 > stretched.stats["same_scene"]
    assert 0.4 < placed.stats["shown"] < 0.65, placed.stats
    assert "shown" not in stretched.stats
    assert placed.confidence[:, :144].mean() > 0.25 > 0.05 > stretched.confidence[:, :144].mean()
    assert np.abs(placed.ab - truth_ab)[:, :144].mean() < np.abs(stretched.ab - truth_ab)[:, :144].mean()


def test_default_colorizer_resizes_a_reference_at_another_pixel_aspect() -> None:
    """Frame 0 exported with square pixels from anamorphic footage (a third wider than the stored
    frame, as 16:9 shown from 4:3 storage) as the reference for frame 3: the whole frame, not a crop,
    so it is resized to the frame as before 34f1169, and copies its colour as well as the frame-0
    reference itself; placed by its aspect alone, a sixth of the frame would lose the reference."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.color import rgb_to_lab
    from vidcolor.correspondence.tracking import placement

    frame = _dog(3)
    lightness = luma_lightness(frame.astype(np.float32) / 255.0)
    truth_ab = rgb_to_lab(frame.astype(np.float32) / 255.0)[..., 1:]
    wide = Reference.from_array(cv2.resize(_dog(0), (384, 160), interpolation=cv2.INTER_AREA), key="test:dog:0:wide")
    always_placed = DefaultColorizer()
    always_placed._aligned_reference = lambda reference, gray, dis: always_placed._canvas(  # type: ignore[method-assign]
        reference, gray.shape[1], gray.shape[0], placement(reference.size, gray.shape[::-1]))
    resized, placed = DefaultColorizer().step(lightness, wide), always_placed.step(lightness, wide)
    reference = DefaultColorizer().step(lightness, Reference.from_array(_dog(0), key="test:dog:0"))
    error = {name: float(np.abs(out.ab - truth_ab).mean()) for name, out in
             (("resized", resized), ("placed", placed), ("reference", reference))}
    assert "shown" not in resized.stats and placed.stats["shown"] < 0.9, (resized.stats, placed.stats)
    assert error["resized"] < 1.05 * error["reference"] and error["resized"] < 0.95 * error["placed"], error
    assert resized.confidence.mean() > placed.confidence.mean() + 0.05
