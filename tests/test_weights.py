"""The weights registry: cache folder, import from zips/folders/files, strict checks, safe loading."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import vidcolor
from vidcolor import weights
from vidcolor.weights.testing import synthetic_state_dict
from vidcolor.errors import InputError, WeightsMismatchError, WeightsNotFoundError
from vidcolor.models import deepex as dx


class _Tiny(nn.Module):
    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3)
        self.act = nn.PReLU()


def _tiny_expected(channels: int = 4):
    def expected() -> list[tuple[str, tuple[int, ...]]]:
        return [(k, tuple(v.shape)) for k, v in _Tiny(channels).state_dict().items()]

    return expected


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _state(seed: int, channels: int = 4) -> OrderedDict[str, torch.Tensor]:
    return synthetic_state_dict([(k, s) for k, s in _tiny_expected(channels)()], seed)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv(weights.HOME_ENV, str(path))
    return path


@pytest.fixture
def tiny() -> Iterator[weights.ModelSpec]:
    """A two-file model registered for the test only."""
    spec = weights.register_model(
        weights.ModelSpec(
            name="tiny-test",
            description="test model",
            files=(
                weights.WeightFile("enc.pth", "encoder", _tiny_expected(4), "release/checkpoints/enc.pth"),
                weights.WeightFile("dec.pth", "decoder", _tiny_expected(8)),
            ),
            licence="CC0",
            source="https://example.invalid/tiny.zip",
        )
    )
    yield spec
    weights.unregister_model("tiny-test")


def _release_folder(root: Path) -> Path:
    _save(root / "release" / "checkpoints" / "enc.pth", _state(1, 4))
    _save(root / "release" / "data" / "deep" / "dec.pth", _state(2, 8))
    (root / "release" / "README.txt").write_text("not a weight file")
    return root / "release"


def test_home_follows_env_then_platform_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIDCOLOR_HOME", str(tmp_path / "h"))
    assert weights.vidcolor_home() == tmp_path / "h"
    assert weights.model_dir("deepex") == tmp_path / "h" / "models" / "deepex"
    monkeypatch.delenv("VIDCOLOR_HOME")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert weights.vidcolor_home() == tmp_path / "xdg" / "vidcolor"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert weights.vidcolor_home() == Path.home() / ".cache" / "vidcolor"


def test_import_from_nested_folder_records_hashes(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    release = _release_folder(tmp_path)
    assert not [r for r in weights.list_models() if r.name == "tiny-test"][0].installed
    imported = weights.import_weights("tiny-test", release)
    assert sorted(i.filename for i in imported) == ["dec.pth", "enc.pth"]
    folder = home / "models" / "tiny-test"
    sidecar = json.loads((folder / weights.SIDECAR).read_text())
    for name, source in (("enc.pth", release / "checkpoints" / "enc.pth"), ("dec.pth", release / "data" / "deep" / "dec.pth")):
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        assert sidecar["files"][name]["sha256"] == digest
        assert (folder / name).read_bytes() == source.read_bytes()
    assert not list(folder.glob("*.tmp")), "temporary files left behind"
    row = [r for r in weights.list_models() if r.name == "tiny-test"][0]
    assert row.installed and row.files == ("enc.pth", "dec.pth") and row.licence == "CC0" and row.location == folder
    loaded = weights.load_state_dict("tiny-test", "encoder")
    assert torch.equal(loaded["conv.weight"], _state(1, 4)["conv.weight"])


def test_import_from_zip_prefers_the_release_path(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    release = _release_folder(tmp_path)
    decoy = _save(tmp_path / "decoy" / "enc.pth", _state(9, 4))
    archive = tmp_path / "release.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(release / "checkpoints" / "enc.pth", "bundle/release/checkpoints/enc.pth")
        z.write(decoy, "bundle/old/enc.pth")
        z.write(release / "data" / "deep" / "dec.pth", "bundle/dec.pth")
    weights.import_weights("tiny-test", archive)
    assert torch.equal(weights.load_state_dict("tiny-test", "enc.pth")["conv.weight"], _state(1, 4)["conv.weight"])
    assert "release.zip:bundle/release/checkpoints/enc.pth" in json.loads((home / "models" / "tiny-test" / weights.SIDECAR).read_text())["files"]["enc.pth"]["imported_from"]


def test_import_refuses_ambiguous_files(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    _save(tmp_path / "a" / "x" / "dec.pth", _state(2, 8))
    _save(tmp_path / "a" / "y" / "dec.pth", _state(3, 8))
    with pytest.raises(InputError, match="several files named dec.pth"):
        weights.import_weights("tiny-test", tmp_path / "a")


def test_partial_import_then_missing_file_error(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    enc = _save(tmp_path / "enc.pth", _state(1, 4))
    with pytest.raises(WeightsNotFoundError) as info:
        weights.import_weights("tiny-test", enc)
    message = str(info.value)
    assert "imported enc.pth" in message and "dec.pth" in message and "vidcolor models import tiny-test PATH" in message
    assert (home / "models" / "tiny-test" / "enc.pth").is_file()
    # The second file alone now completes the model: installed files count as present.
    weights.import_weights("tiny-test", [_save(tmp_path / "more" / "dec.pth", _state(2, 8))])
    assert all(weights.installed_files("tiny-test").values())


def test_wrong_shapes_are_rejected_and_nothing_is_replaced(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    weights.import_weights("tiny-test", _release_folder(tmp_path))
    before = (home / "models" / "tiny-test" / "enc.pth").read_bytes()
    bad = _save(tmp_path / "bad" / "enc.pth", _state(5, 6))  # 6 output channels instead of 4
    with pytest.raises(WeightsMismatchError, match=r"conv.weight \(6, 3, 3, 3\) \(expected \(4, 3, 3, 3\)\)"):
        weights.import_weights("tiny-test", bad)
    assert (home / "models" / "tiny-test" / "enc.pth").read_bytes() == before
    assert not list((home / "models" / "tiny-test").glob("*.tmp"))
    extra = _state(5, 4)
    extra["head.weight"] = torch.zeros(2)
    with pytest.raises(WeightsMismatchError, match="unexpected keys: head.weight"):
        weights.import_weights("tiny-test", _save(tmp_path / "extra" / "enc.pth", extra))


class _Payload:
    """Not a tensor: torch.load(weights_only=True) must refuse to unpickle it."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("code ran while loading weights",))


def test_files_holding_code_are_refused(home: Path, tiny: weights.ModelSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil" / "enc.pth"
    path.parent.mkdir()
    torch.save({"conv.weight": _Payload()}, path)
    with pytest.raises(WeightsMismatchError, match="not a PyTorch weight file holding only tensors"):
        weights.import_weights("tiny-test", path)
    assert "code ran" not in capsys.readouterr().out


def test_module_prefix_is_stripped(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    enc = OrderedDict((f"module.{k}", v) for k, v in _state(1, 4).items())
    dec = OrderedDict((f"module.{k}", v) for k, v in _state(2, 8).items())
    weights.import_weights("tiny-test", [_save(tmp_path / "p" / "enc.pth", enc), _save(tmp_path / "p" / "dec.pth", dec)])
    assert list(weights.load_state_dict("tiny-test", "decoder")) == ["conv.weight", "conv.bias", "act.weight"]


def test_missing_weights_name_the_files_the_folder_and_the_command(home: Path, tiny: weights.ModelSpec) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        weights.load_state_dict("tiny-test", "encoder")
    message = str(info.value)
    assert "enc.pth" in message and str(home / "models" / "tiny-test") in message
    assert "`vidcolor models import tiny-test PATH`" in message and "https://example.invalid/tiny.zip" in message
    with pytest.raises(WeightsNotFoundError, match="enc.pth, dec.pth"):
        weights.require_installed("tiny-test")
    assert isinstance(info.value, FileNotFoundError)


def test_deepex_missing_message(home: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        weights.require_installed("deepex")
    message = str(info.value)
    for name in ("vgg19_conv.pth", "nonlocal_net_iter_76000.pth", "colornet_iter_76000.pth", "vidcolor models import deepex PATH"):
        assert name in message


def test_changed_files_are_detected(home: Path, tiny: weights.ModelSpec, tmp_path: Path) -> None:
    weights.import_weights("tiny-test", _release_folder(tmp_path))
    installed = home / "models" / "tiny-test" / "enc.pth"
    torch.save(_state(7, 4), installed)  # same size, different values
    weights.load_state_dict("tiny-test", "encoder")  # cheap check: size only
    with pytest.raises(WeightsMismatchError, match="changed since it was imported"):
        weights.load_state_dict("tiny-test", "encoder", verify=True)
    installed.write_bytes(installed.read_bytes() + b"\0")
    with pytest.raises(WeightsMismatchError, match="size"):
        weights.load_state_dict("tiny-test", "encoder")


def test_published_hash_prefix_is_checked(home: Path, tmp_path: Path) -> None:
    weights.register_model(
        weights.ModelSpec("hashed-test", "t", (weights.WeightFile("w-deadbeef.pth", "w", _tiny_expected(4), sha256_prefix="deadbeef"),), "CC0", "nowhere")
    )
    try:
        with pytest.raises(WeightsMismatchError, match="starts with deadbeef"):
            weights.import_weights("hashed-test", _save(tmp_path / "w-deadbeef.pth", _state(1, 4)))
        assert not weights.installed_files("hashed-test")["w-deadbeef.pth"]
    finally:
        weights.unregister_model("hashed-test")


def test_packaged_models_live_in_the_package_and_need_no_import(tmp_path: Path) -> None:
    weights.register_model(weights.ModelSpec("packaged-test", "t", (weights.WeightFile("p.pt", "p"),), "MIT", "vidcolor", packaged_in="models/weights"))
    try:
        assert weights.model_dir("packaged-test") == Path(vidcolor.__file__).resolve().parent / "models" / "weights"
        with pytest.raises(InputError, match="ship with vidcolor"):
            weights.import_weights("packaged-test", tmp_path)
        with pytest.raises(WeightsNotFoundError, match="reinstall vidcolor"):
            weights.find_weights("packaged-test", "p.pt")
    finally:
        weights.unregister_model("packaged-test")


def test_registry_errors(tiny: weights.ModelSpec, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown model 'nope'.*deepex"):
        weights.get_model("nope")
    with pytest.raises(InputError, match="already registered"):
        weights.register_model(tiny)
    with pytest.raises(InputError, match="has no weight file 'x.pth'"):
        tiny.file("x.pth")
    with pytest.raises(InputError, match="does not exist"):
        weights.import_weights("tiny-test", tmp_path / "nowhere.zip")
    renamed = _save(tmp_path / "encoder-renamed.pth", _state(1, 4))
    with pytest.raises(InputError, match="single PyTorch weight file, but none of the expected names"):
        weights.import_weights("tiny-test", renamed)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="neither a folder, a zip archive nor one of the expected files"):
        weights.import_weights("tiny-test", tmp_path / "notes.txt")


def test_builtin_entries() -> None:
    deepex = weights.get_model("deepex")
    assert [f.filename for f in deepex.files] == ["vgg19_conv.pth", "nonlocal_net_iter_76000.pth", "colornet_iter_76000.pth"]
    assert "MIT" in deepex.licence and "github.com/zhangmozhe" in deepex.source
    for entry in deepex.files:
        assert entry.expected is not None and entry.expected() == dx.expected_tensors(entry.role)
    total = sum(torch.Size(s).numel() for f in deepex.files for _, s in f.expected())  # type: ignore[misc]
    assert total == 20_024_384 + 6_917_131 + 32_802_370
    raft = weights.get_model("raft-small").files[0]
    assert raft.sha256_prefix == "01064c6d" and raft.expected is not None
    assert any(k.startswith("feature_encoder.") for k, _ in raft.expected())
    assert set(weights.model_names()) >= {"deepex", "raft-small", "raft-large"}


def test_synthetic_rule() -> None:
    spec = [("a.weight", (4, 3, 3, 3)), ("a.bias", (4,)), ("p.weight", (1,)), ("n.weight", (4,)), ("bn.running_var", (4,)), ("bn.num_batches_tracked", ())]
    first, again = synthetic_state_dict(spec, 7), synthetic_state_dict(spec, 7)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert first["a.weight"].dtype == torch.float32 and 0.2 < float(first["a.weight"].std()) < 0.75  # sqrt(2/27) = 0.27
    assert float(first["a.bias"].abs().max()) < 0.05
    assert first["p.weight"].tolist() == [0.25] and first["n.weight"].tolist() == [1.0] * 4
    assert first["bn.running_var"].tolist() == [1.0] * 4 and first["bn.num_batches_tracked"].dtype == torch.int64
    assert not torch.equal(synthetic_state_dict(spec, 8)["a.weight"], first["a.weight"])


def test_the_registry_loads_without_torch_and_knows_every_built_in_model() -> None:
    """Specs live beside their networks; the package imports none of them (nor torch) until a lookup."""
    script = ("import sys; import vidcolor.weights as w; before = sorted(m for m in ('torch', 'vidcolor.models.deepex', "
              "'vidcolor.models.eccv16', 'vidcolor.correspondence.flow', 'vidcolor.weights.testing') if m in sys.modules); "
              "print(before, w.model_names())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] ['deepex', 'eccv16', 'raft-large', 'raft-small']", out
