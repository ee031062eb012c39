"""VCNet v2 (issue 24): the semantic candidate matched on the frozen ImageNet trunk, behind a config
flag stored with the weights, so files saved before v2 still build and run the v1 network."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from helpers import shared_path
from vidcolor.color import luma_lightness, rgb_to_lab
from vidcolor.models.vcnet import AB_SCALE, VCNet, VCNetConfig, build_vcnet
from vidcolor.references import Reference


def _tensors(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """float RGB → (luma lightness, ab) normalised as the network takes them."""
    lab = rgb_to_lab(rgb)
    return (torch.from_numpy(luma_lightness(rgb))[None, None] / 50.0 - 1.0,
            torch.from_numpy(np.ascontiguousarray(lab[..., 1:])).permute(2, 0, 1)[None] / AB_SCALE)


def _v1_file(path: Path) -> Path:
    """An inference file as v1 wrote them: its config has no semantic keys."""
    from vidcolor.training.default import inference_payload

    torch.manual_seed(3)
    model = build_vcnet()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    payload = inference_payload(model, {})
    config = dict(payload["config"])  # type: ignore[call-overload]
    for key in ("semantic", "semantic_strides", "semantic_temperature"):
        config.pop(key)
    payload["config"] = config
    torch.save(payload, path)
    return path


def _gradient_frames(count: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:96, 0:160].astype(np.float32)
    return [np.clip(np.dstack([xx + 6 * i, yy * 2, 255 - xx]), 0, 255).astype(np.uint8) for i in range(count)]


def test_a_file_saved_before_v2_builds_the_v1_network(tmp_path: Path) -> None:
    """No semantic layers, the file's tensors exactly, and no trunk features in reference memories."""
    from vidcolor.colorizers.default import load_vcnet

    path = _v1_file(tmp_path / "v1.pt")
    model, _ = load_vcnet(path)
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert model.cfg.semantic is False
    assert set(model.state_dict()) == set(stored)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stored.items())
    l, ab = _tensors(np.full((64, 96, 3), 0.5, np.float32))
    assert model.reference_memory(l, ab).semantic is None
    assert not any("semantic" in name for name in model.state_dict())


def test_v2_warm_started_from_v1_starts_near_v1(tmp_path: Path) -> None:
    """`--semantic --init-from v1.pt`: the new input channels start at zero and the semantic gate as
    the luminance attention's lowered by SEMANTIC_GATE_OFFSET (a smaller share of the same places,
    so it has a gradient), so training starts near the previous function; the flag travels with the file."""
    from vidcolor.colorizers.default import DefaultColorizer, load_vcnet
    from vidcolor.models.vcnet import CANDIDATES
    from vidcolor.training.default import SEMANTIC_GATE_OFFSET, inference_payload, warm_start

    v1_path = _v1_file(tmp_path / "v1.pt")
    old = torch.load(v1_path, weights_only=True)["state_dict"]
    v2 = VCNet(VCNetConfig(semantic=True))
    assert warm_start(v2, v1_path) == len(old)
    inputs8, inputs2 = old["dec8_in.weight"].shape[1], old["dec2_in.weight"].shape[1]
    assert v2.dec8_in.weight[:, inputs8:].abs().sum() == 0 and v2.dec2_in.weight[:, inputs2:].abs().sum() == 0
    semantic_gate = len(CANDIDATES) + 2
    assert torch.equal(v2.head.weight[semantic_gate], old["head.weight"][0])
    assert abs(float(v2.head.bias[semantic_gate].detach()) - (float(old["head.bias"][0]) - SEMANTIC_GATE_OFFSET)) < 1e-6
    torch.save(inference_payload(v2, {}), tmp_path / "v2.pt")
    loaded, _ = load_vcnet(tmp_path / "v2.pt")
    assert loaded.cfg.semantic and loaded.cfg.semantic_strides == (8, 16)
    frames = _gradient_frames(3)
    reference = Reference.from_array(frames[0], key="gradient")
    outputs = []
    for weights in (v1_path, tmp_path / "v2.pt"):
        colorizer = DefaultColorizer(weights=weights)
        outputs.append([colorizer.step(luma_lightness(f.astype(np.float32) / 255.0), reference).ab for f in frames])
    for v1_ab, v2_ab in zip(*outputs):
        assert np.abs(v1_ab).max() > 1.0  # colour was produced, so the comparison means something
        assert np.abs(v2_ab - v1_ab).mean() < 0.25 * np.abs(v1_ab).mean()


def test_semantic_candidate_finds_a_mirrored_cropped_photo() -> None:
    """The reference is the photo mirrored and cropped: the same position shows something else, yet
    the semantic attention (untrained layers: only the frozen trunk matches) gathers each cell's colour."""
    model = build_vcnet(semantic=True).eval()
    for name in ("kodak24/kodim23.png", "kodak24/kodim03.png"):
        rgb = cv2.cvtColor(cv2.imread(str(shared_path(f"photos/{name}"))), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (192, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        mirrored = cv2.resize(np.ascontiguousarray(rgb[8:-8, ::-1][:, 12:-12]), (192, 128), interpolation=cv2.INTER_AREA)
        l, ab = _tensors(rgb)
        with torch.no_grad():
            memory = model.reference_memory(*_tensors(mirrored))
            _, coarse, best, entropy, _ = model.attend_semantic(model.semantic_features(l), memory, (16, 24))
        truth = F.avg_pool2d(ab, 8)
        gathered = float((coarse - truth).abs().mean()) * AB_SCALE
        same_place = float((F.avg_pool2d(_tensors(mirrored)[1], 8) - truth).abs().mean()) * AB_SCALE
        flat = float((truth - truth.mean(dim=(2, 3), keepdim=True)).abs().mean()) * AB_SCALE
        assert gathered < 0.5 * min(same_place, flat), (name, gathered, same_place, flat)
        assert float(best.min()) > -1.0 - 1e-5 and float(best.max()) < 1.0 + 1e-5
        assert 0.0 <= float(entropy.min()) and float(entropy.max()) <= 1.0 + 1e-5


def test_v2_colorizer_computes_a_references_trunk_features_once(tmp_path: Path) -> None:
    """The reference's trunk features are cached with its memory and reused frame after frame; a
    frame without a reference still runs (the candidate is then absent)."""
    from vidcolor.colorizers.default import DefaultColorizer
    from vidcolor.training.default import inference_payload

    torch.manual_seed(5)
    torch.save(inference_payload(build_vcnet(semantic=True), {}), tmp_path / "v2.pt")
    colorizer = DefaultColorizer(weights=tmp_path / "v2.pt")
    frames = _gradient_frames(3)
    reference = Reference.from_array(frames[0], key="gradient")
    first = colorizer.step(luma_lightness(frames[0].astype(np.float32) / 255.0), reference)
    (memory,) = colorizer._references.values()
    assert memory.semantic is not None and len(memory.semantic) == 2
    for frame in frames[1:]:
        out = colorizer.step(luma_lightness(frame.astype(np.float32) / 255.0), reference)
        assert np.isfinite(out.ab).all() and out.support is not None
    assert list(colorizer._references.values()) == [memory] and colorizer._references[next(iter(colorizer._references))] is memory
    colorizer.reset()
    alone = colorizer.step(luma_lightness(frames[0].astype(np.float32) / 255.0), None)
    assert np.isfinite(alone.ab).all() and first.ab.shape == alone.ab.shape


def _blend_file(tmp_path: Path) -> tuple[Path, Path]:
    """(v1 file, v2d file warm-started from it, its blend head given a weight that depends on the inputs)."""
    from vidcolor.training.default import inference_payload, warm_start

    v1_path = _v1_file(tmp_path / "v1.pt")
    v2d = VCNet(VCNetConfig(semantic=True, semantic_blend=True))
    assert warm_start(v2d, v1_path) == len(torch.load(v1_path, weights_only=True)["state_dict"])
    torch.manual_seed(4)
    torch.nn.init.normal_(v2d.semantic_blend[2].weight, std=0.5)
    torch.save(inference_payload(v2d, {}), tmp_path / "v2d.pt")
    return v1_path, tmp_path / "v2d.pt"


def test_v2d_blend_keeps_v1s_layers_and_is_v1_exactly_on_the_reference_scene(tmp_path: Path) -> None:
    """v2d (semantic_blend): v1's layers keep their shapes (no semantic gate, no semantic inputs), so
    a v1 file warm-starts every tensor; where the reference shows the frame's scene (scene 1) the
    output is v1's bit for bit and the trunk is not run (bogus frame features are never touched);
    for another picture (scene 0) the semantic chroma comes in, less of it at scene 0.5."""
    v1_path, v2d_path = _blend_file(tmp_path)
    from vidcolor.colorizers.default import load_vcnet

    v1, _ = load_vcnet(v1_path)
    v2d, _ = load_vcnet(v2d_path)
    assert v2d.cfg.semantic_blend and v2d.head.weight.shape == v1.head.weight.shape
    rgb = cv2.resize(_gradient_frames(1)[0], (96, 64)).astype(np.float32) / 255.0
    l, ab = _tensors(rgb)
    ref_l, ref_ab = _tensors(np.ascontiguousarray(rgb[:, ::-1]))
    outputs = {}
    with torch.no_grad():
        old = v1.step(l, v1.reference_memory(ref_l, ref_ab), None, None).ab
        memory = v2d.reference_memory(ref_l, ref_ab)
        assert memory.semantic is not None and memory.lightness is not None
        same = v2d.step(l, memory, None, None, semantic=[], scene=torch.ones(1)).ab
        for scene in (0.0, 0.5):
            outputs[scene] = v2d.step(l, memory, None, None, scene=torch.full((1,), scene)).ab
    assert torch.equal(same, old)
    moved = {scene: float((out - old).abs().mean()) for scene, out in outputs.items()}
    assert moved[0.0] > 1e-3 and 0.0 < moved[0.5] < moved[0.0], moved


def test_v2d_blend_takes_a_per_pixel_scene(tmp_path: Path) -> None:
    """A scene map (a reference that shows part of the frame): ones everywhere is v1 exactly, as the
    scalar 1; ones on the left half keep v1's colour there (beyond the refinement's reach of the
    border) and let the semantic chroma into the right half as scene 0 does."""
    v1_path, v2d_path = _blend_file(tmp_path)
    from vidcolor.colorizers.default import load_vcnet

    v1, _ = load_vcnet(v1_path)
    v2d, _ = load_vcnet(v2d_path)
    rgb = cv2.resize(_gradient_frames(1)[0], (96, 64)).astype(np.float32) / 255.0
    l, ab = _tensors(rgb)
    ref_l, ref_ab = _tensors(np.ascontiguousarray(rgb[:, ::-1]))
    half = torch.zeros(1, 1, 64, 96)
    half[..., :48] = 1.0
    with torch.no_grad():
        old = v1.step(l, v1.reference_memory(ref_l, ref_ab), None, None).ab
        memory = v2d.reference_memory(ref_l, ref_ab)
        assert torch.equal(v2d.step(l, memory, None, None, semantic=[], scene=torch.ones(1, 1, 64, 96)).ab, old)
        split = v2d.step(l, memory, None, None, scene=half).ab
        other = v2d.step(l, memory, None, None, scene=torch.zeros(1)).ab
    assert torch.equal(split[..., :40], old[..., :40])
    right = (split[..., 56:] - old[..., 56:]).abs().mean()
    assert right > 1e-3 and torch.allclose(split[..., 56:], other[..., 56:], atol=1e-5), right


def test_v2d_colorizer_runs_v1_on_its_own_shot_and_blends_for_another_picture(tmp_path: Path) -> None:
    """Through DefaultColorizer: with the shot's own frame as the reference a v2d file gives v1's
    frames exactly; with the frame mirrored (another picture: same_scene 0) it does not."""
    from vidcolor.colorizers.default import DefaultColorizer

    v1_path, v2d_path = _blend_file(tmp_path)
    frames = [cv2.resize(f, (96, 64)) for f in _gradient_frames(3)]
    for reference, same in ((frames[0], True), (np.ascontiguousarray(frames[0][::-1, ::-1]), False)):
        outputs = []
        for weights in (v1_path, v2d_path):
            colorizer = DefaultColorizer(weights=weights)
            ref = Reference.from_array(reference, key=f"test:{same}")
            outputs.append([colorizer.step(luma_lightness(f.astype(np.float32) / 255.0), ref) for f in frames])
        scenes = [r.stats["reference_scene"] for r in outputs[1]]
        if same:
            assert scenes == [1.0] * 3
            for a, b in zip(*outputs):
                np.testing.assert_array_equal(a.ab, b.ab)
        else:
            assert max(scenes) < 1.0
            assert max(float(np.abs(a.ab - b.ab).mean()) for a, b in zip(*outputs)) > 0.05


def test_v2e_refinement_starts_as_v2d_and_moves_only_what_the_reference_does_not_show(tmp_path: Path) -> None:
    """v2e (semantic_refine) warm-started from a v2d file: its new layer starts at zero, so the
    output is v2d's bit for bit; once the layer has weights it changes another picture's colour
    (scene 0) and, with a per-pixel scene, only the half the reference does not show."""
    from vidcolor.colorizers.default import load_vcnet
    from vidcolor.training.default import inference_payload, warm_start

    _, v2d_path = _blend_file(tmp_path)
    v2d, _ = load_vcnet(v2d_path)
    v2e = VCNet(VCNetConfig(semantic=True, semantic_blend=True, semantic_refine=True))
    assert warm_start(v2e, v2d_path) == len(torch.load(v2d_path, weights_only=True)["state_dict"])
    torch.save(inference_payload(v2e, {}), tmp_path / "v2e.pt")
    v2e, _ = load_vcnet(tmp_path / "v2e.pt")
    assert v2e.cfg.semantic_refine
    rgb = cv2.resize(_gradient_frames(1)[0], (96, 64)).astype(np.float32) / 255.0
    l, _ = _tensors(rgb)
    ref_l, ref_ab = _tensors(np.ascontiguousarray(rgb[:, ::-1]))
    half = (torch.arange(96) < 48).float().expand(1, 1, 64, 96)  # the reference shows the left half
    with torch.no_grad():
        memory = v2d.reference_memory(ref_l, ref_ab)
        old = {name: v2d.step(l, memory, None, None, scene=scene).ab for name, scene in (("other", torch.zeros(1)), ("half", half))}
        for name, scene in (("other", torch.zeros(1)), ("half", half)):
            assert torch.equal(v2e.step(l, memory, None, None, scene=scene).ab, old[name])
        torch.manual_seed(5)
        torch.nn.init.normal_(v2e.semantic_refine[4].weight, std=0.5)
        moved = v2e.step(l, memory, None, None, scene=torch.zeros(1)).ab
        split = v2e.step(l, memory, None, None, scene=half).ab
        same = v2e.step(l, memory, None, None, semantic=[], scene=torch.ones(1)).ab
    assert float((moved - old["other"]).abs().mean()) > 1e-3
    assert torch.equal(split[..., :40], old["half"][..., :40])
    assert float((split[..., 56:] - old["half"][..., 56:]).abs().mean()) > 1e-3
    assert torch.equal(same, v2d.step(l, memory, None, None, semantic=[], scene=torch.ones(1)).ab)
