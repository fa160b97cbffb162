"""Does dropout or normalisation help on little data? Digits with 200 training rows.

A 64-256-256-10 ReLU network, Adam lr 1e-3, batch 32, 150 epochs, trained on
200 rows drawn per class (stratified) from scikit-learn's 8x8 digits; validation
accuracy on the other 1,597 rows, in inference mode (no dropout, BatchNorm's
running statistics). Five seeds: each draws its own 200 rows, initial weights,
dropout masks and batch order; every configuration sees the same draws.

    python examples/digits_small.py [--xp numpy|torch|cupy] [--seeds 5] [--epochs 150]
"""

from __future__ import annotations

import argparse

import numpy as np

import nnbackprop as nb

CONFIGS = {  # name: (norm, dropout), as nb.mlp takes them
    "plain": (None, 0.0),
    "dropout 0.2": (None, 0.2),
    "dropout 0.5": (None, 0.5),
    "layer norm": ("layer", 0.0),
    "batch norm": ("batch", 0.0),
    "batch norm + dropout 0.2": ("batch", 0.2),
}


def split(seed: int, n_train: int = 200):
    """(Xtr, ytr, Xva, yva) on the host: n_train rows per class in proportion, the rest validation."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xva, ytr, yva = train_test_split(X / 16.0, y, train_size=n_train, random_state=seed, stratify=y)
    return Xtr, ytr.astype(np.int64), Xva, yva.astype(np.int64)


def run(xp, seed: int, norm, dropout: float, epochs: int, device=None) -> float:
    """Validation accuracy of one configuration trained with ``seed``."""
    Xtr, ytr, Xva, yva = split(seed)
    model = nb.mlp([64, 256, 256, 10], "relu", norm=norm, dropout=dropout, xp=xp, device=device, seed=seed)
    m = model.xp

    def put(a, dtype=None):
        return m.asarray(a, dtype=dtype, device=model.device)

    model.fit(put(Xtr, model.dtype), put(ytr), loss="softmax_cross_entropy", optimizer=nb.optim.Adam(1e-3),
              epochs=epochs, batch_size=32, seed=seed, drop_last=norm == "batch", progress=False)
    return model.evaluate(put(Xva, model.dtype), put(yva), metrics=["accuracy"])["accuracy"]


def main(xp="numpy", seeds=5, epochs=150, configs=tuple(CONFIGS), device=None, show=True) -> dict:
    """{config: [validation accuracy per seed]}; prints a table."""
    results = {name: [run(xp, s, *CONFIGS[name], epochs, device) for s in range(seeds)] for name in configs}
    if show:
        base = np.mean(results["plain"]) if "plain" in results else None
        print(f"digits, 200 training rows, {seeds} seeds, {epochs} epochs: validation accuracy (1,597 rows)")
        for name, accs in results.items():
            gain = "" if base is None or name == "plain" else f"   {100 * (np.mean(accs) - base):+.1f} points"
            print(f"  {name:<26} {np.mean(accs):.4f} +- {np.std(accs):.4f}  "
                  f"(min {min(accs):.4f}, max {max(accs):.4f}){gain}")
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xp", default="numpy")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=150)
    a = p.parse_args()
    main(a.xp, a.seeds, a.epochs)
