"""fit / predict / evaluate on every backend, against independent references."""

import sys
from pathlib import Path

import numpy as np
import pytest

import nnbackprop as nb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def _blobs(be, n=60, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = np.arange(n) % 3
    X = centers[y] + rng.standard_normal((n, 2)) * 0.5
    return be.asarray(X, dtype), be.asarray(y.astype(np.int64))


def _net(be, dtype="float64", seed=0):
    return nb.Sequential([nb.Dense(2, 8, "tanh"), nb.Dense(8, 3)], xp=be.xp, dtype=dtype, seed=seed)


def _weights(model):
    return [np.array(nb._compat.to_host(p)) for p in model.parameters()]


# --- the seeds' examples --------------------------------------------------------

def _seed001_reference(hidden_weights, output_weights, X, y, alpha=0.1, iterations=10_000):
    """Seed 001's loop, written out as the tutorial has it: biases folded into
    the weights, per-example outer-product gradients averaged."""
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    hidden_weights, output_weights = hidden_weights.copy(), output_weights.copy()
    for _ in range(iterations):
        input_layer_outputs = np.hstack((np.ones((X.shape[0], 1)), X))
        hidden_layer_outputs = np.hstack((np.ones((X.shape[0], 1)),
                                          sigmoid(np.dot(input_layer_outputs, hidden_weights))))
        output_layer_outputs = np.dot(hidden_layer_outputs, output_weights)
        output_error = output_layer_outputs - y
        hidden_error = hidden_layer_outputs[:, 1:] * (1 - hidden_layer_outputs[:, 1:]) * \
            np.dot(output_error, output_weights.T[:, 1:])
        hidden_pd = input_layer_outputs[:, :, np.newaxis] * hidden_error[:, np.newaxis, :]
        output_pd = hidden_layer_outputs[:, :, np.newaxis] * output_error[:, np.newaxis, :]
        hidden_weights += -alpha * np.average(hidden_pd, axis=0)
        output_weights += -alpha * np.average(output_pd, axis=0)
    input_layer_outputs = np.hstack((np.ones((X.shape[0], 1)), X))
    hidden_layer_outputs = np.hstack((np.ones((X.shape[0], 1)),
                                      sigmoid(np.dot(input_layer_outputs, hidden_weights))))
    return np.dot(hidden_layer_outputs, output_weights)


def test_seed001_worked_example_matches_reference_loop(be):
    import seed001_sigmoid as ex

    hidden, output = ex.seed_weights()
    expected = _seed001_reference(hidden, output, ex.X, ex.Y)
    model = ex.build(be.xp)
    X, Y = be.asarray(ex.X, "float64"), be.asarray(ex.Y, "float64")
    model.fit(X, Y, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=0.1), epochs=10_000,
              shuffle=False, progress=False)
    got = be.host(model.predict(X))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    # and it learned: outputs near the targets
    np.testing.assert_allclose(got, ex.Y, atol=0.15)


def test_xor_learns(be):
    X = be.asarray([[0, 0], [0, 1], [1, 0], [1, 1]], "float64")
    T = be.asarray([[0], [1], [1], [0]], "float64")
    model = nb.Sequential([nb.Dense(2, 2, "sigmoid", init="uniform"),
                           nb.Dense(2, 1, "sigmoid", init="uniform")], xp=be.xp, dtype="float64", seed=1)
    model.fit(X, T, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=2.0, momentum=0.9),
              epochs=3000, progress=False)
    out = be.host(model.predict(X))[:, 0]
    assert list((out > 0.5).astype(int)) == [0, 1, 1, 0], out


# --- batching modes --------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_full_online_and_minibatch_lower_the_loss(be, batch_size):
    X, y = _blobs(be)
    model = _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    before = model.evaluate(X, y, loss=loss)["loss"]
    hist = model.fit(X, y, loss=loss, optimizer=nb.optim.SGD(lr=0.1), epochs=15,
                     batch_size=batch_size, seed=0, progress=False)
    after = model.evaluate(X, y, loss=loss)["loss"]
    assert len(hist["loss"]) == 15
    assert after < 0.5 * before
    assert hist["loss"][-1] < hist["loss"][0]


def test_fit_steps_equal_manual_minibatch_sgd(be):
    """fit with shuffle=False and batch 7 equals stepping by hand over slices."""
    X, y = _blobs(be, n=20)
    a, b = _net(be), _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    a.fit(X, y, loss=loss, optimizer=nb.optim.SGD(lr=0.3), epochs=2, batch_size=7,
          shuffle=False, progress=False)
    opt = nb.optim.SGD(lr=0.3)
    for _ in range(2):
        for s, e in ((0, 7), (7, 14), (14, 20)):  # the last batch has 6 rows and is used
            b.train_step(X[s:e, ...], y[s:e], loss, opt)
    for p, q in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)


def test_history_loss_is_mean_over_epoch_batches(be):
    X, y = _blobs(be, n=12)
    model = _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    before = model.evaluate(X, y, loss=loss)["loss"]
    hist = model.fit(X, y, loss=loss, optimizer=nb.optim.SGD(lr=0.0), epochs=1,
                     batch_size=5, progress=False, metrics=["accuracy"])
    # lr = 0: weights never move, so the epoch mean equals the loss on all rows
    assert hist["loss"][0] == pytest.approx(before, rel=1e-12)
    acc = model.evaluate(X, y)["accuracy"]
    assert hist["accuracy"][0] == pytest.approx(acc)


def test_same_seed_same_result_on_every_backend(be):
    from conftest import Backend

    import backends

    ref_be = Backend(backends.get("numpy"))
    results = []
    for b in (ref_be, be):
        X, y = _blobs(b, n=30)
        model = _net(b, seed=3)
        model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(1e-2),
                  epochs=3, batch_size=8, seed=7, progress=False)
        results.append(_weights(model))
    for p, q in zip(*results):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-12)


def test_validation_split_and_data(be):
    X, y = _blobs(be, n=40)
    model = _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    h = model.fit(X, y, loss=loss, optimizer="sgd", epochs=2, validation_split=0.25,
                  metrics=["accuracy"], progress=False)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # the held-out rows are the last quarter: val_loss equals evaluate on them
    expect = model.evaluate(X[30:, ...], y[30:], loss=loss)["loss"]
    assert h["val_loss"][-1] == pytest.approx(expect, rel=1e-12)
    h2 = model.fit(X[:30, ...], y[:30], loss=loss, optimizer="sgd", epochs=1,
                   validation_data=(X[30:, ...], y[30:]), progress=False)
    assert "val_loss" in h2.history


# --- stopping rules ----------------------------------------------------------------

def test_early_stopping_restores_best_weights(be):
    X, y = _blobs(be, n=30)
    model = _net(be)
    loss = nb.losses.SoftmaxCrossEntropy()
    seen = []
    record = nb.callbacks.LambdaCallback(
        on_epoch_end=lambda run, e, logs: seen.append((logs["loss"], _weights(run.model))))
    # a huge learning rate makes the loss bounce: early stopping must catch it
    stop = nb.callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    h = model.fit(X, y, loss=loss, optimizer=nb.optim.SGD(lr=50.0), epochs=40,
                  callbacks=[record, stop], progress=False)
    assert h.stop_reason is not None and "early stopping" in h.stop_reason
    assert len(h["loss"]) < 40
    best = min(range(len(seen)), key=lambda i: seen[i][0])
    for p, q in zip(_weights(model), seen[best][1]):
        np.testing.assert_array_equal(p, q)


def test_convergence_stops_when_loss_settles(be):
    X, y = _blobs(be, n=30)
    model = _net(be)
    h = model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.0),
                  epochs=50, callbacks=[nb.callbacks.Convergence(tol=1e-9)], progress=False)
    assert len(h["loss"]) == 2 and "converged" in h.stop_reason


def test_divergence_raises_and_keeps_finite_weights(be):
    X, y = _blobs(be, n=30)
    X = X * 1e3
    model = _net(be)
    model.layers[0].activation = nb.activations.get("relu")
    loss = nb.losses.MSE()
    T = be.asarray(np.full((30, 3), 1e6), "float64")
    with pytest.raises(nb.TrainingDiverged, match=r"epoch \d+, batch \d+"):
        model.fit(X, T, loss=loss, optimizer=nb.optim.SGD(lr=10.0), epochs=50, batch_size=10,
                  progress=False)
    for p in _weights(model):
        assert np.all(np.isfinite(p))


# --- bad input is refused before any weight changes ------------------------------------

def _refused(be, match, **overrides):
    X, y = _blobs(be, n=20)
    model = _net(be)
    before = _weights(model)
    kw = dict(loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.1), epochs=1,
              progress=False)
    Xa = overrides.pop("X", X)
    ya = overrides.pop("y", y)
    kw.update(overrides)
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(Xa, ya, **kw)
    for p, q in zip(before, _weights(model)):
        np.testing.assert_array_equal(p, q)
    assert model.optimizer is None


def test_refuses_row_count_mismatch(be):
    X, y = _blobs(be, n=20)
    _refused(be, r"20 rows but T has 19", y=y[:19])


def test_refuses_wrong_width(be):
    _refused(be, r"3 features per row but the first layer expects 2",
             X=be.asarray(np.zeros((20, 3)), "float64"))


def test_refuses_labels_out_of_range(be):
    _refused(be, r"\[0, 2\].*from 0 to 5", y=be.asarray(np.arange(20) % 6))


def test_refuses_nan_in_X(be):
    X = np.random.default_rng(0).standard_normal((20, 2))
    X[3, 1] = np.nan
    X[7, 0] = np.inf
    _refused(be, r"2 NaN or infinite values in 2 rows", X=be.asarray(X, "float64"))


def test_refuses_nan_in_T(be):
    T = np.zeros((20, 3))
    T[0, 0] = np.nan
    _refused(be, r"T holds 1 NaN", y=be.asarray(T, "float64"))


@pytest.mark.parametrize("kw,match", [
    ({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"),
    ({"validation_split": 1.5}, "validation_split"),
])
def test_refuses_bad_arguments(be, kw, match):
    _refused(be, match, **kw)


# --- predict / evaluate ----------------------------------------------------------------

def test_predict_in_batches_equals_whole(be):
    X, _ = _blobs(be, n=23)
    model = _net(be)
    whole = be.host(model.predict(X))
    parts = be.host(model.predict(X, batch_size=5))
    np.testing.assert_allclose(parts, whole, rtol=1e-14)
    # predict leaves the forward cache alone: backward still pairs with forward
    Y = model.forward(X[:4, ...])
    model.predict(X)
    dX = model.backward(Y * 0 + 1)
    assert tuple(dX.shape) == (4, 2)


def test_evaluate_metrics_against_numpy(be):
    rng = np.random.default_rng(5)
    X, y = _blobs(be, n=25)
    model = _net(be)
    out = be.host(model.predict(X))
    yh = be.host(y)
    res = model.evaluate(X, y, loss=nb.losses.SoftmaxCrossEntropy(), metrics=["accuracy"])
    assert res["accuracy"] == pytest.approx(np.mean(out.argmax(1) == yh))
    z = out - out.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    assert res["loss"] == pytest.approx(-np.mean(logp[np.arange(25), yh]), rel=1e-12)
    onehot = be.asarray(np.eye(3)[yh], "float64")
    assert model.evaluate(X, onehot)["accuracy"] == pytest.approx(res["accuracy"])
    T = rng.standard_normal((25, 3))
    reg = model.evaluate(X, be.asarray(T, "float64"), metrics=["mse", "mae"])
    assert reg["mse"] == pytest.approx(np.mean((out - T) ** 2), rel=1e-12)
    assert reg["mae"] == pytest.approx(np.mean(np.abs(out - T)), rel=1e-12)


def test_training_never_writes_into_the_callers_weight_arrays(be):
    X, y = _blobs(be, n=12)
    model = _net(be)
    mine = be.asarray(np.full((2, 8), 0.25), "float64")
    model.layers[0].W = mine
    model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.5, momentum=0.5),
              epochs=2, progress=False)
    np.testing.assert_array_equal(be.host(mine), np.full((2, 8), 0.25))
    assert not np.array_equal(be.host(model.layers[0].W), be.host(mine))
