"""What the two estimators share: parameters, fit and partial_fit, fitted arrays, pickling.

The work is split: scikit-learn's rules check the parameters (``_params``), the
data is checked and placed by ``_data``, :func:`nnbackprop.training.fit` trains,
and scikit-learn's end-of-epoch bookkeeping is a callback (``_stopping``).
Subclasses say how y becomes targets, which loss and which validation score.
"""

from __future__ import annotations

import copy
import numbers
import types
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .. import _compat, training, weights
from .._mlp import mlp
from ..layers import Dense
from ..model import Sequential
from . import _data, _params
from ._stopping import SklearnEpochs

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


class BaseMLP(BaseEstimator):
    """Shared fit/partial_fit machinery; subclasses set ``_is_classifier``,
    ``_multi_output`` and define ``_targets``, ``_loss``, ``_val_metrics``, ``_val_score``."""

    _parameter_constraints = dict(_params.CONSTRAINTS)

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, xp=None, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.xp = xp
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # public API --------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train on X (n_samples, n_features) and y for up to ``max_iter`` epochs;
        ``sample_weight`` (n_samples,): each batch's loss is sum w J_n / sum w."""
        return self._fit(X, y, sample_weight, incremental=False)

    @property
    def coefs_(self) -> list:
        """Weights per layer, (n_in, n_out) each: NumPy, or X's namespace when fitted under
        array_api_dispatch. Setting them (a list of that length and those shapes) copies
        them into the network, as assigning scikit-learn's ``coefs_`` does."""
        return self._dense("W")

    @coefs_.setter
    def coefs_(self, values) -> None:
        self._set_dense("W", values)

    @property
    def intercepts_(self) -> list:
        """Biases per layer, (n_out,) each; NumPy or X's namespace, as ``coefs_``."""
        return self._dense("b")

    @intercepts_.setter
    def intercepts_(self, values) -> None:
        self._set_dense("b", values)

    def _dense(self, which):
        check_is_fitted(self, "model_")
        arrays = [getattr(la, which) for la in self.model_.layers if isinstance(la, Dense)]
        return arrays if getattr(self, "_keeps_namespace", False) else [_compat.to_host(a) for a in arrays]

    def _set_dense(self, which, values):
        check_is_fitted(self, "model_")
        model = self.model_
        dense = [i for i, la in enumerate(model.layers) if isinstance(la, Dense)]
        values = list(values)
        if len(values) != len(dense):
            raise ValueError(f"expected {len(dense)} arrays, one per layer, got {len(values)}")
        new = dict(model.named_parameters())
        for i, v in zip(dense, values):
            new[f"{i}.{which}"] = _data.to_net(v, model.xp, model.dtype, model.device)
        model.set_parameters([new[k] for k in model.store.names])

    # the machinery -----------------------------------------------------------
    def _check_params(self) -> list[int]:
        self._validate_params()
        _params.check_solver(self.solver)
        sizes = [self.hidden_layer_sizes] if np.isscalar(self.hidden_layer_sizes) \
            else list(self.hidden_layer_sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}")
        if any(int(s) < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive, got {self.hidden_layer_sizes}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        self._loss()  # a loss= that cannot be built is refused before anything changes
        return [int(s) for s in sizes]

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        sizes = self._check_params()
        if incremental and self.early_stopping:  # as scikit-learn: it needs a held-out share of every call
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not (hasattr(self, "model_") and (incremental or self.warm_start))
        placed = _data.validate(self, X, y, reset=first, method="partial_fit" if incremental else "fit")
        X, y = placed.X, placed.y
        xp, dev = _compat.namespace_of(X), _compat.device_of(X)
        if first:
            self._keeps_namespace = not placed.host  # fitted arrays and labels stay in X's namespace
        T, n_out, strata = self._targets(xp, X, y, first, classes)
        w = _data.sample_weight(sample_weight, X.shape[0], xp, X.dtype, dev)
        cw = self._class_weight_indices()
        if w is not None or cw is not None:  # refused here, before the fitted net is replaced; fit checks again
            weights.fit_weights(types.SimpleNamespace(xp=xp, n_out=n_out, device=dev, dtype=X.dtype),
                                T, self._loss(), w, cw)
        rs = check_random_state(self.random_state)
        if first:
            self.model_ = mlp([X.shape[1], *sizes, n_out], ACTIVATIONS[self.activation], xp=xp,
                              dropout=float(self.dropout), dtype=_compat.dtype_name(xp, X.dtype), device=dev,
                              seed=int(rs.randint(2**31 - 1)))
            self.n_iter_, self.t_ = 0, 0
            self.loss_curve_, self.best_loss_, self._no_improve = [], np.inf, 0
            self.validation_scores_ = [] if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = _params.make_optimizer(self)
            self._no_improve = 0
        val = w_val = None
        if self.early_stopping and not incremental:
            X, T, w, val, w_val = self._hold_out(xp, X, T, w, rs, strata)
            self._best = None
        n = X.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to "
                              "be clipped", UserWarning, stacklevel=3)
            batch = max(1, min(int(self.batch_size), n))
        schedule = self._optimizer.lr if isinstance(self._optimizer.lr, _params.EpochLearningRate) else None
        epochs_cb = SklearnEpochs(self, n, self._val_score(val, w_val), schedule)
        hist = training.fit(self.model_, X, T, loss=self._loss(), optimizer=self._optimizer,
                            epochs=1 if incremental else self.max_iter, batch_size=batch,
                            shuffle=self.shuffle, seed=int(rs.randint(2**31 - 1)),
                            validation_data=val, metrics=self._val_metrics(val),
                            sample_weight=w, class_weight=cw,
                            callbacks=[epochs_cb], progress=self.verbose)
        if val is not None and self._best is not None:
            self.model_.store.assign(self._best)
        if not incremental and hist.stop_reason is None and len(hist.epoch) == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                          f"the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def _class_weight_indices(self):
        return None

    def _hold_out(self, xp, X, T, w, rs, strata):
        """(X, T, w) less the early-stopping rows, (X_val, T_val), and the held-out rows'
        weights on the host (None without weights): scikit-learn's split, stratified by
        the host class indices ``strata`` (N,) when given and every class has rows enough
        for both parts, else a plain random one."""
        rows, kw = np.arange(X.shape[0]), dict(test_size=self.validation_fraction, random_state=rs)
        try:
            tr, va = train_test_split(rows, stratify=strata, **kw)
        except ValueError:
            if strata is None:
                raise
            tr, va = train_test_split(rows, **kw)
        dev = _compat.device_of(X)
        tr, va = _compat.from_host(xp, tr, device=dev), _compat.from_host(xp, va, device=dev)
        w_val = None if w is None else np.asarray(_compat.to_host(xp.take(w, va, axis=0)), dtype=np.float64)
        w = None if w is None else xp.take(w, tr, axis=0)
        return (xp.take(X, tr, axis=0), xp.take(T, tr, axis=0), w,
                (xp.take(X, va, axis=0), xp.take(T, va, axis=0)), w_val)

    def _host_score(self, val, w_val, score, outputs):
        """The validation score as scikit-learn's ``_score`` computes it: ``score(T_val,
        outputs(network outputs), sample_weight=w_val)`` on the host, once per epoch."""
        X_val, t = val[0], _compat.to_host(val[1])

        def of(logs):
            out = outputs(np.asarray(_compat.to_host(self.model_.predict(X_val))))
            return float(score(t, out, sample_weight=w_val))
        return of

    def _output(self, X, method):
        """(network outputs (N, n_out) for X as scikit-learn takes it, the Placed record);
        ``method``: the caller's name, for errors."""
        check_is_fitted(self, "model_")
        placed = _data.validate(self, X, reset=False, with_y=False, method=method)
        return self.model_.predict(placed.X), placed

    def __getstate__(self):
        """Pickles hold host weights; the network is rebuilt in its namespace on load."""
        state = self.__dict__.copy()
        state.pop("_optimizer", None)  # partial_fit after unpickling starts a fresh optimizer
        state.pop("_best", None)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state"] = {"config": model.config(), "dtype": model.dtype_name,
                                     "xp": model.xp.__name__, "device": _device_name(model.device),
                                     "seed": model.seed, "rng": model.rng.bit_generator.state,
                                     "params": [_compat.to_host(p).copy() for p in model.parameters()]}
        classes = state.get("classes_")
        if classes is not None and not isinstance(classes, np.ndarray):
            state["classes_"] = ("__xp__", _compat.to_host(classes).copy())
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_state", None)
        self.__dict__.update(state)
        if saved is not None:
            xp_name = saved["xp"].removeprefix("array_api_compat.")
            device = _restore_device(xp_name, saved.get("device"))
            model = Sequential.from_config(copy.deepcopy(saved["config"]), xp=xp_name, dtype=saved["dtype"],
                                           device=device, seed=saved["seed"])
            model.set_parameters([_compat.from_host(model.xp, p, model.dtype, model.device)
                                  for p in saved["params"]])
            if "rng" in saved:  # the dropout masks go on where they were
                model.rng.bit_generator.state = saved["rng"]
            self.model_ = model
            classes = state.get("classes_")
            if isinstance(classes, tuple) and classes[:1] == ("__xp__",):
                self.classes_ = _compat.from_host(model.xp, classes[1], device=model.device)


def _device_name(device):
    """A picklable name of ``device`` (its str), None for the namespace's default."""
    return None if device is None else str(device)


def _restore_device(xp_name, name):
    """The device called ``name`` in namespace ``xp_name``, or None (its default) when
    there is no name or this process has no such device."""
    if name is None:
        return None
    xp = _compat.namespace(xp_name)
    for d in _compat.devices(xp):
        if str(d) == name:
            return d
    try:
        return _compat.resolve_device(xp, name)
    except ValueError:
        return None
