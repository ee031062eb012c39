"""Reference recommendation (He et al. 2018 retrieval): ranking, feature cache, presets, errors.

The acceptance check of issue 10 on real data: a library mixing one frame of each shared DAVIS
clip with shared photos; a different, black-and-white frame of each clip must find its own
clip's frame first for at least 4 of the 5 clips. Working sizes are small to keep CI fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidcolor.cli import EXIT_BAD_INPUT, VidcolorGroup
from vidcolor.cli.refs import refs
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.errors import InputError, OutputError, WeightsNotFoundError
from vidcolor.models.deepex import expected_tensors
from vidcolor.schedule.presets import load_preset
from vidcolor.recommend import (
    BETA,
    FeatureLibrary,
    Lite0Backbone,
    VCNetBackbone,
    VGGBackbone,
    best_backbone,
    cell_histograms,
    input_queries,
    local_score,
    rank,
    suggest,
    write_preset,
)
from vidcolor.references import read_rgb
from vidcolor.weights import import_weights
from vidcolor.weights.testing import DEEPEX_SYNTHETIC_SEEDS, synthetic_state_dict

from helpers import shared_path

CLIPS = ("blackswan", "bmx-trees", "car-shadow", "dog", "horsejump-high")
#: Photos mixed into the test library (the full ~640-photo run is in the issue's report).
PHOTO_COUNT = 40
SHORT_SIDE = 96


def small_backbone() -> VCNetBackbone:
    backbone = VCNetBackbone()
    backbone.short_side = SHORT_SIDE
    return backbone


def gray_lightness(path: Path) -> np.ndarray:
    rgb = read_rgb(path)
    assert rgb is not None
    return rgb_to_gray_lightness(rgb.astype(np.float32) / 255.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy CPU, OpenMP's spinning makes 2 threads tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frame 0 of each DAVIS clip plus PHOTO_COUNT shared photos, copied (the test edits files)."""
    davis = shared_path("clips/davis")
    photos = sorted(shared_path("photos/bsds500/val").glob("*.jpg"))[:PHOTO_COUNT // 2]
    photos += sorted(shared_path("photos/sun_hays80").glob("*.jpg"))[:PHOTO_COUNT // 2]
    root = tmp_path_factory.mktemp("library")
    (root / "davis").mkdir()
    (root / "photos").mkdir()
    for clip in CLIPS:
        shutil.copy(davis / clip / "JPEGImages" / "00000.jpg", root / "davis" / f"{clip}.jpg")
    for photo in photos:
        shutil.copy(photo, root / "photos" / f"{photo.parent.name}-{photo.name}")
    return root


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private vidcolor home, so the default feature cache lands in the test's folder."""
    monkeypatch.setenv("VIDCOLOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_own_clip_frame_ranks_first_for_four_of_five_clips(library_dir: Path, home: Path) -> None:
    backbone = small_backbone()
    library = FeatureLibrary(library_dir, backbone)
    stats = library.refresh()
    assert stats.images == len(CLIPS) + PHOTO_COUNT and stats.computed == stats.images and stats.reused == 0
    assert stats.cache_path is not None and stats.cache_path.is_file() and str(stats.cache_path).startswith(str(home))
    firsts = []
    for clip in CLIPS:
        frames = sorted(shared_path(f"clips/davis/{clip}/JPEGImages").glob("*.jpg"))
        query = backbone.features(gray_lightness(frames[len(frames) // 2]))  # a different frame, black and white
        ranked = rank(library, query, top=3)
        assert [s.rank for s in ranked] == [1, 2, 3]
        assert ranked[0].score >= ranked[1].score >= ranked[2].score
        for s in ranked:
            assert s.score == pytest.approx(s.semantic + BETA * s.luminance, abs=1e-5)
            assert -1.0 <= s.semantic <= 1.0 and -1.0 <= s.luminance <= 1.0
        firsts.append(ranked[0].path.name == f"{clip}.jpg")
    assert sum(firsts) >= 4, dict(zip(CLIPS, firsts))


def test_pretrained_lite0_finds_far_frames_better_than_vcnet(library_dir: Path, tmp_path: Path) -> None:
    """Why ``auto`` ranks with the ImageNet Lite0 trunk (issue 24 item 3), each backbone at its own
    working size: the middle and the last frame of every clip, black and white, must find the
    clip's frame 0. Lite0 finds 9 of the 10, VCNet's encoder 8 (bmx-trees is the hard one).

    The same measurement over all 1,726 shared photos plus frame 0 of the 17 shared clips (far,
    middle and mirrored frame-0 queries per clip, 40 mirrored and cropped photos;
    ``bench/retrieval.py --backbones vcnet,lite0``): VCNet misses 5 of the 91 queries, Lite0 1.
    """
    found = {}
    for backbone in (Lite0Backbone(), VCNetBackbone()):
        library = FeatureLibrary(library_dir, backbone, cache_path=tmp_path / f"{backbone.name}.npz")
        library.refresh()
        hits = 0
        for clip in CLIPS:
            frames = sorted(shared_path(f"clips/davis/{clip}/JPEGImages").glob("*.jpg"))
            for frame in (frames[len(frames) // 2], frames[-1]):
                hits += rank(library, backbone.features(gray_lightness(frame)), top=1)[0].path.name == f"{clip}.jpg"
        found[backbone.name] = hits
    assert found["lite0"] >= 9 and found["lite0"] > found["vcnet"], found


def test_second_query_reuses_the_cache_and_changed_files_are_refeatured(library_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    shutil.copytree(library_dir, root)
    cache = tmp_path / "features.npz"
    first = FeatureLibrary(root, small_backbone(), cache_path=cache)
    assert first.refresh().computed == len(CLIPS) + PHOTO_COUNT

    backbone = small_backbone()  # a fresh process: nothing in memory
    again = FeatureLibrary(root, backbone, cache_path=cache)
    stats = again.refresh()
    assert (stats.computed, stats.reused, backbone.calls, stats.cache_written) == (0, len(CLIPS) + PHOTO_COUNT, 0, False)
    query = backbone.features(gray_lightness(root / "davis" / "dog.jpg"))
    assert rank(again, query, top=1)[0].path.name == "dog.jpg"  # cached features rank like fresh ones

    # repaint one image (same name), delete another, add a third
    target = root / "davis" / "blackswan.jpg"
    old = next(e.features for e in again.entries if e.relpath == "davis/blackswan.jpg")
    image = cv2.imread(str(target))
    cv2.imwrite(str(target), np.ascontiguousarray(image[::-1, ::-1]))
    stamp = target.stat().st_mtime_ns + 2_000_000_000
    os.utime(target, ns=(stamp, stamp))
    (root / "davis" / "dog.jpg").unlink()
    shutil.copy(root / "davis" / "bmx-trees.jpg", root / "davis" / "bmx-copy.png")  # same pixels, new file
    backbone = small_backbone()
    third = FeatureLibrary(root, backbone, cache_path=cache)
    stats = third.refresh()
    assert (stats.computed, stats.removed, backbone.calls) == (2, 1, 2)
    assert stats.reused == len(CLIPS) + PHOTO_COUNT - 2
    new = next(e.features for e in third.entries if e.relpath == "davis/blackswan.jpg")
    assert not np.allclose(new.local.astype(np.float32), old.local.astype(np.float32), atol=1e-2)
    assert stats.cache_written
    assert FeatureLibrary(root, small_backbone(), cache_path=cache).refresh().computed == 0

    cache.write_bytes(cache.read_bytes()[:1000])  # a truncated cache (crash of another tool, full disk)
    stats = FeatureLibrary(root, small_backbone(), cache_path=cache).refresh()
    assert stats.computed == len(CLIPS) + PHOTO_COUNT and stats.cache_written


def test_other_backbone_settings_do_not_reuse_a_cache(library_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "features.npz"
    FeatureLibrary(library_dir, small_backbone(), cache_path=cache).refresh()
    other = small_backbone()
    other.short_side = SHORT_SIDE + 32
    assert FeatureLibrary(library_dir, other, cache_path=cache).refresh().reused == 0


def test_video_shots_and_written_preset_load(library_dir: Path, tmp_path: Path, home: Path) -> None:
    """A DAVIS clip as a frame folder: one detected shot, queried with its middle frame; the
    preset written from the top suggestion loads and points at the clip's own frame."""
    clip = shared_path("clips/davis/car-shadow/JPEGImages")
    backbone = small_backbone()
    library = FeatureLibrary(library_dir, backbone)
    library.refresh()
    queries = input_queries(clip)
    assert [(q.start, q.end, q.frames) for q in queries] == [(0, 39, (9, 19, 29))]  # quartiles of the one shot
    assert [lightness.shape for lightness in queries[0].lightness] == [(480, 854)] * 3
    results = suggest(library, queries, top=2)
    assert results[0].suggestions[0].path.name == "car-shadow.jpg"
    out = tmp_path / "presets" / "car.toml"
    write_preset(out, results, input_path=clip)
    preset = load_preset(out, fps=24, frame_count=40)
    assert [(s.start, s.reference) for s in preset.shots] == [(0, (library_dir / "davis" / "car-shadow.jpg").resolve())]
    with pytest.raises(OutputError, match="already exists"):
        write_preset(out, results)

    # --shots: the shot starts come from a preset instead of scene detection
    shots = tmp_path / "shots.toml"
    shots.write_text("[[shot]]\nstart = 0\n\n[[shot]]\nstart = 30\n", encoding="utf-8")
    two = input_queries(clip, shots_preset=shots, frames_per_shot=1)
    assert [(q.start, q.end, q.frames) for q in two] == [(0, 29, (14,)), (30, 39, (34,))]  # middle frames
    # a frame of the clip equals the reader's frame: the query sees the picture as black and white
    assert np.abs(two[1].lightness[0] - gray_lightness(clip / "00034.jpg")).mean() < 1.0


def test_cli_table_preset_and_errors(library_dir: Path, tmp_path: Path, home: Path) -> None:
    group = VidcolorGroup(commands={"refs": refs})
    runner = CliRunner()
    frames = sorted(shared_path("clips/davis/horsejump-high/JPEGImages").glob("*.jpg"))
    query = tmp_path / "query.png"
    cv2.imwrite(str(query), cv2.imread(str(frames[30]), cv2.IMREAD_GRAYSCALE))  # a black-and-white still
    out = tmp_path / "auto.toml"
    args = ["refs", "suggest", str(query), "--library", str(library_dir), "--top", "3", "--write-preset", str(out), "-q"]
    result = runner.invoke(group, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "shot 1: frames 0-0 (query frame 0)"  # a still image: one frame whatever --frames says
    assert "rank" in lines[1] and "semantic" in lines[1] and "lumin." in lines[1]
    assert lines[2].split()[0] == "1" and lines[2].endswith("horsejump-high.jpg")
    assert len([line for line in lines if line.strip()[:1].isdigit()]) == 3
    assert load_preset(out).shots[0].reference == (library_dir / "davis" / "horsejump-high.jpg").resolve()

    again = runner.invoke(group, args)  # the preset exists: refused before any work
    assert again.exit_code == EXIT_BAD_INPUT and "already exists" in again.output

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    cases = {
        str(tmp_path / "missing"): "does not exist",
        str(empty): "holds no images",
        str(query): "is not a folder",
    }
    for library, message in cases.items():
        bad = runner.invoke(group, ["refs", "suggest", str(query), "--library", library])
        assert bad.exit_code == EXIT_BAD_INPUT and message in bad.output, bad.output
    missing_input = runner.invoke(group, ["refs", "suggest", str(tmp_path / "nope.mp4"), "--library", str(library_dir)])
    assert missing_input.exit_code == EXIT_BAD_INPUT and "nope.mp4" in missing_input.output
    with pytest.raises(InputError, match="--shots needs a video"):
        input_queries(query, shots_preset=out)


def test_grayscale_library_images_are_never_suggested(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    frame = cv2.imread(str(shared_path("clips/davis/dog/JPEGImages/00000.jpg")))
    cv2.imwrite(str(root / "gray-dog.png"), cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    cv2.imwrite(str(root / "colour-other.png"), cv2.imread(str(shared_path("clips/davis/blackswan/JPEGImages/00000.jpg"))))
    backbone = small_backbone()
    library = FeatureLibrary(root, backbone, cache_path=tmp_path / "c.npz")
    assert library.refresh().gray == 1
    ranked = rank(library, backbone.features(gray_lightness(root / "gray-dog.png")), top=5)
    assert [s.path.name for s in ranked] == ["colour-other.png"]
    (root / "colour-other.png").unlink()
    with pytest.raises(InputError, match="no usable colour image"):
        FeatureLibrary(root, small_backbone(), cache_path=tmp_path / "c.npz").refresh()


def test_histogram_correlation_and_local_score() -> None:
    rng = np.random.default_rng(0)
    lightness = rng.uniform(0, 100, size=(64, 96)).astype(np.float32)
    hist = cell_histograms(lightness, stride=8)
    assert hist.shape == (8 * 12, 16)
    np.testing.assert_allclose(np.linalg.norm(hist, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(hist.sum(axis=1), 0.0, atol=1e-5)  # centred: dot product = correlation
    backbone = small_backbone()
    same = backbone.features(lightness)
    total, semantic, luminance = local_score(same, same)
    assert semantic == pytest.approx(1.0, abs=1e-3) and luminance == pytest.approx(1.0, abs=1e-3)
    assert total == pytest.approx(1.0 + BETA, abs=2e-3)
    dark = backbone.features(lightness * 0.3)  # cells whose histograms do not overlap
    bright = backbone.features(70.0 + lightness * 0.3)
    assert local_score(dark, bright)[2] < 0.0 < local_score(dark, dark)[2]


def test_vgg_backbone_runs_relu5_4_with_deepex_weights() -> None:
    """The VGG-19 path, with the synthetic stand-in for the official vgg19_conv.pth."""
    state = synthetic_state_dict(expected_tensors("vggnet"), DEEPEX_SYNTHETIC_SEEDS["vggnet"])
    backbone = VGGBackbone(state_dict=state)
    backbone.short_side = 64
    torch.manual_seed(0)
    lightness = np.random.default_rng(1).uniform(0, 100, size=(120, 200)).astype(np.float32)
    feats = backbone.features(lightness)
    assert feats.grid == (4, 7)  # 64 x 112 working size at 1/16
    assert feats.local.shape == (28, VGGBackbone.local_channels) and feats.hist.shape == (28, 16)
    assert feats.global_.shape == (1024,)
    assert local_score(feats, feats)[1] == pytest.approx(1.0, abs=1e-4)


def test_imported_deepex_vgg_becomes_the_backbone(tmp_path: Path, home: Path) -> None:
    """Once vgg19_conv.pth is imported (synthetic weights here), ``auto`` ranks with VGG-19."""
    assert best_backbone().name == "lite0"
    state = synthetic_state_dict(expected_tensors("vggnet"), DEEPEX_SYNTHETIC_SEEDS["vggnet"])
    torch.save(state, tmp_path / "vgg19_conv.pth")
    with pytest.raises(WeightsNotFoundError):  # the colorizer's other two files are still missing
        import_weights("deepex", tmp_path / "vgg19_conv.pth")
    backbone = best_backbone()
    assert backbone.name == "vgg19"
    root = tmp_path / "lib"
    root.mkdir()
    for clip in CLIPS[:3]:
        shutil.copy(shared_path(f"clips/davis/{clip}/JPEGImages/00000.jpg"), root / f"{clip}.jpg")
    library = FeatureLibrary(root, backbone)
    stats = library.refresh()
    assert stats.computed == 3 and stats.cache_path is not None and stats.cache_path.name.endswith("-vgg19.npz")
    assert library.entries[0].features.local.shape[1] == VGGBackbone.local_channels

