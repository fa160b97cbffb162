"""ONNX export: onnxruntime's outputs equal predict on 1,000 rows (float32, 1e-5) for
every layer and activation, from a model on every backend; the file passes onnx.checker."""

from __future__ import annotations

import numpy as np
import pytest

import nnbackprop as nb
from nnbackprop import cli

onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'onnx' extra (onnx, onnxruntime)")
ort = pytest.importorskip("onnxruntime", reason="running the exported graph needs the 'onnx' extra")

ACTIVATIONS = ["identity", "relu", "sigmoid", "tanh", {"name": "leaky_relu", "slope": 0.2}, "softmax"]


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})[0]


def _trained(be, act, dtype="float32"):
    """Dense (act), BatchNorm, Dropout, LayerNorm, trained a little so that running
    statistics, gamma and beta are not their initial values."""
    model = nb.Sequential([nb.Dense(6, 12, act), nb.BatchNorm(12, momentum=0.5), nb.Dropout(0.3),
                           nb.Dense(12, 8, act), nb.LayerNorm(8, eps=1e-3), nb.Dense(8, 4, act)],
                          xp=be.xp, dtype=dtype, device=be.device, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 6)) * 2 + 1
    T = rng.standard_normal((64, 4))
    model.fit(be.asarray(X, dtype), be.asarray(T, dtype), loss="mse", optimizer=nb.optim.Adam(0.01), epochs=3,
              batch_size=16, progress=False)
    return model


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: a if isinstance(a, str) else a["name"])
def test_onnxruntime_equals_predict(be, tmp_path, act):
    model = _trained(be, act)
    path = model.to_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert {"Gemm", "BatchNormalization", "LayerNormalization"} <= set(ops) and "Dropout" not in ops
    X = np.random.default_rng(2).standard_normal((1000, 6)).astype(np.float32) * 2 + 1
    want = be.host(model.predict(be.asarray(X, "float32")))
    np.testing.assert_allclose(_run(path, X), want, rtol=1e-5, atol=1e-5)


def test_float64_and_a_plain_network(tmp_path):
    X = np.random.default_rng(3).standard_normal((1000, 3))
    for model in (nb.mlp([3, 5, 2], "tanh", dtype="float64", seed=1),
                  nb.Sequential([nb.Dense(3, 4), nb.Dropout(0.5)], dtype="float64", seed=1)):
        got = _run(model.to_onnx(tmp_path / "m.onnx"), X)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, model.predict(X), rtol=1e-12, atol=1e-12)


class _Scale(nb.Layer):
    def __init__(self, n):
        self.n_in = self.n_out = n

    def forward(self, X, ctx, ws):
        return 2.0 * X


def test_a_layer_without_an_onnx_form_is_refused_by_name(tmp_path):
    model = nb.Sequential([nb.Dense(3, 4), _Scale(4)])
    with pytest.raises(TypeError, match=r"layer 1 \(_Scale\) has no ONNX form"):
        model.to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ValueError, match="must end in .onnx"):
        nb.mlp([3, 2]).to_onnx(tmp_path / "m.npz")


def test_cli_export(tmp_path, capsys):
    ckpt, out = tmp_path / "m.npz", tmp_path / "sub" / "m.onnx"
    assert cli.main(["train", "--data", "iris", "--hidden", "8", "--norm", "batch", "--dropout", "0.1",
                     "--epochs", "5", "--backend", "numpy", "--no-progress", "--out", str(ckpt)]) == 0
    assert cli.main(["export", str(ckpt), str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    model = nb.load(ckpt)  # the checkpoint takes raw features: so does the ONNX graph
    X = np.random.default_rng(0).uniform(0, 8, (1000, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(out, X), model.predict(X), rtol=1e-5, atol=1e-5)
    assert cli.main(["export", str(ckpt), str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
