"""Dropout, LayerNorm and BatchNorm against PyTorch autograd (float64), on every backend:
gradients of every parameter and of the input, running statistics after several
training steps, and inference outputs. The dropout mask is shared with PyTorch by
drawing it from a copy of the model's host generator, as the layer documents."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackprop as nb

torch = pytest.importorskip("torch", reason="PyTorch autograd is the oracle of these tests")


def _net(be, p=0.3, seed=4):
    return nb.Sequential([nb.Dense(5, 7, "tanh"), nb.BatchNorm(7, momentum=0.2), nb.Dropout(p),
                          nb.Dense(7, 6, "relu"), nb.LayerNorm(6, eps=1e-3), nb.Dense(6, 3)],
                         xp=be.xp, dtype="float64", device=be.device, seed=seed)


def _torch_forward(model, X, masks, training, stats):
    """The same network in torch ops (F.batch_norm, F.layer_norm, X * M for dropout),
    leaves with requires_grad; ``stats`` the BatchNorm running buffers, updated
    by F.batch_norm as BatchNorm1d does."""
    leaves = {n: torch.tensor(np.array(p, copy=True), dtype=torch.float64, requires_grad=True)
              for n, p in masks["params"].items()}
    A = masks["X"]
    k = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nb.Dense):
            A = A @ leaves[f"{i}.W"] + leaves[f"{i}.b"]
            A = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}[layer.activation.name](A)
        elif isinstance(layer, nb.BatchNorm):
            A = torch.nn.functional.batch_norm(A, stats[i][0], stats[i][1], leaves[f"{i}.gamma"],
                                               leaves[f"{i}.beta"], training=training,
                                               momentum=layer.momentum, eps=layer.eps)
        elif isinstance(layer, nb.LayerNorm):
            A = torch.nn.functional.layer_norm(A, (layer.n_in,), leaves[f"{i}.gamma"], leaves[f"{i}.beta"],
                                               eps=layer.eps)
        elif isinstance(layer, nb.Dropout) and training:
            A = A * torch.tensor(masks["M"][k])
            k += 1
    return A, leaves


def _masks(model, shapes):
    """The masks the model's next training forward draws (a copy of its generator)."""
    g = np.random.Generator(np.random.PCG64())
    g.bit_generator.state = model.rng.bit_generator.state
    out = []
    for layer, shape in zip([la for la in model.layers if isinstance(la, nb.Dropout)], shapes):
        out.append((g.random(shape) >= layer.p) / (1 - layer.p))
    return out


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("training", [True, False])
def test_gradients_equal_torch_autograd(be, training):
    rng = np.random.default_rng(0)
    model = _net(be)
    # a few training steps first, so running statistics and weights are not the initial ones
    Xs = [rng.standard_normal((9, 5)) for _ in range(3)]
    for Xh in Xs:
        model.train_step(be.asarray(Xh, "float64"), be.asarray(rng.integers(0, 3, 9), "int64"),
                         nb.losses.SoftmaxCrossEntropy(), nb.optim.SGD(0.1))
    Xh, R = rng.standard_normal((11, 5)), rng.standard_normal((11, 3))
    params = {n: be.host(p).copy() for n, p in model.named_parameters()}
    stats = {int(n.split(".")[0]): None for n, _ in model.named_buffers()}
    for i in stats:
        stats[i] = [torch.tensor(be.host(dict(model.named_buffers())[f"{i}.{k}"]).copy())
                    for k in ("running_mean", "running_var")]
    M = _masks(model, [(11, 7)]) if training else []

    Y = model.forward(be.asarray(Xh, "float64"), training=training)
    dX = model.backward(be.asarray(R, "float64"))

    Xt = torch.tensor(Xh, requires_grad=True)
    Yt, leaves = _torch_forward(model, Xt, {"params": params, "X": Xt, "M": M}, training, stats)
    (Yt * torch.tensor(R)).sum().backward()
    assert _rel(be.host(Y), Yt.detach().numpy()) <= 1e-12
    assert _rel(be.host(dX), Xt.grad.numpy()) <= 1e-9
    for (name, g) in zip([n for n, _ in model.named_parameters()], model.gradients()):
        assert _rel(be.host(g), leaves[name].grad.numpy()) <= 1e-9, name
    # the forward updated the running statistics exactly as torch's did (training only)
    for i, (rm, rv) in stats.items():
        np.testing.assert_allclose(be.host(dict(model.named_buffers())[f"{i}.running_mean"]), rm.numpy(),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(be.host(dict(model.named_buffers())[f"{i}.running_var"]), rv.numpy(),
                                   rtol=1e-12, atol=1e-15)


def test_running_statistics_and_inference_equal_batchnorm1d(be):
    """Several training steps (batches of different sizes) through nb.BatchNorm and
    torch.nn.BatchNorm1d: the same running mean and (unbiased) variance, then the
    same inference outputs."""
    rng = np.random.default_rng(1)
    model = nb.Sequential([nb.BatchNorm(4, eps=1e-4, momentum=0.3)], xp=be.xp, dtype="float64",
                          device=be.device)
    ref = torch.nn.BatchNorm1d(4, eps=1e-4, momentum=0.3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([1.5, 0.5, -1.0, 2.0]))
        ref.bias.copy_(torch.tensor([0.1, 0.0, -0.3, 1.0]))
    model.set_parameters([be.asarray(ref.weight.detach().numpy(), "float64"),
                          be.asarray(ref.bias.detach().numpy(), "float64")])
    for n in (8, 2, 5, 13):
        Xh = 3.0 * rng.standard_normal((n, 4)) + np.arange(4)
        Y = model.forward(be.asarray(Xh, "float64"), training=True)
        Yt = ref.train()(torch.tensor(Xh))
        np.testing.assert_allclose(be.host(Y), Yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    bufs = dict(model.named_buffers())
    np.testing.assert_allclose(be.host(bufs["0.running_mean"]), ref.running_mean.numpy(), rtol=1e-13)
    np.testing.assert_allclose(be.host(bufs["0.running_var"]), ref.running_var.numpy(), rtol=1e-13)
    Xh = rng.standard_normal((6, 4))
    np.testing.assert_allclose(be.host(model.predict(be.asarray(Xh, "float64"))),
                               ref.eval()(torch.tensor(Xh)).detach().numpy(), rtol=1e-12, atol=1e-12)
