"""The floor under the estimators' digits target: the leanest NumPy fit we could write by hand.

One hidden ReLU layer, softmax cross-entropy, L2 ``alpha``, Adam over one flat buffer,
shuffled batches, every array kept between steps and every elementwise call on its
fast path (ReLU against a kept zero array: NumPy's scalar-operand ``maximum`` is not
vectorised). No checks, no callbacks, no stopping rule: the fixed number of epochs
scikit-learn's defaults run on digits (all 200). Any library step does at least this
work, so its ratio to scikit-learn's ``MLPClassifier`` bounds what ours can reach.

    W, b = fit(X, y, hidden=100, epochs=200, batch=200, seed=0)     # X (N, D), y (N,) in 0..C-1
"""

from __future__ import annotations

import numpy as np


def fit(X: np.ndarray, y: np.ndarray, hidden: int = 100, epochs: int = 200, batch: int = 200,
        lr: float = 1e-3, alpha: float = 1e-4, beta1: float = 0.9, beta2: float = 0.999,
        eps: float = 1e-8, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """([W1 (D, H), W2 (H, C)], [b1 (H,), b2 (C,)]) after ``epochs`` of Adam on (X, y), X's dtype."""
    dt = X.dtype
    f = dt.type
    n, d = X.shape
    c = int(y.max()) + 1
    rng = np.random.default_rng(seed)
    sizes = [(d, hidden), (hidden, c), (hidden,), (c,)]  # weights first: the L2 term is one slice
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in sizes])
    theta = np.zeros(offsets[-1], dtype=dt)
    grad, m, v, tmp = (np.zeros_like(theta) for _ in range(4))

    def views(buf):
        return [buf[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], sizes)]

    W1, W2, b1, b2 = views(theta)
    gW1, gW2, gb1, gb2 = views(grad)
    for W, (fan_in, fan_out) in ((W1, (d, hidden)), (W2, (hidden, c))):  # Glorot uniform, as scikit-learn
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        W[...] = rng.uniform(-lim, lim, (fan_in, fan_out))
    w_theta, w_grad = theta[:offsets[2]], grad[:offsets[2]]
    Xb, A1, D1 = np.empty((batch, d), dt), np.empty((batch, hidden), dt), np.empty((batch, hidden), dt)
    Z2, zero = np.empty((batch, c), dt), np.zeros((batch, hidden), dt)
    mask, row_max, row_sum = np.empty((batch, hidden), bool), np.empty((batch, 1), dt), np.empty((batch, 1), dt)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            k = idx.size
            x, a1, d1, z2 = Xb[:k], A1[:k], D1[:k], Z2[:k]
            np.take(X, idx, axis=0, out=x)
            # forward: A1 = relu(X W1 + b1), Z2 = A1 W2 + b2, P = softmax(Z2)
            np.matmul(x, W1, out=a1)
            np.add(a1, b1, out=a1)
            np.maximum(a1, zero[:k], out=a1)
            np.matmul(a1, W2, out=z2)
            np.add(z2, b2, out=z2)
            np.max(z2, axis=1, keepdims=True, out=row_max[:k])
            np.subtract(z2, row_max[:k], out=z2)
            np.exp(z2, out=z2)
            np.sum(z2, axis=1, keepdims=True, out=row_sum[:k])
            np.divide(z2, row_sum[:k], out=z2)
            # backward: delta2 = (P - onehot) / k, delta1 = delta2 W2^T * 1[A1 > 0]
            z2[np.arange(k), y[idx]] -= 1
            np.multiply(z2, f(1.0 / k), out=z2)
            np.matmul(a1.T, z2, out=gW2)
            np.sum(z2, axis=0, out=gb2)
            np.matmul(z2, W2.T, out=d1)
            np.greater(a1, zero[:k], out=mask[:k])
            np.multiply(d1, mask[:k], out=d1)
            np.matmul(x.T, d1, out=gW1)
            np.sum(d1, axis=0, out=gb1)
            np.multiply(w_theta, f(alpha / k), out=tmp[:offsets[2]])  # scikit-learn's alpha / batch
            np.add(w_grad, tmp[:offsets[2]], out=w_grad)
            # Adam over the flat buffer
            t += 1
            np.multiply(m, f(beta1), out=m)
            np.multiply(grad, f(1 - beta1), out=tmp)
            np.add(m, tmp, out=m)
            np.multiply(v, f(beta2), out=v)
            np.multiply(grad, grad, out=tmp)
            np.multiply(tmp, f(1 - beta2), out=tmp)
            np.add(v, tmp, out=v)
            np.sqrt(v, out=tmp)
            np.add(tmp, f(eps), out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, f(lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)), out=tmp)
            np.subtract(theta, tmp, out=theta)
    return [W1, W2], [b1, b2]


def predict(W: list[np.ndarray], b: list[np.ndarray], X: np.ndarray) -> np.ndarray:
    """(N,) class indices."""
    return np.argmax(np.maximum(X @ W[0] + b[0], 0) @ W[1] + b[1], axis=1)
