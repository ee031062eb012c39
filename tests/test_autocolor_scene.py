"""autocolor's decoding settings written into a weight file (chroma gain, re-decoding a shipped file)
and the scene-level chroma prior's fitting and judging code (vidcolor/training/autocolor_scene.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers import shared_path
from vidcolor.color import rgb_to_gray_lightness
from vidcolor.colorizers import build_colorizer, get_colorizer, no_reference_colorizer
from vidcolor.colorizers.autocolor import AutocolorColorizer
from vidcolor.colorizers.base import shipped_weights_path
from vidcolor.errors import InputError
from vidcolor.training.autocolor import main as autocolor_training_main
from vidcolor.training.autocolor import redecode_weights
from vidcolor.training.autocolor_scene import VAL_CLIPS, judge


@pytest.mark.shared_data
def test_chroma_gain_scales_the_decoded_colour_and_is_checked() -> None:
    rgb = cv2.cvtColor(cv2.imread(str(shared_path("photos/kodak24/kodim23.png"))), cv2.COLOR_BGR2RGB)
    lightness = rgb_to_gray_lightness(rgb.astype(np.float32) / 255.0)
    plain = AutocolorColorizer(prior_correction=1.25, chroma_gain=1.0)
    brighter = AutocolorColorizer(prior_correction=1.25, chroma_gain=1.5)
    ab, ab_gained = plain.step(lightness, None).ab, brighter.step(lightness, None).ab
    assert float(np.hypot(ab[..., 0], ab[..., 1]).mean()) > 2.0  # parrots: there is colour to scale
    assert np.allclose(ab_gained, 1.5 * ab, atol=1e-3)
    assert "chroma_gain" not in plain.describe() and brighter.describe()["chroma_gain"] == 1.5
    for gain in (-0.5, 3.5):
        with pytest.raises(InputError, match="chroma_gain"):
            AutocolorColorizer(chroma_gain=gain)


def test_redecoding_keeps_the_decoder_bit_for_bit_and_records_the_old_settings(tmp_path: Path) -> None:
    source = shipped_weights_path("autocolor")
    out = redecode_weights(source, tmp_path / "new.pt", vibrancy=0.9, prior_correction=1.25, cast_removal=0.0,
                           chroma_gain=1.2)
    old, new = (torch.load(p, map_location="cpu", weights_only=True) for p in (source, out))
    assert old["state_dict"].keys() == new["state_dict"].keys()
    assert all(torch.equal(old["state_dict"][k], new["state_dict"][k]) for k in old["state_dict"])
    assert new["meta"]["history"] == old["meta"]["history"]
    assert new["meta"]["redecoded_from"][-1]["prior_correction"] == old["meta"]["prior_correction"]
    loaded = AutocolorColorizer(weights=out)
    assert (loaded.temperature, loaded.prior_correction, loaded.chroma_gain) == (0.9, 1.25, 1.2)
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "vidcolor-eccv16-1", "state_dict": {}, "meta": {}}, wrong)
    with pytest.raises(ValueError, match="not an autocolor inference file"):
        redecode_weights(wrong, tmp_path / "x.pt", 1.0, 1.0, 0.0, 1.0)


def test_scene_prior_judge_recovers_a_chroma_the_features_determine() -> None:
    """On a table where the pooled features set the true chroma (log-linear), the leave-group-out
    fit finds it and the validation clips get their own chroma back; noise features find nothing."""
    rng = np.random.default_rng(0)
    names = [f"photos/set{i % 3}/{i}.jpg" for i in range(300)]
    for clip in ("imageio/realshort", "sam2/bedroom", *VAL_CLIPS):
        names += [f"clips/{clip}/{i:05d}.jpg" for i in range(20)]
    pooled = rng.normal(size=(len(names), 12))
    true = np.exp(2.3 + 0.4 * pooled[:, 0] - 0.3 * pooled[:, 5])
    table = {"names": np.array(names), "pooled": pooled, "bins": rng.normal(size=(len(names), 8)),
             "predicted": np.full(len(names), 10.0), "true": true}
    found = judge(table, "pooled", 1.0)
    assert found["cv_r"] > 0.95
    for clip, scores in found["clips"].items():  # type: ignore[union-attr]
        assert scores["predicted"] == pytest.approx(scores["true"], rel=0.1), clip
        assert scores["gain"] == pytest.approx(np.mean(true[np.char.startswith(table["names"], f"clips/{clip}/")]) / 10.0,
                                               rel=0.1)
    assert abs(judge(table, "bins", 1.0)["cv_r"]) < 0.3  # type: ignore[arg-type]


def test_no_reference_keyframes_take_the_keyframe_decoding_and_the_fallback_the_plain_one(tmp_path: Path) -> None:
    """The shipped file's ``keyframe_decoding`` is what no-reference mode colours keyframes with;
    ``--fallback autocolor`` and ``--model autocolor`` keep the file's plain settings."""
    meta = torch.load(shipped_weights_path("autocolor"), map_location="cpu", weights_only=True)["meta"]
    chosen = meta["keyframe_decoding"]
    keyframes = no_reference_colorizer(get_colorizer("default"), has_references=False)
    assert isinstance(keyframes, AutocolorColorizer)
    assert (keyframes.prior_correction, keyframes.chroma_gain) == (chosen["prior_correction"], chosen["chroma_gain"])
    plain = build_colorizer("default", fallback="autocolor").auto  # type: ignore[attr-defined]
    assert (plain.prior_correction, plain.chroma_gain) == (meta["prior_correction"], meta.get("chroma_gain", 1.0))
    assert (plain.prior_correction, plain.chroma_gain) != (keyframes.prior_correction, keyframes.chroma_gain)
    assert no_reference_colorizer(get_colorizer("default"), has_references=True) is None
    # a file without keyframe settings colours keyframes as everywhere else
    bare = redecode_weights(shipped_weights_path("autocolor"), tmp_path / "bare.pt", 1.0, 1.0, 0.0, 1.0)
    payload = torch.load(bare, map_location="cpu", weights_only=True)
    payload["meta"].pop("keyframe_decoding")
    torch.save(payload, bare)
    assert AutocolorColorizer(weights=bare, keyframe=True).prior_correction == 1.0


def test_redecoding_keeps_every_setting_not_given_and_refuses_one_the_colorizer_would_refuse(tmp_path: Path) -> None:
    """Through the training CLI: a re-decode that names only the gain keeps the file's prior correction
    and temperature (they used to fall back to the argparse defaults: 0 and 0.38, a vivid as-trained
    decoding); a gain the colorizer refuses writes nothing; a gain without --from-weights is an error,
    not silently dropped by the run export."""
    source = shipped_weights_path("autocolor")
    meta = torch.load(source, map_location="cpu", weights_only=True)["meta"]
    gained = tmp_path / "gained.pt"
    assert autocolor_training_main(["--export", str(gained), "--from-weights", str(source), "--chroma-gain", "1.3"]) == 0
    loaded = AutocolorColorizer(weights=gained)
    assert (loaded.temperature, loaded.prior_correction, loaded.chroma_gain) == (meta["vibrancy"], meta["prior_correction"], 1.3)
    keyframes = tmp_path / "keyframes.pt"
    assert autocolor_training_main(["--export", str(keyframes), "--from-weights", str(source), "--keyframe-decoding",
                                    "--chroma-gain", "1.1"]) == 0
    new = torch.load(keyframes, map_location="cpu", weights_only=True)["meta"]
    assert new["keyframe_decoding"] == {**meta["keyframe_decoding"], "chroma_gain": 1.1}
    assert (new["prior_correction"], new.get("chroma_gain")) == (meta["prior_correction"], meta.get("chroma_gain"))
    with pytest.raises(ValueError, match=r"chroma_gain must be in \[0, 3\]"):
        redecode_weights(source, tmp_path / "loud.pt", chroma_gain=3.5)
    assert not (tmp_path / "loud.pt").exists()
    with pytest.raises(SystemExit) as stopped:
        autocolor_training_main(["--export", str(tmp_path / "run.pt"), "--chroma-gain", "1.2"])
    assert stopped.value.code == 2 and not (tmp_path / "run.pt").exists()
