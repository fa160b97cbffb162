"""The estimators: :class:`MLPClassifier` and :class:`MLPRegressor`."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets

from .. import _compat, losses
from . import _data
from ._base import BaseMLP


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-class classifier: hidden layers, softmax output, cross-entropy loss.

    fit(X (n_samples, n_features), y (n_samples,), sample_weight=None); predict ->
    labels (n_samples,); predict_proba -> (n_samples, n_classes) in the order of
    ``classes_``. ``class_weight``: None, "balanced" or {label: weight}, times the
    sample weights. Attributes: classes_, n_features_in_, n_iter_, t_, loss_curve_,
    best_loss_, validation_scores_ and validation_loss_curve_ (lists with
    early_stopping, else None), best_validation_score_, coefs_, intercepts_, model_.
    """

    _is_classifier, _multi_output = True, False
    _parameter_constraints = {**BaseMLP._parameter_constraints,
                              "class_weight": [None, dict, StrOptions({"balanced"})]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, dropout=0.0, xp=None, dtype=None):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         dropout=dropout, xp=xp, dtype=dtype)
        self.class_weight = class_weight

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch on (X, y); ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes)."""
        Y, placed = self._output(X, "predict_proba")
        xp = _compat.namespace_of(Y)
        e = xp.exp(Y - xp.max(Y, axis=1, keepdims=True))
        return _data.to_user(e / xp.sum(e, axis=1, keepdims=True), placed)

    def predict_log_proba(self, X):
        """Log class probabilities (n_samples, n_classes), finite (a shifted log-softmax)."""
        Y, placed = self._output(X, "predict_log_proba")
        xp = _compat.namespace_of(Y)
        Z = Y - xp.max(Y, axis=1, keepdims=True)
        return _data.to_user(Z - xp.log(xp.sum(xp.exp(Z), axis=1, keepdims=True)), placed)

    def predict(self, X):
        """Labels (n_samples,), values of ``classes_``."""
        Y, placed = self._output(X, "predict")
        xp = _compat.namespace_of(Y)
        idx = xp.argmax(Y, axis=1)
        if isinstance(self.classes_, np.ndarray):  # NumPy labels (text ones live on the host)
            return self.classes_[np.asarray(_compat.to_host(idx))]
        labels = xp.take(self.classes_, idx)
        return _data.to_user(labels, placed)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against y (weighted by ``sample_weight``), a float.

        scikit-learn's ``accuracy_score``, counted on the host: under array_api_dispatch
        it would average PyTorch's booleans in PyTorch's default float32.
        """
        from sklearn.metrics import accuracy_score

        sw = None if sample_weight is None else _data.host_copy(sample_weight)
        return float(accuracy_score(_data.host_copy(y), _data.host_copy(self.predict(X)), sample_weight=sw))

    @property
    def _labels(self) -> np.ndarray:
        """``classes_`` on the host."""
        c = self.classes_
        return c if isinstance(c, np.ndarray) else np.asarray(_compat.to_host(c))

    def _loss(self):
        return losses.SoftmaxCrossEntropy(l2=self.alpha)

    def _val_metrics(self, val):
        return ["accuracy"] if val is not None else []

    def _val_score(self, val, w_val=None):
        """Accuracy on the held-out rows (weighted by their sample weights, as scikit-learn's)."""
        if val is None:
            return None
        if w_val is None:
            return lambda logs: logs["val_accuracy"]
        from sklearn.metrics import accuracy_score

        return self._host_score(val, w_val, accuracy_score, lambda Y: np.argmax(Y, axis=1))

    def _class_weight_indices(self):
        """``class_weight`` with labels turned into class indices ("balanced" as it is)."""
        cw = self.class_weight
        if cw is None or isinstance(cw, str):
            return cw
        labels = self._labels
        out = {}
        for label, weight in cw.items():
            at = np.flatnonzero(labels == label)
            if at.size != 1:
                raise ValueError(f"class_weight has label {label!r}, not one of classes_ {labels.tolist()}")
            out[int(at[0])] = weight
        return out

    def _targets(self, xp, X, y, first, classes):
        """(T (N,) class indices in xp, number of classes, the same indices on the host)."""
        check_classification_targets(y)
        y_host = _data.host_copy(y)
        if first:
            labels = np.unique(y_host) if classes is None else np.unique(_data.host_copy(classes))
            if labels.size < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                                 f"got 1 class ({labels[0]!r})")
            host = not self._keeps_namespace or labels.dtype.kind not in "iuf"
            self.classes_ = labels if host else _compat.from_host(xp, labels, device=_compat.device_of(X))
        labels = self._labels
        unknown = np.setdiff1d(np.unique(y_host), labels)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} not in classes_ {labels.tolist()}")
        idx = np.searchsorted(labels, y_host).astype(np.int64)
        return _compat.from_host(xp, idx, device=_compat.device_of(X)), labels.size, idx


class MLPRegressor(RegressorMixin, BaseMLP):
    """Regressor: hidden layers, identity output, squared error (½MSE) loss.

    fit(X (n_samples, n_features), y (n_samples,) or (n_samples, n_outputs),
    sample_weight=None); predict -> the same shape as y. Attributes as
    :class:`MLPClassifier`, minus ``classes_``; the early-stopping score is R^2 on
    the held-out rows.
    """

    _is_classifier, _multi_output = False, True
    _parameter_constraints = {**BaseMLP._parameter_constraints, "loss": "no_validation"}  # see _loss
    _LOSSES = {"squared_error": "mse", "huber": "huber", "absolute_error": "l1", "l1": "l1",
               "pinball": "pinball", "quantile": "pinball"}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error", solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, xp=None, dtype=None):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
                         verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         dropout=dropout, xp=xp, dtype=dtype)
        self.loss = loss

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on (X, y)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        Y, placed = self._output(X, "predict")
        if self._y_ndim == 1:
            Y = Y[:, 0]
        return _data.to_user(Y, placed)

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

    def _val_score(self, val, w_val=None):
        """R^2 on the held-out rows: scikit-learn's r2_score (the mean over outputs, weighted by
        the rows' sample weights) where there are weights or several outputs, else from val_mse."""
        if val is None:
            return None
        if w_val is not None or val[1].shape[1] > 1:
            from sklearn.metrics import r2_score

            return self._host_score(val, w_val, r2_score, lambda Y: Y)
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
        T = _data.to_net(y, xp, X.dtype, _compat.device_of(X))
        T = xp.reshape(T, (T.shape[0], -1))
        if not first and T.shape[1] != self.model_.n_out:
            raise ValueError(f"y has {T.shape[1]} outputs but the model was fitted with {self.model_.n_out}")
        return T, T.shape[1], None
