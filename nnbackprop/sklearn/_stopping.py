"""scikit-learn's end-of-epoch bookkeeping, as a training callback.

After each epoch, in scikit-learn's order (``_fit_stochastic``): ``n_iter_`` and
``t_`` (rows seen) grow, the epoch's loss joins ``loss_curve_``, the count of
epochs without an improvement by ``tol`` is updated (of the training loss, or
with early stopping of the validation score, whose best weights are kept), the
SGD learning rate takes its next value, and past ``n_iter_no_change`` such
epochs training stops, or (``learning_rate="adaptive"``) the learning rate is
divided by 5 and the count starts again.
"""

from __future__ import annotations

from ..callbacks import Callback


class SklearnEpochs(Callback):
    """``est``: the estimator whose fitted attributes it keeps; ``n_rows``: rows per
    epoch (after the early-stopping hold-out); ``val_score(logs)``: the validation
    score, or None without early stopping; ``schedule``: an EpochLearningRate or None."""

    def __init__(self, est, n_rows: int, val_score, schedule=None):
        self.est, self.n_rows, self.val_score, self.schedule = est, n_rows, val_score, schedule

    def on_epoch_end(self, run, epoch, logs):
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_rows
        est.loss_curve_.append(logs["loss"])
        if self.val_score is not None:
            est.validation_loss_curve_.append(logs["val_loss"])
            score = self.val_score(logs)
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
        if self.schedule is not None:
            self.schedule.iteration_ends(est.t_)
        if est._no_improve > est.n_iter_no_change:
            if self.schedule is None or self.schedule.trigger_stopping():
                what = "validation score" if self.val_score is not None else "training loss"
                run.stop(f"the {what} did not improve by tol={est.tol} for {est.n_iter_no_change} "
                         f"consecutive epochs")
            else:
                est._no_improve = 0
