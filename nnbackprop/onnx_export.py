"""ONNX export: a trained Sequential as an ONNX graph in its inference form.

Needs the optional extra ``onnx`` (``pip install "nnbackprop[onnx]"``: onnx, and
onnxruntime to run the result). Every layer becomes standard ONNX operators
(opset 17), in the model's dtype, with a batch dimension "N" of any size:

    Dense(g)      Gemm(X, W, b), then Relu | Sigmoid | Tanh | LeakyRelu(alpha) | Softmax(axis=-1)
    LayerNorm     LayerNormalization(X, gamma, beta, axis=-1, epsilon)
    BatchNorm     BatchNormalization(X, gamma, beta, running_mean, running_var, epsilon)
    Dropout       nothing: the identity at inference

A layer of your own exports through its method ``onnx(graph, x) -> name`` (see
:class:`Graph`); one without is refused by name. The graph passes
``onnx.checker`` before it is written (atomically).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import _compat
from .checkpoint import atomic_write
from .dropout import Dropout
from .layers import Dense
from .norm import BatchNorm, LayerNorm

OPSET = 17
_ELEM = {"float16": "FLOAT16", "float32": "FLOAT", "float64": "DOUBLE"}
_ACT_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: pip install 'nnbackprop[onnx]' "
                          f"({exc})") from None
    return onnx


class Graph:
    """The graph being built: ``const(name, host_array)`` adds an initializer (in the
    model's dtype), ``node(op, inputs, **attrs)`` a node; both return the name of
    their output."""

    def __init__(self, onnx: Any, dtype: np.dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list = []
        self.initializers: list = []
        self._n = 0

    def const(self, name: str, value: Any) -> str:
        host = np.ascontiguousarray(_compat.to_host(value), dtype=self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(host, name=name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        self._n += 1
        out = f"{op.lower()}_{self._n}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=f"{op}_{self._n}", **attrs))
        return out


def _activation(g: Graph, act: Any, x: str) -> str:
    if act.name == "identity":
        return x
    if act.name in _ACT_OPS:
        return g.node(_ACT_OPS[act.name], [x])
    if act.name == "leaky_relu":
        return g.node("LeakyRelu", [x], alpha=float(act.slope))
    if act.name == "softmax":
        return g.node("Softmax", [x], axis=-1)
    raise ValueError(f"activation {act.name!r} has no ONNX form")


def _layer(g: Graph, i: int, layer: Any, x: str) -> str:
    p = layer.params
    if isinstance(layer, Dense):
        z = g.node("Gemm", [x, g.const(f"{i}.W", p["W"]), g.const(f"{i}.b", p["b"])])
        return _activation(g, layer.activation, z)
    if isinstance(layer, Dropout):
        return x
    if isinstance(layer, LayerNorm):
        return g.node("LayerNormalization", [x, g.const(f"{i}.gamma", p["gamma"]),
                                             g.const(f"{i}.beta", p["beta"])], axis=-1, epsilon=layer.eps)
    if isinstance(layer, BatchNorm):
        b = layer.buffers
        return g.node("BatchNormalization", [x, g.const(f"{i}.gamma", p["gamma"]), g.const(f"{i}.beta", p["beta"]),
                                             g.const(f"{i}.running_mean", b["running_mean"]),
                                             g.const(f"{i}.running_var", b["running_var"])], epsilon=layer.eps)
    own = getattr(layer, "onnx", None)
    if own is None:
        raise TypeError(f"layer {i} ({type(layer).__name__}) has no ONNX form: give it a method "
                        f"onnx(graph, x) -> output name")
    return own(g, x)


def to_proto(model: Any) -> Any:
    """The checked ``onnx.ModelProto`` of ``model`` (inference form)."""
    onnx = _onnx()
    name = model.dtype_name
    g = Graph(onnx, np.dtype(name))
    x = "X"
    for i, layer in enumerate(model.layers):
        x = _layer(g, i, layer, x)
    if x == "X":  # a model of identities only: ONNX wants a node to name the output
        x = g.node("Identity", [x])
    elem = getattr(onnx.TensorProto, _ELEM[name])
    graph = onnx.helper.make_graph(
        g.nodes, "nnbackprop", [onnx.helper.make_tensor_value_info("X", elem, ["N", model.n_in])],
        [onnx.helper.make_tensor_value_info(x, elem, ["N", model.n_out])], g.initializers)
    proto = onnx.helper.make_model(graph, producer_name="nnbackprop",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    proto.ir_version = min(proto.ir_version, 8)  # what onnxruntime releases of the last years read
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Any, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path`` (.onnx) as an ONNX graph; returns the path."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"ONNX path must end in .onnx, got {str(path)!r}")
    proto = to_proto(model)
    return atomic_write(path, lambda f: f.write(proto.SerializeToString()))
