"""Regression with the 1/2-MSE cost on scikit-learn's bundled diabetes set.

Split first, then standardise features and target with the training rows'
mean and spread only, so nothing of the test rows leaks into training.

    python examples/regression.py [--xp numpy|torch|array_api_strict|cupy]
"""

import argparse

import numpy as np

import nnbackprop as nb


def split_and_scale(X, y, seed=0):
    """(Xtr, Xte, ytr, yte): a 75/25 split, then X and y (N, 1) standardised with
    the training rows' mean and standard deviation."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(X, y.reshape(-1, 1), test_size=0.25, random_state=seed)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    y_mu, y_sd = ytr.mean(), ytr.std()
    return (Xtr - mu) / sd, (Xte - mu) / sd, (ytr - y_mu) / y_sd, (yte - y_mu) / y_sd


def main(xp="numpy", seed=0, epochs=200, device=None):
    from sklearn.datasets import load_diabetes

    Xtr, Xte, ytr, yte = split_and_scale(*load_diabetes(return_X_y=True), seed=seed)
    model = nb.Sequential([nb.Dense(10, 16, "tanh"), nb.Dense(16, 1)], xp=xp, device=device, dtype="float64",
                          seed=seed)
    m = model.xp

    def move(a):
        return m.asarray(a, dtype=model.dtype, device=model.device)

    model.fit(move(Xtr), move(ytr), loss=nb.losses.MSE(l2=1e-2), optimizer=nb.optim.Adam(lr=1e-3),
              epochs=epochs, batch_size=32, seed=seed, progress=False)
    result = model.evaluate(move(Xte), move(yte), loss=nb.losses.MSE(), metrics=["mse", "mae"])
    baseline = float(np.mean((yte - ytr.mean()) ** 2))  # predicting the training mean
    r2 = 1 - result["mse"] / baseline
    print(f"test mse {result['mse']:.4f} (predicting the mean: {baseline:.4f}); R^2 {r2:.3f}")
    return result, r2


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xp", default="numpy")
    main(p.parse_args().xp)
