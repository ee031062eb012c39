"""The per-pixel fallback: automatic colour where the exemplar model has nothing to copy."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from helpers import shared_path, write_clip
from vidcolor.cli import main
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers import build_colorizer, get_colorizer
from vidcolor.colorizers.fallback import FallbackColorizer
from vidcolor.errors import InputError
from vidcolor.references import Reference
from vidcolor.run.settings import resolve_settings
from vidcolor.schedule.presets import PresetError, load_preset
from vidcolor.temporal import TemporalCheck, TemporalSettings


#: a colourful training clip (the fallback trusts the automatic colour there) at a small size
CLIP, SIZE = "clips/cotracker/apple", (288, 160)
HALF, LEFT, RIGHT = SIZE[0] // 2, slice(0, 80), slice(208, None)


def clip_frames(count: int) -> list[np.ndarray]:
    import cv2

    files = sorted(shared_path(CLIP).glob("*.jpg"))[:count]
    return [cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), SIZE, interpolation=cv2.INTER_AREA)
            for f in files]


@pytest.fixture(scope="module")
def auto() -> object:
    return get_colorizer("autocolor")


def test_weight_follows_backing_and_is_smooth(auto: object) -> None:
    fallback = FallbackColorizer(get_colorizer("classic"), auto, low=0.2, high=0.6, blur=0.0, strength=1.0)  # type: ignore[arg-type]
    backing = np.tile(np.linspace(0.0, 1.0, 101, dtype=np.float32), (20, 1))
    weight = fallback.weight(backing)
    assert weight[:, backing[0] <= 0.2].min() == 1.0 and weight[:, backing[0] >= 0.6].max() == 0.0
    assert np.all(np.diff(weight[0]) <= 0) and weight[0, 40] == pytest.approx(0.5)
    step = np.zeros((40, 40), np.float32)
    step[:, 20:] = 1.0
    blurred = FallbackColorizer(get_colorizer("classic"), auto, low=0.2, high=0.6, blur=0.1).weight(step)  # type: ignore[arg-type]
    assert 0.1 < blurred[20, 20] < 0.9  # the seam is soft, not a hard edge
    half = FallbackColorizer(get_colorizer("classic"), auto, low=0.2, high=0.6, blur=0.0, strength=0.5)  # type: ignore[arg-type]
    assert half.weight(backing).max() == pytest.approx(0.5)


def test_automatic_colour_is_trusted_as_far_as_it_agrees_where_the_reference_backs_the_copy(auto: object) -> None:
    """An automatic colour that agrees with the exemplar's where the reference shows the scene is
    trusted fully; one with a cast there less, judged against the scene's own colour (the same
    cast costs all trust on a near-gray scene); the trust is smoothed over frames and kept through
    frames with nothing backed to judge by (the far side of a cut)."""
    fallback = FallbackColorizer(get_colorizer("classic"), auto, low=0.2, high=0.6, trust_ratio=2.0)  # type: ignore[arg-type]
    backing = np.zeros((20, 40), np.float32)
    backing[:, :20] = 0.9  # the left half is backed by the reference
    exemplar = np.random.default_rng(1).normal(0.0, 10.0, (20, 40, 2)).astype(np.float32)
    chroma = float(np.square(exemplar[:, :20]).sum(axis=-1).mean())
    cast = exemplar.copy()
    cast[:, :20, 0] += 10.0  # squared distance 100 where backed; anything on the unbacked side is not judged
    cast[:, 20:] = -50.0
    assert fallback.trust(exemplar, exemplar, backing) == pytest.approx(1.0)
    fallback.reset()
    first = fallback.trust(cast, exemplar, backing)
    assert first == pytest.approx(1.0 - 100.0 / (2.0 * chroma), rel=1e-4) and 0.0 < first < 1.0
    second = fallback.trust(exemplar, exemplar, backing)  # agreeing again: the trust recovers, not at once
    assert first < second < 1.0
    assert fallback.trust(cast + 100.0, exemplar, np.zeros_like(backing)) == second  # nothing backed: kept
    assert fallback.trust(cast + 100.0, exemplar, backing) < second
    fallback.reset()
    assert fallback.trust(cast + 100.0, exemplar, backing) == 0.0  # a strong cast: not trusted at all
    fallback.reset()
    near_gray = exemplar * 0.2  # the same +10 cast on a scene with a fifth of the colour
    assert fallback.trust(near_gray + (cast - exemplar), near_gray, backing) == 0.0
    untrusting = FallbackColorizer(get_colorizer("classic"), auto, trust_ratio=None)  # type: ignore[arg-type]
    assert untrusting.trust(cast + 100.0, exemplar, backing) == 1.0


def test_the_fill_only_adds_colour_and_leaves_a_confident_copy_alone(auto: object) -> None:
    """The automatic colour is taken only as far as its chroma exceeds the exemplar's, where the
    weight (low backing, trusted) allows: no pixel's chroma is lowered, a pixel with no weight or a
    copy at least as vivid as the guess keeps its copy bit for bit, a gray copy with full weight
    gets the automatic colour, and two hues that cancel in the blend keep the copy's chroma."""
    fallback = FallbackColorizer(get_colorizer("classic"), auto, chroma_margin=2.0)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    exemplar = rng.normal(0.0, 8.0, (40, 50, 2)).astype(np.float32)
    automatic = rng.normal(0.0, 12.0, (40, 50, 2)).astype(np.float32)
    weight = rng.uniform(0.0, 1.0, (40, 50)).astype(np.float32)
    weight[:, :10] = 0.0  # a confident copy: the reference backs it
    exemplar[:5, 10:] = 0.0  # a gray copy
    weight[:5, 10:] = 1.0
    automatic[5:10] = exemplar[5:10] * 0.5  # a muted guess (same hue, half the chroma)
    filled, share = fallback.fill(exemplar, automatic, weight)

    def chroma(ab: np.ndarray) -> np.ndarray:
        return np.linalg.norm(ab, axis=-1)

    assert filled.dtype == np.float32 and np.all(chroma(filled) >= chroma(exemplar) - 1e-4)
    assert np.all((share >= 0.0) & (share <= weight))
    np.testing.assert_array_equal(filled[:, :10], exemplar[:, :10])  # no weight: the copy untouched
    np.testing.assert_array_equal(filled[5:10, 10:], exemplar[5:10, 10:])  # weaker guess: not taken
    vivid = chroma(automatic[:5, 10:]) >= 2.0
    np.testing.assert_allclose(filled[:5, 10:][vivid], automatic[:5, 10:][vivid])  # gray copy: filled
    assert vivid.mean() > 0.9 and chroma(filled[10:, 10:]).mean() > chroma(exemplar[10:, 10:]).mean() + 1.0
    opposite, _ = fallback.fill(np.array([[[3.0, 0.0]]], np.float32), np.array([[[-10.0, 0.0]]], np.float32),
                                np.array([[0.2]], np.float32))  # the blend alone would be 0.4 from gray
    assert chroma(opposite)[0, 0] == pytest.approx(3.0)


def test_bad_settings_are_refused(auto: object) -> None:
    classic = get_colorizer("classic")
    with pytest.raises(InputError, match="low < high"):
        FallbackColorizer(classic, auto, low=0.5, high=0.4)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="signal"):
        FallbackColorizer(classic, auto, signal="magic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="trust_ratio > 0"):
        FallbackColorizer(classic, auto, trust_ratio=0.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="chroma_margin > 0"):
        FallbackColorizer(classic, auto, chroma_margin=0.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="automatic model"):
        FallbackColorizer(classic, get_colorizer("classic"))


def test_build_colorizer_puts_the_fallback_inside_the_temporal_check() -> None:
    checked = build_colorizer("default", temporal=TemporalSettings(), fallback="autocolor")
    assert isinstance(checked, TemporalCheck) and isinstance(checked.inner, FallbackColorizer)
    assert checked.describe()["fallback"]["auto"]["model"] == "autocolor"  # a resumed run must match it
    assert not isinstance(build_colorizer("autocolor", fallback="autocolor"), FallbackColorizer)


@pytest.mark.shared_data
def test_unseen_half_gets_automatic_colour_where_the_reference_does_not_show_it() -> None:
    """A real, colourful training clip (cotracker/apple) with a reference showing only the left half
    of frame 0: the coverage is lower and the fallback's weight higher on the right half (the
    reference does not show it), and the output changes there far more than on the left. On the
    first frame, where both runs' exemplar models see the same history, no pixel loses chroma."""
    frames = clip_frames(4)
    reference = Reference.from_array(np.ascontiguousarray(frames[0][:, :HALF]), key="left-half")
    plain = get_colorizer("default")
    filled = FallbackColorizer(get_colorizer("default"), get_colorizer("autocolor"))
    left_change, right_change = [], []
    for rgb in frames[1:]:
        lightness = rgb_to_gray_lightness(rgb.astype(np.float32) / 255.0)
        coverage = filled.coverage(lightness, reference)
        assert coverage[:, LEFT].mean() > coverage[:, RIGHT].mean() + 0.1
        weight = filled.weight(coverage)
        assert weight[:, RIGHT].mean() > 2 * weight[:, LEFT].mean()
        a, b = plain.step(lightness, reference).ab, filled.step(lightness, reference).ab
        if not left_change:
            assert np.all(np.linalg.norm(b, axis=-1) >= np.linalg.norm(a, axis=-1) - 1e-3)
        left_change.append(np.abs(b[:, LEFT] - a[:, LEFT]).mean())
        right_change.append(np.abs(b[:, RIGHT] - a[:, RIGHT]).mean())
    # the automatic colour goes where the reference does not show the scene, not over the copy
    assert np.mean(right_change) > 2 * np.mean(left_change) and np.mean(right_change) > 0.5


@pytest.fixture(scope="module")
def left_half_film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six frames of a real training clip (cotracker/apple, 4:4:4 lossless so front ends compare bit for
    bit) and a reference showing only the left half of its frame 0."""
    import cv2

    frames = clip_frames(6)
    tmp = tmp_path_factory.mktemp("left-half")
    clip = write_clip(tmp / "bag.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    reference = tmp / "left.png"
    cv2.imwrite(str(reference), cv2.cvtColor(np.ascontiguousarray(frames[0][:, :HALF]), cv2.COLOR_RGB2BGR))
    return clip, reference


def yuv_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="yuv444p").astype(np.int16) for frame in container.decode(video=0)]


def test_fallback_setting_colours_the_unseen_half_in_the_cli_and_vapoursynth_alike(
        left_half_film: tuple[Path, Path], tmp_path: Path) -> None:
    """``--fallback autocolor`` through the real CLI changes the chroma of the half the reference
    does not show far more than the half it shows; the VapourSynth filter's ``fallback`` keyword
    gives the CLI's frames bit for bit; ``--fallback none`` is the plain run."""
    clip, reference = left_half_film
    outputs = {}
    for value in ("none", "autocolor"):
        outputs[value] = tmp_path / f"{value}.mkv"
        result = CliRunner().invoke(main, ["colorize", str(clip), "-o", str(outputs[value]), "--ref", str(reference),
                                           "--codec", "ffv1", "--fallback", value, "-q"])
        assert result.exit_code == 0, result.output
    plain, filled = yuv_frames(outputs["none"]), yuv_frames(outputs["autocolor"])
    assert all(np.array_equal(p[0], f[0]) for p, f in zip(plain, filled, strict=True))  # luma untouched
    change = np.stack([np.abs(f[1:] - p[1:]).mean(axis=(0, 1)) for p, f in zip(plain[1:], filled[1:])]).mean(axis=0)
    # (the floor was 0.5 codes with v1; v2d already borrows semantic colour for the unseen half of a
    # cropped reference, so the fill has less to add there: 0.42 codes, against 0.0002 on the seen half)
    assert change[RIGHT].mean() > 20 * change[LEFT].mean() and change[RIGHT].mean() > 0.25

    vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
    import vsvidcolor

    out = vsvidcolor.colorize(vs.core.bs.VideoSource(str(clip)), ref=str(reference), fallback="autocolor")
    for index in range(out.num_frames):
        got = np.stack([np.asarray(out.get_frame(index)[p]) for p in range(3)]).astype(np.int16)
        np.testing.assert_array_equal(got, filled[index], err_msg=f"frame {index}")


def test_a_bad_fallback_is_refused_with_its_fix(left_half_film: tuple[Path, Path], tmp_path: Path) -> None:
    clip, reference = left_half_film
    result = CliRunner().invoke(main, ["colorize", str(clip), "-o", str(tmp_path / "o.mkv"), "--ref", str(reference),
                                       "--fallback", "classic"])
    assert result.exit_code == 2 and "--fallback" in result.output and "autocolor" in result.output
    assert not (tmp_path / "o.mkv").exists()
    preset = tmp_path / "film.toml"
    preset.write_text(f'fallback = "deepex"\n[[shot]]\nstart = 0\nreference = "{reference.as_posix()}"\n')
    with pytest.raises(PresetError, match=r"fallback 'deepex' is not an automatic model.*fallback = \"none\""):
        load_preset(preset)
    preset.write_text(f'fallback = "none"\n[[shot]]\nstart = 0\nreference = "{reference.as_posix()}"\n')
    assert resolve_settings({}, load_preset(preset)).fallback == "none"
    assert resolve_settings({"fallback": "autocolor"}, load_preset(preset)).fallback == "autocolor"
