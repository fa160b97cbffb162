"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in for ``sklearn.neural_network``'s estimators of the same names (same
parameters where they apply), trained by nnbackprop on any Array API backend.
Needs scikit-learn >= 1.6 (``pip install 'nnbackprop[examples]'``).

Data: with scikit-learn's ``array_api_dispatch`` off (the default) inputs are
converted to NumPy (``validate_data``), the network runs in ``xp`` (NumPy when
None) and results come back as float64 NumPy arrays, as scikit-learn's do. With
``sklearn.set_config(array_api_dispatch=True)``, arrays of any Array API library
stay in their namespace and device: the network is built there and results are
arrays of that namespace in ``dtype``.

Parameters are validated at fit with scikit-learn's own rules and error type
(``InvalidParameterError``, a ValueError). The early-stopping hold-out is
scikit-learn's ``train_test_split``, stratified for the classifier (a plain
random split when a class has too few rows for both parts).

``dropout``: p of a Dropout after every hidden layer (0, the default, adds none);
scikit-learn's MLPs have no such parameter.

Penalty: ``alpha`` is nnbackprop's ``l2``: J + alpha/2 sum ||W||^2 per batch
(scikit-learn divides by the batch size; ours is the stronger, size-free form).
"""

from __future__ import annotations

import copy
import numbers
import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLP
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _compat, losses, optim, training
from ._mlp import mlp
from .callbacks import Callback
from .layers import Dense
from .model import Sequential

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
_SHARED = ("hidden_layer_sizes", "activation", "alpha", "batch_size", "learning_rate_init", "max_iter",
           "shuffle", "random_state", "tol", "verbose", "warm_start", "momentum", "early_stopping",
           "validation_fraction", "n_iter_no_change")


def _dispatch() -> bool:
    import sklearn

    return bool(sklearn.get_config().get("array_api_dispatch", False))


class _Stopper(Callback):
    """scikit-learn's stopping rule: ``n_iter_no_change`` epochs without an
    improvement by ``tol`` of the training loss, or, with early stopping, of the
    validation score (best weights restored at the end)."""

    def __init__(self, est, score_of):
        self.est, self.score_of = est, score_of

    def on_epoch_end(self, run, epoch, logs):
        est = self.est
        est.loss_curve_.append(logs["loss"])
        if est.early_stopping:
            est.validation_loss_curve_.append(logs["val_loss"])
            score = self.score_of(logs)
            est.validation_scores_.append(score)
            est._no_improve = est._no_improve + 1 if score < est.best_validation_score_ + est.tol else 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                xp = run.model.xp
                est._best = [xp.asarray(p, copy=True) for p in run.model.parameters()]
        else:
            loss = logs["loss"]
            est._no_improve = est._no_improve + 1 if loss > est.best_loss_ - est.tol else 0
            est.best_loss_ = min(est.best_loss_, loss)
        if est._no_improve > est.n_iter_no_change:
            run.stop(f"no improvement by tol={est.tol} for {est.n_iter_no_change} consecutive epochs")


class _BaseMLP(BaseEstimator):
    """Shared fit/partial_fit machinery; subclasses say how targets become T."""

    # scikit-learn's own rules for the parameters we share, checked at fit as it does
    # (solver, xp and dtype are checked by _check_params)
    _parameter_constraints = {k: c for k, c in _SkMLP._parameter_constraints.items() if k in _SHARED}
    _parameter_constraints["dropout"] = [Interval(Real, 0, 1, closed="left")]

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 dropout=0.0, xp=None, dtype="float32"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dropout = dropout
        self.xp = xp
        self.dtype = dtype

    # public API --------------------------------------------------------------
    def fit(self, X, y):
        """Train on X (n_samples, n_features) and y for up to ``max_iter`` epochs."""
        return self._fit(X, y, incremental=False)

    def _partial_fit(self, X, y, classes=None):
        return self._fit(X, y, incremental=True, classes=classes)

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weights per layer, NumPy (n_in, n_out) each."""
        check_is_fitted(self, "model_")
        return [_compat.to_host(layer.W) for layer in self.model_.layers if isinstance(layer, Dense)]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Biases per layer, NumPy (n_out,) each."""
        check_is_fitted(self, "model_")
        return [_compat.to_host(layer.b) for layer in self.model_.layers if isinstance(layer, Dense)]

    # the machinery -----------------------------------------------------------
    def _check_params(self):
        self._validate_params()
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not supported; choose from {_SOLVERS} "
                             f"(lbfgs is not: nnbackprop trains by mini-batch gradient descent)")
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

    def _validate(self, X, y=None, reset=True, with_y=True):
        """X (and y) as arrays of the namespace the network runs in; X in its dtype."""
        kw = dict(dtype=None if _dispatch() else [np.float64, np.float32])
        if not with_y:
            X = validate_data(self, X, reset=reset, **kw)
        else:
            X, y = validate_data(self, X, y, reset=reset, multi_output=self._multi_output,
                                 y_numeric=not self._is_classifier, **kw)
        xp_in = _compat.namespace_of(X) if _dispatch() else np
        if xp_in is np or not _dispatch():
            X = np.asarray(X)
            xp = _compat.namespace(self.xp)
            device = self.model_.device if hasattr(self, "model_") else None
            X = _compat.from_host(xp, X, _compat.resolve_dtype(xp, self.dtype), device)
        else:
            xp = xp_in
            X = xp.astype(X, _compat.resolve_dtype(xp, self.dtype, _compat.device_of(X)))
        return X, y

    def _fit(self, X, y, incremental, classes=None):
        sizes = self._check_params()
        first = not (hasattr(self, "model_") and (incremental or self.warm_start))
        X, y = self._validate(X, y, reset=first)
        xp = _compat.namespace_of(X)
        T, n_out, strata = self._targets(xp, X, y, first, classes)
        rs = check_random_state(self.random_state)
        if first:
            self.model_ = mlp([X.shape[1], *sizes, n_out], _ACTIVATIONS[self.activation], xp=xp,
                              dropout=float(self.dropout),
                              dtype=self.dtype, device=_compat.device_of(X), seed=int(rs.randint(2**31 - 1)))
            self.n_iter_, self.t_ = 0, 0
            self.loss_curve_, self.best_loss_, self._no_improve = [], np.inf, 0
            self.validation_scores_ = [] if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
            self._no_improve = 0
        val = None
        if self.early_stopping and not incremental:
            X, T, val = self._hold_out(xp, X, T, rs, strata)
            self._best = None
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else max(1, min(int(self.batch_size), n))
        stopper = _Stopper(self, self._val_score(val))
        hist = training.fit(self.model_, X, T, loss=self._loss(), optimizer=self._optimizer,
                            epochs=1 if incremental else self.max_iter, batch_size=batch,
                            shuffle=self.shuffle, seed=int(rs.randint(2**31 - 1)),
                            validation_data=val, metrics=self._val_metrics(val),
                            callbacks=[] if incremental else [stopper], progress=self.verbose)
        if incremental:
            self.loss_curve_.append(hist["loss"][-1])
            self.best_loss_ = min(self.best_loss_, hist["loss"][-1])
        epochs = len(hist.epoch)
        self.n_iter_ += epochs
        self.t_ += epochs * n
        if val is not None and self._best is not None:
            self.model_.store.assign(self._best)
        if not incremental and hist.stop_reason is None and epochs == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                          f"the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def _make_optimizer(self):
        if self.solver == "sgd":
            return optim.get("sgd", lr=self.learning_rate_init, momentum=self.momentum)
        return optim.get(self.solver, lr=self.learning_rate_init)

    def _hold_out(self, xp, X, T, rs, strata):
        """(X, T) less the early-stopping rows, and (X_val, T_val): scikit-learn's
        split, stratified by the host class indices ``strata`` (N,) when given and
        every class has rows enough for both parts, else a plain random one."""
        rows, kw = np.arange(X.shape[0]), dict(test_size=self.validation_fraction, random_state=rs)
        try:
            tr, va = train_test_split(rows, stratify=strata, **kw)
        except ValueError:
            if strata is None:
                raise
            tr, va = train_test_split(rows, **kw)
        dev = _compat.device_of(X)
        tr, va = _compat.from_host(xp, tr, device=dev), _compat.from_host(xp, va, device=dev)
        return (xp.take(X, tr, axis=0), xp.take(T, tr, axis=0),
                (xp.take(X, va, axis=0), xp.take(T, va, axis=0)))

    def _output(self, X):
        """Network outputs (N, n_out) for validated X (sklearn input)."""
        check_is_fitted(self, "model_")
        X, _ = self._validate(X, reset=False, with_y=False)
        return self.model_.predict(X)

    def _to_user(self, A):
        """Results in the caller's kind: float64 NumPy, or the dispatch namespace."""
        if _dispatch():
            return A
        A = _compat.to_host(A)
        return A.astype(np.float64) if np.issubdtype(A.dtype, np.floating) else A

    def __getstate__(self):
        """Pickles hold host weights; the network is rebuilt in its namespace on load."""
        state = self.__dict__.copy()
        state.pop("_optimizer", None)  # partial_fit after unpickling starts a fresh optimizer
        state.pop("_best", None)
        model = state.pop("model_", None)
        if model is not None:
            state["_model_state"] = {"config": model.config(), "dtype": model.dtype_name,
                                     "xp": model.xp.__name__, "seed": model.seed,
                                     "rng": model.rng.bit_generator.state,
                                     "params": [_compat.to_host(p).copy() for p in model.parameters()]}
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_state", None)
        self.__dict__.update(state)
        if saved is not None:
            xp_name = saved["xp"].removeprefix("array_api_compat.")
            model = Sequential.from_config(copy.deepcopy(saved["config"]), xp=xp_name, dtype=saved["dtype"],
                                           seed=saved["seed"])
            model.set_parameters([_compat.from_host(model.xp, p, model.dtype, model.device)
                                  for p in saved["params"]])
            if "rng" in saved:  # the dropout masks go on where they were
                model.rng.bit_generator.state = saved["rng"]
            self.model_ = model


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-class classifier: hidden layers, softmax output, cross-entropy loss.

    fit(X (n_samples, n_features), y (n_samples,)); predict -> labels (n_samples,);
    predict_proba -> (n_samples, n_classes) in the order of ``classes_``.
    Attributes: classes_, n_features_in_, n_iter_, t_, loss_curve_, best_loss_,
    validation_scores_ and validation_loss_curve_ (lists with early_stopping,
    else None), best_validation_score_, coefs_, intercepts_ (NumPy), model_.
    """

    _is_classifier, _multi_output = True, False

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y); ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._partial_fit(X, y, classes)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes)."""
        Y = self._output(X)
        xp = _compat.namespace_of(Y)
        e = xp.exp(Y - xp.max(Y, axis=1, keepdims=True))
        return self._to_user(e / xp.sum(e, axis=1, keepdims=True))

    def predict_log_proba(self, X):
        """Log class probabilities (n_samples, n_classes), finite (a shifted log-softmax)."""
        Y = self._output(X)
        xp = _compat.namespace_of(Y)
        Z = Y - xp.max(Y, axis=1, keepdims=True)
        return self._to_user(Z - xp.log(xp.sum(xp.exp(Z), axis=1, keepdims=True)))

    def predict(self, X):
        """Labels (n_samples,), values of ``classes_``."""
        Y = self._output(X)
        xp = _compat.namespace_of(Y)
        idx = xp.argmax(Y, axis=1)
        out = self._to_user(idx)
        if isinstance(out, np.ndarray) or isinstance(self.classes_, np.ndarray):
            return self._classes_host[_compat.to_host(out)]  # text labels live on the host
        return xp.take(self.classes_, idx)

    def _loss(self):
        return losses.SoftmaxCrossEntropy(l2=self.alpha)

    def _val_metrics(self, val):
        return ["accuracy"] if val is not None else []

    def _val_score(self, val):
        return lambda logs: logs["val_accuracy"]

    def _targets(self, xp, X, y, first, classes):
        """(T (N,) class indices in xp, number of classes, the same indices on the host)."""
        check_classification_targets(y)
        y_host = np.asarray(_compat.to_host(y)) if not isinstance(y, np.ndarray) else y
        if first:
            labels = np.unique(y_host) if classes is None else np.unique(np.asarray(classes))
            if labels.size < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                                 f"got 1 class ({labels[0]!r})")
            self._classes_host = labels
            self.classes_ = labels if (xp is np or not _dispatch() or labels.dtype.kind not in "iuf") \
                else _compat.from_host(xp, labels, device=_compat.device_of(X))
        unknown = np.setdiff1d(np.unique(y_host), self._classes_host)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} not in classes_ {self._classes_host.tolist()}")
        idx = np.searchsorted(self._classes_host, y_host).astype(np.int64)
        return _compat.from_host(xp, idx, device=_compat.device_of(X)), self._classes_host.size, idx


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Regressor: hidden layers, identity output, squared error (½MSE) loss.

    fit(X (n_samples, n_features), y (n_samples,) or (n_samples, n_outputs));
    predict -> the same shape as y. Attributes as :class:`MLPClassifier`, minus
    ``classes_``; the early-stopping score is R^2 on the held-out rows.
    """

    _is_classifier, _multi_output = False, True
    _LOSSES = {"squared_error": "mse", "huber": "huber", "absolute_error": "l1", "l1": "l1",
               "pinball": "pinball", "quantile": "pinball"}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error", solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, xp=None, dtype="float32"):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate_init=learning_rate_init, max_iter=max_iter, shuffle=shuffle,
                         random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
                         momentum=momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change, xp=xp,
                         dtype=dtype)
        self.loss = loss

    def partial_fit(self, X, y):
        """One epoch on (X, y)."""
        return self._partial_fit(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        Y = self._output(X)
        if self._y_ndim == 1:
            Y = Y[:, 0]
        return self._to_user(Y)

    def _loss(self):
        """``loss``: "squared_error" (½MSE), "huber", "absolute_error" (or "l1"), "pinball" (or
        "quantile", the median), a config dict such as {"name": "pinball", "quantile": 0.9},
        or an nnbackprop Loss; ``alpha`` is its L2 term."""
        spec = self.loss
        if isinstance(spec, str):
            if spec not in self._LOSSES:
                raise ValueError(f"loss={spec!r} is not supported; choose from {sorted(self._LOSSES)}, a "
                                 f"config dict or an nnbackprop Loss")
            spec = self._LOSSES[spec]
        elif isinstance(spec, losses.Loss):
            spec = spec.config()
        if not isinstance(spec, (str, dict)):
            raise ValueError(f"loss must be a name, a config dict or an nnbackprop Loss, got {type(spec).__name__}")
        cfg = {"name": spec} if isinstance(spec, str) else dict(spec)
        cfg["l2"] = self.alpha
        return losses.get(cfg)

    def _val_metrics(self, val):
        return ["mse"] if val is not None else []

    def _val_score(self, val):
        if val is None:
            return None
        xp = _compat.namespace_of(val[1])
        var = float(xp.mean(xp.var(val[1], axis=0)))
        return lambda logs: 1.0 - logs["val_mse"] / var if var > 0 else -logs["val_mse"]

    def _targets(self, xp, X, y, first, classes):
        """(T (N, n_outputs) in xp and X's dtype, n_outputs, None: no strata)."""
        y_nd = y.ndim
        if first:
            self._y_ndim = y_nd
        elif y_nd != self._y_ndim:
            raise ValueError(f"y has {y_nd} dimensions but the model was fitted with {self._y_ndim}")
        dev = _compat.device_of(X)
        if isinstance(y, np.ndarray) and xp is not np:
            T = _compat.from_host(xp, y.reshape(y.shape[0], -1), X.dtype, dev)
        else:
            T = xp.asarray(y, dtype=X.dtype, device=dev) if xp is np else xp.astype(y, X.dtype)
            T = xp.reshape(T, (T.shape[0], -1))
        if not first and T.shape[1] != self.model_.n_out:
            raise ValueError(f"y has {T.shape[1]} outputs but the model was fitted with {self.model_.n_out}")
        return T, T.shape[1], None
