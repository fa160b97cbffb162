"""XOR with a 2-2-1 sigmoid network: the problem a single layer cannot solve.

    python examples/xor.py
"""

import numpy as np

import nnbackprop as nb


def main(seed=1, epochs=5000):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    T = np.array([[0], [1], [1], [0]], dtype=np.float64)
    layers = [nb.Dense(2, 2, "sigmoid", init="uniform"), nb.Dense(2, 1, "sigmoid", init="uniform")]
    model = nb.Sequential(layers, dtype="float64", seed=seed)
    hist = model.fit(X, T, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=2.0, momentum=0.9),
                     epochs=epochs, progress=False)
    out = model.predict(X)
    print(f"loss {hist['loss'][0]:.4f} -> {hist['loss'][-1]:.6f}")
    for x, y in zip(X, out):
        print(f"{x.astype(int)} -> {y[0]:.3f}")
    return out


if __name__ == "__main__":
    main()
