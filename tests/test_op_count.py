"""Array operations per Adam step on a 3-layer network: on PyTorch no more than on
NumPy before the one-step redesign (issue 10's target).

NumPy's count at 8ab65a8 was measured with callgrind (``valgrind --tool=callgrind``
over 10 steps of this very network, counting calls of numpy's ufunc entry point
``ufunc_generic_fastcall``, its reductions ``PyUFunc_GenericReduction`` and fancy
indexing ``array_subscript``/``array_assign_subscript``): 35 + 8 + 2 + 1 = 46 per
step. Here PyTorch's dispatcher counts every aten operation the step runs;
views (transposes, unsqueezes) launch no kernel and are not counted.
PyTorch at 8ab65a8 (the second, per-parameter path) ran 108.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import nnbackprop as nb

NUMPY_BEFORE = 46
VIEWS = {"aten.permute", "aten.unsqueeze", "aten.t", "aten.transpose", "aten.view", "aten.alias",
         "aten.slice", "aten.as_strided", "aten.expand", "aten._reshape_alias", "aten.reshape"}


def test_adam_step_on_torch_runs_no_more_operations_than_numpy_did():
    torch = pytest.importorskip("torch", reason="the operation count uses PyTorch's dispatcher")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    rng = np.random.default_rng(0)
    X = torch.asarray(rng.standard_normal((64, 64)).astype(np.float32))
    y = torch.asarray(rng.integers(0, 10, 64))
    model = nb.mlp([64, 128, 64, 10], "relu", xp="torch", seed=0)
    loss, opt = nb.losses.SoftmaxCrossEntropy(), nb.optim.Adam(1e-3)
    for _ in range(3):  # buffers and optimizer state made: a steady-state step follows
        model.train_step(X, y, loss, opt)
    with Count() as count:
        model.train_step(X, y, loss, opt)
    compute = {k: v for k, v in count.ops.items() if k not in VIEWS}
    assert 30 < sum(compute.values()) <= NUMPY_BEFORE, compute
    # one optimizer rule over the flat buffer: a single square root, not one per parameter
    assert compute["aten.sqrt"] == 1
