"""How a CUDA device may be named, on a CuPy-like stand-in namespace: no GPU needed.

The stand-in does what array-api-compat's CuPy ``asarray`` does with
``device=``: it enters ``cupy.cuda.Device(device)``, whose constructor takes
``None`` (the current device), an integer, or a ``Device`` (through
``int()``), and nothing else. The arrays it makes report that device.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from nnbackprop import _compat


class _Device:
    """cupy.cuda.Device: an id, compared by id."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)  # 0: the current device

    def __int__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Array:
    def __init__(self, obj, device):
        self._a, self.device = np.asarray(obj), device
        self.shape, self.dtype = self._a.shape, self._a.dtype


@pytest.fixture
def cuda_like():
    mod = types.ModuleType("cuda_like")
    mod.asarray = lambda obj, dtype=None, device=None, copy=None: _Array(obj, _Device(device))
    return mod


@pytest.mark.parametrize("device, expected", [(None, 0), (0, 0), (1, 1), (_Device(1), 1)],
                         ids=["default", "int-0", "int-1", "device-object"])
def test_integer_and_device_objects_resolve(cuda_like, device, expected):
    assert _compat.resolve_device(cuda_like, device) == _Device(expected)


@pytest.mark.parametrize("name, expected", [("cuda", 0), ("cuda:1", 1)])
def test_cuda_names_resolve(cuda_like, name, expected):
    assert _compat.resolve_device(cuda_like, name) == _Device(expected)
