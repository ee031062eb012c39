"""Reference detail: fine chroma from the keyframe, carried onto full-size frames by optical flow."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main
from vidcolor.color import guided_upsample, rgb_to_gray_lightness, rgb_to_lab
from vidcolor.correspondence.detail import DetailSettings, ReferenceDetail
from vidcolor.errors import InputError
from vidcolor.schedule.presets import PresetError, load_preset
from vidcolor.references import Reference
from vidcolor.schedule.keyframes import Keyframe, ReferenceSchedule

from helpers import write_clip


def fabric(width: int, height: int, seed: int) -> np.ndarray:
    """A printed-fabric texture: 4-pixel cells of random colour and brightness, slightly soft.

    Its colour changes every 4 pixels, finer than a working size a few times smaller keeps."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(30, 226, size=(height // 4 + 1, width // 4 + 1, 3)).astype(np.uint8)
    image = cv2.resize(cells, (cells.shape[1] * 4, cells.shape[0] * 4), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(image[:height, :width], (0, 0), 0.7)


def panned(scene: np.ndarray, dx: float, dy: float, width: int, height: int) -> np.ndarray:
    """The ``width x height`` view of ``scene`` whose corner sits at (dx, dy): a camera pan."""
    matrix = np.float32([[1, 0, -dx], [0, 1, -dy]])
    return cv2.warpAffine(scene, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def chroma(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb_to_lab(rgb.astype(np.float32) / 255.0)[..., 1:], dtype=np.float32)


def perfect_small_prediction(frame: np.ndarray, work: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an ideal colorizer hands on at the working size: (the frame's true chroma shrunk, the
    frame's lightness there, that chroma upsampled the usual way to full size)."""
    lightness = rgb_to_gray_lightness(frame.astype(np.float32) / 255.0)
    small_ab = cv2.resize(chroma(frame), work, interpolation=cv2.INTER_AREA)
    small_l = cv2.resize(lightness, work, interpolation=cv2.INTER_AREA)
    return small_ab, small_l, guided_upsample(small_ab, lightness)


def test_detail_brings_back_colour_finer_than_the_working_size():
    scene = fabric(400, 260, seed=3)
    reference = Reference.from_array(panned(scene, 0, 0, 320, 192), key="ref")
    frame = panned(scene, 5.5, 3.0, 320, 192)
    _, small_l, plain = perfect_small_prediction(frame, (100, 60))
    before = plain.copy()
    detailed = ReferenceDetail().add(plain, small_l, [(reference, 1.0)])
    np.testing.assert_array_equal(plain, before)  # the input is not modified
    truth = chroma(frame)
    inner = (slice(12, -12), slice(12, -12))  # the pan brings new content in at the edges
    error_plain = np.mean((plain - truth)[inner] ** 2)
    error_detailed = np.mean((detailed - truth)[inner] ** 2)
    assert error_detailed < 0.1 * error_plain, (error_plain, error_detailed)


def test_an_unrelated_reference_adds_little():
    frame = panned(fabric(400, 260, seed=3), 5.5, 3.0, 320, 192)
    _, small_l, plain = perfect_small_prediction(frame, (100, 60))
    detail = ReferenceDetail()
    right = Reference.from_array(panned(fabric(400, 260, seed=3), 0, 0, 320, 192), key="right")
    wrong = Reference.from_array(panned(fabric(400, 260, seed=11), 0, 0, 320, 192), key="wrong")
    change_right = np.abs(detail.add(plain, small_l, [(right, 1.0)]) - plain).mean()
    change_wrong = np.abs(detail.add(plain, small_l, [(wrong, 1.0)]) - plain).mean()
    assert change_wrong < 0.35 * change_right, (change_right, change_wrong)


def test_strength_and_weights_scale_the_detail():
    scene = fabric(400, 260, seed=3)
    reference = Reference.from_array(panned(scene, 0, 0, 320, 192), key="ref")
    _, small_l, plain = perfect_small_prediction(panned(scene, 2.0, 1.0, 320, 192), (100, 60))
    full = ReferenceDetail().add(plain, small_l, [(reference, 1.0)]) - plain
    half = ReferenceDetail(DetailSettings(strength=0.5)).add(plain, small_l, [(reference, 1.0)]) - plain
    shared = ReferenceDetail().add(plain, small_l, [(reference, 0.25), (reference, 0.25)]) - plain
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-4)
    np.testing.assert_allclose(shared, 0.5 * full, atol=1e-4)
    np.testing.assert_array_equal(ReferenceDetail(DetailSettings(strength=0.0)).add(plain, small_l, [(reference, 1.0)]), plain)
    copy = pickle.loads(pickle.dumps(ReferenceDetail(DetailSettings(strength=0.5))))  # for Ray workers
    np.testing.assert_allclose(copy.add(plain, small_l, [(reference, 1.0)]) - plain, half, atol=1e-4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"strength": -0.1}, "detail strength must be in [0, 2], got -0.1"),
    ({"strength": 3.0}, "detail strength must be in [0, 2], got 3.0"),
    ({"lightness_sigma": 0.0}, "detail lightness_sigma must be positive, got 0.0"),
])
def test_settings_are_checked(kwargs, message):
    with pytest.raises(InputError) as info:
        DetailSettings(**kwargs)
    assert str(info.value) == message


def test_chroma_of_the_wrong_shape_is_refused():
    reference = Reference.from_array(np.zeros((8, 8, 3), np.uint8), key="r")
    with pytest.raises(InputError, match=r"detail needs chroma of shape \(H, W, 2\), got \(16, 16, 3\)"):
        ReferenceDetail().add(np.zeros((16, 16, 3), np.float32), np.zeros((8, 8), np.float32), [(reference, 1.0)])


def test_schedule_names_the_references_a_frame_carries():
    red = Reference.from_array(np.full((8, 8, 3), (200, 40, 40), np.uint8), key="red")
    blue = Reference.from_array(np.full((8, 8, 3), (40, 40, 200), np.uint8), key="blue")
    schedule = ReferenceSchedule([Keyframe(0, red, end_reference=blue, end_frame=10), Keyframe(11, blue)], frame_count=20)
    assert schedule.references_at(0) == [(red, 1.0), (blue, 0.0)]
    assert schedule.references_at(5) == [(red, 0.5), (blue, 0.5)]
    assert schedule.references_at(15) == [(blue, 1.0)]
    assert ReferenceSchedule([], frame_count=5).references_at(2) == []


def decoded_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def test_cli_detail_sharpens_the_colour_of_a_real_encode(tmp_path):
    scene = fabric(420, 240, seed=5)
    truth = [panned(scene, 1.5 * i, 0.5 * i, 192, 128) for i in range(10)]
    source = write_clip(tmp_path / "gray.mkv", truth, codec="ffv1", pix_fmt="yuv444p", gray=True)
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(truth[0], cv2.COLOR_RGB2BGR))
    scores = {}
    for flag in ("--detail", "--no-detail"):
        output = tmp_path / f"out{flag}.mkv"
        result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(reference),
                                           "--model", "classic", "--size", "48", "--codec", "ffv1", "-q", flag])
        assert result.exit_code == 0, result.output
        frames = decoded_rgb(output)
        assert len(frames) == len(truth)
        scores[flag] = np.mean([psnr(f[8:-8, 8:-8], t[8:-8, 8:-8]) for f, t in zip(frames[1:], truth[1:])])
    assert scores["--detail"] > scores["--no-detail"] + 2.0, scores


def test_preset_detail_key(tmp_path):
    (tmp_path / "ref.png").write_bytes(cv2.imencode(".png", np.full((8, 8, 3), 128, np.uint8))[1].tobytes())
    good = tmp_path / "good.toml"
    good.write_text('detail = true\n[[shot]]\nstart = 0\nreference = "ref.png"\n')
    assert load_preset(good).detail is True
    plain = tmp_path / "plain.toml"
    plain.write_text('[[shot]]\nstart = 0\nreference = "ref.png"\n')
    assert load_preset(plain).detail is None  # left out: the command line's default (off)
    bad = tmp_path / "bad.toml"
    bad.write_text('detail = "yes"\n[[shot]]\nstart = 0\nreference = "ref.png"\n')
    with pytest.raises(PresetError, match="detail 'yes' is not true or false"):
        load_preset(bad)


def test_detail_without_a_reference_says_it_changes_nothing(make_clip, tmp_path, caplog):
    source = make_clip("in.mp4", count=4)
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(tmp_path / "o.mkv"), "--model", "classic",
                                           "--codec", "ffv1", "--detail", "-q"])
    assert result.exit_code == 0, result.output
    assert any("this run has no reference: it changes nothing" in r.getMessage() for r in caplog.records)


def test_nothing_is_added_when_the_working_size_is_the_output_size():
    frame = panned(fabric(200, 120, seed=3), 2.0, 1.0, 96, 64)
    reference = Reference.from_array(panned(fabric(200, 120, seed=3), 0, 0, 96, 64), key="ref")
    ab = chroma(frame)
    small_l = rgb_to_gray_lightness(frame.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ReferenceDetail().add(ab, small_l, [(reference, 1.0)]), ab)


def test_a_reference_keeps_no_output_size_copies():
    """A film has a reference per shot, each held for the whole run: detail must not leave
    full-size images cached on them (only the small working-size lightness the models use too)."""
    scene = fabric(400, 260, seed=3)
    detail = ReferenceDetail()
    references = [Reference.from_array(panned(scene, 3.0 * i, 0, 320, 192), key=f"shot{i}") for i in range(6)]
    _, small_l, plain = perfect_small_prediction(panned(scene, 1.0, 1.0, 320, 192), (100, 60))
    for reference in references:
        detail.add(plain, small_l, [(reference, 1.0)])
        assert all(width <= 100 and height <= 60 for _, width, height in reference._cache), list(reference._cache)
    assert len(detail._prepared) <= 4  # and the step itself keeps only the last few


def test_a_frames_detail_does_not_depend_on_the_frames_before_it():
    """At a working size too small for DIS's medium pyramid (40x32), OpenCV's calc() chose other
    scales on its first call and kept them, so a flow estimator that had served frames gave other
    detail than a fresh one (the VapourSynth filter, one estimator per request thread, differed from
    the CLI by up to 97 code values). Each frame must get the same detail either way."""
    scene = fabric(300, 160, seed=5)
    reference = Reference.from_array(panned(scene, 0, 0, 128, 96), key="ref")
    served = ReferenceDetail()
    for step in range(4):
        _, small_l, plain = perfect_small_prediction(panned(scene, 1.5 * step, 0.5 * step, 128, 96), (40, 32))
        after_others = served.add(plain, small_l, [(reference, 1.0)])
        alone = ReferenceDetail().add(plain, small_l, [(reference, 1.0)])
        assert np.abs(after_others - plain).mean() > 0.1  # detail is added at all
        np.testing.assert_array_equal(after_others, alone, err_msg=f"frame {step}")
