"""Deterministic synthetic weights, so tests and benchmarks run the real networks without real
files. Never imported when colouring."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

from .registry import TensorList

if TYPE_CHECKING:
    import torch

#: Seeds of the DeepEx parity fixture's synthetic weights, per network.
DEEPEX_SYNTHETIC_SEEDS = {"vggnet": 101, "nonlocal_net": 202, "colornet": 303}


def synthetic_state_dict(tensors: TensorList, seed: int) -> OrderedDict[str, torch.Tensor]:
    """Weights from a fixed rule, so tests and benchmarks run the real networks without real files.

    The rule of the DeepEx parity fixture: ``numpy.random.default_rng(seed)`` walked in key
    order; conv weights N(0, 2 / fan_in) (He), biases N(0, 0.01²), one-element tensors (PReLU)
    0.25, other 1-D tensors 1, running means 0 and variances 1, batch counters 0. Draws are
    float64, then cast to float32.
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape_ in tensors:
        shape = tuple(int(s) for s in shape_)
        count = math.prod(shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        if key.endswith("running_mean"):
            values = np.zeros(shape)
        elif key.endswith("running_var"):
            values = np.ones(shape)
        elif len(shape) >= 2:
            values = rng.standard_normal(size=shape) * math.sqrt(2.0 / math.prod(shape[1:]))
        elif key.endswith(".bias"):
            values = rng.standard_normal(size=shape) * 0.01
        elif count == 1:
            values = np.full(shape, 0.25)
        else:
            values = np.ones(shape)
        state[key] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64).astype(np.float32))
    return state
