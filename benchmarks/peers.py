"""What nnbackprop is measured against, each written the way its users write it.

All train the same network (ReLU hidden layers, identity output, softmax
cross-entropy on integer labels, plain SGD with lr = workloads.LR) on the same
batch, and their ``fn`` performs one full training step.

- ``numpy_hand``: the best batched step a user writes by hand in NumPy;
- ``per_example``: the seeds' formulation (seed 001): batched forward, then
  per-example outer products X[:, :, None] * delta[:, None, :] averaged over
  the batch, biases as an extra weight row fed by a column of ones;
- ``torch_eager``: ``torch.nn.Sequential`` + ``torch.optim.SGD``;
- ``jax_jit``: a jitted pure step function;
- ``gemm_floor``: only the matrix products a step needs, on a given backend.
"""

from __future__ import annotations

import importlib
import math

import numpy as np

from . import memory as _memory
from .workloads import FIT_BATCHES, LR, Case, Size, Unavailable, backend, check_dtype, host_data


def _he_weights(size: Size, dtype: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((a, b)) * math.sqrt(2.0 / a)).astype(dtype), np.zeros(b, dtype))
            for a, b in zip(size.layers, size.layers[1:])]


# hand-written NumPy ----------------------------------------------------------------------
class NumpyHandStep:
    """A batched training step written directly in NumPy.

    X (N, n_in), labels (N,) int. Forward keeps each layer's output (N, n_k);
    the softmax is computed in place in the logits buffer, which then becomes
    delta (N, n_out); walking back, dW = A_prev^T @ delta, db = sum(delta),
    delta_prev = (delta @ W^T) * 1[A_prev > 0]; then W -= lr * dW.
    """

    def __init__(self, size: Size, dtype: str, lr: float = LR):
        self.params = _he_weights(size, dtype)
        self.lr = lr

    def __call__(self, X: np.ndarray, labels: np.ndarray) -> float:
        n = X.shape[0]
        rows = np.arange(n)
        acts = [X]
        last = len(self.params) - 1
        for i, (W, b) in enumerate(self.params):
            Z = acts[-1] @ W
            Z += b
            if i < last:
                np.maximum(Z, 0, out=Z)
            acts.append(Z)
        Z = acts.pop()                      # logits (N, C), overwritten below
        Z -= Z.max(axis=1, keepdims=True)
        z_true = Z[rows, labels]
        np.exp(Z, out=Z)
        s = Z.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) - z_true))
        Z /= s
        Z[rows, labels] -= 1
        Z /= n
        delta = Z
        for i in range(last, -1, -1):
            W, b = self.params[i]
            A_prev = acts[i]
            dW = A_prev.T @ delta
            db = delta.sum(axis=0)
            if i > 0:
                delta_prev = delta @ W.T
                delta_prev *= A_prev > 0
            W -= self.lr * dW
            b -= self.lr * db
            if i > 0:
                delta = delta_prev
        return loss


def numpy_hand(size: Size, dtype: str) -> Case:
    Xh, y = host_data(size)
    X = Xh.astype(dtype)
    step = NumpyHandStep(size, dtype)

    def build_traced():
        s = NumpyHandStep(size, dtype)
        Xt, yt = X.copy(), y.copy()
        return (lambda: s(Xt, yt)), _memory.step_budget(size.layers, size.batch, np.dtype(dtype).itemsize)

    return Case(lambda: step(X, y), info={"impl": "numpy_hand", "backend": "numpy", "phase": "step"},
                memory=lambda: _memory.peak_of(build_traced))


def numpy_hand_epoch(size: Size, dtype: str, batches: int | None = None) -> Case:
    """The hand-written step over an epoch of ``batches`` equal batches in order (a
    hand-written training loop): the peer of ``model.fit`` over the same data, each
    batch read from memory as fit reads it. ``Case.steps`` is the number of batches."""
    batches = batches or FIT_BATCHES[size.name]
    Xh, y = host_data(size, batches=batches)
    X = Xh.astype(dtype)
    step = NumpyHandStep(size, dtype)
    spans = [(k * size.batch, (k + 1) * size.batch) for k in range(batches)]

    def fn():
        total = 0.0
        for a, b in spans:
            total += step(X[a:b], y[a:b])
        return total / batches

    return Case(fn, info={"impl": "numpy_hand", "backend": "numpy", "phase": "epoch", "batches": batches},
                steps=batches)


# the seeds' per-example formulation ------------------------------------------------------
class PerExampleStep:
    """Seed 001's step: per-example gradients as outer products, then averaged.

    Weights carry the bias as row 0, shape (n_in + 1, n_out); every layer input
    gets a leading column of ones (np.hstack). The (N, n_in + 1, n_out)
    per-example partial derivatives are formed and averaged over N.
    """

    def __init__(self, size: Size, dtype: str, lr: float = LR):
        self.weights = [np.vstack([b[None, :], W]) for W, b in _he_weights(size, dtype)]
        self.lr = lr

    def __call__(self, X: np.ndarray, labels: np.ndarray) -> float:
        n = X.shape[0]
        ones = np.ones((n, 1), X.dtype)
        inputs, out = [], X
        for i, W in enumerate(self.weights):
            a = np.hstack((ones, out))
            inputs.append(a)
            z = np.dot(a, W)
            out = np.maximum(z, 0) if i < len(self.weights) - 1 else z
        e = np.exp(out - out.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        t = np.eye(out.shape[1], dtype=out.dtype)[labels]
        loss = float(-np.mean(np.sum(t * np.log(p), axis=1)))
        error = p - t                                        # per-example output error
        grads = [None] * len(self.weights)
        for i in range(len(self.weights) - 1, -1, -1):
            a = inputs[i]
            grads[i] = np.average(a[:, :, np.newaxis] * error[:, np.newaxis, :], axis=0)
            if i > 0:
                error = (a[:, 1:] > 0) * np.dot(error, self.weights[i].T[:, 1:])
        for W, g in zip(self.weights, grads):
            W += -self.lr * g
        return loss


def per_example(size: Size, dtype: str) -> Case:
    Xh, y = host_data(size)
    X = Xh.astype(dtype)
    step = PerExampleStep(size, dtype)
    return Case(lambda: step(X, y), info={"impl": "per_example", "backend": "numpy", "phase": "step"})


# PyTorch eager ---------------------------------------------------------------------------
def torch_eager(size: Size, dtype: str) -> Case:
    """``nn.Sequential`` of Linear/ReLU, ``F.cross_entropy``, ``optim.SGD``, on torch's default device."""
    spec, torch, _ = backend("torch")
    check_dtype(spec, dtype)
    dims = size.layers
    mods = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(dims) - 2:
            mods.append(torch.nn.ReLU())
    return torch_step(torch.nn.Sequential(*mods), size, dtype, {"impl": "torch_eager", "backend": "torch",
                                                                "phase": "step"})


def torch_step(model, size: Size, dtype: str, info: dict | None = None) -> Case:
    """One eager training step of the torch module ``model`` on the size's batch:
    ``F.cross_entropy``, ``backward``, ``torch.optim.SGD``."""
    spec, torch, sync = backend("torch")
    from torch.nn import functional as F

    dt = getattr(torch, dtype)
    model = model.to(dtype=dt)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    Xh, yh = host_data(size)
    X = torch.as_tensor(Xh, dtype=dt)
    y = torch.as_tensor(yh)

    def fn():
        opt.zero_grad()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        sync()
        return loss.detach()

    return Case(fn, info={**(info or {}), "torch_threads": torch.get_num_threads()})


# JAX jit ---------------------------------------------------------------------------------
def jax_jit(size: Size, dtype: str) -> Case:
    """A pure ``step(params, X, y) -> (params, loss)`` under ``jax.jit``."""
    try:
        jax = importlib.import_module("jax")
        jnp = importlib.import_module("jax.numpy")
    except ImportError as exc:
        raise Unavailable(f"jax is not installed ({exc}); pip install jax") from exc
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    def loss_fn(params, X, y):
        a = X
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        logits = a @ W + b
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(params, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads), loss

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in _he_weights(size, dtype)]
    Xh, yh = host_data(size)
    X, y = jnp.asarray(Xh.astype(dtype)), jnp.asarray(yh)
    state = {"params": params}

    def fn():
        state["params"], loss = step(state["params"], X, y)
        loss.block_until_ready()
        return loss

    return Case(fn, info={"impl": "jax_jit", "backend": "jax", "phase": "step"})


# GEMM floor ------------------------------------------------------------------------------
def gemm_floor(backend_name: str, size: Size, dtype: str) -> Case:
    """Only the matrix products of one step, on ``backend_name``.

    Per layer k with input A (N, a) and weights W (a, b): forward A @ W,
    dW = A^T @ delta, and delta @ W^T (all but the first layer). Written
    into preallocated outputs on a writeable backend (its matmul takes
    ``out=``: NumPy, PyTorch, CuPy), so the floor holds nothing but the products.
    """
    from nnbackprop import _compat

    spec, mod, sync = backend(backend_name)
    check_dtype(spec, dtype)
    xp = _compat.namespace(mod)
    rng = np.random.default_rng(0)
    n = size.batch
    dt = getattr(xp, dtype)

    def arr(*shape):
        return _compat.from_host(xp, rng.standard_normal(shape), dt, None)

    terms = []  # (a, b, transpose_a, transpose_b)
    for i, (a, b) in enumerate(zip(size.layers, size.layers[1:])):
        A, W, D = arr(n, a), arr(a, b), arr(n, b)
        terms.append((A, W))
        terms.append((A.T, D))
        if i > 0:
            terms.append((D, W.T))
    out_kw = spec.writeable
    matmul = mod.matmul
    outs = [matmul(p, q) for p, q in terms]

    if out_kw:
        def fn():
            for (p, q), o in zip(terms, outs):
                matmul(p, q, out=o)
            sync()
    else:
        def fn():
            for p, q in terms:
                p @ q
            sync()

    return Case(fn, info={"impl": "gemm_floor", "backend": backend_name, "phase": "step",
                          "gemm_flops": size.gemm_flops(), "preallocated": out_kw})
