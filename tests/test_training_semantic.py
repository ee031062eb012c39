"""Training v2 of the default model (issue 24): references that are other pictures (far frames,
mirrored crops, similar photos retrieved by global trunk feature), the contextual loss, the added
clips, photos left out for tests; and resuming stays bit-identical with the semantic model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import DATA, shared_path
from vidcolor.color import rgb_to_lab
from vidcolor.models.vcnet import AB_SCALE, VCNetConfig
from vidcolor.training.common import ADDED_CLIP_GROUPS, list_clips
from vidcolor.training.default import (
    TrainConfig, TrainingData, clip_sample, contextual_loss, load_checkpoint, load_training_data, photo_paths,
    photo_sample, similar_photos, train,
)


@pytest.fixture(scope="module")
def tiny() -> tuple[TrainConfig, TrainingData]:
    shared_path("photos")
    config = TrainConfig(
        data_root=str(DATA), crop=64, batch_size=2, unroll=2, iterations=6, warmup=2, val_every=0, max_photos=12,
        max_clips=1, photo_short_side=128, clip_short_side=96, checkpoint_minutes=1e9,
        model=VCNetConfig(semantic=True).to_dict(), p_retrieved_ref=0.4, p_far_ref=0.4, w_context=0.05, p_clip=0.5,
    )
    return config, load_training_data(config, log=lambda _: None)


def _read(relative: str, size: int = 128) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(shared_path(relative))), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def test_similar_photos_retrieve_the_same_kind_of_picture() -> None:
    """A face's nearest photos by global trunk feature are faces, a landscape's are not."""
    faces = sorted(shared_path("photos/stargan_v2_faces_animals").glob("celeba_hq_ref_*.jpg"))[:5]
    others = ["photos/kodak24/kodim03.png", "photos/kodak24/kodim13.png", "photos/kodak24/kodim21.png",
              "photos/kodak24/kodim23.png", "photos/kodak24/kodim08.png"]
    photos = [_read(str(p.relative_to(DATA))) for p in faces] + [_read(p) for p in others]
    neighbours = similar_photos(photos, k=2)
    assert neighbours.shape == (10, 2)
    assert all(i not in row for i, row in enumerate(neighbours))  # never itself
    for i in range(5):
        assert set(neighbours[i]) <= set(range(5)), f"face {i} retrieved {neighbours[i]}"
    assert sum(int(j) >= 5 for row in neighbours[5:] for j in row) >= 7  # the others mostly find each other


def test_contextual_loss_prefers_the_references_colours_without_alignment() -> None:
    """The output in the truth's colours scores lower against a mirrored, shifted view of the truth
    than the same output with its hues turned around; gradients reach the chroma."""
    rgb = _read("photos/kodak24/kodim23.png", 96).astype(np.float32) / 255.0
    reference = np.ascontiguousarray(np.roll(rgb[:, ::-1], 10, axis=0))

    def tensors(image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        lab = torch.from_numpy(rgb_to_lab(image)).permute(2, 0, 1)[None]
        return lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / AB_SCALE

    l, ab = tensors(rgb)
    ref_l, ref_ab = tensors(reference)
    right = ab.clone().requires_grad_(True)
    loss_right = contextual_loss(l, right, ref_l, ref_ab)
    loss_turned = contextual_loss(l, -ab, ref_l, ref_ab)
    assert float(loss_right.detach()) < float(loss_turned)
    loss_right.backward()
    assert right.grad is not None and float(right.grad.abs().sum()) > 0


def test_far_and_retrieved_references_are_marked_unaligned(tiny: tuple[TrainConfig, TrainingData]) -> None:
    """A far-frame reference keeps full L1 (same scene) but gets the contextual loss; a retrieved
    photo gets both the weak L1 and the contextual loss; no known correspondence either way."""
    config, data = tiny
    only = replace(config, p_identity_ref=0.0, p_unrelated_ref=0.0, p_far_ref=1.0, p_retrieved_ref=1.0)
    far = clip_sample(np.random.default_rng(1), data.clips, only)
    assert far.aligned and far.context and bool((far.match == -1).all())
    assert data.neighbours is not None and data.neighbours.shape == (len(data.photos), 5)
    retrieved = photo_sample(np.random.default_rng(2), data.photos, only, data.neighbours)
    assert not retrieved.aligned and retrieved.context and not retrieved.related and bool((retrieved.match == -1).all())
    usual = photo_sample(np.random.default_rng(2), data.photos, replace(only, p_retrieved_ref=0.0), data.neighbours)
    assert usual.aligned and not usual.context


def test_scene_check_drops_the_reference_flow_of_other_pictures(tiny: tuple[TrainConfig, TrainingData]) -> None:
    """With ``scene_check`` a sequence learns without the reference's optical flow where the
    reference is another photo (as inference drops it); the frame itself as the reference keeps it."""
    config, data = tiny
    identity = replace(config, crop=96, p_identity_ref=1.0, p_occluder=0.0, scene_check=True)
    same = photo_sample(np.random.default_rng(3), data.photos, identity)
    assert float(same.ref_visible[0].mean()) > 0.5 and same.ref_scene is not None and same.ref_scene[0] == 1.0
    unrelated = replace(identity, p_identity_ref=0.0, p_unrelated_ref=1.0)
    for seed in (4, 5, 6):
        other = photo_sample(np.random.default_rng(seed), data.photos, unrelated)
        unchecked = photo_sample(np.random.default_rng(seed), data.photos, replace(unrelated, scene_check=False))
        assert not other.related and float(other.ref_visible.max()) == 0.0 and float(other.ref_scene.max()) == 0.0
        assert float(unchecked.ref_visible.mean()) > 0.0  # DIS still found consistent flow there
        assert unchecked.ref_scene is not None and (unchecked.ref_scene == 1.0).all()  # unknown: not scaled
        np.testing.assert_array_equal(other.ref_flow, unchecked.ref_flow)


def test_semantic_training_resumes_bit_identically(tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    config, data = tiny
    whole = train(replace(config, out_dir=str(tmp_path / "whole")), log=lambda _: None, data=data, stop_at=3)
    part = replace(config, out_dir=str(tmp_path / "part"))
    train(part, log=lambda _: None, data=data, stop_at=1)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["iteration"] == 1
    resumed = train(part, log=lambda _: None, data=data, stop_at=3, resume=tmp_path / "part" / "last.pt")
    assert "log_semantic_temperature" in whole.state_dict()
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resume"


def test_schedule_end_exports_the_final_weights(tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    from vidcolor.colorizers.default import load_vcnet

    config, data = tiny
    cfg = replace(config, out_dir=str(tmp_path / "run"), iterations=2)
    trained = train(cfg, log=lambda _: None, data=data, export_last=tmp_path / "final.pt")
    model, meta = load_vcnet(tmp_path / "final.pt")
    assert meta["iteration"] == 2 and model.cfg.semantic
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))
    train(replace(cfg, out_dir=str(tmp_path / "short")), log=lambda _: None, data=data, stop_at=1,
          export_last=tmp_path / "early.pt")
    assert not (tmp_path / "early.pt").exists()  # a chunk that stops early exports nothing


def test_added_clips_and_excluded_photos() -> None:
    root = shared_path("clips").parent
    plain, added = list_clips(root), list_clips(root, added=True)
    assert set(plain) < set(added)
    assert {name.split("/")[0] for name in set(added) - set(plain)} == set(ADDED_CLIP_GROUPS)
    config = TrainConfig(data_root=str(root), exclude_photos=("stargan_v2_faces_animals/celeba_hq_src_*", "kodak24/*"))
    kept, every = photo_paths(config), photo_paths(replace(config, exclude_photos=()))
    faces = list(shared_path("photos/stargan_v2_faces_animals").glob("celeba_hq_src_*.jpg"))
    assert len(faces) >= 5 and set(every) - set(kept) == set(faces) | set(shared_path("photos/kodak24").glob("*"))


def test_semantic_only_training_moves_the_blend_and_keeps_every_v1_tensor(
        tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    """v2d's recipe (``semantic_blend`` + ``semantic_only`` + ``scene_check``, warm-started from a v1
    file): the blend head and the semantic temperature learn, v1's tensors stay exactly as given,
    and a resumed run carries on with the same trainable set."""
    from vidcolor.models.vcnet import build_vcnet
    from vidcolor.training.default import inference_payload

    config, data = tiny
    torch.manual_seed(6)
    torch.save(inference_payload(build_vcnet(), {}), tmp_path / "v1.pt")
    v1 = torch.load(tmp_path / "v1.pt", weights_only=True)["state_dict"]
    cfg = replace(config, out_dir=str(tmp_path / "run"), init_from=str(tmp_path / "v1.pt"), semantic_only=True,
                  scene_check=True, lr=1e-2, p_far_ref=1.0, p_clip=0.5,
                  model=VCNetConfig(semantic=True, semantic_blend=True).to_dict())
    model = train(cfg, log=lambda _: None, data=data, stop_at=2)
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in v1.items())
    assert float(model.semantic_blend[2].weight.detach().abs().sum()) > 0.0  # started at zero
    resumed = train(cfg, log=lambda _: None, data=data, stop_at=3, resume=tmp_path / "run" / "last.pt")
    assert all(torch.equal(resumed.state_dict()[name], tensor) for name, tensor in v1.items())


def test_half_reference_shows_part_of_the_scene_and_v2e_learns_there(
        tiny: tuple[TrainConfig, TrainingData], tmp_path: Path) -> None:
    """``p_half_ref``: a near frame with one side padding (mean lightness, no chroma), as the
    colorizer's placed left-half reference. The reference flow sees nothing on the padding side, the
    per-pixel shown map is high on the shown side and low on the other; training v2e (semantic_refine,
    warm-started from a v2d file) with it moves the new layer, which starts at zero, and no v1 tensor."""
    from vidcolor.training.default import inference_payload, warm_start
    from vidcolor.models.vcnet import VCNet

    config, data = tiny
    half = replace(config, crop=96, p_identity_ref=0.0, p_unrelated_ref=0.0, p_far_ref=0.0, p_half_ref=1.0,
                   scene_check=True, p_color_jitter=0.0)
    sample = clip_sample(np.random.default_rng(8), data.clips, half)
    assert sample.ref_shown is not None and sample.related and not sample.context
    padded_cols = np.flatnonzero((np.abs(sample.ref_ab).sum(-1) == 0).all(0))
    padded_rows = np.flatnonzero((np.abs(sample.ref_ab).sum(-1) == 0).all(1))
    assert len(padded_cols) >= 30 or len(padded_rows) >= 30  # 40-60 % of one side
    pad = (slice(None), padded_cols) if len(padded_cols) >= 30 else (padded_rows, slice(None))
    inner = np.ones(sample.ref_ab.shape[:2], bool)
    inner[pad] = False
    assert float(np.ptp(sample.ref_l[pad])) == 0.0  # one flat lightness
    deep = sample.ref_shown[0].copy()
    assert float(deep[inner].mean()) > 0.6 and float(deep[~inner].mean()) < 0.4, (deep[inner].mean(), deep[~inner].mean())
    torch.manual_seed(6)
    from vidcolor.models.vcnet import build_vcnet
    v2d = VCNet(VCNetConfig(semantic=True, semantic_blend=True))
    warm_start(v2d, _save(inference_payload(build_vcnet(), {}), tmp_path / "v1.pt"))
    _save(inference_payload(v2d, {}), tmp_path / "v2d.pt")
    cfg = replace(half, out_dir=str(tmp_path / "run"), init_from=str(tmp_path / "v2d.pt"), semantic_only=True, lr=1e-2,
                  p_clip=1.0, model=VCNetConfig(semantic=True, semantic_blend=True, semantic_refine=True).to_dict())
    model = train(cfg, log=lambda _: None, data=data, stop_at=2)
    before = v2d.state_dict()
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in before.items()
               if not name.startswith(("semantic_blend.", "log_semantic_temperature")))
    assert float(model.semantic_refine[4].weight.detach().abs().sum()) > 0.0  # started at zero


def _save(payload: dict[str, object], path: Path) -> Path:
    torch.save(payload, path)
    return path
