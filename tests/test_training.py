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
    return nb.Sequential([nb.Dense(2, 8, "tanh"), nb.Dense(8, 3)], xp=be.xp, device=be.device, dtype=dtype, seed=seed)


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
    model = ex.build(be.xp, device=be.device)
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
                           nb.Dense(2, 1, "sigmoid", init="uniform")],
                          xp=be.xp, device=be.device, dtype="float64", seed=1)
    model.fit(X, T, loss=nb.losses.MSE(), optimizer=nb.optim.SGD(lr=2.0, momentum=0.9),
              epochs=3000, progress=False)
    out = be.host(model.predict(X))[:, 0]
    assert list((out > 0.5).astype(int)) == [0, 1, 1, 0], out
    # a one-output sigmoid model gives probabilities: accuracy thresholds them at 0.5
    assert model.evaluate(X, T)["accuracy"] == 1.0


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


def _numpy_minibatch_sgd(params, X, y, lr, epochs, batches):
    """Mini-batch SGD on tanh -> identity logits -> softmax cross-entropy, written
    out in NumPy: the reference fit is compared with."""
    W0, b0, W1, b1 = (p.copy() for p in params)
    for _ in range(epochs):
        for s, e in batches:
            Xb, yb = X[s:e], y[s:e]
            n = e - s
            h = np.tanh(Xb @ W0 + b0)
            z = h @ W1 + b1
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            dz = (p - np.eye(3)[yb]) / n
            dh = (dz @ W1.T) * (1 - h ** 2)
            gW1, gb1, gW0, gb0 = h.T @ dz, dz.sum(0), Xb.T @ dh, dh.sum(0)
            W0, b0, W1, b1 = W0 - lr * gW0, b0 - lr * gb0, W1 - lr * gW1, b1 - lr * gb1
    return [W0, b0, W1, b1]


def test_fit_steps_equal_manual_minibatch_sgd(be):
    """fit with shuffle=False and batch 7 equals mini-batch SGD written out in NumPy."""
    X, y = _blobs(be, n=20)
    model = _net(be)
    start = _weights(model)
    model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.3), epochs=2,
              batch_size=7, shuffle=False, progress=False)
    # the last batch has 6 rows and is used
    expected = _numpy_minibatch_sgd(start, be.host(X), be.host(y), 0.3, 2, [(0, 7), (7, 14), (14, 20)])
    for p, q in zip(_weights(model), expected, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


def test_fit_with_shuffle_visits_the_seeded_permutation(be):
    """shuffle=True: each epoch's batches follow numpy.random.default_rng(seed).permutation."""
    X, y = _blobs(be, n=20)
    model = _net(be)
    start = _weights(model)
    model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.3), epochs=2,
              batch_size=7, seed=5, progress=False)
    rng = np.random.default_rng(5)
    Xh, yh = be.host(X), be.host(y)
    params = start
    for _ in range(2):
        order = rng.permutation(20)
        params = _numpy_minibatch_sgd(params, Xh[order], yh[order], 0.3, 1, [(0, 7), (7, 14), (14, 20)])
    for p, q in zip(_weights(model), params, strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


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


def _linear(be):
    return nb.Sequential([nb.Dense(2, 1)], xp=be.xp, device=be.device, dtype="float64", seed=0)


@pytest.mark.parametrize("rows, batch_size, where", [
    (4, None, "epoch 1, batch 1 of 1"),   # full batch: the loss stays finite, the weights do not
    (4, 2, "epoch 1, batch 2 of 3"),      # rows 0-1 give no gradient; batch 2's update overflows
], ids=["full-batch", "mini-batch"])
def test_an_update_to_infinite_weights_is_divergence(be, rows, batch_size, where):
    """Linear MSE, SGD(lr=1e306): the update of batch ``where`` overflows the weights
    to -inf while every loss computed before it was finite."""
    zeros = 0 if batch_size is None else 2  # X = 0, T = 0, b = 0: a zero gradient
    X = be.asarray(np.array([[0.0, 0.0]] * zeros + [[10.0, 10.0]] * rows), "float64")
    T = be.asarray(np.array([[0.0]] * zeros + [[-100.0]] * rows), "float64")
    model = _linear(be)
    start = _weights(model)
    opt = nb.optim.SGD(lr=1e306, momentum=0.5)
    with pytest.raises(nb.TrainingDiverged,
                       match=rf"diverged in {where}: its update made the weights NaN or infinite"
                             rf" \(the batch's loss was [0-9.e+]+\)\. The model and its optimizer are back"
                             rf" to their state before that epoch"):
        model.fit(X, T, loss="mse", optimizer=opt, epochs=1, batch_size=batch_size, shuffle=False,
                  progress=False)
    for p, q in zip(_weights(model), start, strict=True):
        np.testing.assert_array_equal(p, q)
    assert opt.state is None  # as before the first epoch


def test_divergence_in_a_later_epoch_restores_weights_and_optimizer_state(be):
    """Epoch 1 trains with lr 1e-3; then the lr jumps to 1e306. Epoch 2's batch 1
    (X = 0) sends the bias to about -1e305, and batch 2's loss overflows to inf."""
    X = be.asarray(np.array([[0.0, 0.0]] * 2 + [[10.0, 10.0]] * 4), "float64")
    T = be.asarray(np.array([[0.0]] * 2 + [[-100.0]] * 4), "float64")
    model = _linear(be)
    opt = nb.optim.SGD(lr=1e-3, momentum=0.5)
    after_epoch_1 = {}

    def jump(run, epoch, logs):
        if epoch == 0:
            after_epoch_1["params"] = _weights(run.model)
            after_epoch_1["velocity"] = [be.host(v).copy() for v in run.optimizer.state.slots["velocity"]]
            after_epoch_1["t"] = run.optimizer.state.t
            run.optimizer.lr = nb.schedules.Constant(1e306)

    with pytest.raises(nb.TrainingDiverged, match=r"diverged in epoch 2, batch 2 of 3: the loss became inf\. "
                                                  r"The model and its optimizer are back to their state"):
        model.fit(X, T, loss="mse", optimizer=opt, epochs=3, batch_size=2, shuffle=False, progress=False,
                  callbacks=[nb.callbacks.LambdaCallback(on_epoch_end=jump)])
    assert after_epoch_1["t"] == 3 and opt.state.t == 3
    for p, q in zip(_weights(model), after_epoch_1["params"], strict=True):
        np.testing.assert_array_equal(p, q)
    for v, w in zip(opt.state.slots["velocity"], after_epoch_1["velocity"], strict=True):
        np.testing.assert_array_equal(be.host(v), w)
    assert any(np.any(w != 0) for w in after_epoch_1["velocity"])  # a state worth restoring


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


# --- accuracy of a single output follows the output activation ------------------------------

def _one_unit(be, activation):
    """Dense(1, 1, activation) with W = 1, b = 0: its output is g(x)."""
    model = nb.Sequential([nb.Dense(1, 1, activation)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    model.layers[0].W = be.asarray([[1.0]], "float64")
    model.layers[0].b = be.asarray([0.0], "float64")
    return model


def test_accuracy_of_a_sigmoid_output_thresholds_probabilities_at_half(be):
    x = np.array([[-1.0], [2.0], [0.3], [-0.2]])
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    model = _one_unit(be, "sigmoid")
    p = 1 / (1 + np.exp(-x))  # 0.27, 0.88, 0.57, 0.45: every one right at 0.5, half at 0
    expected = np.mean((p > 0.5) == (t > 0.5))
    assert expected == 1.0 and np.mean((p > 0) == (t > 0.5)) == 0.5
    X, T = be.asarray(x, "float64"), be.asarray(t, "float64")
    assert model.evaluate(X, T)["accuracy"] == expected
    hist = model.fit(X, T, loss="mse", optimizer=nb.optim.SGD(0.0), metrics=["accuracy"], progress=False)
    assert hist["accuracy"] == [expected]
    assert nb.metrics.Accuracy(threshold=0.9).for_model(model).threshold == 0.9  # an explicit one stays


def test_accuracy_of_a_logit_output_thresholds_at_zero(be):
    x = np.array([[-1.0], [2.0], [0.3], [-0.2]])
    t = np.array([1 * (v > 0) for v in x[:, 0]])  # labels 0, 1, 1, 0
    model = _one_unit(be, "identity")
    X, T = be.asarray(x, "float64"), be.asarray(t, "int64")
    assert np.mean((x[:, 0] > 0.5) == t) == 0.75  # what a 0.5 threshold would say
    assert model.evaluate(X, T)["accuracy"] == 1.0
    res = model.evaluate(X, be.asarray(t[:, None], "float64"), loss="binary_cross_entropy")
    assert res["accuracy"] == 1.0


# --- patience: act after `patience` epochs without improvement (Keras) -------------------------

@pytest.mark.parametrize("patience", [0, 1, 2, 4])
def test_early_stopping_and_plateau_act_after_patience_bad_epochs(be, patience):
    """lr tiny and min_delta huge: no epoch after the first improves. Both rules
    act at the end of the patience-th bad epoch, epoch 1 + patience (patience 0
    acts at the first bad one, as 1 does): the schedule lowers the lr there, and
    early stopping ends the run there."""
    bad = max(patience, 1)
    X, y = _blobs(be, n=12)
    model = _net(be)
    sched = nb.schedules.ReduceOnPlateau(1e-9, factor=0.5, patience=patience, min_delta=1e3)
    seen = []
    record = nb.callbacks.LambdaCallback(on_epoch_end=lambda run, e, logs: seen.append(sched(0)))
    stop = nb.callbacks.EarlyStopping(monitor="loss", patience=patience, min_delta=1e3)
    h = model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=sched), epochs=10,
                  callbacks=[record, stop], progress=False)
    assert len(h["loss"]) == 1 + bad == len(seen)
    assert seen == [1e-9] * bad + [0.5e-9]
    assert h.stop_reason == (f"early stopping: loss did not improve by more than 1000.0 for {bad} epochs "
                             f"(best {h['loss'][0]:.6g} at epoch 1)")


# --- refusals leave a trained model and its optimizer alone ------------------------------------

def test_refused_fit_leaves_a_trained_adam_model_and_its_state_alone(be):
    X, y = _blobs(be, n=20)
    model = _net(be)
    opt = nb.optim.Adam(1e-2)
    model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=2, batch_size=8,
              progress=False)
    weights, t = _weights(model), opt.state.t
    slots = {k: [be.host(a).copy() for a in v] for k, v in opt.state.slots.items()}
    bad = [dict(y=be.asarray(np.arange(20) % 5)), dict(X=be.asarray(np.zeros((20, 3)), "float64")),
           dict(metrics=["mse"]), dict(epochs=-1)]
    for kw in bad:
        args = dict(X=X, y=y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=1,
                    progress=False)
        args.update(kw)
        with pytest.raises((ValueError, TypeError)):
            model.fit(args.pop("X"), args.pop("y"), **args)
        assert model.optimizer is opt and opt.state.t == t
        for p, q in zip(_weights(model), weights, strict=True):
            np.testing.assert_array_equal(p, q)
        for k, v in opt.state.slots.items():
            for a, b in zip(v, slots[k], strict=True):
                np.testing.assert_array_equal(be.host(a), b)


# --- predict and evaluate: what comes out ---------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_and_evaluate_outputs_kind(be, dtype):
    rng = np.random.default_rng(3)
    model = _net(be, dtype)
    X = be.asarray(rng.standard_normal((9, 2)), dtype)
    y = be.asarray(np.arange(9) % 3)
    for Y in (model.predict(X), model.predict(X, batch_size=4)):
        assert nb._compat.namespace_of(Y) is be.xp
        assert nb._compat.device_of(Y) == be.device
        assert Y.dtype == getattr(be.xp, dtype)
        assert tuple(Y.shape) == (9, 3)
    res = model.evaluate(X, y, loss="softmax_cross_entropy")
    assert set(res) == {"loss", "accuracy"} and all(type(v) is float for v in res.values())


def test_refuses_nan_in_X_counted_across_blocks(be):
    """9000 x 128 values, more than the 2**20 that the finiteness check takes at a
    time: bad values at both ends of the array and on either side of row 8192
    are all counted, and rows with several count once."""
    X = np.random.default_rng(1).standard_normal((9000, 128))
    for r, c in [(0, 0), (5, 3), (5, 127), (8191, 64), (8192, 0), (8192, 1), (8999, 127)]:
        X[r, c] = [np.nan, np.inf, -np.inf][(r + c) % 3]
    bad, rows = int(np.sum(~np.isfinite(X))), int(np.sum(~np.all(np.isfinite(X), axis=1)))
    assert (bad, rows) == (7, 5)
    model = nb.Sequential([nb.Dense(128, 3)], xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = _weights(model)
    y = be.asarray(np.arange(9000) % 3)
    with pytest.raises(ValueError, match=rf"^X holds {bad} NaN or infinite values in {rows} rows; "):
        model.fit(be.asarray(X, "float64"), y, loss="softmax_cross_entropy", optimizer="sgd",
                  progress=False)
    for p, q in zip(_weights(model), before, strict=True):
        np.testing.assert_array_equal(p, q)


def test_finiteness_check_of_X_works_in_small_blocks():
    """Refusing a 32 MiB float32 X for one NaN in its last value: both passes of
    the check (values, then rows) hold at most a block of 2**20 booleans (1 MiB)
    and its row flags at a time, where a full-size boolean temporary would be
    8 MiB (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    X = np.zeros((65_536, 128), np.float32)
    X[-1, -1] = np.nan
    y = np.arange(65_536) % 3
    model = nb.Sequential([nb.Dense(128, 3)], xp=np, dtype="float32", seed=0)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"^X holds 1 NaN or infinite values in 1 rows; "):
            model.fit(X, y, loss="softmax_cross_entropy", optimizer="sgd", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (1 << 20) + (1 << 19), peak


# --- epochs gather their batches, never a copy of all the data --------------------------------

@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_batches_are_the_seeded_permutations_rows_bit_for_bit(be, drop_last):
    """fit with shuffle: batch k of an epoch is rows perm[5k:5k+5] of X and T, perm
    from numpy.random.default_rng(seed). The same steps by hand (train_step on
    those rows, gathered on the host) give the very same weights and Adam state."""
    X, y = _blobs(be, n=23)
    loss = nb.losses.SoftmaxCrossEntropy()
    model, opt = _net(be), nb.optim.Adam(0.05)
    model.fit(X, y, loss=loss, optimizer=opt, epochs=3, batch_size=5, seed=11, drop_last=drop_last,
              progress=False)
    by_hand, hand_opt = _net(be), nb.optim.Adam(0.05)
    rng = np.random.default_rng(11)
    Xh, yh = be.host(X), be.host(y)
    spans = [(0, 5), (5, 10), (10, 15), (15, 20)] + ([] if drop_last else [(20, 23)])
    for _ in range(3):
        perm = rng.permutation(23)
        for start, stop in spans:
            rows = perm[start:stop]
            by_hand.train_step(be.asarray(Xh[rows], "float64"), be.asarray(yh[rows]), loss, hand_opt)
    assert opt.state.t == hand_opt.state.t == 3 * len(spans)
    for p, q in zip(_weights(model), _weights(by_hand), strict=True):
        np.testing.assert_array_equal(p, q)
    for k in opt.state.slots:
        for a, b in zip(opt.state.slots[k], hand_opt.state.slots[k], strict=True):
            np.testing.assert_array_equal(be.host(a), be.host(b))


def test_divergence_replay_names_the_shuffled_batch(be):
    """Linear MSE, SGD(lr=1e306), every row 0 (no gradient) but row 0, whose update
    overflows the weights. With shuffle, the epoch's replay must report the batch
    that holds row 0 in the seeded order, not its batch in the given order."""
    X = np.zeros((8, 2))
    T = np.zeros((8, 1))
    X[0], T[0] = [10.0, 10.0], [-100.0]
    seed = 3
    position = int(np.flatnonzero(np.random.default_rng(seed).permutation(8) == 0)[0])
    batch = position // 2 + 1
    assert batch != 1  # the given order puts row 0 in batch 1: the test tells them apart
    model = _linear(be)
    start = _weights(model)
    with pytest.raises(nb.TrainingDiverged,
                       match=rf"diverged in epoch 1, batch {batch} of 4: its update made the weights"):
        model.fit(be.asarray(X, "float64"), be.asarray(T, "float64"), loss="mse",
                  optimizer=nb.optim.SGD(lr=1e306), epochs=1, batch_size=2, seed=seed, progress=False)
    for p, q in zip(_weights(model), start, strict=True):
        np.testing.assert_array_equal(p, q)


MiB = 1 << 20


def _traced_fit(**kw):
    from benchmarks import fit_memory

    return fit_memory.measure(**kw)


def test_tracemalloc_sees_a_copy_of_the_data():
    """The instrument of the two tests below: tracemalloc counts NumPy's buffers,
    so a full gather of X (what each epoch did before) shows as X's size."""
    import tracemalloc

    X = np.ones((4096, 128), np.float32)
    tracemalloc.start()
    try:
        Xc = np.take(X, np.arange(4096)[::-1], axis=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert X.nbytes <= peak < X.nbytes + 4096 * 8 + 64 * 1024 and Xc.shape == X.shape


def test_shuffled_fit_peak_memory_is_a_tenth_of_X_plus_the_model():
    """Two shuffled epochs of Adam in batches of 256 over a 128 MiB float32 X
    (262,144 x 128; a small model, 128 -> 8 -> 10, so that the test is quick):
    the traced peak of fit beyond the data stays within

        10 % of X                       (the row order: 8 bytes a row, 1.6 % here)
      + the model, twice                (parameters, gradients, Adam's m and v;
                                         the epoch's copy of weights and state for a rollback)
      + 1 MiB                           (the larger of the finiteness check's block of
                                         2**20 booleans and one batch of X, its labels,
                                         activations and update scratch, ~0.5 MiB)

    Gathering all of X each epoch, as fit did, cost 100 % of X; the full-size
    finiteness check it made, 125 % (measured: 167,773,776 bytes; now about
    2.6 MB, 2 % of X, against a budget of 14.5 MB)."""
    rows, features, hidden, classes = 262_144, 128, 8, 10
    r = _traced_fit(rows=rows, features=features, hidden=hidden, classes=classes, batch_size=256,
                    epochs=2, optimizer="adam", shuffle=True)
    X_bytes = rows * features * 4
    params = (features * hidden + hidden + hidden * classes + classes) * 4
    model = params + params + 2 * params  # parameters, gradients, m and v
    budget = X_bytes // 10 + 2 * model + MiB
    assert r["X_bytes"] == X_bytes
    assert r["peak_extra"] <= budget, (r["peak_extra"], budget)


def test_unshuffled_fit_copies_no_batch():
    """Without shuffling, batches are slices of X: the traced peak of fit stays
    below the size of one batch of X (8192 rows x 128 float32 = 4 MiB), which a
    gathered batch alone would reach; the model (128 -> 1 -> 10) is tiny."""
    batch, features = 8192, 128
    r = _traced_fit(rows=8 * batch, features=features, hidden=1, classes=10, batch_size=batch,
                    epochs=1, optimizer="sgd", shuffle=False)
    assert r["peak_extra"] < batch * features * 4, r


def test_online_fit_holds_nothing_per_batch():
    """Online (batch 1) and shuffled over 5,000 rows of 2 float32 features: the
    traced peak of fit stays within the row order (8 bytes a row), 10 % of X,
    the model twice and 64 KiB (one step's arrays and the fit's Python objects;
    22 kB measured, whatever the row count). A list of the 5,000 (start, stop)
    batch ranges and their shares of the epoch, as fit kept, took 850 kB."""
    rows, features, hidden, classes = 5_000, 2, 4, 3
    r = _traced_fit(rows=rows, features=features, hidden=hidden, classes=classes, batch_size=1,
                    epochs=1, optimizer="sgd", shuffle=True)
    params = (features * hidden + hidden + hidden * classes + classes) * 4
    budget = 8 * rows + rows * features * 4 // 10 + 2 * (2 * params) + 64 * 1024
    assert r["peak_extra"] <= budget, (r["peak_extra"], budget)
