"""DeepExColorizer on real frames, with rule-built weights imported through the weights registry.

The weights follow the parity fixture's rule (its manifest when present, else our own key list,
which the parity test proves identical); they are saved as the official file names in the
official release layout and imported with :func:`vidcolor.weights.import_weights` from that folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import DATA, FIXTURES, shared_path
from vidcolor import weights
from vidcolor.color import rgb_to_lab
from vidcolor.colorizers.deepex import DeepExColorizer
from vidcolor.errors import InputError, WeightsNotFoundError
from vidcolor.models import deepex as dx
from vidcolor.references import Reference, load_reference

DOG = DATA / "clips" / "davis" / "dog" / "JPEGImages"
MANIFEST = FIXTURES / "deepex-parity" / "manifest.json"  # optional: the parity fixture's tensor list
RELEASE_LAYOUT = {
    "vggnet": "data/vgg19_conv.pth",
    "nonlocal_net": "checkpoints/video_moredata_l1/nonlocal_net_iter_76000.pth",
    "colornet": "checkpoints/video_moredata_l1/colornet_iter_76000.pth",
}



def _lightness(index: int, width: int, height: int) -> np.ndarray:
    bgr = cv2.imread(str(shared_path(f"clips/davis/dog/JPEGImages/{index:05d}.jpg")))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    return rgb_to_lab(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))[..., 0]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """The frames here are small: one thread avoids per-op synchronisation, which dominates on a busy CI box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    """Rule weights saved in the release layout, imported into a private VIDCOLOR_HOME."""
    if MANIFEST.is_file():
        nets = {n["name"]: ([(k, tuple(s)) for k, s in n["tensors"]], n["seed"]) for n in json.loads(MANIFEST.read_text())["networks"]}
    else:
        nets = {name: (dx.expected_tensors(name), seed) for name, seed in weights.DEEPEX_SYNTHETIC_SEEDS.items()}
    release = tmp_path_factory.mktemp("release") / "Deep-Exemplar-based-Video-Colorization"
    states = {}
    for name, (tensors, seed) in nets.items():
        states[name] = weights.synthetic_state_dict(tensors, seed)
        path = release / RELEASE_LAYOUT[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(states[name], path)
    (release / "checkpoints" / "video_moredata_l1" / "discriminator_iter_76000.pth").write_bytes(b"not needed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(weights.HOME_ENV, str(tmp_path_factory.mktemp("home")))
        imported = weights.import_weights("deepex", release)
        assert sorted(i.filename for i in imported) == sorted(Path(p).name for p in RELEASE_LAYOUT.values())
        yield states


@pytest.fixture(scope="module")
def colorizer(installed: dict) -> DeepExColorizer:
    return DeepExColorizer()  # loads through the registry from the private VIDCOLOR_HOME


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(shared_path("clips/davis/dog/JPEGImages/00020.jpg"))


def test_loads_installed_weights_from_the_registry(colorizer: DeepExColorizer, installed: dict) -> None:
    assert {row.name: row.installed for row in weights.list_models()}["deepex"]
    assert torch.equal(colorizer.net.colornet.conv10_ab.weight, installed["colornet"]["conv10_ab.weight"])
    assert torch.equal(colorizer.net.nonlocal_net.layer5_1[6].weight, installed["nonlocal_net"]["layer5_1.6.weight"])
    assert colorizer.name == "deepex" and colorizer.device.type == "cpu"


def test_runs_on_real_frames_at_an_unaligned_size(colorizer: DeepExColorizer, reference: Reference) -> None:
    colorizer.reset()
    outputs = [colorizer.step(_lightness(i, 90, 45), reference) for i in range(3)]
    for out in outputs:
        assert out.ab.shape == (45, 90, 2) and out.ab.dtype == np.float32 and np.isfinite(out.ab).all()
        assert np.abs(out.ab).max() <= 128.0
        assert out.confidence.shape == (45, 90) and out.confidence.dtype == np.float32
        assert 0.0 <= out.confidence.min() and out.confidence.max() <= 1.0 and out.confidence.std() > 1e-3
        assert {"similarity_mean", "reference_coverage", "seconds_correspondence", "seconds_colorization"} <= out.stats.keys()
        assert out.ab.std() > 5.0  # colour, not gray
    assert not np.array_equal(outputs[0].ab, outputs[1].ab)


def test_feeds_the_networks_exactly_like_the_official_recurrence(colorizer: DeepExColorizer, reference: Reference) -> None:
    """At an aligned size the adapter is DeepExNet on (L - 50, reference Lab/RGB) plus the recurrence."""
    h, w = 48, 96
    frames = [_lightness(i, w, h) for i in range(2)]
    colorizer.reset()
    got = [colorizer.step(f, reference).ab for f in frames]
    ref_h, ref_w = colorizer.reference_size(reference, h, w)
    lab = reference.lab_at(ref_w, ref_h) - np.array([50, 0, 0], np.float32)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    with torch.inference_mode():
        ref = colorizer.net.reference(to_t(reference.rgb_at(ref_w, ref_h)), to_t(lab))
        previous = None
        for frame, ab in zip(frames, got, strict=True):
            l_c = torch.from_numpy(frame - np.float32(50))[None, None]
            result = colorizer.net(l_c, ref, previous)
            previous = torch.cat([l_c, result.ab], dim=1)
            np.testing.assert_array_equal(ab, result.ab[0].permute(1, 2, 0).numpy())


def test_padding_is_cropped_back(colorizer: DeepExColorizer, reference: Reference) -> None:
    frame = _lightness(0, 90, 45)  # → 48 x 96 inside
    colorizer.reset()
    small = colorizer.step(frame, reference)
    padded = np.pad(frame, ((0, 3), (0, 6)), mode="reflect")
    colorizer.reset()
    large = colorizer.step(padded, reference)
    np.testing.assert_array_equal(small.ab, large.ab[:45, :90])
    np.testing.assert_array_equal(small.confidence, large.confidence[:45, :90])


def test_any_shape_and_aspect(colorizer: DeepExColorizer, reference: Reference) -> None:
    for h, w in ((90, 40), (20, 30)):
        colorizer.reset()
        out = colorizer.step(_lightness(0, w, h), reference)
        assert out.ab.shape == (h, w, 2) and out.confidence.shape == (h, w)
    portrait = Reference.from_array(np.ascontiguousarray(reference.rgb[:, 200:480]), key="portrait")
    ref_h, ref_w = colorizer.reference_size(portrait, 216, 384)
    assert ref_h > ref_w and abs(ref_h * ref_w - 216 * 384) < 0.1 * 216 * 384  # its own aspect, the frame's pixel count


def test_reference_features_are_computed_once_per_reference(installed: dict, reference: Reference, monkeypatch: pytest.MonkeyPatch) -> None:
    colorizer = DeepExColorizer(state_dicts=installed)
    calls = []
    original = colorizer.net.reference
    monkeypatch.setattr(colorizer.net, "reference", lambda *a: calls.append(1) or original(*a))
    for i in range(3):
        colorizer.step(_lightness(i, 96, 48), reference)
    colorizer.reset()
    colorizer.step(_lightness(3, 96, 48), reference)
    assert len(calls) == 1
    other = Reference.from_array(reference.rgb[::-1].copy(), key="flipped")
    colorizer.step(_lightness(4, 96, 48), other)
    assert len(calls) == 2


def test_previous_frame_feeds_back_and_reset_forgets_it(colorizer: DeepExColorizer, reference: Reference) -> None:
    f0, f1 = _lightness(0, 96, 48), _lightness(1, 96, 48)
    colorizer.reset()
    first = colorizer.step(f0, reference).ab
    continued = colorizer.step(f1, reference).ab
    colorizer.reset()
    fresh = colorizer.step(f1, reference).ab
    assert np.abs(continued - fresh).mean() > 1.0
    colorizer.reset()
    np.testing.assert_array_equal(colorizer.step(f0, reference).ab, first)


def _recurrence(colorizer: DeepExColorizer, reference: Reference, frame: np.ndarray, previous_l: np.ndarray,
                previous_ab: np.ndarray) -> np.ndarray:
    """The official recurrence by hand at an aligned size: the networks on ``frame`` with
    (``previous_l``, ``previous_ab``) as the previous frame."""
    h, w = frame.shape
    ref_h, ref_w = colorizer.reference_size(reference, h, w)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    with torch.inference_mode():
        ref = colorizer.net.reference(to_t(reference.rgb_at(ref_w, ref_h)), to_t(reference.lab_at(ref_w, ref_h) - np.array([50, 0, 0], np.float32)))
        previous = torch.cat([torch.from_numpy(previous_l - np.float32(50))[None, None], to_t(previous_ab)], dim=1)
        return colorizer.net(torch.from_numpy(frame - np.float32(50))[None, None], ref, previous).ab[0].permute(1, 2, 0).numpy()


def test_set_previous_feeds_the_corrected_frame_to_the_recurrence(colorizer: DeepExColorizer, reference: Reference) -> None:
    f0, f1 = _lightness(0, 96, 48), _lightness(1, 96, 48)  # aligned: no padding
    colorizer.reset()
    first = colorizer.step(f0, reference).ab
    uncorrected = colorizer.step(f1, reference).ab
    corrected = np.ascontiguousarray(first[::-1, ::-1]) + np.float32(15.0)  # a correction the network never made
    colorizer.reset()
    colorizer.step(f0, reference)
    colorizer.set_previous(corrected)
    got = colorizer.step(f1, reference).ab
    np.testing.assert_array_equal(got, _recurrence(colorizer, reference, f1, f0, corrected))
    assert np.abs(got - uncorrected).mean() > 1.0


def test_set_previous_of_the_unchanged_output_changes_nothing(installed: dict, reference: Reference) -> None:
    """Padded size and the official look: handing back the frame's own output is exactly a no-op."""
    frames = [_lightness(i, 90, 45) for i in range(3)]
    for look in ({}, {"chroma_gain": 1.25, "smooth_lambda": 500.0}):
        plain, echoed = DeepExColorizer(state_dicts=installed, **look), DeepExColorizer(state_dicts=installed, **look)
        for frame in frames:
            expected = plain.step(frame, reference).ab
            out = echoed.step(frame, reference).ab
            np.testing.assert_array_equal(out, expected)
            echoed.set_previous(out)


def test_set_previous_takes_the_correction_back_out_of_the_chroma_gain(installed: dict, reference: Reference) -> None:
    f0, f1 = _lightness(0, 96, 48), _lightness(1, 96, 48)
    plain, boosted = DeepExColorizer(state_dicts=installed), DeepExColorizer(state_dicts=installed, chroma_gain=1.25)
    raw, output = plain.step(f0, reference).ab, boosted.step(f0, reference).ab
    shift = np.float32(10.0) * np.sign(raw)
    plain.set_previous(raw + shift / np.float32(1.25))
    boosted.set_previous(output + shift)
    np.testing.assert_allclose(boosted.step(f1, reference).ab, 1.25 * plain.step(f1, reference).ab, rtol=1e-4, atol=0.05)  # float rounding only


def test_the_temporal_check_corrections_reach_the_recurrence(installed: dict, reference: Reference) -> None:
    """Under --temporal the frame fed back is the checked output, not the raw prediction."""
    from vidcolor.correspondence.flow import DISFlow
    from vidcolor.temporal import TemporalCheck

    frames = [_lightness(i, 96, 48) for i in range(3)]
    checked = TemporalCheck(DeepExColorizer(state_dicts=installed), DISFlow())
    outputs = [checked.step(f, reference) for f in frames[:2]]
    assert outputs[1].stats["corrected"] > 0.5  # the check changed frame 1
    raw_next = checked.inner.step(frames[2], reference).ab  # the inner network's own next prediction
    np.testing.assert_array_equal(raw_next, _recurrence(checked.inner, reference, frames[2], frames[1], outputs[1].ab))


def test_without_reference_confidence_is_zero(colorizer: DeepExColorizer) -> None:
    colorizer.reset()
    out = colorizer.step(_lightness(0, 96, 48), None)
    assert out.ab.shape == (48, 96, 2) and np.isfinite(out.ab).all() and not out.confidence.any()


def test_official_look_applies_to_the_output_only(installed: dict, reference: Reference) -> None:
    frames = [_lightness(i, 96, 48) for i in range(2)]
    plain = DeepExColorizer(state_dicts=installed)
    boosted = DeepExColorizer(state_dicts=installed, chroma_gain=1.25)
    official = DeepExColorizer(state_dicts=installed, chroma_gain=1.25, smooth_lambda=500.0, smooth_sigma=4.0)
    for frame in frames:
        a, b, c = plain.step(frame, reference).ab, boosted.step(frame, reference).ab, official.step(frame, reference).ab
        np.testing.assert_allclose(b, 1.25 * a, rtol=1e-6, atol=1e-5)  # the raw ab, not the boosted one, was fed back
        roughness = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731
        assert roughness(c) < 0.5 * roughness(b)
        assert abs(float(c.mean()) - float(b.mean())) < 0.1 * float(np.abs(b).mean())


def test_chunked_correlation_equals_the_full_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(700, 32, generator=gen), dim=1)
    k = torch.nn.functional.normalize(torch.randn(32, 300, generator=gen), dim=0)
    v = torch.randn(300, 3, generator=gen)
    full = q @ k
    small = 300 * 4 * 50  # 50 rows per chunk on the hard path
    hard = dx.correspond(q, k, v, (20, 35), dx.OFFICIAL_TEMPERATURE, chunk_bytes=small)
    assert torch.equal(hard.index, full.argmax(dim=1))
    torch.testing.assert_close(hard.similarity.flatten(), full.max(dim=1).values)
    torch.testing.assert_close(hard.warped.reshape(3, -1).t(), v[full.argmax(dim=1)])
    # The official temperature through a real softmax gives the same one-hot warp.
    torch.testing.assert_close(hard.warped.reshape(3, -1).t(), torch.softmax(full / dx.OFFICIAL_TEMPERATURE, dim=1) @ v)
    soft = dx.correspond(q, k, v, (20, 35), 0.05, chunk_bytes=small)
    assert soft.index is None
    torch.testing.assert_close(soft.warped.reshape(3, -1).t(), torch.softmax(full / 0.05, dim=1) @ v)


def test_chunk_size_does_not_change_the_result(installed: dict, reference: Reference) -> None:
    frame = _lightness(0, 96, 48)
    default = DeepExColorizer(state_dicts=installed).step(frame, reference)
    tiny = DeepExColorizer(state_dicts=installed, chunk_bytes=1 << 16).step(frame, reference)
    np.testing.assert_allclose(tiny.confidence, default.confidence, atol=1e-6)
    assert np.abs(tiny.ab - default.ab).mean() < 1e-3


def test_registry_entry_and_validation(installed: dict) -> None:
    from vidcolor.colorizers import get_colorizer

    assert isinstance(get_colorizer("deepex", device="cpu", state_dicts=installed), DeepExColorizer)
    for bad in ({"temperature": 0.0}, {"chunk_bytes": 10}, {"smooth_lambda": -1.0}, {"reference_fit": "stretch"}, {"num_threads": 0}):
        with pytest.raises(InputError):
            DeepExColorizer(state_dicts=installed, **bad)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            DeepExColorizer("cuda", state_dicts=installed)
    with pytest.raises(InputError, match="2-D"):
        DeepExColorizer(state_dicts=installed).step(np.zeros((8, 8, 3), np.float32), None)


def test_missing_weights_say_how_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(weights.HOME_ENV, str(tmp_path / "empty"))
    with pytest.raises(WeightsNotFoundError, match=r"vidcolor models import deepex PATH"):
        DeepExColorizer()


def test_cli_imports_the_release_folder_and_colorizes_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vidcolor models import deepex FOLDER` then `vidcolor colorize --model deepex`, as a user runs them."""
    from click.testing import CliRunner

    from vidcolor.cli import main

    from helpers import decoded_video, write_clip

    if MANIFEST.is_file():
        nets = {n["name"]: ([(k, tuple(s)) for k, s in n["tensors"]], n["seed"]) for n in json.loads(MANIFEST.read_text())["networks"]}
    else:
        nets = {name: (dx.expected_tensors(name), seed) for name, seed in weights.DEEPEX_SYNTHETIC_SEEDS.items()}
    release = tmp_path / "release"
    for name, (tensors, seed) in nets.items():
        path = release / RELEASE_LAYOUT[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(weights.synthetic_state_dict(tensors, seed), path)
    monkeypatch.setenv(weights.HOME_ENV, str(tmp_path / "home"))
    runner = CliRunner()
    result = runner.invoke(main, ["models", "import", "deepex", str(release)])
    assert result.exit_code == 0, result.output
    assert result.output.count("installed") == 3
    frames = [cv2.cvtColor(cv2.imread(str(shared_path(f"clips/davis/dog/JPEGImages/{i:05d}.jpg"))), cv2.COLOR_BGR2RGB)[:192:3, :320:3]
              for i in range(3)]
    source = write_clip(tmp_path / "dog.mp4", [np.ascontiguousarray(f[:64, :96]) for f in frames], gray=True)
    output = tmp_path / "dog-deepex.mkv"
    result = runner.invoke(main, ["colorize", str(source), "-o", str(output), "--ref", str(DOG / "00000.jpg"),
                                  "--model", "deepex", "--size", "64", "--codec", "ffv1", "-q"])
    assert result.exit_code == 0, result.output
    src, out = decoded_video(source), decoded_video(output)
    assert len(out) == len(src) == 3
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(src, out))  # luma untouched
