"""Regression with the 1/2-MSE cost on scikit-learn's bundled diabetes set.

    python examples/regression.py
"""

import numpy as np

import nnbackprop as nb


def main(seed=0, epochs=200):
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = ((y - y.mean()) / y.std())[:, None]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=seed)
    model = nb.Sequential([nb.Dense(10, 16, "tanh"), nb.Dense(16, 1)], dtype="float64", seed=seed)
    model.fit(Xtr, ytr, loss=nb.losses.MSE(l2=1e-2), optimizer=nb.optim.Adam(lr=1e-3), epochs=epochs,
              batch_size=32, seed=seed, progress=False)
    result = model.evaluate(Xte, yte, loss=nb.losses.MSE(), metrics=["mse", "mae"])
    baseline = float(np.mean((yte - ytr.mean()) ** 2))
    r2 = 1 - result["mse"] / baseline
    print(f"test mse {result['mse']:.4f} (predicting the mean: {baseline:.4f}); R^2 {r2:.3f}")
    return result, r2


if __name__ == "__main__":
    main()
