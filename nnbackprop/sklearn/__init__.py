"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in for ``sklearn.neural_network``'s estimators of the same names (every
parameter of theirs, with their meaning, except where noted), trained by
nnbackprop on any Array API backend. Needs scikit-learn >= 1.6
(``pip install 'nnbackprop[examples]'``).

Data (``_data``): the compute dtype follows X (float32 or float64) unless
``dtype=`` names one. Without scikit-learn's ``array_api_dispatch`` inputs are
NumPy and so are results (the network runs in ``xp``, NumPy when None). With
``sklearn.set_config(array_api_dispatch=True)`` arrays of any Array API library
(PyTorch, CuPy, array-api-strict) stay in their namespace and device: the network
is built there, and results and fitted arrays (``coefs_``, ``intercepts_``,
numeric ``classes_``) are arrays of that namespace; text labels stay NumPy.

Parameters (``_params``) are checked at fit by scikit-learn's own rules and error
(``InvalidParameterError``, a ValueError). ``solver``: "sgd" (momentum,
``nesterovs_momentum``, ``learning_rate`` constant / invscaling / adaptive with
``power_t``, changed per epoch as scikit-learn does), "adam" (``beta_1``,
``beta_2``, ``epsilon``), and ours, "adamw", "adagrad", "rmsprop"; "lbfgs" is
refused (``max_fun`` is accepted and unused). The early-stopping hold-out is
scikit-learn's ``train_test_split``, stratified for the classifier (a plain
random split when a class has too few rows for both parts).

Where the arithmetic differs from scikit-learn's by design:

- ``alpha`` is nnbackprop's ``l2``: J + alpha/2 sum ||W||^2 per batch (scikit-learn
  divides the term by the batch's size or weight; ours is the size-free form).
- Adam adds epsilon to the bias-corrected sqrt(v^) (Kingma & Ba's form);
  scikit-learn adds it to the uncorrected sqrt(v). With a tiny epsilon the two agree.
- The classifier has a softmax output for two classes too (scikit-learn: one
  logistic unit); with three classes or more the networks are the same.
- ``n_iter_`` counts epochs over all fits of a warm start (scikit-learn 1.9 counts
  those of the last fit).
- With sample weights the loss curve is the weighted mean over the epoch's rows
  (scikit-learn's averages each batch's weighted loss by its row count); the
  weights themselves train alike.

Ours beyond scikit-learn's: ``dropout`` (p of a Dropout after every hidden layer),
``class_weight`` on the classifier, the regressor's robust ``loss`` options,
``xp`` and ``dtype``.
"""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
