"""Model weights: a typed registry, the user cache, importing release files, and safe loading.

- :mod:`.registry`: :class:`ModelSpec` / :class:`WeightFile` and register/get/list; each network
  registers its own spec beside its code (``models/deepex``, ``models/eccv16``,
  ``correspondence/flow``).
- :mod:`.store`: the cache folder (``$VIDCOLOR_HOME``), sidecars, finding, importing and removing
  files, and loading an installed file.
- :mod:`.loading`: ``weights_only`` reading, strict key checks, vidcolor's inference file format,
  and which files a run loaded (with their digests).
- :mod:`.testing`: deterministic synthetic weights for tests and benchmarks (never imported when
  colouring).

Everything is importable from here, as it was from the former single module.
"""

from __future__ import annotations

import importlib
from typing import Any

from .loading import (attach_weight_files, check_state_dict, load_trained_network, note_loaded, read_state_dict, recording_loads,
                      weight_files_of, weights_digest)
from .registry import (BUILTIN_SPEC_MODULES, ModelSpec, TensorList, WeightFile, get_model, model_names, register_model,
                       release_hash_prefix, unregister_model)
from .store import (HOME_ENV, SIDECAR, ImportedFile, ModelRow, find_weights, import_weights, installed_files, list_models,
                    load_state_dict, model_dir, remove_weights, require_installed, vidcolor_home, weights_dirs)

#: Names that live beside a network or in :mod:`.testing`: imported on first use, so importing
#: this package never imports torch or a network.
_ELSEWHERE = {
    "DEEPEX": "vidcolor.models.deepex",
    "ECCV16": "vidcolor.models.eccv16",
    "ECCV16_RELEASE": "vidcolor.models.eccv16",
    "eccv16_spec": "vidcolor.models.eccv16",
    "DEEPEX_SYNTHETIC_SEEDS": "vidcolor.weights.testing",
    "synthetic_state_dict": "vidcolor.weights.testing",
}


def __getattr__(name: str) -> Any:
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_SPEC_MODULES", "HOME_ENV", "SIDECAR", "ImportedFile", "ModelRow", "ModelSpec", "TensorList", "WeightFile",
    "attach_weight_files", "check_state_dict", "find_weights", "get_model", "import_weights", "installed_files", "list_models",
    "load_state_dict", "load_trained_network", "model_dir", "model_names", "note_loaded", "read_state_dict", "recording_loads",
    "register_model", "release_hash_prefix", "remove_weights", "require_installed", "unregister_model", "vidcolor_home",
    "weight_files_of", "weights_digest", "weights_dirs",
]
