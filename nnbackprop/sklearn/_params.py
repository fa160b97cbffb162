"""The estimators' parameters: scikit-learn's validation rules, and the optimizer
and learning rate each solver stands for.

The rules are scikit-learn's own (``_parameter_constraints``, checked at fit by
``BaseEstimator._validate_params``), taken from its MLP for every parameter we
share, plus ours: ``solver`` (more optimizers, lbfgs refused at fit), ``dropout``,
``class_weight``, ``xp`` and ``dtype``.
"""

from __future__ import annotations

from numbers import Real

from sklearn.neural_network import MLPClassifier as _SkMLP
from sklearn.utils._param_validation import Interval, StrOptions

from .. import optim
from ..schedules import Schedule, _number

SOLVERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")

SHARED = ("hidden_layer_sizes", "activation", "alpha", "batch_size", "learning_rate", "learning_rate_init",
          "power_t", "max_iter", "shuffle", "random_state", "tol", "verbose", "warm_start", "momentum",
          "nesterovs_momentum", "early_stopping", "validation_fraction", "beta_1", "beta_2", "epsilon",
          "n_iter_no_change", "max_fun")

CONSTRAINTS = {k: c for k, c in _SkMLP._parameter_constraints.items() if k in SHARED}
CONSTRAINTS.update({
    "solver": [StrOptions({*SOLVERS, "lbfgs"})],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "xp": "no_validation",     # a module or its name: checked when the network is built
    "dtype": [None, str],      # checked against the namespace's dtypes when the network is built
})


def check_solver(solver: str) -> None:
    if solver == "lbfgs":
        raise ValueError("solver='lbfgs' is not supported: nnbackprop trains by mini-batch gradient "
                         f"descent; choose one of {SOLVERS} (max_fun, lbfgs's budget, is then unused)")


class EpochLearningRate(Schedule):
    """scikit-learn's SGD learning rate, which changes between epochs, never within one.

    constant     lr0 throughout
    invscaling   lr0 / (t + 1) ** power_t after each epoch, t the rows seen so far
                 (``t_``, over every fit of a warm start), lr0 in a fit's first epoch
    adaptive     lr / 5 each time ``n_iter_no_change`` epochs pass without improvement;
                 training stops when it is already <= 1e-6

    The estimator calls :meth:`iteration_ends` and :meth:`trigger_stopping` at the
    end of each epoch, as scikit-learn's ``SGDOptimizer`` is called.
    """

    name, _fields = "sklearn_epoch", ("lr", "kind", "power_t")

    def __init__(self, lr: float, kind: str = "constant", power_t: float = 0.5):
        self.lr = _number("lr", lr, lo=0.0)
        self.kind = kind
        self.power_t = _number("power_t", power_t, lo=0.0)
        self.current = self.lr

    def __call__(self, t: int) -> float:
        return self.current

    def iteration_ends(self, samples_seen: int) -> None:
        if self.kind == "invscaling":
            self.current = self.lr / (samples_seen + 1) ** self.power_t

    def trigger_stopping(self) -> bool:
        """True: stop. adaptive: divide the learning rate by 5 and go on, unless it is <= 1e-6."""
        if self.kind != "adaptive" or self.current <= 1e-6:
            return True
        self.current /= 5.0
        return False

    def config(self) -> dict:
        return {**super().config(), "current": self.current}


def make_optimizer(est) -> optim.Optimizer:
    """The optimizer ``est.solver`` names, with scikit-learn's hyperparameters:

    sgd     SGD(momentum, nesterov=nesterovs_momentum), the learning rate of
            ``learning_rate`` (:class:`EpochLearningRate`; a plain float when constant)
    adam    Adam(beta_1, beta_2, epsilon); adamw the same with decoupled decay
    adagrad, rmsprop   at learning_rate_init, their own defaults otherwise
    """
    lr = float(est.learning_rate_init)
    if est.solver == "sgd":
        if est.learning_rate != "constant":
            lr = EpochLearningRate(lr, est.learning_rate, est.power_t)
        mu = float(est.momentum)
        return optim.SGD(lr, momentum=mu, nesterov=bool(est.nesterovs_momentum) and mu > 0)
    if est.solver in ("adam", "adamw"):
        return optim.get(est.solver, lr=lr, beta1=float(est.beta_1), beta2=float(est.beta_2),
                         eps=float(est.epsilon))
    return optim.get(est.solver, lr=lr)
