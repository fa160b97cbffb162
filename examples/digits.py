"""Handwritten digits (scikit-learn's bundled 8x8 set, no download):
64-128-10 ReLU network, Adam, softmax cross-entropy, 75/25 split.

    python examples/digits.py [--xp numpy|torch|cupy] [--epochs 30]
"""

import argparse

import numpy as np

import nnbackprop as nb


def load(xp, dtype="float32", seed=0, device=None):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    m = nb._compat.namespace(xp)
    dt = getattr(m, dtype)
    return (m.asarray(Xtr, dtype=dt, device=device), m.asarray(ytr.astype(np.int64), device=device),
            m.asarray(Xte, dtype=dt, device=device), m.asarray(yte.astype(np.int64), device=device))


def main(xp="numpy", epochs=30, seed=0, progress=True, device=None):
    Xtr, ytr, Xte, yte = load(xp, seed=seed, device=device)
    model = nb.Sequential([nb.Dense(64, 128, "relu"), nb.Dense(128, 10)], xp=xp, device=device, seed=seed)
    loss = nb.losses.SoftmaxCrossEntropy()
    model.fit(Xtr, ytr, loss=loss, optimizer=nb.optim.Adam(lr=1e-3), epochs=epochs,
              batch_size=32, seed=seed, metrics=["accuracy"], progress=progress)
    result = model.evaluate(Xte, yte, loss=loss, metrics=["accuracy"])
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xp", default="numpy")
    p.add_argument("--epochs", type=int, default=30)
    a = p.parse_args()
    main(a.xp, a.epochs)
