"""Seed 001's worked example, reproduced with nnbackprop.

Six 3-bit inputs, one target each; 3 sigmoid hidden units, an identity output,
the 1/2-MSE cost and full-batch gradient descent (alpha = 0.1) for 10,000
iterations from weights drawn uniform(-1, 1) from seed 1, the very numbers of
the seed's ``np.random.seed(1)`` (which folds each bias into its weight matrix as row 0).

    python examples/seed001_sigmoid.py [--xp numpy|torch|array_api_strict|cupy]
"""

import argparse

import numpy as np

import nnbackprop as nb

X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=float)
Y = np.array([[0, 1, 0, 1, 1, 0]], dtype=float).T


def seed_weights(num_hidden=3):
    """The seed's draws: rows 0 are the biases, rows 1: the weights.

    A generator of its own, seeded 1, gives the very numbers of the seed's
    ``np.random.seed(1); np.random.random(...)`` without touching NumPy's
    global random state (a ``default_rng`` would draw other numbers)."""
    rng = np.random.RandomState(1)
    hidden = 2 * rng.random_sample((X.shape[1] + 1, num_hidden)) - 1
    output = 2 * rng.random_sample((num_hidden + 1, Y.shape[1])) - 1
    return hidden, output


def build(xp="numpy", dtype="float64", device=None):
    model = nb.Sequential([nb.Dense(3, 3, "sigmoid", init="uniform"), nb.Dense(3, 1)], xp=xp, dtype=dtype,
                          device=device)
    hidden, output = seed_weights()
    m = model.xp
    for layer, w in zip(model.layers, (hidden, output)):
        layer.W = m.asarray(w[1:], dtype=model.dtype, device=model.device)
        layer.b = m.asarray(w[0], dtype=model.dtype, device=model.device)
    return model


def main(xp="numpy", iterations=10_000):
    model = build(xp)
    m = model.xp
    Xd = m.asarray(X, dtype=model.dtype, device=model.device)
    Yd = m.asarray(Y, dtype=model.dtype, device=model.device)
    model.fit(Xd, Yd, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=0.1), epochs=iterations,
              batch_size=None, shuffle=False, progress=False)
    out = model.predict(Xd)
    print("Output After Training:")
    print(nb._compat.to_host(out))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xp", default="numpy")
    main(p.parse_args().xp)
