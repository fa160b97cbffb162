"""Peak extra memory of a whole (shuffled, mini-batched) ``fit`` on NumPy, against X.

    python -m benchmarks.fit_memory                                  # 2 GiB float32 X: 4,194,304 x 128
    python -m benchmarks.fit_memory --rows 65536 --features 128     # a quick one

The data (X float32, integer labels T) and the model are built before tracing
starts; :mod:`tracemalloc` then sees every NumPy buffer ``fit`` allocates
(NumPy reports its data buffers to it), so the traced peak is exactly the
extra memory of the call: gradients, optimizer state, the per-epoch snapshot
of the weights, the row order, one batch and its activations, and any copy of
the data. Not run by the test suite at this size (tests/test_training.py runs
the same measurement on a small X).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import nnbackprop as nb

from .memory import tracing


def _nbytes(arrays) -> int:
    return sum(int(np.asarray(a).nbytes) for a in arrays)


def optimizer_bytes(opt) -> int:
    """Bytes of the optimizer's state slots (Adam: m and v, each one array per parameter)."""
    state = getattr(opt, "state", None)
    return 0 if state is None else sum(_nbytes(v) for v in state.slots.values())


def measure(rows: int = 1 << 22, features: int = 128, hidden: int = 32, classes: int = 10,
            batch_size: int = 256, epochs: int = 1, optimizer: str = "adam", shuffle: bool = True,
            seed: int = 0) -> dict:
    """Build X (rows, features) float32 and labels T, then trace one ``fit`` call.

    Returns the traced peak (``peak_extra``), the sizes of X and T, the model's
    bytes (parameters + gradients + optimizer state, after the fit) and the
    wall time of the fit (under tracing, which slows every allocation)."""
    rng = np.random.default_rng(seed)
    X = np.empty((rows, features), np.float32)
    step = max(1, (1 << 24) // features)  # fill in 64 MiB blocks: no float64 temporary of X
    for a in range(0, rows, step):
        b = min(a + step, rows)
        X[a:b] = rng.standard_normal((b - a, features), dtype=np.float32)
    T = rng.integers(0, classes, rows)
    model = nb.Sequential([nb.Dense(features, hidden, "relu"), nb.Dense(hidden, classes)],
                          xp=np, dtype="float32", seed=seed)
    opt = nb.optim.get(optimizer)
    with tracing():
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        model.fit(X, T, loss="softmax_cross_entropy", optimizer=opt, epochs=epochs,
                  batch_size=batch_size, shuffle=shuffle, seed=seed, progress=False)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - base
    params, grads = _nbytes(model.parameters()), _nbytes(model.gradients())
    return {"rows": rows, "features": features, "X_bytes": int(X.nbytes), "T_bytes": int(T.nbytes),
            "parameters": params, "gradients": grads, "optimizer": optimizer_bytes(opt),
            "model_bytes": params + grads + optimizer_bytes(opt), "peak_extra": peak,
            "ratio_to_X": peak / X.nbytes, "wall_s": wall}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1 << 22)
    p.add_argument("--features", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--no-shuffle", action="store_true")
    a = p.parse_args(argv)
    r = measure(a.rows, a.features, a.hidden, batch_size=a.batch_size, epochs=a.epochs,
                optimizer=a.optimizer, shuffle=not a.no_shuffle)
    mib = 1 << 20
    print(f"X {r['rows']:,} x {r['features']} float32 = {r['X_bytes'] / mib:,.1f} MiB; "
          f"T {r['T_bytes'] / mib:,.1f} MiB; model (params+grads+optimizer) {r['model_bytes'] / mib:,.3f} MiB")
    print(f"peak extra of fit: {r['peak_extra']:,} bytes = {r['peak_extra'] / mib:,.2f} MiB = "
          f"{100 * r['ratio_to_X']:.2f} % of X; wall {r['wall_s']:.1f} s (under tracemalloc)")


if __name__ == "__main__":
    main()
