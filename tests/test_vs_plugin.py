"""The VapourSynth filter on the real R81 core: same pixels as the CLI, order-independent."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

vs = pytest.importorskip("vapoursynth", reason="the vs extra is not installed: pip install -e .[vs]")
import vsvidcolor  # noqa: E402

from vidcolor.cli import main  # noqa: E402

from helpers import color_frames, shared_path, write_clip  # noqa: E402

core = vs.core


@pytest.fixture
def clip_and_ref(tmp_path):
    path = write_clip(tmp_path / "c.mkv", color_frames(30, 96, 64), codec="ffv1", pix_fmt="yuv420p")
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 96, 64)[0], cv2.COLOR_RGB2BGR))
    return core.bs.VideoSource(str(path)), reference


def planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def vspipe_frames(tmp_path: Path, source: Path, arguments: str) -> list[np.ndarray]:
    """Every frame of ``vsvidcolor.colorize(clip, <arguments>)`` rendered by ``vspipe`` in its own
    process (as users run it: nothing the test process set, such as torch's thread count, leaks in)."""
    script = tmp_path / "colorize.vpy"
    script.write_text("import vapoursynth as vs\nimport vsvidcolor\n"
                      f"clip = vs.core.bs.VideoSource({str(source)!r})\n"
                      f"vsvidcolor.colorize(clip, {arguments}).set_output()\n")
    y4m = tmp_path / "vs.y4m"
    subprocess.run([str(Path(sys.executable).with_name("vspipe")), "-c", "y4m", str(script), str(y4m)],
                   check=True, capture_output=True)
    return decoded_yuv444(y4m)


def decoded_yuv444(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv444p") for f in container.decode(video=0)]


def assert_identical_frames(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    differing = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if not np.array_equal(a, b)]
    assert not differing, f"{len(differing)} of {len(expected)} frames differ, first {differing[:5]}"


def assert_shuffled_requests_match(out: vs.VideoNode, cli_output: Path, seed: int) -> list[np.ndarray]:
    """Request ``out``'s frames in a shuffled order, all at once, and compare each with the CLI's
    output, bit for bit; returns the CLI's frames."""
    expected = decoded_yuv444(cli_output)
    assert out.num_frames == len(expected)
    order = list(range(out.num_frames))
    random.Random(seed).shuffle(order)
    futures = {i: out.get_frame_async(i) for i in order}
    for i in order:
        np.testing.assert_array_equal(planes(futures[i].result()), expected[i], err_msg=f"frame {i}")
    return [frame.astype(int) for frame in expected]


def test_output_format_and_untouched_luma(clip_and_ref):
    clip, reference = clip_and_ref
    out = vsvidcolor.colorize(clip, ref=str(reference), model="classic")
    assert out.format.name == "YUV444P8" and out.num_frames == clip.num_frames
    frame = out.get_frame(7)
    np.testing.assert_array_equal(np.asarray(frame[0]), np.asarray(clip.get_frame(7)[0]))
    assert np.abs(np.asarray(frame[1]).astype(int) - 128).mean() > 5  # it has colour
    rgb = vsvidcolor.colorize(clip, ref=str(reference), model="classic", rgb=True)
    assert rgb.format.name == "RGB24"


def test_shuffled_parallel_requests_equal_sequential(clip_and_ref):
    clip, reference = clip_and_ref
    sequential = vsvidcolor.colorize(clip, ref=str(reference), model="classic", chunk_length=8, warmup=3)
    expected = [planes(sequential.get_frame(i)) for i in range(clip.num_frames)]
    shuffled = vsvidcolor.colorize(clip, ref=str(reference), model="classic", chunk_length=8, warmup=3, cache_chunks=1)
    order = list(range(clip.num_frames))
    random.Random(3).shuffle(order)
    futures = {i: shuffled.get_frame_async(i) for i in order}
    for i in order:
        np.testing.assert_array_equal(planes(futures[i].result()), expected[i])


def test_scene_change_property_restarts_recurrence(clip_and_ref):
    clip, reference = clip_and_ref
    plain = vsvidcolor.colorize(clip, ref=str(reference), model="classic", chunk_length=0)
    marked = core.std.Splice([clip[:12], clip[12].std.SetFrameProps(_SceneChangePrev=1), clip[13:]])
    cut = vsvidcolor.colorize(marked, ref=str(reference), model="classic", chunk_length=0)
    assert np.array_equal(planes(plain.get_frame(11)), planes(cut.get_frame(11)))
    assert not np.array_equal(planes(plain.get_frame(12)), planes(cut.get_frame(12)))


@pytest.mark.parametrize("model", ["classic", "default"])
def test_vspipe_gives_the_cli_frames_exactly(tmp_path, model):
    """All frames, bit for bit: vspipe and `vidcolor colorize --codec ffv1` (both 4:4:4), with a
    classic (OpenCV) and a torch model, each front end in its own process with default threads."""
    source = write_clip(tmp_path / "c.mp4", color_frames(40, 256, 144, seed=2))
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(color_frames(1, 256, 144, seed=2)[0], cv2.COLOR_RGB2BGR))
    cli_out = tmp_path / "cli.mkv"
    subprocess.run([sys.executable, "-m", "vidcolor", "colorize", str(source), "-o", str(cli_out), "--ref", str(reference),
                    "--codec", "ffv1", "--model", model, "--chunk-length", "16", "-q"], check=True, capture_output=True)
    got = vspipe_frames(tmp_path, source, f"ref={str(reference)!r}, model={model!r}, chunk_length=16")
    assert_identical_frames(got, decoded_yuv444(cli_out))


def test_vspipe_matches_cli_on_bigbuckbunny(tmp_path):
    source = shared_path("clips/misc/bigbuckbunny.mp4")
    reference = tmp_path / "ref.png"
    with av.open(str(source)) as container:
        cv2.imwrite(str(reference), next(container.decode(video=0)).to_ndarray(format="bgr24"))
    cli_out = tmp_path / "cli.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(cli_out), "--ref", str(reference),
                                       "--codec", "ffv1", "--model", "classic", "--size", "144", "-q"])
    assert result.exit_code == 0, result.output
    got = vspipe_frames(tmp_path, source, f"ref={str(reference)!r}, model='classic', size=144")
    assert len(got) == 132
    assert_identical_frames(got, decoded_yuv444(cli_out))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auto_model": "nope"}, "auto_model must be one of default, classic"),
        ({"cuts": [0, 5]}, "cuts must be frame numbers in 1..29"),
        ({"ref": "x.png", "refs": {0: "x.png"}}, "give only one of ref, refs"),
        ({"ref": "missing.png"}, "missing.png"),
        ({"refs": {99: "REF"}}, "refs keys must be frame numbers in 0..29, got 99"),
        ({"refs": {}}, "refs must be a non-empty dict"),
        ({"ref": "REF", "model": "nope"}, "model must be one of"),
        ({"ref": "REF", "size": 4}, "size must be a short side in pixels (an integer of at least 32)"),
        ({"ref": "REF", "chunk_length": -1}, "chunk_length must be an integer of at least 0, got -1"),
        ({"ref": "REF", "cache_chunks": 0}, "cache_chunks must be >= 1, got 0"),
        ({"ref": "REF", "detail": "yes"}, "detail must be True or False, got 'yes'"),
        ({"ref": "REF", "threads": 0}, "threads must be an integer of at least 1, got 0"),
        ({"ref_clip": "GRAYCLIP"}, "ref_clip must be an RGB clip, got Gray8"),
        ({"ref_clip": "RGBCLIP2", "ref_frames": [0]}, "ref_clip must have one frame per entry of ref_frames (1), got 2 frames"),
        ({"ref_clip": "RGBCLIP2", "ref_frames": [0, 40]}, "ref_frames must be frame numbers in 0..29, got 40"),
    ],
)
def test_validation_errors(clip_and_ref, kwargs, message):
    clip, reference = clip_and_ref
    replacements = {
        "REF": str(reference),
        "GRAYCLIP": core.std.BlankClip(format=vs.GRAY8, length=1),
        "RGBCLIP2": core.std.BlankClip(format=vs.RGB24, length=2, color=[200, 50, 50]),
    }
    kwargs = {k: replacements.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    if "refs" in kwargs and kwargs["refs"]:
        kwargs["refs"] = {k: replacements.get(v, v) for k, v in kwargs["refs"].items()}
    with pytest.raises(vs.Error, match=r"^vsvidcolor\.colorize: ") as info:
        vsvidcolor.colorize(clip, **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("fmt", ["RGB24", "YUV420P8"])
def test_input_format_validation(fmt):
    clip = core.std.BlankClip(format=getattr(vs, fmt), length=2)
    if fmt == "RGB24":
        with pytest.raises(vs.Error, match="clip must be GRAY or YUV .only luma is used., got RGB24"):
            vsvidcolor.colorize(clip, ref="anything.png")
    else:
        with pytest.raises(vs.Error, match="does not exist"):
            vsvidcolor.colorize(clip, ref="anything.png")


def test_float_and_high_bit_depth_inputs(clip_and_ref):
    clip, reference = clip_and_ref
    for fmt in (vs.YUV420P10, vs.YUV420P16, vs.GRAYS, vs.GRAYH):
        converted = clip.resize.Point(format=fmt)
        out = vsvidcolor.colorize(converted, ref=str(reference), model="classic")
        frame = out.get_frame(3)
        assert out.format.bits_per_sample == converted.format.bits_per_sample
        np.testing.assert_array_equal(np.asarray(frame[0]), np.asarray(converted.get_frame(3)[0]))


def test_preset_gives_the_cli_frames_in_any_order(tmp_path):
    """A preset with a two-keyframe shot and a cut: VapourSynth (shuffled, parallel requests) and
    `vidcolor colorize --preset` give the same frames, bit for bit."""
    source = write_clip(tmp_path / "c.mkv", color_frames(24, 96, 64), codec="ffv1", pix_fmt="yuv444p")
    for name, rgb in (("red.png", (190, 50, 40)), ("blue.png", (40, 60, 190)), ("green.png", (60, 170, 60))):
        image = np.zeros((64, 96, 3), np.uint8)
        image[:] = rgb
        image[::2] //= 2  # two lightness levels to match on
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    preset = tmp_path / "p.toml"
    preset.write_text('model = "classic"\nsize = 48\n'
                      '[[shot]]\nstart = 0\nreference = "red.png"\nend_reference = "blue.png"\n'
                      '[[shot]]\nstart = 14\nreference = "green.png"\n'
                      '[[shot]]\nstart = 20\n')
    cli_out = tmp_path / "cli.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(cli_out), "--preset", str(preset),
                                       "--codec", "ffv1", "--chunk-length", "6", "-q"])
    assert result.exit_code == 0, result.output
    out = vsvidcolor.colorize(core.bs.VideoSource(str(source)), preset=str(preset), chunk_length=6, cache_chunks=1)
    expected = assert_shuffled_requests_match(out, cli_out, seed=5)
    # the end reference took effect: the first shot runs from red into blue
    assert expected[0][2].mean() > expected[13][2].mean() + 10  # Cr falls from red to blue


@pytest.mark.parametrize("size", ["48", "40x32"])
def test_reference_detail_gives_the_cli_frames(tmp_path, size):
    """detail=True: the filter adds the reference's fine colour exactly as `vidcolor colorize
    --detail` does, in any request order, and it changes the frames. 40x32 (another aspect, and
    too small for DIS's medium pyramid): OpenCV's DIS kept the scales its first call chose, so the
    filter's fresh per-thread flow estimators gave frames up to 97 code values off the CLI's."""
    from test_detail import fabric, panned

    scene = fabric(300, 160, seed=5)
    frames = [panned(scene, 1.5 * i, 0.5 * i, 128, 96) for i in range(12)]
    source = write_clip(tmp_path / "c.mkv", frames, codec="ffv1", pix_fmt="yuv444p", gray=True)
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    cli_out = tmp_path / "cli.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(cli_out), "--ref", str(reference),
                                       "--model", "classic", "--size", size, "--codec", "ffv1", "--detail", "-q"])
    assert result.exit_code == 0, result.output
    clip = core.bs.VideoSource(str(source))
    keyword = int(size) if size.isdigit() else size
    out = vsvidcolor.colorize(clip, ref=str(reference), model="classic", size=keyword, detail=True, cache_chunks=1)
    expected = assert_shuffled_requests_match(out, cli_out, seed=7)
    plain = vsvidcolor.colorize(clip, ref=str(reference), model="classic", size=keyword)
    changed = np.abs(planes(plain.get_frame(5)).astype(int)[1:] - expected[5][1:]).mean()
    assert changed > 2.0, changed


def test_default_model_at_a_small_size_gives_the_cli_frames(tmp_path):
    """The default model's own DIS flows (to the previous frame and to the reference) at a working
    size too small for the fast preset's pyramid (86x48): OpenCV kept the scales its first call chose,
    so the filter's per-chunk colorizers gave frames up to 5 code values off the CLI's one pass."""
    frames = color_frames(18, 128, 72, seed=3)
    source = write_clip(tmp_path / "c.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    cli_out = tmp_path / "cli.mkv"
    result = CliRunner().invoke(main, ["colorize", str(source), "-o", str(cli_out), "--ref", str(reference),
                                       "--model", "default", "--size", "48", "--codec", "ffv1",
                                       "--chunk-length", "6", "-q"])
    assert result.exit_code == 0, result.output
    out = vsvidcolor.colorize(core.bs.VideoSource(str(source)), ref=str(reference), model="default", size=48,
                              chunk_length=6, cache_chunks=1)
    assert_shuffled_requests_match(out, cli_out, seed=1)
