"""The temporal check around colorizers: corrects visible flicker, trusts the model elsewhere."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.colorizers.base import ColorizedFrame, Colorizer
from vidcolor.correspondence.flow import RAFT_WEIGHT_FILES, DISFlow, FlowEstimator, RAFTFlow, make_flow, warp
from vidcolor.references import Reference
from vidcolor.temporal import TemporalCheck, TemporalSettings

torch.set_num_threads(1)
STAT_KEYS = {"warp_error", "occluded", "confidence", "flagged"}


def scene(offset: int, height: int = 72, width: int = 96, seed: int = 2) -> np.ndarray:
    """Lab L of a textured scene panned by ``offset`` pixels: frame[x] = big[x + offset]."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((height, width + 64)).astype(np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min())
    return np.ascontiguousarray(20.0 + 60.0 * big[:, offset : offset + width])


class Flicker(Colorizer):
    """A colour that jumps ±amplitude in a each frame, with a fixed confidence; records hooks."""

    name = "flicker"

    def __init__(self, amplitude: float = 12.0, confidence: float = 0.3) -> None:
        self.amplitude = amplitude
        self.confidence = confidence
        self.previous_set: list[np.ndarray] = []
        self.reset()

    def reset(self) -> None:
        self.count = 0

    def set_previous(self, ab: np.ndarray) -> None:
        self.previous_set.append(ab.copy())

    def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
        h, w = lightness.shape
        ab = np.zeros((h, w, 2), np.float32)
        ab[..., 0] = 20.0 + (self.amplitude if self.count % 2 else -self.amplitude)
        ab[..., 1] = 10.0
        self.count += 1
        return ColorizedFrame(ab, np.full((h, w), self.confidence, np.float32), {"inner": 1.0})


def run(colorizer: Colorizer, frames: list[np.ndarray]) -> list[ColorizedFrame]:
    colorizer.reset()
    return [colorizer.step(frame, None) for frame in frames]


def frame_to_frame_change(outputs: list[ColorizedFrame], frames: list[np.ndarray], flow: FlowEstimator) -> float:
    """Mean |ab_t − warp(ab_{t−1})| in the interior: what a viewer sees as flicker."""
    changes = []
    for t in range(1, len(outputs)):
        forward = flow(frames[t] / 100.0, frames[t - 1] / 100.0)
        warped = warp(outputs[t - 1].ab, forward)
        changes.append(np.abs(outputs[t].ab - warped)[8:-8, 8:-16].mean())
    return float(np.mean(changes))


def test_check_reduces_visible_flicker_and_reports_stats() -> None:
    frames = [scene(2 * t) for t in range(8)]
    flow = DISFlow()
    plain = run(Flicker(), frames)
    checked = run(TemporalCheck(Flicker(), flow), frames)
    assert frame_to_frame_change(checked, frames, flow) < 0.5 * frame_to_frame_change(plain, frames, flow)
    for frame in checked:
        assert STAT_KEYS <= frame.stats.keys() and frame.stats["inner"] == 1.0
        assert 0.0 <= frame.stats["occluded"] <= 1.0
        assert 0.0 <= frame.stats["confidence"] <= 1.0
    assert checked[0].stats["warp_error"] == 0.0 and checked[0].stats["flagged"] == 0.0
    # The panned-in strip on the right is new content: occluded, but most of the frame is not.
    assert 0.0 < checked[3].stats["occluded"] < 0.3
    assert checked[3].stats["warp_error"] < 0.5 * _plain_warp_error(frames, plain)


def _plain_warp_error(frames: list[np.ndarray], outputs: list[ColorizedFrame]) -> float:
    """Warp error the check measures, for the unchecked outputs (strength 0 measures only)."""
    measure = TemporalCheck(Flicker(), DISFlow(), TemporalSettings(strength=0.0))
    return float(np.mean([f.stats["warp_error"] for f in run(measure, frames)[1:]]))


def test_strength_zero_measures_without_changing_anything() -> None:
    frames = [scene(2 * t) for t in range(4)]
    plain = run(Flicker(), frames)
    measured = run(TemporalCheck(Flicker(), DISFlow(), TemporalSettings(strength=0.0)), frames)
    for a, b in zip(plain, measured):
        assert np.array_equal(a.ab, b.ab)
    assert measured[2].stats["warp_error"] > 0.0


def test_occluded_content_trusts_the_model() -> None:
    # A cut to an unrelated scene: nothing of frame 1 is visible in frame 0.
    frames = [scene(0, seed=1), scene(0, seed=9) * 0.5 + 10.0]
    inner = Flicker()
    outputs = run(TemporalCheck(inner, DISFlow()), frames)
    expected = run(Flicker(), frames)[1].ab
    assert outputs[1].stats["occluded"] > 0.7
    assert np.abs(outputs[1].ab - expected).mean() < 1.5


def test_confident_model_wins_over_an_unsure_past() -> None:
    class Growing(Flicker):
        def step(self, lightness: np.ndarray, reference: Reference | None) -> ColorizedFrame:
            self.confidence = 0.05 if self.count == 0 else 0.95
            return super().step(lightness, reference)

    frames = [scene(0), scene(1)]
    outputs = run(TemporalCheck(Growing(), DISFlow()), frames)
    assert np.abs(outputs[1].ab[..., 0] - 32.0).mean() < 1.0  # the new +12 prediction, untouched


def test_heavy_corrections_are_flagged_and_fed_back() -> None:
    frames = [scene(t) for t in range(4)]
    inner = Flicker(amplitude=25.0, confidence=0.1)
    outputs = run(TemporalCheck(inner, DISFlow()), frames)
    assert [f.stats["flagged"] for f in outputs] == [0.0, 1.0, 1.0, 1.0]
    # The recurrent hook receives exactly the corrected output of every checked frame.
    assert len(inner.previous_set) == 3
    for fed, frame in zip(inner.previous_set, outputs[1:]):
        assert np.array_equal(fed, frame.ab)


def test_reset_starts_a_new_shot() -> None:
    frames = [scene(t) for t in range(3)]
    check = TemporalCheck(Flicker(), DISFlow())
    run(check, frames)
    check.reset()
    first = check.step(frames[0], None)
    assert first.stats["warp_error"] == 0.0
    assert np.array_equal(first.ab, Flicker().step(frames[0], None).ab)


@pytest.mark.parametrize("method", ["dis", "raft-small"])
def test_every_flow_runs_the_same_check(method: str, tmp_path: Path) -> None:
    weights = None
    if method == "raft-small":  # untrained RAFT, loaded from a weight file like real weights
        from torchvision.models.optical_flow import raft_small

        torch.manual_seed(0)
        weights = tmp_path / RAFT_WEIGHT_FILES["raft-small"]
        torch.save(raft_small(weights=None).state_dict(), weights)
    flow = make_flow(method, device="cpu", weights_path=weights)
    assert isinstance(flow, RAFTFlow if method == "raft-small" else DISFlow)
    frames = [scene(t, height=64, width=80) for t in range(3)]
    outputs = run(TemporalCheck(Flicker(), flow), frames)
    for frame in outputs:
        assert frame.ab.shape == (64, 80, 2) and frame.ab.dtype == np.float32
        assert frame.confidence.shape == (64, 80)
        assert STAT_KEYS <= frame.stats.keys()
        assert np.isfinite(frame.ab).all()


def test_wraps_the_classic_colorizer_on_a_real_clip() -> None:
    folder = shared_path("clips/davis/blackswan/JPEGImages")
    from vidcolor.color import rgb_to_lab
    from vidcolor.colorizers import get_colorizer

    files = sorted(folder.glob("*.jpg"))[:4]
    rgbs = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (160, 90), interpolation=cv2.INTER_AREA)
            for p in files]
    reference = Reference.from_array(rgbs[0], key="blackswan-0")
    check = TemporalCheck(get_colorizer("classic"), DISFlow())
    for rgb in rgbs:
        lab = rgb_to_lab(rgb.astype(np.float32) / 255.0)
        out = check.step(np.ascontiguousarray(lab[..., 0]), reference)
        assert out.ab.shape == (90, 160, 2)
        assert np.abs(out.ab - lab[..., 1:]).mean() < 10.0  # close to the true colours
        assert STAT_KEYS <= out.stats.keys()


def test_persistence_defaults_to_the_colorizers_own_and_an_explicit_value_wins() -> None:
    from vidcolor.colorizers import get_colorizer

    default, classic = get_colorizer("default"), get_colorizer("classic")
    assert TemporalCheck(default, DISFlow()).settings.persistence == default.temporal_persistence == 0.8
    assert TemporalCheck(classic, DISFlow()).settings.persistence == 1.0
    explicit = TemporalCheck(default, DISFlow(), TemporalSettings(persistence=0.95))
    assert explicit.settings.persistence == 0.95
    # the resolved value is in the description, so a resumed run never mixes the two
    assert explicit.describe()["temporal"]["persistence"] == 0.95


class PreviewFlicker(Flicker):
    """A flickering model that, like ``fast``, asks for the cheapest DIS preset in its check."""

    temporal_dis_preset = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST


def test_a_preview_model_gets_its_cheaper_dis_preset_and_still_removes_flicker() -> None:
    from vidcolor.colorizers import get_colorizer

    ultrafast, medium = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    fast = TemporalCheck(get_colorizer("fast"), DISFlow())
    assert isinstance(fast.flow, DISFlow) and fast.flow.preset == ultrafast
    assert fast.describe()["dis_preset"] == ultrafast  # a resumed run never mixes the two flows
    default = TemporalCheck(get_colorizer("default"), DISFlow())
    assert isinstance(default.flow, DISFlow) and default.flow.preset == medium and "dis_preset" not in default.describe()
    frames = [scene(2 * t) for t in range(8)]
    plain = run(PreviewFlicker(), frames)
    checked = run(TemporalCheck(PreviewFlicker(), DISFlow()), frames)
    assert frame_to_frame_change(checked, frames, DISFlow()) < 0.5 * frame_to_frame_change(plain, frames, DISFlow())
